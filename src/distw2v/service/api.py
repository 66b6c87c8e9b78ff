"""The REST API (FastAPI): jobs, artifacts, model queries, health and metrics.

Every `/v1` route needs a bearer token and sees only that token's jobs (another token's job
is a 404, as if it did not exist). Errors are JSON `{"detail": "<one sentence>"}` (the one
`ErrorOut` schema, which every route lists for each error code it can return); a 422 also
lists `errors`, each naming its field. Nothing here trains: submissions go to the store and
the runner starts them in their own processes.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from .. import __version__
from ..config import to_dict
from ..errors import CorpusError, Distw2vError, UnknownWordError
from . import queries
from .artifacts import EXPORTS, ModelGone, stream_file
from .docs import add_docs
from .insights import insight_routes
from .metrics import CONTENT_TYPE, BodyLimitMiddleware, MetricsMiddleware
from .schemas import (
    InvalidSetting,
    JobList,
    JobOut,
    JobRequest,
    State,
    error_responses,
    job_out,
    to_configs,
)
from .security import Busy, SourceError
from .server import Service
from .store import ACTIVE, CANCELLED, FAILED, SUCCEEDED, Job, QuotaError
from .web import add_web_page

log = logging.getLogger("distw2v.service")
MAX_OFFSET = 1_000_000_000  # far beyond any listing; keeps the SQL OFFSET in range
_JOB = error_responses(401, 404, 422)
_MODEL = error_responses(400, 401, 404, 409, 410, 422)
_ARTIFACT_TYPES = {"native": "application/x-tar", "word2vec-bin": "application/octet-stream",
                   "word2vec-text": "text/plain"}
_bearer = HTTPBearer(auto_error=False, description="a token given to `distw2v serve`")


def _error(status: int, detail: str, headers: dict[str, str] | None = None,
           **extra: Any) -> JSONResponse:
    return JSONResponse({"detail": detail, **extra}, status_code=status, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "request"


def _owner(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The owner id of the presented bearer token (401 when missing or unknown)."""
    if credentials is None:
        raise HTTPException(401, "this route needs a bearer token "
                            "(header 'Authorization: Bearer TOKEN').",
                            headers={"WWW-Authenticate": "Bearer"})
    found = request.app.state.service.tokens.owner(credentials.credentials)
    if found is None:
        raise HTTPException(401, "the bearer token is not valid.",
                            headers={"WWW-Authenticate": "Bearer"})
    return str(found)


Owner = Annotated[str, Depends(_owner)]


def create_app(service: Service) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        service.runner.start()
        try:
            yield
        finally:
            service.runner.stop()
            service.listings.close()

    title = "distw2v training service"
    app = FastAPI(title=title, version=__version__, lifespan=lifespan,
                  description="Submit corpora, train word2vec models side by side, query them.",
                  docs_url=None, redoc_url=None)  # add_docs serves them without a CDN
    app.state.service = service
    add_docs(app, title)
    app.add_middleware(BodyLimitMiddleware, limit=service.config.max_request_bytes)
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's and Starlette's own errors, made into the one sentence ours are
        detail = str(exc.detail)
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            message = "the body is not JSON in UTF-8"
            return _error(422, f"invalid request: body: {message}.",
                          errors=[{"field": "body", "message": message}])
        if detail == "Not Found":
            detail = "there is no such route."
        elif detail == "Method Not Allowed":
            detail = f"this route does not take {request.method} requests."
        return _error(exc.status_code, detail,
                      headers=dict(exc.headers) if exc.headers else None)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(e.get("loc", ())), "message": e.get("msg", "invalid")}
                  for e in exc.errors()]
        first = errors[0] if errors else {"field": "request", "message": "invalid"}
        return _error(422, f"invalid request: {first['field']}: {first['message']}.",
                      errors=errors)

    @app.exception_handler(InvalidSetting)
    async def invalid_setting(_: Request, exc: InvalidSetting) -> JSONResponse:
        field = _field(exc.loc)
        return _error(422, f"invalid request: {field}: {exc}",
                      errors=[{"field": field, "message": str(exc)}])

    @app.exception_handler(UnknownWordError)
    async def unknown_word(_: Request, exc: UnknownWordError) -> JSONResponse:
        return _error(404, str(exc))

    @app.exception_handler(ModelGone)
    async def model_gone(_: Request, exc: ModelGone) -> JSONResponse:
        return _error(410, str(exc))

    @app.exception_handler(QuotaError)
    async def over_quota(_: Request, exc: QuotaError) -> JSONResponse:
        return _error(429, str(exc))

    @app.exception_handler(Distw2vError)
    async def bad_input(_: Request, exc: Distw2vError) -> JSONResponse:
        return _error(400, str(exc))

    @app.get("/healthz", tags=["service"])
    def healthz() -> dict[str, Any]:
        counts = service.store.counts()
        return {"status": "ok", "version": __version__, "running": counts["running"],
                "queued": counts["queued"], "max_concurrent_jobs": service.runner.limit}

    @app.get("/metrics", tags=["service"], response_class=Response,
             responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                              "description": "Prometheus text format"}})
    def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    app.include_router(_v1(service))
    add_web_page(app)
    return app


EXACT_HELP = ("scan every word instead of asking the model's nearest-neighbour index (large "
              "models have one; scores are exact either way; 3cosmul always scans)")


def _v1(service: Service) -> APIRouter:
    router = APIRouter()
    store = service.store

    def own_job(job_id: str, who: str) -> Job:
        job = store.get(job_id, owner=who)
        if job is None:
            raise HTTPException(404, f"there is no job {job_id}.")
        return job

    # A succeeded job stays succeeded until it is retried or deleted (both make the model
    # cache forget it), so who owns it is remembered: model queries then skip the store.
    def finished_model(job_id: str, who: str) -> None:
        if service.models.owner(job_id) == who:
            return
        job = own_job(job_id, who)
        if job.state != SUCCEEDED:
            raise HTTPException(409, f"job {job_id} is {job.state}; only a succeeded job "
                                "has a model.")
        service.models.remember_owner(job_id, who)

    @router.post("/v1/jobs", status_code=201, response_model=JobOut, tags=["jobs"],
                 responses=error_responses(401, 403, 413, 422, 429, 503))
    async def submit(request: JobRequest, who: Owner, response: Response) -> JobOut:
        """Queue a training job on one or more sources."""
        vocab, train = to_configs(request)
        try:  # listed off the event loop, in threads of their own, within a deadline
            size, remote = await service.listings.check(request.sources,
                                                        service.config.source_policy())
        except SourceError as exc:
            raise HTTPException(403, str(exc)) from None
        except Busy as exc:
            raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from None
        except CorpusError as exc:
            raise HTTPException(422, str(exc)) from None
        if not remote and size == 0:
            raise HTTPException(422, "the dataset is empty: every file in the sources is empty.")
        if vocab.phrases:  # a phrase table is read as a source is, so checked as one
            try:
                await service.listings.check([vocab.phrases], service.config.source_policy())
            except SourceError as exc:
                raise HTTPException(403, f"vocab.phrases: {exc}") from None
            except Busy as exc:
                raise HTTPException(503, str(exc), headers={"Retry-After": "5"}) from None
            except CorpusError as exc:  # named as sources.0 by the listing: it is not one
                raise HTTPException(422, "vocab.phrases: "
                                    + str(exc).removeprefix("sources.0: ")) from None
        await run_in_threadpool(service.quota.check, who)
        job = await run_in_threadpool(
            store.create,
            owner=who, name=request.name, engine=request.engine, format=request.format,
            spec={"sources": list(dict.fromkeys(request.sources)), "vocab": to_dict(vocab),
                  "train": to_dict(train)},
            epochs=train.epochs, max_active=service.config.max_jobs_per_token,
            max_stored=service.config.max_stored_jobs_per_token,
        )
        service.runner.wake()
        response.headers["Location"] = f"/v1/jobs/{job.id}"
        log.info("job %s queued: %s", job.id, ", ".join(request.sources)[:500])
        return job_out(job)

    @router.get("/v1/jobs", response_model=JobList, tags=["jobs"],
                responses=error_responses(401, 422))
    def list_jobs(
        who: Owner,
        state: State | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> JobList:
        """Your jobs, newest first, optionally only those in one state."""
        jobs, total = store.list_jobs(who, state=state, limit=limit, offset=offset)
        return JobList(jobs=[job_out(j) for j in jobs], total=total, limit=limit,
                       offset=offset)

    @router.get("/v1/jobs/{job_id}", response_model=JobOut, tags=["jobs"], responses=_JOB)
    def get_job(job_id: str, who: Owner) -> JobOut:
        return job_out(own_job(job_id, who))

    @router.delete("/v1/jobs/{job_id}", response_model=JobOut, tags=["jobs"],
                   responses=error_responses(401, 404, 409, 422))
    def cancel_job(job_id: str, who: Owner) -> JobOut:
        """Cancel a queued or running job; its process is stopped within seconds."""
        job = own_job(job_id, who)
        if job.state not in ACTIVE or not store.cancel(job_id):
            state = (store.get(job_id) or job).state
            raise HTTPException(409, f"job {job_id} is already {state}; only queued or "
                                "running jobs can be cancelled.")
        service.runner.cancel(job_id)
        return job_out(own_job(job_id, who))

    @router.post("/v1/jobs/{job_id}/retry", status_code=202, response_model=JobOut,
                 tags=["jobs"], responses=error_responses(401, 404, 409, 422, 429))
    def retry_job(job_id: str, who: Owner) -> JobOut:
        """Queue a failed or cancelled job again, with the same sources and settings.

        A cancelled job whose process is still stopping waits in the queue until it has."""
        job = own_job(job_id, who)
        if job.state in (FAILED, CANCELLED):
            service.quota.check(who)  # the new attempt makes a model
        if job.state not in (FAILED, CANCELLED) or not store.retry(
            job_id, job.attempts, owner=who, max_active=service.config.max_jobs_per_token
        ):
            raise HTTPException(409, f"job {job_id} is {job.state}; only failed or cancelled "
                                "jobs can be retried.")
        service.models.drop(job_id)
        service.runner.wake()
        return job_out(own_job(job_id, who))

    @router.post("/v1/jobs/{job_id}/delete", status_code=204, response_class=Response,
                 tags=["jobs"], responses=error_responses(401, 404, 409, 422))
    def delete_job(job_id: str, who: Owner) -> Response:
        """Delete a finished job with its model, exports and logs (which frees its share
        of your quotas); cancel a queued or running job first."""
        job = own_job(job_id, who)
        if job.state not in ACTIVE and service.runner.delete(job_id):
            return Response(status_code=204)
        state = (store.get(job_id) or job).state
        if state in ACTIVE:
            raise HTTPException(409, f"job {job_id} is {state}; cancel it first "
                                f"(DELETE /v1/jobs/{job_id}), then delete it.")
        raise HTTPException(409, f"job {job_id} is still stopping; try again in a few "
                            "seconds.")

    @router.get("/v1/jobs/{job_id}/artifacts/{fmt}", tags=["models"],
                response_class=StreamingResponse,
                responses={**error_responses(401, 404, 409, 410, 422, 429),
                           200: {"description": "the model file",
                                 "content": {t: {"schema": {"type": "string",
                                                            "format": "binary"}}
                                             for t in _ARTIFACT_TYPES.values()}}})
    def artifact(
        job_id: str, fmt: Literal["native", "word2vec-bin", "word2vec-text"], who: Owner
    ) -> Response:
        """The vectors: `native` (tar of the model directory) or a word2vec format."""
        finished_model(job_id, who)
        # the files are opened before the 200 goes out: a vanished model is a 410
        if fmt == "native":
            stream, size = service.artifacts.native_tar(job_id)
            name = f"{job_id}.tar"
        else:
            file, size = service.quota.open_export(who, job_id, fmt)  # counted
            stream = stream_file(file)
            name = f"{job_id}-{EXPORTS[fmt]}"
        return StreamingResponse(
            stream, media_type=_ARTIFACT_TYPES[fmt],
            headers={"Content-Disposition": f'attachment; filename="{name}"',
                     "Content-Length": str(size)},
        )

    @router.get("/v1/models/{job_id}", tags=["models"], responses=_MODEL)
    def model_info(job_id: str, who: Owner) -> dict[str, Any]:
        finished_model(job_id, who)
        vectors = service.models.get(job_id)
        return {"id": job_id, "words": len(vectors), "dim": vectors.dim}

    @router.get("/v1/models/{job_id}/similar", tags=["models"], responses=_MODEL)
    def similar(
        job_id: str, who: Owner, word: Annotated[str, Query(min_length=1, max_length=200)],
        topn: Annotated[int, Query(ge=1, le=queries.MAX_TOPN)] = 10,
        exact: Annotated[bool, Query(description=EXACT_HELP)] = False,
    ) -> dict[str, Any]:
        """Nearest words by cosine similarity."""
        finished_model(job_id, who)
        vectors = service.models.get(job_id)
        return {"word": word, "similar": queries.similar(vectors, word, topn, exact)}

    @router.get("/v1/models/{job_id}/analogy", tags=["models"], responses=_MODEL)
    def analogy(
        job_id: str, who: Owner,
        positive: Annotated[list[str], Query(
            description="words to add (repeated or comma-separated)")] = [],  # noqa: B006
        negative: Annotated[list[str], Query(
            description="words to subtract (repeated or comma-separated)")] = [],  # noqa: B006
        words: Annotated[str | None, Query(
            max_length=1000, examples=["man king woman"],
            description="the CLI's form `a b c` (a is to b as c is to ?), three words "
            "separated by spaces or commas; instead of positive and negative, it means "
            "positive=b,c and negative=a")] = None,
        method: Annotated[Literal["3cosadd", "3cosmul"], Query(
            description="3CosAdd, or Levy & Goldberg's 3CosMul")] = "3cosadd",
        topn: Annotated[int, Query(ge=1, le=queries.MAX_TOPN)] = 5,
        exact: Annotated[bool, Query(description=EXACT_HELP)] = False,
    ) -> dict[str, Any]:
        """Words nearest to sum(positive) - sum(negative) (3CosAdd); `a:b::c:?` is
        positive=b,c and negative=a, or words=a b c."""
        pos, neg = queries.split_words(positive), queries.split_words(negative)
        if words is not None:
            if pos or neg:
                raise HTTPException(422, "give either words=a b c or positive and negative, "
                                    "not both.")
            triple = words.replace(",", " ").split()
            if len(triple) != 3:
                raise HTTPException(422, "words takes three words 'a b c' (a is to b as c is "
                                    f"to ?); it has {len(triple)}.")
            pos, neg = triple[1:], triple[:1]
        elif not pos:
            raise HTTPException(422, "give words=a b c, or at least one positive word.")
        finished_model(job_id, who)
        vectors = service.models.get(job_id)
        if method == "3cosmul":
            if len(pos) + len(neg) > queries.MAX_QUERY_WORDS:
                raise Distw2vError(f"an analogy takes at most {queries.MAX_QUERY_WORDS} words.")
            found = [{"word": w, "score": s}
                     for w, s in vectors.most_similar_cosmul(pos, neg, topn=topn)]
        else:
            found = queries.analogy(vectors, pos, neg, topn, exact)
        return {"positive": pos, "negative": neg, "similar": found}

    @router.get("/v1/models/{job_id}/vector", tags=["models"], responses=_MODEL)
    def vector(
        job_id: str, who: Owner, word: Annotated[str, Query(min_length=1, max_length=200)]
    ) -> dict[str, Any]:
        finished_model(job_id, who)
        vectors = service.models.get(job_id)
        return {"word": word, "vector": queries.vector(vectors, word)}

    # history, log tail and projection, for the web page
    router.include_router(insight_routes(service, own_job, finished_model, _owner))
    return router



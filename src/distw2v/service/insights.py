"""Routes for the web page: a job's progress history and log tail, a model's 2-D projection.

Like every `/v1` route they need the bearer token and see only that token's jobs. (No
`from __future__ import annotations` here: FastAPI reads the routes' annotations, and the
token check they name is local to `insight_routes`.)
"""

import os
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ..errors import Distw2vError
from . import queries
from .schemas import error_responses
from .server import Service
from .store import Job

if TYPE_CHECKING:
    from ..vectors import Vectors  # loaded only when a model is asked for

MAX_TAIL = 2000  # log lines one request may ask for
LOG_BYTES = 512 * 1024  # read at most this much of the log's end
MAX_PROJECTION = 1000  # words one projection may hold (the SVD is O(n^2 d))
MAX_INCLUDE = 50  # extra words projected into the same plane


class Sample(BaseModel):
    t: float = Field(description="seconds since the attempt started")
    stage: str | None
    progress: float | None = Field(description="fraction of the whole job done, 0 to 1")
    words_per_second: float | None
    learning_rate: float | None = Field(
        description="the trainer's linearly decaying learning rate at that point (training "
        "stage only)")
    epoch: int | None
    loss: float | None = Field(
        None, description="the mean SGNS loss a pair (a centre, CBOW) so far in the epoch "
        "(training stage only)")


class HistoryOut(BaseModel):
    job_id: str
    attempt: int | None = Field(description="the attempt the samples belong to")
    samples: list[Sample] = Field(description="oldest first, thinned to a few hundred")


class LogOut(BaseModel):
    job_id: str
    lines: list[str] = Field(description="the last lines of the job's log, oldest first")
    truncated: bool = Field(description="whether earlier lines exist that are not shown")


class Point(BaseModel):
    word: str
    rank: int = Field(description="the word's position in the vocabulary (0 = most frequent)")
    x: float
    y: float
    top: bool = Field(description="one of the top-n words (else a word asked for by include)")


class ProjectionOut(BaseModel):
    job_id: str
    explained_variance: list[float] = Field(
        description="fraction of the top-n words' variance along each of the two axes")
    words: list[Point]


def pca_2d(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """(mean, 2 x d components, explained fractions) of the rows, signs fixed so that the
    same rows always give the same picture."""
    x = np.asarray(rows, dtype=np.float64)
    mean = x.mean(axis=0)
    centred = x - mean
    _, sing, vt = np.linalg.svd(centred, full_matrices=False)
    components = np.zeros((2, x.shape[1]))
    k = min(2, vt.shape[0])
    components[:k] = vt[:k]
    for row in components:
        big = int(np.argmax(np.abs(row)))
        if row[big] < 0:
            row *= -1
    total = float(np.sum(sing**2))
    explained = [float(s**2 / total) if total > 0 else 0.0 for s in sing[:2]]
    explained += [0.0] * (2 - len(explained))
    return mean, components, explained


# A projection's basis per loaded model and n; a model the cache drops takes its bases along.
_Basis = tuple[np.ndarray, np.ndarray, list[float]]
_bases: "weakref.WeakKeyDictionary[Vectors, dict[int, _Basis]]" = weakref.WeakKeyDictionary()
_bases_lock = threading.Lock()


def _basis(vectors: "Vectors", n: int) -> _Basis:
    with _bases_lock:
        found = _bases.get(vectors, {}).get(n)
    if found is not None:
        return found
    basis = pca_2d(vectors.unit_vectors(range(n)))
    with _bases_lock:
        per_model = _bases.setdefault(vectors, {})
        if len(per_model) >= 8:
            per_model.clear()
        per_model[n] = basis
    return basis


def project(vectors: "Vectors", n: int, include: list[str]) -> tuple[list[float], list[Point]]:
    """The top-n words (and `include`) on the first two principal axes of the top n."""
    n = min(n, len(vectors))
    extra = [vectors.word_id(w) for w in dict.fromkeys(include)]  # unknown word: 404
    ids = list(range(n)) + [i for i in extra if i >= n]
    mean, components, explained = _basis(vectors, n)
    coords = (np.asarray(vectors.unit_vectors(ids), dtype=np.float64) - mean) @ components.T
    points = [Point(word=vectors.words[i], rank=i, x=round(float(xy[0]), 5),
                    y=round(float(xy[1]), 5), top=i < n) for i, xy in zip(ids, coords)]
    return explained, points


def read_tail(path: Path, lines: int) -> tuple[list[str], bool]:
    """The last `lines` lines of a text file (at most LOG_BYTES of its end are read)."""
    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            start = max(0, size - LOG_BYTES)
            file.seek(start)
            data = file.read()
    except FileNotFoundError:
        return [], False
    text = data.decode("utf-8", errors="replace").splitlines()
    if start > 0 and text:
        text = text[1:]  # began mid-line
    return text[-lines:], start > 0 or len(text) > lines


def insight_routes(service: "Service", own_job: Callable[[str, str], Job],
                   finished_model: Callable[[str, str], None],
                   owner: Callable[..., str]) -> APIRouter:
    """The routes, using api.py's token check and ownership lookups."""
    router = APIRouter()
    who_dep = Depends(owner)

    @router.get("/v1/jobs/{job_id}/history", response_model=HistoryOut, tags=["jobs"],
                responses=error_responses(401, 404, 422))
    def history(job_id: str, who: Annotated[str, who_dep]) -> HistoryOut:
        """Progress, words/s and learning rate over time, for the latest attempt."""
        job = own_job(job_id, who)
        attempt, samples = service.runner.history.samples(job_id)
        if attempt is not None and attempt != job.attempts:
            attempt, samples = None, []  # a retry that has not started yet
        return HistoryOut(job_id=job_id, attempt=attempt,
                          samples=[Sample(**s) for s in samples])

    @router.get("/v1/jobs/{job_id}/log", response_model=LogOut, tags=["jobs"],
                responses=error_responses(401, 404, 422))
    def job_log(
        job_id: str, who: Annotated[str, who_dep],
        tail: Annotated[int, Query(ge=1, le=MAX_TAIL)] = 200,
    ) -> LogOut:
        """The end of the job's log: its attempts and what its trainer reported."""
        own_job(job_id, who)
        lines, truncated = read_tail(
            service.config.data_path / "logs" / f"{job_id}.events.log", tail)
        return LogOut(job_id=job_id, lines=lines, truncated=truncated)

    @router.get("/v1/models/{job_id}/projection", response_model=ProjectionOut,
                tags=["models"], responses=error_responses(400, 401, 404, 409, 410, 422))
    def projection(
        job_id: str, who: Annotated[str, who_dep],
        n: Annotated[int, Query(ge=1, le=MAX_PROJECTION)] = 300,
        include: Annotated[list[str], Query(max_length=MAX_INCLUDE)] = [],  # noqa: B006
    ) -> ProjectionOut:
        """The n most frequent words on the first two principal axes of their unit vectors
        (PCA); `include` words (e.g. a query's neighbours) are placed in the same plane."""
        finished_model(job_id, who)
        vectors = service.models.get(job_id)
        words = queries.split_words(include)
        if len(words) > MAX_INCLUDE:
            raise Distw2vError(f"include takes at most {MAX_INCLUDE} words.")
        explained, points = project(vectors, n, words)
        return ProjectionOut(job_id=job_id, explained_variance=explained, words=points)

    return router

"""The REST request and response models.

The training settings' models are generated from the same dataclasses the CLI uses
(`VocabConfig`, `TrainConfig`): field names, types, defaults and help text are declared once.
Unknown fields and wrongly typed values are refused by pydantic (422 naming the field); the
dataclasses' own checks (e.g. `dim must be at least 1`) run next and are reported the same way.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated, Any, cast

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from ..config import EngineName, Format, RunConfig, TrainConfig, VocabConfig
from ..errors import Distw2vError
from ..options import settings_model
from .store import Job, State

# The request's engine and format are config fields (RunConfig's, VocabConfig's): their
# values, defaults and help are declared there.
ENGINE = next(f for f in dataclasses.fields(RunConfig) if f.name == "engine")
FORMAT = next(f for f in dataclasses.fields(VocabConfig) if f.name == "format")
ARTIFACT_FORMATS = ("native", "word2vec-bin", "word2vec-text")
MAX_SOURCES = 1000


if TYPE_CHECKING:
    VocabSettings = BaseModel
    TrainSettings = BaseModel
else:  # the format is the request's own field, not a vocab setting
    VocabSettings = settings_model(VocabConfig, "VocabSettings", exclude=("format",))
    TrainSettings = settings_model(TrainConfig, "TrainSettings")

Source = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class JobRequest(BaseModel):
    """A training job: where the text is, and how to train on it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("", max_length=200, description="a label for the job")
    sources: list[Source] = Field(
        min_length=1, max_length=MAX_SOURCES,
        description="local paths under an allowed root, s3://, https:// or hdfs:// URLs; "
        "globs allowed",
    )
    format: Format = Field(cast(Format, FORMAT.default), description=FORMAT.metadata["help"])
    engine: EngineName = Field(cast(EngineName, ENGINE.default),
                               description=ENGINE.metadata["help"])
    vocab: VocabSettings = Field(default_factory=VocabSettings,
                                 description="tokenization and vocabulary settings")
    train: TrainSettings = Field(default_factory=TrainSettings,
                                 description="training settings")


class FieldError(BaseModel):
    field: str = Field(description="the request field, dotted: train.dim, sources.0, offset")
    message: str


class ErrorOut(BaseModel):
    """Every error the API returns: one sentence, and for a 422 the fields at fault."""

    detail: str = Field(description="what went wrong, in one sentence")
    errors: list[FieldError] | None = Field(
        None, description="on 422, every field that was refused")


ERROR_TEXT = {
    400: "the request cannot be answered as asked",
    401: "no bearer token, or an unknown one",
    403: "a source this server refuses to read",
    404: "no such job (or another token's), or a word not in the vocabulary",
    409: "the job is not in a state that allows this",
    410: "the job's model is no longer available",
    413: "the request body is too large",
    422: "a parameter or setting is invalid",
    429: "this token is at one of its quotas (queued and running jobs, stored jobs, stored "
         "bytes); the detail says which and how to make room",
    503: "the server is busy listing other requests' sources; try again shortly",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI `responses` entry for a route's error codes, all with ErrorOut."""
    return {code: {"model": ErrorOut, "description": ERROR_TEXT[code]} for code in codes}


class InvalidSetting(Distw2vError):
    """A setting the dataclass refused; `loc` names the field."""

    def __init__(self, loc: tuple[str, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def to_configs(request: JobRequest) -> tuple[VocabConfig, TrainConfig]:
    """Build the config dataclasses, turning their one-sentence errors into InvalidSetting."""
    built: list[Any] = []
    for section, cls in (("vocab", VocabConfig), ("train", TrainConfig)):
        values = getattr(request, section).model_dump()
        if section == "vocab":
            values["format"] = request.format
        try:
            built.append(cls(**values))
        except Distw2vError as exc:
            first = str(exc).split(" ", 1)[0]
            loc = (("body", "format") if first == "format" else
                   ("body", section, first) if first in values else ("body", section))
            raise InvalidSetting(loc, str(exc)) from None
    return built[0], built[1]


class JobOut(BaseModel):
    id: str
    name: str
    state: State
    engine: str
    format: str
    sources: list[str]
    vocab: dict[str, Any]
    train: dict[str, Any]
    created_at: str
    started_at: str | None
    finished_at: str | None
    stage: str | None = Field(description="vocabulary, encoding, training, evaluating, saving")
    progress: float = Field(description="fraction of the whole job done, 0 to 1")
    words_per_second: float | None
    eta_seconds: float | None
    epoch: int | None
    epochs: int
    summary: dict[str, Any] | None
    evaluation: dict[str, Any] | None = Field(
        description="figures on the server's evaluation files, when it has any"
    )
    error: str | None
    attempts: int
    links: dict[str, str]


class JobList(BaseModel):
    jobs: list[JobOut]
    total: int
    limit: int
    offset: int


def _iso(stamp: float | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, tz=timezone.utc).isoformat(timespec="milliseconds")


def job_out(job: Job) -> JobOut:
    base = f"/v1/jobs/{job.id}"
    links = {"self": base}
    if job.state == "succeeded":
        links.update({fmt: f"{base}/artifacts/{fmt}" for fmt in ARTIFACT_FORMATS})
        links["similar"] = f"/v1/models/{job.id}/similar"
    summary = {k: v for k, v in (job.summary or {}).items() if k != "location"} or None
    return JobOut(
        id=job.id, name=job.name, state=job.state,  # type: ignore[arg-type]
        engine=job.engine, format=job.format, sources=job.spec["sources"],
        vocab=job.spec["vocab"], train=job.spec["train"], created_at=_iso(job.created_at) or "",
        started_at=_iso(job.started_at), finished_at=_iso(job.finished_at), stage=job.stage,
        progress=round(job.progress, 4),
        words_per_second=None if job.words_per_second is None else round(job.words_per_second),
        eta_seconds=None if job.eta_seconds is None else round(job.eta_seconds, 1),
        epoch=job.epoch, epochs=job.epochs, summary=summary, evaluation=job.evaluation,
        error=job.error, attempts=job.attempts, links=links,
    )

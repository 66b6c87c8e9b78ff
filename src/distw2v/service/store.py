"""The job store: one SQL table, the single source of truth about every job.

SQLite (a file, WAL mode, busy timeout) by default, PostgreSQL by URL. Every write is one
conditional statement in its own transaction (`UPDATE … WHERE state = …`), so the API thread,
the runner and the progress readers never overwrite each other's decisions: a job that was
cancelled stays cancelled even if a late progress message arrives.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Float,
    Integer,
    String,
    Text,
    and_,
    case,
    create_engine,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from ..errors import Distw2vError
from .states import (  # noqa: F401  (the store's names for them)
    ACTIVE,
    CANCELLED,
    FAILED,
    FINISHED,
    QUEUED,
    RUNNING,
    STATES,
    SUCCEEDED,
    State,
)

SERVER_DIED = (
    "the server stopped while this job was running; resubmit it with "
    "POST /v1/jobs/{id}/retry."
)


class QuotaError(Distw2vError):
    """A token is at one of its quotas (active jobs, stored jobs, stored bytes)."""


# how a token makes room, in every quota's message
FREE_SPACE = ("delete finished jobs you no longer need (POST /v1/jobs/ID/delete, or "
              "`distw2v delete ID`) to make room")


class _Base(DeclarativeBase):
    pass


class JobRow(_Base):
    __tablename__ = "distw2v_jobs"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16), index=True)
    engine: Mapped[str] = mapped_column(String(16))
    format: Mapped[str] = mapped_column(String(16))
    spec: Mapped[str] = mapped_column(Text)  # JSON: sources, vocab and train settings
    created_at: Mapped[float] = mapped_column(Float)
    queued_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    stage: Mapped[str | None] = mapped_column(String(32), nullable=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    words_per_second: Mapped[float | None] = mapped_column(Float, nullable=True)
    eta_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    epoch: Mapped[int | None] = mapped_column(Integer, nullable=True)
    epochs: Mapped[int] = mapped_column(Integer)
    summary: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON
    evaluation: Mapped[str | None] = mapped_column(Text, nullable=True)  # JSON
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=1)


@dataclass(frozen=True)
class Job:
    """A snapshot of one job row, detached from the database."""

    id: str
    owner: str
    name: str
    state: str
    engine: str
    format: str
    spec: dict[str, Any]
    created_at: float
    queued_at: float
    started_at: float | None
    finished_at: float | None
    stage: str | None
    progress: float
    words_per_second: float | None
    eta_seconds: float | None
    epoch: int | None
    epochs: int
    summary: dict[str, Any] | None
    evaluation: dict[str, Any] | None
    error: str | None
    attempts: int

    @classmethod
    def of(cls, row: JobRow) -> Job:
        return cls(
            id=row.id, owner=row.owner, name=row.name, state=row.state, engine=row.engine,
            format=row.format, spec=json.loads(row.spec), created_at=row.created_at,
            queued_at=row.queued_at, started_at=row.started_at, finished_at=row.finished_at,
            stage=row.stage, progress=row.progress, words_per_second=row.words_per_second,
            eta_seconds=row.eta_seconds, epoch=row.epoch, epochs=row.epochs,
            summary=_loads(row.summary), evaluation=_loads(row.evaluation), error=row.error,
            attempts=row.attempts,
        )


def _loads(text: str | None) -> dict[str, Any] | None:
    return None if text is None else json.loads(text)


def normalize_url(url: str) -> str:
    """postgresql:// means psycopg 3 (the driver the service extra installs)."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(engine, "connect", _sqlite_pragmas)
        elif url.startswith("postgresql"):
            engine = create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        else:
            raise Distw2vError(
                f"unsupported job store URL {url.split(':', 1)[0]!r}; use sqlite:/// or "
                "postgresql://."
            )
    except (ArgumentError, ImportError) as exc:
        raise Distw2vError(f"the job store URL is not usable: {exc}.") from None
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class JobStore:
    """Create, read and move jobs between states; every method is thread-safe."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        # counting an owner's active jobs and adding one is one step for this server
        self._quota_lock = threading.Lock()
        try:
            _Base.metadata.create_all(self.engine)
        except OperationalError as exc:
            raise Distw2vError(
                f"cannot open the job store: {str(exc.orig).strip() or exc}."
            ) from None

    def close(self) -> None:
        self.engine.dispose()

    # ---- reads --------------------------------------------------------------------------

    def get(self, job_id: str, owner: str | None = None) -> Job | None:
        with Session(self.engine) as session:
            query = select(JobRow).where(JobRow.id == job_id)
            if owner is not None:
                query = query.where(JobRow.owner == owner)
            row = session.scalars(query).first()
            return None if row is None else Job.of(row)

    def list_jobs(
        self, owner: str | None, state: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Job], int]:
        """Jobs newest first, and how many match in all."""
        with Session(self.engine) as session:
            query = select(JobRow)
            count = select(func.count()).select_from(JobRow)
            if owner is not None:
                query = query.where(JobRow.owner == owner)
                count = count.where(JobRow.owner == owner)
            if state is not None:
                query = query.where(JobRow.state == state)
                count = count.where(JobRow.state == state)
            rows = session.scalars(
                query.order_by(JobRow.seq.desc()).limit(limit).offset(offset)
            ).all()
            return [Job.of(r) for r in rows], int(session.scalar(count) or 0)

    def counts(self) -> dict[str, int]:
        with Session(self.engine) as session:
            rows = session.execute(
                select(JobRow.state, func.count()).group_by(JobRow.state)
            ).all()
        found = {state: int(n) for state, n in rows}
        return {state: found.get(state, 0) for state in STATES}

    def active_count(self, owner: str) -> int:
        """How many queued or running jobs the owner has."""
        return self._count(owner, ACTIVE)

    def _count(self, owner: str, states: Collection[str] = STATES) -> int:
        with Session(self.engine) as session:
            return int(session.scalar(
                select(func.count()).select_from(JobRow)
                .where(JobRow.owner == owner, JobRow.state.in_(list(states)))
            ) or 0)

    def _check_quota(self, owner: str, max_active: int | None,
                     max_stored: int | None = None) -> None:
        if max_active is not None and self.active_count(owner) >= max_active:
            raise QuotaError(
                f"you already have {max_active} queued or running jobs, the most this "
                "server allows (--max-jobs-per-token); wait for one to end or cancel one."
            )
        if max_stored is not None and self._count(owner) >= max_stored:
            raise QuotaError(
                f"you already keep {max_stored} jobs, the most this server allows "
                f"(--max-stored-jobs-per-token); {FREE_SPACE}."
            )

    def model_bytes(self, owner: str) -> dict[str, int]:
        """The owner's succeeded jobs and the bytes of each one's model (0 if not known)."""
        with Session(self.engine) as session:
            rows = session.execute(
                select(JobRow.id, JobRow.summary)
                .where(JobRow.owner == owner, JobRow.state == SUCCEEDED)
            ).all()
        return {job_id: int((_loads(summary) or {}).get("model_bytes", 0))
                for job_id, summary in rows}

    def expired(self, before: float) -> list[str]:
        """Ids of finished jobs that ended before the given time."""
        with Session(self.engine) as session:
            return list(session.scalars(
                select(JobRow.id).where(JobRow.state.in_(list(FINISHED)),
                                        JobRow.finished_at < before)
            ))

    def delete(self, job_id: str, before: float | None = None) -> bool:
        """Remove a finished job (that ended before `before`, if given); False if it is not
        finished (retried since, say)."""
        query = delete(JobRow).where(JobRow.id == job_id, JobRow.state.in_(list(FINISHED)))
        if before is not None:
            query = query.where(JobRow.finished_at < before)
        with self.engine.begin() as conn:
            return bool(conn.execute(query).rowcount)

    def ids_in(self, states: Iterable[str]) -> list[str]:
        with Session(self.engine) as session:
            return list(session.scalars(select(JobRow.id).where(JobRow.state.in_(list(states)))))

    # ---- writes: each one conditional statement ---------------------------------------

    def create(
        self, *, owner: str, name: str, engine: str, format: str, spec: dict[str, Any],
        epochs: int, max_active: int | None = None, max_stored: int | None = None,
    ) -> Job:
        """Queue a new job; QuotaError when the owner already has `max_active` active jobs
        or `max_stored` jobs in all."""
        with self._quota_lock:
            self._check_quota(owner, max_active, max_stored)
            return self._create(owner=owner, name=name, engine=engine, format=format,
                                spec=spec, epochs=epochs)

    def _create(
        self, *, owner: str, name: str, engine: str, format: str, spec: dict[str, Any],
        epochs: int,
    ) -> Job:
        now = time.time()
        row = JobRow(
            id=secrets.token_hex(8), owner=owner, name=name, state=QUEUED, engine=engine,
            format=format, spec=json.dumps(spec, sort_keys=True), created_at=now,
            queued_at=now, progress=0.0, epochs=epochs, attempts=1,
        )
        with Session(self.engine) as session, session.begin():
            session.add(row)
            session.flush()
            job = Job.of(row)
        return job

    def _update(self, job_id: str, states: Iterable[str], attempt: int | None = None,
                **values: Any) -> bool:
        """Change a job in one of `states` (and, given `attempt`, still on that attempt)."""
        query = update(JobRow).where(JobRow.id == job_id, JobRow.state.in_(list(states)))
        if attempt is not None:
            query = query.where(JobRow.attempts == attempt)
        with self.engine.begin() as conn:
            result = conn.execute(query.values(**values))
            return bool(result.rowcount)

    def claim_next(self, exclude: Collection[str] = ()) -> Job | None:
        """Move the next queued job to running and return it (None when none waits).

        Fair across owners, so one token's long queue cannot starve another's job: the
        owner with the fewest running jobs goes first, then the one whose last job started
        longest ago (or never), which makes one free slot go round-robin; within an owner,
        the oldest job. Jobs in `exclude` (whose previous attempt's process is still
        exiting) wait.
        """
        waiting = JobRow.state == QUEUED
        if exclude:
            waiting = and_(waiting, JobRow.id.not_in(list(exclude)))
        owner_order = (
            func.sum(case((JobRow.state == RUNNING, 1), else_=0)),
            func.coalesce(func.max(JobRow.started_at), 0.0),  # never started: first
            func.min(case((waiting, JobRow.queued_at))),
            JobRow.owner,
        )
        while True:
            with Session(self.engine) as session:
                owner = session.scalars(
                    select(JobRow.owner).group_by(JobRow.owner)
                    .having(func.sum(case((waiting, 1), else_=0)) > 0)
                    .order_by(*owner_order).limit(1)
                ).first()
                if owner is None:
                    return None
                job_id = session.scalars(
                    select(JobRow.id).where(waiting, JobRow.owner == owner)
                    .order_by(JobRow.queued_at, JobRow.seq).limit(1)
                ).first()
            if job_id is not None and self._update(
                job_id, [QUEUED], state=RUNNING, started_at=time.time(), stage="starting"
            ):
                return self.get(job_id)
            # cancelled between the read and the update: look again

    def report(self, job_id: str, attempt: int | None = None, **values: Any) -> bool:
        """Progress from a running job; ignored once the job (or that attempt) has left
        `running`."""
        return self._update(job_id, [RUNNING], attempt=attempt, **values)

    def finish(
        self, job_id: str, state: str, *, error: str | None = None,
        summary: dict[str, Any] | None = None, evaluation: dict[str, Any] | None = None,
        attempt: int | None = None,
    ) -> bool:
        values: dict[str, Any] = {"state": state, "finished_at": time.time(), "error": error,
                                  "eta_seconds": None}
        if state == SUCCEEDED:
            values.update(progress=1.0, stage="done")
        if summary is not None:
            values["summary"] = json.dumps(summary, sort_keys=True)
        if evaluation is not None:
            values["evaluation"] = json.dumps(evaluation, sort_keys=True)
        return self._update(job_id, [RUNNING], attempt=attempt, **values)

    def cancel(self, job_id: str) -> bool:
        return self._update(job_id, ACTIVE, state=CANCELLED, finished_at=time.time(),
                            eta_seconds=None, error=None)

    def retry(self, job_id: str, attempts: int, owner: str | None = None,
              max_active: int | None = None) -> bool:
        """Queue a failed or cancelled job again (QuotaError beyond the owner's quota)."""
        with self._quota_lock:
            if owner is not None:
                self._check_quota(owner, max_active)
            return self._retry(job_id, attempts)

    def _retry(self, job_id: str, attempts: int) -> bool:
        now = time.time()
        return self._update(
            job_id, [FAILED, CANCELLED], state=QUEUED, queued_at=now, started_at=None,
            finished_at=None, stage=None, progress=0.0, words_per_second=None,
            eta_seconds=None, epoch=None, summary=None, evaluation=None, error=None,
            attempts=attempts + 1,
        )

    def recover(self) -> list[str]:
        """Mark jobs left `running` by a server that died as failed; returns their ids."""
        lost = self.ids_in([RUNNING])
        for job_id in lost:
            self._update(job_id, [RUNNING], state=FAILED, finished_at=time.time(),
                         eta_seconds=None, error=SERVER_DIED.replace("{id}", job_id))
        return lost

"""The job runner: at most N training processes at once, the rest queued (taken fairly across
tokens, see JobStore.claim_next).

Each job runs in its own process (`python -m distw2v.service.jobproc`) in its own process
group, so a crash, an out-of-memory kill or a numba segfault cannot take the server down, and
cancelling stops the whole group: SIGTERM, then SIGKILL after a grace period. A reader thread
per attempt turns the process's JSON-lines messages into store updates; the store decides
every state change (a cancelled job stays cancelled whatever the process says afterwards).

An attempt keeps its slot until its process has been reaped and its reader has recorded the
end and removed the scratch directory; only then may the job's next attempt start (a retry
of a job whose cancelled process is still exiting waits in the queue). So no two processes
of one job ever run at once, and every process counts against --max-concurrent-jobs.

The loop also stops jobs that run past --job-time-limit and deletes finished jobs older than
--retention-days, by `clock` (wall time; a test may set it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import to_dict
from .artifacts import Artifacts
from .history import ProgressHistory
from .settings import ServiceConfig
from .store import FAILED, SUCCEEDED, Job, JobStore

log = logging.getLogger("distw2v.service")

SERVER_STOPPED = (
    "the server was stopped while this job was running; resubmit it with "
    "POST /v1/jobs/{id}/retry."
)
_PROGRESS_FIELDS = ("stage", "progress", "words_per_second", "eta_seconds", "epoch")
PURGE_INTERVAL = 60.0  # seconds (by the runner's clock) between retention sweeps
_SECRETS = ("DISTW2V_TOKEN",)  # the server's token is no business of a training process


@dataclass
class _Running:
    job: Job
    process: subprocess.Popen[str]
    started: float  # by the runner's clock
    reader: threading.Thread | None = None
    cancelled: bool = False
    stopping: bool = False  # the server is shutting down
    timed_out: bool = False  # ran past the job time limit
    outcome: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, int]:
        return self.job.id, self.job.attempts


class Runner:
    """Starts queued jobs as processes, feeds their progress to the store, cancels them."""

    def __init__(self, config: ServiceConfig, store: JobStore, artifacts: Artifacts,
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.store = store
        self.artifacts = artifacts
        self.limit = config.concurrency
        self.data = config.data_path
        self.clock = clock
        self.time_limit = config.time_limit_seconds
        # told of every job that is deleted (the model cache forgets it)
        self.forget: Callable[[str], None] = lambda _job_id: None
        self.history = ProgressHistory(self.data / "logs")  # for the web page's plot
        self._running: dict[tuple[str, int], _Running] = {}  # per attempt
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_purge = float("-inf")
        self._passes = 0  # full passes of the loop, for wait_for_pass
        self._passed = threading.Condition()

    # ---- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        for name in ("jobs", "logs", "cache"):
            (self.data / name).mkdir(parents=True, exist_ok=True)
        for job_id in self.store.recover():
            log.warning("job %s was left running by a server that stopped; marked failed",
                        job_id)
            shutil.rmtree(self.data / "jobs" / job_id, ignore_errors=True)
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="distw2v-runner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop starting jobs, end the running ones and mark them failed (retryable)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._lock:
            running = list(self._running.values())
            for handle in running:
                handle.stopping = True
                self._signal(handle, signal.SIGTERM)
        for handle in running:
            self._wait_or_kill(handle)
            if handle.reader is not None:
                handle.reader.join(timeout=10)

    def wake(self) -> None:
        self._wake.set()

    def running_ids(self) -> list[str]:
        """The jobs with a live (or not yet reaped) training process."""
        with self._lock:
            return [handle.job.id for handle in self._running.values()]

    # ---- cancelling -----------------------------------------------------------------------

    def cancel(self, job_id: str) -> None:
        """Stop a running job's process (the store already says cancelled)."""
        self._stop_process(job_id, lambda handle: setattr(handle, "cancelled", True))

    def _stop_process(self, job_id: str, mark: Callable[[_Running], None]) -> None:
        with self._lock:
            handles = [h for h in self._running.values()
                       if h.job.id == job_id and not (h.cancelled or h.timed_out)]
            for handle in handles:
                mark(handle)
                self._signal(handle, signal.SIGTERM)
        for handle in handles:
            threading.Thread(target=self._wait_or_kill, args=(handle,), daemon=True).start()

    def _signal(self, handle: _Running, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(handle.process.pid, sig)

    def _wait_or_kill(self, handle: _Running) -> None:
        try:
            handle.process.wait(timeout=self.config.cancel_grace_seconds)
        except subprocess.TimeoutExpired:
            log.warning("job %s did not stop after SIGTERM; killing it", handle.job.id)
            self._signal(handle, signal.SIGKILL)
            handle.process.wait()

    # ---- the loop -------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            for step in (self._enforce_time_limit, self._purge_expired, self._start_ready):
                try:
                    step()
                except Exception:  # the store may be briefly unreachable: try again
                    log.exception("the runner's %s failed", step.__name__.strip("_"))
            with self._passed:
                self._passes += 1
                self._passed.notify_all()
            self._wake.wait(timeout=1.0)
            self._wake.clear()

    def wait_for_pass(self, timeout: float = 30.0) -> bool:
        """Wake the loop and wait until a whole pass of it has begun after this call (so it
        has seen any change made before it); False on timeout."""
        with self._passed:
            target = self._passes + 2  # the pass under way may have begun before the call
            self.wake()
            return self._passed.wait_for(lambda: self._passes >= target, timeout=timeout)

    def _start_ready(self) -> None:
        with self._lock:
            while len(self._running) < self.limit and not self._stop.is_set():
                # a job whose last attempt's process is still exiting waits for its reaping
                busy = {handle.job.id for handle in self._running.values()}
                job = self.store.claim_next(exclude=busy)
                if job is None:
                    return
                self._spawn(job)

    def _enforce_time_limit(self) -> None:
        if self.time_limit is None:
            return
        now = self.clock()
        with self._lock:
            late = [h.job.id for h in self._running.values()
                    if now - h.started > self.time_limit and not (h.cancelled or h.timed_out)]
        for job_id in late:
            log.warning("job %s ran past the time limit; stopping it", job_id)
            self._stop_process(job_id, lambda handle: setattr(handle, "timed_out", True))

    def _purge_expired(self) -> None:
        days = self.config.retention_days
        now = self.clock()
        if not days or now - self._last_purge < PURGE_INTERVAL:  # 0 or None: kept
            return
        self._last_purge = now
        cutoff = now - days * 86400.0
        for job_id in self.store.expired(cutoff):
            if self.delete(job_id, before=cutoff):
                log.info("job %s deleted: it ended more than %g days ago", job_id, days)

    def delete(self, job_id: str, before: float | None = None) -> bool:
        """Delete a finished job (that ended before `before`, if given) with its model,
        exports, logs and checkpoints; False if it is not finished or its process is still
        being reaped."""
        with self._lock:  # no attempt of it starts while it is checked and deleted
            busy = any(handle.job.id == job_id for handle in self._running.values())
            if busy or not self.store.delete(job_id, before):
                return False
        self.forget(job_id)
        self.artifacts.delete(job_id)
        self._remove_checkpoints(job_id)
        shutil.rmtree(self.data / "jobs" / job_id, ignore_errors=True)
        for path in (self.data / "logs" / f"{job_id}.log", self._events_path(job_id)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        self.history.delete(job_id)
        return True

    def _events_path(self, job_id: str) -> Path:
        """What the job's owner may read of its log: attempts and the trainer's messages."""
        return self.data / "logs" / f"{job_id}.events.log"

    def _remove_checkpoints(self, job_id: str) -> None:
        base = self.config.run.checkpoint_dir
        if not base:
            return
        import fsspec.core

        url = f"{base.rstrip('/')}/{job_id}"
        try:
            fs, path = fsspec.core.url_to_fs(url)
            if fs.exists(path):
                fs.rm(path, recursive=True)
        except OSError as exc:
            log.warning("job %s: could not remove its checkpoints in %s: %s", job_id, url, exc)

    def _spec(self, job: Job) -> dict[str, Any]:
        scratch = self.data / "jobs" / job.id
        spark, run = to_dict(self.config.spark), to_dict(self.config.run)
        for config, key in ((spark, "work_dir"), (run, "checkpoint_dir")):
            if config[key]:  # one sub-directory per job (a retry's too, so it resumes)
                config[key] = f"{config[key].rstrip('/')}/{job.id}"
        return {
            "job_id": job.id,
            "sources": job.spec["sources"],
            "format": job.format,
            "engine": job.engine,
            "vocab": job.spec["vocab"],
            "train": job.spec["train"],
            "spark": spark,
            "run": run,
            "roots": [str(r) for r in self.config.roots()],
            "allow_private_https": self.config.allow_private_https,
            "source_policy": self.config.source_policy().to_json(),
            "s3_endpoint_url": self.config.s3_endpoint_url,
            "scratch_dir": str(scratch),
            "artifacts_url": self.artifacts.url,
            "cache_dir": str(self.artifacts.cache_dir),
            "eval_analogies": self.config.eval_analogies,
            "eval_similarity": self.config.eval_similarity,
        }

    def _spawn(self, job: Job) -> None:
        scratch = self.data / "jobs" / job.id
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        log_path = self.data / "logs" / f"{job.id}.log"
        env = {k: v for k, v in os.environ.items() if k not in _SECRETS}
        env.setdefault("PYTHONUNBUFFERED", "1")
        try:
            header = f"--- attempt {job.attempts} at {time.ctime()} ---\n"
            with open(self._events_path(job.id), "a", encoding="utf-8") as events:
                events.write(header)
            with open(log_path, "a", encoding="utf-8") as log_file:
                log_file.write(header)
                log_file.flush()
                process = subprocess.Popen(
                    [sys.executable, "-m", "distw2v.service.jobproc", "--job", job.id],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file,
                    text=True, encoding="utf-8", start_new_session=True, env=env,
                    cwd=scratch,
                )
        except OSError as exc:
            log.error("job %s could not be started: %s", job.id, exc)
            self.store.finish(job.id, FAILED, attempt=job.attempts,
                              error=f"the training process could not be started: {exc}.")
            shutil.rmtree(scratch, ignore_errors=True)
            return
        handle = _Running(job, process, started=self.clock())
        self._running[handle.key] = handle
        self.history.begin(job.id, job.attempts, job.spec.get("train", {}))
        handle.reader = threading.Thread(target=self._read, args=(handle,),
                                         name=f"distw2v-job-{job.id}-{job.attempts}",
                                         daemon=True)
        handle.reader.start()
        assert process.stdin is not None  # Popen with stdin=PIPE
        try:
            process.stdin.write(json.dumps(self._spec(job)))
            process.stdin.close()
        except OSError:  # the process died at once; the reader reports it
            pass
        log.info("job %s attempt %d started (pid %d)", job.id, job.attempts, process.pid)

    # ---- per-attempt reader ---------------------------------------------------------------

    def _read(self, handle: _Running) -> None:
        stdout = handle.process.stdout
        assert stdout is not None  # Popen with stdout=PIPE
        try:
            for line in stdout:
                self._handle_message(handle, line)
        except (OSError, ValueError):
            pass
        code = handle.process.wait()
        try:
            self._finish(handle, code)
        except Exception:
            log.exception("job %s: could not record its end", handle.job.id)
        finally:
            self.history.end(*handle.key)
            with self._lock:  # only now may the job's next attempt start
                self._running.pop(handle.key, None)
            self.wake()

    def _handle_message(self, handle: _Running, line: str) -> None:
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            return
        if not isinstance(message, dict):
            return
        kind = message.get("type")
        if kind == "progress":
            values = {k: message[k] for k in _PROGRESS_FIELDS if k in message}
            if values and not handle.cancelled:
                self.store.report(handle.job.id, attempt=handle.job.attempts, **values)
                loss = message.get("loss")  # the history's alone: the store has no column
                if isinstance(loss, float) and math.isfinite(loss):
                    values["loss"] = loss
                self.history.record(handle.job.id, handle.job.attempts, values)
        elif kind == "log":
            log.info("job %s: %s", handle.job.id, message.get("message"))
            # and to the job's events, which its owner reads as the log tail (the process's
            # stderr, with tracebacks and server paths, stays in the server's logs/JOB.log)
            text = " ".join(str(message.get("message")).split())
            with contextlib.suppress(OSError), open(
                self._events_path(handle.job.id), "a", encoding="utf-8"
            ) as events:
                events.write(f"{text}\n")
        elif kind in ("done", "error"):
            handle.outcome = message

    def _finish(self, handle: _Running, code: int) -> None:
        job_id, attempt = handle.key
        shutil.rmtree(self.data / "jobs" / job_id, ignore_errors=True)
        outcome = handle.outcome
        if handle.cancelled:
            self.artifacts.delete(job_id)
            log.info("job %s attempt %d cancelled", job_id, attempt)
            return
        if handle.stopping:
            self.store.finish(job_id, FAILED, attempt=attempt,
                              error=SERVER_STOPPED.replace("{id}", job_id))
            self.artifacts.delete(job_id)
            return
        if handle.timed_out:
            error = (f"the job ran longer than this server's time limit of "
                     f"{self.config.job_time_limit} (--job-time-limit) and was stopped.")
        elif outcome.get("type") == "done" and code == 0:
            if self.store.finish(job_id, SUCCEEDED, attempt=attempt,
                                 summary=outcome.get("summary"),
                                 evaluation=outcome.get("evaluation")):
                log.info("job %s attempt %d succeeded", job_id, attempt)
            else:  # cancelled at the last moment: the store's word stands
                self.artifacts.delete(job_id)
                log.info("job %s attempt %d cancelled (it had just finished)", job_id, attempt)
            return
        elif outcome.get("type") == "error":
            error = str(outcome.get("message") or "the job failed.")
        elif code < 0:
            error = (f"the training process was killed by signal {-code} "
                     f"({_signal_name(-code)}); it may have run out of memory.")
        else:
            error = f"the training process ended unexpectedly (exit status {code})."
        recorded = self.store.finish(job_id, FAILED, attempt=attempt, error=error)
        self.artifacts.delete(job_id)
        if recorded:
            log.info("job %s attempt %d failed: %s", job_id, attempt, error)
        else:
            log.info("job %s attempt %d cancelled (it had just failed)", job_id, attempt)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown"

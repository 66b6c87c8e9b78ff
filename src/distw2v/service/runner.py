"""The job runner: at most N training processes at once, the rest queued in order.

Each job runs in its own process (`python -m distw2v.service.jobproc`) in its own process
group, so a crash, an out-of-memory kill or a numba segfault cannot take the server down, and
cancelling stops the whole group: SIGTERM, then SIGKILL after a grace period. A reader thread
per job turns the process's JSON-lines messages into store updates; the store decides every
state change (a cancelled job stays cancelled whatever the process says afterwards).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from ..config import to_dict
from .artifacts import Artifacts
from .settings import ServiceConfig
from .store import FAILED, SUCCEEDED, Job, JobStore

log = logging.getLogger("distw2v.service")

SERVER_STOPPED = (
    "the server was stopped while this job was running; resubmit it with "
    "POST /v1/jobs/{id}/retry."
)
_PROGRESS_FIELDS = ("stage", "progress", "words_per_second", "eta_seconds", "epoch")


@dataclass
class _Running:
    job: Job
    process: subprocess.Popen[str]
    reader: threading.Thread | None = None
    cancelled: bool = False
    stopping: bool = False  # the server is shutting down
    outcome: dict[str, Any] = field(default_factory=dict)


class Runner:
    """Starts queued jobs as processes, feeds their progress to the store, cancels them."""

    def __init__(self, config: ServiceConfig, store: JobStore, artifacts: Artifacts) -> None:
        self.config = config
        self.store = store
        self.artifacts = artifacts
        self.limit = config.concurrency
        self.data = config.data_path
        self._running: dict[str, _Running] = {}
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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
        with self._lock:
            return list(self._running)

    # ---- cancelling -----------------------------------------------------------------------

    def cancel(self, job_id: str) -> None:
        """Stop a running job's process (the store already says cancelled)."""
        with self._lock:
            handle = self._running.get(job_id)
            if handle is None:
                return
            handle.cancelled = True
            self._signal(handle, signal.SIGTERM)
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
            try:
                self._start_ready()
            except Exception:  # the store may be briefly unreachable: try again
                log.exception("the runner could not start queued jobs")
            self._wake.wait(timeout=1.0)
            self._wake.clear()

    def _start_ready(self) -> None:
        with self._lock:
            while len(self._running) < self.limit and not self._stop.is_set():
                job = self.store.claim_next()
                if job is None:
                    return
                self._spawn(job)

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
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        try:
            with open(log_path, "a", encoding="utf-8") as log_file:
                log_file.write(f"--- attempt {job.attempts} at {time.ctime()} ---\n")
                log_file.flush()
                process = subprocess.Popen(
                    [sys.executable, "-m", "distw2v.service.jobproc", "--job", job.id],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log_file,
                    text=True, encoding="utf-8", start_new_session=True, env=env,
                    cwd=scratch,
                )
        except OSError as exc:
            log.error("job %s could not be started: %s", job.id, exc)
            self.store.finish(job.id, FAILED,
                              error=f"the training process could not be started: {exc}.")
            return
        handle = _Running(job, process)
        self._running[job.id] = handle
        handle.reader = threading.Thread(target=self._read, args=(handle,),
                                         name=f"distw2v-job-{job.id}", daemon=True)
        handle.reader.start()
        assert process.stdin is not None  # Popen with stdin=PIPE
        try:
            process.stdin.write(json.dumps(self._spec(job)))
            process.stdin.close()
        except OSError:  # the process died at once; the reader reports it
            pass
        log.info("job %s started (pid %d)", job.id, process.pid)

    # ---- per-job reader -------------------------------------------------------------------

    def _read(self, handle: _Running) -> None:
        job_id = handle.job.id
        stdout = handle.process.stdout
        assert stdout is not None  # Popen with stdout=PIPE
        try:
            for line in stdout:
                self._handle_message(handle, line)
        except (OSError, ValueError):
            pass
        code = handle.process.wait()
        with self._lock:
            self._running.pop(job_id, None)
        try:
            self._finish(handle, code)
        except Exception:
            log.exception("job %s: could not record its end", job_id)
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
                self.store.report(handle.job.id, **values)
        elif kind == "log":
            log.info("job %s: %s", handle.job.id, message.get("message"))
        elif kind in ("done", "error"):
            handle.outcome = message

    def _finish(self, handle: _Running, code: int) -> None:
        job_id = handle.job.id
        shutil.rmtree(self.data / "jobs" / job_id, ignore_errors=True)
        outcome = handle.outcome
        if handle.cancelled:
            self.artifacts.delete(job_id)
            log.info("job %s cancelled", job_id)
            return
        if handle.stopping:
            self.store.finish(job_id, FAILED, error=SERVER_STOPPED.replace("{id}", job_id))
            self.artifacts.delete(job_id)
            return
        if outcome.get("type") == "done" and code == 0:
            if not self.store.finish(job_id, SUCCEEDED, summary=outcome.get("summary"),
                                     evaluation=outcome.get("evaluation")):
                self.artifacts.delete(job_id)  # cancelled at the last moment
            log.info("job %s succeeded", job_id)
            return
        if outcome.get("type") == "error":
            error = str(outcome.get("message") or "the job failed.")
        elif code < 0:
            error = (f"the training process was killed by signal {-code} "
                     f"({_signal_name(-code)}); it may have run out of memory.")
        else:
            error = f"the training process ended unexpectedly (exit status {code})."
        self.store.finish(job_id, FAILED, error=error)
        self.artifacts.delete(job_id)
        log.info("job %s failed: %s", job_id, error)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown"

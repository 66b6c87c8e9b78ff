"""Parameter-server shards as long-running Spark tasks, so that Spark places them.

One Spark job of S tasks, each serving one shard over gRPC on its executor's host until the job
is cancelled. A task announces its address in a small file under the run's work directory
(which driver, executors and shards all reach already, for the word counts), with a MAC under
the run's secret; the driver reads the S files and ignores any without it. Training jobs run
on the remaining task slots. Spark offers tasks round-robin over executors, so with enough
executors every shard lands on a different one.

Losing a shard (its executor dies, Spark retries its task, or the job ends) is reported by
`lost()`; `restart()` cancels the job and starts a fresh set of shards for the driver to load
the last checkpoint into.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import fsspec

from ..errors import Distw2vError
from .session import executor_id, spark_failure
from .tls import split

START_SECONDS = 180.0  # executors may still be registering when the run starts
PARENT_POLL_SECONDS = 1.0
log = logging.getLogger(__name__)


def executor_host() -> str:
    """The address this executor is reached at: Spark's own setting, else the host's name."""
    return os.environ.get("SPARK_LOCAL_IP") or socket.gethostbyname(socket.gethostname())


def _mac(note: dict[str, Any], secret: str | None) -> str:
    body = json.dumps({k: v for k, v in note.items() if k != "mac"}, sort_keys=True)
    return hmac.new((split(secret)[0] or "").encode(), body.encode(), hashlib.sha256).hexdigest()


def signed(note: dict[str, Any], secret: str | None) -> dict[str, Any]:
    """An announcement with a MAC under the run's secret: the driver hands the secret only to
    an address a shard of this run announced, not to whoever wrote the file first."""
    return {**note, "mac": _mac(note, secret)}


def authentic(note: Any, secret: str | None, index: int) -> bool:
    return (isinstance(note, dict) and note.get("index") == index
            and isinstance(note.get("mac"), str)
            and hmac.compare_digest(note["mac"], _mac(note, secret)))


def _shard_task(rendezvous: str, secret: str | None, work_root: str,
                checkpoint_root: str | None, threads: int,
                bind: str | None) -> Callable[[int, Iterator[Any]], Iterator[int]]:
    def serve(index: int, _: Iterator[Any]) -> Iterator[int]:
        from pyspark import TaskContext

        from .server import start_server

        host = bind or executor_host()
        server, port, _service = start_server(host, 0, threads, secret=secret,
                                              work_root=work_root,
                                              checkpoint_root=checkpoint_root)
        context = TaskContext.get()
        attempt = context.attemptNumber() if context else 0
        note = signed({"address": f"{host}:{port}", "pid": os.getpid(),
                       "executor": executor_id(), "attempt": attempt, "index": index}, secret)
        fs, path = fsspec.core.url_to_fs(rendezvous)
        fs.makedirs(path, exist_ok=True)
        fs.pipe_file(f"{path}/shard-{index}.json.tmp-{attempt}", json.dumps(note).encode())
        fs.mv(f"{path}/shard-{index}.json.tmp-{attempt}", f"{path}/shard-{index}.json")
        # Serve until Spark kills this task (the driver cancels the job) or the executor that
        # started this worker goes away: then this process is re-parented, and must not live
        # on as a shard nobody owns.
        parent = os.getppid()
        try:
            while os.getppid() == parent:
                time.sleep(PARENT_POLL_SECONDS)
        finally:
            server.stop(grace=0)
        yield index

    return serve


class SparkShards:
    """The shards of one run as a Spark job; `addresses` once `start()` returns."""

    def __init__(self, sc: Any, shards: int, *, secret: str, work_root: str,
                 checkpoint_root: str | None = None, threads: int = 8,
                 host: str | None = None) -> None:
        self.sc = sc
        self.shards = shards
        self.secret: str | None = secret
        self.work_root = work_root.rstrip("/")
        self.checkpoint_root = checkpoint_root
        self.threads = threads
        self.host = host  # where shards listen; None: the address of each one's executor
        self.replaceable = True
        self.generation = 0
        self.addresses: list[str] = []
        self.placement: list[dict[str, Any]] = []  # each shard's announcement
        self._thread: threading.Thread | None = None
        self._outcome: dict[str, BaseException] = {}
        self._forged: set[int] = set()  # announcements refused so far (each logged once)

    @property
    def _group(self) -> str:
        return f"distw2v-shards-{id(self)}-{self.generation}"

    @property
    def _rendezvous(self) -> str:
        return f"{self.work_root}/shards-{self.generation}"

    def start(self) -> list[str]:
        self.generation += 1
        task = _shard_task(self._rendezvous, self.secret, self.work_root,
                           self.checkpoint_root, self.threads, self.host)
        group = self._group
        self._outcome = {}
        outcome = self._outcome

        def run() -> None:
            self.sc.setJobGroup(group, "distw2v parameter-server shards", True)
            try:
                self.sc.parallelize(range(self.shards), self.shards) \
                    .mapPartitionsWithIndex(task).collect()
                outcome["error"] = Distw2vError("the shard tasks returned")
            except BaseException as exc:  # the job is cancelled at the end of every run
                outcome["error"] = exc

        self._thread = threading.Thread(target=run, name="distw2v-shards", daemon=True)
        self._thread.start()
        self.placement = self._announcements()
        self.addresses = [note["address"] for note in self.placement]
        return self.addresses

    def _announcements(self) -> list[dict[str, Any]]:
        fs, path = fsspec.core.url_to_fs(self._rendezvous)
        deadline = time.monotonic() + START_SECONDS
        while True:
            notes = self._read(fs, path)
            if len(notes) == self.shards:
                return notes
            if self._thread is not None and not self._thread.is_alive():
                raise Distw2vError(f"the parameter-server shard tasks failed to start: "
                                   f"{_first_line(self._outcome.get('error'))}")
            if time.monotonic() > deadline:
                self.stop()
                raise Distw2vError(
                    f"Spark started {len(notes)} of {self.shards} parameter-server shard tasks "
                    f"within {START_SECONDS:.0f} s: the cluster needs at least "
                    f"{self.shards + 1} free task slots (one per shard, and some for training),"
                    " or use fewer --shards.")
            time.sleep(0.2)

    def _read(self, fs: Any, path: str) -> list[dict[str, Any]]:
        """The shards' announcements, in order, up to the first missing or forged one."""
        notes: list[dict[str, Any]] = []
        for index in range(self.shards):
            try:
                note = json.loads(fs.cat_file(f"{path}/shard-{index}.json"))
            except (FileNotFoundError, ValueError):
                return notes
            if not authentic(note, self.secret, index):
                if index not in self._forged:
                    self._forged.add(index)
                    log.warning("shard-%d.json in %s does not carry the run's MAC: ignored "
                                "(someone else wrote it); waiting for the shard's own",
                                index, path)
                return notes
            notes.append(note)
        return notes

    def lost(self) -> str | None:
        """Why a shard is gone, or None: the job ended, or Spark re-ran a shard's task (its
        replacement starts empty, so the run must go back to a checkpoint)."""
        if self._thread is None:
            return None
        if not self._thread.is_alive():
            return (f"the parameter-server shard tasks stopped: "
                    f"{_first_line(self._outcome.get('error'))}")
        fs, path = fsspec.core.url_to_fs(self._rendezvous)
        for index, (now, then) in enumerate(zip(self._read(fs, path), self.placement)):
            if now != then:
                return (f"parameter-server shard {index} at {then['address']} was lost "
                        f"(Spark restarted its task on executor {now['executor']}).")
        return None

    def restart(self) -> list[str]:
        self.stop()
        return self.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self.sc.cancelJobGroup(self._group)
        self._thread.join(60)
        self._thread = None
        try:
            fs, path = fsspec.core.url_to_fs(self._rendezvous)
            fs.rm(path, recursive=True)
        except OSError:
            pass


def _first_line(exc: BaseException | None) -> str:
    return str(spark_failure(exc)) if exc is not None else "unknown reason"

"""The Spark engine's training loop: epochs of Spark jobs against the shards, checkpoints within
and after each epoch, and recovery from a lost shard.

Each epoch is one Spark job over the encoded partitions. A task that finishes a partition (its
last update applied) leaves a marker `<work>/done/epoch-<k>/part-<i>` holding the partition's
words. A checkpoint lists the markers first and then has every shard save its columns, so the
partitions it records are in the saved columns (a partition still under way is in them only in
part, and is trained again after a resume). A resumed epoch skips the recorded partitions and
sets the global word count, and so the learning rate, to the words they and the earlier epochs
hold.

When a shard is lost (`ShardUnavailableError`) and the run keeps checkpoints, the loop cancels
the training job, has the shard group start fresh shards, loads the last checkpoint into them
(or starts over when none was saved yet) and goes on, up to `max_recoveries` times.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import fsspec
import numpy as np

from ..checkpoints import Position, RunCheckpoints
from ..memory import process_peak_rss_mb
from ..progress import Phase
from .client import PSClient, ShardUnavailableError
from .session import executor_id, spark_failure
from .worker import ColumnsTrainer, WorkerSettings, WorkerStats

WATCH_SECONDS = 0.5  # how often the driver looks at the shards and reports progress
FIGURES = ("words", "pairs", "batches", "bytes_sent", "bytes_received", "index_bytes",
           "bitmap_bytes")


class ShardGroup(Protocol):
    """Shards a run trains against: started by the driver, by Spark, or by an operator."""

    addresses: list[str]
    secret: str | None
    replaceable: bool  # whether `restart` can bring up new shards

    def lost(self) -> str | None: ...

    def restart(self) -> list[str]: ...


_KEEP_CACHE: dict[str, np.ndarray] = {}


def _keep(uri: str) -> np.ndarray:
    if uri not in _KEEP_CACHE:
        _KEEP_CACHE.clear()
        if "://" in uri:
            with fsspec.open(uri, "rb") as f:
                _KEEP_CACHE[uri] = np.load(f)
        else:
            _KEEP_CACHE[uri] = np.load(uri, mmap_mode="r")
    return _KEEP_CACHE[uri]


def _marker_dir(work: str, epoch: int) -> str:
    return f"{work}/done/epoch-{epoch}"


class Trainer(Protocol):
    """How a strategy's tasks train: worker.ColumnsTrainer or row_worker.RowsTrainer."""

    def client(self, addresses: list[str], secret: str | None) -> PSClient: ...

    def train(self, ids: np.ndarray, offsets: np.ndarray, keep: np.ndarray, client: PSClient,
              settings: WorkerSettings, stream: int) -> WorkerStats: ...


def _train_task(trainer: Trainer, addresses: list[str], secret: str | None, keep_uri: str,
                settings: WorkerSettings, epoch: int, partitions: int, skip: frozenset[int],
                markers: str | None) -> Callable[[int, Iterator[Any]], Iterator[dict[str, Any]]]:
    def run(index: int, parts: Iterator[Any]) -> Iterator[dict[str, Any]]:
        total = WorkerStats()
        if index in skip:  # trained before the checkpoint this run resumed from
            yield {**vars(total), "peak_rss_mb": 0.0, "executor": executor_id()}
            return
        keep = _keep(keep_uri)
        with trainer.client(addresses, secret) as client:
            for ids, offsets in parts:
                stats = trainer.train(ids, offsets, keep, client, settings,
                                      stream=epoch * partitions + index)
                total.words += stats.words
                total.pairs += stats.pairs
                total.batches += stats.batches
                total.index_bytes += stats.index_bytes
                total.bitmap_bytes += stats.bitmap_bytes
            total.bytes_sent, total.bytes_received = client.bytes_sent, client.bytes_received
        if markers is not None:  # every update is applied: the partition is done
            _mark_done(markers, index, total.words)
        yield {**vars(total), "peak_rss_mb": process_peak_rss_mb(os.getpid()),
               "executor": executor_id()}

    return run


def _mark_done(markers: str, index: int, words: int) -> None:
    """Leave partition `index`'s marker whole or not at all: written under another name and
    renamed, so a listing never sees a marker half written (or empty, after a kill)."""
    fs, path = fsspec.core.url_to_fs(markers)
    fs.makedirs(path, exist_ok=True)
    partial = f"{path}/.writing-part-{index}-{os.getpid()}"
    fs.pipe_file(partial, str(words).encode())
    fs.mv(partial, f"{path}/part-{index}")


def finished_partitions(markers: str) -> dict[int, int]:
    """The partitions whose markers are in `markers` (index -> words)."""
    fs, path = fsspec.core.url_to_fs(markers)
    try:
        names = fs.ls(path, detail=False)
    except FileNotFoundError:
        return {}
    done = {}
    for name in names:
        base = name.rstrip("/").rsplit("/", 1)[-1]
        if base.startswith("part-") and base[5:].isdigit():
            try:
                done[int(base[5:])] = int(fs.cat_file(name))
            except (ValueError, FileNotFoundError):  # not whole yet: not counted as done
                continue
    return done


@dataclass
class TrainingLoop:
    sc: Any
    encoded: Any  # RDD of (ids, offsets), one record per partition
    shards: ShardGroup
    specs: list[Any]  # ShardSpec or RowSpec: what `trainer`'s client configures
    settings: WorkerSettings
    epochs: int
    epoch_words: int  # corpus words one epoch trains
    work: str
    checkpoints: RunCheckpoints | None = None
    checkpoint_seconds: float | None = None  # within an epoch; None: at epoch ends only
    max_recoveries: int = 3
    log: Callable[[str], None] = lambda _: None
    figures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIGURES, 0))
    worker_peaks: list[float] = field(default_factory=list)
    # bytes each process sent and received: "driver" (this process's clients) and each
    # executor's training tasks, summed over the epochs' jobs that finished
    traffic: dict[str, list[int]] = field(default_factory=dict)
    recoveries: int = 0
    shown: int = 0  # words reported done: never less, even after a recovery
    epoch_loss: dict[int, float] = field(default_factory=dict)  # 1-based epoch -> mean loss
    trainer: Trainer = field(default_factory=ColumnsTrainer)

    def run(self, phase: Phase, control: PSClient) -> PSClient:
        """Train every epoch; returns the client of the shards that hold the result (new ones
        after a recovery). `control` is a client of the shards as they are now."""
        position = self.saved()
        self._start(control, position)
        while position.epochs < self.epochs:
            try:
                position = self._epoch(control, position, phase)
            except ShardUnavailableError as exc:
                control = self._recover(control, exc)
                position = self.saved()
                self._start(control, position)
        _clear(f"{self.work}/done")  # the markers' work is in the last checkpoint now
        return control

    def saved(self) -> Position:
        """Where the last checkpoint stands: where training (re)starts."""
        return self.checkpoints.position() if self.checkpoints else Position()

    def _start(self, control: PSClient, position: Position) -> None:
        control.wait_ready()
        uri = self.checkpoints.position_uri() if self.checkpoints else None
        if self.checkpoints is None or uri is None:
            control.configure(self.specs)
            return
        control.load(uri, self.specs, global_words=position.words(self.epoch_words))
        done = f" and {len(position.partitions)} partitions of the next" \
            if position.partitions else ""
        self.log(f"resuming after epoch {position.epochs}{done} of {self.epochs}, saved in "
                 f"{self.checkpoints.uri}")

    def _recover(self, control: PSClient, exc: ShardUnavailableError) -> PSClient:
        if self.checkpoints is None or not self.shards.replaceable:
            raise exc
        if self.recoveries >= self.max_recoveries:
            raise ShardUnavailableError(
                f"{exc} (after {self.recoveries} recoveries; see --max-recoveries)") from None
        self.recoveries += 1
        where = self.checkpoints.position_uri() or "the start (no checkpoint saved yet)"
        self.log(f"recovery {self.recoveries}/{self.max_recoveries}: {exc} Starting new shards "
                 f"and resuming from {where}")
        self.count_driver_traffic(control)
        control.close()
        addresses = self.shards.restart()
        return self.trainer.client(addresses, self.shards.secret)

    def _epoch(self, control: PSClient, position: Position, phase: Phase) -> Position:
        epoch = position.epochs
        markers = _marker_dir(self.work, epoch) if self.checkpoints else None
        if markers is not None:
            _clear(markers)  # markers past the checkpoint name work the shards have lost
        partitions = self.encoded.getNumPartitions()
        task = _train_task(self.trainer, self.shards.addresses, self.shards.secret,
                           f"{self.work}/keep.npy", self.settings, epoch, partitions,
                           frozenset(position.partitions), markers)
        job = self.encoded.mapPartitionsWithIndex(task)
        group = f"distw2v-train-{id(self)}-{epoch}-{self.recoveries}"
        before = _loss(control.stats())  # the shards' counts start the epoch here
        outcome: dict[str, Any] = {}

        def run() -> None:
            self.sc.setJobGroup(group, f"distw2v epoch {epoch + 1}", True)
            try:
                outcome["result"] = job.collect()
            except BaseException as exc:  # surfaced below, in the driver's thread
                outcome["error"] = exc

        thread = threading.Thread(target=run, name="distw2v-epoch", daemon=True)
        thread.start()
        last_save = time.monotonic()
        try:
            while thread.is_alive():
                thread.join(WATCH_SECONDS)
                lost = self.shards.lost()
                if lost is not None:
                    raise ShardUnavailableError(lost)
                stats = control.stats()  # raises for a shard gone
                self._show(phase, int(stats[0]["global_words"]), epoch,
                           _mean_loss(before, _loss(stats)))
                if (markers is not None and self.checkpoint_seconds is not None
                        and time.monotonic() - last_save >= self.checkpoint_seconds):
                    self._save_within(control, position, markers)
                    last_save = time.monotonic()
        except BaseException:
            self.sc.cancelJobGroup(group)
            thread.join(60)
            raise
        if "error" in outcome:
            lost = self.shards.lost()
            if lost is not None:
                raise ShardUnavailableError(lost)
            raise spark_failure(outcome["error"])
        for r in outcome["result"]:
            for key in self.figures:
                self.figures[key] += r[key]
            self.worker_peaks.append(r["peak_rss_mb"])
            self._count(f"executor {r['executor']}", r["bytes_sent"], r["bytes_received"])
        end = Position(epoch + 1)
        loss = _mean_loss(before, _loss(control.stats()))
        if loss is not None:
            self.epoch_loss[epoch + 1] = loss
        self._show(phase, end.words(self.epoch_words), epoch, loss)
        if self.checkpoints:
            started = time.perf_counter()
            control.checkpoint(self.checkpoints.position_uri_for(end))
            self.checkpoints.saved(end.epochs)
            self.log(f"checkpoint: epoch {end.epochs} of {self.epochs} done, saved in "
                     f"{time.perf_counter() - started:.1f} s")
        return end

    def count_driver_traffic(self, control: PSClient) -> None:
        """Add what `control` sent and received (call once, before it closes)."""
        self._count("driver", control.bytes_sent, control.bytes_received)

    def _count(self, process: str, sent: int, received: int) -> None:
        total = self.traffic.setdefault(process, [0, 0])
        total[0] += sent
        total[1] += received

    def _show(self, phase: Phase, words: int, epoch: int, loss: float | None) -> None:
        recovery = f"{self.recoveries}/{self.max_recoveries}" if self.recoveries else None
        phase.note(epoch=epoch + 1, epochs=self.epochs, loss=loss, recovery=recovery)
        phase.advance(max(words - self.shown, 0))
        self.shown = max(self.shown, words)

    def _save_within(self, control: PSClient, position: Position, markers: str) -> None:
        assert self.checkpoints is not None
        now = Position(position.epochs, {**position.partitions, **finished_partitions(markers)})
        if now == self.checkpoints.position():
            return  # nothing finished since the last save: it would hold nothing more
        started = time.perf_counter()
        control.checkpoint(self.checkpoints.position_uri_for(now))
        self.checkpoints.saved(now.epochs, now.partitions)
        self.log(f"checkpoint: epoch {now.epochs + 1}, {len(now.partitions)} partitions done, "
                 f"saved in {time.perf_counter() - started:.1f} s")


def _loss(stats: list[dict[str, Any]]) -> tuple[float, int]:
    """The SGNS loss the shards have counted, and of how many pairs: each column shard counts
    every pair (its own estimate of the dots; their mean is the run's), shard 0 of the rows
    strategy what the tasks report."""
    return (sum(float(s.get("loss_sum", 0.0)) for s in stats),
            sum(int(s.get("loss_pairs", 0)) for s in stats))


def _mean_loss(before: tuple[float, int], now: tuple[float, int]) -> float | None:
    pairs = now[1] - before[1]
    return (now[0] - before[0]) / pairs if pairs > 0 else None


def _clear(uri: str) -> None:
    fs, path = fsspec.core.url_to_fs(uri)
    try:
        fs.rm(path, recursive=True)
    except FileNotFoundError:
        pass

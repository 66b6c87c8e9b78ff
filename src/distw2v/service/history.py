"""Progress over time: samples the runner records as a job's progress messages arrive.

Each attempt keeps at most `limit` samples: when the list is full every other one is dropped
and samples are taken half as often, so a two-day job and a ten-second job both end with a
few hundred points covering the whole run. The samples of a running attempt are held in
memory and written (atomically) to `logs/JOB.history.json` every few seconds and at its end,
so a finished job's history survives a server restart.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import schedule
from ..config import TrainConfig, from_dict
from ..errors import Distw2vError
from .jobproc import _STAGES

MAX_SAMPLES = 400
FIRST_INTERVAL = 0.5  # seconds between samples until the list first fills up
FLUSH_SECONDS = 5.0  # how often a running attempt's samples are written to disk


@dataclass
class _Track:
    attempt: int
    started: float
    start_alpha: float | None
    min_alpha: float
    interval: float = FIRST_INTERVAL
    samples: list[dict[str, Any]] = field(default_factory=list)
    latest: dict[str, Any] | None = None  # the newest message, until a sample is due
    last_flush: float = 0.0
    stage: str | None = None
    values: dict[str, Any] = field(default_factory=dict)  # merged: messages carry some fields

    def all(self) -> list[dict[str, Any]]:
        return self.samples + ([self.latest] if self.latest is not None else [])


def learning_rate(track: _Track, stage: str | None, progress: float | None) -> float | None:
    """The trainer's linear schedule at this point (it decays over the fraction of training
    words done, which the training stage's progress measures)."""
    if stage != "training" or progress is None or track.start_alpha is None:
        return None
    low, high = _STAGES["training"]
    done = min(1.0, max(0.0, (progress - low) / (high - low)))
    return schedule.learning_rate(track.start_alpha, track.min_alpha, done, 1.0)


class ProgressHistory:
    """Thread-safe: the runner's reader threads record, API threads read."""

    def __init__(self, folder: Path, limit: int = MAX_SAMPLES,
                 clock: Callable[[], float] = time.time) -> None:
        self.folder = folder
        self.limit = limit
        self.clock = clock
        self._tracks: dict[str, _Track] = {}
        self._lock = threading.Lock()

    def path(self, job_id: str) -> Path:
        return self.folder / f"{job_id}.history.json"

    def begin(self, job_id: str, attempt: int, train: dict[str, Any]) -> None:
        """A new attempt starts afresh (a retry's history replaces the last attempt's)."""
        try:
            config = from_dict(TrainConfig, train)
            alpha: float | None = config.start_alpha
            min_alpha = config.min_alpha
        except (Distw2vError, TypeError, ValueError):
            alpha, min_alpha = None, 0.0
        with self._lock:
            self._tracks[job_id] = _Track(attempt, self.clock(), alpha, min_alpha)
            with contextlib.suppress(FileNotFoundError):
                self.path(job_id).unlink()

    def record(self, job_id: str, attempt: int, values: dict[str, Any]) -> None:
        with self._lock:
            track = self._tracks.get(job_id)
            if track is None or track.attempt != attempt:
                return
            if values.get("stage", track.values.get("stage")) != track.values.get("stage"):
                track.values = {}  # words/s and the epoch belong to the stage that sent them
            track.values.update(values)
            now = self.clock()
            t = now - track.started
            stage = track.values.get("stage")
            progress = track.values.get("progress")
            sample = {
                "t": round(t, 3), "stage": stage, "progress": progress,
                "words_per_second": track.values.get("words_per_second"),
                "learning_rate": learning_rate(track, stage, progress),
                "epoch": track.values.get("epoch"),
                "loss": track.values.get("loss"),
            }
            last = track.samples[-1]["t"] if track.samples else None
            # a new stage is always kept, so the plot shows where each one began; between
            # samples the newest message is kept aside, so a stage's last word is not lost
            if last is not None and t - last < track.interval and stage == track.stage:
                track.latest = sample
                return
            track.stage = stage
            if track.latest is not None:  # the last word of the period (or stage) before
                track.samples.append(track.latest)
                track.latest = None
            track.samples.append(sample)
            if len(track.samples) > self.limit:
                # every other one, but each stage's first stays (where it began)
                kept = track.samples
                track.samples = [x for i, x in enumerate(kept)
                                 if i % 2 == 0 or x["stage"] != kept[i - 1]["stage"]]
                track.interval *= 2
            # written under the lock, so an older copy never replaces the final one
            if now - track.last_flush >= FLUSH_SECONDS:
                track.last_flush = now
                self._write(job_id, attempt, track.all())

    def end(self, job_id: str, attempt: int) -> None:
        """The attempt is over: its samples go to disk and leave memory."""
        with self._lock:
            track = self._tracks.get(job_id)
            if track is None or track.attempt != attempt:
                return
            del self._tracks[job_id]
            self._write(job_id, attempt, track.all())

    def samples(self, job_id: str) -> tuple[int | None, list[dict[str, Any]]]:
        """(attempt, samples) of the job's latest attempt; (None, []) when none was kept."""
        with self._lock:
            track = self._tracks.get(job_id)
            if track is not None:
                return track.attempt, track.all()
        try:
            data = json.loads(self.path(job_id).read_text(encoding="utf-8"))
            return int(data["attempt"]), list(data["samples"])
        except (OSError, ValueError, KeyError, TypeError):
            return None, []

    def delete(self, job_id: str) -> None:
        with self._lock:
            self._tracks.pop(job_id, None)
            with contextlib.suppress(FileNotFoundError):
                self.path(job_id).unlink()

    def _write(self, job_id: str, attempt: int, samples: list[dict[str, Any]]) -> None:
        path = self.path(job_id)
        temp = path.with_name(f".{path.name}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temp.write_text(json.dumps({"attempt": attempt, "samples": samples}),
                            encoding="utf-8")
            os.replace(temp, path)
        except OSError:  # a history is a nicety: a full disk must not fail the job
            with contextlib.suppress(OSError):
                temp.unlink()

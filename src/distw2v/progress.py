"""How far a run is, as typed events: what both engines report, and what the CLI (as tqdm
bars), the service's job process (as JSON) and library callers (`on_progress=`) receive.

An engine opens a `Phase` for each long step (reading the vocabulary, encoding, training),
advances it as work is done and notes the epoch, learning rate or recovery; every change is
one `ProgressEvent` to the run's `on_progress` callback. A leaf module: the engines, the CLI
and the service all import it, and it imports none of them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

Unit = Literal["B", "word", "task"]


@dataclass(frozen=True)
class ProgressEvent:
    # "vocabulary", "encoding" (bytes read), "counting and encoding" (the Spark engine's
    # tasks) or "training" (corpus words trained)
    phase: str
    done: int  # units done, including `initial`
    total: int | None  # units in the phase; None when not known
    unit: Unit
    initial: int = 0  # done by an earlier attempt (a resumed run): progress, not speed
    seconds: float = 0.0  # since the phase started in this process
    epoch: int | None = None  # 1-based; training only
    epochs: int | None = None
    learning_rate: float | None = None
    recovery: str | None = None  # "1/3": the Spark engine resumed after a lost shard
    finished: bool = False  # the phase's last event

    @property
    def fraction(self) -> float | None:
        return min(1.0, self.done / self.total) if self.total else None

    @property
    def rate(self) -> float | None:
        """Units per second in this process (words/s when training)."""
        done = self.done - self.initial
        return done / self.seconds if self.seconds > 0 and done > 0 else None

    @property
    def eta_seconds(self) -> float | None:
        rate = self.rate
        if rate is None or self.total is None:
            return None
        return max(self.total - self.done, 0) / rate


OnProgress = Callable[[ProgressEvent], None]


def ignore(_: ProgressEvent) -> None:
    """The default callback: library callers get silence."""


class Phase:
    """One long step of a run, reporting to `on_progress` as it advances."""

    def __init__(self, on_progress: OnProgress | None, phase: str, total: int | None,
                 unit: Unit, initial: int = 0) -> None:
        self._send = on_progress or ignore
        self._start = time.monotonic()
        self.event = ProgressEvent(phase, initial, total, unit, initial=initial)
        self._send(self.event)

    def advance(self, n: int) -> None:
        if n:
            self._emit(done=self.event.done + int(n))

    def reach(self, done: int, total: int | None) -> None:
        """Set done and total at once (a total that grows as work is discovered)."""
        if (done, total) != (self.event.done, self.event.total):
            self._emit(done=done, total=total)

    def note(self, *, epoch: int | None = None, epochs: int | None = None,
             learning_rate: float | None = None, recovery: str | None = None) -> None:
        """Set what the phase is at; a value left None keeps the last one."""
        changes = {k: v for k, v in (("epoch", epoch), ("epochs", epochs),
                                     ("learning_rate", learning_rate),
                                     ("recovery", recovery)) if v is not None}
        self._emit(**changes)

    def close(self) -> None:
        if not self.event.finished:
            self._emit(finished=True)

    def __enter__(self) -> Phase:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _emit(self, **changes: object) -> None:
        self.event = replace(self.event, seconds=time.monotonic() - self._start,
                             **changes)  # type: ignore[arg-type]
        self._send(self.event)


@dataclass(frozen=True)
class Summary:
    corpus_words: int  # tokens in the corpus, one pass
    trained_words: int  # corpus words in the vocabulary, summed over epochs
    seconds: float  # encoding + training
    peak_rss_mb: float

    @property
    def words_per_second(self) -> float:
        return self.trained_words / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (
            f"trained {self.trained_words:,} words in {self.seconds:.1f} s "
            f"({self.words_per_second:,.0f} words/s), peak memory {self.peak_rss_mb:,.0f} MiB"
        )

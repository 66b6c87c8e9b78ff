"""How far a run is, as typed events: what both engines report, and what the CLI (as tqdm
bars), the service's job process (as JSON) and library callers (`on_progress=`) receive.

An engine opens a `Phase` for each long step (reading the vocabulary, encoding, training),
advances it as work is done and notes the epoch, learning rate or recovery; every change is
one `ProgressEvent` to the run's `on_progress` callback. A leaf module: the engines, the CLI
and the service all import it, and it imports none of them.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

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
    loss: float | None = None  # mean SGNS loss a pair (a centre, CBOW) so far in the epoch
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


def fan_out(*callbacks: OnProgress | None) -> OnProgress:
    """One callback that calls each of `callbacks` (None: left out) in turn."""
    chosen = [c for c in callbacks if c is not None]

    def send(event: ProgressEvent) -> None:
        for callback in chosen:
            callback(event)

    return send


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
             learning_rate: float | None = None, loss: float | None = None,
             recovery: str | None = None) -> None:
        """Set what the phase is at; a value left None keeps the last one."""
        changes = {k: v for k, v in (("epoch", epoch), ("epochs", epochs),
                                     ("learning_rate", learning_rate), ("loss", loss),
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
    # 1-based epoch -> its mean SGNS loss a pair, for the epochs this run trained
    epoch_loss: dict[int, float] = field(default_factory=dict)

    @property
    def words_per_second(self) -> float:
        return self.trained_words / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        losses = ", ".join(f"{e}: {loss:.4f}" for e, loss in sorted(self.epoch_loss.items()))
        return (
            f"trained {self.trained_words:,} words in {self.seconds:.1f} s "
            f"({self.words_per_second:,.0f} words/s), peak memory {self.peak_rss_mb:,.0f} MiB"
            + (f"; loss a pair by epoch {losses}" if losses else "")
        )


def loss_record(epoch_loss: dict[int, float]) -> dict[str, float]:
    """Epoch losses as meta.json keeps them: JSON's keys are strings."""
    return {str(e): round(loss, 6) for e, loss in sorted(epoch_loss.items())}


def read_loss_record(record: dict[str, float]) -> dict[int, float]:
    return {int(e): float(loss) for e, loss in record.items()}


# --- what callers see -------------------------------------------------------------------------


class Bars:
    """ProgressEvents shown as tqdm bars on stderr, one per phase, with rate and ETA; only on
    a terminal unless `always`."""

    def __init__(self, always: bool = True) -> None:
        self.bars: dict[str, Any] = {}
        self.disable = False if always else None  # tqdm's None: off unless stderr is a tty

    def __call__(self, event: ProgressEvent) -> None:
        from tqdm import tqdm  # not at import: `import distw2v` stays cheap

        bar = self.bars.get(event.phase)
        if bar is None:
            bar = self.bars[event.phase] = tqdm(
                desc=event.phase, total=event.total, initial=event.initial, unit=event.unit,
                unit_scale=True, unit_divisor=1024 if event.unit == "B" else 1000,
                file=sys.stderr, dynamic_ncols=True, mininterval=0.5, disable=self.disable)
        bar.update(event.done - bar.n)
        notes = []
        if event.epoch is not None:
            notes.append(f"epoch {event.epoch}/{event.epochs}")
        if event.learning_rate is not None:
            notes.append(f"lr {event.learning_rate:.5f}")
        if event.loss is not None:
            notes.append(f"loss {event.loss:.4f}")
        if event.recovery is not None:
            notes.append(f"recovery {event.recovery}")
        if notes:
            bar.set_postfix_str(" ".join(notes), refresh=False)
        if event.finished:
            bar.close()
            del self.bars[event.phase]


def _amount(n: float, unit: Unit) -> str:
    if unit != "B":
        return f"{n:,.0f} {unit}s"
    for prefix in ("", "Ki", "Mi", "Gi", "Ti"):
        if n < 1024 or prefix == "Ti":
            break
        n /= 1024
    return f"{n:,.1f} {prefix}B"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 90 * 60 else f"{seconds / 3600:.1f} h"


def describe(event: ProgressEvent) -> str:
    """One log line: 'training: epoch 2/5, 43.1% of 1,000,000 words, 812,345 words/s, ETA
    3 s', or 'training: done, 5,000,000 words in 6.1 s, 819,672 words/s' at the end."""
    if event.finished:
        parts = [f"done, {_amount(event.done, event.unit)} in {event.seconds:.1f} s"]
    else:
        parts = [f"epoch {event.epoch}/{event.epochs}"] if event.epoch is not None else []
        parts.append(_amount(event.done, event.unit) if event.fraction is None else
                     f"{event.fraction:.1%} of {_amount(event.total or 0, event.unit)}")
        if event.loss is not None:
            parts.append(f"loss {event.loss:.4f} a pair")
    if event.rate is not None:
        parts.append(f"{_amount(event.rate, event.unit)}/s")
    if event.eta_seconds is not None and not event.finished:
        parts.append(f"ETA {_duration(event.eta_seconds)}")
    return f"{event.phase}: {', '.join(parts)}"


class LogLines:
    """ProgressEvents as INFO lines of `logger` (as gensim logs its progress): a phase's
    progress at most every `every` seconds, and its end."""

    def __init__(self, logger: logging.Logger, every: float = 5.0) -> None:
        self.logger = logger
        self.every = every
        self.last: dict[str, float] = {}  # phase -> when its last line was logged

    def __call__(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        if event.finished:
            self.last.pop(event.phase, None)
        elif now - self.last.setdefault(event.phase, now) < self.every or event.done == 0:
            return
        else:
            self.last[event.phase] = now
        self.logger.info("%s", describe(event))

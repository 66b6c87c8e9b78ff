"""One frozen, typed, keyword-only dataclass per job kind.

The CLI flags are generated from these fields (their `help` metadata and defaults), so a
parameter is declared exactly once. Validation lives in `__post_init__` and raises
`Distw2vError` with one clear sentence.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from .errors import Distw2vError

Model = Literal["skipgram", "cbow"]


def option(default: Any, help: str, **extra: Any) -> Any:
    """A config field: its default and the help text its CLI flag shows."""
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True, kw_only=True)
class VocabConfig:
    """How text is tokenized and which words enter the vocabulary."""

    lowercase: bool = option(False, "lower-case every token")
    strip_punctuation: bool = option(False, "remove punctuation characters from tokens")
    strip_digits: bool = option(False, "remove digits from tokens")
    max_sentence_length: int = option(
        10_000, "cut sentences longer than this many tokens into pieces"
    )
    min_count: int = option(5, "drop words seen fewer times than this")
    max_vocab_size: int | None = option(
        None,
        "memory bound while counting: when more distinct words than this are held, "
        "the rarest are pruned (as the original word2vec does)",
        default_text="no bound",
    )
    max_final_vocab: int | None = option(
        None, "keep at most this many of the most frequent words", default_text="no limit"
    )

    def __post_init__(self) -> None:
        require(self.max_sentence_length >= 1, "max_sentence_length must be at least 1")
        require(self.min_count >= 1, "min_count must be at least 1")
        require(
            self.max_vocab_size is None or self.max_vocab_size >= 1,
            "max_vocab_size must be at least 1",
        )
        require(
            self.max_final_vocab is None or self.max_final_vocab >= 1,
            "max_final_vocab must be at least 1",
        )


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Training hyper-parameters for skip-gram / CBOW with negative sampling."""

    model: Model = option("skipgram", "skipgram or cbow", choices=("skipgram", "cbow"))
    dim: int = option(100, "vector dimension")
    window: int = option(5, "maximum distance between a word and its context (dynamic window)")
    negative: int = option(5, "negative samples per positive pair")
    epochs: int = option(5, "passes over the corpus")
    alpha: float | None = option(
        None, "initial learning rate", default_text="0.025 for skipgram, 0.05 for cbow"
    )
    min_alpha: float = option(0.0001, "final learning rate (linear decay over all epochs)")
    sample: float = option(1e-3, "subsampling threshold for frequent words; 0 disables")
    workers: int = option(2, "training threads")
    seed: int = option(1, "random seed; with workers=1 the result is bit-identical run to run")
    batch_words: int = option(
        50_000, "words handed to a thread at a time (larger = less hand-off overhead)"
    )

    def __post_init__(self) -> None:
        require(self.model in ("skipgram", "cbow"), "model must be 'skipgram' or 'cbow'")
        require(self.dim >= 1, "dim must be at least 1")
        require(self.window >= 1, "window must be at least 1")
        require(self.negative >= 1, "negative must be at least 1")
        require(self.epochs >= 1, "epochs must be at least 1")
        require(self.alpha is None or self.alpha > 0, "alpha must be greater than 0")
        require(self.min_alpha >= 0, "min_alpha must not be negative")
        require(self.sample >= 0, "sample must not be negative")
        require(self.workers >= 1, "workers must be at least 1")
        require(self.batch_words >= 1, "batch_words must be at least 1")
        require(0 <= self.seed < 2**63, "seed must be between 0 and 2**63 - 1")

    @property
    def start_alpha(self) -> float:
        if self.alpha is not None:
            return self.alpha
        return 0.025 if self.model == "skipgram" else 0.05


@dataclass(frozen=True, kw_only=True)
class SparkConfig:
    """Where and how the distributed trainer runs (engine 'spark')."""

    spark_master: str = option("local[*]", "Spark master URL (local[N], spark://host:port, ...)")
    shards: int = option(2, "parameter-server shards the driver starts on this machine")
    ps: str | None = option(
        None, "comma-separated host:port of shards started by an operator (`distw2v ps-shard`)",
        default_text="start --shards shards locally",
    )
    partitions: int | None = option(
        None, "corpus partitions (Spark tasks per epoch)", default_text="Spark's parallelism"
    )
    batch_pairs: int = option(20_000, "training pairs per parameter-server round trip")
    broadcast_limit: int = option(
        5_000_000,
        "largest vocabulary whose word->id table is broadcast; larger ones are encoded "
        "with a distributed join",
    )
    work_dir: str | None = option(
        None,
        "directory (or URL) that driver, executors and shards all reach, for word counts",
        default_text="a temporary directory next to --out",
    )

    def __post_init__(self) -> None:
        require(self.shards >= 1, "shards must be at least 1")
        require(self.partitions is None or self.partitions >= 1, "partitions must be at least 1")
        require(self.batch_pairs >= 1, "batch_pairs must be at least 1")
        require(self.broadcast_limit >= 0, "broadcast_limit must not be negative")

    @property
    def ps_addresses(self) -> list[str]:
        return [a.strip() for a in (self.ps or "").split(",") if a.strip()]


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """How a training run keeps its state, with either engine."""

    checkpoint_dir: str | None = option(
        None,
        "directory (or URL) where the model is saved after every epoch; a run given the "
        "directory of an earlier, failed attempt at the same run resumes after its last "
        "saved epoch",
        default_text="no checkpoints",
    )


C = TypeVar("C", VocabConfig, TrainConfig, SparkConfig, RunConfig)


def require(ok: bool, message: str) -> None:
    """Validation for __post_init__: one clear sentence, raised as Distw2vError."""
    if not ok:
        raise Distw2vError(message + ".")


def to_dict(config: VocabConfig | TrainConfig | SparkConfig | RunConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Build a config from a dict, refusing unknown keys with a clear message."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise Distw2vError(f"unknown {cls.__name__} setting(s): {', '.join(unknown)}.")
    return cls(**data)


def to_json(config: VocabConfig | TrainConfig | SparkConfig | RunConfig) -> str:
    return json.dumps(to_dict(config), sort_keys=True)

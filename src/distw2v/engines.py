"""The trainers behind one interface: `Local` (this machine, pipeline.py) and `Spark` (a Spark
application against parameter-server shards, distributed/). The CLI, the service's job
process and `distw2v.train` pick one by name or take one given; none knows how either works.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol, cast

from .config import EngineName, RunConfig, SparkConfig, TrainConfig, VocabConfig
from .encode import EncodedCorpus
from .errors import Distw2vError
from .pipeline import Sentences, train_local
from .progress import OnProgress, Summary
from .vectors import Vectors
from .vocab import Vocabulary

Corpus = Sequence[str] | Sentences  # source URIs, or token lists in memory


class Engine(Protocol):
    @property
    def name(self) -> EngineName:
        """'local' or 'spark', as RunConfig.engine says it."""
        ...

    def train(self, corpus: Corpus, out: Path | None, vocab_config: VocabConfig,
              train_config: TrainConfig, *, run_config: RunConfig, word2vec: Path | None,
              on_progress: OnProgress | None, log: Callable[[str], None],
              ann_threshold: int | None) -> tuple[Vectors, Summary]:
        """Train; save to `out` unless it is None (the vectors are returned either way)."""
        ...


@dataclass(frozen=True)
class Local:
    """The local trainer; `vocab` and `encoded`, when given, skip counting and encoding
    (`distw2v vocab` and `distw2v encode` made them)."""

    vocab: Vocabulary | None = None
    encoded: EncodedCorpus | None = None
    name: EngineName = field(default="local", init=False)

    def train(self, corpus: Corpus, out: Path | None, vocab_config: VocabConfig,
              train_config: TrainConfig, *, run_config: RunConfig, word2vec: Path | None,
              on_progress: OnProgress | None, log: Callable[[str], None],
              ann_threshold: int | None) -> tuple[Vectors, Summary]:
        return train_local(corpus, out, vocab_config, train_config, vocab=self.vocab,
                           encoded=self.encoded, run_config=run_config, word2vec=word2vec,
                           on_progress=on_progress, log=log, ann_threshold=ann_threshold)


@dataclass(frozen=True, init=False)
class Spark:
    """The distributed trainer: `Spark(master="spark://host:7077", shards=4)` takes any
    SparkConfig setting by name (`master` for spark_master), or `Spark(config)`."""

    config: SparkConfig
    name: EngineName = field(default="spark", init=False)

    def __init__(self, config: SparkConfig | None = None, **settings: Any) -> None:
        if "master" in settings:
            settings["spark_master"] = settings.pop("master")
        known = {f.name for f in fields(SparkConfig)}
        unknown = sorted(set(settings) - known)
        if unknown:
            raise Distw2vError(f"Spark() has no setting {unknown[0]!r}; the settings are "
                               f"master and {', '.join(sorted(known))}.")
        if config is not None and settings:
            raise Distw2vError("give Spark() a SparkConfig or settings, not both.")
        object.__setattr__(self, "config", config or SparkConfig(**settings))

    def train(self, corpus: Corpus, out: Path | None, vocab_config: VocabConfig,
              train_config: TrainConfig, *, run_config: RunConfig, word2vec: Path | None,
              on_progress: OnProgress | None, log: Callable[[str], None],
              ann_threshold: int | None) -> tuple[Vectors, Summary]:
        if isinstance(corpus, Sentences):
            raise Distw2vError("the spark engine reads source URIs (files, s3://, hdfs://, "
                               "https://), not sentences in memory; write them to a file.")
        from .distributed.driver import train_spark  # needs the spark extra

        # the shards stream the model into a directory: without `out`, a temporary one
        scratch = tempfile.mkdtemp(prefix="distw2v-spark-model-") if out is None else None
        model = Path(scratch) / "model" if scratch is not None else Path(cast(Path, out))
        try:
            _, summary = train_spark(corpus, model, vocab_config, train_config, self.config,
                                     run_config=run_config, word2vec=word2vec,
                                     on_progress=on_progress, log=log,
                                     ann_threshold=ann_threshold)
            return Vectors.load(model, mmap=scratch is None), summary
        finally:
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)


def engine_named(name: str, spark_config: SparkConfig | None = None,
                 vocab: Vocabulary | None = None,
                 encoded: EncodedCorpus | None = None) -> Engine:
    """The engine a config or request names, set up with what that engine takes."""
    if name == "local":
        return Local(vocab, encoded)
    if name == "spark":
        if vocab is not None or encoded is not None:
            raise Distw2vError(
                "the spark engine counts and encodes itself; drop --vocab and --encoded.")
        return Spark(spark_config or SparkConfig())
    raise Distw2vError(f"unknown engine {name!r}; use 'local' or 'spark'.")

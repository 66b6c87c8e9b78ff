"""The whole local pipeline: sources → vocabulary → encoded shards → training → vectors.

Each step takes plain values and a `progress` factory (tqdm's signature: desc, total, unit);
the CLI passes tqdm, library callers get silence by default.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from . import __version__
from .checkpoints import RunCheckpoints, prepare_dir
from .config import RunConfig, SparkConfig, TrainConfig, VocabConfig, to_dict
from .corpus import CorpusStats, describe_stats, expand_sources, iter_sentences
from .encode import EncodedCorpus, encode_corpus
from .errors import Distw2vError
from .memory import peak_rss_mb
from .train import Progress, train
from .vectors import Vectors
from .vocab import Vocabulary, build_vocabulary
from .vocab import describe as describe_vocab


class Bar(Protocol):
    def update(self, n: float = 1) -> Any: ...
    def set_postfix_str(self, s: str = "", refresh: bool = True) -> Any: ...
    def close(self) -> Any: ...


ProgressFactory = Callable[..., Bar]


class _Silent:
    def update(self, n: float = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


def silent(**_: Any) -> Bar:
    return _Silent()


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


def _byte_bar(progress: ProgressFactory, desc: str, stats: CorpusStats) -> Bar:
    return progress(desc=desc, total=stats.total_bytes, unit="B", unit_scale=True,
                    unit_divisor=1024)


def _tracked(sources: list[str], config: VocabConfig, stats: CorpusStats, bar: Bar):  # type: ignore[no-untyped-def]
    """Sentences from `sources`, advancing `bar` by the raw bytes read."""
    seen = 0
    for tokens in iter_sentences(sources, config, stats):
        if stats.bytes_read - seen >= 1 << 20:
            bar.update(stats.bytes_read - seen)
            seen = stats.bytes_read
        yield tokens
    bar.update(stats.bytes_read - seen)


def build_vocab(
    sources: Sequence[str], config: VocabConfig, progress: ProgressFactory = silent
) -> tuple[Vocabulary, CorpusStats]:
    files = expand_sources(sources)
    stats = CorpusStats()
    bar = _byte_bar(progress, "vocabulary", stats)
    try:
        vocab = build_vocabulary(_tracked(files, config, stats, bar), config)
    finally:
        bar.close()
    return vocab, stats


def encode(
    sources: Sequence[str], vocab: Vocabulary, out_dir: str | Path,
    progress: ProgressFactory = silent,
) -> tuple[EncodedCorpus, CorpusStats]:
    files = expand_sources(sources)
    stats = CorpusStats()
    bar = _byte_bar(progress, "encoding", stats)
    try:
        encoded = encode_corpus(_tracked(files, vocab.config, stats, bar), vocab, out_dir)
    finally:
        bar.close()
    return encoded, stats


def train_vectors(
    encoded: EncodedCorpus, vocab: Vocabulary, config: TrainConfig,
    progress: ProgressFactory = silent, checkpoints: RunCheckpoints | None = None,
) -> tuple[Vectors, int]:
    first = min(checkpoints.epochs_done(), config.epochs) if checkpoints else 0
    shown = first * encoded.words  # trained by an earlier attempt: progress, not speed
    bar = progress(desc="training", total=encoded.words * config.epochs, unit="word",
                   unit_scale=True, initial=shown)

    def report(p: Progress) -> None:
        nonlocal shown
        bar.update(p.words_done - shown)
        shown = p.words_done
        bar.set_postfix_str(f"epoch {p.epoch}/{config.epochs} lr {p.alpha:.5f}", refresh=False)

    try:
        result = train(encoded, vocab, config, on_progress=report, checkpoints=checkpoints)
    finally:
        bar.close()
    meta = {
        "distw2v_version": __version__,
        "train_config": to_dict(config),
        "vocab_config": to_dict(vocab.config),
        "trained_words": result.words,
        "train_seconds": round(result.seconds, 3),
    }
    return Vectors(vocab.words, result.syn0, counts=vocab.counts, meta=meta), result.words


def run(
    sources: Sequence[str],
    out: str | Path,
    vocab_config: VocabConfig,
    train_config: TrainConfig,
    *,
    vocab: Vocabulary | None = None,
    encoded: EncodedCorpus | None = None,
    engine: str = "local",
    spark_config: SparkConfig | None = None,
    run_config: RunConfig | None = None,
    word2vec: Path | None = None,
    progress: ProgressFactory = silent,
    log: Callable[[str], None] = lambda _: None,
    ann_threshold: int | None = None,
) -> tuple[Vectors, Summary]:
    """Train vectors from `sources` (or a given vocabulary / encoded corpus) and save them to
    `out` (and to a word2vec file: binary, or text when its name ends in .txt). A model of at
    least `ann_threshold` words gets a nearest-neighbour index (see VectorsWriter)."""
    if engine == "spark":
        if vocab is not None or encoded is not None:
            raise Distw2vError(
                "the spark engine counts and encodes itself; drop --vocab and --encoded."
            )
        from .distributed.driver import train_spark

        _, summary = train_spark(sources, out, vocab_config, train_config,
                                 spark_config or SparkConfig(), run_config=run_config,
                                 word2vec=word2vec, progress=progress, log=log,
                                 ann_threshold=ann_threshold)
        return Vectors.load(out), summary
    if engine != "local":
        raise Distw2vError(f"unknown engine {engine!r}; use 'local' or 'spark'.")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    checkpoint_dir = (run_config or RunConfig()).checkpoint_dir
    if checkpoint_dir:
        prepare_dir(checkpoint_dir)
    if vocab is None:
        vocab, stats = build_vocab(sources, vocab_config, progress)
        log("read " + describe_stats(stats))
    log(describe_vocab(vocab))
    checkpoints = None
    if checkpoint_dir:
        checkpoints = RunCheckpoints(checkpoint_dir, {
            "engine": "local", "train_config": to_dict(train_config),
            "vocab_config": to_dict(vocab.config), "sources": list(sources),
            "vocab_size": len(vocab), "corpus_words": vocab.corpus_words})
        first = min(checkpoints.epochs_done(), train_config.epochs)  # another run: refused now
        if first:
            log(f"resuming after epoch {first} of {train_config.epochs}, saved in "
                f"{checkpoints.uri}")
    start = time.perf_counter()
    work_dir = None
    try:
        if encoded is None:
            # next to the output: shards can be large, and /tmp is often small
            work_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.encoding-", dir=out.parent))
            encoded, _ = encode(sources, vocab, work_dir / "encoded", progress)
        vectors, words = train_vectors(encoded, vocab, train_config, progress, checkpoints)
    finally:
        if work_dir is not None:
            shutil.rmtree(work_dir, ignore_errors=True)
    seconds = time.perf_counter() - start
    vectors.meta["sources"] = list(sources)
    vectors.save(out, ann_threshold)
    if word2vec is not None:
        vectors.save_word2vec(word2vec, binary=Path(word2vec).suffix != ".txt")
    return vectors, Summary(encoded.corpus_words, words, seconds, peak_rss_mb())


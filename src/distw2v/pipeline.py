"""The local engine's pipeline: sources → vocabulary → encoded shards → training → vectors.

Each step takes plain values and reports its phases to an `on_progress` callback (see
progress.py); library callers get silence by default.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path

from . import __version__
from .checkpoints import RunCheckpoints, prepare_dir
from .config import RunConfig, TrainConfig, VocabConfig, to_dict
from .continued import base_vocabulary, open_init, provenance, start_matrices
from .corpus import CorpusStats, PhraseTable, describe_stats, iter_sentences, load_phrases
from .corpus.hints import TOP_WORDS, reading_warnings
from .corpus.sources import absolute_sources
from .corpus.stats import tracked
from .encode import EncodedCorpus, encode_corpus
from .errors import Distw2vError
from .memory import peak_rss_mb
from .progress import OnProgress, Phase, Summary, loss_record, read_loss_record
from .training import Progress, train
from .vectors import Vectors
from .vocab import Vocabulary, build_vocabulary
from .vocab import describe as describe_vocab


def _words(sentences: Iterable[list[str]], phase: Phase) -> Iterator[list[str]]:
    """`sentences` (in memory: no bytes to count), advancing `phase` by the words read."""
    seen = 0
    for tokens in sentences:
        seen += len(tokens)
        if seen >= 100_000:
            phase.advance(seen)
            seen = 0
        yield tokens
    phase.advance(seen)


def _read(sources: Sequence[str], config: VocabConfig, stats: CorpusStats, name: str,
          on_progress: OnProgress | None) -> tuple[Iterator[list[str]], Phase]:
    # iter_sentences lists the sources (and sums their sizes) at once, before the phase
    # starts: its total
    sentences = iter_sentences(sources, config, stats)
    return sentences, Phase(on_progress, name, stats.total_bytes, "B")


def build_vocab(
    sources: Sequence[str], config: VocabConfig, on_progress: OnProgress | None = None,
    base: Vocabulary | None = None,
) -> tuple[Vocabulary, CorpusStats]:
    """Count the sources' words; with `base`, extend it (vocab.extended_vocabulary)."""
    stats = CorpusStats()
    sentences, phase = _read(sources, config, stats, "vocabulary", on_progress)
    with phase:
        vocab = build_vocabulary(tracked(sentences, stats, phase.advance), config, base=base)
    return vocab, stats


def encode(
    sources: Sequence[str], vocab: Vocabulary, out_dir: str | Path,
    on_progress: OnProgress | None = None,
) -> tuple[EncodedCorpus, CorpusStats]:
    stats = CorpusStats()
    sentences, phase = _read(sources, vocab.config, stats, "encoding", on_progress)
    with phase:
        encoded = encode_corpus(tracked(sentences, stats, phase.advance), vocab, out_dir)
    return encoded, stats


def train_vectors(
    encoded: EncodedCorpus, vocab: Vocabulary, config: TrainConfig,
    on_progress: OnProgress | None = None, checkpoints: RunCheckpoints | None = None,
    init: Vectors | None = None, keep_output: bool = False,
) -> tuple[Vectors, int]:
    """Train; from `init`'s matrices (a continued run) when given; the result keeps its output
    matrix with `keep_output`."""
    first = min(checkpoints.epochs_done(), config.epochs) if checkpoints else 0
    # trained by an earlier attempt: progress, not speed
    phase = Phase(on_progress, "training", encoded.words * config.epochs, "word",
                  initial=first * encoded.words)

    def report(p: Progress) -> None:  # the epoch first, so that the words done carry it
        phase.note(epoch=p.epoch, epochs=config.epochs, learning_rate=p.alpha, loss=p.loss)
        phase.advance(p.words_done - phase.event.done)

    start = start_matrices(init, len(vocab), config.seed) if init is not None else None
    with phase:
        result = train(encoded, vocab, config, on_progress=report, checkpoints=checkpoints,
                       init=start)
    meta = {
        "distw2v_version": __version__,
        "train_config": to_dict(config),
        "vocab_config": to_dict(vocab.config),
        "trained_words": result.words,
        "train_seconds": round(result.seconds, 3),
        "epoch_loss": loss_record(result.epoch_loss),
    }
    return Vectors(vocab.words, result.syn0, counts=vocab.counts, meta=meta,
                   output=result.syn1 if keep_output else None), result.words


class Sentences:
    """A corpus held in memory, or produced again on every iteration: token lists, as
    gensim's `sentences`. It is read twice (the vocabulary, then the encoding)."""

    def __init__(self, sentences: Iterable[list[str]],
                 phrases: PhraseTable | None = None) -> None:
        if iter(sentences) is sentences:
            raise Distw2vError(
                "the corpus is an iterator, which can be read only once; give a list, or an "
                "object whose __iter__ starts the corpus again (training reads it twice).")
        self.sentences = sentences
        self.phrases = phrases  # joined into every sentence, as the reader joins them

    def __iter__(self) -> Iterator[list[str]]:
        for tokens in self.sentences:
            if isinstance(tokens, str):
                raise Distw2vError("each sentence of the corpus must be a list of tokens, not "
                                   "a string (split it first).")
            yield self.phrases.join(list(tokens)) if self.phrases else list(tokens)


def train_local(
    corpus: Sequence[str] | Sentences,
    out: str | Path | None,
    vocab_config: VocabConfig,
    train_config: TrainConfig,
    *,
    vocab: Vocabulary | None = None,
    encoded: EncodedCorpus | None = None,
    run_config: RunConfig | None = None,
    word2vec: Path | None = None,
    on_progress: OnProgress | None = None,
    log: Callable[[str], None] = lambda _: None,
    ann_threshold: int | None = None,
) -> tuple[Vectors, Summary]:
    """Train vectors from source URIs or in-memory `Sentences` (or a given vocabulary and
    encoded corpus); save them to `out` unless it is None (and to a word2vec file: binary,
    or text when its name ends in .txt). A model of at least `ann_threshold` words gets a
    nearest-neighbour index (see VectorsWriter)."""
    out = Path(out) if out is not None else None
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
    sources = [] if isinstance(corpus, Sentences) else absolute_sources(corpus)
    if isinstance(corpus, Sentences) and vocab_config.phrases:
        corpus = Sentences(corpus.sentences, load_phrases(vocab_config))
    run_config = run_config or RunConfig()
    checkpoint_dir = run_config.checkpoint_dir
    if checkpoint_dir:
        prepare_dir(checkpoint_dir)
    init = open_init(run_config.init, train_config) if run_config.init else None
    if init is not None and vocab is not None:
        raise Distw2vError("--init extends the model's vocabulary with the corpus's own count; "
                           "drop --vocab and --encoded.")
    base = base_vocabulary(init, vocab_config) if init is not None else None
    if vocab is None and isinstance(corpus, Sentences):
        with Phase(on_progress, "vocabulary", None, "word") as phase:
            vocab = build_vocabulary(_words(corpus, phase), vocab_config, base=base)
    elif vocab is None:
        vocab, stats = build_vocab(sources, vocab_config, on_progress, base)
        log("read " + describe_stats(stats))
        for warning in reading_warnings(vocab.config, stats, vocab.words[:TOP_WORDS]):
            log(warning)
    log(describe_vocab(vocab))
    if init is not None:
        log(f"continuing {run_config.init}: {len(init):,} words of the model, "
            f"{len(vocab) - len(init):,} new")
    checkpoints = None
    if checkpoint_dir:
        checkpoints = RunCheckpoints(checkpoint_dir, {
            "engine": "local", "train_config": to_dict(train_config),
            "vocab_config": to_dict(vocab.config), "sources": sources,
            "vocab_size": len(vocab), "corpus_words": vocab.corpus_words,
            **({"init": run_config.init} if run_config.init else {})})
        first = min(checkpoints.epochs_done(), train_config.epochs)  # another run: refused now
        if first:
            log(f"resuming after epoch {first} of {train_config.epochs}, saved in "
                f"{checkpoints.uri}")
    start = time.perf_counter()
    work_dir = None
    try:
        if encoded is None:
            # next to the output: shards can be large, and /tmp is often small
            work_dir = Path(tempfile.mkdtemp(prefix=f".{out.name}.encoding-" if out else
                                             "distw2v-encoding-",
                                             dir=out.parent if out else None))
            if isinstance(corpus, Sentences):
                with Phase(on_progress, "encoding", vocab.corpus_words, "word") as phase:
                    encoded = encode_corpus(_words(corpus, phase), vocab, work_dir / "encoded")
            else:
                encoded, _ = encode(sources, vocab, work_dir / "encoded", on_progress)
        vectors, words = train_vectors(encoded, vocab, train_config, on_progress, checkpoints,
                                       init, run_config.keep_output)
    finally:
        if work_dir is not None:
            shutil.rmtree(work_dir, ignore_errors=True)
    seconds = time.perf_counter() - start
    vectors.meta["sources"] = sources
    if init is not None and run_config.init:
        vectors.meta["init"] = provenance(run_config.init, init)
    if out is not None:
        vectors.save(out, ann_threshold)
    if word2vec is not None:
        vectors.save_word2vec(word2vec, binary=Path(word2vec).suffix != ".txt")
    return vectors, Summary(encoded.corpus_words, words, seconds, peak_rss_mb(),
                            epoch_loss=read_loss_record(vectors.meta["epoch_loss"]))

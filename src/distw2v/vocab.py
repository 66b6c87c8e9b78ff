"""Vocabulary: streaming counts with a memory bound, frequency order, sampling tables."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from .config import VocabConfig, from_dict, to_dict
from .errors import ModelFormatError, VocabularyError
from .kernels.sampling import build_alias_table
from .tsv import read_word_counts, write_word_counts

FORMAT = "distw2v-vocab"
FORMAT_VERSION = 1
NEGATIVE_POWER = 0.75
K = TypeVar("K", str, tuple[str, str])  # a word, or a bigram


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """Words in descending frequency order (ties broken alphabetically), with their counts."""

    words: list[str]
    counts: np.ndarray  # int64, same order as words
    corpus_words: int  # every token read, including the ones outside the vocabulary
    config: VocabConfig = field(default_factory=VocabConfig)
    prune_passes: int = 0  # how often the max_vocab_size bound pruned rare words
    distinct: int | None = None  # distinct words counted (None: not known, as when loaded)

    def __len__(self) -> int:
        return len(self.words)

    @cached_property
    def index(self) -> dict[str, int]:
        return {word: i for i, word in enumerate(self.words)}

    @property
    def retained_words(self) -> int:
        """Tokens of the corpus that are in the vocabulary."""
        return int(self.counts.sum())

    def keep_probabilities(self, sample: float) -> np.ndarray:
        return keep_probabilities(self.counts, sample)

    def negative_table(self) -> tuple[np.ndarray, np.ndarray]:
        return negative_table(self.counts)

    def save(self, path: str | Path) -> None:
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "size": len(self.words),
            "corpus_words": self.corpus_words,
            "prune_passes": self.prune_passes,
            "config": to_dict(self.config),
        }
        tmp = Path(f"{path}.tmp")
        write_word_counts(tmp, self.words, self.counts, header)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        header, words, counts = read_word_counts(path)
        if header.get("format") != FORMAT or header.get("format_version") != FORMAT_VERSION:
            raise ModelFormatError(f"{path} is not a distw2v vocabulary (format version 1).")
        return cls(
            words=words,
            counts=counts,
            corpus_words=int(header["corpus_words"]),
            config=from_dict(VocabConfig, header.get("config", {})),
            prune_passes=int(header.get("prune_passes", 0)),
        )


def negative_table(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Alias table (probabilities, aliases) for O(1) draws from count**0.75: the one
    negative-sampling distribution, of the local trainer and the parameter-server shards."""
    return build_alias_table(counts.astype(np.float64) ** NEGATIVE_POWER)


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """Probability of keeping each occurrence of a word (word2vec's subsampling formula)."""
    counts = counts.astype(np.float64)
    if sample <= 0:
        return np.ones(len(counts), dtype=np.float32)
    threshold = sample * counts.sum()
    keep = (np.sqrt(counts / threshold) + 1.0) * threshold / counts
    return np.minimum(keep, 1.0).astype(np.float32)


class BoundedCounter(Generic[K]):
    """Counts words (or bigrams: phrases.py); past `limit` distinct keys it drops the rarest,
    as word2vec's ReduceVocab."""

    def __init__(self, limit: int | None) -> None:
        self.counts: Counter[K] = Counter()
        self.limit = limit
        self.min_reduce = 1
        self.prune_passes = 0

    def add(self, tokens: Iterable[K]) -> None:
        self.counts.update(tokens)
        if self.limit is not None and len(self.counts) > self.limit:
            self._prune(self.limit)

    def _prune(self, limit: int) -> None:
        # Raise the floor until the bound holds; each pass forgets counts at or below it.
        while len(self.counts) > limit:
            floor = self.min_reduce
            self.counts = Counter({w: c for w, c in self.counts.items() if c > floor})
            self.min_reduce += 1
            self.prune_passes += 1


# Vocabulary selection, the one home of its rules (the Spark driver's distributed count uses
# them too): a word survives min_count, survivors go in frequency order, and max_final_vocab
# keeps the first of them.


def survives(count: int, config: VocabConfig) -> bool:
    """Whether a word counted `count` times may enter the vocabulary (min_count)."""
    return count >= config.min_count


def frequency_order(word_count: tuple[str, int]) -> tuple[int, str]:
    """The vocabulary's order as a sort key: descending count, ties alphabetical."""
    word, count = word_count
    return (-count, word)


def within_final_vocab(rank: int, config: VocabConfig) -> bool:
    """Whether the survivor at 0-based `rank` in frequency order stays (max_final_vocab). A
    continued run's new words rank after the model's (`rank` counts those too)."""
    return config.max_final_vocab is None or rank < config.max_final_vocab


def empty_corpus_error() -> VocabularyError:
    return VocabularyError("the corpus is empty: it holds no words.")


def too_rare_error(config: VocabConfig, best: int) -> VocabularyError:
    """No word survives min_count; `best` is the highest count of any word."""
    return VocabularyError(
        f"no word occurs at least min_count={config.min_count} times "
        f"(the most frequent occurs {best} times); lower --min-count."
    )


def build_vocabulary(
    sentences: Iterable[list[str]],
    config: VocabConfig,
    on_sentences: Callable[[int], None] | None = None,
    base: Vocabulary | None = None,
) -> Vocabulary:
    """Count tokens from a stream of sentences and keep the frequent ones; with `base` (a
    continued run's model), extend it (`extended_vocabulary`)."""
    counter: BoundedCounter[str] = BoundedCounter(config.max_vocab_size)
    corpus_words = 0
    batch = 0
    for tokens in sentences:
        counter.add(tokens)
        corpus_words += len(tokens)
        batch += 1
        if on_sentences is not None and batch == 10_000:
            on_sentences(batch)
            batch = 0
    if on_sentences is not None and batch:
        on_sentences(batch)
    if corpus_words == 0:
        raise empty_corpus_error()
    if base is not None:
        return extended_vocabulary(base, counter.counts, corpus_words, config,
                                   counter.prune_passes)
    return vocabulary_from_counts(counter.counts, corpus_words, config, counter.prune_passes)


def extended_vocabulary(
    base: Vocabulary, counts: dict[str, int], corpus_words: int, config: VocabConfig,
    prune_passes: int = 0,
) -> Vocabulary:
    """A continued run's vocabulary, as gensim's build_vocab(update=True): the model's words
    keep their ids, with old + new counts (the sampling tables see both corpora); the new
    corpus's words that pass min_count and are not the model's follow, in frequency order."""
    merged = base.counts.copy()
    index = base.index
    for word, count in counts.items():
        at = index.get(word)
        if at is not None:
            merged[at] += count
    new = sorted(((w, c) for w, c in counts.items() if w not in index and survives(c, config)),
                 key=frequency_order)
    new = [wc for rank, wc in enumerate(new, len(base)) if within_final_vocab(rank, config)]
    return Vocabulary(
        words=base.words + [w for w, _ in new],
        counts=np.concatenate([merged, np.array([c for _, c in new], dtype=np.int64)]),
        corpus_words=corpus_words,
        config=config,
        prune_passes=prune_passes,
        distinct=len(counts),
    )


def vocabulary_from_counts(
    counts: dict[str, int], corpus_words: int, config: VocabConfig, prune_passes: int = 0
) -> Vocabulary:
    kept = [(w, c) for w, c in counts.items() if survives(c, config)]
    if not kept:
        raise too_rare_error(config, max(counts.values(), default=0))
    kept.sort(key=frequency_order)
    kept = [wc for rank, wc in enumerate(kept) if within_final_vocab(rank, config)]
    words = [w for w, _ in kept]
    return Vocabulary(
        words=words,
        counts=np.fromiter((c for _, c in kept), dtype=np.int64, count=len(kept)),
        corpus_words=corpus_words,
        config=config,
        prune_passes=prune_passes,
        distinct=len(counts),
    )


def describe(vocab: Vocabulary) -> str:
    distinct = "" if vocab.distinct is None else (
        f"{'at least ' if vocab.prune_passes else ''}{vocab.distinct:,} distinct, ")
    text = (
        f"vocabulary: {vocab.corpus_words:,} corpus words, {distinct}{len(vocab):,} kept "
        f"(min_count={vocab.config.min_count}) covering {vocab.retained_words:,} of them"
    )
    if vocab.prune_passes:
        text += (
            f"; counting hit max_vocab_size={vocab.config.max_vocab_size:,} and pruned rare "
            f"words {vocab.prune_passes} time(s), so their counts are approximate"
        )
    return text

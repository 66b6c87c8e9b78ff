"""The Spark engine's corpus, on the executors: input splits read into sentences, a
distributed count in distw2v.vocab's order and selection, and the corpus encoded as ids, with
a broadcast word->id table or, for vocabularies above --broadcast-limit, a hash join by word
that no process holds whole."""

from __future__ import annotations

import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from itertools import islice
from operator import add
from pathlib import Path
from typing import Any

import numpy as np

from ..checkpoints import save_arrays
from ..config import SparkConfig, TrainConfig, VocabConfig
from ..corpus import CorpusStats, describe_stats, iter_sentences_in_range, load_phrases
from ..corpus.hints import TOP_WORDS, reading_warnings
from ..errors import CorpusError
from ..vocab import (
    Vocabulary,
    empty_corpus_error,
    frequency_order,
    keep_probabilities,
    survives,
    too_rare_error,
    within_final_vocab,
)

BUCKET_WORDS = 1_000_000  # vocabulary words one task of the encoding join holds in a dict


def _read_split(split: tuple[str, int, int | None], config: VocabConfig,
                seen: Any = None, phrases: Any = None) -> Iterator[list[str]]:
    """One split's sentences, with the phrases of the broadcast table `phrases` joined; what
    reading saw is added to the accumulator `seen` after."""
    stats = CorpusStats()
    table = phrases.value if phrases is not None else None
    yield from iter_sentences_in_range(*split, config, stats, table)
    if split[1] > 0:  # a file read in pieces counts once: in the piece at its start
        stats.files = 0
    if seen is not None:
        seen.add(stats)


class StatsSum:
    """Spark's AccumulatorParam for CorpusStats (it needs only these two methods): adds up
    what the executors' splits saw (the first malformed record is the first reported)."""

    def zero(self, value: CorpusStats) -> CorpusStats:
        return CorpusStats()

    def addInPlace(self, total: CorpusStats, more: CorpusStats) -> CorpusStats:  # noqa: N802
        for f in fields(CorpusStats):
            mine, theirs = getattr(total, f.name), getattr(more, f.name)
            if isinstance(mine, int) and isinstance(theirs, int):
                setattr(total, f.name, mine + theirs)
        total.first_malformed = total.first_malformed or more.first_malformed
        total.sniffed = total.sniffed or more.sniffed
        return total


def _count_partition(sentences: Iterator[list[str]]) -> Iterator[tuple[str, int]]:
    counts: Counter[str] = Counter()
    for tokens in sentences:
        counts.update(tokens)
    return iter(counts.items())


def _encode_with_table(table: Any) -> Callable[[Iterator[list[str]]], Iterator[Any]]:
    def encode(sentences: Iterator[list[str]]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        lookup = table.value.get
        ids: list[int] = []
        offsets = [0]
        for tokens in sentences:
            known = [i for i in map(lookup, tokens) if i is not None]
            if known:
                ids.extend(known)
                offsets.append(len(ids))
        yield np.asarray(ids, dtype=np.int32), np.asarray(offsets, dtype=np.int64)

    return encode


def _encode_locally(sentences: Iterator[list[str]]) -> Iterator[Any]:
    """One partition as ids into its own word list: (distinct words, ids, offsets)."""
    local: dict[str, int] = {}
    ids: list[int] = []
    offsets = [0]
    for tokens in sentences:
        ids.extend(local.setdefault(w, len(local)) for w in tokens)
        offsets.append(len(ids))
    yield list(local), np.asarray(ids, dtype=np.int32), np.asarray(offsets, dtype=np.int64)


def _bucket(word: str, buckets: int) -> int:
    return zlib.crc32(word.encode()) % buckets  # the same in every process, unlike hash()


def _split_by_bucket(words: list[str], values: np.ndarray, buckets: int,
                     tag: Any) -> Iterator[tuple[int, Any]]:
    """(bucket, (tag, its words, their values)) for every bucket `words` fall in."""
    of = np.fromiter((_bucket(w, buckets) for w in words), dtype=np.int64, count=len(words))
    for b in np.unique(of).tolist():
        at = np.flatnonzero(of == b)
        yield b, (tag, [words[k] for k in at.tolist()], values[at])


def _partition_words_by_bucket(
        buckets: int) -> Callable[[int, Iterator[Any]], Iterator[tuple[int, Any]]]:
    """Each partition's distinct words, sent to the buckets they hash to."""
    def split(part: int, blocks: Iterator[Any]) -> Iterator[tuple[int, Any]]:
        for words, _, _ in blocks:
            yield from _split_by_bucket(words, np.arange(len(words)), buckets, part)
    return split


def _vocabulary_by_bucket(
        buckets: int) -> Callable[[Iterator[tuple[str, int]]], Iterator[tuple[int, Any]]]:
    """The (word, id) vocabulary, sent to the buckets its words hash to."""
    def split(rows: Iterator[tuple[str, int]]) -> Iterator[tuple[int, Any]]:
        words: list[str] = []
        ids: list[int] = []
        for word, word_id in rows:
            words.append(word)
            ids.append(word_id)
        yield from _split_by_bucket(words, np.asarray(ids, dtype=np.int64), buckets, None)
    return split


def _look_up_in_bucket(pieces: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
    """One bucket: look up every partition's words in the vocabulary words of the bucket."""
    ids: dict[str, int] = {}
    asked = []
    for _, (part, words, values) in pieces:
        if part is None:
            ids.update(zip(words, values.tolist()))
        else:
            asked.append((part, words, values))
    for part, words, local_ids in asked:
        found = np.fromiter((ids.get(w, -1) for w in words), dtype=np.int64, count=len(words))
        known = found >= 0
        yield part, (local_ids[known], found[known])


def _answers_to_partition(pieces: Iterator[tuple[int, Any]]) -> Iterator[Any]:
    """The (local id, vocabulary id) answers that came back to one partition, as two arrays."""
    answers = [answer for _, answer in pieces]
    yield (np.concatenate([a for a, _ in answers] or [np.empty(0, np.int64)]),
           np.concatenate([b for _, b in answers] or [np.empty(0, np.int64)]))


def _translate(pair: tuple[Any, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Local ids to vocabulary ids; words outside the vocabulary and then-empty sentences go."""
    (words, ids, offsets), (local_ids, word_ids) = pair
    table = np.full(len(words), -1, dtype=np.int64)
    table[local_ids] = word_ids
    mapped = table[ids]
    known = mapped >= 0
    kept_before = np.concatenate([[0], np.cumsum(known)])[offsets]
    nonempty = np.concatenate([[True], np.diff(kept_before) > 0])
    return mapped[known].astype(np.int32), kept_before[nonempty]


def encode_by_join(sentences: Any, vocab: Any, vocab_size: int) -> tuple[Any, Any]:
    """Encode without any process holding the word->id table: a hash join by word.

    Each partition numbers its own distinct words; only those words travel, in one record
    per (partition, bucket), to the bucket holding that part of the (word, id) `vocab`, and
    come back to their partition as a small table. The tokens never leave their partition,
    and a bucket holds about BUCKET_WORDS vocabulary words at most. Returns the encoded RDD
    and a persisted one to unpersist once that is materialised."""
    from pyspark import StorageLevel

    parts = sentences.getNumPartitions()
    buckets = max(parts, -(-vocab_size // BUCKET_WORDS))
    numbered = sentences.mapPartitions(_encode_locally).persist(StorageLevel.MEMORY_AND_DISK)
    tables = (numbered.mapPartitionsWithIndex(_partition_words_by_bucket(buckets))
              .union(vocab.mapPartitions(_vocabulary_by_bucket(buckets)))
              .partitionBy(buckets, lambda b: b)
              .mapPartitions(_look_up_in_bucket)
              .partitionBy(parts, lambda i: i)  # the table for partition i lands in partition i
              .mapPartitions(_answers_to_partition))
    return numbered.zip(tables).map(_translate), numbered


@dataclass(frozen=True)
class SparkCorpus:
    """The encoded corpus on the executors, and what the driver keeps of its vocabulary."""

    encoded: Any  # persisted RDD of (ids, offsets), one record per partition
    words_file: Path  # the vocabulary, one word a line, in id order
    counts: np.ndarray  # int64, one count a word
    corpus_words: int
    trained_words: int  # words of the vocabulary in the corpus: one epoch's work
    files: list[str]


def _ranked(sc: Any, counts: Any, config: VocabConfig, base: Vocabulary | None) -> Any:
    """((word, count), id) of the vocabulary, in id order: the distributed count selected
    and ordered by distw2v.vocab's rules; with `base` (a continued run's model), extended as
    vocab.extended_vocabulary does (its words first, with old + new counts)."""
    kept = counts.filter(lambda wc: survives(wc[1], config))
    if base is None:
        return (kept.sortBy(frequency_order).zipWithIndex()
                .filter(lambda r: within_final_vocab(r[1], config)))
    size = len(base)
    old = sc.parallelize([(w, (i, c)) for i, (w, c) in
                          enumerate(zip(base.words, base.counts.tolist()))])
    merged = old.leftOuterJoin(counts).map(
        lambda r: ((r[0], r[1][0][1] + (r[1][1] or 0)), r[1][0][0]))
    new = (kept.subtractByKey(old).sortBy(frequency_order).zipWithIndex()
           .map(lambda r: (r[0], r[1] + size))
           .filter(lambda r: within_final_vocab(r[1], config)))
    return merged.union(new).sortBy(lambda r: r[1])


def encode_on_spark(sc: Any, splits: list[tuple[str, int, int | None]], partitions: int,
                    work: str, words_file: Path, vocab_config: VocabConfig,
                    train_config: TrainConfig, spark_config: SparkConfig,
                    log: Callable[[str], None], base: Vocabulary | None = None) -> SparkCorpus:
    """Count the vocabulary (extending `base`, a continued run's model's), write the counts
    for shards and executors to `work`, and encode the corpus as ids on the executors."""
    from pyspark import StorageLevel

    files = list(dict.fromkeys(uri for uri, _, _ in splits))
    seen = sc.accumulator(CorpusStats(), StatsSum())
    # read by the driver (as the source policy allows), so executors need not reach the file
    phrases = sc.broadcast(load_phrases(vocab_config)) if vocab_config.phrases else None
    sentences = (sc.parallelize(splits, len(splits))  # a big plain file is read in pieces
                 .flatMap(lambda split: _read_split(split, vocab_config, seen, phrases))
                 .repartition(partitions)
                 .persist(StorageLevel.MEMORY_AND_DISK))
    ranked: Any = None
    numbered: Any = None  # the join's partitions, words numbered within each
    try:
        # vocabulary: a distributed count, then frequency order with ids from zipWithIndex
        counts = sentences.mapPartitions(_count_partition).reduceByKey(add)
        corpus_words = counts.values().sum()
        log("read " + describe_stats(seen.value))
        if corpus_words == 0:
            raise empty_corpus_error()
        ranked = _ranked(sc, counts, vocab_config, base).persist(StorageLevel.MEMORY_AND_DISK)
        # The driver keeps the words in a file, not a list: at hundreds of millions of words a
        # list of str would be tens of GB. Counts are an array, 8 bytes a word.
        counts_array = array("q")
        with open(words_file, "w", encoding="utf-8", newline="\n") as lines:
            for (word, count), _ in ranked.toLocalIterator():
                lines.write(word + "\n")
                counts_array.append(count)
        n_words = len(counts_array)
        if not n_words:
            raise too_rare_error(vocab_config, counts.values().max())
        vocab_counts = np.frombuffer(counts_array, dtype=np.int64)
        # a continued run's counts hold the model's too: those are not this corpus's
        covered = int(vocab_counts.sum()) - (int(base.counts.sum()) if base is not None else 0)
        log(f"vocabulary: {n_words:,} words (min_count={vocab_config.min_count}) covering "
            f"{covered:,} of {corpus_words:,} corpus words (distributed count)")
        for warning in reading_warnings(vocab_config, seen.value,
                                        islice(read_words(words_file), TOP_WORDS)):
            log(warning)
        save_arrays(work, {"counts": vocab_counts,  # read by the shards and the executors
                           "keep": keep_probabilities(vocab_counts, train_config.sample)},
                    what="the word counts (see --work-dir)")

        if n_words <= spark_config.broadcast_limit:
            table = sc.broadcast({w: i for i, w in enumerate(read_words(words_file))})
            encoded = sentences.mapPartitions(_encode_with_table(table))
        else:
            log(f"vocabulary above --broadcast-limit={spark_config.broadcast_limit:,}: "
                "encoding with a distributed join")
            encoded, numbered = encode_by_join(sentences, ranked.map(lambda r: (r[0][0], r[1])),
                                            n_words)
        encoded = encoded.persist(StorageLevel.MEMORY_AND_DISK)
        trained_words = encoded.map(lambda p: len(p[0])).sum()
    finally:
        for rdd in (sentences, ranked, numbered):
            if rdd is not None:
                rdd.unpersist()
    if trained_words == 0:
        raise CorpusError("the corpus holds no word of the vocabulary; nothing to train on.")
    return SparkCorpus(encoded, words_file, vocab_counts, corpus_words, trained_words, files)


def read_words(path: Path) -> Iterator[str]:
    """The words of a file of one word a line, in order."""
    with open(path, encoding="utf-8", newline="\n") as lines:
        for line in lines:
            yield line[:-1]

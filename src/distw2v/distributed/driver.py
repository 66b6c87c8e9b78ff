"""The Spark driver: distributed vocabulary and encoding, training against parameter-server
shards, and an export that streams row blocks from the shards.

Nothing here holds a whole matrix: the shards hold column slices, executors hold encoded ids,
and the export writes blocks of rows as they arrive. The shards run as subprocesses of the
driver (`processes`), as Spark tasks (`spark_shards`), or an operator's (`--ps`); the epochs,
checkpoints and recovery are `epochs.TrainingLoop`.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from itertools import islice
from operator import add
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..checkpoints import RunCheckpoints, prepare_dir, save_arrays
from ..config import RunConfig, SparkConfig, TrainConfig, VocabConfig, to_dict
from ..corpus import input_splits, iter_sentences_in_range
from ..errors import CorpusError, Distw2vError
from ..memory import peak_rss_mb, process_peak_rss_mb
from ..progress import OnProgress, Phase, Summary
from ..vectors import VectorsWriter, Word2VecWriter
from ..vocab import (
    empty_corpus_error,
    frequency_order,
    keep_probabilities,
    survives,
    too_rare_error,
    within_final_vocab,
)
from .client import PSClient, column_ranges
from .epochs import TrainingLoop
from .processes import ShardProcesses
from .server import new_secret
from .session import spark_context, spark_failure
from .shard import ShardSpec
from .spark_shards import SparkShards
from .worker import WorkerSettings

EXPORT_BLOCK_BYTES = 32 << 20
SPLIT_BYTES = 64 << 20  # uncompressed input files are read by one task per this many bytes
BUCKET_WORDS = 1_000_000  # vocabulary words one task of the encoding join holds in a dict
SLOT_WAIT_SECONDS = 60.0  # for a cluster's executors to register the cores training needs
SLOT_POLL_SECONDS = 0.5


# --- corpus, vocabulary and encoding on executors ---------------------------------------------


def _read_split(split: tuple[str, int, int | None], config: VocabConfig) -> Iterator[list[str]]:
    return iter_sentences_in_range(*split, config)


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


def _asked(buckets: int) -> Callable[[int, Iterator[Any]], Iterator[tuple[int, Any]]]:
    def split(part: int, blocks: Iterator[Any]) -> Iterator[tuple[int, Any]]:
        for words, _, _ in blocks:
            yield from _split_by_bucket(words, np.arange(len(words)), buckets, part)
    return split


def _known(buckets: int) -> Callable[[Iterator[tuple[str, int]]], Iterator[tuple[int, Any]]]:
    def split(rows: Iterator[tuple[str, int]]) -> Iterator[tuple[int, Any]]:
        words: list[str] = []
        ids: list[int] = []
        for word, word_id in rows:
            words.append(word)
            ids.append(word_id)
        yield from _split_by_bucket(words, np.asarray(ids, dtype=np.int64), buckets, None)
    return split


def _answer(pieces: Iterator[tuple[int, Any]]) -> Iterator[tuple[int, Any]]:
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


def _to_global(pieces: Iterator[tuple[int, Any]]) -> Iterator[Any]:
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
    tables = (numbered.mapPartitionsWithIndex(_asked(buckets))
              .union(vocab.mapPartitions(_known(buckets)))
              .partitionBy(buckets, lambda b: b)
              .mapPartitions(_answer)
              .partitionBy(parts, lambda i: i)  # the table for partition i lands in partition i
              .mapPartitions(_to_global))
    return numbered.zip(tables).map(_translate), numbered


# --- the driver ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SparkCorpus:
    """The encoded corpus on the executors, and what the driver keeps of its vocabulary."""

    encoded: Any  # persisted RDD of (ids, offsets), one record per partition
    words_file: Path  # the vocabulary, one word a line, in id order
    counts: np.ndarray  # int64, one count a word
    corpus_words: int
    trained_words: int  # words of the vocabulary in the corpus: one epoch's work
    files: list[str]


def train_spark(
    sources: Sequence[str],
    out: str | Path,
    vocab_config: VocabConfig,
    train_config: TrainConfig,
    spark_config: SparkConfig,
    *,
    run_config: RunConfig | None = None,
    word2vec: Path | None = None,
    on_progress: OnProgress | None = None,
    log: Callable[[str], None] = lambda _: None,
    ann_threshold: int | None = None,
) -> tuple[dict[str, Any], Summary]:
    """Train on Spark against column-partitioned shards; write the model to `out` (with a
    nearest-neighbour index from `ann_threshold` words, as VectorsWriter says).

    Returns the run's figures (words, pairs, bytes on the wire, ...) and the summary."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    splits = input_splits(sources, SPLIT_BYTES)
    checkpoint_dir = (run_config or RunConfig()).checkpoint_dir
    if checkpoint_dir:
        prepare_dir(checkpoint_dir)
    local = tempfile.mkdtemp(prefix=f".{out.name}.spark-", dir=out.parent)  # the driver's
    work = (spark_config.work_dir or local).rstrip("/")
    try:
        with spark_context(spark_config.spark_master,
                           max_cores=spark_config.max_cores) as sc:
            try:
                corpus = _encode(sc, splits, work, Path(local) / "words.txt", vocab_config,
                                 train_config, spark_config, log)
                # The shards start once the corpus is encoded: as Spark tasks, they would
                # hold task slots the counting and encoding need.
                with _shard_group(sc, spark_config, work, checkpoint_dir) as shards:
                    _log_placement(shards, log)
                    return _train(sc, shards, corpus, out, word2vec, work, vocab_config,
                                  train_config, spark_config, checkpoint_dir, on_progress, log,
                                  ann_threshold)
            except Distw2vError:
                raise
            except Exception as exc:  # a failed Spark job: Py4J wraps the executor's error
                raise spark_failure(exc) from None
    finally:
        shutil.rmtree(local, ignore_errors=True)


def _check_slots(sc: Any, config: SparkConfig, wait_seconds: float = 0.0) -> None:
    """Shards placed by Spark hold a task slot each for the whole run: training needs more
    slots than that, or it would wait for ever. A cluster's executors register their cores
    one by one, so they get `wait_seconds` to appear."""
    deadline = time.monotonic() + wait_seconds
    while sc.defaultParallelism <= config.shards and time.monotonic() < deadline:
        time.sleep(SLOT_POLL_SECONDS)
    if sc.defaultParallelism <= config.shards:
        raise Distw2vError(
            f"the Spark application has {sc.defaultParallelism} task slots, and the "
            f"{config.shards} shards placed by Spark hold one each: none is left for "
            "training; give it more cores (local[N] with N > shards, more executors, a "
            "larger --max-cores), fewer --shards, or --shards-on local.")


@contextmanager
def _shard_group(sc: Any, config: SparkConfig, work: str,
                 checkpoint_dir: str | None) -> Iterator[ShardProcesses | SparkShards]:
    group: ShardProcesses | SparkShards
    local = config.spark_master.startswith("local")
    if config.shards_placed_by_spark:
        if local:  # a local master's slots are known at once; a cluster's once shards run
            _check_slots(sc, config)
        group = SparkShards(sc, config.shards, secret=new_secret(), work_root=work,
                            checkpoint_root=checkpoint_dir,
                            host="127.0.0.1" if local else None)
    else:
        group = ShardProcesses(config, work_root=work, checkpoint_root=checkpoint_dir)
    group.start()
    try:
        if isinstance(group, SparkShards) and not local:
            _check_slots(sc, config, wait_seconds=SLOT_WAIT_SECONDS)
        yield group
    finally:
        group.stop()


def _log_placement(shards: ShardProcesses | SparkShards, log: Callable[[str], None]) -> None:
    if isinstance(shards, SparkShards):
        for i, note in enumerate(shards.placement):
            log(f"parameter-server shard {i} at {note['address']} on executor "
                f"{note['executor']} (pid {note['pid']})")


def _encode(sc: Any, splits: list[tuple[str, int, int | None]], work: str, words_file: Path,
            vocab_config: VocabConfig, train_config: TrainConfig, spark_config: SparkConfig,
            log: Callable[[str], None]) -> SparkCorpus:
    """Count the vocabulary, write the counts for shards and executors to `work`, and encode
    the corpus as ids on the executors."""
    from pyspark import StorageLevel

    files = list(dict.fromkeys(uri for uri, _, _ in splits))
    sentences = (sc.parallelize(splits, len(splits))  # a big plain file is read in pieces
                 .flatMap(lambda split: _read_split(split, vocab_config))
                 .repartition(_partitions(sc, spark_config, log))
                 .persist(StorageLevel.MEMORY_AND_DISK))
    ranked: Any = None
    numbered: Any = None  # the join's partitions, words numbered within each
    try:
        # vocabulary: a distributed count, then frequency order with ids from zipWithIndex
        counts = sentences.mapPartitions(_count_partition).reduceByKey(add)
        corpus_words = counts.values().sum()
        if corpus_words == 0:
            raise empty_corpus_error()
        # the selection rules of distw2v.vocab, applied to the distributed count
        kept = counts.filter(lambda wc: survives(wc[1], vocab_config))
        ranked = (kept.sortBy(frequency_order).zipWithIndex()
                  .filter(lambda r: within_final_vocab(r[1], vocab_config))
                  .persist(StorageLevel.MEMORY_AND_DISK))
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
        log(f"vocabulary: {n_words:,} words (min_count={vocab_config.min_count}) covering "
            f"{int(vocab_counts.sum()):,} of {corpus_words:,} corpus words (distributed count)")
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


def _partitions(sc: Any, config: SparkConfig, log: Callable[[str], None]) -> int:
    """Training tasks per epoch: one per slot the shards leave free, or several when
    checkpoints within an epoch need finished partitions to record."""
    if config.partitions:
        return config.partitions
    slots = sc.defaultParallelism - (config.shards if config.shards_placed_by_spark else 0)
    partitions = max(slots, 1) * (8 if config.checkpoint_every else 1)
    if config.checkpoint_every:
        log(f"training in {partitions} partitions: a checkpoint within an epoch keeps the "
            "finished ones (set --partitions for more)")
    return partitions


def _train(sc: Any, shards: ShardProcesses | SparkShards, corpus: SparkCorpus, out: Path,
           word2vec: Path | None, work: str, vocab_config: VocabConfig,
           train_config: TrainConfig, spark_config: SparkConfig, checkpoint_dir: str | None,
           on_progress: OnProgress | None, log: Callable[[str], None],
           ann_threshold: int | None) -> tuple[dict[str, Any], Summary]:
    n_words, dim, trained_words = len(corpus.counts), train_config.dim, corpus.trained_words
    specs = [ShardSpec(vocab_size=n_words, dim=dim, lo=lo, hi=hi,
                       negative=train_config.negative, seed=train_config.seed,
                       counts_uri=f"{work}/counts.npy", shards=len(shards.addresses),
                       model=train_config.model)
             for lo, hi in column_ranges(dim, len(shards.addresses))]
    checkpoints = None
    if checkpoint_dir:
        checkpoints = RunCheckpoints(checkpoint_dir, {
            "engine": "spark",
            "train_config": to_dict(train_config), "vocab_config": to_dict(vocab_config),
            "sources": corpus.files, "vocab_size": n_words, "trained_words": trained_words,
            "shards": len(shards.addresses)})
        checkpoints.position()  # another run's checkpoints are refused before any training
    settings = WorkerSettings(
        window=train_config.window, start_alpha=train_config.start_alpha,
        min_alpha=train_config.min_alpha, total_words=trained_words * train_config.epochs,
        batch_pairs=spark_config.batch_pairs, chunk_words=train_config.batch_words,
        seed=train_config.seed)
    every = spark_config.checkpoint_every
    loop = TrainingLoop(sc, corpus.encoded, shards, specs, settings, train_config.epochs,
                        trained_words, work, checkpoints,
                        checkpoint_seconds=every * 60 if every else None,
                        max_recoveries=spark_config.max_recoveries, log=log)
    loop.shown = min(loop.saved().words(trained_words), trained_words * train_config.epochs)
    phase = Phase(on_progress, "training", trained_words * train_config.epochs, "word",
                  initial=loop.shown)
    start = time.perf_counter()
    control = PSClient(shards.addresses, secret=shards.secret)
    try:
        try:
            control = loop.run(phase, control)
        finally:
            phase.close()
        corpus.encoded.unpersist()
        seconds = time.perf_counter() - start
        shard_stats = control.stats()
        meta = {"distw2v_version": __version__, "engine": "spark",
                "train_config": to_dict(train_config), "vocab_config": to_dict(vocab_config),
                "spark_config": to_dict(spark_config), "trained_words": loop.figures["words"],
                "train_seconds": round(seconds, 3), "sources": corpus.files}
        export(control, out, corpus.words_file, corpus.counts, dim, meta, word2vec,
               ann_threshold)
        loop.count_driver_traffic(control)
    finally:
        control.close()
    figures: dict[str, Any] = dict(loop.figures)
    figures.update(shards=len(shards.addresses), dim=dim, seconds=seconds,
                   recoveries=loop.recoveries,
                   shard_bytes_held=[s["bytes_held"] for s in shard_stats],
                   shard_bytes_in=[s["bytes_in"] for s in shard_stats],
                   shard_bytes_out=[s["bytes_out"] for s in shard_stats],
                   shard_peak_rss_mb=[s["peak_rss_mb"] for s in shard_stats],
                   process_bytes={name: {"sent": sent, "received": received}
                                  for name, (sent, received) in loop.traffic.items()},
                   executor_python_peak_rss_mb=max(loop.worker_peaks, default=0.0),
                   jvm_peak_rss_mb=jvm_peak_rss_mb(sc))
    return figures, Summary(corpus.corpus_words, loop.figures["words"], seconds, peak_rss_mb())


def jvm_peak_rss_mb(sc: Any) -> float:
    """Peak memory of the JVM behind this SparkContext (the driver, and in local mode the
    executors too); 0 when it runs elsewhere."""
    try:
        pid = int(sc._jvm.java.lang.ProcessHandle.current().pid())
    except Exception:  # a remote or unusual gateway: not measurable from here
        return 0.0
    return process_peak_rss_mb(pid)


def read_words(path: Path) -> Iterator[str]:
    """The words of a file of one word a line, in order."""
    with open(path, encoding="utf-8", newline="\n") as lines:
        for line in lines:
            yield line[:-1]


def export(client: PSClient, out: Path, words_file: Path, counts: np.ndarray, dim: int,
           meta: dict[str, Any], word2vec: Path | None = None,
           ann_threshold: int | None = None) -> None:
    """Stream row blocks from the shards into the native format (and a word2vec file: binary,
    or text when its name ends in .txt), never holding more than one block of rows or
    words: `words_file` has one word a line, as many as `counts`."""
    n = len(counts)
    rows = max(1, EXPORT_BLOCK_BYTES // (4 * dim))
    side: Any = (Word2VecWriter(word2vec, n, dim, binary=word2vec.suffix != ".txt")
                 if word2vec is not None else nullcontext())
    block_words = read_words(words_file)
    with VectorsWriter(out, read_words(words_file), counts, dim, meta,
                       ann_threshold=ann_threshold) as native, side as w2v:
        for lo in range(0, n, rows):
            hi = min(lo + rows, n)
            block = client.pull(lo, hi)
            native.write_rows(lo, block)
            if w2v is not None:
                w2v.write_rows(list(islice(block_words, hi - lo)), block)

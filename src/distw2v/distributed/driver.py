"""The Spark driver: distributed vocabulary and encoding, training against parameter-server
shards, and an export that streams row blocks from the shards.

Nothing here holds a whole matrix: the shards hold column slices, executors hold encoded ids,
and the export writes blocks of rows as they arrive. Spark wraps the plain classes at the edge:
tasks are the functions at the bottom of this module.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from itertools import islice
from operator import add
from pathlib import Path
from typing import Any

import fsspec
import numpy as np

from .. import __version__
from ..checkpoints import RunCheckpoints, prepare_dir, save_arrays
from ..config import RunConfig, SparkConfig, TrainConfig, VocabConfig, to_dict
from ..corpus import input_splits, iter_sentences_in_range
from ..errors import CorpusError, Distw2vError, VocabularyError
from ..pipeline import ProgressFactory, Summary, peak_rss_mb, process_peak_rss_mb, silent
from ..sources import ENV_VAR as SOURCE_POLICY_VAR
from ..vectors import VectorsWriter, Word2VecWriter
from ..vocab import keep_probabilities
from .client import PSClient, ShardUnavailableError, column_ranges
from .processes import ShardProcesses
from .shard import ShardSpec
from .worker import WorkerSettings, WorkerStats, train_partition

EXPORT_BLOCK_BYTES = 32 << 20
SPLIT_BYTES = 64 << 20  # uncompressed input files are read by one task per this many bytes
BUCKET_WORDS = 1_000_000  # vocabulary words one task of the encoding join holds in a dict


# --- Spark set-up ---------------------------------------------------------------------------


@contextmanager
def spark_context(master: str, app: str = "distw2v") -> Iterator[Any]:
    try:
        from pyspark import SparkConf, SparkContext
    except ImportError:
        raise Distw2vError(
            "the spark engine needs pyspark: pip install 'distw2v[spark]'."
        ) from None
    # Python workers must import distw2v: run them with this interpreter and import path (a
    # cluster whose workers have distw2v installed needs neither, and they do no harm there).
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    python_path = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
    conf = (SparkConf().setMaster(master).setAppName(app)
            .set("spark.pyspark.python", sys.executable)
            .set("spark.executorEnv.PYTHONPATH", python_path)
            .set("spark.ui.enabled", "false")
            .set("spark.ui.showConsoleProgress", "false")
            .set("spark.python.worker.reuse", "true"))
    # Executors read the same storage as the driver (sources, --work-dir), set up the same
    # way: fsspec's and AWS's variables go with them, as spark-submit does for AWS keys.
    # The source policy goes too: executors open sources as checked (sources.py), with no
    # redirect followed and no fsspec chain, exactly as the driver's process would.
    for key, value in os.environ.items():
        if key.startswith(("FSSPEC_", "AWS_")) or key == SOURCE_POLICY_VAR:
            conf.setExecutorEnv(key, value)
    try:
        sc = SparkContext(conf=conf)
    except Exception as exc:  # Py4J and JVM start-up errors carry long Java traces
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Distw2vError(f"cannot start Spark with master {master!r}: {first}") from None
    sc.setLogLevel("ERROR")
    try:
        yield sc
    finally:
        sc.stop()


def spark_failure(exc: BaseException) -> Distw2vError:
    """The one sentence a failed Spark job means, from the Python error inside the Java one."""
    text = str(exc)
    for kind in (ShardUnavailableError, CorpusError, VocabularyError, Distw2vError):
        marker = f"{kind.__module__}.{kind.__name__}: "
        if marker in text:
            message = text.split(marker, 1)[1].splitlines()[0]
            return kind(message)
    last = [ln for ln in text.splitlines() if ln.strip()][-1:] or [type(exc).__name__]
    return Distw2vError(f"the Spark job failed: {last[0].strip()[:300]}")


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


# --- training tasks ----------------------------------------------------------------------------

_KEEP_CACHE: dict[str, np.ndarray] = {}


def _keep(uri: str) -> np.ndarray:
    if uri not in _KEEP_CACHE:
        _KEEP_CACHE.clear()
        if "://" in uri:
            with fsspec.open(uri, "rb") as f:
                _KEEP_CACHE[uri] = np.load(f)
        else:
            _KEEP_CACHE[uri] = np.load(uri, mmap_mode="r")
    return _KEEP_CACHE[uri]


def _train_task(addresses: list[str], keep_uri: str, settings: WorkerSettings, epoch: int,
                partitions: int, secret: str | None
                ) -> Callable[[int, Iterator[Any]], Iterator[dict[str, Any]]]:
    def run(index: int, parts: Iterator[Any]) -> Iterator[dict[str, Any]]:
        keep = _keep(keep_uri)
        total = WorkerStats()
        with PSClient(addresses, secret=secret) as client:
            for ids, offsets in parts:
                stats = train_partition(ids, offsets, keep, client, settings,
                                        stream=epoch * partitions + index)
                total.words += stats.words
                total.pairs += stats.pairs
                total.batches += stats.batches
            total.bytes_sent, total.bytes_received = client.bytes_sent, client.bytes_received
        yield {**vars(total), "peak_rss_mb": process_peak_rss_mb(os.getpid())}

    return run


# --- the driver ----------------------------------------------------------------------------------


def train_spark(
    sources: Sequence[str],
    out: str | Path,
    vocab_config: VocabConfig,
    train_config: TrainConfig,
    spark_config: SparkConfig,
    *,
    run_config: RunConfig | None = None,
    word2vec: Path | None = None,
    progress: ProgressFactory = silent,
    log: Callable[[str], None] = lambda _: None,
) -> tuple[dict[str, Any], Summary]:
    """Train on Spark against column-partitioned shards; write the model to `out`.

    Returns the run's figures (words, pairs, bytes on the wire, ...) and the summary."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    splits = input_splits(sources, SPLIT_BYTES)
    checkpoint_dir = (run_config or RunConfig()).checkpoint_dir
    if checkpoint_dir:
        prepare_dir(checkpoint_dir)
    local = tempfile.mkdtemp(prefix=f".{out.name}.spark-", dir=out.parent)  # the driver's
    work = spark_config.work_dir or local
    try:
        with spark_context(spark_config.spark_master) as sc, \
                ShardProcesses(spark_config, work_root=work.rstrip("/"),
                               checkpoint_root=checkpoint_dir) as shards:
            try:
                return _run(sc, shards, splits, out, word2vec, work.rstrip("/"),
                            Path(local) / "words.txt", vocab_config, train_config,
                            spark_config, checkpoint_dir, progress, log)
            except Distw2vError:
                raise
            except Exception as exc:  # a failed Spark job: Py4J wraps the executor's error
                raise spark_failure(exc) from None
    finally:
        shutil.rmtree(local, ignore_errors=True)


def _run(sc: Any, shards: ShardProcesses, splits: list[tuple[str, int, int | None]],
         out: Path, word2vec: Path | None, work: str, words_file: Path,
         vocab_config: VocabConfig, train_config: TrainConfig,
         spark_config: SparkConfig, checkpoint_dir: str | None, progress: ProgressFactory,
         log: Callable[[str], None]) -> tuple[dict[str, Any], Summary]:
    from pyspark import StorageLevel

    addresses = shards.addresses
    partitions = spark_config.partitions or sc.defaultParallelism
    files = list(dict.fromkeys(uri for uri, _, _ in splits))
    sentences = (sc.parallelize(splits, len(splits))  # a big plain file is read in pieces
                 .flatMap(lambda split: _read_split(split, vocab_config))
                 .repartition(partitions)
                 .persist(StorageLevel.MEMORY_AND_DISK))
    ranked: Any = None
    numbered: Any = None  # the join's partitions, words numbered within each
    try:
        # vocabulary: a distributed count, then frequency order with ids from zipWithIndex
        counts = sentences.mapPartitions(_count_partition).reduceByKey(add)
        corpus_words = counts.values().sum()
        if corpus_words == 0:
            raise VocabularyError("the corpus is empty: it holds no words.")
        kept = counts.filter(lambda wc: wc[1] >= vocab_config.min_count)
        ranked = kept.sortBy(lambda wc: (-wc[1], wc[0])).zipWithIndex()
        if vocab_config.max_final_vocab is not None:
            limit = vocab_config.max_final_vocab
            ranked = ranked.filter(lambda r: r[1] < limit)
        ranked = ranked.persist(StorageLevel.MEMORY_AND_DISK)
        # The driver keeps the words in a file, not a list: at hundreds of millions of words a
        # list of str would be tens of GB. Counts are an array, 8 bytes a word.
        counts_array = array("q")
        with open(words_file, "w", encoding="utf-8", newline="\n") as lines:
            for (word, count), _ in ranked.toLocalIterator():
                lines.write(word + "\n")
                counts_array.append(count)
        n_words = len(counts_array)
        if not n_words:
            best = counts.values().max()
            raise VocabularyError(
                f"no word occurs at least min_count={vocab_config.min_count} times "
                f"(the most frequent occurs {best} times); lower --min-count.")
        vocab_counts = np.frombuffer(counts_array, dtype=np.int64)
        log(f"vocabulary: {n_words:,} words (min_count={vocab_config.min_count}) covering "
            f"{int(vocab_counts.sum()):,} of {corpus_words:,} corpus words (distributed count)")
        save_arrays(work, {"counts": vocab_counts,  # read by the shards and the executors
                           "keep": keep_probabilities(vocab_counts, train_config.sample)},
                    what="the word counts (see --work-dir)")

        start = time.perf_counter()
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

    dim = train_config.dim
    specs = [ShardSpec(vocab_size=n_words, dim=dim, lo=lo, hi=hi,
                       negative=train_config.negative, seed=train_config.seed,
                       counts_uri=f"{work}/counts.npy", shards=len(addresses),
                       model=train_config.model)
             for lo, hi in column_ranges(dim, len(addresses))]
    figures: dict[str, Any] = {key: 0 for key in
                               ("words", "pairs", "batches", "bytes_sent", "bytes_received")}
    worker_peaks: list[float] = []
    checkpoints = None
    first = 0
    if checkpoint_dir:
        checkpoints = RunCheckpoints(checkpoint_dir, {
            "engine": "spark",
            "train_config": to_dict(train_config), "vocab_config": to_dict(vocab_config),
            "sources": list(files), "vocab_size": n_words, "trained_words": trained_words,
            "shards": len(addresses)})
        first = min(checkpoints.epochs_done(), train_config.epochs)
    with PSClient(addresses, secret=shards.secret) as control:
        control.wait_ready()
        if checkpoints and first:
            control.load(checkpoints.epoch_uri(first), specs)
            log(f"resuming after epoch {first} of {train_config.epochs}, saved in "
                f"{checkpoints.uri}")
        else:
            control.configure(specs)
        settings = WorkerSettings(
            window=train_config.window, start_alpha=train_config.start_alpha,
            min_alpha=train_config.min_alpha, total_words=trained_words * train_config.epochs,
            batch_pairs=spark_config.batch_pairs, chunk_words=train_config.batch_words,
            seed=train_config.seed)
        bar = progress(desc="training", total=trained_words * train_config.epochs, unit="word",
                       unit_scale=True, initial=first * trained_words)
        try:
            for epoch in range(first, train_config.epochs):
                task = _train_task(addresses, f"{work}/keep.npy", settings, epoch,
                                   encoded.getNumPartitions(), shards.secret)
                job = encoded.mapPartitionsWithIndex(task)
                results = _watched(sc, job.collect, control, shards, bar, epoch,
                                   train_config.epochs, shown=epoch * trained_words,
                                   end=(epoch + 1) * trained_words)
                for r in results:
                    for key in figures:
                        figures[key] += r[key]
                    worker_peaks.append(r["peak_rss_mb"])
                if checkpoints:
                    control.checkpoint(checkpoints.epoch_uri(epoch + 1))
                    checkpoints.saved(epoch + 1)
        finally:
            bar.close()
        encoded.unpersist()
        seconds = time.perf_counter() - start
        shard_stats = control.stats()
        meta = {"distw2v_version": __version__, "engine": "spark",
                "train_config": to_dict(train_config), "vocab_config": to_dict(vocab_config),
                "spark_config": to_dict(spark_config), "trained_words": figures["words"],
                "train_seconds": round(seconds, 3), "sources": list(files)}
        export(control, out, words_file, vocab_counts, dim, meta, word2vec)
    figures.update(shards=len(addresses), dim=dim, seconds=seconds,
                   shard_bytes_held=[s["bytes_held"] for s in shard_stats],
                   shard_peak_rss_mb=shards.peak_rss_mb(),
                   executor_python_peak_rss_mb=max(worker_peaks, default=0.0),
                   jvm_peak_rss_mb=jvm_peak_rss_mb(sc))
    return figures, Summary(corpus_words, figures["words"], seconds, peak_rss_mb())


def _watched(sc: Any, job: Callable[[], list[dict[str, int]]], control: PSClient,
             shards: ShardProcesses, bar: Any, epoch: int, epochs: int,
             shown: int, end: int) -> list[dict[str, int]]:
    """Run a Spark job in a thread while this one moves the progress bar from `shown` words
    to `end` and watches the shards: a shard that dies cancels the job and fails the run
    naming it, without a hang."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = job()
        except BaseException as exc:  # surfaced below, in the driver's thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(0.5)
        dead = shards.dead()
        if dead is not None:
            sc.cancelAllJobs()
            thread.join(30)
            raise ShardUnavailableError(dead)
        try:
            words = int(control.stats()[0]["global_words"])
        except Distw2vError:
            continue  # the next round of the loop names the dead shard
        bar.update(max(words - shown, 0))
        shown = max(shown, words)
        bar.set_postfix_str(f"epoch {epoch + 1}/{epochs}", refresh=False)
    if "error" in outcome:
        dead = shards.dead()
        raise (ShardUnavailableError(dead) if dead else spark_failure(outcome["error"]))
    bar.update(max(end - shown, 0))  # the words trained since the last look
    return outcome["result"]


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
           meta: dict[str, Any], word2vec: Path | None = None) -> None:
    """Stream row blocks from the shards into the native format (and a word2vec file: binary,
    or text when its name ends in .txt), never holding more than one block of rows or
    words: `words_file` has one word a line, as many as `counts`."""
    n = len(counts)
    rows = max(1, EXPORT_BLOCK_BYTES // (4 * dim))
    side: Any = (Word2VecWriter(word2vec, n, dim, binary=word2vec.suffix != ".txt")
                 if word2vec is not None else nullcontext())
    block_words = read_words(words_file)
    with VectorsWriter(out, read_words(words_file), counts, dim, meta) as native, side as w2v:
        for lo in range(0, n, rows):
            hi = min(lo + rows, n)
            block = client.pull(lo, hi)
            native.write_rows(lo, block)
            if w2v is not None:
                w2v.write_rows(list(islice(block_words, hi - lo)), block)

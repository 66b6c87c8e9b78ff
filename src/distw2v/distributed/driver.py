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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..checkpoints import RunCheckpoints, prepare_dir
from ..config import RunConfig, SparkConfig, TrainConfig, VocabConfig, to_dict
from ..continued import base_vocabulary, open_init, provenance
from ..corpus import input_splits
from ..errors import Distw2vError
from ..memory import peak_rss_mb, process_peak_rss_mb
from ..progress import OnProgress, Phase, Summary, loss_record
from ..vectors import OUTPUT_FILE, VECTORS_FILE, Vectors, VectorsWriter, Word2VecWriter
from .client import PSClient, column_ranges
from .encoding import SparkCorpus, encode_on_spark, read_words
from .epochs import Trainer, TrainingLoop
from .processes import ShardProcesses
from .row_worker import RowsTrainer
from .rows import RowSpec, placement
from .server import new_secret
from .session import reported_jobs, spark_context, spark_failure
from .shard import ShardSpec
from .spark_shards import SparkShards
from .start_rows import write_init
from .tls import with_tls
from .worker import ColumnsTrainer, WorkerSettings

EXPORT_BLOCK_BYTES = 32 << 20
SPLIT_BYTES = 64 << 20  # uncompressed input files are read by one task per this many bytes
SLOT_WAIT_SECONDS = 60.0  # for a cluster's executors to register the cores training needs
SLOT_POLL_SECONDS = 0.5


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
    on_progress: OnProgress | None = None,
    log: Callable[[str], None] = lambda _: None,
    ann_threshold: int | None = None,
) -> tuple[dict[str, Any], Summary]:
    """Train on Spark against column-partitioned shards; write the model to `out` (with a
    nearest-neighbour index from `ann_threshold` words, as VectorsWriter says).

    Returns the run's figures (words, pairs, bytes on the wire, ...) and the summary."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    run_config = run_config or RunConfig()
    init = open_init(run_config.init, train_config) if run_config.init else None
    splits = input_splits(sources, SPLIT_BYTES, vocab_config)
    checkpoint_dir = run_config.checkpoint_dir
    if checkpoint_dir:
        prepare_dir(checkpoint_dir)
    local = tempfile.mkdtemp(prefix=f".{out.name}.spark-", dir=out.parent)  # the driver's
    work = (spark_config.work_dir or local).rstrip("/")
    try:
        with spark_context(spark_config.spark_master,
                           max_cores=spark_config.max_cores) as sc:
            try:
                partitions = _partitions(sc, spark_config, log)
                log(_describe_run(sc, spark_config, partitions))
                base = base_vocabulary(init, vocab_config) if init is not None else None
                with reported_jobs(sc, on_progress, "counting and encoding"):
                    corpus = encode_on_spark(sc, splits, partitions, work,
                                             Path(local) / "words.txt", vocab_config,
                                             train_config, spark_config, log, base)
                initial = _start(init, run_config, work, len(corpus.counts), log)
                # The shards start once the corpus is encoded: as Spark tasks, they would
                # hold task slots the counting and encoding need.
                with _shard_group(sc, spark_config, work, checkpoint_dir) as shards:
                    _log_placement(shards, log)
                    return _train(sc, shards, corpus, out, word2vec, work, vocab_config,
                                  train_config, spark_config, run_config, initial, on_progress,
                                  log, ann_threshold)
            except Distw2vError:
                raise
            except Exception as exc:  # a failed Spark job: Py4J wraps the executor's error
                raise spark_failure(exc) from None
    finally:
        shutil.rmtree(local, ignore_errors=True)


@dataclass(frozen=True)
class Start:
    """A continued run's start: the model's matrices copied under the work dir, and what
    meta.json records of it."""

    uri: str
    rows: int
    provenance: dict[str, Any]


def _start(init: Vectors | None, run_config: RunConfig, work: str, vocab_size: int,
           log: Callable[[str], None]) -> Start | None:
    if init is None or not run_config.init:
        return None
    log(f"continuing {run_config.init}: {len(init):,} words of the model, "
        f"{vocab_size - len(init):,} new")
    model = Path(run_config.init)
    uri = write_init(work, str(model / VECTORS_FILE), str(model / OUTPUT_FILE))
    return Start(uri, len(init), provenance(run_config.init, init))


def _describe_run(sc: Any, config: SparkConfig, partitions: int) -> str:
    """Where the run trains, in one line."""
    if config.ps_addresses:
        shards = f"{len(config.ps_addresses)} shards given by --ps"
    elif config.shards_placed_by_spark:
        shards = f"{config.shards} shards placed by Spark"
    else:
        shards = f"{config.shards} shards as local subprocesses"
    return (f"spark: master {sc.master}, {sc.defaultParallelism} task slots, {shards}, "
            f"{partitions} partitions")


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
        secret = new_secret()
        group = SparkShards(sc, config.shards,
                            secret=with_tls(secret) if config.shard_tls_for(local) else secret,
                            work_root=work, checkpoint_root=checkpoint_dir,
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
           train_config: TrainConfig, spark_config: SparkConfig, run_config: RunConfig,
           initial: Start | None, on_progress: OnProgress | None, log: Callable[[str], None],
           ann_threshold: int | None) -> tuple[dict[str, Any], Summary]:
    n_words, dim, trained_words = len(corpus.counts), train_config.dim, corpus.trained_words
    specs, trainer = _strategy(n_words, train_config, spark_config, len(shards.addresses),
                               work)
    if initial is not None:
        specs = [replace(spec, init_uri=initial.uri, init_rows=initial.rows) for spec in specs]
    checkpoint_dir = run_config.checkpoint_dir
    checkpoints = None
    if checkpoint_dir:
        checkpoints = RunCheckpoints(checkpoint_dir, {
            "engine": "spark",
            "train_config": to_dict(train_config), "vocab_config": to_dict(vocab_config),
            "sources": corpus.files, "vocab_size": n_words, "trained_words": trained_words,
            "shards": len(shards.addresses), "strategy": spark_config.strategy,
            "optimizer": spark_config.optimizer,
            **({"init": run_config.init} if run_config.init else {})})
        checkpoints.position()  # another run's checkpoints are refused before any training
    rows = spark_config.strategy == "rows"
    settings = WorkerSettings(
        window=train_config.window, start_alpha=train_config.start_alpha,
        min_alpha=train_config.min_alpha, total_words=trained_words * train_config.epochs,
        batch_pairs=spark_config.batch_pairs,
        chunk_words=spark_config.row_chunk_words if rows else train_config.batch_words,
        seed=train_config.seed)
    every = spark_config.checkpoint_every
    loop = TrainingLoop(sc, corpus.encoded, shards, specs, settings, train_config.epochs,
                        trained_words, work, checkpoints,
                        checkpoint_seconds=every * 60 if every else None,
                        max_recoveries=spark_config.max_recoveries, log=log,
                        trainer=trainer)
    loop.shown = min(loop.saved().words(trained_words), trained_words * train_config.epochs)
    phase = Phase(on_progress, "training", trained_words * train_config.epochs, "word",
                  initial=loop.shown)
    start = time.perf_counter()
    control = trainer.client(shards.addresses, shards.secret)
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
                "train_seconds": round(seconds, 3), "sources": corpus.files,
                "epoch_loss": loss_record(loop.epoch_loss)}
        if initial is not None:
            meta["init"] = initial.provenance
        export(control, out, corpus.words_file, corpus.counts, dim, meta, word2vec,
               ann_threshold, run_config.keep_output)
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
    return figures, Summary(corpus.corpus_words, loop.figures["words"], seconds, peak_rss_mb(),
                            epoch_loss=dict(loop.epoch_loss))


def _strategy(n_words: int, train_config: TrainConfig, spark_config: SparkConfig,
              shards: int, work: str) -> tuple[list[Any], Trainer]:
    """The shards' specs and the tasks' trainer of the run's --strategy."""
    counts_uri = f"{work}/counts.npy"
    if spark_config.strategy == "rows":
        specs: list[Any] = [
            RowSpec(vocab_size=n_words, dim=train_config.dim, shard=k, shards=shards,
                    permute=spark_config.permute_rows, seed=train_config.seed,
                    optimizer=spark_config.optimizer, adagrad_eta=spark_config.adagrad_eta,
                    damping=spark_config.row_damping, model=train_config.model)
            for k in range(shards)]
        return specs, RowsTrainer(placement(specs[0]), train_config.dim, train_config.model,
                                  train_config.negative, counts_uri, spark_config.half_rows,
                                  spark_config.negative_candidates)
    specs = [ShardSpec(vocab_size=n_words, dim=train_config.dim, lo=lo, hi=hi,
                       negative=train_config.negative, seed=train_config.seed,
                       counts_uri=counts_uri, shards=shards, model=train_config.model)
             for lo, hi in column_ranges(train_config.dim, shards)]
    return specs, ColumnsTrainer()


def jvm_peak_rss_mb(sc: Any) -> float:
    """Peak memory of the JVM behind this SparkContext (the driver, and in local mode the
    executors too); 0 when it runs elsewhere."""
    try:
        pid = int(sc._jvm.java.lang.ProcessHandle.current().pid())
    except Exception:  # a remote or unusual gateway: not measurable from here
        return 0.0
    return process_peak_rss_mb(pid)





def export(client: PSClient, out: Path, words_file: Path, counts: np.ndarray, dim: int,
           meta: dict[str, Any], word2vec: Path | None = None,
           ann_threshold: int | None = None, keep_output: bool = False) -> None:
    """Stream row blocks from the shards into the native format (and a word2vec file: binary,
    or text when its name ends in .txt; with `keep_output`, the output matrix too), never
    holding more than one block of rows or words: `words_file` has one word a line, as many
    as `counts`."""
    n = len(counts)
    rows = max(1, EXPORT_BLOCK_BYTES // (4 * dim))
    side: Any = (Word2VecWriter(word2vec, n, dim, binary=word2vec.suffix != ".txt")
                 if word2vec is not None else nullcontext())
    block_words = read_words(words_file)
    with VectorsWriter(out, read_words(words_file), counts, dim, meta,
                       ann_threshold=ann_threshold, output=keep_output) as native, side as w2v:
        for lo in range(0, n, rows):
            hi = min(lo + rows, n)
            block = client.pull(lo, hi)
            native.write_rows(lo, block)
            if keep_output:
                native.write_output_rows(lo, client.pull(lo, hi, "syn1"))
            if w2v is not None:
                w2v.write_rows(list(islice(block_words, hi - lo)), block)

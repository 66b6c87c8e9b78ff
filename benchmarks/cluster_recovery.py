"""The Spark engine on a standalone cluster losing a machine: quality after recovery, the
training lost against the checkpoint interval, the bytes each process moves, and what one
checkpoint costs at 2M words x d=300 (issue 11).

Phase "recovery": a standalone master and 3 workers x 2 cores (tests/cluster.py, all on this
machine), 2 shards placed by Spark, the English corpus at the quality matrix's settings and a
fixed 32 partitions. One run is not interrupted (checkpoints at epoch ends only); then, for each
interval of --intervals (minutes; 0 = epoch ends only), a run whose shard-0 worker JVM is killed
with SIGKILL once half of all training words are done. For each killed run:

* detect + restart: seconds from the kill to training resuming (the loop notices the shard is
  gone, cancels the epoch's job, Spark starts a new shard task, the checkpoint is loaded);
* words redone: the words trained at the kill less those the checkpoint it resumed from holds,
  and the seconds they take at the run's own training rate;
* caught up after: seconds from resuming until the progress passes the kill's word count again
  (the redone words plus a new epoch job's start);
* extra wall against the uninterrupted run, and the three English figures beside its own.

The uninterrupted run also gives the bytes each process sent and received: the driver (its
control calls, checkpoint loads and the export), each executor's training tasks, each shard.

Phase "checkpoint": S shards as subprocesses holding 2M x 300 (both matrices, 4.8 GB), saved
to and loaded from local disk, --saves times each.

    python benchmarks/cluster_recovery.py                   # ~15 minutes on 2 cores
    python benchmarks/cluster_recovery.py --phases checkpoint --words 2000000 --dim 300
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import Settings, evaluate, machine  # benchmarks/ is on sys.path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # the test suite's standalone cluster
from cluster import StandaloneCluster  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
LIMITS = {"wordsim353": 0.03, "simlex999": 0.03, "analogy": 0.02}  # the 0.03/0.03/2 pts
KILL_AT = 0.5  # of all training words


class Watched:
    """train_spark in a thread, with its log lines and training progress timestamped."""

    def __init__(self, corpus: str, out: Path, spark: Any, checkpoints: Path,
                 settings: Settings, seed: int) -> None:
        from distw2v.config import RunConfig, VocabConfig

        self.lines: list[tuple[float, str]] = []
        self.progress: list[tuple[float, int]] = []  # (time, words shown) at every update
        self.total = 0
        self.changed = threading.Condition()
        self.outcome: dict[str, Any] = {}
        self.started = time.perf_counter()
        args = ([corpus], out, VocabConfig(min_count=settings.min_count),
                settings.train_config(seed), spark)
        kwargs = {"run_config": RunConfig(checkpoint_dir=str(checkpoints)),
                  "log": self._log, "on_progress": self._progress}
        self.thread = threading.Thread(target=self._run, args=args, kwargs=kwargs, daemon=True)
        self.thread.start()

    def _run(self, *args: Any, **kwargs: Any) -> None:
        from distw2v.distributed.driver import train_spark

        try:
            self.outcome["result"] = train_spark(*args, **kwargs)
        except BaseException as exc:
            self.outcome["error"] = exc
        self.outcome["wall"] = time.perf_counter() - self.started
        with self.changed:
            self.changed.notify_all()

    def _log(self, line: str) -> None:
        with self.changed:
            self.lines.append((time.perf_counter(), line))
            self.changed.notify_all()

    def _progress(self, event: Any) -> None:
        if event.phase == "training":
            with self.changed:
                self.total = event.total
                self.progress.append((time.perf_counter(), event.done))
                self.changed.notify_all()

    def wait(self, condition: Any, timeout: float = 1800.0) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: condition() or not self.thread.is_alive(),
                                         timeout):
                raise TimeoutError("the run did not get there in time")
        if not condition():
            raise RuntimeError(f"the run ended first: {self.outcome.get('error')}")

    def words(self) -> int:
        return self.progress[-1][1] if self.progress else 0

    def line_after(self, pattern: str, t: float) -> float:
        return next(when for when, line in self.lines if when >= t and pattern in line)

    def result(self) -> tuple[dict[str, Any], Any]:
        self.thread.join()
        if "error" in self.outcome:
            raise self.outcome["error"]
        return self.outcome["result"]  # type: ignore[no-any-return]


def placement(run: Watched) -> list[int]:
    """The shards' pids, in shard order, from the placement log lines."""
    import re

    placed = re.compile(r"shard (\d+) at \S+ on executor \S+ \(pid (\d+)\)")
    found = {}
    for _, line in run.lines:
        m = placed.search(line)
        if m:
            found[int(m.group(1))] = int(m.group(2))
    return [found[i] for i in sorted(found)]


def recovery_run(cluster: StandaloneCluster, corpus: str, tmp: Path, interval: float | None,
                 kill: bool, args: argparse.Namespace) -> dict[str, Any]:
    from distw2v.config import SparkConfig
    from distw2v.vectors import Vectors

    spark = SparkConfig(spark_master=cluster.url, shards=2, partitions=args.partitions,
                        checkpoint_every=interval or None)
    name = f"{'killed' if kill else 'whole'}-{interval or 0}"
    run = Watched(corpus, tmp / name, spark, tmp / f"{name}-ckpt", Settings(), args.seed)
    row: dict[str, Any] = {"interval_minutes": interval or 0, "killed": kill}
    if kill:
        run.wait(lambda: run.total and run.words() >= KILL_AT * run.total)
        worker = cluster.worker_running(placement(run)[0])
        killed_at, words_at_kill = time.perf_counter(), run.words()
        cluster.kill_worker(worker)
        run.wait(lambda: any("resuming after" in line and when > killed_at
                             for when, line in run.lines))
        resumed = run.line_after("resuming after", killed_at)
        saved = json.loads((tmp / f"{name}-ckpt" / "progress.json").read_text())
        epoch_words = run.total // Settings().epochs
        saved_words = saved["epochs_done"] * epoch_words + sum(
            saved.get("partitions_done", {}).values())
        run.wait(lambda: run.words() > words_at_kill)
        caught_up = next(when for when, n in run.progress if n > words_at_kill)
        row.update(detect_restart_seconds=resumed - killed_at,
                   catch_up_seconds=caught_up - resumed,
                   killed_worker=worker, words_at_kill=words_at_kill,
                   redone_words=words_at_kill - saved_words,
                   redone_epochs=(words_at_kill - saved_words) / epoch_words,
                   recovery_line=next(line for _, line in run.lines if "recovery 1/" in line))
        cluster.restart_worker(worker)  # the next run gets the whole cluster again
    figures, summary = run.result()
    vectors = Vectors.load(tmp / name, mmap=False)
    row.update(wall=run.outcome["wall"], train_seconds=figures["seconds"],
               recoveries=figures["recoveries"], trained_words=summary.trained_words,
               figures=evaluate(list(vectors.words), vectors.matrix, Path(args.eval_dir)),
               process_bytes=figures["process_bytes"],
               shard_bytes_in=figures["shard_bytes_in"],
               shard_bytes_out=figures["shard_bytes_out"],
               checkpoint_saves=[line for _, line in run.lines if "checkpoint:" in line])
    if kill:  # the redone words took this long at the run's own training rate
        row["redone_seconds"] = row["redone_words"] / (summary.trained_words / figures["seconds"])
    shutil.rmtree(tmp / name, ignore_errors=True)
    return row


def phase_recovery(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    corpus = args.corpus
    rows = []
    with StandaloneCluster(tmp / "cluster", workers=3, cores=2, memory="2g") as cluster:
        whole = recovery_run(cluster, corpus, tmp, None, False, args)
        rows.append(whole)
        print(f"uninterrupted: wall {whole['wall']:.1f} s, {whole['figures']}", flush=True)
        for interval in args.intervals:
            row = recovery_run(cluster, corpus, tmp, interval, True, args)
            row["extra_wall"] = row["wall"] - whole["wall"]
            row["delta"] = {k: row["figures"][k] - whole["figures"][k] for k in LIMITS}
            row["within_limits"] = all(abs(row["delta"][k]) <= lim for k, lim in LIMITS.items())
            rows.append(row)
            print(f"interval {interval} min: detect+restart {row['detect_restart_seconds']:.1f}"
                  f" s, redone {row['redone_words']:,} words ({row['redone_seconds']:.1f} s), "
                  f"caught up after {row['catch_up_seconds']:.1f} s, extra wall "
                  f"{row['extra_wall']:.1f} s, delta {row['delta']}", flush=True)
    return {"rows": rows}


def phase_checkpoint(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    import numpy as np

    from distw2v.config import SparkConfig
    from distw2v.distributed.client import PSClient, column_ranges
    from distw2v.distributed.processes import ShardProcesses
    from distw2v.distributed.shard import ShardSpec

    work, ckpt = tmp / "work", tmp / "ckpt"
    work.mkdir()
    ckpt.mkdir()
    counts = np.maximum(1e9 / np.arange(1, args.words + 1), 1).astype(np.int64)  # Zipf
    np.save(work / "counts.npy", counts)
    specs = [ShardSpec(vocab_size=args.words, dim=args.dim, lo=lo, hi=hi, negative=5, seed=1,
                       counts_uri=str(work / "counts.npy"), shards=args.shards)
             for lo, hi in column_ranges(args.dim, args.shards)]
    config = SparkConfig(shards=args.shards)
    saves, syncs, loads = [], [], []
    with ShardProcesses(config, work_root=str(work), checkpoint_root=str(ckpt)) as shards:
        client = PSClient(shards.addresses, secret=shards.secret)
        try:
            client.wait_ready()
            client.configure(specs)
            for i in range(args.saves):
                uri = str(ckpt / f"save-{i}")
                started = time.perf_counter()
                client.checkpoint(uri)
                saves.append(time.perf_counter() - started)
                started = time.perf_counter()
                os.sync()  # the save returns once the OS has the bytes; on disk takes this
                syncs.append(time.perf_counter() - started)
                started = time.perf_counter()
                client.load(uri, specs)
                loads.append(time.perf_counter() - started)
                on_disk = sum(f.stat().st_size for f in (ckpt / f"save-{i}").iterdir())
                shutil.rmtree(ckpt / f"save-{i}")
                print(f"save {i + 1}: {saves[-1]:.1f} s (+ {syncs[-1]:.1f} s to disk), "
                      f"load {loads[-1]:.1f} s, {on_disk / 2**30:.2f} GiB", flush=True)
            peaks = [s["peak_rss_mb"] for s in client.stats()]
        finally:
            client.close()
    return {"words": args.words, "dim": args.dim, "shards": args.shards,
            "save_seconds": saves, "sync_seconds": syncs, "load_seconds": loads,
            "bytes_on_disk": on_disk,
            "save_gib_per_second": on_disk / 2**30 / min(saves),
            "shard_peak_rss_mb": peaks}


def report(result: dict[str, Any]) -> str:
    out = []
    if "recovery" in result:
        rows = result["recovery"]["rows"]
        whole = rows[0]
        out.append(f"uninterrupted run: wall {whole['wall']:.1f} s, training "
                   f"{whole['train_seconds']:.1f} s, figures "
                   + ", ".join(f"{k} {whole['figures'][k]:.4f}" for k in LIMITS))
        out.append("| checkpoint every | detect + restart | words redone | redone at the "
                   "run's rate | caught up after | extra wall | wordsim353 | simlex999 | "
                   "analogy | within 0.03/0.03/2 pts |")
        out.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows[1:]:
            every = f"{r['interval_minutes']} min" if r["interval_minutes"] else "epoch end"
            d = r["delta"]
            out.append(f"| {every} | {r['detect_restart_seconds']:.1f} s | "
                       f"{r['redone_words']:,} ({r['redone_epochs']:.2f} epoch) | "
                       f"{r['redone_seconds']:.1f} s | {r['catch_up_seconds']:.1f} s | "
                       f"{r['extra_wall']:+.1f} s | "
                       f"{d['wordsim353']:+.4f} | {d['simlex999']:+.4f} | "
                       f"{d['analogy']:+.4f} | {'yes' if r['within_limits'] else 'NO'} |")
        out.append("\nbytes sent / received in the uninterrupted run:")
        for name, b in sorted(whole["process_bytes"].items()):
            out.append(f"  {name:<14} sent {b['sent'] / 1e6:10.1f} MB  received "
                       f"{b['received'] / 1e6:10.1f} MB")
        for i, (bin_, bout) in enumerate(zip(whole["shard_bytes_in"],
                                             whole["shard_bytes_out"])):
            out.append(f"  shard {i:<8} sent {bout / 1e6:10.1f} MB  received "
                       f"{bin_ / 1e6:10.1f} MB")
    if "checkpoint" in result:
        c = result["checkpoint"]
        out.append(f"\ncheckpoint of {c['words']:,} words x d={c['dim']} on {c['shards']} "
                   f"shards ({c['bytes_on_disk'] / 2**30:.2f} GiB): save "
                   f"{min(c['save_seconds']):.1f}-{max(c['save_seconds']):.1f} s "
                   f"({c['save_gib_per_second']:.2f} GiB/s) + "
                   f"{min(c['sync_seconds']):.1f}-{max(c['sync_seconds']):.1f} s to reach "
                   "the disk, load "
                   f"{min(c['load_seconds']):.1f}-{max(c['load_seconds']):.1f} s")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phases", nargs="+", default=["recovery", "checkpoint"],
                        choices=["recovery", "checkpoint"])
    parser.add_argument("--corpus", default=str(SHARED / "english.txt.gz"))
    parser.add_argument("--eval-dir", default=str(SHARED / "eval"))
    parser.add_argument("--intervals", type=float, nargs="+", default=[0, 0.5, 0.2, 0.05],
                        help="checkpoint intervals in minutes (0: at epoch ends only)")
    parser.add_argument("--partitions", type=int, default=32)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--words", type=int, default=2_000_000)
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--saves", type=int, default=3)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results"
                                             / "cluster_recovery.json"))
    args = parser.parse_args()
    result: dict[str, Any] = {"machine": machine(), "args": vars(args)}
    tmp = Path(tempfile.mkdtemp(prefix="cluster-recovery-"))
    try:
        if "checkpoint" in args.phases:
            result["checkpoint"] = phase_checkpoint(args, tmp)
        if "recovery" in args.phases:
            result["recovery"] = phase_recovery(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    Path(args.out).write_text(json.dumps(result, indent=1, default=str) + "\n")
    print(report(result))
    rows = result.get("recovery", {}).get("rows", [])[1:]
    if any(not r["within_limits"] for r in rows):
        sys.exit("a recovered run's quality is outside 0.03 / 0.03 / 2 points")


if __name__ == "__main__":
    main()

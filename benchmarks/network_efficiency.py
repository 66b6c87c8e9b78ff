"""Bytes on the wire per trained word of the Spark engine, against a row-shipping server.

The column-partitioned parameter server (DESIGN.md, "The distributed trainer") sends pair
ids and dot products, never vector rows, so its traffic per word should not grow with the
dimension d. This trains on a corpus sample (first --lines lines, 1 epoch, local[2]) at
d = 50, 300, 1000 with S = 2 and 4 shards, each run in its own process, and reports
(bytes_sent + bytes_received) / words from the run's figures: the client side of the
training rounds, summed over Spark tasks; words are corpus words in the vocabulary, before
subsampling.

Beside each figure: what a row-shipping parameter server would move per word,
(2 + window * negative) * d * 4 bytes (the issue's estimate), once with the nominal
window = 5 and once with the run's own stream: `window` is then its pairs per centre and
the result is scaled by centres per word, i.e. (2 * centres + negative * pairs) * d * 4 /
words. Centres are not reported by the engine; they are estimated as sum(count * keep) of
the run's vocabulary (the expected number of words that survive subsampling).

    python benchmarks/network_efficiency.py                 # 6 runs, ~3 minutes on 2 cores
    python benchmarks/network_efficiency.py --dims 50 1000 --shards 2
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import emit_result, run_child, write_sample  # benchmarks/ is on sys.path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
NOMINAL_WINDOW = 5
NEGATIVE = 5
REQUIRED_RATIO = 1.2  # the issue: bytes/word at d=1000 within 1.2x of d=50


def child(args: argparse.Namespace) -> None:
    import numpy as np

    from distw2v.config import SparkConfig, TrainConfig, VocabConfig
    from distw2v.distributed.driver import train_spark

    tmp = Path(tempfile.mkdtemp(prefix="net-eff-"))
    try:
        work = tmp / "work"
        work.mkdir()
        start = time.perf_counter()
        figures, summary = train_spark(
            [args.corpus], tmp / "model", VocabConfig(min_count=5),
            TrainConfig(dim=args.dim, window=NOMINAL_WINDOW, negative=NEGATIVE, sample=1e-3,
                        epochs=args.epochs, seed=args.seed),
            SparkConfig(spark_master=args.master, shards=args.shard_count,
                        partitions=args.partitions, work_dir=str(work)))
        total = time.perf_counter() - start
        counts = np.load(work / "counts.npy").astype(np.float64)
        keep = np.load(work / "keep.npy").astype(np.float64)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {key: figures[key] for key in
              ("words", "pairs", "batches", "bytes_sent", "bytes_received", "shards", "dim",
               "seconds")}
    result["total_seconds"] = total
    result["corpus_words"] = summary.corpus_words
    # expected centres: each in-vocabulary occurrence survives subsampling with keep[w]
    result["centres_estimate"] = float((counts * keep).sum()) * args.epochs
    emit_result(result)


def spawn(dim: int, shards: int, args: argparse.Namespace, corpus: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", "--dim", str(dim), "--shard-count", str(shards),
           "--corpus", str(corpus), "--epochs", str(args.epochs), "--seed", str(args.seed),
           "--master", args.master, "--partitions", str(args.partitions)]
    r = run_child(cmd, f"d={dim} S={shards}")
    wire = r["bytes_sent"] + r["bytes_received"]
    r["bytes_per_word"] = wire / r["words"]
    r["bytes_per_pair_per_shard"] = wire / r["pairs"] / shards
    r["pairs_per_centre"] = r["pairs"] / r["centres_estimate"]
    r["row_shipping_nominal"] = (2 + NOMINAL_WINDOW * NEGATIVE) * dim * 4
    r["row_shipping_measured"] = ((2 * r["centres_estimate"] + NEGATIVE * r["pairs"])
                                  * dim * 4 / r["words"])
    r["ratio_nominal"] = r["row_shipping_nominal"] / r["bytes_per_word"]
    r["ratio_measured"] = r["row_shipping_measured"] / r["bytes_per_word"]
    print(f"  d={dim:<5} S={shards}: {r['bytes_per_word']:8.1f} B/word  "
          f"train {r['seconds']:5.1f} s  process {r['process_seconds']:5.1f} s", flush=True)
    return r


def table(rows: list[dict]) -> str:
    head = (f"{'S':>2} {'d':>5} {'words':>9} {'pairs/ctr':>9} {'B/pair/S':>8} {'ours B/w':>9} "
            f"{'rows B/w nom':>12} {'ratio':>7} {'rows B/w meas':>13} {'ratio':>7} "
            f"{'train s':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['shards']:>2} {r['dim']:>5} {r['words']:>9,} {r['pairs_per_centre']:>9.2f} "
            f"{r['bytes_per_pair_per_shard']:>8.1f} {r['bytes_per_word']:>9.1f} "
            f"{r['row_shipping_nominal']:>12,.0f} {r['ratio_nominal']:>6.1f}x "
            f"{r['row_shipping_measured']:>13,.0f} {r['ratio_measured']:>6.1f}x "
            f"{r['seconds']:>7.1f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(SHARED / "english.txt.gz"))
    parser.add_argument("--lines", type=int, default=30_000,
                        help="train on the first LINES lines of the corpus (default 30000)")
    parser.add_argument("--dims", nargs="+", type=int, default=[50, 300, 1000])
    parser.add_argument("--shards", nargs="+", type=int, default=[2, 4])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--json",
                        default=str(ROOT / "benchmarks" / "results" / "network_efficiency.json"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dim", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--shard-count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if not Path(args.corpus).exists():
        sys.exit(f"corpus {args.corpus} not found; pass --corpus")

    started = time.perf_counter()
    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="net-eff-"))
    try:
        sample = tmp / "sample.txt"
        n_lines = write_sample(Path(args.corpus), args.lines, sample)
        print(f"corpus sample: first {n_lines:,} lines of {args.corpus}, {args.epochs} epoch(s), "
              f"{args.master}, {args.partitions} partitions", flush=True)
        rows = [spawn(dim, shards, args, sample)
                for shards in args.shards for dim in sorted(args.dims)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(table(rows))
    print("\nours B/w: (bytes_sent + bytes_received) / words, client side of both rounds; "
          "B/pair/S: the same per pair per shard.")
    print(f"rows B/w nom: (2 + {NOMINAL_WINDOW}*{NEGATIVE}) * d * 4; rows B/w meas: "
          f"(2*centres + {NEGATIVE}*pairs) * d * 4 / words (window = pairs per centre; centres "
          "estimated as sum(count*keep)). ratio: row-shipping / ours.")
    checks = []
    lo_dim, hi_dim = min(args.dims), max(args.dims)
    print()
    for shards in args.shards:
        by_dim = {r["dim"]: r for r in rows if r["shards"] == shards}
        growth = by_dim[hi_dim]["bytes_per_word"] / by_dim[lo_dim]["bytes_per_word"]
        ok = growth <= REQUIRED_RATIO
        checks.append({"shards": shards, "from_dim": lo_dim, "to_dim": hi_dim,
                       "growth": growth, "limit": REQUIRED_RATIO, "ok": ok})
        print(f"S={shards}: bytes/word at d={hi_dim} is {growth:.4f}x d={lo_dim} "
              f"(limit {REQUIRED_RATIO}x): {'PASS' if ok else 'FAIL'}")
    wall = time.perf_counter() - started
    load_after = os.getloadavg()
    print(f"\nbenchmark wall: {wall:.0f} s; 1-min load average {load_before[0]:.1f} before, "
          f"{load_after[0]:.1f} after on {os.cpu_count()} CPUs (bytes are exact, times noisy)")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    report = {"corpus": str(args.corpus), "lines": n_lines, "epochs": args.epochs,
              "master": args.master, "partitions": args.partitions, "window": NOMINAL_WINDOW,
              "negative": NEGATIVE, "cpu_count": os.cpu_count(), "wall_seconds": wall,
              "load_average_before": load_before, "load_average_after": load_after,
              "rows": rows, "checks": checks}
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()

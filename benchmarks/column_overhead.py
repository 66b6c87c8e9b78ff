"""What the column strategy costs beyond its kernels, per training pair, without Spark.

One worker trains one epoch of the shared English corpus (one partition) against two shard
processes on loopback, as a Spark task would (`distributed.worker.train_partition`). The CPU
time of the worker and of both shards, less the CPU time of the same kernels run in this
process on the same batches (windows, both shards' round 1 and round 2, no transport), is
the overhead: the transport (the shards' streams, and gRPC for the rest), packing, checking,
and the kernels' own slowdown in a process that moves megabytes of messages through its
caches. Printed in nanoseconds a pair, with the bytes a pair on the wire.

    python benchmarks/column_overhead.py                 # d=100, 2 shards
    python benchmarks/column_overhead.py --dim 300 --batch-pairs 50000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from common import machine  # benchmarks/ is on sys.path

from distw2v.config import SparkConfig, VocabConfig
from distw2v.distributed.client import PSClient, column_ranges
from distw2v.distributed.processes import ShardProcesses
from distw2v.distributed.shard import Batch, ParameterShard, ShardSpec
from distw2v.distributed.worker import WorkerSettings, batches_of, chunk_order, train_partition
from distw2v.kernels import mix_seed
from distw2v.kernels.columns import make_windows
from distw2v.pipeline import build_vocab, encode

RESULTS = Path(__file__).resolve().parent / "results" / "column_overhead.json"
SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def process_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def kernels_only(ids: np.ndarray, offsets: np.ndarray, keep: np.ndarray,
                 specs: list[ShardSpec], settings: WorkerSettings) -> tuple[float, int]:
    """CPU seconds of the worker's windows and both rounds on in-process shards."""
    shards = [ParameterShard() for _ in specs]
    for shard, spec in zip(shards, specs):
        shard.configure(spec)
    started, pairs = time.process_time(), 0
    for c, s_lo, s_hi in chunk_order(offsets, settings, 0):
        state = np.uint64(mix_seed(np.uint64(settings.seed), np.uint64(0), np.uint64(c)))
        windows = make_windows(ids, offsets, s_lo, s_hi, keep, settings.window, state)
        for b, (cen, off, ctx, _) in enumerate(batches_of(*windows, settings.batch_pairs)):
            batch = Batch(centers=cen, ctx_offsets=off, contexts=ctx, seed=(c << 24) + b + 1)
            dots = sum(shard.dot(batch)[0] for shard in shards)
            for shard in shards:
                shard.update(batch.key, dots, 0.01)
            pairs += batch.pairs
    return time.process_time() - started, pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=SHARED / "english.txt.gz")
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--batch-pairs", type=int, default=SparkConfig().batch_pairs)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    vocab, _ = build_vocab([str(args.corpus)], VocabConfig(min_count=5))
    with tempfile.TemporaryDirectory() as tmp:
        encoded, _ = encode([str(args.corpus)], vocab, Path(tmp) / "encoded")
        ids, offsets = (np.array(a) for a in encoded.load_shard(0))  # 3.7M words: one shard
        counts_uri = f"{tmp}/counts.npy"
        np.save(counts_uri, np.asarray(vocab.counts, dtype=np.int64))
        keep = vocab.keep_probabilities(1e-3).astype(np.float32)
        specs = [ShardSpec(vocab_size=len(vocab.words), dim=args.dim, lo=lo, hi=hi,
                           negative=5, seed=1, counts_uri=counts_uri, shards=args.shards)
                 for lo, hi in column_ranges(args.dim, args.shards)]
        settings = WorkerSettings(window=5, start_alpha=0.025, min_alpha=0.0001,
                                  total_words=len(ids), batch_pairs=args.batch_pairs,
                                  chunk_words=10_000, seed=1)
        # compile (or load from numba's cache) before anything is timed, here and in the
        # shards (whose read-only request arrays are kernels of their own types)
        head = (ids[:offsets[100]], offsets[:101], keep)
        kernels_only(*head, specs, settings)
        kernel_seconds, pairs = kernels_only(ids, offsets, keep, specs, settings)
        with ShardProcesses(SparkConfig(shards=args.shards)) as shards:
            with PSClient(shards.addresses, secret=shards.secret) as client:
                client.configure(specs)
                train_partition(*head, client, settings, 0)
                client.configure(specs)  # afresh
                pids = [proc.pid for proc in shards.procs]
                before = [process_cpu(pid) for pid in pids]
                mine, wall = time.process_time(), time.perf_counter()
                stats = train_partition(ids, offsets, keep, client, settings, 0)
                wall = time.perf_counter() - wall
                worker_seconds = time.process_time() - mine
                shard_seconds = sum(process_cpu(p) - b for p, b in zip(pids, before))
    total = worker_seconds + shard_seconds
    result = {
        "dim": args.dim, "shards": args.shards, "batch_pairs": args.batch_pairs,
        "pairs": stats.pairs, "batches": stats.batches, "wall_seconds": wall,
        "worker_cpu_seconds": worker_seconds, "shard_cpu_seconds": shard_seconds,
        "kernel_ns_per_pair": 1e9 * kernel_seconds / pairs,
        "total_ns_per_pair": 1e9 * total / stats.pairs,
        "overhead_ns_per_pair": 1e9 * (total - kernel_seconds) / stats.pairs,
        "bytes_per_pair": (stats.bytes_sent + stats.bytes_received) / stats.pairs,
    }
    print(f"d={args.dim}, {args.shards} shards, {stats.pairs:,} pairs in {stats.batches} "
          f"batches: kernels {result['kernel_ns_per_pair']:.0f} ns a pair, with the transport "
          f"{result['total_ns_per_pair']:.0f} (worker {worker_seconds:.2f} s + shards "
          f"{shard_seconds:.2f} s CPU): {result['overhead_ns_per_pair']:.0f} ns a pair "
          f"beyond the kernels, {result['bytes_per_pair']:.0f} bytes a pair")
    args.out.write_text(json.dumps({"machine": machine(), "result": result}, indent=2) + "\n")


if __name__ == "__main__":
    main()

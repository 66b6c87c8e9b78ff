"""A model larger than any one process: train one epoch of a Zipf-like synthetic corpus with
a vocabulary of 2 million words at d=300 on Spark with 4 parameter-server shards, export it,
and show every process's peak resident memory beside half the full model's size.

    python benchmarks/big_model.py [--vocab-size 2000000] [--dim 300] [--shards 4]
        [--tokens 12000000] [--data-dir DIR] [--json benchmarks/results/big_model.json]

The full model is the input and output matrices, vocab x dim float32 each (2M x 300: 4.8 GB);
each shard holds dim/shards columns of both. The corpus is made by `distw2v.synthetic` in a
child process (cached in --data-dir when given) so that the driver's peak is training's only.
Peaks come from two places: the figures `train_spark` returns (the shards' VmHWM, the Spark
Python workers' VmHWM at the end of each training task, the JVM's VmHWM, the driver's
ru_maxrss), and a sampler that reads VmHWM of every process below this one every 0.2 s, which
also sees Python workers that only counted or encoded and shards' peaks before they exit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # Spark binds to loopback only

from distw2v.config import SparkConfig, TrainConfig, VocabConfig
from distw2v.distributed.driver import train_spark
from distw2v.synthetic import read_manifest

MB = 1 << 20
RESULTS = Path(__file__).parent / "results" / "big_model.json"


# --- peak memory of every process below this one -------------------------------------------


def _children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry.name}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _hwm_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _kind(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "gone"
    if "ps-shard" in cmd:
        return "shard"
    if "pyspark.daemon" in cmd or "pyspark.worker" in cmd:
        return "executor python"
    if "java" in cmd.split(" ", 1)[0]:
        return "jvm"
    return "other: " + cmd[:80]


class Sampler(threading.Thread):
    """Largest VmHWM seen of each process descending from this one, with its kind."""

    def __init__(self, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peaks: dict[int, tuple[str, int]] = {}
        self._stop_event = threading.Event()

    def sample(self) -> None:
        tree = _children_of()
        todo = list(tree.get(os.getpid(), []))
        while todo:
            pid = todo.pop()
            todo.extend(tree.get(pid, []))
            hwm = _hwm_kib(pid)
            if hwm is None:
                continue
            # classified every time: a launcher script may exec into the JVM under its pid
            old = self.peaks.get(pid, ("", 0))[1]
            self.peaks[pid] = (_kind(pid), max(old, hwm))

    def run(self) -> None:
        while not self._stop_event.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def by_kind(self) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for pid in sorted(self.peaks):
            kind, kib = self.peaks[pid]
            out.setdefault(kind, []).append(kib / 1024)
        return out


# --- corpus -------------------------------------------------------------------------------------


def corpus(args: argparse.Namespace, data_dir: Path) -> tuple[Path, dict[str, Any], float]:
    """The synthetic corpus for these arguments: reused when its manifest matches."""
    path = data_dir / f"zipf-v{args.vocab_size}-t{args.tokens}-e{args.exponent}-s{args.seed}"
    wanted = {"vocab_size": args.vocab_size, "tokens": args.tokens, "exponent": args.exponent,
              "seed": args.seed, "sentence_length": args.sentence_length}
    manifest = read_manifest(path)
    if manifest is not None and all(manifest.get(k) == v for k, v in wanted.items()):
        print(f"reusing corpus {path}", flush=True)
        return path, manifest, 0.0
    start = time.perf_counter()
    per_file = -(-args.tokens // args.partitions)
    subprocess.run([sys.executable, "-m", "distw2v.synthetic", "--vocab-size",
                    str(args.vocab_size), "--tokens", str(args.tokens), "--exponent",
                    str(args.exponent), "--seed", str(args.seed), "--sentence-length",
                    str(args.sentence_length), "--words-per-file", str(per_file),
                    "--out", str(path)], check=True)
    seconds = time.perf_counter() - start
    manifest = read_manifest(path)
    if manifest is None:
        raise SystemExit(f"the generator left no manifest in {path}")
    return path, manifest, seconds


def check_export(model: Path, vocab_size: int, dim: int) -> dict[str, Any]:
    """Rows, words and finiteness of the exported model, read in blocks (no memory map, so
    this process's resident memory stays small). Run after the driver's peak was taken."""
    with open(model / "words.tsv", encoding="utf-8") as lines:
        words = sum(1 for _ in lines)
    with open(model / "vectors.npy", "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, dtype = read_header(f)
        finite, rows, norm_sum = True, 0, 0.0
        block_rows = max(1, (64 * MB) // (4 * dim))
        while rows < shape[0]:
            n = min(block_rows, shape[0] - rows)
            block = np.frombuffer(f.read(n * dim * 4), dtype=dtype).reshape(n, dim)
            finite = finite and bool(np.isfinite(block).all())
            norm_sum += float(np.linalg.norm(block, axis=1).sum())
            rows += n
    return {"shape": list(shape), "rows_ok": shape == (vocab_size, dim), "finite": finite,
            "mean_row_norm": norm_sum / max(rows, 1), "word_lines": words,
            "bytes": (model / "vectors.npy").stat().st_size}


# --- the run ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vocab-size", type=int, default=2_000_000)
    parser.add_argument("--dim", type=int, default=300)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=12_000_000,
                        help="corpus words (at least --vocab-size: every word occurs)")
    parser.add_argument("--exponent", type=float, default=1.0, help="Zipf exponent")
    parser.add_argument("--sentence-length", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--broadcast-limit", type=int, default=SparkConfig().broadcast_limit,
                        help="vocabularies above it are encoded by a distributed join")
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--negative", type=int, default=5)
    parser.add_argument("--data-dir", help="where the corpus is kept for the next run "
                        "(default: a temporary directory, removed afterwards)")
    parser.add_argument("--out-dir", help="where the model is written (default: a temporary "
                        "directory, removed afterwards)")
    parser.add_argument("--json", type=Path, default=RESULTS)
    args = parser.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="big-model-")
    data_dir = Path(args.data_dir) if args.data_dir else Path(tmp.name)
    data_dir.mkdir(parents=True, exist_ok=True)
    out = Path(args.out_dir or tmp.name) / "model"
    model_bytes = args.vocab_size * args.dim * 4 * 2
    half_mb = model_bytes / 2 / MB
    try:
        path, manifest, gen_seconds = corpus(args, data_dir)
        print(f"corpus: {manifest['tokens']:,} words, {manifest['vocab_size']:,} distinct, "
              f"{manifest['bytes'] / 1e6:,.0f} MB in {len(manifest['files'])} files"  # type: ignore[arg-type]
              + (f" (generated in {gen_seconds:.1f} s)" if gen_seconds else ""), flush=True)

        sampler = Sampler()
        sampler.start()
        marks: dict[str, float] = {}
        start = time.perf_counter()

        def log(message: str) -> None:
            print(f"[{time.perf_counter() - start:7.1f} s] {message}", flush=True)
            if message.startswith("vocabulary:"):
                marks["vocabulary"] = time.perf_counter() - start

        class Bar:
            def __init__(self, **_: Any) -> None:
                marks["training_start"] = time.perf_counter() - start
                self.n = 0
                self.shown = 0.0

            def update(self, n: float = 1) -> None:
                self.n += int(n)
                now = time.perf_counter()
                if now - self.shown >= 15:
                    self.shown = now
                    log(f"training: {self.n:,} words")

            def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
                pass

            def close(self) -> None:
                marks["training_end"] = time.perf_counter() - start
                log(f"training done: {self.n:,} words; exporting")

        figures, summary = train_spark(
            [str(path)], out, VocabConfig(min_count=1),
            TrainConfig(dim=args.dim, epochs=1, window=args.window, negative=args.negative,
                        seed=args.seed),
            SparkConfig(spark_master=args.spark_master, shards=args.shards,
                        partitions=args.partitions, broadcast_limit=args.broadcast_limit),
            progress=Bar, log=log)
        wall = time.perf_counter() - start
        driver_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        sampler.stop()
        sampler.sample()  # processes still alive (none, normally)
        log(f"done; {summary.line()}")
        export = check_export(out, args.vocab_size, args.dim)
    finally:
        tmp.cleanup()

    sampled = sampler.by_kind()
    rows: list[dict[str, Any]] = []
    for i, peak in enumerate(figures["shard_peak_rss_mb"]):
        rows.append({"process": f"shard {i}", "peak_rss_mb": peak, "source": "driver (VmHWM)"})
    rows.append({"process": "JVM (Spark driver + local executors)",
                 "peak_rss_mb": figures["jvm_peak_rss_mb"], "source": "driver (VmHWM)"})
    rows.append({"process": "executors' Python workers (training tasks)",
                 "peak_rss_mb": figures["executor_python_peak_rss_mb"],
                 "source": "tasks (VmHWM)"})
    rows.append({"process": "driver Python (this process)", "peak_rss_mb": driver_peak,
                 "source": "ru_maxrss"})
    for kind in ("shard", "jvm", "executor python"):
        peaks = sampled.get(kind, [])
        if peaks:
            rows.append({"process": f"sampled: {kind} (max of {len(peaks)})",
                         "peak_rss_mb": max(peaks), "source": "sampler (VmHWM)"})
    for row in rows:
        row["pass"] = bool(row["peak_rss_mb"] < half_mb)

    print()
    print(f"vocabulary {args.vocab_size:,} x dim {args.dim}, {args.shards} shards, "
          f"{figures['words']:,} words, one epoch, {args.spark_master}, "
          f"{args.partitions} partitions")
    print(f"full model (2 matrices, float32): {model_bytes / MB:10,.0f} MiB")
    print(f"half of it:                       {half_mb:10,.0f} MiB")
    print(f"held by each shard:               "
          f"{np.mean(figures['shard_bytes_held']) / MB:10,.0f} MiB")
    print()
    print(f"{'process':<46} {'peak RSS MiB':>12} {'half model':>11}  result")
    for row in rows:
        print(f"{row['process']:<46} {row['peak_rss_mb']:12,.0f} {half_mb:11,.0f}  "
              f"{'PASS' if row['pass'] else 'FAIL'}")
    print()
    train_s = marks.get("training_end", wall) - marks.get("training_start", 0.0)
    print(f"wall {wall:.1f} s: Spark start + vocabulary {marks.get('vocabulary', 0):.1f} s, "
          f"encoding + shard set-up "
          f"{marks.get('training_start', 0) - marks.get('vocabulary', 0):.1f} s, "
          f"training {train_s:.1f} s ({figures['words'] / max(train_s, 1e-9):,.0f} words/s, "
          f"{figures['pairs'] / max(train_s, 1e-9):,.0f} pairs/s), "
          f"export + shut-down {wall - marks.get('training_end', wall):.1f} s")
    print(f"export: shape {export['shape']}, finite {export['finite']}, "
          f"{export['bytes'] / MB:,.0f} MiB")
    all_pass = all(row["pass"] for row in rows) and export["rows_ok"] and export["finite"]
    print("ALL PASS" if all_pass else "SOME FAIL")

    result = {
        "benchmark": "big_model",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "memory_gib": round(os.sysconf("SC_PAGE_SIZE")
                                        * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                    "load_average_at_end": os.getloadavg()},
        "config": {k: v for k, v in vars(args).items() if k not in ("json",)},
        "corpus": {k: manifest[k] for k in ("vocab_size", "tokens", "bytes", "exponent",
                                            "sentence_length", "seed")},
        "corpus_generation_seconds": round(gen_seconds, 1),
        "model_bytes": model_bytes, "half_model_mb": round(half_mb, 1),
        "processes": rows,
        "sampled_peaks_mb": {k: [round(v, 1) for v in vs] for k, vs in sampled.items()},
        "figures": {k: v for k, v in figures.items()},
        "seconds": {"wall": round(wall, 1), **{k: round(v, 1) for k, v in marks.items()},
                    "training": round(train_s, 1)},
        "export": export,
        "all_pass": all_pass,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

"""The Spark engine's two strategies against each other and the local trainer, in one run.

For each corpus and dimension, on local[2] with 2 shards: the local trainer (2 threads), the
column strategy and the row strategy (with the permutation; at d=100 on English also without
it). Each run is its own process; its figures:

* training words/s: the training phase only (after encoding, shards up), as each engine's
  summary line reports it; Spark's start-up and encoding are reported beside it (wall);
* bytes a word on the wire (everything the training tasks sent and received);
* words per CPU-second over every process of the run (driver, JVM, executors, shards: the
  CPU time of the run's process tree, sampled from /proc; the whole run, reading included);
* quality: English's WordSim353 / SimLex999 / analogy; the planted corpus's analogies; none
  for the Zipf corpus (no structure to find);
* shard load balance: max / mean of the bytes each shard received and sent;
* the row strategy's share of row-naming bytes sent as bitmaps (the rest: int32 indices).

Corpora: the shared English corpus; the quality matrix's planted-relations corpus
(distw2v.synthetic.write_planted_corpus, its defaults: 1M words, 5 epochs); and a generated
Zipf corpus with at least 1M distinct words (min_count 1, 1 epoch: speed and traffic only).
It prints where one strategy overtakes the other.

    python benchmarks/strategies.py                   # english, planted, zipf at d=50,100,300
    python benchmarks/strategies.py --dims 100 --corpora english --epochs 2
    python benchmarks/strategies.py --dims 100 --corpora english --repeats 3  # medians
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import Settings, emit_result, evaluate, machine, run_child

RESULTS = Path(__file__).resolve().parent / "results" / "strategies.json"
SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def zipf_corpus(work: Path, words: int, vocab: int) -> Path:
    from distw2v.synthetic import write_zipf_corpus

    path = work / f"zipf-{vocab}-{words}.txt"
    if not path.exists():
        partial = path.with_name(".partial-" + path.name)
        write_zipf_corpus(partial, vocab_size=vocab, tokens=words, seed=1)
        partial.rename(path)
    return path


class TreeCPU:
    """CPU seconds of this process and every descendant (the JVM, its Python workers, the
    shards), sampled from /proc while the run goes: a process's last sample counts, so one
    that ends between samples loses at most an interval's CPU. (getrusage's children total
    misses processes their parents never wait for, as the JVM.)"""

    def __init__(self, interval: float = 0.25) -> None:
        import threading

        self.interval = interval
        self.last: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.tick = os.sysconf("SC_CLK_TCK")

    def _sample(self) -> None:
        parents: dict[int, int] = {}
        times: dict[int, float] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)] = int(fields[1])
            times[int(entry)] = (int(fields[11]) + int(fields[12])) / self.tick
        mine = {os.getpid()}
        grew = True
        while grew:
            more = {pid for pid, parent in parents.items() if parent in mine} - mine
            grew = bool(more)
            mine |= more
        for pid in mine:
            self.last[pid] = times[pid]

    def _watch(self) -> None:
        while not self.stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> TreeCPU:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()
        self._sample()

    @property
    def seconds(self) -> float:
        return sum(self.last.values())


def child(args: argparse.Namespace) -> None:
    """One run, in this process: prints its figures."""
    with TreeCPU() as cpu:
        result = run_one(args)
    result["cpu_seconds"] = cpu.seconds
    emit_result(result)


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    from distw2v.config import SparkConfig, VocabConfig

    corpus = Path(args.corpus)
    s = Settings(dim=args.dim, epochs=args.epochs, min_count=args.min_count)
    started = time.perf_counter()
    if args.system == "local":
        from distw2v.pipeline import build_vocab, encode, train_vectors

        vocab, _ = build_vocab([str(corpus)], VocabConfig(min_count=s.min_count))
        with tempfile.TemporaryDirectory() as tmp:
            encoded, _ = encode([str(corpus)], vocab, Path(tmp) / "encoded")
            train_started = time.perf_counter()
            vectors, words = train_vectors(encoded, vocab, s.train_config(1))
            seconds = time.perf_counter() - train_started
        result: dict[str, Any] = {"train_seconds": seconds, "trained_words": words}
        words_list, matrix = list(vocab.words), vectors.matrix
    else:
        from distw2v.distributed.driver import train_spark
        from distw2v.vectors import Vectors

        spark = SparkConfig(spark_master="local[2]", shards=2, partitions=4,
                            strategy=args.system, permute_rows=not args.no_permute)
        with tempfile.TemporaryDirectory() as tmp:
            figures, _ = train_spark([str(corpus)], Path(tmp) / "model",
                                     VocabConfig(min_count=s.min_count), s.train_config(1),
                                     spark)
            model = Vectors.load(Path(tmp) / "model", mmap=False)
            words_list, matrix = list(model.words), model.matrix
        moved = [a + b for a, b in zip(figures["shard_bytes_in"], figures["shard_bytes_out"])]
        naming = figures["index_bytes"] + figures["bitmap_bytes"]
        result = {"train_seconds": figures["seconds"], "trained_words": figures["words"],
                  "bytes_per_word": (figures["bytes_sent"] + figures["bytes_received"])
                  / figures["words"],
                  "shard_balance": max(moved) / (sum(moved) / len(moved)),
                  "bitmap_share": figures["bitmap_bytes"] / naming if naming else None}
    result["wall_seconds"] = time.perf_counter() - started
    result["train_words_per_second"] = result["trained_words"] / result["train_seconds"]
    result["vocab"] = len(words_list)
    if args.analogies:
        from distw2v.evaluate import evaluate_analogies
        from distw2v.vectors import Vectors

        result["analogy"] = evaluate_analogies(Vectors(words_list, matrix),
                                               args.analogies).accuracy
    elif args.quality:
        result.update(evaluate(words_list, matrix, Path(args.eval_dir)))
    return result


def median_run(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    """The run of median training words/s (the lower of the middle two), with every
    repeat's figure beside it."""
    speeds = [r["train_words_per_second"] for r in repeats]
    chosen = sorted(repeats, key=lambda r: r["train_words_per_second"])[(len(repeats) - 1) // 2]
    if len(repeats) > 1:
        print(f"  median of {len(repeats)}: {chosen['system']} "
              f"{chosen['train_words_per_second']:,.0f} words/s "
              f"(all: {', '.join(f'{v:,.0f}' for v in speeds)})", flush=True)
    return {**chosen, "repeat_words_per_second": speeds}


def spawn(args: argparse.Namespace, system: str, corpus: Path, dim: int, epochs: int,
          min_count: int, quality: bool | Path, no_permute: bool = False) -> dict[str, Any]:
    """One run in a child process; `quality` is True for English's figures, or the path of
    the analogies to score."""
    cmd = [sys.executable, __file__, "--child", "--system", system, "--corpus", str(corpus),
           "--dim", str(dim), "--epochs", str(epochs), "--min-count", str(min_count),
           "--eval-dir", str(args.eval_dir)]
    cmd += ["--quality"] if quality is True else []
    cmd += ["--analogies", str(quality)] if isinstance(quality, Path) else []
    cmd += ["--no-permute"] if no_permute else []
    result = run_child(cmd, f"{system} d={dim}", tail=4000)
    result["words_per_cpu_second"] = result["trained_words"] / result["cpu_seconds"]
    label = system + (" (no permutation)" if no_permute else "")
    quality_text = (f"  ws353 {result['wordsim353']:.3f} sl999 {result['simlex999']:.3f} "
                    f"analogy {100 * result['analogy']:.1f}%" if "wordsim353" in result
                    else f"  analogy {100 * result['analogy']:.1f}%" if "analogy" in result
                    else "")
    extra = (f"  {result['bytes_per_word']:,.0f} B/word  balance {result['shard_balance']:.2f}"
             + (f"  bitmap {100 * result['bitmap_share']:.0f}%"
                if result.get("bitmap_share") is not None else "")
             if system != "local" else "")
    print(f"  {label:26} train {result['train_words_per_second']:>10,.0f} words/s  "
          f"{result['words_per_cpu_second']:>9,.0f} words/CPU-s  wall "
          f"{result['wall_seconds']:5.0f} s{extra}{quality_text}", flush=True)
    return {"system": label, "dim": dim, **result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", nargs="+", choices=("english", "planted", "zipf"),
                        default=["english", "planted", "zipf"])
    parser.add_argument("--dims", nargs="+", type=int, default=[50, 100, 300])
    parser.add_argument("--epochs", type=int, default=5, help="English's epochs (default: 5)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="runs of every system, taken in turn; each reports its run of "
                        "median training words/s (default: 1)")
    parser.add_argument("--zipf-words", type=int, default=20_000_000)
    parser.add_argument("--zipf-vocab", type=int, default=1_000_000)
    parser.add_argument("--work", type=Path,
                        default=Path(os.environ.get("TMPDIR", "/tmp")) / "distw2v-strategies")
    parser.add_argument("--eval-dir", type=Path, default=SHARED_DATA / "eval")
    parser.add_argument("--out", type=Path, default=RESULTS)
    # one run, in a child process
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--system", help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--dim", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--min-count", type=int, default=5, help=argparse.SUPPRESS)
    parser.add_argument("--quality", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-permute", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--analogies", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return

    runs: list[dict[str, Any]] = []
    for name in args.corpora:
        quality: bool | Path
        if name == "english":
            corpus, epochs, min_count = SHARED_DATA / "english.txt.gz", args.epochs, 5
            quality = True
        elif name == "planted":
            from quality_matrix import planted_corpus  # the quality matrix's, cached there

            spec = planted_corpus()
            corpus, quality = Path(spec["plain"]), Path(spec["analogies"])
            epochs, min_count = Settings().epochs, Settings().min_count
        else:
            args.work.mkdir(parents=True, exist_ok=True)
            corpus = zipf_corpus(args.work, args.zipf_words, args.zipf_vocab)
            epochs, min_count, quality = 1, 1, False
        for dim in args.dims:
            print(f"{name}, d={dim}:", flush=True)
            systems = [("local", False), ("columns", False), ("rows", False)]
            if name == "english" and dim == 100:
                systems.append(("rows", True))
            # repeats go round the systems in turn, so that a slow spell of a shared machine
            # falls on all of them; each system's run of median speed is the one reported
            rounds = [[spawn(args, system, corpus, dim, epochs, min_count, quality,
                             no_permute=no_permute) for system, no_permute in systems]
                      for _ in range(args.repeats)]
            row = [median_run([done[k] for done in rounds]) for k in range(len(systems))]
            for r in row:
                r["corpus"] = name
            local, columns, rows = row[0], row[1], row[2]
            faster = "rows" if rows["train_words_per_second"] > columns[
                "train_words_per_second"] else "columns"
            print(f"  -> {faster} trains faster at d={dim} ({name}); rows / local = "
                  f"{rows['train_words_per_second'] / local['train_words_per_second']:.2f}x, "
                  f"columns / local = "
                  f"{columns['train_words_per_second'] / local['train_words_per_second']:.2f}x",
                  flush=True)
            runs.extend(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "runs": runs}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

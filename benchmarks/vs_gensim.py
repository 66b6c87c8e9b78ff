"""distw2v against gensim on the same corpus, settings and cores, in one run.

Each (system, setting, seed) trains in its own subprocess so peak memory is its own. Both
systems are timed from an existing vocabulary to trained vectors (distw2v: encoding +
training; gensim: training from corpus_file), and words/s is the corpus word count times
epochs over that wall time for both. Both are scored by distw2v's evaluator.

Learning rate: both must decay it linearly from alpha to min_alpha over the run. gensim's
corpus_file mode does not by itself: each thread reads 1/workers of the corpus but measures
its progress against all of it, so with 2 workers the rate falls only half-way each epoch and
ends near 0.1 x alpha. Given total_examples, a thread measures progress in lines instead, so
"gensim" passes the lines per thread (corpus lines / workers) and keeps the stated schedule at
its full speed. Extra references: --gensim-hot adds corpus_file gensim without that
("gensim-hot", the hotter schedule users get by default), --gensim-iterable adds gensim on a
LineSentence iterator ("gensim-iter", slower, nominal schedule).

    python benchmarks/vs_gensim.py                       # skip-gram/CBOW d=100, skip-gram d=300
    python benchmarks/vs_gensim.py --settings sg100 --seeds 1 2 3 --scaling
    python benchmarks/vs_gensim.py --settings cbow100 --seeds 1 2 3 --gensim-iterable --gensim-hot
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import (  # benchmarks/ is on sys.path
    Settings,
    emit_result,
    evaluate,
    peak_rss_mb,
    run_child,
    train_gensim,
    train_local,
)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
SETTINGS = {
    "sg100": {"model": "skipgram", "dim": 100},
    "cbow100": {"model": "cbow", "dim": 100},
    "sg300": {"model": "skipgram", "dim": 300},
}
COMMON: dict[str, Any] = {"window": 5, "negative": 5, "min_count": 5, "sample": 1e-3, "epochs": 5}
QUALITY = ("wordsim353", "simlex999", "analogy")


def run_distw2v(corpus: Path, setting: dict, seed: int, workers: int, eval_dir: Path) -> dict:
    trained = train_local(corpus, settings_of(setting, workers), seed)
    return {"wall": trained.train_seconds, "corpus_words": trained.corpus_words,
            "vocab": len(trained.words), **evaluate(trained.words, trained.matrix, eval_dir)}


def run_gensim(plain: Path, setting: dict, seed: int, workers: int, eval_dir: Path,
               mode: str = "gensim") -> dict:
    """gensim's corpus_file mode (its fastest) on the stated schedule ("gensim"), or as it
    runs by default ("gensim-hot"), or on a LineSentence iterator ("gensim-iter"); see the
    module docstring."""
    trained = train_gensim(plain, settings_of(setting, workers), seed, mode)
    return {"wall": trained.train_seconds, "corpus_words": trained.corpus_words,
            "vocab": len(trained.words), **evaluate(trained.words, trained.matrix, eval_dir)}


def settings_of(setting: dict, workers: int) -> Settings:
    return Settings(model=setting["model"], dim=setting["dim"], window=COMMON["window"],
                    negative=COMMON["negative"], min_count=COMMON["min_count"],
                    sample=COMMON["sample"], epochs=COMMON["epochs"], workers=workers)


def child(args: argparse.Namespace) -> None:
    setting = SETTINGS[args.setting]
    if args.system == "distw2v":
        result = run_distw2v(Path(args.corpus), setting, args.seed, args.workers,
                             Path(args.eval_dir))
    else:
        result = run_gensim(Path(args.plain), setting, args.seed, args.workers,
                            Path(args.eval_dir), mode=args.system)
    result["words_per_second"] = result["corpus_words"] * COMMON["epochs"] / result["wall"]
    result["peak_rss_mb"] = peak_rss_mb()
    emit_result(result)


def spawn(system: str, setting: str, seed: int, workers: int, args, plain: Path) -> dict:
    cmd = [sys.executable, __file__, "--child", "--system", system, "--setting", setting,
           "--seed", str(seed), "--workers", str(workers), "--corpus", str(args.corpus),
           "--plain", str(plain), "--eval-dir", str(args.eval_dir)]
    result = run_child(cmd, f"{system} {setting} seed {seed}")
    print(f"  {system:11} {setting:8} seed {seed} workers {workers}: "
          f"{result['words_per_second']:>10,.0f} words/s  {result['wall']:6.1f} s", flush=True)
    return result


def median_of(runs: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in runs) for key in runs[0]
            if key != "process_seconds"}


def table(rows: list[dict]) -> str:
    head = (f"{'setting':8} {'system':11} {'words/s':>10} {'ratio':>6} {'wall s':>7} "
            f"{'peak MiB':>8} {'WS353':>6} {'SL999':>6} {'analogy':>7}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['setting']:8} {r['system']:11} {r['words_per_second']:>10,.0f} "
            f"{r['ratio']:>5.2f}x {r['wall']:>7.1f} {r['peak_rss_mb']:>8,.0f} "
            f"{r['wordsim353']:>6.3f} {r['simlex999']:>6.3f} {100 * r['analogy']:>6.1f}%")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", default=str(SHARED / "english.txt.gz"))
    parser.add_argument("--eval-dir", default=str(SHARED / "eval"))
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1],
                        help="quality figures are the median over seeds")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gensim-iterable", action="store_true",
                        help="also run gensim on a LineSentence iterator, as a reference")
    parser.add_argument("--gensim-hot", action="store_true",
                        help="also run corpus_file gensim on its default, hotter schedule")
    parser.add_argument("--scaling", action="store_true",
                        help="also time distw2v skip-gram d=100 with 1 and 2 workers (per seed)")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "vs_gensim.json"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--system", help=argparse.SUPPRESS)
    parser.add_argument("--setting", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--plain", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if not Path(args.corpus).exists():
        sys.exit(f"corpus {args.corpus} not found; pass --corpus")

    tmp = Path(tempfile.mkdtemp(prefix="vs-gensim-"))
    try:
        plain = tmp / "corpus.txt"  # gensim's corpus_file mode reads plain text only
        with gzip.open(args.corpus, "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst)
        rows = []
        systems = ["gensim"] + ["gensim-hot"] * args.gensim_hot + (
            ["gensim-iter"] * args.gensim_iterable) + ["distw2v"]
        for setting in args.settings:
            by_system, per_seed = {}, {}
            for system in systems:
                runs = [spawn(system, setting, seed, args.workers, args, plain)
                        for seed in args.seeds]
                by_system[system] = median_of(runs)
                per_seed[system] = [{key: r[key] for key in ("words_per_second", *QUALITY)}
                                    for r in runs]
            for system in systems:
                row = {"setting": setting, "system": system, "workers": args.workers,
                       "seeds": args.seeds, **by_system[system], "per_seed": per_seed[system]}
                row["ratio"] = row["words_per_second"] / by_system["gensim"]["words_per_second"]
                rows.append(row)
        scaling = None
        if args.scaling:  # medians over the seeds: single runs vary by about 10% here
            one = median_of([spawn("distw2v", "sg100", seed, 1, args, plain)
                             for seed in args.seeds])
            two = median_of([spawn("distw2v", "sg100", seed, 2, args, plain)
                             for seed in args.seeds])
            scaling = {"workers_1": one["words_per_second"], "workers_2": two["words_per_second"],
                       "speedup": two["words_per_second"] / one["words_per_second"]}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(table(rows))
    if scaling:
        print(f"\nscaling (distw2v sg100): 1 worker {scaling['workers_1']:,.0f} words/s, "
              f"2 workers {scaling['workers_2']:,.0f} words/s, speedup {scaling['speedup']:.2f}x")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    report = {"corpus": str(args.corpus), "cpu_count": os.cpu_count(), "common": COMMON,
              "rows": rows, "scaling": scaling}
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {args.json}")


if __name__ == "__main__":
    main()

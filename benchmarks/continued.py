"""Continued training (--init) against training on the whole corpus at once.

Protocol, the same total epochs a word: the English corpus is cut by line order (its sources
are concatenated, so the halves differ in what they talk about) into two halves of equal
words. "whole" trains 5 epochs on all of it; "continued" trains 5 epochs on half 1 (kept
with its output matrix), then 5 epochs on half 2 with --init, a fresh learning-rate schedule
and the same seed. Local engine, skip-gram, dim 100, window 5, negative 5, min_count 5 (the
continued run's new words must pass it within half 2), sample 1e-3, 2 workers. Scored by
distw2v's evaluator (WordSim353, SimLex999 Spearman; questions-words 3CosAdd accuracy) on the
words both models have (the continued vocabulary lacks words counted 5 times in the whole
corpus but fewer in each half: scored on their own vocabularies, the two would answer
different analogy questions); the figures on each model's own vocabulary are kept too.
"continued, alpha/2" is the same continued run with half the learning rate on half 2.
gensim 4 runs the same protocol ("gensim whole"; "gensim continued": Word2Vec on half 1,
then build_vocab(half 2, update=True) and train on half 2, whose schedule starts again), and
"half 1 only" / "half 2 only" (5 epochs on one half, from scratch) are the baselines that
continued training must beat; those two are scored on their own (smaller) vocabularies.

Words only in the second half (at least --min-new occurrences there, none in half 1) show
whether new words get useful neighbours: their 10 nearest neighbours in the continued model
are listed, with their overlap with the same word's 10 neighbours in the whole model (the
same overlap for words of both halves is the yardstick).

    python benchmarks/continued.py                 # 3 seeds, ~20 minutes on 2 quiet cores
    python benchmarks/continued.py --seeds 1 --lines 40000   # a quick look
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from common import evaluate, machine  # benchmarks/ is on sys.path

import distw2v
from distw2v.vectors import Vectors

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
SETTINGS: dict[str, Any] = {"dim": 100, "window": 5, "negative": 5, "min_count": 5,
                            "sample": 1e-3, "epochs": 5, "workers": 2}
# the issue: continued within these of whole
TOLERANCE = {"wordsim353": 0.02, "analogy": 0.01}
SHOWN_NEW_WORDS = 12


def split(corpus: Path, lines: int | None, out: Path) -> tuple[Path, Path, Path, int]:
    """The corpus (its first `lines` lines) as a whole file and two halves of equal words."""
    with gzip.open(corpus, "rt", encoding="utf-8") as src:
        text = [line for _, line in zip(range(lines or 10**12), src)]
    total = sum(len(line.split()) for line in text)
    seen, cut = 0, len(text)
    for i, line in enumerate(text):
        seen += len(line.split())
        if seen >= total / 2:
            cut = i + 1
            break
    paths = out / "whole.txt", out / "half1.txt", out / "half2.txt"
    for path, part in zip(paths, (text, text[:cut], text[cut:])):
        path.write_text("".join(part), encoding="utf-8")
    return *paths, total


def counts(path: Path) -> Counter[str]:
    found: Counter[str] = Counter()
    with open(path, encoding="utf-8") as src:
        for line in src:
            found.update(line.split())
    return found


def neighbours(vectors: Vectors, word: str) -> list[str]:
    return [w for w, _ in vectors.most_similar(word, topn=10, exact=True)]


def overlap(a: Vectors, b: Vectors, words: list[str]) -> float:
    """Mean share of the 10 nearest neighbours two models agree on, over `words`."""
    shares = [len(set(neighbours(a, w)) & set(neighbours(b, w))) / 10 for w in words]
    return statistics.fmean(shares) if shares else float("nan")


def common(model: Vectors, words: set[str]) -> Vectors:
    """`model` restricted to `words`, in its own order."""
    ids = [i for i, w in enumerate(model.words) if w in words]
    return Vectors([model.words[i] for i in ids], np.asarray(model.matrix)[ids])


def gensim_runs(seed: int, whole: Path, half1: Path, half2: Path) -> dict[str, Vectors]:
    """gensim 4's whole and continued models (corpus_file mode, the same settings)."""
    from gensim.models import Word2Vec

    def model() -> Any:
        return Word2Vec(vector_size=SETTINGS["dim"], window=SETTINGS["window"],
                        negative=SETTINGS["negative"], hs=0, min_count=SETTINGS["min_count"],
                        sample=SETTINGS["sample"], sg=1, workers=SETTINGS["workers"], seed=seed,
                        alpha=0.025)

    def trained(m: Any, corpus: Path, update: bool = False) -> Any:
        m.build_vocab(corpus_file=str(corpus), update=update)
        m.train(corpus_file=str(corpus), total_words=m.corpus_total_words,
                total_examples=m.corpus_count // SETTINGS["workers"],
                epochs=SETTINGS["epochs"])
        return m

    def vectors(m: Any) -> Vectors:
        return Vectors(list(m.wv.index_to_key), m.wv.vectors)

    whole_model = vectors(trained(model(), whole))
    return {"gensim whole": whole_model,
            "gensim continued": vectors(trained(trained(model(), half1), half2, update=True))}


def run_seed(seed: int, whole: Path, half1: Path, half2: Path, tmp: Path,
             eval_dir: Path, probe_new: list[str], probe_old: list[str]) -> dict[str, Any]:
    timings = {}
    start = time.perf_counter()
    whole_model = distw2v.train(str(whole), seed=seed, **SETTINGS)
    timings["whole"] = time.perf_counter() - start
    start = time.perf_counter()
    first = tmp / f"half1-{seed}"
    distw2v.train(str(half1), seed=seed, out=first, keep_output=True, ann_threshold=0,
                  **SETTINGS)
    timings["half1"] = time.perf_counter() - start
    start = time.perf_counter()
    continued = distw2v.train(str(half2), seed=seed, init=first, **SETTINGS)
    timings["half2"] = time.perf_counter() - start
    halved = distw2v.train(str(half2), seed=seed, init=first, alpha=0.0125, **SETTINGS)
    models = {"whole": whole_model, "continued": continued, "continued, alpha/2": halved,
              **gensim_runs(seed, whole, half1, half2)}
    shared = set.intersection(*(set(m.words) for m in models.values()))
    scores = {name: evaluate(*_arrays(common(model, shared)), eval_dir)
              for name, model in models.items()}
    models["half 1 only"] = Vectors.load(first)
    models["half 2 only"] = distw2v.train(str(half2), seed=seed, **SETTINGS)
    own_scores = {name: evaluate(*_arrays(model), eval_dir) for name, model in models.items()}
    new = [w for w in probe_new if w in continued and w in whole_model]
    old = [w for w in probe_old if w in continued and w in whole_model]
    return {"seed": seed, "scores": scores, "scores_on_own_vocabulary": own_scores,
            "seconds": timings,
            "vocabulary": {"whole": len(whole_model), "continued": len(continued),
                           "of_half1": len(Vectors.load(first)), "common": len(shared)},
            "neighbour_overlap_with_whole": {"second_half_only_words": overlap(
                continued, whole_model, new), "words_of_both_halves": overlap(
                    continued, whole_model, old)},
            "second_half_only_neighbours": {w: {"continued": neighbours(continued, w),
                                                "whole": neighbours(whole_model, w)}
                                            for w in new[:SHOWN_NEW_WORDS]}}


def _arrays(model: Vectors) -> tuple[list[str], np.ndarray]:
    return model.words, np.asarray(model.matrix)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=SHARED / "english.txt.gz")
    parser.add_argument("--eval-dir", type=Path, default=SHARED / "eval")
    parser.add_argument("--lines", type=int, default=None, help="read only the first lines")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--min-new", type=int, default=30,
                        help="occurrences in half 2 that make a probe word of the new ones")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/continued.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        whole, half1, half2, total = split(args.corpus, args.lines, tmp)
        c1, c2 = counts(half1), counts(half2)
        # probes: frequent in half 2 and absent from half 1; the yardstick: frequent in both
        probe_new = [w for w, c in c2.most_common() if c >= args.min_new and w not in c1
                     and w.isalpha()][:200]
        probe_old = [w for w, c in c2.most_common() if c >= args.min_new and
                     c1[w] >= args.min_new and w.isalpha()][200:400]
        runs = [run_seed(seed, whole, half1, half2, tmp, args.eval_dir, probe_new, probe_old)
                for seed in range(1, args.seeds + 1)]
    medians: dict[str, dict[str, float]] = {}
    for name in runs[0]["scores"]:
        medians[name] = {k: statistics.median(r["scores"][name][k] for r in runs)
                         for k in ("wordsim353", "simlex999", "analogy")}
    own = {name: {k: statistics.median(r["scores_on_own_vocabulary"][name][k] for r in runs)
                  for k in ("wordsim353", "simlex999", "analogy", "analogy_answered")}
           for name in runs[0]["scores_on_own_vocabulary"]}
    gap = {k: medians["continued"][k] - medians["whole"][k] for k in medians["whole"]}
    gap_halved = {k: medians["continued, alpha/2"][k] - medians["whole"][k]
                  for k in medians["whole"]}
    gap_gensim = {k: medians["gensim continued"][k] - medians["gensim whole"][k]
                  for k in medians["whole"]}
    result = {
        "benchmark": "continued", "protocol": __doc__.split("\n\n")[1].replace("\n", " "),
        "corpus": str(args.corpus), "lines": args.lines, "corpus_words": total,
        "settings": SETTINGS, "seeds": args.seeds,
        "second_half_only_words": len(probe_new), "words_of_both_halves": len(probe_old),
        "medians": medians, "continued_minus_whole": gap,
        "continued_alpha_half_minus_whole": gap_halved,
        "gensim_continued_minus_gensim_whole": gap_gensim,
        "medians_on_own_vocabulary": own, "tolerance": TOLERANCE,
        "within_tolerance": {k: gap[k] >= -t for k, t in TOLERANCE.items()},
        "median_neighbour_overlap_with_whole": {
            k: statistics.median(r["neighbour_overlap_with_whole"][k] for r in runs)
            for k in ("second_half_only_words", "words_of_both_halves")},
        "runs": runs, "machine": machine(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("medians", "continued_minus_whole",
                                             "continued_alpha_half_minus_whole",
                                             "gensim_continued_minus_gensim_whole",
                                             "medians_on_own_vocabulary",
                                             "within_tolerance",
                                             "median_neighbour_overlap_with_whole")}, indent=2))


if __name__ == "__main__":
    main()

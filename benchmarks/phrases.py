"""Phrases: distw2v's `phrases` against gensim's `Phrases`, in one run.

1. A corpus of planted multi-word names (synthetic/phrases.py: two-word countries, capitals
   whose first word is shared as in "new york"/"new delhi", three-word leaders; every name
   word also written alone as often as in its name). Both detectors run two passes, with
   their default scoring and threshold and with npmi > 0.5. A detector "found" the distinct
   joined words (holding "_") that occur at least min_count times in the corpus it joins:
   precision and recall against the planted names. distw2v's table precision counts every
   phrase of its table (a pass-1 piece of a three-word name counts against it).
2. Analogies that need the names as words (country : capital, country : leader), after
   training distw2v with `--phrases`, distw2v and gensim's Word2Vec on gensim's joined corpus,
   and distw2v without phrases (it cannot answer them: their words are not in its vocabulary).
3. English (../shared/data/english.txt.gz): the phrases of both detectors at their defaults,
   examples, and the reading pass's words/s (`distw2v vocab`) with and without --phrases.

    python benchmarks/phrases.py                 # writes benchmarks/results/phrases.json
    python benchmarks/phrases.py --tokens 500000 --skip-english
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from common import Settings, train_gensim  # benchmarks/ is on sys.path

from distw2v.config import PhrasesConfig, VocabConfig
from distw2v.corpus import iter_sentences
from distw2v.corpus.phrases import write_phrase_table
from distw2v.evaluate import evaluate_analogies
from distw2v.phrases import find_phrases
from distw2v.pipeline import build_vocab, train_local
from distw2v.synthetic import write_phrase_corpus
from distw2v.vectors import Vectors

ROOT = Path(__file__).resolve().parent.parent
ENGLISH = ROOT.parent / "shared" / "data" / "english.txt.gz"
MIN_COUNT = 5
EXAMPLES = ("united_states", "new_york", "last_year", "prime_minister", "white_house",
            "supreme_court", "los_angeles", "soviet_union", "per_cent", "vice_president")


def lines(path: Path) -> Iterator[list[str]]:
    opener: Callable[..., Any] = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as text:
        for line in text:
            if tokens := line.split():
                yield tokens


class Corpus:
    """A file as token lists, again on every iteration (what gensim's Phrases needs)."""

    def __init__(self, path: Path, transform: Callable[[list[str]], list[str]] | None = None):
        self.path, self.transform = path, transform

    def __iter__(self) -> Iterator[list[str]]:
        for tokens in lines(self.path):
            yield self.transform(tokens) if self.transform else tokens


# --- the detectors -----------------------------------------------------------------------


def ours(corpus: Path, table_path: Path, scoring: str, threshold: float | None) -> dict:
    start = time.perf_counter()
    table, _ = find_phrases([str(corpus)], VocabConfig(min_count=MIN_COUNT),
                            PhrasesConfig(scoring=scoring, threshold=threshold, passes=2))
    seconds = time.perf_counter() - start
    write_phrase_table(table_path, table)
    joined = iter_sentences([str(corpus)], VocabConfig(phrases=str(table_path)))
    return {"seconds": round(seconds, 2), "table": [p.text for p in table.phrases],
            "joined": joined_words(joined)}


def gensim_phrases(corpus: Path, scoring: str, threshold: float) -> tuple[dict, Any]:
    from gensim.models.phrases import Phrases

    start = time.perf_counter()
    settings = {"min_count": MIN_COUNT, "threshold": threshold, "scoring": scoring,
                "connector_words": frozenset()}
    first = Phrases(Corpus(corpus), **settings).freeze()
    second = Phrases(Corpus(corpus, first.__getitem__), **settings).freeze()
    seconds = time.perf_counter() - start

    def join(tokens: list[str]) -> list[str]:
        return second[first[tokens]]  # type: ignore[no-any-return]

    table = list(first.phrasegrams) + list(second.phrasegrams)
    return ({"seconds": round(seconds, 2), "table": table,
             "joined": joined_words(Corpus(corpus, join))}, join)


def joined_words(sentences: Iterable[list[str]]) -> Counter[str]:
    return Counter(w for tokens in sentences for w in tokens if "_" in w)


def precision_recall(found: dict, truth: set[str]) -> dict:
    words = {w for w, n in found["joined"].items() if n >= MIN_COUNT}
    hits = len(words & truth)
    table = set(found["table"])
    return {"found": len(words), "precision": round(hits / len(words), 4) if words else 0.0,
            "recall": round(hits / len(truth), 4), "table_phrases": len(table),
            "table_precision": round(len(table & truth) / len(table), 4) if table else 0.0,
            "seconds": found["seconds"],
            "false_positives": sorted(words - truth)[:10], "missed": sorted(truth - words)[:10]}


# --- analogies ---------------------------------------------------------------------------


def solved(words: list[str], matrix: Any, analogies: str) -> dict:
    result = evaluate_analogies(Vectors(words, matrix), analogies)
    questions = result.total + result.oov
    return {"solved": round(result.correct / questions, 4), "answered": result.total,
            "questions": questions}


def analogies(corpus: Path, table: Path, joins: dict[str, Callable[[list[str]], list[str]]],
              analogies_file: str, work: Path) -> dict:
    """Analogy figures of distw2v with --phrases, gensim's Word2Vec on each gensim-joined
    corpus (and distw2v on the npmi one), and distw2v without phrases."""
    s = Settings()
    train = s.train_config(1)
    out: dict[str, Any] = {}
    vectors, _ = train_local([str(corpus)], None,
                             VocabConfig(min_count=MIN_COUNT, phrases=str(table)), train)
    out["distw2v --phrases (word2phrase > 100)"] = solved(vectors.words, vectors.matrix,
                                                          analogies_file)
    for name, join in joins.items():
        joined = work / f"{name.replace(' ', '-')}.txt"
        with open(joined, "w", encoding="utf-8") as text:
            text.writelines(" ".join(join(tokens)) + "\n" for tokens in lines(corpus))
        trained = train_gensim(joined, s, 1)
        out[f"{name} + gensim Word2Vec"] = solved(trained.words, trained.matrix,
                                                  analogies_file)
        if "npmi" in name:
            vectors, _ = train_local([str(joined)], None, VocabConfig(min_count=MIN_COUNT),
                                     train)
            out[f"{name} + distw2v"] = solved(vectors.words, vectors.matrix, analogies_file)
    vectors, _ = train_local([str(corpus)], None, VocabConfig(min_count=MIN_COUNT), train)
    out["distw2v without phrases"] = solved(vectors.words, vectors.matrix, analogies_file)
    return out


# --- English -----------------------------------------------------------------------------


def english(work: Path, repeats: int) -> dict:
    config = VocabConfig(min_count=MIN_COUNT)
    start = time.perf_counter()
    table, _ = find_phrases([str(ENGLISH)], config, PhrasesConfig())
    ours_seconds = time.perf_counter() - start
    path = work / "english-phrases.tsv"
    write_phrase_table(path, table)
    from gensim.models.phrases import Phrases

    start = time.perf_counter()
    theirs = Phrases(Corpus(ENGLISH), min_count=MIN_COUNT, connector_words=frozenset()).freeze()
    gensim_seconds = time.perf_counter() - start
    mine = {p.text for p in table.phrases}
    gensims = set(theirs.phrasegrams)
    by_count = sorted(table.phrases, key=lambda p: -p.count)
    # the reading pass of `distw2v vocab`, with and without phrases, alternately; words
    # read (before joining) per second of wall and of this process's CPU (which other
    # processes on a shared machine disturb less)
    rates: dict[str, dict[str, list[float]]] = {"wall": {"without": [], "with": []},
                                                 "cpu": {"without": [], "with": []}}
    for _ in range(repeats):
        for name, vocab_config in (("without", config),
                                   ("with", VocabConfig(min_count=MIN_COUNT,
                                                        phrases=str(path)))):
            wall, cpu = time.perf_counter(), time.process_time()
            _, stats = build_vocab([str(ENGLISH)], vocab_config)
            rates["wall"][name].append(stats.tokens / (time.perf_counter() - wall))
            rates["cpu"][name].append(stats.tokens / (time.process_time() - cpu))
    throughput = {
        clock: {"best_words_per_second": {k: round(max(v)) for k, v in by.items()},
                "ratio_of_bests": round(max(by["with"]) / max(by["without"]), 3),
                "median_ratio_of_pairs": round(statistics.median(
                    w / wo for w, wo in zip(by["with"], by["without"], strict=True)), 3)}
        for clock, by in rates.items()}
    return {
        "phrases": len(mine), "gensim_phrases": len(gensims),
        "both": len(mine & gensims), "seconds": round(ours_seconds, 1),
        "gensim_seconds": round(gensim_seconds, 1),
        "examples_found": {e: e in mine for e in EXAMPLES},
        "gensim_examples_found": {e: e in gensims for e in EXAMPLES},
        "most_frequent": [f"{p.text} ({p.count}, {p.score:.0f})" for p in by_count[:25]],
        "highest_scores": [f"{p.text} ({p.count}, {p.score:.0f})" for p in table.phrases[:10]],
        "vocab_reading_with_and_without_phrases": throughput,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens", type=int, default=2_000_000)
    parser.add_argument("--entities", type=int, default=60)
    parser.add_argument("--distractor-rate", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=5, help="throughput pairs")
    parser.add_argument("--skip-english", action="store_true")
    parser.add_argument("--skip-analogies", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "phrases.json"))
    args = parser.parse_args()
    result: dict[str, Any] = {"settings": vars(args)}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        planted = write_phrase_corpus(work / "names.txt", tokens=args.tokens,
                                      entities=args.entities,
                                      distractor_rate=args.distractor_rate, seed=0)
        truth = set(planted.names)
        corpus = Path(planted.path)
        runs: dict[str, Any] = {}
        table = work / "w2p.tsv"
        runs["distw2v word2phrase > 100"] = precision_recall(
            ours(corpus, table, "word2phrase", None), truth)
        runs["distw2v npmi > 0.5"] = precision_recall(
            ours(corpus, work / "npmi.tsv", "npmi", 0.5), truth)
        joins = {}
        for name, scoring, threshold in (("gensim default > 10", "default", 10.0),
                                         ("gensim npmi > 0.5", "npmi", 0.5)):
            found, joins[f"gensim Phrases ({name[7:]})"] = gensim_phrases(corpus, scoring,
                                                                           threshold)
            runs[name] = precision_recall(found, truth)
        result["planted"] = {"tokens": planted.tokens, "names": len(truth), "runs": runs}
        for name, run in runs.items():
            print(f"{name:28} precision {run['precision']:.3f} recall {run['recall']:.3f} "
                  f"table precision {run['table_precision']:.3f} in {run['seconds']} s")
        ours_run, theirs = runs["distw2v word2phrase > 100"], runs["gensim default > 10"]
        print(f"distw2v/gensim at defaults: precision ratio "
              f"{ours_run['precision'] / max(theirs['precision'], 1e-9):.2f}, recall ratio "
              f"{ours_run['recall'] / max(theirs['recall'], 1e-9):.2f}, time ratio "
              f"{ours_run['seconds'] / theirs['seconds']:.2f}")
        if not args.skip_analogies:
            result["analogies"] = analogies(corpus, table, joins, planted.analogies, work)
            for name, run in result["analogies"].items():
                print(f"{name:40} solved {run['solved']:.3f} ({run['answered']} of "
                      f"{run['questions']} answered)")
        if not args.skip_english and ENGLISH.exists():
            result["english"] = english(work, args.repeats)
            e = result["english"]
            print(f"english: {e['phrases']} phrases ({e['gensim_phrases']} gensim, "
                  f"{e['both']} both); examples {e['examples_found']}")
            for clock, t in e["vocab_reading_with_and_without_phrases"].items():
                print(f"english: `distw2v vocab` words/s ({clock}) with/without phrases: "
                      f"{t['ratio_of_bests']:.2f} (bests), {t['median_ratio_of_pairs']:.2f} "
                      f"(median of {args.repeats} pairs)")
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"written to {args.out}")


if __name__ == "__main__":
    sys.exit(main())

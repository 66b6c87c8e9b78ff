"""Helpers shared by the benchmark scripts (run as `python benchmarks/NAME.py`)."""

from __future__ import annotations

import gzip
import json
import resource
import subprocess
import sys
import time
from pathlib import Path


def write_sample(corpus: Path, lines: int, dest: Path) -> int:
    """Copy the first `lines` lines of a (possibly gzipped) corpus to plain text at `dest`."""
    opener = gzip.open if corpus.suffix == ".gz" else open
    written = 0
    with opener(corpus, "rt", encoding="utf-8") as src, open(dest, "w", encoding="utf-8") as dst:
        for line in src:
            if written >= lines:
                break
            dst.write(line)
            written += 1
    return written


RESULT = "RESULT "  # the line a child process prints its figures on


def emit_result(result: dict) -> None:
    """In a child: hand the figures to the parent (see run_child)."""
    print(RESULT + json.dumps(result), flush=True)


def run_child(cmd: list[str], label: str, tail: int = 3000) -> dict:
    """Run one benchmark child process and return its figures (plus process_seconds); exit
    with its stderr when it fails."""
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith(RESULT)]
    if out.returncode != 0 or not lines:
        sys.exit(f"{label} failed:\n{out.stderr[-tail:]}")
    result = json.loads(lines[-1][len(RESULT):])
    result["process_seconds"] = time.perf_counter() - started
    return result


def evaluate(words: list[str], matrix, eval_dir: Path) -> dict[str, float]:
    """WordSim353, SimLex999 and questions-words figures with distw2v's evaluator."""
    from distw2v.evaluate import evaluate_analogies, evaluate_similarity
    from distw2v.vectors import Vectors

    vectors = Vectors(words, matrix)
    analogies = evaluate_analogies(vectors, eval_dir / "questions-words.txt")
    return {
        "wordsim353": evaluate_similarity(vectors, eval_dir / "wordsim353.tsv").spearman,
        "simlex999": evaluate_similarity(vectors, eval_dir / "simlex999.txt").spearman,
        "analogy": analogies.accuracy,
        "analogy_answered": analogies.total,
    }


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

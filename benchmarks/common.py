"""Helpers shared by the benchmark scripts (run as `python benchmarks/NAME.py`)."""

from __future__ import annotations

import gzip
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Spark drivers, executors and shards a benchmark starts bind to loopback only
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


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


class ChildFailed(Exception):
    """A benchmark child process failed; the message is its label and stderr's tail."""


def run_child(cmd: list[str], label: str, tail: int = 3000, exit_on_failure: bool = True) -> dict:
    """Run one benchmark child process and return its figures (plus process_seconds); when it
    fails, exit with its stderr, or raise ChildFailed if not `exit_on_failure`."""
    started = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith(RESULT)]
    if out.returncode != 0 or not lines:
        message = f"{label} failed:\n{out.stderr[-tail:]}"
        if exit_on_failure:
            sys.exit(message)
        raise ChildFailed(message)
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


# ---- one system's training, shared by vs_gensim.py, vs_spark_mllib.py and quality_matrix.py ----

@dataclass(frozen=True)
class Settings:
    """The training settings every system of a benchmark gets."""

    model: str = "skipgram"
    dim: int = 100
    window: int = 5
    negative: int = 5
    min_count: int = 5
    sample: float = 1e-3
    epochs: int = 5
    workers: int = 2

    @property
    def alpha(self) -> float:
        # word2vec.c's and distw2v's default per model (gensim's is 0.025 for both)
        return 0.025 if self.model == "skipgram" else 0.05

    def train_config(self, seed: int) -> Any:
        """distw2v's TrainConfig for these settings."""
        from distw2v.config import TrainConfig

        return TrainConfig(model="cbow" if self.model == "cbow" else "skipgram", dim=self.dim,
                           window=self.window, negative=self.negative, sample=self.sample,
                           epochs=self.epochs, workers=self.workers, seed=seed, alpha=self.alpha)


@dataclass
class Trained:
    """Vectors and where the time went: vocab_seconds builds the vocabulary from text,
    train_seconds goes from that vocabulary to vectors in memory."""

    words: list[str]
    matrix: Any
    corpus_words: int
    vocab_seconds: float
    train_seconds: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def wall(self) -> float:
        """From text to vectors."""
        return self.vocab_seconds + self.train_seconds


def train_gensim(plain: Path, s: Settings, seed: int, mode: str = "gensim") -> Trained:
    """gensim's corpus_file mode on the stated schedule ("gensim"), or as it runs by default
    ("gensim-hot"), or on a LineSentence iterator ("gensim-iter"): see vs_gensim.py's
    docstring for why "gensim" passes total_examples = lines per thread."""
    from gensim.models import Word2Vec
    from gensim.models.word2vec import LineSentence

    model = Word2Vec(vector_size=s.dim, window=s.window, negative=s.negative, hs=0,
                     min_count=s.min_count, sample=s.sample, sg=int(s.model == "skipgram"),
                     workers=s.workers, seed=seed, alpha=s.alpha)
    start = time.perf_counter()
    if mode == "gensim-iter":
        model.build_vocab(LineSentence(str(plain)))
        vocab_done = time.perf_counter()
        model.train(LineSentence(str(plain)), total_examples=model.corpus_count,
                    epochs=s.epochs)
    else:
        model.build_vocab(corpus_file=str(plain))
        vocab_done = time.perf_counter()
        per_thread = None if mode == "gensim-hot" else model.corpus_count // s.workers
        model.train(corpus_file=str(plain), total_words=model.corpus_total_words,
                    total_examples=per_thread, epochs=s.epochs)
    end = time.perf_counter()
    wv = model.wv
    return Trained(list(wv.index_to_key), wv.vectors, int(model.corpus_total_words),
                   vocab_done - start, end - vocab_done)


def train_local(corpus: Path, s: Settings, seed: int) -> Trained:
    """distw2v's local trainer: build_vocab, then encode + train_vectors (the train part)."""
    from distw2v.config import VocabConfig
    from distw2v.pipeline import build_vocab, encode, train_vectors

    start = time.perf_counter()
    vocab, _ = build_vocab([str(corpus)], VocabConfig(min_count=s.min_count))
    config = s.train_config(seed)
    with tempfile.TemporaryDirectory() as tmp:
        vocab_done = time.perf_counter()
        encoded, _ = encode([str(corpus)], vocab, Path(tmp) / "enc")
        vectors, _ = train_vectors(encoded, vocab, config)
        end = time.perf_counter()
    return Trained(list(vocab.words), vectors.matrix, vocab.corpus_words,
                   vocab_done - start, end - vocab_done)


def train_spark_engine(corpus: Path, s: Settings, seed: int, spark: Any) -> Trained:
    """distw2v --engine spark (`spark` is a SparkConfig). vocab_seconds is everything but the
    engine's own `seconds` (Spark and shard start, reading, distributed vocabulary, export,
    shutdown); train_seconds is that `seconds` (encoding + training). extra["peak_rss_mb"]
    sums the processes: Python driver + JVM + shards + 2 x the largest executor Python
    worker (local[2] runs two)."""
    from distw2v.config import VocabConfig
    from distw2v.distributed.driver import train_spark
    from distw2v.vectors import Vectors

    tmp = Path(tempfile.mkdtemp(prefix="bench-spark-"))
    try:
        start = time.perf_counter()
        figures, summary = train_spark(
            [str(corpus)], tmp / "model", VocabConfig(min_count=s.min_count),
            s.train_config(seed),
            spark)
        total = time.perf_counter() - start
        vectors = Vectors.load(tmp / "model", mmap=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    driver_peak = peak_rss_mb()
    memory = {"driver_python": driver_peak, "jvm": figures["jvm_peak_rss_mb"],
              "shards": figures["shard_peak_rss_mb"],
              "executor_python_max": figures["executor_python_peak_rss_mb"]}
    extra = {"trained_words": figures["words"], "pairs": figures["pairs"],
             "batches": figures["batches"],
             "bytes_on_wire": figures["bytes_sent"] + figures["bytes_received"],
             "peak_rss_mb": driver_peak + figures["jvm_peak_rss_mb"]
             + sum(figures["shard_peak_rss_mb"]) + 2 * figures["executor_python_peak_rss_mb"],
             "memory": memory}
    seconds = float(figures["seconds"])
    return Trained(list(vectors.words), vectors.matrix, int(summary.corpus_words),
                   total - seconds, seconds, extra)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu_model": model, "platform": platform.platform(),
            "python": platform.python_version(), "load_average": os.getloadavg()}

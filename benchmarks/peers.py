"""The quality matrix's speed anchors: Mikolov's C word2vec and fastText.

`word2vec_peer` downloads the sdist of PyPI's `word2vec==0.11.1` (which ships Mikolov's
word2vec.c) into a cache directory and compiles word2vec.c with the flags of the sdist's own
Makefile (-O3 -march=native -funroll-loops -pthread -lm), as issue 10 asks. Its setup.py uses
-Ofast instead, which lets gcc vectorise the float dot products: about 20% less CPU time
here (planted corpus, 2 epochs, 7.7-8.3 s against 8.9-11.2 s user); to try it, edit
W2V_CFLAGS (the binary is cached per set of flags).
`fasttext_peer` finds the `fasttext` binary (Debian's package `fasttext`). Either raises
PeerUnavailable with one sentence when it cannot, and the benchmark skips that system.

Both train on plain text and are timed from text to vectors:
* word2vec: two processes. The vocabulary pass (`-save-vocab`, no `-output`: word2vec.c stops
  after counting) is vocab_seconds; the training pass (`-read-vocab`, the same vocabulary,
  so the same training) is train_seconds and includes writing the vectors. They are written
  in the binary format: the text format prints dim numbers a word with fprintf, seconds on a
  million-word vocabulary that would be counted as training. word2vec.c has no seed option
  (each thread seeds its generator with its number), so its seeds differ by thread timing only.
* fastText: one process. Its log lines are time-stamped as they arrive: vocab_seconds ends at
  "Number of labels", train_seconds at the line end after the last "Progress:"; what follows,
  writing .bin and .vec, is save_seconds (in the wall, not in train_seconds).
Both add `</s>` for every line end (trained as a word); fastText draws negatives by
count^0.5 (word2vec.c, gensim and distw2v by count^0.75). `</s>` is dropped before scoring.
Peak memory is the largest of the peer's processes (RUSAGE_CHILDREN of the calling process,
which must have no other children).
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

W2V_REQUIREMENT = "word2vec==0.11.1"
W2V_MEMBER = "word2vec-0.11.1/word2vec/includes/word2vec.c"
W2V_CFLAGS = ["-O3", "-march=native", "-funroll-loops", "-pthread", "-Wno-unused-result"]
EOS = "</s>"


class PeerUnavailable(Exception):
    """A peer system cannot be built or found here; the message says why in one sentence."""


@dataclass(frozen=True)
class Peer:
    name: str
    binary: Path
    version: str
    build: list[list[str]] = field(default_factory=list)  # the commands that made it


@dataclass
class PeerRun:
    words: list[str]
    matrix: np.ndarray
    corpus_words: int | None  # as the peer counted them (word2vec.c: `</s>` too)
    vocab_seconds: float
    train_seconds: float
    wall: float
    peak_rss_mb: float
    commands: list[list[str]]
    extra: dict[str, Any] = field(default_factory=dict)


def _run(cmd: list[str], cwd: Path | None = None, what: str = "") -> None:
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        last = (out.stderr or out.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PeerUnavailable(f"{what or cmd[0]} failed (exit {out.returncode}): {last[0]}")


def word2vec_peer(cache: Path) -> Peer:
    """Mikolov's word2vec.c from the word2vec 0.11.1 sdist, compiled once into `cache`."""
    cache = cache.resolve()  # the binary runs in another directory
    cache.mkdir(parents=True, exist_ok=True)
    sdist = cache / "word2vec-0.11.1.tar.gz"
    flags_key = hashlib.sha256(" ".join(W2V_CFLAGS).encode()).hexdigest()[:8]
    binary = cache / f"word2vec-{flags_key}"  # rebuilt when the flags change
    download = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                W2V_REQUIREMENT, "-d", str(cache)]
    source = cache / "word2vec.c"
    tmp = binary.with_name(f".word2vec.tmp-{os.getpid()}")
    compile_ = ["gcc", *W2V_CFLAGS, str(source), "-o", str(tmp), "-lm"]
    if not sdist.exists():
        _run(download, what="pip download word2vec==0.11.1")
    if not binary.exists():
        if shutil.which("gcc") is None:
            raise PeerUnavailable("gcc is not installed, so word2vec.c cannot be compiled.")
        try:
            with tarfile.open(sdist) as tar:
                member = tar.extractfile(W2V_MEMBER)
                if member is None:
                    raise KeyError(W2V_MEMBER)
                source.write_bytes(member.read())
        except (KeyError, tarfile.TarError) as exc:
            raise PeerUnavailable(f"{sdist} has no usable {W2V_MEMBER} ({exc}).") from None
        _run(compile_, what="gcc word2vec.c")
        tmp.replace(binary)  # atomic: a binary in the cache is a complete one
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    return Peer("word2vec", binary, f"word2vec.c from {W2V_REQUIREMENT} (sdist sha256 {digest})",
                [download, compile_, ["mv", str(tmp), str(binary)]])


def fasttext_peer() -> Peer:
    """The `fasttext` command (Debian's fasttext package, or any on PATH)."""
    found = shutil.which("fasttext")
    if found is None:
        raise PeerUnavailable("the fasttext command is not installed "
                              "(apt-get install -y fasttext).")
    version = "fasttext (version unknown)"
    if shutil.which("dpkg-query"):
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "fasttext"],
                             capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout:
            version = f"fasttext {out.stdout.strip()} (Debian package)"
    return Peer("fasttext", Path(found), version)


def _children_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def _timed(cmd: list[str], cwd: Path, log: Path) -> float:
    """Run a peer to completion with its output in `log`; its wall seconds."""
    start = time.perf_counter()
    with open(log, "ab") as out:
        code = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                              check=False).returncode
    seconds = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"{cmd[0]} exited {code}: {log.read_text(errors='replace')[-2000:]}")
    return seconds


def _without_eos(words: list[str], matrix: np.ndarray) -> tuple[list[str], np.ndarray]:
    if EOS not in words:
        return words, matrix
    i = words.index(EOS)
    return words[:i] + words[i + 1:], np.delete(matrix, i, axis=0)


def _load(path: Path) -> tuple[list[str], np.ndarray]:
    from distw2v.vectors import Vectors

    vectors = Vectors.load_word2vec(path)
    return _without_eos(list(vectors.words), np.asarray(vectors.matrix))


def run_word2vec(peer: Peer, plain: Path, work: Path, s: Any, seed: int) -> PeerRun:
    """Train word2vec.c on `plain` in `work` (`s`: common.Settings). word2vec.c keeps file
    names in 100-byte buffers, so it runs in `work` on short relative names."""
    work.mkdir(parents=True, exist_ok=True)
    corpus = work / "corpus.txt"
    if not corpus.exists():
        corpus.symlink_to(plain.resolve())
    flags = ["-cbow", str(int(s.model == "cbow")), "-size", str(s.dim), "-window", str(s.window),
             "-negative", str(s.negative), "-hs", "0", "-sample", str(s.sample),
             "-threads", str(s.workers), "-iter", str(s.epochs), "-min-count", str(s.min_count),
             "-alpha", str(s.alpha), "-binary", "1"]
    vocab_cmd = [str(peer.binary), "-train", "corpus.txt", "-save-vocab", "vocab.txt",
                 "-min-count", str(s.min_count)]
    train_cmd = [str(peer.binary), "-train", "corpus.txt", "-read-vocab", "vocab.txt",
                 "-output", "vectors.bin", *flags]
    log = work / "word2vec.log"
    vocab_seconds = _timed(vocab_cmd, work, log)
    train_seconds = _timed(train_cmd, work, log)
    peak = _children_peak_mb()
    words, matrix = _load(work / "vectors.bin")
    corpus_words = _w2v_train_words(log)
    return PeerRun(words, matrix, corpus_words, vocab_seconds, train_seconds,
                   vocab_seconds + train_seconds, peak, [vocab_cmd, train_cmd],
                   {"seed_used": False})


def _w2v_train_words(log: Path) -> int:
    """'Words in train file' of word2vec.c's log (counted words, `</s>` included)."""
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("Words in train file:"):
            return int(line.split(":", 1)[1])
    return 0


class _Stamped:
    """Reads a process's output as it comes, noting when each byte arrived."""

    def __init__(self, stream: Any) -> None:
        self.data = bytearray()
        self.stamps: list[tuple[int, float]] = []  # (end offset, time) per chunk
        self._stream = stream
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        fd = self._stream.fileno()
        while chunk := os.read(fd, 65536):
            self.data += chunk
            self.stamps.append((len(self.data), time.perf_counter()))

    def join(self) -> None:
        self._thread.join()

    def time_at(self, offset: int) -> float | None:
        """When the byte at `offset` arrived."""
        for end, stamp in self.stamps:
            if offset < end:
                return stamp
        return None


def run_fasttext(peer: Peer, plain: Path, work: Path, s: Any, seed: int) -> PeerRun:
    """Train fastText on `plain` in `work` (`s`: common.Settings)."""
    if s.sample <= 0:
        raise ValueError("fastText cannot turn subsampling off (-t 0 discards every word); "
                         "give a positive sample.")
    work.mkdir(parents=True, exist_ok=True)
    cmd = [str(peer.binary), "skipgram" if s.model == "skipgram" else "cbow",
           "-input", str(plain), "-output", str(work / "model"), "-minn", "0", "-maxn", "0",
           "-t", str(s.sample), "-dim", str(s.dim), "-ws", str(s.window), "-neg",
           str(s.negative), "-minCount", str(s.min_count), "-epoch", str(s.epochs),
           "-thread", str(s.workers), "-lr", str(s.alpha), "-seed", str(seed)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    reader = _Stamped(proc.stdout)
    code = proc.wait()
    end = time.perf_counter()
    reader.join()
    text = reader.data.decode("utf-8", errors="replace")
    if code != 0:
        raise RuntimeError(f"fasttext exited {code}: {text[-2000:]}")
    peak = _children_peak_mb()
    labels = text.find("Number of labels")
    last = text.rfind("Progress:")
    vocab_end = reader.time_at(text.find("\n", labels)) if labels >= 0 else None
    train_end = reader.time_at(text.find("\n", last)) if last >= 0 else None
    if vocab_end is None or train_end is None:
        raise RuntimeError(f"fasttext's log has no vocabulary or progress lines: {text[-500:]}")
    words_line = next((ln for ln in text.replace("\r", "\n").splitlines()
                       if ln.startswith("Read ") and ln.endswith("M words")), "")
    words, matrix = _load(work / "model.vec")
    for name in ("model.bin", "model.vec"):  # up to GBs on a large vocabulary
        (work / name).unlink(missing_ok=True)
    return PeerRun(words, matrix, None, vocab_end - start, train_end - vocab_end, end - start,
                   peak, [cmd], {"save_seconds": end - train_end, "read_line": words_line})

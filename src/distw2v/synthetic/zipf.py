"""A Zipf-like synthetic corpus of pseudo-words, for tests and benchmarks at any scale.

Word ids are ranks: id r is drawn with probability proportional to 1 / (r + 1) ** exponent
and written as "w" followed by r in base 36 ("w0", "w1", ..., "wz", "w10", ...), so "w0" is
the most frequent word. Sentences hold `sentence_length` words, one a line.

Every word of the vocabulary occurs at least once, so that a vocabulary of exactly
`vocab_size` words survives `min_count=1`: `vocab_size` of the `tokens` positions are one
pass over every id in a random order (spread evenly over the corpus, a proportional slice of
the permutation mixed into each block), and the other `tokens - vocab_size` are drawn from
the Zipf distribution. A word's count is therefore 1 + its Zipf draws.

Memory is O(vocab_size + block) whatever `tokens` is: the cumulative distribution, the
permutation and the words' bytes are arrays over the vocabulary; tokens are drawn, mapped to
bytes and written one block at a time with NumPy. The output depends only on the arguments
(`seed` included), not on how it is split into files. Writes are atomic: the file or
directory appears complete under its name, or not at all.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

BLOCK_TOKENS = 1 << 19
MANIFEST = ".synthetic.json"  # hidden: corpus readers skip it when reading the directory
_DIGITS = np.frombuffer(b"0123456789abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)


@dataclass(frozen=True)
class SyntheticCorpus:
    """What `write_zipf_corpus` wrote."""

    files: list[str]
    vocab_size: int
    tokens: int
    sentences: int
    exponent: float
    sentence_length: int
    seed: int
    bytes: int


def word(rank: int) -> str:
    """The pseudo-word for id `rank` ("w" + base 36)."""
    if rank < 0:
        raise ValueError(f"a word id must not be negative, not {rank}.")
    digits = ""
    while True:
        rank, d = divmod(rank, 36)
        digits = chr(_DIGITS[d]) + digits
        if rank == 0:
            return "w" + digits


def word_table(vocab_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every word followed by a space, as one uint8 array; each word's start and length.

    Words of one length are a contiguous run of ids, so each run is a (n, length) matrix."""
    lengths = np.empty(vocab_size, dtype=np.int64)
    parts: list[np.ndarray] = []
    lo, digits = 0, 1
    while lo < vocab_size:
        hi = min(36**digits, vocab_size)
        ids = np.arange(lo, hi, dtype=np.int64)
        block = np.empty((hi - lo, digits + 2), dtype=np.uint8)
        block[:, 0] = ord("w")
        block[:, -1] = ord(" ")
        for k in range(digits, 0, -1):
            ids, d = np.divmod(ids, 36)
            block[:, k] = _DIGITS[d]
        parts.append(block.reshape(-1))
        lengths[lo:hi] = digits + 2
        lo, digits = hi, digits + 1
    starts = np.zeros(vocab_size, dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    return np.concatenate(parts), starts, lengths


def zipf_cdf(vocab_size: int, exponent: float) -> np.ndarray:
    """Cumulative probabilities of ranks 0..vocab_size-1 under 1 / (rank + 1) ** exponent."""
    weights = np.arange(1, vocab_size + 1, dtype=np.float64) ** -exponent
    cdf = np.cumsum(weights)
    cdf /= cdf[-1]
    return cdf


def _block_bytes(ids: np.ndarray, table: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                 sentence_length: int) -> bytes:
    """The text of `ids`: words joined by spaces, a newline after every sentence."""
    lens = lengths[ids]
    ends = np.cumsum(lens)
    shift = np.repeat(starts[ids] - (ends - lens), lens)
    shift += np.arange(int(ends[-1]), dtype=np.int64)
    out = table[shift]
    last = np.arange(sentence_length - 1, len(ids), sentence_length)
    out[ends[last] - 1] = ord("\n")
    out[-1] = ord("\n")  # a final, shorter sentence ends too
    return out.tobytes()


class _Parts:
    """The output: one file at `path`, or part files of `per_file` words in directory `path`."""

    def __init__(self, path: Path, per_file: int | None) -> None:
        self.path = path
        self.per_file = per_file
        self.names: list[str] = []
        self.bytes = 0
        self._out: BinaryIO | None = None
        if per_file is None:
            self._out = open(path, "wb")  # noqa: SIM115 - closed by close()
        else:
            path.mkdir()

    def write(self, lo: int, ids: np.ndarray, text: bytes, lengths: np.ndarray) -> None:
        """Write the text of words [lo, lo + len(ids)), starting part files where they begin."""
        self.bytes += len(text)
        if self.per_file is None:
            self._write(text)
            return
        per_file, hi = self.per_file, lo + len(ids)
        cuts = [lo, *range(lo - lo % per_file + per_file, hi, per_file), hi]
        offsets = np.concatenate([[0], np.cumsum(lengths[ids])])
        for c_lo, c_hi in zip(cuts[:-1], cuts[1:]):
            if c_lo % per_file == 0:
                self.close()
                self.names.append(f"part-{c_lo // per_file:05d}.txt")
                self._out = open(self.path / self.names[-1], "wb")  # noqa: SIM115
            self._write(text[offsets[c_lo - lo]: offsets[c_hi - lo]])

    def _write(self, data: bytes) -> None:
        if self._out is None:
            raise ValueError("the synthetic corpus output is closed.")
        self._out.write(data)

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


def _check(vocab_size: int, tokens: int, exponent: float, sentence_length: int,
           words_per_file: int | None) -> None:
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be at least 1, not {vocab_size}.")
    if tokens < vocab_size:
        raise ValueError(f"tokens ({tokens:,}) must be at least vocab_size ({vocab_size:,}), "
                         "since every word occurs once.")
    if exponent <= 0:
        raise ValueError(f"exponent must be greater than 0, not {exponent}.")
    if sentence_length < 1:
        raise ValueError(f"sentence_length must be at least 1, not {sentence_length}.")
    if words_per_file is not None and words_per_file < 1:
        raise ValueError(f"words_per_file must be at least 1, not {words_per_file}.")


def write_zipf_corpus(
    path: str | Path,
    *,
    vocab_size: int,
    tokens: int,
    exponent: float = 1.0,
    sentence_length: int = 20,
    seed: int = 0,
    words_per_file: int | None = None,
    block_tokens: int = BLOCK_TOKENS,
) -> SyntheticCorpus:
    """Write `tokens` words of a Zipf-like corpus with exactly `vocab_size` distinct words.

    With `words_per_file` None, `path` is one text file; otherwise it is a directory of
    part-NNNNN.txt files of `words_per_file` words each (rounded up to whole sentences; for
    parallel reading) and a hidden manifest, .synthetic.json, with these arguments."""
    _check(vocab_size, tokens, exponent, sentence_length, words_per_file)
    path = Path(path)
    block = max(sentence_length, block_tokens // sentence_length * sentence_length)
    per_file = tokens
    if words_per_file is not None:
        per_file = -(-words_per_file // sentence_length) * sentence_length
    table, starts, lengths = word_table(vocab_size)
    cdf = zipf_cdf(vocab_size, exponent)
    order = np.random.default_rng([seed, 0]).permutation(vocab_size).astype(np.int32)

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.tmp-{os.getpid()}"
    parts = _Parts(tmp, per_file if words_per_file is not None else None)
    try:
        for b, lo in enumerate(range(0, tokens, block)):
            hi = min(lo + block, tokens)
            rng = np.random.default_rng([seed, 1, b])
            # this block's share of the one pass over every id, then Zipf draws, shuffled
            once = order[lo * vocab_size // tokens: hi * vocab_size // tokens]
            drawn = np.searchsorted(cdf, rng.random(hi - lo - len(once)), side="right")
            ids = np.concatenate([once, np.minimum(drawn, vocab_size - 1).astype(np.int32)])
            rng.shuffle(ids)
            parts.write(lo, ids, _block_bytes(ids, table, starts, lengths, sentence_length),
                        lengths)
        parts.close()
        info = SyntheticCorpus(
            files=[str(path / n) for n in parts.names] if parts.per_file else [str(path)],
            vocab_size=vocab_size, tokens=tokens, sentences=-(-tokens // sentence_length),
            exponent=exponent, sentence_length=sentence_length, seed=seed, bytes=parts.bytes)
        if parts.per_file:
            meta = {**asdict(info), "files": parts.names, "words_per_file": per_file}
            (tmp / MANIFEST).write_text(json.dumps(meta, indent=2) + "\n")
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        tmp.replace(path)
    except BaseException:
        parts.close()
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise
    return info


def read_manifest(directory: str | Path) -> dict[str, object] | None:
    """The arguments a corpus directory was written with, or None if it has no manifest."""
    try:
        data = json.loads((Path(directory) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None

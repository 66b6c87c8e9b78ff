"""Reading the word2vec text and binary formats, with one clear error for a malformed file."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..errors import Distw2vError, ModelFormatError

_READ_CHUNK = 1 << 20


def _read_w2v_header(path: Path, line: bytes) -> tuple[int, int]:
    parts = line.split()
    try:
        n, dim = int(parts[0]), int(parts[1])
        if len(parts) != 2 or n < 0 or dim < 1:
            raise ValueError
    except (ValueError, IndexError):
        raise ModelFormatError(f"{path} line 1 is not a word2vec header '<words> <dim>'.") from None
    return n, dim


def _looks_binary(src: BinaryIO, dim: int) -> bool:
    """Guess the format from the first row: text rows are a word and `dim` decimal numbers."""
    pos = src.tell()
    line = src.readline(64 * dim + 4096)
    src.seek(pos)
    if not line:
        return False
    try:
        parts = line.decode("utf-8").split()
        [float(x) for x in parts[1:]]
    except (UnicodeDecodeError, ValueError):
        return True
    return len(parts) != dim + 1


def word2vec_kind(path: Path) -> bool | None:
    """Whether a file that is not a model directory looks binary (True) or text (False)
    word2vec, by its header and first row; None when it is neither (or unreadable)."""
    try:
        with open(path, "rb") as src:
            n, dim = _read_w2v_header(path, src.readline(4096))
            return _looks_binary(src, dim)
    except (OSError, ModelFormatError):
        return None


def _rows(n: int, limit: int | None) -> int:
    """Rows to read: gensim's `limit` (None or 0: all) caps the header's count."""
    if limit is not None and limit < 0:
        raise Distw2vError(f"limit must be at least 0, not {limit}.")
    return min(n, limit) if limit else n


def _read_w2v_text(
    path: Path, src: BinaryIO, n: int, dim: int, limit: int | None = None
) -> tuple[list[str], np.ndarray]:
    rows = _rows(n, limit)
    words: list[str] = []
    seen: set[str] = set()
    matrix = np.empty((rows, dim), dtype=np.float32)
    for lineno, raw in enumerate(src, start=2):
        if not raw.strip():
            continue
        if len(words) == rows:
            if rows < n:
                break
            raise ModelFormatError(f"{path} line {lineno}: more vectors than the header's {n}.")
        try:
            parts = raw.decode("utf-8").split()
        except UnicodeDecodeError:
            raise ModelFormatError(f"{path} line {lineno} is not valid UTF-8.") from None
        if len(parts) != dim + 1:
            raise ModelFormatError(
                f"{path} line {lineno}: expected a word and {dim} numbers, got {len(parts)} fields."
            )
        try:
            matrix[len(words)] = np.asarray(parts[1:], dtype=np.float32)
        except ValueError:
            raise ModelFormatError(
                f"{path} line {lineno} holds a value that is not a number."
            ) from None
        if parts[0] in seen:
            raise ModelFormatError(f"{path} line {lineno} repeats the word {parts[0]!r}.")
        seen.add(parts[0])
        words.append(parts[0])
    if len(words) != rows:
        raise ModelFormatError(
            f"{path} is truncated: the header promises {n} vectors, found {len(words)}."
        )
    return words, matrix


def _read_w2v_binary(
    path: Path, src: BinaryIO, n: int, dim: int, limit: int | None = None
) -> tuple[list[str], np.ndarray]:
    rows = _rows(n, limit)
    nbytes = 4 * dim
    words: list[str] = []
    seen: set[str] = set()
    matrix = np.empty((rows, dim), dtype=np.float32)
    buf, pos = b"", 0
    for i in range(rows):
        while True:
            space = buf.find(b" ", pos)
            if space >= 0 and len(buf) - space - 1 >= nbytes:
                break
            more = src.read(_READ_CHUNK)
            if not more:
                raise ModelFormatError(
                    f"{path} is truncated: the header promises {n} vectors, found {i}."
                )
            buf, pos = buf[pos:] + more, 0
        try:
            # The C tool ends each row with a newline; gensim does not: accept both.
            word = buf[pos:space].lstrip(b"\n").decode("utf-8")
        except UnicodeDecodeError:
            raise ModelFormatError(f"{path} vector {i + 1} has a word that is not UTF-8.") from None
        if not word or word in seen:
            raise ModelFormatError(f"{path} vector {i + 1} has an empty or repeated word {word!r}.")
        seen.add(word)
        words.append(word)
        matrix[i] = np.frombuffer(buf, dtype="<f4", count=dim, offset=space + 1)
        pos = space + 1 + nbytes
    if rows == n and (buf[pos:] + src.read(_READ_CHUNK)).strip():
        raise ModelFormatError(f"{path} holds more data after the header's {n} vectors.")
    return words, matrix

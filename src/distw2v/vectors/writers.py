"""Writing models: the native directory (`words.tsv`, the project's word-count TSV;
`vectors.npy`, float32 and memory-mappable; `meta.json`, format, version, shape, free meta;
for models of at least `ann_threshold` words `ann.index`, described under "ann" in
meta.json, see ann.py; when asked, `output.npy`, the output matrix that continued training
starts from, described under "output"), and the word2vec text and binary formats. Every
write is atomic: the directory or file at the target path is either complete or absent."""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO

import numpy as np

from .. import ann
from ..errors import Distw2vError
from ..tsv import write_word_counts

FORMAT = "distw2v-vectors"


FORMAT_VERSION = 1


WORDS_FILE = "words.tsv"


VECTORS_FILE = "vectors.npy"


META_FILE = "meta.json"


# An optional file of format version 1: a reader that ignores it reads the model correctly,
# so it needs no new version (nor do older readers refuse models that have it).
OUTPUT_FILE = "output.npy"


INDEX_FILE = ann.INDEX_FILE


log = logging.getLogger("distw2v.vectors")


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    if os.name != "nt":  # directories cannot be opened for fsync on Windows
        _fsync_path(path)


def _temp_sibling(path: Path, kind: str) -> Path:
    return path.parent / f".{path.name}.{kind}-{secrets.token_hex(6)}"


def _checked(words: Iterable[str]) -> Iterator[str]:
    for word in words:
        if not word or word.split() != [word]:
            raise Distw2vError(
                f"The word {word!r} is empty or contains whitespace; it cannot be saved."
            )
        yield word


def _check_words(words: Iterable[str]) -> None:
    for _ in _checked(words):
        pass


def _is_model_dir(path: Path) -> bool:
    return path.is_dir() and ((path / META_FILE).is_file() or not any(path.iterdir()))


class VectorsWriter:
    """Stream a model directory to disk in row blocks, for matrices larger than memory.

    with VectorsWriter(path, words, counts, dim, meta) as w:
        w.write_rows(0, block)
    `words` may be a one-pass iterator (written out on entering) when `counts` is given, so
    that a vocabulary too large for a Python list never has to be one.
    Rows are written with positional writes (not a memory map, whose touched pages would count
    in the writer's resident memory) into vectors.npy inside a hidden sibling temp directory,
    which is renamed onto `path` only when the block exits without an exception and every row
    was written. A model of at least `ann_threshold` words (None: ann.DEFAULT_THRESHOLD,
    0: never) gets its nearest-neighbour index built in that temp directory before the rename.
    With `output`, the output matrix is written too (`write_output_rows`), into output.npy.
    """

    def __init__(
        self,
        path: str | Path,
        words: Sequence[str] | Iterable[str],
        counts: np.ndarray | None,
        dim: int,
        meta: dict[str, Any] | None = None,
        ann_threshold: int | None = None,
        output: bool = False,
    ) -> None:
        self.path = Path(path)
        self.output = output
        self.words = words
        self.ann_threshold = ann.DEFAULT_THRESHOLD if ann_threshold is None else ann_threshold
        if counts is not None:
            counts = np.asarray(counts, dtype=np.int64)
            if counts.ndim != 1 or (isinstance(words, Sized) and len(counts) != len(words)):
                known = f"{len(words)}" if isinstance(words, Sized) else "a stream of"
                raise Distw2vError(f"counts has shape {counts.shape} but there are {known} words.")
            self.size = len(counts)
        elif isinstance(words, Sized):
            self.size = len(words)
        else:
            raise Distw2vError("VectorsWriter needs counts when words is an iterator.")
        if dim < 1:
            raise Distw2vError(f"The vector dimension must be at least 1, not {dim}.")
        self.counts = counts
        self.dim = int(dim)
        self.meta = dict(meta or {})
        self._tmp: Path | None = None
        self._matrix: BinaryIO | None = None  # vectors.npy, open for positional writes
        self._data_offset = 0
        self._written: np.ndarray | None = None
        self._output: BinaryIO | None = None  # output.npy, the same way
        self._output_written: np.ndarray | None = None

    def __enter__(self) -> VectorsWriter:
        if self.path.exists() and not _is_model_dir(self.path):
            raise Distw2vError(
                f"Refusing to replace {self.path}: it exists and is not a distw2v model directory."
            )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = _temp_sibling(self.path, "tmp")
        self._tmp.mkdir()
        try:
            n = self.size
            counts = self.counts if self.counts is not None else np.zeros(n, dtype=np.int64)
            header = {"size": n, "has_counts": self.counts is not None}
            write_word_counts(self._tmp / WORDS_FILE, _checked(self.words), counts, header)
            self._matrix = self._open_npy(self._tmp / VECTORS_FILE)
            self._data_offset = self._matrix.tell()
            self._written = np.zeros(n, dtype=bool)
            if self.output:
                self._output = self._open_npy(self._tmp / OUTPUT_FILE)
                self._output_written = np.zeros(n, dtype=bool)
        except BaseException:
            self._discard()
            raise
        return self

    def _open_npy(self, path: Path) -> BinaryIO:
        """A new .npy of (size, dim) float32, open after its header."""
        file = open(path, "wb")
        npy: dict[str, Any] = {"descr": "<f4", "fortran_order": False,
                               "shape": (self.size, self.dim)}
        np.lib.format.write_array_header_1_0(file, npy)
        file.truncate(file.tell() + self.size * self.dim * 4)
        return file

    def write_rows(self, start: int, block: np.ndarray) -> None:
        """Write `block` (k, dim) into rows [start, start + k)."""
        if self._matrix is None or self._written is None:
            raise Distw2vError("VectorsWriter.write_rows is only valid inside its `with` block.")
        self._write(self._matrix, self._written, start, block)

    def write_output_rows(self, start: int, block: np.ndarray) -> None:
        """Write `block` (k, dim) into rows [start, start + k) of the output matrix."""
        if self._output is None or self._output_written is None:
            raise Distw2vError("VectorsWriter.write_output_rows needs output=True and its "
                               "`with` block.")
        self._write(self._output, self._output_written, start, block)

    def _write(self, file: BinaryIO, written: np.ndarray, start: int,
               block: np.ndarray) -> None:
        block = np.asarray(block)
        n = self.size
        if block.ndim != 2 or block.shape[1] != self.dim:
            raise Distw2vError(f"A row block must have shape (k, {self.dim}), not {block.shape}.")
        if start < 0 or start + block.shape[0] > n:
            raise Distw2vError(
                f"Rows [{start}, {start + block.shape[0]}) are outside the matrix of {n} rows."
            )
        data = np.ascontiguousarray(block, dtype="<f4").tobytes()
        # both files' headers have the same length: the same shape and dtype
        os.pwrite(file.fileno(), data, self._data_offset + start * self.dim * 4)
        written[start : start + block.shape[0]] = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._discard()
            return
        try:
            self._commit()
        except BaseException:
            self._discard()
            raise

    def _commit(self) -> None:
        if self._tmp is None or self._matrix is None or self._written is None:
            raise Distw2vError("VectorsWriter was used outside its `with` block.")
        for written in (self._written, self._output_written):
            if written is not None and not written.all():
                first = int(np.flatnonzero(~written)[0])
                raise Distw2vError(
                    f"Row {first} of {self.path} was never written; the model was not saved."
                )
        self._matrix.close()
        self._matrix = None
        meta: dict[str, Any] = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "dim": self.dim,
            "size": self.size,
            "meta": self.meta,
        }
        names = [WORDS_FILE, VECTORS_FILE]
        if self._output is not None:
            self._output.close()
            self._output = None
            meta["output"] = {"file": OUTPUT_FILE}
            names.append(OUTPUT_FILE)
        if 0 < self.ann_threshold <= self.size:
            if ann.available():
                meta["ann"] = build_index(self._tmp, self.size, self.dim)
                names.append(INDEX_FILE)
            else:
                log.warning("%s: %s is not installed, so this model of %d words gets no "
                            "nearest-neighbour index; queries will scan all rows",
                            self.path, ann.LIBRARY, self.size)
        _write_meta(self._tmp / META_FILE, meta)
        for name in [*names, META_FILE]:
            _fsync_path(self._tmp / name)
        _fsync_dir(self._tmp)
        _replace_dir(self._tmp, self.path)
        self._tmp = None

    def _discard(self) -> None:
        for file in (self._matrix, self._output):
            if file is not None:
                file.close()
        self._matrix = self._output = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _write_meta(file: Path, meta: dict[str, Any]) -> None:
    with open(file, "w", encoding="utf-8") as out:
        json.dump(meta, out, indent=2, sort_keys=True)
        out.write("\n")


def build_index(
    model_dir: Path, n: int, dim: int, log_line: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Build ann.index from the directory's vectors.npy, read with positional reads (a memory
    map's touched pages would count in this process's resident memory); returns its record."""
    offset = np.load(model_dir / VECTORS_FILE, mmap_mode="r").offset  # maps, touches nothing
    with open(model_dir / VECTORS_FILE, "rb") as src:

        def rows(lo: int, hi: int) -> np.ndarray:
            data = os.pread(src.fileno(), (hi - lo) * dim * 4, offset + lo * dim * 4)
            return np.frombuffer(data, dtype="<f4").reshape(hi - lo, dim)

        return ann.build(rows, n, dim, model_dir / INDEX_FILE, log_line)


class Word2VecWriter:
    """Stream the word2vec text or binary format row block by row block, atomically.

    with Word2VecWriter(path, n, dim, binary) as out:
        out.write_rows(words, block)   # in order, n rows in all
    """

    def __init__(self, path: str | Path, size: int, dim: int, binary: bool) -> None:
        self.path = Path(path)
        self.size = size
        self.dim = dim
        self.binary = binary
        self.rows = 0
        # 9 significant digits round-trip any float32 exactly.
        self._row_fmt = " ".join(["%.9g"] * dim)
        self._tmp = _temp_sibling(self.path, "tmp")
        self._out: BinaryIO | None = None

    def __enter__(self) -> Word2VecWriter:
        self._out = open(self._tmp, "wb")
        self._out.write(f"{self.size} {self.dim}\n".encode())
        return self

    def write_rows(self, words: Sequence[str], block: np.ndarray) -> None:
        if self._out is None:
            raise Distw2vError("Word2VecWriter.write_rows is only valid inside its `with` block.")
        _check_words(words)
        if block.shape != (len(words), self.dim):
            raise Distw2vError(f"A row block must have shape ({len(words)}, {self.dim}).")
        if self.binary:
            rows = np.asarray(block, dtype="<f4")
            data = b"".join(w.encode() + b" " + row.tobytes() + b"\n"
                            for w, row in zip(words, rows, strict=True))
        else:
            data = "".join(f"{w} {self._row_fmt % tuple(row)}\n"
                           for w, row in zip(words, block.tolist(), strict=True)).encode()
        self._out.write(data)
        self.rows += len(words)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        out, self._out = self._out, None
        try:
            if out is not None:
                if exc_type is None:
                    out.flush()
                    os.fsync(out.fileno())
                out.close()
            if exc_type is None:
                if self.rows != self.size:
                    raise Distw2vError(
                        f"{self.path}: {self.rows} of {self.size} rows were written; "
                        "the file was not saved."
                    )
                os.replace(self._tmp, self.path)
        finally:
            self._tmp.unlink(missing_ok=True)


def _replace_dir(new: Path, path: Path) -> None:
    """Rename the complete directory `new` onto `path`, replacing an old model there."""
    old: Path | None = None
    if path.exists():
        if not _is_model_dir(path):
            raise Distw2vError(
                f"Refusing to replace {path}: it exists and is not a distw2v model directory."
            )
        # Directories cannot be renamed over non-empty ones, so move the old one aside first.
        old = _temp_sibling(path, "old")
        os.rename(path, old)
    try:
        os.rename(new, path)
    except BaseException:
        if old is not None:
            os.rename(old, path)
        raise
    _fsync_dir(path.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

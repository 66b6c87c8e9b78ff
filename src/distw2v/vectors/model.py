"""Trained word vectors: words and a float32 matrix, loaded from and saved to the formats of
writers.py and readers.py, and queried by cosine (exactly, or through the ANN index)."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import ann
from ..errors import Distw2vError, ModelFormatError, UnknownWordError
from ..tsv import read_word_counts
from .keyed import KeyedVectorsMixin
from .norms import unit_rows
from .readers import (
    _looks_binary,
    _read_w2v_binary,
    _read_w2v_header,
    _read_w2v_text,
    word2vec_kind,
)
from .writers import (
    FORMAT,
    FORMAT_VERSION,
    INDEX_FILE,
    META_FILE,
    OUTPUT_FILE,
    VECTORS_FILE,
    WORDS_FILE,
    VectorsWriter,
    Word2VecWriter,
    _fsync_dir,
    _fsync_path,
    _temp_sibling,
    _write_meta,
    build_index,
    log,
)

_ROWS_PER_WRITE = 1 << 16


def _load_matrix(file: Path, mmap: bool) -> np.ndarray:
    """A float32 matrix from a .npy file of a model directory (memory-mapped when `mmap`)."""
    try:
        matrix = np.load(file, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError:
        raise ModelFormatError(f"{file} is missing.") from None
    except (ValueError, EOFError, OSError):
        raise ModelFormatError(f"{file} is truncated or not a .npy array.") from None
    if matrix.dtype != np.float32 or matrix.ndim != 2:
        raise ModelFormatError(
            f"{file} holds a {matrix.dtype} array of shape {matrix.shape}, not a float32 matrix."
        )
    return matrix


# Scores of one query batch against one vocabulary block are held at once: bound that block.
_BLOCK_FLOATS = 1 << 24


class Vectors(KeyedVectorsMixin):
    """Words in vocabulary order (most frequent first) and their float32 vectors; gensim's
    KeyedVectors names work too (keyed.py)."""

    def __init__(
        self,
        words: list[str],
        matrix: np.ndarray,
        counts: np.ndarray | None = None,
        meta: dict[str, Any] | None = None,
        output: np.ndarray | None = None,
    ) -> None:
        if matrix.dtype != np.float32:
            matrix = matrix.astype(np.float32)
        if matrix.ndim != 2 or matrix.shape[1] < 1:
            raise Distw2vError(
                f"The vector matrix must have shape (n_words, dim), not {matrix.shape}."
            )
        if matrix.shape[0] != len(words):
            raise Distw2vError(
                f"There are {len(words)} words but the matrix has {matrix.shape[0]} rows."
            )
        if counts is not None:
            counts = np.asarray(counts, dtype=np.int64)
            if counts.shape != (len(words),):
                raise Distw2vError(
                    f"counts has shape {counts.shape} but there are {len(words)} words."
                )
        if output is not None and output.shape != matrix.shape:
            raise Distw2vError(f"The output matrix has shape {output.shape}, not the vector "
                               f"matrix's {matrix.shape}.")
        self.words = list(words)
        self.matrix = matrix
        # the output (context) vectors, kept to continue training from (--keep-output)
        self.output = output
        self.counts = counts
        self.meta: dict[str, Any] = dict(meta or {})
        self.index: dict[str, int] = {word: i for i, word in enumerate(self.words)}
        if len(self.index) != len(self.words):
            dup = next(w for i, w in enumerate(self.words) if self.index[w] != i)
            raise Distw2vError(f"The word {dup!r} appears more than once.")
        # 1 / row length (0 for a zero row), computed once: queries scale scores by it, so
        # no second, normalised copy of the matrix is ever held
        self._inverse_norms: np.ndarray | None = None
        self._norms_lock = threading.Lock()  # computed once even when many threads ask
        self.ann: ann.AnnIndex | None = None  # set by load() when the model has a valid index

    # ---- container protocol -------------------------------------------------------------

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def __iter__(self) -> Iterator[str]:
        return iter(self.words)

    def __getitem__(self, word: str | Sequence[str]) -> np.ndarray:
        if isinstance(word, str):
            return self.matrix[self.word_id(word)]
        return self.matrix[[self.word_id(w) for w in word]]  # gensim: a list gives rows

    def get_vector(self, word: str, norm: bool = False) -> np.ndarray:
        """The word's vector, scaled to unit length when `norm`."""
        if norm:
            return self.unit_vectors([self.word_id(word)])[0]
        return np.asarray(self.matrix[self.word_id(word)])

    def __repr__(self) -> str:
        return f"Vectors({len(self)} words, dim {self.dim})"

    def word_id(self, word: str) -> int:
        try:
            return self.index[word]
        except KeyError:
            pass
        # Only on a miss: the word in another case, when the vocabulary has it ("Paris").
        variants = (word.lower(), word.casefold(), word.capitalize(), word.upper()) \
            if isinstance(word, str) else ()
        other = next((v for v in variants if v != word and v in self.index), None)
        hint = f" (but {other!r} is)" if other is not None else ""
        raise UnknownWordError(f"{word!r} is not in the vocabulary{hint}.")

    # ---- native format ------------------------------------------------------------------

    def save(self, path: str | Path, ann_threshold: int | None = None) -> None:
        """Save atomically as a model directory; an existing model at `path` is replaced.
        `ann_threshold`: see VectorsWriter."""
        with VectorsWriter(path, self.words, self.counts, self.dim, self.meta,
                           ann_threshold, output=self.output is not None) as writer:
            for start in range(0, len(self), _ROWS_PER_WRITE):
                writer.write_rows(start, self.matrix[start : start + _ROWS_PER_WRITE])
                if self.output is not None:
                    writer.write_output_rows(start, self.output[start : start + _ROWS_PER_WRITE])

    @classmethod
    def load(cls, path: str | Path, mmap: bool = True) -> Vectors:
        """Load a model directory; the matrix is a read-only memory map when `mmap`."""
        path = Path(path)
        if not path.is_dir():
            binary = word2vec_kind(path) if path.is_file() else None
            if binary is not None:
                raise ModelFormatError(f"{path} is a word2vec file, not a model directory: load it "
                                       f"with Vectors.load_word2vec_format(path, binary={binary}).")
            raise ModelFormatError(f"{path} is not a model directory (it is missing or a file).")
        meta_path = path / META_FILE
        try:
            info = json.loads(meta_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelFormatError(
                f"{meta_path} is missing; {path} is not a complete model."
            ) from None
        except (UnicodeDecodeError, json.JSONDecodeError):
            raise ModelFormatError(f"{meta_path} is not valid JSON.") from None
        if not isinstance(info, dict) or info.get("format") != FORMAT:
            raise ModelFormatError(f"{meta_path} does not describe a {FORMAT} model.")
        if info.get("format_version") != FORMAT_VERSION:
            raise ModelFormatError(
                f"{path} has format version {info.get('format_version')!r}; "
                f"this distw2v reads version {FORMAT_VERSION}."
            )
        header, words, counts = read_word_counts(path / WORDS_FILE)
        matrix = _load_matrix(path / VECTORS_FILE, mmap)
        expected = (info.get("size"), info.get("dim"))
        if matrix.shape != (len(words), expected[1]) or expected[0] != len(words):
            raise ModelFormatError(
                f"{path} is inconsistent: {meta_path.name} says {expected[0]} x {expected[1]}, "
                f"{WORDS_FILE} holds {len(words)} words and {VECTORS_FILE} is {matrix.shape}."
            )
        has_counts = header.get("has_counts", True)
        meta = info.get("meta") or {}
        output = None
        if "output" in info:  # models saved without --keep-output have none
            output = _load_matrix(path / OUTPUT_FILE, mmap)
            if output.shape != matrix.shape:
                raise ModelFormatError(f"{path} is inconsistent: {OUTPUT_FILE} is "
                                       f"{output.shape} and {VECTORS_FILE} {matrix.shape}.")
        vectors = cls(words, matrix, counts if has_counts else None, meta, output)
        if "ann" in info:
            vectors.ann = ann.open_index(path, info["ann"], matrix)
        elif (path / INDEX_FILE).exists():
            log.warning("%s: ignoring %s, which meta.json does not describe; queries will "
                        "scan all rows", path, INDEX_FILE)
        return vectors

    # ---- word2vec formats ---------------------------------------------------------------

    def save_word2vec(self, path: str | Path, binary: bool = False) -> None:
        """Write the original word2vec text or binary format, atomically."""
        with Word2VecWriter(path, len(self), self.dim, binary) as out:
            for start in range(0, len(self), _ROWS_PER_WRITE):
                block = np.asarray(self.matrix[start : start + _ROWS_PER_WRITE])
                out.write_rows(self.words[start : start + len(block)], block)

    @classmethod
    def load_word2vec(
        cls, path: str | Path, binary: bool | None = None, limit: int | None = None
    ) -> Vectors:
        """Read the word2vec text or binary format; `binary=None` detects which. `limit`
        (None or 0: all) reads only the first vectors, as gensim's."""
        path = Path(path)
        try:
            with open(path, "rb") as src:
                n, dim = _read_w2v_header(path, src.readline())
                if binary is None:
                    binary = _looks_binary(src, dim)
                read = _read_w2v_binary if binary else _read_w2v_text
                words, matrix = read(path, src, n, dim, limit)
        except FileNotFoundError:
            raise ModelFormatError(f"{path} is missing.") from None
        return cls(words, matrix)

    # ---- queries ------------------------------------------------------------------------

    @property
    def norms(self) -> np.ndarray:
        """Each row's length (float32), computed once."""
        inverse = self._inverse()
        with np.errstate(divide="ignore"):
            return np.where(inverse > 0, 1 / inverse, 0).astype(np.float32)

    def _inverse(self) -> np.ndarray:
        with self._norms_lock:
            if self._inverse_norms is None:
                inverse = np.empty(len(self), dtype=np.float32)
                for start in range(0, len(self), _ROWS_PER_WRITE):
                    block = np.asarray(self.matrix[start : start + _ROWS_PER_WRITE])
                    lengths = np.sqrt(np.einsum("ij,ij->i", block, block))
                    with np.errstate(divide="ignore"):
                        inverse[start : start + len(block)] = np.where(
                            lengths > 0, 1 / lengths, 0)
                self._inverse_norms = inverse
        return self._inverse_norms

    def unit_vectors(self, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows of these ids scaled to unit length (zero rows stay zero), shape (len, dim)."""
        return unit_rows(self.matrix[np.asarray(ids, dtype=np.int64)].reshape(-1, self.dim))

    def _unit_block(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows [start, stop) and their inverse lengths: scores of unit queries against
        them, times the inverse, are cosines."""
        return np.asarray(self.matrix[start:stop]), self._inverse()[start:stop]

    def _uses_index(self, restrict_vocab: int | None, exact: bool) -> bool:
        """The index covers every row; a restricted vocabulary is scanned."""
        return self.ann is not None and not exact and self._limit(restrict_vocab) == len(self)

    def _limit(self, restrict_vocab: int | None) -> int:
        if restrict_vocab is None:
            return len(self)
        if restrict_vocab < 1:
            raise Distw2vError(f"restrict_vocab must be at least 1, not {restrict_vocab}.")
        return min(restrict_vocab, len(self))

    def _query_ids(
        self, positive: str | Sequence[str], negative: str | Sequence[str]
    ) -> tuple[list[int], list[int]]:
        pos = [positive] if isinstance(positive, str) else list(positive)
        neg = [negative] if isinstance(negative, str) else list(negative)
        if not pos and not neg:
            raise Distw2vError("A similarity query needs at least one word.")
        if not all(isinstance(w, str) for w in pos + neg):
            raise Distw2vError("positive and negative take words, not vectors or (word, weight) "
                               "pairs; for a vector use similar_by_vector.")
        return [self.word_id(w) for w in pos], [self.word_id(w) for w in neg]

    def most_similar(
        self,
        positive: str | Sequence[str] = (),
        negative: str | Sequence[str] = (),
        topn: int = 10,
        restrict_vocab: int | None = None,
        exact: bool = False,
    ) -> list[tuple[str, float]]:
        """Words nearest by cosine to the mean of the unit vectors (3CosAdd for analogies).

        A model with a nearest-neighbour index answers from it unless `exact`: its candidates
        are re-scored exactly, so every score returned is the exact cosine.
        """
        pos, neg = self._query_ids(positive, negative)
        if self._topn(topn) < 1:
            return []
        query = self.unit_vectors(pos).sum(axis=0) - self.unit_vectors(neg).sum(axis=0)
        ids, scores = self.most_similar_batch(
            unit_rows(query[None, :]), topn, restrict_vocab, [pos + neg], exact
        )
        return self._pairs(ids[0], scores[0])

    def similar_by_vector(
        self,
        vector: np.ndarray,
        topn: int = 10,
        restrict_vocab: int | None = None,
        exact: bool = False,
    ) -> list[tuple[str, float]]:
        """Words nearest by cosine to `vector` (any length; a zero vector has no neighbours)."""
        query = self._query_vector(vector)
        if self._topn(topn) < 1 or not np.any(query):
            return []
        ids, scores = self.most_similar_batch(unit_rows(query[None, :]), topn, restrict_vocab,
                                              None, exact)
        return self._pairs(ids[0], scores[0])

    def most_similar_cosmul(
        self,
        positive: str | Sequence[str] = (),
        negative: str | Sequence[str] = (),
        topn: int = 10,
        restrict_vocab: int | None = None,
    ) -> list[tuple[str, float]]:
        """Levy & Goldberg's 3CosMul: product of shifted cosines over the negatives'."""
        pos, neg = self._query_ids(positive, negative)
        if not pos:
            raise Distw2vError("3CosMul needs at least one positive word.")
        if self._topn(topn) < 1:
            return []
        ids, scores = self.most_similar_cosmul_batch(
            self.unit_vectors(pos)[None], self.unit_vectors(neg)[None], topn, restrict_vocab,
            [pos + neg]
        )
        return self._pairs(ids[0], scores[0])

    def _pairs(self, ids: np.ndarray, scores: np.ndarray) -> list[tuple[str, float]]:
        return [
            (self.words[i], float(s))
            for i, s in zip(ids.tolist(), scores.tolist(), strict=True)
            if i >= 0
        ]

    def most_similar_batch(
        self,
        queries: np.ndarray,
        topn: int,
        restrict_vocab: int | None = None,
        exclude: Sequence[Sequence[int]] | None = None,
        exact: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-`topn` words by dot product with each unit query row, best first.

        Returns ids (b, k) int64 and scores (b, k) float32 with k = min(topn, restricted size);
        ids in `exclude[row]` are never returned (slots left empty hold id -1, score -inf).
        Answered from the nearest-neighbour index when there is one, unless `exact` or
        `restrict_vocab` (then every row is scanned).
        """
        queries = np.asarray(queries, dtype=np.float32)
        if self._uses_index(restrict_vocab, exact):
            return self._top_k_indexed(queries, topn, exclude)
        def scores(start: int, stop: int) -> np.ndarray:
            rows, inverse = self._unit_block(start, stop)
            block = queries @ rows.T
            block *= inverse
            return block

        return self._top_k(scores, len(queries), topn, restrict_vocab, exclude)

    def most_similar_cosmul_batch(
        self,
        positive: np.ndarray,
        negative: np.ndarray,
        topn: int,
        restrict_vocab: int | None = None,
        exclude: Sequence[Sequence[int]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """3CosMul for a batch: positive (b, p, dim) and negative (b, q, dim) unit vectors."""
        positive = np.asarray(positive, dtype=np.float32)
        negative = np.asarray(negative, dtype=np.float32)
        b, p, q = len(positive), positive.shape[1], negative.shape[1]
        if p < 1:
            raise Distw2vError("3CosMul needs at least one positive word.")
        # One matmul for all terms, term-major: rows [j*b, (j+1)*b) hold term j of every query.
        terms = (
            np.concatenate([positive, negative], axis=1).transpose(1, 0, 2).reshape(-1, self.dim)
        )
        def scores(start: int, stop: int) -> np.ndarray:
            rows, inverse = self._unit_block(start, stop)
            shifted = terms @ rows.T
            shifted *= inverse
            shifted += 1  # in place: these blocks are the bulk of the work
            shifted *= 0.5
            shifted = shifted.reshape(p + q, b, stop - start)
            num = shifted[0]
            for j in range(1, p):
                num *= shifted[j]
            den = shifted[p] if q else np.ones_like(num)
            for j in range(p + 1, p + q):
                den *= shifted[j]
            den += np.float32(1e-6)
            num /= den
            return num

        return self._top_k(scores, b, topn, restrict_vocab, exclude, cost=p + q)

    def _top_k_indexed(
        self, queries: np.ndarray, topn: int, exclude: Sequence[Sequence[int]] | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The index's topn + excluded candidates, re-scored with the exact cosine."""
        assert self.ann is not None
        n_queries = len(queries)
        if exclude is not None and len(exclude) != n_queries:
            raise Distw2vError(f"exclude has {len(exclude)} rows for {n_queries} queries.")
        k = max(0, min(topn, len(self)))
        extra = max((len(ids) for ids in exclude), default=0) if exclude is not None else 0
        best_ids = np.full((n_queries, k), -1, dtype=np.int64)
        best = np.full((n_queries, k), -np.inf, dtype=np.float32)
        if k == 0 or n_queries == 0:
            return best_ids, best
        cand = self.ann.search(queries, min(ann.CANDIDATES_FACTOR * (k + extra), len(self)))
        for r, ids in enumerate(exclude or ()):
            cand[r, np.isin(cand[r], np.asarray(ids, dtype=np.int64))] = -1
        valid = cand >= 0
        rows = self.unit_vectors(np.where(valid, cand, 0).ravel()).reshape(*cand.shape, self.dim)
        scores = np.einsum("bkd,bd->bk", rows, queries)
        scores[~valid] = -np.inf
        cand[~valid] = len(self)  # sorts after every real id among equal (-inf) scores
        order = np.lexsort((cand, -scores), axis=1)[:, :k]
        take = np.arange(n_queries)[:, None]
        m = order.shape[1]
        best_ids[:, :m], best[:, :m] = cand[take, order], scores[take, order]
        best_ids[np.isneginf(best)] = -1
        return best_ids, best

    def _top_k(
        self,
        score_block: Callable[[int, int], np.ndarray],
        n_queries: int,
        topn: int,
        restrict_vocab: int | None,
        exclude: Sequence[Sequence[int]] | None,
        cost: int = 1,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Merge per-block top-k; `cost` score rows are held per query while scoring a block."""
        limit = self._limit(restrict_vocab)
        k = max(0, min(topn, limit))
        best_ids = np.full((n_queries, k), -1, dtype=np.int64)
        best = np.full((n_queries, k), -np.inf, dtype=np.float32)
        if k == 0 or n_queries == 0:
            return best_ids, best
        if exclude is not None and len(exclude) != n_queries:
            raise Distw2vError(f"exclude has {len(exclude)} rows for {n_queries} queries.")
        ex_rows = np.array([r for r, ids in enumerate(exclude or ()) for _ in ids], dtype=np.int64)
        ex_cols = np.array([i for ids in (exclude or ()) for i in ids], dtype=np.int64)
        block_rows = max(k, _BLOCK_FLOATS // (n_queries * cost))
        rows = np.arange(n_queries)[:, None]
        for start in range(0, limit, block_rows):
            stop = min(start + block_rows, limit)
            scores = score_block(start, stop)
            hit = (ex_cols >= start) & (ex_cols < stop)
            scores[ex_rows[hit], ex_cols[hit] - start] = -np.inf
            if k == 1:  # the common case (analogies): argmax is far cheaper than a partition
                top = scores.argmax(axis=1)[:, None]
            elif k < scores.shape[1]:
                top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
            else:
                top = np.broadcast_to(np.arange(scores.shape[1]), (n_queries, scores.shape[1]))
            cand_ids = np.concatenate([best_ids, top + start], axis=1)
            cand = np.concatenate([best, scores[rows, top]], axis=1)
            # Keep the k best, ties broken towards the more frequent (lower) id.
            order = np.lexsort((cand_ids, -cand), axis=1)[:, :k]
            best_ids = cand_ids[rows, order]
            best = cand[rows, order]
        best_ids[np.isneginf(best)] = -1
        return best_ids, best

    def similarity(self, w1: str, w2: str) -> float:
        """Cosine similarity of two words."""
        rows = unit_rows(self.matrix[[self.word_id(w1), self.word_id(w2)]])
        return float(rows[0] @ rows[1])

    def analogy(
        self, a: str, b: str, c: str, topn: int = 1, method: str = "3cosadd"
    ) -> list[tuple[str, float]]:
        """a is to b as c is to ?"""
        if method == "3cosadd":
            return self.most_similar([b, c], [a], topn=topn)
        if method == "3cosmul":
            return self.most_similar_cosmul([b, c], [a], topn=topn)
        raise Distw2vError(f"Unknown analogy method {method!r}; use '3cosadd' or '3cosmul'.")


def add_index(path: str | Path, log_line: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build the nearest-neighbour index of an existing model directory, whatever its size.

    The index is written under a temporary name and renamed, then meta.json is replaced
    (also by rename) with one that records it: until that last rename, readers see the
    model as it was.
    """
    path = Path(path)
    n, dim = Vectors.load(path).matrix.shape  # validates the directory; its words are let go
    if not ann.available():
        raise Distw2vError(f"building an index needs {ann.LIBRARY}: pip install {ann.PACKAGE}.")
    info = json.loads((path / META_FILE).read_text(encoding="utf-8"))
    info["ann"] = build_index(path, n, dim, log_line)
    _fsync_path(path / INDEX_FILE)
    tmp = _temp_sibling(path / META_FILE, "tmp")
    try:
        _write_meta(tmp, info)
        _fsync_path(tmp)
        os.replace(tmp, path / META_FILE)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path)
    return dict(info["ann"])

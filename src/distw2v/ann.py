"""An approximate nearest-neighbour index of a model's unit rows, for fast queries on large models.

The index (faiss IVF: k-means cells of 8-bit scalar-quantized unit rows) is built when a
model of at least `DEFAULT_THRESHOLD` words is written, or by `distw2v index MODEL`; it lives
in the model directory as `ann.index` and is described under "ann" in meta.json (library,
parameters, row count, a fingerprint of the rows). Readers memory-map it. An index whose
description does not match the model, or whose library is missing, is ignored with a log
line: queries then scan. The index only proposes candidates; callers re-score them exactly
from the float32 rows, which also undoes the 8-bit rounding.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("distw2v.ann")

LIBRARY = "faiss"
PACKAGE = "faiss-cpu"
INDEX_FILE = "ann.index"
DEFAULT_THRESHOLD = 200_000
KIND = "IVF-SQ8"
# Chosen by measurement (benchmarks/ann_index.py, README "Queries on large models"): on
# 200k rows IVF builds 8-25x faster than HNSW on 2 cores at recall@10 0.98-0.99 (0.999 at
# 2M), and faiss reads it memory-mapped. 8-bit codes are a quarter of the float32 rows;
# fetching twice the candidates asked for makes up for their rounding before the re-score.
NPROBE = 16
CANDIDATES_FACTOR = 2
_BUILD_BLOCK_BYTES = 1 << 24  # rows read and normalized at a time: bounds the build's memory
_SAMPLE_BYTES = 1 << 25  # the k-means sample: 32 MiB, however large the model
_FINGERPRINT_ROWS = 1024


def available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


Rows = Callable[[int, int], np.ndarray]  # rows [lo, hi) of a model's float32 matrix


def fingerprint(rows: Rows, n: int, dim: int) -> str:
    """A hash of the shape and ~1,000 evenly spaced rows: cheap to check at every load, and
    different for a matrix rewritten with other rows."""
    digest = hashlib.sha256(f"{n} {dim}".encode())
    for i in np.unique(np.linspace(0, n - 1, num=min(n, _FINGERPRINT_ROWS)).astype(np.int64)):
        digest.update(np.ascontiguousarray(rows(int(i), int(i) + 1), dtype="<f4").tobytes())
    return digest.hexdigest()[:32]


def cells(n: int) -> int:
    """IVF cells: faiss's rule of thumb 4 sqrt(n), but at least 39 training rows per cell."""
    return max(1, min(int(4 * np.sqrt(n)), n // 39))


def build(
    rows: Rows, n: int, dim: int, dest: Path, log_line: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Index all `n` rows into the file `dest`; returns the record for meta.json.

    k-means is trained on an evenly spaced sample of at most 32 MiB of rows (the vocabulary
    is in frequency order, so every frequency band is in it; a few rows per cell place the
    cells well enough, as the candidates are re-scored); rows are then read, normalized and
    added block by block, so memory holds the codes (dim bytes a row), the sample and one
    block. `log_line` gets a progress line at the start and every 10 s.
    """
    import faiss

    from .vectors.norms import unit_rows  # here: vectors imports this module

    say = log_line or log.info
    start = time.perf_counter()
    nlist = cells(n)
    picks = np.linspace(0, n - 1, num=min(n, 39 * nlist, _SAMPLE_BYTES // (4 * dim)))
    picks = np.unique(picks.astype(np.int64))
    sample = unit_rows(np.concatenate([rows(i, i + 1) for i in picks.tolist()]))
    say(f"ann index: training {nlist:,} cells on {len(sample):,} of {n:,} rows")
    # Codes of the rows themselves, not of their residuals: no residual copy of every block,
    # and the same recall on 200k rows.
    index = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dim), dim, nlist,
                                          faiss.ScalarQuantizer.QT_8bit,
                                          faiss.METRIC_INNER_PRODUCT, False)
    index.cp.min_points_per_centroid = 1  # the sample is small on purpose: no warning
    index.train(sample)
    del sample
    last = time.perf_counter()
    block = max(1, _BUILD_BLOCK_BYTES // (4 * dim))
    for lo in range(0, n, block):
        hi = min(lo + block, n)
        index.add(unit_rows(rows(lo, hi)))
        now = time.perf_counter()
        if now - last >= 10 or hi == n:
            last = now
            say(f"ann index: {hi:,} of {n:,} rows ({100 * hi / n:.0f}%) in {now - start:.0f} s")
    tmp = dest.with_name(f".{dest.name}.tmp")
    faiss.write_index(index, str(tmp))
    os.replace(tmp, dest)
    return {"library": LIBRARY, "version": faiss.__version__, "file": dest.name, "rows": n,
            "dim": dim, "params": {"kind": KIND, "nlist": nlist},
            "fingerprint": fingerprint(rows, n, dim),
            "build_seconds": round(time.perf_counter() - start, 1)}


class AnnIndex:
    """A loaded (memory-mapped) index: candidate ids for unit query rows."""

    def __init__(self, index: Any, record: dict[str, Any]) -> None:
        self._index = index
        self.record = record

    def search(self, queries: np.ndarray, k: int) -> np.ndarray:
        """Ids (b, k) int64 of the approximately nearest rows, best first; -1 pads."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        _, ids = self._index.search(queries, k)  # faiss releases the GIL while it searches
        return np.asarray(ids, dtype=np.int64)


def open_index(model_dir: Path, record: Any, matrix: np.ndarray) -> AnnIndex | None:
    """The model's index when its record matches these rows; None (and a log line) if not."""
    def ignored(why: str) -> None:
        log.warning("%s: ignoring the nearest-neighbour index (%s); queries will scan all "
                    "rows", model_dir, why)

    if not isinstance(record, dict) or record.get("library") != LIBRARY:
        library = record.get("library") if isinstance(record, dict) else None
        ignored(f"it was built by {library!r}, this distw2v reads {LIBRARY} indexes")
        return None
    params = record.get("params")
    if not isinstance(params, dict) or params.get("kind") != KIND:
        ignored(f"it is not a {KIND} index")
        return None
    if (record.get("rows"), record.get("dim")) != matrix.shape:
        ignored(f"it was built for {record.get('rows')} x {record.get('dim')} rows, "
                f"the model is {matrix.shape[0]} x {matrix.shape[1]}")
        return None
    n, dim = map(int, np.shape(matrix))
    if record.get("fingerprint") != fingerprint(lambda lo, hi: matrix[lo:hi], n, dim):
        ignored("it was built for other vectors")
        return None
    if not available():
        ignored(f"{LIBRARY} is not installed; pip install {PACKAGE}")
        return None
    import faiss

    path = model_dir / str(record.get("file", INDEX_FILE))
    if not path.is_file():
        ignored(f"{path.name} is missing")
        return None
    try:  # mapped, not read: the server's memory does not grow by the index
        index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
    except RuntimeError as exc:  # faiss's one exception type for a bad file
        ignored(f"{path.name} could not be read ({str(exc).splitlines()[0][:200]})")
        return None
    if index.ntotal != matrix.shape[0] or index.d != matrix.shape[1]:
        ignored(f"{path.name} holds {index.ntotal} x {index.d} rows")
        return None
    faiss.extract_index_ivf(index).nprobe = NPROBE
    return AnnIndex(index, record)

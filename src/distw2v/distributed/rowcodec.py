"""Which rows a row-shard message carries, and its deltas, in as few bytes as is simple.

Rows are named by their position in the shard's owned-id list (`rows.owned_ids`), a
"universe" of n positions: either as int32 indices (4 bytes a row) or as a bitmap of n bits
(`np.packbits`, most significant bit first), whichever is smaller. A chunk that touches most
of a shard's rows (the frequent words) ships a bitmap; one that touches few, indices.

Deltas may travel as float16 to halve the traffic. `wire.py` allows no float16, so they ship
as the raw little-endian float16 bytes in a uint8 array, and `unpack_deltas` views them back.
Everything decoded here comes from a peer and is checked before use.
"""

from __future__ import annotations

import numpy as np

from ..errors import Distw2vError
from ..kernels.bitmaps import bitmap_positions

KINDS = ("indices", "bitmap")
HALF_MAX = float(np.finfo(np.float16).max)


def encoding_bytes(count: int, universe: int) -> dict[str, int]:
    """Payload bytes of each encoding for `count` rows out of `universe` (for benchmarks)."""
    return {"indices": 4 * count, "bitmap": (universe + 7) // 8}


def encode_rows(positions: np.ndarray, universe: int,
                kind: str | None = None) -> tuple[str, np.ndarray]:
    """`positions` (sorted, unique, in [0, universe)) as ("indices", int32) or ("bitmap",
    uint8 of ceil(universe / 8) bytes); the smaller one unless `kind` forces it (tie:
    indices)."""
    positions = np.asarray(positions, dtype=np.int64)
    if not 0 <= universe < 2**31:
        raise Distw2vError(f"a shard of {universe} rows cannot be addressed by int32 indices.")
    _check_positions(positions, universe)
    if kind is None:
        sizes = encoding_bytes(len(positions), universe)
        kind = "indices" if sizes["indices"] <= sizes["bitmap"] else "bitmap"
    if kind == "indices":
        return kind, positions.astype(np.int32)
    if kind == "bitmap":
        bits = np.zeros(universe, dtype=np.uint8)
        bits[positions] = 1
        return kind, np.packbits(bits)
    raise Distw2vError(f"unknown row encoding {kind!r}; use 'indices' or 'bitmap'.")


def decode_rows(kind: str, payload: np.ndarray, universe: int) -> np.ndarray:
    """The sorted int64 positions `encode_rows` encoded; refuses a malformed payload."""
    if kind == "indices":
        if payload.dtype != np.int32 or payload.ndim != 1:
            raise Distw2vError("row indices must be a one-dimensional int32 array.")
        positions = payload.astype(np.int64)
        _check_positions(positions, universe)
        return positions
    if kind == "bitmap":
        if payload.dtype != np.uint8 or payload.shape != ((universe + 7) // 8,):
            raise Distw2vError(f"a row bitmap must be {(universe + 7) // 8} bytes of uint8 "
                               f"for a shard of {universe} rows.")
        positions, inside = bitmap_positions(payload, universe)
        if not inside:  # a bit in the padding of the last byte
            raise Distw2vError(f"a row bitmap names rows beyond the shard's {universe}.")
        return positions
    raise Distw2vError(f"unknown row encoding {kind!r}; use 'indices' or 'bitmap'.")


def _check_positions(positions: np.ndarray, universe: int) -> None:
    if positions.ndim != 1:
        raise Distw2vError("row positions must be a one-dimensional array.")
    if positions.size and (positions[0] < 0 or positions[-1] >= universe
                           or not (np.diff(positions) > 0).all()):
        raise Distw2vError(f"row positions must be sorted, unique and in [0, {universe}).")


def pack_deltas(deltas: np.ndarray, half: bool) -> np.ndarray:
    """float32 deltas as they travel: as they are, or (`half`) their float16 bytes in uint8."""
    deltas = np.ascontiguousarray(deltas, dtype=np.float32)
    if not half:
        return deltas
    if deltas.size and not float(np.abs(deltas).max()) <= HALF_MAX:  # also catches NaN
        raise Distw2vError("a delta is too large (or not finite) for float16.")
    return deltas.astype("<f2").view(np.uint8).reshape(-1)


def unpack_deltas(payload: np.ndarray, half: bool, rows: int, dim: int) -> np.ndarray:
    """The float32 (rows, dim) deltas `pack_deltas` packed; refuses the wrong size or type."""
    if half:
        if payload.dtype != np.uint8 or payload.size != rows * dim * 2:
            raise Distw2vError(f"float16 deltas for {rows} rows x {dim} must be "
                               f"{rows * dim * 2} bytes of uint8.")
        return np.ascontiguousarray(payload).view("<f2").astype(np.float32).reshape(rows, dim)
    if payload.dtype != np.float32 or payload.shape != (rows, dim):
        raise Distw2vError(f"deltas must be float32 of shape ({rows}, {dim}).")
    return payload

# numba types these bodies itself; mypy cannot follow numpy-scalar arithmetic in them.
# mypy: disable-error-code="arg-type,return-value,operator,call-overload,assignment,misc,call-arg"
"""Row positions from a bitmap (most significant bit first, as `np.packbits` packs), in one
pass: the shards decode two bitmaps a call, and NumPy's unpackbits + flatnonzero took 29 µs
for a shard of 14,400 rows."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(inline="always", cache=True)
def _bits(byte: np.uint8) -> int:
    count = 0
    while byte:
        byte &= byte - np.uint8(1)
        count += 1
    return count


@numba.njit(nogil=True, cache=True)
def bitmap_positions(bitmap: np.ndarray, universe: int) -> tuple[np.ndarray, bool]:
    """The sorted positions of the set bits of `bitmap` (uint8), and whether all of them
    are below `universe`."""
    count = 0
    for i in range(bitmap.shape[0]):
        count += _bits(bitmap[i])
    out = np.empty(count, dtype=np.int64)
    n = 0
    for i in range(bitmap.shape[0]):
        byte = bitmap[i]
        if byte == 0:
            continue
        for b in range(8):
            if byte & (0x80 >> b):
                out[n] = 8 * i + b
                n += 1
    return out, n == 0 or out[n - 1] < universe

# numba types these bodies itself; mypy cannot follow numpy-scalar arithmetic in them.
# mypy: disable-error-code="arg-type,return-value,operator,call-overload,assignment,misc"
"""Random numbers and the negative-sampling alias table, as numba functions on plain values.

The generator is a 64-bit linear congruential generator (Knuth's MMIX constants) whose state
is a uint64 passed in and returned, so kernels carry it in a register and tests can replay it
in pure Python (see `reference.py`). Only the high bits are used: an LCG's low bits are weak.
"""

from __future__ import annotations

import numba
import numpy as np

LCG_MUL = np.uint64(6364136223846793005)
LCG_ADD = np.uint64(1442695040888963407)
MASK64 = (1 << 64) - 1


@numba.njit(inline="always", cache=True)
def lcg_next(state: int) -> int:
    return state * LCG_MUL + LCG_ADD


@numba.njit(inline="always", cache=True)
def lcg_uniform(state: int) -> float:
    """A float in [0, 1) from the top 24 bits (exact in float32)."""
    return np.float32(state >> np.uint64(40)) * np.float32(1.0 / 16777216.0)


@numba.njit(inline="always", cache=True)
def lcg_below(state: int, n: int) -> int:
    """An integer in [0, n) from the top 32 bits (multiply-shift, no division)."""
    return np.int64(((state >> np.uint64(32)) * np.uint64(n)) >> np.uint64(32))


@numba.njit(inline="always", cache=True)
def draw_negative(
    state: int, prob: np.ndarray, alias: np.ndarray
) -> tuple[int, int]:
    """One draw from the alias table; returns the advanced state and the word id."""
    state = lcg_next(state)
    i = lcg_below(state, prob.shape[0])
    state = lcg_next(state)
    if lcg_uniform(state) >= prob[i]:
        i = alias[i]
    return state, i


@numba.njit(cache=True)
def mix_seed(seed: np.uint64, a: np.uint64, b: np.uint64) -> np.uint64:
    """A well-mixed generator state for (seed, a, b) (SplitMix64 finaliser)."""
    z = seed ^ (a * np.uint64(0x9E3779B97F4A7C15)) ^ (b * np.uint64(0xC2B2AE3D27D4EB4F))
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


@numba.njit(cache=True)
def build_alias_table(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vose's alias method: O(n) to build, O(1) per draw, exact for any distribution."""
    n = weights.shape[0]
    scaled = weights * (n / weights.sum())
    prob = np.ones(n, dtype=np.float32)
    alias = np.arange(n).astype(np.int32)
    small = np.empty(n, dtype=np.int64)
    large = np.empty(n, dtype=np.int64)
    n_small = 0
    n_large = 0
    for i in range(n):
        if scaled[i] < 1.0:
            small[n_small] = i
            n_small += 1
        else:
            large[n_large] = i
            n_large += 1
    while n_small > 0 and n_large > 0:
        n_small -= 1
        s = small[n_small]
        g = large[n_large - 1]
        prob[s] = scaled[s]
        alias[s] = g
        scaled[g] = (scaled[g] + scaled[s]) - 1.0
        if scaled[g] < 1.0:
            n_large -= 1
            small[n_small] = g
            n_small += 1
    # Leftovers are 1.0 up to rounding: they keep prob 1 and alias to themselves.
    return prob, alias

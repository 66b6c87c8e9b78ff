# numba types these bodies itself; mypy cannot follow numpy-scalar arithmetic in them.
# mypy: disable-error-code="arg-type,return-value,operator,call-overload,assignment,misc,call-arg"
"""What a row shard does to its rows when a push arrives (the rows strategy): each delta row
added in place in one pass, by SGD or AdaGrad, with the GIL released.

NumPy's `syn[at] += scale * delta` makes three temporaries (the product, the gathered rows,
their sum) before it scatters; measured on 4,200 rows of d=100 these loops take a fifth of
its time. Positions must be unique (the shard sums a push's repeated rows first), so that
AdaGrad sees each row's summed delta once. Their NumPy twins are the formulas in
`tests/test_row_shard.py`, against which the shard is tested.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(nogil=True, cache=True)
def add_rows(matrix: np.ndarray, at: np.ndarray, deltas: np.ndarray,
             scale: np.float32) -> None:
    """matrix[at[i]] += scale * deltas[i] for every i."""
    dim = matrix.shape[1]
    for i in range(at.shape[0]):
        row = at[i]
        for j in range(dim):
            matrix[row, j] += scale * deltas[i, j]


@numba.njit(nogil=True, cache=True)
def adagrad_rows(matrix: np.ndarray, acc: np.ndarray, at: np.ndarray, deltas: np.ndarray,
                 eta: np.float32, eps: np.float32) -> None:
    """acc[at[i]] += deltas[i]**2; matrix[at[i]] += eta * deltas[i] / (sqrt(acc[at[i]]) + eps)."""
    dim = matrix.shape[1]
    for i in range(at.shape[0]):
        row = at[i]
        for j in range(dim):
            d = deltas[i, j]
            acc[row, j] += d * d
            matrix[row, j] += eta * d / (np.sqrt(acc[row, j]) + eps)


# reassoc alone lets LLVM vectorize the probe's sum (4-5x): an inf or NaN still makes it NaN
@numba.njit(nogil=True, fastmath={"reassoc"}, cache=True)
def all_finite(deltas: np.ndarray) -> bool:
    """Whether no element is inf or NaN (one pass, no temporary array)."""
    probe = np.float32(0.0)
    for i in range(deltas.shape[0]):
        for j in range(deltas.shape[1]):
            probe += deltas[i, j] * np.float32(0.0)
    return probe == 0

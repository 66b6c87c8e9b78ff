"""Unit rows: the one rule for scaling vectors to length 1 (zero rows stay zero)."""

from __future__ import annotations

import numpy as np


def unit_rows(rows: np.ndarray) -> np.ndarray:
    """L2-normalize float32 rows; zero rows stay zero."""
    rows = np.asarray(rows, dtype=np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows))
    norms[norms == 0] = 1.0
    return rows / norms[:, None]

"""The learning-rate schedule, its one home: plain Python, so the service's chart reads it
without numba; kernels/local.py compiles this same function for the trainers."""

from __future__ import annotations


def learning_rate(alpha0: float, alpha_min: float, words_done: float,
                  total_words: float) -> float:
    """Linear decay from alpha0 to alpha_min over `total_words` corpus words, alpha_min
    after (in float64; the kernels train with its float32)."""
    done = min(words_done / total_words, 1.0)
    return max(alpha0 - (alpha0 - alpha_min) * done, alpha_min)

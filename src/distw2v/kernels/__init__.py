"""Numba kernels on plain arrays and scalars (no Python objects, no I/O)."""

from .local import cbow_chunk, skipgram_chunk
from .sampling import build_alias_table, mix_seed

__all__ = ["build_alias_table", "cbow_chunk", "mix_seed", "skipgram_chunk"]

"""Numba kernels on plain arrays and scalars (no Python objects, no I/O)."""

from .sampling import build_alias_table, mix_seed
from .local import cbow_chunk, skipgram_chunk

__all__ = ["build_alias_table", "cbow_chunk", "mix_seed", "skipgram_chunk"]

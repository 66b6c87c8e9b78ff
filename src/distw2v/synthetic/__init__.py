"""Synthetic corpora for tests and benchmarks: Zipf-like pseudo-words at any scale
(`zipf`), planted relations with an analogies file (`planted`), and item sessions from
planted clusters with a labels file (`sessions`). `python -m distw2v.synthetic` writes them.
"""

from .command import main
from .planted import PlantedCorpus, write_planted_corpus
from .sessions import SessionCorpus, write_session_corpus
from .zipf import (
    BLOCK_TOKENS,
    MANIFEST,
    SyntheticCorpus,
    read_manifest,
    word,
    word_table,
    write_zipf_corpus,
    zipf_cdf,
)

__all__ = [
    "BLOCK_TOKENS",
    "MANIFEST",
    "PlantedCorpus",
    "SessionCorpus",
    "SyntheticCorpus",
    "main",
    "read_manifest",
    "word",
    "word_table",
    "write_planted_corpus",
    "write_session_corpus",
    "write_zipf_corpus",
    "zipf_cdf",
]

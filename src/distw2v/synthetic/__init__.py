"""Synthetic corpora for tests and benchmarks: Zipf-like pseudo-words at any scale
(`zipf`), planted relations with an analogies file (`planted`), item sessions from planted
clusters with a labels file (`sessions`), planted multi-word names (`phrases`), Common
Crawl-style WET files (`wet`) and Reddit-style dumps (`reddit`). `python -m
distw2v.synthetic` writes the first four.
"""

from .command import main
from .phrases import PhraseCorpus, write_phrase_corpus
from .planted import PlantedCorpus, write_planted_corpus
from .reddit import write_reddit_corpus, write_reddit_dump
from .sessions import SessionCorpus, write_session_corpus
from .wet import write_wet_corpus, write_wet_file
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
    "PhraseCorpus",
    "PlantedCorpus",
    "SessionCorpus",
    "SyntheticCorpus",
    "main",
    "read_manifest",
    "word",
    "word_table",
    "write_phrase_corpus",
    "write_planted_corpus",
    "write_reddit_corpus",
    "write_reddit_dump",
    "write_session_corpus",
    "write_wet_corpus",
    "write_wet_file",
    "write_zipf_corpus",
    "zipf_cdf",
]

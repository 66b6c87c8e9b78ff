"""Streaming corpus readers: URIs in, lists of tokens out, with bounded memory.

A source is a local path, a directory, a glob or any fsspec URL (``s3://``, ``https://``,
``hdfs://``, ``file://``); with a source policy active (policy.py, the service's jobs) only
what it allows, parsed, expanded and opened as it checks them.

    listing.py   what a source names: files and sizes, in a stable order
    policy.py    which sources a reader may open, checked as they will be opened
    sources.py   URIs to files, and files to byte ranges for Spark tasks
    streams.py   a file as decompressed bytes (gzip, bz2, xz, zstd)
    tokenize.py  the token transforms a vocabulary config asks for
    reader.py    bytes to sentences, in bounded blocks
    phrases.py   phrase tables: their file, and joining them into sentences
    stats.py     what reading saw, and the sentence that says it
"""

from .phrases import PhraseTable, read_phrase_table
from .reader import iter_sentences, iter_sentences_in_range, load_phrases
from .sources import expand_sources, input_splits
from .stats import CorpusStats, describe_stats
from .streams import DEFAULT_BLOCK_SIZE, open_binary

__all__ = ["DEFAULT_BLOCK_SIZE", "CorpusStats", "PhraseTable", "describe_stats",
           "expand_sources", "input_splits", "iter_sentences", "iter_sentences_in_range",
           "load_phrases", "open_binary", "read_phrase_table"]

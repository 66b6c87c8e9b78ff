"""Trained word vectors and their formats.

    model.py    `Vectors`: words, matrix, counts and meta; loading, saving, cosine queries
    keyed.py    gensim's KeyedVectors names on `Vectors` (a mixin over model.py's queries)
    norms.py    unit rows (the one scaling rule)
    writers.py  the native model directory and word2vec files, written atomically
    readers.py  the word2vec text and binary formats
"""

from .model import Vectors, add_index
from .norms import unit_rows
from .writers import (
    FORMAT,
    FORMAT_VERSION,
    INDEX_FILE,
    META_FILE,
    OUTPUT_FILE,
    VECTORS_FILE,
    WORDS_FILE,
    VectorsWriter,
    Word2VecWriter,
    build_index,
)

__all__ = ["FORMAT", "FORMAT_VERSION", "INDEX_FILE", "META_FILE", "OUTPUT_FILE",
           "VECTORS_FILE", "WORDS_FILE",
           "Vectors", "VectorsWriter", "Word2VecWriter", "add_index", "build_index",
           "unit_rows"]

"""Continued training (`--init MODEL`): the model a run starts from, checked before any long
work, and its matrices as the start of the extended vocabulary's (both engines).

A model without its output matrix is refused rather than continued with the output vectors at
zero: then the first updates of every input vector are zero and the output vectors are rebuilt
from scratch at the highest learning rate, which pulls the trained input vectors about; a run
that quietly gives worse vectors is worse than one sentence naming --keep-output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .config import TrainConfig, VocabConfig
from .errors import Distw2vError
from .training import initial_vectors
from .vectors import Vectors
from .vocab import Vocabulary


def open_init(path: str, config: TrainConfig) -> Vectors:
    """The model at `path` (memory-mapped), refused in one sentence if training cannot
    continue from it with `config`."""
    vectors = Vectors.load(path)
    if vectors.output is None:
        raise Distw2vError(f"{path} has no output matrix, which continued training starts "
                           "from; train it with --keep-output (keep_output=True in Python).")
    if vectors.counts is None:
        raise Distw2vError(f"{path} holds no word counts, which continued training adds the "
                           "new corpus's to; give a model that distw2v trained.")
    if vectors.dim != config.dim:
        raise Distw2vError(f"the model in {path} has dim {vectors.dim}, not {config.dim}; "
                           f"continue it with --dim {vectors.dim} (dim={vectors.dim} in Python).")
    return vectors


def base_vocabulary(vectors: Vectors, config: VocabConfig) -> Vocabulary:
    """The model's words and counts, which `vocab.extended_vocabulary` extends."""
    assert vectors.counts is not None  # open_init refused a model without
    return Vocabulary(vectors.words, vectors.counts, corpus_words=0, config=config)


def start_matrices(vectors: Vectors, vocab_size: int, seed: int) -> tuple[np.ndarray,
                                                                           np.ndarray]:
    """The local trainer's start: the model's rows first, then the usual initial vectors of
    the new words (those a fresh run with `seed` gives their ids)."""
    syn0, syn1 = initial_vectors(vocab_size, vectors.dim, seed)
    syn0[:len(vectors)] = vectors.matrix
    syn1[:len(vectors)] = vectors.output
    return syn0, syn1


def provenance(path: str, vectors: Vectors) -> dict[str, Any]:
    """What meta.json records of the model a run continued."""
    return {"model": path, "words": len(vectors),
            "trained_words": vectors.meta.get("trained_words")}

"""distw2v: word2vec for corpora and vocabularies too large for one machine."""

__version__ = "0.1.0"

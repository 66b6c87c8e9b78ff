"""gensim 4's KeyedVectors names on `Vectors`, so code written for gensim runs unchanged
(`model.wv.most_similar(...)`, `kv.index_to_key`, `kv.evaluate_word_pairs(...)`): thin
aliases and wrappers of the queries in model.py, the evaluators in evaluate.py and the
word2vec reader and writer. Each returns what gensim returns for the same vectors, except:
unknown words raise UnknownWordError (a KeyError) where gensim skips them in n_similarity;
zero vectors score 0 where gensim gives NaN; analogy questions before the first section
header count in "(no section)" where gensim raises; the gensim arguments distw2v lacks are
refused in one sentence (topn=None, vectors or weights in positive/negative, fvocab, ...),
and most_similar has no clip_start, clip_end or indexer (its ANN index is its own).
"""
# The methods' `self: Vectors` (the only class that inherits the mixin) lets mypy check them
# against Vectors; mypy's "misc" error says a self-type must be a supertype of the mixin.
# mypy: disable-error-code="misc"

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..errors import Distw2vError
from .norms import unit_rows

if TYPE_CHECKING:
    from .model import Vectors

log = logging.getLogger("distw2v.vectors")


class Correlation(NamedTuple):
    """A correlation and its two-sided p-value; unpacks as scipy's results do."""

    statistic: float
    pvalue: float


def _unsupported(method: str, argument: str, why: str) -> Distw2vError:
    return Distw2vError(f"{method}: distw2v does not support {argument} ({why}).")


class KeyedVectorsMixin:
    """gensim's names; the class that inherits this is `Vectors`."""

    # ---- attributes ---------------------------------------------------------------------

    @property
    def wv(self: Vectors) -> Vectors:
        """The vectors themselves, so `model.wv.most_similar` works as on a gensim model."""
        return self

    @property
    def vector_size(self: Vectors) -> int:
        return self.dim

    @property
    def vectors(self: Vectors) -> np.ndarray:
        return self.matrix

    @property
    def index_to_key(self: Vectors) -> list[str]:
        return self.words

    @property
    def key_to_index(self: Vectors) -> dict[str, int]:
        return self.index

    def get_index(self: Vectors, key: str, default: int | None = None) -> int:
        if default is not None and key not in self.index:
            return default
        return self.word_id(key)

    def has_index_for(self: Vectors, key: str) -> bool:
        return key in self

    def fill_norms(self: Vectors, force: bool = False) -> None:
        """Compute the row lengths now (as inverses: no normalised copy of the matrix)."""
        if force:
            with self._norms_lock:
                self._inverse_norms = None
        self._inverse()

    def get_normed_vectors(self: Vectors) -> np.ndarray:
        """A new unit-length copy of the matrix (zero rows stay zero); it is not kept."""
        return np.asarray(self.matrix) * self._inverse()[:, None]

    # ---- queries ------------------------------------------------------------------------

    def _topn(self: Vectors, topn: int) -> int:
        if not isinstance(topn, (int, np.integer)) or isinstance(topn, bool):
            raise Distw2vError(f"topn must be a whole number, not {topn!r} (every word's "
                               "score, gensim's topn=None, is 1 - distances(word)).")
        return int(topn)

    def _query_vector(self: Vectors, vector: np.ndarray) -> np.ndarray:
        query = np.asarray(vector, dtype=np.float32).reshape(-1)
        if query.shape != (self.dim,):
            raise Distw2vError(f"the query vector has {query.size} values; the model's "
                               f"vectors have {self.dim}.")
        return query

    def similar_by_word(
        self: Vectors, word: str, topn: int = 10, restrict_vocab: int | None = None
    ) -> list[tuple[str, float]]:
        return self.most_similar(word, topn=topn, restrict_vocab=restrict_vocab)

    similar_by_key = similar_by_word

    def distance(self: Vectors, w1: str, w2: str) -> float:
        """Cosine distance: 1 - similarity."""
        return 1 - self.similarity(w1, w2)

    def distances(
        self: Vectors, word_or_vector: str | np.ndarray, other_words: Iterable[str] = ()
    ) -> np.ndarray:
        """Cosine distances (float32) from a word or vector to `other_words`, or, when that
        is empty, to every word in vocabulary order (the word itself included)."""
        vector = self[word_or_vector] if isinstance(word_or_vector, str) else word_or_vector
        query = unit_rows(self._query_vector(vector)[None, :])[0]
        others = list(other_words)
        if others:
            cosines = self.unit_vectors([self.word_id(w) for w in others]) @ query
        else:
            rows, inverse = self._unit_block(0, len(self))
            cosines = (rows @ query) * inverse
        return np.float32(1) - cosines

    def closer_than(self: Vectors, key1: str, key2: str) -> list[str]:
        """Words closer to `key1` than `key2` is (`key1` itself left out)."""
        distances = self.distances(key1)
        closer = distances < distances[self.word_id(key2)]
        closer[self.word_id(key1)] = False
        return [self.words[i] for i in np.flatnonzero(closer).tolist()]

    def rank(self: Vectors, key1: str, key2: str) -> int:
        """1 + how many words are closer to `key1` than `key2` is."""
        return len(self.closer_than(key1, key2)) + 1

    def n_similarity(self: Vectors, ws1: Sequence[str], ws2: Sequence[str]) -> float:
        """Cosine similarity of the means of two sets of words (their raw vectors)."""
        if not len(ws1) or not len(ws2):
            raise Distw2vError("n_similarity needs at least one word in each list.")
        means = np.stack([self[list(ws1)].mean(axis=0), self[list(ws2)].mean(axis=0)])
        a, b = unit_rows(means)
        return float(a @ b)

    def doesnt_match(self: Vectors, words: Iterable[str]) -> str:
        """The word farthest from the mean of the words' unit vectors; unknown words are
        left out with a warning, as gensim does."""
        words = list(words)
        known = [w for w in words if w in self]
        if len(known) != len(words):
            log.warning("doesnt_match: ignoring words not in the vocabulary: %s",
                        sorted(set(words) - set(known)))
        if not known:
            raise Distw2vError("doesnt_match needs at least one word in the vocabulary.")
        units = self.unit_vectors([self.index[w] for w in known])
        scores = units @ unit_rows(units.mean(axis=0)[None, :])[0]
        return known[int(np.argmin(scores))]

    # ---- evaluation ---------------------------------------------------------------------

    def evaluate_word_pairs(
        self: Vectors,
        pairs: str | Path,
        delimiter: str = "\t",
        encoding: str = "utf8",
        restrict_vocab: int = 300_000,
        case_insensitive: bool = True,
        dummy4unknown: bool = False,
    ) -> tuple[Correlation, Correlation, float]:
        """((pearson, p-value), (spearman, p-value), percentage of pairs with an unknown
        word), by evaluate.evaluate_similarity. The default tab delimiter also accepts
        whitespace-separated lines; a file with no pair to score is an error, as in gensim."""
        from ..evaluate import correlation_pvalue, evaluate_similarity  # it imports norms.py

        if encoding.lower().replace("-", "") != "utf8":
            raise _unsupported("evaluate_word_pairs", f"encoding={encoding!r}",
                               "evaluation files are read as UTF-8")
        result = evaluate_similarity(
            self, pairs, case_insensitive, restrict_vocab, require_pairs=True,
            delimiter=None if delimiter == "\t" else delimiter, dummy4unknown=dummy4unknown,
        )
        n = result.pairs
        oov_ratio = 100.0 * result.oov / (n if dummy4unknown else n + result.oov)
        return (Correlation(result.pearson, correlation_pvalue(result.pearson, n)),
                Correlation(result.spearman, correlation_pvalue(result.spearman, n)),
                oov_ratio)

    def evaluate_word_analogies(
        self: Vectors,
        analogies: str | Path,
        restrict_vocab: int = 300_000,
        case_insensitive: bool = True,
        dummy4unknown: bool = False,
        similarity_function: str = "most_similar",
    ) -> tuple[float, list[dict[str, Any]]]:
        """(accuracy, sections) as gensim: each section {"section", "correct", "incorrect"}
        with the questions as 4-tuples (upper-cased when `case_insensitive`), then a
        "Total accuracy" section; by evaluate.evaluate_analogies. `similarity_function`
        "most_similar_cosmul" scores by 3CosMul."""
        from ..evaluate import evaluate_analogies  # it imports norms.py, so not at the top

        methods = {"most_similar": "3cosadd", "most_similar_cosmul": "3cosmul"}
        if similarity_function not in methods:
            raise _unsupported("evaluate_word_analogies",
                               f"similarity_function={similarity_function!r}",
                               "use 'most_similar' or 'most_similar_cosmul'")
        result = evaluate_analogies(self, analogies, restrict_vocab, case_insensitive,
                                    methods[similarity_function])

        def words(question: tuple[str, ...]) -> tuple[str, ...]:
            return tuple(w.upper() for w in question) if case_insensitive else question

        sections = [
            {"section": s.name,
             "correct": [words(q) for q, right in s.graded if right],
             "incorrect": [words(q) for q, right in s.graded
                           if right is False or (right is None and dummy4unknown)]}
            for s in result.sections
        ]
        total = {"section": "Total accuracy",
                 "correct": list(itertools.chain.from_iterable(s["correct"] for s in sections)),
                 "incorrect": list(itertools.chain.from_iterable(
                     s["incorrect"] for s in sections))}
        graded = len(total["correct"]) + len(total["incorrect"])
        score = len(total["correct"]) / graded if graded else 0.0
        return score, [*sections, total]

    # ---- word2vec files and gensim ------------------------------------------------------

    def save_word2vec_format(
        self: Vectors,
        fname: str | Path,
        fvocab: str | None = None,
        binary: bool = False,
        total_vec: int | None = None,
        write_header: bool = True,
        prefix: str = "",
        append: bool = False,
        sort_attr: str = "count",
    ) -> None:
        """The word2vec text or binary file of all vectors, in vocabulary order."""
        refused = [("fvocab", fvocab is not None, "counts live in the model directory"),
                   ("total_vec", total_vec not in (None, len(self)), "every vector is written"),
                   ("write_header=False", not write_header, "the header is always written"),
                   ("prefix", prefix != "", "words are written as they are"),
                   ("append=True", append, "files are written whole and atomically"),
                   ("sort_attr", sort_attr != "count", "vocabulary order is count order")]
        for argument, given, why in refused:
            if given:
                raise _unsupported("save_word2vec_format", argument, why)
        self.save_word2vec(fname, binary)

    @classmethod
    def load_word2vec_format(
        cls: type[Vectors],
        fname: str | Path,
        fvocab: str | None = None,
        binary: bool | None = None,
        encoding: str = "utf8",
        unicode_errors: str = "strict",
        limit: int | None = None,
        datatype: Any = np.float32,
        no_header: bool = False,
    ) -> Vectors:
        """Read a word2vec text or binary file (`binary=None`, unlike gensim's False,
        detects which); `limit` reads only the first vectors."""
        refused = [("fvocab", fvocab is not None, "the vectors are read without counts"),
                   (f"encoding={encoding!r}", encoding.lower().replace("-", "") != "utf8",
                    "word2vec files are read as UTF-8"),
                   (f"unicode_errors={unicode_errors!r}", unicode_errors != "strict",
                    "a word that is not UTF-8 is an error"),
                   ("datatype", np.dtype(datatype) != np.float32, "vectors are float32"),
                   ("no_header=True", no_header, "the '<words> <dim>' line is required")]
        for argument, given, why in refused:
            if given:
                raise _unsupported("load_word2vec_format", argument, why)
        return cls.load_word2vec(fname, binary, limit)

    def to_gensim(self: Vectors) -> Any:
        """A gensim.models.KeyedVectors copy of these vectors (and counts, when known)."""
        try:
            from gensim.models import KeyedVectors
        except ImportError:
            raise Distw2vError("to_gensim needs gensim: pip install gensim.") from None
        kv = KeyedVectors(self.dim, dtype=np.float32)
        kv.add_vectors(self.words, np.asarray(self.matrix, dtype=np.float32))
        if self.counts is not None:
            for word, count in zip(self.words, self.counts.tolist(), strict=True):
                kv.set_vecattr(word, "count", count)
        return kv

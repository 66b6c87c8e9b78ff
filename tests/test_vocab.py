"""Vocabulary: counting, pruning, ordering, sampling tables and the TSV file."""

from __future__ import annotations

import numpy as np
import pytest

from distw2v.config import VocabConfig
from distw2v.errors import ModelFormatError, VocabularyError
from distw2v.kernels.sampling import draw_negative
from distw2v.vocab import Vocabulary, build_vocabulary, describe

SENTENCES = [["b", "a", "c", "a"], ["a", "b", "d"], ["c", "a", "b", "e"]]


def test_counts_in_frequency_order_with_ties_alphabetical() -> None:
    vocab = build_vocabulary(SENTENCES, VocabConfig(min_count=1))
    assert vocab.words == ["a", "b", "c", "d", "e"]
    assert vocab.counts.tolist() == [4, 3, 2, 1, 1]
    assert vocab.corpus_words == 11
    assert vocab.index["c"] == 2


def test_min_count_and_max_final_vocab() -> None:
    assert build_vocabulary(SENTENCES, VocabConfig(min_count=2)).words == ["a", "b", "c"]
    assert build_vocabulary(SENTENCES, VocabConfig(min_count=1, max_final_vocab=2)).words == [
        "a", "b"]


def test_max_vocab_size_prunes_rare_words_and_says_so() -> None:
    rng = np.random.default_rng(0)
    frequent = [["the", "of", "and"] * 50]
    rare = [[f"rare{i}" for i in rng.permutation(500)]]
    vocab = build_vocabulary(frequent + rare + frequent, VocabConfig(min_count=1,
                                                                    max_vocab_size=100))
    assert vocab.prune_passes >= 1
    assert vocab.words[:3] == ["and", "of", "the"]
    assert len(vocab) <= 100
    assert "pruned" in describe(vocab)


def test_empty_corpus_and_all_rare_words_are_clear_errors() -> None:
    with pytest.raises(VocabularyError, match="empty"):
        build_vocabulary([[], []], VocabConfig())
    with pytest.raises(VocabularyError, match="min_count=5"):
        build_vocabulary(SENTENCES, VocabConfig(min_count=5))


def test_keep_probabilities_follow_word2vec_formula() -> None:
    vocab = build_vocabulary(SENTENCES, VocabConfig(min_count=1))
    keep = vocab.keep_probabilities(0.1)
    threshold = 0.1 * 11
    expected = [min(1.0, (np.sqrt(c / threshold) + 1) * threshold / c) for c in [4, 3, 2, 1, 1]]
    np.testing.assert_allclose(keep, expected, rtol=1e-6)
    assert keep[0] < keep[1] < 1.0
    assert (vocab.keep_probabilities(0) == 1).all()


def test_negative_table_follows_count_power() -> None:
    vocab = Vocabulary(words=["a", "b", "c"], counts=np.array([1000, 100, 10]), corpus_words=1110)
    prob, alias = vocab.negative_table()
    state = np.uint64(3)
    draws = np.zeros(3)
    for _ in range(100_000):
        state, i = draw_negative(np.uint64(state), prob, alias)
        draws[i] += 1
    expected = np.array([1000, 100, 10]) ** 0.75
    np.testing.assert_allclose(draws / draws.sum(), expected / expected.sum(), atol=0.01)


def test_save_load_round_trip_and_truncation(tmp_path) -> None:
    vocab = build_vocabulary(SENTENCES, VocabConfig(min_count=1, lowercase=True))
    path = tmp_path / "vocab.tsv"
    vocab.save(path)
    loaded = Vocabulary.load(path)
    assert loaded.words == vocab.words
    assert loaded.counts.tolist() == vocab.counts.tolist()
    assert loaded.corpus_words == 11 and loaded.config.lowercase
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-2]) + "\n")
    with pytest.raises(ModelFormatError, match="truncated"):
        Vocabulary.load(path)
    path.write_bytes(b"\x00\x01garbage")
    with pytest.raises(ModelFormatError):
        Vocabulary.load(path)

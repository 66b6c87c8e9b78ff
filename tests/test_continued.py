"""Continued training (--init) on the local engine, and the output matrix that models keep for
it (--keep-output). The Spark engine's continued runs are in test_spark.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

import distw2v
from distw2v.cli import main
from distw2v.config import VocabConfig
from distw2v.errors import Distw2vError
from distw2v.training import initial_vectors
from distw2v.vectors import OUTPUT_FILE, Vectors
from distw2v.vocab import Vocabulary, extended_vocabulary

FAST = {"dim": 12, "min_count": 2, "workers": 1, "seed": 4, "sample": 0}


def topics(names: str, sentences: int, seed: int) -> list[list[str]]:
    """Sentences that each use the 10 words of one of the topics named by a letter."""
    rng = np.random.default_rng(seed)
    words = [[f"{t}{i}" for i in range(10)] for t in names]
    return [list(rng.choice(words[s % len(names)], size=8)) for s in range(sentences)]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A model of topics a and b, saved with its output matrix."""
    out = tmp_path_factory.mktemp("first") / "model"
    distw2v.train(topics("ab", 1000, 0), epochs=3, out=out, keep_output=True, **FAST)
    return out


def test_the_output_matrix_round_trips_and_is_optional(model, tmp_path) -> None:
    vectors = Vectors.load(model)
    assert vectors.output is not None and vectors.output.shape == vectors.matrix.shape
    assert json.loads((model / "meta.json").read_text())["output"] == {"file": OUTPUT_FILE}
    assert np.abs(vectors.output).max() > 0.01  # trained, not the zero start
    again = tmp_path / "again"
    vectors.save(again)
    np.testing.assert_array_equal(Vectors.load(again).output, vectors.output)
    plain = tmp_path / "plain"
    Vectors(vectors.words, np.asarray(vectors.matrix), vectors.counts).save(plain)
    assert not (plain / OUTPUT_FILE).exists() and Vectors.load(plain).output is None


def test_a_continued_run_starts_from_the_models_rows_and_appends_new_words(model) -> None:
    old = Vectors.load(model)
    new_corpus = topics("bc", 600, 1)  # b is the model's, c is new
    # a learning rate of almost nothing: the result is the start
    cont = distw2v.train(new_corpus, epochs=1, init=str(model), alpha=1e-12, min_alpha=0,
                         keep_output=True, **FAST)
    n = len(old)
    assert cont.words[:n] == old.words  # the model's words keep their ids
    assert sorted(cont.words[n:]) == [f"c{i}" for i in range(10)]
    np.testing.assert_allclose(cont.matrix[:n], old.matrix, atol=1e-6)
    np.testing.assert_allclose(cont.output[:n], old.output, atol=1e-6)
    # new words start as a fresh run's do: word2vec's initial inputs, zero outputs
    fresh, _ = initial_vectors(len(cont), FAST["dim"], FAST["seed"])
    np.testing.assert_allclose(cont.matrix[n:], fresh[n:], atol=1e-6)
    assert np.abs(cont.output[n:]).max() < 1e-6
    assert cont.meta["init"]["words"] == n


def test_counts_are_merged_and_new_words_pass_min_count_in_the_new_corpus() -> None:
    base = Vocabulary(["the", "cat", "rare"], np.array([10, 6, 2]), corpus_words=18)
    new = {"cat": 3, "dog": 5, "emu": 1, "ant": 5}
    vocab = extended_vocabulary(base, new, 14, VocabConfig(min_count=2))
    assert vocab.words == ["the", "cat", "rare", "ant", "dog"]  # emu is below min_count
    assert vocab.counts.tolist() == [10, 9, 2, 5, 5]
    capped = extended_vocabulary(base, new, 14, VocabConfig(min_count=2, max_final_vocab=4))
    assert capped.words == ["the", "cat", "rare", "ant"]


def test_a_continued_run_trains_with_the_merged_counts(model) -> None:
    old = Vectors.load(model)
    cont = distw2v.train(topics("bc", 600, 1), epochs=1, init=str(model), **FAST)
    new_counts: dict[str, int] = {}
    for sentence in topics("bc", 600, 1):
        for w in sentence:
            new_counts[w] = new_counts.get(w, 0) + 1
    assert old.counts is not None and cont.counts is not None
    for i, w in enumerate(cont.words):
        assert cont.counts[i] == (old.counts[i] if i < len(old) else 0) + new_counts.get(w, 0)


def test_new_words_of_the_second_corpus_land_near_their_partners(model) -> None:
    cont = distw2v.train(topics("bc", 1500, 2), epochs=3, init=str(model), **FAST)
    for word in ("c0", "c5"):
        near = [w for w, _ in cont.most_similar(word, topn=5)]
        assert all(w.startswith("c") for w in near), (word, near)
    # the model's topic a, absent from the new corpus, keeps its neighbours
    near = [w for w, _ in cont.most_similar("a3", topn=5)]
    assert all(w.startswith("a") for w in near), near


def test_init_of_another_dim_is_one_sentence(model, tmp_path, capsys) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(" ".join(s) for s in topics("bc", 50, 3)) + "\n")
    code = main(["train", str(corpus), "--out", str(tmp_path / "out"), "--init", str(model),
                 "--dim", "16", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "has dim 12, not 16" in err and "--dim 12" in err
    assert not (tmp_path / "out").exists()


def test_init_of_a_model_without_its_output_matrix_names_keep_output(model, tmp_path) -> None:
    plain = tmp_path / "plain"
    old = Vectors.load(model)
    Vectors(old.words, np.asarray(old.matrix), old.counts).save(plain)
    with pytest.raises(Distw2vError, match="no output matrix.*--keep-output"):
        distw2v.train(topics("bc", 50, 3), init=str(plain), **FAST)


def test_the_cli_continues_a_model_and_keeps_its_output(model, tmp_path, capsys) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(" ".join(s) for s in topics("bc", 300, 3)) + "\n")
    out = tmp_path / "out"
    code = main(["train", str(corpus), "--out", str(out), "--init", str(model),
                 "--keep-output", "--dim", "12", "--min-count", "2", "--epochs", "1"])
    assert code == 0, capsys.readouterr().err
    assert "continuing" in capsys.readouterr().err
    cont = Vectors.load(out)
    assert len(cont) == 30 and cont.output is not None
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = capsys.readouterr().out
    assert "--init INIT" in help_text and "--keep-output" in help_text

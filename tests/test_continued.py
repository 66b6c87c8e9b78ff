"""Continued training (--init) on the local engine, and the output matrix that models keep for
it (--keep-output). The Spark engine's continued runs are in test_spark.py."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest

import distw2v
from distw2v.cli import main
from distw2v.config import VocabConfig
from distw2v.distributed.client import PSClient
from distw2v.distributed.row_client import RowClient
from distw2v.distributed.rows import RowSpec, placement
from distw2v.distributed.server import new_secret, start_server
from distw2v.distributed.shard import ShardSpec
from distw2v.distributed.start_rows import write_init
from distw2v.errors import Distw2vError
from distw2v.training import initial_vectors
from distw2v.vectors import OUTPUT_FILE, Vectors
from distw2v.vocab import Vocabulary, extended_vocabulary

SECRET = new_secret()
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


# --- the Spark engine's shards: the start read from <work>/init/ ----------------------------

V0, V, D = 14, 20, 6  # the model's words, the continued run's, the dimension


@pytest.fixture()
def started_shard(tmp_path):
    """(address, work dir, the model's syn0 and syn1) of a shard whose work dir holds a
    run's counts and the init directory a driver writes (start_rows.write_init)."""
    work = tmp_path / "work"
    work.mkdir()
    np.save(work / "counts.npy", np.arange(V, 0, -1).astype(np.int64))
    rng = np.random.default_rng(0)
    syn0, syn1 = (rng.standard_normal((V0, D)).astype(np.float32) for _ in range(2))
    np.save(tmp_path / "vectors.npy", syn0)
    np.save(tmp_path / "output.npy", syn1)
    write_init(str(work), str(tmp_path / "vectors.npy"), str(tmp_path / "output.npy"))
    server, port, _ = start_server(secret=SECRET, work_root=str(work))
    yield f"127.0.0.1:{port}", work, syn0, syn1
    server.stop(None)


def test_column_shards_start_from_the_models_columns(started_shard) -> None:
    address, work, syn0, syn1 = started_shard
    spec = ShardSpec(vocab_size=V, dim=D, lo=2, hi=5, negative=2, seed=1,
                     counts_uri=str(work / "counts.npy"), init_uri=f"{work}/init",
                     init_rows=V0)
    with PSClient([address], secret=SECRET) as client:
        client.configure([spec])
        np.testing.assert_array_equal(client.pull(0, V0), syn0[:, 2:5])
        np.testing.assert_array_equal(client.pull(0, V0, "syn1"), syn1[:, 2:5])
        assert not np.any(client.pull(V0, V, "syn1"))  # new words: zero outputs
        assert 0 < np.abs(client.pull(V0, V)).max() < 0.5 / D  # and word2vec's inputs


def test_row_shards_start_from_the_models_rows(started_shard) -> None:
    address, work, syn0, syn1 = started_shard
    spec = RowSpec(vocab_size=V, dim=D, shard=0, shards=1, init_uri=f"{work}/init",
                   init_rows=V0)
    with RowClient([address], placement(spec), D, secret=SECRET) as client:
        client.configure([spec])
        np.testing.assert_array_equal(client.pull(0, V0), syn0)
        np.testing.assert_array_equal(client.pull(0, V0, "syn1"), syn1)
        assert not np.any(client.pull(V0, V, "syn1"))


def test_a_start_outside_the_init_directory_or_of_another_shape_is_refused(
        started_shard, tmp_path) -> None:
    address, work, _, _ = started_shard
    (work / "other").mkdir()
    spec = ShardSpec(vocab_size=V, dim=D, lo=0, hi=D, negative=2, seed=1,
                     counts_uri=str(work / "counts.npy"))
    with PSClient([address], secret=SECRET) as client:
        for uri, rows, refusal in ((str(tmp_path), V0, "not under"),
                                   (f"{work}/../init", V0, "'\\.\\.'"),
                                   (f"{work}/other", V0, "not an init directory"),
                                   ("", V0, "needs its init_uri"),
                                   (f"{work}/init", V0 - 1, "not the float32"),
                                   (f"{work}/init", V + 1, "does not fit")):
            with pytest.raises(Distw2vError, match=refusal):
                client.configure([replace(spec, init_uri=uri, init_rows=rows)])


@pytest.mark.spark
@pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java")
@pytest.mark.parametrize("strategy", ["columns", "rows"])
def test_the_spark_engine_continues_a_model(model, tmp_path, strategy: str) -> None:
    old = Vectors.load(model)
    corpus = tmp_path / "bc.txt"
    corpus.write_text("\n".join(" ".join(s) for s in topics("bc", 600, 1)) + "\n")
    spark = distw2v.Spark(master="local[2]", shards=2, partitions=2, strategy=strategy)
    # a learning rate of almost nothing: the result is the start
    cont = distw2v.train(str(corpus), engine=spark, epochs=1, init=str(model), alpha=1e-12,
                         min_alpha=0, keep_output=True, out=tmp_path / "cont", **FAST)
    n = len(old)
    assert cont.words[:n] == old.words
    assert sorted(cont.words[n:]) == [f"c{i}" for i in range(10)]
    np.testing.assert_allclose(cont.matrix[:n], old.matrix, atol=1e-6)
    assert cont.output is not None
    np.testing.assert_allclose(cont.output[:n], old.output, atol=1e-6)
    assert cont.counts is not None and old.counts is not None
    b0 = old.words.index("b0")
    assert cont.counts[b0] > old.counts[b0] and cont.meta["init"]["words"] == n


@pytest.mark.spark
@pytest.mark.skipif(shutil.which("java") is None, reason="Spark needs Java")
def test_the_spark_engines_new_words_land_near_their_partners(model, tmp_path) -> None:
    corpus = tmp_path / "bc.txt"
    corpus.write_text("\n".join(" ".join(s) for s in topics("bc", 1500, 2)) + "\n")
    spark = distw2v.Spark(master="local[2]", shards=2, partitions=2)
    cont = distw2v.train(str(corpus), engine=spark, epochs=3, init=str(model), **FAST)
    for word in ("c0", "c5"):
        near = [w for w, _ in cont.most_similar(word, topn=5)]
        assert all(w.startswith("c") for w in near), (word, near)
    near = [w for w, _ in cont.most_similar("a3", topn=5)]
    assert all(w.startswith("a") for w in near), near


def test_gensims_update_is_answered_with_init() -> None:
    with pytest.raises(Distw2vError, match="no setting 'update': to continue training, give "
                       "the model's directory as init"):
        distw2v.train([["a", "b"]], update=True)

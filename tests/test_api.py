"""The Python API: distw2v.train, Word2Vec, the engines and typed progress events."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import distw2v
from distw2v import Local, ProgressEvent, Spark, TrainConfig, VocabConfig, Word2Vec
from distw2v.cli import main as cli_main
from distw2v.errors import Distw2vError
from distw2v.progress import LogLines

FAST = TrainConfig(dim=8, epochs=2, workers=1, seed=3)
VOCAB = VocabConfig(min_count=1)


def sentences(n: int = 300, seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(30)]
    return [list(rng.choice(words, size=8)) for _ in range(n)]


def write(path: Path, lines: list[list[str]]) -> Path:
    path.write_text("".join(" ".join(s) + "\n" for s in lines))
    return path


def test_train_on_sentences_in_memory_returns_vectors_and_writes_nothing(
        tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    events: list[ProgressEvent] = []
    vectors = distw2v.train(sentences(), vocab=VOCAB, train=FAST, on_progress=events.append)
    assert isinstance(vectors, distw2v.Vectors)
    # no bytes to count: the words read (2,400), and the vocabulary knows their total
    ends = [(e.phase, e.done, e.total, e.unit) for e in events if e.finished]
    assert ends == [("vocabulary", 2400, None, "word"), ("encoding", 2400, 2400, "word"),
                    ("training", 4800, 4800, "word")]
    assert len(vectors) == 30 and vectors.dim == 8
    assert vectors.most_similar("w1", topn=3)
    assert list(tmp_path.iterdir()) == []  # out=None: nothing left on disk here
    # the same corpus and seed give the same vectors as the same text read from a file
    from_file = distw2v.train(write(tmp_path / "c.txt", sentences()), vocab=VOCAB, train=FAST)
    assert vectors.words == from_file.words
    np.testing.assert_allclose(vectors.matrix, from_file.matrix, atol=1e-6)


def test_a_corpus_that_can_be_read_only_once_is_refused() -> None:
    with pytest.raises(Distw2vError, match="can be read only once"):
        distw2v.train(iter(sentences()), vocab=VOCAB, train=FAST)
    with pytest.raises(Distw2vError, match="must be a list of tokens, not a string"):
        distw2v.train([["a", "b"], "c d"], vocab=VOCAB, train=FAST)


def test_out_saves_a_model_that_records_absolute_sources(tmp_path, monkeypatch) -> None:
    write(tmp_path / "c.txt", sentences())
    monkeypatch.chdir(tmp_path)
    vectors = distw2v.train("c.txt", vocab=VOCAB, train=FAST, out="model")
    loaded = distw2v.Vectors.load(tmp_path / "model")
    assert loaded.words == vectors.words
    assert loaded.meta["sources"] == [str(tmp_path / "c.txt")]
    meta = json.loads((tmp_path / "model" / "meta.json").read_text())
    assert meta["meta"]["sources"] == [str(tmp_path / "c.txt")]


def test_progress_arrives_as_typed_events_for_every_phase(tmp_path) -> None:
    events: list[ProgressEvent] = []
    distw2v.train(write(tmp_path / "c.txt", sentences()), vocab=VOCAB, train=FAST,
                  on_progress=events.append)
    phases = list(dict.fromkeys(e.phase for e in events))
    assert phases == ["vocabulary", "encoding", "training"]
    size = (tmp_path / "c.txt").stat().st_size
    for name in ("vocabulary", "encoding"):  # byte phases know their total from the start
        ours = [e for e in events if e.phase == name]
        assert all(e.unit == "B" and e.total == size for e in ours)
        assert ours[-1].finished and ours[-1].done == size
    training = [e for e in events if e.phase == "training"]
    assert training[-1].finished and training[-1].done == training[-1].total
    assert training[-1].total == 2 * 300 * 8
    noted = [e for e in training if e.epoch is not None]
    assert noted and noted[-1].epoch == noted[-1].epochs == 2
    assert all(0 < e.learning_rate <= FAST.start_alpha for e in noted if e.learning_rate)


def test_word2vec_takes_settings_by_name() -> None:
    vectors = Word2Vec(dim=6, epochs=1, min_count=1, workers=1, seed=1).fit(sentences())
    assert vectors.dim == 6
    with pytest.raises(Distw2vError, match="no setting 'vector_size'"):
        Word2Vec(vector_size=6)


FLAT = dict(dim=8, epochs=2, workers=1, seed=3, min_count=1)  # FAST and VOCAB, by name


def test_settings_by_name_train_as_the_config_objects_do() -> None:
    expected = distw2v.train(sentences(), vocab=VOCAB, train=FAST)
    for vectors in (distw2v.train(sentences(), **FLAT),
                    distw2v.Word2Vec(**FLAT, engine="local").fit(sentences()),
                    # a setting by name wins over the config object's
                    distw2v.train(sentences(), vocab=replace(VOCAB, min_count=9), min_count=1,
                                  train=replace(FAST, dim=99, seed=5), dim=8, seed=3)):
        assert vectors.words == expected.words
        np.testing.assert_array_equal(vectors.matrix, expected.matrix)
    assert vectors.meta["train_config"]["dim"] == 8


def test_gensims_own_names_are_settings_here() -> None:
    shared = dict(alpha=0.03, min_alpha=0.001, window=3, min_count=2, max_vocab_size=10**6,
                  max_final_vocab=1000, sample=1e-4, negative=7, epochs=3, workers=1, seed=4,
                  batch_words=10_000)
    w2v = Word2Vec(**shared)
    assert {k: getattr(w2v.vocab, k, getattr(w2v.train, k, None)) for k in shared} == shared


@pytest.mark.parametrize(("given", "said"), [
    ({"vector_size": 50}, "no setting 'vector_size': gensim's vector_size is dim=50 here."),
    ({"size": 50}, "gensim's size is dim=50 here."),
    ({"iter": 3}, "gensim's iter is epochs=3 here."),
    ({"sg": 1}, "gensim's sg=1 is model='skipgram' here."),
    ({"sg": 0}, "gensim's sg=0 is model='cbow' here."),
    ({"sg": 2}, "gensim's sg is model='skipgram' (sg=1) or model='cbow' (sg=0) here."),
    ({"hs": 1}, "negative sampling only (the negative setting), not with hierarchical softmax"),
    ({"sentences": [["a"]]}, "gensim's sentences is the corpus here: train(corpus, ...)"),
    ({"corpus_file": "c.txt"}, "gensim's corpus_file is the corpus here"),
    ({"callbacks": []}, "no epoch callbacks; on_progress receives a ProgressEvent"),
    ({"compute_loss": True}, "always computes the training loss"),
    ({"ns_exponent": 0.5}, "always drawn from count**0.75"),
    ({"min_cout": 2}, "has no setting 'min_cout'; did you mean 'min_count'?"),
    ({"shards": 4}, "a setting of the spark engine, engine=Spark(shards=...)."),
])
def test_a_gensim_name_is_answered_with_ours(given, said) -> None:
    for make in (lambda: distw2v.train(sentences(), **given), lambda: Word2Vec(**given)):
        with pytest.raises(Distw2vError) as refused:
            make()
        assert said in str(refused.value)
        assert str(refused.value).startswith(("train() has no setting", "Word2Vec() has no"))


def test_a_missing_corpus_or_a_config_of_the_wrong_kind_is_one_sentence() -> None:
    with pytest.raises(Distw2vError, match=r"^train\(\) needs a corpus"):
        distw2v.train(min_count=1)
    with pytest.raises(Distw2vError, match=r"^train\(\)'s train= must be a TrainConfig, not "
                       "dict; or give its settings by name.$"):
        distw2v.train(sentences(), train={"dim": 5})


def test_a_bad_value_gets_the_sentence_the_cli_gives(tmp_path, capsys) -> None:
    corpus = write(tmp_path / "c.txt", sentences())
    for name, value in (("dim", 0), ("alpha", 2.0), ("min_count", 0), ("window", 10**6)):
        with pytest.raises(Distw2vError) as refused:
            distw2v.train(corpus, **{name: value})
        assert cli_main(["train", str(corpus), "--out", str(tmp_path / "m"),
                         f"--{name.replace('_', '-')}", str(value)]) == 2
        assert capsys.readouterr().err == f"distw2v train: error: {refused.value}\n"
    with pytest.raises(Distw2vError, match="^unknown engine 'spork'; use 'local' or 'spark'.$"):
        distw2v.train(corpus, engine="spork")
    # a type the CLI's flags cannot give: a sentence as well, not numpy's TypeError later
    for given, said in (({"dim": 8.5}, "dim must be a whole number, not 8.5."),
                        ({"epochs": True}, "epochs must be a whole number, not True."),
                        ({"lowercase": "yes"}, "lowercase must be True or False, not 'yes'."),
                        ({"alpha": "0.1"}, "alpha must be a number, not '0.1'."),
                        ({"checkpoint_dir": 7}, "checkpoint_dir must be a string, not 7.")):
        with pytest.raises(Distw2vError) as refused:
            distw2v.train(corpus, **given)
        assert str(refused.value) == said


def test_progress_is_logged_through_logging_as_gensim_does(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="distw2v")
    events: list[ProgressEvent] = []
    corpus = write(tmp_path / "c.txt", sentences())
    distw2v.train(corpus, **FLAT, out=tmp_path / "model", on_progress=events.append)
    assert {r.name for r in caplog.records} == {"distw2v"}
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    kib = corpus.stat().st_size / 1024
    assert lines[0].startswith(f"vocabulary: done, {kib:.1f} KiB in ")  # the phases' ends, ...
    assert lines[1].startswith("read 1 file, 300 lines, 2,400 tokens")  # the CLI's lines
    assert lines[2] == "vocabulary: 2,400 corpus words, 30 distinct, 30 kept (min_count=1) " \
                       "covering 2,400 of them"
    assert lines[-1] == f"model of 30 words x 8 dims written to {tmp_path / 'model'}"
    assert lines[-2].startswith("trained 4,800 words in ")
    assert any(line.startswith("training: done, 4,800 words in ") for line in lines)
    # at most a line every few seconds: a quick run logs each phase's end only ...
    caplog.clear()
    quiet = LogLines(logging.getLogger("distw2v"), every=3600)
    for event in events:
        quiet(event)
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "vocabulary", "encoding", "training"]
    # ... and every event, were they seconds apart: its epoch, share, speed and ETA
    caplog.clear()
    chatty = LogLines(logging.getLogger("distw2v"), every=0)
    for event in events:
        chatty(event)
    training = [r.getMessage() for r in caplog.records if r.getMessage().startswith("training")]
    assert len(training) == len([e for e in events if e.phase == "training" and e.done])
    assert len(training) >= 2 and training[-1].startswith("training: done, ")
    assert all(line.startswith("training: epoch ") and "% of 4,800 words, " in line
               and " words/s, ETA " in line for line in training[:-1])


def test_progress_shows_the_clis_bar_on_a_terminal_or_when_forced(capsys) -> None:
    distw2v.train(sentences(), **FLAT, progress=True)  # pytest's stderr is no terminal
    assert capsys.readouterr().err == ""
    distw2v.train(sentences(), **FLAT, progress="always")
    err = capsys.readouterr().err
    assert "training: 100%" in err and "4.80k/4.80k" in err and "epoch 2/2" in err


def test_engines_say_what_they_take() -> None:
    assert Local().name == "local"
    spark = Spark(master="spark://host:7077", shards=4)
    assert spark.name == "spark"
    assert spark.config.spark_master == "spark://host:7077" and spark.config.shards == 4
    with pytest.raises(Distw2vError, match="Spark\\(\\) has no setting 'cores'"):
        Spark(cores=3)
    with pytest.raises(Distw2vError, match="reads source URIs"):
        distw2v.train(sentences(), engine=Spark(master="local[1]"))


def test_import_distw2v_stays_cheap() -> None:
    code = "import sys, distw2v; print(sorted(m for m in ('numba', 'numpy', 'pyspark') " \
           "if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.spark
@pytest.mark.skipif(shutil.which("java") is None,
                    reason="Spark needs Java; .ci/setup.d/java.sh installs it")
def test_the_spark_engine_without_out_keeps_the_vectors_in_memory(tmp_path) -> None:
    corpus = write(tmp_path / "c.txt", sentences())
    events: list[ProgressEvent] = []
    vectors = distw2v.train(str(corpus), vocab=VOCAB, train=FAST, on_progress=events.append,
                            engine=Spark(master="local[2]", shards=1, partitions=1))
    assert len(vectors) == 30 and isinstance(vectors.matrix, np.ndarray)
    # the distributed count and encoding report the tasks of their Spark jobs
    counting = [e for e in events if e.phase == "counting and encoding"]
    assert counting[-1].finished and counting[-1].unit == "task"
    assert counting[-1].total is not None and counting[-1].done == counting[-1].total > 0
    assert [e.phase for e in events][-1] == "training"
    assert not isinstance(vectors.matrix, np.memmap)  # its temporary directory is gone
    assert vectors.meta["engine"] == "spark"

"""The Python API: distw2v.train, Word2Vec, the engines and typed progress events."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import distw2v
from distw2v import Local, ProgressEvent, Spark, TrainConfig, VocabConfig, Word2Vec
from distw2v.errors import Distw2vError

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
    vectors = distw2v.train(sentences(), vocab=VOCAB, train=FAST)
    assert isinstance(vectors, distw2v.Vectors)
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

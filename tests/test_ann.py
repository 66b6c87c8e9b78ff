"""The nearest-neighbour index: built when a large model is written, kept with it, used by
most_similar (re-scored exactly), ignored when it does not match the model or cannot be read."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from distw2v import ann
from distw2v.cli import main
from distw2v.errors import Distw2vError
from distw2v.service import queries
from distw2v.vectors import INDEX_FILE, Vectors, VectorsWriter, add_index, unit_rows

N, DIM, THRESHOLD = 3000, 32, 1000

pytestmark = pytest.mark.skipif(not ann.available(), reason=f"needs {ann.LIBRARY}")


def clustered(n: int = N, dim: int = DIM, seed: int = 0) -> Vectors:
    """Gaussian clusters plus noise: neighbourhoods the index must actually find."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((60, dim)).astype(np.float32)
    matrix = centres[rng.integers(60, size=n)] + 0.6 * rng.standard_normal((n, dim))
    return Vectors([f"w{i}" for i in range(n)], matrix.astype(np.float32),
                   np.arange(n, 0, -1), {"model": "synthetic"})


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model"
    clustered().save(path, ann_threshold=THRESHOLD)
    return path


def test_index_is_built_at_export_and_recorded(model: Path) -> None:
    assert (model / INDEX_FILE).is_file()
    assert sorted(p.name for p in model.parent.iterdir()) == ["model"]  # no temp left
    record = json.loads((model / "meta.json").read_text())["ann"]
    assert record["library"] == ann.LIBRARY and record["params"]["kind"] == ann.KIND
    assert (record["rows"], record["dim"]) == (N, DIM)
    loaded = Vectors.load(model)
    assert loaded.ann is not None and loaded.ann.record == record
    assert loaded.meta == {"model": "synthetic"}


def test_small_models_and_threshold_zero_get_no_index(tmp_path: Path) -> None:
    clustered(500).save(tmp_path / "small")  # the default threshold
    clustered().save(tmp_path / "off", ann_threshold=0)
    for name in ("small", "off"):
        assert not (tmp_path / name / INDEX_FILE).exists()
        assert "ann" not in json.loads((tmp_path / name / "meta.json").read_text())
        assert Vectors.load(tmp_path / name).ann is None


def test_streamed_writer_builds_the_index(tmp_path: Path) -> None:
    """The Spark export's path: row blocks into VectorsWriter, words from an iterator."""
    source = clustered()
    with VectorsWriter(tmp_path / "m", iter(source.words), source.counts, DIM,
                       ann_threshold=THRESHOLD) as writer:
        for lo in range(0, N, 700):
            writer.write_rows(lo, source.matrix[lo:lo + 700])
    assert Vectors.load(tmp_path / "m").ann is not None


def exact_cosine(v: Vectors, word: str, others: list[str]) -> np.ndarray:
    rows = unit_rows(np.asarray(v.matrix[[v.word_id(w) for w in [word, *others]]]))
    return rows[1:] @ rows[0]


def test_indexed_queries_agree_with_exact(model: Path) -> None:
    v = Vectors.load(model)
    hits = 0
    words = v.words[::15]
    for word in words:
        fast = v.most_similar(word, topn=10)
        slow = v.most_similar(word, topn=10, exact=True)
        assert len(fast) == 10 and word not in dict(fast)
        assert [s for _, s in fast] == sorted((s for _, s in fast), reverse=True)
        got = [w for w, _ in fast]
        np.testing.assert_allclose([s for _, s in fast], exact_cosine(v, word, got), atol=1e-5)
        hits += len(set(got) & {w for w, _ in slow})
    assert hits / (10 * len(words)) >= 0.95


def test_analogies_and_batches_use_the_index(model: Path) -> None:
    v = Vectors.load(model)
    fast = v.most_similar(["w1", "w2"], ["w3"], topn=5)
    assert {"w1", "w2", "w3"}.isdisjoint(dict(fast))
    slow = dict(v.most_similar(["w1", "w2"], ["w3"], topn=5, exact=True))
    for word, score in fast:  # a shared answer has the same score either way
        if word in slow:
            assert score == pytest.approx(slow[word], abs=1e-5)
    queries_ = unit_rows(np.asarray(v.matrix[:50]))
    exclude = [[i] for i in range(50)]
    ids, scores = v.most_similar_batch(queries_, 10, exclude=exclude)
    exact_ids, _ = v.most_similar_batch(queries_, 10, exclude=exclude, exact=True)
    assert (ids != np.arange(50)[:, None]).all()
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ids, exact_ids, strict=True)])
    assert overlap >= 0.95
    assert np.isfinite(scores).all()


def test_restrict_vocab_scans(model: Path) -> None:
    v = Vectors.load(model)
    found = v.most_similar("w5", topn=10, restrict_vocab=100)
    assert all(v.word_id(w) < 100 for w, _ in found)
    assert found == v.most_similar("w5", topn=10, restrict_vocab=100, exact=True)


def test_service_queries_take_exact(model: Path) -> None:
    v = Vectors.load(model)
    assert queries.similar(v, "w7", 5, exact=True) == [
        {"word": w, "score": s} for w, s in v.most_similar("w7", topn=5, exact=True)]
    assert len(queries.analogy(v, ["w1", "w2"], ["w3"], 3)) == 3


def edit_meta(model: Path, **changes: object) -> None:
    info = json.loads((model / "meta.json").read_text())
    info["ann"].update(changes)
    (model / "meta.json").write_text(json.dumps(info))


@pytest.mark.parametrize("change", [
    {"rows": N + 1}, {"fingerprint": "0" * 32}, {"library": "usearch"}, {"file": "missing.index"},
    {"params": {"kind": "HNSW"}},
])
def test_a_mismatched_record_is_ignored(model: Path, change: dict[str, object],
                                        caplog: pytest.LogCaptureFixture) -> None:
    edit_meta(model, **change)
    with caplog.at_level(logging.WARNING):
        v = Vectors.load(model)
    assert v.ann is None
    assert "ignoring the nearest-neighbour index" in caplog.text
    assert len(v.most_similar("w1", topn=10)) == 10  # the exact scan answers


def test_an_index_of_other_rows_is_ignored(model: Path, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """A model rewritten with other vectors but the old index and record copied in."""
    other = tmp_path / "other"
    clustered(seed=1).save(other, ann_threshold=0)
    shutil.copy(model / INDEX_FILE, other / INDEX_FILE)
    info = json.loads((other / "meta.json").read_text())
    info["ann"] = json.loads((model / "meta.json").read_text())["ann"]
    (other / "meta.json").write_text(json.dumps(info))
    with caplog.at_level(logging.WARNING):
        assert Vectors.load(other).ann is None
    assert "built for other vectors" in caplog.text


def test_an_unrecorded_index_file_is_ignored(tmp_path: Path, model: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    plain = tmp_path / "plain"
    clustered().save(plain, ann_threshold=0)
    shutil.copy(model / INDEX_FILE, plain / INDEX_FILE)
    with caplog.at_level(logging.WARNING):
        assert Vectors.load(plain).ann is None
    assert "does not describe" in caplog.text


def test_a_corrupt_index_file_is_ignored(model: Path, caplog: pytest.LogCaptureFixture) -> None:
    (model / INDEX_FILE).write_bytes(b"not an index")
    with caplog.at_level(logging.WARNING):
        assert Vectors.load(model).ann is None
    assert "ignoring" in caplog.text


def test_without_the_library_models_save_and_load_without_index(
    model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(ann, "available", lambda: False)
    with caplog.at_level(logging.WARNING):
        clustered().save(tmp_path / "new", ann_threshold=THRESHOLD)
        v = Vectors.load(model)  # has an index this process cannot read
    assert not (tmp_path / "new" / INDEX_FILE).exists()
    assert "is not installed" in caplog.text
    assert v.ann is None and len(v.most_similar("w1")) == 10
    with pytest.raises(Distw2vError, match="needs faiss"):
        add_index(tmp_path / "new")


def test_index_command_adds_an_index_to_an_existing_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m"
    clustered().save(path, ann_threshold=0)
    before = {p.name: p.read_bytes() for p in path.iterdir() if p.name != "meta.json"}
    assert main(["index", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3,000 of 3,000 rows" in out and "ann.index" in out
    v = Vectors.load(path)
    assert v.ann is not None
    assert {n: (path / n).read_bytes() for n in before} == before  # words and rows untouched
    assert len(v.most_similar("w3")) == 10


def test_index_command_on_a_non_model_is_one_sentence(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["index", str(tmp_path / "nothing")]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a model directory" in err




def test_a_negative_threshold_is_one_sentence(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b c\n" * 20)
    assert main(["train", str(corpus), "--out", str(tmp_path / "m"), "--ann-threshold",
                 "-1", "-q"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--ann-threshold must be 0" in err

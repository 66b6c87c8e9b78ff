"""Vectors: native format (atomic, validated), word2vec formats, and queries against gensim."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors

from distw2v.errors import Distw2vError, ModelFormatError, UnknownWordError
from distw2v.vectors import FORMAT_VERSION, Vectors, VectorsWriter
from distw2v.vectors import model as model_module
from distw2v.vectors import writers as writers_module


def make_vectors(n: int = 400, dim: int = 16, seed: int = 0) -> Vectors:
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(n - 2)] + ["café", "naïve"]
    matrix = rng.standard_normal((n, dim)).astype(np.float32)
    counts = np.arange(n, 0, -1, dtype=np.int64) * 7
    return Vectors(words, matrix, counts, {"model": "skipgram", "epochs": 5})


# gensim's most_similar_cosmul calls its own deprecated init_sims.
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated `init_sims`")


def to_gensim(v: Vectors) -> KeyedVectors:
    kv = KeyedVectors(v.dim)
    kv.add_vectors(v.words, np.asarray(v.matrix))
    return kv


@pytest.fixture
def vecs() -> Vectors:
    return make_vectors()


def dir_bytes(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


# ---- native format ----------------------------------------------------------------------


def test_save_load_round_trip_mmap(vecs: Vectors, tmp_path: Path) -> None:
    path = tmp_path / "model"
    vecs.save(path)
    assert sorted(os.listdir(tmp_path)) == ["model"]  # no temp directory left behind
    loaded = Vectors.load(path)
    assert isinstance(loaded.matrix, np.memmap)
    assert not loaded.matrix.flags.writeable
    assert loaded.matrix.dtype == np.float32
    assert np.array_equal(loaded.matrix, vecs.matrix)
    assert loaded.words == vecs.words
    assert loaded.counts is not None and np.array_equal(loaded.counts, vecs.counts)
    assert loaded.meta == vecs.meta
    assert loaded.dim == 16 and len(loaded) == 400
    info = json.loads((path / "meta.json").read_text())
    assert info["format"] == "distw2v-vectors" and info["format_version"] == FORMAT_VERSION
    assert (info["size"], info["dim"]) == (400, 16)

    in_memory = Vectors.load(path, mmap=False)
    assert not isinstance(in_memory.matrix, np.memmap)
    assert np.array_equal(in_memory.matrix, vecs.matrix)


def test_save_without_counts(tmp_path: Path) -> None:
    v = Vectors(["a", "b"], np.eye(2, dtype=np.float32))
    v.save(tmp_path / "m")
    loaded = Vectors.load(tmp_path / "m")
    assert loaded.counts is None and loaded.meta == {}
    assert loaded.words == ["a", "b"]


def test_resave_loaded_mmap_model_over_itself(vecs: Vectors, tmp_path: Path) -> None:
    vecs.save(tmp_path / "m")
    loaded = Vectors.load(tmp_path / "m")
    loaded.save(tmp_path / "m")
    assert np.array_equal(Vectors.load(tmp_path / "m").matrix, vecs.matrix)


def test_save_replaces_existing_model(tmp_path: Path) -> None:
    path = tmp_path / "model"
    make_vectors(seed=1).save(path)
    newer = make_vectors(n=50, dim=8, seed=2)
    newer.save(path)
    loaded = Vectors.load(path)
    assert np.array_equal(loaded.matrix, newer.matrix) and loaded.words == newer.words
    assert sorted(os.listdir(tmp_path)) == ["model"]


class Boom(RuntimeError):
    pass


def failing_after(calls: int, original):  # type: ignore[no-untyped-def]
    state = {"n": 0}

    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        state["n"] += 1
        if state["n"] > calls:
            raise Boom("simulated failure")
        return original(*args, **kwargs)

    return wrapper


def test_failure_mid_write_leaves_nothing(
    vecs: Vectors, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_module, "_ROWS_PER_WRITE", 100)
    monkeypatch.setattr(VectorsWriter, "write_rows", failing_after(2, VectorsWriter.write_rows))
    with pytest.raises(Boom):
        vecs.save(tmp_path / "model")
    assert os.listdir(tmp_path) == []


def test_failure_at_commit_leaves_nothing(
    vecs: Vectors, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writers_module, "_fsync_dir", failing_after(0, writers_module._fsync_dir))
    with pytest.raises(Boom):
        vecs.save(tmp_path / "model")
    assert os.listdir(tmp_path) == []


def test_failed_replace_keeps_old_model(
    vecs: Vectors, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model"
    vecs.save(path)
    before = dir_bytes(path)
    monkeypatch.setattr(model_module, "_ROWS_PER_WRITE", 64)
    monkeypatch.setattr(VectorsWriter, "write_rows", failing_after(3, VectorsWriter.write_rows))
    with pytest.raises(Boom):
        make_vectors(seed=9).save(path)
    assert dir_bytes(path) == before
    assert os.listdir(tmp_path) == ["model"]


def test_failed_rename_restores_old_model(
    vecs: Vectors, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model"
    vecs.save(path)
    before = dir_bytes(path)
    real_rename = os.rename

    def rename(src: str | Path, dst: str | Path) -> None:
        if Path(dst) == path:  # the new model going in fails; the old one coming back works
            if ".tmp-" in Path(src).name:
                raise OSError("simulated rename failure")
        real_rename(src, dst)

    monkeypatch.setattr(writers_module.os, "rename", rename)
    with pytest.raises(OSError, match="simulated"):
        make_vectors(seed=3).save(path)
    assert dir_bytes(path) == before
    assert os.listdir(tmp_path) == ["model"]


def test_refuses_to_replace_a_directory_that_is_not_a_model(vecs: Vectors, tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("keep me")
    with pytest.raises(Distw2vError, match="not a distw2v model directory"):
        vecs.save(tmp_path / "docs")
    assert (tmp_path / "docs" / "notes.txt").read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["docs"]


def test_writer_in_blocks_equals_save(vecs: Vectors, tmp_path: Path) -> None:
    vecs.save(tmp_path / "saved")
    rng = np.random.default_rng(5)
    bounds = [0, 1, 57, 58, 200, 333, 400]
    blocks = list(zip(bounds[:-1], bounds[1:], strict=True))
    rng.shuffle(blocks)
    with VectorsWriter(tmp_path / "streamed", vecs.words, vecs.counts, vecs.dim, vecs.meta) as w:
        for start, stop in blocks:
            w.write_rows(start, np.asarray(vecs.matrix[start:stop]))
        assert not (tmp_path / "streamed").exists()  # nothing visible before the commit
    assert dir_bytes(tmp_path / "streamed") == dir_bytes(tmp_path / "saved")


def test_writer_rejects_missing_rows_and_bad_blocks(vecs: Vectors, tmp_path: Path) -> None:
    with pytest.raises(Distw2vError, match="Row 10"):
        with VectorsWriter(tmp_path / "m", vecs.words, None, vecs.dim) as w:
            w.write_rows(0, np.zeros((10, vecs.dim), np.float32))
            w.write_rows(11, np.zeros((389, vecs.dim), np.float32))
    assert os.listdir(tmp_path) == []
    with pytest.raises(Distw2vError, match="shape"):
        with VectorsWriter(tmp_path / "m", vecs.words, None, vecs.dim) as w:
            w.write_rows(0, np.zeros((10, vecs.dim + 1), np.float32))
    with pytest.raises(Distw2vError, match="outside"):
        with VectorsWriter(tmp_path / "m", vecs.words, None, vecs.dim) as w:
            w.write_rows(395, np.zeros((10, vecs.dim), np.float32))
    assert os.listdir(tmp_path) == []


def test_constructor_validates() -> None:
    with pytest.raises(Distw2vError, match="3 words"):
        Vectors(["a", "b", "c"], np.zeros((2, 4), np.float32))
    with pytest.raises(Distw2vError, match="more than once"):
        Vectors(["a", "b", "a"], np.zeros((3, 4), np.float32))
    with pytest.raises(Distw2vError, match="counts"):
        Vectors(["a", "b"], np.zeros((2, 4), np.float32), counts=np.array([1]))
    assert Vectors(["a"], np.ones((1, 3))).matrix.dtype == np.float32


def _drop_last_line(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))


def _corrupt(kind: str, path: Path) -> None:
    if kind == "missing-dir":
        import shutil

        shutil.rmtree(path)
    elif kind == "missing-meta":
        (path / "meta.json").unlink()
    elif kind == "bad-json":
        (path / "meta.json").write_text("{not json")
    elif kind == "wrong-format":
        info = json.loads((path / "meta.json").read_text())
        info["format"] = "something-else"
        (path / "meta.json").write_text(json.dumps(info))
    elif kind == "bad-version":
        info = json.loads((path / "meta.json").read_text())
        info["format_version"] = FORMAT_VERSION + 1
        (path / "meta.json").write_text(json.dumps(info))
    elif kind == "missing-npy":
        (path / "vectors.npy").unlink()
    elif kind == "truncated-npy":
        data = (path / "vectors.npy").read_bytes()
        (path / "vectors.npy").write_bytes(data[: len(data) - 100])
    elif kind == "truncated-npy-header":
        (path / "vectors.npy").write_bytes((path / "vectors.npy").read_bytes()[:40])
    elif kind == "float64-npy":
        np.save(path / "vectors.npy", np.zeros((400, 16), np.float64))
    elif kind == "size-mismatch":
        np.save(path / "vectors.npy", np.zeros((399, 16), np.float32))
    elif kind == "dim-mismatch":
        np.save(path / "vectors.npy", np.zeros((400, 15), np.float32))
    elif kind == "truncated-words":
        _drop_last_line(path / "words.tsv")
    elif kind == "words-cut-mid-line":
        text = (path / "words.tsv").read_text()
        (path / "words.tsv").write_text(text[: text.rindex("\t")])
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    [
        "missing-dir",
        "missing-meta",
        "bad-json",
        "wrong-format",
        "bad-version",
        "missing-npy",
        "truncated-npy",
        "truncated-npy-header",
        "float64-npy",
        "size-mismatch",
        "dim-mismatch",
        "truncated-words",
        "words-cut-mid-line",
    ],
)
@pytest.mark.parametrize("mmap", [True, False])
def test_corrupt_model_dirs_raise_model_format_error(
    vecs: Vectors, tmp_path: Path, kind: str, mmap: bool
) -> None:
    path = tmp_path / "model"
    vecs.save(path)
    _corrupt(kind, path)
    with pytest.raises(ModelFormatError) as info:
        Vectors.load(path, mmap=mmap)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


# ---- word2vec formats --------------------------------------------------------------------


@pytest.mark.parametrize("binary", [False, True])
def test_word2vec_ours_to_gensim(vecs: Vectors, tmp_path: Path, binary: bool) -> None:
    path = tmp_path / ("v.bin" if binary else "v.txt")
    vecs.save_word2vec(path, binary=binary)
    assert os.listdir(tmp_path) == [path.name]
    kv = KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert kv.index_to_key == vecs.words
    # %.9g text round-trips float32 exactly, so equality is exact in both formats.
    np.testing.assert_array_equal(kv.vectors, vecs.matrix)
    back = Vectors.load_word2vec(path)  # format autodetected
    assert back.words == vecs.words and np.array_equal(back.matrix, vecs.matrix)
    assert back.counts is None


@pytest.mark.parametrize("binary", [False, True])
def test_word2vec_gensim_to_ours(vecs: Vectors, tmp_path: Path, binary: bool) -> None:
    path = tmp_path / "g.w2v"
    to_gensim(vecs).save_word2vec_format(str(path), binary=binary)
    for mode in (None, binary):
        loaded = Vectors.load_word2vec(path, binary=mode)
        assert loaded.words == vecs.words
        np.testing.assert_array_equal(loaded.matrix, vecs.matrix)


def test_word2vec_save_failure_leaves_no_file(
    vecs: Vectors, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writers_module.os, "fsync", failing_after(0, os.fsync))
    with pytest.raises(Boom):
        vecs.save_word2vec(tmp_path / "v.txt")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (b"3 x\n", "line 1"),
        (b"", "line 1"),
        (b"2 3\na 1 2 3\nb 1 2\n", "line 3"),
        (b"2 3\na 1 2 3\nb 1 two 3\n", "line 3"),
        (b"3 3\na 1 2 3\nb 1 2 3\n", "truncated"),
        (b"2 3\na 1 2 3\na 4 5 6\n", "line 3"),
        (b"1 3\na 1 2 3\nb 4 5 6\n", "line 3"),
        (b"1 3\n\xff\xfe 1 2 3\n", "UTF-8"),
    ],
)
def test_malformed_word2vec_text(tmp_path: Path, content: bytes, where: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(content)
    with pytest.raises(ModelFormatError, match=where) as info:
        Vectors.load_word2vec(path, binary=False)
    assert str(path) in str(info.value)


def test_malformed_word2vec_binary(vecs: Vectors, tmp_path: Path) -> None:
    path = tmp_path / "v.bin"
    vecs.save_word2vec(path, binary=True)
    data = path.read_bytes()
    path.write_bytes(data[:-30])
    with pytest.raises(ModelFormatError, match="truncated"):
        Vectors.load_word2vec(path, binary=True)
    path.write_bytes(data + b"extra 1 2 3")
    with pytest.raises(ModelFormatError, match="more data"):
        Vectors.load_word2vec(path, binary=True)
    with pytest.raises(ModelFormatError, match="missing"):
        Vectors.load_word2vec(tmp_path / "absent.bin")


def test_word2vec_rejects_whitespace_words(tmp_path: Path) -> None:
    v = Vectors(["good", "two words"], np.ones((2, 3), np.float32))
    with pytest.raises(Distw2vError, match="whitespace"):
        v.save_word2vec(tmp_path / "v.txt")
    assert os.listdir(tmp_path) == []


# ---- queries against gensim --------------------------------------------------------------


def assert_same_results(ours: list[tuple[str, float]], theirs: list[tuple[str, float]]) -> None:
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)


QUERIES = [
    (["w3"], [], None),
    ("w10", [], None),
    (["w3", "w5"], ["w7"], None),
    (["w1", "café"], ["w2", "w9"], None),
    (["w3", "w5"], ["w7"], 100),
    (["w150"], [], 50),  # the query word itself lies outside restrict_vocab
]


@pytest.mark.parametrize(("positive", "negative", "restrict"), QUERIES)
def test_most_similar_matches_gensim(
    vecs: Vectors, positive: list[str], negative: list[str], restrict: int | None
) -> None:
    kv = to_gensim(vecs)
    for topn in (1, 10):
        ours = vecs.most_similar(positive, negative, topn=topn, restrict_vocab=restrict)
        theirs = kv.most_similar(positive, negative, topn=topn, restrict_vocab=restrict)
        assert len(ours) == topn
        assert_same_results(ours, theirs)


@pytest.mark.parametrize(("positive", "negative", "_"), QUERIES[:4])
def test_most_similar_cosmul_matches_gensim(
    vecs: Vectors, positive: list[str], negative: list[str], _: None
) -> None:
    # gensim ignores restrict_vocab in most_similar_cosmul, so compare unrestricted only.
    ours = vecs.most_similar_cosmul(positive, negative, topn=10)
    theirs = to_gensim(vecs).most_similar_cosmul(positive, negative, topn=10)
    assert_same_results(ours, theirs)


def test_cosmul_respects_restrict_vocab(vecs: Vectors) -> None:
    result = vecs.most_similar_cosmul(["w3", "w5"], ["w7"], topn=20, restrict_vocab=30)
    assert len(result) == 20 and all(int(w[1:]) < 30 for w, _ in result)


def test_similarity_and_analogy_match_gensim(vecs: Vectors) -> None:
    kv = to_gensim(vecs)
    for a, b in [("w1", "w2"), ("w5", "w5"), ("café", "naïve")]:
        assert vecs.similarity(a, b) == pytest.approx(float(kv.similarity(a, b)), abs=1e-6)
    assert_same_results(
        vecs.analogy("w1", "w2", "w3", topn=5),
        kv.most_similar(positive=["w2", "w3"], negative=["w1"], topn=5),
    )
    assert_same_results(
        vecs.analogy("w1", "w2", "w3", topn=5, method="3cosmul"),
        kv.most_similar_cosmul(positive=["w2", "w3"], negative=["w1"], topn=5),
    )
    with pytest.raises(Distw2vError, match="method"):
        vecs.analogy("w1", "w2", "w3", method="3cosfoo")


def test_unknown_word(vecs: Vectors) -> None:
    with pytest.raises(UnknownWordError) as info:
        vecs.most_similar("foo")
    assert str(info.value) == "'foo' is not in the vocabulary."
    assert isinstance(info.value, KeyError)
    with pytest.raises(UnknownWordError):
        vecs["foo"]
    with pytest.raises(UnknownWordError):
        vecs.similarity("w1", "foo")
    with pytest.raises(UnknownWordError):
        vecs.analogy("w1", "foo", "w2")
    assert "foo" not in vecs and "w1" in vecs
    np.testing.assert_array_equal(vecs["w1"], vecs.matrix[1])


def test_norms_only_and_zero_rows_stay_zero() -> None:
    matrix = np.array([[3, 4], [0, 0], [1, 0]], dtype=np.float32)
    v = Vectors(["a", "b", "c"], matrix)
    np.testing.assert_allclose(v.unit_vectors([0, 1, 2]), [[0.6, 0.8], [0, 0], [1, 0]],
                               atol=1e-7)
    np.testing.assert_allclose(v.norms, [5, 0, 1])
    np.testing.assert_allclose(v.get_vector("a", norm=True), [0.6, 0.8], atol=1e-7)
    np.testing.assert_array_equal(v.get_vector("a"), [3, 4])
    # queries keep one float per row beside the matrix, never a normalised copy of it
    v.most_similar("a", topn=2)
    held = sum(a.nbytes for a in vars(v).values() if isinstance(a, np.ndarray) and a is not matrix)
    assert held == 3 * 4  # the inverse norms
    assert v.most_similar("a", topn=2) == [("c", pytest.approx(0.6)), ("b", 0.0)]
    assert v.most_similar("a", topn=0) == []


def test_similar_by_vector_is_most_similar_with_the_word_itself(vecs: Vectors) -> None:
    word = vecs.words[5]
    by_vector = vecs.similar_by_vector(vecs[word] * 3.0, topn=6)  # any length
    assert by_vector[0] == (word, pytest.approx(1.0, abs=1e-5))
    assert [w for w, _ in by_vector[1:]] == [w for w, _ in vecs.most_similar(word, topn=5)]
    assert vecs.similar_by_vector(np.zeros(vecs.dim)) == []
    with pytest.raises(Distw2vError, match="the query vector has 3 values"):
        vecs.similar_by_vector(np.ones(3))


def test_most_similar_batch_matches_brute_force(
    vecs: Vectors, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_module, "_BLOCK_FLOATS", 600)  # force many vocabulary blocks
    rng = np.random.default_rng(7)
    queries = model_module.unit_rows(rng.standard_normal((9, vecs.dim)).astype(np.float32))
    exclude = [rng.choice(300, size=rng.integers(0, 6), replace=False).tolist() for _ in range(9)]
    full = queries @ vecs.unit_vectors(range(300)).T
    for row, ids in enumerate(exclude):
        full[row, ids] = -np.inf
    for topn in (1, 7):
        ids, scores = vecs.most_similar_batch(queries, topn, 300, exclude)
        assert ids.shape == scores.shape == (9, topn)
        expected = np.argsort(-full, axis=1, kind="stable")[:, :topn]
        np.testing.assert_array_equal(ids, expected)
        np.testing.assert_allclose(scores, np.take_along_axis(full, expected, 1), atol=1e-6)


def test_most_similar_batch_pads_when_everything_is_excluded() -> None:
    v = Vectors(["a", "b", "c"], np.eye(3, dtype=np.float32))
    ids, scores = v.most_similar_batch(np.eye(3, dtype=np.float32)[:1], 3, None, [[0, 2]])
    assert ids.tolist() == [[1, -1, -1]]
    assert np.isneginf(scores[0, 1:]).all()


def test_ties_are_broken_towards_the_more_frequent_word(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_module, "_BLOCK_FLOATS", 8)  # ties spread over many blocks
    rng = np.random.default_rng(3)
    matrix = rng.standard_normal((60, 4)).astype(np.float32)
    same = [50, 7, 33, 12, 41, 2, 58, 20]
    matrix[same] = matrix[same[0]]
    v = Vectors([f"w{i}" for i in range(60)], matrix)
    result = v.most_similar("w50", topn=7)
    assert [w for w, _ in result] == [f"w{i}" for i in sorted(same) if i != 50]
    assert all(s == pytest.approx(1.0) for _, s in result)


def test_writer_streams_words_from_an_iterator_and_checks_their_number(tmp_path) -> None:
    words = [f"w{i}" for i in range(70_000)]  # more than one block of formatted lines
    counts = np.arange(len(words), 0, -1, dtype=np.int64)
    block = np.ones((len(words), 2), dtype=np.float32)
    with VectorsWriter(tmp_path / "m", iter(words), counts, 2) as w:
        w.write_rows(0, block)
    loaded = Vectors.load(tmp_path / "m")
    assert loaded.words == words and np.array_equal(loaded.counts, counts)
    for wrong in (words[:-1], [*words, "extra"]):
        with pytest.raises(Distw2vError, match="words than the 70000 counts"):
            with VectorsWriter(tmp_path / "bad", iter(wrong), counts, 2) as w:
                w.write_rows(0, block)
        assert not (tmp_path / "bad").exists()
    with pytest.raises(Distw2vError, match="needs counts"):
        VectorsWriter(tmp_path / "bad", iter(words), None, 2)

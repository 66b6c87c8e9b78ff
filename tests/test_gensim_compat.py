"""`Vectors` under gensim 4's KeyedVectors names: each name computed here and by gensim on
the same vectors (converted with to_gensim, or read from the same word2vec file)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors

from distw2v.errors import Distw2vError, ModelFormatError, UnknownWordError
from distw2v.vectors import Vectors

# gensim's most_similar_cosmul calls its own deprecated init_sims.
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated `init_sims`")


def model(n: int = 300, dim: int = 12, seed: int = 0) -> Vectors:
    """Random vectors; some words have case variants ("X7" beside "x7"), and counts fall."""
    rng = np.random.default_rng(seed)
    words = [f"x{i}" for i in range(n - 10)]
    words = words[:30] + [w.upper() for w in words[40:60:4]] + words[30:] \
        + [w.capitalize() for w in words[100:150:10]]
    counts = np.arange(len(words), 0, -1, dtype=np.int64) * 3
    return Vectors(words, rng.standard_normal((len(words), dim)).astype(np.float32), counts)


@pytest.fixture(scope="module")
def pair() -> tuple[Vectors, KeyedVectors]:
    v = model()
    return v, v.to_gensim()


def same_neighbours(ours: list[tuple[str, float]], theirs: list[tuple[str, float]]) -> None:
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    assert np.allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)


WORDS = ["x0", "x5", "x17", "x123", "X44", "X100", "x250"]


def test_iteration_length_membership_and_attributes(pair: tuple[Vectors, KeyedVectors]) -> None:
    v, kv = pair
    assert list(v) == kv.index_to_key == v.words
    assert [w for w in v][:3] == ["x0", "x1", "x2"]
    assert len(v) == len(kv) == 300
    assert "x7" in v and "nope" not in v and ("nope" in kv) is False
    assert v.wv is v and v.wv.most_similar("x3", topn=2) == v.most_similar("x3", topn=2)
    assert v.vector_size == kv.vector_size == 12
    assert v.vectors is v.matrix and np.array_equal(v.vectors, kv.vectors)
    assert v.index_to_key == kv.index_to_key and v.key_to_index == kv.key_to_index
    assert v.get_index("X44") == kv.get_index("X44") and v.get_index("nope", -1) == -1
    assert v.has_index_for("x9") and not v.has_index_for("nope")
    assert np.array_equal(v[["x1", "x2"]], kv[["x1", "x2"]])
    assert np.array_equal(v.get_vector("x4", norm=True), kv.get_vector("x4", norm=True))


def test_neighbours_match_gensim(pair: tuple[Vectors, KeyedVectors]) -> None:
    v, kv = pair
    for word in WORDS:
        same_neighbours(v.most_similar(word), kv.most_similar(word))
        same_neighbours(v.similar_by_word(word, topn=5), kv.similar_by_word(word, topn=5))
        same_neighbours(v.similar_by_key(word, 3, 50), kv.similar_by_key(word, 3, 50))
        same_neighbours(v.similar_by_vector(v[word] * 2 - v["x1"], topn=7),
                        kv.similar_by_vector(kv[word] * 2 - kv["x1"], topn=7))
    query = {"positive": ["x3", "X44"], "negative": ["x9"]}
    same_neighbours(v.most_similar(**query, topn=4, restrict_vocab=100),  # type: ignore[arg-type]
                    kv.most_similar(**query, topn=4, restrict_vocab=100))
    same_neighbours(v.most_similar_cosmul(**query, topn=6),  # type: ignore[arg-type]
                    kv.most_similar_cosmul(**query, topn=6))
    assert v.most_similar("x1", topn=0) == kv.most_similar("x1", topn=0) == []


def test_similarities_and_distances_match_gensim(pair: tuple[Vectors, KeyedVectors]) -> None:
    v, kv = pair
    for w1, w2 in zip(WORDS, WORDS[1:] + WORDS[:1], strict=True):
        assert v.similarity(w1, w2) == pytest.approx(kv.similarity(w1, w2), abs=1e-6)
        assert v.distance(w1, w2) == pytest.approx(kv.distance(w1, w2), abs=1e-6)
        assert v.rank(w1, w2) == kv.rank(w1, w2)
        assert v.closer_than(w1, w2) == kv.closer_than(w1, w2)
    assert {v.rank("x0", w) for w in WORDS[1:]} != {1}  # ranks vary: not a vacuous check
    ws1, ws2 = ["x1", "x2", "X48"], ["x3", "x200"]
    assert v.n_similarity(ws1, ws2) == pytest.approx(kv.n_similarity(ws1, ws2), abs=1e-6)
    for source in ("x5", v["x5"] + 1):
        ours, theirs = v.distances(source), kv.distances(source)
        assert ours.dtype == theirs.dtype == np.float32 and ours.shape == (300,)
        assert np.allclose(ours, theirs, atol=1e-6)
        assert np.allclose(v.distances(source, WORDS), kv.distances(source, WORDS), atol=1e-6)


def test_doesnt_match_matches_gensim(pair: tuple[Vectors, KeyedVectors]) -> None:
    v, kv = pair
    rng = np.random.default_rng(1)
    answers = set()
    for _ in range(20):
        words = [v.words[i] for i in rng.choice(len(v), size=5, replace=False)]
        assert v.doesnt_match(words) == kv.doesnt_match(words)
        answers.add(v.doesnt_match(words))
    assert len(answers) > 5
    assert v.doesnt_match(["x1", "x2", "unknown", "x3"]) == \
        kv.doesnt_match(["x1", "x2", "unknown", "x3"])
    with pytest.raises(Distw2vError, match="at least one word in the vocabulary"):
        v.doesnt_match(["unknown"])


def test_normed_vectors_match_gensim_and_no_normed_copy_is_kept() -> None:
    v = model(seed=3)
    kv = v.to_gensim()
    normed = v.get_normed_vectors()
    assert normed.dtype == np.float32 and np.allclose(normed, kv.get_normed_vectors(), atol=1e-6)
    v.fill_norms()
    v.fill_norms(force=True)
    assert np.allclose(v.norms, np.linalg.norm(kv.vectors, axis=1), rtol=1e-6)
    big = [name for name, value in vars(v).items()
           if isinstance(value, np.ndarray) and value.size >= v.matrix.size]
    assert big == ["matrix"]


def pairs_file(v: Vectors, path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    lines = ["# a comment", "not a pair"]
    for _ in range(60):
        a, b = (v.words[i] for i in rng.choice(len(v), size=2, replace=False))
        gold = round(float(v.similarity(a, b) + rng.normal(0, 0.3)), 2)  # correlated
        if rng.random() < 0.2:
            a = "unseen" if rng.random() < 0.5 else a.upper()
        lines.append(f"{a}\t{b}\t{gold}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("case_insensitive", "restrict", "dummy"),
                         [(True, 300_000, False), (False, 300_000, False), (True, 120, True)])
def test_evaluate_word_pairs_matches_gensim(
    pair: tuple[Vectors, KeyedVectors], tmp_path: Path, case_insensitive: bool, restrict: int,
    dummy: bool,
) -> None:
    v, kv = pair
    path = pairs_file(v, tmp_path / "pairs.tsv", seed=2)
    kwargs = {"restrict_vocab": restrict, "case_insensitive": case_insensitive,
              "dummy4unknown": dummy}
    (p, p_value), (s, s_value), oov = v.evaluate_word_pairs(path, **kwargs)  # type: ignore[arg-type]
    their_p, their_s, their_oov = kv.evaluate_word_pairs(str(path), **kwargs)
    assert p == pytest.approx(their_p.statistic, abs=1e-6)
    assert s == pytest.approx(their_s.statistic, abs=1e-6)
    assert p_value == pytest.approx(their_p.pvalue, rel=1e-4)
    assert s_value == pytest.approx(their_s.pvalue, rel=1e-4)
    assert oov == pytest.approx(their_oov) and oov > 0
    assert p > 0.2 and p_value < 0.05  # the correlation is real, so the p-values are small


def questions_file(v: Vectors, path: Path, seed: int) -> Path:
    """Sections of questions; about half answered with the true 3CosAdd word."""
    rng = np.random.default_rng(seed)
    unit = v.get_normed_vectors()
    lines = []
    for section in range(3):
        lines.append(f": section-{section}")
        for _ in range(80):
            a, b, c = rng.choice(len(v), size=3, replace=False)
            sims = unit @ (unit[b] + unit[c] - unit[a])
            sims[[a, b, c]] = -np.inf
            d = int(np.argmax(sims)) if rng.random() < 0.5 else int(rng.integers(len(v)))
            words = [v.words[i] for i in (a, b, c, d)]
            if rng.random() < 0.1:
                words[int(rng.integers(4))] = "unseen"
            if rng.random() < 0.3:
                words = [w.upper() if rng.random() < 0.5 else w for w in words]
            lines.append(" ".join(words))
        lines.append("three words only")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("case_insensitive", "restrict", "dummy"),
                         [(True, 300_000, False), (False, 300_000, True), (True, 150, True)])
def test_evaluate_word_analogies_matches_gensim(
    pair: tuple[Vectors, KeyedVectors], tmp_path: Path, case_insensitive: bool, restrict: int,
    dummy: bool,
) -> None:
    v, kv = pair
    path = questions_file(v, tmp_path / "questions.txt", seed=4)
    kwargs = {"restrict_vocab": restrict, "case_insensitive": case_insensitive,
              "dummy4unknown": dummy}
    score, sections = v.evaluate_word_analogies(path, **kwargs)  # type: ignore[arg-type]
    their_score, their_sections = kv.evaluate_word_analogies(str(path), **kwargs)
    assert sections == their_sections
    assert score == pytest.approx(their_score)
    assert [s["section"] for s in sections] == \
        ["section-0", "section-1", "section-2", "Total accuracy"]
    # not vacuous: right and wrong answers (few right when only 150 words may answer)
    assert len(sections[-1]["correct"]) > (20 if restrict > len(v) else 1)
    assert len(sections[-1]["incorrect"]) > 20


def test_evaluate_word_analogies_by_3cosmul(tmp_path: Path) -> None:
    v = model(seed=5)
    kv = v.to_gensim()
    path = questions_file(v, tmp_path / "questions.txt", seed=6)
    _, sections = v.evaluate_word_analogies(path, similarity_function="most_similar_cosmul")
    for question in sections[-1]["correct"][:30]:
        a, b, c, d = question
        found = kv.most_similar_cosmul([v.words[v.index[b.lower()]], c.lower()], [a.lower()], 1)
        assert found[0][0].upper() == d
    with pytest.raises(Distw2vError, match="similarity_function='nearest'"):
        v.evaluate_word_analogies(path, similarity_function="nearest")


@pytest.mark.parametrize("binary", [True, False])
def test_word2vec_format_round_trips_both_ways(tmp_path: Path, binary: bool) -> None:
    v = model(n=120, dim=7, seed=7)
    ours, theirs = tmp_path / "ours.w2v", tmp_path / "theirs.w2v"
    v.save_word2vec_format(ours, binary=binary)
    kv = KeyedVectors.load_word2vec_format(str(ours), binary=binary)
    assert kv.index_to_key == v.words and np.array_equal(kv.vectors, v.matrix)
    kv.save_word2vec_format(str(theirs), binary=binary)
    back = Vectors.load_word2vec_format(theirs, binary=binary)
    assert back.words == v.words and np.array_equal(back.matrix, v.matrix)
    assert Vectors.load_word2vec_format(theirs).words == v.words  # binary=None: detected
    few = Vectors.load_word2vec_format(theirs, binary=binary, limit=9)
    their_few = KeyedVectors.load_word2vec_format(str(theirs), binary=binary, limit=9)
    assert few.words == their_few.index_to_key == v.words[:9]
    assert np.array_equal(few.matrix, their_few.vectors)


def test_to_gensim_copies_words_vectors_and_counts() -> None:
    v = model(n=50, dim=5, seed=8)
    kv = v.to_gensim()
    assert isinstance(kv, KeyedVectors)
    assert kv.index_to_key == v.words and np.array_equal(kv.vectors, v.matrix)
    assert v.counts is not None
    assert [kv.get_vecattr(w, "count") for w in v.words] == v.counts.tolist()


def test_to_gensim_without_gensim_says_how_to_install_it() -> None:
    # A None entry in sys.modules is how Python marks a module as not importable.
    code = ("import sys, numpy as np; sys.modules['gensim'] = None\n"
            "from distw2v.vectors import Vectors\n"
            "try:\n    Vectors(['a'], np.ones((1, 2))).to_gensim()\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out == "Distw2vError to_gensim needs gensim: pip install gensim.\n"


def test_unknown_words_are_key_errors_with_one_sentence(
    pair: tuple[Vectors, KeyedVectors],
) -> None:
    v, _ = pair
    calls = [lambda: v["nope"], lambda: v.most_similar("nope"), lambda: v.similarity("x1", "nope"),
             lambda: v.distance("nope", "x1"), lambda: v.rank("x1", "nope"),
             lambda: v.n_similarity(["x1"], ["nope"]), lambda: v.get_index("nope"),
             lambda: v.distances("x1", ["nope"]), lambda: v.similar_by_word("nope"),
             lambda: v.most_similar_cosmul("x1", "nope")]
    for call in calls:
        with pytest.raises(KeyError) as caught:
            call()
        assert isinstance(caught.value, UnknownWordError)
        assert str(caught.value) == "'nope' is not in the vocabulary."  # no KeyError quoting
    with pytest.raises(KeyError, match=r"'x7' is"):
        v["X7"]


def test_unsupported_gensim_arguments_are_refused_in_one_sentence(
    pair: tuple[Vectors, KeyedVectors], tmp_path: Path
) -> None:
    v, _ = pair
    path = tmp_path / "v.txt"
    refused = {
        "fvocab": lambda: v.save_word2vec_format(path, fvocab="vocab.txt"),
        "append=True": lambda: v.save_word2vec_format(path, append=True),
        "no_header=True": lambda: Vectors.load_word2vec_format(path, no_header=True),
        "datatype": lambda: Vectors.load_word2vec_format(path, datatype=np.float16),
        "encoding='latin1'": lambda: v.evaluate_word_pairs(path, encoding="latin1"),
        "topn must be a whole number": lambda: v.most_similar("x1", topn=None),  # type: ignore
        "not vectors": lambda: v.most_similar(positive=[v["x1"]]),  # type: ignore[list-item]
    }
    for needle, call in refused.items():
        with pytest.raises(Distw2vError) as caught:
            call()
        message = str(caught.value)
        assert needle in message and message.endswith(".") and message.count(". ") == 0
    assert not path.exists()


@pytest.mark.parametrize("binary", [True, False])
def test_load_of_a_word2vec_file_names_load_word2vec_format(tmp_path: Path, binary: bool) -> None:
    path = tmp_path / "vectors.bin"
    model(n=20, dim=4).save_word2vec_format(path, binary=binary)
    with pytest.raises(ModelFormatError) as caught:
        Vectors.load(path)
    assert str(caught.value) == (f"{path} is a word2vec file, not a model directory: load it "
                                 f"with Vectors.load_word2vec_format(path, binary={binary}).")
    (tmp_path / "notes.txt").write_text("hello\n")
    with pytest.raises(ModelFormatError, match="is not a model directory"):
        Vectors.load(tmp_path / "notes.txt")

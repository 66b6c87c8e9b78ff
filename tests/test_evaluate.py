"""Analogy and word-similarity benchmarks: hand-built cases, and agreement with gensim."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from gensim.models import KeyedVectors
from scipy import stats

from distw2v.errors import Distw2vError
from distw2v.evaluate import (
    AnalogyResult,
    NoPairsError,
    SimilarityResult,
    correlation_pvalue,
    evaluate_analogies,
    evaluate_similarity,
    format_table,
    results_to_json,
    spearman,
)
from distw2v.vectors import Vectors

EVAL_DIR = Path("/work/shared/data/eval")


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# gensim's most_similar_cosmul calls its own deprecated init_sims.
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated `init_sims`")


def to_gensim(v: Vectors) -> KeyedVectors:
    kv = KeyedVectors(v.dim)
    kv.add_vectors(v.words, np.asarray(v.matrix))
    return kv


# ---- a tiny model whose answers are known -------------------------------------------------

ATTRIBUTES = ["royal", "person", "male", "female", "fr", "de", "capital", "country", "noise"]


def tiny_model() -> Vectors:
    """Each word is a sum of orthonormal attribute vectors, so 3CosAdd answers are exact."""
    basis = np.linalg.qr(np.random.default_rng(0).standard_normal((12, 12)))[0][:, :9].T
    a = dict(zip(ATTRIBUTES, basis, strict=True))
    spec = {
        "man": a["person"] + a["male"],
        "woman": a["person"] + a["female"],
        "king": a["royal"] + a["male"],
        # A case variant lying exactly on the answer: it must never be predicted for "king".
        "KING": a["royal"] + a["female"],
        "queen": a["royal"] + a["female"],
        "paris": a["fr"] + a["capital"],
        "france": a["fr"] + a["country"],
        "berlin": a["de"] + a["capital"],
        "germany": a["de"] + a["country"],
        "apple": a["noise"],
    }
    return Vectors(list(spec), np.array(list(spec.values()), dtype=np.float32))


QUESTIONS = """\
: family
man woman king queen
Man Woman King Queen
man woman king france
man woman king princess
this line has far too many words
: capitals
paris france berlin germany
berlin germany paris france
paris france rome italy
short line

: empty-section
"""


def counts(result: AnalogyResult) -> list[tuple[str, int, int, int]]:
    return [(s.name, s.correct, s.total, s.oov) for s in result.sections]


@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
def test_tiny_model_known_answers(tmp_path: Path, method: str) -> None:
    path = write(tmp_path / "q.txt", QUESTIONS)
    result = evaluate_analogies(tiny_model(), path, method=method)
    assert counts(result) == [
        ("family", 2, 3, 1),
        ("capitals", 2, 2, 1),
        ("empty-section", 0, 0, 0),
    ]
    assert (result.correct, result.total, result.oov, result.skipped_lines) == (4, 5, 2, 2)
    assert result.accuracy == pytest.approx(0.8)
    assert result.sections[2].accuracy == 0.0
    assert result.name == "q"


def test_case_sensitive_counts_capitalised_words_as_oov(tmp_path: Path) -> None:
    path = write(tmp_path / "q.txt", QUESTIONS)
    result = evaluate_analogies(tiny_model(), path, case_insensitive=False)
    # "Man Woman King Queen" is now OOV; "KING" is a different word, so it may be predicted.
    assert counts(result)[0] == ("family", 0, 2, 2)
    assert tiny_model().analogy("man", "woman", "king")[0][0] == "KING"


def test_restrict_vocab(tmp_path: Path) -> None:
    path = write(tmp_path / "q.txt", QUESTIONS)
    # The first 8 words leave out "germany" (and "apple"): both capital questions become OOV.
    result = evaluate_analogies(tiny_model(), path, restrict_vocab=8)
    assert counts(result)[:2] == [("family", 2, 3, 1), ("capitals", 0, 0, 3)]
    assert result.oov == 4


def test_questions_before_a_header_and_missing_file(tmp_path: Path) -> None:
    path = write(tmp_path / "q.txt", "man woman king queen\n")
    assert counts(evaluate_analogies(tiny_model(), path)) == [("(no section)", 1, 1, 0)]
    with pytest.raises(Distw2vError, match="absent.txt"):
        evaluate_analogies(tiny_model(), tmp_path / "absent.txt")
    with pytest.raises(Distw2vError, match="method"):
        evaluate_analogies(tiny_model(), path, method="3cosfoo")


# ---- agreement with gensim on a random model ----------------------------------------------


def random_model(n: int, dim: int, seed: int, extra_words: list[str] = ()) -> Vectors:  # type: ignore[assignment]
    rng = np.random.default_rng(seed)
    words = list(dict.fromkeys(list(extra_words) + [f"x{i}" for i in range(n)]))[:n]
    # Case variants of some words, placed both before and after their lower-case forms.
    variants = [w.upper() for w in words[5:40:3]] + [w.capitalize() for w in words[40:80:4]]
    words = words[:20] + variants[:6] + words[20:] + variants[6:]
    words = words[:n]
    return Vectors(words, rng.standard_normal((len(words), dim)).astype(np.float32))


def random_questions(v: Vectors, rng: np.random.Generator, n_questions: int) -> str:
    """Sections of random questions; half of the answers are the true 3CosAdd nearest word."""
    unit = v.unit_vectors(range(len(v)))
    lines = []
    for s in range(4):
        lines.append(f": section-{s}")
        for _ in range(n_questions // 4):
            a, b, c = rng.choice(len(v), size=3, replace=False)
            target = unit[b] + unit[c] - unit[a]
            sims = unit @ (target / np.linalg.norm(target))
            sims[[a, b, c]] = -np.inf
            d = int(np.argmax(sims)) if rng.random() < 0.5 else int(rng.integers(len(v)))
            words = [v.words[i] for i in (a, b, c, d)]
            if rng.random() < 0.1:
                words[int(rng.integers(4))] = "unseenword"
            if rng.random() < 0.3:
                words = [w.upper() if rng.random() < 0.5 else w for w in words]
            lines.append(" ".join(words))
        lines.append("not a question")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("case_insensitive", "restrict"), [(True, 300_000), (True, 250), (False, 300)]
)
def test_analogies_agree_with_gensim(tmp_path: Path, case_insensitive: bool, restrict: int) -> None:
    v = random_model(400, 12, seed=1)
    path = write(tmp_path / "q.txt", random_questions(v, np.random.default_rng(2), 1200))
    ours = evaluate_analogies(v, path, restrict_vocab=restrict, case_insensitive=case_insensitive)
    score, sections = to_gensim(v).evaluate_word_analogies(
        str(path), restrict_vocab=restrict, case_insensitive=case_insensitive
    )
    theirs = [
        (s["section"], len(s["correct"]), len(s["correct"]) + len(s["incorrect"])) for s in sections
    ]
    assert [(s.name, s.correct, s.total) for s in ours.sections] == theirs[:-1]
    assert (ours.correct, ours.total) == theirs[-1][1:]
    assert ours.correct > 50  # the comparison is not vacuous
    assert ours.accuracy == pytest.approx(score)
    assert ours.skipped_lines == 4
    assert ours.oov > 0


def test_3cosmul_agrees_with_gensim_most_similar_cosmul(tmp_path: Path) -> None:
    v = random_model(300, 10, seed=3)
    rng = np.random.default_rng(4)
    questions = [rng.choice(len(v), size=4, replace=False) for _ in range(300)]
    kv = to_gensim(v)
    expected = 0
    lines = [": all"]
    for a, b, c, d in questions:
        wa, wb, wc = v.words[a], v.words[b], v.words[c]
        best = kv.most_similar_cosmul(positive=[wb, wc], negative=[wa], topn=1)[0][0]
        wd = best if rng.random() < 0.5 else v.words[d]
        expected += wd == best
        lines.append(f"{wa} {wb} {wc} {wd}")
    path = write(tmp_path / "q.txt", "\n".join(lines) + "\n")
    result = evaluate_analogies(v, path, case_insensitive=False, method="3cosmul", batch_size=64)
    assert result.total == 300
    assert result.correct == expected


@pytest.mark.skipif(not (EVAL_DIR / "questions-words.txt").exists(), reason="eval data absent")
def test_real_questions_words_agrees_with_gensim() -> None:
    path = EVAL_DIR / "questions-words.txt"
    vocab = sorted(
        {w.lower() for line in path.read_text().splitlines()[:6000] for w in line.split()}
    )
    v = random_model(700, 10, seed=5, extra_words=[w for w in vocab if not w.startswith(":")])
    ours = evaluate_analogies(v, path)
    score, sections = to_gensim(v).evaluate_word_analogies(str(path))
    assert len(ours.sections) == 14 and ours.sections[0].name == "capital-common-countries"
    assert [(s.correct, s.total) for s in ours.sections] == [
        (len(s["correct"]), len(s["correct"]) + len(s["incorrect"])) for s in sections[:-1]
    ]
    assert ours.total + ours.oov == 19544 and ours.total > 1000 and ours.skipped_lines == 0


# ---- word similarity ---------------------------------------------------------------------


def test_similarity_counts_and_values(tmp_path: Path) -> None:
    v = tiny_model()
    path = write(
        tmp_path / "pairs.tsv",
        "# comment line\n"
        "# Word 1\tWord 2\tHuman (mean)\n"
        "man\twoman\t5.0\n"
        "King queen 8.5\n"  # whitespace-separated, mixed case
        "paris\tfrance\t7\n"
        "apple\tberlin\t0.5\n"
        "man\tunicorn\t3\n"  # OOV
        "man\twoman\n"  # malformed: two fields
        "man\twoman\tlots\n"  # malformed: not a number
        "\n",
    )
    result = evaluate_similarity(v, path)
    assert (result.name, result.pairs, result.oov, result.skipped_lines) == ("pairs", 4, 1, 2)
    gold = [5.0, 8.5, 7, 0.5]
    model = [
        v.similarity(*p)
        for p in [("man", "woman"), ("king", "queen"), ("paris", "france"), ("apple", "berlin")]
    ]
    assert result.spearman == pytest.approx(stats.spearmanr(gold, model)[0], abs=1e-9)
    assert result.pearson == pytest.approx(stats.pearsonr(gold, model)[0], abs=1e-6)
    strict = evaluate_similarity(v, path, case_insensitive=False)
    assert (strict.pairs, strict.oov) == (3, 2)
    with pytest.raises(Distw2vError, match="nope.tsv"):
        evaluate_similarity(v, tmp_path / "nope.tsv")


def test_similarity_with_no_usable_pairs_is_nan(tmp_path: Path) -> None:
    result = evaluate_similarity(tiny_model(), write(tmp_path / "p.tsv", "a\tb\t1\n"))
    assert result.pairs == 0 and result.oov == 1 and math.isnan(result.spearman)


def test_similarity_with_no_usable_pairs_can_be_an_error(tmp_path: Path) -> None:
    v = tiny_model()
    oov = write(tmp_path / "oov.tsv", "a\tb\t1\nKing\tunicorn\t2\n")
    with pytest.raises(NoPairsError, match=r"None of the 2 pairs .* \(compared lower-cased\)\.$"):
        evaluate_similarity(v, oov, require_pairs=True)
    with pytest.raises(NoPairsError, match=r"words in the vocabulary\.$"):
        evaluate_similarity(v, oov, case_insensitive=False, require_pairs=True)
    malformed = write(tmp_path / "bad.tsv", "# header\nman woman\nman woman lots\n")
    with pytest.raises(NoPairsError, match=r"bad.tsv has no 'word word score' line \(2 malf"):
        evaluate_similarity(v, malformed, require_pairs=True)
    assert NoPairsError.exit_code == 1 and issubclass(NoPairsError, Distw2vError)
    assert evaluate_similarity(v, malformed).pairs == 0  # without it: NaN figures, as before


def test_similarity_agrees_with_gensim(tmp_path: Path) -> None:
    v = random_model(300, 8, seed=6)
    rng = np.random.default_rng(7)
    lines = ["# Word 1\tWord 2\tHuman (mean)"]
    for _ in range(250):
        a, b = rng.choice(len(v), size=2, replace=False)
        wa, wb = v.words[a], v.words[b]
        if rng.random() < 0.1:
            wb = "unseenword"
        if rng.random() < 0.3:
            wa = wa.upper()
        lines.append(f"{wa}\t{wb}\t{rng.integers(0, 20) / 2:.1f}")  # many tied gold scores
    path = write(tmp_path / "ws.tsv", "\n".join(lines) + "\n")
    ours = evaluate_similarity(v, path)
    pearson, spearman_, oov_ratio = to_gensim(v).evaluate_word_pairs(str(path))
    assert ours.spearman == pytest.approx(spearman_[0], abs=1e-6)
    assert ours.pearson == pytest.approx(pearson[0], abs=1e-6)
    assert 100 * ours.oov / (ours.oov + ours.pairs) == pytest.approx(oov_ratio)
    assert ours.pairs + ours.oov == 250 and ours.oov > 10


@pytest.mark.skipif(not (EVAL_DIR / "wordsim353.tsv").exists(), reason="eval data absent")
@pytest.mark.parametrize("name", ["wordsim353.tsv", "simlex999.txt"])
def test_real_similarity_files_agree_with_gensim(name: str) -> None:
    path = EVAL_DIR / name
    vocab = [w.lower() for line in path.read_text().splitlines()[2:] for w in line.split("\t")[:2]]
    v = random_model(1500, 10, seed=8, extra_words=vocab[::2])  # about half the words are known
    ours = evaluate_similarity(v, path)
    pearson, spearman_, _ = to_gensim(v).evaluate_word_pairs(str(path))
    assert ours.skipped_lines == 0 and ours.pairs > 50 and ours.oov > 50
    assert ours.spearman == pytest.approx(spearman_[0], abs=1e-6)
    assert ours.pearson == pytest.approx(pearson[0], abs=1e-6)


def test_spearman_with_ties_matches_scipy() -> None:
    rng = np.random.default_rng(11)
    for n in (2, 3, 10, 200):
        x = rng.integers(0, 5, size=n).astype(float)
        y = x + rng.integers(0, 4, size=n)
        if np.ptp(x) == 0 or np.ptp(y) == 0:
            continue
        assert spearman(x, y) == pytest.approx(stats.spearmanr(x, y)[0], abs=1e-12)
    assert math.isnan(spearman(np.ones(5), np.arange(5.0)))
    assert math.isnan(spearman(np.array([1.0]), np.array([2.0])))


def test_correlation_pvalues_match_scipy() -> None:
    rng = np.random.default_rng(12)
    for n in (3, 4, 7, 30, 500):
        for _ in range(10):
            x = rng.standard_normal(n)
            y = x * rng.uniform(0, 2) + rng.standard_normal(n)
            for statistic, pvalue in (stats.pearsonr(x, y), stats.spearmanr(x, y)):
                ours = correlation_pvalue(float(statistic), n)
                assert ours == pytest.approx(pvalue, rel=1e-9, abs=1e-15)
    assert (correlation_pvalue(1.0, 5), correlation_pvalue(0.0, 5)) == (0.0, 1.0)
    assert math.isnan(correlation_pvalue(0.5, 2)) and math.isnan(correlation_pvalue(math.nan, 9))


def test_similarity_delimiter_and_dummy4unknown(tmp_path: Path) -> None:
    v = tiny_model()
    path = write(tmp_path / "pairs.csv", "man,woman,3\nking,queen,9\nman,king,5\nman,zzz,1\n")
    plain = evaluate_similarity(v, path, delimiter=",")
    assert (plain.pairs, plain.oov, plain.skipped_lines) == (3, 1, 0)
    dummy = evaluate_similarity(v, path, delimiter=",", dummy4unknown=True)
    assert (dummy.pairs, dummy.oov) == (4, 1)
    model = [v.similarity("man", "woman"), v.similarity("king", "queen"),
             v.similarity("man", "king"), 0.0]
    assert dummy.pearson == pytest.approx(stats.pearsonr([3, 9, 5, 1], model)[0], abs=1e-6)
    assert evaluate_similarity(v, path).skipped_lines == 4  # no tab: split on whitespace


# ---- reporting ---------------------------------------------------------------------------


def test_format_table_and_json(tmp_path: Path) -> None:
    analogies = evaluate_analogies(tiny_model(), write(tmp_path / "questions.txt", QUESTIONS))
    sims = SimilarityResult("wordsim353", 0.41234, 0.3987, 350, 3, 0)
    empty = SimilarityResult("simlex999", math.nan, math.nan, 0, 999, 0)
    table = format_table([analogies, sims, empty])
    lines = table.splitlines()
    assert lines[0] == "questions"
    assert lines[1].split() == ["family", "66.7%", "2/3", "oov", "1"]
    assert lines[4].split() == ["total", "80.0%", "4/5", "oov", "2", "skipped", "2"]
    assert "spearman 0.412  pearson 0.399  pairs 350  oov 3" in lines[5]
    assert "spearman n/a" in lines[6]
    # Values start in one column.
    assert len({line.index("%") for line in lines[1:5]}) == 1

    data = results_to_json([analogies, sims, empty])
    text = json.dumps(data, allow_nan=False)
    back = json.loads(text)
    assert back["analogies"][0]["correct"] == 4 and back["analogies"][0]["total"] == 5
    assert back["analogies"][0]["sections"][1] == {
        "name": "capitals",
        "accuracy": 1.0,
        "correct": 2,
        "total": 2,
        "oov": 1,
    }
    assert back["similarity"][0]["spearman"] == pytest.approx(0.41234)
    assert back["similarity"][1]["spearman"] is None

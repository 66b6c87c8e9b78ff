"""Corpora with planted structure and their scoring: planted relations with an analogies
file, item sessions from planted clusters with a labels file, and neighbour purity."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from distw2v.cli import main as cli_main
from distw2v.errors import Distw2vError
from distw2v.evaluate import (
    PurityResult,
    evaluate_analogies,
    evaluate_purity,
    format_table,
    results_to_json,
)
from distw2v.synthetic import (
    PlantedCorpus,
    SessionCorpus,
    main,
    write_planted_corpus,
    write_session_corpus,
)
from distw2v.synthetic.planted import RELATIONS, ROUNDS_MIN, TEMPLATES, entity_names
from distw2v.synthetic.sessions import LENGTHS
from distw2v.vectors import Vectors

SMALL = {"tokens": 20_000, "entities": 6, "filler_vocab": 300}


def random_vectors(words: list[str], seed: int = 0) -> Vectors:
    return Vectors(words, np.random.default_rng(seed).standard_normal((len(words), 8)))


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if ".tmp-" in p.name]


# ---- planted relations -------------------------------------------------------------------


def test_planted_corpus_is_seeded_and_counts_what_it_wrote(tmp_path: Path) -> None:
    info = write_planted_corpus(tmp_path / "a.txt", seed=3, **SMALL)
    write_planted_corpus(tmp_path / "b.txt", seed=3, **SMALL)
    write_planted_corpus(tmp_path / "c.txt", seed=4, **SMALL)
    text = (tmp_path / "a.txt").read_text()
    assert text == (tmp_path / "b.txt").read_text() != (tmp_path / "c.txt").read_text()
    assert (tmp_path / "a.analogies.txt").read_text() == (
        tmp_path / "b.analogies.txt").read_text()
    assert isinstance(info, PlantedCorpus)
    assert info.path == str(tmp_path / "a.txt")
    assert info.analogies == str(tmp_path / "a.analogies.txt")
    lines = text.splitlines()
    assert info.sentences == len(lines) and info.tokens == len(text.split())
    assert 20_000 <= info.tokens < 20_000 + max(len(line.split()) for line in lines)
    assert info.entities == 6 and info.relations == list(RELATIONS) and info.seed == 3
    assert leftovers(tmp_path) == []


def test_planted_facts_are_stated_through_the_templates_and_names_survive_tokenizers(
        tmp_path: Path) -> None:
    write_planted_corpus(tmp_path / "p.txt", seed=1, **SMALL)
    names = entity_names(6, 1)
    text = (tmp_path / "p.txt").read_text()
    counts = Counter(text.split())
    everything = [n for kind in names.values() for n in kind]
    assert len(set(everything)) == 5 * 6  # no two entities or kinds share a name
    assert all(re.fullmatch(r"[a-z]+", n) and not n.startswith("w") for n in everything)
    template_words = {w for ts in TEMPLATES.values() for t in ts for w in t.split()}
    assert not template_words & set(everything)
    assert all(counts[n] >= ROUNDS_MIN for n in everything)  # each passes min_count 5
    # every fact appears, and only true facts: a value's sentences all name its own country
    facts = 0
    for line in text.splitlines():
        words = set(line.split())
        countries = [e for e, c in enumerate(names["country"]) if c in words]
        values = [(r, e) for r in RELATIONS for e, v in enumerate(names[r]) if v in words]
        assert len(countries) == 1 and len(values) == 1
        assert values[0][1] == countries[0]
        facts += 1
    assert facts == len(text.splitlines())
    # filler words are Zipf pseudo-words, most frequent first
    filler = Counter(w for w in text.split() if w.startswith("w"))
    assert filler.most_common(1)[0][0] == "w0" and len(filler) > 50


def test_planted_analogies_parse_and_cover_every_relation_and_pair(tmp_path: Path) -> None:
    info = write_planted_corpus(tmp_path / "p.txt", seed=2, **SMALL)
    words = sorted(set((tmp_path / "p.txt").read_text().split()))
    result = evaluate_analogies(random_vectors(words), info.analogies)
    assert [s.name for s in result.sections] == list(RELATIONS)
    assert all(s.total == 6 * 5 and s.oov == 0 for s in result.sections)
    assert result.skipped_lines == 0
    names = entity_names(6, 2)
    lines = Path(info.analogies).read_text().splitlines()
    assert lines[1] == " ".join([names["country"][0], names["capital"][0],
                                 names["country"][1], names["capital"][1]])
    # a model that knows the planted offsets answers every question
    rng = np.random.default_rng(0)
    base = {kind: rng.standard_normal(64) * 3 for kind in names}
    rows = {}
    for e in range(6):
        country = rng.standard_normal(64)
        for kind, kind_names in names.items():
            rows[kind_names[e]] = country + base[kind] + 0.01 * rng.standard_normal(64)
    perfect = Vectors(list(rows), np.stack(list(rows.values())))
    assert evaluate_analogies(perfect, info.analogies).accuracy == 1.0


def test_planted_arguments_are_checked_in_one_sentence(tmp_path: Path) -> None:
    bad = [({"entities": 1}, "entities must be between 2 and 1000"),
           ({"entities": 1001}, "entities must be between 2 and 1000"),
           ({"tokens": 1000}, "tokens must be at least"),
           ({"filler_vocab": 0}, "filler_vocab must be at least 1"),
           ({"seed": -1}, "seed must not be negative")]
    for change, message in bad:
        with pytest.raises(ValueError, match=message) as info:
            write_planted_corpus(tmp_path / "x.txt", **{**SMALL, **change})
        assert str(info.value).count(".") <= 2 and "\n" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_planted_writes_are_atomic(tmp_path: Path) -> None:
    corpus = tmp_path / "p.txt"
    corpus.write_text("the old corpus\n")
    (tmp_path / "p.analogies.txt").mkdir()  # the companion cannot be renamed into place
    with pytest.raises(OSError):
        write_planted_corpus(corpus, **SMALL)
    assert corpus.read_text() == "the old corpus\n"
    assert leftovers(tmp_path) == []


# ---- sessions ----------------------------------------------------------------------------


def test_sessions_are_seeded_and_count_what_they_wrote(tmp_path: Path) -> None:
    args = {"sessions": 3000, "items": 400, "clusters": 7}
    info = write_session_corpus(tmp_path / "a.txt", seed=5, **args)
    write_session_corpus(tmp_path / "b.txt", seed=5, **args)
    write_session_corpus(tmp_path / "c.txt", seed=6, **args)
    text = (tmp_path / "a.txt").read_text()
    assert text == (tmp_path / "b.txt").read_text() != (tmp_path / "c.txt").read_text()
    assert isinstance(info, SessionCorpus)
    assert info.labels == str(tmp_path / "a.labels.tsv")
    lines = text.splitlines()
    assert len(lines) == info.sessions == 3000
    lengths = [len(line.split()) for line in lines]
    assert info.tokens == sum(lengths)
    assert min(lengths) == LENGTHS[0] and max(lengths) == LENGTHS[1]
    assert (info.items, info.clusters, info.seed) == (400, 7, 5)
    assert set(text.split()) <= {f"i{i}" for i in range(400)}
    assert leftovers(tmp_path) == []


def test_session_labels_cover_every_item_and_sessions_follow_their_clusters(
        tmp_path: Path) -> None:
    info = write_session_corpus(tmp_path / "s.txt", sessions=4000, items=403, clusters=10,
                                seed=1)
    rows = [line.split("\t") for line in Path(info.labels).read_text().splitlines()]
    assert [item for item, _ in rows] == [f"i{i}" for i in range(403)]
    sizes = Counter(cluster for _, cluster in rows)
    assert sorted(sizes) == [str(c) for c in range(10)]
    assert sorted(sizes.values()) == [40] * 7 + [41] * 3
    label = dict(rows)
    # items of one session share a cluster far more often than chance (about 1/10 here)
    same = total = 0
    for line in (tmp_path / "s.txt").read_text().splitlines():
        items = line.split()
        same += sum(label[a] == label[b] for a, b in zip(items, items[1:]))
        total += len(items) - 1
    assert same / total > 0.2
    # cluster popularity is skewed: the most used cluster holds many times the least used
    used = Counter(label[w] for w in (tmp_path / "s.txt").read_text().split())
    assert max(used.values()) > 4 * min(used.values())


def test_session_arguments_and_atomic_writes(tmp_path: Path) -> None:
    for change, message in [({"sessions": 0}, "sessions must be at least 1"),
                            ({"clusters": 1}, "clusters must be at least 2"),
                            ({"items": 9, "clusters": 10}, r"items \(9\) must be at least"),
                            ({"seed": -2}, "seed must not be negative")]:
        with pytest.raises(ValueError, match=message):
            write_session_corpus(tmp_path / "x.txt", **change)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "s.labels.tsv").mkdir()
    with pytest.raises(OSError):
        write_session_corpus(tmp_path / "s.txt", sessions=10, items=20, clusters=2)
    assert not (tmp_path / "s.txt").exists() and leftovers(tmp_path) == []


# ---- neighbour purity --------------------------------------------------------------------


def on_circle(degrees: dict[str, float]) -> Vectors:
    angles = np.radians(list(degrees.values()))
    return Vectors(list(degrees), np.stack([np.cos(angles), np.sin(angles)], axis=1))


def write_labels(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_purity_of_separated_clusters_is_one_and_of_a_crafted_mix_is_known(
        tmp_path: Path) -> None:
    labels = write_labels(tmp_path / "labels.tsv",
                          "a0\tA\na8\tA\na20\tA\nb62\tB\nb100\tB\nb107\tB\nzz\tB\n")
    apart = on_circle({"a0": 0, "a8": 8, "a20": 20, "b62": 162, "b100": 200, "b107": 207})
    assert evaluate_purity(apart, labels, k=2) == PurityResult("labels", 1.0, 6, 1, 2)
    # "u" (unlabelled) sits between: a20's neighbours are u and a8, b62's are u and b100,
    # every other item's two neighbours share its cluster: (2 + 2 + 1 + 1 + 2 + 2) / 12
    mixed = on_circle({"a0": 0, "a8": 8, "a20": 20, "u": 27, "b62": 62, "b100": 100,
                       "b107": 107})
    result = evaluate_purity(mixed, labels, k=2)
    assert result.purity == pytest.approx(10 / 12)
    assert (result.items, result.missing, result.k) == (6, 1, 2)
    # with k=1 the nearest is a8, a0, u, u, b107, b100: an item is never its own neighbour
    assert evaluate_purity(mixed, labels, k=1).purity == pytest.approx(4 / 6)


def test_purity_matches_a_brute_force_count_across_batches(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    words = [f"i{i}" for i in range(150)] + [f"x{i}" for i in range(30)]
    cluster = rng.integers(0, 5, 150)
    centres = rng.standard_normal((5, 16))
    matrix = np.concatenate([centres[cluster] + 1.5 * rng.standard_normal((150, 16)),
                             rng.standard_normal((30, 16))])
    vectors = Vectors(words, matrix)
    labels = write_labels(tmp_path / "l.tsv", "".join(
        f"i{i}\t{c}\n" for i, c in enumerate(cluster.tolist())))
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    sims = unit @ unit.T
    np.fill_diagonal(sims, -np.inf)
    top = np.argsort(-sims, axis=1, kind="stable")[:150, :10]
    padded = np.concatenate([cluster, np.full(30, -1)])
    expected = float(np.mean(padded[top] == cluster[:, None]))
    result = evaluate_purity(vectors, labels, k=10, batch_size=7)
    assert result.purity == pytest.approx(expected, abs=1e-12)
    assert 0.2 < expected < 0.95  # the case is neither trivial nor hopeless


def test_purity_errors_empty_overlap_and_reports(tmp_path: Path) -> None:
    vectors = on_circle({"a": 0, "b": 10, "c": 50})
    good = write_labels(tmp_path / "g.tsv", "# item cluster\n\na\tx\nB\tx\nc\ty\n")
    assert evaluate_purity(vectors, good, k=1).purity == pytest.approx(2 / 3)  # B is b
    with pytest.raises(Distw2vError, match="k must be at least 1"):
        evaluate_purity(vectors, good, k=0)
    with pytest.raises(Distw2vError, match="smaller than the vocabulary"):
        evaluate_purity(vectors, good, k=3)
    bad = write_labels(tmp_path / "bad.tsv", "a\tx\nb\n")
    with pytest.raises(Distw2vError, match="Line 2 of the labels file"):
        evaluate_purity(vectors, bad, k=1)
    twice = write_labels(tmp_path / "twice.tsv", "a\tx\na\ty\n")
    with pytest.raises(Distw2vError, match="two clusters"):
        evaluate_purity(vectors, twice, k=1)
    with pytest.raises(Distw2vError, match="does not exist"):
        evaluate_purity(vectors, tmp_path / "none.tsv", k=1)
    none = evaluate_purity(vectors, write_labels(tmp_path / "none.tsv", "q\tx\n"), k=1)
    assert math.isnan(none.purity) and none.items == 0 and none.missing == 1

    both = [evaluate_purity(vectors, good, k=1), none]
    lines = format_table(both).splitlines()
    assert lines[0].split() == ["g", "purity@1", "0.667", "items", "3", "missing", "0"]
    assert "purity@1 n/a" in lines[1]
    data = json.loads(json.dumps(results_to_json(both), allow_nan=False))
    assert data["purity"][0] == {"name": "g", "purity": pytest.approx(2 / 3), "items": 3,
                                 "missing": 0, "k": 1}
    assert data["purity"][1]["purity"] is None and data["analogies"] == []


# ---- command lines -----------------------------------------------------------------------


def test_eval_purity_on_the_command_line(tmp_path: Path, capsys) -> None:
    words = [f"i{i}" for i in range(24)]
    angles = np.radians([(i % 2) * 180 + i for i in range(24)])  # two opposite clusters
    Vectors(words, np.stack([np.cos(angles), np.sin(angles)], axis=1)).save(tmp_path / "m")
    labels = write_labels(tmp_path / "items.tsv",
                          "".join(f"i{i}\t{i % 2}\n" for i in range(24)) + "i99\t0\n")
    code = cli_main(["eval", str(tmp_path / "m"), "--purity", str(labels), "--json",
                     str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert "items  purity@10 1.000  items 24  missing 1" in out
    assert json.loads((tmp_path / "r.json").read_text())["purity"][0]["purity"] == 1.0
    bad = write_labels(tmp_path / "bad.tsv", "i1\n")
    assert cli_main(["eval", str(tmp_path / "m"), "--purity", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "Line 1 of the labels file" in err and "Traceback" not in err


def test_generator_command_lines(tmp_path: Path, capsys) -> None:
    assert main(["planted", "--out", str(tmp_path / "p.txt"), "--tokens", "20000",
                 "--entities", "6", "--filler-vocab", "300", "--seed", "3"]) == 0
    assert "about 6 entities" in capsys.readouterr().out
    write_planted_corpus(tmp_path / "q.txt", seed=3, **SMALL)
    assert (tmp_path / "p.txt").read_text() == (tmp_path / "q.txt").read_text()
    assert main(["sessions", "--out", str(tmp_path / "s.txt"), "--sessions", "50",
                 "--items", "30", "--clusters", "3"]) == 0
    assert "50 sessions" in capsys.readouterr().out
    assert len((tmp_path / "s.labels.tsv").read_text().splitlines()) == 30
    assert main(["zipf", "--vocab-size", "10", "--tokens", "100", "--out",
                 str(tmp_path / "z.txt"), "--words-per-file", "0"]) == 0
    assert len((tmp_path / "z.txt").read_text().split()) == 100
    for argv in (["planted", "--out", str(tmp_path / "x.txt"), "--entities", "1"],
                 ["sessions", "--out", str(tmp_path / "x.txt"), "--clusters", "1"]):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert capsys.readouterr().err.startswith("error: ")
    assert not (tmp_path / "x.txt").exists()

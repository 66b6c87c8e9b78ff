"""The quality matrix benchmark's parts that can be wrong without a long run: the issue-10
targets of --check, and the peers (C word2vec, fastText) on a tiny corpus, where they are
installed or can be built."""

from __future__ import annotations

import shutil
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import peers  # noqa: E402
import quality_matrix  # noqa: E402
from common import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def row(corpus: str, system: str, wps: float = 1e6, **figures: float) -> dict:
    return {"corpus": corpus, "system": system, "words_per_second": wps, "figures": figures}


def passing_rows() -> list[dict]:
    english = {"wordsim353": 0.40, "simlex999": 0.24, "analogy": 0.13}
    return [
        row("english", "gensim", 4e5, **english),
        row("english", "local", 1.6e6, **{**english, "wordsim353": 0.385}),
        row("english", "spark", 3e5, **{**english, "analogy": 0.121}),
        row("planted", "gensim", analogy=1.0),
        row("planted", "local", analogy=0.96),
        row("planted", "spark", analogy=0.95),
        row("zipf", "gensim", 1e5, sane_rows=1.0),
        row("zipf", "word2vec", 1e5, sane_rows=1.0),
        row("zipf", "local", 2.1e5, sane_rows=1.0),
    ]


def test_check_passes_when_every_target_is_met() -> None:
    failures, unchecked = quality_matrix.check(passing_rows(), "skipgram")
    assert failures == []
    assert unchecked == []


@pytest.mark.parametrize(("corpus", "system", "key", "value", "named"), [
    ("planted", "spark", "analogy", 0.94, "planted distw2v-spark analogy"),
    ("english", "local", "wordsim353", 0.37, "english distw2v-local wordsim353"),
    ("english", "spark", "analogy", 0.119, "english distw2v-spark analogy"),
    ("english", "local", "words_per_second", 1.1e6, "english distw2v-local words/s"),
    ("zipf", "word2vec", "words_per_second", 1.1e5, "word2vec.c"),
])
def test_check_names_the_missed_target(corpus: str, system: str, key: str, value: float,
                                       named: str) -> None:
    rows = passing_rows()
    target = next(r for r in rows if (r["corpus"], r["system"]) == (corpus, system))
    if key == "words_per_second":
        target[key] = value
    else:
        target["figures"][key] = value
    failures, _ = quality_matrix.check(rows, "skipgram")
    assert len(failures) == 1
    assert named in failures[0]


def test_check_skips_speed_and_planted_targets_for_cbow() -> None:
    rows = passing_rows()
    next(r for r in rows if r["system"] == "spark" and r["corpus"] == "planted")[
        "figures"]["analogy"] = 0.0
    next(r for r in rows if r["system"] == "local" and r["corpus"] == "zipf")[
        "words_per_second"] = 1.0
    assert quality_matrix.check(rows, "cbow")[0] == []


def test_a_system_that_did_not_run_is_reported_not_failed() -> None:
    rows = [r for r in passing_rows() if r["system"] != "word2vec"]
    failures, unchecked = quality_matrix.check(rows, "skipgram")
    assert failures == []
    assert unchecked == ["zipf: word2vec.c did not run"]


def test_a_broken_word2vec_sdist_is_one_sentence(tmp_path: Path) -> None:
    sdist = tmp_path / "word2vec-0.11.1.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:  # a tarball without word2vec.c
        note = tmp_path / "README"
        note.write_text("no source here\n")
        tar.add(note, arcname="word2vec-0.11.1/README")
    with pytest.raises(peers.PeerUnavailable, match=r"has no usable .*word2vec\.c") as err:
        peers.word2vec_peer(tmp_path)
    assert "\n" not in str(err.value)


def tiny_corpus(path: Path, seed: int = 3) -> Path:
    """Two families of words that never share a line, so their vectors separate."""
    rng = np.random.default_rng(seed)
    families = [[f"a{i}" for i in range(10)], [f"b{i}" for i in range(10)]]
    with open(path, "w", encoding="utf-8") as out:
        for n in range(3000):
            out.write(" ".join(rng.choice(families[n % 2], size=8)) + "\n")
    return path


SMALL = Settings(dim=16, epochs=5, min_count=1)


def assert_trained(run: peers.PeerRun) -> None:
    assert sorted(run.words) == sorted([f"a{i}" for i in range(10)] + [f"b{i}" for i in range(10)])
    assert peers.EOS not in run.words  # dropped before scoring
    assert run.matrix.shape == (20, 16)
    assert 0 < run.vocab_seconds and 0 < run.train_seconds
    assert run.wall >= run.vocab_seconds + run.train_seconds - 1e-6
    assert run.peak_rss_mb > 0
    unit = run.matrix / np.linalg.norm(run.matrix, axis=1, keepdims=True)
    family = np.array([w[0] == "a" for w in run.words])
    sims = unit @ unit.T
    same = sims[family][:, family].mean()
    other = sims[family][:, ~family].mean()
    assert same > other + 0.2  # it learnt from the text, not just wrote random rows


@pytest.mark.skipif(shutil.which("fasttext") is None, reason="fasttext is not installed")
def test_fasttext_trains_and_is_timed(tmp_path: Path) -> None:
    corpus = tiny_corpus(tmp_path / "corpus.txt")
    run = peers.run_fasttext(peers.fasttext_peer(), corpus, tmp_path / "work", SMALL, seed=1)
    assert_trained(run)
    assert run.extra["save_seconds"] >= 0
    assert "-minn" in run.commands[0] and "skipgram" in run.commands[0]


def test_fasttext_refuses_to_turn_subsampling_off(tmp_path: Path) -> None:
    peer = peers.Peer("fasttext", Path("/nonexistent/fasttext"), "none")
    with pytest.raises(ValueError, match="cannot turn subsampling off"):
        peers.run_fasttext(peer, tmp_path / "corpus.txt", tmp_path, Settings(sample=0.0), seed=1)


@pytest.mark.slow  # the first run downloads and compiles word2vec.c (about 20 s)
@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is not installed")
def test_word2vec_builds_trains_and_is_timed(tmp_path: Path) -> None:
    cache = ROOT / "build" / "peers"  # the benchmark's cache: downloads and compiles once
    try:
        peer = peers.word2vec_peer(cache)
    except peers.PeerUnavailable as exc:
        if "pip download" in str(exc):
            pytest.skip(f"the word2vec sdist cannot be downloaded here: {exc}")
        raise
    corpus = tiny_corpus(tmp_path / "corpus.txt")
    run = peers.run_word2vec(peer, corpus, tmp_path / "work", SMALL, seed=1)
    assert_trained(run)
    assert run.corpus_words == 3000 * 9  # word2vec.c counts a `</s>` a line
    assert ["-read-vocab", "vocab.txt"] == run.commands[1][3:5]

"""The `distw2v` command end to end, and every kind of bad input it must refuse cleanly."""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from distw2v.cli import main
from distw2v.vectors import Vectors

DEMO = Path(__file__).resolve().parent.parent / "data" / "us-presidential-addresses.txt.gz"
FAST = ["--quiet", "--dim", "16", "--epochs", "1", "--min-count", "2"]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(capsys, *argv, match: str) -> str:
    code, _, err = run_cli(capsys, *argv)
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert match in lines[0], lines[0]
    return lines[0]


def write_corpus(path: Path, sentences: int = 400) -> Path:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(40)]
    with gzip.open(path, "wt") as out:
        for _ in range(sentences):
            out.write(" ".join(rng.choice(words, size=8)) + "\n")
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("cli")
    corpus = write_corpus(tmp / "c.txt.gz")
    out = tmp / "model"
    assert main(["train", str(corpus), "--out", str(out), *FAST]) == 0
    return out


def test_train_writes_a_complete_model_and_summary(tmp_path, capsys) -> None:
    corpus = write_corpus(tmp_path / "c.txt.gz")
    code, out, _ = run_cli(capsys, "train", corpus, "--out", tmp_path / "m", *FAST,
                           "--workers", "1")
    assert code == 0
    assert "words/s" in out and "peak memory" in out
    vectors = Vectors.load(tmp_path / "m")
    assert len(vectors) == 40 and vectors.dim == 16
    assert vectors.meta["train_config"]["dim"] == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.txt.gz", "m"]  # no leftovers


def test_vocab_encode_then_train_from_encoded(tmp_path, capsys) -> None:
    corpus = write_corpus(tmp_path / "c.txt.gz")
    assert run_cli(capsys, "vocab", corpus, "--out", tmp_path / "v.tsv", "--min-count", "2",
                   "--quiet")[0] == 0
    assert run_cli(capsys, "encode", corpus, "--vocab", tmp_path / "v.tsv", "--out",
                   tmp_path / "enc", "--quiet")[0] == 0
    code, out, _ = run_cli(capsys, "train", "--encoded", tmp_path / "enc", "--vocab",
                           tmp_path / "v.tsv", "--out", tmp_path / "m", *FAST)
    assert code == 0 and len(Vectors.load(tmp_path / "m")) == 40


def test_query_commands(model, tmp_path, capsys) -> None:
    code, out, _ = run_cli(capsys, "similar", model, "w1", "--topn", "3")
    assert code == 0 and len(out.strip().splitlines()) == 4
    code, out, _ = run_cli(capsys, "analogy", model, "w1", "w2", "w3", "--method", "3cosmul")
    assert code == 0 and "w1 : w2 :: w3 : ?" in out
    for fmt in ("word2vec-text", "word2vec-bin"):
        code, _, _ = run_cli(capsys, "export", model, tmp_path / fmt, "--format", fmt)
        assert code == 0
        assert len(Vectors.load_word2vec(tmp_path / fmt)) == 40


def test_eval_prints_table_writes_json_and_counts_malformed_lines(model, tmp_path,
                                                                  capsys) -> None:
    analogies = tmp_path / "a.txt"
    analogies.write_text(": s\nw1 w2 w3 w4\nthree words only\nw5 w6 w7 w8\n")
    pairs = tmp_path / "p.tsv"
    pairs.write_text("w1\tw2\t3.0\nw3\tw4\t1.0\nw5 w6\nw7\tw9\t2.5\nw1\tnope\t1\n")
    code, out, _ = run_cli(capsys, "eval", model, "--analogies", analogies, "--similarity",
                           pairs, "--json", tmp_path / "r.json")
    assert code == 0 and "spearman" in out
    data = json.loads((tmp_path / "r.json").read_text())
    text = json.dumps(data)
    assert '"skipped_lines": 1' in text  # one malformed line in each file
    assert text.count('"skipped_lines": 1') == 2


@pytest.mark.parametrize("flag,value,message", [
    ("--dim", "0", "dim must be at least 1"),
    ("--window", "0", "window must be at least 1"),
    ("--negative", "0", "negative must be at least 1"),
    ("--epochs", "0", "epochs must be at least 1"),
    ("--sample", "-0.1", "sample must not be negative"),
])
def test_invalid_parameters(tmp_path, capsys, flag, value, message) -> None:
    corpus = write_corpus(tmp_path / "c.txt.gz", sentences=10)
    assert_refused(capsys, "train", corpus, "--out", tmp_path / "m", flag, value, match=message)
    assert not (tmp_path / "m").exists()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("case", ["missing", "unreachable", "empty", "rare", "binary"])
def test_bad_corpora_leave_no_model(tmp_path, capsys, case) -> None:
    source = tmp_path / "corpus.txt"
    if case == "missing":
        match = "corpus.txt"
    elif case == "unreachable":
        pytest.importorskip("aiohttp")
        source = f"http://127.0.0.1:{closed_port()}/corpus.txt"  # type: ignore[assignment]
        match = "127.0.0.1"
    elif case == "empty":
        source.write_text("\n\n")
        match = "empty"
    elif case == "rare":
        source.write_text("each word here occurs once\n")
        match = "min_count=5"
    else:
        source.write_bytes(np.random.default_rng(1).bytes(50_000))
        match = "text"
    assert_refused(capsys, "train", source, "--out", tmp_path / "m", "--quiet", match=match)
    assert not (tmp_path / "m").exists()
    assert [p.name for p in tmp_path.iterdir()] in ([], ["corpus.txt"])


def test_unknown_word_and_corrupt_models(model, tmp_path, capsys) -> None:
    assert_refused(capsys, "similar", model, "nosuchword", match="nosuchword")
    assert_refused(capsys, "similar", tmp_path / "nothing", "w1", match="nothing")
    broken = tmp_path / "broken"
    broken.mkdir()
    for f in model.iterdir():
        broken.joinpath(f.name).write_bytes(f.read_bytes())
    vectors = broken / "vectors.npy"
    vectors.write_bytes(vectors.read_bytes()[:-100])
    assert_refused(capsys, "similar", broken, "w1", match="broken")
    (broken / "meta.json").unlink()
    assert_refused(capsys, "eval", broken, "--analogies", "x", match="broken")


def test_missing_eval_file_and_overwrite_guard(model, tmp_path, capsys) -> None:
    assert_refused(capsys, "eval", model, "--analogies", tmp_path / "none.txt", match="none.txt")
    corpus = write_corpus(tmp_path / "c.txt.gz", sentences=10)
    assert_refused(capsys, "train", corpus, "--out", model, match="--overwrite")


def test_real_process_exit_code_and_help() -> None:
    done = subprocess.run([sys.executable, "-m", "distw2v.cli", "similar", "/nonexistent/m",
                           "x"], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "/nonexistent/m" in done.stderr
    done = subprocess.run([sys.executable, "-m", "distw2v.cli", "train", "--help"],
                          capture_output=True, text=True)
    assert done.returncode == 0
    for option in ("--dim", "--window", "--negative", "--sample", "--min-count", "--workers",
                   "--max-vocab-size", "--lowercase", "(default: 5)"):
        assert option in done.stdout


def test_checkpoints_with_the_local_engine(tmp_path, capsys) -> None:
    corpus = write_corpus(tmp_path / "c.txt.gz")
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    for engine in ("local", "spark"):  # refused before any work, with either engine
        assert_refused(capsys, "train", corpus, "--out", tmp_path / "model", "--engine", engine,
                       "--checkpoint-dir", blocker / "ckpt",
                       match="cannot create the checkpoint directory")
        assert not (tmp_path / "model").exists()
    ckpt = tmp_path / "ckpt"
    code, _, err = run_cli(capsys, "train", corpus, "--out", tmp_path / "model", *FAST,
                           "--epochs", "2", "--checkpoint-dir", ckpt)
    assert code == 0, err
    assert json.loads((ckpt / "progress.json").read_text())["epochs_done"] == 2
    assert sorted(p.name for p in ckpt.iterdir()) == ["epoch-2", "progress.json"]
    # the same run again goes on after the saved epochs (here: all of them)
    talking = [a for a in FAST if a != "--quiet"]
    code, _, err = run_cli(capsys, "train", corpus, "--out", tmp_path / "model", *talking,
                           "--epochs", "2", "--checkpoint-dir", ckpt, "--overwrite")
    assert code == 0 and "resuming after epoch 2 of 2" in err, err
    np.testing.assert_array_equal(Vectors.load(tmp_path / "model").matrix,
                                  np.load(ckpt / "epoch-2" / "syn0.npy"))
    # another run is refused before it trains, and leaves the model there alone
    assert_refused(capsys, "train", corpus, "--out", tmp_path / "other", *FAST,
                   "--epochs", "3", "--checkpoint-dir", ckpt,
                   match="is of another run (it differs in train_config)")
    assert not (tmp_path / "other").exists()


# --- what a new user hit (issue 14, item 7) ---------------------------------------------------


def refused_by_argparse(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert exit_info.value.code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_gensim_flag_gets_distw2v_s_name_from_the_api_s_table(tmp_path, capsys) -> None:
    corpus = write_corpus(tmp_path / "c.txt.gz", sentences=10)
    for flag, said in (("--vector-size", "gensim's vector_size is --dim here."),
                       ("--iter", "gensim's iter is --epochs here."),
                       ("--sg", "gensim's sg is --model skipgram (sg=1) or --model cbow (sg=0) "
                        "here."),
                       ("--hs", "distw2v trains with negative sampling only")):
        line = refused_by_argparse(capsys, "train", corpus, "--out", tmp_path / "m", flag, "1")
        assert line.startswith(f"distw2v train: error: unrecognized argument {flag}; {said}")
    assert not (tmp_path / "m").exists()


def test_unusable_outputs_are_refused_before_any_training(tmp_path, capsys,
                                                          monkeypatch) -> None:
    import distw2v.engines

    def must_not_run(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(distw2v.engines, "train_local", must_not_run)
    corpus = write_corpus(tmp_path / "c.txt.gz", sentences=10)
    a_file = tmp_path / "file"
    a_file.write_text("not a model")
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "notes.txt").write_text("mine")
    model = tmp_path / "m"
    for extra, match in [
        (["--out", a_file, "--overwrite"], "is a file; the model is a directory"),
        (["--out", a_file / "m"], f"cannot create --out {a_file / 'm'}: {a_file} is a file"),
        (["--out", stray, "--overwrite"], "is a directory that holds no model"),
        (["--out", model, "--word2vec-out", tmp_path / "none" / "v.bin"],
         "the directory of --word2vec-out"),
        (["--out", model, "--word2vec-out", stray], "is a directory; give a file name"),
        (["--out", model, "--checkpoint-dir", a_file], f"--checkpoint-dir {a_file} is a file"),
    ]:
        assert_refused(capsys, "train", corpus, *extra, "--quiet", match=match)
    assert not model.exists() and (stray / "notes.txt").read_text() == "mine"


def test_a_misspelt_flag_gets_the_right_one_suggested(tmp_path, capsys) -> None:
    corpus = write_corpus(tmp_path / "c.txt.gz", sentences=10)
    line = refused_by_argparse(capsys, "train", corpus, "--out", tmp_path / "m",
                               "--min_count", "3")
    assert line == ("distw2v train: error: unrecognized argument --min_count; "
                    "did you mean --min-count?")
    assert "did you mean --topn?" in refused_by_argparse(capsys, "similar", "m", "w",
                                                         "--topm=3")
    # the service's commands are built with the same parser
    assert "did you mean --min-count?" in refused_by_argparse(capsys, "submit", corpus,
                                                              "--min_count", "3")
    assert not (tmp_path / "m").exists()


def test_queries_read_word2vec_files(model, tmp_path, capsys) -> None:
    expected = [run_cli(capsys, "similar", model, "w1", "--topn", "3")[1],
                run_cli(capsys, "analogy", model, "w1", "w2", "w3")[1]]
    pairs = tmp_path / "p.tsv"
    pairs.write_text("w1\tw2\t3.0\nw3\tw4\t1.0\nw5\tw6\t2.0\n")
    expected_eval = run_cli(capsys, "eval", model, "--similarity", pairs)[1]
    for fmt in ("word2vec-text", "word2vec-bin"):
        exported = tmp_path / fmt
        assert run_cli(capsys, "export", model, exported, "--format", fmt)[0] == 0
        for argv, want in [(["similar", exported, "w1", "--topn", "3"], expected[0]),
                           (["analogy", exported, "w1", "w2", "w3"], expected[1]),
                           (["eval", exported, "--similarity", pairs], expected_eval)]:
            code, out, err = run_cli(capsys, *argv)
            assert code == 0, err
            # text holds scores rounded to 6 decimals: the same neighbours, scores within 1e-4
            assert [ln.split()[0] for ln in out.splitlines()] == \
                [ln.split()[0] for ln in want.splitlines()]


def test_eval_with_no_pair_to_score_fails(model, tmp_path, capsys) -> None:
    for text, match in [("w1 w2\nnot a score line\n", "has no 'word word score' line (2 "),
                        ("", "has no 'word word score' line."),
                        ("w1\tnope\t1\nzz\tw2\t2\n", "None of the 2 pairs in the similarity")]:
        pairs = tmp_path / "p.tsv"
        pairs.write_text(text)
        code, out, err = run_cli(capsys, "eval", model, "--similarity", pairs)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert code == 1 and out == "" and len(lines) == 1, (code, out, err)
        assert match in lines[0] and str(pairs) in lines[0], lines[0]


@pytest.mark.parametrize("command", [["similar", "w1"], ["analogy", "w1", "w2", "w3"]])
@pytest.mark.parametrize("topn", ["0", "-3"])
def test_topn_below_one_is_refused(model, capsys, command, topn) -> None:
    assert_refused(capsys, command[0], model, *command[1:], "--topn", topn,
                   match=f"--topn must be at least 1, not {topn}.")


def test_an_unknown_word_in_another_case_is_named(model, tmp_path, capsys) -> None:
    line = assert_refused(capsys, "similar", model, "W1", match="'W1' is not in the vocabulary")
    assert line.endswith("'W1' is not in the vocabulary (but 'w1' is).")
    assert_refused(capsys, "analogy", model, "w1", "w2", "W3", match="(but 'w3' is).")
    rng = np.random.default_rng(2)
    capitals = tmp_path / "capitals"
    Vectors(["Paris", "Berlin", "rome"], rng.standard_normal((3, 4)).astype(np.float32)).save(
        capitals)
    assert_refused(capsys, "similar", capitals, "paris", match="'paris' is not in the "
                   "vocabulary (but 'Paris' is).")
    line = assert_refused(capsys, "similar", capitals, "madrid", match="'madrid'")
    assert line.endswith("'madrid' is not in the vocabulary.")  # no variant: no hint

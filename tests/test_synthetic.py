"""The Zipf-like synthetic corpus: seeded, every word present, Zipf slope, bounded memory."""

from __future__ import annotations

import tracemalloc
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from distw2v.synthetic import main, read_manifest, word, word_table, write_zipf_corpus


def tokens_of(files: list[str]) -> list[str]:
    return "".join(Path(f).read_text() for f in files).split()


def test_same_seed_same_bytes_and_file_split_does_not_change_the_text(tmp_path) -> None:
    args = {"vocab_size": 3000, "tokens": 50_000, "sentence_length": 7, "block_tokens": 2000}
    one = write_zipf_corpus(tmp_path / "a.txt", seed=4, **args)
    again = write_zipf_corpus(tmp_path / "b.txt", seed=4, **args)
    other = write_zipf_corpus(tmp_path / "c.txt", seed=5, **args)
    parts = write_zipf_corpus(tmp_path / "parts", seed=4, words_per_file=9000, **args)
    text = (tmp_path / "a.txt").read_bytes()
    assert text == (tmp_path / "b.txt").read_bytes()
    assert text != (tmp_path / "c.txt").read_bytes()
    assert len(parts.files) == 6  # 9000 rounds up to 9002 words (whole sentences of 7)
    assert b"".join(Path(f).read_bytes() for f in parts.files) == text
    assert one.bytes == again.bytes == len(text) and other.tokens == 50_000
    for f in parts.files[:-1]:  # files end between sentences
        assert len(Path(f).read_text().split()) == 9002
    manifest = read_manifest(tmp_path / "parts")
    assert manifest is not None and manifest["seed"] == 4 and manifest["vocab_size"] == 3000
    leftovers = [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name]
    assert leftovers == []


def test_every_word_of_the_vocabulary_occurs_and_sentences_have_their_length(tmp_path) -> None:
    info = write_zipf_corpus(tmp_path / "c.txt", vocab_size=5000, tokens=20_003,
                             sentence_length=10, seed=1, block_tokens=1000)
    lines = (tmp_path / "c.txt").read_text().splitlines()
    assert [len(line.split()) for line in lines] == [10] * 2000 + [3]
    assert info.sentences == 2001
    counts = Counter(w for line in lines for w in line.split())
    assert sum(counts.values()) == 20_003
    assert set(counts) == {word(r) for r in range(5000)}  # exactly the vocabulary
    assert counts.most_common(1)[0][0] == "w0"


def test_words_are_w_and_base36() -> None:
    assert [word(r) for r in (0, 9, 10, 35, 36, 1295, 1296)] == [
        "w0", "w9", "wa", "wz", "w10", "wzz", "w100"]
    table, starts, lengths = word_table(1300)
    text = table.tobytes().decode()
    assert text.split() == [word(r) for r in range(1300)]
    assert all(text[s:s + n] == word(r) + " "
               for r, (s, n) in enumerate(zip(starts.tolist(), lengths.tolist())))


@pytest.mark.parametrize("exponent", [1.0, 1.3])
def test_rank_frequency_slope_is_zipf_like(tmp_path, exponent: float) -> None:
    write_zipf_corpus(tmp_path / "c.txt", vocab_size=20_000, tokens=2_000_000,
                      exponent=exponent, seed=2)
    counts = Counter((tmp_path / "c.txt").read_text().split())
    ranked = np.array(sorted(counts.values(), reverse=True), dtype=np.float64)
    ranks = np.arange(5, 500)
    slope = np.polyfit(np.log(ranks + 1), np.log(ranked[ranks]), 1)[0]
    assert slope == pytest.approx(-exponent, abs=0.08)


def test_memory_does_not_grow_with_the_corpus(tmp_path) -> None:
    def peak(tokens: int) -> int:
        tracemalloc.start()
        try:
            write_zipf_corpus(tmp_path / f"c{tokens}.txt", vocab_size=50_000, tokens=tokens,
                              seed=3, block_tokens=1 << 16)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(200_000), peak(6_000_000)
    written = (tmp_path / "c6000000.txt").stat().st_size
    assert large < 1.25 * small
    assert large < written / 3  # the text is never held whole


def test_bad_arguments_and_the_command_line(tmp_path, capsys) -> None:
    with pytest.raises(ValueError, match="at least vocab_size"):
        write_zipf_corpus(tmp_path / "x.txt", vocab_size=10, tokens=9)
    with pytest.raises(ValueError, match="exponent"):
        write_zipf_corpus(tmp_path / "x.txt", vocab_size=10, tokens=10, exponent=0)
    assert not (tmp_path / "x.txt").exists()
    assert main(["--vocab-size", "100", "--tokens", "1000", "--out", str(tmp_path / "d"),
                 "--words-per-file", "400"]) == 0
    assert "1,000 words (100 distinct) in 3 file(s)" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [
        ".synthetic.json", "part-00000.txt", "part-00001.txt", "part-00002.txt"]
    with pytest.raises(SystemExit) as exit_info:
        main(["--vocab-size", "100", "--tokens", "10", "--out", str(tmp_path / "e")])
    assert exit_info.value.code == 2

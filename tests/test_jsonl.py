"""Texts from JSON lines (--format jsonl) and Reddit dumps (--format reddit), read through
open_binary from files written here."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import orjson
import pytest
import zstandard

from distw2v.config import VocabConfig
from distw2v.corpus import jsonl
from distw2v.corpus.jsonl import MAX_RECORD_BYTES, iter_json_texts
from distw2v.corpus.stats import CorpusStats
from distw2v.corpus.streams import DEFAULT_BLOCK_SIZE, open_binary
from distw2v.errors import CorpusError
from distw2v.synthetic.reddit import write_reddit_corpus, write_reddit_dump

REDDIT = VocabConfig(format="reddit")


def read(path: Path, config: VocabConfig) -> tuple[list[str], CorpusStats]:
    stats = CorpusStats()
    with open_binary(str(path), stats, zstd_window_log=config.zstd_max_window_log) as stream:
        texts = list(iter_json_texts(stream, str(path), stats, config))
    return texts, stats


@pytest.fixture(params=["orjson", "json"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test that takes it runs with orjson and with the standard library's parser."""
    if request.param == "json":
        monkeypatch.setattr(jsonl, "_loads", jsonl._json_loads)
        monkeypatch.setattr(jsonl, "_HAVE_ORJSON", False)
    return str(request.param)


def test_jsonl_dotted_path_lists_missing_and_bad_lines(tmp_path: Path, parser: str) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b"\n".join([
        b'{"data": {"body": "first text"}}',
        b'{"data": {"body": ["one", "two", 3]}}',
        b"",
        b'{"data": {"other": "x"}}',  # line 4: no field
        b"this is not json",  # line 5: malformed
        b'{"data": {"body": null}}',
        b'{"data": "flat"}',
        b'[1, 2]',  # line 8: not an object
        b'{"data": {"body": "caf\xc3\xa9 \\u00e9"}}',
        b'{"data": {"body": "bad \xff utf-8"}}',  # line 10: malformed
        b"   ",
        b'{"data": {"body": "last"}}\r',
    ]) + b"\n")
    texts, stats = read(path, VocabConfig(format="jsonl", text_field="data.body"))
    assert texts == ["first text", "one\ntwo", "café é", "last"]
    assert (stats.records, stats.records_skipped, stats.malformed) == (10, 3, 3)
    assert stats.first_malformed == f"{path} line 5"


def test_jsonl_top_level_field_and_no_final_newline(tmp_path: Path) -> None:
    path = tmp_path / "b.jsonl"
    path.write_bytes(b'{"text": "a b"}\n{"text": ""}\n{"text": "c"}')
    texts, stats = read(path, VocabConfig(format="jsonl", text_field="text"))
    assert texts == ["a b", "c"]
    assert (stats.records, stats.records_skipped, stats.malformed) == (3, 1, 0)


def test_too_long_line_is_skipped_as_malformed(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    wrapper = len(b'{"text":""}')
    fits = b'{"text":"' + b"y" * (MAX_RECORD_BYTES - wrapper) + b'"}'
    assert len(fits) == MAX_RECORD_BYTES
    too_long = b'{"text":"' + b"x" * (MAX_RECORD_BYTES - wrapper + 1) + b'"}'
    path.write_bytes(b'{"text": "before"}\n' + too_long + b"\n" + fits + b'\n{"text": "after"}\n')
    texts, stats = read(path, VocabConfig(format="jsonl", text_field="text"))
    assert [t[:10] for t in texts] == ["before", "yyyyyyyyyy", "after"]
    assert len(texts[1]) == MAX_RECORD_BYTES - wrapper
    assert (stats.records, stats.malformed, stats.first_malformed) == (4, 1, f"{path} line 2")


def test_reddit_comments_and_submissions(tmp_path: Path, parser: str) -> None:
    path = tmp_path / "RC.jsonl"
    write_reddit_dump(path, [
        {"body": "plain comment", "subreddit": "AskReddit"},
        {"body": "[deleted]", "subreddit": "AskReddit"},
        {"body": "[removed]", "subreddit": "science"},
        {"body": "see [the docs](https://example.com/a_(b)) &amp; more &lt;3", "subreddit": "x"},
        {"body": "&gt; quoted line\n\nreply &#x200B; https://example.org/x", "subreddit": "x"},
        {"title": "A title", "selftext": "its text", "subreddit": "books"},
        {"title": "Only title", "selftext": "[removed]", "subreddit": "books"},
        {"title": "Empty self", "selftext": "", "subreddit": "books"},
        {"subreddit": "books", "score": 3},  # neither body nor title
        {"body": None},
    ])
    texts, stats = read(path, REDDIT)
    assert texts == [
        "plain comment",
        "see the docs & more <3",
        "quoted line\n\nreply  https://example.org/x",
        "A title\nits text",
        "Only title",
        "Empty self",
    ]
    assert (stats.records, stats.records_skipped, stats.malformed) == (10, 4, 0)


def test_reddit_subreddit_filter(tmp_path: Path) -> None:
    path = tmp_path / "RC.jsonl"
    write_reddit_dump(path, [
        {"body": "one", "subreddit": "AskReddit"},
        {"body": "two", "subreddit": "worldnews"},
        {"body": "three", "subreddit": "askreddit"},
        {"body": "four"},
        {"title": "five", "subreddit": "Science"},
    ])
    texts, stats = read(path, VocabConfig(format="reddit", subreddits="askREDDIT, science"))
    assert texts == ["one", "three", "five"]
    assert (stats.records, stats.records_skipped) == (5, 2)


def test_lone_surrogate_escapes_are_replaced(tmp_path: Path, parser: str) -> None:
    path = tmp_path / "RC.jsonl"
    path.write_bytes(b'{"body": "pair \\ud83d\\ude00 lone \\ud83d."}\n')
    texts, stats = read(path, REDDIT)
    assert texts == ["pair \U0001f600 lone \ufffd."]
    assert stats.malformed == 0


def test_zstd_long_window_with_a_character_across_a_block_edge(tmp_path: Path) -> None:
    edge = DEFAULT_BLOCK_SIZE  # open_binary hands out decompressed bytes in reads of this size
    filler = {"body": "a" * 1000}
    line = len(orjson.dumps(filler)) + 1
    before = edge // line - 1
    start = before * line + len(b'{"body":"')  # where the straddling body's text begins
    straddler = {"body": "b" * (edge - 1 - start) + "\u20ac end"}  # the euro sign is 3 bytes
    items: list[dict[str, Any]] = [filler] * before + [straddler] + [filler] * 2000
    path = tmp_path / "RC_2015-01.zst"
    write_reddit_dump(path, items, long_window=True)

    data = path.read_bytes()
    assert zstandard.get_frame_parameters(data).window_size == 1 << 31
    with pytest.raises(zstandard.ZstdError):  # what the default decoder limit would do
        zstandard.ZstdDecompressor().stream_reader(path.open("rb")).read(1)
    plain = zstandard.ZstdDecompressor(max_window_size=1 << 31).decompressobj().decompress(data)
    assert plain[edge - 1 : edge + 2] == "\u20ac".encode()

    texts, stats = read(path, REDDIT)
    assert len(texts) == before + 1 + 2000
    assert texts[before] == straddler["body"]
    assert texts[0] == texts[-1] == "a" * 1000
    assert (stats.records, stats.malformed, stats.invalid_utf8_lines) == (len(items), 0, 0)
    assert stats.decompressed_bytes == len(plain)


def test_a_character_reference_of_thousands_of_digits_is_one_character(tmp_path: Path) -> None:
    # html.unescape hands the digits to int(), which refuses over 4,300 with a ValueError
    path = tmp_path / "RC.jsonl"
    write_reddit_dump(path, [{"body": f"big &#{'9' * 5000}; and &#{'0' * 5000}65; end"}])
    texts, stats = read(path, REDDIT)
    assert texts == ["big \ufffd and A end"]
    for digits in ("0" * 150 + "65", "9" * 150, "0" * 120 + "1114111", "0" * 120 + "1114112",
                   "0" * 100):  # as html.unescape has them, where int() reads the digits
        for reference in (f"&#{digits};", f"&#{digits}x"):
            assert jsonl.reduce_markdown(reference) == html.unescape(reference)


def test_plain_text_is_the_wrong_format(tmp_path: Path, parser: str) -> None:
    path = tmp_path / "x.txt"
    path.write_text("\nthe cat sat on the mat\nand so on\n")
    with pytest.raises(CorpusError) as caught:
        read(path, REDDIT)
    assert str(caught.value) == (
        f"{path} line 2 is not JSON: is this file JSON lines? --format reddit reads one JSON "
        f"object a line (--format text reads plain text).")


def test_a_long_wrong_format_file_stops_early(tmp_path: Path) -> None:
    path = tmp_path / "x.txt"
    path.write_text("plain words\n" * 5000)
    stats = CorpusStats()
    with open_binary(str(path), stats) as stream, pytest.raises(CorpusError):
        list(iter_json_texts(stream, str(path), stats, VocabConfig(format="jsonl",
                                                                  text_field="text")))
    assert (stats.records, stats.malformed) == (1000, 1000)


def test_json_that_is_not_objects_is_the_wrong_format(tmp_path: Path) -> None:
    path = tmp_path / "arrays.jsonl"
    path.write_text("[1]\n[2]\n")
    with pytest.raises(CorpusError, match="line 1 is not a JSON object: is this file JSON"):
        read(path, REDDIT)


def test_all_skipped_or_some_malformed_is_not_an_error(tmp_path: Path) -> None:
    skipped = tmp_path / "deleted.jsonl"
    write_reddit_dump(skipped, [{"body": "[deleted]"}, {"body": "[removed]"}])
    assert read(skipped, REDDIT)[0] == []
    mixed = tmp_path / "mixed.jsonl"
    mixed.write_bytes(b'garbage\n{"body": "[deleted]"}\n')
    texts, stats = read(mixed, REDDIT)
    assert (texts, stats.records, stats.records_skipped, stats.malformed) == ([], 2, 1, 1)


def test_write_reddit_corpus_is_seeded_and_reads_back(tmp_path: Path) -> None:
    lines = [f"sentence number {i} with words" for i in range(50)]
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    count = write_reddit_corpus(first, lines, 200_000, seed=5)
    assert write_reddit_corpus(second, iter(lines), 200_000, seed=5) == count
    assert first.read_bytes() == second.read_bytes()
    assert 200_000 <= first.stat().st_size < 201_000
    texts, stats = read(first, REDDIT)
    assert stats.records == count and stats.malformed == 0
    assert len(texts) == count - stats.records_skipped
    assert 0.03 < stats.records_skipped / count < 0.07
    assert not any("&amp;" in t or "](" in t or t.startswith(">") for t in texts)

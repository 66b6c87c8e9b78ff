"""Corpus formats around the record readers: the Unicode tokenizer, the --format settings,
the warning for markup read as text, crawl manifests and file selection, and the record
layer (repeated lines, short records)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from distw2v.config import VocabConfig
from distw2v.corpus import CorpusStats, describe_stats, expand_sources, iter_sentences
from distw2v.corpus.hints import format_hint, reading_warnings, sniff
from distw2v.corpus.manifests import COMMON_CRAWL, default_base
from distw2v.corpus.records import LineRepeats
from distw2v.corpus.tokenize import _make_transform, make_split
from distw2v.errors import CorpusError, Distw2vError

UNICODE = VocabConfig(tokenizer="unicode")


def tokens(text: str, config: VocabConfig = UNICODE) -> list[str]:
    transform = _make_transform(config)
    return make_split(config)(transform(text) if transform else text)


# --- the Unicode tokenizer ----------------------------------------------------------------


def test_unicode_words_keep_inner_apostrophes_and_hyphens() -> None:
    assert tokens("The arab-israeli war, man's world; rock’n’roll (x) -- 'quoted'") == [
        "The", "arab-israeli", "war", "man's", "world", "rock’n’roll", "x", "quoted"]


def test_unicode_words_split_at_joiners_by_option() -> None:
    config = VocabConfig(tokenizer="unicode", word_joiners="split")
    assert tokens("arab-israeli man's", config) == ["arab", "israeli", "man", "s"]


def test_unicode_words_in_any_script_with_their_marks() -> None:
    # Devanagari vowel signs are marks (Mc/Mn): a word must not break at them
    assert tokens("हिन्दी भाषा, 日本語のテキスト; Ελληνικά 123 ½ foo_bar") == [
        "हिन्दी", "भाषा", "日本語のテキスト", "Ελληνικά", "123", "½", "foo", "bar"]
    # beyond the Basic Multilingual Plane: CJK extension B and math letters are word
    # characters, emoji are not
    assert tokens("𠮷野家 word😂 x𝐀y") == ["𠮷野家", "word", "x𝐀y"]


def test_urls_and_email_addresses_are_dropped_or_kept_whole() -> None:
    text = "see https://en.wikipedia.org/wiki/Foo_(bar). or www.example.com/a, mail me@x.org!"
    assert tokens(text) == ["see", "or", "mail"]
    keep = VocabConfig(tokenizer="unicode", urls="keep")
    assert tokens(text, keep) == ["see", "https://en.wikipedia.org/wiki/Foo_(bar", "or",
                                  "www.example.com/a", "mail", "me@x.org"]


def test_unicode_lowercase_casefolds_and_strip_options_apply_after_splitting() -> None:
    assert tokens("Straße ÉCOLE", VocabConfig(tokenizer="unicode", lowercase=True)) == [
        "strasse", "école"]
    config = VocabConfig(tokenizer="unicode", strip_digits=True, strip_punctuation=True)
    assert tokens("abc123 4x man's 99", config) == ["abc", "x", "mans"]


def test_tokenizer_defaults_by_format() -> None:
    assert not VocabConfig().unicode_tokens
    assert VocabConfig(format="wet").unicode_tokens
    assert VocabConfig(format="reddit").unicode_tokens
    assert not VocabConfig(format="wet", tokenizer="whitespace").unicode_tokens
    assert VocabConfig(tokenizer="unicode").unicode_tokens


def test_text_format_with_the_unicode_tokenizer_over_small_blocks(tmp_path: Path) -> None:
    line = "Hello, world! It's a multi-line test: ünïcödé words (and URLs http://x.io/a)."
    path = tmp_path / "t.txt"
    path.write_text("\n".join([line] * 20 + [" ".join([line] * 50)]) + "\n", encoding="utf-8")
    expected = tokens(line)
    got = list(iter_sentences(str(path), UNICODE, block_size=64))
    assert got[:20] == [expected] * 20
    assert [t for s in got[20:] for t in s] == expected * 50


# --- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize("settings, message", [
    ({"format": "jsonl"}, "format jsonl needs text_field"),
    ({"format": "text", "text_field": "body"}, "text_field applies only with format jsonl"),
    ({"format": "reddit", "languages": "eng"}, "languages applies only with format wet"),
    ({"format": "wet", "languages": " , "}, "languages must name at least one"),
    ({"format": "csv"}, "format must be one of text, wet, reddit, jsonl"),
    ({"max_files": 2, "sample_files": 2}, "not both"),
    ({"min_record_words": -1}, "min_record_words must not be negative"),
])
def test_format_settings_are_checked(settings: dict, message: str) -> None:
    with pytest.raises(Distw2vError, match=message):
        VocabConfig(**settings)


def test_line_repeat_limit_defaults_to_five_for_wet_only() -> None:
    assert VocabConfig(format="wet").line_repeat_limit == 5
    assert VocabConfig(format="reddit").line_repeat_limit == 0
    assert VocabConfig(format="wet", max_line_repeats=0).line_repeat_limit == 0
    assert VocabConfig(format="wet", languages="eng, deu").language_set == {"eng", "deu"}
    assert VocabConfig(format="reddit", subreddits="AskReddit,science").subreddit_set == {
        "askreddit", "science"}


# --- markup read as text ------------------------------------------------------------------


def test_json_keys_among_the_top_words_name_the_format_to_use() -> None:
    top = ['"body":', "the", '{"author":', '"score":', "a", '"subreddit":', "to"]
    hint = format_hint(VocabConfig(), top)
    assert hint is not None and "JSON keys" in hint and "--format reddit" in hint
    assert '"body":' in hint
    assert format_hint(VocabConfig(format="reddit"), top) is None


def test_warc_headers_among_the_top_words_name_wet() -> None:
    top = ["WARC/1.0", "WARC-Type:", "the", "WARC-Date:", "Content-Length:", "of"]
    hint = format_hint(VocabConfig(), top)
    assert hint is not None and "WARC headers" in hint and "--format wet" in hint


def test_prose_gets_no_hint() -> None:
    assert format_hint(VocabConfig(), ["the", "of", "and", "to", "a", "in", '"quoted"']) is None


# --- manifests and file selection ---------------------------------------------------------


def write_manifest(path: Path, lines: list[str]) -> str:
    with gzip.open(path, "wt") as out:
        out.write("\n".join(lines) + "\n")
    return str(path)


def test_a_crawl_manifest_expands_under_its_base(tmp_path: Path) -> None:
    paths = [f"crawl-data/CC-MAIN-2024-10/segments/1/wet/f{i}.warc.wet.gz" for i in range(5)]
    manifest = write_manifest(tmp_path / "wet.paths.gz", paths)
    assert expand_sources(manifest) == [COMMON_CRAWL + p for p in paths]
    base = f"{tmp_path}/mirror/"
    config = VocabConfig(format="wet", crawl_base=base, max_files=2)
    assert expand_sources(manifest, config) == [base + p for p in paths[:2]]


def test_manifest_base_defaults_to_where_the_manifest_is() -> None:
    assert default_base("s3://commoncrawl/crawl-data/CC-MAIN-2024-10/wet.paths.gz") == (
        "s3://commoncrawl/")
    assert default_base("https://data.commoncrawl.org/crawl-data/X/wet.paths.gz") == (
        "https://data.commoncrawl.org/")
    assert default_base("/data/wet.paths.gz") == COMMON_CRAWL


def test_sampled_files_are_seeded_distinct_and_in_listed_order(tmp_path: Path) -> None:
    paths = [f"p/{i:03d}.wet.gz" for i in range(100)]
    manifest = write_manifest(tmp_path / "wet.paths.gz", paths)

    def sample(seed: int) -> list[str]:
        return expand_sources(manifest, VocabConfig(sample_files=10, sample_seed=seed))

    first = sample(7)
    assert first == sample(7) and first != sample(8)
    assert len(set(first)) == 10 and first == sorted(first)
    assert set(first) <= {COMMON_CRAWL + p for p in paths}


def test_max_files_applies_to_directories_too(tmp_path: Path) -> None:
    for i in range(4):
        (tmp_path / f"{i}.txt").write_text(f"w{i}\n")
    got = expand_sources(str(tmp_path), VocabConfig(max_files=3))
    assert [Path(p).name for p in got] == ["0.txt", "1.txt", "2.txt"]


def test_a_manifest_that_is_not_one_is_refused(tmp_path: Path) -> None:
    bad = write_manifest(tmp_path / "wet.paths.gz", ["this is prose, not paths"])
    with pytest.raises(CorpusError, match="not a crawl manifest"):
        expand_sources(bad)
    with pytest.raises(CorpusError, match="lists no files"):
        expand_sources(write_manifest(tmp_path / "x.paths.gz", [""]))


# --- the record layer ---------------------------------------------------------------------


def test_line_repeats_drop_a_line_after_the_limit_of_records() -> None:
    repeats = LineRepeats(limit=2)
    menu = "Home | About | Contact"
    assert repeats.keep([menu, "page one", menu]) == [True, True, True]  # one record: once
    assert repeats.keep([menu, "page two"]) == [True, True]
    assert repeats.keep(["page three", menu]) == [True, False]
    assert repeats.keep([menu]) == [False]
    assert repeats.keep([]) == []


def test_describe_stats_reports_records_and_malformed() -> None:
    stats = CorpusStats(files=1, lines=10, tokens=50, records=4, records_skipped=1,
                        repeated_lines=3)
    stats.malformed_record("a.jsonl line 7")
    stats.malformed_record("a.jsonl line 9")
    text = describe_stats(stats)
    assert "4 records (1 left out by the format's filters)" in text
    assert "3 repeated lines dropped" in text
    assert reading_warnings(VocabConfig(), stats, ["the", "a"]) == [
        "warning: 2 malformed records skipped, the first at a.jsonl line 7."]


def test_a_file_that_begins_with_markup_is_named_even_when_its_words_are_not() -> None:
    assert sniff('{"id":"c0","body":"compact JSON glues keys to values"}') == "json"
    assert sniff("WARC/1.0\r") == "wet"
    assert sniff("{not json}") is None and sniff("plain prose") is None
    stats = CorpusStats(sniffed="json")
    (warning,) = reading_warnings(VocabConfig(), stats, ["the", "a"])
    assert "begins with a JSON object" in warning and "--format reddit" in warning

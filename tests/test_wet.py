"""WET files (--format wet): conversion records' text, language filter, truncated and broken
records, the wrong format; every parser of corpus/wet.py passes the same tests."""

from __future__ import annotations

import gzip
import importlib.util
import io
import random
import zlib
from pathlib import Path

import pytest

from distw2v.corpus import wet
from distw2v.corpus.stats import CorpusStats
from distw2v.corpus.streams import open_binary
from distw2v.corpus.wet import Parser, iter_wet_texts
from distw2v.errors import CorpusError
from distw2v.synthetic.wet import GzipMembers, warc_record, write_wet_corpus, write_wet_file

PARSERS: list[Parser] = ["plain", "warcio"]
if importlib.util.find_spec("fastwarc") is not None:
    PARSERS.append("fastwarc")

RECORDS: list[tuple[str | None, str]] = [
    ("eng", "The first page.\nIt has two lines."),
    ("deu", "Grüße aus Köln – ein zweiter Text."),
    ("eng,deu", "東京 and 🌍: multibyte UTF-8 in one body"),
    (None, "A page without a language header."),
    ("fra", "Une dernière page, assez longue. " * 40),
]
TEXTS = [text for _, text in RECORDS]


def read(path: Path, parser: Parser, languages: frozenset[str] = frozenset(),
         stats: CorpusStats | None = None) -> tuple[list[str], CorpusStats]:
    stats = stats or CorpusStats()
    with open_binary(str(path), stats) as stream:
        texts = list(iter_wet_texts(stream, str(path), stats, languages, parser=parser))
    return texts, stats


@pytest.fixture(params=PARSERS)
def parser(request: pytest.FixtureRequest) -> Parser:
    return request.param  # type: ignore[no-any-return]


@pytest.mark.parametrize(("name", "members"), [
    ("a.wet", "per_record"), ("a.wet.gz", "per_record"), ("a.wet.gz", "one"),
    ("a.wet.gz", "grouped"),
])
def test_every_conversion_record_in_order(tmp_path: Path, parser: Parser, name: str,
                                          members: GzipMembers) -> None:
    path = tmp_path / name
    assert write_wet_file(path, RECORDS, gzip_members=members) == 5
    assert path.read_bytes().startswith(b"\x1f\x8b" if name.endswith(".gz") else b"WARC/1.0\r\n")
    texts, stats = read(path, parser)
    assert texts == TEXTS
    assert (stats.records, stats.records_skipped, stats.malformed) == (5, 0, 0)


def test_gzip_layouts_have_their_members(tmp_path: Path) -> None:
    def members(layout: GzipMembers) -> int:
        write_wet_file(tmp_path / f"{layout}.wet.gz", RECORDS, gzip_members=layout)
        return len(_member_starts((tmp_path / f"{layout}.wet.gz").read_bytes()))

    assert (members("per_record"), members("grouped"), members("one")) == (6, 2, 1)


def test_other_record_types_are_ignored_and_invalid_utf8_is_replaced(tmp_path: Path,
                                                                     parser: Parser) -> None:
    metadata = warc_record("metadata", b"languages-cld2: {}\r\n",
                           [("Content-Type", "application/warc-fields")])
    request = warc_record("request", b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
                          [("WARC-Target-URI", "http://example.com/")])
    invalid = warc_record("conversion", b"caf\xe9 au lait", [("Content-Type", "text/plain")])
    write_wet_file(tmp_path / "m.wet.gz", [RECORDS[0], metadata, RECORDS[1], request, invalid])
    texts, stats = read(tmp_path / "m.wet.gz", parser)
    assert texts == [TEXTS[0], TEXTS[1], "caf\ufffd au lait"]
    assert (stats.records, stats.records_skipped, stats.malformed) == (3, 0, 0)


@pytest.mark.parametrize(("languages", "kept"), [
    ({"deu"}, [1, 2]), ({"eng", "fra"}, [0, 2, 4]), ({"spa"}, []), (set(), [0, 1, 2, 3, 4]),
])
def test_language_filter(tmp_path: Path, parser: Parser, languages: set[str],
                         kept: list[int]) -> None:
    write_wet_file(tmp_path / "l.wet.gz", RECORDS)
    texts, stats = read(tmp_path / "l.wet.gz", parser, frozenset(languages))
    assert texts == [TEXTS[i] for i in kept]
    assert (stats.records, stats.records_skipped) == (5, 5 - len(kept))


def _member_starts(data: bytes) -> list[int]:
    """Where each gzip member of `data` starts."""
    starts, at = [], 0
    while at < len(data):
        starts.append(at)
        inflate = zlib.decompressobj(31)
        inflate.decompress(data[at:])
        at = len(data) - len(inflate.unused_data)
    return starts


# The last page is large, so that the reads before the one that meets a cut gzip member hold
# every earlier record whole (open_binary hands out nothing of the read that fails).
_BIG = " ".join(random.Random(1).choice(["alpha", "beta", "gamma", "delta", "epsilon"])
                for _ in range(400_000))
TRUNCATED = [*RECORDS[:4], ("fra", _BIG)]


@pytest.mark.parametrize(("name", "members", "where"), [
    ("t.wet", "per_record", "body"), ("t.wet", "per_record", "header"),
    ("t.wet.gz", "per_record", "body"), ("t.wet.gz", "grouped", "body"),
    ("t.wet.gz", "one", "body"),
])
def test_truncated_last_record_is_malformed_and_ends_the_file(
        tmp_path: Path, parser: Parser, name: str, members: GzipMembers, where: str) -> None:
    path = tmp_path / name
    write_wet_file(path, TRUNCATED, gzip_members=members)
    data = path.read_bytes()
    if name.endswith(".gz"):  # cut the last gzip member in half
        last = _member_starts(data)[-1]
        cut = last + (len(data) - last) // 2
    else:  # Content-Length says more bytes than are left, or the header has no end
        last = data.rindex(b"\r\n\r\nWARC/1.0\r\n") + 4
        cut = len(data) - 100 if where == "body" else last + 30
    path.write_bytes(data[:cut])
    texts, stats = read(path, parser)
    assert texts == TEXTS[:4]
    assert (stats.records, stats.malformed) == (5, 1)
    assert stats.first_malformed == f"{path} record 6"  # the warcinfo record is record 1


def test_a_broken_header_is_malformed_and_ends_the_file(tmp_path: Path, parser: Parser) -> None:
    write_wet_file(tmp_path / "b.wet", RECORDS)
    data = (tmp_path / "b.wet").read_bytes()
    length = f"Content-Length: {len(TEXTS[2].encode())}\r\n".encode()
    assert data.count(length) == 1
    (tmp_path / "b.wet").write_bytes(data.replace(length, b"Content-Length: many\r\n"))
    texts, stats = read(tmp_path / "b.wet", parser)
    assert texts == TEXTS[:2]
    assert (stats.records, stats.malformed, stats.first_malformed) == (
        3, 1, f"{tmp_path / 'b.wet'} record 4")


def test_a_content_length_of_thousands_of_digits_is_malformed(tmp_path: Path,
                                                              parser: Parser) -> None:
    # int() refuses a string of over 4,300 digits with a ValueError
    path = tmp_path / "d.wet"
    write_wet_file(path, RECORDS)
    data = path.read_bytes()
    length = f"Content-Length: {len(TEXTS[2].encode())}\r\n".encode()
    path.write_bytes(data.replace(length, b"Content-Length: " + b"9" * 4301 + b"\r\n"))
    texts, stats = read(path, parser)
    assert texts == TEXTS[:2]
    assert (stats.records, stats.malformed, stats.first_malformed) == (3, 1, f"{path} record 4")
    first = data.index(b"Content-Length: ")  # the warcinfo record's: the file's first
    path.write_bytes(data[:first] + b"Content-Length: " + b"0" * 5000 + b"7"
                     + data[data.index(b"\r\n", first):])
    with pytest.raises(CorpusError) as refused:
        read(path, parser)
    assert str(refused.value) == (
        f"{path} is not a WARC/WET file (a record has no valid Content-Length "
        f"(b'{'0' * 20}', 5,001 bytes)); --format wet reads Common Crawl WET files "
        f"(--format text reads plain text).")


@pytest.mark.parametrize("name", ["x.txt", "x.txt.gz"])
def test_a_file_that_is_not_warc_raises(tmp_path: Path, parser: Parser, name: str) -> None:
    text = b"just some text\nin lines\n" * 50
    path = tmp_path / name
    path.write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
    with pytest.raises(CorpusError) as error:
        read(path, parser)
    message = str(error.value)
    assert message.startswith(f"{path} is not a WARC/WET file (")
    assert message.endswith("--format wet reads Common Crawl WET files "
                            "(--format text reads plain text).")
    if parser == "plain":
        assert "it does not start with 'WARC/' but b'just some text\\nin li')" in message


def test_an_empty_file_has_no_records(tmp_path: Path, parser: Parser) -> None:
    (tmp_path / "e.wet").write_bytes(b"")
    assert read(tmp_path / "e.wet", parser)[0] == []


def test_the_decompressed_bytes_limit_is_not_taken_for_a_truncated_file(
        tmp_path: Path, parser: Parser) -> None:
    write_wet_file(tmp_path / "big.wet.gz", RECORDS)
    stats = CorpusStats(max_decompressed_bytes=1500)
    with pytest.raises(CorpusError, match="larger than the limit of 1,500 decompressed bytes"):
        read(tmp_path / "big.wet.gz", parser, stats=stats)


def test_plain_parser_reads_bodies_across_its_reads(tmp_path: Path) -> None:
    pages = [("eng", "x" * 3_000_000), ("eng", "y" * 10), ("eng", "z" * 1_500_000)]
    write_wet_file(tmp_path / "long.wet", pages)
    texts, stats = read(tmp_path / "long.wet", "plain")
    assert texts == [text for _, text in pages] and stats.records == 3


def test_written_records_have_the_wet_headers_and_valid_digests(tmp_path: Path) -> None:
    from warcio.archiveiterator import ArchiveIterator

    write_wet_file(tmp_path / "h.wet.gz", RECORDS[:2], uri_prefix="https://x.org/p")
    with gzip.open(tmp_path / "h.wet.gz") as f:
        data = f.read()
    records = list(ArchiveIterator(io.BytesIO(data), check_digests="raise"))  # reads them
    assert data.count(b"\r\n\r\nWARC/1.0\r\n") == 2  # records are separated by CRLF CRLF
    with gzip.open(tmp_path / "h.wet.gz") as f:
        headers = [r.rec_headers for r in ArchiveIterator(f, check_digests="raise")]
    assert len(records) == 3
    assert [h.get_header("WARC-Type") for h in headers] == ["warcinfo", "conversion", "conversion"]
    second = headers[2]
    assert second.get_header("WARC-Target-URI") == "https://x.org/p2"
    assert second.get_header("WARC-Identified-Content-Language") == "deu"
    assert second.get_header("Content-Type") == "text/plain"
    assert second.get_header("Content-Length") == str(len(TEXTS[1].encode()))
    for name in ("WARC-Date", "WARC-Record-ID", "WARC-Refers-To", "WARC-Block-Digest"):
        assert second.get_header(name)


def test_wet_corpus_packs_lines_into_pages_with_boilerplate(tmp_path: Path) -> None:
    lines = [f"line {i} of the source text" for i in range(5000)]
    pages = write_wet_corpus(tmp_path / "c.wet.gz", lines, target_bytes=60_000, seed=5)
    again = write_wet_corpus(tmp_path / "d" / "c.wet.gz", lines, target_bytes=60_000, seed=5)
    assert pages == again
    assert (tmp_path / "c.wet.gz").read_bytes() == (tmp_path / "d" / "c.wet.gz").read_bytes()
    texts, stats = read(tmp_path / "c.wet.gz", "plain")
    assert stats.records == pages == len(texts)
    body = [t.split("\n") for t in texts]
    content = [[x for x in page if x.startswith("line ")] for page in body]
    assert [x for page in content for x in page] == lines[: sum(map(len, content))]
    assert all(20 <= len(page) <= 80 for page in content)
    total = sum(len(t.encode()) for t in texts)
    assert 60_000 <= total < 60_000 + 81 * 40  # stops after the page that reaches the target
    menus = sum(page[0] == "Home | About | Contact" for page in body)
    assert pages // 2 < menus < pages  # on most pages, not all
    _, eng = read(tmp_path / "c.wet.gz", "plain", frozenset({"eng"}))
    assert 0 < eng.records_skipped < pages  # a mix of languages
    short = write_wet_corpus(tmp_path / "s.wet", lines[:15], target_bytes=10**9, seed=1)
    assert short == 1  # the lines ran out first


def test_a_record_over_the_size_limit_is_passed_over_as_malformed(
        tmp_path: Path, parser: Parser, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wet, "MAX_RECORD_BYTES", 100)
    monkeypatch.setattr(wet, "READ_BYTES", 64)  # the large body spans several reads
    write_wet_file(tmp_path / "s.wet", RECORDS)
    texts, stats = read(tmp_path / "s.wet", parser)
    assert texts == TEXTS[:4]  # the last body has 1,320 bytes
    assert (stats.records, stats.malformed, stats.first_malformed) == (
        5, 1, f"{tmp_path / 's.wet'} record 6")


def test_a_file_cut_inside_its_first_record_is_truncated_not_the_wrong_format(
        tmp_path: Path, parser: Parser) -> None:
    write_wet_file(tmp_path / "f.wet", RECORDS)
    data = (tmp_path / "f.wet").read_bytes()
    (tmp_path / "f.wet").write_bytes(data[: data.index(b"\r\n\r\n") + 10])  # in its body
    texts, stats = read(tmp_path / "f.wet", parser)
    assert texts == []
    assert (stats.records, stats.malformed, stats.first_malformed) == (
        1, 1, f"{tmp_path / 'f.wet'} record 1")

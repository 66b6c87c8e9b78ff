"""Common Crawl WET files (--format wet): the page text of each 'conversion' record.

A WET file is WARC/1.0 records: a 'warcinfo' record, then one 'conversion' record per page
whose body is the page's text in UTF-8. The caller opens the file (open_binary undoes the
gzip, one member per record in Common Crawl's files); this module only parses records.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal, cast

from ..errors import CorpusError
from .stats import CorpusStats
from .streams import DEFAULT_BLOCK_SIZE

Parser = Literal["plain", "fastwarc", "warcio"]
# The plain parser's reads: as fast as 1 MiB ones, and a read that meets a cut gzip member
# loses all its bytes (open_binary raises instead), so smaller reads lose fewer whole records.
READ_BYTES = 64 << 10
MAX_HEADER_BYTES = 64 << 10  # a WARC header longer than this is broken, not a page
MAX_RECORD_BYTES = 64 << 20  # a body larger than this is passed over as malformed
LANGUAGE_HEADER = "WARC-Identified-Content-Language"
# Measured over open_binary on a 101 MB gzip'd WET (a member a record, 184 MB decompressed),
# MB/s decompressed: plain 134, fastwarc 129, warcio 76, the gzip alone 166. Plain needs no
# wheel, so no fallback; the other two stay selectable (and tested) through `parser`.
PARSER: Parser = "plain"


@dataclass
class _Record:
    """What this module needs of one record: its type, languages and whole body."""

    warc_type: str
    languages: str | None  # the raw header value, e.g. 'eng,deu'
    body: bytes | None  # None: larger than MAX_RECORD_BYTES (its bytes were passed over)


class _Malformed(Exception):
    """The record cannot be parsed; the file cannot be read past it."""


class _Truncated(_Malformed):
    """The file ends inside the record."""


def iter_wet_texts(stream: BinaryIO, uri: str, stats: CorpusStats, languages: frozenset[str],
                   *, parser: Parser | None = None) -> Iterator[str]:
    """The text of each 'conversion' record of a WET file, in order.

    Every conversion record counts in ``stats.records``; one left out by `languages` (when
    not empty: none of its WARC-Identified-Content-Language codes is among them) also in
    ``stats.records_skipped``. A record that cannot be parsed (a broken header, a body
    shorter than its Content-Length, a gzip member cut short) counts in ``stats.records``
    and as malformed, and ends the file: what follows it cannot be found reliably. Raises
    CorpusError when the file's first record cannot be parsed (not a WARC file at all).
    `parser` overrides PARSER (the tests run every parser).
    """
    records = _PARSERS[parser or PARSER](stream)
    n = 0  # 1-based position of the record being read, among all of the file's records
    while True:
        n += 1
        try:
            record = next(records, None)
        except _Malformed as exc:
            if n == 1 and not isinstance(exc, _Truncated):  # the wrong --format, most likely
                raise CorpusError(f"{uri} is not a WARC/WET file ({exc}); --format wet reads "
                                  f"Common Crawl WET files (--format text reads plain text)."
                                  ) from None
            stats.records += 1
            stats.malformed_record(f"{uri} record {n}")
            return
        except CorpusError as exc:
            if not isinstance(exc.__cause__, EOFError):  # a limit or corrupt data: not ours
                raise
            stats.records += 1  # a gzip member cut short: the file's truncated end
            stats.malformed_record(f"{uri} record {n}")
            return
        if record is None:
            return
        if record.warc_type != "conversion":
            continue
        stats.records += 1
        if record.body is None:
            stats.malformed_record(f"{uri} record {n}")
        elif languages and not _speaks(record.languages, languages):
            stats.records_skipped += 1
        else:
            yield record.body.decode("utf-8", errors="replace")


def _speaks(header: str | None, languages: frozenset[str]) -> bool:
    return header is not None and any(c.strip() in languages for c in header.split(","))


def _plain_records(stream: BinaryIO) -> Iterator[_Record]:
    """Records cut by Content-Length from READ_BYTES reads of the stream."""
    buf, pos = b"", 0  # unparsed bytes are buf[pos:]
    eof = False

    def fill() -> bool:  # read more; False at the end of the stream
        nonlocal buf, pos, eof
        chunk = b"" if eof else stream.read(READ_BYTES)
        eof = not chunk
        buf, pos = buf[pos:] + chunk, 0
        return not eof

    while True:
        while True:  # records end in CRLF CRLF; pass over any run of line breaks
            while pos < len(buf) and buf[pos] in b"\r\n":
                pos += 1
            if pos < len(buf) or not fill():
                break
        if pos == len(buf):
            return  # the stream ended between records
        while len(buf) - pos < 5 and fill():
            pass
        if not buf.startswith(b"WARC/", pos):  # say so before looking for the header's end
            raise _Malformed(f"it does not start with 'WARC/' but {buf[pos:pos + 20]!r}")
        end = buf.find(b"\r\n\r\n", pos)
        while end < 0:
            if len(buf) - pos > MAX_HEADER_BYTES:
                raise _Malformed(f"a header is longer than {MAX_HEADER_BYTES >> 10} KiB")
            if not fill():
                raise _Truncated("the file ends inside a record's header")
            end = buf.find(b"\r\n\r\n", pos)
        warc_type, languages, length = _parse_header(buf[pos:end])
        pos = end + 4
        if length > MAX_RECORD_BYTES:
            while len(buf) - pos < length:  # pass over it without holding it
                length -= len(buf) - pos
                pos = len(buf)
                if not fill():
                    raise _Truncated("the file ends inside a record")
            pos += length
            yield _Record(warc_type, languages, None)
            continue
        if len(buf) - pos < length:  # gather the rest in pieces: one join, not one a read
            pieces, have = [buf[pos:]], len(buf) - pos
            while have < length:
                chunk = b"" if eof else stream.read(READ_BYTES)
                if not chunk:
                    raise _Truncated("the file ends inside a record (Content-Length is larger)")
                pieces.append(chunk)
                have += len(chunk)
            buf, pos = b"".join(pieces), 0
        body = buf[pos : pos + length]
        pos += length
        yield _Record(warc_type, languages, body)


def _parse_header(header: bytes) -> tuple[str, str | None, int]:
    """(WARC-Type, the language header, Content-Length) of a header block."""
    lines = header.split(b"\r\n")
    fields: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon:
            if line[:1] in (b" ", b"\t"):  # a folded continuation line: not one we read
                continue
            raise _Malformed(f"a header line has no ':' ({line[:40]!r})")
        fields[name.strip().lower()] = value.strip()
    languages = fields.get(b"warc-identified-content-language")
    return (fields.get(b"warc-type", b"").decode("latin-1"),
            None if languages is None else languages.decode("latin-1"),
            _content_length(fields.get(b"content-length", b"")))


def _content_length(value: bytes) -> int:
    """A Content-Length header's value; _Malformed unless it is a decimal number of at most
    18 digits (an exabyte: a longer one is no real record's, and int() refuses one of
    over 4,300 digits with a ValueError)."""
    value = value.strip()
    if not value.isdigit() or len(value) > 18:
        raise _Malformed(f"a record has no valid Content-Length ({value[:20]!r}"
                         f"{f', {len(value):,} bytes' if len(value) > 20 else ''})")
    return int(value)


def _fastwarc_records(stream: BinaryIO) -> Iterator[_Record]:
    from fastwarc.warc import ArchiveIterator

    # stream_detect off: the caller already decompressed; fsspec off: never open a path.
    records = ArchiveIterator(cast(BinaryIO, _Told(stream)), parse_http=False, stream_detect=False,
                              fsspec_args=False)
    while True:
        try:
            record = next(records, None)
        except OSError as exc:  # fastwarc's parse errors (the stream's own are CorpusError)
            raise _Malformed(str(exc) or "a broken header") from None
        if record is None:
            return
        yield _checked(record.headers.get, record.content_length, record.reader)


class _Told:
    """The stream with a tell(): fastwarc 2 asks for it first and panics (a BaseException)
    when a stream cannot seek, as open_binary's cannot."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._pos += len(data)
        return data

    def tell(self) -> int:
        return self._pos


def _warcio_records(stream: BinaryIO) -> Iterator[_Record]:
    from warcio.archiveiterator import ArchiveIterator
    from warcio.exceptions import ArchiveLoadFailed

    # no_record_parse: each block as it is (a request record's HTTP headers included)
    records = iter(ArchiveIterator(stream, check_digests=False, no_record_parse=True))
    while True:
        try:
            record = next(records, None)
        except ArchiveLoadFailed as exc:
            raise _Malformed(str(exc).strip() or "a broken header") from None
        if record is None:
            return
        yield _checked(record.rec_headers.get_header, record.length, record.raw_stream)


def _checked(header: Any, length: int, reader: Any) -> _Record:
    """A library's record, refused where the libraries are lenient: both read a missing or
    bad Content-Length as 0 and hand out a truncated body as it is."""
    _content_length((header("Content-Length") or "").encode("utf-8", "backslashreplace"))
    body: bytes | None = None
    if length > MAX_RECORD_BYTES:
        got = 0
        while chunk := reader.read(DEFAULT_BLOCK_SIZE):
            got += len(chunk)
    else:
        body = reader.read()
        got = len(body)
    if got < length:
        raise _Truncated("the file ends inside a record (Content-Length is larger)")
    return _Record(header("WARC-Type") or "", header(LANGUAGE_HEADER), body)


_PARSERS = {"plain": _plain_records, "fastwarc": _fastwarc_records, "warcio": _warcio_records}

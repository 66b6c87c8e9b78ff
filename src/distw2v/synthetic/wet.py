"""Common Crawl-like WET files for tests and benchmarks: a warcinfo record, then one
'conversion' record (the page's text) per page, optionally gzip'd the way Common Crawl does
it (one gzip member per record). The output depends only on the arguments."""

from __future__ import annotations

import base64
import gzip
import hashlib
import random
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Literal

GzipMembers = Literal["per_record", "one", "grouped"]
GROUP_RECORDS = 3  # records per gzip member with gzip_members="grouped"
_EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)

# (language codes, weight) of write_wet_corpus's pages; None: no language header
_LANGUAGES: tuple[tuple[str | None, int], ...] = (
    ("eng", 50), ("deu", 12), ("fra", 10), ("spa", 8), ("eng,deu", 8), ("eng,fra", 5),
    (None, 7),
)
_MENU = "Home | About | Contact"
_COOKIES = "We use cookies to improve your experience. By using this site you accept cookies."


def _record_id(n: int) -> str:
    # Deterministic ids: the same arguments give the same bytes.
    return f"<urn:uuid:{uuid.UUID(int=n, version=4)}>"


def warc_record(warc_type: str, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> bytes:
    """One WARC/1.0 record: header lines, Content-Length, the body and the CRLF CRLF after
    it. `headers` come after WARC-Type; a bytes item of write_wet_file can be one of these."""
    lines = [b"WARC/1.0", f"WARC-Type: {warc_type}".encode()]
    lines += [f"{name}: {value}".encode() for name, value in headers]
    lines.append(f"Content-Length: {len(body)}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body + b"\r\n\r\n"


def _conversion(n: int, languages: str | None, text: str, uri_prefix: str) -> bytes:
    body = text.encode("utf-8")
    digest = base64.b32encode(hashlib.sha1(body).digest()).decode()
    headers = [
        ("WARC-Target-URI", f"{uri_prefix}{n}"),
        ("WARC-Date", (_EPOCH + timedelta(seconds=n)).strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("WARC-Record-ID", _record_id(2 * n + 1)),
        ("WARC-Refers-To", _record_id(2 * n + 2)),
        ("WARC-Block-Digest", f"sha1:{digest}"),
        ("Content-Type", "text/plain"),
    ]
    if languages is not None:
        headers.append(("WARC-Identified-Content-Language", languages))
    return warc_record("conversion", body, headers)


def _warcinfo(name: str) -> bytes:
    body = (b"isPartOf: distw2v-synthetic\r\npublisher: distw2v\r\n"
            b"format: WARC File Format 1.0\r\n")
    headers = [("WARC-Date", _EPOCH.strftime("%Y-%m-%dT%H:%M:%SZ")), ("WARC-Filename", name),
               ("WARC-Record-ID", _record_id(0)), ("Content-Type", "application/warc-fields")]
    return warc_record("warcinfo", body, headers)


def write_wet_file(path: str | Path, records: Iterable[tuple[str | None, str] | bytes], *,
                   gzip_members: GzipMembers = "per_record",
                   uri_prefix: str = "http://example.com/page") -> int:
    """Write a WET file: a warcinfo record, then a conversion record per (languages, text)
    item (languages like "eng" or "eng,deu", None for no language header). A bytes item is
    written as it is (a whole record from warc_record, e.g. a metadata record). A path
    ending in .gz is gzip'd with one member per record, one member for all, or
    GROUP_RECORDS records per member; any other path is plain. Returns the items written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    compress = path.suffix == ".gz"
    group = {"per_record": 1, "grouped": GROUP_RECORDS, "one": 0}[gzip_members]
    count = 0

    def blobs() -> Iterator[bytes]:
        nonlocal count
        yield _warcinfo(path.name)
        for item in records:
            count += 1
            yield item if isinstance(item, bytes) else _conversion(count, *item, uri_prefix)

    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "wb") as out:
        pending: list[bytes] = []
        for blob in blobs():
            pending.append(blob)
            if not compress or (group and len(pending) == group):
                out.write(_member(pending) if compress else blob)
                pending = []
        if pending:
            out.write(_member(pending))
    temp.replace(path)  # the file appears complete or not at all
    return count


def _member(blobs: list[bytes]) -> bytes:
    # mtime=0: the same records give the same gzip bytes.
    return gzip.compress(b"".join(blobs), compresslevel=6, mtime=0)


def write_wet_corpus(path: str | Path, text_lines: Iterable[str], target_bytes: int,
                     seed: int) -> int:
    """A large WET file for benchmarks: `text_lines` packed into pages of 20-80 lines with
    a seeded mix of languages, most pages also carrying a menu line and a cookie banner (the
    boilerplate that repeats across a crawl), until `target_bytes` of page text (UTF-8) or
    the lines run out. Returns the number of pages written."""
    rng = random.Random(seed)
    codes = [code for code, _ in _LANGUAGES]
    weights = [weight for _, weight in _LANGUAGES]
    lines = iter(text_lines)

    def pages() -> Iterator[tuple[str | None, str]]:
        written = 0
        while written < target_bytes:
            # range first: zip would otherwise drop the line after a full page
            page = [line.rstrip("\n") for _, line in zip(range(rng.randint(20, 80)), lines)]
            if not page:
                return
            if rng.random() < 0.8:
                page.insert(0, _MENU)
            if rng.random() < 0.6:
                page.append(_COOKIES)
            text = "\n".join(page)
            written += len(text.encode("utf-8"))
            yield rng.choices(codes, weights)[0], text

    return write_wet_file(path, pages())

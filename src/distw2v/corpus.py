"""Streaming corpus readers: URIs in, lists of tokens out, with bounded memory.

A source is a local path, a directory, a glob or any fsspec URL (``s3://``, ``https://``,
``hdfs://``, ``file://``); with a source policy active (see sources.py, the service's jobs)
only what it allows, parsed, expanded and opened as it checks them. Files are decompressed
by their magic bytes (gzip, bz2, xz, zstd), falling back to the file extension, and decoded
as UTF-8 with replacement.

Text is read in fixed-size blocks, never line by line, so memory stays bounded by the
block size even for a file with no newline at all: a line longer than a block is cut at
its last whitespace and its tokens are handed on in pieces of ``max_sentence_length``.
"""

from __future__ import annotations

import bz2
import codecs
import contextlib
import glob
import gzip
import io
import lzma
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, BinaryIO, cast

import numpy as np

from .config import VocabConfig
from .errors import CorpusError
from .sources import active_policy, expand_checked, open_checked

DEFAULT_BLOCK_SIZE = 1 << 20  # 1 MiB of decompressed bytes per read

# Magic bytes first, extension second: a gzip file named .txt is still read correctly.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_EXTENSIONS = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}

# Which package to install for the fsspec protocols people actually use.
_BACKENDS = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "http": "aiohttp",
    "https": "aiohttp",
    "hdfs": "pyarrow",
    "abfs": "adlfs",
    "az": "adlfs",
    "adl": "adlfs",
    "sftp": "paramiko",
    "ssh": "paramiko",
}
_BINARY_REPLACEMENT_RATIO = 0.1
# Over-long lines are tokenized in pieces of this many characters (bounds token objects).
_PIECE_SIZE = 1 << 16
_WHITESPACE = re.compile(r"\s")  # matches exactly what str.split() splits on


@dataclass
class CorpusStats:
    """Counters filled while reading (mutable, shared with progress bars)."""

    files: int = 0
    lines: int = 0
    tokens: int = 0  # tokens yielded, after tokenization
    invalid_utf8_lines: int = 0  # lines where invalid UTF-8 was replaced
    bytes_read: int = 0  # raw (compressed, on-storage) bytes consumed so far
    total_bytes: int | None = None  # sum of the source sizes when all are known
    decompressed_bytes: int = 0  # bytes handed out after decompression
    max_decompressed_bytes: int | None = None  # refuse to read past this (a zip bomb's end)


def describe_stats(stats: CorpusStats) -> str:
    """One-line human summary, e.g. '3 files, 12,345 lines, 1,234,567 tokens'."""
    text = (
        f"{_plural(stats.files, 'file')}, {_plural(stats.lines, 'line')}, "
        f"{_plural(stats.tokens, 'token')}"
    )
    if stats.invalid_utf8_lines:
        verb = "line had" if stats.invalid_utf8_lines == 1 else "lines had"
        text += f"; {stats.invalid_utf8_lines:,} {verb} invalid UTF-8 (replaced)"
    return text


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


# --------------------------------------------------------------------------- sources


def expand_sources(uris: Sequence[str] | str) -> list[str]:
    """Expand paths, directories, globs and URLs into a list of concrete files.

    Each source expands to its files in sorted order (directories recursively, skipping
    hidden files and folders); sources keep the order they were given in and a file named
    twice is read once. Raises CorpusError naming the source when it matches nothing or
    cannot be reached.
    """
    return [uri for uri, _ in _expand_with_sizes(uris)]


def input_splits(
    uris: Sequence[str] | str, split_bytes: int
) -> list[tuple[str, int, int | None]]:
    """The sources as (file, start, end) byte ranges that parallel readers can take apart.

    A file that is not compressed (by its name), is not fetched over HTTP, and is larger than
    `split_bytes` becomes ranges of about that size; any other file is one range (0, None).
    Each line belongs to the range it starts in (see `iter_sentences_in_range`).
    """
    if split_bytes < 1:
        raise CorpusError("split_bytes must be at least 1.")
    splits: list[tuple[str, int, int | None]] = []
    for uri, size in _expand_with_sizes(uris):
        name = uri.split("?", 1)[0] if "://" in uri else uri
        compressed = os.path.splitext(name)[1].lower() in _EXTENSIONS
        if size is None or size <= split_bytes or compressed or _protocol(uri) in (
                "http", "https"):
            splits.append((uri, 0, None))
        else:
            splits.extend((uri, start, min(start + split_bytes, size))
                          for start in range(0, size, split_bytes))
    return splits


def _expand_with_sizes(uris: Sequence[str] | str) -> list[tuple[str, int | None]]:
    if isinstance(uris, str):
        uris = [uris]
    if not uris:
        raise CorpusError("no corpus source was given.")
    out: dict[str, int | None] = {}
    policy = active_policy()
    for uri in uris:
        try:
            if policy is not None:  # checked as they will be opened (see sources.py)
                found = expand_checked(uri, policy)
            elif _protocol(uri) is None:  # a plain local path, not a URL
                found = _expand_local(uri)
            else:
                found = _expand_fsspec(uri)
        except CorpusError:
            raise
        except Exception as exc:  # any backend error: one sentence, not a traceback
            raise CorpusError(_describe_error(uri, exc)) from exc
        for path, size in found:
            out.setdefault(path, size)
    return list(out.items())


def _protocol(uri: str) -> str | None:
    import fsspec.core

    protocol, _ = fsspec.core.split_protocol(uri)
    return cast("str | None", protocol)


def _is_hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.replace("\\", "/").split("/"))


def _no_tick() -> None:
    pass


def _expand_local(uri: str, tick: Callable[[], None] = _no_tick) -> list[tuple[str, int | None]]:
    """`tick` is called for every entry seen, so a caller can bound a listing (it raises)."""
    path = os.path.expanduser(uri)
    if os.path.isfile(path):
        return [(path, os.path.getsize(path))]
    if os.path.isdir(path):
        files = _walk_local(path, tick)
        if not files:
            raise CorpusError(f"directory {uri} contains no files.")
        return files
    if glob.has_magic(path):
        files = []
        matches = []
        for match in glob.iglob(path, recursive=True):
            tick()
            matches.append(match)
        for match in sorted(matches):
            if os.path.isfile(match):
                files.append((match, os.path.getsize(match)))
            elif os.path.isdir(match):
                files.extend(_walk_local(match, tick))
        if not files:
            raise CorpusError(f"pattern {uri} matches no files.")
        return files
    raise CorpusError(f"{uri} does not exist.")


def _walk_local(root: str, tick: Callable[[], None] = _no_tick) -> list[tuple[str, int | None]]:
    files = []
    for folder, dirs, names in os.walk(root, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in names:
            tick()
            full = os.path.join(folder, name)
            if not name.startswith(".") and os.path.isfile(full):
                files.append((full, os.path.getsize(full)))
    return sorted(files)


def _expand_fsspec(uri: str) -> list[tuple[str, int | None]]:
    import fsspec.core

    fs, path = fsspec.core.url_to_fs(uri)
    protocol = _protocol(uri)
    # In an http(s) URL '?' starts the query string, it is no wildcard.
    pattern = path.split("?", 1)[0] if protocol in ("http", "https") else path
    if glob.has_magic(pattern):
        entries = fs.glob(path, detail=True)
        files: list[tuple[str, int | None]] = []
        for name in sorted(entries):
            if entries[name].get("type") == "directory":
                files.extend(_find_remote(fs, name))
            else:
                files.append((name, entries[name].get("size")))
        if not files:
            raise CorpusError(f"pattern {uri} matches no files.")
    else:
        info = fs.info(path)  # raises FileNotFoundError for a missing object
        if info.get("type") == "directory":
            files = _find_remote(fs, path)
            if not files:
                raise CorpusError(f"directory {uri} contains no files.")
        else:
            return [(uri, info.get("size"))]  # keep the URL exactly as given
    return [(fs.unstrip_protocol(name), size) for name, size in files]


def _find_remote(fs: Any, root: str) -> list[tuple[str, int | None]]:
    entries = fs.find(root, detail=True)
    prefix = root.rstrip("/") + "/"
    return [
        (name, entries[name].get("size"))
        for name in sorted(entries)
        if not _is_hidden(name[len(prefix) :] if name.startswith(prefix) else name)
    ]


def _describe_error(uri: str, exc: BaseException) -> str:
    """Turn any exception from fsspec or its backends into one sentence naming the source."""
    if isinstance(exc, ImportError):
        protocol = _protocol(uri) or "file"
        package = _BACKENDS.get(protocol)
        hint = f"install {package}" if package else str(exc).rstrip(".")
        return f"cannot read {uri}: the {protocol}:// protocol needs an extra package ({hint})."
    if isinstance(exc, FileNotFoundError):
        return f"{uri} does not exist."
    if isinstance(exc, PermissionError):
        return f"{uri} cannot be read: permission denied."
    if isinstance(exc, ValueError) and "protocol" in str(exc).lower():
        return f"cannot read {uri}: unknown protocol {(_protocol(uri) or '')!r}."
    detail = str(exc).strip().rstrip(".") or type(exc).__name__
    return f"cannot read {uri}: {detail}."


# --------------------------------------------------------------------------- binary


class _ReadBased(io.RawIOBase):
    """A readable raw stream whose subclasses only define read(); readinto() follows from it."""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Source(_ReadBased):
    """The raw stored bytes: counts them into stats and replays the peeked magic bytes."""

    def __init__(self, raw: Any, prefix: bytes, stats: CorpusStats | None) -> None:
        self._raw = raw
        self._prefix = prefix
        self._stats = stats
        self.observer: Callable[[bytes], None] | None = None  # sees every byte handed out
        if stats is not None:
            stats.bytes_read += len(prefix)

    def read(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        if 0 <= size < len(self._prefix):
            data, self._prefix = self._prefix[:size], self._prefix[size:]
        else:
            head, self._prefix = self._prefix, b""
            rest = size - len(head) if size >= 0 else -1
            data = self._raw.read(rest) if rest else b""
            if self._stats is not None:
                self._stats.bytes_read += len(data)
            if head:
                data = head + data
        if self.observer is not None:
            self.observer(data)
        return data

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _LineRange(_ReadBased):
    """The lines of a seekable file that start in bytes [start, end): from the first line
    start at or after `start` through the newline that ends the line holding byte end - 1.
    Ranges that tile a file therefore hand out each line exactly once (as Hadoop does)."""

    def __init__(self, raw: Any, start: int, end: int) -> None:
        self._raw = raw
        self._end = end
        self._buffer = b""
        self._done = False
        self._pos = max(start - 1, 0)  # file position of the next byte handed out
        raw.seek(self._pos)
        if start > 0:  # skip the line that started before us (just the newline at start - 1)
            while not self._done:
                data = raw.read(1 << 16)
                newline = data.find(b"\n")
                if not data:
                    self._done = True
                elif newline >= 0:
                    self._buffer = data[newline + 1 :]
                    self._pos += newline + 1
                    self._done = self._pos >= end  # the next line starts in the next range
                    break
                else:
                    self._pos += len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:  # all of it
            return b"".join(iter(lambda: self.read(DEFAULT_BLOCK_SIZE), b""))
        if self._done or size == 0:
            return b""
        want = size
        if self._buffer:
            data, self._buffer = self._buffer[:want], self._buffer[want:]
        else:
            data = self._raw.read(want)
        if not data:
            self._done = True
            return b""
        first = self._pos
        self._pos += len(data)
        look_from = max(self._end - 1 - first, 0)
        if look_from < len(data):
            newline = data.find(b"\n", look_from)
            if newline >= 0:  # it ends the line holding byte end - 1: the last one
                self._done = True
                return data[: newline + 1]
        return data

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


class _Checked(_ReadBased):
    """Decompressed bytes; any read failure (corrupt, truncated) becomes a CorpusError, and
    reading past `stats.max_decompressed_bytes` (counted over every file) stops."""

    def __init__(self, inner: Any, source: _Source, uri: str, stats: CorpusStats) -> None:
        self._inner = inner
        self._source = source
        self._uri = uri
        self._stats = stats

    def read(self, size: int | None = -1) -> bytes:
        try:
            data = cast(bytes, self._inner.read(-1 if size is None else size))
            stats, limit = self._stats, self._stats.max_decompressed_bytes
            stats.decompressed_bytes += len(data)
            if limit is not None and stats.decompressed_bytes > limit:
                raise CorpusError(f"the input is larger than the limit of {limit:,} "
                                  f"decompressed bytes; reading stopped in {self._uri}.")
            return data
        except CorpusError:
            raise
        except EOFError as exc:
            raise CorpusError(f"{self._uri} is truncated ({exc}).") from exc
        except Exception as exc:  # zlib.error, BadGzipFile, LZMAError, ZstdError, network errors
            detail = str(exc).strip().rstrip(".") or type(exc).__name__
            raise CorpusError(f"{self._uri} could not be read or decompressed ({detail}).") from exc

    def close(self) -> None:
        if not self.closed:
            try:
                self._inner.close()
            finally:
                self._source.close()
        super().close()


class _ZstdFrames:
    """Walks the frame and block headers of a zstd stream as its bytes go by.

    zstandard's stream_reader returns a clean EOF for a truncated file; this tells
    whether the stream really ended at a frame boundary, at the cost of a few header
    reads per 128 KiB block.
    """

    _MAGIC, _HEADER, _BLOCK, _SKIP_SIZE = range(4)

    def __init__(self) -> None:
        self._state = self._MAGIC
        self._need = 4  # header bytes wanted in this state
        self._buf = b""
        self._skip = 0  # content bytes to pass over before the next header
        self._checksum = False
        self.broken = False  # not zstd at all: the decompressor reports that itself

    def complete(self) -> bool:
        return self.broken or (self._state == self._MAGIC and not self._buf and not self._skip)

    def feed(self, data: bytes) -> None:
        pos, end = 0, len(data)
        while pos < end and not self.broken:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            take = self._need - len(self._buf)
            self._buf += data[pos : pos + take]
            pos += take
            if len(self._buf) == self._need:
                header, self._buf = self._buf, b""
                self._advance(header)

    def _advance(self, header: bytes) -> None:
        if self._state == self._MAGIC:
            magic = int.from_bytes(header, "little")
            if magic == 0xFD2FB528:
                self._state, self._need = self._HEADER, 1
            elif magic & 0xFFFFFFF0 == 0x184D2A50:  # skippable frame
                self._state, self._need = self._SKIP_SIZE, 4
            else:
                self.broken = True
        elif self._state == self._SKIP_SIZE:
            self._state, self._need = self._MAGIC, 4
            self._skip = int.from_bytes(header, "little")
        elif self._state == self._HEADER:
            descriptor = header[0]
            single_segment = bool(descriptor & 0x20)
            self._checksum = bool(descriptor & 0x04)
            content_size = (1 if single_segment else 0, 2, 4, 8)[descriptor >> 6]
            dict_id = (0, 1, 2, 4)[descriptor & 0x03]
            self._skip = (0 if single_segment else 1) + dict_id + content_size
            self._state, self._need = self._BLOCK, 3
        else:  # a block header: last-block bit, type (raw, RLE, compressed), size
            value = int.from_bytes(header, "little")
            kind, size = (value >> 1) & 0x03, value >> 3
            self._skip = 1 if kind == 1 else size
            if value & 1:
                self._skip += 4 if self._checksum else 0
                self._state, self._need = self._MAGIC, 4


class _ZstdReader:
    """zstd decompression with bounded output per read, which also reports truncation."""

    def __init__(self, source: _Source) -> None:
        import zstandard

        self._frames = _ZstdFrames()
        source.observer = self._frames.feed
        # read_across_frames: files written by pzstd or concatenated are multi-frame.
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            cast(BinaryIO, source), read_across_frames=True
        )

    def read(self, size: int = -1) -> bytes:
        data: bytes = self._reader.read(size)
        if not data and size != 0 and not self._frames.complete():
            raise EOFError("the zstd stream ends in the middle of a frame")
        return data

    def close(self) -> None:
        self._reader.close()


def _open_fsspec(uri: str) -> Any:
    try:
        import fsspec

        options: dict[str, Any] = {}
        if _protocol(uri) in ("http", "https"):
            # A streaming GET: we read front to back anyway, and it works with servers
            # that ignore Range requests (fsspec's default random-access file needs them).
            options["block_size"] = 0
        local = os.path.expanduser(uri) if "://" not in uri else uri
        return fsspec.open(local, "rb", **options).open()
    except Exception as exc:
        raise CorpusError(_describe_error(uri, exc)) from exc


def _compression(uri: str, magic: bytes) -> str | None:
    for signature, kind in _MAGIC:
        if magic.startswith(signature):
            return kind
    name = uri.split("?", 1)[0] if "://" in uri else uri
    return _EXTENSIONS.get(os.path.splitext(name)[1].lower())


@contextlib.contextmanager
def open_binary(
    uri: str, stats: CorpusStats | None = None, byte_range: tuple[int, int] | None = None
) -> Iterator[BinaryIO]:
    """Open one file (path or fsspec URL) and yield its decompressed bytes.

    Compression is detected by magic bytes, then by extension. Raw bytes read are added
    to ``stats.bytes_read``. Open and read failures raise CorpusError naming ``uri``.
    With `byte_range` (start, end) only the lines starting in it are read; a compressed
    file cannot be cut, so the range starting at 0 reads all of it and the others nothing.
    """
    policy = active_policy()
    if stats is None:
        stats = CorpusStats()  # still counts decompressed bytes against the limit
    if policy is not None:
        if stats.max_decompressed_bytes is None:
            stats.max_decompressed_bytes = policy.max_input_bytes
        raw: Any = open_checked(uri, policy)  # checked as it is opened (see sources.py)
    else:
        raw = _open_fsspec(uri)
    try:
        magic = b""
        while len(magic) < 6:  # a network stream may return fewer bytes than asked
            more = raw.read(6 - len(magic))
            if not more:
                break
            magic += more
    except Exception as exc:
        raw.close()
        raise CorpusError(_describe_error(uri, exc)) from exc
    kind = _compression(uri, magic)
    if byte_range is not None:
        start, end = byte_range
        try:
            if kind is None:
                raw, magic = _LineRange(raw, start, end), b""
            elif start > 0:  # nothing here: the range at 0 reads the whole file
                raw.close()
                raw, magic, kind = io.BytesIO(b""), b"", None
        except Exception as exc:
            raw.close()
            raise CorpusError(_describe_error(uri, exc)) from exc
    source = _Source(raw, magic, stats)
    fileobj = cast(BinaryIO, source)
    inner: Any
    try:
        if kind == "gzip":
            inner = gzip.GzipFile(fileobj=fileobj, mode="rb")
        elif kind == "bz2":
            inner = bz2.BZ2File(fileobj, mode="rb")
        elif kind == "xz":
            inner = lzma.LZMAFile(fileobj, mode="rb")
        elif kind == "zstd":
            inner = _ZstdReader(source)
        else:
            inner = source
    except Exception as exc:
        source.close()
        raise CorpusError(_describe_error(uri, exc)) from exc
    stream = _Checked(inner, source, uri, stats)
    try:
        yield cast(BinaryIO, stream)
    finally:
        stream.close()


# --------------------------------------------------------------------------- text


@cache
def _code_points() -> tuple[list[int], list[int]]:
    """All punctuation (category P*) and all decimal digit (Nd) code points (~0.3 s once)."""
    punctuation, digits = [], []
    for cp in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(cp))
        if category[0] == "P":
            punctuation.append(cp)
        elif category == "Nd":
            digits.append(cp)
    return punctuation, digits


@cache
def _strip_tables(punctuation: bool, digits: bool) -> tuple[dict[int, None], np.ndarray]:
    """Code points to delete: a str.translate table and a boolean lookup array."""
    all_punctuation, all_digits = _code_points()
    codes = (all_punctuation if punctuation else []) + (all_digits if digits else [])
    drop = np.zeros(sys.maxunicode + 1, dtype=bool)
    drop[codes] = True
    return dict.fromkeys(codes), drop


def _make_transform(config: VocabConfig) -> Callable[[str], str] | None:
    """Normalization applied to whole chunks of text before the whitespace split.

    Deleting characters that are never whitespace (P*, Nd) before splitting gives the
    same tokens as deleting them from each token and dropping the empty ones, and is
    much faster. Chunks always end at whitespace, so lower() sees whole tokens.
    """
    lower = config.lowercase
    if not (config.strip_punctuation or config.strip_digits):
        return str.lower if lower else None
    table, drop = _strip_tables(config.strip_punctuation, config.strip_digits)

    def transform(text: str) -> str:
        if lower:
            text = text.lower()
        if text.isascii():  # O(1) check; translate has a fast path for ASCII
            return text.translate(table)
        # str.translate is ~15 MB/s on non-ASCII text; a lookup array is ~10x faster.
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        return codes[~drop[codes]].tobytes().decode("utf-32-le")

    return transform


def _decode(data: bytes, final: bool) -> tuple[str, int, bool]:
    """Decode UTF-8, leaving an incomplete trailing sequence unconsumed unless final.

    Returns (text, bytes consumed, whether invalid bytes were replaced). Strict first,
    because it is the common case and tells us cheaply that nothing was replaced.
    """
    try:
        text, used = codecs.utf_8_decode(data, "strict", final)
        return text, used, False
    except UnicodeDecodeError:
        text, used = codecs.utf_8_decode(data, "replace", final)
        return text, used, True


def iter_sentences(
    uris: Sequence[str] | str,
    config: VocabConfig,
    stats: CorpusStats | None = None,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
) -> Iterator[list[str]]:
    """Yield one list of tokens per line of every source file, in order.

    Sources are expanded (and missing ones reported) before the first sentence. Lines
    longer than ``config.max_sentence_length`` tokens are cut into pieces; empty lines
    yield nothing. Memory is bounded by ``block_size`` whatever the line lengths.
    """
    if block_size < 16:
        raise CorpusError("block_size must be at least 16 bytes.")
    files = _expand_with_sizes(uris)
    if stats is None:
        stats = CorpusStats()
    sizes = [size for _, size in files]
    stats.total_bytes = None if None in sizes else sum(cast(list[int], sizes))
    return _iter_files([uri for uri, _ in files], config, stats, block_size)


def iter_sentences_in_range(
    uri: str, start: int, end: int | None, config: VocabConfig,
    stats: CorpusStats | None = None,
) -> Iterator[list[str]]:
    """The sentences of the lines of `uri` that start in bytes [start, end) (a split from
    `input_splits`; end None: the whole file), cut and transformed as by iter_sentences."""
    byte_range = None if end is None else (start, end)
    return _iter_file(uri, config.max_sentence_length, _make_transform(config),
                      stats or CorpusStats(), DEFAULT_BLOCK_SIZE, byte_range)


def _iter_files(
    files: list[str], config: VocabConfig, stats: CorpusStats, block_size: int
) -> Iterator[list[str]]:
    transform = _make_transform(config)
    for uri in files:
        yield from _iter_file(uri, config.max_sentence_length, transform, stats, block_size)


def _iter_file(
    uri: str,
    max_len: int,
    transform: Callable[[str], str] | None,
    stats: CorpusStats,
    block_size: int,
    byte_range: tuple[int, int] | None = None,
) -> Iterator[list[str]]:
    piece_size = min(block_size, _PIECE_SIZE)
    with open_binary(uri, stats, byte_range) as stream:
        stats.files += 1
        undecoded = b""  # at most 3 bytes of a character split across blocks
        carry = ""  # text after the last newline seen, not yet transformed
        carry_dirty = False  # carry holds text from a block with invalid UTF-8
        partial = False  # the current line already had tokens moved to `pending`
        partial_bad = False  # ... and those contained replaced bytes
        pending: list[str] = []  # tokens of the current line, fewer than max_len
        first = True
        while True:
            block = stream.read(block_size)
            final = not block
            if undecoded:
                block = undecoded + block
            text, used, replaced = _decode(block, final)
            undecoded = block[used:]
            if first:
                first = False
                _check_text(uri, block, text)
                if text.startswith("\ufeff"):  # byte-order mark
                    text = text[1:]
            del block  # free the raw bytes before tokenizing
            dirty = replaced or carry_dirty
            if carry:
                text = carry + text
            newline = text.rfind("\n")
            if final:
                body, carry = text, ""
            elif newline >= 0:
                body, carry = text[:newline], text[newline + 1 :]
            else:
                body, carry = None, text
            text = ""
            if body is not None and (body or not final or partial):
                if transform is not None:
                    body = transform(body)
                lines = body.split("\n")
                del body
                stats.lines += len(lines)
                if dirty:
                    stats.invalid_utf8_lines += sum(1 for line in lines if "\ufffd" in line)
                if partial:
                    # The first line completes one whose head was already tokenized.
                    if partial_bad and not (dirty and "\ufffd" in lines[0]):
                        stats.invalid_utf8_lines += 1
                    end = len(lines[0])
                    for chunk in _feed(pending, lines[0], end, None, max_len, piece_size):
                        stats.tokens += len(chunk)
                        yield chunk
                    if pending:
                        stats.tokens += len(pending)
                        yield pending
                    pending, partial, partial_bad = [], False, False
                    lines[0] = ""
                for line in lines:
                    tokens = line.split()
                    if not tokens:
                        continue
                    n = len(tokens)
                    stats.tokens += n
                    if n <= max_len:
                        yield tokens
                    else:
                        for start in range(0, n, max_len):
                            yield tokens[start : start + max_len]
                del lines
            if len(carry) >= block_size:
                # A line longer than a block: tokenize all but its last (maybe cut) token.
                end = _last_token_start(carry, block_size)
                if end:
                    partial = True
                    if dirty and "\ufffd" in carry[:end]:
                        partial_bad = True
                    for chunk in _feed(pending, carry, end, transform, max_len, piece_size):
                        stats.tokens += len(chunk)
                        yield chunk
                    carry = carry[end:]
            carry_dirty = dirty and "\ufffd" in carry
            if final:
                break


def _check_text(uri: str, block: bytes, text: str) -> None:
    # A denominator of at least 64 keeps a tiny Latin-1 file from being called binary.
    replaced = text.count("\ufffd")
    if b"\x00" in block or replaced > _BINARY_REPLACEMENT_RATIO * max(len(text), 64):
        raise CorpusError(f"{uri} does not look like text (binary data?).")


def _token_start(text: str) -> int:
    """Index where the last token of `text` begins, or -1 if `text` has no whitespace.

    `text` must not end with whitespace.
    """
    parts = text.rsplit(None, 1)
    if len(parts) == 2 or len(parts[0]) < len(text):  # rsplit drops leading whitespace
        return len(text) - len(parts[-1])
    return -1


def _last_token_start(carry: str, block_size: int) -> int:
    """Where the unfinished last token of an over-long partial line begins.

    Everything before that index is complete tokens. A token longer than a block is
    cut (the whole carry is returned as complete).
    """
    if carry[-1].isspace():
        return len(carry)
    start = _token_start(carry[-_PIECE_SIZE:])  # look at the tail first: no big copy
    if start >= 0:
        return len(carry) - min(len(carry), _PIECE_SIZE) + start
    start = _token_start(carry)
    if start < 0 or len(carry) - start > block_size:
        return len(carry)
    return start


def _feed(
    pending: list[str],
    text: str,
    stop: int,
    transform: Callable[[str], str] | None,
    max_len: int,
    piece_size: int,
) -> Iterator[list[str]]:
    """Tokenize text[:stop] into `pending`, yielding every full sentence of max_len tokens.

    The text is split in pieces of about `piece_size` characters ending at whitespace, so
    only a bounded number of token objects exist at once however long the line is.
    `stop` must be at a token boundary.
    """
    start = 0
    while start < stop:
        end = start + piece_size
        if end >= stop:
            end = stop
        elif not (text[end - 1].isspace() or text[end].isspace()):
            token = _token_start(text[start:end])
            if token > 0:
                end = start + token  # the token cut by the window goes to the next piece
            else:  # a token longer than a piece: keep it whole
                match = _WHITESPACE.search(text, end, stop)
                end = match.start() if match else stop
        piece = text[start:end]
        start = end
        if transform is not None:
            piece = transform(piece)
        pending.extend(piece.split())
        if len(pending) >= max_len:
            full = len(pending) - len(pending) % max_len
            for i in range(0, full, max_len):
                yield pending[i : i + max_len]
            del pending[:full]

"""Opening a file as a stream of decompressed bytes: local or fsspec, through the source
policy when one is active, decompressed by magic bytes (gzip, bz2, xz, zstd; the extension
is the fallback), and byte ranges of uncompressed files cut at line boundaries."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import io
import lzma
import os
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, cast

from ..config import ZSTD_LONG_WINDOW_LOG, ZSTD_WINDOW_LOG
from ..errors import CorpusError
from .listing import _describe_error, _protocol
from .policy import active_policy, open_checked
from .stats import CorpusStats

DEFAULT_BLOCK_SIZE = 1 << 20  # 1 MiB of decompressed bytes per read


# Magic bytes first, extension second: a gzip file named .txt is still read correctly.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)


_EXTENSIONS = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".xz": "xz", ".zst": "zstd"}


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

    _MAGIC, _HEADER, _HEADER_REST, _BLOCK, _SKIP_SIZE = range(5)

    def __init__(self) -> None:
        self._state = self._MAGIC
        self._need = 4  # header bytes wanted in this state
        self._buf = b""
        self._skip = 0  # content bytes to pass over before the next header
        self._checksum = False
        self._single_segment = False
        self._content_size = 0  # bytes of the frame header's content size field
        self.window = 0  # the largest window a frame declared so far
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
            self._single_segment = bool(descriptor & 0x20)
            self._checksum = bool(descriptor & 0x04)
            self._content_size = (1 if self._single_segment else 0, 2, 4, 8)[descriptor >> 6]
            dict_id = (0, 1, 2, 4)[descriptor & 0x03]
            # the window descriptor, dictionary id and content size: at least one byte
            self._state = self._HEADER_REST
            self._need = (0 if self._single_segment else 1) + dict_id + self._content_size
        elif self._state == self._HEADER_REST:
            if self._single_segment:  # the window is the content's size
                size = int.from_bytes(header[len(header) - self._content_size :], "little")
                window = size + 256 if self._content_size == 2 else size
            else:  # RFC 8878 3.1.1.1.2: an exponent and eighths of it
                base = 1 << (10 + (header[0] >> 3))
                window = base + (base >> 3) * (header[0] & 0x07)
            self.window = max(self.window, window)
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

    def __init__(self, source: _Source, uri: str, window_log: int) -> None:
        import zstandard

        self._frames = _ZstdFrames()
        source.observer = self._frames.feed
        self._uri, self._window_log, self._error = uri, window_log, zstandard.ZstdError
        # read_across_frames: files written by pzstd or concatenated are multi-frame.
        # max_window_size: the decoder allocates the window a frame declares, up to 2 GiB
        # (zstd --long=31, Pushshift's Reddit dumps); a few KB can declare it, so it is
        # refused past the limit a setting gives.
        self._reader = zstandard.ZstdDecompressor(max_window_size=1 << window_log).stream_reader(
            cast(BinaryIO, source), read_across_frames=True
        )

    def read(self, size: int = -1) -> bytes:
        try:
            data: bytes = self._reader.read(size)
        except self._error:
            if self._frames.window > 1 << self._window_log:
                raise CorpusError(self._too_large()) from None
            raise
        if not data and size != 0 and not self._frames.complete():
            raise EOFError("the zstd stream ends in the middle of a frame")
        return data

    def _too_large(self) -> str:
        window, need = self._frames.window, (self._frames.window - 1).bit_length()
        what = (f"{self._uri} declares a zstd window of {_size(window)}, over the "
                f"{_size(1 << self._window_log)} allowed: ")
        if need > ZSTD_LONG_WINDOW_LOG:
            return what + f"no zstd decoder reads one over {_size(1 << ZSTD_LONG_WINDOW_LOG)}."
        return what + (f"raise --zstd-window-log (the vocab setting zstd_window_log) to "
                       f"{need} to read it.")

    def close(self) -> None:
        self._reader.close()


def _size(n: int) -> str:
    """Bytes in words: '2 GiB', '160 MiB', '1 KiB'."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):,.4g} {unit}"
    return f"{n} bytes"


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
    uri: str, stats: CorpusStats | None = None, byte_range: tuple[int, int] | None = None,
    zstd_window_log: int = ZSTD_WINDOW_LOG,
) -> Iterator[BinaryIO]:
    """Open one file (path or fsspec URL) and yield its decompressed bytes.

    Compression is detected by magic bytes, then by extension. Raw bytes read are added
    to ``stats.bytes_read``. Open and read failures raise CorpusError naming ``uri``.
    With `byte_range` (start, end) only the lines starting in it are read; a compressed
    file cannot be cut, so the range starting at 0 reads all of it and the others nothing.
    A zstd frame may declare a window of at most 2**zstd_window_log bytes.
    """
    policy = active_policy()
    if stats is None:
        stats = CorpusStats()  # still counts decompressed bytes against the limit
    if policy is not None:
        if stats.max_decompressed_bytes is None:
            stats.max_decompressed_bytes = policy.max_input_bytes
        raw: Any = open_checked(uri, policy)  # checked as it is opened (see policy.py)
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
            inner = _ZstdReader(source, uri, zstd_window_log)
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


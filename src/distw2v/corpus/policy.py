"""Which sources a reader may open, checked as they will be opened.

A `SourcePolicy` (the training service's, for its jobs) says which local roots, https
addresses, S3 buckets and HDFS namenodes may be read. Every source is parsed into exactly one
protocol and one path, the way it will then be opened, and never handed to fsspec whole:
fsspec reads `a::b` as a chain of filesystems, `simplecache::`, `zip://`, `memory://` as
filesystems of their own, and resolves https host names again when it connects.

With a policy active (`SourcePolicy.installed()` puts it in the environment, so Spark executors
started from the process inherit it), the corpus reader expands and opens sources only
through `expand_checked` and `open_checked`: local files by their real path (checked again
on the open descriptor), https through `pinned`, s3/hdfs with fsspec on the one protocol.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast
from urllib.parse import urlsplit

from .. import pinned
from ..errors import CorpusError, Distw2vError
from ..pinned import InvalidSource, SourceError
from .listing import _describe_error, _expand_fsspec, _expand_local

ENV_VAR = "DISTW2V_SOURCE_POLICY"  # the active policy, as JSON (read by Spark executors too)
MAX_SOURCE_CHARS = 4096
# fsspec filesystems that may wrap an allowed source when chaining is enabled: they read
# only from the filesystem after them in the chain.
CHAIN_WRAPPERS = ("zip", "tar", "simplecache", "blockcache")
_SCHEMES = "use a local path, s3://, https:// or hdfs://"

Protocol = Literal["file", "https", "s3", "hdfs"]
_IPV6_AUTHORITY = re.compile(r"[a-z][a-z0-9+.-]*://\[[0-9a-f:.%]*\]", re.IGNORECASE)
_OPEN_BRACKET = re.compile(r"[a-z][a-z0-9+.-]*://\[", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class SourcePolicy:
    """What a reader may open. Roots are absolute, resolved directories."""

    roots: tuple[str, ...] = ()
    allow_private_https: bool = False
    buckets: tuple[str, ...] = ()
    namenodes: tuple[str, ...] = ()  # 'host' (any port) or 'host:port'
    allow_chaining: bool = False
    max_input_bytes: int | None = None  # decompressed bytes of one pass over the sources
    max_files: int = 100_000  # files (and directory entries) one source may expand to
    listing_seconds: float = 30.0  # time one source's local listing may take

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SourcePolicy:
        try:
            values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                                      for k, v in json.loads(text).items()}
            return cls(**values)
        except (ValueError, TypeError) as exc:
            raise Distw2vError(f"the source policy in ${ENV_VAR} is not valid ({exc}).") from None

    @contextmanager
    def installed(self) -> Iterator[None]:
        """The active policy of this process, and of the processes it starts, meanwhile."""
        before = os.environ.get(ENV_VAR)
        os.environ[ENV_VAR] = self.to_json()
        try:
            yield
        finally:
            if before is None:
                os.environ.pop(ENV_VAR, None)
            else:
                os.environ[ENV_VAR] = before


def active_policy() -> SourcePolicy | None:
    """The policy in the environment, or None: then sources are opened as given."""
    text = os.environ.get(ENV_VAR)
    return _parsed_policy(text) if text else None


@cache
def _parsed_policy(text: str) -> SourcePolicy:
    return SourcePolicy.from_json(text)


@dataclass(frozen=True)
class Source:
    """One source as it will be opened: `path` is the local path, the https URL, the S3
    'bucket/key' or the HDFS path; `host` the S3 bucket or HDFS namenode."""

    protocol: Protocol
    path: str
    host: str = ""
    chain: str | None = None  # the whole '::' chain, when chaining is enabled

    @property
    def url(self) -> str:
        if self.chain is not None:
            return self.chain
        if self.protocol == "s3":
            return f"s3://{self.path}"
        if self.protocol == "hdfs":
            return f"hdfs://{self.host}{self.path}"
        return self.path


# --- parsing -----------------------------------------------------------------------------------


def _check_characters(source: str) -> None:
    if len(source) > MAX_SOURCE_CHARS:
        raise InvalidSource(f"a source is longer than {MAX_SOURCE_CHARS:,} characters.")
    for char in source:
        category = unicodedata.category(char)
        if category in ("Cc", "Zl", "Zp"):
            raise InvalidSource(f"the source {source!r} contains a control character "
                                f"({char!r}); name a path or URL without one.")
        if category == "Cs":  # a lone surrogate (JSON allows it) names no path or URL
            raise InvalidSource(f"the source {source!r} contains a lone surrogate "
                                f"({char!r}), which is not text.")


def parse_source(source: str, policy: SourcePolicy) -> Source:
    """The one protocol and path `source` names, refusing what the policy does not allow
    (checks that need the file system or the network come later)."""
    _check_characters(source)
    if _chained(source):
        return _parse_chain(source, policy)
    if "://" not in source:
        return _local(source, source, policy)
    scheme, rest = source.split("://", 1)
    scheme = scheme.lower()
    if scheme == "file":
        if not rest.startswith("/"):
            raise SourceError(f"{source} names a host; a file:// URL must be file:///PATH.")
        return _local(source, rest, policy)
    if scheme == "http":
        raise SourceError(f"{source} uses plain http; use https.")
    if scheme == "https":
        return Source("https", source, pinned.parse_https(source).host)
    if scheme in ("s3", "s3a"):
        return _s3(source, rest, policy)
    if scheme == "hdfs":
        return _hdfs(source, policy)
    raise SourceError(f"{source} has the unsupported scheme {scheme!r}; {_SCHEMES}.")


def _chained(source: str) -> bool:
    """Whether `source` has fsspec's '::' outside an IPv6 literal such as https://[::1]/."""
    literal = _IPV6_AUTHORITY.match(source)
    if literal is None and _OPEN_BRACKET.match(source):
        return False  # '[' never closed: the URL parser refuses it in one sentence
    return "::" in (source[literal.end():] if literal else source)


def _local(source: str, path: str, policy: SourcePolicy) -> Source:
    if not policy.roots:
        raise SourceError(f"local path {source} is not accepted: this server has no allowed "
                          "roots (start it with --allowed-roots).")
    if not os.path.isabs(path):
        raise SourceError(f"local path {source} must be absolute.")
    return Source("file", path)


def _s3(source: str, rest: str, policy: SourcePolicy) -> Source:
    bucket, _, key = rest.partition("/")
    if not policy.buckets:
        raise SourceError(f"{source} is refused: this server reads no S3 bucket (start it "
                          "with --allowed-bucket NAME).")
    if bucket not in policy.buckets:
        raise SourceError(f"{source} names the bucket {bucket!r}, which this server does not "
                          "read (see --allowed-bucket).")
    if not key:
        raise SourceError(f"{source} names no object or prefix in the bucket.")
    if any(part in (".", "..") for part in key.split("/")):
        # a store or proxy that normalises the request path would leave the bucket
        raise SourceError(f"{source} has a '.' or '..' segment; name the object directly.")
    return Source("s3", f"{bucket}/{key}", bucket)


def _hdfs(source: str, policy: SourcePolicy) -> Source:
    try:
        parts = urlsplit(source)
        host, port = (parts.hostname or "").lower(), parts.port
    except ValueError as exc:
        raise InvalidSource(f"{source} is not a valid URL ({exc}).") from None
    if not host:
        raise SourceError(f"{source} names no namenode; write hdfs://HOST:PORT/PATH.")
    if parts.username is not None or parts.query or parts.fragment:
        raise SourceError(f"{source} must be hdfs://HOST:PORT/PATH, with no user, query or "
                          "fragment.")
    node = f"{host}:{port}" if port else host
    allowed = {n.lower() for n in policy.namenodes}
    if host not in allowed and node not in allowed:
        raise SourceError(f"{source} names the namenode {node!r}, which this server does not "
                          "read (see --allowed-namenode).")
    return Source("hdfs", parts.path or "/", node)


def _parse_chain(source: str, policy: SourcePolicy) -> Source:
    if not policy.allow_chaining:
        raise SourceError(f"{source} chains filesystems with '::', which this server does not "
                          "allow (see --allow-fsspec-chaining).")
    *wrappers, last = source.split("::")
    for wrapper in wrappers:
        protocol = wrapper.split("://", 1)[0].lower() if "://" in wrapper else wrapper.lower()
        if protocol not in CHAIN_WRAPPERS:
            raise SourceError(f"{source} chains {protocol!r}; only "
                              f"{', '.join(CHAIN_WRAPPERS)} may wrap a source.")
    inner = parse_source(last, replace(policy, allow_chaining=False))
    if inner.protocol == "https":
        raise SourceError(f"{source} chains an https source; https sources cannot be chained.")
    return Source(inner.protocol, inner.path, inner.host, chain=source)


# --- checks on the file system -------------------------------------------------------------------


def _under(path: Path, roots: Sequence[str]) -> bool:
    return any(path == Path(root) or Path(root) in path.parents for root in roots)


def _static_prefix(pattern: str) -> str:
    """The part of a glob pattern before its first wildcard component."""
    import glob

    kept: list[str] = []
    for part in Path(pattern).parts:
        if glob.has_magic(part):
            break
        kept.append(part)
    return os.path.join(*kept) if kept else "/"


def check_local_file(source: str, name: str, policy: SourcePolicy) -> str:
    """The real path of `name` (a file `source` expanded to), refused outside the roots."""
    real = os.path.realpath(name)
    if not _under(Path(real), policy.roots):
        link = _link_out(name, policy.roots)
        if name == source or name == Path(source).as_posix() or link is None:
            raise SourceError(f"local path {source} is outside the allowed roots.")
        # the link, which lies inside a root, never what it leads to or what lies there
        raise SourceError(f"local path {source} goes through {link}, a link that leads "
                          "outside the allowed roots.")
    return real


def _link_out(name: str, roots: Sequence[str]) -> str | None:
    """The first leading part of `name` that resolves outside the roots after a part that
    resolved inside one (so it is itself a name under a root), or None."""
    parts, inside = Path(name).parts, False
    for end in range(1, len(parts) + 1):
        part = os.path.join(*parts[:end])
        now = _under(Path(os.path.realpath(part)), roots)
        if inside and not now:
            return part
        inside = now
    return None


_clock = time.monotonic  # what a Budget reads, unless given its own clock
MAX_LOOKUPS = 32  # distinct https host names one request may make the server resolve


class Budget:
    """Bounds the listings of one request (or one job) together, not one source at a time:
    the entries they visit, their time (when `timed`) and their DNS look-ups. A request that
    names one large directory a thousand times gets one listing's worth."""

    def __init__(self, policy: SourcePolicy, timed: bool = True,
                 clock: Callable[[], float] | None = None) -> None:
        clock = clock or _clock
        self.left = policy.max_files
        self.limit = policy.max_files
        self.seconds = policy.listing_seconds
        self.clock = clock
        self.deadline = clock() + policy.listing_seconds if timed else float("inf")
        self.resolved: dict[tuple[str, int], list[str]] = {}

    def tick(self, entries: int = 1) -> None:
        self.left -= entries
        if self.left < 0:
            raise CorpusError(f"the sources name more than {self.limit:,} files (the server's "
                              "--max-source-files); name fewer.")
        if self.clock() > self.deadline:
            raise CorpusError(f"listing the sources took longer than {self.seconds:g} s (the "
                              "server's --source-listing-seconds); name fewer files.")

    def resolve(self, url: str, allow_private: bool) -> list[str]:
        """`pinned.resolve` once per host name and port, at most MAX_LOOKUPS names."""
        target = pinned.parse_https(url)
        key = (target.host.lower(), target.port)
        if key not in self.resolved:
            self.tick(0)
            if len(self.resolved) >= MAX_LOOKUPS:
                raise CorpusError(f"the sources name more than {MAX_LOOKUPS} https hosts; "
                                  "name fewer.")
            self.resolved[key] = pinned.resolve(target, allow_private)
        return self.resolved[key]


def expand_checked(uri: str, policy: SourcePolicy, timed: bool = False,
                   budget: Budget | None = None) -> list[tuple[str, int | None]]:
    """The files of one source with their sizes (None: unknown), each checked; a listing is
    bounded by the policy's file count, and `timed` (in a request thread) by its time too;
    `budget` is shared by all the sources of one request."""
    # corpus owns listing (hidden files, sort order); this module only bounds and checks it

    source = parse_source(uri, policy)
    if source.chain is not None or source.protocol == "https":
        if source.protocol == "https":
            (budget or Budget(policy, timed)).resolve(uri, policy.allow_private_https)
        else:
            _check_opened_target(source, policy)
        return [(uri, None)]  # one file: an https URL is never a listing or a glob
    budget = budget or Budget(policy, timed)
    if source.protocol == "file":
        prefix = _static_prefix(source.path)
        if not _under(Path(os.path.realpath(prefix)), policy.roots):
            raise SourceError(f"local path {uri} is outside the allowed roots.")
        try:
            found = _expand_local(source.path, budget.tick)
        except OSError as exc:  # a file vanished or unreadable while listing
            raise CorpusError(_describe_error(uri, exc)) from exc
        for name, _ in found:
            check_local_file(uri, name, policy)
        return found
    try:
        found = _expand_fsspec(source.url)
    except CorpusError:
        raise
    except Exception as exc:  # any backend error: one sentence, not a traceback
        raise CorpusError(_describe_error(uri, exc)) from exc
    budget.tick(len(found))
    checked = []
    for name, size in found:
        if source.protocol == "hdfs" and not name.startswith(f"hdfs://{source.host}/"):
            name = f"hdfs://{source.host}/{name.split('://', 1)[-1].lstrip('/')}"
        again = parse_source(name, policy)
        if again.protocol != source.protocol or again.host != source.host:
            raise SourceError(f"{uri} lists {name}, which lies outside its bucket.")
        checked.append((name, size))
    return checked


def _check_opened_target(source: Source, policy: SourcePolicy) -> None:
    if source.protocol == "file":
        check_local_file(source.path, source.path, policy)


# --- opening -------------------------------------------------------------------------------------


def open_checked(uri: str, policy: SourcePolicy) -> BinaryIO:
    """Open one file for reading as the policy allows; refusals and failures raise
    CorpusError (a plain one, which the Spark driver recognises from an executor)."""
    try:
        source = parse_source(uri, policy)
        if source.chain is None and source.protocol == "file":
            return _open_local(uri, source.path, policy)
        if source.chain is None and source.protocol == "https":
            return cast(BinaryIO, pinned.open_https(uri, allow_private=policy.allow_private_https))
        _check_opened_target(source, policy)
        return _open_fsspec(uri, source.url)
    except CorpusError:
        raise
    except Distw2vError as exc:
        raise CorpusError(str(exc)) from None


def _open_local(uri: str, path: str, policy: SourcePolicy) -> BinaryIO:
    real = check_local_file(uri, path, policy)
    try:
        # O_NOFOLLOW: the real path has no link left, so one now is a swap since the check;
        # O_NONBLOCK: a FIFO planted under a root must not hang the reader.
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise CorpusError(f"{uri} does not exist.") from None
    except OSError as exc:
        raise CorpusError(f"cannot read {uri}: {exc.strerror or exc}.") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CorpusError(f"{uri} is not a regular file.")
        opened = _fd_path(fd)
        if opened is not None and not _under(Path(opened), policy.roots):
            raise SourceError(f"local path {uri} is outside the allowed roots.")
        return cast(BinaryIO, os.fdopen(fd, "rb"))
    except BaseException:
        os.close(fd)
        raise


def _fd_path(fd: int) -> str | None:
    """The path the kernel says an open descriptor has (Linux), whatever was swapped since."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None


def _open_fsspec(uri: str, url: str) -> BinaryIO:
    import fsspec


    try:
        opened = fsspec.open(url, "rb")
        return cast(BinaryIO, _Holding(opened, opened.open()))
    except Exception as exc:
        raise CorpusError(_describe_error(uri, exc)) from exc


class _Holding(io.RawIOBase):
    """A file from fsspec's OpenFile, which must outlive it: a chain's outer filesystem
    closes the inner file when the OpenFile goes."""

    def __init__(self, opened: Any, file: Any) -> None:
        self._opened = opened
        self._file = file

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        return cast(bytes, self._file.read(-1 if size is None else size))

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            try:
                self._file.close()
            finally:
                self._opened.close()
        super().close()


def policy_for(roots: Sequence[Path | str], allow_private_https: bool,
               **settings: Any) -> SourcePolicy:
    """A policy from the roots (resolved here) and the other settings."""
    resolved = tuple(str(Path(r).expanduser().resolve()) for r in roots)
    return SourcePolicy(roots=resolved, allow_private_https=allow_private_https, **settings)


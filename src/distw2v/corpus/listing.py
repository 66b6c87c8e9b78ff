"""Listing what a source names: a local file, directory or glob, or an fsspec URL, as
(file, size) pairs in a stable order; and the one sentence a source that cannot be listed or
read gets. No source policy here: policy.py applies it around these."""

from __future__ import annotations

import fnmatch
import glob
import os
from collections.abc import Callable
from typing import Any, cast

from ..errors import CorpusError

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
        entries = _glob(fs, path)
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


def _glob(fs: Any, path: str) -> dict[str, Any]:
    """fs.glob(path, detail=True), each name matched a component at a time (fnmatch, which
    never backtracks far): fsspec's one regex for the whole path took minutes for a few '*'
    or '**' against long names (a*a*a*a*a*a*a*a*a*a*a*a*b: 56 s for 40 characters)."""
    parts = path.rstrip("/").split("/")
    first = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    root, pattern = "/".join(parts[:first]), parts[first:]
    prefix = root + "/" if first else ""
    entries = fs.find(root, maxdepth=None if "**" in pattern else len(pattern),
                      withdirs=True, detail=True)
    found = {}
    for name, info in entries.items():
        if path.endswith("/") and info.get("type") != "directory":
            continue
        bare = name.rstrip("/")
        if bare == root or bare.startswith(prefix):
            components = [] if bare == root else bare[len(prefix):].split("/")
            if _glob_match(pattern, components, info.get("type") == "directory"):
                found[name] = info
    return found


def _glob_match(pattern: list[str], components: list[str], directory: bool) -> bool:
    """Whether a name's `components` match `pattern`'s, fnmatch patterns or '**' (any
    number of components; at the end, at least one but for a `directory`, as fsspec
    has it), in time len(pattern) x len(components)."""
    reached = [True] + [False] * len(components)  # the first j components are matched
    for i, part in enumerate(pattern):
        if part == "**":
            first = reached.index(True) if True in reached else len(reached)
            first += i == len(pattern) - 1 and not directory
            reached = [j >= first for j in range(len(reached))]
        else:
            reached = [False] + [reached[j] and fnmatch.fnmatchcase(component, part)
                                 for j, component in enumerate(components)]
    return reached[-1]


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


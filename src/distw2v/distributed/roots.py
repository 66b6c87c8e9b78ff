"""The one rule for the paths a parameter-server shard is asked to read or write: they must
lie strictly under a root its operator gave it, so a caller cannot name any file or URL."""

from __future__ import annotations

import os
import posixpath

import fsspec

from ..errors import Distw2vError

LOCAL = ("file", "local")  # fsspec's names for plain paths


def _normalised(uri: str) -> tuple[str, str]:
    """(protocol, path) with the path in one canonical form, or an error for a URI that could
    escape a root by other means than its path."""
    if not isinstance(uri, str):
        raise Distw2vError(f"a path must be a string, not {type(uri).__name__}.")
    if "::" in uri:
        raise Distw2vError(f"{uri} chains filesystems with '::'; a shard takes plain URIs only.")
    protocol, path = fsspec.core.split_protocol(uri)
    if ".." in path.replace("\\", "/").split("/"):
        raise Distw2vError(f"{uri} has a '..' segment; a shard takes direct paths only.")
    if protocol is None or protocol in LOCAL:
        return "file", os.path.realpath(path)  # also resolves symlinks that lead out
    return protocol, posixpath.normpath(path).strip("/")


def under_root(uri: str, root: str, what: str) -> str:
    """`uri` normalised, if it lies strictly under `root` on the same filesystem; `what` names
    the root in the error (e.g. "this shard's --checkpoint-root")."""
    protocol, path = _normalised(uri)
    root_protocol, root_path = _normalised(root)
    prefix = root_path.rstrip("/") + "/"
    if protocol != root_protocol or not path.startswith(prefix) or path == prefix:
        raise Distw2vError(f"{uri} is not under {root} ({what}); a shard reads and writes "
                           "only there.")
    return path if protocol == "file" else f"{protocol}://{path}"

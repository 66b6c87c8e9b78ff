"""Who may call the service, and which sources it may read.

* Tokens: bearer tokens from `--token` and/or a tokens file. A job belongs to the token that
  submitted it (stored as a hash, never the token itself) and only that token sees it.
* Sources: local paths only under the allowed roots, checked on the real path (so neither
  `..` nor a symlink leads out); https only to public addresses unless explicitly allowed;
  s3:// and hdfs:// as given. The job process repeats these checks on the expanded file
  list before it reads a byte, so a tree changed after submission cannot slip through.
"""

from __future__ import annotations

import glob
import hashlib
import hmac
import ipaddress
import os
import secrets
import socket
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from ..corpus import expand_sources
from ..errors import CorpusError, Distw2vError
from .settings import TOKEN_FILE, ServiceConfig

REMOTE_SCHEMES = ("s3", "https", "hdfs")


class SourceError(Distw2vError):
    """A source the service refuses (outside the roots, private address, bad scheme…)."""


# ---- tokens ---------------------------------------------------------------------------------


def owner_of(token: str) -> str:
    """The owner id stored with a job: a hash of the token, so the store holds no secrets."""
    return hashlib.sha256(token.encode()).hexdigest()[:32]


class Tokens:
    """The accepted bearer tokens; `owner(presented)` is None for an unknown token."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self._tokens = [t.encode() for t in tokens]

    def owner(self, presented: str) -> str | None:
        given = presented.encode()
        match = False
        for token in self._tokens:  # compare with every token: timing says nothing
            match |= hmac.compare_digest(given, token)
        return owner_of(presented) if match else None


def load_tokens(config: ServiceConfig) -> tuple[list[str], Path | None]:
    """The tokens to accept, and the file a generated token was written to (if any).

    Without `--token` or `--tokens-file`, a token is generated and written to
    DATA_DIR/token (mode 0600) for local clients, but only on a loopback address.
    """
    tokens: list[str] = []
    if config.token:
        tokens.append(config.token)
    if config.tokens_file:
        try:
            text = Path(config.tokens_file).expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise Distw2vError(
                f"cannot read the tokens file {config.tokens_file}: {exc.strerror or exc}."
            ) from None
        found = [ln.strip() for ln in text.splitlines()
                 if ln.strip() and not ln.lstrip().startswith("#")]
        if not found:
            raise Distw2vError(f"the tokens file {config.tokens_file} holds no token.")
        short = [t for t in found if len(t) < 8]
        if short:
            raise Distw2vError(
                f"the tokens file {config.tokens_file} has a token shorter than 8 characters."
            )
        tokens.extend(found)
    if tokens:
        return tokens, None
    if not config.is_loopback():
        raise Distw2vError(
            f"refusing to listen on {config.host} without a token; pass --token or "
            "--tokens-file (or listen on 127.0.0.1)."
        )
    path = config.data_path / TOKEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and len(path.read_text(encoding="utf-8").strip()) >= 8:
        return [path.read_text(encoding="utf-8").strip()], path
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    return [token], path


# ---- sources --------------------------------------------------------------------------------


def scheme_of(source: str) -> str | None:
    """The URL scheme, or None for a local path ('file://' counts as local)."""
    if "://" not in source:
        return None
    scheme = source.split("://", 1)[0].lower()
    return None if scheme == "file" else scheme


def _local_path(source: str) -> str:
    return source[len("file://"):] if source.lower().startswith("file://") else source


def _under(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


def _static_prefix(pattern: str) -> str:
    """The part of a glob pattern before its first wildcard component."""
    parts = Path(pattern).parts
    kept: list[str] = []
    for part in parts:
        if glob.has_magic(part):
            break
        kept.append(part)
    return os.path.join(*kept) if kept else "/"


def check_local(source: str, roots: Sequence[Path]) -> list[str]:
    """Expand a local path, directory or glob and check every file lies under a root."""
    path = _local_path(source)
    if not roots:
        raise SourceError(
            f"local path {source} is not accepted: this server has no allowed roots "
            "(start it with --allowed-roots)."
        )
    if not os.path.isabs(path):
        raise SourceError(f"local path {source} must be absolute.")
    outside = SourceError(f"local path {source} is outside the allowed roots.")
    if not _under(Path(os.path.realpath(_static_prefix(path))), roots):
        raise outside
    files = expand_sources([path])
    for name in files:
        if not _under(Path(os.path.realpath(name)), roots):
            if name == path:
                raise outside
            raise SourceError(
                f"local path {source} includes {name}, which leads outside the allowed roots."
            )
    return files


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_https(source: str, allow_private: bool) -> None:
    """Refuse an https URL whose host resolves to a loopback, private or reserved address."""
    parts = urlsplit(source)
    host = parts.hostname
    if not host:
        raise SourceError(f"{source} has no host name.")
    if allow_private:
        return
    try:
        port = parts.port or 443
    except ValueError:
        raise SourceError(f"{source} has an invalid port.") from None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise SourceError(f"the host {host} of {source} cannot be resolved.") from None
    addresses = sorted({info[4][0] for info in infos})
    if not addresses or not all(_is_public(str(a)) for a in addresses):
        raise SourceError(
            f"{source} resolves to a loopback or private address; this server does not read "
            "from those (see --allow-private-https)."
        )


def check_source(source: str, roots: Sequence[Path], allow_private: bool) -> list[str] | None:
    """Check one source at submission: the expanded files of a local one, None for a URL."""
    scheme = scheme_of(source)
    if scheme is None:
        return check_local(source, roots)
    if scheme == "http":
        raise SourceError(f"{source} uses plain http; use https.")
    if scheme not in REMOTE_SCHEMES:
        raise SourceError(
            f"{source} has the unsupported scheme {scheme!r}; use a local path, s3://, "
            "https:// or hdfs://."
        )
    if scheme == "https":
        check_https(source, allow_private)
    return None


def _unreachable(source: str, exc: BaseException) -> CorpusError | None:
    """'cannot reach …' when a connection failure hides behind a backend's not-found."""
    seen: BaseException | None = exc
    for _ in range(10):
        seen = seen.__cause__ or seen.__context__ if seen is not None else None
        if seen is None:
            return None
        if isinstance(seen, (ConnectionError, TimeoutError)) or "Connect" in type(seen).__name__:
            reason = str(seen).strip().rstrip(".") or type(seen).__name__
            return CorpusError(f"cannot reach {source}: {reason}.")
    return None


def checked_files(sources: Sequence[str], roots: Sequence[Path], allow_private: bool) -> list[str]:
    """Every file the job will read, each one checked (run again in the job process)."""
    files: list[str] = []
    for source in sources:
        local = check_source(source, roots, allow_private)
        if local is not None:
            files.extend(local)
            continue
        try:
            expanded = expand_sources([source])
        except CorpusError as exc:
            raise _unreachable(source, exc) or exc from None
        if scheme_of(source) == "https":
            for name in expanded:
                check_https(name, allow_private)
        files.extend(expanded)
    if not files:
        raise CorpusError("the sources name no files.")
    return files

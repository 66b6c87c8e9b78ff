"""Who may call the service, and which sources it may read.

* Tokens: bearer tokens from `--token` and/or a tokens file. A job belongs to the token that
  submitted it (stored as a hash, never the token itself) and only that token sees it.
* Sources: parsed into one protocol and path as `..sources` does for the reader (no fsspec
  chain unless the server allows it); local paths only under the allowed roots, checked on
  the real path (so neither `..` nor a symlink leads out); https only to public addresses
  unless explicitly allowed; s3:// and hdfs:// only in the allowed buckets and namenodes. A
  local listing is bounded in files and time. The job process repeats these checks on the
  expanded file list, and the reader once more as it opens each file (an https URL through
  the address it checked), so neither a tree changed after submission nor DNS rebinding
  slips through. A request's sources are listed together, under one budget of files, time
  and DNS look-ups, in a few threads of their own (`Listings`), so a request naming a large
  directory a thousand times costs one bounded listing and delays no other request.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .. import pinned
from ..corpus.policy import (
    Budget,
    InvalidSource,
    SourceError,
    SourcePolicy,
    expand_checked,
    parse_source,
    policy_for,
)
from ..errors import CorpusError, Distw2vError
from .settings import TOKEN_FILE, ServiceConfig

REMOTE_SCHEMES = ("s3", "https", "hdfs")
LISTING_THREADS = 4  # listings of submitted sources running at once; more wait their turn
__all__ = ["REMOTE_SCHEMES", "Busy", "InvalidSource", "Listings", "SourceError", "SourcePolicy",
           "Tokens", "check_https", "check_roots", "check_source", "check_sources", "checked_files",
           "load_tokens", "owner_of", "scheme_of"]


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
    # hex: a token that starts with '-' would read as a flag in `--token TOKEN` (1 in 64 did)
    token = secrets.token_hex(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(token + "\n")
    return [token], path


def check_roots(config: ServiceConfig) -> None:
    """Refuse an allowed root that holds, is, or lies inside one of the service's own files:
    a job could then read tokens, other tokens' models or the TLS key as its corpus, and
    a model trained on them answers with their words. Paths compared with links resolved."""
    own: list[tuple[str, str | None]] = [
        ("data directory", str(config.data_path)), ("tokens file", config.tokens_file),
        ("token file", config.token_file), ("artifacts store", config.artifacts),
        ("checkpoint directory", config.run.checkpoint_dir), ("TLS key", config.tls_key)]
    if config.db_url.startswith("sqlite:///"):
        own.append(("job database", config.db_url.removeprefix("sqlite:///")))
    for root in config.roots():
        for what, where in own:
            if not where or ("://" in where and not where.startswith("file://")):
                continue  # unset, or not on this machine's file system
            path = Path(where.removeprefix("file://")).expanduser().resolve()
            if root == path or root in path.parents or path in root.parents:
                raise Distw2vError(f"the allowed root {root} overlaps the service's {what} "
                                   f"{path}; jobs could read it, so give roots that hold "
                                   "only corpora.")


# ---- sources ----------------------------------------------------------------------------------
# The checks themselves live in ..sources (the corpus reader applies them again as it opens
# each file); here they run at submission, with the listing of a local source bounded.


def _policy(roots: SourcePolicy | Sequence[Path], allow_private: bool) -> SourcePolicy:
    if isinstance(roots, SourcePolicy):
        return roots
    return policy_for(roots, allow_private)


def scheme_of(source: str) -> str | None:
    """The URL scheme, or None for a local path ('file://' counts as local)."""
    if "://" not in source:
        return None
    scheme = source.split("://", 1)[0].lower()
    return None if scheme == "file" else scheme


def check_https(source: str, allow_private: bool) -> None:
    """Refuse an https URL whose host is, or resolves to, a non-public address."""
    pinned.resolve(pinned.parse_https(source), allow_private)


def check_source(source: str, policy: SourcePolicy | Sequence[Path],
                 allow_private: bool = False,
                 budget: Budget | None = None) -> list[tuple[str, int | None]] | None:
    """Check one source at submission: the expanded files of a local one with their sizes,
    None for a remote one (listed only by the job). `policy` may be the allowed roots (then
    with `allow_private`), for callers that have no policy."""
    policy = _policy(policy, allow_private)
    parsed = parse_source(source, policy)
    if parsed.protocol == "file" or parsed.protocol == "https":
        found = expand_checked(source, policy, timed=True, budget=budget)
        return found if parsed.protocol == "file" else None
    return None


def check_sources(sources: Sequence[str], policy: SourcePolicy,
                  budget: Budget) -> tuple[int, bool]:
    """Check a request's sources under one budget, each distinct source once: the bytes of
    its local files, and whether any source is remote. A CorpusError names the source's
    index in the request (sources.I)."""
    size, remote, seen = 0, False, set()
    for i, source in enumerate(sources):
        if source in seen:
            continue
        seen.add(source)
        try:
            found = check_source(source, policy, budget=budget)
        except CorpusError as exc:
            raise CorpusError(f"sources.{i}: {exc}") from None
        if found is None:
            remote = True
        else:
            size += sum(_size(name) if known is None else known for name, known in found)
    return size, remote


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


class Busy(Distw2vError):
    """The listing threads were taken by other requests until this one's deadline."""


class Listings:
    """Lists submitted sources in threads of their own, each request within its deadline
    (time spent waiting for a thread counts), so the event loop and the threads that answer
    other requests never wait for a listing."""

    def __init__(self, threads: int = LISTING_THREADS) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="distw2v-listing")

    async def check(self, sources: Sequence[str], policy: SourcePolicy) -> tuple[int, bool]:
        budget = Budget(policy)  # its clock starts now
        started: list[bool] = []

        def work() -> tuple[int, bool]:
            started.append(True)
            return check_sources(sources, policy, budget)

        future = asyncio.get_running_loop().run_in_executor(self._pool, work)
        try:  # the budget stops the listing at the deadline; this stops a stuck one (DNS)
            return await asyncio.wait_for(future, policy.listing_seconds + 1.0)
        except asyncio.TimeoutError:
            if not started:
                raise Busy("the server is busy listing other requests' sources; try again "
                           "shortly.") from None
            raise CorpusError(f"listing the sources took longer than "
                              f"{policy.listing_seconds:g} s (the server's "
                              "--source-listing-seconds); name fewer files.") from None

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


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


def checked_files(sources: Sequence[str], policy: SourcePolicy | Sequence[Path],
                  allow_private: bool = False) -> list[str]:
    """Every file the job will read, each one checked (run again in the job process, and
    once more by the reader as it opens each file)."""
    policy = _policy(policy, allow_private)
    budget = Budget(policy, timed=False)  # one for all the sources, as at submission
    files: list[str] = []
    for source in dict.fromkeys(sources):
        try:
            found = expand_checked(source, policy, budget=budget)
        except (SourceError, InvalidSource):
            raise
        except CorpusError as exc:
            raise _unreachable(source, exc) or exc from None
        files.extend(name for name, _ in found)
    if not files:
        raise CorpusError("the sources name no files.")
    return list(dict.fromkeys(files))

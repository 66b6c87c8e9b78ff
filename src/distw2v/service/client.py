"""A small HTTP client for the service, used by `distw2v submit|jobs|cancel|retry|delete|
download` and by `similar`/`analogy` on a service model."""

from __future__ import annotations

import contextlib
import os
import secrets
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

from ..errors import Distw2vError
from .settings import DEFAULT_DATA_DIR, TOKEN_FILE

DEFAULT_SERVER = "http://127.0.0.1:8000"
CA_HINT = ("if its certificate is signed by a private CA, give that CA's certificate with "
           "--ca-cert PATH or $DISTW2V_CA_CERT")


def default_server() -> str:
    return os.environ.get("DISTW2V_SERVER", DEFAULT_SERVER)


def default_token() -> str | None:
    """$DISTW2V_TOKEN, else the token a local `distw2v serve` wrote into its data directory."""
    return find_token()[0]


def find_token() -> tuple[str | None, str]:
    """default_token() and where it came from, in words (for the message of a 401)."""
    token = os.environ.get("DISTW2V_TOKEN")
    if token:
        return token, "the token from $DISTW2V_TOKEN"
    path = Path(DEFAULT_DATA_DIR).expanduser() / TOKEN_FILE
    try:
        found = path.read_text(encoding="utf-8").strip() or None
    except OSError:
        found = None
    return found, f"the token in {path}" if found else "no token"


def unauthorized(detail: str, token_source: str) -> str:
    """The one sentence for a 401: what the server said, which token was sent, and the four
    ways to give the right one."""
    generated = f"{DEFAULT_DATA_DIR}/{TOKEN_FILE}"
    said = ("the server needs a bearer token and none was found" if token_source == "no token"
            else f"{detail.rstrip('.')} (sent: {token_source})")
    return (f"{said}; give the server's token with --token-file PATH, $DISTW2V_TOKEN or "
            "--token TOKEN "
            f"(a `distw2v serve` started without a token writes the one it generated to "
            f"DATA_DIR/{TOKEN_FILE}, by default {generated}).")


class Progress(Protocol):
    """What download() reports to (a tqdm bar fits)."""

    def update(self, n: int) -> object: ...

    def close(self) -> None: ...


def _attachment_name(disposition: str | None) -> str | None:
    """The bare file name of a Content-Disposition header (never a path)."""
    if not disposition or "filename=" not in disposition:
        return None
    name = disposition.split("filename=", 1)[1].split(";", 1)[0].strip().strip('"')
    name = Path(name.replace("\\", "/")).name
    return None if name in ("", ".", "..") or name.startswith(".") else name


def tls_context(ca_cert: str | None) -> ssl.SSLContext:
    """Trust for an https server: the CA in `ca_cert` (else $DISTW2V_CA_CERT), else the
    system's trusted CAs (which $SSL_CERT_FILE may name)."""
    ca_cert = ca_cert or os.environ.get("DISTW2V_CA_CERT") or None
    try:
        return ssl.create_default_context(cafile=ca_cert)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or exc
        raise Distw2vError(f"cannot load the CA certificate {ca_cert}: {reason}.") from None


class Client:
    def __init__(self, server: str, token: str | None, timeout: float = 30.0,
                 token_source: str | None = None, ca_cert: str | None = None) -> None:
        import httpx

        self.server = server.rstrip("/")
        self.token_source = token_source or ("a token" if token else "no token")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout,
                                  verify=tls_context(ca_cert))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        self._check(response)
        return response.json()

    def _unreachable(self, exc: Exception) -> Distw2vError:
        reason = str(exc).strip().rstrip(".") or type(exc).__name__
        if "CERTIFICATE_VERIFY_FAILED" in reason:
            reason = f"its certificate is not trusted ({reason}); {CA_HINT}"
        return Distw2vError(f"cannot reach the server at {self.server}: {reason}.")

    def _check(self, response: Any) -> None:
        """Raise the server's one sentence for an error status (a 401 says how to fix it)."""
        if response.status_code < 400:
            return
        try:
            detail = response.json().get("detail")
        except (ValueError, AttributeError):
            detail = None
        if not isinstance(detail, str):
            detail = f"the server answered {response.status_code} {response.reason_phrase}."
        if response.status_code == 401:
            detail = unauthorized(detail, self.token_source)
        raise Distw2vError(detail)

    def submit(self, request: dict[str, Any]) -> dict[str, Any]:
        return self.call("POST", "/v1/jobs", json=request)  # type: ignore[no-any-return]

    def job(self, job_id: str) -> dict[str, Any]:
        return self.call("GET", f"/v1/jobs/{job_id}")  # type: ignore[no-any-return]

    def jobs(self, state: str | None = None, limit: int = 50, offset: int = 0) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if state:
            params["state"] = state
        return self.call("GET", "/v1/jobs", params=params)  # type: ignore[no-any-return]

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self.call("DELETE", f"/v1/jobs/{job_id}")  # type: ignore[no-any-return]

    def retry(self, job_id: str) -> dict[str, Any]:
        return self.call("POST", f"/v1/jobs/{job_id}/retry")  # type: ignore[no-any-return]

    def delete(self, job_id: str) -> None:
        import httpx

        try:
            response = self._http.post(f"/v1/jobs/{quote(job_id, safe='')}/delete")
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        self._check(response)

    def similar(self, job_id: str, word: str, topn: int = 10) -> dict[str, Any]:
        return self.call("GET", f"/v1/models/{quote(job_id, safe='')}/similar",  # type: ignore[no-any-return]
                         params={"word": word, "topn": topn})

    def analogy(self, job_id: str, a: str, b: str, c: str, topn: int = 5,
                method: str = "3cosadd") -> dict[str, Any]:
        """a is to b as c is to ? (the REST route's `words=a b c` form)."""
        return self.call("GET", f"/v1/models/{quote(job_id, safe='')}/analogy",  # type: ignore[no-any-return]
                         params={"words": f"{a} {b} {c}", "topn": topn, "method": method})

    def download(self, job_id: str, fmt: str, out: Path | None = None, *,
                 overwrite: bool = False,
                 progress: Callable[[int | None, str], Progress] | None = None) -> Path:
        """Stream an artifact into `out` (a file, a directory, or None: the current one, under
        the server's file name) and return its path. The bytes go to a hidden temporary file
        beside it that is renamed only once complete, so a cut-off download leaves nothing
        that looks finished. `progress(total_bytes, name)` makes the bar it updates."""
        import httpx

        try:
            with self._http.stream("GET", f"/v1/jobs/{quote(job_id, safe='')}/artifacts/{fmt}",
                                   timeout=httpx.Timeout(60.0, read=600.0)) as response:
                if response.status_code >= 400:
                    response.read()
                self._check(response)
                name = (_attachment_name(response.headers.get("content-disposition"))
                        or f"{job_id}-{fmt}")
                target = Path.cwd() / name if out is None else out
                if target.is_dir():
                    target = target / name
                if not target.parent.is_dir():
                    raise Distw2vError(f"the folder {target.parent} does not exist.")
                if target.exists() and not overwrite:
                    raise Distw2vError(f"{target} exists; pass --overwrite to replace it.")
                length = response.headers.get("content-length")
                total = int(length) if length and length.isdigit() else None
                bar = progress(total, target.name) if progress else None
                try:
                    _write_atomically(response.iter_bytes(1 << 20), target, bar, total,
                                      f"the download of job {job_id}")
                finally:
                    if bar is not None:
                        bar.close()
        except httpx.TransportError as exc:
            if isinstance(exc, httpx.ConnectError):
                raise self._unreachable(exc) from None
            reason = str(exc).strip().rstrip(".") or type(exc).__name__
            raise Distw2vError(f"the download of job {job_id} was cut off ({reason}); "
                               "nothing was written.") from None
        return target


def _write_atomically(chunks: Any, target: Path, bar: Progress | None, expected: int | None,
                      what: str) -> None:
    """Write `chunks` to a temporary file beside `target`, and rename it to `target` only when
    all `expected` bytes came (httpx checks Content-Length too; this holds without it)."""
    partial = target.parent / f".{target.name}.{secrets.token_hex(4)}.part"
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
    received = 0
    try:
        with os.fdopen(fd, "wb") as file:
            for chunk in chunks:
                file.write(chunk)
                received += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            file.flush()
            os.fsync(file.fileno())
        if expected is not None and received != expected:
            raise Distw2vError(f"{what} ended after {received:,} of {expected:,} bytes; "
                               "nothing was written.")
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise

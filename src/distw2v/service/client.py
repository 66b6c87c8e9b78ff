"""A small HTTP client for the service, used by `distw2v submit|jobs|cancel|retry`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import Distw2vError
from .settings import DEFAULT_DATA_DIR, TOKEN_FILE

DEFAULT_SERVER = "http://127.0.0.1:8000"


def default_server() -> str:
    return os.environ.get("DISTW2V_SERVER", DEFAULT_SERVER)


def default_token() -> str | None:
    """$DISTW2V_TOKEN, else the token a local `distw2v serve` wrote into its data directory."""
    token = os.environ.get("DISTW2V_TOKEN")
    if token:
        return token
    path = Path(DEFAULT_DATA_DIR).expanduser() / TOKEN_FILE
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


class Client:
    def __init__(self, server: str, token: str | None, timeout: float = 30.0) -> None:
        import httpx

        self.server = server.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=self.server, headers=headers, timeout=timeout)

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
            reason = str(exc).strip().rstrip(".") or type(exc).__name__
            raise Distw2vError(f"cannot reach the server at {self.server}: {reason}.") from None
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = None
            if not isinstance(detail, str):
                detail = f"the server answered {response.status_code} {response.reason_phrase}."
            raise Distw2vError(detail)
        return response.json()

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

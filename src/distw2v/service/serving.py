"""Running the service: the app (api.py) over the Service (server.py) under uvicorn, until
Ctrl-C or SIGTERM stops it cleanly."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Callable

from .api import create_app
from .server import Service
from .settings import ServiceConfig


def serve(config: ServiceConfig, say: Callable[[str], None] = print) -> None:
    """Run the service until interrupted (Ctrl-C or SIGTERM stops it cleanly)."""
    import uvicorn

    service = Service.build(config)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    say(f"distw2v service on http://{config.host}:{config.port} (API docs at /docs); "
        f"data in {config.data_path}; job store {_redacted(config.db_url)}; "
        f"up to {service.runner.limit} job(s) at once")
    if service.token_file is not None:
        say(f"bearer token in {service.token_file}")
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it: make that a clean exit.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        uvicorn.run(create_app(service), host=config.host, port=config.port,
                    log_level="warning")
    finally:
        service.store.close()


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _redacted(url: str) -> str:
    """The URL without its password, for logs."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url

"""Running the service: the app (api.py) over the Service (server.py) under uvicorn, until
Ctrl-C or SIGTERM stops it cleanly."""

from __future__ import annotations

import logging
import signal
import ssl
import sys
from collections.abc import Callable

from ..errors import Distw2vError
from .api import create_app
from .connections import bounded_protocol, connection_limit, raise_open_files_limit
from .server import Service
from .settings import ServiceConfig


def serve(config: ServiceConfig, say: Callable[[str], None] = print) -> None:
    """Run the service until interrupted (Ctrl-C or SIGTERM stops it cleanly)."""
    import uvicorn

    if config.tls_cert and config.tls_key:
        check_tls(config.tls_cert, config.tls_key)
    service = Service.build(config)
    connections = connection_limit(config.max_connections, raise_open_files_limit())
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    scheme = "https" if config.tls_cert else "http"
    say(f"distw2v service on {scheme}://{config.host}:{config.port} (API docs at /docs); "
        f"data in {config.data_path}; job store {_redacted(config.db_url)}; "
        f"up to {service.runner.limit} job(s) at once, {connections} connections")
    if service.token_file is not None:
        say(f"bearer token in {service.token_file}")
    if scheme == "http" and not config.is_loopback():
        say(f"warning: plain HTTP on {config.host}: tokens and models cross the network "
            "unencrypted; give --tls-cert and --tls-key.")
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it: make that a clean exit.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        # uvicorn's own limit_concurrency is not used: it answers 503 but keeps the
        # connection, so it bounds no descriptors; the bounded protocol closes connections
        uvicorn.run(create_app(service), host=config.host, port=config.port,
                    log_level="warning", ssl_certfile=config.tls_cert,
                    ssl_keyfile=config.tls_key,
                    http=bounded_protocol(connections, config.connection_timeout),
                    backlog=connections,
                    timeout_keep_alive=max(1, round(config.connection_timeout)))
    finally:
        service.store.close()


def check_tls(cert: str, key: str) -> None:
    """Refuse, in one sentence, a certificate or key that is missing, unreadable, not PEM,
    encrypted, or not a pair, before the server starts (uvicorn would show a traceback)."""
    for what, path in (("certificate", cert), ("key", key)):
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise Distw2vError(f"cannot read the TLS {what} {path}: "
                               f"{exc.strerror or exc}.") from None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:  # a password callback, so that an encrypted key fails instead of prompting
        context.load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise Distw2vError(f"the TLS key {key} does not match the certificate "
                               f"{cert}.") from None
        raise Distw2vError(f"cannot load the TLS certificate {cert} with the key {key}: "
                           "give a PEM certificate and its unencrypted PEM private key.") from None


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

"""Shared fixtures. The training service's fixtures are all named `service_*`."""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

# Spark drivers, executors and shards the tests start bind to loopback, not the host's address
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")

SERVICE_TOKEN = "test-token-0123456789"
SERVICE_FAST = {"dim": 8, "epochs": 2, "workers": 1, "seed": 7}


def service_write_corpus(path: Path, seed: int, sentences: int = 400, vocab: int = 40,
                         prefix: str = "w") -> Path:
    """A small random corpus (8 words a line) in plain text."""
    rng = np.random.default_rng(seed)
    words = [f"{prefix}{i}" for i in range(vocab)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        for _ in range(sentences):
            out.write(" ".join(rng.choice(words, size=8)) + "\n")
    return path


@dataclass
class ServiceHandle:
    """A real uvicorn server on 127.0.0.1 with its service, and an httpx client for it."""

    url: str
    service: Any
    server: Any
    thread: threading.Thread
    http: Any  # httpx.Client with the bearer token

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.http.get(f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    def submit(self, sources: list[str], expect: int = 201, **body: Any) -> dict[str, Any]:
        payload = {"sources": sources, "vocab": {"min_count": 1},
                   "train": dict(SERVICE_FAST), **body}
        response = self.http.post("/v1/jobs", json=payload)
        assert response.status_code == expect, response.text
        return response.json()  # type: ignore[no-any-return]

    def wait(self, job_id: str, states: tuple[str, ...] = ("succeeded", "failed", "cancelled"),
             timeout: float = 60.0, until: Callable[[dict[str, Any]], bool] | None = None,
             ) -> dict[str, Any]:
        """Poll until the job is in one of `states` (or `until(job)` holds)."""
        deadline = time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if (until(job) if until else job["state"] in states):
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} did not get there in {timeout} s: {job}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.http.close()
        self.service.store.close()


def serve_in_thread(app: Any) -> tuple[str, Any, threading.Thread]:
    """Serve `app` with uvicorn in a thread on a free loopback port; return once it accepts."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    return url, server, thread


def wait_until_healthy(url: str, process: Any, timeout: float = 30) -> bool:
    """Poll a `distw2v serve` process's /healthz until it answers 200: True; False if the
    process exits or `timeout` seconds pass first."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.1)


@pytest.fixture
def service_server(tmp_path: Path) -> Iterator[Callable[..., ServiceHandle]]:
    """Start servers: `service_server(allowed_roots=..., max_concurrent_jobs=...)`."""
    import httpx

    from distw2v.service.api import create_app
    from distw2v.service.server import Service
    from distw2v.service.settings import ServiceConfig

    started: list[ServiceHandle] = []

    def start(config: ServiceConfig | None = None, token: str | None = SERVICE_TOKEN,
              **settings: Any) -> ServiceHandle:
        base = config or ServiceConfig(data_dir=str(tmp_path / f"data{len(started)}"),
                                       allowed_roots=str(tmp_path / "roots"),
                                       cancel_grace_seconds=2.0)
        config = replace(base, token=token, **settings)
        service = Service.build(config)
        url, server, thread = serve_in_thread(create_app(service))
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        handle = ServiceHandle(url, service, server, thread,
                               httpx.Client(base_url=url, headers=headers, timeout=30))
        started.append(handle)
        return handle

    yield start
    for handle in reversed(started):
        handle.stop()


def service_job_processes(job_id: str) -> list[int]:
    """Pids of live training processes of one job (found by their command line)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
            status = (proc / "stat").read_text()
        except OSError:
            continue
        zombie = status.rsplit(")", 1)[-1].split()[0] == "Z"
        if b"distw2v.service.jobproc" in cmdline and job_id.encode() in cmdline and not zombie:
            pids.append(int(proc.name))
    return pids


@pytest.fixture
def service_corpus() -> Callable[..., Path]:
    """`service_corpus(path, seed, sentences=400, vocab=40)` writes a small random corpus."""
    return service_write_corpus


@pytest.fixture
def service_processes() -> Callable[[str], list[int]]:
    """`service_processes(job_id)`: pids of that job's live training processes."""
    return service_job_processes


@pytest.fixture
def s3(monkeypatch):
    """A moto S3 server on 127.0.0.1 (endpoint URL, s3fs filesystem), stopped afterwards."""
    server_mod = pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto keeps buckets in process-wide memory: start every test with none
    with urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset",
                                                       method="POST")):
        pass
    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True,
                           use_listings_cache=False)
    yield endpoint, fs
    server.stop()


# --- a real HTTPS server on 127.0.0.1, for the source checks -----------------------------------


def service_write_tls(folder: Path, names: tuple[str, ...] = ("localhost", "rebind.test"),
                      ) -> tuple[Path, Path, Path]:
    """A test CA and a certificate signed by it for `names` and 127.0.0.1: (ca, cert, key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "distw2v test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    alt = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@dataclass
class HTTPSHandle:
    """An HTTPS server on 127.0.0.1: `routes` maps 'GET /path' (or 'HEAD /path') to
    (status, headers, body); every request is recorded as (method, path, Host header)."""

    port: int
    routes: dict[str, tuple[int, dict[str, str], bytes]]
    requests: list[tuple[str, str, str]]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"https://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        return [f"{method} {path}" for method, path, _ in self.requests]


@pytest.fixture
def service_https(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HTTPSHandle]:
    """A real TLS server on 127.0.0.1 whose CA this process and its children trust
    (SSL_CERT_FILE); fill `routes` before the requests come."""
    import ssl
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    ca, cert, key = service_write_tls(tmp_path / "tls")
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    handle = HTTPSHandle(0, {}, [])

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, method: str) -> None:
            handle.requests.append((method, self.path, self.headers.get("Host", "")))
            status, headers, body = handle.routes.get(
                f"{method} {self.path}", handle.routes.get(f"GET {self.path}",
                                                           (404, {}, b"not found\n")))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if method == "GET":
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self._answer("GET")

        def do_HEAD(self) -> None:  # noqa: N802
            self._answer("HEAD")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    handle.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handle
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)

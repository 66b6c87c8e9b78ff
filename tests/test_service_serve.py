"""`distw2v serve` as a real process, attacked where it faces the network: roots that hold the
service's own files, idle and half-sent connections by the thousand, and TLS."""

from __future__ import annotations

import os
import resource
import selectors
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import service_write_tls

from distw2v.cli import main

pytestmark = pytest.mark.service

TOKEN = "serve-test-token-0123"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(tmp_path: Path, *args: str, **popen: object) -> subprocess.Popen[str]:
    env = {**os.environ, "DISTW2V_TOKEN": TOKEN}
    return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-m", "distw2v.cli", "serve", *args], env=env, text=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **popen)


def _stop(process: subprocess.Popen[str]) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    return err


def _healthy(url: str, process: subprocess.Popen[str], verify: object = True,
             timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while process.poll() is None and time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2, verify=verify).status_code == 200:
                return True
        except httpx.TransportError:
            time.sleep(0.1)
    return False


# --- roots that hold the service's own files (finding 10) --------------------------------------


def test_serve_refuses_a_root_that_holds_its_own_files(tmp_path: Path) -> None:
    data = tmp_path / "srv" / "data"
    tokens = tmp_path / "srv" / "tokens"
    tokens.parent.mkdir(parents=True)
    tokens.write_text(f"{TOKEN}\nother-token-0123456\n")
    (tmp_path / "corpora").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "srv")  # a root given through a link
    base = ["--data-dir", str(data), "--tokens-file", str(tokens), "--port", str(_port())]
    cases = [
        (tmp_path / "srv", "data directory"),   # holds the data dir and the tokens file
        (tmp_path / "alias", "data directory"),
        (data, "data directory"),               # is it
        (data / "models", "data directory"),    # lies inside it
    ]
    for root, what in cases:
        process = _serve(tmp_path, *base, "--allowed-roots", f"{tmp_path / 'corpora'}:{root}")
        process.wait(timeout=60)
        err = _stop(process)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert process.returncode == 2 and len(lines) == 1, (root, err)
        assert lines[0].startswith("distw2v serve: error: the allowed root ") and \
            f"overlaps the service's {what} {data.resolve()}" in lines[0], lines[0]
    # the tokens file alone, and an artifacts store elsewhere
    (tmp_path / "keys").mkdir()
    moved = tmp_path / "keys" / "tokens"
    moved.write_text(tokens.read_text())
    models = tmp_path / "store" / "models"
    for root, extra, what in ((tmp_path / "keys", ["--tokens-file", str(moved)], "tokens file"),
                              (models.parent, ["--artifacts-url", str(models)], "artifacts store"),
                              (models, ["--artifacts-url", f"file://{models}"], "artifacts store")):
        process = _serve(tmp_path, *base, *extra, "--allowed-roots", str(root))
        assert process.wait(timeout=60) == 2, _stop(process)
        assert f"overlaps the service's {what}" in _stop(process)
    # a root beside them starts
    port = _port()
    process = _serve(tmp_path, "--data-dir", str(data), "--tokens-file", str(tokens),
                     "--port", str(port), "--allowed-roots", str(tmp_path / "corpora"))
    try:
        assert _healthy(f"http://127.0.0.1:{port}", process), _stop(process)
    finally:
        _stop(process)


# --- idle and half-sent connections (finding 11) -------------------------------------------


def _limit_files() -> None:  # in the server process, before exec: a low soft limit to raise
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 4096))


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.mark.timeout(180)
def test_thousands_of_idle_and_half_sent_connections_are_shed(tmp_path: Path) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    attackers = 3000
    if min(soft, hard) < attackers + 200 or hard < 4096:
        pytest.skip(f"needs {attackers + 200} open files here (the limit is {soft})")
    port = _port()
    url = f"http://127.0.0.1:{port}"
    process = _serve(tmp_path, "--data-dir", str(tmp_path / "data"), "--port", str(port),
                     "--max-connections", "200", "--connection-timeout", "2",
                     preexec_fn=_limit_files)
    socks: list[socket.socket] = []
    try:
        assert _healthy(url, process), _stop(process)
        limits = Path(f"/proc/{process.pid}/limits").read_text()
        assert any(ln.startswith("Max open files") and ln.split()[3] == "4096"
                   for ln in limits.splitlines()), limits  # soft limit raised to the hard one
        # more connections than the server's soft limit was: half idle, half half-sent
        most = 0
        for i in range(attackers):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            if i % 2:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            socks.append(sock)
            if i % 500 == 0:
                most = max(most, _fds(process.pid))
        most = max(most, _fds(process.pid))
        opened = time.monotonic()
        # the service still answers, from a fresh connection, while they are open
        health = httpx.get(f"{url}/healthz", timeout=10)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        # connections bounded (closing lags a few accept batches), not the process's files
        assert most < 4 * 200 + 256, most
        # and every attacking connection is closed by the server within the timeout
        selector = selectors.DefaultSelector()
        for sock in socks:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        closed = 0
        deadline = opened + 2 + 10  # the timeout, and time for this test to read them
        while closed < len(socks) and time.monotonic() < deadline:
            for key, _ in selector.select(timeout=1):
                try:
                    data = key.fileobj.recv(4096)  # type: ignore[union-attr]
                except ConnectionResetError:
                    data = b""
                if not data:
                    selector.unregister(key.fileobj)
                    closed += 1
        assert closed == len(socks), f"{len(socks) - closed} connections still open"
        assert process.poll() is None
        assert httpx.get(f"{url}/healthz", timeout=10).status_code == 200
    finally:
        for sock in socks:
            sock.close()
        _stop(process)


# --- TLS (finding 6) -----------------------------------------------------------------------------


@pytest.fixture
def tls_served(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[str]]]:
    ca, cert, key = service_write_tls(tmp_path / "tls", names=("localhost",))
    port = _port()
    process = _serve(tmp_path, "--data-dir", str(tmp_path / "data"), "--port", str(port),
                     "--tls-cert", str(cert), "--tls-key", str(key))
    url = f"https://127.0.0.1:{port}"
    try:
        assert _healthy(url, process, verify=ssl.create_default_context(cafile=str(ca))), \
            _stop(process)
        yield url, ca, process
    finally:
        _stop(process)


def test_the_cli_talks_to_a_tls_server_and_plain_http_gets_nothing(
        tls_served, capsys, monkeypatch) -> None:
    url, ca, _ = tls_served
    monkeypatch.setenv("DISTW2V_TOKEN", TOKEN)
    monkeypatch.delenv("DISTW2V_CA_CERT", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    assert main(["jobs", "--server", url, "--ca-cert", str(ca), "--json"]) == 0
    assert '"total": 0' in capsys.readouterr().out
    monkeypatch.setenv("DISTW2V_CA_CERT", str(ca))
    assert main(["jobs", "--server", url]) == 0
    capsys.readouterr()
    # without the CA the certificate is not trusted: one sentence that says what to give
    monkeypatch.delenv("DISTW2V_CA_CERT")
    assert main(["jobs", "--server", url]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "its certificate is not trusted" in err and \
        "--ca-cert PATH or $DISTW2V_CA_CERT" in err, err
    # plain HTTP to the TLS port is answered by no HTTP response at all
    with pytest.raises(httpx.TransportError):
        httpx.get(url.replace("https://", "http://") + "/healthz", timeout=5)


def test_bad_tls_files_are_one_sentence_before_the_server_starts(tmp_path, capsys) -> None:
    _, cert, key = service_write_tls(tmp_path / "a")
    _, other_cert, _ = service_write_tls(tmp_path / "b")
    (tmp_path / "junk.pem").write_text("not a certificate\n")
    from cryptography.hazmat.primitives import serialization

    private = serialization.load_pem_private_key(key.read_bytes(), None)
    (tmp_path / "locked.pem").write_bytes(private.private_bytes(  # OpenSSL would prompt
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret")))
    base = ["serve", "--data-dir", str(tmp_path / "data"), "--port", str(_port())]
    cases = [
        (["--tls-cert", str(cert)], "give --tls-cert and --tls-key together"),
        (["--tls-cert", str(tmp_path / "none.pem"), "--tls-key", str(key)],
         f"cannot read the TLS certificate {tmp_path / 'none.pem'}: No such file or directory."),
        (["--tls-cert", str(other_cert), "--tls-key", str(key)],
         f"the TLS key {key} does not match the certificate {other_cert}."),
        (["--tls-cert", str(tmp_path / "junk.pem"), "--tls-key", str(key)],
         f"cannot load the TLS certificate {tmp_path / 'junk.pem'} with the key {key}: give a "
         "PEM certificate and its unencrypted PEM private key."),
        (["--tls-cert", str(cert), "--tls-key", str(tmp_path / "locked.pem")],
         f"cannot load the TLS certificate {cert} with the key {tmp_path / 'locked.pem'}: "
         "give a PEM certificate and its unencrypted PEM private key."),
    ]
    for flags, expected in cases:
        assert main([*base, *flags]) == 2, flags
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and "Traceback" not in err and expected in lines[0], err

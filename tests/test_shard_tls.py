"""TLS between a run's clients and shards, tried by the attacks it is there for: a listener on
the wire (packets captured on lo) learns neither the run's token nor the model's rows; a
client without the run's certificate, or with another run's, is not served; an announcement
file written by someone else is not believed."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from distw2v.distributed import tls
from distw2v.distributed.client import PSClient
from distw2v.distributed.row_client import RowClient
from distw2v.distributed.rows import RowSpec, placement
from distw2v.distributed.server import new_secret, start_server
from distw2v.distributed.spark_shards import SparkShards, signed
from distw2v.errors import Distw2vError

ETH_P_ALL = 0x0003


class Capture:
    """Every packet on the loopback interface while it runs (a raw AF_PACKET socket: root)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self.packets: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.packets.append(self.sock.recv(1 << 16))
            except TimeoutError:
                continue

    def stop(self) -> bytes:
        self._stop.set()
        self._thread.join(10)
        self.sock.close()
        return b"".join(self.packets)


@pytest.fixture()
def capture() -> Iterator[type[Capture]]:
    try:
        Capture().stop()
    except PermissionError:
        pytest.skip("capturing packets on lo needs root (CAP_NET_RAW)")
    yield Capture


def rows_on_the_wire(secret: str, capture: type[Capture]) -> tuple[bytes, bytes, np.ndarray]:
    """A rows run's calls over gRPC and the stream, captured: (capture, token, rows pulled)."""
    server, port, _ = start_server(secret=secret)
    spec = RowSpec(vocab_size=64, dim=8, shard=0, shards=1, seed=7)
    try:
        sniffer = capture()
        with RowClient([f"127.0.0.1:{port}"], placement(spec), 8, secret=secret) as client:
            client.configure([spec])
            rows = client.pull(0, 64)  # over gRPC
            ids = np.argsort(client.placement.sort_key(np.arange(64)))  # in shard order
            syn0, syn1 = (np.empty((64, 8), np.float32) for _ in range(2))
            client.step(None, client.layout(ids, 64), syn0, syn1)  # over the stream
            np.testing.assert_array_equal(syn0, rows[ids])
        return sniffer.stop(), (tls.split(secret)[0] or "").encode(), rows
    finally:
        server.stop(None)


def test_a_listener_on_the_wire_learns_nothing_of_a_tls_run(capture) -> None:
    seen, token, rows = rows_on_the_wire(tls.with_tls(new_secret()), capture)
    assert len(seen) > 10_000  # the calls were captured
    assert token not in seen
    assert rows[:4].tobytes() not in seen and rows[-4:].tobytes() not in seen
    # the control: without TLS the same calls carry the rows in clear
    seen, _, rows = rows_on_the_wire(new_secret(), capture)
    assert rows[:4].tobytes() in seen


def test_a_tls_shard_serves_only_clients_with_the_runs_certificate() -> None:
    secret = tls.with_tls(new_secret())
    token = tls.split(secret)[0]
    assert token is not None
    server, port, _ = start_server(secret=secret)
    address = f"127.0.0.1:{port}"
    try:
        with PSClient([address], secret=secret, timeout=10) as client:
            assert client.stats()[0]["bytes_in"] >= 0
        other_run = tls.with_tls(token)  # the right token, another run's certificate
        for wrong in (token, other_run):
            with PSClient([address], secret=wrong, timeout=3, retries=0) as client:
                with pytest.raises(Distw2vError, match="unavailable"):
                    client.stats()
        with socket.create_connection(("127.0.0.1", _stream_port(secret, address))) as peer:
            from distw2v.distributed import stream

            peer.settimeout(10)
            with pytest.raises((ConnectionError, OSError, EOFError)):
                stream.client_hello(peer, token)  # plain text where TLS is expected
    finally:
        server.stop(None)


def _stream_port(secret: str, address: str) -> int:
    from distw2v.distributed.wire import unpack

    with PSClient([address], secret=secret) as client:
        return int(unpack(client._same("Health", {})[0])[0]["stream_port"])


def test_a_tls_secret_that_cannot_be_read_is_one_sentence() -> None:
    with pytest.raises(Distw2vError, match="cannot be read"):
        start_server(secret=new_secret() + ".not-base64-json")


def test_an_announcement_without_the_runs_mac_is_ignored(tmp_path: Path) -> None:
    """Whoever writes shard-N.json first must not receive the secret: the driver believes
    only an announcement with the run's MAC."""
    secret = tls.with_tls(new_secret())
    shards = SparkShards(None, 1, secret=secret, work_root=str(tmp_path))
    shards.generation = 1
    folder = tmp_path / "shards-1"
    folder.mkdir()
    note = {"address": "127.0.0.1:1", "pid": os.getpid(), "executor": "1", "attempt": 0,
            "index": 0}
    import json

    for forged in [note, signed(note, new_secret()), {**signed(note, secret), "address":
                                                      "10.9.9.9:1"}, signed(note, secret) | {
                                                          "index": 1}]:
        (folder / "shard-0.json").write_text(json.dumps(forged))
        assert shards._read(*_fs(folder)) == []
    (folder / "shard-0.json").write_text(json.dumps(signed(note, secret)))
    assert [n["address"] for n in shards._read(*_fs(folder))] == ["127.0.0.1:1"]


def _fs(folder: Path) -> tuple[object, str]:
    import fsspec

    return fsspec.filesystem("file"), str(folder)

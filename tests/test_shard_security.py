"""Attacks on a real parameter-server shard on loopback: calls without the run's secret, and
requests that name paths outside the shard's roots. Each must be refused, and leave no trace."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import fsspec
import grpc
import numpy as np
import pytest
from test_ps import a_batch, specs

from distw2v.config import SparkConfig
from distw2v.distributed import stream
from distw2v.distributed.client import PSClient
from distw2v.distributed.processes import ANNOUNCE, ShardProcesses
from distw2v.distributed.row_client import RowClient
from distw2v.distributed.rows import RowSpec, placement
from distw2v.distributed.server import (
    OPTIONS,
    SECRET_ENV,
    SECRET_HEADER,
    SERVICE,
    new_secret,
    start_server,
)
from distw2v.distributed.shard import ParameterShard
from distw2v.distributed.stream import FRAME, OK, UNAUTHENTICATED, read_frame, write_frame
from distw2v.distributed.wire import pack, unpack
from distw2v.errors import Distw2vError

SECRET = new_secret()
METHODS = ("Configure", "Dot", "Update", "Pull", "Checkpoint", "Load", "Health", "Stats",
           "RowConfigure", "RowStep", "RowPullRange", "RowCheckpoint", "RowLoad")


@pytest.fixture()
def roots(tmp_path):
    work, ckpt = tmp_path / "work", tmp_path / "ckpt"
    work.mkdir()
    ckpt.mkdir()
    np.save(work / "counts.npy", np.arange(20, 0, -1).astype(np.int64) * 10)
    return work, ckpt


@pytest.fixture()
def shard(roots):
    """(address, service) of a shard with a secret and both roots."""
    work, ckpt = roots
    server, port, service = start_server(secret=SECRET, checkpoint_root=str(ckpt),
                                         work_root=str(work))
    yield f"127.0.0.1:{port}", service
    server.stop(None)


def raw_call(address: str, method: str, request: bytes, secret: str | None) -> grpc.RpcError:
    """The attacker: a bare gRPC channel, not PSClient; returns the error the call got."""
    metadata = ((SECRET_HEADER, secret),) if secret is not None else ()
    with grpc.insecure_channel(address, options=OPTIONS) as channel:
        with pytest.raises(grpc.RpcError) as caught:
            channel.unary_unary(f"/{SERVICE}/{method}")(request, timeout=10, metadata=metadata)
    return caught.value


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET[:-1]])
def test_calls_without_the_secret_are_refused(shard, roots, tmp_path, secret) -> None:
    address, service = shard
    spec = asdict(specs(str(roots[0] / "counts.npy"), 1)[0])
    requests = {"Configure": pack({"spec": spec}),
                "Checkpoint": pack({"uri": str(roots[1] / "e1")}),
                "Load": pack({"uri": str(roots[1] / "e1"), "spec": spec})}
    for method in METHODS:
        error = raw_call(address, method, requests.get(method, pack({})), secret)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, method
        assert "needs the run's secret" in error.details()
    assert service.shard.spec is None and service.bytes_in == 0  # nothing reached the shard
    assert service.rows.spec is None


def test_the_right_secret_works_and_a_wrong_one_is_named(shard, roots) -> None:
    address, _ = shard
    with PSClient([address], secret=SECRET) as client:
        client.configure(specs(str(roots[0] / "counts.npy"), 1))
        client.dot(a_batch())
        client.checkpoint(str(roots[1] / "epoch-1"))
        client.load(f"file://{roots[1]}/epoch-1", specs(str(roots[0] / "counts.npy"), 1))
        assert client.stats()[0]["configured"]
    assert (roots[1] / "epoch-1" / "shard-0-12.json").exists()
    with PSClient([address], secret="wrong", retries=0) as client:
        with pytest.raises(Distw2vError, match=f"shard 0 at {address} refused the secret"):
            client.stats()


def escapes(tmp_path: Path, ckpt: Path) -> list[tuple[str, Path | None]]:
    """(URI an attacker sends, the local path it would write, if any)."""
    other = tmp_path / "other"
    return [(str(other), other),
            (f"{ckpt}/../other", other),
            (f"file://{other}", other),
            (str(ckpt), ckpt / "shard-0-12.json"),  # the root itself, not under it
            ("memory://ckpt/e1", None),
            (f"simplecache::file://{ckpt}/e1", ckpt / "e1"),
            ("/etc/distw2v-e1", Path("/etc/distw2v-e1"))]


def test_checkpoint_and_load_outside_the_root_are_refused(shard, roots, tmp_path) -> None:
    address, _ = shard
    work, ckpt = roots
    with PSClient([address], secret=SECRET) as client:
        client.configure(specs(str(work / "counts.npy"), 1))
        for uri, written in escapes(tmp_path, ckpt):
            with pytest.raises(Distw2vError, match="not under|'::'|'\\.\\.'"):
                client.checkpoint(uri)
            assert written is None or not written.exists(), uri
        assert not fsspec.filesystem("memory").exists("/ckpt")
        # a real checkpoint outside the root cannot be loaded (the model would be the caller's)
        outside = ParameterShard()
        outside.configure(specs(str(work / "counts.npy"), 1)[0])
        outside.checkpoint(str(tmp_path / "planted"))
        for uri in (str(tmp_path / "planted"), f"{ckpt}/../planted"):
            with pytest.raises(Distw2vError, match="not under|'\\.\\.'"):
                client.load(uri, specs(str(work / "counts.npy"), 1))


def test_counts_outside_the_work_dir_are_refused(shard, roots, tmp_path) -> None:
    address, service = shard
    work, ckpt = roots
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    np.save(elsewhere / "counts.npy", np.ones(20, dtype=np.int64))
    np.save(work / "other.npy", np.ones(20, dtype=np.int64))
    bad = [str(elsewhere / "counts.npy"), f"{work}/../elsewhere/counts.npy",
           "memory://work/counts.npy", f"simplecache::file://{work}/counts.npy",
           str(work / "other.npy")]
    with PSClient([address], secret=SECRET) as client:
        for uri in bad:
            with pytest.raises(Distw2vError, match="not under|'::'|'\\.\\.'|not a counts.npy"):
                client.configure(specs(uri, 1))
            assert service.shard.spec is None, uri
        client.configure(specs(str(work / "counts.npy"), 1))
        client.checkpoint(str(ckpt / "e1"))
        with pytest.raises(Distw2vError, match="not under"):
            client.load(str(ckpt / "e1"), specs(str(elsewhere / "counts.npy"), 1))


def test_a_shard_without_roots_takes_no_checkpoint_and_only_local_counts(roots) -> None:
    server, port, _ = start_server()
    try:
        with PSClient([f"127.0.0.1:{port}"]) as client:
            with pytest.raises(Distw2vError, match="not under / "):
                client.configure(specs("memory://work/counts.npy", 1))
            client.configure(specs(str(roots[0] / "counts.npy"), 1))
            with pytest.raises(Distw2vError, match="without --checkpoint-root"):
                client.checkpoint(str(roots[1] / "e1"))
            with pytest.raises(Distw2vError, match="without --checkpoint-root"):
                client.load(str(roots[1] / "e1"), specs(str(roots[0] / "counts.npy"), 1))
        assert not (roots[1] / "e1").exists()
    finally:
        server.stop(None)


def ps_shard(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != SECRET_ENV}
    return subprocess.run([sys.executable, "-m", "distw2v.cli", "ps-shard", "--port", "0",
                           *args], capture_output=True, text=True, timeout=60,
                          env={**clean, **(env or {})})


def test_ps_shard_will_not_bind_beyond_loopback_without_a_secret(tmp_path) -> None:
    (tmp_path / "empty").write_text("\n")
    for args, message in [(("--host", "0.0.0.0"), "binding 0.0.0.0 needs --secret-file"),
                          (("--secret-file", str(tmp_path / "none")), "cannot read"),
                          (("--secret-file", str(tmp_path / "empty")), "is empty")]:
        run = ps_shard(*args)
        assert run.returncode == 2, run.stderr
        assert run.stdout == "" and "Traceback" not in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and message in run.stderr


def test_ps_shard_reads_its_secret_file(tmp_path, roots) -> None:
    (tmp_path / "secret").write_text(SECRET + "\n")
    proc = subprocess.Popen([sys.executable, "-m", "distw2v.cli", "ps-shard", "--port", "0",
                             "--secret-file", str(tmp_path / "secret"),
                             "--work-dir", str(roots[0])], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith(ANNOUNCE), line
        address = line[len(ANNOUNCE):].strip()
        error = raw_call(address, "Stats", pack({}), None)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        with PSClient([address], secret=SECRET) as client:
            client.configure(specs(str(roots[0] / "counts.npy"), 1))
    finally:
        proc.kill()
        proc.wait()


def test_driver_started_shards_get_the_secret_outside_argv(roots) -> None:
    work, ckpt = roots
    with ShardProcesses(SparkConfig(shards=1), work_root=str(work),
                        checkpoint_root=str(ckpt)) as shards:
        assert shards.secret and shards.secret != ShardProcesses(SparkConfig()).secret
        pid = shards.procs[0].pid
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert shards.secret.encode() not in b" ".join(argv)
        assert str(work).encode() in argv and str(ckpt).encode() in argv
        error = raw_call(shards.addresses[0], "Stats", pack({}), None)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        with PSClient(shards.addresses, secret=shards.secret) as client:
            client.configure(specs(str(work / "counts.npy"), 1))
            client.checkpoint(str(ckpt / "epoch-1"))
            with pytest.raises(Distw2vError, match="not under"):
                client.checkpoint(str(work / "epoch-1"))
    assert not (work / "epoch-1").exists()


def test_operator_shards_secret_comes_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    assert ShardProcesses(SparkConfig(ps="127.0.0.1:7070")).secret == SECRET
    monkeypatch.delenv(SECRET_ENV)
    assert ShardProcesses(SparkConfig(ps="127.0.0.1:7070")).secret is None


def test_the_shard_uses_the_path_it_checked(shard, roots) -> None:
    address, service = shard
    with PSClient([address], secret=SECRET) as client:
        client.configure(specs(f"{roots[0]}/./counts.npy", 1))
    assert service.shard.spec is not None
    assert service.shard.spec.counts_uri == str(roots[0] / "counts.npy")


def test_row_checkpoints_outside_the_root_are_refused(shard, roots, tmp_path) -> None:
    address, _ = shard
    spec = RowSpec(vocab_size=20, dim=4, shard=0, shards=1)
    with RowClient([address], placement(spec), 4, secret=SECRET) as client:
        client.configure([spec])
        for uri, written in escapes(tmp_path, roots[1]):
            with pytest.raises(Distw2vError, match="not under|'::'|'\\.\\.'"):
                client.checkpoint(uri)
            assert written is None or not written.exists(), uri
            with pytest.raises(Distw2vError, match="not under|'::'|'\\.\\.'"):
                client.load(uri, [spec])


# --- the stream (stream.py): the training calls' own listener, attacked directly -----------

def stream_peer(service: Any) -> socket.socket:
    return socket.create_connection(("127.0.0.1", service.stream_port), timeout=30)


def closed(peer: socket.socket) -> bool:
    """Whether the shard has closed the connection (reads to end of stream)."""
    try:
        while peer.recv(1 << 16):
            pass
    except ConnectionResetError:
        pass
    return True


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET[:-1], SECRET + "x"])
def test_the_stream_refuses_peers_without_the_secret(shard, roots, secret) -> None:
    _, service = shard
    spec = asdict(specs(str(roots[0] / "counts.npy"), 1)[0])
    configure = b"Configure\0" + pack({"spec": spec})
    with stream_peer(service) as peer:
        if secret is None:
            assert len(read_frame(peer)) == stream.NONCE  # the shard's challenge
            write_frame(peer, configure)  # without a hello this is read as one, and refused
            assert read_frame(peer) == bytes([UNAUTHENTICATED])
        else:
            with pytest.raises(PermissionError, match="refused the secret"):
                stream.client_hello(peer, secret)
        assert closed(peer)
    assert service.shard.spec is None and service.bytes_in == 0  # nothing reached the shard


def test_the_stream_reads_no_more_than_a_hello_before_the_secret(shard, monkeypatch) -> None:
    _, service = shard
    with stream_peer(service) as peer:  # claims a 1 GiB hello: dropped unread
        peer.sendall(FRAME.pack(1 << 30) + b"x" * 1000)
        assert closed(peer)
    monkeypatch.setattr(stream, "HELLO_SECONDS", 0.2)
    with stream_peer(service) as peer:  # says nothing: dropped after HELLO_SECONDS
        assert closed(peer)
    assert service.bytes_in == 0


def test_the_stream_names_bad_requests_and_goes_on(shard, roots) -> None:
    _, service = shard
    with stream_peer(service) as peer:
        stream.client_hello(peer, SECRET)
        for request, says in [(b"no method here", b"names no method"),
                              (b"Steal\0" + pack({}), b"no method 'Steal'"),
                              (b"Dot\0garbage", b"malformed parameter-server message"),
                              (b"Dot\0" + pack({"seed": 1}), b"bad request"),
                              (b"Health\0" + pack({}), None)]:
            write_frame(peer, request)
            reply = read_frame(peer)
            if says is None:
                assert reply[0] == OK and unpack(reply[1:])[0]["serving"]
            else:
                assert reply[0] != OK and says in reply[1:], reply
    assert service.shard.spec is None


def test_a_row_step_with_a_bad_part_changes_nothing(shard) -> None:
    """A push and a pull in one call: the pull's rows are read before the push applies, so a
    call the shard refuses (one sentence) leaves its rows and word count as they were."""
    _, service = shard
    spec = RowSpec(vocab_size=20, dim=4, shard=0, shards=1)
    service.rows.configure(spec)
    before0, before1 = service.rows.syn0.copy(), service.rows.syn1.copy()
    at = np.array([1, 5], dtype=np.int32)
    push = {"kind_push_in": "indices", "kind_push_out": "indices", "words": 9}
    good = {"at_push_in": at, "at_push_out": np.zeros(0, np.int32),
            "in0": np.ones((2, 4), np.float32), "in1": np.ones((2, 4), np.float32),
            "out1": np.zeros((0, 4), np.float32)}
    pull = {"kind_pull_in": "indices", "kind_pull_out": "indices"}
    with stream_peer(service) as peer:
        stream.client_hello(peer, SECRET)
        for header, arrays, says in [
            ({**push, **pull}, {**good, "at_pull_in": np.array([3, 2], np.int32),
                                "at_pull_out": np.zeros(0, np.int32)}, b"sorted, unique"),
            ({**push, **pull}, {**good, "at_pull_in": np.array([20], np.int32),
                                "at_pull_out": np.zeros(0, np.int32)}, b"in [0, 20)"),
            ({**push, **pull, "kind_pull_out": "bitmap"},
             {**good, "at_pull_in": at, "at_pull_out": np.zeros(1, np.uint8)},
             b"must be 3 bytes"),
            ({**push, "words": None}, good, b"bad request"),
            (push, {**good, "in1": np.ones((3, 4), np.float32)}, b"must be float32 of shape"),
        ]:
            write_frame(peer, b"RowStep\0" + pack(header, **arrays))
            reply = read_frame(peer)
            assert reply[0] != OK and says in reply[1:], reply
        np.testing.assert_array_equal(service.rows.syn0, before0)
        np.testing.assert_array_equal(service.rows.syn1, before1)
        assert service.rows.global_words == 0
        # the same push with a good pull of the rows it changed: applied, then read
        write_frame(peer, b"RowStep\0" + pack({**push, **pull}, **good, at_pull_in=at,
                                                at_pull_out=np.zeros(0, np.int32)))
        reply = read_frame(peer)
        assert reply[0] == OK
        header, rows = unpack(reply[1:])
        assert header["global_words"] == 9
        np.testing.assert_allclose(rows["in0"], before0[at] + 1)
        np.testing.assert_allclose(rows["in1"], before1[at] + 1)


def test_the_stream_listens_where_grpc_does(tmp_path) -> None:
    server, _, service = start_server("127.0.0.1")
    try:
        assert server.stream._listener.getsockname()[:2] == ("127.0.0.1", service.stream_port)
    finally:
        server.stop(None)


def test_ps_shard_takes_its_stream_port_and_names_one_in_use() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        run = ps_shard("--port", "0", "--stream-port", str(port))
        assert run.returncode == 2, run.stderr
        assert run.stdout == "" and "Traceback" not in run.stderr
        assert f"cannot listen on 127.0.0.1:{port} for the training calls" in run.stderr
    server, _, service = start_server(stream_port=port)  # free now: the stream takes it
    try:
        assert service.stream_port == port
    finally:
        server.stop(None)


def test_a_failing_call_on_the_stream_is_named_and_the_stream_goes_on() -> None:
    def respond(name: str, message: memoryview) -> bytes:
        if name == "Boom":
            raise RuntimeError("a bug")
        return b"fine"

    server = stream.StreamServer("127.0.0.1", 0, respond, SECRET)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as peer:
            stream.client_hello(peer, SECRET)
            write_frame(peer, b"Boom\0")
            reply = read_frame(peer)
            assert reply[0] == stream.REFUSED
            assert b"the shard failed on this call (RuntimeError: a bug)" in reply
            write_frame(peer, b"Other\0")
            assert read_frame(peer) == bytes([OK]) + b"fine"
    finally:
        server.stop()

"""Parameter-server shards over real gRPC on loopback: round trips, traffic, failures."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import replace

import numpy as np
import pytest
from test_kernels import tiny_problem

from distw2v.distributed.client import (
    PSClient,
    ShardUnavailableError,
    batch_message,
    column_ranges,
)
from distw2v.distributed.processes import ANNOUNCE
from distw2v.distributed.server import start_server
from distw2v.distributed.shard import Batch, ParameterShard, ShardSpec
from distw2v.distributed.wire import pack, unpack
from distw2v.errors import Distw2vError
from distw2v.kernels.columns import draw_batch_negatives, make_windows
from distw2v.kernels.reference import columns_reference

VOCAB, DIM, NEG = 20, 12, 4


@pytest.fixture()
def counts_file(tmp_path):
    path = tmp_path / "counts.npy"
    np.save(path, np.arange(VOCAB, 0, -1).astype(np.int64) * 10)
    return str(path)


def specs(counts_uri: str, shards: int) -> list[ShardSpec]:
    return [ShardSpec(vocab_size=VOCAB, dim=DIM, lo=lo, hi=hi, negative=NEG, seed=3,
                      counts_uri=counts_uri, shards=shards)
            for lo, hi in column_ranges(DIM, shards)]


def a_batch(seed: int = 11) -> Batch:
    ids, offsets, _, _, keep, _, _ = tiny_problem(6, vocab=VOCAB, sentences=8)
    centers, ctx_offsets, contexts, _ = make_windows(ids, offsets, 0, len(offsets) - 1, keep, 3,
                                                     np.uint64(5))
    return Batch(centers=centers, ctx_offsets=ctx_offsets, contexts=contexts, seed=seed)


def test_wire_round_trip_and_garbage() -> None:
    header, arrays = unpack(pack({"seed": 7}, a=np.arange(5, dtype=np.int32),
                                 b=np.ones((2, 3), dtype=np.float32)))
    assert header == {"seed": 7}
    assert arrays["a"].tolist() == [0, 1, 2, 3, 4] and arrays["b"].shape == (2, 3)
    # every array is read in place aligned for its dtype, whatever precedes it (numba runs
    # slower code on unaligned arrays), and the odd-sized ones survive the padding
    for header_text in ("", "x", "xyz" * 7):
        _, arrays = unpack(pack({"h": header_text}, u=np.arange(3, dtype=np.uint8),
                                i=np.arange(5, dtype=np.int32), q=np.arange(3, dtype=np.int64),
                                f=np.ones((3, 3), dtype=np.float32)))
        assert all(a.flags.aligned for a in arrays.values())
        assert arrays["u"].tolist() == [0, 1, 2] and arrays["q"].tolist() == [0, 1, 2]
        assert arrays["i"].tolist() == [0, 1, 2, 3, 4] and arrays["f"].sum() == 9
    with pytest.raises(Distw2vError, match="malformed"):
        unpack(b"\x05\x00\x00\x00{}")
    with pytest.raises(Distw2vError, match="malformed"):
        unpack(pack({}, a=np.zeros(3, dtype=object).astype(np.int32))[:-1])


@pytest.mark.parametrize("shards", [1, 2, 3])
def test_grpc_shards_train_like_the_whole_matrix_reference(counts_file, shards: int) -> None:
    servers = [start_server(secret="s3cret") for _ in range(shards)]
    try:
        addresses = [f"127.0.0.1:{port}" for _, port, _ in servers]
        with PSClient(addresses, secret="s3cret") as client:
            client.configure(specs(counts_file, shards))
            syn0 = client.pull(0, VOCAB)
            syn1 = client.pull(0, VOCAB, "syn1")
            batch = a_batch()
            dots, words = client.dot(batch, words=17)
            assert words == 17
            client.update((batch.key, dots, 0.2))
            shard = ParameterShard()
            shard.configure(specs(counts_file, 1)[0])
            negatives = draw_batch_negatives(len(batch.centers), NEG, shard.neg_prob,
                                             shard.neg_alias, np.uint64(batch.seed))
            columns_reference(syn0, syn1, batch.centers, batch.ctx_offsets, batch.contexts,
                              negatives, 0.2, [0] + [hi for _, hi in column_ranges(DIM, shards)])
            np.testing.assert_allclose(client.pull(0, VOCAB), syn0, rtol=1e-4, atol=1e-6)
            np.testing.assert_allclose(client.pull(0, VOCAB, "syn1"), syn1, rtol=1e-4,
                                       atol=1e-6)
            stats = client.stats()
            assert all(s["pairs_updated"] == batch.pairs for s in stats)
            assert sum(s["bytes_in"] for s in stats) > 0
            assert client.bytes_sent > 0 and client.bytes_received > 0
    finally:
        for server, _, _ in servers:
            server.stop(None)


def test_traffic_per_pair_does_not_grow_with_dimension(tmp_path) -> None:
    np.save(tmp_path / "counts.npy", np.arange(VOCAB, 0, -1).astype(np.int64))
    sent = {}
    for dim in (8, 512):
        servers = [start_server() for _ in range(2)]
        try:
            with PSClient([f"127.0.0.1:{p}" for _, p, _ in servers]) as client:
                counts = str(tmp_path / "counts.npy")
                client.configure([ShardSpec(vocab_size=VOCAB, dim=dim, lo=lo, hi=hi,
                                            negative=NEG, seed=1, counts_uri=counts, shards=2)
                                  for lo, hi in column_ranges(dim, 2)])
                before = client.bytes_sent + client.bytes_received
                batch = a_batch()
                dots, _ = client.dot(batch)
                client.update((batch.key, dots, 0.1))
                sent[dim] = client.bytes_sent + client.bytes_received - before
        finally:
            for server, _, _ in servers:
                server.stop(None)
    assert sent[512] == sent[8]


def test_bad_requests_get_clear_errors(counts_file) -> None:
    server, port, _ = start_server()
    try:
        with PSClient([f"127.0.0.1:{port}"]) as client:
            with pytest.raises(Distw2vError, match="not been configured"):
                client.dot(a_batch())
            client.configure(specs(counts_file, 1))
            bad = a_batch()
            bad = Batch(centers=bad.centers + VOCAB, ctx_offsets=bad.ctx_offsets,
                        contexts=bad.contexts, seed=1)
            with pytest.raises(Distw2vError, match="outside the vocabulary"):
                client.dot(bad)
            dots, _ = client.dot(a_batch())
            with pytest.raises(Distw2vError, match="did not see"):  # round 2 names the batch
                client.update(((12, 1, 1), dots, 0.1))
            with pytest.raises(Distw2vError, match="bad request"):
                client._same("Update", {"key": [1, 2], "alpha": 0.1}, dots=dots)
    finally:
        server.stop(None)


def test_round_two_rides_with_the_next_round_one(counts_file) -> None:
    """A batch's round 2 sent with the next batch's round 1 is applied first: the same
    columns and the same next dots as the two calls apart."""
    servers = [start_server() for _ in range(4)]
    try:
        apart, riding = ([f"127.0.0.1:{port}" for _, port, _ in servers[k:k + 2]]
                         for k in (0, 2))
        with PSClient(apart) as one, PSClient(riding) as other:
            first, second = a_batch(11), a_batch(12)
            results = []
            for client, together in ((one, False), (other, True)):
                client.configure(specs(counts_file, 2))
                dots, _ = client.dot(first)
                if together:
                    next_dots, _ = client.dot(second, 0, (first.key, dots, 0.2))
                else:
                    client.update((first.key, dots, 0.2))
                    next_dots, _ = client.dot(second)
                results.append((next_dots, client.pull(0, VOCAB), client.pull(0, VOCAB, "syn1")))
            for got, want in zip(results[1], results[0]):
                np.testing.assert_array_equal(got, want)
            assert np.abs(results[0][2]).sum() > 0  # round 2 trained syn1 (it starts at zero)
    finally:
        for server, _, _ in servers:
            server.stop(None)


def test_a_refused_call_on_the_streams_leaves_the_next_ones_replies_in_place(
        counts_file) -> None:
    """Every shard's reply to a refused call is read before the refusal is raised, so the
    next call's replies are its own."""
    servers = [start_server() for _ in range(2)]
    try:
        with PSClient([f"127.0.0.1:{port}" for _, port, _ in servers]) as client:
            client.configure(specs(counts_file, 2))

            def dot(words: int) -> bytes:
                msg = batch_message(a_batch(words), words=words)
                return pack(msg["header"], **msg["arrays"])

            assert unpack(client._call("Dot", [dot(3)] * 2)[0])[0]["global_words"] == 3
            with pytest.raises(Distw2vError, match="shard 0 at .* refused the request: bad"):
                client._call("Dot", [pack({"words": 1})] * 2)  # names no batch
            with pytest.raises(Distw2vError, match="shard 1 at .* refused the request: bad"):
                client._call("Dot", [dot(4), pack({"words": 1})])  # one shard refuses
            _, words = client.dot(a_batch(5), 2)  # the streams go on, in step
            assert words == 9  # 3 + 4 (shard 0 took the half-refused call) + 2
    finally:
        for server, _, _ in servers:
            server.stop(None)


def test_checkpoint_and_load_round_trip(counts_file, tmp_path) -> None:
    shard = ParameterShard()
    shard.configure(specs(counts_file, 2)[1])
    batch = a_batch()
    dots, _ = shard.dot(batch, 5)
    shard.update(batch.key, dots, 0.3)
    shard.checkpoint(str(tmp_path / "ckpt"))
    other = ParameterShard()
    moved = tmp_path / "moved-counts.npy"
    shutil.copy(counts_file, moved)
    other.load(str(tmp_path / "ckpt"), replace(specs(counts_file, 2)[1], counts_uri=str(moved)))
    assert np.array_equal(other.syn0, shard.syn0) and np.array_equal(other.syn1, shard.syn1)
    assert other.global_words == 5 and other.spec is not None
    assert other.spec.counts_uri == str(moved)
    assert np.array_equal(other.dot(batch, 0)[0], shard.dot(batch, 0)[0])  # same negatives
    with pytest.raises(Distw2vError, match="no readable checkpoint"):
        other.load(str(tmp_path / "ckpt"), specs(counts_file, 2)[0])
    with pytest.raises(Distw2vError, match="belongs to another model"):
        other.load(str(tmp_path / "ckpt"), replace(specs(counts_file, 2)[1], seed=99))
    (tmp_path / "ckpt" / "syn1-6-12.npy").write_bytes(b"\x93NUMPY")
    with pytest.raises(Distw2vError, match="unreadable|truncated"):
        other.load(str(tmp_path / "ckpt"), specs(counts_file, 2)[1])


def test_killed_shard_fails_fast_naming_it(counts_file) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "distw2v.cli", "ps-shard", "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        assert line.startswith(ANNOUNCE)
        address = line[len(ANNOUNCE):].strip()
        client = PSClient([address], timeout=5, retries=2)
        client.configure(specs(counts_file, 1))
        client.dot(a_batch())
        proc.kill()
        proc.wait()
        sends: list[str] = []
        send = client._send

        def counted(method: str, shard: int, request: bytes) -> Future[bytes]:
            sends.append(method)
            return send(method, shard, request)

        client._send = counted  # type: ignore[method-assign]

        def ends(call: Callable[[], object]) -> BaseException | None:
            outcome: list[BaseException | None] = []
            ended = threading.Event()

            def run() -> None:
                try:
                    call()
                    outcome.append(None)
                except BaseException as exc:
                    outcome.append(exc)
                finally:
                    ended.set()

            threading.Thread(target=run, daemon=True).start()
            # the call ends (120 s only bounds a failure)
            assert ended.wait(120), "the client kept waiting for a dead shard"
            return outcome[0]

        # a training call (its stream) gives up at once: resent, a round 2 could apply twice
        error = ends(lambda: client.dot(a_batch()))
        assert isinstance(error, ShardUnavailableError), error
        assert f"shard 0 at {address}" in str(error)
        # a gRPC call gives up after the first try and its 2 retries (each refused at once or
        # cut off by the 5 s timeout), no more
        error = ends(client.stats)
        assert isinstance(error, ShardUnavailableError), error
        assert f"shard 0 at {address}" in str(error)
        assert sends == ["Stats"] * 3, sends
        client.close()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_driver_started_shard_exits_when_its_driver_dies(tmp_path) -> None:
    # a stand-in driver that starts a shard the way ShardProcesses does, then dies abruptly
    script = tmp_path / "driver.py"
    script.write_text(
        "import subprocess, sys, os\n"
        "p = subprocess.Popen([sys.executable, '-m', 'distw2v.cli', 'ps-shard', '--port', '0',"
        " '--stop-on-stdin-eof'], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)\n"
        "print(p.stdout.readline().strip(), p.pid, flush=True)\n"
        "os._exit(9)\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=60).stdout.split()
    pid = int(out[-1])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return  # gone, as it should be
        time.sleep(0.2)
    os.kill(pid, 9)
    raise AssertionError("the shard outlived its driver")

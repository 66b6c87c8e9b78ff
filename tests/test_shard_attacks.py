"""The attacks of the second security review, run for real against shards on loopback: by a
holder of the run's secret (requests that would make a kernel read or write outside its
arrays, specs that would take the shard's memory, configures racing training calls) and by
anyone who reaches the ports (slow hellos, gRPC calls that never send their message or send
huge ones, a captured hello replayed). Each must be refused, and the shard must live on."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distw2v.config import SparkConfig, check_bounds
from distw2v.distributed import checks, stream
from distw2v.distributed.client import PSClient
from distw2v.distributed.processes import ShardProcesses
from distw2v.distributed.rows import RowShard, RowSpec
from distw2v.distributed.server import OPTIONS, SECRET_HEADER, SERVICE, new_secret, start_server
from distw2v.distributed.shard import Batch, ParameterShard, ShardSpec
from distw2v.distributed.wire import pack, unpack
from distw2v.errors import Distw2vError

VOCAB, DIM, NEG = 50, 8, 3


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} for {pid}")


@pytest.fixture()
def work(tmp_path: Path) -> Path:
    np.save(tmp_path / "counts.npy", np.arange(VOCAB, 0, -1).astype(np.int64) * 10)
    return tmp_path


def column_spec(work: Path, **change: Any) -> dict[str, Any]:
    spec = ShardSpec(vocab_size=VOCAB, dim=DIM, lo=0, hi=DIM, negative=NEG, seed=3,
                     counts_uri=str(work / "counts.npy"))
    return {**asdict(spec), **change}


def row_spec(**change: Any) -> dict[str, Any]:
    return {**asdict(RowSpec(vocab_size=VOCAB, dim=DIM, shard=0, shards=1)), **change}


@pytest.fixture()
def shard_process(work: Path) -> Iterator[ShardProcesses]:
    """One `distw2v ps-shard` process with a secret: a crash shows as its exit."""
    with ShardProcesses(SparkConfig(shards=1), work_root=str(work)) as shards:
        yield shards


class Peer:
    """The run's own side of a stream, speaking raw requests (a compromised task)."""

    def __init__(self, address: str, secret: str | None) -> None:
        with PSClient([address], secret=secret) as client:
            port = unpack(client._same("Health", {})[0])[0]["stream_port"]
        self.sock = socket.create_connection((address.rsplit(":", 1)[0], port), timeout=60)
        stream.client_hello(self.sock, secret)

    def call(self, method: str, message: bytes) -> tuple[int, bytes]:
        stream.write_frame(self.sock, method.encode() + b"\0", message)
        reply = stream.read_frame(self.sock)
        return reply[0], reply[1:]

    def close(self) -> None:
        self.sock.close()


def configured(shards: ShardProcesses, method: str, spec: dict[str, Any]) -> Peer:
    peer = Peer(shards.addresses[0], shards.secret)
    status, said = peer.call(method, pack({"spec": spec}))
    assert status == stream.OK, said
    return peer


def alive(shards: ShardProcesses, peer: Peer) -> None:
    assert shards.lost() is None
    status, reply = peer.call("Health", pack({}))
    assert status == stream.OK and unpack(reply)[0]["serving"]


def refused(peer: Peer, method: str, message: bytes, says: str) -> None:
    status, reply = peer.call(method, message)
    text = reply.decode()
    assert status in (stream.REFUSED, stream.INVALID), text
    assert says in text and "\n" not in text and "failed on this call" not in text, text


# --- memory safety: a holder of the secret ----------------------------------------------------

def test_a_dot_whose_offsets_run_past_its_contexts_is_refused(shard_process, work) -> None:
    """The review's heap overflows: ctx_offsets [0, 2**31] with one context SIGSEGVed the
    shard; [0, 4000] with 4,000 ids smuggled in an extra array wrote past a one-row buffer."""
    peer = configured(shard_process, "Configure", column_spec(work))
    one = {"centers": np.array([1], np.int32), "contexts": np.array([2], np.int32)}
    refused(peer, "Dot", pack({"seed": 1, "words": 1}, **one,
                              ctx_offsets=np.array([0, 2**31], np.int64)),
            "context offsets must run from 0")
    refused(peer, "Dot", pack({"seed": 1, "words": 1}, **one,
                              ctx_offsets=np.array([0, 4000], np.int64),
                              smuggled=np.full(4000, 3, np.int32)),
            "unknown array 'smuggled'")
    for offsets, says in [([0, 1, 0], "needs 2 context offsets"), ([1, 1], "from 0"),
                          ([-5, 1], "from 0")]:
        refused(peer, "Dot", pack({"seed": 1, "words": 1}, **one,
                                  ctx_offsets=np.array(offsets, np.int64)), says)
    for name, value, says in [
            ("centers", np.array([VOCAB], np.int32), "outside the vocabulary"),
            ("contexts", np.array([-1], np.int32), "outside the vocabulary"),
            ("centers", np.array([1], np.int64), "must be 1-dimensional int32"),
            ("contexts", np.array([[2]], np.int32), "must be 1-dimensional int32")]:
        arrays = {**one, "ctx_offsets": np.array([0, 1], np.int64), name: value}
        refused(peer, "Dot", pack({"seed": 1, "words": 1}, **arrays), says)
    # CBOW divides by a centre's contexts: a centre without any is refused, not a NaN row
    refused(peer, "Dot", pack({"seed": 1, "words": 1}, centers=np.array([1, 2], np.int32),
                              ctx_offsets=np.array([0, 1, 1], np.int64),
                              contexts=np.array([2], np.int32)), "at least one context")
    alive(shard_process, peer)


def test_a_round_2_that_does_not_fit_changes_nothing(shard_process, work) -> None:
    peer = configured(shard_process, "Configure", column_spec(work))
    batch = {"centers": np.array([1], np.int32), "ctx_offsets": np.array([0, 2], np.int64),
             "contexts": np.array([2, 3], np.int32)}
    status, reply = peer.call("Dot", pack({"seed": 9, "words": 2}, **batch))
    assert status == stream.OK
    dots = unpack(reply)[1]["dots"]
    key = [9, 2, 1]
    for header, arrays, says in [
            ({"key": key, "alpha": 0.1}, {"dots": dots[:1]}, "do not fit"),
            ({"key": key, "alpha": 0.1}, {"dots": dots.astype(np.int32)}, "2-dimensional float32"),
            ({"key": key, "alpha": 0.1}, {"dots": np.full_like(dots, np.nan)}, "not finite"),
            ({"key": key, "alpha": float("nan")}, {"dots": dots}, "alpha must be a number"),
            ({"key": key, "alpha": 5.0}, {"dots": dots}, "alpha must be a number"),
            ({"key": [9, 2], "alpha": 0.1}, {"dots": dots}, "three integers")]:
        refused(peer, "Update", pack(header, **arrays), says)
    status, reply = peer.call("Stats", pack({}))
    assert unpack(reply)[0]["pairs_updated"] == 0  # none of them touched the columns
    status, _ = peer.call("Update", pack({"key": key, "alpha": 0.1}, dots=dots))
    assert status == stream.OK  # the batch was still waiting for its round 2
    alive(shard_process, peer)


def test_specs_and_numbers_out_of_bounds_are_refused_in_one_sentence(shard_process,
                                                                     work) -> None:
    """negative=10**9 took a shard to 9.6 GB with one centre; a negative seed raised a bare
    OverflowError."""
    pid = shard_process.procs[0].pid
    peer = Peer(shard_process.addresses[0], shard_process.secret)
    for change, says in [({"negative": 10**9}, "negative must be at most 1000"),
                         ({"seed": -1}, "seed must not be negative"),
                         ({"vocab_size": 10**12}, "vocab_size must be at most"),
                         ({"dim": "100"}, "must be an integer"),
                         ({"hi": True}, "must be an integer"),
                         ({"mystery": 1}, "no field 'mystery'")]:
        refused(peer, "Configure", pack({"spec": column_spec(work, **change)}), says)
    for change, says in [({"dim": 10**6}, "dim must be at most"),
                         ({"adagrad_eta": float("inf")}, "finite number"),
                         ({"vocab_size": 2**31 - 1, "dim": 10_000}, "more than this machine's"),
                         ({"shard": 3}, "not one of 1")]:
        refused(peer, "RowConfigure", pack({"spec": row_spec(**change)}), says)
    status, _ = peer.call("Configure", pack({"spec": column_spec(work)}))
    assert status == stream.OK
    one = {"centers": np.array([1], np.int32), "ctx_offsets": np.array([0, 1], np.int64),
           "contexts": np.array([2], np.int32)}
    for header, says in [({"seed": -1, "words": 1}, "seed must be an integer"),
                         ({"seed": 2**64, "words": 1}, "seed must be an integer"),
                         ({"seed": 1.5, "words": 1}, "seed must be an integer"),
                         ({"seed": 1, "words": -3}, "words must be an integer")]:
        refused(peer, "Dot", pack(header, **one), says)
    assert rss_mb(pid) < 500  # nothing was allocated for any of them
    alive(shard_process, peer)


@pytest.mark.parametrize("kind", ["columns", "rows"])
def test_configure_waits_for_the_calls_under_way(work, kind) -> None:
    """RowConfigure raced pushes (an out-of-bounds write after ~20 s of alternating them);
    the column shard's Configure raced Dot and Update the same way. Now a configure waits
    until no call is under way, and holds new ones back until it is done."""
    if kind == "rows":
        shard: Any = RowShard()
        configure: Any = lambda: shard.configure(RowSpec(**row_spec(vocab_size=10)))  # noqa: E731
        shard.configure(RowSpec(**row_spec()))
    else:
        shard = ParameterShard()
        configure = lambda: shard.configure(ShardSpec(**column_spec(work)))  # noqa: E731
        configure()
    done = threading.Event()
    with shard._gate.call():  # a training call under way
        threading.Thread(target=lambda: (configure(), done.set()), daemon=True).start()
        assert not done.wait(0.3)  # waiting for the call
    assert done.wait(30)


@pytest.mark.slow
def test_configures_racing_row_steps_never_crash_the_shard(shard_process) -> None:
    """The review's race, replayed: one peer reconfigures between a large and a tiny shard
    while two others push and pull the large one's rows. Each call is applied or refused."""
    big, small = row_spec(vocab_size=20_000), row_spec(vocab_size=30)
    configurer = configured(shard_process, "RowConfigure", big)
    at = np.arange(0, 20_000, 7, dtype=np.int32)
    step = pack({"kind_push_in": "indices", "kind_push_out": "indices", "words": 1,
                 "kind_pull_in": "indices", "kind_pull_out": "indices"},
                at_push_in=at, at_push_out=at, in0=np.ones((len(at), DIM), np.float32),
                in1=np.ones((len(at), DIM), np.float32),
                out1=np.ones((len(at), DIM), np.float32), at_pull_in=at, at_pull_out=at)
    stop = threading.Event()
    answers: list[int] = []

    def pusher() -> None:
        peer = Peer(shard_process.addresses[0], shard_process.secret)
        while not stop.is_set():
            answers.append(peer.call("RowStep", step)[0])
        peer.close()

    threads = [threading.Thread(target=pusher) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        deadline, i = time.monotonic() + 120, 0
        # until the pushes have met both shapes many times (applied, and refused in one
        # sentence): then the configures raced them for real
        while i < 100 or min(answers.count(stream.OK), answers.count(stream.REFUSED)) < 20:
            assert time.monotonic() < deadline, answers[-20:]
            status, said = configurer.call("RowConfigure", pack({"spec": (small, big)[i % 2]}))
            assert status == stream.OK, said
            i += 1
            if i % 2 == 0:  # let the pushers meet the large shard too
                time.sleep(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert set(answers) == {stream.OK, stream.REFUSED}
    alive(shard_process, configurer)


# --- before the secret: anyone who reaches the ports -----------------------------------------

def test_slow_hellos_do_not_lock_out_the_runs_clients(shard_process, work) -> None:
    """256 peers dribbling their hello (a byte every 8 s) took every stream slot."""
    address = shard_process.addresses[0]
    with PSClient([address], secret=shard_process.secret) as client:
        port = unpack(client._same("Health", {})[0])[0]["stream_port"]
    strangers = []
    try:
        for _ in range(stream.MAX_CONNECTIONS + stream.MAX_HELLOS):
            peer = socket.create_connection(("127.0.0.1", port), timeout=30)
            peer.send(b"\x40")  # the first byte of a hello's length, and no more
            strangers.append(peer)
        with PSClient([address], secret=shard_process.secret) as client:
            client.configure([ShardSpec(**column_spec(work))])
            batch = {"centers": np.array([1], np.int32), "contexts": np.array([2], np.int32),
                     "ctx_offsets": np.array([0, 1], np.int64)}
            dots, words = client.dot(Batch(seed=1, **batch), 1)
            assert dots.shape == (1, NEG + 1) and words == 1
    finally:
        for peer in strangers:
            peer.close()


def test_a_hello_has_a_deadline_in_all_not_per_read(monkeypatch) -> None:
    monkeypatch.setattr(stream, "HELLO_SECONDS", 1.0)
    server = stream.StreamServer("127.0.0.1", 0, lambda *_: b"", new_secret())
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as peer:
            peer.settimeout(0.1)
            started = time.monotonic()
            dropped = False
            while time.monotonic() - started < 10 and not dropped:
                try:
                    peer.send(b"\0")  # a byte well within any per-read timeout
                    dropped = peer.recv(4096) == b""
                except TimeoutError:
                    continue
                except OSError:
                    dropped = True
            assert dropped and time.monotonic() - started < 5
    finally:
        server.stop()


def test_grpc_calls_that_never_send_their_message_hold_no_thread(shard_process) -> None:
    """8 calls without their message held gRPC's whole pool: the secret was checked after
    the message arrived. Now strangers' calls are refused from their metadata alone."""
    address = shard_process.addresses[0]
    never = threading.Event()

    def silence() -> Iterator[bytes]:
        never.wait(120)
        yield b""

    with grpc.insecure_channel(address, options=OPTIONS) as channel:
        hang = channel.stream_unary(f"/{SERVICE}/Stats")
        calls = [hang.future(silence(), timeout=60) for _ in range(32)]
        try:
            with PSClient([address], secret=shard_process.secret, timeout=10) as client:
                assert client.stats()[0]["peak_rss_mb"] > 0  # answered meanwhile
            for call in calls:
                with pytest.raises(grpc.RpcError) as caught:
                    call.result(timeout=30)
                assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
        finally:
            never.set()


def test_huge_grpc_messages_without_the_secret_are_never_read(shard_process) -> None:
    """Three unauthenticated 300 MB calls took a shard's resident memory to 1.6 GB."""
    address, pid = shard_process.addresses[0], shard_process.procs[0].pid
    before = rss_mb(pid)
    blob = bytes(300 << 20)
    with grpc.insecure_channel(address, options=OPTIONS) as channel:
        call = channel.unary_unary(f"/{SERVICE}/Configure")
        for secret in (None, "wrong", shard_process.secret[:-1]):
            metadata = ((SECRET_HEADER, secret),) if secret else ()
            with pytest.raises(grpc.RpcError) as caught:
                call(blob, timeout=60, metadata=metadata)
            assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert rss_mb(pid) - before < 100, (before, rss_mb(pid))


def test_a_captured_hello_cannot_be_replayed_and_a_fake_shard_learns_nothing() -> None:
    """The hello was the secret itself: captured on lo, it opened a stream of its own. Now
    a fake shard (whoever the client connects to) captures only an answer to its own nonce,
    which the real shard, with a fresh nonce, refuses; and the client refuses the fake."""
    secret = new_secret()
    server, _, service = start_server(secret=secret)
    fake = socket.create_server(("127.0.0.1", 0))
    captured: list[bytes] = []

    def play_the_shard() -> None:
        conn, _ = fake.accept()
        with conn:
            stream.write_frame(conn, bytes(stream.NONCE))
            captured.append(stream.read_frame(conn))
            stream.write_frame(conn, bytes([stream.OK]), bytes(stream.NONCE))

    thread = threading.Thread(target=play_the_shard, daemon=True)
    thread.start()
    try:
        with pytest.raises(PermissionError, match="no shard of this run"):
            stream.StreamConnection("127.0.0.1", fake.getsockname()[1], secret, 30)
        thread.join(30)
        assert captured and secret.encode() not in captured[0]
        with socket.create_connection(("127.0.0.1", service.stream_port), timeout=30) as peer:
            assert len(stream.read_frame(peer)) == stream.NONCE
            stream.write_frame(peer, captured[0])  # the replay
            assert stream.read_frame(peer) == bytes([stream.UNAUTHENTICATED])
            assert peer.recv(1) == b""
        assert service.bytes_in == 0
    finally:
        fake.close()
        server.stop(None)


# --- random messages: a property test per strategy -------------------------------------------

FUZZ_EXAMPLES = 10_000  # per strategy, in the slow tier

_SCALAR = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats()
           | st.text(max_size=12))
_JSON = _SCALAR | st.lists(_SCALAR, max_size=4) | st.dictionaries(st.text(max_size=8), _SCALAR,
                                                                  max_size=3)
_DTYPES = ["<i4", "<i8", "<f4", "<u8", "|u1"]


@st.composite
def _array(draw: Any) -> np.ndarray:
    """An array of a wire dtype and small shape; its values, drawn by a generator hypothesis
    seeds (drawing each value through hypothesis costs more than the call), mix extremes,
    the vocabulary's edges and random numbers."""
    dtype = np.dtype(draw(st.sampled_from(_DTYPES)))
    shape = draw(st.lists(st.integers(0, 6), max_size=3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32)))
    size = int(np.prod(shape)) if shape else 1
    if dtype.kind == "f":
        pool = np.array([np.nan, np.inf, -np.inf, 0.0, 1e38, -1.0], np.float32)
        values = rng.standard_normal(size).astype(np.float32)
    else:
        info = np.iinfo(dtype)
        pool = np.array([v for v in (info.min, info.max, -1, 0, 1, VOCAB - 1, VOCAB, 2**31)
                         if info.min <= v <= info.max], dtype)
        values = rng.integers(0, min(int(info.max), 2 * VOCAB), size, endpoint=True,
                              dtype=dtype)
    edges = rng.random(size) < 0.3
    values[edges] = rng.choice(pool, int(edges.sum()))
    return values.reshape(shape)


def _perturbed(values: np.ndarray, seed: int) -> np.ndarray:
    """`values` with a few elements set to an edge of their dtype or of the vocabulary, or
    moved by a little: what gets past checks of dtype and shape."""
    rng = np.random.default_rng(seed)
    out = values.copy().reshape(-1)
    if out.size:
        at = rng.integers(0, out.size, rng.integers(1, 3, endpoint=True))
        if out.dtype.kind == "f":
            out[at] = rng.choice(np.array([np.nan, np.inf, 1e30, -1.0], np.float32), len(at))
        else:
            info = np.iinfo(out.dtype)
            pool = np.array([v for v in (info.min, info.max, -1, 0, VOCAB, 2**31, 4000)
                             if info.min <= v <= info.max], out.dtype)
            nudged = out[at].astype(np.int64) + rng.integers(-2, 2, len(at), endpoint=True)
            out[at] = np.where(rng.random(len(at)) < 0.5, rng.choice(pool, len(at)),
                               np.clip(nudged, info.min, info.max).astype(out.dtype))
    return out.reshape(values.shape)


def _valid(method: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """A request the shard (configured as `column_spec` or `row_spec`) would take."""
    at = np.array([1, 4, 9], np.int32)
    rows = np.ones((3, DIM), np.float32)
    return {
        "Dot": ({"seed": 5, "words": 3, "finish": {"key": [5, 3, 2], "alpha": 0.01}},
                {"centers": np.array([1, 2], np.int32),
                 "ctx_offsets": np.array([0, 2, 3], np.int64),
                 "contexts": np.array([3, 4, 5], np.int32),
                 "finish_dots": np.zeros((3, NEG + 1), np.float32)}),
        "Update": ({"key": [5, 3, 2], "alpha": 0.01},
                   {"dots": np.zeros((3, NEG + 1), np.float32)}),
        "Pull": ({"lo": 0, "hi": 5, "which": "syn1"}, {}),
        "RowStep": ({"kind_push_in": "indices", "kind_push_out": "indices", "words": 3,
                     "half": False, "kind_pull_in": "indices", "kind_pull_out": "bitmap"},
                    {"at_push_in": at, "at_push_out": at, "in0": rows, "in1": rows,
                     "out1": rows, "at_pull_in": at,
                     "at_pull_out": np.packbits(np.isin(np.arange(VOCAB), at))}),
        "RowPullRange": ({"lo": 0, "hi": 9}, {}),
        "Health": ({}, {}), "Stats": ({}, {}),
    }[method]


@st.composite
def _request(draw: Any, methods: list[str]) -> tuple[str, bytes]:
    """A valid request with up to four things changed, or bytes from nowhere."""
    method = draw(st.sampled_from(methods))
    if draw(st.integers(0, 19)) == 0:
        return method, draw(st.binary(max_size=200))
    header, arrays = _valid(method)
    header, arrays = dict(header), dict(arrays)
    for _ in range(draw(st.integers(0, 4))):
        what = draw(st.sampled_from(["header", "drop header", "array", "drop array",
                                     "perturb", "perturb"]))
        if what == "header":
            header[draw(st.sampled_from([*header, "key", "alpha", "spec", "words"]))] = \
                draw(_JSON)
        elif what == "drop header" and header:
            del header[draw(st.sampled_from(sorted(header)))]
        elif what == "array":
            arrays[draw(st.sampled_from([*arrays, "smuggled"]))] = draw(_array())
        elif what == "drop array" and arrays:
            del arrays[draw(st.sampled_from(sorted(arrays)))]
        elif what == "perturb" and arrays:  # the same dtype and shape, some values changed
            name = draw(st.sampled_from(sorted(arrays)))
            arrays[name] = _perturbed(arrays[name], draw(st.integers(0, 2**32)))
    try:
        return method, pack(header, **arrays)
    except (TypeError, ValueError):  # not JSON (a NaN key...): send it raw as the header
        return method, pack({}, **arrays)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["columns", "rows"])
def test_random_messages_are_answered_or_refused_in_one_sentence(shard_process, work,
                                                                 strategy) -> None:
    columns = strategy == "columns"
    peer = configured(shard_process, "Configure" if columns else "RowConfigure",
                      column_spec(work) if columns else row_spec())
    methods = (["Dot", "Update", "Pull"] if columns else ["RowStep", "RowPullRange"]) + \
        ["Health", "Stats"]
    answered: dict[int, int] = {}

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(_request(methods))
    def one(request: tuple[str, bytes]) -> None:
        status, reply = peer.call(*request)
        answered[status] = answered.get(status, 0) + 1
        if status != stream.OK:
            text = reply.decode()
            assert status in (stream.REFUSED, stream.INVALID), text
            assert "\n" not in text and "failed on this call" not in text, (request, text)

    one()
    assert sum(answered.values()) >= FUZZ_EXAMPLES
    assert answered.get(stream.OK) and answered.get(stream.INVALID)  # both kinds were met
    alive(shard_process, peer)


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(st.sampled_from([ShardSpec, RowSpec]),
       st.dictionaries(st.sampled_from(["vocab_size", "dim", "lo", "hi", "negative", "seed",
                                        "shards", "shard", "model", "damping", "counts_uri",
                                        "adagrad_eta", "permute", "optimizer", "extra"]),
                       _JSON, max_size=6))
def test_a_spec_from_a_peer_is_typed_and_bounded_or_refused(kind: Any, change: Any) -> None:
    base = column_spec(Path("/w")) if kind is ShardSpec else row_spec()
    try:
        spec = checks.spec_from(kind, {**base, **change})
    except Distw2vError as exc:
        assert "\n" not in str(exc) and str(exc).endswith(".")
        return
    check_bounds(spec)
    for name, value in asdict(spec).items():
        assert type(value) is type(base[name]), name  # noqa: E721 - bool is not an int here

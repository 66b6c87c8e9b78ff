"""The gRPC face of a shard: `distw2v ps-shard` runs one, which serves a run of either
strategy: a `ParameterShard` (columns, the `Configure`... methods) or a `RowShard` (rows,
the `Row...` methods), whichever the run configures.

Methods take and return `wire` messages (raw little-endian arrays), registered with gRPC's
generic handlers so no generated code is needed; the same methods answer on the shard's
stream listener (`stream.py`), which the training calls take. Errors the caller can fix come
back as INVALID_ARGUMENT / FAILED_PRECONDITION with one sentence. With a secret, every call
must carry it (SecretCheck answers UNAUTHENTICATED before the message is read; a stream
proves it when it opens); every request is checked (checks.py) before a kernel sees it; the
paths calls name must lie under the shard's roots.
"""

from __future__ import annotations

import hmac
import logging
import os
import posixpath
import secrets
import signal
import sys
import threading
from collections.abc import Callable
from concurrent import futures
from dataclasses import replace
from typing import Any, TypeVar

import grpc
import numpy as np

from ..config import INT32_MAX
from ..errors import Distw2vError
from ..memory import process_peak_rss_mb
from . import checks, tls
from .roots import under_root
from .rowcodec import decode_rows, pack_deltas, unpack_deltas
from .rows import RowShard, RowSpec
from .shard import Batch, Finish, ParameterShard, ShardSpec
from .start_rows import is_init_dir
from .stream import INVALID, REFUSED, Refused, StreamServer
from .wire import Message, joined, message_size, pack, pack_parts, unpack

AnySpec = TypeVar("AnySpec", ShardSpec, RowSpec)

SERVICE = "distw2v.ParameterShard"
MAX_MESSAGE = 1 << 30
OPTIONS = [("grpc.max_send_message_length", MAX_MESSAGE),
           ("grpc.max_receive_message_length", MAX_MESSAGE)]
SECRET_HEADER = "x-distw2v-secret"  # gRPC metadata every call carries
SECRET_ENV = "DISTW2V_SHARD_SECRET"  # how a secret reaches a shard or driver (argv is public)
LOOPBACK = ("127.0.0.1", "::1", "[::1]", "localhost")
GRPC_STATUS = {REFUSED: grpc.StatusCode.FAILED_PRECONDITION,
               INVALID: grpc.StatusCode.INVALID_ARGUMENT}
Method = Callable[[dict[str, Any], dict[str, np.ndarray]], Message]  # a shard's handler
log = logging.getLogger(__name__)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def batch_from(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> Batch:
    return Batch(centers=checks.array(arrays, "centers", "int32", 1),
                 ctx_offsets=checks.array(arrays, "ctx_offsets", "int64", 1),
                 contexts=checks.array(arrays, "contexts", "int32", 1),
                 seed=checks.integer(header, "seed", 0, checks.SEED_MAX))


def _finish(header: Any, dots: np.ndarray) -> Finish:
    """A round 2 as it travels: {"key": Batch.key, "alpha": ...} and the summed dots."""
    key = header.get("key") if isinstance(header, dict) else None
    if not (isinstance(key, list) and len(key) == 3
            and all(isinstance(k, int) and not isinstance(k, bool) for k in key)):
        raise checks.BadRequest("a batch key is a list of three integers.")
    return (key[0], key[1], key[2]), dots, checks.number(header, "alpha", 0.0, 1.0)


# The arrays each method reads: a request carrying any other is refused (checks.only).
ARRAYS = {
    "Dot": frozenset({"centers", "ctx_offsets", "contexts", "finish_dots"}),
    "Update": frozenset({"dots"}),
    "RowStep": frozenset({f"at_{part}_{which}" for part in ("push", "pull")
                          for which in ("in", "out")} | {"in0", "in1", "out1"}),
}


class ShardService:
    """Byte-level handlers: unpack, call the shard, pack. Also counts bytes in and out."""

    def __init__(self, shard: ParameterShard, *, checkpoint_root: str | None = None,
                 work_root: str | None = None) -> None:
        self.shard = shard
        self.rows = RowShard()  # holds nothing until a run of the rows strategy configures it
        self.strategy = "columns"  # the one a run configured last: Stats and Health report it
        self.checkpoint_root = checkpoint_root
        self.work_root = work_root
        self.bytes_in = 0
        self.bytes_out = 0
        self.stream_port: int | None = None  # where start_server's stream listener is
        self.methods = self._method_table()  # built once: every call looks its method up
        self._lock = threading.Lock()

    def _work_path(self, uri: str) -> str:
        """`uri` checked to lie under the work dir (without one: a local path, as a driver on
        this machine sends)."""
        root, what = ((self.work_root, "this shard's --work-dir") if self.work_root
                      else ("/", "a local path: this shard has no --work-dir"))
        return under_root(uri, root, what)

    def _spec(self, header: dict[str, Any]) -> ShardSpec:
        """The request's spec, its counts file checked to be a counts.npy under the work dir,
        its start (if any) as `_start` checks it."""
        spec = self._start(checks.spec_from(ShardSpec, header.get("spec")))
        counts = self._work_path(spec.counts_uri)
        if posixpath.basename(counts) != "counts.npy":
            raise Distw2vError(f"{spec.counts_uri} is not a counts.npy; a shard reads only the "
                               "run's word counts.")
        return replace(spec, counts_uri=counts)

    def _start(self, spec: AnySpec) -> AnySpec:
        """A spec's continued-run start checked: an init directory under the work dir, named
        exactly when it has rows to read."""
        if not spec.init_uri:
            if spec.init_rows:
                raise checks.BadRequest("a spec with init_rows needs its init_uri.")
            return spec
        path = self._work_path(spec.init_uri)
        if not is_init_dir(path):
            raise Distw2vError(f"{spec.init_uri} is not an init directory; a shard reads a "
                               "start only from the run's.")
        return replace(spec, init_uri=path)

    def _checkpoint_uri(self, header: dict[str, Any]) -> str:
        if self.checkpoint_root is None:
            raise Distw2vError("this shard was started without --checkpoint-root; it takes no "
                               "checkpoints.")
        return under_root(header["uri"], self.checkpoint_root, "this shard's --checkpoint-root")

    def configure(self, header: dict[str, Any], _: dict[str, np.ndarray]) -> bytes:
        self.shard.configure(self._spec(header))
        self.strategy = "columns"
        return pack({"ok": True})

    def dot(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> Message:
        finish = header.get("finish")  # the previous batch's round 2 rides along
        dots, global_words = self.shard.dot(
            batch_from(header, arrays), checks.integer(header, "words", 0, checks.WORDS_MAX),
            None if finish is None else
            _finish(finish, checks.array(arrays, "finish_dots", "float32", 2)))
        return pack_parts({"global_words": global_words}, dots=dots)

    def update(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> bytes:
        self.shard.update(*_finish(header, checks.array(arrays, "dots", "float32", 2)))
        return pack({"ok": True})

    def pull(self, header: dict[str, Any], _: dict[str, np.ndarray]) -> bytes:
        rows = self.shard.pull(checks.integer(header, "lo", 0, INT32_MAX),
                               checks.integer(header, "hi", 0, INT32_MAX),
                               header.get("which", "syn0"))
        return pack({}, rows=rows)

    def checkpoint(self, header: dict[str, Any], _: dict[str, np.ndarray]) -> bytes:
        self.shard.checkpoint(self._checkpoint_uri(header))
        return pack({"ok": True})

    def load(self, header: dict[str, Any], _: dict[str, np.ndarray]) -> bytes:
        words = header.get("global_words")
        self.shard.load(self._checkpoint_uri(header), self._spec(header),
                        None if words is None else
                        checks.integer(header, "global_words", 0, checks.WORDS_MAX))
        self.strategy = "columns"
        return pack({"ok": True})

    # --- the rows strategy: rows named by position (rowcodec), deltas maybe float16 ---------

    def row_configure(self, header: dict[str, Any], _: dict[str, np.ndarray]) -> bytes:
        self.rows.configure(self._start(checks.spec_from(RowSpec, header.get("spec"))))
        self.strategy = "rows"
        return pack({"ok": True})

    def _positions(self, header: dict[str, Any], arrays: dict[str, np.ndarray],
                   which: str) -> np.ndarray:
        return decode_rows(str(header[f"kind_{which}"]), arrays[f"at_{which}"],
                           len(self.rows.ids))

    def row_step(self, header: dict[str, Any], arrays: dict[str, np.ndarray]) -> Message:
        """One call of a rows task (row_client.RowClient.step): apply the deltas of the rows
        the request names as `push` (the arrays in0, in1, out1: the syn0 and syn1 rows of
        `push_in`, the syn1 rows of `push_out`), then send the same three arrays for the rows
        it names as `pull`. Either part may be missing; both are read before anything is
        applied, so a malformed request changes nothing."""
        half = header.get("half", False)
        if not isinstance(half, bool):
            raise checks.BadRequest("half must be true or false.")
        parts = {part: [self._positions(header, arrays, f"{part}_{which}")
                        for which in ("in", "out")]
                 for part in ("push", "pull") if f"kind_{part}_in" in header}
        if "push" in parts:
            (at_in, at_out), dim = parts["push"], self.rows._require_spec().dim

            def deltas(name: str, at: np.ndarray) -> np.ndarray:
                return unpack_deltas(arrays[name], half, len(at), dim)

            self.rows.push_at([(at_in, deltas("in0", at_in))],
                              [(at_in, deltas("in1", at_in)), (at_out, deltas("out1", at_out))],
                              checks.integer(header, "words", 0, checks.WORDS_MAX),
                              checks.number(header, "loss", 0.0, 1e18, default=0.0),
                              checks.integer(header, "loss_pairs", 0, checks.WORDS_MAX,
                                             default=0))
        rows: dict[str, np.ndarray] = {}
        if "pull" in parts:
            at_in, at_out = parts["pull"]
            pulled = self.rows.pull_at(at_in, at_in, at_out)
            rows = {name: pack_deltas(r, half) for name, r in zip(("in0", "in1", "out1"), pulled)}
        return pack_parts({"global_words": self.rows.global_words, "half": half}, **rows)

    def row_pull_range(self, header: dict[str, Any], _: dict[str, np.ndarray]) -> bytes:
        ids, rows = self.rows.pull_range(checks.integer(header, "lo", 0, INT32_MAX),
                                         checks.integer(header, "hi", 0, INT32_MAX),
                                         header.get("which", "syn0"))
        return pack({}, ids=ids, rows=rows)

    def row_checkpoint(self, header: dict[str, Any], _: dict[str, np.ndarray]) -> bytes:
        self.rows.checkpoint(self._checkpoint_uri(header))
        return pack({"ok": True})

    def row_load(self, header: dict[str, Any], _: dict[str, np.ndarray]) -> bytes:
        words = header.get("global_words")
        self.rows.load(self._checkpoint_uri(header),
                       self._start(checks.spec_from(RowSpec, header.get("spec"))),
                       None if words is None else
                       checks.integer(header, "global_words", 0, checks.WORDS_MAX))
        self.strategy = "rows"
        return pack({"ok": True})

    # --- either ------------------------------------------------------------------------------

    def _active(self) -> ParameterShard | RowShard:
        return self.rows if self.strategy == "rows" else self.shard

    def health(self, header: dict[str, Any], _: dict[str, np.ndarray]) -> bytes:
        return pack({"serving": True, "configured": self._active().spec is not None,
                     "stream_port": self.stream_port})

    def stats(self, header: dict[str, Any], _: dict[str, np.ndarray]) -> bytes:
        with self._lock:
            traffic = {"bytes_in": self.bytes_in, "bytes_out": self.bytes_out}
        # this process's peak memory: a shard placed by Spark runs where the driver cannot look
        return pack({**self._active().describe(), **traffic,
                     "peak_rss_mb": process_peak_rss_mb(os.getpid())})

    def _method_table(self) -> dict[str, Method]:
        return {
            "Configure": self.configure, "Dot": self.dot, "Update": self.update,
            "Pull": self.pull, "Checkpoint": self.checkpoint, "Load": self.load,
            "Health": self.health, "Stats": self.stats,
            "RowConfigure": self.row_configure, "RowStep": self.row_step,
            "RowPullRange": self.row_pull_range,
            "RowCheckpoint": self.row_checkpoint, "RowLoad": self.row_load,
        }

    def respond(self, name: str, request: bytes | memoryview) -> Message:
        """Unpack, call the method, pack; raises stream.Refused with one sentence for a
        request the caller can fix. Both transports answer through here, after they have
        checked the secret."""
        method = self.methods.get(name)
        if method is None:
            raise Refused(INVALID, f"no method {name!r}.")
        try:
            header, arrays = unpack(request)
            checks.only(arrays, ARRAYS.get(name, frozenset()), name)
            response = method(header, arrays)
        except checks.BadRequest as exc:
            raise Refused(INVALID, f"bad request: {exc}") from None
        except Distw2vError as exc:
            raise Refused(REFUSED, str(exc)) from None
        except MemoryError:
            raise Refused(REFUSED, "this shard ran out of memory for its columns; use more "
                                   "shards.") from None
        except (KeyError, TypeError, ValueError) as exc:
            raise Refused(INVALID, f"bad request: {exc}") from None
        with self._lock:
            self.bytes_in += len(request)
            self.bytes_out += message_size(response)
        return response

    def handler(self, name: str) -> grpc.RpcMethodHandler:
        def handle(request: bytes, context: grpc.ServicerContext) -> bytes:
            try:
                return joined(self.respond(name, request))
            except Refused as refusal:
                context.abort(GRPC_STATUS[refusal.status], str(refusal))
                raise  # not reached: abort raises

        return grpc.unary_unary_rpc_method_handler(handle)

    def generic_handler(self) -> grpc.GenericRpcHandler:
        return grpc.method_handlers_generic_handler(
            SERVICE, {name: self.handler(name) for name in self.methods})


class SecretCheck(grpc.ServerInterceptor):
    """Checks a call's secret from its metadata, before its message is read: a call without
    it is answered at once and its message never read, so strangers can neither hold the
    server's threads (a call that never sends its message) nor fill its memory (one that
    sends a huge one)."""

    def __init__(self, secret: str) -> None:
        self._secret = secret.encode()
        self._refuse = grpc.stream_unary_rpc_method_handler(self._refused)

    @staticmethod
    def _refused(_requests: Any, context: grpc.ServicerContext) -> bytes:
        context.abort(grpc.StatusCode.UNAUTHENTICATED,
                      "this parameter-server shard needs the run's secret; the call carried "
                      "none or another one.")
        raise AssertionError("not reached: abort raises")

    def intercept_service(self, continuation: Callable[[Any], Any], details: Any) -> Any:
        sent = [v for k, v in details.invocation_metadata or () if k == SECRET_HEADER]
        given = sent[0].encode() if sent and isinstance(sent[0], str) else b""
        if hmac.compare_digest(given, self._secret):
            return continuation(details)
        return self._refuse  # takes the request as a stream it never reads


class ShardServer:
    """A shard's gRPC server and its stream listener (stream.py), stopped together."""

    def __init__(self, server: grpc.Server, stream: StreamServer) -> None:
        self.grpc = server
        self.stream = stream

    def stop(self, grace: float | None) -> threading.Event:
        self.stream.stop()
        return self.grpc.stop(grace)


def start_server(host: str = "127.0.0.1", port: int = 0, threads: int = 8, *,
                 secret: str | None = None, checkpoint_root: str | None = None,
                 work_root: str | None = None,
                 stream_port: int = 0) -> tuple[ShardServer, int, ShardService]:
    """Start a shard server; returns it, the bound gRPC port and the service (for in-process
    use). Its stream listener (for the training calls) listens on the same host at
    `stream_port` (0: one of the system's choosing), which Health reports to clients. Without
    a secret it binds loopback only: anyone reaching the port could use the model."""
    if not secret and host not in LOOPBACK:
        raise Distw2vError(f"binding {host} needs --secret-file PATH (or ${SECRET_ENV}): "
                           "without a secret anyone who reaches the port can use the model.")
    token, run_tls = tls.split(secret)
    service = ShardService(ParameterShard(), checkpoint_root=checkpoint_root,
                           work_root=work_root)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads), options=OPTIONS,
                         interceptors=[SecretCheck(token)] if token else [])
    server.add_generic_rpc_handlers((service.generic_handler(),))
    bound = (server.add_secure_port(f"{host}:{port}", grpc.ssl_server_credentials(
                 [(run_tls.key, run_tls.cert)])) if run_tls
             else server.add_insecure_port(f"{host}:{port}"))
    if bound == 0:
        raise Distw2vError(f"cannot listen on {host}:{port} (address in use?).")
    try:
        stream = StreamServer(host, stream_port, service.respond, token,
                              run_tls.server_context() if run_tls else None)
    except OSError as exc:
        raise Distw2vError(f"cannot listen on {host}:{stream_port} for the training calls "
                           f"({exc.strerror or exc}).") from None
    server.start()
    service.stream_port = stream.port
    return ShardServer(server, stream), bound, service


def serve_forever(host: str, port: int, threads: int,
                  announce: Callable[[int], None] = lambda _: None,
                  stop_on_stdin_eof: bool = False, *, secret: str | None = None,
                  checkpoint_root: str | None = None, work_root: str | None = None,
                  stream_port: int = 0) -> None:
    """Serve until SIGTERM/SIGINT, or, for a shard a driver started, until its stdin closes:
    the driver holds the other end, so a driver that dies without cleaning up leaves no shard."""
    server, bound, _ = start_server(host, port, threads, secret=secret,
                                    checkpoint_root=checkpoint_root, work_root=work_root,
                                    stream_port=stream_port)
    announce(bound)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if stop_on_stdin_eof:

        def watch_stdin() -> None:
            sys.stdin.read()  # returns at end of file: the driver closed its end or died
            stop.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
    stop.wait()
    server.stop(grace=2).wait()

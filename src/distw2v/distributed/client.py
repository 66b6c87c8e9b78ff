"""Client of the parameter-server shards: fans each request out to all shards at once.

Round 1 (`dot`) sends a batch's ids and seed to every shard and sums the partial dot
products; round 2 sends the sums back with the learning rate under the batch's key (the
shards kept the batch), and each shard turns them into coefficients for its columns. A
worker sends a batch's round 2 with the next batch's round 1 (`dot(..., finish=...)`): one
call a batch, and each shard applies the update before the next dots. Those training calls
travel on each shard's stream (stream.py: one plain connection a shard, opened on first use);
the rest on gRPC, whose transient failures are retried with a deadline. A shard that stays
unreachable raises `ShardUnavailableError` naming it. Bytes on the wire are counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

import grpc
import numpy as np

from ..errors import Distw2vError
from . import tls
from .server import OPTIONS, SECRET_ENV, SECRET_HEADER, SERVICE
from .shard import Batch, Finish, ShardSpec
from .stream import NotAShard, Refused, ShardFailed, StreamConnection, StreamGroup
from .wire import Message, joined, message_size, pack, pack_parts, unpack

TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
             grpc.StatusCode.RESOURCE_EXHAUSTED)
STREAMED = frozenset({"Dot", "Update", "RowStep"})  # the training calls


class ShardUnavailableError(Distw2vError):
    """A parameter-server shard cannot be reached or stopped answering."""


def column_ranges(dim: int, shards: int) -> list[tuple[int, int]]:
    """Shard s holds columns [s*dim/S, (s+1)*dim/S)."""
    if not 1 <= shards <= dim:
        raise Distw2vError(f"cannot split dim {dim} across {shards} shards.")
    cuts = [dim * s // shards for s in range(shards + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


def batch_message(batch: Batch, **header: Any) -> dict[str, Any]:
    return {"header": {"seed": batch.seed, **header},
            "arrays": {"centers": batch.centers, "ctx_offsets": batch.ctx_offsets,
                       "contexts": batch.contexts}}


class PSClient:
    def __init__(self, addresses: list[str], timeout: float = 120.0, retries: int = 3,
                 secret: str | None = None) -> None:
        if not addresses:
            raise Distw2vError("no parameter-server shard addresses given.")
        self.addresses = list(addresses)
        self.timeout = timeout
        self.retries = retries
        token, run_tls = tls.split(secret)
        self._metadata = ((SECRET_HEADER, token),) if token else ()  # sent on every call
        self._token = token
        self._tls = run_tls.client_context() if run_tls else None  # trusts the run's only
        self._streams: StreamGroup | None = None  # opened by the first training call
        self._stream_lock = threading.Lock()  # a call's requests and replies stay in order
        self.bytes_sent = 0
        self.bytes_received = 0
        self._channels = [
            grpc.secure_channel(a, grpc.ssl_channel_credentials(run_tls.cert), options=OPTIONS + [
                ("grpc.ssl_target_name_override", tls.SERVER_NAME)]) if run_tls
            else grpc.insecure_channel(a, options=OPTIONS) for a in self.addresses]
        self._stubs: dict[str, list[Any]] = {}
        # Blocking calls on a small pool: far cheaper per call than gRPC's own futures.
        self._pool = ThreadPoolExecutor(max_workers=2 * len(self.addresses),
                                        thread_name_prefix="ps-client")

    def _stub(self, method: str, shard: int) -> Any:
        if method not in self._stubs:
            self._stubs[method] = [ch.unary_unary(f"/{SERVICE}/{method}")
                                   for ch in self._channels]
        return self._stubs[method][shard]

    # --- transport --------------------------------------------------------------------------

    def _send(self, method: str, shard: int, request: Message) -> Future[bytes]:
        self.bytes_sent += message_size(request)
        return self._pool.submit(self._stub(method, shard), joined(request),
                                 timeout=self.timeout, metadata=self._metadata)

    def _grpc_call(self, method: str, requests: Sequence[Message]) -> list[bytes]:
        pending = [self._send(method, s, r) for s, r in enumerate(requests)]
        replies: list[bytes] = []
        for shard, future in enumerate(pending):
            attempt = 0
            while True:
                try:
                    reply = future.result()
                    break
                except grpc.RpcError as exc:
                    code = exc.code()
                    if code in TRANSIENT and attempt < self.retries:
                        attempt += 1
                        time.sleep(0.2 * 2**attempt)
                        future = self._send(method, shard, requests[shard])
                        continue
                    raise self._error(shard, exc) from None
            self.bytes_received += len(reply)
            replies.append(reply)
        return replies

    def _where(self, shard: int) -> str:
        return f"parameter-server shard {shard} at {self.addresses[shard]}"

    def _unauthenticated(self, shard: int) -> Distw2vError:
        return Distw2vError(f"{self._where(shard)} refused the secret this client sent (or "
                            f"its lack of one); with --ps, set ${SECRET_ENV} to the shards' "
                            "secret.")

    def _error(self, shard: int, exc: grpc.RpcError) -> Distw2vError:
        if exc.code() in TRANSIENT or exc.code() == grpc.StatusCode.CANCELLED:
            return ShardUnavailableError(f"{self._where(shard)} is unavailable: "
                                         f"{exc.details()}.")
        if exc.code() == grpc.StatusCode.UNAUTHENTICATED:
            return self._unauthenticated(shard)
        return Distw2vError(f"{self._where(shard)} refused the request: {exc.details()}")

    def _call(self, method: str, requests: Sequence[Message]) -> list[Any]:
        """Send each shard its request at once; the replies, in shard order."""
        if method in STREAMED:
            return self._stream_call(method, requests)
        return self._grpc_call(method, requests)

    # --- the streams (stream.py): training calls, no retries (resent, an update could
    # apply twice); any failure but a refusal drops them, and the next call opens new ones

    def _stream_call(self, method: str, requests: Sequence[Message]) -> list[memoryview]:
        with self._stream_lock:
            if self._streams is None:
                self._streams = StreamGroup(self._open_streams())
            try:
                replies = self._streams.call(method, requests)
            except ShardFailed as failed:
                raise self._stream_error(failed) from None
            # each message, its method's name and the framing
            self.bytes_sent += sum(message_size(r) + len(method) + 5 for r in requests)
            self.bytes_received += sum(len(r) + 5 for r in replies)
            return replies

    def _stream_error(self, failed: ShardFailed) -> Distw2vError:
        if isinstance(failed.cause, Refused):
            return Distw2vError(f"{self._where(failed.shard)} refused the request: {failed}")
        self._close_streams()
        return ShardUnavailableError(f"{self._where(failed.shard)} is unavailable: {failed}.")

    def _open_streams(self) -> list[StreamConnection]:
        ports = [unpack(r)[0].get("stream_port") for r in self._same("Health", {})]
        streams: list[StreamConnection] = []
        try:
            for shard, (address, port) in enumerate(zip(self.addresses, ports)):
                if not isinstance(port, int):
                    raise Distw2vError(f"{self._where(shard)} has no stream listener.")
                try:
                    streams.append(StreamConnection(address.rsplit(":", 1)[0], port,
                                                    self._token, self.timeout, self._tls))
                except NotAShard:
                    raise Distw2vError(f"the peer at {address} is not one of this run's shards: "
                                       "it could not prove it knows the run's secret.") from None
                except PermissionError:
                    raise self._unauthenticated(shard) from None
                except OSError as exc:
                    raise ShardUnavailableError(
                        f"{self._where(shard)} is unavailable: {exc}.") from None
        except BaseException:
            for stream in streams:
                stream.close()
            raise
        return streams

    def _close_streams(self) -> None:
        if self._streams is not None:
            self._streams.close()
        self._streams = None

    def _same(self, method: str, header: dict[str, Any], **arrays: np.ndarray) -> list[Any]:
        return self._call(method, [pack_parts(header, **arrays)] * len(self.addresses))

    # --- the shard interface ----------------------------------------------------------------

    def configure(self, specs: list[ShardSpec]) -> None:
        self._call("Configure", [pack({"spec": asdict(spec)}) for spec in specs])

    def wait_ready(self, seconds: float = 60.0) -> None:
        for shard, channel in enumerate(self._channels):
            try:
                grpc.channel_ready_future(channel).result(timeout=seconds)
            except grpc.FutureTimeoutError:
                raise ShardUnavailableError(
                    f"parameter-server shard {shard} at {self.addresses[shard]} did not come up "
                    f"within {seconds:.0f} s.") from None

    def dot(self, batch: Batch, words: int = 0,
            finish: Finish | None = None) -> tuple[np.ndarray, int]:
        """Summed dot products (pairs, 1 + negative) and the global word count after `words`;
        `finish` (a previous batch's round 2) is applied first."""
        msg = batch_message(batch, words=words)
        if finish is not None:
            key, dots, alpha = finish
            msg["header"]["finish"] = {"key": list(key), "alpha": alpha}
            msg["arrays"]["finish_dots"] = dots
        parsed = [unpack(reply) for reply in self._same("Dot", msg["header"], **msg["arrays"])]
        total = parsed[0][1]["dots"].copy()
        for _, arrays in parsed[1:]:
            total += arrays["dots"]
        return total, int(parsed[0][0]["global_words"])  # shard 0 keeps the global count

    def update(self, finish: Finish) -> None:
        """A batch's round 2 on its own, without a next batch."""
        key, dots, alpha = finish
        self._same("Update", {"key": list(key), "alpha": alpha}, dots=dots)

    def pull(self, lo: int, hi: int, which: str = "syn0") -> np.ndarray:
        """Rows [lo, hi) with all columns, assembled from every shard's slice."""
        replies = self._same("Pull", {"lo": lo, "hi": hi, "which": which})
        return np.concatenate([unpack(r)[1]["rows"] for r in replies], axis=1)

    def checkpoint(self, uri: str) -> None:
        self._same("Checkpoint", {"uri": uri})

    def load(self, uri: str, specs: list[ShardSpec], global_words: int | None = None) -> None:
        """Every shard takes its columns from the checkpoint in `uri`; `global_words`, when
        given, replaces the saved global word count (which sets the learning rate)."""
        header = {"uri": uri} if global_words is None else {"uri": uri,
                                                           "global_words": global_words}
        self._call("Load", [pack({**header, "spec": asdict(spec)}) for spec in specs])

    def stats(self) -> list[dict[str, Any]]:
        return [unpack(r)[0] for r in self._same("Stats", {})]

    def close(self) -> None:
        with self._stream_lock:
            self._close_streams()
        self._pool.shutdown(wait=True)
        for channel in self._channels:
            channel.close()

    def __enter__(self) -> PSClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

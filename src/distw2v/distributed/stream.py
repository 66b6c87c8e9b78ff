"""A lean transport for the training calls (columns: Dot, Update; rows: RowStep):
length-framed `wire` messages on one TCP connection per client and shard, beside the shard's
gRPC server.

Why: a training call is one request and one reply of a few hundred kilobytes, thousands of
times an epoch. Through gRPC's Python server each one also crosses its completion-queue
thread, its handler pool and per-call metadata, and the client needs a thread per shard to
wait on both at once; measured (benchmarks/column_overhead.py), that was most of the CPU a
pair costs beyond the kernels. Here a client writes its requests to every shard and then
reads the replies in turn, and a shard answers each connection from a thread of its own.
Everything else (configuration, checkpoints, stats, the export) stays on gRPC. A shard
answers one connection's calls in order.

A connection opens with a challenge and response, so the secret itself never crosses the
wire and a captured hello cannot be replayed: the shard sends a fresh random nonce; the
client answers with a nonce of its own and HMAC-SHA256(secret, "client" + both nonces); the
shard answers OK with HMAC(secret, "shard" + both nonces), which proves to the client that it
talks to one of the run's shards, or UNAUTHENTICATED and closes the connection, so nothing
else is read from a peer that does not know the secret (empty when the shard has none). The
whole hello has a deadline, and peers still in their hello have slots of their own: however
many of them a stranger opens, the oldest is dropped to make room, and the run's clients,
whose hellos take one round trip, always get in. After that, each request frame is [method
name, NUL, wire message] and each reply [status byte, body]: the reply message, or for a
refusal one UTF-8 sentence. A frame is a 4-byte little-endian length and that many bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import socket
import ssl
import struct
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from .tls import SERVER_NAME
from .wire import Message, buffers

FRAME = struct.Struct("<I")
MAX_FRAME = 1 << 30  # as gRPC's message limit (server.MAX_MESSAGE)
NONCE = 32
HELLO = 2 * NONCE  # the client's nonce and its proof (an HMAC-SHA256)
HELLO_SECONDS = 10.0  # a peer gets this long in all to prove it knows the secret
MAX_CONNECTIONS = 256  # per shard: training tasks and drivers of one run
MAX_HELLOS = 64  # peers still in their hello; the oldest is dropped to make room
OK, REFUSED, INVALID, UNAUTHENTICATED = 0, 1, 2, 3
log = logging.getLogger(__name__)


class NotAShard(PermissionError):
    """The peer a client opened a stream to could not prove it knows the run's secret."""


class Refused(Exception):
    """A call the shard turns down; `status` says why (REFUSED, INVALID)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _wait_all(sock: socket.socket) -> int:
    """recv's flag to wait for all it asks for; TLS sockets take no flags."""
    return 0 if isinstance(sock, ssl.SSLSocket) else socket.MSG_WAITALL


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = sock.recv(size, _wait_all(sock))
    if len(data) == size:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        piece = sock.recv(size - got, _wait_all(sock))
        if not piece:
            raise ConnectionError("the connection closed in the middle of a frame")
        parts.append(piece)
        got += len(piece)
    return b"".join(parts)


def read_frame(sock: socket.socket, limit: int = MAX_FRAME) -> bytes:
    head = sock.recv(FRAME.size, _wait_all(sock))
    if not head:
        raise EOFError("the peer closed the connection")
    if len(head) < FRAME.size:
        head += _recv_exactly(sock, FRAME.size - len(head))
    (size,) = FRAME.unpack(head)
    if size > limit:
        raise ConnectionError(f"a frame of {size} bytes is over the limit of {limit}")
    return _recv_exactly(sock, size) if size else b""


def proof(secret: bytes, role: bytes, shard_nonce: bytes, client_nonce: bytes) -> bytes:
    """What a party that knows the secret answers to a pair of nonces in `role`."""
    return hmac.new(secret, role + shard_nonce + client_nonce, hashlib.sha256).digest()


def read_hello(sock: socket.socket, size: int, deadline: float) -> bytes:
    """Exactly `size` bytes by the monotonic `deadline`: a timeout per read would let a peer
    that sends a byte at a time hold its slot for ever."""
    data = b""
    while len(data) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the hello took too long")
        sock.settimeout(remaining)
        piece = sock.recv(size - len(data))
        if not piece:
            raise EOFError("the peer closed the connection in its hello")
        data += piece
    return data


def client_hello(sock: socket.socket, secret: str | None) -> None:
    """The client's side of the hello (see the module's docstring) on a connected socket."""
    key = (secret or "").encode()
    deadline = time.monotonic() + HELLO_SECONDS
    shard_nonce = read_hello(sock, FRAME.size + NONCE, deadline)[FRAME.size:]
    mine = secrets.token_bytes(NONCE)
    write_frame(sock, mine, proof(key, b"client", shard_nonce, mine))
    answer = read_hello(sock, FRAME.size + 1, deadline)[FRAME.size:]
    if answer == bytes([UNAUTHENTICATED]):
        raise PermissionError("the shard refused the secret")
    if answer != bytes([OK]):
        raise ConnectionError("the shard answered the hello with something else")
    if not hmac.compare_digest(read_hello(sock, NONCE, deadline),
                               proof(key, b"shard", shard_nonce, mine)):
        raise NotAShard("the peer does not know the run's secret: it is no shard of this run")


def write_frame(sock: socket.socket, *parts: bytes | memoryview) -> None:
    """One frame of `parts`, written without joining them (sendmsg gathers; TLS cannot)."""
    if isinstance(sock, ssl.SSLSocket):
        sock.sendall(b"".join([FRAME.pack(sum(memoryview(p).nbytes for p in parts)), *parts]))
        return
    pending = [memoryview(p).cast("B")
               for p in (FRAME.pack(sum(memoryview(p).nbytes for p in parts)), *parts)]
    while pending:
        sent = sock.sendmsg(pending)
        while pending and sent >= len(pending[0]):
            sent -= len(pending[0])
            pending.pop(0)
        if pending and sent:
            pending[0] = pending[0][sent:]


class StreamServer:
    """Accepts connections on `host`:`port` (0: one the system picks) and answers each request
    with `respond(method, message)`, which returns the reply or raises Refused."""

    def __init__(self, host: str, port: int, respond: Callable[[str, memoryview], Message],
                 secret: str | None, tls: ssl.SSLContext | None = None) -> None:
        family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
        self._listener = socket.create_server((host.strip("[]"), port), family=family)
        self.port: int = self._listener.getsockname()[1]
        self._respond = respond
        self._secret = (secret or "").encode()
        self._tls = tls
        self._connections: set[socket.socket] = set()  # past their hello
        # in it, by descriptor (TLS wraps a socket in another object), oldest first
        self._hellos: OrderedDict[int, socket.socket] = OrderedDict()
        self._lock = threading.Lock()
        self._stopped = False
        threading.Thread(target=self._accept, name="shard-stream", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # the listener closed: stop() was called
                return
            with self._lock:
                if self._stopped:
                    conn.close()
                    continue
                if len(self._hellos) >= MAX_HELLOS:
                    _drop(self._hellos.popitem(last=False)[1])
                self._hellos[conn.fileno()] = conn
            threading.Thread(target=self._serve, args=(conn,), name="shard-stream-conn",
                             daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        fd, deadline = conn.fileno(), time.monotonic() + HELLO_SECONDS
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                conn = self._secured(conn, fd, deadline)
            if not self._hello(conn, fd, deadline):
                return
            while True:
                request = read_frame(conn)
                end = request.find(b"\0", 0, 64)  # a method's name is short
                try:
                    if end < 0:
                        raise Refused(INVALID, "a request names no method.")
                    reply = self._respond(request[:end].decode("ascii", "replace"),
                                          memoryview(request)[end + 1:])
                except Refused as refusal:
                    write_frame(conn, bytes([refusal.status]), str(refusal).encode())
                    continue
                except Exception as exc:  # a bug, not the caller's: named, as gRPC would
                    log.exception("a stream call failed")
                    write_frame(conn, bytes([REFUSED]),
                                f"the shard failed on this call ({type(exc).__name__}: "
                                f"{exc}).".encode())
                    continue
                write_frame(conn, bytes([OK]), *buffers(reply))
        except (OSError, EOFError):  # the client went away, or stop() closed the socket
            pass
        finally:
            with self._lock:  # before the close: until then no new peer has this descriptor
                self._connections.discard(conn)
                self._hellos.pop(fd, None)
            conn.close()

    def _secured(self, conn: socket.socket, fd: int, deadline: float) -> ssl.SSLSocket:
        """The connection inside TLS, its handshake within the hello's deadline."""
        assert self._tls is not None
        secured = self._tls.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        with self._lock:
            if fd in self._hellos:
                self._hellos[fd] = secured  # what a drop must shut down now
        secured.settimeout(max(deadline - time.monotonic(), 0.001))
        secured.do_handshake()
        return secured

    def _hello(self, conn: socket.socket, fd: int, deadline: float) -> bool:
        """The shard's side of the hello; True once the peer has proved it knows the secret
        and holds one of the connections' slots."""
        nonce = secrets.token_bytes(NONCE)
        conn.settimeout(max(deadline - time.monotonic(), 0.001))
        write_frame(conn, nonce)
        (size,) = FRAME.unpack(read_hello(conn, FRAME.size, deadline))
        if size != HELLO:
            write_frame(conn, bytes([UNAUTHENTICATED]))
            return False
        hello = read_hello(conn, HELLO, deadline)
        theirs = hello[:NONCE]
        if not hmac.compare_digest(hello[NONCE:], proof(self._secret, b"client", nonce, theirs)):
            write_frame(conn, bytes([UNAUTHENTICATED]))
            return False
        with self._lock:
            if fd not in self._hellos or self._stopped:
                return False  # dropped to make room, or the server stopped
            del self._hellos[fd]
            full = len(self._connections) >= MAX_CONNECTIONS
            if not full:
                self._connections.add(conn)
        if full:
            write_frame(conn, bytes([REFUSED]))
            return False
        write_frame(conn, bytes([OK]), proof(self._secret, b"shard", nonce, theirs))
        conn.settimeout(None)
        return True

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            connections = list(self._connections)
            connections += list(self._hellos.values())
        self._listener.close()
        for conn in connections:
            _drop(conn)


def _drop(conn: socket.socket) -> None:
    """End a connection another thread serves: its next read returns or fails at once."""
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class StreamConnection:
    """A client's connection to one shard's stream (see the module's docstring)."""

    def __init__(self, host: str, port: int, secret: str | None, timeout: float,
                 tls: ssl.SSLContext | None = None) -> None:
        self.sock = socket.create_connection((host.strip("[]"), port), timeout=timeout)
        try:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tls is not None:
                self.sock = tls.wrap_socket(self.sock, server_hostname=SERVER_NAME)
            client_hello(self.sock, secret)
            self.sock.settimeout(timeout)
        except EOFError:
            self.sock.close()
            raise ConnectionError("the shard closed the stream as it opened") from None
        except BaseException:
            self.sock.close()
            raise

    def send(self, method: str, message: Message) -> None:
        write_frame(self.sock, method.encode("ascii") + b"\0", *buffers(message))

    def receive(self) -> memoryview:
        """The next reply's message (a view: no copy); raises Refused for a refusal."""
        reply = read_frame(self.sock)
        if not reply:
            raise ConnectionError("an empty reply")
        if reply[0] != OK:
            raise Refused(reply[0], reply[1:].decode("utf-8", "replace"))
        return memoryview(reply)[1:]

    def close(self) -> None:
        self.sock.close()


class ShardFailed(Exception):
    """The call on shard `shard`'s stream failed: `cause` is a Refused (the stream goes on)
    or the OSError or EOFError that broke the connection."""

    def __init__(self, shard: int, cause: Exception) -> None:
        super().__init__(str(cause) or type(cause).__name__)
        self.shard = shard
        self.cause = cause


class StreamGroup:
    """A client's streams to every shard: `call` writes a call's requests to all of them at
    once, then reads their replies in turn. Not thread-safe: the caller holds a lock."""

    def __init__(self, connections: list[StreamConnection]) -> None:
        self.connections = connections

    def call(self, method: str, requests: Sequence[Message]) -> list[memoryview]:
        for shard, connection in enumerate(self.connections):
            try:
                connection.send(method, requests[shard])
            except OSError as exc:
                raise ShardFailed(shard, exc) from None
        # a refusal is raised once every shard's reply is read: the next call's come next
        replies, refusal = [], None
        for shard, connection in enumerate(self.connections):
            try:
                replies.append(connection.receive())
            except Refused as exc:
                refusal = refusal or ShardFailed(shard, exc)
            except (OSError, EOFError) as exc:
                raise ShardFailed(shard, exc) from None
        if refusal is not None:
            raise refusal
        return replies

    def close(self) -> None:
        for connection in self.connections:
            connection.close()

"""Client connections, bounded so that idle or slow ones cannot take the server down.

uvicorn closes a keep-alive connection that stays idle after a response, but not one that
never sends a request or sends it a byte at a time, and it accepts connections until
accept() fails for want of file descriptors. Here every connection has `seconds` to send
each request (from connecting, or from the request's first byte after an idle keep-alive
one), and past `max_connections` the oldest connection still waiting for a request is
closed to make room for the new one (the new one itself when every connection is busy).
"""

from __future__ import annotations

import asyncio
import resource
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

RESERVED_FILES = 256  # descriptors kept for the job store, logs, models and job processes


def raise_open_files_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit; return the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft != resource.RLIM_INFINITY and soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
        except (ValueError, OSError):  # a container may refuse: keep what we have
            pass
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def connection_limit(wanted: int, open_files: int) -> int:
    """At most `wanted` connections, and a quarter of the descriptors left after
    RESERVED_FILES: asyncio accepts up to a listen backlog (set to this limit) of
    connections at a time, so closing the surplus lags up to about three such batches."""
    return max(8, min(wanted, (open_files - RESERVED_FILES) // 4))


def bounded_protocol(max_connections: int, seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's h11 protocol with these bounds (a class per server: it holds the queue)."""
    waiting: dict[Any, None] = {}  # connections waiting for a request, oldest first

    class Bounded(H11Protocol):
        _timer: asyncio.TimerHandle | None = None
        _idle = True  # no byte of the next request yet

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                oldest = next(iter(waiting), None)
                if oldest is None:  # every connection is busy: shed this one
                    self._close()
                    return
                oldest._close()
            self._wait()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
                self._stop_waiting()  # the request is in: the app has it now
            elif self._idle:
                self._wait(idle=False)  # the request's deadline runs from its first byte

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._wait()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_waiting()
            super().connection_lost(exc)

        def _wait(self, idle: bool = True) -> None:
            self._stop_waiting()
            self._idle = idle
            self._timer = self.loop.call_later(seconds, self._close)
            waiting[self] = None

        def _stop_waiting(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            waiting.pop(self, None)

        def _close(self) -> None:
            self._stop_waiting()
            if not self.transport.is_closing():
                self.transport.close()

    return Bounded

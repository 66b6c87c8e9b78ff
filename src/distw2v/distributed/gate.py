"""The gate a shard's checkpoint goes through: it waits for the calls under way and holds new
ones back while it saves, so that what it saves (rows or columns, and the word count) belongs
together. Both kinds of shard (shard.py, rows.py) use it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class CheckpointGate:
    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._calls = 0
        self._saving = False

    @contextmanager
    def call(self) -> Iterator[None]:
        """Around a training call: waits while a checkpoint saves."""
        with self._condition:
            while self._saving:
                self._condition.wait()
            self._calls += 1
        try:
            yield
        finally:
            with self._condition:
                self._calls -= 1
                self._condition.notify_all()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Around a checkpoint: once the calls under way are done, none until it is saved."""
        with self._condition:
            while self._saving:  # one save at a time
                self._condition.wait()
            self._saving = True
            while self._calls:
                self._condition.wait()
        try:
            yield
        finally:
            with self._condition:
                self._saving = False
                self._condition.notify_all()

"""The bytes one token's jobs keep: their models (as the job measured them) and the word2vec
exports made of them on demand, which are full copies kept in the cache.

A submission is refused once a token keeps --max-stored-bytes-per-token (how big its model
will be is not known yet), and an export that could take it past the quota is refused before
it is written. Exports are refused rather than evicted: eviction would only make the next
download write the same copy again, and a refusal tells the token how to make room.
"""

from __future__ import annotations

import threading
from typing import IO

from .artifacts import Artifacts
from .store import FREE_SPACE, JobStore, QuotaError


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    value, unit = n / 1024, "KiB"
    for bigger in ("MiB", "GiB", "TiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"


class StorageQuota:
    """--max-stored-bytes-per-token: what each token's jobs keep, measured when asked."""

    def __init__(self, store: JobStore, artifacts: Artifacts, limit: int) -> None:
        self.store = store
        self.artifacts = artifacts
        self.limit = limit
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def used(self, owner: str) -> int:
        """Bytes of the owner's models and exports."""
        return sum(size + self.artifacts.export_bytes(job_id)
                   for job_id, size in self.store.model_bytes(owner).items())

    def check(self, owner: str) -> None:
        """QuotaError when the owner's jobs already keep the quota's bytes."""
        used = self.used(owner)
        if used >= self.limit:
            raise QuotaError(
                f"your jobs already keep {_size(used)}, and this server allows a token "
                f"{_size(self.limit)} (--max-stored-bytes-per-token); {FREE_SPACE}.")

    def open_export(self, owner: str, job_id: str, fmt: str) -> tuple[IO[bytes], int]:
        """Artifacts.open_export, refused (QuotaError) when writing it could pass the quota."""
        with self._guard:
            lock = self._locks.setdefault(owner, threading.Lock())
        with lock:  # one export of a token at a time: two cannot both fit in the same room
            need = self.artifacts.export_bound(job_id, fmt)
            used = self.used(owner) if need else 0
            if need and used + need > self.limit:
                raise QuotaError(
                    f"this export takes up to {_size(need)} and your jobs keep {_size(used)} "
                    f"of the {_size(self.limit)} this server allows a token "
                    f"(--max-stored-bytes-per-token); {FREE_SPACE}.")
            return self.artifacts.open_export(job_id, fmt)

"""Queries on finished models, served from memory-mapped vectors held in a small LRU."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from ..errors import Distw2vError
from ..vectors import Vectors
from .artifacts import Artifacts

MAX_TOPN = 1000
MAX_QUERY_WORDS = 20


class ModelCache:
    """Up to `size` loaded models; the least recently used one is dropped first.

    A model is loaded once even when many requests ask for it at the same moment; the cosine
    queries then run without a lock (NumPy releases the GIL in its matrix products). A cached
    model is answered for only while its files are still in place (a stat per query), and
    `drop` forgets it, with the owner remembered for it, when its job is retried or deleted.
    """

    def __init__(self, artifacts: Artifacts, size: int, owners: int = 100_000) -> None:
        self.artifacts = artifacts
        self.size = size
        self._models: OrderedDict[str, Vectors] = OrderedDict()
        self._owners: dict[str, str] = {}  # job id -> owner of a succeeded job
        self._max_owners = owners
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def __len__(self) -> int:
        return len(self._models)

    def owner(self, job_id: str) -> str | None:
        """The remembered owner of a succeeded job (None: ask the store)."""
        return self._owners.get(job_id)

    def remember_owner(self, job_id: str, owner: str) -> None:
        with self._lock:
            if len(self._owners) >= self._max_owners:
                self._owners.clear()
            self._owners[job_id] = owner

    def get(self, job_id: str) -> Vectors:
        """The job's vectors; ModelGone when its model is no longer in place."""
        if not self.artifacts.has_model(job_id):
            self.drop(job_id)
            self.artifacts.local_model(job_id)  # fetches a remote model, or raises ModelGone
        with self._lock:
            if job_id in self._models:
                self._models.move_to_end(job_id)
                return self._models[job_id]
            loading = self._loading.setdefault(job_id, threading.Lock())
        with loading:
            with self._lock:
                if job_id in self._models:
                    self._models.move_to_end(job_id)
                    return self._models[job_id]
            vectors = Vectors.load(self.artifacts.local_model(job_id), mmap=True)
            vectors.norms  # noqa: B018 - once, here, rather than in many query threads at once
            with self._lock:
                self._models[job_id] = vectors
                self._loading.pop(job_id, None)
                while len(self._models) > self.size:
                    self._models.popitem(last=False)
        return vectors

    def drop(self, job_id: str) -> None:
        with self._lock:
            self._models.pop(job_id, None)
            self._owners.pop(job_id, None)


def _check_topn(topn: int) -> None:
    if not 1 <= topn <= MAX_TOPN:
        raise Distw2vError(f"topn must be between 1 and {MAX_TOPN}.")


def similar(vectors: Vectors, word: str, topn: int, exact: bool = False) -> list[dict[str, Any]]:
    _check_topn(topn)
    return [{"word": w, "score": s}
            for w, s in vectors.most_similar(word, topn=topn, exact=exact)]


def analogy(
    vectors: Vectors, positive: Sequence[str], negative: Sequence[str], topn: int,
    exact: bool = False,
) -> list[dict[str, Any]]:
    _check_topn(topn)
    if not positive:
        raise Distw2vError("an analogy needs at least one positive word.")
    if len(positive) + len(negative) > MAX_QUERY_WORDS:
        raise Distw2vError(f"an analogy takes at most {MAX_QUERY_WORDS} words.")
    return [{"word": w, "score": s}
            for w, s in vectors.most_similar(list(positive), list(negative), topn=topn,
                                             exact=exact)]


def vector(vectors: Vectors, word: str) -> list[float]:
    return [float(x) for x in vectors[word]]


def split_words(values: Sequence[str]) -> list[str]:
    """Repeated query parameters, each possibly comma-separated: ?positive=a,b&positive=c."""
    return [w for value in values for w in value.split(",") if w]

"""A row shard for data-parallel ("rows", Downpour-style) training: WHOLE rows of the input
(syn0) and output (syn1) matrices for a hash-permuted subset of the words.

Spark tasks pull the rows a chunk touches, train locally and push back deltas. `owners` is
the one home of the placement rule; clients call it too. Pulls and pushes from many gRPC
threads run concurrently, hogwild on the rows; the word count is kept under a lock.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

import fsspec
import numpy as np

from ..checkpoints import load_arrays, save_arrays
from ..errors import Distw2vError
from ..training import initial_inputs

CHECKPOINT_FORMAT = "distw2v-rows"
BLOCK_VALUES = 1 << 22  # floats drawn at a time when initialising: bounded memory
ADAGRAD_EPS = 1e-6
_MASK64 = (1 << 64) - 1


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's step and finaliser on uint64 (wrapping arithmetic)."""
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def owners(ids: np.ndarray, shards: int, permute: bool, seed: int) -> np.ndarray:
    """The shard (int64) of each word id: id % shards, or with `permute` a seeded hash of it
    mod shards, so that the frequent words (the low ids) spread over all shards."""
    if shards < 1:
        raise Distw2vError(f"a model needs at least one row shard, not {shards}.")
    ids = np.asarray(ids, dtype=np.int64)
    if not permute:
        return ids % shards
    key = _mix64(np.array([seed & _MASK64], dtype=np.uint64))
    hashed = _mix64(ids.astype(np.uint64) ^ key)  # uint64 arrays wrap silently
    return (hashed % np.uint64(shards)).astype(np.int64)


@dataclass(frozen=True, kw_only=True)
class RowSpec:
    vocab_size: int
    dim: int
    shard: int  # this shard's index in [0, shards)
    shards: int
    permute: bool = True  # hash ids to shards (else id % shards)
    seed: int = 1  # of the placement hash and of the initial vectors (the local trainer's)
    optimizer: str = "sgd"  # or "adagrad", with accumulators on the shard
    adagrad_eta: float = 0.05
    damping: float = 1.0  # SGD deltas are scaled by it
    model: str = "skipgram"  # or "cbow"


def owned_ids(spec: RowSpec) -> np.ndarray:
    """The sorted word ids (int64) that shard `spec.shard` holds, computed in blocks."""
    block = max(BLOCK_VALUES // 8, 1)
    found = [lo + np.flatnonzero(owners(np.arange(lo, min(lo + block, spec.vocab_size)),
                                        spec.shards, spec.permute, spec.seed) == spec.shard)
             for lo in range(0, spec.vocab_size, block)]
    return np.concatenate(found).astype(np.int64) if found else np.zeros(0, dtype=np.int64)


def _check(spec: RowSpec) -> None:
    if spec.vocab_size < 0 or spec.dim < 1:
        raise Distw2vError(f"a model of {spec.vocab_size} words x {spec.dim} is impossible.")
    if not 0 <= spec.shard < spec.shards:
        raise Distw2vError(f"row shard {spec.shard} is not one of {spec.shards}.")
    if spec.optimizer not in ("sgd", "adagrad"):
        raise Distw2vError(f"unknown optimizer {spec.optimizer!r}; use 'sgd' or 'adagrad'.")
    if spec.model not in ("skipgram", "cbow"):
        raise Distw2vError(f"unknown model {spec.model!r}; use 'skipgram' or 'cbow'.")
    if not (np.isfinite(spec.damping) and np.isfinite(spec.adagrad_eta)
            and spec.adagrad_eta > 0):
        raise Distw2vError("damping must be finite and adagrad_eta finite and positive.")


def _summed(positions: np.ndarray, deltas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique positions and the sum of each one's deltas (a push may repeat a row)."""
    if not positions.size:
        return positions, deltas
    order = np.argsort(positions, kind="stable")
    ordered = positions[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return ordered[starts], np.add.reduceat(deltas[order], starts, axis=0)


class RowShard:
    def __init__(self) -> None:
        self.spec: RowSpec | None = None
        self._empty()
        self.global_words = 0  # corpus words reported by all clients; drives the learning rate
        self.counters = {"pulls": 0, "pushes": 0, "rows_pulled": 0, "rows_pushed": 0}
        self.started = time.time()
        self._lock = threading.Lock()
        # A checkpoint waits for the pulls and pushes under way and holds new ones back
        # while it saves, so that the saved rows, accumulators and word count belong together.
        self._gate = threading.Condition()
        self._active = 0
        self._saving = False

    def _empty(self) -> None:
        self.ids = np.zeros(0, dtype=np.int64)
        self.syn0 = self.syn1 = np.zeros((0, 0), dtype=np.float32)
        self.acc0 = self.acc1 = np.zeros((0, 0), dtype=np.float32)

    @contextmanager
    def _call(self) -> Iterator[None]:
        with self._gate:
            while self._saving:
                self._gate.wait()
            self._active += 1
        try:
            yield
        finally:
            with self._gate:
                self._active -= 1
                self._gate.notify_all()

    @contextmanager
    def _paused(self) -> Iterator[None]:
        with self._gate:
            while self._saving:  # one save at a time
                self._gate.wait()
            self._saving = True
            while self._active:
                self._gate.wait()
        try:
            yield
        finally:
            with self._gate:
                self._saving = False
                self._gate.notify_all()

    # --- set-up -------------------------------------------------------------------------

    def configure(self, spec: RowSpec) -> None:
        """Hold this shard's rows: syn0 as the local trainer starts it (`initial_inputs` over
        the whole vocabulary from one generator seeded by `seed`, drawn in blocks, the owned
        rows kept: a word starts the same whichever shard holds it), syn1 zero."""
        self._prepare(spec)
        ids = self.ids
        syn0 = np.empty((len(ids), spec.dim), dtype=np.float32)
        rng = np.random.default_rng(spec.seed)
        block = max(BLOCK_VALUES // spec.dim, 1)
        for lo in range(0, spec.vocab_size, block):
            hi = min(lo + block, spec.vocab_size)
            drawn = initial_inputs(rng, hi - lo, spec.dim, spec.dim)
            a, b = np.searchsorted(ids, [lo, hi])
            syn0[a:b] = drawn[ids[a:b] - lo]
        self.syn0 = syn0
        self.syn1 = np.zeros_like(syn0)
        if spec.optimizer == "adagrad":
            self.acc0, self.acc1 = np.zeros_like(syn0), np.zeros_like(syn0)
        self.spec = spec

    def _prepare(self, spec: RowSpec) -> None:
        """Everything but the matrices: the owned ids, fresh counters."""
        _check(spec)
        self.spec = None
        self._empty()  # free the old matrices first
        self.ids = owned_ids(spec)
        self.global_words = 0
        self.counters = dict.fromkeys(self.counters, 0)
        self.started = time.time()

    def _require_spec(self) -> RowSpec:
        if self.spec is None:
            raise Distw2vError("this row shard has not been configured.")
        return self.spec

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Where global word ids sit in this shard's rows; refuses ids it does not hold."""
        spec = self._require_spec()
        ids = np.asarray(ids)
        if ids.ndim != 1 or not (ids.dtype.kind in "iu" or ids.size == 0):
            raise Distw2vError("word ids must be a one-dimensional integer array.")
        ids = ids.astype(np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= spec.vocab_size):
            raise Distw2vError(f"a word id is outside the vocabulary of {spec.vocab_size}.")
        where = np.searchsorted(self.ids, ids)
        held = where < len(self.ids)
        held[held] = self.ids[where[held]] == ids[held]
        if not held.all():
            raise Distw2vError(f"word id {int(ids[~held][0])} is not held by row shard "
                               f"{spec.shard} of {spec.shards}.")
        return where

    # --- training -------------------------------------------------------------------------

    def pull(self, ids0: np.ndarray, ids1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the syn0 rows of `ids0` and the syn1 rows of `ids1` (global ids)."""
        with self._call():
            at0, at1 = self.positions(ids0), self.positions(ids1)
            rows0, rows1 = self.syn0[at0], self.syn1[at1]  # fancy indexing copies
            with self._lock:
                self.counters["pulls"] += 1
                self.counters["rows_pulled"] += len(at0) + len(at1)
            return rows0, rows1

    def push(self, ids0: np.ndarray, delta0: np.ndarray, ids1: np.ndarray,
             delta1: np.ndarray, words: int) -> int:
        """Apply deltas to the syn0 rows of `ids0` and the syn1 rows of `ids1`, summed per
        row first; add `words` to the global word count and return it.

        SGD: row += damping * delta. AdaGrad, with per-element accumulators acc on the
        shard: acc += delta**2; row += adagrad_eta * delta / (sqrt(acc) + 1e-6).
        """
        with self._call():
            spec = self._require_spec()
            if words < 0:
                raise Distw2vError(f"a push cannot report {words} words.")
            updates = []
            for ids, delta, syn, acc in ((ids0, delta0, self.syn0, self.acc0),
                                         (ids1, delta1, self.syn1, self.acc1)):
                at = self.positions(ids)
                delta = np.asarray(delta, dtype=np.float32)
                if delta.shape != (len(at), spec.dim):
                    raise Distw2vError(f"deltas of shape {delta.shape} do not fit {len(at)} "
                                       f"rows of {spec.dim}.")
                if not np.isfinite(delta).all():
                    raise Distw2vError("a push carries a delta that is not finite.")
                updates.append((*_summed(at, delta), syn, acc))
            for at, delta, syn, acc in updates:  # all checked before any is applied
                if spec.optimizer == "adagrad":
                    acc[at] += delta * delta
                    syn[at] += np.float32(spec.adagrad_eta) * delta / (
                        np.sqrt(acc[at]) + np.float32(ADAGRAD_EPS))
                else:
                    syn[at] += np.float32(spec.damping) * delta
            with self._lock:
                self.global_words += int(words)
                self.counters["pushes"] += 1
                self.counters["rows_pushed"] += len(updates[0][0]) + len(updates[1][0])
                return self.global_words

    # --- reading and persistence -----------------------------------------------------------

    def pull_range(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """The held ids in [lo, hi) and copies of their syn0 rows (to export the model)."""
        with self._call():
            spec = self._require_spec()
            if not 0 <= lo <= hi <= spec.vocab_size:
                raise Distw2vError(f"ids [{lo}, {hi}) are outside the vocabulary.")
            a, b = np.searchsorted(self.ids, [lo, hi])
            return self.ids[a:b].copy(), self.syn0[a:b].copy()

    def _names(self, spec: RowSpec) -> list[str]:
        names = ["syn0", "syn1"] + (["acc0", "acc1"] if spec.optimizer == "adagrad" else [])
        return [f"rows-{spec.shard}-of-{spec.shards}-{name}" for name in names]

    def _meta_path(self, path: str, spec: RowSpec) -> str:
        return f"{path}/rows-{spec.shard}-of-{spec.shards}.json"

    def checkpoint(self, uri: str) -> None:
        """Write this shard's rows (and accumulators) to a directory (local path or fsspec
        URL), with pulls and pushes paused meanwhile."""
        with self._paused():
            spec = self._require_spec()
            arrays = [self.syn0, self.syn1] + (
                [self.acc0, self.acc1] if spec.optimizer == "adagrad" else [])
            save_arrays(uri, dict(zip(self._names(spec), arrays)))
            meta = {"format": CHECKPOINT_FORMAT, "spec": asdict(spec),
                    "global_words": self.global_words}
            try:
                fs, path = fsspec.core.url_to_fs(uri)
                with fs.open(self._meta_path(path, spec), "w") as f:
                    f.write(json.dumps(meta))
            except OSError as exc:
                raise Distw2vError(f"cannot save a checkpoint in {uri}: {exc}.") from None

    def load(self, uri: str, spec: RowSpec, global_words: int | None = None) -> None:
        """Configure as `spec` with the rows saved in `uri` by the same model (vocabulary,
        dim, placement, seed, optimizer; damping and adagrad_eta may have moved). The word
        count is the saved one unless `global_words` is given."""
        _check(spec)
        fs, path = fsspec.core.url_to_fs(uri)
        try:
            with fs.open(self._meta_path(path, spec), "r") as f:
                meta = json.loads(f.read())
            if meta.get("format") != CHECKPOINT_FORMAT:
                raise ValueError("no format mark")
            saved = RowSpec(**meta["spec"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise Distw2vError(f"no readable checkpoint of row shard {spec.shard} of "
                               f"{spec.shards} in {uri}: {exc}.") from None
        if replace(saved, damping=spec.damping, adagrad_eta=spec.adagrad_eta) != spec:
            raise Distw2vError(f"the checkpoint in {uri} belongs to another model "
                               f"({saved.vocab_size} words x {saved.dim}, seed {saved.seed}, "
                               f"{saved.optimizer}).")
        self._prepare(spec)
        arrays = load_arrays(uri, self._names(spec), (len(self.ids), spec.dim))
        self.syn0, self.syn1 = arrays[0], arrays[1]
        if spec.optimizer == "adagrad":
            self.acc0, self.acc1 = arrays[2], arrays[3]
        self.global_words = int(meta.get("global_words", 0)) if global_words is None \
            else global_words
        self.spec = spec

    def describe(self) -> dict[str, Any]:
        spec = self.spec
        held = self.syn0.nbytes + self.syn1.nbytes + self.acc0.nbytes + self.acc1.nbytes
        with self._lock:
            counters = dict(self.counters)
        elapsed = max(time.time() - self.started, 1e-9)
        return {
            "configured": spec is not None,
            "spec": asdict(spec) if spec else None,
            "global_words": self.global_words,
            "bytes_held": int(held + self.ids.nbytes),
            "rows": int(len(self.ids)),
            **counters,
            "started": self.started,
            "pushes_per_second": counters["pushes"] / elapsed,
        }

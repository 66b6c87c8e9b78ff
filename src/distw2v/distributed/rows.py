"""A row shard for data-parallel ("rows", Downpour-style) training: WHOLE rows of the input
(syn0) and output (syn1) matrices for a hash-permuted subset of the words.

Spark tasks pull the rows a chunk touches, train locally and push back deltas. `owners` is
the one home of the placement rule; clients call it too. Pulls and pushes from many gRPC
threads run concurrently, hogwild on the rows; the word count is kept under a lock.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from functools import cached_property
from typing import Any

import fsspec
import numpy as np

from ..checkpoints import load_arrays, save_arrays
from ..config import INT32_MAX, MAX_DIM, MAX_SEED
from ..errors import Distw2vError
from ..kernels.row_updates import adagrad_rows, add_rows, all_finite
from ..training import initial_inputs
from . import checks
from .checks import bounded
from .gate import CheckpointGate
from .start_rows import init_blocks

CHECKPOINT_FORMAT = "distw2v-rows"
BLOCK_VALUES = 1 << 22  # floats drawn at a time when initialising: bounded memory
ADAGRAD_EPS = 1e-6
MAX_SHARDS = 1 << 16


@dataclass(frozen=True)
class Placement:
    """Which shard holds each word's rows, and where: the one home of the rule, used by the
    shards and their clients alike. Arithmetic both ways, so neither side needs a table.

    With `permute`, a seeded affine bijection p = (a * id + b) mod V puts word id at row
    p // shards of shard p % shards: the frequent words (the low ids) spread over all shards.
    Without, shard s holds the contiguous ids [s * V // shards, (s + 1) * V // shards), as a
    naive row partition does (the frequent words all on shard 0; kept for comparison).
    """

    vocab_size: int
    shards: int
    permute: bool = True
    seed: int = 1

    def __post_init__(self) -> None:
        if self.shards < 1:
            raise Distw2vError(f"a model needs at least one row shard, not {self.shards}.")

    @cached_property  # asked on every pull and push: computed once
    def _affine(self) -> tuple[int, int, int]:
        """(a, b, a's inverse mod V): a near the golden section of V, coprime with it."""
        v = max(self.vocab_size, 1)
        if v == 1:
            return 0, 0, 0
        a = (int(v * 0.6180339887) + 2 * self.seed) % v | 1
        while math.gcd(a, v) != 1:
            a = (a + 1) % v or 1
        return a, (self.seed * 2654435761) % v, pow(a, -1, v)

    @cached_property
    def _bounds(self) -> np.ndarray:
        return np.array([self.vocab_size * s // self.shards for s in range(self.shards + 1)],
                        dtype=np.int64)

    def _permuted(self, ids: np.ndarray) -> np.ndarray:
        a, b, _ = self._affine
        return (np.asarray(ids, dtype=np.int64) * a + b) % max(self.vocab_size, 1)

    def locate(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The shard (int64) of each word id, and where it sits among that shard's rows."""
        if not self.permute:
            ids = np.asarray(ids, dtype=np.int64)
            owners = np.searchsorted(self._bounds, ids, side="right") - 1
            return owners, ids - self._bounds[owners]
        permuted = self._permuted(ids)
        return permuted % self.shards, permuted // self.shards

    def owners(self, ids: np.ndarray) -> np.ndarray:
        """The shard (int64) of each word id."""
        return self.locate(ids)[0]

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Where each word id sits among its shard's rows (int64)."""
        return self.locate(ids)[1]

    def sort_key(self, ids: np.ndarray) -> np.ndarray:
        """Keys (int64) that order word ids by shard, then by position: sorted by them, each
        shard's words are together and in the order of its rows."""
        if not self.permute:
            return np.asarray(ids, dtype=np.int64)  # contiguous ranges: the ids' own order
        owners, positions = self.locate(ids)
        return owners * max(self.vocab_size, 1) + positions

    def rows(self, shard: int) -> int:
        """How many words shard `shard` holds."""
        if not self.permute:
            bounds = self._bounds
            return int(bounds[shard + 1] - bounds[shard])
        return max(0, -(-(self.vocab_size - shard) // self.shards))

    def ids_at(self, shard: int, positions: np.ndarray) -> np.ndarray:
        """The word ids at `positions` of shard `shard` (the inverse of `positions`)."""
        positions = np.asarray(positions, dtype=np.int64)
        if not self.permute:
            return positions + self._bounds[shard]
        _, b, inverse = self._affine
        v = max(self.vocab_size, 1)
        return (positions * self.shards + shard - b) % v * inverse % v


def owners(ids: np.ndarray, shards: int, permute: bool, seed: int,
           vocab_size: int) -> np.ndarray:
    """The shard of each word id (Placement.owners)."""
    return Placement(vocab_size, shards, permute, seed).owners(ids)


@dataclass(frozen=True, kw_only=True)
class RowSpec:
    """What a driver configures a row shard with; the bounds are checked when one arrives
    from a peer (checks.spec_from)."""

    vocab_size: int = bounded(0, INT32_MAX)
    dim: int = bounded(1, MAX_DIM)
    shard: int = bounded(0, MAX_SHARDS)  # this shard's index in [0, shards)
    shards: int = bounded(1, MAX_SHARDS)
    permute: bool = True  # spread ids over the shards (else contiguous ranges; see Placement)
    # of the placement hash and of the initial vectors (the local trainer's)
    seed: int = bounded(0, MAX_SEED, default=1)
    optimizer: str = "sgd"  # or "adagrad", with accumulators on the shard
    adagrad_eta: float = bounded(0, 10.0, default=0.05)
    damping: float = bounded(0, 10.0, default=1.0)  # SGD deltas are scaled by it
    model: str = "skipgram"  # or "cbow"
    init_uri: str = ""  # a continued run's start, as ShardSpec's
    init_rows: int = bounded(0, INT32_MAX, default=0)


def placement(spec: RowSpec) -> Placement:
    return Placement(spec.vocab_size, spec.shards, spec.permute, spec.seed)


def owned_ids(spec: RowSpec) -> np.ndarray:
    """The word ids (int64) that shard `spec.shard` holds, in the order of its rows."""
    where = placement(spec)
    return where.ids_at(spec.shard, np.arange(where.rows(spec.shard)))


def _check(spec: RowSpec) -> None:
    if spec.vocab_size < 0 or spec.dim < 1:
        raise Distw2vError(f"a model of {spec.vocab_size} words x {spec.dim} is impossible.")
    if not 0 <= spec.shard < spec.shards:
        raise Distw2vError(f"row shard {spec.shard} is not one of {spec.shards}.")
    if spec.optimizer not in ("sgd", "adagrad"):
        raise Distw2vError(f"unknown optimizer {spec.optimizer!r}; use 'sgd' or 'adagrad'.")
    if spec.model not in ("skipgram", "cbow"):
        raise Distw2vError(f"unknown model {spec.model!r}; use 'skipgram' or 'cbow'.")
    if spec.init_rows > spec.vocab_size:
        raise Distw2vError(f"a start of {spec.init_rows} rows does not fit a vocabulary of "
                           f"{spec.vocab_size}.")
    if not (np.isfinite(spec.damping) and np.isfinite(spec.adagrad_eta)
            and spec.adagrad_eta > 0):
        raise Distw2vError("damping must be finite and adagrad_eta finite and positive.")
    matrices = 4 if spec.optimizer == "adagrad" else 2
    checks.affordable(matrices * 4 * spec.dim * -(-spec.vocab_size // spec.shards),
                      "this shard's rows")


def _integers(values: np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(values)
    if values.ndim != 1 or not (values.dtype.kind in "iu" or values.size == 0):
        raise Distw2vError(f"{what} must be a one-dimensional integer array.")
    return values.astype(np.int64)


Update = tuple[np.ndarray, np.ndarray]  # row positions and their deltas


def _summed(positions: np.ndarray, deltas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique positions and the sum of each one's deltas (a push may repeat a row)."""
    if positions.size < 2 or (positions[1:] > positions[:-1]).all():
        return positions, deltas  # as clients send them (rowcodec): sorted and unique
    order = np.argsort(positions, kind="stable")
    ordered = positions[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    return ordered[starts], np.add.reduceat(deltas[order], starts, axis=0)


class RowShard:
    def __init__(self) -> None:
        self.spec: RowSpec | None = None
        self.placement = Placement(0, 1)  # the configured spec's (see _prepare)
        self._empty()
        self.global_words = 0  # corpus words reported by all clients; drives the learning rate
        self.counters = {"pulls": 0, "pushes": 0, "rows_pulled": 0, "rows_pushed": 0,
                         "loss_pairs": 0}
        self.loss_sum = 0.0  # the SGNS loss tasks reported with their pushes (shard 0)
        self.started = time.time()
        self._lock = threading.Lock()
        self._apply = threading.Lock()  # pushes apply one at a time (see push_at)
        # A checkpoint waits for the pulls and pushes under way and holds new ones back
        # while it saves, so that the saved rows, accumulators and word count belong together.
        self._gate = CheckpointGate()

    def _empty(self) -> None:
        self.ids = np.zeros(0, dtype=np.int64)
        self.syn0 = self.syn1 = np.zeros((0, 0), dtype=np.float32)
        self.acc0 = self.acc1 = np.zeros((0, 0), dtype=np.float32)

    # --- set-up -------------------------------------------------------------------------

    def configure(self, spec: RowSpec) -> None:
        """Hold this shard's rows: syn0 as the local trainer starts it (`initial_inputs` over
        the whole vocabulary from one generator seeded by `seed`, drawn in blocks, the owned
        rows kept: a word starts the same whichever shard holds it), syn1 zero. Waits for
        the pulls and pushes under way and holds new ones back meanwhile: none may see the
        rows change under it."""
        with self._gate.paused():
            self._configure(spec)

    def _configure(self, spec: RowSpec) -> None:
        self._prepare(spec)
        where = self.placement
        syn0 = np.empty((len(self.ids), spec.dim), dtype=np.float32)
        rng = np.random.default_rng(spec.seed)
        block = max(BLOCK_VALUES // spec.dim, 1)
        for lo in range(0, spec.vocab_size, block):
            hi = min(lo + block, spec.vocab_size)
            drawn = initial_inputs(rng, hi - lo, spec.dim, spec.dim)
            ids = np.arange(lo, hi)
            mine = where.owners(ids) == spec.shard
            syn0[where.positions(ids[mine])] = drawn[mine]
        self.syn0 = syn0
        self.syn1 = np.zeros_like(syn0)
        for name, matrix in (("syn0", self.syn0), ("syn1", self.syn1)):
            for first, rows in init_blocks(spec.init_uri, name, spec.init_rows, spec.dim) \
                    if spec.init_rows else ():
                ids = np.arange(first, first + len(rows))
                mine = where.owners(ids) == spec.shard
                matrix[where.positions(ids[mine])] = rows[mine]
        if spec.optimizer == "adagrad":
            self.acc0, self.acc1 = np.zeros_like(syn0), np.zeros_like(syn0)
        self.spec = spec

    def _prepare(self, spec: RowSpec) -> None:
        """Everything but the matrices: the placement, the owned ids, fresh counters."""
        _check(spec)
        self.spec = None
        self._empty()  # free the old matrices first
        self.placement = placement(spec)
        self.ids = owned_ids(spec)
        self.global_words = 0
        self.loss_sum = 0.0
        self.counters = dict.fromkeys(self.counters, 0)
        self.started = time.time()

    def _require_spec(self) -> RowSpec:
        if self.spec is None:
            raise Distw2vError("this row shard has not been configured.")
        return self.spec

    def positions(self, ids: np.ndarray) -> np.ndarray:
        """Where global word ids sit in this shard's rows; refuses ids it does not hold."""
        spec = self._require_spec()
        ids = _integers(ids, "word ids")
        if ids.size and (ids.min() < 0 or ids.max() >= spec.vocab_size):
            raise Distw2vError(f"a word id is outside the vocabulary of {spec.vocab_size}.")
        owners, positions = self.placement.locate(ids)
        foreign = owners != spec.shard
        if foreign.any():
            raise Distw2vError(f"word id {int(ids[foreign][0])} is not held by row shard "
                               f"{spec.shard} of {spec.shards}.")
        return positions

    def _checked(self, positions: np.ndarray) -> np.ndarray:
        positions = _integers(positions, "row positions")
        if positions.size and (positions.min() < 0 or positions.max() >= len(self.ids)):
            raise Distw2vError(f"a row position is outside this shard's {len(self.ids)} rows.")
        return positions

    # --- training -------------------------------------------------------------------------

    def pull(self, ids0: np.ndarray, ids1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the syn0 rows of `ids0` and the syn1 rows of `ids1` (global ids)."""
        rows0, rows1 = self.pull_at(self.positions(ids0), self.positions(ids1))
        return rows0, rows1

    def pull_at(self, at0: np.ndarray, *at1: np.ndarray) -> list[np.ndarray]:
        """`pull` by row positions (see Placement), as clients send them: copies of the syn0
        rows at `at0`, then of the syn1 rows at each array of `at1`."""
        with self._gate.call():
            checked = [self._checked(at) for at in (at0, *at1)]
            rows = [self.syn0[checked[0]]] + [self.syn1[at] for at in checked[1:]]  # copies
            with self._lock:
                self.counters["pulls"] += 1
                self.counters["rows_pulled"] += sum(len(at) for at in checked)
            return rows

    def push(self, ids0: np.ndarray, delta0: np.ndarray, ids1: np.ndarray,
             delta1: np.ndarray, words: int) -> int:
        """Apply deltas to the syn0 rows of `ids0` and the syn1 rows of `ids1` (push_at)."""
        return self.push_at([(self.positions(ids0), delta0)],
                            [(self.positions(ids1), delta1)], words)

    def push_at(self, updates0: Sequence[Update], updates1: Sequence[Update],
                words: int, loss: float = 0.0, loss_pairs: int = 0) -> int:
        """Apply deltas to the syn0 rows (`updates0`: pairs of row positions and their
        deltas) and the syn1 rows (`updates1`), each pair's summed per row first; add
        `words` to the global word count and return it.

        SGD: row += damping * delta. AdaGrad, with per-element accumulators acc on the
        shard: acc += delta**2; row += adagrad_eta * delta / (sqrt(acc) + 1e-6).

        Deltas are summed as they come (Downpour): measured on English with 2 tasks and
        10,000-word chunks, that matches the local trainer, and damping a row's delta by the
        pushes it took since its pull (1 / (1 + stale)) lost 0.1 of wordsim353. Larger
        chunks do overshoot (see --row-chunk-words).
        """
        with self._gate.call():
            spec = self._require_spec()
            if words < 0:
                raise Distw2vError(f"a push cannot report {words} words.")
            updates = []
            for which, pairs in ((0, updates0), (1, updates1)):
                for at, delta in pairs:
                    at = self._checked(at)
                    delta = np.ascontiguousarray(delta, dtype=np.float32)  # as the kernels take it
                    if delta.shape != (len(at), spec.dim):
                        raise Distw2vError(f"deltas of shape {delta.shape} do not fit "
                                           f"{len(at)} rows of {spec.dim}.")
                    if not all_finite(delta):
                        raise Distw2vError("a push carries a delta that is not finite.")
                    updates.append((which, *_summed(at, delta)))
            # One push at a time: the update kernels read, add and write rows without the GIL,
            # so two at once would lose one's changes to the rows both touch, the frequent
            # words' rows above all.
            with self._apply:
                self._apply_updates(spec, updates)
            with self._lock:
                self.global_words += int(words)
                self.loss_sum += loss
                self.counters["loss_pairs"] += loss_pairs
                self.counters["pushes"] += 1
                self.counters["rows_pushed"] += sum(len(update[1]) for update in updates)
                return self.global_words

    def _apply_updates(self, spec: RowSpec, updates: list[Any]) -> None:
        for which, at, delta in updates:
            syn, acc = (self.syn0, self.acc0) if which == 0 else (self.syn1, self.acc1)
            if spec.optimizer == "adagrad":
                adagrad_rows(syn, acc, at, delta, np.float32(spec.adagrad_eta),
                             np.float32(ADAGRAD_EPS))
            else:
                add_rows(syn, at, delta, np.float32(spec.damping))

    # --- reading and persistence -----------------------------------------------------------

    def pull_range(self, lo: int, hi: int,
                   which: str = "syn0") -> tuple[np.ndarray, np.ndarray]:
        """The held ids in [lo, hi) and copies of their syn0 (or syn1) rows (to export the
        model)."""
        with self._gate.call():
            spec = self._require_spec()
            if which not in ("syn0", "syn1"):
                raise Distw2vError(f"there is no matrix {str(which)[:20]!r}; use syn0 or syn1.")
            if not 0 <= lo <= hi <= spec.vocab_size:
                raise Distw2vError(f"ids [{lo}, {hi}) are outside the vocabulary.")
            ids = np.arange(lo, hi, dtype=np.int64)
            where = self.placement
            ids = ids[where.owners(ids) == spec.shard]
            return ids, (self.syn0 if which == "syn0" else self.syn1)[where.positions(ids)]

    def _names(self, spec: RowSpec) -> list[str]:
        names = ["syn0", "syn1"] + (["acc0", "acc1"] if spec.optimizer == "adagrad" else [])
        return [f"rows-{spec.shard}-of-{spec.shards}-{name}" for name in names]

    def _meta_path(self, path: str, spec: RowSpec) -> str:
        return f"{path}/rows-{spec.shard}-of-{spec.shards}.json"

    def checkpoint(self, uri: str) -> None:
        """Write this shard's rows (and accumulators) to a directory (local path or fsspec
        URL), with pulls and pushes paused meanwhile."""
        with self._gate.paused():
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
        if replace(saved, damping=spec.damping, adagrad_eta=spec.adagrad_eta,
                   init_uri=spec.init_uri) != spec:
            raise Distw2vError(f"the checkpoint in {uri} belongs to another model "
                               f"({saved.vocab_size} words x {saved.dim}, seed {saved.seed}, "
                               f"{saved.optimizer}).")
        with self._gate.paused():  # as configure
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
            "loss_sum": self.loss_sum,
            **counters,
            "started": self.started,
            "pushes_per_second": counters["pushes"] / elapsed,
        }

"""A parameter-server shard: columns [lo, hi) of the input AND output matrices, all words.

A plain class with a small interface (configure, dot, update, pull, checkpoint, load,
stats); `server.py` wraps it in gRPC. Its math is `distw2v.kernels.columns`. Requests from
many clients run concurrently, hogwild: the kernels release the GIL.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import fsspec
import numpy as np

from ..checkpoints import load_arrays, save_arrays
from ..config import INT32_MAX, MAX_DIM, MAX_NEGATIVE, MAX_SEED
from ..errors import Distw2vError
from ..kernels.columns import (
    apply_updates,
    apply_updates_cbow,
    draw_batch_negatives,
    extrapolation,
    partial_dots,
    partial_dots_cbow,
)
from ..kernels.row_updates import all_finite
from ..training import initial_inputs
from ..vocab import negative_table
from . import checks
from .checks import bounded
from .gate import CheckpointGate
from .start_rows import init_blocks

CHECKPOINT_FORMAT = "distw2v-shard"
PENDING_BATCHES = 4096  # round-1 partials kept for round 2: far more than clients in flight


BatchKey = tuple[int, int, int]  # names a batch in round 2 (Batch.key)


@dataclass(frozen=True)
class Batch:
    """Centre words with their contexts; negatives follow from `seed` (see kernels.columns)."""

    centers: np.ndarray  # int32 (n,)
    ctx_offsets: np.ndarray  # int64 (n + 1,)
    contexts: np.ndarray  # int32 (m,)
    seed: int

    @property
    def pairs(self) -> int:
        return int(self.contexts.shape[0])

    @property
    def key(self) -> BatchKey:
        return (self.seed, self.pairs, int(self.centers.shape[0]))


Finish = tuple[BatchKey, np.ndarray, float]  # a batch's round 2: its key, summed dots, alpha


@dataclass(frozen=True, kw_only=True)
class ShardSpec:
    """What a driver configures a column shard with; the bounds are checked when one arrives
    from a peer (checks.spec_from)."""

    vocab_size: int = bounded(1, INT32_MAX)
    dim: int = bounded(1, MAX_DIM)  # the full dimension; this shard holds [lo, hi)
    lo: int = bounded(0, MAX_DIM)
    hi: int = bounded(1, MAX_DIM)
    negative: int = bounded(1, MAX_NEGATIVE)
    seed: int = bounded(0, MAX_SEED)
    counts_uri: str  # .npy of int64 word counts (for the negative-sampling table)
    shards: int = bounded(1, MAX_DIM, default=1)  # how many shards split the columns
    model: str = "skipgram"  # or "cbow": one dot product per centre, of its contexts' mean
    # a continued run's: the model's first init_rows rows replace the initial ones, read
    # from the init directory under the work dir (start_rows.py)
    init_uri: str = ""
    init_rows: int = bounded(0, INT32_MAX, default=0)


@dataclass
class ShardStats:
    requests: int = 0
    pairs_dotted: int = 0
    pairs_updated: int = 0
    loss_sum: float = 0.0  # SGNS loss of the pairs (CBOW: centres) updated, summed
    loss_pairs: int = 0
    started: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        elapsed = max(time.time() - self.started, 1e-9)
        data["updates_per_second"] = self.pairs_updated / elapsed
        return data


def read_counts(uri: str) -> np.ndarray:
    try:
        with fsspec.open(uri, "rb") as f:
            counts = np.load(f)
    except (OSError, ValueError) as exc:
        raise Distw2vError(f"cannot read word counts from {uri}: {exc}.") from None
    return np.asarray(counts, dtype=np.int64)


class ParameterShard:
    def __init__(self) -> None:
        self.spec: ShardSpec | None = None
        self.syn0 = np.zeros((0, 0), dtype=np.float32)
        self.syn1 = np.zeros((0, 0), dtype=np.float32)
        self.neg_prob = np.ones(1, dtype=np.float32)
        self.neg_alias = np.zeros(1, dtype=np.int32)
        self.stats = ShardStats()
        self.global_words = 0  # corpus words reported by all clients; drives the learning rate
        self.shards = 1  # how many shards split the columns (for the staleness correction)
        self._pending: OrderedDict[BatchKey, tuple[Batch, np.ndarray, np.ndarray]] = \
            OrderedDict()
        self._lock = threading.Lock()
        # A checkpoint waits for the rounds under way and holds new ones back while it saves,
        # so that the saved columns and word count belong together.
        self._gate = CheckpointGate()

    # --- set-up -------------------------------------------------------------------------

    def configure(self, spec: ShardSpec) -> None:
        """Allocate and initialise this shard's columns (word2vec's start, seeded per shard).
        Waits for the calls under way and holds new ones back meanwhile: a call must never
        see the matrices change under it."""
        with self._gate.paused():
            self._prepare(spec)
            width = spec.hi - spec.lo
            rng = np.random.default_rng([spec.seed, spec.lo])
            self.syn0 = initial_inputs(rng, spec.vocab_size, width, spec.dim)
            self.syn1 = np.zeros((spec.vocab_size, width), dtype=np.float32)
            for name, matrix in (("syn0", self.syn0), ("syn1", self.syn1)):
                for first, block in init_blocks(spec.init_uri, name, spec.init_rows, spec.dim) \
                        if spec.init_rows else ():
                    matrix[first:first + len(block)] = block[:, spec.lo:spec.hi]
            self.spec = spec

    def _prepare(self, spec: ShardSpec) -> None:
        """Everything but the matrices: the negative-sampling table, fresh counters."""
        if not 0 <= spec.lo < spec.hi <= spec.dim:
            raise Distw2vError(
                f"shard columns [{spec.lo}, {spec.hi}) do not fit dim {spec.dim}."
            )
        if spec.model not in ("skipgram", "cbow"):
            raise Distw2vError(f"unknown model {spec.model!r}; use 'skipgram' or 'cbow'.")
        if spec.init_rows > spec.vocab_size:
            raise Distw2vError(f"a start of {spec.init_rows} rows does not fit a vocabulary "
                               f"of {spec.vocab_size}.")
        checks.affordable(2 * 4 * spec.vocab_size * (spec.hi - spec.lo), "this shard's columns")
        counts = read_counts(spec.counts_uri)
        if counts.shape != (spec.vocab_size,):
            raise Distw2vError(
                f"{spec.counts_uri} holds {counts.shape[0]} counts, not {spec.vocab_size}."
            )
        self.spec = None
        self.syn0 = self.syn1 = np.zeros((0, 0), dtype=np.float32)  # free the old ones first
        self.neg_prob, self.neg_alias = negative_table(counts)
        self.stats = ShardStats()
        self.global_words = 0
        self._pending.clear()

    def _require_spec(self) -> ShardSpec:
        if self.spec is None:
            raise Distw2vError("this parameter-server shard has not been configured.")
        return self.spec

    def _check(self, batch: Batch) -> None:
        """Refuse a batch the kernels would read or write outside their arrays with (its
        arrays' types and its seed are checked where a request becomes a Batch:
        server.batch_from)."""
        spec = self._require_spec()
        if batch.pairs > checks.PAIRS_MAX:
            raise Distw2vError(f"a batch of {batch.pairs} pairs is over the limit of "
                               f"{checks.PAIRS_MAX}.")
        checks.offsets(batch.ctx_offsets, len(batch.centers), batch.pairs)
        checks.word_ids(batch.centers, spec.vocab_size, "a batch's centres")
        checks.word_ids(batch.contexts, spec.vocab_size, "a batch's contexts")

    def _negatives(self, batch: Batch) -> np.ndarray:
        return draw_batch_negatives(len(batch.centers), self._require_spec().negative,
                                    self.neg_prob, self.neg_alias, np.uint64(batch.seed))

    # --- the two training rounds ----------------------------------------------------------

    def dot(self, batch: Batch, words: int = 0,
            finish: Finish | None = None) -> tuple[np.ndarray, int]:
        """Round 1: partial dot products for the batch's positives and negatives; adds
        `words` to the global word count and returns it. `finish`, the round 2 of the
        client's previous batch, is applied first: one call a batch instead of two."""
        with self._gate.call():
            self._check(batch)  # both parts are checked before either changes anything
            if words < 0:
                raise Distw2vError(f"a call cannot report {words} words.")
            if finish is not None:
                self._update(*finish)
            return self._dot(batch, words)

    def _dot(self, batch: Batch, words: int) -> tuple[np.ndarray, int]:
        negatives = self._negatives(batch)
        kernel = partial_dots_cbow if self._require_spec().model == "cbow" else partial_dots
        dots = kernel(self.syn0, self.syn1, batch.centers, batch.ctx_offsets, batch.contexts,
                      negatives)
        with self._lock:
            if batch.pairs:
                # round 2 brings only the key: the batch (copied out of its request, which
                # may hold more) and its negatives wait here with the partial dots
                kept = Batch(centers=np.array(batch.centers),
                             ctx_offsets=np.array(batch.ctx_offsets),
                             contexts=np.array(batch.contexts), seed=batch.seed)
                self._pending[batch.key] = (kept, negatives, dots)
                while len(self._pending) > PENDING_BATCHES:
                    self._pending.popitem(last=False)
            self.global_words += words
            self.stats.requests += 1
            self.stats.pairs_dotted += batch.pairs
            return dots, self.global_words

    def update(self, key: BatchKey, dots: np.ndarray, alpha: float) -> None:
        """Round 2 of the batch with `key` (Batch.key): `dots` are round 1's sums over all
        shards."""
        with self._gate.call():
            self._update(key, dots, alpha)

    def _update(self, key: BatchKey, dots: np.ndarray, alpha: float) -> None:
        spec = self._require_spec()
        with self._lock:
            pending = self._pending.get(key)
        if pending is None:
            raise Distw2vError(
                "round 2 for a batch this shard did not see in round 1 (or saw too long ago)."
            )
        batch, negatives, partial = pending
        cbow = spec.model == "cbow"
        rows = len(batch.centers) if cbow else batch.pairs  # CBOW: one row per centre
        if dots.dtype != np.float32 or dots.shape != (rows, spec.negative + 1):
            raise Distw2vError(f"dot products of shape {dots.shape} do not fit the batch.")
        dots = np.ascontiguousarray(dots)
        if not all_finite(dots.reshape(1, -1)):  # one long row: the probe vectorizes
            raise Distw2vError("a round 2 carries a dot product that is not finite.")
        if not 0.0 <= alpha <= 1.0:  # NaN too
            raise Distw2vError("a learning rate must be from 0 to 1.")
        with self._lock:  # checked: now it is taken (a second round 2 for it is refused)
            if self._pending.pop(key, None) is None:
                raise Distw2vError("round 2 for a batch that has had its round 2.")
        loss = (apply_updates_cbow if cbow else apply_updates)(
            self.syn0, self.syn1, batch.centers, batch.ctx_offsets, batch.contexts, negatives,
            dots, partial, alpha, extrapolation(spec.model, spec.shards))
        with self._lock:
            self.stats.requests += 1
            self.stats.pairs_updated += batch.pairs
            self.stats.loss_sum += loss
            self.stats.loss_pairs += rows

    # --- reading and persistence -----------------------------------------------------------

    def pull(self, lo: int, hi: int, which: str = "syn0") -> np.ndarray:
        """Rows [lo, hi) of this shard's columns of the input (syn0) or output (syn1) matrix."""
        self._require_spec()
        if which not in ("syn0", "syn1"):
            raise Distw2vError(f"there is no matrix {str(which)[:20]!r}; use syn0 or syn1.")
        matrix = self.syn0 if which == "syn0" else self.syn1
        if not 0 <= lo <= hi <= matrix.shape[0]:
            raise Distw2vError(f"rows [{lo}, {hi}) are outside the vocabulary.")
        return np.array(matrix[lo:hi])

    def checkpoint(self, uri: str) -> None:
        """Write this shard's slice to a directory (local path or fsspec URL), with training
        paused meanwhile."""
        with self._gate.paused():
            self._checkpoint(uri)

    def _checkpoint(self, uri: str) -> None:
        spec = self._require_spec()
        meta = {"format": CHECKPOINT_FORMAT, "spec": asdict(spec),
                "global_words": self.global_words}
        save_arrays(uri, {f"syn0-{spec.lo}-{spec.hi}": self.syn0,
                          f"syn1-{spec.lo}-{spec.hi}": self.syn1})
        try:
            fs, path = fsspec.core.url_to_fs(uri)
            with fs.open(f"{path}/shard-{spec.lo}-{spec.hi}.json", "w") as f:
                f.write(json.dumps(meta))
        except OSError as exc:
            raise Distw2vError(f"cannot save a checkpoint in {uri}: {exc}.") from None

    def load(self, uri: str, spec: ShardSpec, global_words: int | None = None) -> None:
        """Configure as `spec` with the columns saved in `uri` (by a run with the same
        vocabulary, dim, columns, negatives and seed; the counts may have moved). The global
        word count is the saved one unless `global_words` is given (a driver resuming within
        an epoch counts only the partitions it knows were finished)."""
        lo, hi = spec.lo, spec.hi
        fs, path = fsspec.core.url_to_fs(uri)
        try:
            with fs.open(f"{path}/shard-{lo}-{hi}.json", "r") as f:
                meta = json.loads(f.read())
            saved = ShardSpec(**meta["spec"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise Distw2vError(f"no readable checkpoint of columns [{lo}, {hi}) in {uri}: "
                               f"{exc}.") from None
        if replace(saved, counts_uri=spec.counts_uri, init_uri=spec.init_uri) != spec:
            raise Distw2vError(f"the checkpoint in {uri} belongs to another model "
                               f"({saved.vocab_size} words x {saved.dim}, seed {saved.seed}).")
        with self._gate.paused():  # as configure: no call sees the matrices change
            self._prepare(spec)
            self.syn0, self.syn1 = load_arrays(uri, [f"syn0-{lo}-{hi}", f"syn1-{lo}-{hi}"],
                                               (spec.vocab_size, hi - lo))
            self.global_words = int(meta.get("global_words", 0)) if global_words is None \
                else global_words
            self.spec = spec

    def describe(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "configured": spec is not None,
            "spec": asdict(spec) if spec else None,
            "global_words": self.global_words,
            "bytes_held": int(self.syn0.nbytes + self.syn1.nbytes),
            **self.stats.as_dict(),
        }

# numba types these bodies itself; mypy cannot follow numpy-scalar arithmetic in them.
# mypy: disable-error-code="arg-type,return-value,operator,call-overload,assignment,misc,call-arg"
"""Skip-gram and CBOW on a chunk's own rows, for data-parallel training with sparse rows.

A data-parallel task pulls from the parameter servers only the rows its chunk touches, trains
them locally and pushes back the deltas. The local kernels draw negatives as they go, so the
rows they touch are known only afterwards; here `plan_chunk` draws the chunk's negatives up
front into a pool, which makes the touched rows (chunk words and pool) known before training.
It maps them into one local id space: `rows` are the global ids, the chunk's words first (the
only input rows the kernels use), then the pool's other words, each part in the order of a
sort key the caller gives (the rows strategy's: shard by shard, so that each shard's rows are
contiguous in each part). Every index the kernels see is a position in `rows`. The
kernels are `local.py`'s algorithm with negatives taken in order from the pool (one set of
`negative` per trained centre) instead of drawn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np

from .local import (
    LOSS_MASK,
    learning_rate,
    longest_sentence,
    new_tally,
    subsample,
    tallied,
    tally_loss,
    target_gains,
    update_outputs,
    window_bounds,
)
from .memory import prefetch_row
from .sampling import lcg_below, lcg_next, lcg_uniform, mix_seed

POOL_STREAM = np.uint64(0x706F6F6C)  # "pool": its stream is not the kernel's, for any seed
_EMPTY = np.int32(-1)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class ChunkPlan:
    """A chunk in its local id space: every array but `rows` holds positions in `rows`."""

    rows: np.ndarray  # int64, unique global ids: the chunk's words, then the pool's others
    local_ids: np.ndarray  # int32, the chunk's words
    local_offsets: np.ndarray  # int64, sentence s is local_ids[local_offsets[s]:[s + 1]]
    pool: np.ndarray  # int32, the negatives in the order the kernels take them
    n_inputs: int  # rows[:n_inputs] are the chunk's words: the only syn0 rows used

    @property
    def words(self) -> int:
        return int(self.local_offsets[-1])


SortKey = Callable[[np.ndarray], np.ndarray]  # global ids -> keys to order them by


@numba.njit(cache=True)
def _draw_pool(
    prob: np.ndarray, alias: np.ndarray, n: int, state: np.uint64, out: np.ndarray,
) -> None:
    """`draw_negative`'s draws, n of them, without its branch: which of (i, alias[i]) is taken
    is a coin flip the CPU cannot predict, and a select here halves the time."""
    for k in range(n):
        state = lcg_next(state)
        i = lcg_below(state, prob.shape[0])
        state = lcg_next(state)
        other = alias[i]
        out[k] = i if lcg_uniform(state) < prob[i] else other


@numba.njit(cache=True)
def _draw_from(candidates: np.ndarray, state: np.uint64, out: np.ndarray) -> None:
    """Fill `out` with draws from `candidates`, uniformly (a second stage of sampling)."""
    for k in range(out.shape[0]):
        state = lcg_next(state)
        out[k] = candidates[lcg_below(state, candidates.shape[0])]


@numba.njit(inline="always", cache=True)
def _slot(table: np.ndarray, key: np.int32, shift: np.uint64) -> int:
    """The slot of `key` in the open-addressing table, or the empty slot where it goes."""
    mask = table.shape[0] - 1
    h = np.int64((np.uint64(key) * _GOLDEN) >> shift)
    while table[h] != key and table[h] != _EMPTY:
        h = (h + 1) & mask
    return h


@numba.njit(cache=True)
def _distinct(
    words: np.ndarray, table: np.ndarray, shift: np.uint64, slots: np.ndarray, n_words: int,
) -> tuple[np.ndarray, int]:
    """Hash every word, recording its slot; return the distinct words in first-seen order
    and how many of them are among the first `n_words`."""
    found = np.empty(words.shape[0], dtype=np.int32)
    n = 0
    n_first = 0
    for i in range(words.shape[0]):
        if i == n_words:
            n_first = n
        w = words[i]
        h = _slot(table, w, shift)
        fresh = table[h] == _EMPTY
        table[h] = w  # all unconditional: whether w is new is a branch the CPU mispredicts
        found[n] = w
        n += fresh
        slots[i] = h
    if words.shape[0] == n_words:
        n_first = n
    return found[:n], n_first


@numba.njit(cache=True)
def _localize(
    rows: np.ndarray, table: np.ndarray, shift: np.uint64, slots: np.ndarray,
    local: np.ndarray,
) -> None:
    """local[i] = position in `rows` of word i (whose slot is slots[i])."""
    at = np.empty(rows.shape[0], dtype=np.int32)
    for r in range(rows.shape[0]):
        at[r] = _slot(table, rows[r], shift)
    for r in range(rows.shape[0]):  # keys no longer needed: the table now maps slot to rank
        table[at[r]] = r
    for i in range(slots.shape[0]):
        local[i] = table[slots[i]]


def _ordered(ids: np.ndarray, sort_key: SortKey | None) -> np.ndarray:
    if sort_key is None:
        return np.sort(ids)  # numpy's sort: SIMD, fast
    return ids[np.argsort(sort_key(ids))]


def plan_chunk(
    ids: np.ndarray, offsets: np.ndarray, s_lo: int, s_hi: int,
    neg_prob: np.ndarray, neg_alias: np.ndarray, negative: int, seed: int | np.uint64,
    candidates: int = 0, sort_key: SortKey | None = None,
) -> ChunkPlan:
    """Draw the pool of sentences [s_lo, s_hi) (words × negative, as many as the kernels can
    take) from the alias table, seeded by `seed`, and map chunk and pool to local ids. The
    ids are vocabulary ids, below len(neg_prob).

    With `candidates` (fewer than the pool), the pool is drawn uniformly from that many
    draws of the table instead: the same distribution in expectation (the candidates are a
    sample of it), but far fewer distinct output rows for a data-parallel task to move.

    The rows are the chunk's distinct words, then the pool's other words, each part sorted by
    `sort_key` of the global ids (by id when None)."""
    start, end = int(offsets[s_lo]), int(offsets[s_hi])
    n_words = end - start
    words = np.empty(n_words * (1 + negative), dtype=np.int32)  # the chunk's words, then pool
    words[:n_words] = ids[start:end]
    state = mix_seed(np.uint64(seed), POOL_STREAM, np.uint64(0))
    n_pool = n_words * negative
    if 0 < candidates < n_pool:
        drawn = np.empty(candidates, dtype=np.int32)
        _draw_pool(neg_prob, neg_alias, candidates, np.uint64(state), drawn)
        _draw_from(drawn, np.uint64(mix_seed(np.uint64(seed), POOL_STREAM, np.uint64(1))),
                   words[n_words:])
    else:
        _draw_pool(neg_prob, neg_alias, n_pool, np.uint64(state), words[n_words:])
    # a table at most half full keeps linear probing short
    bits = max(4, int(2 * min(len(words), len(neg_prob)) - 1).bit_length())
    shift = np.uint64(64 - bits)
    table = np.full(1 << bits, _EMPTY, dtype=np.int32)
    slots = np.empty(len(words), dtype=np.int32)
    distinct, n_inputs = _distinct(words, table, shift, slots, n_words)
    rows = np.concatenate([_ordered(distinct[:n_inputs], sort_key),
                           _ordered(distinct[n_inputs:], sort_key)])
    _localize(rows, table, shift, slots, words)  # in place
    return ChunkPlan(
        rows=rows.astype(np.int64),
        local_ids=words[:n_words],
        local_offsets=np.asarray(offsets[s_lo:s_hi + 1], dtype=np.int64) - start,
        pool=words[n_words:],
        n_inputs=int(n_inputs),
    )


@numba.njit(nogil=True, fastmath=True, cache=True)
def skipgram_rows(
    ids: np.ndarray, offsets: np.ndarray, syn0: np.ndarray, syn1: np.ndarray,
    keep: np.ndarray, pool: np.ndarray,
    window: int, negative: int, alpha0: float, alpha_min: float,
    words_before: int, total_words: int, state: np.uint64,
) -> tuple[int, int, float]:
    """`skipgram_chunk` on every sentence of (ids, offsets), negatives from `pool`."""
    dim = syn0.shape[1]
    sent = np.empty(longest_sentence(offsets, 0, offsets.shape[0] - 1), dtype=np.int64)
    targets = np.empty(negative + 1, dtype=np.int64)
    gains = np.empty(negative + 1, dtype=np.float32)
    neu1e = np.empty(dim, dtype=np.float32)
    words = np.int64(0)
    pairs = np.int64(0)
    tally = new_tally()
    taken = 0
    for s in range(offsets.shape[0] - 1):
        start = offsets[s]
        end = offsets[s + 1]
        alpha = np.float32(learning_rate(alpha0, alpha_min, words_before + words, total_words))
        words += end - start
        state, n = subsample(ids, start, end, keep, sent, state)
        for i in range(n):
            state, lo, hi = window_bounds(state, i, n, window)
            if hi - lo < 2:
                continue
            center = sent[i]
            targets[0] = center
            for k in range(1, negative + 1):
                targets[k] = pool[taken]
                taken += 1
                prefetch_row(syn1, targets[k])
            for j in range(lo, hi):
                if j == i:
                    continue
                ctx = sent[j]
                if j + 1 < hi:
                    prefetch_row(syn0, sent[j + 1])
                sample = (pairs & LOSS_MASK) == 0
                tally_loss(tally, target_gains(syn0[ctx], syn1, targets, center, alpha, gains,
                                               sample), sample)
                update_outputs(syn0[ctx], syn1, targets, gains, neu1e)
                for x in range(dim):
                    syn0[ctx, x] += neu1e[x]
                pairs += 1
    return words, pairs, tallied(tally, pairs)


@numba.njit(nogil=True, fastmath=True, cache=True)
def cbow_rows(
    ids: np.ndarray, offsets: np.ndarray, syn0: np.ndarray, syn1: np.ndarray,
    keep: np.ndarray, pool: np.ndarray,
    window: int, negative: int, alpha0: float, alpha_min: float,
    words_before: int, total_words: int, state: np.uint64,
) -> tuple[int, int, float]:
    """`cbow_chunk` on every sentence of (ids, offsets), negatives from `pool`."""
    dim = syn0.shape[1]
    sent = np.empty(longest_sentence(offsets, 0, offsets.shape[0] - 1), dtype=np.int64)
    neu1 = np.empty(dim, dtype=np.float32)
    neu1e = np.empty(dim, dtype=np.float32)
    targets = np.empty(negative + 1, dtype=np.int64)
    gains = np.empty(negative + 1, dtype=np.float32)
    words = np.int64(0)
    pairs = np.int64(0)
    tally = new_tally()
    taken = 0
    for s in range(offsets.shape[0] - 1):
        start = offsets[s]
        end = offsets[s + 1]
        alpha = np.float32(learning_rate(alpha0, alpha_min, words_before + words, total_words))
        words += end - start
        state, n = subsample(ids, start, end, keep, sent, state)
        for i in range(n):
            state, lo, hi = window_bounds(state, i, n, window)
            if hi - lo < 2:
                continue
            center = sent[i]
            targets[0] = center
            for k in range(1, negative + 1):  # first, so their rows load meanwhile
                targets[k] = pool[taken]
                taken += 1
                prefetch_row(syn1, targets[k])
            neu1[:] = 0.0
            for j in range(lo, hi):
                if j != i:
                    ctx = sent[j]  # once: LLVM cannot rule out that neu1 aliases sent
                    for x in range(dim):
                        neu1[x] += syn0[ctx, x]
            inv = np.float32(1.0) / np.float32(hi - lo - 1)
            for x in range(dim):
                neu1[x] *= inv
            sample = (pairs & LOSS_MASK) == 0
            tally_loss(tally, target_gains(neu1, syn1, targets, center, alpha, gains, sample),
                       sample)
            update_outputs(neu1, syn1, targets, gains, neu1e)
            for j in range(lo, hi):
                if j != i:
                    ctx = sent[j]
                    for x in range(dim):
                        syn0[ctx, x] += neu1e[x]
            pairs += 1
    return words, pairs, tallied(tally, pairs)


def train_chunk_rows(
    plan: ChunkPlan, syn0_rows: np.ndarray, syn1_rows: np.ndarray, keep_local: np.ndarray,
    *, model: str, window: int, negative: int, alpha0: float, alpha_min: float,
    words_before: int, total_words: int, state: int | np.uint64,
) -> tuple[int, int, float]:
    """Train the plan's chunk on its local rows in place; return (corpus words, pairs, their
    summed loss).

    `syn0_rows` are float32 (plan.n_inputs, dim) and `syn1_rows` (len(plan.rows), dim),
    C-contiguous: the chunk's words are the first rows, and only they have input rows.
    `keep_local` is keep[plan.rows]."""
    n = len(plan.rows)
    for name, matrix, count in (("syn0_rows", syn0_rows, plan.n_inputs),
                                ("syn1_rows", syn1_rows, n)):
        if matrix.dtype != np.float32 or matrix.ndim != 2 or matrix.shape[0] != count \
                or not matrix.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous float32 with {count} rows.")
    if syn0_rows.shape[1] != syn1_rows.shape[1] or keep_local.shape != (n,):
        raise ValueError("syn0_rows, syn1_rows and keep_local do not match the plan.")
    if plan.words and plan.local_ids.max() >= plan.n_inputs:  # nor here: syn0's rows
        raise ValueError(f"the plan's words must be among its first {plan.n_inputs} rows.")
    if len(plan.pool) < negative * plan.words:  # the kernels do not check their reads
        raise ValueError(f"the plan's pool holds {len(plan.pool)} negatives, fewer than "
                         f"{negative} for each of its {plan.words} words.")
    if model not in ("skipgram", "cbow"):
        raise ValueError(f"model must be skipgram or cbow, not {model!r}.")
    kernel = skipgram_rows if model == "skipgram" else cbow_rows
    words, pairs, loss = kernel(
        plan.local_ids, plan.local_offsets, syn0_rows, syn1_rows,
        keep_local.astype(np.float32, copy=False), plan.pool, window, negative, alpha0,
        alpha_min, words_before, total_words, np.uint64(state),
    )
    return int(words), int(pairs), float(loss)


# reassoc alone lets LLVM vectorize the probe's sum (4-5x): an inf or NaN still makes it NaN
@numba.njit(nogil=True, fastmath={"reassoc"}, cache=True)
def subtract_rows(now: np.ndarray, lo: int, before: np.ndarray) -> bool:
    """now[lo:lo + len(before)] -= before, in place (trained rows become their deltas);
    whether every result is finite."""
    probe = np.float32(0.0)  # inf or NaN anywhere makes it NaN: one check at the end
    for r in range(before.shape[0]):
        for x in range(before.shape[1]):
            d = now[lo + r, x] - before[r, x]
            now[lo + r, x] = d
            probe += d * np.float32(0.0)
    return probe == 0

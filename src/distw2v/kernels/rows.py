# numba types these bodies itself; mypy cannot follow numpy-scalar arithmetic in them.
# mypy: disable-error-code="arg-type,return-value,operator,call-overload,assignment,misc,call-arg"
"""Skip-gram and CBOW on a chunk's own rows, for data-parallel training with sparse rows.

A data-parallel task pulls from the parameter servers only the rows its chunk touches, trains
them locally and pushes back the deltas. The local kernels draw negatives as they go, so the
rows they touch are known only afterwards; here `plan_chunk` draws the chunk's negatives up
front into a pool, which makes the touched rows (chunk words and pool) known before training.
It maps them into one local id space: `rows` are the global ids, sorted, and every index the
kernels see is a position in `rows`. The kernels are `local.py`'s algorithm with negatives
taken in order from the pool (one set of `negative` per trained centre) instead of drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from .local import (
    learning_rate,
    longest_sentence,
    subsample,
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

    rows: np.ndarray  # int64, sorted unique global ids of the chunk's words and its pool
    local_ids: np.ndarray  # int32, the chunk's words
    local_offsets: np.ndarray  # int64, sentence s is local_ids[local_offsets[s]:[s + 1]]
    pool: np.ndarray  # int32, the negatives in the order the kernels take them
    inputs: np.ndarray  # int32, sorted positions of the chunk's words: the only syn0 rows used

    @property
    def words(self) -> int:
        return int(self.local_offsets[-1])


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
    words: np.ndarray, table: np.ndarray, shift: np.uint64, slots: np.ndarray,
) -> np.ndarray:
    """Hash every word, recording its slot; return the distinct words in first-seen order."""
    found = np.empty(words.shape[0], dtype=np.int32)
    n = 0
    for i in range(words.shape[0]):
        w = words[i]
        h = _slot(table, w, shift)
        fresh = table[h] == _EMPTY
        table[h] = w  # all unconditional: whether w is new is a branch the CPU mispredicts
        found[n] = w
        n += fresh
        slots[i] = h
    return found[:n]


@numba.njit(cache=True)
def _localize(
    rows: np.ndarray, table: np.ndarray, shift: np.uint64, slots: np.ndarray, n_words: int,
    local: np.ndarray, inputs: np.ndarray,
) -> int:
    """local[i] = position in `rows` of word i; inputs = sorted positions of the first
    n_words (the chunk's words); returns how many inputs."""
    at = np.empty(rows.shape[0], dtype=np.int32)
    for r in range(rows.shape[0]):
        at[r] = _slot(table, rows[r], shift)
    for r in range(rows.shape[0]):  # keys no longer needed: the table now maps slot to rank
        table[at[r]] = r
    used = np.zeros(rows.shape[0], dtype=np.bool_)
    for i in range(slots.shape[0]):
        local[i] = table[slots[i]]
    for i in range(n_words):
        used[local[i]] = True
    n = 0
    for r in range(rows.shape[0]):
        if used[r]:
            inputs[n] = r
            n += 1
    return n


def plan_chunk(
    ids: np.ndarray, offsets: np.ndarray, s_lo: int, s_hi: int,
    neg_prob: np.ndarray, neg_alias: np.ndarray, negative: int, seed: int | np.uint64,
    candidates: int = 0,
) -> ChunkPlan:
    """Draw the pool of sentences [s_lo, s_hi) (words × negative, as many as the kernels can
    take) from the alias table, seeded by `seed`, and map chunk and pool to local ids. The
    ids are vocabulary ids, below len(neg_prob).

    With `candidates` (fewer than the pool), the pool is drawn uniformly from that many
    draws of the table instead: the same distribution in expectation (the candidates are a
    sample of it), but far fewer distinct output rows for a data-parallel task to move."""
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
    distinct = np.sort(_distinct(words, table, shift, slots))  # numpy's sort: SIMD, fast
    inputs = np.empty(len(distinct), dtype=np.int32)
    n_inputs = _localize(distinct, table, shift, slots, n_words, words, inputs)  # in place
    return ChunkPlan(
        rows=distinct.astype(np.int64),
        local_ids=words[:n_words],
        local_offsets=np.asarray(offsets[s_lo:s_hi + 1], dtype=np.int64) - start,
        pool=words[n_words:],
        inputs=inputs[:n_inputs],
    )


@numba.njit(nogil=True, fastmath=True, cache=True)
def skipgram_rows(
    ids: np.ndarray, offsets: np.ndarray, syn0: np.ndarray, syn1: np.ndarray,
    keep: np.ndarray, pool: np.ndarray,
    window: int, negative: int, alpha0: float, alpha_min: float,
    words_before: int, total_words: int, state: np.uint64,
) -> tuple[int, int]:
    """`skipgram_chunk` on every sentence of (ids, offsets), negatives from `pool`."""
    dim = syn0.shape[1]
    sent = np.empty(longest_sentence(offsets, 0, offsets.shape[0] - 1), dtype=np.int64)
    targets = np.empty(negative + 1, dtype=np.int64)
    gains = np.empty(negative + 1, dtype=np.float32)
    neu1e = np.empty(dim, dtype=np.float32)
    words = np.int64(0)
    pairs = np.int64(0)
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
                target_gains(syn0[ctx], syn1, targets, center, alpha, gains)
                update_outputs(syn0[ctx], syn1, targets, gains, neu1e)
                for x in range(dim):
                    syn0[ctx, x] += neu1e[x]
                pairs += 1
    return words, pairs


@numba.njit(nogil=True, fastmath=True, cache=True)
def cbow_rows(
    ids: np.ndarray, offsets: np.ndarray, syn0: np.ndarray, syn1: np.ndarray,
    keep: np.ndarray, pool: np.ndarray,
    window: int, negative: int, alpha0: float, alpha_min: float,
    words_before: int, total_words: int, state: np.uint64,
) -> tuple[int, int]:
    """`cbow_chunk` on every sentence of (ids, offsets), negatives from `pool`."""
    dim = syn0.shape[1]
    sent = np.empty(longest_sentence(offsets, 0, offsets.shape[0] - 1), dtype=np.int64)
    neu1 = np.empty(dim, dtype=np.float32)
    neu1e = np.empty(dim, dtype=np.float32)
    targets = np.empty(negative + 1, dtype=np.int64)
    gains = np.empty(negative + 1, dtype=np.float32)
    words = np.int64(0)
    pairs = np.int64(0)
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
            target_gains(neu1, syn1, targets, center, alpha, gains)
            update_outputs(neu1, syn1, targets, gains, neu1e)
            for j in range(lo, hi):
                if j != i:
                    ctx = sent[j]
                    for x in range(dim):
                        syn0[ctx, x] += neu1e[x]
            pairs += 1
    return words, pairs


def train_chunk_rows(
    plan: ChunkPlan, syn0_rows: np.ndarray, syn1_rows: np.ndarray, keep_local: np.ndarray,
    *, model: str, window: int, negative: int, alpha0: float, alpha_min: float,
    words_before: int, total_words: int, state: int | np.uint64,
) -> tuple[int, int]:
    """Train the plan's chunk on its local rows in place; return (corpus words, pairs).

    `syn0_rows` and `syn1_rows` are float32 (len(plan.rows), dim), C-contiguous; only the
    `plan.inputs` rows of `syn0_rows` are read or written. `keep_local` is keep[plan.rows]."""
    n = len(plan.rows)
    for name, matrix in (("syn0_rows", syn0_rows), ("syn1_rows", syn1_rows)):
        if matrix.dtype != np.float32 or matrix.ndim != 2 or matrix.shape[0] != n \
                or not matrix.flags.c_contiguous:
            raise ValueError(f"{name} must be C-contiguous float32 with {n} rows.")
    if syn0_rows.shape[1] != syn1_rows.shape[1] or keep_local.shape != (n,):
        raise ValueError("syn0_rows, syn1_rows and keep_local do not match the plan.")
    if len(plan.pool) < negative * plan.words:  # the kernels do not check their reads
        raise ValueError(f"the plan's pool holds {len(plan.pool)} negatives, fewer than "
                         f"{negative} for each of its {plan.words} words.")
    if model not in ("skipgram", "cbow"):
        raise ValueError(f"model must be skipgram or cbow, not {model!r}.")
    kernel = skipgram_rows if model == "skipgram" else cbow_rows
    words, pairs = kernel(
        plan.local_ids, plan.local_offsets, syn0_rows, syn1_rows,
        keep_local.astype(np.float32, copy=False), plan.pool, window, negative, alpha0,
        alpha_min, words_before, total_words, np.uint64(state),
    )
    return int(words), int(pairs)


@numba.njit(inline="always", cache=True)
def _row_delta(out: np.ndarray, o: int, now: np.ndarray, n: int, before: np.ndarray,
               b: int) -> tuple[bool, np.float32]:
    """out[o] = now[n] - before[b]; whether it is non-zero, and 0 unless some element is
    inf or NaN (then NaN)."""
    changed = False
    probe = np.float32(0.0)
    for x in range(out.shape[1]):
        d = now[n, x] - before[b, x]
        out[o, x] = d
        probe += d * np.float32(0.0)
        if d != 0:
            changed = True
    return changed, probe


@numba.njit(nogil=True, cache=True)
def chunk_deltas(syn0_rows: np.ndarray, syn1_rows: np.ndarray, inputs: np.ndarray,
                 pulled0: np.ndarray, pulled1: np.ndarray,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """What a trained chunk changed, in one pass: the deltas of its input rows (against
    `pulled0`, one row per `inputs` position), `syn1_rows` turned into its own deltas in
    place (against `pulled1`), which rows of each changed at all, and whether every delta is
    finite."""
    delta0 = np.empty((len(inputs), syn1_rows.shape[1]), dtype=np.float32)
    changed0 = np.zeros(len(inputs), dtype=np.bool_)
    changed1 = np.zeros(syn1_rows.shape[0], dtype=np.bool_)
    total = np.float32(0.0)  # inf or NaN anywhere makes it NaN: one check at the end
    for i in range(len(inputs)):
        changed0[i], probe = _row_delta(delta0, i, syn0_rows, inputs[i], pulled0, i)
        total += probe
    for r in range(syn1_rows.shape[0]):
        changed1[r], probe = _row_delta(syn1_rows, r, syn1_rows, r, pulled1, r)
        total += probe
    return delta0, changed0, changed1, total == 0

# numba types these bodies itself; mypy cannot follow numpy-scalar arithmetic in them.
# mypy: disable-error-code="arg-type,return-value,operator,call-overload,assignment,misc"
"""Kernels for the column-partitioned parameter server (Ordentlich et al., CIKM 2016).

A batch is a set of centre words, each with its context words: `centers[i]` owns
`contexts[ctx_offsets[i]:ctx_offsets[i + 1]]`, and every (context, centre) pair is a positive
skip-gram example. Negatives are drawn per centre and shared by its contexts (as the local
skip-gram kernel does), from one LCG stream seeded by the batch seed, so every shard draws the
same negatives and no negative id crosses the network.

`partial_dots` runs on a shard over its columns only; the client sums the partials of all
shards and sends the sums back with the learning rate; `apply_updates` turns them into
coefficients g = (label - sigmoid(f)) * alpha, corrected for staleness, on each shard.
CBOW (`partial_dots_cbow`, `apply_updates_cbow`) works the same way on one row per centre:
the mean of a centre's context rows splits by columns just as a single row does.
`make_windows` runs on executors: subsampling and the
dynamic window over encoded sentences, producing the batch arrays.
"""

from __future__ import annotations

import numba
import numpy as np

from .local import (
    longest_sentence,
    new_tally,
    set_gains,
    subsample,
    tallied,
    tally_loss,
    target_dots,
    update_outputs,
    window_bounds,
)
from .sampling import draw_negative


@numba.njit(nogil=True, cache=True)
def draw_batch_negatives(
    n_centers: int, negative: int, neg_prob: np.ndarray, neg_alias: np.ndarray,
    state: np.uint64,
) -> np.ndarray:
    """The (n_centers, negative) negatives of a batch, a pure function of its seed."""
    out = np.empty((n_centers, negative), dtype=np.int64)
    for i in range(n_centers):
        for k in range(negative):
            state, out[i, k] = draw_negative(state, neg_prob, neg_alias)
    return out


@numba.njit(nogil=True, fastmath=True, cache=True)
def partial_dots(
    syn0: np.ndarray, syn1: np.ndarray, centers: np.ndarray, ctx_offsets: np.ndarray,
    contexts: np.ndarray, negatives: np.ndarray,
) -> np.ndarray:
    """f[j, 0] = syn0[ctx_j] . syn1[centre] and f[j, k] = syn0[ctx_j] . syn1[neg_k], over
    this shard's columns."""
    negative = negatives.shape[1]
    out = np.empty((contexts.shape[0], negative + 1), dtype=np.float32)
    targets = np.empty(negative + 1, dtype=np.int64)
    for i in range(centers.shape[0]):
        targets[0] = centers[i]
        targets[1:] = negatives[i]
        for j in range(ctx_offsets[i], ctx_offsets[i + 1]):
            target_dots(syn0[contexts[j]], syn1, targets, out[j])
    return out


def extrapolation(model: str, shards: int) -> float:
    """How much of the batch's change in a dot product a shard infers from its own change.

    Columns are exchangeable, so a shard's change in its partial dot is about 1/shards of the
    whole, and `shards` is the unbiased factor; CBOW trains well with it. Skip-gram does not:
    each shard's coefficients follow its own noisy estimate, and with steps applied at once
    that noise fed back until the rows of frequent words grew 50-fold on english at 2 and 4
    shards. Half the factor (1 for one or two shards) trained as the local trainer does on
    english and on planted relations at 2, 3, 4 and 8 shards, where 1 at 4 shards left repeats
    uncorrected and 2.5 diverged (benchmarks/shard_protocol.py)."""
    return float(shards) if model == "cbow" else max(1.0, shards / 2.0)


@numba.njit(nogil=True, fastmath=True, cache=True)
def apply_updates(
    syn0: np.ndarray, syn1: np.ndarray, centers: np.ndarray, ctx_offsets: np.ndarray,
    contexts: np.ndarray, negatives: np.ndarray, dots: np.ndarray, partial: np.ndarray,
    alpha: float, factor: float,
) -> float:
    """Round 2 on this shard's columns: contexts move along the targets and vice versa.
    Returns the batch's summed loss, from this shard's estimate of the dots (exact with one
    shard, as the local kernel's).

    `dots` are the summed dot products of round 1 and `partial` this shard's own share of
    them. They are stale by the time the updates run: a row that occurs n times in a batch
    would take n steps computed from the same old weights, where sequential SGD takes n
    self-correcting ones, and batches with many repeats diverge. So each coefficient is
    computed from a fresh estimate: the round-1 total plus `factor` (from `extrapolation`)
    times the change this shard sees in its own partial dot product. Each output-row step is
    applied at once, as the local kernel does, so later pairs see it. With one shard this is
    exact sequential SGD.
    """
    negative = negatives.shape[1]
    dim = syn0.shape[1]
    rate = np.float32(alpha)
    weight = np.float32(factor)
    targets = np.empty(negative + 1, dtype=np.int64)
    gains = np.empty(negative + 1, dtype=np.float32)
    neu1e = np.empty(dim, dtype=np.float32)
    tally = new_tally()
    for i in range(centers.shape[0]):
        center = centers[i]
        targets[0] = center
        targets[1:] = negatives[i]
        for j in range(ctx_offsets[i], ctx_offsets[i + 1]):
            ctx = contexts[j]
            target_dots(syn0[ctx], syn1, targets, gains)  # the dots now
            for k in range(negative + 1):
                gains[k] = dots[j, k] + weight * (gains[k] - partial[j, k])
            tally_loss(tally, set_gains(gains, targets, center, rate, True), True)
            update_outputs(syn0[ctx], syn1, targets, gains, neu1e)
            for x in range(dim):
                syn0[ctx, x] += neu1e[x]
    return tallied(tally, contexts.shape[0])


@numba.njit(inline="always", fastmath=True, cache=True)
def context_mean(syn0: np.ndarray, contexts: np.ndarray, lo: int, hi: int,
                 out: np.ndarray) -> None:
    """CBOW's input: the mean of rows contexts[lo:hi] of syn0 (this shard's columns)."""
    out[:] = 0.0
    for j in range(lo, hi):
        ctx = contexts[j]
        for x in range(out.shape[0]):
            out[x] += syn0[ctx, x]
    inv = np.float32(1.0) / np.float32(hi - lo)
    for x in range(out.shape[0]):
        out[x] *= inv


@numba.njit(nogil=True, fastmath=True, cache=True)
def partial_dots_cbow(
    syn0: np.ndarray, syn1: np.ndarray, centers: np.ndarray, ctx_offsets: np.ndarray,
    contexts: np.ndarray, negatives: np.ndarray,
) -> np.ndarray:
    """CBOW's round 1: f[i, k] = mean(syn0[contexts of i]) . syn1[target k of centre i],
    over this shard's columns (one row per centre, not per pair)."""
    negative = negatives.shape[1]
    out = np.empty((centers.shape[0], negative + 1), dtype=np.float32)
    targets = np.empty(negative + 1, dtype=np.int64)
    neu1 = np.empty(syn0.shape[1], dtype=np.float32)
    for i in range(centers.shape[0]):
        targets[0] = centers[i]
        targets[1:] = negatives[i]
        context_mean(syn0, contexts, ctx_offsets[i], ctx_offsets[i + 1], neu1)
        target_dots(neu1, syn1, targets, out[i])
    return out


@numba.njit(nogil=True, fastmath=True, cache=True)
def apply_updates_cbow(
    syn0: np.ndarray, syn1: np.ndarray, centers: np.ndarray, ctx_offsets: np.ndarray,
    contexts: np.ndarray, negatives: np.ndarray, dots: np.ndarray, partial: np.ndarray,
    alpha: float, factor: float,
) -> float:
    """CBOW's round 2 on this shard's columns, as the local CBOW kernel does it, with the
    staleness correction of `apply_updates` (exact with one shard); the summed loss."""
    negative = negatives.shape[1]
    dim = syn0.shape[1]
    rate = np.float32(alpha)
    weight = np.float32(factor)
    targets = np.empty(negative + 1, dtype=np.int64)
    gains = np.empty(negative + 1, dtype=np.float32)
    neu1 = np.empty(dim, dtype=np.float32)
    neu1e = np.empty(dim, dtype=np.float32)
    tally = new_tally()
    for i in range(centers.shape[0]):
        center = centers[i]
        targets[0] = center
        targets[1:] = negatives[i]
        lo = ctx_offsets[i]
        hi = ctx_offsets[i + 1]
        context_mean(syn0, contexts, lo, hi, neu1)
        target_dots(neu1, syn1, targets, gains)  # the dots now
        for k in range(negative + 1):
            gains[k] = dots[i, k] + weight * (gains[k] - partial[i, k])
        tally_loss(tally, set_gains(gains, targets, center, rate, True), True)
        update_outputs(neu1, syn1, targets, gains, neu1e)
        for j in range(lo, hi):
            ctx = contexts[j]
            for x in range(dim):
                syn0[ctx, x] += neu1e[x]
    return tallied(tally, centers.shape[0])


@numba.njit(nogil=True, cache=True)
def make_windows(
    ids: np.ndarray, offsets: np.ndarray, s_lo: int, s_hi: int, keep: np.ndarray,
    window: int, state: np.uint64,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Centres, context offsets, contexts and, per centre, the corpus words consumed so far.

    Subsampling and the dynamic window are those of the local kernels. `words_at[i]` is the
    number of corpus words (before subsampling) up to and including centre i's sentence, so
    a client can advance the learning rate as it goes.
    """
    total = offsets[s_hi] - offsets[s_lo]
    sent = np.empty(longest_sentence(offsets, s_lo, s_hi), dtype=np.int64)
    centers = np.empty(total, dtype=np.int32)
    words_at = np.empty(total, dtype=np.int64)
    ctx_offsets = np.empty(total + 1, dtype=np.int64)
    contexts = np.empty(total * 2 * window, dtype=np.int32)
    n_centers = 0
    n_ctx = 0
    ctx_offsets[0] = 0
    words = np.int64(0)
    for s in range(s_lo, s_hi):
        start = offsets[s]
        end = offsets[s + 1]
        words += end - start
        state, n = subsample(ids, start, end, keep, sent, state)
        for i in range(n):
            state, lo, hi = window_bounds(state, i, n, window)
            if hi - lo < 2:
                continue
            for j in range(lo, hi):
                if j != i:
                    contexts[n_ctx] = sent[j]
                    n_ctx += 1
            centers[n_centers] = sent[i]
            words_at[n_centers] = words
            n_centers += 1
            ctx_offsets[n_centers] = n_ctx
    return (centers[:n_centers].copy(), ctx_offsets[: n_centers + 1].copy(),
            contexts[:n_ctx].copy(), words_at[:n_centers].copy())

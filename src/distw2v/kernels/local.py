# numba types these bodies itself; mypy cannot follow numpy-scalar arithmetic in them.
# mypy: disable-error-code="arg-type,return-value,operator,call-overload,assignment,misc,call-arg"
"""Skip-gram and CBOW with negative sampling, as numba kernels over a chunk of sentences.

Every kernel takes plain arrays and scalars, runs without the GIL, and updates `syn0` (input
vectors) and `syn1` (output vectors) in place, hogwild style. A chunk is the sentences
`[s_lo, s_hi)` of an encoded shard: `ids[offsets[s]:offsets[s + 1]]` is sentence `s`.

The learning rate decays linearly with the number of corpus words processed over the whole
run: a chunk knows how many words precede it (`words_before`) out of `total_words`, so the
schedule does not depend on which thread runs which chunk.

Skip-gram draws the negatives once per centre word and shares them among its context words
(as Ji et al. 2016 do), so the 1 + negative output rows stay in cache across the window. Every
output-row step is applied right after its (context, centre) pair, as in sequential SGD: the
window-summed step of HogBatch, computed for all contexts from the same stale rows, overshoots
when the contexts are alike (templated text, sessions) and solved 18% of planted analogies
where gensim solved 100%. Both kernels take the dots of an input with all 1 + negative targets
before any update: they are independent, so their loads and arithmetic overlap instead of
waiting on each other (a negative drawn twice therefore sees its row before either update).
`reference.py` holds the same algorithm in slow NumPy for the tests.
"""

from __future__ import annotations

import numba
import numpy as np

from .. import schedule
from .memory import prefetch_row
from .sampling import draw_negative, lcg_below, lcg_next, lcg_uniform

MAX_EXP = np.float32(8.0)  # beyond this the sigmoid is 0 or 1 to float32 precision
# The loss is tallied on every 4th pair a kernel trains (an unbiased sample: which pairs
# does not depend on their values): on every pair it cost 4% of skip-gram's time.
LOSS_MASK = 3


@numba.njit(inline="always", fastmath=True, cache=True)
def sigmoid(f: float) -> float:
    f = min(max(f, -MAX_EXP), MAX_EXP)
    return np.float32(1.0) / (np.float32(1.0) + np.exp(-f))


# schedule.py's function, compiled: the kernels, the Spark worker and the local trainer's
# progress all call this one (callable from Python too)
learning_rate = numba.njit(inline="always", cache=True)(schedule.learning_rate)


@numba.njit(inline="always", cache=True)
def subsample(
    ids: np.ndarray, start: int, end: int, keep: np.ndarray, out: np.ndarray,
    state: int,
) -> tuple[int, int]:
    """Copy the words of ids[start:end] that survive subsampling into out; return (state, n)."""
    n = 0
    for p in range(start, end):
        w = ids[p]
        state = lcg_next(state)
        if lcg_uniform(state) < keep[w]:
            out[n] = w
            n += 1
    return state, n


@numba.njit(inline="always", cache=True)
def window_bounds(state: np.uint64, i: int, n: int, window: int) -> tuple[np.uint64, int, int]:
    """word2vec's dynamic window around position i of n: a reach drawn from 1..window."""
    state = lcg_next(state)
    reach = window - lcg_below(state, window)
    return state, max(0, i - reach), min(n, i + reach + 1)


@numba.njit(inline="always", fastmath=True, cache=True)
def set_gains(gains: np.ndarray, targets: np.ndarray, center: int, alpha: float,
              with_loss: bool) -> float:
    """Turn the dots of (input, targets[k]) in `gains` into gradient scales: label minus
    prediction, times alpha. A negative that is the true word gets 0: it teaches nothing.
    With `with_loss`, returns the likelihood of the labels, sigmoid(f_0) * prod(1 -
    sigmoid(f_k)) over the negatives that teach: the pair's SGNS loss is minus its log (see
    `tally_loss`); else 1."""
    likelihood = np.float32(1.0)
    for k in range(gains.shape[0]):
        label = np.float32(1.0) if k == 0 else np.float32(0.0)
        p = sigmoid(gains[k])
        gains[k] = (label - p) * alpha
        if with_loss:  # the label's probability: p for the centre, 1 - p for a negative
            likelihood *= np.float32(1.0) - label - p + np.float32(2.0) * label * p
        if k > 0 and targets[k] == center:
            gains[k] = 0.0
            if with_loss:
                likelihood /= np.float32(1.0) - p  # it teaches nothing, and costs nothing
    return max(likelihood, np.float32(1e-30))  # tens of negatives at the sigmoid's clip


@numba.njit(inline="always", fastmath=True, cache=True)
def tally_loss(tally: np.ndarray, likelihood: float, with_loss: bool) -> None:
    """Add a sampled pair's loss, -log(likelihood), to `tally` ([-log of what is folded,
    product since, pairs sampled]) with a log only every few dozen pairs."""
    if not with_loss:
        return
    tally[2] += 1.0
    if likelihood < 1e-100:
        tally[0] -= np.log(likelihood)
        return
    tally[1] *= likelihood
    if tally[1] < 1e-200:
        tally[0] -= np.log(tally[1])
        tally[1] = 1.0


@numba.njit(inline="always", cache=True)
def new_tally() -> np.ndarray:
    tally = np.empty(3, dtype=np.float64)
    tally[0] = 0.0
    tally[1] = 1.0
    tally[2] = 0.0
    return tally


@numba.njit(inline="always", cache=True)
def tallied(tally: np.ndarray, pairs: int) -> float:
    """The summed loss of `pairs` pairs, estimated from the ones `tally` sampled."""
    if tally[2] == 0:
        return 0.0
    return (tally[0] - np.log(tally[1])) * (pairs / tally[2])


@numba.njit(inline="always", fastmath=True, cache=True)
def target_dots(vec: np.ndarray, syn1: np.ndarray, targets: np.ndarray, out: np.ndarray) -> None:
    """out[k] = vec . syn1[targets[k]]. All the dots come before any update: they are
    independent, so their loads and arithmetic overlap instead of waiting on each other."""
    for k in range(targets.shape[0]):
        t = targets[k]
        f = np.float32(0.0)
        for x in range(vec.shape[0]):
            f += vec[x] * syn1[t, x]
        out[k] = f


@numba.njit(inline="always", fastmath=True, cache=True)
def target_gains(
    vec: np.ndarray, syn1: np.ndarray, targets: np.ndarray, center: int, alpha: float,
    gains: np.ndarray, with_loss: bool,
) -> float:
    """Gradient scales of input `vec` against every target; the labels' likelihood."""
    target_dots(vec, syn1, targets, gains)
    return set_gains(gains, targets, center, alpha, with_loss)


@numba.njit(inline="always", fastmath=True, cache=True)
def update_outputs(
    neu1: np.ndarray, syn1: np.ndarray, targets: np.ndarray, gains: np.ndarray,
    neu1e: np.ndarray,
) -> None:
    """The output step for one input `neu1` (a context row, or CBOW's context mean): each
    target row moves along it, and `neu1e` collects the gradient the input rows then take."""
    neu1e[:] = 0.0
    for k in range(targets.shape[0]):
        t = targets[k]
        g = gains[k]
        for x in range(neu1.shape[0]):
            neu1e[x] += g * syn1[t, x]
            syn1[t, x] += g * neu1[x]


@numba.njit(cache=True)
def longest_sentence(offsets: np.ndarray, s_lo: int, s_hi: int) -> int:
    longest = 0
    for s in range(s_lo, s_hi):
        longest = max(longest, offsets[s + 1] - offsets[s])
    return longest


@numba.njit(nogil=True, fastmath=True, cache=True)
def skipgram_chunk(
    ids: np.ndarray, offsets: np.ndarray, s_lo: int, s_hi: int,
    syn0: np.ndarray, syn1: np.ndarray, keep: np.ndarray,
    neg_prob: np.ndarray, neg_alias: np.ndarray,
    window: int, negative: int, alpha0: float, alpha_min: float,
    words_before: int, total_words: int, state: np.uint64,
) -> tuple[int, int, float]:
    """Train skip-gram on sentences [s_lo, s_hi); return (corpus words, pairs trained, their
    summed loss)."""
    dim = syn0.shape[1]
    sent = np.empty(longest_sentence(offsets, s_lo, s_hi), dtype=np.int64)
    targets = np.empty(negative + 1, dtype=np.int64)
    gains = np.empty(negative + 1, dtype=np.float32)
    neu1e = np.empty(dim, dtype=np.float32)
    words = np.int64(0)
    pairs = np.int64(0)
    tally = new_tally()
    for s in range(s_lo, s_hi):
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
                state, targets[k] = draw_negative(state, neg_prob, neg_alias)
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
def cbow_chunk(
    ids: np.ndarray, offsets: np.ndarray, s_lo: int, s_hi: int,
    syn0: np.ndarray, syn1: np.ndarray, keep: np.ndarray,
    neg_prob: np.ndarray, neg_alias: np.ndarray,
    window: int, negative: int, alpha0: float, alpha_min: float,
    words_before: int, total_words: int, state: np.uint64,
) -> tuple[int, int, float]:
    """Train CBOW (mean of context vectors) on sentences [s_lo, s_hi); same returns (a
    centre is a pair)."""
    dim = syn0.shape[1]
    sent = np.empty(longest_sentence(offsets, s_lo, s_hi), dtype=np.int64)
    neu1 = np.empty(dim, dtype=np.float32)
    neu1e = np.empty(dim, dtype=np.float32)
    targets = np.empty(negative + 1, dtype=np.int64)
    gains = np.empty(negative + 1, dtype=np.float32)
    words = np.int64(0)
    pairs = np.int64(0)
    tally = new_tally()
    for s in range(s_lo, s_hi):
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
            for k in range(1, negative + 1):  # drawn first so their rows load meanwhile
                state, targets[k] = draw_negative(state, neg_prob, neg_alias)
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

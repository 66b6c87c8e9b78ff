"""Slow, plain NumPy twins of the numba kernels, for tests on tiny inputs.

They replay the same random stream (the LCG in Python integers) and the same algorithm, with
vector arithmetic in NumPy, so a test can check a kernel against code simple enough to read.
"""

from __future__ import annotations

import numpy as np

from .columns import extrapolation
from .local import LOSS_MASK

MUL = 6364136223846793005
ADD = 1442695040888963407
MASK64 = (1 << 64) - 1
MAX_EXP = 8.0


class Lcg:
    def __init__(self, state: int) -> None:
        self.state = state & MASK64

    def next(self) -> int:
        self.state = (self.state * MUL + ADD) & MASK64
        return self.state

    def uniform(self) -> float:
        return (self.next() >> 40) / 16777216.0

    def below(self, n: int) -> int:
        return ((self.next() >> 32) * n) >> 32

    def negative(self, prob: np.ndarray, alias: np.ndarray) -> int:
        i = self.below(len(prob))
        return int(i if self.uniform() < prob[i] else alias[i])


def mix_seed(seed: int, a: int, b: int) -> int:
    z = (seed ^ ((a * 0x9E3779B97F4A7C15) & MASK64) ^ ((b * 0xC2B2AE3D27D4EB4F) & MASK64))
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def _sigmoid(f: np.float32) -> np.float32:
    f = np.float32(min(max(float(f), -MAX_EXP), MAX_EXP))
    return np.float32(1.0 / (1.0 + np.exp(-float(f))))


def _loss(dots: list[np.float32], targets: list[int], center: int) -> float:
    """A pair's SGNS loss: -log sigmoid(f_0) - sum of log sigmoid(-f_k) over the negatives
    that teach (not the centre itself), with the kernels' clipped sigmoid."""
    loss = -np.log(float(_sigmoid(dots[0])))
    for f, t in zip(dots[1:], targets[1:]):
        if t != center:
            loss -= np.log(1.0 - float(_sigmoid(f)))
    return float(loss)


def _estimated(loss: float, sampled: int, pairs: int) -> float:
    """The kernels' estimate of all `pairs` pairs' loss from every LOSS_MASK + 1-th one's."""
    return loss * pairs / sampled if sampled else 0.0


def _alpha(alpha0: float, alpha_min: float, done: int, total: int) -> np.float32:
    return np.float32(max(alpha0 - (alpha0 - alpha_min) * (done / total), alpha_min))


def _kept(rng: Lcg, ids: np.ndarray, keep: np.ndarray) -> list[int]:
    return [int(w) for w in ids if rng.uniform() < keep[w]]


def _window(rng: Lcg, i: int, n: int, window: int) -> tuple[int, int]:
    reach = window - rng.below(window)
    return max(0, i - reach), min(n, i + reach + 1)


def skipgram_reference(
    ids: np.ndarray, offsets: np.ndarray, syn0: np.ndarray, syn1: np.ndarray,
    keep: np.ndarray, neg_prob: np.ndarray, neg_alias: np.ndarray, *,
    window: int, negative: int, alpha0: float, alpha_min: float,
    words_before: int, total_words: int, state: int,
) -> tuple[int, float]:
    """Skip-gram over every sentence of (ids, offsets); returns the pairs trained and their
    summed loss."""
    rng = Lcg(state)
    words = pairs = sampled = 0
    loss = 0.0
    for s in range(len(offsets) - 1):
        alpha = _alpha(alpha0, alpha_min, words_before + words, total_words)
        words += int(offsets[s + 1] - offsets[s])
        sent = _kept(rng, ids[offsets[s]:offsets[s + 1]], keep)
        for i, center in enumerate(sent):
            lo, hi = _window(rng, i, len(sent), window)
            if hi - lo < 2:
                continue
            targets = [center] + [rng.negative(neg_prob, neg_alias) for _ in range(negative)]
            for j in range(lo, hi):
                if j == i:
                    continue
                ctx = sent[j]
                neu1e = np.zeros(syn0.shape[1], dtype=np.float32)
                dots = [syn0[ctx] @ syn1[t] for t in targets]  # all before any update
                if pairs & LOSS_MASK == 0:
                    loss += _loss(dots, targets, center)
                    sampled += 1
                for k, t in enumerate(targets):
                    if k > 0 and t == center:
                        continue
                    g = (np.float32(k == 0) - _sigmoid(dots[k])) * alpha
                    neu1e += g * syn1[t]
                    syn1[t] += g * syn0[ctx]  # at once: the next context sees this step
                syn0[ctx] += neu1e
                pairs += 1
    return pairs, _estimated(loss, sampled, pairs)


def cbow_reference(
    ids: np.ndarray, offsets: np.ndarray, syn0: np.ndarray, syn1: np.ndarray,
    keep: np.ndarray, neg_prob: np.ndarray, neg_alias: np.ndarray, *,
    window: int, negative: int, alpha0: float, alpha_min: float,
    words_before: int, total_words: int, state: int,
) -> tuple[int, float]:
    """CBOW (mean of the context) over every sentence; returns the centre words trained and
    their summed loss."""
    rng = Lcg(state)
    words = trained = sampled = 0
    loss = 0.0
    for s in range(len(offsets) - 1):
        alpha = _alpha(alpha0, alpha_min, words_before + words, total_words)
        words += int(offsets[s + 1] - offsets[s])
        sent = _kept(rng, ids[offsets[s]:offsets[s + 1]], keep)
        for i, center in enumerate(sent):
            lo, hi = _window(rng, i, len(sent), window)
            if hi - lo < 2:
                continue
            context = [sent[j] for j in range(lo, hi) if j != i]
            neu1 = syn0[context].sum(axis=0, dtype=np.float32) / np.float32(len(context))
            neu1e = np.zeros(syn0.shape[1], dtype=np.float32)
            targets = [center] + [rng.negative(neg_prob, neg_alias) for _ in range(negative)]
            dots = [neu1 @ syn1[t] for t in targets]  # all before any update, as the kernel
            if trained & LOSS_MASK == 0:
                loss += _loss(dots, targets, center)
                sampled += 1
            for k, t in enumerate(targets):
                if k > 0 and t == center:
                    continue
                g = (np.float32(k == 0) - _sigmoid(dots[k])) * alpha
                neu1e += g * syn1[t]
                syn1[t] += g * neu1
            for ctx in context:
                syn0[ctx] += neu1e
            trained += 1
    return trained, _estimated(loss, sampled, trained)


def columns_reference(
    syn0: np.ndarray, syn1: np.ndarray, centers: np.ndarray, ctx_offsets: np.ndarray,
    contexts: np.ndarray, negatives: np.ndarray, alpha: float, cuts: list[int],
) -> None:
    """One parameter-server batch on whole matrices split at column `cuts` (e.g. [0, 6, 12]):
    round 1 sums every shard's partial dot products; in round 2 each shard, on its own
    columns, corrects the stale sums by `columns.extrapolation` times the change of its own
    partials."""
    shards = len(cuts) - 1
    weight = extrapolation("skipgram", shards)
    targets = [[int(c)] + [int(n) for n in negatives[i]] for i, c in enumerate(centers)]
    cols = [slice(lo, hi) for lo, hi in zip(cuts[:-1], cuts[1:])]
    partial = np.zeros((shards, len(contexts), negatives.shape[1] + 1), dtype=np.float32)
    for s, c in enumerate(cols):
        for i, row in enumerate(targets):
            for j in range(ctx_offsets[i], ctx_offsets[i + 1]):
                for k, t in enumerate(row):
                    partial[s, j, k] = syn0[contexts[j], c] @ syn1[t, c]
    dots = partial.sum(axis=0)
    for s, c in enumerate(cols):
        for i, row in enumerate(targets):
            for j in range(ctx_offsets[i], ctx_offsets[i + 1]):
                ctx = contexts[j]
                neu1e = np.zeros(c.stop - c.start, dtype=np.float32)
                now = [syn0[ctx, c] @ syn1[t, c] for t in row]  # all before any update
                for k, t in enumerate(row):
                    if k > 0 and t == row[0]:
                        continue
                    f = dots[j, k] + weight * (now[k] - partial[s, j, k])
                    g = (np.float32(k == 0) - _sigmoid(f)) * np.float32(alpha)
                    neu1e += g * syn1[t, c]
                    syn1[t, c] += g * syn0[ctx, c]  # at once, as the local kernel
                syn0[ctx, c] += neu1e


def cbow_columns_reference(
    syn0: np.ndarray, syn1: np.ndarray, centers: np.ndarray, ctx_offsets: np.ndarray,
    contexts: np.ndarray, negatives: np.ndarray, alpha: float, cuts: list[int],
) -> None:
    """`columns_reference` for CBOW: one dot product per (centre, target), of the mean of
    the centre's context rows, summed over the shards in round 1 and corrected in round 2."""
    shards = len(cuts) - 1
    weight = extrapolation("cbow", shards)
    targets = [[int(c)] + [int(n) for n in negatives[i]] for i, c in enumerate(centers)]
    cols = [slice(lo, hi) for lo, hi in zip(cuts[:-1], cuts[1:])]

    def mean(i: int, c: slice) -> np.ndarray:
        rows = contexts[ctx_offsets[i]:ctx_offsets[i + 1]]
        return syn0[rows][:, c].sum(axis=0, dtype=np.float32) / np.float32(len(rows))

    partial = np.zeros((shards, len(centers), negatives.shape[1] + 1), dtype=np.float32)
    for s, c in enumerate(cols):
        for i, row in enumerate(targets):
            for k, t in enumerate(row):
                partial[s, i, k] = mean(i, c) @ syn1[t, c]
    dots = partial.sum(axis=0)
    for s, c in enumerate(cols):
        for i, row in enumerate(targets):
            neu1 = mean(i, c)
            now = [neu1 @ syn1[t, c] for t in row]  # all before any update, as the kernel
            neu1e = np.zeros(c.stop - c.start, dtype=np.float32)
            for k, t in enumerate(row):
                if k > 0 and t == row[0]:
                    continue
                f = dots[i, k] + weight * (now[k] - partial[s, i, k])
                g = (np.float32(k == 0) - _sigmoid(f)) * np.float32(alpha)
                neu1e += g * syn1[t, c]
                syn1[t, c] += g * neu1
            for ctx in contexts[ctx_offsets[i]:ctx_offsets[i + 1]]:
                syn0[ctx, c] += neu1e


def windows_reference(
    ids: np.ndarray, offsets: np.ndarray, keep: np.ndarray, window: int, state: int,
) -> tuple[list[int], list[list[int]]]:
    """Centres and their context lists, with the local kernels' subsampling and windows."""
    rng = Lcg(state)
    centers: list[int] = []
    contexts: list[list[int]] = []
    for s in range(len(offsets) - 1):
        sent = _kept(rng, ids[offsets[s]:offsets[s + 1]], keep)
        for i, center in enumerate(sent):
            lo, hi = _window(rng, i, len(sent), window)
            if hi - lo < 2:
                continue
            centers.append(center)
            contexts.append([sent[j] for j in range(lo, hi) if j != i])
    return centers, contexts

"""Parameter-server math: sharded column kernels against whole-matrix references."""

from __future__ import annotations

import numpy as np
import pytest
from test_kernels import tiny_problem

from distw2v.kernels import build_alias_table
from distw2v.kernels import reference as ref
from distw2v.kernels.columns import (
    apply_updates,
    apply_updates_cbow,
    draw_batch_negatives,
    extrapolation,
    make_windows,
    partial_dots,
    partial_dots_cbow,
)


def test_windows_match_reference() -> None:
    ids, offsets, _, _, keep, _, _ = tiny_problem(4, sentences=10)
    centers, ctx_offsets, contexts, words_at = make_windows(ids, offsets, 0, len(offsets) - 1,
                                                            keep, 3, np.uint64(99))
    want_centers, want_contexts = ref.windows_reference(ids, offsets, keep, 3, 99)
    assert centers.tolist() == want_centers
    got = [contexts[ctx_offsets[i]:ctx_offsets[i + 1]].tolist() for i in range(len(centers))]
    assert got == want_contexts
    assert (np.diff(words_at) >= 0).all() and words_at[-1] <= offsets[-1]


def test_negatives_are_a_function_of_the_seed() -> None:
    prob, alias = build_alias_table(np.arange(1.0, 30.0))
    a = draw_batch_negatives(7, 5, prob, alias, np.uint64(123))
    b = draw_batch_negatives(7, 5, prob, alias, np.uint64(123))
    c = draw_batch_negatives(7, 5, prob, alias, np.uint64(124))
    assert a.shape == (7, 5) and np.array_equal(a, b) and not np.array_equal(a, c)


# per model: the tiny problem's seed, round 1, round 2, the whole-matrix reference, and
# whether round 1 has a row per pair (skip-gram) or per centre (CBOW)
MODELS = {
    "skipgram": (5, partial_dots, apply_updates, ref.columns_reference, "pairs"),
    "cbow": (6, partial_dots_cbow, apply_updates_cbow, ref.cbow_columns_reference, "centres"),
}


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("shards", [1, 2, 3])
def test_sharded_rounds_equal_whole_matrix_reference(model: str, shards: int) -> None:
    seed, round1, round2, reference, rows = MODELS[model]
    ids, offsets, syn0, syn1, keep, prob, alias = tiny_problem(seed, vocab=20, dim=12,
                                                               sentences=8)
    centers, ctx_offsets, contexts, _ = make_windows(ids, offsets, 0, len(offsets) - 1, keep,
                                                     3, np.uint64(7))
    negatives = draw_batch_negatives(len(centers), 4, prob, alias, np.uint64(55))
    cuts = np.linspace(0, 12, shards + 1).astype(int).tolist()
    want0, want1 = syn0.copy(), syn1.copy()
    reference(want0, want1, centers, ctx_offsets, contexts, negatives, 0.3, cuts)

    slices = [(syn0[:, lo:hi].copy(), syn1[:, lo:hi].copy()) for lo, hi in zip(cuts, cuts[1:])]
    partials = [round1(s0, s1, centers, ctx_offsets, contexts, negatives) for s0, s1 in slices]
    assert partials[0].shape == (len(contexts) if rows == "pairs" else len(centers), 5)
    dots = np.sum(partials, axis=0)
    for (s0, s1), partial in zip(slices, partials):
        round2(s0, s1, centers, ctx_offsets, contexts, negatives, dots, partial, 0.3,
               extrapolation(model, shards))
    got0 = np.concatenate([s0 for s0, _ in slices], axis=1)
    got1 = np.concatenate([s1 for _, s1 in slices], axis=1)
    assert not np.allclose(got0, syn0) and not np.allclose(got1, syn1)
    np.testing.assert_allclose(got0, want0, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got1, want1, rtol=1e-4, atol=1e-6)


def test_one_shard_round_two_is_sequential_sgd() -> None:
    """With one shard the staleness correction is exact: round 2 alone makes the local
    skip-gram kernel's updates for the same windows and negatives, pair after pair."""
    ids, offsets, syn0, syn1, keep, prob, alias = tiny_problem(8, vocab=15, dim=10, sentences=5)
    centers, ctx_offsets, contexts, _ = make_windows(ids, offsets, 0, len(offsets) - 1, keep,
                                                     2, np.uint64(3))
    negatives = draw_batch_negatives(len(centers), 3, prob, alias, np.uint64(9))
    a0, a1 = syn0.copy(), syn1.copy()
    dots = partial_dots(a0, a1, centers, ctx_offsets, contexts, negatives)
    stale = dots.copy()
    loss = apply_updates(a0, a1, centers, ctx_offsets, contexts, negatives, dots, stale, 0.4,
                         1.0)
    b0, b1 = syn0.copy(), syn1.copy()
    want_loss = 0.0
    for i, center in enumerate(centers):  # sequential reference, pair by pair
        targets = [center, *negatives[i]]
        for j in range(ctx_offsets[i], ctx_offsets[i + 1]):
            ctx = contexts[j]
            fs = [b0[ctx] @ b1[t] for t in targets]
            want_loss += ref._loss(fs, targets, center)
            neu1e = np.zeros(10, dtype=np.float32)
            for k, t in enumerate(targets):
                if k and t == center:
                    continue
                g = (float(k == 0) - 1 / (1 + np.exp(-fs[k]))) * 0.4
                neu1e += g * b1[t]
                b1[t] += g * b0[ctx]
            b0[ctx] += neu1e
    np.testing.assert_allclose(a0, b0, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(a1, b1, rtol=1e-4, atol=1e-6)
    assert abs(loss - want_loss) / len(contexts) < 1e-4 and want_loss > 0  # and the same loss


def test_cbow_one_shard_round_two_is_sequential_cbow() -> None:
    """With one shard, CBOW's round 2 alone makes the local CBOW kernel's updates for the same
    windows and negatives, centre after centre."""
    ids, offsets, syn0, syn1, keep, prob, alias = tiny_problem(9, vocab=15, dim=10, sentences=5)
    centers, ctx_offsets, contexts, _ = make_windows(ids, offsets, 0, len(offsets) - 1, keep,
                                                     2, np.uint64(3))
    negatives = draw_batch_negatives(len(centers), 3, prob, alias, np.uint64(9))
    a0, a1 = syn0.copy(), syn1.copy()
    dots = partial_dots_cbow(a0, a1, centers, ctx_offsets, contexts, negatives)
    apply_updates_cbow(a0, a1, centers, ctx_offsets, contexts, negatives, dots, dots.copy(),
                       0.4, 1)
    b0, b1 = syn0.copy(), syn1.copy()
    for i, center in enumerate(centers):
        rows = contexts[ctx_offsets[i]:ctx_offsets[i + 1]]
        neu1 = b0[rows].mean(axis=0)
        targets = [center, *negatives[i]]
        fs = [neu1 @ b1[t] for t in targets]
        neu1e = np.zeros(10, dtype=np.float32)
        for k, t in enumerate(targets):
            if k and t == center:
                continue
            g = (float(k == 0) - 1 / (1 + np.exp(-fs[k]))) * 0.4
            neu1e += g * b1[t]
            b1[t] += g * neu1
        for ctx in rows:
            b0[ctx] += neu1e
    np.testing.assert_allclose(a0, b0, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(a1, b1, rtol=1e-4, atol=1e-6)

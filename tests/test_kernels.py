"""Kernels against their NumPy references, the alias sampler, and the random stream."""

from __future__ import annotations

import numpy as np
import pytest

from distw2v.kernels import build_alias_table, cbow_chunk, mix_seed, skipgram_chunk
from distw2v.kernels import reference as ref
from distw2v.kernels.sampling import draw_negative, lcg_below, lcg_next, lcg_uniform


def tiny_problem(seed: int, vocab: int = 12, dim: int = 8, sentences: int = 6):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 15, size=sentences)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = rng.integers(0, vocab, size=int(offsets[-1])).astype(np.int32)
    syn0 = ((rng.random((vocab, dim), dtype=np.float32) - 0.5) / dim).astype(np.float32)
    syn1 = (rng.random((vocab, dim), dtype=np.float32) * 0.2 - 0.1).astype(np.float32)
    keep = rng.uniform(0.3, 1.0, size=vocab).astype(np.float32)
    prob, alias = build_alias_table(rng.random(vocab) + 0.1)
    return ids, offsets, syn0, syn1, keep, prob, alias


@pytest.mark.parametrize("model", ["skipgram", "cbow"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_kernel_matches_reference(model: str, seed: int) -> None:
    ids, offsets, syn0, syn1, keep, prob, alias = tiny_problem(seed)
    fast0, fast1 = syn0.copy(), syn1.copy()
    slow0, slow1 = syn0.copy(), syn1.copy()
    kernel = skipgram_chunk if model == "skipgram" else cbow_chunk
    reference = ref.skipgram_reference if model == "skipgram" else ref.cbow_reference
    state = 12345 + seed
    settings = dict(window=3, negative=4, alpha0=0.5, alpha_min=0.01, words_before=7,
                    total_words=200)
    words, pairs, loss = kernel(ids, offsets, 0, len(offsets) - 1, fast0, fast1, keep, prob, alias,
                          settings["window"], settings["negative"], settings["alpha0"],
                          settings["alpha_min"], settings["words_before"],
                          settings["total_words"], np.uint64(state))
    ref_pairs, ref_loss = reference(ids, offsets, slow0, slow1, keep, prob, alias, state=state,
                                    **settings)
    assert words == offsets[-1]
    assert pairs == ref_pairs > 0
    assert abs(loss / pairs - ref_loss / ref_pairs) < 1e-4  # the mean loss a pair
    assert loss / pairs > 0.5
    assert not np.allclose(fast0, syn0)  # training moved the vectors
    np.testing.assert_allclose(fast0, slow0, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fast1, slow1, rtol=1e-4, atol=1e-6)


def test_kernel_only_touches_its_sentences() -> None:
    ids, offsets, syn0, syn1, keep, prob, alias = tiny_problem(3, vocab=40, sentences=4)
    ids[offsets[2]:] = 39  # words of sentences 2.. are all id 39
    ids[: offsets[2]] %= 30
    before0 = syn0.copy()
    skipgram_chunk(ids, offsets, 0, 2, syn0, syn1, np.ones(40, np.float32), prob, alias,
                   2, 2, 0.1, 0.001, 0, 100, np.uint64(9))
    np.testing.assert_array_equal(syn0[39], before0[39])


def test_random_stream_matches_python_replay() -> None:
    state = np.uint64(2024)
    py = ref.Lcg(2024)
    for n in (1, 7, 1000, 2**31 - 1):
        # numba hands back a Python int; keep it uint64 as the kernels do
        state = np.uint64(lcg_next(state))
        assert lcg_below(state, n) == py.below(n)
        state = np.uint64(lcg_next(state))
        assert lcg_uniform(state) == np.float32(py.uniform())
    assert mix_seed(np.uint64(5), np.uint64(6), np.uint64(7)) == ref.mix_seed(5, 6, 7)


def test_alias_table_draws_follow_the_distribution() -> None:
    weights = np.array([50.0, 1.0, 0.0, 10.0, 39.0])
    prob, alias = build_alias_table(weights)
    state = np.uint64(77)
    draws = np.zeros(len(weights), dtype=np.int64)
    for _ in range(200_000):
        state, i = draw_negative(np.uint64(state), prob, alias)
        draws[i] += 1
    freq = draws / draws.sum()
    np.testing.assert_allclose(freq, weights / weights.sum(), atol=0.005)
    assert draws[2] == 0  # zero weight is never drawn

"""The sparse-rows kernels: chunk plans, rows-local training against whole matrices, quality."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_kernels import tiny_problem

from distw2v.config import VocabConfig
from distw2v.evaluate import evaluate_analogies
from distw2v.kernels import build_alias_table, mix_seed
from distw2v.kernels import reference as ref
from distw2v.kernels.local import LOSS_MASK
from distw2v.kernels.rows import (
    POOL_STREAM,
    ChunkPlan,
    cbow_rows,
    plan_chunk,
    skipgram_rows,
    subtract_rows,
    train_chunk_rows,
)
from distw2v.synthetic import PlantedCorpus, write_planted_corpus
from distw2v.training import initial_vectors
from distw2v.vectors import Vectors
from distw2v.vocab import Vocabulary, build_vocabulary

SETTINGS: dict[str, Any] = dict(window=3, negative=4, alpha0=0.5, alpha_min=0.01, words_before=7,
                total_words=400)


Problem = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                np.ndarray]


def problem(seed: int, vocab: int = 60, sentences: int = 12) -> Problem:
    return tiny_problem(seed, vocab=vocab, sentences=sentences)


def train_via_rows(plan: ChunkPlan, syn0: np.ndarray, syn1: np.ndarray, keep: np.ndarray,
                   model: str, state: int, **settings: Any) -> tuple[int, int, float]:
    """What a data-parallel task does: pull the plan's rows, train them, push them back."""
    inputs = plan.rows[:plan.n_inputs]
    rows0 = syn0[inputs]  # syn0 only for the chunk's words
    rows1 = syn1[plan.rows]
    done = train_chunk_rows(plan, rows0, rows1, keep[plan.rows], model=model, state=state,
                            **settings)
    syn0[inputs] = rows0
    syn1[plan.rows] = rows1
    return done


def pool_reference(ids: np.ndarray, offsets: np.ndarray, syn0: np.ndarray, syn1: np.ndarray,
                   keep: np.ndarray, pool: np.ndarray, model: str, *, window: int,
                   negative: int, alpha0: float, alpha_min: float, words_before: int,
                   total_words: int, state: int) -> tuple[int, int, float]:
    """reference.py's skip-gram and CBOW on whole matrices, negatives taken from `pool`."""
    rng = ref.Lcg(state)
    taken = words = pairs = sampled = 0
    loss = 0.0
    for s in range(len(offsets) - 1):
        alpha = ref._alpha(alpha0, alpha_min, words_before + words, total_words)
        words += int(offsets[s + 1] - offsets[s])
        sent = ref._kept(rng, ids[offsets[s]:offsets[s + 1]], keep)
        for i, center in enumerate(sent):
            lo, hi = ref._window(rng, i, len(sent), window)
            if hi - lo < 2:
                continue
            targets = [center] + [int(t) for t in pool[taken:taken + negative]]
            taken += negative
            context = [sent[j] for j in range(lo, hi) if j != i]
            inputs = [syn0[c] for c in context] if model == "skipgram" else \
                [syn0[context].sum(axis=0, dtype=np.float32) / np.float32(len(context))]
            for neu1, ctx in zip(inputs, context):
                neu1 = neu1.copy()
                neu1e = np.zeros(syn0.shape[1], dtype=np.float32)
                dots = [neu1 @ syn1[t] for t in targets]  # all before any update
                if pairs & LOSS_MASK == 0:  # the kernels' sample of the pairs
                    loss += ref._loss(dots, targets, center)
                    sampled += 1
                for k, t in enumerate(targets):
                    if k > 0 and t == center:
                        continue
                    g = (np.float32(k == 0) - ref._sigmoid(dots[k])) * alpha
                    neu1e += g * syn1[t]
                    syn1[t] += g * neu1
                for c in context if model == "cbow" else [ctx]:
                    syn0[c] += neu1e
                pairs += 1
    return words, pairs, ref._estimated(loss, sampled, pairs)


# ---- plans -------------------------------------------------------------------------------


def test_plan_maps_chunk_and_pool_into_one_row_space_chunk_words_first() -> None:
    ids, offsets, _, _, _, prob, alias = problem(0, vocab=500, sentences=40)
    plan = plan_chunk(ids, offsets, 5, 30, prob, alias, 5, seed=11)
    chunk = ids[offsets[5]:offsets[30]]
    assert plan.rows.dtype == np.int64 and plan.local_ids.dtype == np.int32
    assert plan.pool.dtype == np.int32 and plan.local_offsets.dtype == np.int64
    np.testing.assert_array_equal(plan.rows[plan.local_ids], chunk)
    np.testing.assert_array_equal(plan.local_offsets, offsets[5:31] - offsets[5])
    assert plan.words == len(chunk) and len(plan.pool) == 5 * len(chunk)
    pool = plan.rows[plan.pool]
    # the chunk's distinct words first, then the pool's others, each sorted by id
    np.testing.assert_array_equal(plan.rows[:plan.n_inputs], np.unique(chunk))
    np.testing.assert_array_equal(plan.rows[plan.n_inputs:], np.setdiff1d(pool, chunk))
    assert plan.local_ids.max() < plan.n_inputs  # input rows: only the first n_inputs
    # the pool follows the alias table (vocabulary 500, so every row is a real word)
    assert pool.min() >= 0 and pool.max() < 500 and len(np.unique(pool)) > 100


def test_plan_orders_each_part_by_the_sort_key() -> None:
    ids, offsets, _, _, _, prob, alias = problem(6, vocab=400, sentences=30)
    by_id = plan_chunk(ids, offsets, 0, 30, prob, alias, 4, seed=3)
    keyed = plan_chunk(ids, offsets, 0, 30, prob, alias, 4, seed=3,
                       sort_key=lambda rows: (rows * 7919) % 400)
    assert keyed.n_inputs == by_id.n_inputs
    for part in (slice(None, keyed.n_inputs), slice(keyed.n_inputs, None)):
        keys = (keyed.rows[part] * 7919) % 400
        assert (np.diff(keys) > 0).all()
        np.testing.assert_array_equal(np.sort(keyed.rows[part]), by_id.rows[part])
    # the same chunk and negatives, in the new local ids
    np.testing.assert_array_equal(keyed.rows[keyed.local_ids], by_id.rows[by_id.local_ids])
    np.testing.assert_array_equal(keyed.rows[keyed.pool], by_id.rows[by_id.pool])


def test_plans_are_seeded() -> None:
    ids, offsets, _, _, _, prob, alias = problem(1, vocab=300, sentences=30)
    a = plan_chunk(ids, offsets, 0, 30, prob, alias, 3, seed=5)
    b = plan_chunk(ids, offsets, 0, 30, prob, alias, 3, np.uint64(5))
    c = plan_chunk(ids, offsets, 0, 30, prob, alias, 3, seed=6)
    for name in ("rows", "local_ids", "local_offsets", "pool"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.n_inputs == b.n_inputs
    assert not np.array_equal(a.rows[a.pool], c.rows[c.pool])
    np.testing.assert_array_equal(a.rows[a.local_ids], c.rows[c.local_ids])
    # the pool is draw_negative's stream from the mixed seed (replayed in Python)
    rng = ref.Lcg(ref.mix_seed(5, int(POOL_STREAM), 0))
    assert a.rows[a.pool[:50]].tolist() == [rng.negative(prob, alias) for _ in range(50)]


def test_plan_pool_follows_the_negative_distribution() -> None:
    weights = np.array([50.0, 1.0, 0.0, 10.0, 39.0])
    prob, alias = build_alias_table(weights)
    ids = np.zeros(20_000, dtype=np.int32)
    plan = plan_chunk(ids, np.array([0, 20_000]), 0, 1, prob, alias, 10, seed=3)
    drawn = np.bincount(plan.rows[plan.pool], minlength=5) / len(plan.pool)
    np.testing.assert_allclose(drawn, weights / weights.sum(), atol=0.003)


def test_empty_chunks_and_no_negatives() -> None:
    ids, offsets, _, _, _, prob, alias = problem(2)
    empty = plan_chunk(ids, offsets, 3, 3, prob, alias, 5, seed=1)
    assert len(empty.rows) == len(empty.pool) == empty.n_inputs == empty.words == 0
    assert empty.local_offsets.tolist() == [0]
    plain = plan_chunk(ids, offsets, 0, 4, prob, alias, 0, seed=1)
    assert len(plain.pool) == 0 and plain.n_inputs == len(plain.rows)


# ---- training on rows --------------------------------------------------------------------


@pytest.mark.parametrize("model", ["skipgram", "cbow"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rows_training_equals_whole_matrix_training(model: str, seed: int) -> None:
    ids, offsets, syn0, syn1, keep, prob, alias = problem(seed)
    plan = plan_chunk(ids, offsets, 2, 11, prob, alias, 4, seed=seed + 40)
    state = 12345 + seed
    rows0, rows1 = syn0.copy(), syn1.copy()
    done = train_via_rows(plan, rows0, rows1, keep, model, state, **SETTINGS)
    # the whole-matrix NumPy twin, global ids and the same pool
    slow0, slow1 = syn0.copy(), syn1.copy()
    chunk_offsets = offsets[2:12] - offsets[2]
    slow = pool_reference(ids[offsets[2]:offsets[11]], chunk_offsets, slow0, slow1, keep,
                          plan.rows[plan.pool], model, state=state, **SETTINGS)
    assert done[:2] == slow[:2] and done[0] == plan.words and done[1] > 0
    assert abs(done[2] / done[1] - slow[2] / slow[1]) < 1e-4  # the mean loss a pair
    assert not np.allclose(rows0, syn0)  # training moved the vectors
    np.testing.assert_allclose(rows0, slow0, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(rows1, slow1, rtol=1e-4, atol=1e-6)
    # the identity plan (rows = every word) on the full matrices: the same numbers exactly
    identity = ChunkPlan(rows=np.arange(len(syn0)), local_ids=ids[offsets[2]:offsets[11]],
                         local_offsets=chunk_offsets, pool=plan.rows[plan.pool].astype(np.int32),
                         n_inputs=len(syn0))
    full0, full1 = syn0.copy(), syn1.copy()
    assert train_chunk_rows(identity, full0, full1, keep, model=model, state=state,
                            **SETTINGS) == done
    np.testing.assert_array_equal(full0, rows0)
    np.testing.assert_array_equal(full1, rows1)
    # rows outside the plan are untouched
    untouched = np.setdiff1d(np.arange(len(syn0)), plan.rows)
    assert len(untouched) > 0
    np.testing.assert_array_equal(rows1[untouched], syn1[untouched])


def test_kernels_take_only_the_pools_negatives() -> None:
    ids, offsets, syn0, syn1, keep, prob, alias = problem(4)
    plan = plan_chunk(ids, offsets, 0, 12, prob, alias, 3, seed=2)
    pool = np.full_like(plan.pool, plan.pool[0])  # every negative one row
    others = np.setdiff1d(np.arange(len(plan.rows)), np.concatenate([plan.local_ids, pool]))
    assert len(others) > 0
    for kernel in (skipgram_rows, cbow_rows):
        rows0, rows1 = syn0[plan.rows], syn1[plan.rows]
        kernel(plan.local_ids, plan.local_offsets, rows0, rows1, keep[plan.rows], pool,
               3, 3, 0.1, 0.001, 0, 100, np.uint64(9))
        np.testing.assert_array_equal(rows1[others], syn1[plan.rows][others])


def test_train_chunk_rows_checks_its_arrays() -> None:
    ids, offsets, syn0, syn1, keep, prob, alias = problem(5)
    plan = plan_chunk(ids, offsets, 0, 5, prob, alias, 2, seed=1)
    rows0, rows1, keep_local = syn0[plan.rows[:plan.n_inputs]], syn1[plan.rows], keep[plan.rows]
    settings: dict[str, Any] = dict(window=2, alpha0=0.1, alpha_min=0.001, words_before=0,
                                    total_words=100, state=1)
    with pytest.raises(ValueError, match="fewer than"):
        train_chunk_rows(plan, rows0, rows1, keep_local, model="skipgram", negative=3,
                         **settings)
    with pytest.raises(ValueError, match="syn1_rows must be"):
        train_chunk_rows(plan, rows0, syn1, keep_local, model="skipgram", negative=2,
                         **settings)
    with pytest.raises(ValueError, match="syn0_rows must be"):
        train_chunk_rows(plan, rows0.astype(np.float64), rows1, keep_local, model="cbow",
                         negative=2, **settings)
    with pytest.raises(ValueError, match="syn0_rows must be"):  # one for every row: too many
        train_chunk_rows(plan, syn0[plan.rows], rows1, keep_local, model="cbow", negative=2,
                         **settings)
    short = ChunkPlan(rows=plan.rows, local_ids=plan.local_ids, local_offsets=plan.local_offsets,
                      pool=plan.pool, n_inputs=int(plan.local_ids.max()))  # one word too few
    with pytest.raises(ValueError, match="must be among its first"):
        train_chunk_rows(short, rows0[:short.n_inputs], rows1, keep_local, model="skipgram",
                         negative=2, **settings)
    with pytest.raises(ValueError, match="model must be"):
        train_chunk_rows(plan, rows0, rows1, keep_local, model="glove", negative=2,
                         **settings)


# ---- quality -----------------------------------------------------------------------------


def encode(path: Path, min_count: int = 5) -> tuple[Vocabulary, np.ndarray, np.ndarray]:
    """The corpus as one in-memory shard (ids, offsets)."""
    sentences = [line.split() for line in path.read_text().splitlines()]
    vocab = build_vocabulary(sentences, VocabConfig(min_count=min_count))
    index = vocab.index
    encoded = [[index[w] for w in s if w in index] for s in sentences]
    lengths = np.array([len(s) for s in encoded], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = np.fromiter((w for s in encoded for w in s), dtype=np.int32, count=int(offsets[-1]))
    return vocab, ids, offsets


def chunk_bounds(offsets: np.ndarray, chunk_words: int) -> list[tuple[int, int]]:
    cuts = np.searchsorted(offsets, np.arange(chunk_words, offsets[-1], chunk_words))
    bounds = np.unique(np.concatenate([[0], cuts, [len(offsets) - 1]])).tolist()
    return list(zip(bounds[:-1], bounds[1:]))


def train_corpus_rows(vocab: Vocabulary, ids: np.ndarray, offsets: np.ndarray, *, dim: int,
                      epochs: int, model: str = "skipgram", chunk_words: int = 10_000,
                      seed: int = 1) -> np.ndarray:
    """Chunk after chunk through plan, pull, train, push, on whole matrices; returns syn0."""
    syn0, syn1 = initial_vectors(len(vocab), dim, seed)
    keep = vocab.keep_probabilities(1e-3)
    prob, alias = vocab.negative_table()
    chunks = chunk_bounds(offsets, chunk_words)
    total = int(offsets[-1]) * epochs
    before = 0
    for epoch in range(epochs):
        for index in np.random.default_rng([seed, epoch]).permutation(len(chunks)).tolist():
            s_lo, s_hi = chunks[index]
            state = int(mix_seed(np.uint64(seed), np.uint64(epoch), np.uint64(index)))
            plan = plan_chunk(ids, offsets, s_lo, s_hi, prob, alias, 5, state)
            words, _, _ = train_via_rows(plan, syn0, syn1, keep, model, state, window=5,
                                         negative=5, alpha0=0.025, alpha_min=0.0001,
                                         words_before=before, total_words=total)
            before += words
    return syn0


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> PlantedCorpus:
    path = tmp_path_factory.mktemp("planted") / "planted.txt"
    return write_planted_corpus(path, tokens=400_000, entities=12, filler_vocab=2_000, seed=0)


def test_subtract_rows_equals_numpy_and_catches_what_is_not_finite() -> None:
    rng = np.random.default_rng(4)
    before = rng.standard_normal((5, 7)).astype(np.float32)
    now = rng.standard_normal((12, 7)).astype(np.float32)
    want = now.copy()
    want[3:8] -= before
    assert subtract_rows(now, 3, before)
    np.testing.assert_array_equal(now, want)  # rows 3-7 became deltas, the rest untouched
    read_only = np.frombuffer(before.tobytes(), dtype=np.float32).reshape(5, 7)
    assert subtract_rows(now, 0, read_only)  # pulled rows are views of a reply
    assert subtract_rows(now, 12, before[:0])  # an empty block
    for bad in (np.inf, -np.inf, np.nan):
        trained = before + 1
        trained[4, 6] = bad
        assert not subtract_rows(trained, 0, before)
    poisoned = before.copy()
    poisoned[0, 0] = np.nan  # a non-finite pulled row makes the delta non-finite too
    assert not subtract_rows(before + 1, 0, poisoned)


def test_rows_training_learns_planted_relations(planted: PlantedCorpus) -> None:
    # test_quality's corpus and settings: skipgram_chunk on these chunks, single-threaded,
    # solves 99-100% (seeds 1-3); so did this path; 90% is test_quality's bar
    vocab, ids, offsets = encode(Path(planted.path))
    syn0 = train_corpus_rows(vocab, ids, offsets, dim=100, epochs=5)
    result = evaluate_analogies(Vectors(vocab.words, syn0), planted.analogies)
    assert result.total == 12 * 11 * 4
    assert result.accuracy >= 0.9

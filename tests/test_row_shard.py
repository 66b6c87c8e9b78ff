"""The row shard (data-parallel strategy): placement, the row codec, and RowShard against
whole NumPy matrices."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from distw2v.distributed.rowcodec import (
    decode_rows,
    encode_rows,
    encoding_bytes,
    pack_deltas,
    unpack_deltas,
)
from distw2v.distributed.rows import Placement, RowShard, RowSpec, owned_ids, owners
from distw2v.errors import Distw2vError
from distw2v.training import initial_vectors

VOCAB, DIM, SHARDS, SEED = 103, 6, 3, 11

# --- the codec -------------------------------------------------------------------------------

CASES = [
    (np.zeros(0, dtype=np.int64), 13),  # empty
    (np.arange(13), 13),  # all rows, universe not a multiple of 8
    (np.arange(16), 16),  # all rows, whole bytes
    (np.array([0]), 1),  # one row of one
    (np.array([5]), 40),  # one row
    (np.array([39]), 40),  # the last row
    (np.array([0, 2, 3, 10, 99]), 100),
    (np.arange(0, 1001, 3), 1001),
]


@pytest.mark.parametrize("positions, universe", CASES)
@pytest.mark.parametrize("kind", [None, "indices", "bitmap"])
def test_codec_round_trip(positions: np.ndarray, universe: int, kind: str | None) -> None:
    chosen, payload = encode_rows(positions, universe, kind)
    sizes = encoding_bytes(len(positions), universe)
    if kind is None:
        assert payload.nbytes == min(sizes.values())
        assert chosen == ("indices" if sizes["indices"] <= sizes["bitmap"] else "bitmap")
    else:
        assert chosen == kind and payload.nbytes == sizes[kind]
    decoded = decode_rows(chosen, payload, universe)
    assert decoded.dtype == np.int64
    np.testing.assert_array_equal(decoded, positions)


def test_codec_tie_and_choice() -> None:
    assert encode_rows(np.arange(2), 64)[0] == "indices"  # 8 bytes either way
    assert encode_rows(np.arange(3), 64)[0] == "bitmap"
    assert encode_rows(np.arange(1), 64)[0] == "indices"


@pytest.mark.parametrize("kind, payload, universe", [
    ("ranges", np.zeros(1, dtype=np.int32), 8),
    ("indices", np.array([3, 2], dtype=np.int32), 8),  # unsorted
    ("indices", np.array([2, 2], dtype=np.int32), 8),  # duplicate
    ("indices", np.array([-1], dtype=np.int32), 8),
    ("indices", np.array([8], dtype=np.int32), 8),  # out of range
    ("indices", np.array([1], dtype=np.int64), 8),  # wrong dtype
    ("indices", np.zeros((1, 1), dtype=np.int32), 8),
    ("bitmap", np.zeros(3, dtype=np.uint8), 13),  # wrong length
    ("bitmap", np.zeros(2, dtype=np.int32), 13),
    ("bitmap", np.array([0, 0b00000100], dtype=np.uint8), 13),  # bit 13, beyond the rows
])
def test_codec_refuses_malicious(kind: str, payload: np.ndarray, universe: int) -> None:
    with pytest.raises(Distw2vError):
        decode_rows(kind, payload, universe)


def test_codec_refuses_bad_positions_on_encode() -> None:
    with pytest.raises(Distw2vError):
        encode_rows(np.array([4, 1]), 8)
    with pytest.raises(Distw2vError):
        encode_rows(np.array([1]), 8, "gzip")


def test_deltas_full_and_half() -> None:
    deltas = np.random.default_rng(0).normal(0, 0.01, (5, DIM)).astype(np.float32)
    full = pack_deltas(deltas, half=False)
    np.testing.assert_array_equal(unpack_deltas(full, False, 5, DIM), deltas)
    half = pack_deltas(deltas, half=True)
    assert half.dtype == np.uint8 and half.nbytes == deltas.nbytes // 2
    back = unpack_deltas(half, True, 5, DIM)
    np.testing.assert_array_equal(back, deltas.astype(np.float16).astype(np.float32))
    with pytest.raises(Distw2vError):
        unpack_deltas(half[:-2], True, 5, DIM)
    with pytest.raises(Distw2vError):
        unpack_deltas(full, False, 4, DIM)
    with pytest.raises(Distw2vError):
        pack_deltas(np.array([[1e6]], dtype=np.float32), half=True)


# --- placement -------------------------------------------------------------------------------

def test_placement_is_a_bijection_both_ways() -> None:
    for vocab, shards in ((5000, 4), (997, 3), (64, 8), (7, 3), (1, 1), (5, 5)):
        ids = np.arange(vocab)
        for permute in (False, True):
            where = Placement(vocab, shards, permute, seed=3)
            first = owners(ids, shards, permute, 3, vocab)
            np.testing.assert_array_equal(first, owners(ids.copy(), shards, permute, 3, vocab))
            assert first.min() >= 0 and first.max() < shards
            at = where.positions(ids)
            for k in range(shards):  # each shard's rows are 0..rows-1, and map back
                mine = np.sort(at[first == k])
                np.testing.assert_array_equal(mine, np.arange(where.rows(k)))
                np.testing.assert_array_equal(
                    where.ids_at(k, where.positions(ids[first == k])), ids[first == k])
            held = np.concatenate([owned_ids(RowSpec(vocab_size=vocab, dim=2, shard=k,
                                                     shards=shards, permute=permute, seed=3))
                                   for k in range(shards)])
            np.testing.assert_array_equal(np.sort(held), ids)  # each id exactly once
    # without the permutation: contiguous ranges, the frequent words all on shard 0
    np.testing.assert_array_equal(owners(np.arange(8), 4, False, 3, 8), [0, 0, 1, 1, 2, 2, 3, 3])


def test_permuted_placement_spreads_the_frequent_words_and_is_seeded() -> None:
    for seed in (1, 2, 3):
        for shards in (3, 4, 8):
            counts = np.bincount(owners(np.arange(1000), shards, True, seed, 70_000),
                                 minlength=shards)
            assert counts.max() / counts.mean() < 1.25
    assert (owners(np.arange(1000), 4, True, 1, 70_000)
            != owners(np.arange(1000), 4, True, 2, 70_000)).mean() > 0.5


# --- RowShard against whole matrices ---------------------------------------------------------

def make_shards(shards: int = SHARDS, **kw: Any) -> list[RowShard]:
    group = []
    for k in range(shards):
        shard = RowShard()
        shard.configure(RowSpec(vocab_size=VOCAB, dim=DIM, shard=k, shards=shards, seed=SEED,
                                **kw))
        group.append(shard)
    return group


def whole(group: list[RowShard]) -> tuple[np.ndarray, np.ndarray]:
    """The full syn0 and syn1 the group holds, read back by pulls."""
    syn0 = np.full((VOCAB, DIM), np.nan, dtype=np.float32)
    syn1 = syn0.copy()
    for shard in group:
        rows0, rows1 = shard.pull(shard.ids, shard.ids)
        syn0[shard.ids], syn1[shard.ids] = rows0, rows1
    return syn0, syn1


def by_owner(ids: np.ndarray, shards: int) -> list[np.ndarray]:
    where = owners(ids, shards, True, SEED, VOCAB)
    return [np.flatnonzero(where == k) for k in range(shards)]


Push = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def pushes(rng: np.random.Generator, count: int) -> list[Push]:
    """Random pushes, each with repeated ids."""
    out = []
    for _ in range(count):
        ids0 = np.r_[rng.integers(0, VOCAB, 40), [0, 0, 0]]
        ids1 = np.r_[rng.integers(0, 10, 30), [1, 1]]
        out.append((ids0, rng.normal(0, 0.1, (len(ids0), DIM)).astype(np.float32),
                    ids1, rng.normal(0, 0.1, (len(ids1), DIM)).astype(np.float32)))
    return out


def push_all(group: list[RowShard], ids0: np.ndarray, d0: np.ndarray, ids1: np.ndarray,
             d1: np.ndarray, words: int) -> list[int]:
    at0, at1 = by_owner(ids0, len(group)), by_owner(ids1, len(group))
    return [shard.push(ids0[at0[k]], d0[at0[k]], ids1[at1[k]], d1[at1[k]], words)
            for k, shard in enumerate(group)]


@pytest.mark.parametrize("shards", [1, 2, 3, 5])
def test_initial_rows_are_the_local_trainers(shards: int) -> None:
    syn0, syn1 = initial_vectors(VOCAB, DIM, SEED)
    got0, got1 = whole(make_shards(shards))
    np.testing.assert_array_equal(got0, syn0)
    np.testing.assert_array_equal(got1, syn1)


def test_initial_rows_in_small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    import distw2v.distributed.rows as rows

    monkeypatch.setattr(rows, "BLOCK_VALUES", DIM * 7)  # blocks of 7 rows, owned ids in 5s
    np.testing.assert_array_equal(whole(make_shards())[0], initial_vectors(VOCAB, DIM, SEED)[0])


@pytest.mark.parametrize("damping", [1.0, 0.25])
def test_sgd_pushes_match_whole_matrices(damping: float) -> None:
    group = make_shards(damping=damping)
    syn0, syn1 = initial_vectors(VOCAB, DIM, SEED)
    for ids0, d0, ids1, d1 in pushes(np.random.default_rng(1), 5):
        push_all(group, ids0, d0, ids1, d1, 0)
        np.add.at(syn0, ids0, np.float32(damping) * d0)
        np.add.at(syn1, ids1, np.float32(damping) * d1)
    got0, got1 = whole(group)
    np.testing.assert_allclose(got0, syn0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got1, syn1, rtol=1e-5, atol=1e-6)


def test_pulls_and_pushes_by_position_take_several_blocks() -> None:
    """What the service does with a chunk's three blocks: syn0 and syn1 rows of the chunk's
    words, syn1 rows of its other output rows."""
    shard = make_shards(shards=1)[0]
    syn0, syn1 = initial_vectors(VOCAB, DIM, SEED)
    at_in, at_out = np.array([1, 4, 50, 102]), np.array([0, 7, 99])  # row positions
    word_in, word_out = shard.ids[at_in], shard.ids[at_out]  # the words held there
    in0, in1, out1 = shard.pull_at(at_in, at_in, at_out)
    np.testing.assert_array_equal(in0, syn0[word_in])
    np.testing.assert_array_equal(in1, syn1[word_in])
    np.testing.assert_array_equal(out1, syn1[word_out])
    rng = np.random.default_rng(7)
    d0, d1 = (rng.normal(0, 0.1, (4, DIM)).astype(np.float32) for _ in range(2))
    dp = rng.normal(0, 0.1, (3, DIM)).astype(np.float32)
    assert shard.push_at([(at_in, d0)], [(at_in, d1), (at_out, dp)], 12) == 12
    syn0[word_in] += d0
    syn1[word_in] += d1
    syn1[word_out] += dp
    assert shard.describe()["rows_pushed"] == 11 and shard.describe()["rows_pulled"] == 11
    got0, got1 = whole([shard])
    np.testing.assert_allclose(got0, syn0, atol=1e-6)
    np.testing.assert_allclose(got1, syn1, atol=1e-6)
    bad = dp.copy()
    bad[2, 3] = np.inf  # one block not finite: nothing of the push is applied
    with pytest.raises(Distw2vError, match="not finite"):
        shard.push_at([(at_in, d0)], [(at_out, bad)], 5)
    np.testing.assert_array_equal(whole([shard])[0], got0)
    assert shard.global_words == 12


def adagrad_reference(syn: np.ndarray, acc: np.ndarray, ids: np.ndarray, delta: np.ndarray,
                      eta: float) -> None:
    """acc += g**2; row += eta * g / (sqrt(acc) + 1e-6), g the push's summed delta per id."""
    for word in np.unique(ids):
        g = delta[ids == word].astype(np.float64).sum(axis=0)
        acc[word] += g * g
        syn[word] += eta * g / (np.sqrt(acc[word]) + 1e-6)


def test_adagrad_pushes_match_reference() -> None:
    eta = 0.05
    group = make_shards(optimizer="adagrad", adagrad_eta=eta)
    syn0, syn1 = (m.astype(np.float64) for m in initial_vectors(VOCAB, DIM, SEED))
    acc0, acc1 = np.zeros_like(syn0), np.zeros_like(syn1)
    for ids0, d0, ids1, d1 in pushes(np.random.default_rng(2), 4):
        push_all(group, ids0, d0, ids1, d1, 0)
        adagrad_reference(syn0, acc0, ids0, d0, eta)
        adagrad_reference(syn1, acc1, ids1, d1, eta)
    got0, got1 = whole(group)
    np.testing.assert_allclose(got0, syn0, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got1, syn1, rtol=1e-4, atol=1e-6)
    assert not np.allclose(got1, 0)


def test_word_counter_and_describe() -> None:
    group = make_shards()
    shard = group[0]
    assert shard.push(shard.ids[:0], np.zeros((0, DIM), np.float32), shard.ids[:0],
                      np.zeros((0, DIM), np.float32), 100) == 100
    assert shard.push(shard.ids[:2], np.zeros((2, DIM), np.float32), shard.ids[:1],
                      np.zeros((1, DIM), np.float32), 23) == 123
    shard.pull(shard.ids[:3], shard.ids[:0])
    info = shard.describe()
    assert info["configured"] and info["global_words"] == 123
    assert info["pushes"] == 2 and info["pulls"] == 1 and info["rows_pulled"] == 3
    assert info["rows"] == len(shard.ids) and info["bytes_held"] > 2 * len(shard.ids) * DIM * 4
    assert sum(s.describe()["rows"] for s in group) == VOCAB


def test_pull_range_streams_the_model() -> None:
    group = make_shards()
    syn0 = initial_vectors(VOCAB, DIM, SEED)[0]
    for lo, hi in [(0, VOCAB), (10, 40), (50, 50)]:
        ids = []
        for shard in group:
            got_ids, rows0 = shard.pull_range(lo, hi)
            np.testing.assert_array_equal(rows0, syn0[got_ids])
            ids.append(got_ids)
        np.testing.assert_array_equal(np.sort(np.concatenate(ids)), np.arange(lo, hi))
    with pytest.raises(Distw2vError):
        group[0].pull_range(0, VOCAB + 1)


def test_refuses_ids_and_deltas_it_does_not_hold() -> None:
    group = make_shards()
    foreign = int(group[1].ids[0])
    with pytest.raises(Distw2vError, match="not held"):
        group[0].pull(np.array([foreign]), np.zeros(0, np.int64))
    with pytest.raises(Distw2vError, match="outside the vocabulary"):
        group[0].pull(np.array([VOCAB]), np.zeros(0, np.int64))
    with pytest.raises(Distw2vError):
        group[0].pull(np.array([0.5]), np.zeros(0, np.int64))
    mine = group[0].ids[:2]
    before = group[0].pull(mine, mine)
    with pytest.raises(Distw2vError, match="do not fit"):
        group[0].push(mine, np.zeros((2, DIM), np.float32), mine,
                      np.zeros((3, DIM), np.float32), 5)
    with pytest.raises(Distw2vError, match="not finite"):
        group[0].push(mine, np.full((2, DIM), np.nan, np.float32), mine[:0],
                      np.zeros((0, DIM), np.float32), 5)
    after = group[0].pull(mine, mine)
    np.testing.assert_array_equal(before[0], after[0])  # a refused push changes nothing
    assert group[0].global_words == 0
    with pytest.raises(Distw2vError, match="not been configured"):
        RowShard().pull(mine, mine)


@pytest.mark.parametrize("optimizer", ["sgd", "adagrad"])
def test_checkpoint_round_trip(tmp_path: Path, optimizer: str) -> None:
    group = make_shards(optimizer=optimizer)
    for ids0, d0, ids1, d1 in pushes(np.random.default_rng(3), 2):
        push_all(group, ids0, d0, ids1, d1, 7)
    for shard in group:
        shard.checkpoint(str(tmp_path))
    specs = [shard.spec for shard in group if shard.spec is not None]
    loaded = []
    for spec in specs:
        shard = RowShard()
        shard.load(str(tmp_path), spec)
        loaded.append(shard)
        assert shard.global_words == 14
    for a, b in zip(whole(group), whole(loaded)):
        np.testing.assert_array_equal(a, b)
    if optimizer == "adagrad":
        np.testing.assert_array_equal(group[0].acc0, loaded[0].acc0)
        np.testing.assert_array_equal(group[0].acc1, loaded[0].acc1)
    # Further pushes go on alike (the accumulators came back too).
    more = pushes(np.random.default_rng(4), 1)[0]
    push_all(group, *more, 1)
    push_all(loaded, *more, 1)
    np.testing.assert_array_equal(whole(group)[0], whole(loaded)[0])
    # The step sizes may move; the model may not.
    RowShard().load(str(tmp_path), replace(specs[0], damping=0.5, adagrad_eta=0.1),
                    global_words=3)
    for change in ({"seed": SEED + 1}, {"dim": DIM + 1}, {"vocab_size": VOCAB - 1},
                   {"permute": False}, {"optimizer": "adagrad" if optimizer == "sgd" else "sgd"},
                   {"model": "cbow"}):
        with pytest.raises(Distw2vError, match="another model"):
            RowShard().load(str(tmp_path), replace(specs[0], **change))  # type: ignore[arg-type]
    with pytest.raises(Distw2vError, match="no readable checkpoint"):
        RowShard().load(str(tmp_path / "nowhere"), specs[0])


def test_configure_refuses_bad_specs() -> None:
    base = RowSpec(vocab_size=10, dim=4, shard=0, shards=2)
    for change in ({"shard": 2}, {"optimizer": "adam"}, {"model": "glove"}, {"dim": 0},
                   {"adagrad_eta": 0.0}):
        with pytest.raises(Distw2vError):
            RowShard().configure(replace(base, **change))  # type: ignore[arg-type]


def test_concurrent_pushes_count_every_word(tmp_path: Path) -> None:
    shard = make_shards()[0]
    mine = shard.ids[:3]
    zeros = np.zeros((3, DIM), np.float32)

    def work() -> None:
        for _ in range(200):
            shard.push(mine, zeros, mine, zeros, 1)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    shard.checkpoint(str(tmp_path))  # waits for the pushes under way, holds new ones back
    for thread in threads:
        thread.join()
    assert shard.global_words == 800 and shard.describe()["pushes"] == 800

"""The rows strategy's transport against real shards on loopback: RowClient's pulls and pushes
land on the shards that hold the rows, by position (indices or a bitmap), as blocks of a
chunk's matrices, and give the same rows as whole matrices; float16; the export's row blocks;
checkpoints through gRPC."""

from __future__ import annotations

import numpy as np
import pytest

from distw2v.distributed.row_client import RowClient, Trained
from distw2v.distributed.rows import Placement, RowShard, RowSpec, placement
from distw2v.distributed.server import start_server
from distw2v.errors import Distw2vError

VOCAB, DIM, SHARDS = 500, 8, 3


@pytest.fixture()
def shards(tmp_path):
    started = [start_server(checkpoint_root=str(tmp_path)) for _ in range(SHARDS)]
    yield [f"127.0.0.1:{port}" for _, port, _ in started], [svc for _, _, svc in started]
    for server, _, _ in started:
        server.stop(None)


def specs(**kw) -> list[RowSpec]:
    return [RowSpec(vocab_size=VOCAB, dim=DIM, shard=k, shards=SHARDS, seed=5, **kw)
            for k in range(SHARDS)]


def reference() -> RowShard:
    """The whole model on one shard: what the group must hold."""
    whole = RowShard()
    whole.configure(RowSpec(vocab_size=VOCAB, dim=DIM, shard=0, shards=1, seed=5))
    return whole


def chunk_rows(where: Placement, ids_in: np.ndarray, ids_out: np.ndarray) -> np.ndarray:
    """A chunk's rows as plan_chunk orders them: its words, then the others, each part in
    sort_key order."""
    return np.concatenate([ids[np.argsort(where.sort_key(ids))] for ids in (ids_in, ids_out)])


@pytest.mark.parametrize("half", [False, True])
def test_pulls_and_pushes_match_whole_matrices(shards, half: bool) -> None:
    addresses, services = shards
    group = specs()
    whole = reference()
    rng = np.random.default_rng(0)
    where = placement(group[0])
    with RowClient(addresses, where, DIM, half=half) as client:
        client.configure(group)
        trained = None
        for step in range(6):
            # a few rows (indices), then nearly all of them (a bitmap), then none
            count = (5, 480, 0, 40, 499, 1)[step]
            chosen = rng.permutation(VOCAB)[:count]
            n_in = (count + 1) // 2
            rows = chunk_rows(where, chosen[:n_in], chosen[n_in:])
            layout = client.layout(rows, n_in)
            syn0 = np.empty((n_in, DIM), dtype=np.float32)
            syn1 = np.empty((len(rows), DIM), dtype=np.float32)
            # one call: the last step's push, applied first, then this step's pull
            pulled = client.step(trained, layout, syn0, syn1)
            assert pulled.global_words == 100 * step  # shard 0 keeps the count
            want0, want1 = whole.pull(rows[:n_in], rows)
            tolerance = 1e-3 if half else 0
            np.testing.assert_allclose(syn0, want0, atol=tolerance)
            np.testing.assert_allclose(syn1, want1, atol=tolerance)
            # training moves the rows; subtract turns them into their deltas
            delta0 = rng.normal(0, 0.01, syn0.shape).astype(np.float32)
            delta1 = rng.normal(0, 0.01, syn1.shape).astype(np.float32)
            syn0 += delta0
            syn1 += delta1
            assert pulled.subtract()
            np.testing.assert_allclose(syn0, delta0, atol=1e-6)
            np.testing.assert_allclose(syn1, delta1, atol=1e-6)
            trained = Trained(layout, syn0, syn1, 100)
            if half:  # what the wire will carry
                syn0 = syn0.astype(np.float16).astype(np.float32)
                syn1 = syn1.astype(np.float16).astype(np.float32)
            whole.push(rows[:n_in], syn0, rows, syn1, 100)
        last = client.step(trained)  # a push alone
        assert last.global_words == 600 and last.blocks == []
        assert client.row_bytes["indices"] > 0 and client.row_bytes["bitmap"] > 0
        every = whole.pull(np.arange(VOCAB), np.arange(0))[0]  # in id order
        np.testing.assert_allclose(client.pull(0, VOCAB), every, atol=1e-6)
        np.testing.assert_allclose(client.pull(100, 137), every[100:137], atol=1e-6)
    # every shard held only its own rows
    for k, service in enumerate(services):
        assert service.rows.spec.shard == k and len(service.rows.ids) == placement(
            group[0]).rows(k)


def test_a_layout_refuses_rows_out_of_shard_order(shards) -> None:
    addresses, _ = shards
    where = placement(specs()[0])
    with RowClient(addresses, where, DIM) as client:
        rows = chunk_rows(where, np.arange(0, 60), np.arange(60, 90))
        client.layout(rows, 60)
        for shuffled in (rows[::-1], np.r_[rows[1], rows[0], rows[2:]]):
            with pytest.raises(Distw2vError, match="order|sorted"):
                client.layout(shuffled, 60)


def test_checkpoint_and_load_through_grpc(shards, tmp_path) -> None:
    addresses, _ = shards
    group = specs(optimizer="adagrad")
    with RowClient(addresses, placement(group[0]), DIM) as client:
        client.configure(group)
        ids = chunk_rows(placement(group[0]), np.arange(0, VOCAB, 7), np.arange(0))
        delta = np.full((len(ids), DIM), 0.5, dtype=np.float32)
        client.step(Trained(client.layout(ids, len(ids)), delta, delta, 42))
        before = client.pull(0, VOCAB)
        client.checkpoint(str(tmp_path / "epoch-1"))
        client.configure(group)  # fresh rows
        assert not np.allclose(client.pull(0, VOCAB), before)
        client.load(str(tmp_path / "epoch-1"), group, global_words=1000)
        np.testing.assert_array_equal(client.pull(0, VOCAB), before)
        stats = client.stats()
        assert stats[0]["global_words"] == 1000 and stats[1]["global_words"] == 0
        assert all(s["configured"] and s["rows"] > 0 for s in stats)

"""The rows strategy's transport against real gRPC shards on loopback: RowClient's pulls and
pushes land on the shards that hold the rows, by position (indices or a bitmap), and give the
same rows as whole matrices; float16; the export's row blocks; checkpoints through gRPC."""

from __future__ import annotations

import numpy as np
import pytest

from distw2v.distributed.row_client import RowClient
from distw2v.distributed.rows import RowShard, RowSpec, placement
from distw2v.distributed.server import start_server

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


@pytest.mark.parametrize("half", [False, True])
def test_pulls_and_pushes_match_whole_matrices(shards, half: bool) -> None:
    addresses, services = shards
    group = specs()
    whole = reference()
    rng = np.random.default_rng(0)
    with RowClient(addresses, placement(group[0]), DIM, half=half) as client:
        client.configure(group)
        for step in range(6):
            # a few rows (indices), then nearly all of them (a bitmap), then none
            count = (5, 480, 0, 40, 499, 1)[step]
            ids0 = rng.choice(VOCAB, count, replace=False)
            ids1 = rng.choice(VOCAB, max(count // 2, 1), replace=False)
            route = client.route(ids0, ids1)
            pulled = client.pull_rows(route)
            want0, want1 = whole.pull(ids0, ids1)
            tolerance = 1e-3 if half else 0
            np.testing.assert_allclose(pulled.rows0, want0, atol=tolerance)
            np.testing.assert_allclose(pulled.rows1, want1, atol=tolerance)
            delta0 = rng.normal(0, 0.01, (len(ids0), DIM)).astype(np.float32)
            delta1 = rng.normal(0, 0.01, (len(ids1), DIM)).astype(np.float32)
            # a push sends only the rows a chunk changed: Route.only
            changed0, changed1 = rng.random(len(ids0)) < 0.7, rng.random(len(ids1)) < 0.7
            words = client.wait_push(client.push_rows_async(
                route.only(changed0, changed1), delta0, delta1, 100))
            assert words == 100 * (step + 1)  # shard 0 keeps the count
            if half:  # what the wire carried
                delta0 = delta0.astype(np.float16).astype(np.float32)
                delta1 = delta1.astype(np.float16).astype(np.float32)
            whole.push(ids0[changed0], delta0[changed0], ids1[changed1], delta1[changed1], 100)
        assert client.row_bytes["indices"] > 0 and client.row_bytes["bitmap"] > 0
        every = whole.pull(np.arange(VOCAB), np.arange(0))[0]  # in id order
        np.testing.assert_allclose(client.pull(0, VOCAB), every, atol=1e-6)
        np.testing.assert_allclose(client.pull(100, 137), every[100:137], atol=1e-6)
    # every shard held only its own rows
    for k, service in enumerate(services):
        assert service.rows.spec.shard == k and len(service.rows.ids) == placement(
            group[0]).rows(k)


def test_checkpoint_and_load_through_grpc(shards, tmp_path) -> None:
    addresses, _ = shards
    group = specs(optimizer="adagrad")
    with RowClient(addresses, placement(group[0]), DIM) as client:
        client.configure(group)
        ids = np.arange(0, VOCAB, 7)
        delta = np.full((len(ids), DIM), 0.5, dtype=np.float32)
        client.wait_push(client.push_rows_async(client.route(ids, ids), delta, delta, 42))
        before = client.pull(0, VOCAB)
        client.checkpoint(str(tmp_path / "epoch-1"))
        client.configure(group)  # fresh rows
        assert not np.allclose(client.pull(0, VOCAB), before)
        client.load(str(tmp_path / "epoch-1"), group, global_words=1000)
        np.testing.assert_array_equal(client.pull(0, VOCAB), before)
        stats = client.stats()
        assert stats[0]["global_words"] == 1000 and stats[1]["global_words"] == 0
        assert all(s["configured"] and s["rows"] > 0 for s in stats)

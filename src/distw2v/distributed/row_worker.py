"""Training one encoded partition with the rows strategy (one Spark task): chunk by chunk,
plan the chunk (its negatives drawn up front, so the rows it touches are known: kernels.rows),
pull those rows from the row shards, train them with the local kernel, and push the deltas of
the rows that changed. A chunk's push stays in flight while the next chunk is pulled and
trained, as the column worker keeps one update in flight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import Distw2vError
from ..kernels import mix_seed
from ..kernels.rows import chunk_deltas, plan_chunk, train_chunk_rows
from ..vocab import negative_table
from .client import PSClient
from .row_client import PushHandle, RowClient
from .rows import Placement
from .shard import read_counts
from .worker import WorkerSettings, WorkerStats, chunk_order

_NEGATIVES: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # per process: tasks share it


def _negatives(counts_uri: str) -> tuple[np.ndarray, np.ndarray]:
    if counts_uri not in _NEGATIVES:
        _NEGATIVES.clear()
        _NEGATIVES[counts_uri] = negative_table(read_counts(counts_uri))
    return _NEGATIVES[counts_uri]


@dataclass(frozen=True)
class RowsTrainer:
    """How a task of the rows strategy trains: RowClient, train_partition_rows. Pickled
    into every Spark task."""

    placement: Placement
    dim: int
    model: str
    negative: int
    counts_uri: str  # the run's word counts: the negative-sampling table
    half: bool = False
    candidates: int = 0  # see plan_chunk

    def client(self, addresses: list[str], secret: str | None) -> PSClient:
        return RowClient(addresses, self.placement, self.dim, half=self.half, secret=secret)

    def train(self, ids: np.ndarray, offsets: np.ndarray, keep: np.ndarray, client: PSClient,
              settings: WorkerSettings, stream: int) -> WorkerStats:
        assert isinstance(client, RowClient)
        return train_partition_rows(ids, offsets, keep, _negatives(self.counts_uri), client,
                                    settings, stream, model=self.model,
                                    negative=self.negative, candidates=self.candidates)


def train_partition_rows(
    ids: np.ndarray, offsets: np.ndarray, keep: np.ndarray, negatives: tuple[np.ndarray,
                                                                             np.ndarray],
    client: RowClient, settings: WorkerSettings, stream: int, *, model: str, negative: int,
    candidates: int = 0,
) -> WorkerStats:
    """Train on every sentence of one encoded partition; `stream` keeps seeds distinct."""
    stats = WorkerStats()
    neg_prob, neg_alias = negatives
    in_flight: PushHandle | None = None
    for c, s_lo, s_hi in chunk_order(offsets, settings, stream):
        seed = int(mix_seed(np.uint64(settings.seed), np.uint64(stream), np.uint64(c)))
        plan = plan_chunk(ids, offsets, s_lo, s_hi, neg_prob, neg_alias, negative, seed,
                          candidates)
        route = client.route(plan.rows[plan.inputs], plan.rows)
        pulled = client.pull_rows(route)
        syn0 = np.empty_like(pulled.rows1)  # only the chunk's words' input rows are used
        syn0[plan.inputs] = pulled.rows0
        syn1 = pulled.rows1.copy()
        words, pairs = train_chunk_rows(
            plan, syn0, syn1, keep[plan.rows], model=model, window=settings.window,
            negative=negative, alpha0=settings.start_alpha, alpha_min=settings.min_alpha,
            words_before=pulled.global_words, total_words=settings.total_words, state=seed)
        delta0, changed0, changed1, finite = chunk_deltas(syn0, syn1, plan.inputs,
                                                          pulled.rows0, pulled.rows1)
        delta1 = syn1  # chunk_deltas turned it into its deltas
        if not finite:
            raise Distw2vError("training diverged (a row overflowed); lower --alpha.")
        changed = route.only(changed0, changed1)  # read-only rows stay
        if in_flight is not None:
            client.wait_push(in_flight)
        in_flight = client.push_rows_async(changed, delta0, delta1, words)
        stats.words += words
        stats.pairs += pairs
        stats.batches += 1
    if in_flight is not None:
        client.wait_push(in_flight)
    stats.bytes_sent, stats.bytes_received = client.bytes_sent, client.bytes_received
    stats.index_bytes = client.row_bytes["indices"]
    stats.bitmap_bytes = client.row_bytes["bitmap"]
    return stats

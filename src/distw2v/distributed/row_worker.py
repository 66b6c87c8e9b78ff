"""Training one encoded partition with the rows strategy (one Spark task): chunk by chunk,
plan the chunk (its negatives drawn up front, so the rows it touches are known: kernels.rows),
pull those rows from the row shards, train them with the local kernel, and push their deltas
(every touched row changes: measured on English, all but 0.06%). A chunk's push rides with
the next chunk's pull, one call a chunk (RowClient.step), as the column worker's round 2
rides with the next batch's round 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import Distw2vError
from ..kernels import mix_seed
from ..kernels.rows import plan_chunk, train_chunk_rows
from ..vocab import negative_table
from .client import PSClient
from .row_client import RowClient, Trained
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
    trained: Trained | None = None  # the last chunk, its deltas not yet pushed
    for c, s_lo, s_hi in chunk_order(offsets, settings, stream):
        seed = int(mix_seed(np.uint64(settings.seed), np.uint64(stream), np.uint64(c)))
        plan = plan_chunk(ids, offsets, s_lo, s_hi, neg_prob, neg_alias, negative, seed,
                          candidates, sort_key=client.placement.sort_key)
        layout = client.layout(plan.rows, plan.n_inputs)
        syn0 = np.empty((plan.n_inputs, client.dim), dtype=np.float32)
        syn1 = np.empty((len(plan.rows), client.dim), dtype=np.float32)
        pulled = client.step(trained, layout, syn0, syn1)
        words, pairs, loss = train_chunk_rows(
            plan, syn0, syn1, keep[plan.rows], model=model, window=settings.window,
            negative=negative, alpha0=settings.start_alpha, alpha_min=settings.min_alpha,
            words_before=pulled.global_words, total_words=settings.total_words, state=seed)
        if not pulled.subtract():  # syn0 and syn1 are the deltas now
            raise Distw2vError("training diverged (a row overflowed); lower --alpha.")
        trained = Trained(layout, syn0, syn1, words, loss, pairs)
        stats.words += words
        stats.pairs += pairs
        stats.batches += 1
    if trained is not None:
        client.step(trained)
    stats.bytes_sent, stats.bytes_received = client.bytes_sent, client.bytes_received
    stats.index_bytes = client.row_bytes["indices"]
    stats.bitmap_bytes = client.row_bytes["bitmap"]
    return stats

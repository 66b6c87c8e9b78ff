"""Training one encoded partition against the parameter-server shards (one Spark task).

Windows are made locally (subsampling, dynamic window: `kernels.columns.make_windows`) and cut
into batches of about `batch_pairs` pairs. For each batch: round 1 gets the summed dot
products and the global word count, which sets the learning rate; round 2 sends the summed
dots back, under the batch's key, with the next batch's round 1: one call a batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import Distw2vError
from ..kernels import mix_seed
from ..kernels.columns import make_windows
from ..kernels.local import learning_rate
from .client import PSClient
from .shard import Batch, Finish


@dataclass(frozen=True, kw_only=True)
class WorkerSettings:
    window: int
    start_alpha: float
    min_alpha: float
    total_words: int  # corpus words over all epochs: the learning-rate schedule's length
    batch_pairs: int
    chunk_words: int
    seed: int


@dataclass
class WorkerStats:
    words: int = 0
    pairs: int = 0
    batches: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    index_bytes: int = 0  # rows strategy: bytes that named rows by index ...
    bitmap_bytes: int = 0  # ... and by bitmap (rowcodec)


def batches_of(centers: np.ndarray, ctx_offsets: np.ndarray, contexts: np.ndarray,
               words_at: np.ndarray, batch_pairs: int,
               ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, int]]:
    """Split a chunk's windows into runs of whole centres with about batch_pairs pairs."""
    cuts = np.searchsorted(ctx_offsets, np.arange(batch_pairs, ctx_offsets[-1], batch_pairs))
    bounds = np.unique(np.concatenate([[0], cuts, [len(centers)]]))
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        offsets = ctx_offsets[lo:hi + 1]
        yield (centers[lo:hi], offsets - offsets[0], contexts[offsets[0]:offsets[-1]],
               int(words_at[hi - 1]))


def chunk_order(offsets: np.ndarray, settings: WorkerSettings,
                stream: int) -> Iterator[tuple[int, int, int]]:
    """A partition's chunks of about chunk_words words as (chunk, first sentence, end), in a
    new seeded order every epoch, as the local trainer's schedule: corpora are often
    concatenations of sources, and the same file order every epoch costs quality."""
    n_sentences = len(offsets) - 1
    cuts = np.searchsorted(offsets, np.arange(settings.chunk_words, offsets[-1],
                                              settings.chunk_words))
    bounds = np.unique(np.concatenate([[0], cuts, [n_sentences]])).tolist()
    chunks = list(zip(bounds[:-1], bounds[1:]))
    for c in np.random.default_rng([settings.seed, stream]).permutation(len(chunks)).tolist():
        yield c, chunks[c][0], chunks[c][1]


def train_partition(
    ids: np.ndarray, offsets: np.ndarray, keep: np.ndarray, client: PSClient,
    settings: WorkerSettings, stream: int,
) -> WorkerStats:
    """Train on every sentence of one encoded partition; `stream` keeps seeds distinct."""
    stats = WorkerStats()
    finish: Finish | None = None  # the last batch's round 2, sent with the next round 1
    unreported = 0  # words read but not yet added to the shards' count (it sets the rate)
    for c, s_lo, s_hi in chunk_order(offsets, settings, stream):
        state = np.uint64(mix_seed(np.uint64(settings.seed), np.uint64(stream), np.uint64(c)))
        centers, ctx_offsets, contexts, words_at = make_windows(
            ids, offsets, s_lo, s_hi, keep, settings.window, state)
        reported = 0  # of this chunk's words
        for b, (cen, off, ctx, words) in enumerate(
                batches_of(centers, ctx_offsets, contexts, words_at, settings.batch_pairs)):
            seed = int(mix_seed(np.uint64(settings.seed), np.uint64(stream),
                                np.uint64((c << 24) + b + 1)))
            batch = Batch(centers=cen, ctx_offsets=off, contexts=ctx, seed=seed)
            dots, global_words = client.dot(batch, unreported + words - reported, finish)
            unreported, reported = 0, words
            if not np.isfinite(dots).all():
                raise Distw2vError("training diverged (dot products overflowed); lower "
                                   "--batch-pairs or --alpha.")
            alpha = learning_rate(settings.start_alpha, settings.min_alpha, global_words,
                                  settings.total_words)
            finish = (batch.key, dots, alpha)
            stats.pairs += batch.pairs
            stats.batches += 1
        chunk_words = int(offsets[s_hi] - offsets[s_lo])
        stats.words += chunk_words
        unreported += chunk_words - reported  # the chunk's last sentences after its last centre
    if finish is not None or unreported:  # the last round 2 and the last words
        client.dot(Batch(centers=np.empty(0, np.int32), ctx_offsets=np.zeros(1, np.int64),
                         contexts=np.empty(0, np.int32), seed=0), unreported, finish)
    stats.bytes_sent, stats.bytes_received = client.bytes_sent, client.bytes_received
    return stats


class ColumnsTrainer:
    """How a task of the columns strategy trains: PSClient, train_partition (see
    row_worker.RowsTrainer for the other strategy). Pickled into every Spark task."""

    def client(self, addresses: list[str], secret: str | None) -> PSClient:
        return PSClient(addresses, secret=secret)

    def train(self, ids: np.ndarray, offsets: np.ndarray, keep: np.ndarray, client: PSClient,
              settings: WorkerSettings, stream: int) -> WorkerStats:
        return train_partition(ids, offsets, keep, client, settings, stream)

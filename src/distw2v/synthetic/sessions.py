"""A corpus of item-id sessions drawn from planted clusters (ad and product sessions, the use
case of Ordentlich et al.), scored by the neighbour purity of `evaluate.evaluate_purity`.

Items "i0" ... are dealt at random into `clusters` clusters of equal size (to within one).
Each session, one a line, draws a cluster (Zipf over clusters, so popularity is skewed), a
length of 3-20 items, then its items, each with Zipf popularity within its cluster: the
session's cluster for 30% of them, and for the other 70% (noise) a cluster drawn afresh by
the same popularity. The labels file beside the corpus has every item and its cluster,
"i17<TAB>3" a line, in id order.

The noise share is what keeps the task from saturating: with the defaults, 5 epochs of
gensim skip-gram (d=100, window 5) reach a purity@10 of 0.996 at 50% noise, 0.92 at 65%,
0.79 at 70% and 0.27 at 80% (chance is about 0.02). Item popularity hardly matters (a Zipf
exponent of 1.5 at 30% noise: 0.997), so a trainer that is a little worse shows here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import atomic_texts, beside
from .zipf import zipf_cdf

LENGTHS = (3, 20)  # shortest and longest session
NOISE = 0.7  # share of items from a freshly drawn cluster (see above)
CLUSTER_EXPONENT = 1.0
ITEM_EXPONENT = 1.0
BLOCK_SESSIONS = 1 << 13


@dataclass(frozen=True)
class SessionCorpus:
    """What `write_session_corpus` wrote."""

    path: str
    labels: str
    sessions: int
    tokens: int
    items: int
    clusters: int
    seed: int


def _check(sessions: int, items: int, clusters: int, seed: int) -> None:
    if sessions < 1:
        raise ValueError(f"sessions must be at least 1, not {sessions}.")
    if clusters < 2:
        raise ValueError(f"clusters must be at least 2, not {clusters}.")
    if items < clusters:
        raise ValueError(f"items ({items:,}) must be at least clusters ({clusters:,}), so "
                         "that no cluster is empty.")
    if seed < 0:
        raise ValueError(f"seed must not be negative, not {seed}.")


def write_session_corpus(
    path: str | Path,
    *,
    sessions: int = 100_000,
    items: int = 5_000,
    clusters: int = 50,
    seed: int = 0,
) -> SessionCorpus:
    """Write `sessions` lines of item ids to `path` and the labels at `<stem>.labels.tsv`."""
    _check(sessions, items, clusters, seed)
    path = Path(path)
    labels = beside(path, ".labels.tsv")
    rng = np.random.default_rng([seed, 0])
    # Item perm[r * clusters + c] is the item of popularity rank r in cluster c, so the
    # first items % clusters clusters hold one item more than the others.
    perm = rng.permutation(items)
    big, size = items % clusters, items // clusters
    cluster_cdf = zipf_cdf(clusters, CLUSTER_EXPONENT)
    rank_cdfs = (zipf_cdf(size + 1, ITEM_EXPONENT), zipf_cdf(size, ITEM_EXPONENT))
    names = [f"i{i}" for i in range(items)]
    tokens = 0
    with atomic_texts(path, labels) as (out, label_out):
        for lo in range(0, sessions, BLOCK_SESSIONS):
            b = min(BLOCK_SESSIONS, sessions - lo)
            lengths = rng.integers(LENGTHS[0], LENGTHS[1] + 1, b)
            home = np.searchsorted(cluster_cdf, rng.random(b), side="right")
            cluster = np.repeat(np.minimum(home, clusters - 1), lengths)
            noise = np.flatnonzero(rng.random(len(cluster)) < NOISE)
            cluster[noise] = np.minimum(
                np.searchsorted(cluster_cdf, rng.random(len(noise)), side="right"), clusters - 1)
            u = rng.random(len(cluster))
            rank = np.where(cluster < big,
                            np.minimum(np.searchsorted(rank_cdfs[0], u, side="right"), size),
                            np.minimum(np.searchsorted(rank_cdfs[1], u, side="right"), size - 1))
            ids = perm[rank * clusters + cluster].tolist()
            ends = np.cumsum(lengths).tolist()
            starts = [0, *ends[:-1]]
            out.write("".join(" ".join([names[i] for i in ids[s:e]]) + "\n"
                              for s, e in zip(starts, ends, strict=True)))
            tokens += int(lengths.sum())
        cluster_of = np.empty(items, dtype=np.int64)
        cluster_of[perm] = np.arange(items) % clusters
        label_out.writelines(f"{names[i]}\t{c}\n" for i, c in enumerate(cluster_of.tolist()))
    return SessionCorpus(path=str(path), labels=str(labels), sessions=sessions, tokens=tokens,
                         items=items, clusters=clusters, seed=seed)

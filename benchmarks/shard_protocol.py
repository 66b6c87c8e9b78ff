"""The column protocol's staleness correction, measured without Spark or the network.

A deterministic simulation of what the Spark engine does: S shards hold column slices of both
matrices; C clients take turns, each making windows with `make_windows`, cutting them into
batches of about --batch-pairs pairs, asking every shard for round 1 (`partial_dots`) and
sending round 2 (`apply_updates`) one batch late, after its next batch's round 1, as
`distributed.worker` pipelines them (its chunks in file order; the worker now shuffles them
every epoch). Only the extrapolation factor by which a shard scales
the change in its own partial dot products varies:

* rule: `kernels.columns.extrapolation` (what the shards use: max(1, S/2) for skip-gram);
* full: S, the unbiased factor if every shard changed alike;
* one:  1, only this shard's own change.

    python benchmarks/shard_protocol.py                       # english + planted, S = 1 2 4 8
    python benchmarks/shard_protocol.py --corpora planted --shards 4 --factors rule one
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from common import evaluate  # benchmarks/ is on sys.path

from distw2v.config import VocabConfig
from distw2v.distributed.worker import batches_of
from distw2v.evaluate import evaluate_analogies
from distw2v.kernels import mix_seed
from distw2v.kernels.columns import (
    apply_updates,
    draw_batch_negatives,
    extrapolation,
    make_windows,
    partial_dots,
)
from distw2v.pipeline import build_vocab, encode
from distw2v.synthetic import write_planted_corpus
from distw2v.training import initial_vectors
from distw2v.vectors import Vectors

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
DIM, WINDOW, NEGATIVE, ALPHA, MIN_ALPHA = 100, 5, 5, 0.025, 0.0001
CHUNK_SENTENCES = 2000


def factor_of(name: str, shards: int) -> float:
    return {"rule": extrapolation("skipgram", shards), "full": float(shards), "one": 1.0}[name]


def client_batches(ids, offsets, keep, client: int, clients: int, epoch: int, seed: int,
                   batch_pairs: int):  # type: ignore[no-untyped-def]
    """This client's share of the sentences as batches (centres, offsets, contexts, words)."""
    n = len(offsets) - 1
    lo, hi = client * n // clients, (client + 1) * n // clients
    for c0 in range(lo, hi, CHUNK_SENTENCES):
        c1 = min(hi, c0 + CHUNK_SENTENCES)
        state = mix_seed(np.uint64(seed), np.uint64(epoch * clients + client), np.uint64(c0))
        windows = make_windows(ids, offsets, c0, c1, keep, WINDOW, np.uint64(state))
        batches = list(batches_of(*windows, batch_pairs))
        words = int(offsets[c1] - offsets[c0])  # counted once the chunk's last batch is done
        for b, (cen, off, ctx, _) in enumerate(batches):
            yield cen, off, ctx, words if b == len(batches) - 1 else 0


def simulate(ids, offsets, vocab, shards: int, factor: float, clients: int, epochs: int,
             seed: int, batch_pairs: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Train with the protocol; return the input vectors reassembled from the shards."""
    keep = vocab.keep_probabilities(1e-3)
    prob, alias = vocab.negative_table()
    syn0, syn1 = initial_vectors(len(vocab), DIM, seed)
    cuts = np.linspace(0, DIM, shards + 1).astype(int)
    slices = [(syn0[:, a:b].copy(), syn1[:, a:b].copy()) for a, b in zip(cuts, cuts[1:])]
    total, done, batch_seed = (len(ids)) * epochs, 0, 0
    for epoch in range(epochs):
        streams = [client_batches(ids, offsets, keep, c, clients, epoch, seed, batch_pairs)
                   for c in range(clients)]
        pending: list[tuple | None] = [None] * clients
        live = list(range(clients))
        while live:
            for c in list(live):
                batch = next(streams[c], None)
                if pending[c] is not None:  # round 2 of the last batch, after this round 1
                    (cen, off, ctx), neg, dots, partials, alpha = pending[c]
                    for (s0, s1), partial in zip(slices, partials):
                        apply_updates(s0, s1, cen, off, ctx, neg, dots, partial, alpha, factor)
                    pending[c] = None
                if batch is None:
                    live.remove(c)
                    continue
                cen, off, ctx, words = batch
                batch_seed += 1
                neg = draw_batch_negatives(len(cen), NEGATIVE, prob, alias,
                                           np.uint64(mix_seed(np.uint64(seed), np.uint64(7),
                                                              np.uint64(batch_seed))))
                partials = [partial_dots(s0, s1, cen, off, ctx, neg) for s0, s1 in slices]
                alpha = max(ALPHA - (ALPHA - MIN_ALPHA) * done / total, MIN_ALPHA)
                done += words
                pending[c] = ((cen, off, ctx), neg, np.sum(partials, axis=0), partials, alpha)
    return np.concatenate([s0 for s0, _ in slices], axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", nargs="+", default=["english", "planted"],
                        choices=["english", "planted"])
    parser.add_argument("--shards", nargs="+", type=int, default=[1, 2, 4, 8])
    parser.add_argument("--factors", nargs="+", default=["rule", "full"],
                        choices=["rule", "full", "one"])
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-pairs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--work", default=str(ROOT / "build" / "shard-protocol"))
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" /
                                              "shard_protocol.json"))
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.corpora:
        if name == "english":
            source, analogies = str(SHARED / "english.txt.gz"), None
        else:
            planted = write_planted_corpus(work / "planted.txt", seed=0)
            source, analogies = planted.path, planted.analogies
        vocab, _ = build_vocab([source], VocabConfig(min_count=5))
        encoded, _ = encode([source], vocab, work / f"{name}-encoded-{time.time_ns()}")
        ids, offsets = encoded.load_shard(0) if len(encoded.shards) == 1 else \
            _concatenated(encoded)
        for shards in args.shards:
            tried: set[float] = set()
            for factor_name in args.factors:
                factor = factor_of(factor_name, shards)
                if factor in tried:  # e.g. rule = one at 2 shards
                    continue
                tried.add(factor)
                start = time.perf_counter()
                try:
                    matrix = simulate(ids, offsets, vocab, shards, factor, args.clients,
                                      args.epochs, args.seed, args.batch_pairs)
                except ZeroDivisionError:  # the kernel's arithmetic on rows that overflowed
                    matrix = np.full((len(vocab), DIM), np.inf, dtype=np.float32)
                with np.errstate(over="ignore", invalid="ignore"):
                    norm = float(np.linalg.norm(matrix[:10], axis=1).mean())
                row = {"corpus": name, "shards": shards, "factor": factor_name,
                       "value": factor, "seconds": round(time.perf_counter() - start, 1),
                       "top10_norm": norm}
                if np.isfinite(matrix).all():
                    if analogies:
                        row["planted"] = evaluate_analogies(Vectors(vocab.words, matrix),
                                                            analogies).accuracy
                    else:
                        row.update(evaluate(vocab.words, matrix, SHARED / "eval"))
                rows.append(row)
                figures = "  ".join(f"{k} {row[k]:.3f}" for k in
                                    ("planted", "wordsim353", "simlex999", "analogy") if k in row)
                print(f"{name:8} S={shards} factor {factor_name:4} ({factor:g}): "
                      f"{figures or 'diverged'}  |row| of top 10 words {row['top10_norm']:.1f}",
                      flush=True)
                Path(args.json).parent.mkdir(parents=True, exist_ok=True)
                Path(args.json).write_text(json.dumps({"settings": vars(args), "rows": rows},
                                                      indent=2) + "\n")
    print(f"written to {args.json}")


def _concatenated(encoded) -> tuple[np.ndarray, np.ndarray]:  # type: ignore[no-untyped-def]
    parts = [encoded.load_shard(i) for i in range(len(encoded.shards))]
    ids = np.concatenate([p[0] for p in parts])
    lengths = np.concatenate([np.diff(p[1]) for p in parts])
    return ids, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


if __name__ == "__main__":
    main()

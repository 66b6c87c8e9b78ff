"""The local trainer: `workers` threads run the numba kernels over an encoded corpus, hogwild.

Work is cut into chunks of about `batch_words` corpus words, visited in a fresh seeded order
every epoch: real corpora are ordered (by source, by date), and walking them in file order
lets the last stretch of each epoch pull the vectors its way (on the benchmarks' English corpus,
a concatenation of sources, shuffling raised CBOW WordSim353 by 0.02). Each task knows its
place in the run, so its learning rate and its random seed are fixed in advance; with one
worker the result is therefore bit-identical from run to run.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .checkpoints import RunCheckpoints, load_arrays, save_arrays
from .config import TrainConfig
from .encode import EncodedCorpus
from .kernels import cbow_chunk, mix_seed, skipgram_chunk
from .kernels.local import learning_rate
from .vocab import Vocabulary


@dataclass(frozen=True)
class Chunk:
    shard: int
    s_lo: int
    s_hi: int
    words: int  # corpus words in this chunk


@dataclass(frozen=True)
class Task:
    epoch: int
    index: int  # of the chunk in plan_chunks order; with the epoch it seeds the generator
    chunk: Chunk
    words_before: int  # corpus words trained before this task in the whole run


@dataclass(frozen=True)
class Progress:
    words_done: int
    total_words: int
    epoch: int  # 1-based epoch of the most recent chunk
    alpha: float
    loss: float | None = None  # mean SGNS loss a pair so far in that epoch


@dataclass(frozen=True)
class TrainResult:
    syn0: np.ndarray
    syn1: np.ndarray
    words: int  # corpus words processed over all epochs of this attempt (before subsampling)
    pairs: int
    seconds: float
    epoch_loss: dict[int, float]  # 1-based epoch trained in this attempt -> mean loss a pair


def plan_chunks(corpus: EncodedCorpus, batch_words: int) -> list[Chunk]:
    chunks: list[Chunk] = []
    for i in range(len(corpus.shards)):
        _, offsets = corpus.load_shard(i)
        # sentence boundaries nearest to every multiple of batch_words
        cuts = np.searchsorted(offsets, np.arange(batch_words, offsets[-1], batch_words))
        bounds = np.unique(np.concatenate([[0], cuts, [len(offsets) - 1]]))
        for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
            chunks.append(Chunk(i, lo, hi, int(offsets[hi] - offsets[lo])))
    return chunks


def schedule(chunks: list[Chunk], epochs: int, seed: int) -> list[Task]:
    """Every chunk once per epoch, in a seeded random order per epoch."""
    tasks = []
    before = 0
    for epoch in range(epochs):
        for index in np.random.default_rng([seed, epoch]).permutation(len(chunks)).tolist():
            tasks.append(Task(epoch, index, chunks[index], before))
            before += chunks[index].words
    return tasks


def initial_inputs(rng: np.random.Generator, rows: int, columns: int, dim: int) -> np.ndarray:
    """word2vec's start for input vectors (its one home): uniform in (-0.5/dim, 0.5/dim),
    float32, drawn from `rng`. `columns` may be a slice of the `dim`: a parameter-server
    shard draws its own columns from its own generator (`ParameterShard.configure`)."""
    syn0 = rng.random((rows, columns), dtype=np.float32)
    syn0 -= np.float32(0.5)
    syn0 /= np.float32(dim)
    return syn0


def initial_vectors(vocab_size: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The local trainer's start: `initial_inputs` seeded by `seed`, outputs zero."""
    syn0 = initial_inputs(np.random.default_rng(seed), vocab_size, dim, dim)
    return syn0, np.zeros((vocab_size, dim), dtype=np.float32)


def train(
    corpus: EncodedCorpus,
    vocab: Vocabulary,
    config: TrainConfig,
    on_progress: Callable[[Progress], None] | None = None,
    report_every: float = 0.25,
    checkpoints: RunCheckpoints | None = None,
    init: tuple[np.ndarray, np.ndarray] | None = None,
) -> TrainResult:
    """Train input and output vectors on `corpus`; `on_progress` is called from this thread.

    With `checkpoints` the vectors are saved after every epoch, and a run that finds saved
    epochs starts after the last of them; since every task's seed and learning rate are fixed
    in advance, a resumed one-worker run ends bit-identical to an uninterrupted one.
    `init` (input and output matrices, trained in place) replaces the initial vectors: a
    continued run's (continued.start_matrices)."""
    corpus.check_matches(vocab)
    first = min(checkpoints.epochs_done(), config.epochs) if checkpoints else 0
    if checkpoints and first:
        syn0, syn1 = load_arrays(checkpoints.epoch_uri(first), ("syn0", "syn1"),
                                 (len(vocab), config.dim))
    elif init is not None:
        syn0, syn1 = init
    else:
        syn0, syn1 = initial_vectors(len(vocab), config.dim, config.seed)
    keep = vocab.keep_probabilities(config.sample)
    neg_prob, neg_alias = vocab.negative_table()
    shards = [corpus.load_shard(i) for i in range(len(corpus.shards))]
    kernel = skipgram_chunk if config.model == "skipgram" else cbow_chunk
    total_words = corpus.words * config.epochs
    skipped = corpus.words * first  # trained by an earlier attempt
    tasks = [t for t in schedule(plan_chunks(corpus, config.batch_words), config.epochs,
                                 config.seed) if t.epoch >= first]
    # Checkpoints need every epoch finished before the next starts; otherwise the threads
    # run on across epoch boundaries.
    stages = [[t for t in tasks if t.epoch == e] for e in range(first, config.epochs)] \
        if checkpoints else [tasks]

    lock = threading.Lock()
    queue: list[Task] = []
    next_task = 0
    done = {"words": 0, "pairs": 0, "epoch": first + 1}
    losses: dict[int, list[float]] = {}  # epoch -> [summed loss, pairs]
    errors: list[BaseException] = []

    def worker() -> None:
        nonlocal next_task
        while True:
            with lock:
                if next_task >= len(queue) or errors:
                    return
                task = queue[next_task]
                next_task += 1
            chunk = task.chunk
            ids, offsets = shards[chunk.shard]
            state = mix_seed(np.uint64(config.seed), np.uint64(task.epoch), np.uint64(task.index))
            try:
                words, pairs, loss = kernel(
                    ids, offsets, chunk.s_lo, chunk.s_hi, syn0, syn1, keep, neg_prob, neg_alias,
                    config.window, config.negative, config.start_alpha, config.min_alpha,
                    task.words_before, total_words, np.uint64(state),
                )
            except BaseException as exc:  # surfaced in the calling thread
                with lock:
                    errors.append(exc)
                return
            with lock:
                done["words"] += words
                done["pairs"] += pairs
                done["epoch"] = max(done["epoch"], task.epoch + 1)
                tally = losses.setdefault(task.epoch + 1, [0.0, 0])
                tally[0] += loss
                tally[1] += pairs

    def snapshot() -> Progress:
        with lock:
            words, epoch = skipped + done["words"], done["epoch"]
            loss, pairs = losses.get(epoch, (0.0, 0))
        alpha = learning_rate(config.start_alpha, config.min_alpha, words, total_words)
        return Progress(words, total_words, epoch, alpha, loss / pairs if pairs else None)

    start = time.perf_counter()
    for stage in stages:
        queue, next_task = stage, 0
        threads = [threading.Thread(target=worker, daemon=True) for _ in range(config.workers)]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(report_every)
                if on_progress is not None:
                    on_progress(snapshot())
        if errors:
            raise errors[0]
        if checkpoints and stage:
            epoch = stage[0].epoch + 1
            save_arrays(checkpoints.epoch_uri(epoch), {"syn0": syn0, "syn1": syn1})
            checkpoints.saved(epoch)
    if on_progress is not None:
        on_progress(snapshot())
    return TrainResult(syn0, syn1, done["words"], done["pairs"], time.perf_counter() - start,
                       {e: loss / pairs for e, (loss, pairs) in sorted(losses.items()) if pairs})

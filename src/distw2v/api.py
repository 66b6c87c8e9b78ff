"""Training from Python: `distw2v.train(corpus, ...)` and a Spark-ML-style `Word2Vec`.

    import distw2v
    vectors = distw2v.train(["corpus.txt.gz"], train=distw2v.TrainConfig(dim=100))
    vectors = distw2v.train([["a", "rose", "is", "a", "rose"], ...])      # as gensim's sentences
    vectors = distw2v.train("s3://bucket/text/", engine=distw2v.Spark(master="spark://h:7077"),
                            out="model/")
    vectors.most_similar("rose")
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, cast

from .config import RunConfig, TrainConfig, VocabConfig
from .engines import Corpus, Engine, Local
from .errors import Distw2vError
from .pipeline import Sentences
from .progress import OnProgress
from .vectors import Vectors


def _corpus(corpus: str | Path | Iterable[Any]) -> Corpus:
    if isinstance(corpus, (str, Path)):
        return [str(corpus)]
    if isinstance(corpus, Sequence) and corpus and all(
            isinstance(c, (str, Path)) for c in corpus):
        return [str(c) for c in corpus]
    if isinstance(corpus, Iterable):
        return Sentences(cast(Iterable[list[str]], corpus))
    raise Distw2vError("the corpus must be source URIs (paths, s3://, https://, ...) or an "
                       f"iterable of token lists, not {type(corpus).__name__}.")


def train(
    corpus: str | Path | Iterable[Any],
    *,
    vocab: VocabConfig | None = None,
    train: TrainConfig | None = None,
    engine: Engine | None = None,
    out: str | Path | None = None,
    checkpoint_dir: str | None = None,
    word2vec_out: str | Path | None = None,
    on_progress: OnProgress | None = None,
    log: Callable[[str], None] | None = None,
    ann_threshold: int | None = None,
) -> Vectors:
    """Train word vectors.

    `corpus`: source URIs (a path, directory, glob, s3://, https://, hdfs://; or a list), or
    an iterable of token lists that can be read twice (a list, or an object whose __iter__
    starts over). `engine`: `Local()` (the default) or `Spark(master=..., shards=...)`.
    `out`: a model directory to save to; None keeps the vectors in memory only. Progress
    goes to `on_progress` as `ProgressEvent`s, log lines to `log`; both default to silence.
    """
    engine = engine or Local()
    vectors, _ = engine.train(
        _corpus(corpus), Path(out) if out is not None else None, vocab or VocabConfig(),
        train or TrainConfig(),
        run_config=RunConfig(engine=engine.name, checkpoint_dir=checkpoint_dir),
        word2vec=Path(word2vec_out) if word2vec_out is not None else None,
        on_progress=on_progress, log=log or (lambda _: None), ann_threshold=ann_threshold)
    return vectors


class Word2Vec:
    """Spark ML's shape: settings first, then `fit(corpus) -> Vectors`.

    `Word2Vec(dim=100, window=5, min_count=5, engine=Spark(...)).fit(["corpus.txt"])`; any
    VocabConfig or TrainConfig setting is taken by name."""

    def __init__(self, *, engine: Engine | None = None, **settings: Any) -> None:
        vocab_names = {f.name for f in fields(VocabConfig)}
        train_names = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(settings) - vocab_names - train_names)
        if unknown:
            raise Distw2vError(f"Word2Vec has no setting {unknown[0]!r}.")
        self.vocab = VocabConfig(**{k: v for k, v in settings.items() if k in vocab_names})
        self.train = TrainConfig(**{k: v for k, v in settings.items() if k in train_names})
        self.engine = engine or Local()

    def fit(self, corpus: str | Path | Iterable[Any], *, out: str | Path | None = None,
            on_progress: OnProgress | None = None) -> Vectors:
        return train(corpus, vocab=self.vocab, train=self.train, engine=self.engine, out=out,
                     on_progress=on_progress)

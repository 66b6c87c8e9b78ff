"""Training from Python: `distw2v.train(corpus, ...)` and a Spark-ML-style `Word2Vec`.

    import distw2v
    vectors = distw2v.train(["corpus.txt.gz"], dim=100, min_count=5)
    vectors = distw2v.train([["a", "rose", "is", "a", "rose"], ...])      # as gensim's sentences
    vectors = distw2v.train("s3://bucket/text/", engine=distw2v.Spark(master="spark://h:7077"),
                            out="model/")
    vectors.most_similar("rose")
"""

from __future__ import annotations

import difflib
import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Literal, cast

from .config import EngineName, RunConfig, SparkConfig, TrainConfig, VocabConfig
from .engines import Corpus, Engine, Local, engine_named
from .errors import Distw2vError
from .gensim_names import gensim_hint
from .pipeline import Sentences
from .progress import Bars, LogLines, OnProgress, fan_out
from .vectors import Vectors

logger = logging.getLogger("distw2v")  # as gensim logs through "gensim"
_VOCAB = {f.name for f in fields(VocabConfig)}
_TRAIN = {f.name for f in fields(TrainConfig)}


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
    corpus: str | Path | Iterable[Any] | None = None,
    *,
    vocab: VocabConfig | None = None,
    train: TrainConfig | None = None,
    engine: Engine | EngineName | None = None,
    out: str | Path | None = None,
    checkpoint_dir: str | None = None,
    init: str | Path | None = None,
    keep_output: bool = False,
    word2vec_out: str | Path | None = None,
    on_progress: OnProgress | None = None,
    log: Callable[[str], None] | None = None,
    ann_threshold: int | None = None,
    progress: bool | Literal["always"] = False,
    **settings: Any,
) -> Vectors:
    """Train word vectors.

    `corpus`: source URIs (a path, directory, glob, s3://, https://, hdfs://; or a list), or
    an iterable of token lists that can be read twice (a list, or an object whose __iter__
    starts over). Every VocabConfig and TrainConfig setting is taken by name (`dim=100,
    min_count=5`); given with a `vocab=` or `train=` config as well, the named one wins.
    `engine`: `Local()` (the default), `Spark(master=..., shards=...)`, or "local"/"spark".
    `out`: a model directory to save to; None keeps the vectors in memory only.
    `init`: a model directory to continue training (saved with `keep_output=True`, which
    keeps the output matrix): its words keep their vectors and ids, new words are added.
    Progress goes to the `logging` logger "distw2v" (INFO lines, as gensim's), to
    `on_progress` as `ProgressEvent`s and, with `progress=True`, to a bar on a terminal
    ("always": anywhere); the engines' lines go to `log` instead of the logger if given.
    """
    vocab, train = _configs("train()", vocab, train, settings)
    if corpus is None:
        raise Distw2vError("train() needs a corpus, its first argument: source URIs (paths, "
                           "s3://, https://, ...) or a list of token lists.")
    engine = engine_named(engine) if isinstance(engine, str) else engine or Local()
    bars = Bars(always=progress == "always") if progress else None
    vectors, summary = engine.train(
        _corpus(corpus), Path(out) if out is not None else None, vocab, train,
        run_config=RunConfig(engine=engine.name, checkpoint_dir=checkpoint_dir,
                             init=str(init) if init is not None else None,
                             keep_output=keep_output),
        word2vec=Path(word2vec_out) if word2vec_out is not None else None,
        on_progress=fan_out(on_progress, LogLines(logger), bars), log=log or _log,
        ann_threshold=ann_threshold)
    logger.info("%s", summary.line())
    for path, what in ((out, "model"), (word2vec_out, "word2vec file")):
        if path is not None:
            logger.info("%s of %s words x %s dims written to %s", what, f"{len(vectors):,}",
                        vectors.dim, path)
    return vectors


def _log(text: str) -> None:
    """The engines' lines (those the CLI prints) as the logger's."""
    if text.startswith("warning: "):
        logger.warning("%s", text.removeprefix("warning: "))
    else:
        logger.info("%s", text)


# train()'s settings that are not a config's: Word2Vec keeps them for fit()
RUN_SETTINGS = frozenset(name for name, p in inspect.signature(train).parameters.items()
                         if p.kind is p.KEYWORD_ONLY and name not in ("vocab", "train"))


def _configs(where: str, vocab: VocabConfig | None, train: TrainConfig | None,
             settings: dict[str, Any]) -> tuple[VocabConfig, TrainConfig]:
    """The configs with the settings given by name put in; those win over the configs'.
    replace() validates them as the CLI's flags are validated (one sentence)."""
    for given, cls, name in ((vocab, VocabConfig, "vocab"), (train, TrainConfig, "train")):
        if given is not None and not isinstance(given, cls):
            raise Distw2vError(f"{where}'s {name}= must be a {cls.__name__}, not "
                               f"{type(given).__name__}; or give its settings by name.")
    for name, value in settings.items():
        if name not in _VOCAB | _TRAIN:
            raise Distw2vError(_unknown(where, name, value))
    return (replace(vocab or VocabConfig(), **{k: v for k, v in settings.items() if k in _VOCAB}),
            replace(train or TrainConfig(), **{k: v for k, v in settings.items() if k in _TRAIN}))


def _unknown(where: str, name: str, value: Any) -> str:
    """One sentence for a setting that does not exist: gensim's name for one that does, a
    spark engine's setting, or a near miss."""
    start = f"{where} has no setting {name!r}"
    hint = gensim_hint(name, value)
    if hint:
        return f"{start}: {hint}."
    if name in {f.name for f in fields(SparkConfig)}:
        return f"{start}: it is a setting of the spark engine, engine=Spark({name}=...)."
    guess = difflib.get_close_matches(name, sorted(_VOCAB | _TRAIN | RUN_SETTINGS), 1)
    if guess:
        return f"{start}; did you mean {guess[0]!r}?"
    return f"{start}; see help(distw2v.VocabConfig) and help(distw2v.TrainConfig)."


class Word2Vec:
    """Spark ML's shape: settings first, then `fit(corpus) -> Vectors`.

    `Word2Vec(dim=100, window=5, min_count=5, engine=Spark(...)).fit(["corpus.txt"])`; takes
    every setting that `train()` takes by name, and keeps them for `fit`."""

    def __init__(self, *, vocab: VocabConfig | None = None, train: TrainConfig | None = None,
                 **settings: Any) -> None:
        self.run = {k: v for k, v in settings.items() if k in RUN_SETTINGS}
        self.vocab, self.train = _configs(
            "Word2Vec()", vocab, train,
            {k: v for k, v in settings.items() if k not in RUN_SETTINGS})

    def fit(self, corpus: str | Path | Iterable[Any] | None = None,
            **settings: Any) -> Vectors:
        """Train on `corpus`; `settings` (out=, on_progress=, ...) add to the kept ones."""
        return train(corpus, vocab=self.vocab, train=self.train, **{**self.run, **settings})

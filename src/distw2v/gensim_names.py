"""gensim's Word2Vec settings that distw2v names otherwise, or lacks: one table, read by
`distw2v.train`/`Word2Vec` (an unknown keyword) and the CLI (an unknown --flag), so that a
gensim user is told the distw2v name, or why there is none. A leaf module.

gensim's names that distw2v shares (alpha, min_alpha, window, min_count, max_vocab_size,
max_final_vocab, sample, negative, epochs, workers, seed, batch_words) are settings here
as they are, so they need no entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

CORPUS = "corpus"  # `ours` of sentences and corpus_file: the corpus argument, not a setting


@dataclass(frozen=True)
class Entry:
    ours: str | None = None  # the distw2v setting that does its work, or CORPUS
    values: dict[Any, str] = field(default_factory=dict)  # gensim value -> ours (sg)
    why: str = ""  # where ours is None: what distw2v does instead


GENSIM: dict[str, Entry] = {
    "vector_size": Entry("dim"),
    "size": Entry("dim"),  # gensim 3
    "iter": Entry("epochs"),  # gensim 3
    "sg": Entry("model", {1: "skipgram", 0: "cbow"}),
    "sentences": Entry(CORPUS),
    "corpus_file": Entry(CORPUS),
    "hs": Entry(why="distw2v trains with negative sampling only (the negative setting), "
                "not with hierarchical softmax"),
    "compute_loss": Entry(why="distw2v always computes the training loss: each epoch's "
                          "mean loss a pair is ProgressEvent.loss as the run goes and "
                          "meta['epoch_loss'] in the model"),
    "callbacks": Entry(why="distw2v has no epoch callbacks; on_progress receives a "
                       "ProgressEvent (phase, epoch, words done, learning rate, loss) as the "
                       "run goes"),
    "ns_exponent": Entry(why="negatives are always drawn from count**0.75, gensim's default"),
    "cbow_mean": Entry(why="CBOW always averages the context vectors, gensim's default "
                       "cbow_mean=1"),
    "shrink_windows": Entry(why="the window is always shrunk at random, gensim's default "
                            "shrink_windows=True"),
    "sorted_vocab": Entry(why="the vocabulary is always sorted by descending frequency"),
    "trim_rule": Entry(why="min_count and max_final_vocab choose the words; there is no "
                       "trim rule"),
    "null_word": Entry(why="there is no padding word"),
    "hashfxn": Entry(why="the initial vectors come from the seed setting alone"),
    "comment": Entry(why="a saved model records its settings and sources instead"),
    "update": Entry(why="to continue training, give the model's directory as init (--init), "
                    "saved with keep_output (--keep-output); its vocabulary grows as "
                    "build_vocab(update=True) grows gensim's"),
}


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def gensim_hint(name: str, value: Any = None, *, cli: bool = False) -> str | None:
    """What gensim's setting `name` (given `value`, when known) is in distw2v, as a clause
    for Python or, with `cli`, for the command line; None when gensim has no such name."""
    name = name.lstrip("-").replace("-", "_")  # --vector-size, as a flag
    entry = GENSIM.get(name)
    if entry is None:
        return None

    def said(ours: str, ours_value: Any) -> str:
        return f"{_flag(ours)} {ours_value}" if cli else f"{ours}={ours_value!r}"

    if entry.ours == CORPUS:
        where = ("its SOURCE arguments" if cli else
                 "train(corpus, ...) or Word2Vec(...).fit(corpus)")
        return f"gensim's {name} is the corpus here: {where}"
    if entry.ours is None:
        return entry.why
    if entry.values:
        if isinstance(value, int) and value in entry.values:
            return f"gensim's {name}={value} is {said(entry.ours, entry.values[value])} here"
        choices = " or ".join(f"{said(entry.ours, ours)} ({name}={theirs})"
                              for theirs, ours in entry.values.items())
        return f"gensim's {name} is {choices} here"
    if cli or value is None:
        return f"gensim's {name} is {_flag(entry.ours) if cli else entry.ours} here"
    return f"gensim's {name} is {said(entry.ours, value)} here"

"""Phrase detection (word2phrase, gensim's `Phrases`): count words and bigrams with bounded
memory, score the bigrams, keep those above the threshold; with several passes, join what
was found and count again. The scoring and selection rules live here once; the Spark engine's
count (distributed/phrases.py) applies them to its distributed counts.

A bigram is two adjacent units of one sentence (a sentence piece: lines longer than
max_sentence_length are cut first, as for training). A bigram is a candidate when it occurs
at least min_count times (its words then do too); word2phrase's score is
(n(ab) - min_count) / (n(a) n(b)) * N with N the units counted in the pass (gensim's
`original_scorer` multiplies by the vocabulary's size instead, so its thresholds differ),
npmi is log(p(ab) / (p(a) p(b))) / -log(p(ab)).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from .config import PhrasesConfig, VocabConfig, to_dict
from .corpus import CorpusStats, iter_sentences
from .corpus.phrases import Phrase, PhraseTable
from .corpus.stats import tracked
from .errors import VocabularyError
from .progress import OnProgress, Phase
from .vocab import BoundedCounter, empty_corpus_error


def score(n_a: int, n_b: int, n_ab: int, corpus_words: int, min_count: int,
          config: PhrasesConfig) -> float:
    """The bigram's score under `config.scoring` (-inf when it cannot be scored)."""
    if n_ab < min_count or n_a <= 0 or n_b <= 0:
        return -math.inf
    if config.scoring == "word2phrase":
        return (n_ab - min_count) / (n_a * n_b) * corpus_words
    p_a, p_b, p_ab = n_a / corpus_words, n_b / corpus_words, n_ab / corpus_words
    if p_ab >= 1.0:  # the whole corpus is this bigram: -log(p_ab) is 0
        return -math.inf
    return math.log(p_ab / (p_a * p_b)) / -math.log(p_ab)


def keep(left: str, right: str, n_ab: int, n_a: int | None, n_b: int | None,
         corpus_words: int, vocab_config: VocabConfig, config: PhrasesConfig,
         pass_number: int) -> Phrase | None:
    """The phrase of the bigram if it scores above the threshold. Its words occur at least as
    often as it does, so they pass min_count with it, unless counting pruned them (None, or
    counts that pruning made too low): such a bigram is not scored, as in word2phrase."""
    min_count = vocab_config.min_count
    if n_ab < min_count or n_a is None or n_b is None or min(n_a, n_b) < min_count:
        return None
    value = score(n_a, n_b, n_ab, corpus_words, min_count, config)
    if not value > config.min_score:
        return None
    return Phrase(left, right, value, n_ab, pass_number)


@dataclass
class PassCounts:
    """What one pass counted: words and bigrams (each bounded), and the units read."""

    words: BoundedCounter[str]
    bigrams: BoundedCounter[tuple[str, str]]
    corpus_words: int = 0
    stats: CorpusStats = field(default_factory=CorpusStats)

    @classmethod
    def bounded(cls, vocab_config: VocabConfig, config: PhrasesConfig) -> PassCounts:
        return cls(BoundedCounter(vocab_config.max_vocab_size), BoundedCounter(config.max_bigrams))

    def add(self, tokens: list[str]) -> None:
        self.words.add(tokens)
        self.bigrams.add(zip(tokens, tokens[1:]))
        self.corpus_words += len(tokens)

    def select(self, vocab_config: VocabConfig, config: PhrasesConfig,
               pass_number: int) -> list[Phrase]:
        unigram = self.words.counts.get
        found = (keep(a, b, n, unigram(a), unigram(b), self.corpus_words, vocab_config, config,
                      pass_number) for (a, b), n in self.bigrams.counts.items())
        return [phrase for phrase in found if phrase is not None]


def count_sentences(sentences: Iterable[list[str]], vocab_config: VocabConfig,
                    config: PhrasesConfig) -> PassCounts:
    counts = PassCounts.bounded(vocab_config, config)
    for tokens in sentences:
        counts.add(tokens)
    return counts


def describe_pass(pass_number: int, found: int, corpus_words: int, word_prunes: int,
                  bigram_prunes: int, config: PhrasesConfig, vocab_config: VocabConfig) -> str:
    text = f"phrases pass {pass_number}: {found:,} phrase(s) in {corpus_words:,} words"
    if word_prunes or bigram_prunes:
        text += (f"; counting hit max_vocab_size={vocab_config.max_vocab_size} or "
                 f"max_bigrams={config.max_bigrams} and pruned rare words {word_prunes} and "
                 f"rare bigrams {bigram_prunes} time(s), so their counts are approximate")
    return text


def table_header(vocab_config: VocabConfig, config: PhrasesConfig,
                 corpus_words: list[int]) -> dict[str, object]:
    """What the file says of how it was made (the reading settings, to read alike)."""
    return {"phrases_config": to_dict(config), "vocab_config": to_dict(vocab_config),
            "threshold": config.min_score, "corpus_words": corpus_words}


def find_phrases(
    sources: Sequence[str], vocab_config: VocabConfig, config: PhrasesConfig,
    on_progress: OnProgress | None = None, log: Callable[[str], None] = lambda _: None,
) -> tuple[PhraseTable, CorpusStats]:
    """The phrases of `sources`, counted on this machine in `config.passes` passes."""
    if vocab_config.phrases:
        raise VocabularyError("phrases are found in the plain corpus: leave out --phrases.")
    found: list[Phrase] = []
    corpus_words: list[int] = []
    stats = CorpusStats()
    for pass_number in range(1, config.passes + 1):
        stats = CorpusStats()
        sentences = iter_sentences(sources, vocab_config, stats, phrases=PhraseTable(found))
        with Phase(on_progress, f"phrases pass {pass_number}", stats.total_bytes, "B") as phase:
            counts = count_sentences(tracked(sentences, stats, phase.advance), vocab_config, config)
        if counts.corpus_words == 0:
            raise empty_corpus_error()
        new = counts.select(vocab_config, config, pass_number)
        log(describe_pass(pass_number, len(new), counts.corpus_words,
                          counts.words.prune_passes, counts.bigrams.prune_passes, config,
                          vocab_config))
        found += new
        corpus_words.append(counts.corpus_words)
        if not new:  # the next pass would count the same corpus again
            break
    return PhraseTable(found, table_header(vocab_config, config, corpus_words)), stats


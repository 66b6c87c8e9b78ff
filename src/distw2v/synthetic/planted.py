"""A corpus of planted relations: a stand-in for boilerplate web text and product pages.

`entities` made-up countries each have a capital, a language, a currency and a leader (all
made-up, lower-case, letters only, so they survive any tokenizer option). Every sentence
states one fact through one of a few short templates ("the capital of X is Y", "Y is the
capital city of X", ...), with 0-4 Zipf-distributed filler words (the pseudo-words of
`zipf.word`) before and after it. Facts come in rounds, each a random order of every
(country, relation) pair, so every fact is stated equally often (to within one).

The analogies file beside the corpus has one section per relation, "country_a value_a
country_b value_b" for every ordered pair a != b. There are no cross sections (capital :
language): both gensim and a kernel that fails the per-relation sections solve them all,
so they would only dilute the figure.

The templates are few and repeat exactly, which is the point: skip-gram trainers that sum a
window's output updates overshoot on such contexts (issue 10). With the defaults (d=100,
window 5, negative 5, min_count 5, sample 1e-3, 5 epochs, 2 workers) gensim solves 100% and
the window-summed kernel of 9c9f216 13-17%. A small corpus for regression tests, tokens
400_000, entities 12, filler_vocab 2_000: gensim 100%, the window-summed kernel 6-9%.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import atomic_texts, beside
from .zipf import word, zipf_cdf

RELATIONS = ("capital", "language", "currency", "leader")
TEMPLATES: dict[str, tuple[str, ...]] = {
    "capital": (
        "the capital of {x} is {y}",
        "{y} is the capital city of {x}",
        "{x} has its capital in {y}",
        "the government of {x} sits in {y}",
    ),
    "language": (
        "people in {x} speak {y}",
        "{y} is the language of {x}",
        "the official language of {x} is {y}",
        "in {x} most people speak {y}",
    ),
    "currency": (
        "the currency of {x} is the {y}",
        "in {x} you pay with the {y}",
        "{x} uses the {y} as money",
        "the money of {x} is called the {y}",
    ),
    "leader": (
        "the leader of {x} is {y}",
        "{y} leads {x}",
        "{x} is governed by {y}",
        "{y} is the president of {x}",
    ),
}
# Name endings per kind (a relation's values are its own kind): readable, and two kinds
# never share a name, as the endings' last letters differ.
SUFFIXES = {"country": "nia", "capital": "burg", "language": "lish", "currency": "mark",
            "leader": "son"}
CONSONANTS, VOWELS = "bdfgklmnprstvz", "aeiou"  # no "w": filler words start with it
FILLER_MAX = 4
MAX_ENTITIES = 1000
ROUNDS_MIN = 5  # every fact stated at least this often, so names pass min_count 5
_MAX_LEN = max(len(t.split()) for ts in TEMPLATES.values() for t in ts) + FILLER_MAX


@dataclass(frozen=True)
class PlantedCorpus:
    """What `write_planted_corpus` wrote."""

    path: str
    analogies: str
    tokens: int
    sentences: int
    entities: int
    relations: list[str]
    seed: int


def entity_names(entities: int, seed: int) -> dict[str, list[str]]:
    """Made-up names, kind -> one per entity: two random consonant-vowel syllables + suffix."""
    syllables = [c + v for c in CONSONANTS for v in VOWELS]
    roots = [a + b for a in syllables for b in syllables]
    rng = np.random.default_rng([seed, 0])
    return {kind: [roots[i] + suffix for i in rng.choice(len(roots), entities, replace=False)]
            for kind, suffix in SUFFIXES.items()}


def _check(tokens: int, entities: int, filler_vocab: int, seed: int) -> None:
    if not 2 <= entities <= MAX_ENTITIES:
        raise ValueError(f"entities must be between 2 and {MAX_ENTITIES}, not {entities}.")
    least = ROUNDS_MIN * entities * len(RELATIONS) * _MAX_LEN
    if tokens < least:
        raise ValueError(f"tokens must be at least {least:,} for {entities} entities (each "
                         f"fact stated {ROUNDS_MIN} times), not {tokens:,}.")
    if filler_vocab < 1:
        raise ValueError(f"filler_vocab must be at least 1, not {filler_vocab}.")
    if seed < 0:
        raise ValueError(f"seed must not be negative, not {seed}.")


def write_planted_corpus(
    path: str | Path,
    *,
    tokens: int = 1_000_000,
    entities: int = 40,
    filler_vocab: int = 20_000,
    seed: int = 0,
) -> PlantedCorpus:
    """Write at least `tokens` words (up to the end of the sentence that reaches it) to `path`,
    one sentence a line, and the analogies at `<stem>.analogies.txt` beside it."""
    _check(tokens, entities, filler_vocab, seed)
    path = Path(path)
    analogies = beside(path, ".analogies.txt")
    names = entity_names(entities, seed)
    # core[f][t]: fact f = entity * R + relation, stated by template t of its relation
    core = [[t.format(x=names["country"][e], y=names[r][e]) for t in TEMPLATES[r]]
            for e in range(entities) for r in RELATIONS]
    core_len = np.array([[len(s.split()) for s in ts] for ts in core], dtype=np.int64)
    fillers = [word(r) for r in range(filler_vocab)]
    cdf = zipf_cdf(filler_vocab, 1.0)
    rng = np.random.default_rng([seed, 1])
    written = sentences = 0
    with atomic_texts(path, analogies) as (out, questions):
        while written < tokens:
            facts = rng.permutation(len(core))
            tpl = rng.integers(0, core_len.shape[1], len(facts))
            k = rng.integers(0, FILLER_MAX + 1, len(facts))
            cut = (rng.random(len(facts)) * (k + 1)).astype(np.int64)
            drawn = np.searchsorted(cdf, rng.random(int(k.sum())), side="right")
            fill = [fillers[i] for i in np.minimum(drawn, filler_vocab - 1).tolist()]
            lengths = core_len[facts, tpl] + k
            # the round's sentences up to (and including) the one that reaches `tokens`
            n = min(len(facts), int(np.searchsorted(np.cumsum(lengths), tokens - written)) + 1)
            lines, at = [], 0
            for f, t, kk, c in zip(facts[:n].tolist(), tpl[:n].tolist(), k[:n].tolist(),
                                   cut[:n].tolist(), strict=True):
                words = fill[at:at + kk]
                lines.append(" ".join([*words[:c], core[f][t], *words[c:]]))
                at += kk
            out.write("\n".join(lines) + "\n")
            written += int(lengths[:n].sum())
            sentences += n
        for r in RELATIONS:
            left, right = names["country"], names[r]
            questions.write(f": {r}\n")
            questions.writelines(f"{left[a]} {right[a]} {left[b]} {right[b]}\n"
                                 for a in range(entities) for b in range(entities) if a != b)
    return PlantedCorpus(path=str(path), analogies=str(analogies), tokens=written,
                         sentences=sentences, entities=entities, relations=list(RELATIONS),
                         seed=seed)


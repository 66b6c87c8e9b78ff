"""A corpus of planted multi-word names, for phrase detection and the analogies it enables.

`entities` made-up countries each have a two-word name ("kelnia dafor"), a capital whose name
is a first word shared with other capitals and a word of its own ("nova ribburg", as "new
york" and "new delhi"), and a leader with a three-word name (found by a second pass). Every
sentence states one fact (the country's capital or leader) through one of a few templates
of common words, with 0-4 Zipf filler words around it; facts come in rounds, each a random
order of every (country, relation) pair, as in planted.py.

Distractors: each word of a name, each time a name is written, is also written on its own
with probability `distractor_rate`, at a random place in a line of filler words, so that a
detector has to tell "nova ribburg" from "nova" and "ribburg" that occur apart.

Beside the corpus: `<stem>.phrases.txt`, the planted names joined with `_` (the truth for
precision and recall), and `<stem>.analogies.txt`, "country_a capital_a country_b capital_b"
(and leaders) with joined names: a model can answer them only if the names became words.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .files import atomic_texts, beside
from .planted import CONSONANTS, VOWELS
from .zipf import word, zipf_cdf

RELATIONS = ("capital", "leader")
# Templates of common words only: a template's own bigrams then score low (a detector that
# joins them has no planted name to find there), and skip-gram learns each relation.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "capital": ("the capital of {x} is {y}", "{y} is the capital of {x}",
                "in {x} the capital is {y}", "{y} is in {x}"),
    "leader": ("the leader of {x} is {y}", "{y} is the leader of {x}",
               "in {x} the leader is {y}", "{y} leads {x}"),
}
PREFIXES = ("nova", "porto", "santa", "forte", "lago", "monte", "alto", "bela")
FILLER_MAX = 4
MAX_ENTITIES = 400


@dataclass(frozen=True)
class PhraseCorpus:
    """What `write_phrase_corpus` wrote."""

    path: str
    phrases: str  # the planted names, joined, one a line
    analogies: str
    tokens: int
    names: list[str]  # joined
    seed: int


def names(entities: int, seed: int) -> dict[str, list[str]]:
    """kind -> one name (words joined by spaces) per entity; no word is in two names except
    the capitals' shared first words."""
    syllables = [c + v for c in CONSONANTS for v in VOWELS]
    roots = [a + b + c for a in syllables for b in syllables[:20] for c in "lmnrst"]
    rng = np.random.default_rng([seed, 7])
    pick = iter(rng.choice(len(roots), 6 * entities, replace=False).tolist())
    return {
        "country": [f"{roots[next(pick)]}ia {roots[next(pick)]}or" for _ in range(entities)],
        "capital": [f"{PREFIXES[e % len(PREFIXES)]} {roots[next(pick)]}burg"
                    for e in range(entities)],
        "leader": [f"{roots[next(pick)]}a {roots[next(pick)]}o {roots[next(pick)]}son"
                   for _ in range(entities)],
    }


def write_phrase_corpus(
    path: str | Path, *, tokens: int = 2_000_000, entities: int = 60,
    distractor_rate: float = 1.0, filler_vocab: int = 20_000, seed: int = 0,
) -> PhraseCorpus:
    """Write at least `tokens` words to `path`, one sentence a line, and the names and
    analogies beside it."""
    if not 2 <= entities <= MAX_ENTITIES:
        raise ValueError(f"entities must be between 2 and {MAX_ENTITIES}, not {entities}.")
    if not 0 <= distractor_rate <= 1:
        raise ValueError(f"distractor_rate must be between 0 and 1, not {distractor_rate}.")
    if tokens < 1 or filler_vocab < 1 or seed < 0:
        raise ValueError("tokens and filler_vocab must be positive and seed not negative.")
    path = Path(path)
    named = names(entities, seed)
    facts = [(e, r) for e in range(entities) for r in RELATIONS]
    fillers = [word(r) for r in range(filler_vocab)]
    cdf = zipf_cdf(filler_vocab, 1.0)
    rng = np.random.default_rng([seed, 8])

    def filler(n: int) -> list[str]:
        drawn = np.searchsorted(cdf, rng.random(n), side="right")
        return [fillers[i] for i in np.minimum(drawn, filler_vocab - 1).tolist()]

    written = 0
    with atomic_texts(path, beside(path, ".phrases.txt"),
                      beside(path, ".analogies.txt")) as (out, truth, questions):
        while written < tokens:
            lines = []
            for f in rng.permutation(len(facts)).tolist():
                e, relation = facts[f]
                x, y = named["country"][e], named[relation][e]
                template = TEMPLATES[relation][int(rng.integers(len(TEMPLATES[relation])))]
                around = filler(int(rng.integers(FILLER_MAX + 1)))
                cut = int(rng.integers(len(around) + 1))
                lines.append(" ".join([*around[:cut], template.format(x=x, y=y),
                                       *around[cut:]]))
                for alone in (x + " " + y).split():
                    if rng.random() < distractor_rate:
                        line = filler(int(rng.integers(2, 7)))
                        line.insert(int(rng.integers(len(line) + 1)), alone)
                        lines.append(" ".join(line))
            out.write("\n".join(lines) + "\n")
            written += sum(len(line.split()) for line in lines)
        joined = {kind: [n.replace(" ", "_") for n in kind_names]
                  for kind, kind_names in named.items()}
        truth.writelines(n + "\n" for kind_names in joined.values() for n in kind_names)
        for relation in RELATIONS:
            left, right = joined["country"], joined[relation]
            questions.write(f": {relation}\n")
            questions.writelines(f"{left[a]} {right[a]} {left[b]} {right[b]}\n"
                                 for a in range(entities) for b in range(entities) if a != b)
    return PhraseCorpus(path=str(path), phrases=str(beside(path, ".phrases.txt")),
                        analogies=str(beside(path, ".analogies.txt")), tokens=written,
                        names=[n for ns in joined.values() for n in ns], seed=seed)

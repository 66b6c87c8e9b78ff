"""Phrase tables: the file `distw2v phrases` writes, and the one joining rule that both
engines' readers apply to every sentence ('new york' -> new_york).

The file is a TSV: a `# ` JSON header line (format, settings), a line of column names, then
one phrase a line: `phrase score count pass left right`. `left` and `right` are the two units
that pass `pass` joined (a unit may itself be a phrase of an earlier pass), so a phrase is
never ambiguous even when words hold the delimiter.

Joining is gensim's `Phrases[sentence]` without connector words: left to right, a unit and
the next are replaced by their phrase when the pair is in the table, and the scan goes on
after the pair. With several passes the tables are applied in pass order, as word2phrase run
again on its own output would: that is how the counting of each later pass saw the corpus.
"""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import compress, count
from pathlib import Path
from typing import Any

from ..errors import CorpusError
from .streams import open_binary

FORMAT = "distw2v-phrases"
FORMAT_VERSION = 1
DELIMITER = "_"
COLUMNS = ("phrase", "score", "count", "pass", "left", "right")


@dataclass(frozen=True)
class Phrase:
    left: str
    right: str
    score: float
    count: int
    pass_number: int  # 1-based

    @property
    def text(self) -> str:
        return self.left + DELIMITER + self.right


class PhraseTable:
    """The phrases of each pass, as (left, right) -> joined word."""

    def __init__(self, phrases: Iterable[Phrase], header: dict[str, Any] | None = None) -> None:
        self.phrases = sorted(phrases, key=lambda p: (p.pass_number, -p.score, p.text))
        self.header = header or {}
        passes = max((p.pass_number for p in self.phrases), default=0)
        self.passes: list[dict[tuple[str, str], str]] = [{} for _ in range(passes)]
        for p in self.phrases:
            self.passes[p.pass_number - 1][(p.left, p.right)] = p.text
        # a sentence holding none of a pass's left words is left alone at C speed
        self._steps = [(frozenset(left for left, _ in pairs), pairs) for pairs in self.passes]

    def __len__(self) -> int:
        return len(self.phrases)

    def join(self, tokens: list[str], passes: int | None = None) -> list[str]:
        """`tokens` with the phrases of the first `passes` passes (all) joined."""
        for lefts, pairs in self._steps if passes is None else self._steps[:passes]:
            if not lefts.isdisjoint(tokens):
                tokens = _join_pairs(tokens, pairs)
        return tokens

    def join_all(self, sentences: Iterable[list[str]]) -> Iterator[list[str]]:
        return map(self.join, sentences)


def _join_pairs(tokens: list[str], pairs: dict[tuple[str, str], str]) -> list[str]:
    # The pairs that are phrases are found at C speed (map, compress); only they are looked
    # at in Python, left to right, each skipped when the one before was joined over it.
    # (A loop over every token took 3 times as long.)
    found = list(compress(count(), map(pairs.get, zip(tokens, tokens[1:]))))
    if not found:
        return tokens
    out: list[str] = []
    start = 0  # the first token not yet in `out`
    for i in found:
        if i >= start:
            out += tokens[start:i]
            out.append(pairs[tokens[i], tokens[i + 1]])
            start = i + 2
    out += tokens[start:]
    return out


def write_phrase_table(path: str | Path, table: PhraseTable) -> None:
    """Write `table` to `path` atomically (a temporary name beside it, then a rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as out:
            header = {**table.header, "format": FORMAT, "format_version": FORMAT_VERSION,
                      "size": len(table)}
            out.write("# " + json.dumps(header, sort_keys=True) + "\n")
            out.write("\t".join(COLUMNS) + "\n")
            out.writelines(f"{p.text}\t{p.score:.6g}\t{p.count}\t{p.pass_number}\t{p.left}\t"
                           f"{p.right}\n" for p in table.phrases)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_phrase_table(uri: str) -> PhraseTable:
    """The table in `uri` (a path or URL, opened as a corpus source is, so a source policy
    applies); CorpusError with one sentence when it is not a phrase table."""
    try:
        with (open_binary(uri) as raw,
              io.TextIOWrapper(raw, encoding="utf-8", newline="\n") as text):
            return _parse(uri, text)
    except UnicodeDecodeError:
        raise CorpusError(f"the phrases file {uri} is not UTF-8 text.") from None
    except CorpusError as exc:
        if str(exc).startswith("the phrases file"):
            raise
        raise CorpusError(f"cannot read the phrases file: {exc}") from None


def _parse(uri: str, lines: Iterable[str]) -> PhraseTable:
    what = f"the phrases file {uri}"
    rows = iter(lines)
    first = next(rows, "")
    try:
        header = json.loads(first[2:]) if first.startswith("# ") else None
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise CorpusError(f"{what} is not a phrase table from `distw2v phrases` (its first "
                          "line is not the '# {\"format\": \"distw2v-phrases\", ...}' header).")
    if header.get("format_version") != FORMAT_VERSION:
        raise CorpusError(f"{what} has format version {header.get('format_version')}; this "
                          f"distw2v reads version {FORMAT_VERSION}.")
    if next(rows, "").rstrip("\n").split("\t") != list(COLUMNS):
        raise CorpusError(f"{what} line 2 is not the column names {' '.join(COLUMNS)}.")
    phrases = [_row(what, lineno, line) for lineno, line in enumerate(rows, start=3)]
    if header.get("size") not in (None, len(phrases)):
        raise CorpusError(f"{what} is truncated: its header promises {header['size']} phrases "
                          f"but it holds {len(phrases)}.")
    return PhraseTable(phrases, header)


def _row(what: str, lineno: int, line: str) -> Phrase:
    fields = line.rstrip("\n").split("\t")
    try:
        text, score, count, pass_number, left, right = fields
        phrase = Phrase(left, right, float(score), int(count), int(pass_number))
    except ValueError:
        raise CorpusError(f"{what} line {lineno} is not 'phrase<TAB>score<TAB>count<TAB>pass"
                          "<TAB>left<TAB>right'.") from None
    if not (left and right and phrase.text == text and phrase.pass_number >= 1
            and not math.isnan(phrase.score)):
        raise CorpusError(f"{what} line {lineno} is not a phrase: its phrase must be left_right "
                          "and its pass at least 1.")
    return phrase

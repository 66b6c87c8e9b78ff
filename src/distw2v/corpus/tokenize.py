"""How text becomes tokens: the whitespace split or the Unicode tokenizer (words as runs of
letters, marks and digits in any script), and the transforms a vocabulary config asks for
(lowercasing, stripping punctuation and digits by Unicode category, with tables built once)."""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Callable, Iterator
from functools import cache

import numpy as np

from ..config import VocabConfig

Split = Callable[[str], list[str]]


@cache
def _code_points() -> tuple[list[int], list[int], list[int]]:
    """All punctuation (category P*), decimal digit (Nd) and word (letters L*, marks M*,
    numbers N*) code points (~0.5 s once)."""
    punctuation, digits, word = [], [], []
    for cp in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(cp))
        if category[0] == "P":
            punctuation.append(cp)
        elif category[0] in "LMN":
            word.append(cp)
            if category == "Nd":
                digits.append(cp)
    return punctuation, digits, word


def _character_class(code_points: list[int]) -> str:
    """A regex character class matching exactly `code_points` (sorted), as ranges."""
    ranges: list[str] = []
    start = previous = code_points[0]
    for cp in [*code_points[1:], -1]:
        if cp != previous + 1:
            ranges.append(re.escape(chr(start)) if start == previous else
                          f"{re.escape(chr(start))}-{re.escape(chr(previous))}")
            start = cp
        previous = cp
    return "[" + "".join(ranges) + "]"


# A URL (up to its last character that is not closing punctuation) or an e-mail address:
# kept whole, or dropped, by the Unicode tokenizer.
_WEB = r"(?:(?:https?|ftp)://|www\.)[^\s<>\"]*[^\s<>\".,;:!?)\]}'’]"
_MAIL_CHAR = r"[^\s@<>()\[\],;:\"]"  # what the two parts of an address are made of
_MAIL = f"{_MAIL_CHAR}+@{_MAIL_CHAR}+\\.[^\\W\\d_]{{2,}}"
# An address is looked for only where a run of _MAIL_CHAR begins (or where an address
# ended, see _chained): tried at every position of a long run, each try reading to the
# run's end, it took time quadratic in the run's length. From anywhere in a run the
# address would end at the same '@', so the try at the run's start decides for all.
_MAIL_AT_RUN = f"(?<!{_MAIL_CHAR}){_MAIL}"
_JOINERS = "'’\\-"  # apostrophes and hyphens inside a word (escaped for a class)


@cache
def _word(joiners: bool, astral: bool) -> str:
    """A word of text that has characters beyond the Basic Multilingual Plane (`astral`) or
    not; with `joiners`, apostrophes and hyphens inside it.

    A class with ranges above U+FFFF is checked range by range (about 8x slower), so text
    without such characters, nearly all of it, gets a class of the BMP's ranges only.
    """
    word_points = _code_points()[2]
    letter = _character_class([cp for cp in word_points if cp <= 0xFFFF])
    if astral:  # a lookahead on one range first keeps most characters off the slow class
        beyond = _character_class([cp for cp in word_points if cp > 0xFFFF])
        letter = f"(?:{letter}|(?=[\U00010000-\U0010FFFF]){beyond})"
    return f"{letter}+(?:[{_JOINERS}]{letter}+)*" if joiners else f"{letter}+"


@cache
def _pattern(*parts: str) -> re.Pattern[str]:
    return re.compile("|".join(parts))


def make_split(config: VocabConfig) -> Split:
    """The tokenizer of one (already transformed) line: `str.split`, or the Unicode one.

    Its time is linear in the line's length (test_tokenizer_time_is_linear).
    """
    if not config.unicode_tokens:
        return str.split
    joiners, keep_urls = config.word_joiners == "keep", config.urls == "keep"
    bmp, astral = _word(joiners, False), _word(joiners, True)
    urls = (_WEB,) if keep_urls else ()  # the alternatives before a word
    web, mail = _pattern(_WEB), _pattern(_WEB, _MAIL_AT_RUN)

    def split(line: str) -> list[str]:
        word = bmp if line.isascii() or max(line) <= "\uffff" else astral
        if "@" not in line:  # nearly every line: no address to look for
            if not keep_urls and ("://" in line or "www." in line):
                line = web.sub(" ", line)
            return _pattern(*urls, word).findall(line)  # type: ignore[no-any-return]
        if line.count("@") > 1:  # an address may follow another: the slower, exact path
            if keep_urls:
                return [match.group() for match in _chained(line, word)]
            line = " ".join(_between(line, _chained(line)))
        elif keep_urls:
            return _pattern(_WEB, _MAIL_AT_RUN, word).findall(line)  # type: ignore[no-any-return]
        else:
            line = mail.sub(" ", line)
        return _pattern(word).findall(line)  # type: ignore[no-any-return]

    if not (config.strip_punctuation or config.strip_digits):
        return split
    strip = _strip_transform(config, lower=False)
    return lambda line: strip(" ".join(split(line))).split()


def _chained(line: str, word: str | None = None) -> Iterator[re.Match[str]]:
    """The URLs and e-mail addresses of `line` (with `word`, its words too), in order, as a
    pattern whose address alternative is tried at every position would find them: where
    an address ends in the middle of a run of _MAIL_CHAR (a@b.com-c@d.org), the next one
    may begin. Each address's end is tried once, so the time stays linear."""
    rest = (word,) if word else ()
    at_run = _pattern(_WEB, f"({_MAIL_AT_RUN})", *rest)
    anywhere = _pattern(_WEB, f"({_MAIL})", *rest)
    end = 0
    while match := at_run.search(line, end):
        while match:
            yield match
            end = match.end()
            match = anywhere.match(line, end) if match.lastindex else None  # 1: an address


def _between(line: str, matches: Iterator[re.Match[str]]) -> Iterator[str]:
    """The pieces of `line` outside `matches`."""
    start = 0
    for match in matches:
        yield line[start : match.start()]
        start = match.end()
    yield line[start:]


@cache
def _strip_tables(punctuation: bool, digits: bool) -> tuple[dict[int, None], np.ndarray]:
    """Code points to delete: a str.translate table and a boolean lookup array."""
    all_punctuation, all_digits, _ = _code_points()
    codes = (all_punctuation if punctuation else []) + (all_digits if digits else [])
    drop = np.zeros(sys.maxunicode + 1, dtype=bool)
    drop[codes] = True
    return dict.fromkeys(codes), drop


def _make_transform(config: VocabConfig) -> Callable[[str], str] | None:
    """Normalization applied to whole chunks of text before they are split into tokens.

    Deleting characters that are never whitespace (P*, Nd) before splitting gives the
    same tokens as deleting them from each token and dropping the empty ones, and is
    much faster. Chunks always end at whitespace, so lower() sees whole tokens.
    The Unicode tokenizer casefolds (ß → ss) and strips after splitting (make_split):
    stripping first would break the URLs and inner apostrophes it looks for.
    """
    lower = config.lowercase
    if config.unicode_tokens:
        return str.casefold if lower else None
    if not (config.strip_punctuation or config.strip_digits):
        return str.lower if lower else None
    return _strip_transform(config, lower)


def _strip_transform(config: VocabConfig, lower: bool) -> Callable[[str], str]:
    table, drop = _strip_tables(config.strip_punctuation, config.strip_digits)

    def transform(text: str) -> str:
        if lower:
            text = text.lower()
        if text.isascii():  # O(1) check; translate has a fast path for ASCII
            return text.translate(table)
        # str.translate is ~15 MB/s on non-ASCII text; a lookup array is ~10x faster.
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        return codes[~drop[codes]].tobytes().decode("utf-32-le")

    return transform


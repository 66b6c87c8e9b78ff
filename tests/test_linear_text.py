"""Text clean-up takes time linear in its input: the Unicode tokenizer (URLs and e-mail
addresses kept or dropped) and the Reddit markdown clean-up, timed on lines built to make a
backtracking pattern quadratic against ordinary lines of the same length; and they still
give what the plain (quadratic) patterns they replaced give."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distw2v.config import VocabConfig, parse_duration
from distw2v.corpus import tokenize
from distw2v.corpus.jsonl import reduce_markdown
from distw2v.errors import Distw2vError

SIZE = 20_000  # characters: where a quadratic pattern takes 1,000x an ordinary line's time
GROWTH = 2.5  # the most 10x the characters may take, in 10x the time (quadratic: 10)

ORDINARY = ("Write to ana.silva@example.org or @bob, and see https://example.com/a?b=1 "
            "(page 2) or [the FAQ](https://example.com/faq) for more about it.\n"
            "> quoted: it's a well-known, long-standing issue.\n")


def _runs(text: str, head: str = "", tail: str = "") -> Callable[[int], str]:
    """A line of n characters: `head`, `text` repeated, `tail`."""
    def line(n: int) -> str:
        return head + (text * (n // len(text) + 1))[: n - len(head) - len(tail)] + tail
    return line


LINES = {  # name: a line of n characters; the first is ordinary text, the others attacks
    "ordinary": _runs(ORDINARY),
    "@": _runs("@"),
    "a@": _runs("a@"),
    "a.": _runs("a."),
    "a. then @": _runs("a.", tail="@"),
    "a then @b": _runs("a", tail="@b"),
    "a@ then b.": _runs("b.", head="a@", tail="1"),
    "chained addresses": _runs("a@b.com-"),
    "a@b.c": _runs("a@b.c"),
    "www.": _runs("www."),
    "http://": _runs("http://"),
    "http:// then .": _runs(".", head="http://"),
    "www. then )": _runs(")", head="www."),
    "a-": _runs("a-"),
    "a'": _runs("a'"),
    "[ then ](": _runs("[", tail="]("),
    "[a](": _runs("[a]("),
    "[](((": _runs("[]((("),
    "[a]( then (": _runs("(", head="[a]("),
    "[a](b then space": _runs(" ", head="[a](b"),
    '[a](b "': _runs("x", head='[a](b "'),
    '[a](b "x"': _runs(' "x"', head="[a](b"),
    "[a](b(c": _runs("(c", head="[a](b"),
    ">": _runs(">"),
    "> ": _runs("> ", tail="x"),
    "newline >": _runs("\n>"),
    "&": _runs("&", tail="]("),
    "&# then digits": _runs("1", head="&#", tail=";"),
    "&#1": _runs("&#1"),
    "spaces": _runs(" "),
    "tabs and newlines": _runs("\t\n"),
}


def _seconds(clean: Callable[[str], object], line: str) -> float:
    """The least of a few timings: the others are the noise of a shared machine."""
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        clean(line)
        best = min(best, time.perf_counter() - start)
    return best


def _assert_linear(clean: Callable[[str], object]) -> None:
    """Each line of SIZE characters takes at most GROWTH x 10 times its tenth's time; and
    the time of an attack, per character, is that of ordinary text within a constant
    (reported, not asserted: dense markup costs more per character than prose)."""
    growth, per_ordinary = {}, {}
    ordinary = _seconds(clean, LINES["ordinary"](SIZE))
    for name, line in LINES.items():
        large = _seconds(clean, line(SIZE))
        growth[name] = large / (10 * _seconds(clean, line(SIZE // 10)))
        per_ordinary[name] = large / ordinary
    slow = {name: round(value, 1) for name, value in growth.items() if value > GROWTH}
    assert not slow, (f"10x the characters took over {10 * GROWTH:.0f}x the time: {slow}; "
                      f"times of ordinary text: {per_ordinary}")


@pytest.mark.parametrize("joiners", ["keep", "split"])
@pytest.mark.parametrize("urls", ["keep", "drop"])
def test_tokenizer_time_is_linear(urls: str, joiners: str) -> None:
    split = tokenize.make_split(VocabConfig(tokenizer="unicode", urls=urls,
                                            word_joiners=joiners))
    _assert_linear(split)


def test_reddit_markdown_clean_up_time_is_linear() -> None:
    _assert_linear(reduce_markdown)


# ---- the same results as the plain patterns ---------------------------------------------

def _plain_split(line: str, keep_urls: bool, joiners: bool) -> list[str]:
    """The tokenizer as one pattern of URL, address and word alternatives (quadratic)."""
    astral = not (line.isascii() or max(line) <= "\uffff")
    word, url = tokenize._word(joiners, astral), f"{tokenize._WEB}|{tokenize._MAIL}"
    if not keep_urls:
        line = re.sub(url, " ", line)
    return re.findall(f"{url}|{word}" if keep_urls else word, line)


_PIECES = st.sampled_from([*"ab1_.@-'’[]()<>,:;\" \t/?!é𝐀", "www.", "http://", "ftp://",
                           "a@b.co", ".com", "@x.org"])


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(st.lists(_PIECES, max_size=24).map("".join), st.booleans(), st.booleans())
def test_tokenizer_finds_what_the_plain_pattern_finds(line: str, keep_urls: bool,
                                                      joiners: bool) -> None:
    split = tokenize.make_split(VocabConfig(
        tokenizer="unicode", urls="keep" if keep_urls else "drop",
        word_joiners="keep" if joiners else "split"))
    assert split(line) == _plain_split(line, keep_urls, joiners)


def test_an_address_may_follow_another_in_one_run() -> None:
    split = tokenize.make_split(VocabConfig(tokenizer="unicode", urls="keep"))
    assert split("a@b.com-c@d.org a@b.com/c@d.org") == [
        "a@b.com", "-c@d.org", "a@b.com", "/c@d.org"]


_PLAIN_LINK = re.compile(r"\[([^\]\n]*)\]\((?:[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"\n]*\")?\)")


@settings(max_examples=1000, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from([*'[]()" \nab', "](", "[a](b)", ' "t"']), max_size=24)
       .map("".join))
def test_links_reduce_as_with_the_plain_pattern(text: str) -> None:
    assert reduce_markdown(text) == _PLAIN_LINK.sub(r"\1", text)


def test_a_duration_is_read_in_linear_time() -> None:
    def parse(text: str) -> None:
        with pytest.raises(Distw2vError, match="must be a duration"):
            parse_duration(text, "job_time_limit")

    line = _runs(" ", head="1", tail="x")
    growth = _seconds(parse, line(SIZE)) / (10 * _seconds(parse, line(SIZE // 10)))
    assert growth <= GROWTH
    assert parse_duration(" 12 h ", "job_time_limit") == 12 * 3600

"""Texts from JSON lines: one record a line, its text at a dotted path (--format jsonl) or
in Reddit's comment and submission fields (--format reddit), with bounded memory."""

from __future__ import annotations

import functools
import html
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, NoReturn

from ..config import VocabConfig
from ..errors import CorpusError
from .stats import CorpusStats
from .streams import DEFAULT_BLOCK_SIZE

MAX_RECORD_BYTES = 16 << 20  # a longer line is skipped as malformed, never held whole
# A file whose first this many records are all malformed is not JSON lines: say so at once
# instead of reading all of it.
_GIVE_UP_AFTER = 1000
_GONE = frozenset(("[deleted]", "[removed]"))


def _json_loads(line: bytes) -> Any:
    return json.loads(line.decode("utf-8"))  # strict: invalid UTF-8 is malformed, as in orjson


try:
    import orjson

    _loads: Callable[[bytes], Any] = orjson.loads
    _HAVE_ORJSON = True
except ImportError:  # pragma: no cover - orjson is a dependency
    _loads = _json_loads
    _HAVE_ORJSON = False


# [link text](url) or [link text](url "title"); one level of parentheses inside the url,
# as in Wikipedia links. Where a '[' starts no link, nor does any other '[' before the
# next ']' (each would end at that ']'), so the second alternative passes over them all
# (kept as they are, by _UNLINK): tried one by one, each reading to that ']', a long
# run of '[' took quadratic time.
_LINK = re.compile(r"\[([^\]\n]*)\]\((?:[^()\s]|\([^()\s]*\))*(?:\s+\"[^\"\n]*\")?\)"
                   r"|(\[[^\]\n]*)")
_UNLINK = r"\1\2"  # a link's text, or the text passed over (an unmatched group is "")
_QUOTE = re.compile(r"^[ \t]*(?:>[ \t]*)+", re.MULTILINE)
# A character reference of thousands of digits, which html.unescape hands to int(): over
# 4,300 digits it raises ValueError. Over 7 digits (after leading zeros) it is U+FFFD.
_LONG_REFERENCE = re.compile(r"&#[0-9]{100,};?")


def iter_json_texts(stream: BinaryIO, uri: str, stats: CorpusStats,
                    config: VocabConfig) -> Iterator[str]:
    """The text of each record of a JSON-lines stream, in order (format 'jsonl' or 'reddit').

    Every non-blank line counts in ``stats.records``; records without text (or filtered
    out) in ``stats.records_skipped``; lines that are not a JSON object, or longer than
    MAX_RECORD_BYTES, are counted malformed and skipped. Raises CorpusError when the stream
    has malformed lines and not one JSON object (the wrong --format, most likely).
    """
    extract: Callable[[dict[str, Any]], str | None]
    if config.format == "reddit":
        extract = functools.partial(_reddit_text, subreddits=config.subreddit_set)
    elif config.format == "jsonl":
        extract = _field_reader(config.text_field or "")
    else:
        raise CorpusError(f"format {config.format!r} is not JSON lines.")
    parsed = bad = 0  # JSON objects and malformed lines seen in this stream
    first_bad = ""  # the first malformed line and what is wrong with it
    for number, line in enumerate(_lines(stream, MAX_RECORD_BYTES), 1):
        if line is not None and (not line or line.isspace()):
            continue
        stats.records += 1
        record, problem, lenient = _parse(line)
        if problem:
            stats.malformed_record(f"{uri} line {number}")
            bad += 1
            first_bad = first_bad or f"{uri} line {number} {problem}"
            if parsed == 0 and bad >= _GIVE_UP_AFTER:
                _wrong_format(first_bad, config)
            continue
        parsed += 1
        text = extract(record)
        if text is None:
            stats.records_skipped += 1
            continue
        yield _fix_surrogates(text) if lenient else text
    if parsed == 0 and bad:
        _wrong_format(first_bad, config)


def _parse(line: bytes | None) -> tuple[Any, str, bool]:
    """(record, what is wrong with the line or "", whether the stdlib parser read it)."""
    if line is None:
        return None, f"is longer than {MAX_RECORD_BYTES >> 20} MiB", False
    try:
        record, lenient = _loads(line), not _HAVE_ORJSON
    except (ValueError, RecursionError):
        if not _HAVE_ORJSON:
            return None, "is not JSON", False
        try:  # orjson refuses lone surrogate escapes (\ud83d), which some dumps have
            record, lenient = _json_loads(line), True
        except (ValueError, RecursionError):
            return None, "is not JSON", False
    if not isinstance(record, dict):
        return None, "is not a JSON object", False
    return record, "", lenient


def _wrong_format(first_bad: str, config: VocabConfig) -> NoReturn:
    raise CorpusError(f"{first_bad}: is this file JSON lines? --format {config.format} reads "
                      f"one JSON object a line (--format text reads plain text).")


def _lines(stream: BinaryIO, limit: int) -> Iterator[bytes | None]:
    """Each line of the stream without its newline, or None for one longer than `limit`
    (whose bytes are dropped as they come). Lines are cut from blocks of bytes, so a
    multibyte character split between two reads is whole again in its line."""
    pieces: list[bytes] = []  # the unfinished line
    held = 0  # bytes in pieces
    too_long = False  # the unfinished line has passed the limit
    while True:
        chunk = stream.read(DEFAULT_BLOCK_SIZE)
        if not chunk:
            break
        end = chunk.find(b"\n")
        if end < 0:
            if not too_long:
                pieces.append(chunk)
                held += len(chunk)
                if held > limit:
                    pieces, held, too_long = [], 0, True
            continue
        if too_long or held + end > limit:
            yield None
        else:
            yield b"".join(pieces) + chunk[:end] if pieces else chunk[:end]
        lines = chunk[end + 1 :].split(b"\n")
        tail = lines.pop()
        for line in lines:
            yield line if len(line) <= limit else None
        too_long = len(tail) > limit
        pieces, held = ([tail], len(tail)) if tail and not too_long else ([], 0)
    if too_long:
        yield None
    elif held:
        yield b"".join(pieces)


def _field_reader(path: str) -> Callable[[dict[str, Any]], str | None]:
    """The text at a dotted path: a string, or a list of strings joined by newlines."""
    keys = tuple(key for key in path.split(".") if key)

    def extract(record: dict[str, Any]) -> str | None:
        value: Any = record
        for key in keys:
            if not isinstance(value, dict):
                return None
            value = value.get(key)
        if isinstance(value, list):
            value = "\n".join(item for item in value if isinstance(item, str))
        if not isinstance(value, str) or not value or value.isspace():
            return None
        return value

    return extract


def _reddit_text(record: dict[str, Any], subreddits: frozenset[str]) -> str | None:
    """A comment's body, or a submission's title and self text; None when it has none, it
    was deleted or removed, or its subreddit is not one of `subreddits` (when given)."""
    if subreddits:
        name = record.get("subreddit")
        if not isinstance(name, str) or name.lower() not in subreddits:
            return None
    if "body" in record:
        text = record["body"]
        if not isinstance(text, str) or text in _GONE:
            return None
    else:
        text = record.get("title")
        if not isinstance(text, str) or text in _GONE:
            return None
        selftext = record.get("selftext")
        if isinstance(selftext, str) and selftext and selftext not in _GONE:
            text = text + "\n" + selftext
    if not text or text.isspace():
        return None
    return reduce_markdown(text)


def reduce_markdown(text: str) -> str:
    """Reddit markdown to plain text: entities unescaped (Reddit stores bodies HTML-escaped),
    links reduced to their text, quote markers dropped. Each step runs only when its
    marker occurs, since most comments have none."""
    if "&" in text:
        if "&#" in text:
            text = _LONG_REFERENCE.sub(_long_reference, text)
        text = html.unescape(text).replace("\u200b", "")  # &#x200B; marks an empty paragraph
    if "](" in text:
        text = _LINK.sub(_UNLINK, text)
    if ">" in text:
        text = _QUOTE.sub("", text)
    return text


def _long_reference(match: re.Match[str]) -> str:
    """What html.unescape makes of a long decimal character reference, without int()."""
    digits = match.group().strip("&#;").lstrip("0")
    return "\ufffd" if len(digits) > 7 else html.unescape(f"&#{digits or 0};")


def _fix_surrogates(text: str) -> str:
    """The stdlib parser keeps lone surrogate escapes, which UTF-8 cannot encode: pair the
    halves it left apart, and make a lone one U+FFFD."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")

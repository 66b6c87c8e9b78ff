"""The sentence a text run gets when its most frequent words say the sources are not text:
JSON keys (a Reddit dump or other JSON lines read as text) or WARC headers (a WET file)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..config import VocabConfig

_JSON_KEY = re.compile(r'^[{\[,]*"[^"\s]{1,40}":')  # "body": or {"author":
_WARC_HEADER = re.compile(r"^(WARC/\d|WARC-[A-Za-z-]+:|Content-(Type|Length):)")
TOP_WORDS = 30  # how many of the most frequent words are looked at
_ENOUGH = 3  # of them looking like one kind of markup


def format_hint(config: VocabConfig, top_words: Iterable[str]) -> str | None:
    """A warning naming the --format to use, when `top_words` (most frequent first) look
    like JSON keys or WARC headers and the format is text; else None."""
    if config.format != "text":
        return None
    words = list(top_words)[:TOP_WORDS]
    for pattern, what, advice in (
            (_WARC_HEADER, "WARC headers", "--format wet"),
            (_JSON_KEY, "JSON keys",
             "--format reddit for a Reddit dump, or --format jsonl --text-field FIELD")):
        seen = [w for w in words if pattern.match(w)]
        if len(seen) >= _ENOUGH:
            shown = ", ".join(seen[:4])
            return (f"warning: the most frequent words look like {what} ({shown}): the "
                    f"sources are not plain text; train them with {advice}.")
    return None

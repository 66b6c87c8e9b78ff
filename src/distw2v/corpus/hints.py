"""The warnings a run gets once its sources are read: malformed records skipped, and sources
read as text that are not (their most frequent words are JSON keys or WARC headers, or a
file began with a JSON object or a WARC record: a Reddit dump or a WET file)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from ..config import VocabConfig
from .stats import CorpusStats, malformed_warning

_JSON_KEY = re.compile(r'^[{\[,]*"[^"\s]{1,40}":')  # "body": or {"author":
_WARC_HEADER = re.compile(r"^(WARC/\d|WARC-[A-Za-z-]+:|Content-(Type|Length):)")
TOP_WORDS = 30  # how many of the most frequent words are looked at
_ENOUGH = 3  # of them looking like one kind of markup
# (kind, what its words look like, what its files begin with, the option to use)
_KINDS = (
    ("wet", _WARC_HEADER, "WARC headers", "a WARC record", "--format wet"),
    ("json", _JSON_KEY, "JSON keys", "a JSON object",
     "--format reddit for a Reddit dump, or --format jsonl --text-field FIELD"),
)


def sniff(first_line: str) -> str | None:
    """'wet' or 'json' when a text file's first line is a WARC header or a JSON object."""
    line = first_line.strip()
    if line.startswith("WARC/1."):
        return "wet"
    if line.startswith("{") and line.endswith("}"):
        try:
            return "json" if isinstance(json.loads(line), dict) else None
        except ValueError:
            return None
    return None


def format_hint(config: VocabConfig, top_words: Iterable[str],
                sniffed: str | None = None) -> str | None:
    """A warning naming the --format to use, when the format is text and `top_words` (most
    frequent first) look like JSON keys or WARC headers, or a file began with such markup
    (`sniffed`: compact JSON glues its keys to their values, so they are no frequent
    words); else None."""
    if config.format != "text":
        return None
    words = list(top_words)[:TOP_WORDS]
    for kind, pattern, what, begins, advice in _KINDS:
        seen = [w for w in words if pattern.match(w)]
        if len(seen) >= _ENOUGH:
            return (f"warning: the most frequent words look like {what} "
                    f"({', '.join(seen[:4])}): the sources are not plain text; train them "
                    f"with {advice}.")
        if sniffed == kind:
            return (f"warning: a source begins with {begins}, not plain text; train the "
                    f"sources with {advice}.")
    return None


def reading_warnings(config: VocabConfig, stats: CorpusStats,
                     top_words: Iterable[str]) -> list[str]:
    """Every warning reading gave (`top_words`: the vocabulary's, most frequent first)."""
    found = [malformed_warning(stats), format_hint(config, top_words, stats.sniffed)]
    return [warning for warning in found if warning]

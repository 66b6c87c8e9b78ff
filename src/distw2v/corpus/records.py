"""Sentences from files of records (--format wet, reddit, jsonl): each record's text, from
the format's reader (wet.py, jsonl.py), split into lines; lines repeated across a file's
records dropped (menus, cookie banners); each line tokenized; records with too few words
left out; lines longer than `max_sentence_length` tokens cut into pieces."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

from ..config import VocabConfig
from .stats import CorpusStats
from .streams import open_binary
from .tokenize import _make_transform, make_split

# Slots of the per-file table of line repeats: a count-min sketch of one row (16 MiB),
# so memory stays bounded whatever the file; a line shares a slot with another in about
# 1 case in 400 at 40,000 pages of 100 distinct lines.
_REPEAT_SLOTS = 1 << 23


class LineRepeats:
    """How many earlier records of one file had each line, by a hash of the line.

    A collision can only overcount, so it can drop a line too early, never keep a line
    that is over the limit.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.counts = np.zeros(_REPEAT_SLOTS, dtype=np.uint16)

    def keep(self, lines: list[str]) -> list[bool]:
        """Which of a record's lines to keep; counts the record for each distinct line."""
        if not lines:
            return []
        hashes = np.fromiter((zlib.crc32(line.encode()) for line in lines), np.uint32,
                             len(lines)) % _REPEAT_SLOTS
        slots, inverse = np.unique(hashes, return_inverse=True)
        seen = self.counts[slots]
        self.counts[slots] = np.minimum(seen.astype(np.uint32) + 1, np.iinfo(np.uint16).max)
        return (seen[inverse] < self.limit).tolist()  # type: ignore[no-any-return]


def iter_record_sentences(
    uri: str, config: VocabConfig, stats: CorpusStats,
    byte_range: tuple[int, int] | None = None,
) -> Iterator[list[str]]:
    """The sentences of one file of records (a byte range of it, for JSON lines)."""
    transform, split = _make_transform(config), make_split(config)
    max_len, min_words = config.max_sentence_length, config.min_record_words
    limit = config.line_repeat_limit
    with open_binary(uri, stats, byte_range, config.zstd_max_window_log) as stream:
        stats.files += 1
        repeats = LineRepeats(limit) if limit else None
        for text in _record_texts(stream, uri, stats, config):
            if transform is not None:
                text = transform(text)
            lines = [line for line in text.splitlines() if line and not line.isspace()]
            stats.lines += len(lines)
            if repeats is not None:
                kept = [line for line, keep in zip(lines, repeats.keep(lines)) if keep]
                stats.repeated_lines += len(lines) - len(kept)
                lines = kept
            sentences = [tokens for tokens in map(split, lines) if tokens]
            words = sum(map(len, sentences))
            if words < min_words or not words:
                stats.records_skipped += words < min_words
                continue
            stats.tokens += words
            for tokens in sentences:
                if len(tokens) <= max_len:
                    yield tokens
                else:
                    for start in range(0, len(tokens), max_len):
                        yield tokens[start:start + max_len]


def _record_texts(stream: BinaryIO, uri: str, stats: CorpusStats,
                  config: VocabConfig) -> Iterator[str]:
    # imported here: a text run loads neither parser
    if config.format == "wet":
        from .wet import iter_wet_texts

        return iter_wet_texts(stream, uri, stats, config.language_set)
    from .jsonl import iter_json_texts

    return iter_json_texts(stream, uri, stats, config)

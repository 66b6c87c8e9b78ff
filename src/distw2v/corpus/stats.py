"""What reading a corpus saw: files, bytes, lines, tokens, undecodable bytes; and the
sentence that says it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass


@dataclass
class CorpusStats:
    """Counters filled while reading (mutable, shared with progress bars)."""

    files: int = 0
    lines: int = 0
    tokens: int = 0  # tokens yielded, after tokenization
    invalid_utf8_lines: int = 0  # lines where invalid UTF-8 was replaced
    bytes_read: int = 0  # raw (compressed, on-storage) bytes consumed so far
    total_bytes: int | None = None  # sum of the source sizes when all are known
    decompressed_bytes: int = 0  # bytes handed out after decompression
    max_decompressed_bytes: int | None = None  # refuse to read past this (a zip bomb's end)
    records: int = 0  # records read, with a format other than text
    records_skipped: int = 0  # ... and left out by a filter (language, length, [deleted], ...)
    repeated_lines: int = 0  # lines dropped as repeated across a file's records
    malformed: int = 0  # records or lines that could not be parsed, skipped
    first_malformed: str | None = None  # where the first was, e.g. 'a.jsonl line 7'
    sniffed: str | None = None  # markup a text file began with: 'wet', 'json' (hints.py)

    def malformed_record(self, where: str) -> None:
        """Count a record that could not be parsed; `where` says where it was."""
        self.malformed += 1
        if self.first_malformed is None:
            self.first_malformed = where


def describe_stats(stats: CorpusStats) -> str:
    """One-line human summary, e.g. '3 files, 12,345 lines, 1,234,567 tokens'."""
    text = (
        f"{_plural(stats.files, 'file')}, {_plural(stats.lines, 'line')}, "
        f"{_plural(stats.tokens, 'token')}"
    )
    if stats.records:
        text += f", {_plural(stats.records, 'record')}"
        if stats.records_skipped:
            text += f" ({stats.records_skipped:,} left out by the format's filters)"
    if stats.repeated_lines:
        text += f"; {_plural(stats.repeated_lines, 'repeated line')} dropped"
    if stats.invalid_utf8_lines:
        verb = "line had" if stats.invalid_utf8_lines == 1 else "lines had"
        text += f"; {stats.invalid_utf8_lines:,} {verb} invalid UTF-8 (replaced)"
    return text


def malformed_warning(stats: CorpusStats) -> str | None:
    """The line a run with malformed records gets, shown even with --quiet."""
    if not stats.malformed:
        return None
    return (f"warning: {_plural(stats.malformed, 'malformed record')} skipped, the first at "
            f"{stats.first_malformed}.")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def tracked(sentences: Iterable[list[str]], stats: CorpusStats,
            advance: Callable[[int], None]) -> Iterator[list[str]]:
    """`sentences`, calling `advance` with the raw bytes read since its last call (each MiB
    or more, and once at the end): a progress phase in bytes."""
    seen = 0
    for tokens in sentences:
        if stats.bytes_read - seen >= 1 << 20:
            advance(stats.bytes_read - seen)
            seen = stats.bytes_read
        yield tokens
    advance(stats.bytes_read - seen)

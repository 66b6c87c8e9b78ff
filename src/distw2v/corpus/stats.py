"""What reading a corpus saw: files, bytes, lines, tokens, undecodable bytes; and the
sentence that says it."""

from __future__ import annotations

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


def describe_stats(stats: CorpusStats) -> str:
    """One-line human summary, e.g. '3 files, 12,345 lines, 1,234,567 tokens'."""
    text = (
        f"{_plural(stats.files, 'file')}, {_plural(stats.lines, 'line')}, "
        f"{_plural(stats.tokens, 'token')}"
    )
    if stats.invalid_utf8_lines:
        verb = "line had" if stats.invalid_utf8_lines == 1 else "lines had"
        text += f"; {stats.invalid_utf8_lines:,} {verb} invalid UTF-8 (replaced)"
    return text


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"

"""Sentences from files. With --format text: decompressed bytes decoded as UTF-8 with
replacement, read in fixed-size blocks (never line by line, so memory stays bounded even for
a file with no newline: a line longer than a block is cut at its last whitespace),
transformed, split into tokens (on whitespace, or by the Unicode tokenizer), and handed on in
pieces of at most `max_sentence_length` tokens. Other formats are files of records
(records.py)."""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterator, Sequence
from typing import cast

from ..config import VocabConfig
from ..errors import CorpusError
from .hints import sniff
from .phrases import PhraseTable, read_phrase_table
from .records import iter_record_sentences
from .sources import _expand_with_sizes
from .stats import CorpusStats
from .streams import DEFAULT_BLOCK_SIZE, open_binary
from .tokenize import Split, _make_transform, make_split

_BINARY_REPLACEMENT_RATIO = 0.1


# Over-long lines are tokenized in pieces of this many characters (bounds token objects).
_PIECE_SIZE = 1 << 16


_WHITESPACE = re.compile(r"\s")  # matches exactly what str.split() splits on


def _decode(data: bytes, final: bool) -> tuple[str, int, bool]:
    """Decode UTF-8, leaving an incomplete trailing sequence unconsumed unless final.

    Returns (text, bytes consumed, whether invalid bytes were replaced). Strict first,
    because it is the common case and tells us cheaply that nothing was replaced.
    """
    try:
        text, used = codecs.utf_8_decode(data, "strict", final)
        return text, used, False
    except UnicodeDecodeError:
        text, used = codecs.utf_8_decode(data, "replace", final)
        return text, used, True


def iter_sentences(
    uris: Sequence[str] | str,
    config: VocabConfig,
    stats: CorpusStats | None = None,
    *,
    block_size: int = DEFAULT_BLOCK_SIZE,
    phrases: PhraseTable | None = None,
) -> Iterator[list[str]]:
    """Yield one list of tokens per line of every source file, in order.

    Sources are expanded (and missing ones reported) before the first sentence. Lines
    longer than ``config.max_sentence_length`` tokens are cut into pieces; empty lines
    yield nothing. Memory is bounded by ``block_size`` whatever the line lengths. The
    phrases of `phrases`, or else of the table ``config.phrases`` names, are joined.
    """
    if block_size < 16:
        raise CorpusError("block_size must be at least 16 bytes.")
    files = _expand_with_sizes(uris, config)
    if stats is None:
        stats = CorpusStats()
    sizes = [size for _, size in files]
    stats.total_bytes = None if None in sizes else sum(cast(list[int], sizes))
    return _joined(_iter_files([uri for uri, _ in files], config, stats, block_size),
                   config, phrases)


def iter_sentences_in_range(
    uri: str, start: int, end: int | None, config: VocabConfig,
    stats: CorpusStats | None = None, phrases: PhraseTable | None = None,
) -> Iterator[list[str]]:
    """The sentences of the lines of `uri` that start in bytes [start, end) (a split from
    `input_splits`; end None: the whole file), cut, transformed and joined as by
    iter_sentences (a Spark task is given the driver's `phrases`)."""
    byte_range = None if end is None else (start, end)
    return _joined(_iter_files([uri], config, stats or CorpusStats(), DEFAULT_BLOCK_SIZE,
                               byte_range), config, phrases)


def load_phrases(config: VocabConfig) -> PhraseTable | None:
    """The phrase table `config.phrases` names, or None."""
    return read_phrase_table(config.phrases) if config.phrases else None


def _joined(sentences: Iterator[list[str]], config: VocabConfig,
            phrases: PhraseTable | None) -> Iterator[list[str]]:
    # the table is read here, before the first sentence: a bad one is reported at once
    table = phrases if phrases is not None else load_phrases(config)
    return table.join_all(sentences) if table else sentences


def _iter_files(
    files: list[str], config: VocabConfig, stats: CorpusStats, block_size: int,
    byte_range: tuple[int, int] | None = None,
) -> Iterator[list[str]]:
    """The sentences of each file: text in blocks (_iter_file), other formats by record."""
    if config.format != "text":
        for uri in files:
            yield from iter_record_sentences(uri, config, stats, byte_range)
        return
    transform, split = _make_transform(config), make_split(config)
    for uri in files:
        yield from _iter_file(uri, config.max_sentence_length, transform, split, stats,
                              block_size, config.zstd_max_window_log, byte_range)


def _iter_file(
    uri: str,
    max_len: int,
    transform: Callable[[str], str] | None,
    split: Split,
    stats: CorpusStats,
    block_size: int,
    zstd_window_log: int,
    byte_range: tuple[int, int] | None = None,
) -> Iterator[list[str]]:
    piece_size = min(block_size, _PIECE_SIZE)
    with open_binary(uri, stats, byte_range, zstd_window_log) as stream:
        stats.files += 1
        undecoded = b""  # at most 3 bytes of a character split across blocks
        carry = ""  # text after the last newline seen, not yet transformed
        carry_dirty = False  # carry holds text from a block with invalid UTF-8
        partial = False  # the current line already had tokens moved to `pending`
        partial_bad = False  # ... and those contained replaced bytes
        pending: list[str] = []  # tokens of the current line, fewer than max_len
        first = True
        while True:
            block = stream.read(block_size)
            final = not block
            if undecoded:
                block = undecoded + block
            text, used, replaced = _decode(block, final)
            undecoded = block[used:]
            if first:
                first = False
                _check_text(uri, block, text)
                if text.startswith("\ufeff"):  # byte-order mark
                    text = text[1:]
                stats.sniffed = stats.sniffed or sniff(text.split("\n", 1)[0])
            del block  # free the raw bytes before tokenizing
            dirty = replaced or carry_dirty
            if carry:
                text = carry + text
            newline = text.rfind("\n")
            if final:
                body, carry = text, ""
            elif newline >= 0:
                body, carry = text[:newline], text[newline + 1 :]
            else:
                body, carry = None, text
            text = ""
            if body is not None and (body or not final or partial):
                if transform is not None:
                    body = transform(body)
                lines = body.split("\n")
                del body
                stats.lines += len(lines)
                if dirty:
                    stats.invalid_utf8_lines += sum(1 for line in lines if "\ufffd" in line)
                if partial:
                    # The first line completes one whose head was already tokenized.
                    if partial_bad and not (dirty and "\ufffd" in lines[0]):
                        stats.invalid_utf8_lines += 1
                    end = len(lines[0])
                    for chunk in _feed(pending, lines[0], end, None, split, max_len,
                                       piece_size):
                        stats.tokens += len(chunk)
                        yield chunk
                    if pending:
                        stats.tokens += len(pending)
                        yield pending
                    pending, partial, partial_bad = [], False, False
                    lines[0] = ""
                for line in lines:
                    tokens = split(line)
                    if not tokens:
                        continue
                    n = len(tokens)
                    stats.tokens += n
                    if n <= max_len:
                        yield tokens
                    else:
                        for start in range(0, n, max_len):
                            yield tokens[start : start + max_len]
                del lines
            if len(carry) >= block_size:
                # A line longer than a block: tokenize all but its last (maybe cut) token.
                end = _last_token_start(carry, block_size)
                if end:
                    partial = True
                    if dirty and "\ufffd" in carry[:end]:
                        partial_bad = True
                    for chunk in _feed(pending, carry, end, transform, split, max_len,
                                       piece_size):
                        stats.tokens += len(chunk)
                        yield chunk
                    carry = carry[end:]
            carry_dirty = dirty and "\ufffd" in carry
            if final:
                break


def _check_text(uri: str, block: bytes, text: str) -> None:
    # A denominator of at least 64 keeps a tiny Latin-1 file from being called binary.
    replaced = text.count("\ufffd")
    if b"\x00" in block or replaced > _BINARY_REPLACEMENT_RATIO * max(len(text), 64):
        raise CorpusError(f"{uri} does not look like text (binary data?).")


def _token_start(text: str) -> int:
    """Index where the last token of `text` begins, or -1 if `text` has no whitespace.

    `text` must not end with whitespace.
    """
    parts = text.rsplit(None, 1)
    if len(parts) == 2 or len(parts[0]) < len(text):  # rsplit drops leading whitespace
        return len(text) - len(parts[-1])
    return -1


def _last_token_start(carry: str, block_size: int) -> int:
    """Where the unfinished last token of an over-long partial line begins.

    Everything before that index is complete tokens. A token longer than a block is
    cut (the whole carry is returned as complete).
    """
    if carry[-1].isspace():
        return len(carry)
    start = _token_start(carry[-_PIECE_SIZE:])  # look at the tail first: no big copy
    if start >= 0:
        return len(carry) - min(len(carry), _PIECE_SIZE) + start
    start = _token_start(carry)
    if start < 0 or len(carry) - start > block_size:
        return len(carry)
    return start


def _feed(
    pending: list[str],
    text: str,
    stop: int,
    transform: Callable[[str], str] | None,
    split: Split,
    max_len: int,
    piece_size: int,
) -> Iterator[list[str]]:
    """Tokenize text[:stop] into `pending`, yielding every full sentence of max_len tokens.

    The text is split in pieces of about `piece_size` characters ending at whitespace, so
    only a bounded number of token objects exist at once however long the line is.
    `stop` must be at a token boundary.
    """
    start = 0
    while start < stop:
        end = start + piece_size
        if end >= stop:
            end = stop
        elif not (text[end - 1].isspace() or text[end].isspace()):
            token = _token_start(text[start:end])
            if token > 0:
                end = start + token  # the token cut by the window goes to the next piece
            else:  # a token longer than a piece: keep it whole
                match = _WHITESPACE.search(text, end, stop)
                end = match.start() if match else stop
        piece = text[start:end]
        start = end
        if transform is not None:
            piece = transform(piece)
        pending.extend(split(piece))
        if len(pending) >= max_len:
            full = len(pending) - len(pending) % max_len
            for i in range(0, full, max_len):
                yield pending[i : i + max_len]
            del pending[:full]


"""The (word, count) TSV with a JSON header line, shared by vocabularies and model directories.

Line 1 is `# ` followed by a JSON object; every further line is `word<TAB>count`. Words never
contain whitespace (the tokenizer splits on it), so no quoting is needed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .errors import Distw2vError, ModelFormatError

BLOCK = 65536  # lines formatted at a time


def write_word_counts(
    path: str | Path, words: Iterable[str], counts: np.ndarray, header: dict[str, Any]
) -> None:
    """Write one line per count; `words` may be a one-pass iterator and must hold exactly as
    many words as `counts`."""
    words = iter(words)
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        out.write("# " + json.dumps(header, sort_keys=True) + "\n")
        for start in range(0, len(counts), BLOCK):
            block = counts[start:start + BLOCK].tolist()
            # counts first: zip stops on them without taking a word past the block
            lines = [f"{word}\t{count}\n" for count, word in zip(block, words)]
            if len(lines) < len(block):
                raise Distw2vError(f"there are fewer words than the {len(counts)} counts.")
            out.writelines(lines)
    if next(words, None) is not None:
        raise Distw2vError(f"there are more words than the {len(counts)} counts.")


def read_word_counts(path: str | Path) -> tuple[dict[str, Any], list[str], np.ndarray]:
    """Read a word-count TSV; raise ModelFormatError naming the file when it is malformed."""
    try:
        with open(path, encoding="utf-8") as src:
            first = src.readline()
            if not first.startswith("# "):
                raise ModelFormatError(
                    f"{path} has no JSON header line; it is not a vocabulary file."
                )
            try:
                header = json.loads(first[2:])
            except json.JSONDecodeError:
                raise ModelFormatError(f"{path} has a corrupt JSON header line.") from None
            words: list[str] = []
            counts: list[int] = []
            for lineno, line in enumerate(src, start=2):
                word, sep, count = line.rstrip("\n").partition("\t")
                if not sep or not word or not count.isdigit():
                    raise ModelFormatError(f"{path} line {lineno} is not 'word<TAB>count'.")
                words.append(word)
                counts.append(int(count))
    except FileNotFoundError:
        raise ModelFormatError(f"{path} is missing.") from None
    except UnicodeDecodeError:
        raise ModelFormatError(f"{path} is not valid UTF-8 text.") from None
    expected = header.get("size")
    if expected is not None and expected != len(words):
        raise ModelFormatError(
            f"{path} is truncated: its header promises {expected} words but it holds {len(words)}."
        )
    return header, words, np.asarray(counts, dtype=np.int64)

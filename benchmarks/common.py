"""Helpers shared by the benchmark scripts (run as `python benchmarks/NAME.py`)."""

from __future__ import annotations

import gzip
from pathlib import Path


def write_sample(corpus: Path, lines: int, dest: Path) -> int:
    """Copy the first `lines` lines of a (possibly gzipped) corpus to plain text at `dest`."""
    opener = gzip.open if corpus.suffix == ".gz" else open
    written = 0
    with opener(corpus, "rt", encoding="utf-8") as src, open(dest, "w", encoding="utf-8") as dst:
        for line in src:
            if written >= lines:
                break
            dst.write(line)
            written += 1
    return written

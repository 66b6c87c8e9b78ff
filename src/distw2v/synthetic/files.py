"""Writing a corpus and the file beside it atomically: both appear complete, or neither."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO


def beside(path: Path, suffix: str) -> Path:
    """The companion of corpus `path`: "x.txt" -> "x" + suffix, next to it."""
    return path.with_name(path.stem + suffix)


@contextmanager
def atomic_texts(*paths: Path) -> Iterator[list[TextIO]]:
    """Open a temporary sibling of each path for writing; on success rename them all.

    The first path (the corpus) is renamed last, so a corpus that exists always has its
    companion files. On any error the temporary files are removed and nothing is renamed."""
    temps = [p.parent / f".{p.name}.tmp-{os.getpid()}" for p in paths]
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
    outs: list[TextIO] = []
    try:
        for t in temps:
            outs.append(open(t, "w", encoding="utf-8", newline="\n"))  # noqa: SIM115
        yield outs
        for out in outs:
            out.close()
        for t, p in reversed(list(zip(temps, paths, strict=True))):
            t.replace(p)
    except BaseException:
        for out in outs:
            out.close()
        for t in temps:
            t.unlink(missing_ok=True)
        raise

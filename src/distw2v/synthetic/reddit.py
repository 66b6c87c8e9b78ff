"""Reddit-like dumps for tests and benchmarks: JSON lines of comment (or any) objects, plain
or zstd-compressed as Pushshift's are (optionally with its 2 GiB window, --long=31)."""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

_SUBREDDITS = ("AskReddit", "worldnews", "science", "programming", "books", "movies",
               "soccer", "history", "cooking", "MachineLearning")
_LINE_POOL = 100_000  # lines kept for reuse when the given lines run out before target_bytes
_EPOCH_2015 = 1_420_070_400


def write_reddit_dump(path: str | Path, items: Iterable[dict[str, Any]], *,
                      long_window: bool = False) -> None:
    """Write `items` one JSON object a line; a .zst path is zstd-compressed, with
    `long_window` as `zstd --long=31` writes it (a frame that declares a 2 GiB window, which
    decoders refuse unless told to allow it). The file appears whole or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(temp, "wb") as raw:
            if path.suffix == ".zst":
                import zstandard

                if long_window:
                    params = zstandard.ZstdCompressionParameters.from_level(
                        3, window_log=31, enable_ldm=True)
                    compressor = zstandard.ZstdCompressor(compression_params=params)
                else:
                    compressor = zstandard.ZstdCompressor(level=3)
                # No size given: the frame keeps the window it was asked for.
                with compressor.stream_writer(raw, closefd=False) as out:
                    _write_lines(out, items)
            else:
                _write_lines(raw, items)
        temp.replace(path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def _write_lines(out: BinaryIO | Any, items: Iterable[dict[str, Any]]) -> None:
    batch: list[bytes] = []
    for item in items:
        batch.append(orjson.dumps(item))
        if len(batch) >= 4096:  # fewer, larger writes
            out.write(b"\n".join(batch) + b"\n")
            batch = []
    if batch:
        out.write(b"\n".join(batch) + b"\n")


def write_reddit_corpus(path: str | Path, text_lines: Iterable[str], target_bytes: int,
                        seed: int) -> int:
    """Write Reddit-like comments whose bodies are 1 to 5 of `text_lines` (reused when they
    run out) until about `target_bytes` of JSON lines; returns the comments written.

    About 5% are "[deleted]" or "[removed]"; some bodies hold a markdown link, an HTML-escaped
    '&' or a quote, as Pushshift's dumps do. The output depends only on the arguments."""
    rng = random.Random(seed)
    comments = _comments(iter(text_lines), target_bytes, rng)
    count = 0

    def counted() -> Iterator[dict[str, Any]]:
        nonlocal count
        for comment in comments:
            count += 1
            yield comment

    write_reddit_dump(path, counted())
    return count


def _comments(lines: Iterator[str], target_bytes: int,
              rng: random.Random) -> Iterator[dict[str, Any]]:
    pool: list[str] = []
    written = 0
    number = 0

    def next_line() -> str:
        line = next(lines, None)
        if line is None:
            if not pool:
                raise ValueError("text_lines is empty.")
            return rng.choice(pool)
        if len(pool) < _LINE_POOL:
            pool.append(line)
        return line

    while written < target_bytes:
        number += 1
        roll = rng.random()
        if roll < 0.03:
            body = "[deleted]"
        elif roll < 0.05:
            body = "[removed]"
        else:
            body = "\n\n".join(next_line() for _ in range(rng.randint(1, 5)))
            if roll < 0.10:
                body += f" [see here](https://example.com/{rng.randrange(10**6)})"
            elif roll < 0.14:
                body = body.replace(" ", " &amp; ", 1)
            elif roll < 0.17:
                body = "&gt; " + body
        subreddit = rng.choice(_SUBREDDITS)
        comment = {
            "author": "[deleted]" if body == "[deleted]" else f"user{rng.randrange(50_000)}",
            "body": body,
            "controversiality": int(rng.random() < 0.02),
            "created_utc": _EPOCH_2015 + number * 3 + rng.randrange(3),
            "gilded": 0,
            "id": _base36(10**9 + number),
            "link_id": "t3_" + _base36(10**8 + number // 50),
            "parent_id": "t1_" + _base36(10**9 + max(number - rng.randrange(1, 20), 1)),
            "score": int(rng.paretovariate(1.5)) - rng.randrange(3),
            "subreddit": subreddit,
            "subreddit_id": "t5_" + _base36(_SUBREDDITS.index(subreddit) + 4000),
        }
        written += len(orjson.dumps(comment)) + 1  # the same bytes _write_lines writes
        yield comment


def _base36(n: int) -> str:
    digits = ""
    while True:
        n, d = divmod(n, 36)
        digits = "0123456789abcdefghijklmnopqrstuvwxyz"[d] + digits
        if n == 0:
            return digits

"""Reading + tokenizing throughput of every corpus format, against the local trainer's speed.

Generates (once, into --work) files of at least --megabytes MB of decompressed data from the
shared English corpus: plain text (.txt), a Common Crawl-style WET file (.warc.wet.gz, one
gzip member a record, pages with menus and cookie banners), a Reddit comment dump (.zst with
a long window) and the same dump read as jsonl (--text-field body). Each is read by
distw2v's reader in one process (one core): MB/s of the file's bytes and of its decompressed
bytes, and tokens/s. The local trainer's words/s per core (the training phase of a run on
the English corpus) is measured beside it, and the ratio printed: reading is not the
bottleneck while a core reads faster than a core trains (a run reads twice: counting, then
encoding; it trains --epochs times).

    python benchmarks/formats.py                  # 200 MB of each
    python benchmarks/formats.py --megabytes 50 --formats wet reddit
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import Settings, machine

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results" / "formats.json"
FORMATS = ("text", "wet", "reddit", "jsonl")


def english_lines() -> Iterator[str]:
    """The English corpus's lines, over and over."""
    while True:
        with gzip.open(SHARED / "english.txt.gz", "rt", encoding="utf-8") as lines:
            for line in lines:
                if line.strip():
                    yield line.rstrip("\n")


def generate(fmt: str, work: Path, target: int) -> tuple[Path, dict[str, Any]]:
    """The benchmark file of a format (written once) and the settings to read it with."""
    from distw2v.synthetic.reddit import write_reddit_corpus
    from distw2v.synthetic.wet import write_wet_corpus

    work.mkdir(parents=True, exist_ok=True)
    paths = {"text": work / f"english-{target >> 20}M.txt",
             "wet": work / f"crawl-{target >> 20}M.warc.wet.gz",
             "reddit": work / f"RC-{target >> 20}M.zst",
             "jsonl": work / f"RC-{target >> 20}M.zst"}
    settings = {"text": {}, "wet": {"format": "wet"}, "reddit": {"format": "reddit"},
                "jsonl": {"format": "jsonl", "text_field": "body"}}
    path = paths[fmt]
    if not path.exists():
        partial = path.with_name(".partial-" + path.name)  # the writers go by the suffix
        started = time.perf_counter()
        if fmt == "text":
            with open(partial, "w", encoding="utf-8") as out:
                written = 0
                for line in english_lines():
                    if written >= target:
                        break
                    out.write(line + "\n")
                    written += len(line.encode()) + 1
        elif fmt == "wet":
            write_wet_corpus(partial, english_lines(), target, seed=1)
        else:
            plain = partial.with_suffix(".jsonl")
            write_reddit_corpus(plain, english_lines(), target, seed=1)
            import zstandard

            params = zstandard.ZstdCompressionParameters.from_level(
                3, window_log=31, enable_ldm=True)
            with open(plain, "rb") as src, open(partial, "wb") as dst:
                zstandard.ZstdCompressor(compression_params=params).copy_stream(src, dst)
            plain.unlink()
        partial.rename(path)
        print(f"wrote {path} ({path.stat().st_size >> 20} MiB) in "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path, settings[fmt]


def read_all(path: Path, settings: dict[str, Any]) -> dict[str, Any]:
    """Read and tokenize the whole file in this process."""
    from distw2v.config import VocabConfig
    from distw2v.corpus import CorpusStats, iter_sentences

    stats = CorpusStats()
    config = VocabConfig(**settings)
    cpu, wall = time.process_time(), time.perf_counter()
    tokens = 0
    for sentence in iter_sentences([str(path)], config, stats):
        tokens += len(sentence)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"file_mb": path.stat().st_size / 1e6, "decompressed_mb": stats.decompressed_bytes / 1e6,
            "tokens": tokens, "records": stats.records, "records_skipped": stats.records_skipped,
            "repeated_lines": stats.repeated_lines, "wall_s": wall, "cpu_s": cpu,
            "file_mb_per_s": path.stat().st_size / 1e6 / wall,
            "decompressed_mb_per_s": stats.decompressed_bytes / 1e6 / wall,
            "tokens_per_s": tokens / wall, "tokenizer": "unicode" if config.unicode_tokens
            else "whitespace"}


def training_speed(workers: int) -> dict[str, Any]:
    """The local trainer's training-phase words/s on the English corpus (2 epochs)."""
    import tempfile

    from distw2v.config import VocabConfig
    from distw2v.pipeline import build_vocab, encode, train_vectors

    source = [str(SHARED / "english.txt.gz")]
    vocab, _ = build_vocab(source, VocabConfig())
    with tempfile.TemporaryDirectory() as tmp:
        encoded, _ = encode(source, vocab, Path(tmp) / "encoded")
        started = time.perf_counter()
        train_vectors(encoded, vocab, Settings(epochs=2, workers=workers).train_config(1))
        seconds = time.perf_counter() - started
    words_per_s = 2 * encoded.corpus_words / seconds
    return {"workers": workers, "words_per_s": words_per_s,
            "words_per_s_per_core": words_per_s / workers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--megabytes", type=int, default=200,
                        help="decompressed size of each generated file (default: 200)")
    parser.add_argument("--formats", nargs="+", choices=FORMATS, default=list(FORMATS))
    parser.add_argument("--work", type=Path,
                        default=Path(os.environ.get("TMPDIR", "/tmp")) / "distw2v-formats",
                        help="where the generated files are kept between runs")
    parser.add_argument("--workers", type=int, default=2, help="the trainer's threads")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    train = training_speed(args.workers)
    print(f"local trainer, training phase: {train['words_per_s']:,.0f} words/s on "
          f"{args.workers} threads = {train['words_per_s_per_core']:,.0f} a core")
    rows = {}
    for fmt in args.formats:
        path, settings = generate(fmt, args.work, args.megabytes << 20)
        row = read_all(path, settings)
        row["read_vs_train_per_core"] = row["tokens_per_s"] / train["words_per_s_per_core"]
        rows[fmt] = row
        print(f"{fmt:7s} {row['file_mb']:7.0f} MB on disk, {row['decompressed_mb']:7.0f} MB "
              f"decompressed: {row['file_mb_per_s']:6.1f} MB/s of file, "
              f"{row['decompressed_mb_per_s']:6.1f} MB/s decompressed, "
              f"{row['tokens_per_s'] / 1e6:5.2f}M tokens/s a core "
              f"({row['tokenizer']}) = {row['read_vs_train_per_core']:.1f}x a core's training")
    result = {"machine": machine(), "megabytes": args.megabytes, "training": train,
              "formats": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

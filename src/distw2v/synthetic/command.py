"""The generators' command line: `zipf` (the default, so the old flags still work),
`planted`, `sessions` and `phrases`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from .phrases import write_phrase_corpus
from .planted import write_planted_corpus
from .sessions import write_session_corpus
from .zipf import write_zipf_corpus

PROG = "python -m distw2v.synthetic"
T = TypeVar("T")


def _zipf(argv: Sequence[str]) -> str:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Write a Zipf-like corpus of pseudo-words in which every word "
        f"occurs (the default command; see also `{PROG} planted -h` and `sessions -h`).")
    parser.add_argument("--vocab-size", type=int, required=True, help="distinct words")
    parser.add_argument("--tokens", type=int, required=True, help="words in all")
    parser.add_argument("--out", required=True, help="output directory (a file with "
                        "--words-per-file 0)")
    parser.add_argument("--exponent", type=float, default=1.0, help="Zipf exponent (1.0)")
    parser.add_argument("--sentence-length", type=int, default=20, help="words a line (20)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--words-per-file", type=int, default=10_000_000,
                        help="words per part file (10,000,000); 0 writes one file")
    args = parser.parse_args(argv)
    info = _run(parser, lambda: write_zipf_corpus(
        args.out, vocab_size=args.vocab_size, tokens=args.tokens, exponent=args.exponent,
        sentence_length=args.sentence_length, seed=args.seed,
        words_per_file=args.words_per_file or None))
    return (f"wrote {info.tokens:,} words ({info.vocab_size:,} distinct) in {len(info.files)} "
            f"file(s), {info.bytes / 1e6:,.1f} MB, to {args.out}")


def _planted(argv: Sequence[str]) -> str:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} planted", description="Write a corpus of planted relations (countries "
        "and their capitals, languages, currencies, leaders) and its analogies file.")
    parser.add_argument("--out", required=True, help="corpus file; the analogies go to "
                        "<stem>.analogies.txt beside it")
    parser.add_argument("--tokens", type=int, default=1_000_000, help="words (1,000,000)")
    parser.add_argument("--entities", type=int, default=40, help="countries (40)")
    parser.add_argument("--filler-vocab", type=int, default=20_000,
                        help="distinct Zipf filler words (20,000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    args = parser.parse_args(argv)
    info = _run(parser, lambda: write_planted_corpus(
        args.out, tokens=args.tokens, entities=args.entities, filler_vocab=args.filler_vocab,
        seed=args.seed))
    return (f"wrote {info.tokens:,} words in {info.sentences:,} sentences about "
            f"{info.entities} entities to {info.path}, analogies to {info.analogies}")


def _phrases(argv: Sequence[str]) -> str:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} phrases", description="Write a corpus of planted multi-word names "
        "(countries, capitals, leaders) whose words also occur apart, the names and an "
        "analogies file over the joined names.")
    parser.add_argument("--out", required=True, help="corpus file; <stem>.phrases.txt and "
                        "<stem>.analogies.txt go beside it")
    parser.add_argument("--tokens", type=int, default=2_000_000, help="words (2,000,000)")
    parser.add_argument("--entities", type=int, default=60, help="countries (60)")
    parser.add_argument("--distractor-rate", type=float, default=1.0,
                        help="chance that a name's word is also written alone, each time the "
                        "name is written (1.0)")
    parser.add_argument("--filler-vocab", type=int, default=20_000,
                        help="distinct Zipf filler words (20,000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    args = parser.parse_args(argv)
    info = _run(parser, lambda: write_phrase_corpus(
        args.out, tokens=args.tokens, entities=args.entities,
        distractor_rate=args.distractor_rate, filler_vocab=args.filler_vocab, seed=args.seed))
    return (f"wrote {info.tokens:,} words with {len(info.names)} planted names to {info.path}, "
            f"the names to {info.phrases}, analogies to {info.analogies}")


def _sessions(argv: Sequence[str]) -> str:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} sessions", description="Write item-id sessions drawn from planted "
        "clusters and the items' cluster labels.")
    parser.add_argument("--out", required=True, help="corpus file; the labels go to "
                        "<stem>.labels.tsv beside it")
    parser.add_argument("--sessions", type=int, default=100_000, help="sessions (100,000)")
    parser.add_argument("--items", type=int, default=5_000, help="distinct items (5,000)")
    parser.add_argument("--clusters", type=int, default=50, help="clusters (50)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    args = parser.parse_args(argv)
    info = _run(parser, lambda: write_session_corpus(
        args.out, sessions=args.sessions, items=args.items, clusters=args.clusters,
        seed=args.seed))
    return (f"wrote {info.sessions:,} sessions ({info.tokens:,} items, {info.items:,} distinct, "
            f"{info.clusters} clusters) to {info.path}, labels to {info.labels}")


def _run(parser: argparse.ArgumentParser, write: Callable[[], T]) -> T:
    """The generator's result; a ValueError becomes one line and exit code 2."""
    try:
        return write()
    except ValueError as exc:
        parser.exit(2, f"error: {exc}\n")


COMMANDS: dict[str, Callable[[Sequence[str]], str]] = {
    "zipf": _zipf, "planted": _planted, "sessions": _sessions, "phrases": _phrases}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args and args[0] in COMMANDS else "zipf"
    print(COMMANDS[command](args))
    return 0

"""The `distw2v` command: argument parsing, progress bars and exit codes, nothing more.

Options for vocabulary and training settings are generated from the config dataclasses, so
`--help` always lists every setting with its default. Errors the user can fix print one line
and exit with 2 (an error class may carry its own `exit_code`: an evaluation with nothing to
score exits with 1); a misspelt --flag is answered with the flag it resembles, and gensim's
name for a setting with distw2v's (gensim_names.py, the table distw2v.train uses too).
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import __version__, ann
from .config import PhrasesConfig, RunConfig, SparkConfig, TrainConfig, VocabConfig
from .errors import Distw2vError
from .gensim_names import gensim_hint
from .options import add_config_options, config_from_args
from .progress import Bars, OnProgress

EXIT_USAGE = 2
MODEL_HELP = ("model directory, word2vec file (binary or text), or the id of a succeeded "
              "job on a `distw2v serve` (with --server, or $DISTW2V_SERVER)")


# --- progress and output ---------------------------------------------------------------------


def _progress(quiet: bool) -> OnProgress | None:
    return None if quiet else Bars()


def _log(quiet: bool) -> Any:
    """Where the engines' lines go: stderr; with --quiet only their warnings."""
    def log(text: str) -> None:
        if not quiet or text.startswith("warning:"):
            from tqdm import tqdm

            tqdm.write(text, file=sys.stderr)  # above a progress bar under way, not in it
    return log


# --- commands ----------------------------------------------------------------------------------


def cmd_vocab(args: argparse.Namespace) -> None:
    from .corpus import describe_stats
    from .corpus.hints import TOP_WORDS, reading_warnings
    from .pipeline import build_vocab
    from .vocab import describe

    vocab, stats = build_vocab(args.sources, config_from_args(VocabConfig, args),
                               _progress(args.quiet))
    vocab.save(args.out)
    _log(args.quiet)("read " + describe_stats(stats))
    for warning in reading_warnings(vocab.config, stats, vocab.words[:TOP_WORDS]):
        print(warning, file=sys.stderr)
    print(f"{describe(vocab)}; written to {args.out}")


def cmd_phrases(args: argparse.Namespace) -> None:
    from .corpus import describe_stats
    from .corpus.phrases import write_phrase_table

    vocab_config = config_from_args(VocabConfig, args)
    config = config_from_args(PhrasesConfig, args)
    _check_creatable(Path(args.out), f"--out {args.out}")
    if args.engine == "spark":
        from .distributed.phrases import find_phrases_on_spark

        table, stats = find_phrases_on_spark(args.sources, vocab_config, config,
                                             config_from_args(SparkConfig, args),
                                             _progress(args.quiet), _log(args.quiet))
    else:
        from .phrases import find_phrases

        table, stats = find_phrases(args.sources, vocab_config, config, _progress(args.quiet),
                                    _log(args.quiet))
        _log(args.quiet)("read " + describe_stats(stats))
    write_phrase_table(args.out, table)
    print(f"{len(table):,} phrase(s) ({config.scoring} score above {config.min_score:g}) "
          f"written to {args.out}")


def cmd_encode(args: argparse.Namespace) -> None:
    from .pipeline import encode
    from .vocab import Vocabulary

    vocab = Vocabulary.load(args.vocab)
    encoded, _ = encode(args.sources, vocab, args.out, _progress(args.quiet))
    print(f"encoded {encoded.words:,} of {encoded.corpus_words:,} corpus words into "
          f"{len(encoded.shards)} shard(s) in {args.out}")


def _check_creatable(path: Path, what: str) -> None:
    """One sentence when `path` (a directory or file to be made) could not be created: the
    closest of its parents that exists must be a writable directory."""
    base = path.absolute().parent
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise Distw2vError(f"cannot create {what}: {base} is a file, not a directory.")
    if not os.access(base, os.W_OK | os.X_OK):
        raise Distw2vError(f"cannot create {what}: {base} is not writable.")


def _check_train_outputs(args: argparse.Namespace, checkpoint_dir: str | None) -> None:
    """Refuse an --out, --word2vec-out or --checkpoint-dir that cannot be written, before any
    counting: otherwise each would fail only once training is done."""
    from .vectors import META_FILE

    out: Path = args.out
    if out.exists():
        if not out.is_dir():
            raise Distw2vError(f"--out {out} is a file; the model is a directory, so give a "
                               "new path (or a model directory to replace with --overwrite).")
        if not args.overwrite:
            raise Distw2vError(f"{out} exists; pass --overwrite to replace it.")
        if not (out / META_FILE).is_file() and any(out.iterdir()):
            raise Distw2vError(f"--overwrite replaces only a model, and {out} is a directory "
                               "that holds no model; give a new path or an empty directory.")
    _check_creatable(out, f"--out {out}")
    if args.word2vec_out is not None:
        w2v: Path = args.word2vec_out
        if w2v.is_dir():
            raise Distw2vError(f"--word2vec-out {w2v} is a directory; give a file name.")
        if not w2v.absolute().parent.is_dir():
            raise Distw2vError(f"the directory of --word2vec-out {w2v} does not exist.")
        _check_creatable(w2v, f"--word2vec-out {w2v}")
    if checkpoint_dir and ("://" not in checkpoint_dir or checkpoint_dir.startswith("file://")):
        local = Path(checkpoint_dir.removeprefix("file://"))
        if local.exists() and not local.is_dir():
            raise Distw2vError(f"--checkpoint-dir {checkpoint_dir} is a file, not a directory.")
        _check_creatable(local, f"the checkpoint directory {checkpoint_dir}")


def cmd_train(args: argparse.Namespace) -> None:
    from .encode import EncodedCorpus
    from .engines import engine_named
    from .vocab import Vocabulary

    vocab_config = config_from_args(VocabConfig, args)
    train_config = config_from_args(TrainConfig, args)
    if not args.sources and args.encoded is None:
        raise Distw2vError("give a corpus SOURCE, or --encoded DIR with --vocab FILE.")
    if args.encoded is not None and args.vocab is None:
        raise Distw2vError("--encoded needs the --vocab it was encoded with.")
    run_config = config_from_args(RunConfig, args)
    _check_train_outputs(args, run_config.checkpoint_dir)
    spark_config = config_from_args(SparkConfig, args)
    vocab = Vocabulary.load(args.vocab) if args.vocab else None
    encoded = EncodedCorpus.open(args.encoded) if args.encoded else None
    if args.ann_threshold is not None and args.ann_threshold < 0:
        raise Distw2vError("--ann-threshold must be 0 (no index) or a number of words.")
    engine = engine_named(run_config.engine, spark_config, vocab, encoded)
    vectors, summary = engine.train(args.sources, args.out, vocab_config, train_config,
                                    run_config=run_config, word2vec=args.word2vec_out,
                                    on_progress=_progress(args.quiet), log=_log(args.quiet),
                                    ann_threshold=args.ann_threshold)
    print(summary.line())
    print(f"model: {len(vectors):,} words x {vectors.dim} dims written to {args.out}")


def _shard_secret(args: argparse.Namespace) -> str | None:
    """The secret from --secret-file, else from the environment (how a driver passes it)."""
    from .distributed.server import SECRET_ENV

    if args.secret_file is None:
        return os.environ.get(SECRET_ENV) or None
    try:
        secret = Path(args.secret_file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise Distw2vError(f"cannot read --secret-file {args.secret_file}: "
                           f"{getattr(exc, 'strerror', None) or exc}.") from None
    if not secret:
        raise Distw2vError(f"--secret-file {args.secret_file} is empty.")
    return secret


def cmd_ps_shard(args: argparse.Namespace) -> None:
    from .distributed.processes import ANNOUNCE
    from .distributed.server import serve_forever

    def announce(port: int) -> None:
        print(f"{ANNOUNCE}{args.host}:{port}", flush=True)

    serve_forever(args.host, args.port, args.threads, announce, args.stop_on_stdin_eof,
                  secret=_shard_secret(args), checkpoint_root=args.checkpoint_root,
                  work_root=args.work_dir, stream_port=args.stream_port)


def cmd_ps_secret(args: argparse.Namespace) -> None:
    from .distributed.server import new_secret
    from .distributed.tls import with_tls

    secret = new_secret()
    print(with_tls(secret) if args.tls else secret)


def _load_model(path: str) -> Any:
    """The Vectors at `path`: a regular file is read as word2vec (binary or text), anything
    else as a model directory."""
    from .vectors import Vectors

    if Path(path).is_file():
        return Vectors.load_word2vec(path)
    return Vectors.load(path)


def _check_topn(topn: int) -> None:
    if topn < 1:
        raise Distw2vError(f"--topn must be at least 1, not {topn}.")


def cmd_eval(args: argparse.Namespace) -> None:
    from .evaluate import (
        evaluate_analogies,
        evaluate_purity,
        evaluate_similarity,
        format_table,
        results_to_json,
    )

    if not args.analogies and not args.similarity and not args.purity:
        raise Distw2vError("give at least one --analogies, --similarity or --purity file.")
    vectors = _load_model(args.model)
    results: list[Any] = [
        evaluate_analogies(vectors, path, restrict_vocab=args.restrict_vocab,
                           case_insensitive=not args.case_sensitive)
        for path in args.analogies
    ]
    results += [evaluate_similarity(vectors, path, case_insensitive=not args.case_sensitive,
                                    require_pairs=True)
                for path in args.similarity]
    results += [evaluate_purity(vectors, path, case_insensitive=not args.case_sensitive)
                for path in args.purity]
    print(format_table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results_to_json(results), indent=2) + "\n")


def cmd_similar(args: argparse.Namespace) -> None:
    from .service.cli import on_server, similar_on_server

    _check_topn(args.topn)
    if on_server(args):
        similar_on_server(args)
        return
    vectors = _load_model(args.model)
    for word in args.words:
        print(f"{word}:")
        for other, score in vectors.most_similar(word, topn=args.topn):
            print(f"  {other:<24} {score:.4f}")


def cmd_analogy(args: argparse.Namespace) -> None:
    from .service.cli import analogy_on_server, on_server

    _check_topn(args.topn)
    if on_server(args):
        analogy_on_server(args)
        return
    vectors = _load_model(args.model)
    print(f"{args.a} : {args.b} :: {args.c} : ?")
    for word, score in vectors.analogy(args.a, args.b, args.c, topn=args.topn,
                                       method=args.method):
        print(f"  {word:<24} {score:.4f}")


def cmd_index(args: argparse.Namespace) -> None:
    from .vectors import add_index

    record = add_index(args.model, log_line=(lambda _: None) if args.quiet else print)
    print(f"indexed {record['rows']:,} rows into {Path(args.model) / record['file']} in "
          f"{record['build_seconds']} s")


def cmd_export(args: argparse.Namespace) -> None:
    from .vectors import Vectors

    vectors = Vectors.load(args.model)
    vectors.save_word2vec(args.out, binary=args.format == "word2vec-bin")
    print(f"wrote {len(vectors):,} vectors to {args.out} ({args.format})")


# --- parser ------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse's parser, but an unknown --flag that resembles a real one is answered with it:
    `--min_count 3` -> "did you mean --min-count?". Every command's parser is of this class
    (add_subparsers makes them of the parent's), the service's commands included."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = super().parse_known_args(args, namespace)
        if self._subparsers is None:  # a command's parser: it holds all the command's flags
            known = [o for o in self._option_string_actions if o.startswith("--")]
            for extra in extras:
                flag = extra.split("=", 1)[0]
                if not flag.startswith("--") or flag == "--":
                    continue
                hint = gensim_hint(flag, cli=True) if "--dim" in known else None
                if hint:  # a gensim user's name, on a command that trains
                    self.exit(EXIT_USAGE, f"{self.prog}: error: unrecognized argument {flag}; "
                              f"{hint}.\n")
                dashed = flag.replace("_", "-")
                guess = [dashed] if dashed in known else difflib.get_close_matches(flag, known, 1)
                if guess:
                    self.exit(EXIT_USAGE, f"{self.prog}: error: unrecognized argument {flag}; "
                              f"did you mean {guess[0]}?\n")
        return parsed, extras


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="distw2v",
        description="Train word2vec (skip-gram / CBOW, negative sampling) on large corpora "
        "and query the vectors. SOURCE is a file, a directory, a glob, or an fsspec URL "
        "(s3://, https://, hdfs://); .gz .bz2 .xz .zst are decompressed; one sentence a line.",
    )
    parser.add_argument("--version", action="version", version=f"distw2v {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from .service.cli import add_model_options

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or logs")
        return p

    p = command("vocab", "count words in a corpus and save the vocabulary (TSV)")
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--out", required=True, help="vocabulary file to write")
    add_config_options(p, VocabConfig, "vocabulary")
    p.set_defaults(run=cmd_vocab)

    p = command("phrases", "find phrases (bigrams that occur together far more often than "
                "apart, as word2phrase and gensim's Phrases do) and write them as a TSV for "
                "`train --phrases`; a bigram seen fewer than --min-count times is never one")
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--out", required=True, help="phrase table to write (TSV: phrase, score, "
                   "count, pass, left, right)")
    p.add_argument("--engine", choices=("local", "spark"), default="local",
                   help="count on this machine, or on Spark's executors (default: local)")
    add_config_options(p, PhrasesConfig, "phrases")
    add_config_options(p, VocabConfig, "counting (as `distw2v vocab`)",
                       exclude=("max_final_vocab", "phrases"))
    add_config_options(p, SparkConfig, "spark engine (with --engine spark)",
                       exclude=tuple(f.name for f in dataclasses.fields(SparkConfig)
                                     if f.name not in ("spark_master", "partitions",
                                                       "max_cores")))
    p.set_defaults(run=cmd_phrases)

    p = command("encode", "turn a corpus into int32 id shards for repeated training")
    p.add_argument("sources", nargs="+", metavar="SOURCE")
    p.add_argument("--vocab", required=True, help="vocabulary file from `distw2v vocab`")
    p.add_argument("--out", required=True, type=Path, help="directory to write the shards to")
    p.set_defaults(run=cmd_encode)

    p = command("train", "train vectors: vocabulary, encoding and training in one go")
    p.add_argument("sources", nargs="*", metavar="SOURCE",
                   help="corpus files, directories, globs or URLs (omit with --encoded)")
    p.add_argument("--out", required=True, type=Path, help="model directory to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--vocab", help="use this vocabulary file instead of counting")
    p.add_argument("--encoded", help="train on this encoded corpus (needs --vocab)")
    p.add_argument("--word2vec-out", type=Path, metavar="FILE",
                   help="also write the vectors in word2vec format (text if FILE ends in .txt)")
    p.add_argument("--ann-threshold", type=int, default=None, metavar="WORDS",
                   help="models of at least WORDS words get a nearest-neighbour index for "
                   f"fast queries; 0 never (default: {ann.DEFAULT_THRESHOLD})")
    add_config_options(p, VocabConfig, "vocabulary")
    add_config_options(p, TrainConfig, "training")
    add_config_options(p, SparkConfig, "spark engine (with --engine spark)")
    add_config_options(p, RunConfig, "engine and checkpoints")
    p.set_defaults(run=cmd_train)

    p = command("ps-shard", "run one parameter-server shard (for --engine spark --ps ...)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=7070, help="port; 0 picks a free one "
                   "(default: 7070)")
    p.add_argument("--stream-port", type=int, default=0,
                   help="port of the training calls' stream, on the same host (clients learn "
                   "it from the shard); 0 picks a free one (default: 0)")
    p.add_argument("--threads", type=int, default=8,
                   help="gRPC requests served at once; the stream serves each client on its "
                   "own thread (default: 8)")
    p.add_argument("--stop-on-stdin-eof", action="store_true",
                   help="exit when standard input closes (used by a driver that starts shards)")
    p.add_argument("--secret-file", metavar="PATH",
                   help="file holding the run's secret, which every call must carry; without "
                   "it, $DISTW2V_SHARD_SECRET (a driver given --ps reads the same variable); "
                   "needed for a --host other than loopback")
    p.add_argument("--work-dir", metavar="URI",
                   help="the driver's --work-dir: word counts are read only from under it "
                   "(without it, only from a local path)")
    p.add_argument("--checkpoint-root", metavar="URI",
                   help="checkpoints are written and read only under it, e.g. the run's "
                   "--checkpoint-dir (without it, none are taken)")
    p.set_defaults(run=cmd_ps_shard)

    p = command("ps-secret", "print a new secret for shards an operator runs (ps-shard "
                "--secret-file, and $DISTW2V_SHARD_SECRET for the driver given --ps)")
    p.add_argument("--tls", action="store_true",
                   help="the secret also carries a key and certificate made for the run: "
                   "shards serve TLS with them and clients trust that certificate only")
    p.set_defaults(run=cmd_ps_secret)

    p = command("eval", "evaluate a model on analogy, word-similarity and cluster-label files")
    p.add_argument("model", help="model directory, or word2vec file (binary or text)")
    p.add_argument("--analogies", action="append", default=[], metavar="FILE",
                   help="questions-words format file (repeatable)")
    p.add_argument("--similarity", action="append", default=[], metavar="FILE",
                   help="'word word score' file, e.g. WordSim353 or SimLex999 (repeatable)")
    p.add_argument("--purity", action="append", default=[], metavar="LABELS",
                   help="'item<TAB>cluster' file: share of each item's 10 nearest neighbours "
                   "in its cluster (repeatable)")
    p.add_argument("--restrict-vocab", type=int, default=300_000,
                   help="answer analogies among this many most frequent words "
                   "(default: %(default)s)")
    p.add_argument("--case-sensitive", action="store_true",
                   help="do not lower-case evaluation words")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.set_defaults(run=cmd_eval)

    p = command("similar", "nearest neighbours of words by cosine similarity")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("words", nargs="+", metavar="WORD")
    p.add_argument("--topn", type=int, default=10, help="neighbours to show (default: 10)")
    add_model_options(p)
    p.set_defaults(run=cmd_similar)

    p = command("analogy", "a is to b as c is to ?")
    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("c")
    p.add_argument("--topn", type=int, default=5, help="answers to show (default: 5)")
    p.add_argument("--method", choices=("3cosadd", "3cosmul"), default="3cosadd",
                   help="3CosAdd or Levy & Goldberg's 3CosMul (default: 3cosadd)")
    add_model_options(p)
    p.set_defaults(run=cmd_analogy)

    p = command("index", "build the nearest-neighbour index of a model, for fast queries")
    p.add_argument("model", help="model directory")
    p.set_defaults(run=cmd_index)

    p = command("export", "write a model in the word2vec text or binary format")
    p.add_argument("model", help="model directory")
    p.add_argument("out", help="file to write")
    p.add_argument("--format", choices=("word2vec-bin", "word2vec-text"), default="word2vec-bin",
                   help="output format (default: word2vec-bin)")
    p.set_defaults(run=cmd_export)

    from .service.cli import add_commands as add_service_commands

    add_service_commands(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except Distw2vError as exc:
        print(f"distw2v {args.command}: error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", EXIT_USAGE))  # 2, or a class's own (e.g. 1)
    except KeyboardInterrupt:
        print(f"distw2v {args.command}: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # disk full, permission denied, ...: the OS said it in one line
        print(f"distw2v {args.command}: error: {exc.strerror or exc}: "
              f"{exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return EXIT_USAGE
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Every system on every kind of corpus, same settings and cores, in one run (issue 10).

Corpora (--corpora; generated ones are cached under build/bench-corpora/, keyed by their
arguments and the generator's source):
* english: ../shared/data/english.txt.gz, decompressed once; WordSim353 and SimLex999
  (Spearman), questions-words analogies (3CosAdd), all with distw2v's evaluators.
* planted: distw2v.synthetic.write_planted_corpus, default arguments (1M tokens); accuracy
  on the analogies the generator planted.
* sessions: distw2v.synthetic.write_session_corpus, default arguments; neighbour purity
  (k=10) against the planted clusters.
* zipf: distw2v.synthetic.write_zipf_corpus, ZIPF below: 10M tokens over exactly 1M distinct
  words, all of them kept by min_count 1 (at min_count 5 a million words would need ~60M
  tokens, far too slow for the C peers here), 2 epochs for every system; input and output
  matrices of 400 MB each, far beyond any cache. Figure: the share of rows that are finite
  and non-zero (a sanity check only).

Systems (--systems), each run in its own subprocess so wall time and peak RSS are its own:
* gensim: 4.x corpus_file mode with total_examples = lines per thread (the learning-rate fix
  that vs_gensim.py explains; common.train_gensim).
* local: distw2v pipeline.build_vocab, encode, train_vectors (common.train_local).
* spark: distw2v's Spark engine, local[2], 2 shards, 2 partitions (common.train_spark_engine;
  peak MiB sums driver, JVM, shards and two executor workers).
* word2vec: Mikolov's word2vec.c from the word2vec==0.11.1 sdist, compiled here (peers.py).
* fasttext: the fasttext command, -minn 0 -maxn 0 (peers.py).
Settings: d=100, window 5, negative 5, sample 1e-3, min_count 5 (zipf: 1), 5 epochs (zipf:
2; --epochs overrides both), 2 threads; skip-gram, or CBOW with --model cbow (alpha 0.025 for
skip-gram and 0.05 for CBOW in every system). Every system reads the same plain-text file.

Timings. "words/s" = the corpus's words (whitespace tokens, one count per corpus) x epochs /
wall, where wall runs from text to vectors in memory: vocabulary + training for every system
(for the Spark engine, the whole train_spark call: Spark and shard start, vocabulary,
encoding, training, export; for fastText also writing its .bin and .vec, which it cannot
skip). "train words/s" uses train_seconds instead, from an existing vocabulary to vectors:
gensim's train(), distw2v's encode + train_vectors (as vs_gensim.py times them), the Spark
engine's own `seconds`, word2vec.c's -read-vocab pass, fastText's training (from its log's
time stamps). peers.py says how the peers differ (`</s>`, count^0.5 negatives, seeds).
Figures are medians over --seeds; the JSON keeps every seed's figures, the versions, the
machine and the exact commands, and per child its 1-minute load average before and after and
its cpu_seconds (user + system of the child and the processes it waited for, scoring
included; Spark's JVM is not always among them): on a busy machine compare those too.

--check exits 1, naming each failing figure, when the issue's targets are missed:
planted/sessions: both distw2v engines >= 0.95 x gensim's figure; english: WordSim353 and
SimLex999 at most 0.02 below gensim, analogy at most 1 point below (both engines); skip-gram
only: local words/s >= 3 x gensim on english, and >= 2 x gensim and >= 2 x word2vec.c on zipf.
With --model cbow the planted and speed targets are not checked (the issue reports CBOW there
without a target). A target whose systems did not run is reported as not checked.

    python benchmarks/quality_matrix.py                            # everything, ~45 min on 2 cores
    python benchmarks/quality_matrix.py --corpora english planted --seeds 1 2 3 --check
    python benchmarks/quality_matrix.py --model cbow               # -> quality_matrix_cbow.json
"""

from __future__ import annotations

import argparse
import dataclasses
import gzip
import hashlib
import inspect
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (  # benchmarks/ is on sys.path
    ChildFailed,
    Settings,
    Trained,
    emit_result,
    evaluate,
    machine,
    peak_rss_mb,
    run_child,
    train_gensim,
    train_local,
    train_spark_engine,
    write_sample,
)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
CORPORA = ("english", "planted", "sessions", "zipf")
SYSTEMS = ("gensim", "local", "spark", "word2vec", "fasttext")
PEERS = ("word2vec", "fasttext")
LABELS = {"gensim": "gensim", "local": "distw2v-local", "spark": "distw2v-spark",
          "word2vec": "word2vec.c", "fasttext": "fastText"}
ZIPF = {"vocab_size": 1_000_000, "tokens": 10_000_000, "seed": 0}
ZIPF_SETTINGS = {"min_count": 1, "epochs": 2}
FIGURES = {"english": ("wordsim353", "simlex999", "analogy"), "planted": ("analogy",),
           "sessions": ("purity",), "zipf": ("sane_rows",)}
BUILD = ROOT / "build"


# ---- corpora (in the parent, before any timing) ------------------------------------------

def _key(*parts: object) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def _count_words(path: Path) -> int:
    with open(path, "rb") as src:
        return sum(len(line.split()) for line in src)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _cached(name: str, key: str, make: Any) -> dict:
    """The corpus spec in build/bench-corpora/NAME-KEY.json, made by `make(directory)` once."""
    home = BUILD / "bench-corpora"
    spec_path = home / f"{name}-{key}.json"
    if spec_path.exists():
        return json.loads(spec_path.read_text())
    directory = home / f"{name}-{key}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    print(f"  writing the {name} corpus under {directory} ...", flush=True)
    spec = make(directory)
    spec["words"] = spec.get("words") or _count_words(Path(spec["plain"]))
    tmp = spec_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(_jsonable(spec), indent=2) + "\n")
    tmp.replace(spec_path)  # a spec that exists describes a complete corpus
    return json.loads(spec_path.read_text())


def _generator_key(function: Any, arguments: dict) -> str:
    source = Path(inspect.getsourcefile(function) or "").read_bytes()
    return _key(function.__name__, sorted(arguments.items()), hashlib.sha256(source).hexdigest())


def english_corpus(source: Path, eval_dir: Path, lines: int | None) -> dict:
    stat = source.stat()

    def make(directory: Path) -> dict:
        plain = directory / "english.txt"
        if lines is not None:
            write_sample(source, lines, plain)
            return {"plain": str(plain)}
        with gzip.open(source, "rb") as src, open(plain, "wb") as dst:
            shutil.copyfileobj(src, dst)
        return {"plain": str(plain)}

    spec = _cached("english", _key(str(source), stat.st_size, stat.st_mtime_ns, lines), make)
    return {**spec, "kind": "english", "source": str(source), "lines": lines,
            "eval_dir": str(eval_dir)}


def planted_corpus() -> dict:
    from distw2v.synthetic import write_planted_corpus

    def make(directory: Path) -> dict:
        info = write_planted_corpus(directory / "planted.txt")
        fields = dataclasses.asdict(info)
        return {**fields, "plain": str(info.path), "words": info.tokens}

    spec = _cached("planted", _generator_key(write_planted_corpus, {}), make)
    return {**spec, "kind": "planted", "generator": "write_planted_corpus() defaults"}


def sessions_corpus() -> dict:
    from distw2v.synthetic import write_session_corpus

    def make(directory: Path) -> dict:
        info = write_session_corpus(directory / "sessions.txt")
        fields = dataclasses.asdict(info)
        return {**fields, "plain": str(info.path), "words": info.tokens}

    spec = _cached("sessions", _generator_key(write_session_corpus, {}), make)
    return {**spec, "kind": "sessions", "generator": "write_session_corpus() defaults"}


def zipf_corpus(vocab_size: int, tokens: int) -> dict:
    from distw2v.synthetic import write_zipf_corpus

    arguments = {**ZIPF, "vocab_size": vocab_size, "tokens": tokens}

    def make(directory: Path) -> dict:
        info = write_zipf_corpus(directory / "zipf.txt", **arguments)
        return {**dataclasses.asdict(info), "plain": info.files[0], "words": info.tokens}

    spec = _cached("zipf", _generator_key(write_zipf_corpus, arguments), make)
    return {**spec, "kind": "zipf", "generator": f"write_zipf_corpus(**{arguments})",
            "settings": ZIPF_SETTINGS}


def prepare(name: str, args: argparse.Namespace) -> dict:
    if name == "english":
        return english_corpus(Path(args.english), Path(args.eval_dir), args.english_lines)
    if name == "zipf":
        return zipf_corpus(args.zipf_vocab, args.zipf_tokens)
    return {"planted": planted_corpus, "sessions": sessions_corpus}[name]()


# ---- one system on one corpus (in a child process) ---------------------------------------

def settings_for(spec: dict, model: str, epochs: int | None) -> Settings:
    own = dict(spec.get("settings", {}))
    if epochs is not None:
        own["epochs"] = epochs
    return Settings(model=model, **own)


def score(spec: dict, words: list[str], matrix: Any) -> dict[str, float]:
    import numpy as np

    from distw2v.evaluate import evaluate_analogies
    from distw2v.vectors import Vectors

    kind = spec["kind"]
    if kind == "english":
        return evaluate(words, matrix, Path(spec["eval_dir"]))
    if kind == "planted":
        return {"analogy": evaluate_analogies(Vectors(words, matrix), spec["analogies"]).accuracy}
    if kind == "sessions":
        from distw2v.evaluate import evaluate_purity

        return {"purity": evaluate_purity(Vectors(words, matrix), spec["labels"], k=10).purity}
    norms = np.linalg.norm(np.asarray(matrix, dtype=np.float64), axis=1)
    return {"sane_rows": float(np.mean(np.isfinite(norms) & (norms > 0)))}


def child(args: argparse.Namespace) -> None:
    spec = json.loads(Path(args.spec).read_text())
    s = settings_for(spec, args.model, args.epochs)
    plain = Path(spec["plain"])
    result: dict[str, Any] = {}
    if args.system in PEERS:
        import peers

        peer = (peers.word2vec_peer(BUILD / "peers") if args.system == "word2vec"
                else peers.fasttext_peer())
        runner = peers.run_word2vec if args.system == "word2vec" else peers.run_fasttext
        with tempfile.TemporaryDirectory(dir=BUILD, prefix=".qm-") as work:
            run = runner(peer, plain, Path(work), s, args.seed)
        words, matrix = run.words, run.matrix
        result.update(vocab_seconds=run.vocab_seconds, train_seconds=run.train_seconds,
                      wall=run.wall, peak_rss_mb=run.peak_rss_mb, commands=run.commands,
                      peer_corpus_words=run.corpus_words, **run.extra)
    else:
        if args.system == "gensim":
            trained: Trained = train_gensim(plain, s, args.seed)
        elif args.system == "local":
            trained = train_local(plain, s, args.seed)
        else:
            from distw2v.config import SparkConfig

            trained = train_spark_engine(plain, s, args.seed, SparkConfig(
                spark_master="local[2]", shards=2, partitions=2, strategy=args.strategy))
        words, matrix = trained.words, trained.matrix
        extra = dict(trained.extra)
        peak = extra.pop("peak_rss_mb", None)  # the Spark engine sums its processes
        result.update(vocab_seconds=trained.vocab_seconds, train_seconds=trained.train_seconds,
                      wall=trained.wall, peak_rss_mb=peak if peak is not None else peak_rss_mb(),
                      system_corpus_words=trained.corpus_words, **extra)
    result["vocab"] = len(words)
    result["figures"] = score(spec, words, matrix)
    emit_result(result)


# ---- the parent ------------------------------------------------------------------------

def probe_peers(systems: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Build or find the peers; drop (with one line each) the ones that are not available."""
    import peers

    kept, found = [], {}
    for system in systems:
        if system not in PEERS:
            kept.append(system)
            continue
        try:
            peer = (peers.word2vec_peer(BUILD / "peers") if system == "word2vec"
                    else peers.fasttext_peer())
        except peers.PeerUnavailable as exc:
            print(f"  {LABELS[system]} skipped: {exc}", flush=True)
            continue
        found[system] = {"version": peer.version, "binary": str(peer.binary),
                         "build": peer.build}
        kept.append(system)
    return kept, found


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def spawn(system: str, corpus: str, spec_path: Path, seed: int, args: argparse.Namespace,
          words: int, epochs: int) -> dict | None:
    cmd = [sys.executable, __file__, "--child", "--system", system, "--spec", str(spec_path),
           "--seed", str(seed), "--model", args.model, "--strategy", args.strategy]
    if args.epochs is not None:
        cmd += ["--epochs", str(args.epochs)]
    label = f"{corpus} {LABELS[system]} seed {seed}"
    load_before = os.getloadavg()[0]
    cpu_before = _children_cpu()
    try:
        result = run_child(cmd, label, tail=3000, exit_on_failure=False)
    except ChildFailed as exc:
        print(f"  {str(exc).strip()}", flush=True)
        return None
    # Timings are only as good as the machine was quiet: keep its 1-minute load with them,
    # and the CPU seconds of the child and its processes (user + system, scoring included),
    # which other users' load disturbs less than wall time.
    result["load_average_1min"] = [load_before, os.getloadavg()[0]]
    result["cpu_seconds"] = _children_cpu() - cpu_before
    result["words_per_second"] = words * epochs / result["wall"]
    result["train_words_per_second"] = words * epochs / result["train_seconds"]
    result["child_command"] = cmd
    shown = fmt_figures(result["figures"])
    print(f"  {label:32} {result['words_per_second']:>10,.0f} words/s  wall "
          f"{result['wall']:6.1f} s  train {result['train_seconds']:6.1f} s  "
          f"{result['peak_rss_mb']:7,.0f} MiB  {shown}", flush=True)
    return result


def median_row(runs: list[dict]) -> dict:
    numbers = ("words_per_second", "train_words_per_second", "wall", "vocab_seconds",
               "train_seconds", "peak_rss_mb", "vocab")
    row = {key: statistics.median(r[key] for r in runs) for key in numbers}
    row["figures"] = {key: statistics.median(r["figures"][key] for r in runs)
                      for key in runs[0]["figures"]}
    return row


def versions(found: dict[str, Any]) -> dict[str, Any]:
    import distw2v

    out: dict[str, Any] = {"distw2v": distw2v.__version__}
    try:
        import gensim

        out["gensim"] = gensim.__version__
    except ImportError:
        out["gensim"] = None
    for system, info in found.items():
        out[system] = info["version"]
    git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                         text=True, check=False)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
                           capture_output=True, text=True, check=False)
    out["git_commit"] = git.stdout.strip() or None
    out["src_modified"] = bool(dirty.stdout.strip())  # uncommitted changes under src/
    return out


def fmt_figures(figures: dict[str, float]) -> str:
    names = {"wordsim353": "WS353", "simlex999": "SL999", "analogy": "analogy",
             "purity": "purity", "sane_rows": "sane rows"}
    return "  ".join(f"{names[k]} {100 * v:.1f}%" if k in ("analogy", "sane_rows")
                     else f"{names[k]} {v:.3f}" for k, v in figures.items() if k in names)


def table(rows: list[dict]) -> str:
    head = (f"{'corpus':9} {'system':14} {'words/s':>10} {'ratio':>6} {'train w/s':>10} "
            f"{'ratio':>6} {'wall s':>7} {'peak MiB':>8}  figures")
    lines = [head, "-" * (len(head) + 30)]
    for r in rows:
        ratio = r.get("ratio_to_gensim")
        train_ratio = r.get("train_ratio_to_gensim")
        lines.append(
            f"{r['corpus']:9} {LABELS[r['system']]:14} {r['words_per_second']:>10,.0f} "
            f"{'' if ratio is None else f'{ratio:.2f}x':>6} "
            f"{r['train_words_per_second']:>10,.0f} "
            f"{'' if train_ratio is None else f'{train_ratio:.2f}x':>6} {r['wall']:>7.1f} "
            f"{r['peak_rss_mb']:>8,.0f}  {fmt_figures(r['figures'])}")
    return "\n".join(lines)


def check(rows: list[dict], model: str) -> tuple[list[str], list[str]]:
    """(failures, not checked) against the issue's targets; see the module docstring."""
    by = {(r["corpus"], r["system"]): r for r in rows}
    corpora = sorted({r["corpus"] for r in rows}, key=CORPORA.index)
    failures, unchecked = [], []

    def need(corpus: str, *systems: str) -> bool:
        missing = [LABELS[s] for s in systems if (corpus, s) not in by]
        line = f"{corpus}: {', '.join(missing)} did not run"
        if missing and line not in unchecked:
            unchecked.append(line)
        return not missing

    for corpus in corpora:
        for engine in ("local", "spark"):
            if corpus in ("planted", "sessions") and not (model == "cbow" and corpus == "planted"):
                if need(corpus, "gensim", engine):
                    key = FIGURES[corpus][0]
                    ours, theirs = (by[(corpus, engine)]["figures"][key],
                                    by[(corpus, "gensim")]["figures"][key])
                    if ours < 0.95 * theirs:
                        failures.append(f"{corpus} {LABELS[engine]} {key} {ours:.3f} < 0.95 x "
                                        f"gensim's {theirs:.3f}")
            if corpus == "english" and need(corpus, "gensim", engine):
                for key, limit in (("wordsim353", 0.02), ("simlex999", 0.02), ("analogy", 0.01)):
                    ours, theirs = (by[(corpus, engine)]["figures"][key],
                                    by[(corpus, "gensim")]["figures"][key])
                    if ours < theirs - limit:
                        failures.append(f"english {LABELS[engine]} {key} {ours:.3f} is more "
                                        f"than {limit} below gensim's {theirs:.3f}")
        if model != "skipgram":
            continue
        speed = {"english": (("gensim", 3.0),), "zipf": (("gensim", 2.0), ("word2vec", 2.0))}
        for other, factor in speed.get(corpus, ()):
            if need(corpus, "local", other):
                ours, theirs = (by[(corpus, "local")]["words_per_second"],
                                by[(corpus, other)]["words_per_second"])
                if ours < factor * theirs:
                    failures.append(f"{corpus} distw2v-local words/s {ours:,.0f} < {factor:g} x "
                                    f"{LABELS[other]}'s {theirs:,.0f} ({ours / theirs:.2f}x)")
    return failures, unchecked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpora", nargs="+", default=list(CORPORA), choices=CORPORA)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1],
                        help="figures are medians over the seeds")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs on every corpus (default: 5, zipf 2)")
    parser.add_argument("--model", choices=("skipgram", "cbow"), default="skipgram")
    parser.add_argument("--strategy", choices=("columns", "rows"), default="columns",
                        help="the Spark engine's strategy (default: columns)")
    parser.add_argument("--english", default=str(SHARED / "english.txt.gz"))
    parser.add_argument("--eval-dir", default=str(SHARED / "eval"))
    parser.add_argument("--english-lines", type=int, default=None,
                        help="train on the first LINES lines of english only (trial runs)")
    parser.add_argument("--zipf-vocab", type=int, default=ZIPF["vocab_size"],
                        help=f"zipf's distinct words ({ZIPF['vocab_size']:,}; trial runs)")
    parser.add_argument("--zipf-tokens", type=int, default=ZIPF["tokens"],
                        help=f"zipf's words in all ({ZIPF['tokens']:,}; trial runs)")
    parser.add_argument("--json", default=None, help="default benchmarks/results/"
                        "quality_matrix.json (quality_matrix_cbow.json with --model cbow)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 naming each figure that misses the issue's targets")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--system", help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if args.epochs is not None and args.epochs < 1:
        parser.error("--epochs must be at least 1")
    if "english" in args.corpora and not Path(args.english).exists():
        parser.error(f"the english corpus {args.english} does not exist; pass --english")
    suffix = "" if args.model == "skipgram" else "_cbow"
    out = Path(args.json or ROOT / "benchmarks" / "results" / f"quality_matrix{suffix}.json")

    started = time.perf_counter()
    print(f"systems: {', '.join(LABELS[s] for s in args.systems)}", flush=True)
    systems, found = probe_peers(args.systems)
    rows, per_corpus = [], {}
    for corpus in args.corpora:
        try:
            spec = prepare(corpus, args)
        except ImportError as exc:  # a generator that this checkout does not have yet
            print(f"{corpus} skipped: {exc}", flush=True)
            continue
        # the children's copy of the spec, one per run: two runs may share build/
        spec_path = BUILD / "bench-corpora" / f".{corpus}-run-{os.getpid()}.json"
        spec_path.write_text(json.dumps(spec))
        s = settings_for(spec, args.model, args.epochs)
        print(f"{corpus}: {spec['words']:,} words, {s.epochs} epochs, min_count {s.min_count}",
              flush=True)
        per_corpus[corpus] = {k: v for k, v in spec.items() if k not in ("labels",)}
        per_corpus[corpus]["settings"] = dataclasses.asdict(s)
        results = {}
        for system in systems:
            runs = [r for seed in args.seeds
                    if (r := spawn(system, corpus, spec_path, seed, args, spec["words"],
                                   s.epochs)) is not None]
            if runs:
                results[system] = runs
        spec_path.unlink(missing_ok=True)
        gensim = median_row(results["gensim"]) if "gensim" in results else None
        for system, runs in results.items():
            row = {"corpus": corpus, "system": system, "seeds": args.seeds, **median_row(runs)}
            if gensim:
                row["ratio_to_gensim"] = row["words_per_second"] / gensim["words_per_second"]
                row["train_ratio_to_gensim"] = (row["train_words_per_second"]
                                                / gensim["train_words_per_second"])
            row["per_seed"] = [{k: v for k, v in r.items() if k != "process_seconds"}
                               for r in runs]
            rows.append(row)

    print()
    print(table(rows))
    failures, unchecked = check(rows, args.model)
    report = {
        "about": "words_per_second: corpus words x epochs / wall, wall = text to vectors "
                 "(vocabulary + training); train_words_per_second uses train_seconds, from an "
                 "existing vocabulary to vectors; see benchmarks/quality_matrix.py",
        "model": args.model, "seeds": args.seeds, "machine": machine(),
        "versions": versions(found), "peers": found, "corpora": per_corpus, "rows": rows,
        "check": {"failures": failures, "not_checked": unchecked},
        "wall_seconds": time.perf_counter() - started,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_jsonable(report), indent=2) + "\n")
    print(f"\nbenchmark wall {report['wall_seconds']:.0f} s; written to {out}")
    for line in unchecked:
        print(f"not checked: {line}")
    if args.check:
        for line in failures:
            print(f"FAIL {line}")
        if failures:
            sys.exit(1)
        print("all checked targets met")


if __name__ == "__main__":
    main()

"""One frozen, typed, keyword-only dataclass per job kind.

The CLI flags and the REST model are generated from these fields (their `help` metadata,
defaults and bounds), so a parameter is declared exactly once. Validation lives in
`__post_init__` and raises `Distw2vError` with one clear sentence; every numeric field's
`minimum`/`maximum` is checked there by `check_bounds`, the one place bounds are enforced.

The upper bounds are far above anything a real run uses; they exist so that a request such
as `dim=10**9` or `alpha=1e308` is refused at once instead of failing (or running for ever)
inside a job.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from .errors import Distw2vError

Model = Literal["skipgram", "cbow"]
ShardsOn = Literal["spark", "local"]
ShardTls = Literal["auto", "on", "off"]
Strategy = Literal["columns", "rows"]
Optimizer = Literal["sgd", "adagrad"]
EngineName = Literal["local", "spark"]
Format = Literal["text", "wet", "reddit", "jsonl"]
Tokenizer = Literal["auto", "whitespace", "unicode"]
FORMATS: tuple[Format, ...] = ("text", "wet", "reddit", "jsonl")
INT32_MAX = 2**31 - 1  # word ids are int32
MAX_DIM = 10_000  # far above any real run; bounds dim here and in the shards' specs
MAX_NEGATIVE = 1000
MAX_SEED = 2**53 - 1  # exact in JSON and JavaScript
# The largest zstd window a .zst source may declare, as a power of two: zstd's own default
# limit (128 MiB), and what zstd --long=31 writes (2 GiB), as Pushshift's Reddit dumps are.
ZSTD_WINDOW_LOG, ZSTD_LONG_WINDOW_LOG = 27, 31


def option(default: Any, help: str, *, minimum: float | None = None,
           maximum: float | None = None, exclusive_minimum: bool = False,
           **extra: Any) -> Any:
    """A config field: its default, the help text its CLI flag shows, and its bounds.

    `minimum`/`maximum` are inclusive unless `exclusive_minimum` (then the value must be
    greater than `minimum`); None means unbounded on that side.
    """
    bounds = {k: v for k, v in (("minimum", minimum), ("maximum", maximum)) if v is not None}
    if exclusive_minimum:
        bounds["exclusive_minimum"] = True
    return field(default=default, metadata={"help": help, **bounds, **extra})


def bounds_of(f: dataclasses.Field[Any]) -> tuple[float | None, float | None, bool]:
    """(minimum, maximum, exclusive_minimum) of a field declared with `option`."""
    meta = f.metadata
    return meta.get("minimum"), meta.get("maximum"), bool(meta.get("exclusive_minimum"))


def bounds_text(f: dataclasses.Field[Any]) -> str:
    """The bounds in words, for --help: '1 to 10000', 'at least 0', 'greater than 0'."""
    low, high, exclusive = bounds_of(f)
    if low is not None and high is not None:
        return f"greater than {low}, at most {high}" if exclusive else f"{low} to {high}"
    if low is not None:
        return f"{'greater than' if exclusive else 'at least'} {low}"
    return f"at most {high}" if high is not None else ""


# What a field of each annotation may hold, in words; Literal fields are checked by their
# class's own `require` (the choices in words), others (tuples) are left alone.
_KINDS: dict[object, tuple[type | tuple[type, ...], str]] = {
    int: (int, "a whole number"), float: ((int, float), "a number"),
    bool: (bool, "True or False"), str: (str, "a string"),
}
_KINDS_OF: dict[type, dict[str, object]] = {}  # a class's, worked out once


def _kinds(cls: type) -> dict[str, object]:
    """Field name -> the _KINDS key of its annotation (`int | None` -> int)."""
    if cls not in _KINDS_OF:
        found = {}
        for name, hint in typing.get_type_hints(cls).items():
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            union = typing.get_origin(hint) in (typing.Union, types.UnionType)
            kind = args[0] if union else hint
            if kind in _KINDS:
                found[name] = kind
        _KINDS_OF[cls] = found
    return _KINDS_OF[cls]


def check_types(config: Any) -> None:
    """Refuse a value of the wrong type, as one given from Python may be (the CLI's flags and
    the REST models convert and check theirs first): `dim=8.5`, `lowercase="yes"`."""
    for name, kind in _kinds(type(config)).items():
        value = getattr(config, name)
        allowed, what = _KINDS[kind]
        # bool is an int to isinstance, but True is no dimension
        if value is not None and (not isinstance(value, allowed) or
                                  (isinstance(value, bool) and kind is not bool)):
            raise Distw2vError(f"{name} must be {what}, not {value!r:.40}.")


def check_bounds(config: Any) -> None:
    """Refuse a value of the wrong type (check_types), and any numeric field outside its
    declared bounds (NaN is outside every bound)."""
    check_types(config)
    for f in dataclasses.fields(config):
        low, high, exclusive = bounds_of(f)
        value = getattr(config, f.name)
        if value is None or (low is None and high is None):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Distw2vError(f"{f.name} must be a number.")
        if isinstance(value, float) and math.isnan(value):
            raise Distw2vError(f"{f.name} must be a number, not NaN.")
        if low is not None:
            if exclusive and not value > low:
                raise Distw2vError(f"{f.name} must be greater than {low}.")
            if not exclusive and not value >= low:
                raise Distw2vError(f"{f.name} must not be negative." if low == 0 else
                                   f"{f.name} must be at least {low}.")
        if high is not None and not value <= high:
            raise Distw2vError(f"{f.name} must be at most {high}.")


# Blanks around it are stripped first: a pattern's \s* at both ends of a long run of them
# took quadratic time.
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT_SECONDS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str, name: str) -> float:
    """Seconds in a duration such as '90s', '30m', '12h', '2d' (a bare number is seconds)."""
    match = _DURATION.fullmatch(text.strip())
    if not match:
        raise Distw2vError(f"{name} must be a duration such as 90s, 30m, 12h or 2d, "
                           f"not {text[:40]!r}.")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


@dataclass(frozen=True, kw_only=True)
class VocabConfig:
    """What the sources hold, how their text is tokenized, and which words enter the
    vocabulary. The fields with group 'corpus' get a CLI group of their own."""

    format: Format = option(
        "text", "what the sources hold: 'text' (one sentence a line), 'wet' (Common Crawl WET "
        "files: each conversion record's lines), 'reddit' (Reddit comment or submission dumps: "
        "JSON lines, .zst), 'jsonl' (JSON lines: the field --text-field names)",
        choices=FORMATS, group="corpus")
    text_field: str | None = option(
        None, "with --format jsonl: the dotted path of each record's text, e.g. 'text' or "
        "'data.body'", default_text="none; jsonl needs one", group="corpus")
    languages: str | None = option(
        None, "with --format wet: keep only records whose WARC-Identified-Content-Language "
        "includes one of these comma-separated ISO 639-3 codes, e.g. 'eng,deu'",
        default_text="every language", group="corpus")
    subreddits: str | None = option(
        None, "with --format reddit: keep only these comma-separated subreddits "
        "(case-insensitive)", default_text="every subreddit", group="corpus")
    min_record_words: int = option(
        0, "skip records (pages, comments, JSON lines) with fewer words than this",
        minimum=0, maximum=10**9, group="corpus")
    max_line_repeats: int | None = option(
        None, "drop a line once this many earlier records of the same file had it (menus, "
        "cookie banners); 0 keeps every line", default_text="5 with --format wet, 0 otherwise",
        minimum=0, maximum=10**9, group="corpus")
    max_files: int | None = option(
        None, "read only the first this many files the sources list (after expanding "
        "directories, globs and crawl manifests)", default_text="every file",
        minimum=1, maximum=10**9, group="corpus")
    sample_files: int | None = option(
        None, "read this many files drawn at random (by --sample-seed) from those the "
        "sources list, in their listed order", default_text="every file",
        minimum=1, maximum=10**9, group="corpus")
    sample_seed: int = option(1, "seed of --sample-files", minimum=0, maximum=2**53 - 1,
                              group="corpus")
    crawl_base: str | None = option(
        None, "base URL that the paths in a crawl manifest (a wet.paths.gz file) are under",
        default_text="the manifest's own bucket or host; https://data.commoncrawl.org/ for "
        "a local manifest", group="corpus")
    zstd_window_log: int | None = option(
        None, "the largest window a .zst source may declare, as a power of two (zstd "
        "--long=N): reading one holds up to that much memory; 31 (2 GiB) reads Pushshift's "
        "Reddit dumps", default_text="31 with --format reddit, 27 (zstd's own limit) "
        "otherwise", minimum=10, maximum=ZSTD_LONG_WINDOW_LOG, group="corpus")
    tokenizer: Tokenizer = option(
        "auto", "'whitespace' (split on whitespace, tokens as they are) or 'unicode' (words "
        "are runs of letters, marks and digits in any script)",
        default_text="whitespace with --format text, unicode otherwise",
        choices=("auto", "whitespace", "unicode"), group="corpus")
    word_joiners: Literal["keep", "split"] = option(
        "keep", "with the unicode tokenizer: keep apostrophes and hyphens inside a word "
        "(man's, arab-israeli) or split the word there", choices=("keep", "split"),
        group="corpus")
    urls: Literal["drop", "keep"] = option(
        "drop", "with the unicode tokenizer: drop URLs and e-mail addresses, or keep each "
        "as one token", choices=("drop", "keep"), group="corpus")
    lowercase: bool = option(False, "lower-case every token")
    strip_punctuation: bool = option(False, "remove punctuation characters from tokens")
    strip_digits: bool = option(False, "remove digits from tokens")
    max_sentence_length: int = option(
        10_000, "cut sentences longer than this many tokens into pieces",
        minimum=1, maximum=1_000_000,
    )
    min_count: int = option(5, "drop words seen fewer times than this",
                            minimum=1, maximum=10**12)
    max_vocab_size: int | None = option(
        None,
        "memory bound while counting: when more distinct words than this are held, "
        "the rarest are pruned (as the original word2vec does)",
        default_text="no bound", minimum=1, maximum=10**10,
    )
    max_final_vocab: int | None = option(
        None, "keep at most this many of the most frequent words", default_text="no limit",
        minimum=1, maximum=INT32_MAX,
    )
    phrases: str | None = option(
        None, "join the phrases of this table (from `distw2v phrases`) as the corpus is read: "
        "'new york' becomes the one word new_york", default_text="no phrases", group="corpus")

    def __post_init__(self) -> None:
        require(self.format in FORMATS, f"format must be one of {', '.join(FORMATS)}")
        require(self.tokenizer in ("auto", "whitespace", "unicode"),
                "tokenizer must be 'auto', 'whitespace' or 'unicode'")
        require(self.word_joiners in ("keep", "split"), "word_joiners must be 'keep' or 'split'")
        require(self.urls in ("drop", "keep"), "urls must be 'drop' or 'keep'")
        check_bounds(self)
        if self.format == "jsonl":
            require(bool(self.text_field and self.text_field.strip(".")),
                    "format jsonl needs text_field, the dotted path of each record's text "
                    "(e.g. --text-field text)")
        for name, allowed in (("text_field", "jsonl"), ("languages", "wet"),
                              ("subreddits", "reddit")):
            require(getattr(self, name) is None or self.format == allowed,
                    f"{name} applies only with format {allowed}")
        for name in ("languages", "subreddits"):
            require(getattr(self, name) is None or bool(_items(getattr(self, name))),
                    f"{name} must name at least one, comma-separated")
        require(self.max_files is None or self.sample_files is None,
                "give max_files or sample_files, not both")

    @property
    def unicode_tokens(self) -> bool:
        """Whether the unicode tokenizer runs (the default for every format but text)."""
        if self.tokenizer == "auto":
            return self.format != "text"
        return self.tokenizer == "unicode"

    @property
    def zstd_max_window_log(self) -> int:
        """The zstd window log in effect: Reddit dumps (Pushshift's) need 31, while a text
        file is held to zstd's own limit unless the setting raises it."""
        if self.zstd_window_log is not None:
            return self.zstd_window_log
        return ZSTD_LONG_WINDOW_LOG if self.format == "reddit" else ZSTD_WINDOW_LOG

    @property
    def line_repeat_limit(self) -> int:
        """Earlier records of a file that may hold a line before it is dropped (0: never)."""
        if self.max_line_repeats is not None:
            return self.max_line_repeats
        return 5 if self.format == "wet" else 0

    @property
    def language_set(self) -> frozenset[str]:
        return frozenset(_items(self.languages or ""))

    @property
    def subreddit_set(self) -> frozenset[str]:
        return frozenset(_items((self.subreddits or "").lower()))


def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Training hyper-parameters for skip-gram / CBOW with negative sampling."""

    model: Model = option("skipgram", "skipgram or cbow", choices=("skipgram", "cbow"))
    dim: int = option(100, "vector dimension", minimum=1, maximum=MAX_DIM)
    window: int = option(5, "maximum distance between a word and its context (dynamic window)",
                         minimum=1, maximum=1000)
    negative: int = option(5, "negative samples per positive pair", minimum=1,
                          maximum=MAX_NEGATIVE)
    epochs: int = option(5, "passes over the corpus", minimum=1, maximum=10_000)
    alpha: float | None = option(
        None, "initial learning rate", default_text="0.025 for skipgram, 0.05 for cbow",
        minimum=0, maximum=1.0, exclusive_minimum=True,
    )
    min_alpha: float = option(0.0001, "final learning rate (linear decay over all epochs)",
                              minimum=0, maximum=1.0)
    sample: float = option(1e-3, "subsampling threshold for frequent words; 0 disables",
                           minimum=0, maximum=1.0)
    workers: int = option(2, "training threads", minimum=1, maximum=1024)
    seed: int = option(1, "random seed; with workers=1 the result is bit-identical run to run",
                       minimum=0, maximum=MAX_SEED)
    batch_words: int = option(
        50_000, "words handed to a thread at a time (larger = less hand-off overhead)",
        minimum=1, maximum=10_000_000,
    )

    def __post_init__(self) -> None:
        require(self.model in ("skipgram", "cbow"), "model must be 'skipgram' or 'cbow'")
        check_bounds(self)

    @property
    def start_alpha(self) -> float:
        if self.alpha is not None:
            return self.alpha
        return 0.025 if self.model == "skipgram" else 0.05


@dataclass(frozen=True, kw_only=True)
class SparkConfig:
    """Where and how the distributed trainer runs (engine 'spark')."""

    spark_master: str = option("local[*]", "Spark master URL (local[N], spark://host:port, ...)")
    strategy: Strategy = option(
        "columns", "how the shards split the model: 'columns' (each shard holds a slice of "
        "every vector and tasks send word ids: the model may be larger than any machine) or "
        "'rows' (each shard holds whole vectors of some words; tasks pull the rows a chunk "
        "of text touches, train them with the local kernel and push the changes back)",
        choices=("columns", "rows"))
    optimizer: Optimizer = option(
        "sgd", "with --strategy rows: how a shard applies the changes tasks push: 'sgd' adds "
        "them (times --row-damping), 'adagrad' scales them by accumulated squares",
        choices=("sgd", "adagrad"))
    row_damping: float = option(
        1.0, "with --strategy rows and sgd: the factor every pushed change is scaled by",
        minimum=0, maximum=10.0, exclusive_minimum=True)
    adagrad_eta: float = option(
        0.05, "with --optimizer adagrad: its step size", minimum=0, maximum=10.0,
        exclusive_minimum=True)
    permute_rows: bool = option(
        True, "with --strategy rows: spread the words over the shards by a seeded "
        "permutation (else each shard holds a contiguous range of ids, the most frequent "
        "words all on the first)")
    row_chunk_words: int = option(
        10_000, "with --strategy rows: words a task trains between pulling rows and pushing "
        "their changes (larger chunks move fewer bytes a word, but every task then trains "
        "further from the others' changes, which costs quality)", minimum=100,
        maximum=10_000_000)
    negative_candidates: int = option(
        2_000, "with --strategy rows: a chunk draws its negatives from this many draws of "
        "the negative-sampling table (the same distribution, far fewer output rows to move); "
        "0 draws each afresh", minimum=0, maximum=10_000_000)
    half_rows: bool = option(
        False, "with --strategy rows: send rows and their changes as float16 (half the "
        "bytes)")
    shards: int = option(2, "parameter-server shards the run starts (see --shards-on)",
                         minimum=1, maximum=1024)
    shards_on: ShardsOn | None = option(
        None, "where the shards run: 'spark' as long-running Spark tasks (each needs a task "
        "slot of its own), or 'local' as subprocesses of the driver",
        default_text="local with a local[...] master, spark otherwise",
    )
    shard_tls: ShardTls = option(
        "auto", "encrypt and authenticate the traffic between the driver, the tasks and the "
        "shards the run starts with TLS, under a certificate made for the run: 'auto' does "
        "where shards listen beyond loopback (placed by Spark on a cluster); shards given by "
        "--ps use TLS when their secret carries it (distw2v ps-secret --tls)")
    max_recoveries: int = option(
        3, "times a run with --checkpoint-dir starts new shards and resumes from its last "
        "checkpoint when a shard is lost", minimum=0, maximum=1000,
    )
    checkpoint_every: float | None = option(
        None, "minutes between checkpoints within an epoch (with --checkpoint-dir; each keeps "
        "the partitions finished so far, so use many --partitions)",
        default_text="at the end of every epoch only", minimum=0, exclusive_minimum=True,
        maximum=10**6,
    )
    max_cores: int | None = option(
        None, "most cores the run takes from a standalone or Mesos cluster (Spark's "
        "spark.cores.max), so that several runs share one cluster",
        default_text="every core the cluster offers", minimum=1, maximum=1_000_000,
    )
    ps: str | None = option(
        None, "comma-separated host:port of shards started by an operator (`distw2v ps-shard`)",
        default_text="start --shards shards (see --shards-on)",
    )
    partitions: int | None = option(
        None, "corpus partitions (Spark tasks per epoch)",
        default_text="Spark's parallelism, 8 times that with --checkpoint-every",
        minimum=1, maximum=1_000_000,
    )
    batch_pairs: int = option(20_000, "training pairs per parameter-server round trip",
                              minimum=1, maximum=10_000_000)
    broadcast_limit: int = option(
        5_000_000,
        "largest vocabulary whose word->id table is broadcast; larger ones are encoded "
        "with a distributed join",
        minimum=0, maximum=INT32_MAX,
    )
    work_dir: str | None = option(
        None,
        "directory (or URL) that driver, executors and shards all reach, for word counts",
        default_text="a temporary directory next to --out",
    )

    def __post_init__(self) -> None:
        require(self.strategy in ("columns", "rows"), "strategy must be 'columns' or 'rows'")
        require(self.optimizer in ("sgd", "adagrad"), "optimizer must be 'sgd' or 'adagrad'")
        require(self.shard_tls in ("auto", "on", "off"), "shard_tls must be 'auto', 'on' or "
                "'off'")
        check_bounds(self)

    @property
    def shards_placed_by_spark(self) -> bool:
        if self.ps_addresses:
            return False
        if self.shards_on is not None:
            return self.shards_on == "spark"
        return not self.spark_master.startswith("local")

    def shard_tls_for(self, loopback: bool) -> bool:
        """Whether the shards this run starts, listening on loopback or not, use TLS."""
        return self.shard_tls == "on" or (self.shard_tls == "auto" and not loopback)

    @property
    def ps_addresses(self) -> list[str]:
        return [a.strip() for a in (self.ps or "").split(",") if a.strip()]


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Which engine trains, and how a run keeps its state (either engine)."""

    engine: EngineName = option(
        "local", "which trainer runs: 'local' (this machine) or 'spark' (a Spark application "
        "against parameter-server shards, set up by the spark engine's options)")
    checkpoint_dir: str | None = option(
        None,
        "directory (or URL) where the model is saved after every epoch; a run given the "
        "directory of an earlier, failed attempt at the same run resumes after its last "
        "saved epoch",
        default_text="no checkpoints",
    )
    init: str | None = option(
        None, "continue training this model directory (saved with --keep-output): its words "
        "keep their vectors and ids, the corpus's new words are added, counts are summed, "
        "and the learning rate starts again", default_text="a fresh model")
    keep_output: bool = option(
        False, "also save the output matrix (output.npy), which --init needs to continue "
        "from the model")

    def __post_init__(self) -> None:
        check_types(self)


PhraseScoring = Literal["word2phrase", "npmi"]


@dataclass(frozen=True, kw_only=True)
class PhrasesConfig:
    """How `distw2v phrases` scores bigrams and which it keeps (its counting and reading
    settings are a VocabConfig's: min_count, max_vocab_size, the tokenizer)."""

    scoring: PhraseScoring = option(
        "word2phrase", "'word2phrase': (n(ab) - min_count) / (n(a) n(b)) * N, N the corpus "
        "words; 'npmi': normalised pointwise mutual information, from -1 to 1",
        choices=("word2phrase", "npmi"))
    threshold: float | None = option(
        None, "keep a bigram whose score is above this", default_text="100 for word2phrase, "
        "0.5 for npmi", minimum=-1.0, maximum=1e12)
    passes: int = option(
        1, "passes over the corpus: each joins the phrases found so far and counts again, so "
        "2 passes find phrases of up to 4 words", minimum=1, maximum=10)
    max_bigrams: int | None = option(
        None, "memory bound while counting: when more distinct bigrams than this are held, "
        "the rarest are pruned (as --max-vocab-size prunes words)", default_text="no bound",
        minimum=1, maximum=10**10)

    def __post_init__(self) -> None:
        require(self.scoring in ("word2phrase", "npmi"), "scoring must be 'word2phrase' or "
                "'npmi'")
        check_bounds(self)
        require(self.scoring != "npmi" or self.threshold is None or self.threshold < 1,
                "threshold must be below 1 with scoring npmi (its scores are at most 1)")

    @property
    def min_score(self) -> float:
        """The threshold in effect: a bigram is kept when its score is above it."""
        if self.threshold is not None:
            return self.threshold
        return 100.0 if self.scoring == "word2phrase" else 0.5


C = TypeVar("C", VocabConfig, TrainConfig, SparkConfig, RunConfig, PhrasesConfig)


def require(ok: bool, message: str) -> None:
    """Validation for __post_init__: one clear sentence, raised as Distw2vError."""
    if not ok:
        raise Distw2vError(message + ".")


def to_dict(config: VocabConfig | TrainConfig | SparkConfig | RunConfig | PhrasesConfig
            ) -> dict[str, Any]:
    return dataclasses.asdict(config)


def from_dict(cls: type[C], data: dict[str, Any]) -> C:
    """Build a config from a dict, refusing unknown keys with a clear message."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise Distw2vError(f"unknown {cls.__name__} setting(s): {', '.join(unknown)}.")
    return cls(**data)


def to_json(config: VocabConfig | TrainConfig | SparkConfig | RunConfig) -> str:
    return json.dumps(to_dict(config), sort_keys=True)

"""The service's settings: one frozen dataclass, from which `distw2v serve`'s flags are made.

Lists (allowed roots) are written as one string separated by ``os.pathsep`` (':' on Linux),
like PATH, so the CLI flag and the field stay one scalar.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..config import (
    RunConfig,
    SparkConfig,
    TrainConfig,
    check_bounds,
    option,
    parse_duration,
    require,
)
from ..corpus.policy import SourcePolicy, policy_for

DEFAULT_DATA_DIR = "~/.local/share/distw2v-service"
TOKEN_FILE = "token"  # written into the data directory when serve makes its own token


def default_max_concurrent_jobs() -> int:
    """Cores divided by the default training threads of one job, at least 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // TrainConfig().workers)


@dataclass(frozen=True, kw_only=True)
class ServiceConfig:
    """How `distw2v serve` runs: where it keeps jobs, who may use it, what it may read."""

    data_dir: str = option(DEFAULT_DATA_DIR, "directory for the job database, logs and models")
    db: str | None = option(
        None,
        "job store URL: sqlite:///FILE or postgresql://USER:PASS@HOST/DB",
        default_text="a SQLite file in the data directory",
    )
    host: str = option("127.0.0.1", "address to listen on")
    port: int = option(8000, "port to listen on")
    token: str | None = option(
        None,
        "bearer token that clients must send; without it and tokens-file, serve makes one and "
        "writes it to DATA_DIR/token (loopback only)",
        default_text="generated",
    )
    tokens_file: str | None = option(
        None, "file with one bearer token a line (each token sees only its own jobs)",
        default_text="none",
    )
    allowed_roots: str = option(
        "", "directories that local sources must lie under, separated by ':'",
        default_text="none: local paths are refused",
    )
    max_concurrent_jobs: int | None = option(
        None, "jobs training at once; the rest wait in a queue",
        default_text="cores / default training threads, at least 1", minimum=1, maximum=1024,
    )
    allow_private_https: bool = option(
        False, "allow https sources on loopback or private addresses"
    )
    allowed_bucket: tuple[str, ...] = option(
        (), "an S3 bucket that s3:// sources may name; repeat the flag for more",
        default_text="none: s3:// sources are refused",
    )
    allowed_namenode: tuple[str, ...] = option(
        (), "an HDFS namenode, HOST (any port) or HOST:PORT, that hdfs:// sources may name; "
        "repeat the flag for more", default_text="none: hdfs:// sources are refused",
    )
    allow_fsspec_chaining: bool = option(
        False, "accept fsspec '::' chains in sources (zip, tar, simplecache or blockcache "
        "over an allowed local, s3:// or hdfs:// source)",
    )
    max_job_input_bytes: int = option(
        100 << 30, "decompressed bytes a job may read in one pass over its sources (a gzip "
        "bomb stops there); 100 GiB is a few hours of one pass at the local trainer's speed, "
        "so a job of a few epochs fits the default --job-time-limit; raise it for larger "
        "corpora", default_text="100 GiB", minimum=1,
    )
    max_source_files: int = option(
        100_000, "files (and directory entries) the sources of one request may expand to, "
        "all together", minimum=1,
    )
    source_listing_seconds: float = option(
        10.0, "seconds the listing of one request's local sources may take at submission, all "
        "together (waiting for a listing thread included)",
        minimum=0, exclusive_minimum=True,
    )
    s3_endpoint_url: str | None = option(
        None, "S3 endpoint URL, for MinIO or another S3-compatible store",
        default_text="AWS",
    )
    artifacts_url: str | None = option(
        None, "where models are stored: a directory or an fsspec URL such as s3://bucket/prefix",
        default_text="DATA_DIR/models",
    )
    max_request_bytes: int = option(1 << 20, "largest request body accepted",
                                    minimum=1024, maximum=1 << 30)
    tls_cert: str | None = option(
        None, "PEM certificate (chain) to serve HTTPS with, together with --tls-key",
        default_text="none: plain HTTP",
    )
    tls_key: str | None = option(
        None, "PEM private key (unencrypted) of --tls-cert", default_text="none",
    )
    max_connections: int = option(
        1000, "open client connections; past it the oldest one still waiting for its request "
        "is closed, so idle or slow clients cannot use up the process's open files",
        minimum=8, maximum=1_000_000,
    )
    connection_timeout: float = option(
        10.0, "seconds a connection may take to send a request, or stay idle between "
        "requests, before the server closes it", minimum=0, exclusive_minimum=True,
        maximum=3600,
    )
    model_cache_size: int = option(4, "finished models held loaded for queries (LRU)",
                                   minimum=1, maximum=1000)
    eval_analogies: str | None = option(
        None, "analogy file (questions-words format) to evaluate every finished model on",
        default_text="none",
    )
    eval_similarity: str | None = option(
        None, "word-similarity file ('w1 w2 score') to evaluate every finished model on",
        default_text="none",
    )
    cancel_grace_seconds: float = option(
        3.0, "seconds a cancelled job gets to stop before it is killed", minimum=0,
        maximum=3600,
    )
    token_file: str | None = option(
        None, "file holding the bearer token (unlike --token, not visible in the process "
        "list; $DISTW2V_TOKEN works too)", default_text="none",
    )
    max_jobs_per_token: int = option(
        20, "queued plus running jobs one token may have at once (its share of the work)",
        minimum=1, maximum=100_000,
    )
    max_stored_jobs_per_token: int = option(
        100, "jobs one token may keep, in any state (finished ones count until deleted or "
        "expired; a submission beyond it is refused)", minimum=1, maximum=1_000_000,
    )
    max_stored_bytes_per_token: int = option(
        50 << 30, "bytes of models and word2vec exports one token's jobs may keep (a "
        "submission or new export beyond it is refused; 50 GiB holds a few large models with "
        "their exports)", default_text="50 GiB", minimum=1, maximum=10**15,
    )
    job_time_limit: str | None = option(
        "48h", "a job running longer than this (90s, 30m, 12h, 2d) is stopped and marked "
        "failed", default_text="48h; none to disable",
    )
    retention_days: float | None = option(
        30.0, "days after they end that finished jobs, with their logs, models and exports, "
        "are deleted (a month to download a model, and no token's old jobs pile up; 0 keeps "
        "them for ever)", default_text="30", minimum=0, maximum=100_000,
    )
    spark: SparkConfig = field(default_factory=SparkConfig)  # for jobs with engine 'spark'
    run: RunConfig = field(default_factory=RunConfig)  # checkpoints, split per job

    def __post_init__(self) -> None:
        for name in ("allowed_bucket", "allowed_namenode"):  # the CLI gives a list or None
            object.__setattr__(self, name, tuple(getattr(self, name) or ()))
        check_bounds(self)
        if self.job_time_limit and self.job_time_limit.lower() != "none":
            require(parse_duration(self.job_time_limit, "job_time_limit") > 0,
                    "job_time_limit must be longer than 0 seconds")
        require(1 <= self.port <= 65535, "port must be between 1 and 65535")
        require(self.max_concurrent_jobs is None or self.max_concurrent_jobs >= 1,
                 "max_concurrent_jobs must be at least 1")
        require(self.max_request_bytes >= 1024, "max_request_bytes must be at least 1024")
        require(self.model_cache_size >= 1, "model_cache_size must be at least 1")
        require(self.cancel_grace_seconds >= 0, "cancel_grace_seconds must not be negative")
        require(self.token is None or len(self.token) >= 8,
                 "token must be at least 8 characters long")
        require(bool(self.tls_cert) == bool(self.tls_key),
                "give --tls-cert and --tls-key together")

    # ---- derived values -----------------------------------------------------------------

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def db_url(self) -> str:
        return self.db or f"sqlite:///{self.data_path / 'jobs.db'}"

    @property
    def concurrency(self) -> int:
        return self.max_concurrent_jobs or default_max_concurrent_jobs()

    @property
    def time_limit_seconds(self) -> float | None:
        """The job time limit in seconds; None when disabled."""
        text = self.job_time_limit
        if not text or text.lower() == "none":
            return None
        return parse_duration(text, "job_time_limit")

    @property
    def artifacts(self) -> str:
        return self.artifacts_url or str(self.data_path / "models")

    def roots(self) -> list[Path]:
        """The allowed roots, resolved (symlinks followed), in the order given."""
        return [Path(r).expanduser().resolve() for r in self.allowed_roots.split(os.pathsep)
                if r.strip()]

    def source_policy(self) -> SourcePolicy:
        """What jobs may read: checked at submission and again as the job opens each file."""
        return policy_for(
            self.roots(), self.allow_private_https, buckets=self.allowed_bucket,
            namenodes=self.allowed_namenode, allow_chaining=self.allow_fsspec_chaining,
            max_input_bytes=self.max_job_input_bytes, max_files=self.max_source_files,
            listing_seconds=self.source_listing_seconds)

    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

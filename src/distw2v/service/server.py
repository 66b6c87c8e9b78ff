"""Putting the service together: store, artifacts, runner, model cache, tokens, metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import Distw2vError
from .artifacts import Artifacts
from .metrics import Metrics
from .queries import ModelCache
from .quota import StorageQuota
from .runner import Runner
from .security import Listings, Tokens, check_roots, load_tokens
from .settings import ServiceConfig
from .store import JobStore

log = logging.getLogger("distw2v.service")


@dataclass
class Service:
    config: ServiceConfig
    store: JobStore
    artifacts: Artifacts
    runner: Runner
    models: ModelCache
    tokens: Tokens
    metrics: Metrics
    quota: StorageQuota
    token_file: Path | None = None
    listings: Listings = field(default_factory=Listings)  # submitted sources, off the loop

    @classmethod
    def build(cls, config: ServiceConfig) -> Service:
        """Check the settings and open everything (raises Distw2vError with one sentence)."""
        if config.token_file:
            if config.token:
                raise Distw2vError("give the token with --token or --token-file, not both.")
            config = replace(config, token=read_token_file(config.token_file))
        check_roots(config)
        tokens, token_file = load_tokens(config)
        config.data_path.mkdir(parents=True, exist_ok=True)
        store = JobStore(config.db_url)
        artifacts = Artifacts(config.artifacts, config.data_path / "cache",
                              config.s3_endpoint_url)
        runner = Runner(config, store, artifacts)
        models = ModelCache(artifacts, config.model_cache_size)
        runner.forget = models.drop  # a job the retention sweep deletes is not answered for
        return cls(
            config=config, store=store, artifacts=artifacts, runner=runner, models=models,
            tokens=Tokens(tokens), metrics=Metrics(store, lambda: len(runner.running_ids())),
            quota=StorageQuota(store, artifacts, config.max_stored_bytes_per_token),
            token_file=token_file,
        )


def read_token_file(path: str) -> str:
    """The first token in a file (blank lines and '#' comments skipped)."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise Distw2vError(f"cannot read the token file {path}: {reason}.") from None
    found = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    if not found or len(found[0]) < 8:
        raise Distw2vError(f"the token file {path} holds no token of at least 8 characters.")
    return found[0]

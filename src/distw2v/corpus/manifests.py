"""Crawl manifests as sources: a `wet.paths.gz` listing (Common Crawl's, one relative path a
line) names its files under a base URL; and the selection of the files a run reads
(--max-files, --sample-files)."""

from __future__ import annotations

import os
import random
from urllib.parse import urlsplit

from ..config import VocabConfig
from ..errors import CorpusError
from .listing import _protocol
from .streams import open_binary

COMMON_CRAWL = "https://data.commoncrawl.org/"
_MAX_MANIFEST_BYTES = 256 << 20  # a crawl's wet.paths.gz lists ~90,000 paths in ~10 MB


def is_manifest(uri: str) -> bool:
    """Whether a source is a crawl manifest, by its name: `wet.paths.gz`, `x.paths`."""
    name = os.path.basename(uri.split("?", 1)[0] if "://" in uri else uri).lower()
    return name.endswith((".paths", ".paths.gz"))


def default_base(uri: str) -> str:
    """Where a manifest's paths are: the bucket or host it came from (Common Crawl's
    manifests sit at crawl-data/CC-MAIN-.../ and list paths from the root), or Common
    Crawl's https mirror for a local manifest."""
    if _protocol(uri) is None or _protocol(uri) == "file":
        return COMMON_CRAWL
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}/"


def manifest_files(uri: str, base: str | None) -> list[str]:
    """The files a manifest lists, in its order, each under `base` (or default_base)."""
    root = (base or default_base(uri)).rstrip("/") + "/"
    with open_binary(uri) as stream:
        data = stream.read(_MAX_MANIFEST_BYTES + 1)
    if len(data) > _MAX_MANIFEST_BYTES:
        raise CorpusError(f"{uri} is larger than {_MAX_MANIFEST_BYTES >> 20} MiB: is it a "
                          f"crawl manifest (a list of paths, one a line)?")
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise CorpusError(f"{uri} is not a crawl manifest (a list of paths, one a line): it "
                          f"is not UTF-8 text.") from None
    paths = [line.strip() for line in lines if line.strip()]
    if not paths:
        raise CorpusError(f"crawl manifest {uri} lists no files.")
    bad = next((p for p in paths if any(c.isspace() for c in p)), None)
    if bad is not None:
        raise CorpusError(f"{uri} is not a crawl manifest (a list of paths, one a line): a "
                          f"line holds {bad[:60]!r}.")
    return [p if "://" in p else root + p.lstrip("/") for p in paths]


def select_files(files: list[str], config: VocabConfig | None) -> list[str]:
    """The files a run reads: the first --max-files, or --sample-files drawn by
    --sample-seed (kept in their listed order), or all."""
    if config is None:
        return files
    if config.max_files is not None:
        return files[:config.max_files]
    if config.sample_files is not None and config.sample_files < len(files):
        chosen = random.Random(config.sample_seed).sample(range(len(files)), config.sample_files)
        return [files[i] for i in sorted(chosen)]
    return files

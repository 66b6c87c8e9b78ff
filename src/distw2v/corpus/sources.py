"""Sources to files: `expand_sources` lists every file the URIs name (through the source
policy when one is active), and `input_splits` cuts large uncompressed files into byte
ranges, one per Spark task."""

from __future__ import annotations

import os
from collections.abc import Sequence

from ..config import VocabConfig
from ..errors import CorpusError
from .listing import _describe_error, _expand_fsspec, _expand_local, _protocol
from .manifests import is_manifest, manifest_files, select_files
from .policy import active_policy, expand_checked
from .streams import _EXTENSIONS


def expand_sources(uris: Sequence[str] | str, config: VocabConfig | None = None) -> list[str]:
    """Expand paths, directories, globs and URLs into a list of concrete files.

    Each source expands to its files in sorted order (directories recursively, skipping
    hidden files and folders); sources keep the order they were given in and a file named
    twice is read once. Raises CorpusError naming the source when it matches nothing or
    cannot be reached. A crawl manifest (`wet.paths.gz`) expands to the files it lists; with
    `config`, only the files its --max-files or --sample-files select.
    """
    return [uri for uri, _ in _expand_with_sizes(uris, config)]


def absolute_sources(uris: Sequence[str]) -> list[str]:
    """The sources as a model's meta.json records them: local paths made absolute (so the
    record still says which files were read from wherever it is looked at), URLs as given."""
    return [uri if _protocol(uri) is not None else os.path.abspath(uri) for uri in uris]


def input_splits(
    uris: Sequence[str] | str, split_bytes: int, config: VocabConfig | None = None
) -> list[tuple[str, int, int | None]]:
    """The sources as (file, start, end) byte ranges that parallel readers can take apart.

    A file that is not compressed (by its name), is not fetched over HTTP, is not WET (its
    records are not lines), and is larger than `split_bytes` becomes ranges of about that
    size; any other file is one range (0, None). Each line belongs to the range it starts
    in (see `iter_sentences_in_range`).
    """
    if split_bytes < 1:
        raise CorpusError("split_bytes must be at least 1.")
    whole_files = config is not None and config.format == "wet"
    splits: list[tuple[str, int, int | None]] = []
    for uri, size in _expand_with_sizes(uris, config):
        name = uri.split("?", 1)[0] if "://" in uri else uri
        compressed = os.path.splitext(name)[1].lower() in _EXTENSIONS
        if size is None or size <= split_bytes or compressed or whole_files or _protocol(
                uri) in ("http", "https"):
            splits.append((uri, 0, None))
        else:
            splits.extend((uri, start, min(start + split_bytes, size))
                          for start in range(0, size, split_bytes))
    return splits


def _expand_with_sizes(
    uris: Sequence[str] | str, config: VocabConfig | None = None
) -> list[tuple[str, int | None]]:
    if isinstance(uris, str):
        uris = [uris]
    if not uris:
        raise CorpusError("no corpus source was given.")
    out: dict[str, int | None] = {}
    policy = active_policy()
    for uri in uris:
        found: list[tuple[str, int | None]]
        try:
            if is_manifest(uri):  # its files are checked by the policy as they are opened
                found = [(file, None) for file in manifest_files(
                    uri, config.crawl_base if config else None)]
            elif policy is not None:  # checked as they will be opened (see policy.py)
                found = expand_checked(uri, policy)
            elif _protocol(uri) is None:  # a plain local path, not a URL
                found = _expand_local(uri)
            else:
                found = _expand_fsspec(uri)
        except CorpusError:
            raise
        except Exception as exc:  # any backend error: one sentence, not a traceback
            raise CorpusError(_describe_error(uri, exc)) from exc
        for path, size in found:
            out.setdefault(path, size)
    chosen = select_files(list(out), config)
    return [(path, out[path]) for path in chosen]


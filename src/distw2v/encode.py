"""One pass from tokenized sentences to int32 id shards on disk, plus a JSON manifest.

Training streams these shards every epoch instead of tokenizing again. A shard is two `.npy`
files: `ids` (int32 word ids of all its sentences, words outside the vocabulary dropped) and
`offsets` (int64, sentence s is `ids[offsets[s]:offsets[s + 1]]`). Both load memory-mapped.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from operator import is_not
from pathlib import Path

import numpy as np

from .errors import CorpusError, ModelFormatError
from .vocab import Vocabulary

FORMAT = "distw2v-encoded"
FORMAT_VERSION = 1
DEFAULT_SHARD_WORDS = 64 * 1024 * 1024  # 256 MiB of ids per shard


def vocabulary_fingerprint(words: list[str]) -> str:
    digest = hashlib.sha256()
    for word in words:
        digest.update(word.encode("utf-8"))
        digest.update(b"\n")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Shard:
    ids_file: str
    offsets_file: str
    words: int
    sentences: int


@dataclass(frozen=True)
class EncodedCorpus:
    path: Path
    shards: list[Shard]
    words: int  # ids stored, i.e. corpus words inside the vocabulary
    corpus_words: int  # every token read
    vocab_size: int
    vocab_fingerprint: str

    def load_shard(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        shard = self.shards[i]
        try:
            ids = np.load(self.path / shard.ids_file, mmap_mode="r")
            offsets = np.load(self.path / shard.offsets_file, mmap_mode="r")
        except (OSError, ValueError, EOFError) as exc:
            raise ModelFormatError(
                f"encoded shard {i} in {self.path} is unreadable: {exc}."
            ) from None
        if ids.dtype != np.int32 or offsets.dtype != np.int64 or len(ids) != shard.words:
            raise ModelFormatError(f"encoded shard {i} in {self.path} is corrupt or truncated.")
        return ids, offsets

    def check_matches(self, vocab: Vocabulary) -> None:
        if self.vocab_fingerprint != vocabulary_fingerprint(vocab.words):
            raise ModelFormatError(
                f"the encoded corpus in {self.path} was made with a different vocabulary."
            )

    @classmethod
    def open(cls, path: str | Path) -> EncodedCorpus:
        path = Path(path)
        try:
            manifest = json.loads((path / "manifest.json").read_text())
        except FileNotFoundError:
            raise ModelFormatError(
                f"{path} holds no manifest.json; it is not an encoded corpus."
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ModelFormatError(f"{path}/manifest.json is corrupt.") from None
        if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
            raise ModelFormatError(f"{path} is not a distw2v encoded corpus (format version 1).")
        return cls(
            path=path,
            shards=[Shard(**s) for s in manifest["shards"]],
            words=manifest["words"],
            corpus_words=manifest["corpus_words"],
            vocab_size=manifest["vocab_size"],
            vocab_fingerprint=manifest["vocab_fingerprint"],
        )


class _ShardWriter:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.shards: list[Shard] = []
        self.ids = array("i")
        self.offsets = array("q", [0])

    def add(self, ids: Iterable[int]) -> None:
        before = len(self.ids)
        self.ids.extend(ids)
        if len(self.ids) > before:
            self.offsets.append(len(self.ids))

    def flush(self) -> None:
        if len(self.offsets) == 1:
            return
        n = len(self.shards)
        shard = Shard(f"ids-{n:05d}.npy", f"offsets-{n:05d}.npy", len(self.ids),
                      len(self.offsets) - 1)
        np.save(self.directory / shard.ids_file, np.frombuffer(self.ids, dtype=np.int32))
        np.save(self.directory / shard.offsets_file, np.frombuffer(self.offsets, dtype=np.int64))
        self.shards.append(shard)
        self.ids = array("i")
        self.offsets = array("q", [0])


def encode_corpus(
    sentences: Iterable[list[str]],
    vocab: Vocabulary,
    out_dir: str | Path,
    shard_words: int = DEFAULT_SHARD_WORDS,
    on_words: Callable[[int], None] | None = None,
) -> EncodedCorpus:
    """Write the id shards of `sentences` to `out_dir` atomically and return them opened."""
    out_dir = Path(out_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        writer = _ShardWriter(tmp)
        lookup = vocab.index.get
        known = partial(is_not, None)
        corpus_words = 0
        pending = 0
        for tokens in sentences:
            writer.add(filter(known, map(lookup, tokens)))  # type: ignore[arg-type]
            corpus_words += len(tokens)
            pending += len(tokens)
            if len(writer.ids) >= shard_words:
                writer.flush()
            if on_words is not None and pending >= 100_000:
                on_words(pending)
                pending = 0
        writer.flush()
        if on_words is not None and pending:
            on_words(pending)
        words = sum(s.words for s in writer.shards)
        if words == 0:
            raise CorpusError("the corpus holds no word of the vocabulary; nothing to train on.")
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "shards": [vars(s) for s in writer.shards],
            "words": words,
            "corpus_words": corpus_words,
            "vocab_size": len(vocab),
            "vocab_fingerprint": vocabulary_fingerprint(vocab.words),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return EncodedCorpus.open(out_dir)

"""Where finished models live: a local directory or an fsspec URL, one directory per job.

A job trains into its own scratch directory; `publish` then moves the finished model to
ARTIFACTS/<job id>/ in one rename (local), or uploads it with meta.json last (remote: a model
directory without meta.json is incomplete, and the job is marked succeeded only after the
upload). Queries and word2vec exports read a local copy: the model itself when the store is
local, otherwise a cache directory downloaded once, atomically.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import tarfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from ..errors import Distw2vError
from ..vectors import INDEX_FILE, META_FILE, VECTORS_FILE, WORDS_FILE, Vectors

MODEL_FILES = (WORDS_FILE, VECTORS_FILE, META_FILE)  # meta.json last: it marks completion
OPTIONAL_FILES = (INDEX_FILE,)  # large models only; copied before meta.json when present
EXPORTS = {"word2vec-bin": "vectors.bin", "word2vec-text": "vectors.txt"}


def _copy_order(present: Callable[[str], bool]) -> list[str]:
    """The model's files in the order a copy writes them: the optional ones that are
    `present`, and meta.json last, so that a copy cut short is never taken for complete."""
    optional = [n for n in OPTIONAL_FILES if present(n)]
    return [*MODEL_FILES[:-1], *optional, META_FILE]
_CHUNK = 1 << 20


class ModelGone(Distw2vError):
    """A succeeded job's model is no longer in the artifact store (deleted or lost)."""

    def __init__(self, job_id: str, url: str) -> None:
        super().__init__(f"the model of job {job_id} is no longer available in {url}.")


def storage_options(url: str, s3_endpoint_url: str | None) -> dict[str, Any]:
    """fsspec options for the artifact URL: the S3 endpoint, and no stale listing caches."""
    if not url.startswith(("s3://", "s3a://")):
        return {}
    options: dict[str, Any] = {"skip_instance_cache": True, "use_listings_cache": False}
    if s3_endpoint_url:
        options["endpoint_url"] = s3_endpoint_url
    return options


def is_remote(url: str) -> bool:
    return "://" in url and not url.lower().startswith("file://")


class Artifacts:
    """The models of all jobs under one root URL, and a local cache for remote ones."""

    def __init__(self, url: str, cache_dir: Path, s3_endpoint_url: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.remote = is_remote(self.url)
        self.cache_dir = cache_dir
        self.s3_endpoint_url = s3_endpoint_url
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        if not self.remote:
            self.root = Path(self.url.removeprefix("file://")).expanduser().resolve()

    def _remote(self, job_id: str) -> tuple[Any, str]:
        """The filesystem and the job's directory path on it (without the protocol)."""
        import fsspec.core

        options = storage_options(self.url, self.s3_endpoint_url)
        fs, base = fsspec.core.url_to_fs(f"{self.url}/{job_id}", **options)
        return fs, base.rstrip("/")

    def location(self, job_id: str) -> str:
        return f"{self.url}/{job_id}" if self.remote else str(self.root / job_id)

    def _lock(self, job_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(job_id, threading.Lock())

    # ---- writing (in the job process) -----------------------------------------------------

    def publish(self, job_id: str, model_dir: Path) -> str:
        """Move or upload a finished model directory to its place; returns that place."""
        target = self.location(job_id)
        if self.remote:
            fs, base = self._remote(job_id)
            if fs.exists(base):
                fs.rm(base, recursive=True)
            for name in _copy_order(lambda n: (model_dir / n).is_file()):
                fs.put_file(str(model_dir / name), f"{base}/{name}")
            return target
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / job_id
        tmp = self.root / f".{job_id}.tmp-{secrets.token_hex(4)}"
        try:
            os.rename(model_dir, tmp)  # same filesystem: instant
        except OSError:
            shutil.copytree(model_dir, tmp)
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
        return target

    def delete(self, job_id: str) -> None:
        """Remove a job's model and cached exports (missing ones are fine)."""
        shutil.rmtree(self.cache_dir / job_id, ignore_errors=True)
        if self.remote:
            fs, base = self._remote(job_id)
            if fs.exists(base):
                fs.rm(base, recursive=True)
        else:
            shutil.rmtree(self.root / job_id, ignore_errors=True)
            for stale in self.root.glob(f".{job_id}.*"):
                shutil.rmtree(stale, ignore_errors=True)

    # ---- reading (in the server) -----------------------------------------------------------

    def local_model(self, job_id: str) -> Path:
        """A local model directory for the job, downloaded once into the cache if remote."""
        if not self.remote:
            path = self.root / job_id
            if not (path / META_FILE).is_file():
                raise ModelGone(job_id, self.url)
            return path
        path = self.cache_dir / job_id / "model"
        if (path / META_FILE).is_file():
            return path
        with self._lock(job_id):
            if (path / META_FILE).is_file():
                return path
            fs, base = self._remote(job_id)
            if not fs.exists(f"{base}/{META_FILE}"):
                raise ModelGone(job_id, self.url)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.parent / f".model.tmp-{secrets.token_hex(4)}"
            tmp.mkdir()
            try:
                for name in _copy_order(lambda n: fs.exists(f"{base}/{n}")):
                    fs.get_file(f"{base}/{name}", str(tmp / name))
                os.rename(tmp, path)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        return path

    def export(self, job_id: str, fmt: str) -> Path:
        """The model in a word2vec format, written once into the cache."""
        path = self.cache_dir / job_id / EXPORTS[fmt]
        if path.is_file():
            return path
        with self._lock(job_id):
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                vectors = Vectors.load(self.local_model(job_id))
                vectors.save_word2vec(path, binary=fmt == "word2vec-bin")  # atomic
        return path

    def export_bytes(self, job_id: str) -> int:
        """The bytes of the job's word2vec exports in the cache."""
        total = 0
        for name in EXPORTS.values():
            with contextlib.suppress(FileNotFoundError):
                total += (self.cache_dir / job_id / name).stat().st_size
        return total

    def export_bound(self, job_id: str, fmt: str) -> int:
        """At most how many bytes the export will add to the cache (0: it is there).

        Exact for word2vec-bin (a word, a space, 4 bytes a value, a newline); for text, 16
        bytes a value bound '%.9g' and its space. The words file holds every word.
        """
        if (self.cache_dir / job_id / EXPORTS[fmt]).is_file():
            return 0
        model = self.local_model(job_id)
        try:
            rows, dim = np.load(model / VECTORS_FILE, mmap_mode="r").shape
            words = (model / WORDS_FILE).stat().st_size
        except (OSError, ValueError):
            raise ModelGone(job_id, self.url) from None
        return 64 + words + rows * (2 + dim * (4 if fmt == "word2vec-bin" else 16))

    def has_model(self, job_id: str) -> bool:
        """Whether the job's model (its local copy, when the store is remote) is in place."""
        root = self.cache_dir / job_id / "model" if self.remote else self.root / job_id
        return (root / META_FILE).is_file()

    def open_export(self, job_id: str, fmt: str) -> tuple[IO[bytes], int]:
        """The word2vec export, opened (ModelGone before any byte is sent), and its size."""
        self.local_model(job_id)  # a cached export outlives no model
        path = self.export(job_id, fmt)
        try:
            file = open(path, "rb")  # noqa: SIM115 - handed to the response, which closes it
        except FileNotFoundError:
            raise ModelGone(job_id, self.url) from None
        return file, os.fstat(file.fileno()).st_size

    def native_tar(self, job_id: str) -> tuple[Iterator[bytes], int]:
        """The model directory as an uncompressed tar stream, and its length in bytes.

        Every file is opened before this returns: a missing model raises ModelGone here
        (not half-way through a 200 response), and a model deleted while it streams is
        still read whole from the open files.
        """
        model = self.local_model(job_id)
        files: list[tuple[str, IO[bytes]]] = []
        try:
            optional = [n for n in OPTIONAL_FILES if (model / n).is_file()]
            for name in [*MODEL_FILES, *optional]:
                files.append((name, open(model / name, "rb")))  # noqa: SIM115 - closed below
        except FileNotFoundError:
            for _, file in files:
                file.close()
            raise ModelGone(job_id, self.url) from None
        headers: list[bytes] = []
        total = 2 * tarfile.BLOCKSIZE
        for name, file in files:
            stat = os.fstat(file.fileno())
            info = tarfile.TarInfo(f"{job_id}/{name}")
            info.size, info.mode, info.mtime = stat.st_size, 0o644, int(stat.st_mtime)
            headers.append(info.tobuf(format=tarfile.PAX_FORMAT))
            total += len(headers[-1]) + stat.st_size + _padding(stat.st_size)
        return _tar_stream(files, headers), total


def _padding(size: int) -> int:
    return -size % tarfile.BLOCKSIZE


def _tar_stream(files: list[tuple[str, IO[bytes]]], headers: list[bytes]) -> Iterator[bytes]:
    try:
        for (_, file), header in zip(files, headers):
            yield header
            size = 0
            while chunk := file.read(_CHUNK):
                size += len(chunk)
                yield chunk
            yield b"\0" * _padding(size)
        yield b"\0" * (2 * tarfile.BLOCKSIZE)
    finally:
        for _, file in files:
            file.close()


def stream_file(file: IO[bytes]) -> Iterator[bytes]:
    """An open file in chunks, closed at the end (or when the client goes away)."""
    try:
        while chunk := file.read(_CHUNK):
            yield chunk
    finally:
        file.close()

"""Where finished models live: a local directory or an fsspec URL, one directory per job.

A job trains into its own scratch directory; `publish` then moves the finished model to
ARTIFACTS/<job id>/ in one rename (local), or uploads it with meta.json last (remote: a model
directory without meta.json is incomplete, and the job is marked succeeded only after the
upload). Queries and word2vec exports read a local copy: the model itself when the store is
local, otherwise a cache directory downloaded once, atomically.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import Distw2vError
from ..vectors import META_FILE, VECTORS_FILE, WORDS_FILE, Vectors

MODEL_FILES = (WORDS_FILE, VECTORS_FILE, META_FILE)  # meta.json last: it marks completion
EXPORTS = {"word2vec-bin": "vectors.bin", "word2vec-text": "vectors.txt"}
_CHUNK = 1 << 20


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
            for name in MODEL_FILES:
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
                raise Distw2vError(f"the model of job {job_id} is missing from {self.url}.")
            return path
        path = self.cache_dir / job_id / "model"
        if (path / META_FILE).is_file():
            return path
        with self._lock(job_id):
            if (path / META_FILE).is_file():
                return path
            fs, base = self._remote(job_id)
            if not fs.exists(f"{base}/{META_FILE}"):
                raise Distw2vError(f"the model of job {job_id} is missing from {self.url}.")
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.parent / f".model.tmp-{secrets.token_hex(4)}"
            tmp.mkdir()
            try:
                for name in MODEL_FILES:
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

    def native_tar(self, job_id: str) -> Iterator[bytes]:
        """Stream the model directory as an uncompressed tar, file by file, in chunks."""
        model = self.local_model(job_id)
        for name in MODEL_FILES:
            file = model / name
            info = tarfile.TarInfo(f"{job_id}/{name}")
            info.size = file.stat().st_size
            info.mode = 0o644
            info.mtime = int(file.stat().st_mtime)
            yield info.tobuf(format=tarfile.PAX_FORMAT)
            with open(file, "rb") as src:
                while chunk := src.read(_CHUNK):
                    yield chunk
            if info.size % tarfile.BLOCKSIZE:
                yield b"\0" * (tarfile.BLOCKSIZE - info.size % tarfile.BLOCKSIZE)
        yield b"\0" * (2 * tarfile.BLOCKSIZE)


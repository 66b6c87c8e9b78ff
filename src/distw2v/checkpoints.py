"""A training run's checkpoints, so that a run that fails can go on where it stopped.

After every epoch the model is saved in `<dir>/epoch-<k>/` (by the local trainer, or by each
parameter-server shard for its columns) and then `<dir>/progress.json` is replaced to name
epoch k. The progress file is written last, so a crash while saving leaves the previous epoch
in force. It also records what the run was (engine, configuration, sources, vocabulary size):
a run given the same directory resumes only when those match, since the saved vectors mean
nothing to any other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import fsspec
import numpy as np

from .errors import Distw2vError

FORMAT = "distw2v-checkpoint"
PROGRESS = "progress.json"


def prepare_dir(uri: str) -> None:
    """Create the checkpoint directory now, so that a bad one fails the run before any work."""
    try:
        fs, path = fsspec.core.url_to_fs(uri)
        fs.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise Distw2vError(f"cannot create the checkpoint directory {uri}: {exc}.") from None


class RunCheckpoints:
    def __init__(self, uri: str, run: dict[str, Any]) -> None:
        self.uri = uri.rstrip("/")
        self.run = json.loads(json.dumps(run))  # as it reads back from the file
        self._fs, self._path = fsspec.core.url_to_fs(self.uri)
        self._done: int | None = None  # read once: the driver, bar and trainer all ask

    def epochs_done(self) -> int:
        """Epochs saved by an earlier attempt at this run (0 when there is none)."""
        if self._done is None:
            self._done = self._read_progress()
        return self._done

    def _read_progress(self) -> int:
        try:
            text = self._fs.cat_file(f"{self._path}/{PROGRESS}")
        except FileNotFoundError:
            return 0
        except OSError as exc:
            raise Distw2vError(f"cannot read {self.uri}/{PROGRESS}: {exc}.") from None
        try:
            progress = json.loads(text)
            if progress.get("format") != FORMAT:
                raise ValueError("no format mark")
            saved, epochs = progress["run"], int(progress["epochs_done"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise Distw2vError(f"{self.uri}/{PROGRESS} is not a distw2v checkpoint.") from None
        if saved != self.run:
            differ = sorted(k for k in set(saved) | set(self.run)
                            if saved.get(k) != self.run.get(k))
            raise Distw2vError(
                f"the checkpoint in {self.uri} is of another run (it differs in "
                f"{', '.join(differ)}); give another --checkpoint-dir or remove that one.")
        return epochs

    def epoch_uri(self, epoch: int) -> str:
        return f"{self.uri}/epoch-{epoch}"

    def saved(self, epoch: int) -> None:
        """Record that the model after `epoch` is saved, then drop the epoch before it."""
        progress = {"format": FORMAT, "epochs_done": epoch, "run": self.run}
        tmp = f"{self._path}/{PROGRESS}.tmp"
        try:
            self._fs.pipe_file(tmp, json.dumps(progress, indent=1).encode())
            self._fs.mv(tmp, f"{self._path}/{PROGRESS}")
        except OSError as exc:
            raise Distw2vError(f"cannot write {self.uri}/{PROGRESS}: {exc}.") from None
        self._done = epoch
        try:
            self._fs.rm(f"{self._path}/epoch-{epoch - 1}", recursive=True)
        except FileNotFoundError:
            pass


def save_arrays(uri: str, arrays: dict[str, np.ndarray], what: str = "a checkpoint") -> None:
    """Write each array to `<uri>/<name>.npy` (a local path or an fsspec URL); `what` names
    the directory's purpose in the error."""
    try:
        fs, path = fsspec.core.url_to_fs(uri)
        fs.makedirs(path, exist_ok=True)
        for name, array in arrays.items():
            with fs.open(f"{path}/{name}.npy", "wb") as f:
                np.save(f, array)
    except OSError as exc:
        raise Distw2vError(f"cannot save {what} in {uri}: {exc}.") from None


def load_arrays(uri: str, names: Sequence[str], shape: tuple[int, int]) -> list[np.ndarray]:
    """The float32 arrays `names` saved in `uri` by `save_arrays`, each of `shape`."""
    fs, path = fsspec.core.url_to_fs(uri)
    arrays = []
    try:
        for name in names:
            with fs.open(f"{path}/{name}.npy", "rb") as f:
                arrays.append(np.load(f))
    except (OSError, ValueError) as exc:
        raise Distw2vError(f"the checkpoint in {uri} is unreadable: {exc}.") from None
    if any(a.shape != shape or a.dtype != np.float32 for a in arrays):
        raise Distw2vError(f"the checkpoint in {uri} is truncated or corrupt.")
    return arrays

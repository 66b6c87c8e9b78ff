"""A training run's checkpoints, so that a run that fails can go on where it stopped.

After every epoch the model is saved in `<dir>/epoch-<k>/` (by the local trainer, or by each
parameter-server shard for its columns) and then `<dir>/progress.json` is replaced to name
epoch k. The Spark engine also saves within an epoch, in `<dir>/epoch-<k>-<n>/` once n of
epoch k+1's partitions are done, and records which (with their words, which set the learning
rate). The progress file is written last, so a crash while saving leaves the previous
checkpoint in force. It also records what the run was (engine, configuration, sources,
vocabulary size): a run given the same directory resumes only when those match, since the
saved vectors mean nothing to any other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Position:
    """How far a run got: whole epochs, and the partitions of the next one already trained
    (index -> corpus words), as a checkpoint saved them."""

    epochs: int = 0
    partitions: dict[int, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"epoch-{self.epochs}-{len(self.partitions)}" if self.partitions \
            else f"epoch-{self.epochs}"

    def words(self, epoch_words: int) -> int:
        """Corpus words trained up to here, when an epoch is `epoch_words`."""
        return self.epochs * epoch_words + sum(self.partitions.values())


class RunCheckpoints:
    def __init__(self, uri: str, run: dict[str, Any]) -> None:
        self.uri = uri.rstrip("/")
        self.run = json.loads(json.dumps(run))  # as it reads back from the file
        self._fs, self._path = fsspec.core.url_to_fs(self.uri)
        self._position: Position | None = None  # read once: the driver, bar and trainer ask

    def epochs_done(self) -> int:
        """Epochs saved by an earlier attempt at this run (0 when there is none)."""
        return self.position().epochs

    def position(self) -> Position:
        """Where the last saved checkpoint stands (the start when there is none)."""
        if self._position is None:
            self._position = self._read_progress()
        return self._position

    def position_uri(self) -> str | None:
        """The directory of the last saved checkpoint, if any."""
        position = self.position()
        return self.position_uri_for(position) if position != Position() else None

    def _read_progress(self) -> Position:
        try:
            text = self._fs.cat_file(f"{self._path}/{PROGRESS}")
        except FileNotFoundError:
            return Position()
        except OSError as exc:
            raise Distw2vError(f"cannot read {self.uri}/{PROGRESS}: {exc}.") from None
        try:
            progress = json.loads(text)
            if progress.get("format") != FORMAT:
                raise ValueError("no format mark")
            saved, epochs = progress["run"], int(progress["epochs_done"])
            partitions = {int(k): int(v)
                          for k, v in progress.get("partitions_done", {}).items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            raise Distw2vError(f"{self.uri}/{PROGRESS} is not a distw2v checkpoint.") from None
        if saved != self.run:
            differ = sorted(k for k in set(saved) | set(self.run)
                            if saved.get(k) != self.run.get(k))
            raise Distw2vError(
                f"the checkpoint in {self.uri} is of another run (it differs in "
                f"{', '.join(differ)}); give another --checkpoint-dir or remove that one.")
        return Position(epochs, partitions)

    def epoch_uri(self, epoch: int) -> str:
        return self.position_uri_for(Position(epoch))

    def position_uri_for(self, position: Position) -> str:
        return f"{self.uri}/{position.name}"

    def saved(self, epoch: int, partitions: dict[int, int] | None = None) -> None:
        """Record that the model after `epoch` epochs (and `partitions` of the next) is saved
        in `position_uri_for` it, then drop the checkpoint before it."""
        before = self.position()
        now = Position(epoch, dict(partitions or {}))
        progress = {"format": FORMAT, "epochs_done": epoch, "run": self.run,
                    "checkpoint": now.name,
                    "partitions_done": {str(k): v for k, v in sorted(now.partitions.items())}}
        tmp = f"{self._path}/{PROGRESS}.tmp"
        try:
            self._fs.pipe_file(tmp, json.dumps(progress, indent=1).encode())
            self._fs.mv(tmp, f"{self._path}/{PROGRESS}")
        except OSError as exc:
            raise Distw2vError(f"cannot write {self.uri}/{PROGRESS}: {exc}.") from None
        self._position = now
        if before.name != now.name:
            try:
                self._fs.rm(f"{self._path}/{before.name}", recursive=True)
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

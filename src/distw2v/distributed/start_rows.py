"""A continued run's start on the shards: the model's input and output matrices, which the
driver copies into `<work>/init/` (syn0.npy, syn1.npy), read by every shard in row blocks, of
which it keeps its own columns or rows. Nothing holds a whole matrix, and the file may be on
any filesystem the work dir is (fsspec), so it is streamed rather than memory-mapped."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

import fsspec
import numpy as np

from ..errors import Distw2vError

INIT_DIR = "init"  # under the work dir: the only directory a shard reads a start from
NAMES = ("syn0", "syn1")
BLOCK_BYTES = 16 << 20  # read at a time


def init_dir(work: str) -> str:
    return f"{work.rstrip('/')}/{INIT_DIR}"


def is_init_dir(path: str) -> bool:
    return posixpath.basename(path.rstrip("/")) == INIT_DIR


def write_init(work: str, syn0_file: str, syn1_file: str) -> str:
    """Copy a model's vectors.npy and output.npy into the work dir, where shards read them."""
    uri = init_dir(work)
    try:
        fs, path = fsspec.core.url_to_fs(uri)
        fs.makedirs(path, exist_ok=True)
        for name, source in zip(NAMES, (syn0_file, syn1_file)):
            fs.put_file(source, f"{path}/{name}.npy")
    except OSError as exc:
        raise Distw2vError(f"cannot copy the --init model into {uri}: {exc}.") from None
    return uri


def init_blocks(uri: str, name: str, rows: int, dim: int) -> Iterator[tuple[int, np.ndarray]]:
    """(first row, block) of `<uri>/<name>.npy`, refused unless it is a float32 C-order
    (`rows`, `dim`) matrix."""
    if name not in NAMES:
        raise Distw2vError(f"there is no start matrix {name[:20]!r}.")
    file = f"{uri}/{name}.npy"
    try:
        with fsspec.open(file, "rb") as src:
            version = np.lib.format.read_magic(src)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(src)
            if shape != (rows, dim) or fortran or dtype != np.dtype("<f4"):
                raise Distw2vError(f"{file} holds a {dtype} matrix of shape {shape}, not the "
                                   f"float32 ({rows}, {dim}) of the model continued.")
            block = max(1, BLOCK_BYTES // (4 * dim))
            for lo in range(0, rows, block):
                hi = min(lo + block, rows)
                data = src.read((hi - lo) * dim * 4)
                if len(data) != (hi - lo) * dim * 4:
                    raise Distw2vError(f"{file} is truncated.")
                yield lo, np.frombuffer(data, dtype="<f4").reshape(hi - lo, dim)
    except (OSError, ValueError) as exc:
        raise Distw2vError(f"cannot read the start matrix {file}: {exc}.") from None

"""What a shard accepts from a peer: the one home of the rules every request is checked by
before a kernel sees it. The kernels are numba code that does not check bounds, so an id,
an offset or a shape that is not checked here is a read or write anywhere in the shard's
memory. Everything arriving here is hostile until checked: its types (JSON has floats,
strings, lists, NaN and huge integers), its sizes, its ranges, and which arrays a request
carries at all.
"""

from __future__ import annotations

import dataclasses
import math
import os
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

import numpy as np

from ..config import check_bounds
from ..errors import Distw2vError

SEED_MAX = 2**64 - 1  # batch seeds are uint64 LCG states
WORDS_MAX = 2**53 - 1  # corpus words a call may report (exact in JSON)
PAIRS_MAX = 1 << 26  # (context, centre) pairs in one batch: far above any --batch-pairs

Spec = TypeVar("Spec")


class BadRequest(Distw2vError):
    """A request that breaks these rules (the shard answers INVALID_ARGUMENT)."""


def bounded(minimum: float, maximum: float, **kwargs: Any) -> Any:
    """A spec field with bounds that `check_bounds` enforces (config.option without help)."""
    return dataclasses.field(metadata={"minimum": minimum, "maximum": maximum}, **kwargs)


def _typed(value: Any, kind: Any, name: str) -> Any:
    """`value` if it is of the field's declared kind (bool is not a number here)."""
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            raise BadRequest(f"spec field {name} must be a finite number.")
    else:
        ok = isinstance(value, kind)
    if not ok:
        said = {bool: "true or false", int: "an integer", float: "a number"}.get(kind, "text")
        raise BadRequest(f"spec field {name} must be {said}, not {type(value).__name__}.")
    return float(value) if kind is float else value


def spec_from(cls: type[Spec], data: Any) -> Spec:
    """A shard spec (ShardSpec, RowSpec) built from a peer's JSON: every field of its declared
    type, no unknown ones, every number within its declared bounds."""
    if not isinstance(data, dict):
        raise BadRequest("a spec must be a JSON object.")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - fields)
    if unknown:
        raise BadRequest(f"a spec has no field {unknown[0][:40]!r}.")
    spec = cls(**{k: _typed(v, hints[k], k) for k, v in data.items()})
    check_bounds(spec)
    return spec


def integer(header: Mapping[str, Any], name: str, low: int, high: int,
            default: int | None = None) -> int:
    value = header.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BadRequest(f"{name} must be an integer from {low} to {high}.")
    return value


def number(header: Mapping[str, Any], name: str, low: float, high: float,
           default: float | None = None) -> float:
    value = header.get(name, default)
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not low <= value <= high):  # NaN fails every comparison
        raise BadRequest(f"{name} must be a number from {low} to {high}.")
    return float(value)


def array(arrays: Mapping[str, np.ndarray], name: str, dtype: str, ndim: int) -> np.ndarray:
    """The request's array `name`, of `dtype` (little-endian) and `ndim` dimensions."""
    value = arrays.get(name)
    if value is None:
        raise BadRequest(f"the request has no array {name!r}.")
    if value.dtype != np.dtype(dtype) or value.ndim != ndim:
        raise BadRequest(f"array {name!r} must be {ndim}-dimensional {np.dtype(dtype).name}.")
    return value


def only(arrays: Mapping[str, np.ndarray], allowed: frozenset[str], method: str) -> None:
    """Refuse a request that carries arrays its method does not read: nothing is smuggled
    past the checks in an array nobody looks at."""
    extra = sorted(set(arrays) - allowed)
    if extra:
        raise BadRequest(f"a {method} request carries an unknown array {extra[0][:40]!r}.")


def word_ids(ids: np.ndarray, vocab_size: int, what: str) -> None:
    if ids.size and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise BadRequest(f"{what} names a word id outside the vocabulary of {vocab_size}.")


def offsets(ctx_offsets: np.ndarray, centers: int, contexts: int) -> None:
    """A batch's context offsets: one more than its centres, from 0 to its contexts' count,
    each centre with at least one context (CBOW divides by their number)."""
    if ctx_offsets.shape != (centers + 1,):
        raise BadRequest(f"a batch of {centers} centres needs {centers + 1} context offsets, "
                         f"not {ctx_offsets.shape[0]}.")
    if ctx_offsets[0] != 0 or ctx_offsets[-1] != contexts:
        raise BadRequest(f"context offsets must run from 0 to the batch's {contexts} "
                         "contexts.")
    if centers and not (np.diff(ctx_offsets) > 0).all():
        raise BadRequest("context offsets must rise: every centre has at least one context.")


def affordable(nbytes: int, what: str) -> None:
    """Refuse matrices larger than this machine's memory before allocating them: NumPy
    allocates lazily, so the kernel's first writes, not the allocation, would fail, and the
    whole shard would be killed."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if nbytes > total:
        raise Distw2vError(f"{what} need {nbytes / 2**30:.1f} GiB, more than this machine's "
                           f"{total / 2**30:.1f} GiB; use more shards.")


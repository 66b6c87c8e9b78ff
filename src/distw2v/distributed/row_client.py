"""Client of row shards (the rows strategy): pulls the rows a chunk touches and pushes their
deltas back, each message to the shard that holds the rows (`rows.Placement`), the rows named
by position as indices or a bitmap, whichever is smaller (`rowcodec`).

The transport, retries, bytes counted and the set-up calls the training loop makes
(`wait_ready`, `checkpoint`, `load`, `stats`, `pull` for the export) are PSClient's, so the
loop drives either strategy's shards alike. Shard 0 keeps the global word count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from .client import Pending, PSClient
from .rowcodec import encode_rows, pack_deltas, unpack_deltas
from .rows import Placement, RowSpec
from .wire import Message, pack, pack_parts, unpack

PushHandle = tuple[list[Message], Pending]


@dataclass(frozen=True)
class Route:
    """Which shard holds each of a message's rows: for each shard, (where0, at0) and
    (where1, at1), the places in ids0 / ids1 of the rows it holds and their positions there,
    sorted by position."""

    n0: int
    n1: int
    shards: list[tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]]

    def only(self, keep0: np.ndarray, keep1: np.ndarray) -> Route:
        """The same route with just the rows `keep0` / `keep1` (bool, one per id) marks."""
        def kept(where: np.ndarray, at: np.ndarray, keep: np.ndarray) -> tuple[Any, Any]:
            mask = keep[where]
            return where[mask], at[mask]

        return Route(self.n0, self.n1, [(kept(*first, keep0), kept(*second, keep1))
                                        for first, second in self.shards])


@dataclass
class Pulled:
    """What a pull brings: the rows, and the global word count."""

    rows0: np.ndarray
    rows1: np.ndarray
    global_words: int = 0


class RowClient(PSClient):
    def __init__(self, addresses: list[str], placement: Placement, dim: int, *,
                 half: bool = False, **options: Any) -> None:
        super().__init__(addresses, **options)
        self.placement = placement
        self.dim = dim
        self.half = half  # float16 rows and deltas on the wire
        self.row_bytes = {"indices": 0, "bitmap": 0}  # what naming the rows took

    # --- set-up, as PSClient's ------------------------------------------------------------

    def configure(self, specs: list[RowSpec]) -> None:  # type: ignore[override]
        self._call("RowConfigure", [pack({"spec": asdict(spec)}) for spec in specs])

    def checkpoint(self, uri: str) -> None:
        self._same("RowCheckpoint", {"uri": uri})

    def load(self, uri: str, specs: list[RowSpec],  # type: ignore[override]
             global_words: int | None = None) -> None:
        """Every shard takes its rows from the checkpoint in `uri`; `global_words`, when
        given, replaces shard 0's saved word count (the others count none)."""
        requests = []
        for spec in specs:
            header: dict[str, Any] = {"uri": uri, "spec": asdict(spec)}
            if global_words is not None:
                header["global_words"] = global_words if spec.shard == 0 else 0
            requests.append(pack(header))
        self._call("RowLoad", requests)

    def pull(self, lo: int, hi: int, which: str = "syn0") -> np.ndarray:
        """The input rows of ids [lo, hi), gathered from every shard (for the export)."""
        block = np.empty((hi - lo, self.dim), dtype=np.float32)
        for reply in self._same("RowPullRange", {"lo": lo, "hi": hi}):
            _, arrays = unpack(reply)
            block[arrays["ids"] - lo] = arrays["rows"]
        return block

    # --- training -------------------------------------------------------------------------

    def route(self, ids0: np.ndarray, ids1: np.ndarray) -> Route:
        """Where the syn0 rows of `ids0` and the syn1 rows of `ids1` (unique global ids) are
        held: computed once a chunk, for its pull and its push."""
        return Route(len(ids0), len(ids1), list(zip(self._by_shard(ids0),
                                                    self._by_shard(ids1))))

    def _by_shard(self, ids: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each shard: where in `ids` its words are, and their positions, sorted (one
        sort by shard, then position, for all shards at once)."""
        owners = self.placement.owners(ids)
        positions = self.placement.positions(ids)
        order = np.argsort(owners * (int(positions.max(initial=0)) + 1) + positions)
        ends = np.cumsum(np.bincount(owners, minlength=len(self.addresses)))
        return [(where, positions[where]) for where in np.split(order, ends[:-1])]

    def _named(self, which: str, positions: np.ndarray, shard: int) -> dict[str, Any]:
        kind, payload = encode_rows(positions, self.placement.rows(shard))
        self.row_bytes[kind] += payload.nbytes
        return {"header": {f"kind{which}": kind}, "arrays": {f"at{which}": payload}}

    def _requests(self, route: Route, build: Any) -> list[Message]:
        requests: list[Message] = []
        for shard, ((where0, at0), (where1, at1)) in enumerate(route.shards):
            first, second = self._named("0", at0, shard), self._named("1", at1, shard)
            header = {**first["header"], **second["header"], "half": self.half}
            arrays = {**first["arrays"], **second["arrays"]}
            extra_header, extra_arrays = build(shard, where0, where1)
            requests.append(pack_parts({**header, **extra_header}, **arrays, **extra_arrays))
        return requests

    def pull_rows(self, route: Route) -> Pulled:
        """The syn0 and syn1 rows of the route's ids, in their order, and the global word
        count."""
        requests = self._requests(route, lambda *_: ({}, {}))
        pulled = Pulled(np.empty((route.n0, self.dim), dtype=np.float32),
                        np.empty((route.n1, self.dim), dtype=np.float32))
        for shard, reply in enumerate(self._call("RowPull", requests)):
            header, arrays = unpack(reply)
            (where0, _), (where1, _) = route.shards[shard]
            pulled.rows0[where0] = unpack_deltas(arrays["rows0"], self.half, len(where0),
                                                 self.dim)
            pulled.rows1[where1] = unpack_deltas(arrays["rows1"], self.half, len(where1),
                                                 self.dim)
            if shard == 0:
                pulled.global_words = int(header["global_words"])
        return pulled

    def push_rows_async(self, route: Route, delta0: np.ndarray, delta1: np.ndarray,
                        words: int) -> PushHandle:
        """Send the deltas of the route's syn0 rows (`delta0`, one row per id of its ids0)
        and syn1 rows, with the corpus words they cover (counted by shard 0); returns at
        once (see wait_push). Rows a `Route.only` left out are not sent."""
        def build(shard: int, where0: np.ndarray, where1: np.ndarray) -> tuple[Any, Any]:
            return ({"words": words if shard == 0 else 0},
                    {"d0": pack_deltas(delta0[where0], self.half),
                     "d1": pack_deltas(delta1[where1], self.half)})

        requests = self._requests(route, build)
        return requests, self._start("RowPush", requests)

    def wait_push(self, handle: PushHandle) -> int:
        """Wait for a push; the global word count after it."""
        replies = self._finish("RowPush", *handle)
        return int(unpack(replies[0])[0]["global_words"])

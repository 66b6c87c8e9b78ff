"""Client of row shards (the rows strategy): pulls the rows a chunk touches and pushes their
deltas back, each message to the shard that holds the rows (`rows.Placement`), the rows named
by position as indices or a bitmap, whichever is smaller (`rowcodec`).

A chunk's rows come ordered by `Placement.sort_key` (kernels.rows.plan_chunk): its words
first, then its other output rows, each part shard by shard. So what a shard sends or takes
is three contiguous blocks of the chunk's matrices (`Layout`): replies are copied in, and
deltas go out as views of the matrices themselves, with no gather or scatter.

The transport, retries, bytes counted and the set-up calls the training loop makes
(`wait_ready`, `checkpoint`, `load`, `stats`, `pull` for the export) are PSClient's, so the
loop drives either strategy's shards alike. Shard 0 keeps the global word count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import Distw2vError
from ..kernels.rows import subtract_rows
from .client import Pending, PSClient
from .rowcodec import encode_rows, pack_deltas, unpack_deltas
from .rows import Placement, RowSpec
from .wire import Message, pack, pack_parts, unpack

PushHandle = tuple[list[Message], Pending]
Block = tuple[str, int, int]  # a message's array name, and the rows [lo, hi) it carries


@dataclass(frozen=True)
class Layout:
    """Which shard holds a chunk's rows. Rows [0, n_in) are the chunk's words, whose syn0
    and syn1 rows move; the others move only their syn1 rows. Shard s holds rows
    [in_cuts[s], in_cuts[s + 1]) and [out_cuts[s], out_cuts[s + 1]); `names[s]` names them
    by position in its messages (header, arrays)."""

    n_in: int
    in_cuts: np.ndarray
    out_cuts: np.ndarray
    names: list[tuple[dict[str, Any], dict[str, np.ndarray]]]

    def blocks(self, shard: int) -> tuple[Block, Block, Block]:
        """Shard `shard`'s blocks, by the names its messages give them: "in0" (syn0 rows),
        "in1" and "out1" (syn1 rows)."""
        i_lo, i_hi = int(self.in_cuts[shard]), int(self.in_cuts[shard + 1])
        o_lo, o_hi = int(self.out_cuts[shard]), int(self.out_cuts[shard + 1])
        return ("in0", i_lo, i_hi), ("in1", i_lo, i_hi), ("out1", o_lo, o_hi)


@dataclass
class Pulled:
    """What a pull brought: the global word count, and each block as pulled (matrix, first
    row, rows), to turn the trained matrices into deltas."""

    global_words: int = 0
    blocks: list[tuple[np.ndarray, int, np.ndarray]] = field(default_factory=list)

    def subtract(self) -> bool:
        """Turn the trained blocks into their deltas, in place; whether all are finite."""
        finite = [subtract_rows(matrix, lo, rows) for matrix, lo, rows in self.blocks]
        return all(finite)


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

    def layout(self, rows: np.ndarray, n_in: int) -> Layout:
        """Where the chunk's rows (unique global ids: the chunk's words, `n_in` of them, then
        its other output rows, each part ordered by `Placement.sort_key`) are held."""
        owners = self.placement.owners(rows)
        if (np.diff(owners[:n_in]) < 0).any() or (np.diff(owners[n_in:]) < 0).any():
            raise Distw2vError("a chunk's rows must come in Placement.sort_key order.")
        positions = self.placement.positions(rows)
        shards = np.arange(len(self.addresses) + 1)
        in_cuts = np.searchsorted(owners[:n_in], shards)
        out_cuts = n_in + np.searchsorted(owners[n_in:], shards)
        names = []
        for shard in range(len(self.addresses)):
            header: dict[str, Any] = {"half": self.half}
            arrays = {}
            for which, cuts in (("in", in_cuts), ("out", out_cuts)):
                # refuses positions out of order within a shard
                kind, payload = encode_rows(positions[cuts[shard]:cuts[shard + 1]],
                                            self.placement.rows(shard))
                header[f"kind_{which}"], arrays[f"at_{which}"] = kind, payload
            names.append((header, arrays))
        return Layout(n_in, in_cuts, out_cuts, names)

    def _requests(self, layout: Layout, extra: Any) -> list[Message]:
        requests: list[Message] = []
        for shard, (header, arrays) in enumerate(layout.names):
            for which in ("in", "out"):
                self.row_bytes[header[f"kind_{which}"]] += arrays[f"at_{which}"].nbytes
            more_header, more_arrays = extra(shard)
            requests.append(pack_parts({**header, **more_header}, **arrays, **more_arrays))
        return requests

    def pull_rows(self, layout: Layout, syn0: np.ndarray, syn1: np.ndarray) -> Pulled:
        """Fill the chunk's syn0 rows (`layout.n_in` of them) and syn1 rows (all) from the
        shards; returns the global word count and the blocks as pulled."""
        requests = self._requests(layout, lambda _: ({}, {}))
        pulled = Pulled()
        for shard, reply in enumerate(self._call("RowPull", requests)):
            header, arrays = unpack(reply)
            for (name, lo, hi), matrix in zip(layout.blocks(shard), (syn0, syn1, syn1)):
                rows = unpack_deltas(arrays[name], self.half, hi - lo, self.dim)
                matrix[lo:hi] = rows
                pulled.blocks.append((matrix, lo, rows))
            if shard == 0:
                pulled.global_words = int(header["global_words"])
        return pulled

    def push_rows_async(self, layout: Layout, delta0: np.ndarray, delta1: np.ndarray,
                        words: int) -> PushHandle:
        """Send the deltas of the chunk's syn0 rows (`delta0`, `layout.n_in` rows) and syn1
        rows (`delta1`), with the corpus words they cover (counted by shard 0); returns once
        they are written (see wait_push)."""
        def extra(shard: int) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
            blocks = zip(layout.blocks(shard), (delta0, delta1, delta1))
            return ({"words": words if shard == 0 else 0},
                    {name: pack_deltas(matrix[lo:hi], self.half)
                     for (name, lo, hi), matrix in blocks})

        requests = self._requests(layout, extra)
        return requests, self._start("RowPush", requests)

    def wait_push(self, handle: PushHandle) -> int:
        """Wait for a push; the global word count after it."""
        replies = self._finish("RowPush", *handle)
        return int(unpack(replies[0])[0]["global_words"])

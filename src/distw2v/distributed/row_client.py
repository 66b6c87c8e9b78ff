"""Client of row shards (the rows strategy): pulls the rows a chunk touches and pushes their
deltas back, each message to the shard that holds the rows (`rows.Placement`), the rows named
by position as indices or a bitmap, whichever is smaller (`rowcodec`).

A chunk's rows come ordered by `Placement.sort_key` (kernels.rows.plan_chunk): its words
first, then its other output rows, each part shard by shard. So what a shard sends or takes
is three contiguous blocks of the chunk's matrices (`Layout`): replies are copied in, and
deltas go out as views of the matrices themselves, with no gather or scatter.

A task makes one call a chunk (`step`): it pushes the deltas of the chunk it trained last and
pulls the rows of the next, and each shard applies the push before it reads the rows.

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
from .client import PSClient
from .rowcodec import encode_rows, pack_deltas, unpack_deltas
from .rows import Placement, RowSpec
from .wire import Message, pack, pack_parts, unpack

Block = tuple[str, int, int]  # a message's array name, and the rows [lo, hi) it carries


@dataclass(frozen=True)
class Layout:
    """Which shard holds a chunk's rows. Rows [0, n_in) are the chunk's words, whose syn0
    and syn1 rows move; the others move only their syn1 rows. Shard s holds rows
    [in_cuts[s], in_cuts[s + 1]) and [out_cuts[s], out_cuts[s + 1]); `names[s]` names them
    by position: {"in": (kind, payload), "out": (kind, payload)} (rowcodec)."""

    n_in: int
    in_cuts: np.ndarray
    out_cuts: np.ndarray
    names: list[dict[str, tuple[str, np.ndarray]]]

    def blocks(self, shard: int) -> tuple[Block, Block, Block]:
        """Shard `shard`'s blocks, by the names its messages give them: "in0" (syn0 rows),
        "in1" and "out1" (syn1 rows)."""
        i_lo, i_hi = int(self.in_cuts[shard]), int(self.in_cuts[shard + 1])
        o_lo, o_hi = int(self.out_cuts[shard]), int(self.out_cuts[shard + 1])
        return ("in0", i_lo, i_hi), ("in1", i_lo, i_hi), ("out1", o_lo, o_hi)


@dataclass(frozen=True)
class Trained:
    """A trained chunk, to push: its layout, its syn0 and syn1 rows turned into their
    deltas (`Pulled.subtract`), and the corpus words it covered."""

    layout: Layout
    delta0: np.ndarray
    delta1: np.ndarray
    words: int
    loss: float = 0.0  # the chunk's pairs' summed SGNS loss, and how many they were
    pairs: int = 0


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
        """The input (or output) rows of ids [lo, hi), gathered from every shard (for the
        export)."""
        block = np.empty((hi - lo, self.dim), dtype=np.float32)
        for reply in self._same("RowPullRange", {"lo": lo, "hi": hi, "which": which}):
            _, arrays = unpack(reply)
            block[arrays["ids"] - lo] = arrays["rows"]
        return block

    # --- training -------------------------------------------------------------------------

    def layout(self, rows: np.ndarray, n_in: int) -> Layout:
        """Where the chunk's rows (unique global ids: the chunk's words, `n_in` of them, then
        its other output rows, each part ordered by `Placement.sort_key`) are held."""
        owners, positions = self.placement.locate(rows)
        if (np.diff(owners[:n_in]) < 0).any() or (np.diff(owners[n_in:]) < 0).any():
            raise Distw2vError("a chunk's rows must come in Placement.sort_key order.")
        shards = np.arange(len(self.addresses) + 1)
        in_cuts = np.searchsorted(owners[:n_in], shards)
        out_cuts = n_in + np.searchsorted(owners[n_in:], shards)
        # encode_rows refuses positions out of order within a shard
        names = [{which: encode_rows(positions[cuts[shard]:cuts[shard + 1]],
                                     self.placement.rows(shard))
                  for which, cuts in (("in", in_cuts), ("out", out_cuts))}
                 for shard in range(len(self.addresses))]
        return Layout(n_in, in_cuts, out_cuts, names)

    def _name(self, layout: Layout, shard: int, part: str, header: dict[str, Any],
              arrays: dict[str, np.ndarray]) -> None:
        """Name shard `shard`'s rows of `layout` in a request, as its `part` ("push" or
        "pull")."""
        for which, (kind, payload) in layout.names[shard].items():
            header[f"kind_{part}_{which}"] = kind
            arrays[f"at_{part}_{which}"] = payload
            self.row_bytes[kind] += payload.nbytes

    def step(self, trained: Trained | None, layout: Layout | None = None,
             syn0: np.ndarray | None = None, syn1: np.ndarray | None = None) -> Pulled:
        """One call to every shard: push `trained`'s deltas (with its corpus words, counted
        by shard 0), then pull the rows of `layout` into `syn0` (its `n_in` chunk words) and
        `syn1` (all its rows). Returns the global word count after the push and the blocks
        as pulled (none without a layout)."""
        requests: list[Message] = []
        for shard in range(len(self.addresses)):
            header: dict[str, Any] = {"half": self.half}
            arrays: dict[str, np.ndarray] = {}
            if trained is not None:
                self._name(trained.layout, shard, "push", header, arrays)
                header["words"] = 0
                if shard == 0:  # it keeps the run's counts: words (the learning rate), loss
                    header.update(words=trained.words, loss=trained.loss,
                                  loss_pairs=trained.pairs)
                deltas = (trained.delta0, trained.delta1, trained.delta1)
                for (name, lo, hi), matrix in zip(trained.layout.blocks(shard), deltas):
                    arrays[name] = pack_deltas(matrix[lo:hi], self.half)
            if layout is not None:
                self._name(layout, shard, "pull", header, arrays)
            requests.append(pack_parts(header, **arrays))
        pulled = Pulled()
        for shard, reply in enumerate(self._call("RowStep", requests)):
            header, arrays = unpack(reply)
            if layout is not None:
                assert syn0 is not None and syn1 is not None
                for (name, lo, hi), matrix in zip(layout.blocks(shard), (syn0, syn1, syn1)):
                    rows = unpack_deltas(arrays[name], self.half, hi - lo, self.dim)
                    matrix[lo:hi] = rows
                    pulled.blocks.append((matrix, lo, rows))
            if shard == 0:
                pulled.global_words = int(header["global_words"])
        return pulled

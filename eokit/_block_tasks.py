"""One spatial block of a lazy (..., y, x) array as one task: the block's chunk tasks culled from the array's
graph and run inside that task by dask's synchronous scheduler.

Read through the array's own graph, a block of T dates is 2T + 1 tasks or more (a read per date, a stack, a
merge). On a 2-core LocalCluster each task costs about 3 ms of scheduler and worker time besides its work
(measured here: 2,000 empty tasks take 6.5 s), so sampling a 2048 x 2048 x 24-date cube spent more time on
scheduling than on reading and scaled 1.5x on 2 workers. The reads and their order within a chunk are the same;
only the scheduling is per block. Used by :mod:`eokit.sampling`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


class Block:
    """One spatial block's part of a lazy array, opaque to dask (so the graph that reads it travels inside the
    task that uses it); :meth:`read` returns it whole, :meth:`points` at some of its pixels."""

    __slots__ = ("dsk", "keys", "lead")

    def __init__(self, dsk: dict[Any, Any], keys: list[Any], lead: tuple[int, ...]) -> None:
        self.dsk, self.keys, self.lead = dsk, keys, lead

    def read(self) -> np.ndarray:
        """Return the block's values (..., rows, cols)."""
        from dask.local import get_sync

        return _join(list(get_sync(self.dsk, self.keys)), self.lead)

    def points(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Return the values (..., n) at the block's pixels (rows[k], cols[k]), reading one chunk at a time."""
        from dask.local import get_sync

        return _join([np.asarray(get_sync(self.dsk, k))[..., rows, cols] for k in self.keys], self.lead)


def as_array(block: Block | np.ndarray) -> np.ndarray:
    """Return the values of a :class:`Block` (read now) or of an array already in memory."""
    return block.read() if isinstance(block, Block) else np.asarray(block)


def block_points(block: Block | np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Return the values (..., n) of a block at its pixels (rows[k], cols[k])."""
    return block.points(rows, cols) if isinstance(block, Block) else np.asarray(block)[..., rows, cols]


class BlockTasks:
    """The blocks of a (..., y, x) array on a grid of row and column chunk sizes: a :class:`Block` per block
    of a dask array (its graph materialised once, culled per block), an in-memory copy of a numpy array's."""

    def __init__(self, arr: Any, ychunks: Sequence[int], xchunks: Sequence[int]) -> None:
        self.y0 = np.concatenate([[0], np.cumsum(ychunks)]).astype(int)
        self.x0 = np.concatenate([[0], np.cumsum(xchunks)]).astype(int)
        self.shape = tuple(arr.shape)
        self.dtype = np.dtype(arr.dtype)
        if not hasattr(arr, "__dask_graph__"):
            self.arr: Any = np.asarray(arr)
            return
        nd = arr.ndim
        self.arr = arr = arr.rechunk({nd - 2: tuple(ychunks), nd - 1: tuple(xchunks)})
        self.lead = tuple(arr.numblocks[:-2])
        self.dsk = dict(arr.__dask_graph__())

    def block(self, i: int, j: int) -> Block | np.ndarray:
        """Return block (i, j): a :class:`Block` of a dask array, a copy of a numpy array's window."""
        if isinstance(self.arr, np.ndarray):
            return self.arr[..., self.y0[i] : self.y0[i + 1], self.x0[j] : self.x0[j + 1]].copy()
        from dask.optimization import cull

        keys = [(self.arr.name, *lead, i, j) for lead in np.ndindex(*self.lead)]
        culled, _ = cull(self.dsk, keys)
        return Block(culled, keys, self.lead)

    def locate(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the (block row, block column) of each pixel (rows[k], cols[k])."""
        return np.searchsorted(self.y0, rows, side="right") - 1, np.searchsorted(self.x0, cols, side="right") - 1


def _join(parts: list[np.ndarray], lead: tuple[int, ...]) -> np.ndarray:
    """Return the chunks `parts` (C order over the `lead` grid of leading chunk counts) joined into one array."""
    arrs = parts
    for ax in reversed(range(len(lead))):
        n = lead[ax]
        arrs = [np.concatenate(arrs[k : k + n], axis=ax) for k in range(0, len(arrs), n)]
    return arrs[0]

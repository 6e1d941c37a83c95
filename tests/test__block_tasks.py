"""eokit._block_tasks: one spatial block of a lazy array read inside one task, the same values as the array."""

from __future__ import annotations

import pickle

import dask.array as da
import numpy as np
import pytest

from eokit._block_tasks import Block, BlockTasks, as_array, block_points


def _cube() -> np.ndarray:
    return np.arange(5 * 3 * 20 * 30, dtype=np.int32).reshape(5, 3, 20, 30)


@pytest.mark.parametrize("chunks", [(1, 3, 7, 11), (2, 1, 20, 30), (5, 3, 4, 30)])
def test_every_block_reads_as_the_array_whatever_its_chunks(chunks: tuple[int, ...]) -> None:
    ref = _cube()
    arr = da.from_array(ref, chunks=chunks) + 1  # a graph with more than one layer
    ych, xch = (8, 8, 4), (10, 15, 5)
    bt = BlockTasks(arr, ych, xch)
    for i in range(3):
        for j in range(3):
            blk = bt.block(i, j)
            assert isinstance(blk, Block)
            want = ref[..., bt.y0[i] : bt.y0[i + 1], bt.x0[j] : bt.x0[j + 1]] + 1
            got = as_array(pickle.loads(pickle.dumps(blk)))  # as a worker process receives it
            assert got.dtype == want.dtype and np.array_equal(got, want)
            r, c = np.array([0, want.shape[-2] - 1, 1]), np.array([2, 0, want.shape[-1] - 1])
            assert np.array_equal(block_points(blk, r, c), want[..., r, c])


def test_a_block_carries_only_its_own_chunks() -> None:
    arr = da.from_array(_cube(), chunks=(1, 3, 10, 10))
    bt = BlockTasks(arr, (10, 10), (10, 10, 10))
    blk = bt.block(1, 2)
    assert isinstance(blk, Block) and len(blk.keys) == 5  # one chunk per date
    assert len(blk.dsk) < len(bt.dsk) / 3


def test_numpy_blocks_are_windows_and_locate_finds_the_block_of_each_pixel() -> None:
    ref = _cube()
    bt = BlockTasks(ref, (8, 12), (30,))
    blk = bt.block(1, 0)
    assert isinstance(blk, np.ndarray) and np.array_equal(blk, ref[..., 8:20, :])
    bi, bj = bt.locate(np.array([0, 7, 8, 19]), np.array([0, 29, 3, 0]))
    assert bi.tolist() == [0, 0, 1, 1] and bj.tolist() == [0, 0, 0, 0]

"""Patch selection and gathering of `eokit.patches`: strided window min/max, summed-area tables, block windows.

Pure numpy (dask for lazy scenes): purity is tested for every grid position of a block at once and the
patches are gathered by fancy indexing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from numpy.lib.stride_tricks import sliding_window_view


def _strided_window(a: np.ndarray, size: int, stride: int, func: Any) -> np.ndarray:
    """Separable min/max (`func` np.minimum/np.maximum) over size x size windows with origins on a stride grid.

    Accumulates `size` shifted, strided slices per axis: every step is one vectorised pass over whole
    rows (contiguous), so the cost is about size x (pixels / stride) per axis.
    """
    nr = (a.shape[0] - size) // stride + 1
    nc = (a.shape[1] - size) // stride + 1
    span_r, span_c = (nr - 1) * stride + 1, (nc - 1) * stride + 1
    rows = a[0:span_r:stride].copy()
    for k in range(1, size):
        func(rows, a[k : k + span_r : stride], out=rows)
    out = rows[:, 0:span_c:stride].copy()
    for k in range(1, size):
        func(out, rows[:, k : k + span_c : stride], out=out)
    return out


def _window_sums(a: np.ndarray, size: int, stride: int) -> np.ndarray:
    """Sums of `a` over size x size windows on a stride grid, from one summed-area table."""
    sat = np.zeros((a.shape[0] + 1, a.shape[1] + 1), dtype=np.int64)
    np.cumsum(np.cumsum(a, axis=0, dtype=np.int64), axis=1, out=sat[1:, 1:])
    r = np.arange(0, a.shape[0] - size + 1, stride)[:, None]
    c = np.arange(0, a.shape[1] - size + 1, stride)[None, :]
    return sat[r + size, c + size] - sat[r, c + size] - sat[r + size, c] + sat[r, c]


def _block_positions(
    ids: np.ndarray, labels_of: np.ndarray, size: int, stride: int, min_fraction: float, bad: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (rows, cols, label, polygon index) of the kept patch origins inside one block's id raster.

    `ids` holds indices into `labels_of` (-1 outside polygons and on invalid pixels); `bad` marks invalid pixels,
    which no kept patch may contain, whatever `min_fraction`.
    """
    if min_fraction >= 1.0:
        lo = _strided_window(ids, size, stride, np.minimum)
        hi = _strided_window(ids, size, stride, np.maximum)
        keep = (lo == hi) & (lo >= 0)
        rr, cc = np.nonzero(keep)
        pid = lo[rr, cc]
        return rr * stride, cc * stride, labels_of[pid], pid
    cls = np.where(ids >= 0, labels_of[np.maximum(ids, 0)], -1)
    best: np.ndarray | None = None
    best_label: np.ndarray | None = None
    for k in np.unique(cls[cls >= 0]):
        counts = _window_sums(cls == k, size, stride)
        if best is None or best_label is None:  # the first class (both are set together)
            best, best_label = counts, np.full(counts.shape, k)
        else:
            better = counts > best
            best = np.where(better, counts, best)
            best_label = np.where(better, k, best_label)
    if best is None or best_label is None:  # no class present
        return (np.empty(0, int),) * 4
    keep = (best >= np.ceil(min_fraction * size * size - 1e-9)) & (_window_sums(bad, size, stride) == 0)
    rr, cc = np.nonzero(keep)
    r0, c0 = rr * stride, cc * stride
    centre = ids[r0 + size // 2, c0 + size // 2]
    label = best_label[rr, cc]
    pid = np.where((centre >= 0) & (labels_of[np.maximum(centre, 0)] == label), centre, -1)
    return r0, c0, label, pid


def _id_dtype(count: int) -> type[np.signedinteger]:
    """The narrowest signed integer dtype holding -1 .. count - 1 (narrow ids: faster rasterising and min/max)."""
    return np.int8 if count < 2**7 else np.int16 if count < 2**15 else np.int32


def _block_ids(
    scene: xr.Dataset, sub: Any, channels: list[str], masks: list[str], window: tuple[int, int, int, int], touched: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Return (local polygon index raster, invalid-pixel mask) of one block window (r0, r1, c0, c1) of the scene.

    `sub` holds the block's polygons in file order (later ones burn over earlier ones); pixel k >= 0 is
    inside `sub`'s k-th polygon (so the raster fits a narrow dtype); outside pixels and invalid pixels
    (non-finite channel values, `valid == 0`) get -1.
    """
    from affine import Affine
    from rasterio.features import rasterize

    r0, r1, c0, c1 = window
    ids = rasterize(
        zip(sub.geometry, range(len(sub)), strict=True),
        out_shape=(r1 - r0, c1 - c0),
        fill=-1,
        transform=Affine.translation(c0, r0),
        all_touched=touched,
        dtype=_id_dtype(len(sub)),
    )
    win = _window(scene, masks, r0, r1, c0, c1)
    finite = np.isfinite(win[channels[0]])
    for c in channels[1:]:
        finite &= np.isfinite(win[c])
    if "valid" in win:
        finite &= win["valid"] != 0
    bad = ~finite
    if bad.any():
        ids[bad] = -1
    return ids, bad


def _block_starts(n_origins: int, per_block: int) -> list[tuple[int, int]]:
    return [(i, min(i + per_block, n_origins)) for i in range(0, n_origins, per_block)]


def _window(scene: xr.Dataset, names: list[str], r0: int, r1: int, c0: int, c1: int) -> dict[str, np.ndarray]:
    """The scene's variables over rows r0:r1, columns c0:c1 as numpy, computed together (one dask pass)."""
    sub = scene[names].isel(y=slice(r0, r1), x=slice(c0, c1))
    if any(sub[n].chunks is not None for n in names):
        sub = sub.compute()  # one dask pass for all variables, sharing their common inputs
    return {n: np.asarray(sub[n].values) for n in names}


#: Bytes of the reused band buffer of `_fill` (a few MiB: stays in cache) and patches copied per fancy index.
_BAND_BYTES = 4 << 20
_BATCH = 64


def _fill(out: np.ndarray, idx: np.ndarray, arrays: list[np.ndarray], rows: np.ndarray, cols: np.ndarray) -> None:
    """Write the patches at origins (rows, cols) (row-major) of the (h, w) channel `arrays` into out[idx].

    Band by band of origin rows: the channels of a band are interleaved into one reused (rows, w, C)
    buffer, whose patch rows are then contiguous runs of size x C values; each batch of patches is one
    fancy index of those runs, copied straight into `out` (no patch-set-sized temporary).
    """
    size, n_ch, w = out.shape[1], len(arrays), arrays[0].shape[1]
    dt = np.result_type(*arrays)
    band_rows = max(size, _BAND_BYTES // max(w * n_ch * dt.itemsize, 1))
    buf = np.empty((min(band_rows, arrays[0].shape[0]), w, n_ch), dtype=dt)
    span = np.arange(size)
    contiguous = len(idx) == 0 or idx[-1] - idx[0] + 1 == len(idx)
    start = 0
    while start < len(rows):
        ra = int(rows[start])
        stop = int(np.searchsorted(rows, ra + band_rows - size, side="right"))
        rb = int(rows[stop - 1]) + size
        band = buf[: rb - ra]
        for k, a in enumerate(arrays):
            band[..., k] = a[ra:rb]
        runs = sliding_window_view(band.reshape(rb - ra, w * n_ch), size * n_ch, axis=1)
        for k0 in range(start, stop, _BATCH):
            k1 = min(k0 + _BATCH, stop)
            part = runs[rows[k0:k1, None] - ra + span, cols[k0:k1, None] * n_ch].reshape(k1 - k0, size, size, n_ch)
            if contiguous:
                out[idx[k0] : idx[k1 - 1] + 1] = part
            else:
                out[idx[k0:k1]] = part
        start = stop


def _take(img: np.ndarray, rr: np.ndarray, cc: np.ndarray, size: int) -> np.ndarray:
    """Patches (n, size, size, C) float32 at row-major window-relative origins (rr, cc) of an (h, w, C) array."""
    out = np.empty((len(rr), size, size, img.shape[-1]), dtype=np.float32)
    _fill(out, np.arange(len(rr)), [img[..., k] for k in range(img.shape[-1])], rr, cc)
    return out


def _gather(scene: xr.Dataset, channels: list[str], pos: pd.DataFrame, size: int) -> Any:
    """Patch images (n, size, size, channel) float32 in `pos` order: numpy in memory, lazy dask otherwise."""
    n_ch = len(channels)
    if len(pos) == 0:
        return np.empty((0, size, size, n_ch), dtype=np.float32)
    groups = pos.groupby(["r0", "r1", "c0", "c1"], sort=False).indices
    rows, cols = pos["row0"].to_numpy(), pos["col0"].to_numpy()
    lazy = any(scene[c].chunks is not None for c in channels)
    if not lazy:  # each block window once, its patches copied straight into the one result array
        out = np.empty((len(pos), size, size, n_ch), dtype=np.float32)
        for (r0, r1, c0, c1), idx in groups.items():
            win = _window(scene, channels, r0, r1, c0, c1)
            _fill(out, idx, [win[c] for c in channels], rows[idx] - r0, cols[idx] - c0)
        return out
    import dask
    import dask.array as da

    # one lazy (y, x, channel) array; each block's patches are a delayed fancy index of its window,
    # so dask loads one window per task and never the whole scene
    stacked = da.stack([da.asarray(scene[c].data).astype(np.float32) for c in channels], axis=-1)
    parts, order = [], []
    for (r0, r1, c0, c1), idx in groups.items():
        task = dask.delayed(_take)(stacked[r0:r1, c0:c1], rows[idx] - r0, cols[idx] - c0, size)
        parts.append(da.from_delayed(task, shape=(len(idx), size, size, n_ch), dtype=np.float32))
        order.append(idx)
    result = da.concatenate(parts, axis=0)
    where = np.empty(len(pos), dtype=np.int64)
    where[np.concatenate(order)] = np.arange(len(pos))
    return result if (where == np.arange(len(pos))).all() else result[where]

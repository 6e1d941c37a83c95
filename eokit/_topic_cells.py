"""The cell level of `eokit.topics`: 4x4-pixel cells, their features, words and word counts, chunk by chunk.

Every function here works on one dask block at a time (`map_blocks`), and every per-cell value depends only on
the cell's own 16 pixels (reduced in the same order whatever the block's shape), so words and counts are the same
whatever the chunking. Blocks always start at a multiple of the window, so no window straddles two blocks.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

#: Side of one cell (the DLR LDA level's 4x4-pixel patch), in pixels.
CELL = 4
#: The per-cell features, in the order of the feature axis.
FEATURES = ("HH_mean", "HV_mean", "HH_std", "HV_std", "HH_texture", "HV_texture")
#: Word of a cell with any invalid pixel (no data, land, outside the valid mask).
NO_WORD = -1
#: Topic of a cell with no word, or of a window with no valid cell (also the COG's nodata).
NO_TOPIC = 255
#: Cells handled at once by the nearest-centroid search (bounds its temporaries to a few MB).
_BATCH = 8192


def _name(scene: xr.Dataset) -> str:
    return str(scene.attrs.get("scene", "?"))


def check_scene(scene: Any) -> tuple[int, int]:
    """Return the scene's size in whole cells (rows, cols); raise ValueError without HH/HV or below one cell."""
    if not isinstance(scene, xr.Dataset):
        raise ValueError(f"topics: expected a SAR scene (xarray Dataset with HH, HV), got {type(scene).__name__}")
    missing = [v for v in ("HH", "HV") if v not in scene.data_vars]
    if missing:
        raise ValueError(
            f"scene {_name(scene)} has no {' and no '.join(repr(m) for m in missing)} variable; found "
            f"{list(scene.data_vars)}; expected HH and HV in dB (eokit.sar.open, then eokit.sar.preprocess)"
        )
    for v in ("HH", "HV"):
        if set(scene[v].dims) != {"y", "x"}:
            raise ValueError(f"scene {_name(scene)}: {v} has dims {scene[v].dims}, expected (y, x)")
    ny, nx = scene.sizes["y"], scene.sizes["x"]
    if ny < CELL or nx < CELL:
        raise ValueError(
            f"scene {_name(scene)} is {ny}x{nx} pixels, smaller than one {CELL}x{CELL} cell; expected at least "
            f"{CELL} rows and {CELL} columns"
        )
    return ny // CELL, nx // CELL


def block_chunks(chunks: Any, window_cells: int) -> int:
    """Return the block side in cells: `chunks` pixels rounded up to a whole number of windows."""
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks < CELL:
        raise ValueError(f"topics: chunks must be a whole number of pixels >= {CELL}, got {chunks!r}")
    return max(1, math.ceil(int(chunks) / (CELL * window_cells))) * window_cells


def _stack(scene: xr.Dataset, n_cy: int, n_cx: int, block: int) -> Any:
    """Return a dask array (3, y, x) float32 of HH, HV and the valid mask, trimmed to whole cells."""
    import dask.array as da

    ny, nx = n_cy * CELL, n_cx * CELL
    valid = xr.ones_like(scene["HH"], dtype=np.float32)
    if "valid" in scene:
        valid = valid * (scene["valid"] == 1)
    if "land" in scene:
        valid = valid * (scene["land"] == 0)
    layers = [scene["HH"], scene["HV"], valid]
    arrs = [
        (v.data if hasattr(v.data, "dask") else da.from_array(np.asarray(v.values)))[:ny, :nx].astype(np.float32)
        for v in (layer.transpose("y", "x") for layer in layers)
    ]
    return da.stack(arrs).rechunk((3, block * CELL, block * CELL))


def _cells(a: np.ndarray) -> np.ndarray:
    """Return a (cy, cx, 4, 4) contiguous float64 array of the cells of a (y, x) block."""
    cy, cx = a.shape[0] // CELL, a.shape[1] // CELL
    return np.ascontiguousarray(a.reshape(cy, CELL, cx, CELL).transpose(0, 2, 1, 3), dtype=np.float64)


def _block_features(block: np.ndarray) -> np.ndarray:
    """Return (cy, cx, features) of one (3, y, x) block: mean, std and texture of HH and HV; NaN if invalid."""
    hh, hv, ok = (_cells(block[i]) for i in range(3))
    cy, cx = hh.shape[:2]
    valid = (ok.reshape(cy, cx, -1) == 1).all(-1)
    out = np.empty((cy, cx, len(FEATURES)), np.float64)
    for i, c in enumerate((hh, hv)):
        flat = c.reshape(cy, cx, CELL * CELL)
        valid &= np.isfinite(flat).all(-1)
        out[..., i] = flat.mean(-1)
        out[..., 2 + i] = flat.std(-1)
        # texture: mean absolute difference between neighbouring pixels of the cell (along rows and columns)
        dx = np.abs(c[..., :, 1:] - c[..., :, :-1]).reshape(cy, cx, -1)
        dy = np.abs(c[..., 1:, :] - c[..., :-1, :]).reshape(cy, cx, -1)
        out[..., 4 + i] = (np.ascontiguousarray(dx).mean(-1) + np.ascontiguousarray(dy).mean(-1)) / 2
    out[~valid] = np.nan
    return out


def features(scene: xr.Dataset, block: int) -> Any:
    """Return a lazy dask array (cells y, cells x, features) float64, NaN where a cell has an invalid pixel."""
    n_cy, n_cx = check_scene(scene)
    stack = _stack(scene, n_cy, n_cx, block)
    return stack.map_blocks(
        _block_features,
        drop_axis=0,
        new_axis=2,
        chunks=(tuple(c // CELL for c in stack.chunks[1]), tuple(c // CELL for c in stack.chunks[2]), (len(FEATURES),)),
        dtype=np.float64,
        meta=np.empty((0, 0, 0), np.float64),
    )


def nearest(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Return the index of each row's nearest centroid (squared distance, ties to the lower index), int16."""
    out = np.empty(len(x), np.int16)
    for s in range(0, len(x), _BATCH):
        d = ((x[s : s + _BATCH, None, :] - centroids[None]) ** 2).sum(-1)
        out[s : s + _BATCH] = d.argmin(-1)
    return out


def _block_words(feat: np.ndarray, mean: np.ndarray, std: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Return the words (cy, cx) int16 of one feature block; NO_WORD where the cell is invalid."""
    flat = feat.reshape(-1, feat.shape[-1])
    ok = np.isfinite(flat).all(-1)
    words = np.full(len(flat), NO_WORD, np.int16)
    words[ok] = nearest((flat[ok] - mean) / std, centroids)
    return words.reshape(feat.shape[:2])


def words(scene: xr.Dataset, block: int, mean: np.ndarray, std: np.ndarray, centroids: np.ndarray) -> Any:
    """Return a lazy dask array (cells y, cells x) int16 of each cell's word."""
    feat = features(scene, block)
    return feat.map_blocks(
        _block_words, mean, std, centroids, drop_axis=2, dtype=np.int16, meta=np.empty((0, 0), np.int16)
    )


def _block_counts(w: np.ndarray, window: int, vocabulary: int) -> np.ndarray:
    """Return (windows y, windows x, vocabulary) int32 word counts of one words block."""
    nwy, nwx = -(-w.shape[0] // window), -(-w.shape[1] // window)
    wy = (np.arange(w.shape[0]) // window)[:, None]
    wx = (np.arange(w.shape[1]) // window)[None, :]
    ok = w >= 0
    key = ((wy * nwx + wx) * vocabulary + w)[ok]
    return np.bincount(key, minlength=nwy * nwx * vocabulary).astype(np.int32).reshape(nwy, nwx, vocabulary)


def counts(w: Any, window: int, vocabulary: int) -> Any:
    """Return a lazy dask array (windows y, windows x, vocabulary) int32 of word counts per window."""
    chunks = tuple(tuple(-(-c // window) for c in cs) for cs in w.chunks) + ((vocabulary,),)
    return w.map_blocks(
        _block_counts, window, vocabulary, new_axis=2, chunks=chunks, dtype=np.int32, meta=np.empty((0, 0, 0), np.int32)
    )


def _block_topics(w: np.ndarray, theta: np.ndarray, phi: np.ndarray, window: int, block_info: Any = None) -> np.ndarray:
    """Return the topic (cy, cx) uint8 of each cell of one words block: argmax_k theta[window, k] * phi[k, word]."""
    (r0, _), (c0, _) = block_info[0]["array-location"]
    wy = (r0 + np.arange(w.shape[0])) // window
    wx = (c0 + np.arange(w.shape[1])) // window
    th = theta[wy[:, None], wx[None, :]]  # (cy, cx, K)
    ok = (w >= 0) & np.isfinite(th).all(-1)
    score = th[ok] * phi[:, w[ok]].T
    out = np.full(w.shape, NO_TOPIC, np.uint8)
    out[ok] = score.argmax(-1)
    return out


def topics(w: Any, theta: np.ndarray, phi: np.ndarray, window: int) -> Any:
    """Return a lazy dask array (cells y, cells x) uint8 of each cell's most likely topic."""
    return w.map_blocks(_block_topics, theta, phi, window, dtype=np.uint8, meta=np.empty((0, 0), np.uint8))


def sample_cells(
    shapes: list[tuple[int, int]], n: int, seed_seq: np.random.SeedSequence
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return (rows, cols) of `n` cells drawn without replacement over all scenes' cells (global indices)."""
    sizes = np.array([a * b for a, b in shapes], np.int64)
    total = int(sizes.sum())
    idx = np.sort(np.random.default_rng(seed_seq).choice(total, size=min(n, total), replace=False))
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    out = []
    for k, (_, ncx) in enumerate(shapes):
        local = idx[(idx >= offsets[k]) & (idx < offsets[k + 1])] - offsets[k]
        out.append((local // ncx, local % ncx))
    return out


def cell_grid(scene: xr.Dataset, n_cy: int, n_cx: int) -> dict[str, Any]:
    """Return the coordinates (cell centres) and, when the scene has one, the CRS and transform of its cell grid."""
    from affine import Affine

    out: dict[str, Any] = {}
    for dim, n in (("y", n_cy), ("x", n_cx)):
        c = np.asarray(scene[dim].values, dtype=float)[: n * CELL] if dim in scene.coords else np.arange(n * CELL)
        out[dim] = c.reshape(n, CELL).mean(-1)
    out["crs"], out["transform"] = None, None
    crs = scene.rio.crs
    t = scene.rio.transform() if crs is not None else None
    if t is not None and t != Affine.identity():  # a scene located by ground control points only has no grid
        out["crs"], out["transform"] = crs, t @ Affine.scale(CELL, CELL)
    return out


def grid_array(data: Any, scene: xr.Dataset, n_cy: int, n_cx: int, name: str, attrs: dict[str, Any]) -> xr.DataArray:
    """Return `data` (cells y, cells x) as a DataArray on the scene's grid coarsened by 4, with its CRS/transform."""
    g = cell_grid(scene, n_cy, n_cx)
    out = xr.DataArray(data, dims=("y", "x"), coords={"y": g["y"], "x": g["x"]}, name=name, attrs=attrs)
    if g["crs"] is not None:
        out = out.rio.write_crs(g["crs"]).rio.write_transform(g["transform"])
    return out

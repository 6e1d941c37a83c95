"""The DLR LDA set's topic labels as an `eokit.topics` topic map, and the agreement of two topic maps."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from eokit._topic_cells import CELL, NO_TOPIC, grid_array

#: Pixels per block side when the label raster is reduced to cells (a multiple of 4; bounds memory).
_BLOCK = 1024


def _block_mode(block: np.ndarray) -> np.ndarray:
    """Return the most frequent label (ties: the first in reading order) of each 4x4 cell of a (y, x) block."""
    cy, cx = block.shape[0] // CELL, block.shape[1] // CELL
    cells = block.reshape(cy, CELL, cx, CELL).transpose(0, 2, 1, 3).reshape(cy * cx, CELL * CELL)
    votes = (cells[:, :, None] == cells[:, None, :]).sum(-1)
    mode = cells[np.arange(len(cells)), votes.argmax(-1)]
    return mode.reshape(cy, cx)


def _from_raster(ds: xr.Dataset, where: str) -> Any:
    import dask.array as da

    lab = ds["label"].transpose("y", "x")
    n_cy, n_cx = lab.shape[0] // CELL, lab.shape[1] // CELL
    if n_cy == 0 or n_cx == 0:
        raise ValueError(f"{where}: the label raster is {lab.shape[0]}x{lab.shape[1]}, smaller than one 4x4 cell")
    arr = lab.data if hasattr(lab.data, "dask") else da.from_array(np.asarray(lab.values))
    arr = arr[: n_cy * CELL, : n_cx * CELL].rechunk(_BLOCK)
    fill = lab.attrs.get("_FillValue", lab.encoding.get("_FillValue"))
    mode = arr.map_blocks(
        _block_mode,
        chunks=tuple(tuple(c // CELL for c in cs) for cs in arr.chunks),
        dtype=arr.dtype,
        meta=np.empty((0, 0), arr.dtype),
    ).compute()
    mode = np.asarray(mode, dtype=np.float64)
    bad = ~np.isfinite(mode) | (mode < 0) | (mode >= NO_TOPIC) | (mode % 1 != 0)
    if fill is not None:
        bad |= mode == float(fill)
    out = np.full(mode.shape, NO_TOPIC, np.uint8)
    out[~bad] = mode[~bad].astype(np.uint8)
    return out, n_cy, n_cx


def _from_table(ds: xr.Dataset, where: str) -> Any:
    for v in ("row0", "col0"):
        if v not in ds:
            raise ValueError(f"{where}: the patch table has no {v!r}; found {list(ds.data_vars)}")
    n_cy, n_cx = ds.sizes["y"] // CELL, ds.sizes["x"] // CELL
    r0, c0, lab = (np.asarray(ds[v].values, np.int64) for v in ("row0", "col0", "label"))
    size = np.asarray(ds["patch_size"].values, np.int64) if "patch_size" in ds else np.full(len(r0), CELL)
    off = (r0 % CELL != 0) | (c0 % CELL != 0) | (size % CELL != 0)
    if off.any():
        i = int(np.flatnonzero(off)[0])
        raise ValueError(
            f"{where}: patch {i} at row {r0[i]}, col {c0[i]} (size {size[i]}) is not on the 4x4 cell grid; expected "
            "row0, col0 and patch_size multiples of 4"
        )
    if ((lab < 0) | (lab >= NO_TOPIC)).any():
        i = int(np.flatnonzero((lab < 0) | (lab >= NO_TOPIC))[0])
        raise ValueError(f"{where}: patch {i} has topic {lab[i]}; expected topic ids 0..{NO_TOPIC - 1}")
    out = np.full((n_cy, n_cx), NO_TOPIC, np.uint8)
    for k in np.unique(size // CELL):
        sel = size // CELL == k
        for dr in range(int(k)):
            for dc in range(int(k)):
                rr, cc = r0[sel] // CELL + dr, c0[sel] // CELL + dc
                inside = (rr < n_cy) & (cc < n_cx)
                out[rr[inside], cc[inside]] = lab[sel][inside]
    return out, n_cy, n_cx


def from_dlr(ds: xr.Dataset) -> xr.DataArray:
    """Return a DLR LDA scene's topic labels (`eokit.datasets.dlr.open`) as a (y, x) uint8 topic map of 4x4 cells.

    A label raster (constant over 4x4 blocks) gives each cell its most frequent label; a patch table (row0,
    col0, label, optional patch_size; attrs label_kind "topic") gives the cells each patch covers. Cells without a
    label are 255. Same grid, CRS and transform as `eokit.topics.topic_map` of the same scene.
    """
    where = f"DLR scene {ds.attrs.get('scene', '?')}" if isinstance(ds, xr.Dataset) else "from_dlr"
    if isinstance(ds, xr.DataTree):
        raise ValueError(
            f"from_dlr: got a DataTree of {len(ds.children)} scenes; expected one scene: "
            "eokit.datasets.dlr.open(path, scene=...) or tree[name].to_dataset()"
        )
    if not isinstance(ds, xr.Dataset) or "label" not in ds:
        raise ValueError(f"{where}: expected a DLR LDA scene from eokit.datasets.dlr.open with a 'label' variable")
    kind = ds.attrs.get("label_kind")
    if kind is not None and kind != "topic":
        raise ValueError(
            f"{where}: label_kind is {kind!r}; expected the LDA set (label_kind 'topic', 4x4 patches with 11 topics), "
            "not the semantic set"
        )
    if "y" not in ds.dims or "x" not in ds.dims:
        raise ValueError(f"{where}: expected an image grid (y, x) beside the labels; found dims {dict(ds.sizes)}")
    if set(ds["label"].dims) == {"y", "x"}:
        data, n_cy, n_cx = _from_raster(ds, where)
    elif ds["label"].dims == ("patch",):
        data, n_cy, n_cx = _from_table(ds, where)
    else:
        raise ValueError(f"{where}: label has dims {ds['label'].dims}; expected (y, x) or (patch,)")
    present = np.unique(data[data != NO_TOPIC])
    n = int(present.max()) + 1 if len(present) else 0
    attrs = {
        "scene": str(ds.attrs.get("scene", "")),
        "class_names": [f"topic {k}" for k in range(n)],
        "nodata": NO_TOPIC,
        "cell": CELL,
        "source": f"DLR {ds.attrs.get('label_source', '')}".strip(),
    }
    return grid_array(data, ds, n_cy, n_cx, "topic", attrs)


def compare(a: xr.DataArray, b: xr.DataArray) -> dict[str, Any]:
    """Return the agreement of two topic maps on their common labelled cells: cells, AMI, NMI, ARI, contingency.

    Topic ids of two models are not aligned, so only partition measures are used: adjusted and normalised mutual
    information, adjusted Rand index, and the contingency table (rows: `a`'s topics, columns: `b`'s).
    """
    import pandas as pd
    from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, normalized_mutual_info_score

    for name, m in (("a", a), ("b", b)):
        if not isinstance(m, xr.DataArray) or m.ndim != 2:
            raise ValueError(f"topics.compare: {name} must be a 2-D topic map DataArray, got {type(m).__name__}")
    if a.shape != b.shape:
        raise ValueError(
            f"topics.compare: the maps are {a.shape[0]}x{a.shape[1]} and {b.shape[0]}x{b.shape[1]} cells; expected "
            "the same grid (both maps of the same scene)"
        )
    ta, tb = (m.rio.transform() if m.rio.crs is not None else None for m in (a, b))
    if ta is not None and tb is not None and not np.allclose(tuple(ta), tuple(tb)):
        raise ValueError(f"topics.compare: the maps' transforms differ ({tuple(ta)} vs {tuple(tb)}); expected one grid")
    va, vb = np.asarray(a.values).ravel(), np.asarray(b.values).ravel()
    ok = (va != NO_TOPIC) & (vb != NO_TOPIC)
    if not ok.any():
        raise ValueError("topics.compare: no cell is labelled in both maps (255 is no topic)")
    va, vb = va[ok].astype(np.int64), vb[ok].astype(np.int64)
    ua, ia = np.unique(va, return_inverse=True)
    ub, ib = np.unique(vb, return_inverse=True)
    table = np.bincount(ia * len(ub) + ib, minlength=len(ua) * len(ub)).reshape(len(ua), len(ub))
    contingency = pd.DataFrame(table, index=pd.Index(ua, name="a"), columns=pd.Index(ub, name="b"))
    return {
        "cells": int(ok.sum()),
        "ami": float(adjusted_mutual_info_score(va, vb)),
        "nmi": float(normalized_mutual_info_score(va, vb)),
        "ari": float(adjusted_rand_score(va, vb)),
        "contingency": contingency,
    }

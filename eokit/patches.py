"""SAR patches inside labelled ice polygons, vectorised and chunked, as Datasets following PATCH_SCHEMA.

Polygon ids are rasterised once per block of patch positions (with a halo of `size - 1` pixels), purity
is tested for every grid position at once (strided sliding-window min/max for "inside one polygon",
summed-area tables for class fractions), and the patches are gathered by fancy indexing. Blocks are
processed one at a time, and for dask-backed scenes the image gather stays lazy, so a 10,000 x 10,000
scene needs memory for one block, not the scene.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from eokit._patch_checks import (  # noqa: F401 - private names re-exported (kept importable from here)
    _check_args,
    _class_labels,
    _scene_polygons,
    _whole,
)
from eokit._patch_grid import (  # noqa: F401 - private names re-exported (kept importable from here)
    _block_ids,
    _block_positions,
    _block_starts,
    _gather,
    _strided_window,
    _take,
    _window,
    _window_sums,
)
from eokit._patch_plots import plot_examples, plot_scene  # noqa: F401 - re-exported: eokit.patches.plot_*
from eokit.schema import ICE_CLASSES, PATCH_SCHEMA, SAR_CHANNELS, check_schema

#: Patch counts of the UiT sea-ice set (31 Sentinel-1 scenes, stride 10), per patch size.
MISSION_COUNTS: dict[int, int] = {10: 18441, 20: 16574, 32: 14747}


def positions(
    scene: xr.Dataset,
    polygons: Any,
    label_column: str = "ice_class",
    size: int = 32,
    stride: int = 10,
    min_fraction: float = 1.0,
    chunks: int | Mapping[str, int] | None = 2048,
    channels: Sequence[str] = tuple(SAR_CHANNELS),
    all_touched: bool = False,
    progress: bool = True,
) -> pd.DataFrame:
    """Return the kept patch origins (row0, col0, label, polygon_id, block window r0, r1, c0, c1), row-major.

    The selection step of `extract` without gathering images: cheap enough to count the patches of
    many scenes. Arguments as in `extract`.
    """
    from shapely.geometry import box

    from eokit._progress import tqdm

    size, stride, channels = _check_args(scene, size, stride, min_fraction, channels, chunks)
    name = str(scene.attrs.get("scene", ""))
    ny, nx = scene.sizes["y"], scene.sizes["x"]
    gdf = _scene_polygons(scene, polygons, label_column)
    labels_of = gdf["label"].to_numpy()
    ids_of = gdf["polygon_id"].to_numpy()
    sindex = gdf.sindex

    block = chunks if isinstance(chunks, int) else (max(chunks.values()) if chunks else max(ny, nx))
    per_block = max(1, int(block) // stride)
    row_origins = np.arange(0, ny - size + 1, stride)
    col_origins = np.arange(0, nx - size + 1, stride)
    lazy = any(scene[c].chunks is not None for c in channels)
    # in-memory scenes: full-width row bands of the same pixel budget, so the patches of a block are
    # contiguous in row-major order and are written in place; lazy scenes: square blocks
    per_block_col = per_block if lazy else len(col_origins)
    if not lazy:
        per_block = max(1, per_block * per_block // max(len(col_origins), 1))
    masks = [*channels, *(["valid"] if "valid" in scene else [])]
    blocks = [
        (a, b)
        for a in _block_starts(len(row_origins), per_block)
        for b in _block_starts(len(col_origins), per_block_col)
    ]
    found: list[np.ndarray] = []
    for (i0, i1), (j0, j1) in tqdm(blocks, desc=f"patches {name} {size}px", disable=not progress or len(blocks) < 4):
        r0, r1 = int(row_origins[i0]), int(row_origins[i1 - 1]) + size
        c0, c1 = int(col_origins[j0]), int(col_origins[j1 - 1]) + size
        hits = sindex.query(box(c0, r0, c1, r1), predicate="intersects")
        if len(hits) == 0:
            continue
        hits = np.sort(hits)  # file order: later polygons burn over earlier ones, as in one rasterize call
        ids, bad = _block_ids(scene, gdf.iloc[hits], channels, masks, (r0, r1, c0, c1), all_touched)
        rr, cc, lab, pos = _block_positions(ids, labels_of[hits], size, stride, min_fraction, bad)
        if len(rr):  # pos: index into the block's polygons `hits`
            pid = np.where(pos >= 0, ids_of[hits][np.maximum(pos, 0)], -1)
            n = len(rr)
            found.append(
                np.column_stack(
                    [rr + r0, cc + c0, lab, pid, np.full(n, r0), np.full(n, r1), np.full(n, c0), np.full(n, c1)]
                ).astype(np.int64)
            )
    cols = ["row0", "col0", "label", "polygon_id", "r0", "r1", "c0", "c1"]
    table = np.concatenate(found) if found else np.empty((0, len(cols)), dtype=np.int64)
    df = pd.DataFrame(table, columns=cols)
    # canonical row-major order of patch origins, whatever the blocking
    return df.sort_values(["row0", "col0"], kind="stable").reset_index(drop=True)


def extract(
    scene: xr.Dataset | Sequence[xr.Dataset],
    polygons: Any,
    label_column: str = "ice_class",
    size: int = 32,
    stride: int = 10,
    min_fraction: float = 1.0,
    chunks: int | Mapping[str, int] | None = 2048,
    channels: Sequence[str] = tuple(SAR_CHANNELS),
    all_touched: bool = False,
    progress: bool = True,
) -> xr.Dataset:
    """Return the patch set (PATCH_SCHEMA) of `size` x `size` patches on a `stride` grid inside labelled polygons.

    A patch is kept when it lies wholly inside one polygon and on valid pixels (`min_fraction=1.0`), or
    when one class covers at least `min_fraction` of it (its `polygon_id` is then the polygon under the
    patch centre, -1 if that is of another class). `polygons` is a GeoDataFrame or a GPKG/SHP path
    (optionally with a `scene` column matching `scene.attrs["scene"]`); they are reprojected to the scene
    CRS (or mapped through its GCPs); where polygons overlap, the later one wins. `chunks` bounds the
    block of scene pixels handled at once; dask-backed scenes give a lazy `image`. A list of scenes gives
    one concatenated patch set. Patches are ordered by scene, then row-major by origin.
    """
    if not isinstance(scene, xr.Dataset):
        parts = [
            extract(s, polygons, label_column, size, stride, min_fraction, chunks, channels, all_touched, progress)
            for s in scene
        ]
        if not parts:
            raise ValueError("extract got an empty list of scenes")
        out = xr.concat(
            parts, dim="patch", data_vars="all", coords="minimal", compat="override", combine_attrs="override"
        )
        out.attrs["scenes"] = [p.attrs["scene"] for p in parts]
        out.attrs["scene"] = ",".join(out.attrs["scenes"])
        return out
    size, stride, channels = _check_args(scene, size, stride, min_fraction, channels, chunks)
    pos = positions(scene, polygons, label_column, size, stride, min_fraction, chunks, channels, all_touched, progress)
    name = str(scene.attrs.get("scene", ""))
    image = _gather(scene, list(channels), pos, int(size))
    label = pos["label"].to_numpy()
    ds = xr.Dataset(
        {
            "image": (("patch", "row", "col", "channel"), image),
            "label": ("patch", label),
            "label_name": ("patch", np.array(ICE_CLASSES, dtype=f"<U{max(map(len, ICE_CLASSES))}")[label]),
            "row0": ("patch", pos["row0"].to_numpy()),
            "col0": ("patch", pos["col0"].to_numpy()),
            "polygon_id": ("patch", pos["polygon_id"].to_numpy()),
            "scene": ("patch", np.full(len(label), name, dtype=f"<U{max(len(name), 1)}")),
        },
        coords={"channel": list(channels), "row": np.arange(size), "col": np.arange(size)},
        attrs={
            "scene": name,
            "size": int(size),
            "stride": int(stride),
            "min_fraction": float(min_fraction),
            "label_column": label_column,
            "classes": list(ICE_CLASSES),
        },
    )
    check_schema(ds, PATCH_SCHEMA, "patch set")
    return ds


def write_patches(
    ds: xr.Dataset, store: str | os.PathLike[str], overwrite: bool = False, chunk_patches: int = 1024
) -> Path:
    """Write a patch set to a Zarr store (temp sibling then rename) and return its path."""
    from eokit._io import atomic_output, check_target, write_zarr_dataset

    check_schema(ds, PATCH_SCHEMA, "patch set")
    p = check_target(store, overwrite)
    if ds.sizes["patch"]:
        out = ds.chunk({"patch": min(chunk_patches, ds.sizes["patch"])})
        encoding = {str(v): {"chunks": tuple(c[0] for c in out[v].data.chunks)} for v in out.data_vars}
    else:  # an empty patch set is still a valid store
        out, encoding = ds, {}
    with atomic_output(p, overwrite, kind="dir") as tmp:
        write_zarr_dataset(out, tmp, encoding)  # Zarr format and text dtype chosen in one place (eokit._io)
    return p


def read_patches(store: str | os.PathLike[str]) -> xr.Dataset:
    """Return a patch set written by `write_patches` (lazy, dask-backed)."""
    p = Path(store)
    if not p.exists():
        raise FileNotFoundError(f"patch store {p} does not exist; write it with eokit.patches.write_patches")
    try:
        ds = xr.open_zarr(p)
    except (OSError, ValueError, KeyError) as e:  # zarr GroupNotFoundError, missing metadata
        raise ValueError(
            f"patch store {p} cannot be opened as a Zarr store ({e}); expected a store written "
            "by eokit.patches.write_patches"
        ) from e
    check_schema(ds, PATCH_SCHEMA, f"patch store {p}")
    return ds


def patch_counts(patch_sets: xr.Dataset | Mapping[int, xr.Dataset] | Sequence[xr.Dataset]) -> pd.DataFrame:
    """Return patches per ice class (rows, plus `total` and the UiT mission's totals) and patch size (columns)."""
    by_size: Mapping[int, xr.Dataset]
    if isinstance(patch_sets, Mapping) and not isinstance(patch_sets, xr.Dataset):
        by_size = patch_sets
    else:
        listed: list[Any] = [patch_sets] if isinstance(patch_sets, xr.Dataset) else list(patch_sets)
        for k, ds in enumerate(listed):
            if not isinstance(ds, xr.Dataset) or "row" not in ds.sizes:
                raise ValueError(f"patch set {k} has no 'row' dimension; expected patch sets (PATCH_SCHEMA)")
        by_size = {int(ds.attrs.get("size", ds.sizes["row"])): ds for ds in listed}
    if not by_size:
        raise ValueError("patch_counts got no patch set; expected a patch set, a list or a {size: set} mapping")
    table = {}
    for size, ds in sorted(by_size.items()):
        labels = _class_labels(ds, f"patch set {size}x{size}")
        counts = np.bincount(labels, minlength=len(ICE_CLASSES))[: len(ICE_CLASSES)]
        table[f"{size}x{size}"] = list(counts) + [int(counts.sum()), MISSION_COUNTS.get(int(size), np.nan)]
    index = list(ICE_CLASSES) + ["total", "UiT mission total (31 scenes)"]
    df = pd.DataFrame(table, index=pd.Index(index, name="class"))
    return df.astype("Int64")

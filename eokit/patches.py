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
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from numpy.lib.stride_tricks import sliding_window_view

from eokit.schema import ICE_CLASSES, PATCH_SCHEMA, SAR_CHANNELS, check_schema

#: Patch counts of the UiT sea-ice set (31 Sentinel-1 scenes, stride 10), per patch size.
MISSION_COUNTS: dict[int, int] = {10: 18441, 20: 16574, 32: 14747}


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


def _scene_polygons(scene: xr.Dataset, polygons: Any, label_column: str) -> Any:
    """Return the scene's polygons in pixel space with integer labels; raise if any lies outside the scene."""
    import geopandas as gpd
    from shapely.geometry import box

    from eokit.sar import read_ice_polygons, to_pixel_space

    name = str(scene.attrs.get("scene", ""))
    gdf = read_ice_polygons(polygons, label_column=label_column, scene=name or None)
    if len(gdf) == 0:
        raise ValueError(f"no labelled polygons for scene {name!r}")
    pix = to_pixel_space(gdf, scene)
    frame = box(0, 0, scene.sizes["x"], scene.sizes["y"])
    outside = ~pix.intersects(frame)
    if outside.any():
        ids = gdf.loc[outside, "polygon_id"].tolist()
        raise ValueError(
            f"{int(outside.sum())} of {len(gdf)} polygons lie outside scene {name!r} "
            f"({scene.sizes['y']} x {scene.sizes['x']} pixels, CRS {scene.rio.crs}): polygon_id {ids[:20]}; "
            "check the polygons' CRS and that they belong to this scene"
        )
    ids = pd.to_numeric(gdf["polygon_id"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(ids) | (np.mod(np.nan_to_num(ids), 1) != 0)
    if bad.any():
        raise ValueError(
            f"polygons of scene {name!r}: column 'polygon_id' must hold whole numbers; rows "
            f"{np.flatnonzero(bad)[:10].tolist()} hold {gdf['polygon_id'][bad].tolist()[:10]}"
        )
    # rasterise positions 0..n-1 (any polygon_id values are allowed) and map back afterwards
    return gpd.GeoDataFrame(
        {
            "index": np.arange(len(gdf), dtype=np.int64),
            "polygon_id": ids.astype(np.int64),
            "label": gdf[label_column].astype(np.int64).values,
        },
        geometry=pix.values,
    )


def _block_positions(
    ids: np.ndarray, labels_of: np.ndarray, size: int, stride: int, min_fraction: float, bad: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (rows, cols, label, polygon index) of the kept patch origins inside one block's id raster.

    `ids` holds polygon indices (-1 outside polygons and on invalid pixels); `bad` marks invalid pixels,
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


def _block_starts(n_origins: int, per_block: int) -> list[tuple[int, int]]:
    return [(i, min(i + per_block, n_origins)) for i in range(0, n_origins, per_block)]


def _whole(name: str, value: Any) -> int:
    """`value` as an int when it is a whole number (not a bool); raise naming `name` otherwise."""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not np.isfinite(value)
        or float(value) != int(value)
    ):
        raise ValueError(f"{name} must be a whole number of pixels, got {value!r}")
    return int(value)


def _check_args(
    scene: Any, size: Any, stride: Any, min_fraction: Any, channels: Any, chunks: Any = None
) -> tuple[int, int, list[str]]:
    """Validate the arguments of `positions`/`extract` once; return (size, stride, channel names)."""
    if not isinstance(scene, xr.Dataset):
        raise ValueError(f"scene must be an xarray.Dataset from eokit.sar.open, got {type(scene).__name__}")
    name = str(scene.attrs.get("scene", ""))
    size, stride = _whole("patch size", size), _whole("stride", stride)
    if size < 1 or stride < 1:
        raise ValueError(f"patch size and stride must be positive, got size={size}, stride={stride}")
    if (
        isinstance(min_fraction, (bool, np.bool_))
        or not isinstance(min_fraction, (int, float, np.number))
        or not 0.0 < min_fraction <= 1.0
    ):
        raise ValueError(f"min_fraction must be a number in (0, 1], got {min_fraction!r}")
    dims = [d for d in ("y", "x") if d not in scene.dims]
    if dims:
        raise ValueError(
            f"scene {name!r} has no {dims} dimension(s) (dims {list(scene.dims)}); expected (y, x) "
            "images as eokit.sar.open returns"
        )
    ny, nx = scene.sizes["y"], scene.sizes["x"]
    if size > ny or size > nx:
        raise ValueError(f"patch size {size} is larger than scene {name!r} ({ny} x {nx} pixels)")
    if isinstance(channels, str):
        raise ValueError(
            f"channels must be a list of variable names such as {list(SAR_CHANNELS)}, got the string {channels!r}"
        )
    channels = [str(c) for c in channels]
    if not channels:
        raise ValueError(f"channels must name at least one variable of scene {name!r}, e.g. {list(SAR_CHANNELS)}")
    missing = [c for c in channels if c not in scene]
    if missing:
        raise ValueError(f"scene {name!r} lacks channel(s) {missing}; found {list(scene.data_vars)}")
    flat = chunks.values() if isinstance(chunks, Mapping) else ([] if chunks is None else [chunks])
    for v in flat:
        if _whole("chunks", v) < 1:
            raise ValueError(f"chunks must be a positive number of pixels, got {chunks!r}")
    return size, stride, channels


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
    from affine import Affine
    from rasterio.features import rasterize
    from shapely.geometry import box
    from tqdm.auto import tqdm

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
        sub = gdf.iloc[np.sort(hits)]  # file order: later polygons burn over earlier ones, as in one rasterize call
        ids = rasterize(
            zip(sub.geometry, sub["index"], strict=True),
            out_shape=(r1 - r0, c1 - c0),
            fill=-1,
            transform=Affine.translation(c0, r0),
            all_touched=all_touched,
            dtype=np.int32,
        )
        win = _window(scene, masks, r0, r1, c0, c1)
        bad = np.zeros(ids.shape, dtype=bool)
        for c in channels:
            bad |= ~np.isfinite(win[c])
        if "valid" in win:
            bad |= win["valid"] == 0
        ids[bad] = -1
        rr, cc, lab, pos = _block_positions(ids, labels_of, size, stride, min_fraction, bad)
        if len(rr):
            pid = np.where(pos >= 0, ids_of[np.maximum(pos, 0)], -1)
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


def _window(scene: xr.Dataset, names: list[str], r0: int, r1: int, c0: int, c1: int) -> dict[str, np.ndarray]:
    """The scene's variables over rows r0:r1, columns c0:c1 as numpy, computed together (one dask pass)."""
    sub = scene[names].isel(y=slice(r0, r1), x=slice(c0, c1))
    if any(sub[n].chunks is not None for n in names):
        sub = sub.compute()  # one dask pass for all variables, sharing their common inputs
    return {n: np.asarray(sub[n].values) for n in names}


def _take(img: np.ndarray, rr: np.ndarray, cc: np.ndarray, size: int) -> np.ndarray:
    """Patches (n, size, size, C) at window-relative origins (rr, cc) of an (h, w, C) array, one fancy index."""
    views = sliding_window_view(img, (size, size), axis=(0, 1)).transpose(0, 1, 3, 4, 2)  # (h', w', s, s, C)
    return views[rr, cc].astype(np.float32, copy=False)


def _gather(scene: xr.Dataset, channels: list[str], pos: pd.DataFrame, size: int) -> Any:
    """Patch images (n, size, size, channel) float32 in `pos` order: numpy in memory, lazy dask otherwise."""
    n_ch = len(channels)
    if len(pos) == 0:
        return np.empty((0, size, size, n_ch), dtype=np.float32)
    groups = pos.groupby(["r0", "r1", "c0", "c1"], sort=False).indices
    rows, cols = pos["row0"].to_numpy(), pos["col0"].to_numpy()
    lazy = any(scene[c].chunks is not None for c in channels)
    if not lazy:
        if len(groups) == 1:  # one block: its fancy-indexed patches are the result, no second copy
            (r0, r1, c0, c1), idx = next(iter(groups.items()))
            win = _window(scene, channels, r0, r1, c0, c1)
            return _take(np.stack([win[c] for c in channels], axis=-1), rows - r0, cols - c0, size)
        out = np.empty((len(pos), size, size, n_ch), dtype=np.float32)
        for (r0, r1, c0, c1), idx in groups.items():
            win = _window(scene, channels, r0, r1, c0, c1)
            img = np.stack([win[c] for c in channels], axis=-1)
            block = _take(img, rows[idx] - r0, cols[idx] - c0, size)
            if idx[-1] - idx[0] + 1 == len(idx):  # contiguous run (always so with one block column)
                out[idx[0] : idx[-1] + 1] = block
            else:
                out[idx] = block
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


def _class_labels(ds: Any, what: str) -> np.ndarray:
    """The `label` values of a patch set as int64; raise unless they are ice class ids 0..5."""
    if not isinstance(ds, xr.Dataset) or "label" not in ds.variables:
        raise ValueError(f"{what} has no 'label' variable; expected a patch set (eokit.schema.PATCH_SCHEMA)")
    labels = np.asarray(ds["label"].values)
    ok = np.isin(labels, np.arange(len(ICE_CLASSES)))
    if not ok.all():
        raise ValueError(
            f"{what}: 'label' must hold ice class ids 0..{len(ICE_CLASSES) - 1} ({ICE_CLASSES}); "
            f"patches {np.flatnonzero(~ok)[:10].tolist()} hold {sorted(set(labels[~ok].tolist()))[:10]}"
        )
    return labels.astype(np.int64)


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


def plot_scene(
    scene: xr.Dataset, polygons: Any = None, label_column: str = "ice_class", path: str | os.PathLike[str] | None = None
) -> Any:
    """Return a holoviews Layout of HH, HV (dB) and IA with the scene's polygons outlined by class.

    `path=` is deprecated (save with `eokit.plots.save`): it writes a PNG there and returns the matplotlib
    figure of the layout, as before.
    """
    import holoviews as hv
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    from eokit import plots

    ny = scene.sizes["y"]
    outlines: list[Any] = []
    colours = [to_hex(colormaps["tab10"](k)) for k in range(len(ICE_CLASSES))]
    if polygons is not None:
        pix = _scene_polygons(scene, polygons, label_column)
        rings: dict[int, list[np.ndarray]] = {}
        for geom, lab in zip(pix.geometry, pix["label"], strict=True):
            for part in getattr(geom, "geoms", [geom]):
                xs, ys = part.exterior.xy
                rings.setdefault(int(lab), []).append(np.column_stack([xs, ny - np.asarray(ys)]))
        outlines = [
            plots.backend_opts(
                hv.Path(r), {"color": colours[k]}, bokeh={"line_width": 1.2}, matplotlib={"linewidth": 1.2}
            )
            for k, r in sorted(rings.items())
        ]
    panels = []
    for var, lim in zip(SAR_CHANNELS, [(-30, 0), (-35, -10), None], strict=True):
        values = np.asarray(scene[var].values, dtype=float)
        img = hv.Image(values[::-1], bounds=(0, 0, values.shape[1], values.shape[0]), vdims=[var])
        common = {
            "cmap": "gray" if var != "IA" else "viridis",
            "colorbar": True,
            "xaxis": None,
            "yaxis": None,
            "clabel": "dB" if var != "IA" else "degrees",
            "title": f"{scene.attrs.get('scene', '')} {var}",
            **({"clim": lim} if lim else {}),
        }
        panel = hv.Overlay(
            [
                plots.backend_opts(
                    img, common, bokeh={"frame_width": 300, "data_aspect": 1}, matplotlib={"aspect": "equal"}
                )
            ]
            + outlines
        )
        panels.append(panel)
    if outlines:
        legend = plots.legend(list(zip(ICE_CLASSES, colours, strict=True)), sort=False)
        panels[-1] = plots.backend_opts(
            panels[-1] * legend, {"legend_position": "bottom_right"}, bokeh={}, matplotlib={}
        )
    layout = plots.backend_opts(
        hv.Layout(panels).cols(3), bokeh={}, matplotlib={"sublabel_format": "", "fig_inches": (13, 4.2)}
    )
    if path is None:
        return layout
    plots.legacy_save(layout, path, "eokit.patches.plot_scene", overwrite=True)
    return hv.render(layout, backend="matplotlib")


def plot_examples(
    ds: xr.Dataset, per_class: int = 4, channel: str = "HH", seed: int = 0, path: str | os.PathLike[str] | None = None
) -> Any:
    """Return a holoviews Layout of `per_class` random example patches (one channel) for each ice class present.

    `path=` is deprecated (save with `eokit.plots.save`): it writes a PNG there and returns the matplotlib
    figure of the layout, as before.
    """
    import holoviews as hv

    from eokit import plots

    rng = np.random.default_rng(seed)
    labels = _class_labels(ds, "plot_examples: the patch set")
    if isinstance(per_class, (bool, np.bool_)) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"plot_examples: per_class must be a whole number >= 1, got {per_class!r}")
    have = [str(c) for c in ds["channel"].values] if "channel" in ds.coords else []
    if channel not in have:
        raise ValueError(f"plot_examples: channel {channel!r} is not in the patch set; channels are {have}")
    present = [k for k in range(len(ICE_CLASSES)) if (labels == k).any()]
    if not present:
        raise ValueError("the patch set is empty: nothing to show")
    ci = have.index(channel)
    rows = []
    for k in present:
        idx = np.flatnonzero(labels == k)
        pick = np.sort(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
        images = [np.asarray(ds["image"][i, :, :, ci].values) for i in pick]
        rows.append(images + [None] * (per_class - len(images)))
    grid = plots.image_grid(
        rows,
        [ICE_CLASSES[k] for k in present],
        clim=(-30, 0),
        title=f"{ds.sizes['row']}x{ds.sizes['col']} patches, {channel} (dB)",
    )
    if path is None:
        return grid
    plots.legacy_save(grid, path, "eokit.patches.plot_examples", overwrite=True)
    return hv.render(grid, backend="matplotlib")

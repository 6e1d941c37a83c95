"""Stratified weak-label training sets: an image cube plus a crop map -> per-pixel time series samples.

``make_training_set`` works block by block over the cube's spatial chunks, with dask:

1. per block, the polygons touching it are rasterised (full and eroded label rasters, field ids; pixels
   claimed by two polygons dropped) and the flags give each pixel's cloud fraction; the block returns
   pixel counts per class (the class priors: each class's pixel share in the thematic product) and the
   number of eligible pixels (eroded, not cloudier than ``max_cloud_fraction``) per (class, field);
2. on the client, per-class sample counts follow the strategy (``proportional`` to the priors,
   ``balanced``, or ``capped``), with a minimum per class and an optional cap;
3. every eligible pixel gets a key from a counter-based hash (splitmix64) of the seed and its global index
   ``row * width + col``; a class's sample is its pixels with the smallest keys, a uniform random sample
   without replacement that needs no coordination between blocks. With at most K per field, a field's
   candidates are its K smallest keys, and the class takes the smallest keys of a second, independent
   stream among those candidates (uniform over the capped fields, as a multivariate hypergeometric draw).
   Each block returns its bounded candidate list (with the candidates' flag series), the lists are merged
   in a tree of dask tasks, so the driver receives the chosen pixels only. The set depends on the seed,
   the data and the parameters only: not on the chunking, the scheduler or the number of workers;
4. the reflectance series of the chosen pixels are gathered block by block, each block's chunks read one at a
   time. Memory is bounded by the chunk size and the number of samples, not the image size.

Each block is one dask task in every step (:mod:`eokit._block_tasks`: its chunks of every date are read inside
the task), not a task per date and chunk: on a 2-core LocalCluster a task costs about 3 ms of scheduling, more
than many of the reads it would schedule.

The result follows :data:`eokit.schema.TIMESERIES_SCHEMA` (like the TimeSen2Crop reader) plus per-sample
``x``, ``y`` (pixel centre, cube CRS) and ``field_id``; ``attrs["crs"]`` holds the CRS.
Its parts: ``_sample_alloc`` (argument checks, per-class allocation), ``_sample_keys`` (the draw),
``_sample_balance`` (oversample, class counts), ``_sample_writers`` (the writers); all re-exported here.
"""

from __future__ import annotations

import json
import os
import warnings
from contextlib import nullcontext
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from eokit import _dask
from eokit import cube as _cube
from eokit._block_tasks import BlockTasks, block_points
from eokit._sample_alloc import (  # noqa: F401 - private names re-exported
    STRATEGIES,
    _check_allocation,
    _check_args,
    _is_int,
    _largest_remainder,
    _takes,
    allocate,
)
from eokit._sample_balance import class_counts, oversample
from eokit._sample_keys import (  # noqa: F401 - private names re-exported (tests use them)
    _GAMMA,
    _candidates_block,
    _count_block,
    _keep,
    _merge_candidates,
    _merge_tree,
    _mix64,
    _order,
    _pixel_keys,
    _smallest,
)
from eokit._sample_writers import write_points, write_timesen2crop, write_zarr
from eokit.labels import _BlockPlan, read_polygons
from eokit.schema import TIMESERIES_SCHEMA, check_schema

__all__ = [
    "make_training_set",
    "sampling_report",
    "allocate",
    "write_zarr",
    "write_points",
    "write_timesen2crop",
    "STRATEGIES",
    "oversample",
    "class_counts",
]


# --- compute helpers -----------------------------------------------------------------------------


def _compute(objs: list, target: Any, progress: bool, desc: str, last_only: bool = False) -> list:
    """The computed objs on `target` from `_dask.compute_target` (last_only: only the last one's result, the
    others are its inputs, for progress)."""
    if not objs:
        return []
    with _dask.warnings_kept():
        return _compute_on(objs, target, progress, desc, last_only)


def _compute_on(objs: list, target: Any, progress: bool, desc: str, last_only: bool) -> list:
    """The computed objs on a Client (futures, a bar per finished one) or a local get function."""
    if _dask.is_client(target):
        client = target
        from distributed import as_completed

        from eokit._progress import tqdm

        with client.as_current():
            futures = client.compute(objs)
            with tqdm(total=len(futures), desc=desc, disable=not progress, unit="task") as bar:
                for _ in as_completed(futures):
                    bar.update(1)
            return [futures[-1].result()] if last_only else client.gather(futures)
    from tqdm.dask import TqdmCallback

    from eokit._progress import tqdm_class

    ctx = TqdmCallback(desc=desc, tqdm_class=tqdm_class()) if progress else nullcontext()
    with ctx:
        return list(dask.compute(*(objs[-1:] if last_only else objs), scheduler=target))


# --- the sampler ---------------------------------------------------------------------------------


def make_training_set(
    cube: xr.Dataset | str | os.PathLike,
    polygons: Any,
    label_column: str,
    samples: int,
    strategy: str = "proportional",
    seed: int = 0,
    erosion: int = 1,
    min_per_class: int = 10,
    cap_per_class: int | None = None,
    max_per_field: int | None = None,
    max_cloud_fraction: float = 0.5,
    mapping: Any = None,
    scheduler: Any = None,
    progress: bool = True,
    on_missing: str = "raise",
    name_column: str | None = None,
    tile: str | None = None,
) -> xr.Dataset:
    """Return a stratified training set (TIMESERIES_SCHEMA + x, y, field_id) sampled from cube + polygons.

    cube: a Dataset from :func:`eokit.cube.open` (with its ``flag`` layer) or a path it opens. polygons: a
    GeoDataFrame or a GPKG/SHP/GeoParquet path, any CRS; `label_column` holds the codes, `mapping` maps them
    to classes (see :func:`eokit.labels.read_polygons`). samples: the total asked; per class it follows
    `strategy` (``proportional`` to the class priors, ``balanced``, or ``capped`` at `cap_per_class` with the
    rest given to the other classes), then is raised to `min_per_class` (so the total can exceed `samples`)
    and cut to `cap_per_class`. A class with fewer eligible pixels than asked gives all it has, with a
    warning; so does a class whose polygons reach the cube but cover no pixel centre.
    erosion: pixels removed inside each field boundary; max_per_field: at most K samples per field;
    max_cloud_fraction: pixels whose share of non-clear observations (flag != 0) is above it are left out.
    seed: the sample is a uniform random one without replacement, fixed by the seed, the data and the
    parameters: the same whatever the chunking, the scheduler or the number of workers.
    scheduler: None (dask's default), a scheduler name, a ``distributed.Client`` or a scheduler address.
    tile: the tile name stored per sample (default: the cube's ``attrs["tile"]`` or "").
    """
    _check_args(samples, strategy, seed, erosion, min_per_class, cap_per_class, max_per_field, max_cloud_fraction)
    cube, polys, names, plan = _open_inputs(cube, polygons, label_column, mapping, on_missing, name_column, erosion)
    picked, report, notes, values = _draw(
        cube,
        plan,
        names,
        polygons,
        scheduler,
        progress,
        samples,
        strategy,
        seed,
        erosion,
        min_per_class,
        cap_per_class,
        max_per_field,
        max_cloud_fraction,
    )
    values = np.moveaxis(np.asarray(values), -1, 0)  # (sample, time, band)
    return _build(
        cube,
        values,
        picked,
        names,
        report,
        notes,
        tile,
        dict(
            strategy=strategy,
            samples_asked=int(samples),
            seed=int(seed),
            erosion=int(erosion),
            min_per_class=int(min_per_class),
            cap_per_class=cap_per_class,
            max_per_field=max_per_field,
            max_cloud_fraction=float(max_cloud_fraction),
            label_column=label_column,
            polygons=_where(polygons),
            mapping=mapping if isinstance(mapping, (str, type(None))) else str(mapping),
        ),
    )


def _open_inputs(
    cube: xr.Dataset | str | os.PathLike,
    polygons: Any,
    label_column: str,
    mapping: Any,
    on_missing: str,
    name_column: str | None,
    erosion: int,
) -> tuple[xr.Dataset, Any, dict[int, str], _BlockPlan]:
    """Return the checked cube, its polygons (cube CRS), the class names and the block plan."""
    if not isinstance(cube, xr.Dataset):
        cube = _cube.open(cube)
    for v, what in (("reflectance", "(time, band, y, x)"), ("flag", "(time, y, x) uint8, 0 = clear")):
        if v not in cube:
            raise ValueError(
                f"the cube has no {v!r} variable {what}; make_training_set needs it: open the cube "
                f"with eokit.cube.open (variables given: {sorted(map(str, cube.data_vars))})"
            )
    if cube.rio.crs is None:
        raise ValueError("the cube has no CRS (cube.rio.crs is None); write one with cube.rio.write_crs(...)")
    polys = read_polygons(
        polygons, label_column, mapping=mapping, crs=cube.rio.crs, on_missing=on_missing, name_column=name_column
    )
    _check_labels(polys, polygons, label_column)
    names = _class_names(polys)
    plan = _BlockPlan(polys, cube, "label", erosion)
    if not plan.bounds_overlap():
        b = tuple(np.round(polys.total_bounds, 1))
        raise ValueError(
            f"no polygon of {_where(polygons)} overlaps the cube (cube CRS {plan.crs}, cube bounds "
            f"{tuple(np.round(cube.rio.bounds(), 1))}, polygon bounds in that CRS {b})"
        )
    return cube, polys, names, plan


def _draw(
    cube: xr.Dataset,
    plan: _BlockPlan,
    names: dict[int, str],
    polygons: Any,
    scheduler: Any,
    progress: bool,
    samples: int,
    strategy: str,
    seed: int,
    erosion: int,
    min_per_class: int,
    cap_per_class: int | None,
    max_per_field: int | None,
    max_cloud_fraction: float,
) -> tuple[dict[str, np.ndarray], list, list, Any]:
    """Count, draw and read the sample on the cluster; return (picked pixels, report rows, warnings, series)."""
    # each block's flags of every date read inside the block's own task (eokit._block_tasks): one task per
    # block instead of a read per date plus the merges
    flags = BlockTasks(cube["flag"].transpose("time", "y", "x").data, plan.ychunks, plan.xchunks)
    blocks = {(i, j): (r0, c0, nr, nc) for i, j, r0, c0, nr, nc in plan.blocks()}
    windows = {k: plan.window(*b) for k, b in blocks.items()}
    windows = {k: w for k, w in windows.items() if len(w[1][0])}  # blocks some polygon touches
    flag_blocks = {k: flags.block(*k) for k in windows}  # culled once, read by both passes
    with _dask.compute_target(scheduler) as target:
        tasks = [
            dask.delayed(_count_block, pure=False)(
                flag_blocks[(i, j)], windows[(i, j)][1], windows[(i, j)][0], blocks[(i, j)][2:], max_cloud_fraction
            )
            for (i, j) in windows
        ]
        counted = dict(zip(windows, _compute(tasks, target, progress, "label pixels"), strict=True))
        touching = {int(k) for w in windows.values() for k in w[1][2]}
        need, report, notes = _takes(
            counted,
            names,
            touching,
            samples,
            strategy,
            min_per_class,
            cap_per_class,
            max_per_field,
            erosion,
            max_cloud_fraction,
            _where(polygons),
        )
        tasks = [
            dask.delayed(_candidates_block, pure=False)(
                flag_blocks[(i, j)],
                windows[(i, j)][1],
                windows[(i, j)][0],
                blocks[(i, j)][2:],
                max_cloud_fraction,
                need,
                max_per_field,
                int(seed),
                *blocks[(i, j)][:2],
                plan.nx,
            )
            for (i, j), (_, elig) in counted.items()
            if any(need.get(lab, 0) for lab, _ in elig)
        ]
        tasks.append(_merge_tree(tasks, need, max_per_field, int(seed)))
        (picked,) = _compute(tasks, target, progress, "draw samples", last_only=True)
        picked = _order(picked, need, plan.nx)
        values = _read_series(cube, plan, picked, target, progress)
    return picked, report, notes, values


def _read_series(cube: xr.Dataset, plan: _BlockPlan, picked: dict, target: Any, progress: bool) -> np.ndarray:
    """Return the reflectance (time, band, sample) of the picked pixels, read block by block (a task per block
    holding picked pixels, each reading its chunks one at a time)."""
    refl = BlockTasks(cube["reflectance"].transpose("time", "band", "y", "x").data, plan.ychunks, plan.xchunks)
    rows, cols = np.asarray(picked["row"]), np.asarray(picked["col"])
    bi, bj = refl.locate(rows, cols)
    order = np.lexsort((bj, bi))  # the picked pixels grouped by block
    cut = np.flatnonzero(np.diff(bi[order]) | np.diff(bj[order])) + 1
    groups = np.split(order, cut) if len(order) else []
    tasks = [
        dask.delayed(block_points, pure=False)(
            refl.block(int(bi[g[0]]), int(bj[g[0]])), rows[g] - refl.y0[bi[g[0]]], cols[g] - refl.x0[bj[g[0]]]
        )
        for g in groups
    ]
    values = np.empty(refl.shape[:2] + (len(rows),), dtype=refl.dtype)
    for g, got in zip(groups, _compute(tasks, target, progress, "read series"), strict=True):
        values[..., g] = got
    return values


def _check_labels(polys: Any, polygons: Any, label_column: str) -> None:
    """Refuse class ids the label rasters cannot hold (read_polygons refuses empty sets and fractional ids)."""
    lab = polys["label"].to_numpy()
    bad = (lab < 0) | (lab > np.iinfo(np.int32).max)
    if bad.any():
        raise ValueError(
            f"{_where(polygons)}: label column {label_column!r} gives class id {int(lab[bad][0])} (row "
            f"{polys.index[bad][0]}); expected class ids from 0 to {np.iinfo(np.int32).max}"
        )


def _where(polygons: Any) -> str:
    return str(polygons) if isinstance(polygons, (str, os.PathLike)) else "the polygons"


def _class_names(polys: Any) -> dict[int, str]:
    pairs = polys[["label", "label_name"]].drop_duplicates()
    dup = pairs[pairs["label"].duplicated(keep=False)]
    if not dup.empty:
        raise ValueError(f"class ids with two names: {dup.sort_values('label').to_dict('records')}")
    return {int(a): str(b) for a, b in zip(pairs["label"], pairs["label_name"], strict=True)}


def _build(
    cube: xr.Dataset,
    values: np.ndarray,
    picked: dict,
    names: dict[int, str],
    report: list,
    notes: list,
    tile: str | None,
    config: dict,
) -> xr.Dataset:
    if np.issubdtype(values.dtype, np.integer):
        info = np.iinfo(np.int16)
        if values.size and (values.max() > info.max or values.min() < info.min):
            warnings.warn("reflectance values outside the int16 range were clipped", stacklevel=3)
        values = np.clip(values, info.min, info.max).astype(np.int16)
    else:
        values = values.astype(np.float32)
    n = len(picked["row"])
    times = cube["time"].values.astype("datetime64[ns]")
    crs = cube.rio.crs
    crs_str = crs.to_string() if crs.to_epsg() is not None else crs.to_wkt()
    tile = tile if tile is not None else str(cube.attrs.get("tile", ""))
    source = str(cube.attrs.get("source", ""))
    ds = xr.Dataset(
        {
            "reflectance": (("sample", "time", "band"), values),
            "flag": (("sample", "time"), picked["flag"].astype(np.uint8)),
            "date": (("sample", "time"), np.broadcast_to(times, (n, len(times))).copy()),
            "label": (("sample",), picked["label"].astype(np.int64)),
            "label_name": (("sample",), np.array([names.get(int(k), str(k)) for k in picked["label"]], dtype=str)),
            "tile": (("sample",), np.full(n, tile, dtype=f"<U{max(len(tile), 1)}")),
            "source_file": (("sample",), np.full(n, source, dtype=f"<U{max(len(source), 1)}")),
            "x": (("sample",), cube["x"].values[picked["col"]].astype(float)),
            "y": (("sample",), cube["y"].values[picked["row"]].astype(float)),
            "field_id": (("sample",), picked["field_id"].astype(np.int64)),
        },
        coords={"sample": np.arange(n), "band": cube["band"].values.astype(str)},
    )
    for r in report:
        r["sampled_share"] = r["sampled"] / n if n else 0.0
    ds.attrs.update(
        {
            "crs": crs_str,
            "class_priors": json.dumps({names.get(r["label"], str(r["label"])): r["prior"] for r in report}),
            "sampling_report": json.dumps(report),
            "sampling_warnings": json.dumps(notes),
            "sampling_config": json.dumps(config),
            "title": "eokit weak-label training set",
        }
    )
    check_schema(ds, TIMESERIES_SCHEMA, "training set")  # float reflectance (e.g. NDVI) is allowed
    return ds


def sampling_report(ds: xr.Dataset) -> pd.DataFrame:
    """Return one row per class: pixels, prior, asked, available, sampled, sampled share, shortfall."""
    if "sampling_report" not in ds.attrs:
        raise ValueError(
            "the dataset has no sampling report (attrs['sampling_report']); was it made by "
            "eokit.sampling.make_training_set?"
        )
    df = pd.DataFrame(json.loads(ds.attrs["sampling_report"]))
    df["shortfall"] = df["asked"] - df["sampled"]
    return df.set_index("label")

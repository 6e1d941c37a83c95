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
4. the reflectance series of the chosen pixels are gathered with vectorised point indexing, chunk by
   chunk. Memory is bounded by the chunk size and the number of samples, not the image size.

The result follows :data:`eokit.schema.TIMESERIES_SCHEMA` (like the TimeSen2Crop reader) plus per-sample
``x``, ``y`` (pixel centre, cube CRS) and ``field_id``; ``attrs["crs"]`` holds the CRS.
"""

from __future__ import annotations

import json
import os
import warnings
from collections import defaultdict
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any

import dask
import numpy as np
import pandas as pd
import xarray as xr

from eokit import _dask
from eokit import cube as _cube
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

STRATEGIES = ("proportional", "balanced", "capped")


# --- allocation ----------------------------------------------------------------------------------


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    if total <= 0 or weights.sum() <= 0:
        return np.zeros(len(weights), dtype=np.int64)
    raw = weights / weights.sum() * total
    out = np.floor(raw).astype(np.int64)
    rest = total - out.sum()
    order = np.argsort(-(raw - out), kind="stable")
    out[order[:rest]] += 1
    return out


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _check_allocation(samples: Any, strategy: Any, min_per_class: Any, cap_per_class: Any) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if not _is_int(samples) or samples <= 0:
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    if not _is_int(min_per_class) or min_per_class < 0:
        raise ValueError(f"min_per_class must be an integer >= 0, got {min_per_class!r}")
    if cap_per_class is not None and (not _is_int(cap_per_class) or cap_per_class < 1):
        raise ValueError(f"cap_per_class must be an integer >= 1 or None, got {cap_per_class!r}")
    if strategy == "capped" and cap_per_class is None:
        raise ValueError("strategy='capped' needs cap_per_class (the most samples any class may get)")


def allocate(
    priors: Mapping[int, float],
    samples: int,
    strategy: str = "proportional",
    min_per_class: int = 0,
    cap_per_class: int | None = None,
) -> dict[int, int]:
    """Return the number of samples asked per class id for the given class priors (pixel shares)."""
    _check_allocation(samples, strategy, min_per_class, cap_per_class)
    ids = sorted(priors)
    w = np.array([priors[c] for c in ids], dtype=float)
    present = w > 0
    if strategy == "balanced":
        n = _largest_remainder(present.astype(float), samples)
    else:
        n = _largest_remainder(w, samples)
    if strategy == "capped":
        # cap, then give what the capped classes free up to the others in proportion to their priors
        assert cap_per_class is not None
        for _ in range(len(ids)):
            over = n > cap_per_class
            if not over.any():
                break
            freed = int((n[over] - cap_per_class).sum())
            n[over] = cap_per_class
            room = present & (n < cap_per_class)
            if not room.any():
                break
            n += _largest_remainder(np.where(room, w, 0.0), freed)
    n = np.where(present, np.maximum(n, min_per_class), 0)
    if cap_per_class is not None:
        n = np.minimum(n, cap_per_class)
    return {c: int(k) for c, k in zip(ids, n, strict=True)}


# --- compute helpers -----------------------------------------------------------------------------


def _compute(objs: list, target: Any, progress: bool, desc: str, last_only: bool = False) -> list:
    """The computed objs on `target` from `_dask.compute_target` (last_only: only the last one's result, the
    others are its inputs, for progress)."""
    if not objs:
        return []
    if _dask.is_client(target):
        client = target
        from distributed import as_completed
        from tqdm.auto import tqdm

        with client.as_current():
            futures = client.compute(objs)
            with tqdm(total=len(futures), desc=desc, disable=not progress, unit="task") as bar:
                for _ in as_completed(futures):
                    bar.update(1)
            return [futures[-1].result()] if last_only else client.gather(futures)
    from tqdm.dask import TqdmCallback

    ctx = TqdmCallback(desc=desc) if progress else nullcontext()
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
    flag = cube["flag"].transpose("time", "y", "x").data
    flag = flag.rechunk((-1, plan.ychunks, plan.xchunks)) if hasattr(flag, "rechunk") else _as_dask(flag, plan)
    flag_blocks = flag.to_delayed()
    blocks = {(i, j): (r0, c0, nr, nc) for i, j, r0, c0, nr, nc in plan.blocks()}
    windows = {k: plan.window(*b) for k, b in blocks.items()}
    windows = {k: w for k, w in windows.items() if len(w[1][0])}  # blocks some polygon touches
    with _dask.compute_target(scheduler) as target:
        tasks = [
            dask.delayed(_count_block, pure=False)(
                flag_blocks[0, i, j], windows[(i, j)][1], windows[(i, j)][0], blocks[(i, j)][2:], max_cloud_fraction
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
                flag_blocks[0, i, j],
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
        rows = xr.DataArray(picked["row"], dims="sample")
        cols = xr.DataArray(picked["col"], dims="sample")
        refl = cube["reflectance"].transpose("time", "band", "y", "x").isel(y=rows, x=cols)
        (values,) = _compute([refl.data], target, progress, "read series")
    return picked, report, notes, values


def _check_args(
    samples: Any,
    strategy: Any,
    seed: Any,
    erosion: Any,
    min_per_class: Any,
    cap_per_class: Any,
    max_per_field: Any,
    max_cloud_fraction: Any,
) -> None:
    _check_allocation(samples, strategy, min_per_class, cap_per_class)
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if not _is_int(erosion) or erosion < 0:
        raise ValueError(f"erosion must be an integer >= 0 (pixels), got {erosion!r}")
    if max_per_field is not None and (not _is_int(max_per_field) or max_per_field < 1):
        raise ValueError(f"max_per_field must be an integer >= 1 or None, got {max_per_field!r}")
    if (
        not isinstance(max_cloud_fraction, (int, float, np.integer, np.floating))
        or isinstance(max_cloud_fraction, bool)
        or not 0 <= max_cloud_fraction <= 1
    ):
        raise ValueError(f"max_cloud_fraction must be a number within [0, 1], got {max_cloud_fraction!r}")


def _check_labels(polys: Any, polygons: Any, label_column: str) -> None:
    """Refuse class ids the label rasters cannot hold (read_polygons refuses empty sets and fractional ids)."""
    lab = polys["label"].to_numpy()
    bad = (lab < 0) | (lab > np.iinfo(np.int32).max)
    if bad.any():
        raise ValueError(
            f"{_where(polygons)}: label column {label_column!r} gives class id {int(lab[bad][0])} (row "
            f"{polys.index[bad][0]}); expected class ids from 0 to {np.iinfo(np.int32).max}"
        )


def _takes(
    counted: dict,
    names: dict[int, str],
    touching: set[int],
    samples: int,
    strategy: str,
    min_per_class: int,
    cap_per_class: int | None,
    max_per_field: int | None,
    erosion: int,
    max_cloud_fraction: float,
    where: str,
) -> tuple[dict[int, int], list, list]:
    """Samples to take per class (asked, cut to the eligible pixels), the report rows and the warnings."""
    prior_px: dict[int, int] = defaultdict(int)
    elig: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for pr, el in counted.values():
        for k, v in pr.items():
            prior_px[k] += v
        for (lab, fid), v in el.items():
            elig[lab][fid] += v
    total_px = sum(prior_px.values())
    if total_px == 0:
        raise ValueError(
            f"the polygons of {where} cover no pixel centre of the cube (classes "
            f"{sorted(names.get(k, str(k)) for k in touching)}); expected polygons of at least "
            "one pixel"
        )
    notes: list[str] = []
    for lab in sorted(touching - set(prior_px)):
        notes.append(
            f"class {names.get(lab, str(lab))!r} (id {lab}): its polygons reach the cube but cover no "
            "pixel centre (smaller than a pixel?); no samples of it"
        )
        warnings.warn(notes[-1], stacklevel=4)  # the caller of make_training_set
    for lab in names:
        prior_px.setdefault(lab, 0)
    priors = {lab: prior_px[lab] / total_px for lab in sorted(prior_px)}
    asked = allocate(priors, samples, strategy, min_per_class, cap_per_class)
    need, report = {}, []
    for lab in sorted(asked):
        n_f = np.array(list(elig.get(lab, {}).values()), dtype=np.int64)
        available = int((np.minimum(n_f, max_per_field) if max_per_field else n_f).sum())
        need[lab] = min(asked[lab], available)
        if need[lab] < asked[lab]:
            notes.append(
                f"class {names.get(lab, str(lab))!r} (id {lab}): {asked[lab]} samples asked, only "
                f"{available} eligible pixels (erosion {erosion}, max_cloud_fraction {max_cloud_fraction}"
                + (f", max_per_field {max_per_field}" if max_per_field else "")
                + ")"
            )
            warnings.warn(notes[-1], stacklevel=4)
        report.append(
            {
                "label": lab,
                "label_name": names.get(lab, str(lab)),
                "pixels": prior_px[lab],
                "prior": priors[lab],
                "asked": asked[lab],
                "available": available,
                "sampled": need[lab],
            }
        )
    if not any(need.values()):
        raise ValueError(
            "no eligible pixel to sample: every labelled pixel is on a field boundary "
            f"(erosion {erosion}) or cloudier than max_cloud_fraction {max_cloud_fraction}"
        )
    return need, report, notes


def _as_dask(arr: Any, plan: _BlockPlan) -> Any:
    import dask.array as da

    return da.from_array(np.asarray(arr), chunks=(-1, plan.ychunks, plan.xchunks))


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


# --- class balance of a labelled set -------------------------------------------------------------


def oversample(labels: Any, seed: int = 0, target: int | None = None) -> np.ndarray:
    """Return shuffled int64 indices into `labels` in which every class occurs `target` times (default: max).

    Every original index is kept once (when target >= its class count); minority classes are topped up by
    drawing their indices again with replacement.
    """
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"oversample: labels must be a non-empty 1-D array, got shape {y.shape}")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        bad = int(np.flatnonzero(~np.isfinite(y))[0])
        raise ValueError(
            f"oversample: labels must be class ids, got {y[bad]} at position {bad} (an empty class "
            "cannot be oversampled); drop unlabelled samples first"
        )
    if target is not None and (isinstance(target, bool) or not float(target).is_integer()):
        raise ValueError(f"oversample: target must be an integer number of samples per class, got {target!r}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    n = int(counts.max()) if target is None else int(target)
    if n < 1:
        raise ValueError(f"oversample: target must be >= 1, got {target}")
    parts = []
    for c, count in zip(classes, counts, strict=True):
        idx = np.flatnonzero(y == c)
        if count >= n:
            parts.append(rng.choice(idx, size=n, replace=False) if count > n else idx)
        else:
            parts.append(np.concatenate([idx, rng.choice(idx, size=n - count, replace=True)]))
    out = np.concatenate(parts).astype("int64")
    rng.shuffle(out)
    return out


def class_counts(labels: Any, indices: Any = None) -> pd.DataFrame:
    """Return a pandas DataFrame of samples per class before and after oversampling (`indices` into labels)."""
    from eokit.schema import ICE_CLASSES

    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"class_counts: labels must be 1-D, got shape {y.shape}")
    classes = np.unique(y)
    before = [int((y == c).sum()) for c in classes]
    table = {"before": before}
    if indices is not None:
        idx = np.asarray(indices)
        if idx.size and idx.dtype.kind not in "iu":
            raise ValueError(f"class_counts: indices must be integer positions in [0, {y.size}), got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= y.size):
            raise ValueError(f"class_counts: indices must lie in [0, {y.size}), got {idx.min()}..{idx.max()}")
        table["after oversampling"] = [int((y[idx] == c).sum()) for c in classes]
    names = [ICE_CLASSES[int(c)] if 0 <= int(c) < len(ICE_CLASSES) else str(c) for c in classes]
    df = pd.DataFrame(table, index=pd.Index(names, name="class"))
    df.insert(0, "label", classes.astype("int64"))
    return df

"""Stratified weak-label training sets: an image cube plus a crop map -> per-pixel time series samples.

``make_training_set`` works block by block over the cube's spatial chunks, with dask:

1. per block, the polygons touching it are rasterised (full and eroded label rasters, field ids; pixels
   claimed by two polygons dropped) and the flags give each pixel's cloud fraction; the block returns
   pixel counts per class (the class priors: each class's pixel share in the thematic product) and the
   number of eligible pixels (eroded, not cloudier than ``max_cloud_fraction``) per (class, field);
2. on the client, per-class sample counts follow the strategy (``proportional`` to the priors,
   ``balanced``, or ``capped``), with a minimum per class and an optional cap; they are spread over
   fields (at most ``max_per_field`` each) and blocks with seeded multivariate hypergeometric draws, which
   is uniform random sampling without replacement among the eligible pixels of a class;
3. per block, the allotted pixels are drawn (seeded by block index, so any scheduler and any number of
   workers give the same set for the same seed and chunking)
   and their flag series read; the reflectance series of the chosen pixels are gathered with vectorised
   point indexing, chunk by chunk. Memory is bounded by the chunk size, not the image size.

The result follows :data:`eokit.schema.TIMESERIES_SCHEMA` (like the TimeSen2Crop reader) plus per-sample
``x``, ``y`` (pixel centre, cube CRS) and ``field_id``; ``attrs["crs"]`` holds the CRS.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
import warnings
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Iterator, Mapping

import dask
import numpy as np
import pandas as pd
import xarray as xr

from eokit import cube as _cube
from eokit.labels import NO_LABEL, _BlockPlan, _block_rasters, read_polygons
from eokit.schema import FLAG_CLEAR, FLAG_CLOUD, FLAG_NODATA, TIMESERIES_SCHEMA, check_schema

__all__ = ["make_training_set", "sampling_report", "allocate", "write_zarr", "write_points",
           "write_timesen2crop", "STRATEGIES"]

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


def allocate(priors: Mapping[int, float], samples: int, strategy: str = "proportional", min_per_class: int = 0,
             cap_per_class: int | None = None) -> dict[int, int]:
    """Return the number of samples asked per class id for the given class priors (pixel shares)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if samples <= 0:
        raise ValueError(f"samples must be a positive number, got {samples}")
    if cap_per_class is not None and cap_per_class < 1:
        raise ValueError(f"cap_per_class must be >= 1 or None, got {cap_per_class}")
    if strategy == "capped" and cap_per_class is None:
        raise ValueError("strategy='capped' needs cap_per_class (the most samples any class may get)")
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
    return {c: int(k) for c, k in zip(ids, n)}


# --- block tasks ---------------------------------------------------------------------------------


def _eligible(flag_block: np.ndarray, lab_e: np.ndarray, max_cloud_fraction: float) -> np.ndarray:
    not_clear = (flag_block != FLAG_CLEAR).mean(axis=0) if flag_block.shape[0] else np.zeros(lab_e.shape)
    return (lab_e != NO_LABEL) & (not_clear <= max_cloud_fraction + 1e-12)


def _count_block(flag_block: np.ndarray, polys: tuple, transform: Any, shape: tuple[int, int],
                 max_cloud_fraction: float) -> tuple[dict[int, int], dict[tuple[int, int], int]]:
    """Pixel counts per class (full raster) and eligible counts per (class, field) for one block."""
    lab_e, fid_e, lab_f = _block_rasters(*polys, transform, shape)
    labs, cnt = np.unique(lab_f[lab_f != NO_LABEL], return_counts=True)
    prior = {int(k): int(v) for k, v in zip(labs, cnt)}
    ok = _eligible(flag_block, lab_e, max_cloud_fraction)
    fids, first, cnt = np.unique(fid_e[ok], return_index=True, return_counts=True)  # a field has one class
    labs = lab_e[ok][first]
    elig = {(int(a), int(b)): int(c) for a, b, c in zip(labs, fids, cnt)}
    return prior, elig


def _choose_block(flag_block: np.ndarray, polys: tuple, transform: Any, shape: tuple[int, int],
                  max_cloud_fraction: float, alloc: dict[tuple[int, int], int], seed: int, bi: int, bj: int,
                  row0: int, col0: int) -> dict[str, np.ndarray]:
    """Draw the allotted pixels of one block; return their global rows/cols, labels, fields and flags."""
    lab_e, fid_e, _ = _block_rasters(*polys, transform, shape, full=False)
    ok = _eligible(flag_block, lab_e, max_cloud_fraction)
    rng = np.random.default_rng([seed, bi, bj])
    flat = np.flatnonzero(ok.ravel())  # raster order
    f = fid_e.ravel()[flat]
    order = np.argsort(f, kind="stable")
    flat, f = flat[order], f[order]
    chosen = []
    for (lab, fid) in sorted(alloc):
        n = alloc[(lab, fid)]
        lo, hi = np.searchsorted(f, fid, "left"), np.searchsorted(f, fid, "right")
        cand = flat[lo:hi]
        if n > len(cand):  # cannot happen unless the inputs changed between the two passes
            raise RuntimeError(f"block {bi},{bj}: {n} samples allotted to field {fid} but {len(cand)} eligible")
        chosen.append(np.sort(rng.choice(cand, size=n, replace=False)))
    idx = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    r, c = np.divmod(idx, shape[1])
    return {
        "row": (r + row0).astype(np.int64),
        "col": (c + col0).astype(np.int64),
        "label": lab_e[r, c].astype(np.int64),
        "field_id": fid_e[r, c].astype(np.int64),
        "flag": flag_block[:, r, c].T.astype(np.uint8),
    }


# --- compute helpers -----------------------------------------------------------------------------


@contextmanager
def _client(scheduler: Any) -> Iterator[Any]:
    if scheduler is None or scheduler in ("threads", "processes", "synchronous", "sync", "single-threaded"):
        yield None
        return
    from distributed import Client

    if isinstance(scheduler, Client):
        yield scheduler
        return
    if isinstance(scheduler, str):
        client = Client(scheduler, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
        return
    raise ValueError(f"scheduler must be None, a dask scheduler name, a distributed.Client or an address, "
                     f"got {scheduler!r}")


def _compute(objs: list, client: Any, scheduler: Any, progress: bool, desc: str) -> list:
    if not objs:
        return []
    if client is not None:
        from distributed import as_completed
        from tqdm.auto import tqdm

        with client.as_current():
            futures = client.compute(objs)
            with tqdm(total=len(futures), desc=desc, disable=not progress, unit="block") as bar:
                for _ in as_completed(futures):
                    bar.update(1)
            return client.gather(futures)
    from tqdm.dask import TqdmCallback

    kw = {"scheduler": scheduler} if isinstance(scheduler, str) else {}
    ctx = TqdmCallback(desc=desc) if progress else nullcontext()
    with ctx:
        return list(dask.compute(*objs, **kw))


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

    cube: a Dataset from :func:`eokit.cube.open` or a path it opens. polygons: a GeoDataFrame or a GPKG/SHP/
    GeoParquet path, any CRS; `label_column` holds the codes, `mapping` maps them to classes (see
    :func:`eokit.labels.read_polygons`). samples: the total asked; per class it follows `strategy`
    (``proportional`` to the class priors, ``balanced``, or ``capped`` at `cap_per_class` with the rest
    given to the other classes), then is raised to `min_per_class` (so the total can exceed `samples`) and
    cut to `cap_per_class`. A class with fewer eligible pixels than asked gives all it has, with a warning.
    erosion: pixels removed inside each field boundary; max_per_field: at most K samples per field;
    max_cloud_fraction: pixels whose share of non-clear observations (flag != 0) is above it are left out.
    scheduler: None (dask's default), a scheduler name, a ``distributed.Client`` or a scheduler address.
    tile: the tile name stored per sample (default: the cube's ``attrs["tile"]`` or "").
    """
    if not 0 <= max_cloud_fraction <= 1:
        raise ValueError(f"max_cloud_fraction must be within [0, 1], got {max_cloud_fraction}")
    if max_per_field is not None and max_per_field < 1:
        raise ValueError(f"max_per_field must be >= 1 or None, got {max_per_field}")
    if min_per_class < 0:
        raise ValueError(f"min_per_class must be >= 0, got {min_per_class}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if not isinstance(cube, xr.Dataset):
        cube = _cube.open(cube)
    for v in ("reflectance", "flag"):
        if v not in cube:
            raise ValueError(f"the cube has no {v!r} variable; open it with eokit.cube.open")
    if cube.rio.crs is None:
        raise ValueError("the cube has no CRS (cube.rio.crs is None); write one with cube.rio.write_crs(...)")
    polys = read_polygons(polygons, label_column, mapping=mapping, crs=cube.rio.crs, on_missing=on_missing,
                          name_column=name_column)
    names = _class_names(polys)
    plan = _BlockPlan(polys, cube, "label", erosion)
    if not plan.bounds_overlap():
        b = tuple(np.round(polys.total_bounds, 1))
        raise ValueError(f"no polygon of {_where(polygons)} overlaps the cube (cube CRS {plan.crs}, cube bounds "
                         f"{tuple(np.round(cube.rio.bounds(), 1))}, polygon bounds in that CRS {b})")
    flag = cube["flag"].transpose("time", "y", "x").data
    flag = flag.rechunk((-1, plan.ychunks, plan.xchunks)) if hasattr(flag, "rechunk") else _as_dask(
        flag, plan)
    flag_blocks = flag.to_delayed()
    blocks = plan.blocks()
    windows = {(i, j): plan.window(r0, c0, nr, nc) for i, j, r0, c0, nr, nc in blocks}

    # pass 1: priors and eligible counts per block
    tasks = [dask.delayed(_count_block, pure=False)(flag_blocks[0, i, j], windows[(i, j)][1], windows[(i, j)][0],
                                                   (nr, nc), max_cloud_fraction)
             for i, j, r0, c0, nr, nc in blocks if len(windows[(i, j)][1][0])]
    tkeys = [(i, j) for i, j, *_ in blocks if len(windows[(i, j)][1][0])]
    with _client(scheduler) as client:
        sched = scheduler if client is None else None
        counted = _compute(tasks, client, sched, progress, "label pixels")
        prior_px: dict[int, int] = defaultdict(int)
        elig: dict[int, dict[int, dict[tuple[int, int], int]]] = defaultdict(lambda: defaultdict(dict))
        for key, (pr, el) in zip(tkeys, counted):
            for k, v in pr.items():
                prior_px[k] += v
            for (lab, fid), v in el.items():
                elig[lab][fid][key] = v
        total_px = sum(prior_px.values())
        if total_px == 0:
            raise ValueError(f"the polygons of {_where(polygons)} cover no pixel centre of the cube")
        for lab in names:
            prior_px.setdefault(lab, 0)
        priors = {lab: prior_px[lab] / total_px for lab in sorted(prior_px)}
        asked = allocate(priors, samples, strategy, min_per_class, cap_per_class)

        # spread each class's samples over fields (<= max_per_field each) and blocks
        rng = np.random.default_rng(seed)
        alloc: dict[tuple[int, int], dict[tuple[int, int], int]] = defaultdict(dict)
        report, notes = [], []
        for lab in sorted(asked):
            fields = sorted(elig.get(lab, {}))
            n_f = np.array([sum(elig[lab][f].values()) for f in fields], dtype=np.int64)
            cap_f = np.minimum(n_f, max_per_field) if max_per_field else n_f
            available = int(cap_f.sum())
            take = min(asked[lab], available)
            if take < asked[lab]:
                msg = (f"class {names.get(lab, lab)!r} (id {lab}): {asked[lab]} samples asked, only {available} "
                       f"eligible pixels (erosion {erosion}, max_cloud_fraction {max_cloud_fraction}"
                       + (f", max_per_field {max_per_field}" if max_per_field else "") + ")")
                notes.append(msg)
                warnings.warn(msg, stacklevel=2)
            if take > 0:
                per_field = rng.multivariate_hypergeometric(cap_f, take, method="marginals")
                for f, k in zip(fields, per_field):
                    if k == 0:
                        continue
                    bkeys = sorted(elig[lab][f])
                    per_block = rng.multivariate_hypergeometric(
                        np.array([elig[lab][f][b] for b in bkeys], dtype=np.int64), int(k), method="marginals")
                    for b, kb in zip(bkeys, per_block):
                        if kb:
                            alloc[b][(lab, f)] = int(kb)
            report.append({"label": lab, "label_name": names.get(lab, str(lab)), "pixels": prior_px[lab],
                           "prior": priors[lab], "asked": asked[lab], "available": available, "sampled": take})
        if not alloc:
            raise ValueError("no eligible pixel to sample: every labelled pixel is on a field boundary "
                             f"(erosion {erosion}) or cloudier than max_cloud_fraction {max_cloud_fraction}")

        # pass 2: draw the pixels in each block and read their flags
        by_block = {(i, j): (r0, c0, nr, nc) for i, j, r0, c0, nr, nc in blocks}
        ckeys = sorted(alloc)
        tasks = []
        for (i, j) in ckeys:
            r0, c0, nr, nc = by_block[(i, j)]
            t, polys_ij = windows[(i, j)]
            tasks.append(dask.delayed(_choose_block, pure=False)(
                flag_blocks[0, i, j], polys_ij, t, (nr, nc), max_cloud_fraction, alloc[(i, j)], seed, i, j,
                r0, c0))
        parts = _compute(tasks, client, sched, progress, "draw samples")
        picked = {k: np.concatenate([p[k] for p in parts]) for k in ("row", "col", "label", "field_id")}
        picked["flag"] = np.concatenate([p["flag"] for p in parts], axis=0)
        order = np.lexsort((picked["col"], picked["row"], picked["field_id"], picked["label"]))
        picked = {k: v[order] for k, v in picked.items()}

        # pass 3: gather the reflectance series of the chosen pixels, chunk by chunk
        rows = xr.DataArray(picked["row"], dims="sample")
        cols = xr.DataArray(picked["col"], dims="sample")
        refl = cube["reflectance"].transpose("time", "band", "y", "x").isel(y=rows, x=cols)
        (values,) = _compute([refl.data], client, sched, progress, "read series")
    values = np.moveaxis(np.asarray(values), -1, 0)  # (sample, time, band)
    return _build(cube, values, picked, names, report, notes, tile, dict(
        strategy=strategy, samples_asked=int(samples), seed=int(seed), erosion=int(erosion),
        min_per_class=int(min_per_class), cap_per_class=cap_per_class, max_per_field=max_per_field,
        max_cloud_fraction=float(max_cloud_fraction), label_column=label_column,
        polygons=_where(polygons), mapping=mapping if isinstance(mapping, (str, type(None))) else str(mapping)))


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
    return {int(a): str(b) for a, b in zip(pairs["label"], pairs["label_name"])}


def _build(cube: xr.Dataset, values: np.ndarray, picked: dict, names: dict[int, str], report: list,
           notes: list, tile: str | None, config: dict) -> xr.Dataset:
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
            "label_name": (("sample",), np.array([names.get(int(k), str(k)) for k in picked["label"]],
                                                 dtype=str)),
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
    ds.attrs.update({
        "crs": crs_str,
        "class_priors": json.dumps({names.get(r["label"], str(r["label"])): r["prior"] for r in report}),
        "sampling_report": json.dumps(report),
        "sampling_warnings": json.dumps(notes),
        "sampling_config": json.dumps(config),
        "title": "eokit weak-label training set",
    })
    check_schema(ds, TIMESERIES_SCHEMA, "training set")  # float reflectance (e.g. NDVI) is allowed
    return ds


def sampling_report(ds: xr.Dataset) -> pd.DataFrame:
    """Return one row per class: pixels, prior, asked, available, sampled, sampled share, shortfall."""
    if "sampling_report" not in ds.attrs:
        raise ValueError("the dataset has no sampling report (attrs['sampling_report']); was it made by "
                         "eokit.sampling.make_training_set?")
    df = pd.DataFrame(json.loads(ds.attrs["sampling_report"]))
    df["shortfall"] = df["asked"] - df["sampled"]
    return df.set_index("label")


# --- writers -------------------------------------------------------------------------------------


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")


def _check_target(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")


def _swap_in(tmp: Path, path: Path) -> None:
    if path.exists():
        old = _tmp_sibling(path)
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old) if old.is_dir() else old.unlink()
    else:
        os.replace(tmp, path)


def write_zarr(ds: xr.Dataset, store: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write the training set to a Zarr store (via a temporary sibling, then renamed); return its path."""
    path = Path(store)
    _check_target(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    out = ds.copy()
    for k, v in out.variables.items():
        if v.dtype.kind in ("O", "T"):
            out[k] = v.astype(str)
        out[k].encoding = {}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not part of the Zarr.*")
            warnings.filterwarnings("ignore", message=".*FixedLengthUTF32.*")
            warnings.filterwarnings("ignore", message="Consolidated metadata.*")
            out.to_zarr(tmp, mode="w", consolidated=True)
        _swap_in(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def write_points(ds: xr.Dataset, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write one point per sample (label, label_name, field_id, tile) to a GeoPackage; return its path."""
    import geopandas as gpd

    path = Path(path)
    for v in ("x", "y"):
        if v not in ds:
            raise ValueError(f"the training set has no {v!r} variable: only samples made from a cube have points")
    if "crs" not in ds.attrs:
        raise ValueError("the training set has no attrs['crs']")
    _check_target(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = {k: ds[k].values for k in ("label", "label_name", "field_id", "tile") if k in ds}
    gdf = gpd.GeoDataFrame({"sample": ds["sample"].values, **cols},
                           geometry=gpd.points_from_xy(ds["x"].values, ds["y"].values), crs=ds.attrs["crs"])
    tmp = path.with_name(f".{path.stem}.tmp-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        gdf.to_file(tmp, layer="samples", driver="GPKG")
        _swap_in(tmp, path)
    except BaseException:
        if tmp.exists():
            tmp.unlink()
        raise
    return path


def write_timesen2crop(ds: xr.Dataset, root: str | os.PathLike, overwrite: bool = False) -> Any:
    """Write the set in the published TimeSen2Crop layout; return the ``root/TimeSen2Crop`` folder.

    The CSV flags know only 0..3: observations flagged 255 (no data inside an acquisition) are written as
    1 (unusable, like cloud), with a warning saying how many. Samples need a tile name (``tile=`` of
    make_training_set) because the layout is ``<tile>/<class id>/<n>.csv``.
    """
    from eokit.datasets import timesen2crop

    tiles = np.asarray(ds["tile"].values).astype(str)
    if (tiles == "").any():
        raise ValueError("the TimeSen2Crop layout needs a tile name per sample (folder <tile>/<class>/); "
                         "make the set with make_training_set(..., tile='33UVP') or assign ds['tile']")
    out = ds
    valid = ~np.isnat(np.asarray(ds["date"].values))
    nodata = (np.asarray(ds["flag"].values) == FLAG_NODATA) & valid
    if nodata.any():
        warnings.warn(f"{int(nodata.sum())} observations flagged 255 (no data) written with flag 1: the "
                      "TimeSen2Crop CSV has flags 0..3 only", stacklevel=2)
        out = ds.copy()
        out["flag"] = ds["flag"].where(~xr.DataArray(nodata, dims=ds["flag"].dims), FLAG_CLOUD).astype(np.uint8)
    return timesen2crop.write(out, root, overwrite=overwrite)


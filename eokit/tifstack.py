"""A Sentinel-2 time series stored as a folder of GeoTIFFs, one file per date (all bands) or per date and band.

The date comes from the file name (``YYYYMMDD`` or ``YYYYMMDDTHHMMSS``) or the ``ACQUISITION_DATE`` tag, band
names from the band descriptions (or, for single-band files without one, from the file name). ``SCL_<date>.tif``
files are Sentinel-2 scene classifications, ``FLAG_<date>.tif`` files hold TimeSen2Crop flag codes. Every file
must lie on one grid. :func:`scan_folder` and :func:`order_bands` check the folder, :func:`read_folder` returns
its lazy reflectance and flags (``eokit.cube.open`` assembles the cube).
"""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd

from eokit.rasterfiles import lazy_read, raster_info
from eokit.schema import FLAG_NODATA
from eokit.sentinel2 import DATE_RE, band_key, date_from_name, date_text, norm_band, scl_to_flag

__all__ = ["TIF_SUFFIXES", "TIMELESS_LAYERS", "order_bands", "read_folder", "scan_folder"]

TIF_SUFFIXES = {".tif", ".tiff"}

#: Undated per-pixel layers kept beside the time series (the EOPatch layout's timeless features, e.g. the
#: LULC.tif that `eokit.datasets.slovenia.write_stack` writes): not part of the cube, skipped without a warning.
TIMELESS_LAYERS = frozenset({"LULC"})


def _file_date(path: Path, tags: dict[str, str]) -> pd.Timestamp | None:
    """The acquisition date from the file name or its tags; None if neither holds one."""
    try:
        d = date_from_name(path.stem)
    except ValueError as exc:
        bad_name: ValueError | None = exc
        d = None
    else:
        bad_name = None
    if d is not None:
        return d
    for key in ("ACQUISITION_DATE", "acquisition_date", "ACQUISITION_TIME", "TIFFTAG_DATETIME", "DATETIME"):
        if key in tags and tags[key].strip():
            val = tags[key].strip()
            if key == "TIFFTAG_DATETIME":  # 'YYYY:MM:DD HH:MM:SS'
                val = val.replace(":", "-", 2)
            try:
                ts = pd.Timestamp(val)
                return ts.tz_convert(None) if ts.tzinfo else ts
            except ValueError as exc:
                raise ValueError(f"{path}: tag {key}={tags[key]!r} is not a date; expected e.g. 2018-05-01") from exc
    if bad_name is not None:
        raise ValueError(f"{path}: {bad_name}") from bad_name
    return None


def _name_band(path: Path) -> str:
    stem = DATE_RE.sub("", path.stem)
    tokens = [t for t in re.split(r"[_\-.]+", stem) if t]
    return norm_band(tokens[-1]) if tokens else "band"


def _kind(path: Path) -> str:
    up = path.name.upper()
    if up.startswith("SCL"):
        return "scl"
    if up.startswith("FLAG"):
        return "flag"
    return "data"


def scan_folder(folder: Path) -> tuple[dict, dict, dict, tuple]:
    """date -> [(file, band names)], date -> (kind, flag file), file -> raster info, (first file, grid)."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in TIF_SUFFIXES)
    if not files:
        raise FileNotFoundError(
            f"{folder}: no GeoTIFF (*.tif) files found; expected one file per date "
            "(S2_YYYYMMDD.tif) or per date and band"
        )
    data: dict[pd.Timestamp, list[tuple[Path, list[str]]]] = defaultdict(list)
    flags: dict[pd.Timestamp, tuple[str, Path]] = {}
    info: dict[Path, tuple] = {}
    grid = None
    undated: list[Path] = []
    for p in files:
        info[p] = inf = raster_info(p)
        count, height, width, _, _, crs, transform, tags, descs = inf
        g = (crs, transform, width, height)
        if crs is None:
            raise ValueError(f"{p}: the file has no CRS; the cube needs georeferenced images")
        if grid is None:
            grid = (p, g)
        else:
            _check_same_grid(grid[0], grid[1], p, g)
        date = _file_date(p, tags)
        if date is None:
            if p.stem.upper() not in TIMELESS_LAYERS:
                undated.append(p)
            continue
        kind = _kind(p)
        if kind in ("scl", "flag"):
            if count != 1:
                raise ValueError(f"{p}: a {kind.upper()} file must have 1 band, it has {count}")
            if date in flags:
                raise ValueError(
                    f"{p}: a second flag/SCL file for {date_text(date)} (first: {flags[date][1]}); "
                    "expected one per date"
                )
            flags[date] = (kind, p)
            continue
        if count == 1 and not descs[0]:
            names = [_name_band(p)]
        else:
            names = [norm_band(d) if d else f"band_{i + 1}" for i, d in enumerate(descs)]
        data[date].append((p, names))
    if undated:
        if not data:
            raise ValueError(
                f"{undated[0]}: no acquisition date found; expected YYYYMMDD or YYYYMMDDTHHMMSS in "
                "the file name or an ACQUISITION_DATE tag"
            )
        warnings.warn(
            f"{folder}: {[p.name for p in undated]} have no acquisition date; not part of the time series, skipped",
            stacklevel=4,
        )
    if not data:
        raise FileNotFoundError(
            f"{folder}: no dated image files, only SCL/FLAG files or timeless layers ({', '.join(TIMELESS_LAYERS)})"
        )
    for d in flags:
        if d not in data:
            raise ValueError(f"{flags[d][1]}: flag file for {date_text(d)} but no image file for that date in {folder}")
    assert grid is not None
    return data, flags, info, grid


def order_bands(folder: Path, data: dict, bands: Sequence[str] | None) -> list[str]:
    """Return the band order of the cube (the same bands on every date, else ValueError), `bands` if given."""
    dates = sorted(data)
    band_order: list[str] | None = None
    for d in dates:
        names = [n for _, ns in data[d] for n in ns]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1}, key=band_key)
            files = [p.name for p, ns in data[d] if set(ns) & set(twice)]
            raise ValueError(
                f"{folder}: date {date_text(d)} has bands {twice} twice (files {files}); expected "
                "each band once per date (two files with one date?)"
            )
        if band_order is None:
            band_order = names
        elif sorted(names) != sorted(band_order):
            lacking = sorted(set(band_order) - set(names), key=band_key)
            extra = sorted(set(names) - set(band_order), key=band_key)
            raise ValueError(
                f"{folder}: date {date_text(d)} lacks bands {lacking} and has extra bands {extra} compared with "
                f"{date_text(dates[0])} (bands {sorted(band_order, key=band_key)}); every date needs the same "
                "bands"
            )
    assert band_order is not None
    if len(data[dates[0]]) > 1:  # one file per band: order the bands the Sentinel-2 way, others by name
        band_order = sorted(band_order, key=band_key)
    if bands is not None:
        want = [norm_band(b) for b in bands]
        missing = [b for b in want if b not in band_order]
        if missing:
            raise ValueError(f"{folder}: bands {missing} not found; available: {band_order}")
        band_order = want
    return band_order


def read_folder(
    data: dict, flags: dict, info: dict, grid: tuple, bands: list[str], ch: dict[str, int], fill: int | None
) -> tuple[da.Array, da.Array]:
    """Return lazy (reflectance (time, band, y, x), flags (time, y, x)) of a scanned folder; `fill`: flag if none."""
    dates = sorted(data)
    _, _, width, height = grid[1]
    ref_arrays = []
    flag_arrays = []
    for d in dates:
        pieces = []
        nodata_masks = []
        for p, names in data[d]:
            arr = lazy_read(p, ch, info[p][:4])
            pieces.append((arr, names))
            nd = info[p][4]
            if d not in flags and nd is not None:  # SCL/FLAG files already say where there is no data
                nodata_masks.append(da.all(_is_nodata(arr, nd), axis=0))
        if len(pieces) == 1:  # one file, all bands: select them in one indexing step, chunks stay whole
            arr, names = pieces[0]
            pick = [names.index(b) for b in bands]
            ref_arrays.append(arr if pick == list(range(len(names))) else arr[pick])
        else:
            where = {n: (arr, i) for arr, names in pieces for i, n in enumerate(names)}
            ref_arrays.append(da.stack([where[b][0][where[b][1]] for b in bands]))
        if d in flags:
            kind, fp = flags[d]
            fa = lazy_read(fp, ch, info[fp][:4])[0]
            f = scl_to_flag(fa) if kind == "scl" else fa.astype(np.uint8)
        else:
            f = da.full((height, width), fill, dtype=np.uint8, chunks=(ch["y"], ch["x"]))
        if nodata_masks:
            allnd = nodata_masks[0]
            for m in nodata_masks[1:]:
                allnd = allnd & m
            f = da.where(allnd, np.uint8(FLAG_NODATA), f).astype(np.uint8)
        flag_arrays.append(f)
    dtype = np.result_type(*{a.dtype for a in ref_arrays})
    refl = da.stack([a if a.dtype == dtype else a.astype(dtype) for a in ref_arrays])
    if refl.numblocks[1] != 1:
        refl = refl.rechunk({1: -1})
    return refl, da.stack(flag_arrays)


def _is_nodata(arr: da.Array, nd: float) -> da.Array:
    if np.isnan(nd):
        return da.isnan(arr)
    return arr == nd


def _check_same_grid(p0: Path, g0: tuple, p: Path, g: tuple) -> None:
    crs0, t0, w0, h0 = g0
    crs, t, w, h = g
    if (abs(t.a), abs(t.e)) != (abs(t0.a), abs(t0.e)):
        raise ValueError(
            f"{p}: pixel size {abs(t.a)} x {abs(t.e)} differs from {p0} ({abs(t0.a)} x {abs(t0.e)}); "
            "bands of mismatched resolution must be resampled to one grid first (only .SAFE input is "
            "resampled by eokit.cube.open)"
        )
    if crs != crs0:
        raise ValueError(f"{p}: CRS {crs} differs from {p0} ({crs0}); every file of a cube needs one CRS")
    if t != t0 or (w, h) != (w0, h0):
        raise ValueError(
            f"{p}: grid {w}x{h} at {t.c},{t.f} differs from {p0} ({w0}x{h0} at {t0.c},{t0.f}); "
            "every file of a cube must cover the same grid"
        )

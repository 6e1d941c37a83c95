"""Sentinel-2 image time series as a lazy, dask-backed xarray cube (time, band, y, x) with a CRS.

Three sources are understood by :func:`open`:

* a folder of GeoTIFFs, one file per date (all bands) or per date and band; the date comes from the file
  name (``YYYYMMDD`` or ``YYYYMMDDTHHMMSS``) or the ``ACQUISITION_DATE`` tag, band names from the band
  descriptions (or, for single-band files without one, from the file name). ``SCL_<date>.tif`` files are
  Sentinel-2 scene classifications mapped through :data:`eokit.schema.SCL_TO_FLAG`; ``FLAG_<date>.tif``
  files already hold TimeSen2Crop flag codes. Every file's TIFF header is checked at open (a truncated
  file is refused there, naming its full path); a read error later names the full path too.
* Sentinel-2 L2A ``.SAFE`` products (a ``.SAFE`` folder or a folder holding several): JPEG 2000 bands on
  the finest grid present (10 m; coarser bands brought to it by nearest neighbour, a warning names the bands
  that lack their native resolution), ``SCL`` mapped to flags, DN 0 (the L2A NO_DATA value) flagged 255.
  The product metadata (``MTD_MSIL2A.xml``, found in any letter case) gives the processing baseline
  (``PROCESSING_BASELINE``; the ``_Nxxxx_`` part of the product name says it too) and, from baseline 04.00
  on, ``BOA_ADD_OFFSET`` per band and ``BOA_QUANTIFICATION_VALUE``: values are (DN + offset) x 10000 /
  quantification, i.e. reflectance x 10000 as before (int16). A product of baseline 04.00 or later whose
  offsets cannot be read is refused, never read without them.
* a STAC catalog (a ``catalog.json``/``collection.json`` path, a :class:`pystac.Catalog`, an
  ``ItemCollection`` or a list of items) loaded lazily with ``odc.stac.load``; an ``SCL`` asset becomes the
  flags, a ``FLAG`` asset is taken as flag codes.

Dates without a flag layer (no SCL/FLAG file, no SCL band or asset) are refused when other dates have one;
``missing_flags`` says how to treat them instead. A cube with no flag layer at all opens with a warning that
every observation counts as clear.

The sources are read by :mod:`eokit.tifstack` (GeoTIFF folders) and :mod:`eokit.sentinel2` (SAFE products), files
through :mod:`eokit.rasterfiles` (header checks, lazy window reads); this module assembles the cube.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from eokit import sentinel2, tifstack
from eokit.schema import FLAG_CLEAR, FLAG_NODATA
from eokit.sentinel2 import date_text, norm_band, scl_to_flag
from eokit.tifstack import TIF_SUFFIXES

__all__ = ["DEFAULT_CHUNK", "MISSING_FLAGS", "open", "scl_to_flag"]

#: Default spatial chunk (pixels along y and x).
DEFAULT_CHUNK = 512
#: Accepted values of ``missing_flags`` (None: refuse when only some dates lack flags, warn when all do).
MISSING_FLAGS = ("raise", "clear", "nodata")


def _chunks(chunks: Any) -> dict[str, int]:
    if chunks is None:
        return {"y": DEFAULT_CHUNK, "x": DEFAULT_CHUNK}
    if isinstance(chunks, int):
        return {"y": chunks, "x": chunks}
    if isinstance(chunks, dict):
        out = {"y": DEFAULT_CHUNK, "x": DEFAULT_CHUNK}
        out.update({k: int(v) for k, v in chunks.items() if k in ("y", "x")})
        return out
    raise ValueError(f"chunks must be an int or a dict with 'y'/'x' sizes, got {chunks!r}")


def _is_safe_name(p: Any) -> bool:
    return str(p).rstrip("/\\").upper().endswith(".SAFE")


def open(  # noqa: A001  (module-level verb, used as eokit.cube.open)
    path_or_catalog: Any,
    chunks: int | dict[str, int] | None = None,
    bands: Sequence[str] | None = None,
    missing_flags: str | None = None,
) -> xr.Dataset:
    """Return the image cube: ``reflectance`` (time, band, y, x) dask-backed and ``flag`` (time, y, x) uint8.

    ``missing_flags`` says what a date without a flag layer (no SCL/FLAG file, SCL band or asset) gets:
    ``None`` (default) refuses when other dates have flags and warns (all clear) when no date has any;
    ``"raise"`` always refuses; ``"clear"`` treats those dates as clear, with a warning naming them;
    ``"nodata"`` marks them as no observation (flag 255).
    """
    if missing_flags is not None and missing_flags not in MISSING_FLAGS:
        raise ValueError(
            f"missing_flags={missing_flags!r} is not understood; expected one of "
            f"{', '.join(map(repr, MISSING_FLAGS))} or None"
        )
    src = path_or_catalog
    ch = _chunks(chunks)
    if _is_stac(src):
        return _open_stac(src, ch, bands, missing_flags)
    if isinstance(src, (list, tuple)) and src and all(_is_safe_name(p) for p in src):
        for p in src:
            if not Path(p).is_dir():
                raise FileNotFoundError(f"Sentinel-2 product {p} does not exist (expected a .SAFE folder)")
        return _open_safe([Path(p) for p in src], ch, bands, missing_flags)
    path = Path(src)
    if not path.exists():
        raise FileNotFoundError(
            f"cube source {path} does not exist; expected a folder of GeoTIFFs, a .SAFE "
            "folder (or a folder of them) or a STAC catalog.json"
        )
    if path.is_file() and path.suffix.lower() == ".json":
        return _open_stac(path, ch, bands, missing_flags)
    if path.is_dir() and _is_safe_name(path.name):
        return _open_safe([path], ch, bands, missing_flags)
    if path.is_dir():
        entries = list(path.iterdir())
        safes = sorted(p for p in entries if p.is_dir() and _is_safe_name(p.name))
        if safes:
            return _open_safe(safes, ch, bands, missing_flags)
        for name in ("catalog.json", "collection.json"):
            if (path / name).is_file() and not any(p.suffix.lower() in TIF_SUFFIXES for p in entries):
                return _open_stac(path / name, ch, bands, missing_flags)
        return _open_tif_folder(path, ch, bands, missing_flags)
    raise ValueError(
        f"cannot open {path} as a cube: expected a folder of GeoTIFFs, a .SAFE folder (or a folder of them) "
        "or a STAC catalog.json"
    )


def _missing_flag_fill(
    policy: str | None, source: Any, lacking: Sequence[pd.Timestamp], n_dates: int, what: str
) -> int | None:
    """The flag code for dates without a flag layer (None when every date has one); refuses or warns as asked."""
    if not lacking:
        return None
    names = [date_text(d) for d in sorted(lacking)]
    shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
    everything = len(lacking) == n_dates
    how = (
        "pass missing_flags='clear' to treat them as clear observations, 'nodata' to treat them as no "
        "observation (flag 255)"
    )
    if policy == "raise" or (policy is None and not everything):
        lead = "no date has a flag layer" if everything else f"{len(lacking)} of {n_dates} dates have no {what}"
        raise ValueError(
            f"{source}: {lead}: {shown}; clouds there would count as clear; {how}, or add the missing {what}"
        )
    if policy == "nodata":
        return FLAG_NODATA
    if everything:
        warnings.warn(
            f"{source}: no flag layer ({what}) at all: every observation will be treated as clear "
            f"(flag 0), clouds included; dates: {shown}",
            UserWarning,
            stacklevel=4,
        )
    else:
        warnings.warn(
            f"{source}: dates without {what} are treated as clear (missing_flags='clear'): {shown}",
            UserWarning,
            stacklevel=4,
        )
    return FLAG_CLEAR


# --- the sources: GeoTIFF folders, SAFE products (read by their modules), STAC -----------------------------


def _open_tif_folder(
    folder: Path, ch: dict[str, int], bands: Sequence[str] | None, missing_flags: str | None = None
) -> xr.Dataset:
    data, flags, info, grid = tifstack.scan_folder(folder)
    dates = sorted(data)
    band_order = tifstack.order_bands(folder, data, bands)
    fill = _missing_flag_fill(
        missing_flags, folder, [d for d in dates if d not in flags], len(dates), "SCL_<date>.tif / FLAG_<date>.tif file"
    )
    refl, flag = tifstack.read_folder(data, flags, info, grid, band_order, ch, fill)
    crs, transform, _, _ = grid[1]
    return _assemble(refl, flag, dates, band_order, crs, transform, str(folder))


def _open_safe(
    safes: list[Path], ch: dict[str, int], bands: Sequence[str] | None, missing_flags: str | None = None
) -> xr.Dataset:
    scan = sentinel2.scan_safe(safes, bands)
    fill = _missing_flag_fill(
        missing_flags,
        safes[0].parent if len(safes) > 1 else safes[0],
        [d for d, found, _ in scan.products if "SCL" not in found],
        len(scan.products),
        "SCL band",
    )
    refl, flag = sentinel2.read_safe(scan, ch, fill)
    crs, transform, _, _ = scan.grid
    src_name = str(safes[0].parent if len(safes) > 1 else safes[0])
    ds = _assemble(refl, flag, [d for d, _, _ in scan.products], scan.bands, crs, transform, src_name)
    tiles = {m.group(1) for s in safes if (m := re.search(r"_T(\d{2}[A-Z]{3})_", s.name))}
    if len(tiles) == 1:
        ds.attrs["tile"] = tiles.pop()
    return ds


def _is_stac(obj: Any) -> bool:
    try:
        import pystac
    except ImportError:  # pragma: no cover - pystac is a dependency
        return False
    if isinstance(obj, (pystac.Catalog, pystac.ItemCollection, pystac.Item)):
        return True
    return isinstance(obj, (list, tuple)) and bool(obj) and all(isinstance(o, pystac.Item) for o in obj)


def _stac_items(src: Any) -> list:
    import pystac

    if isinstance(src, (str, Path)):
        p = Path(src)
        try:
            obj = pystac.read_file(str(p))
        except Exception as exc:  # pystac raises several types for bad JSON
            raise ValueError(f"{p}: not a readable STAC catalog, collection or item ({exc})") from exc
        src = obj
    if isinstance(src, pystac.Item):
        return [src]
    if isinstance(src, pystac.ItemCollection):
        return list(src.items)
    if isinstance(src, pystac.Catalog):
        return list(src.get_items(recursive=True))
    return list(src)


def _open_stac(
    src: Any, ch: dict[str, int], bands: Sequence[str] | None, missing_flags: str | None = None
) -> xr.Dataset:
    import odc.stac

    items = _stac_items(src)
    if not items:
        raise ValueError(f"STAC source {src}: no items found")
    flag_key, data_keys = _stac_asset_keys(items, src, bands)
    _check_stac_items(items, data_keys)
    no_flag = sorted(
        {
            pd.Timestamp(it.datetime).tz_convert(None)
            if pd.Timestamp(it.datetime).tzinfo
            else pd.Timestamp(it.datetime)
            for it in items
            if flag_key not in it.assets
        }
    )
    n_dates = len({pd.Timestamp(it.datetime) for it in items})
    fill = _missing_flag_fill(missing_flags, f"STAC source {src}", no_flag, n_dates, "SCL/FLAG asset")
    load_keys = data_keys + ([flag_key] if flag_key else [])
    ds = odc.stac.load(
        items,
        bands=load_keys,
        chunks={"y": ch["y"], "x": ch["x"]},
        resampling="nearest",
        groupby="time",
        fail_on_error=True,
    )
    refl = da.stack([ds[k].data for k in data_keys], axis=1).rechunk({1: -1})
    flag = _stac_flag(ds, flag_key, fill, no_flag, ch)
    crs = ds.odc.geobox.crs
    transform = ds.odc.geobox.transform
    dates = list(pd.to_datetime(ds["time"].values))
    return _assemble(
        refl,
        flag,
        dates,
        [norm_band(k) for k in data_keys],
        rasterio.crs.CRS.from_user_input(str(crs)),
        transform,
        str(src) if isinstance(src, (str, Path)) else "stac",
    )


def _stac_asset_keys(items: list, src: Any, bands: Sequence[str] | None) -> tuple[str | None, list[str]]:
    """Return (the SCL/FLAG asset key or None, the raster band asset keys, in `bands` order when given)."""
    keys: list[str] = []
    for it in items:
        for k, a in it.assets.items():
            if k not in keys and (
                a.media_type is None
                or "tiff" in a.media_type
                or "jp2" in a.media_type
                or "geotiff" in str(a.media_type)
            ):
                keys.append(k)
    flag_key = next((k for k in keys if k.upper() in ("SCL", "FLAG")), None)
    data_keys = [k for k in keys if k != flag_key]
    if bands is not None:
        want = [norm_band(b) for b in bands]
        by_norm = {norm_band(k): k for k in data_keys}
        missing = [b for b in want if b not in by_norm]
        if missing:
            raise ValueError(f"STAC source {src}: bands {missing} not found; assets: {data_keys}")
        data_keys = [by_norm[b] for b in want]
    return flag_key, data_keys


def _check_stac_items(items: list, data_keys: list[str]) -> None:
    """Raise ValueError for an item lacking a band asset or any CRS (item or asset `proj:*`)."""
    for it in items:
        lacking = [k for k in data_keys if k not in it.assets]
        if lacking:
            raise ValueError(f"STAC item {it.id}: assets {lacking} missing (other items have them)")
        if (
            it.properties.get("proj:epsg") is None
            and it.properties.get("proj:code") is None
            and it.properties.get("proj:wkt2") is None
        ):
            asset_proj = [
                a.extra_fields.get("proj:epsg") or a.extra_fields.get("proj:code") for a in it.assets.values()
            ]
            if not any(asset_proj):
                raise ValueError(f"STAC item {it.id}: no CRS (proj:epsg / proj:code); the cube needs one")


def _stac_flag(ds: xr.Dataset, flag_key: str | None, fill: Any, no_flag: list, ch: dict[str, int]) -> da.Array:
    """Return the loaded cube's flag (time, y, x): SCL mapped to eokit flags, `fill` where an item has none."""
    if flag_key is not None:
        fl = ds[flag_key].data
        flag = scl_to_flag(fl) if flag_key.upper() == "SCL" else fl.astype(np.uint8)
        if fill is not None:  # items without the asset (no_flag): the fill the missing_flags policy chose
            times = pd.DatetimeIndex(ds["time"].values)
            lacking = da.from_array(np.asarray(times.isin(pd.DatetimeIndex(no_flag)))[:, None, None])
            flag = da.where(lacking, np.uint8(fill), flag).astype(np.uint8)
        return flag
    return da.full((ds.sizes["time"], ds.sizes["y"], ds.sizes["x"]), fill, dtype=np.uint8, chunks=(1, ch["y"], ch["x"]))


# --- common ---------------------------------------------------------------------------------------


def _assemble(
    refl: da.Array, flag: da.Array, dates: Iterable, band_names: list[str], crs: Any, transform: Any, source: str
) -> xr.Dataset:
    from affine import Affine

    t = Affine(*transform[:6]) if not isinstance(transform, Affine) else transform
    if t.b != 0 or t.d != 0:
        raise ValueError(f"{source}: rotated grids are not supported (transform {tuple(t)[:6]})")
    nt, nb, ny, nx = refl.shape
    xs = t.c + t.a * (np.arange(nx) + 0.5)
    ys = t.f + t.e * (np.arange(ny) + 0.5)
    ds = xr.Dataset(
        {
            "reflectance": (("time", "band", "y", "x"), refl),
            "flag": (("time", "y", "x"), flag.astype(np.uint8)),
        },
        coords={
            "time": pd.DatetimeIndex(list(dates)).values.astype("datetime64[ns]"),
            "band": list(band_names),
            "y": ys,
            "x": xs,
        },
        attrs={"source": source},
    )
    if crs is None:
        raise ValueError(f"{source}: the cube has no CRS")
    ds = ds.rio.write_crs(crs).rio.write_transform(t)
    ds["reflectance"].attrs["grid_mapping"] = "spatial_ref"
    ds["flag"].attrs["grid_mapping"] = "spatial_ref"
    return ds

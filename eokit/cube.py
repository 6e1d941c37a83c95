"""Sentinel-2 image time series as a lazy, dask-backed xarray cube (time, band, y, x) with a CRS.

Three sources are understood by :func:`open`:

* a folder of GeoTIFFs, one file per date (all bands) or per date and band; the date comes from the file
  name (``YYYYMMDD`` or ``YYYYMMDDTHHMMSS``) or the ``ACQUISITION_DATE`` tag, band names from the band
  descriptions (or, for single-band files without one, from the file name). ``SCL_<date>.tif`` files are
  Sentinel-2 scene classifications mapped through :data:`eokit.schema.SCL_TO_FLAG`; ``FLAG_<date>.tif``
  files already hold TimeSen2Crop flag codes; a date without either is all clear.
* Sentinel-2 L2A ``.SAFE`` products (a ``.SAFE`` folder or a folder holding several): JPEG 2000 bands at
  10 m, 20 m bands brought to the 10 m grid (nearest neighbour, each 20 m pixel covers 2 x 2 pixels of
  10 m), ``SCL_20m`` mapped to flags; products of processing baseline 04.00 and later get their
  ``BOA_ADD_OFFSET`` (from ``MTD_MSIL2A.xml``) added, so values are reflectance x 10000 as before (int16).
* a STAC catalog (a ``catalog.json``/``collection.json`` path, a :class:`pystac.Catalog`, an
  ``ItemCollection`` or a list of items) loaded lazily with ``odc.stac.load``; an ``SCL`` asset becomes the
  flags, a ``FLAG`` asset is taken as flag codes.
"""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

import dask.array as da
import numpy as np
import pandas as pd
import rasterio
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from eokit.schema import FLAG_CLEAR, FLAG_NODATA, SCL_TO_FLAG, TS2C_BANDS

__all__ = ["open", "scl_to_flag", "DEFAULT_CHUNK"]

#: Default spatial chunk (pixels along y and x).
DEFAULT_CHUNK = 512

_DATE_RE = re.compile(r"(?<!\d)(\d{8})(?:T(\d{6}))?(?!\d)")
_TIF_SUFFIXES = {".tif", ".tiff"}
_SAFE_BAND_RE = re.compile(r"_(B\d{2}|B8A|SCL)_(\d{2})m\.jp2$", re.IGNORECASE)
#: Lookup table SCL value -> flag code (all 256 values; SCL values not in SCL_TO_FLAG are clear).
_SCL_LUT = np.zeros(256, dtype=np.uint8)
for _k, _v in SCL_TO_FLAG.items():
    _SCL_LUT[_k] = _v


def scl_to_flag(scl: Any) -> Any:
    """Return TimeSen2Crop flag codes (uint8) for an array of Sentinel-2 SCL values (numpy or dask)."""
    if isinstance(scl, da.Array):
        return scl.map_blocks(_scl_block, dtype=np.uint8)
    return _scl_block(np.asarray(scl))


def _scl_block(block: np.ndarray) -> np.ndarray:
    return _SCL_LUT[np.clip(block, 0, 255).astype(np.intp)]


def _norm_band(name: str) -> str:
    """Sentinel-2 style names without the leading zero (B02 -> B2, B8A stays); others unchanged."""
    m = re.fullmatch(r"[Bb]0?(\d{1,2}|8[Aa])", name.strip())
    if m:
        return "B" + m.group(1).upper()
    return name.strip()


_S2_ORDER = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]


def _band_key(name: str) -> tuple[int, str]:
    return (_S2_ORDER.index(name), "") if name in _S2_ORDER else (len(_S2_ORDER), name)


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


def open(  # noqa: A001  (module-level verb, used as eokit.cube.open)
    path_or_catalog: Any,
    chunks: int | dict[str, int] | None = None,
    bands: Sequence[str] | None = None,
) -> xr.Dataset:
    """Return the image cube: ``reflectance`` (time, band, y, x) dask-backed and ``flag`` (time, y, x) uint8."""
    src = path_or_catalog
    ch = _chunks(chunks)
    if _is_stac(src):
        return _open_stac(src, ch, bands)
    if isinstance(src, (list, tuple)) and src and all(str(p).rstrip("/").endswith(".SAFE") for p in src):
        return _open_safe([Path(p) for p in src], ch, bands)
    path = Path(src)
    if not path.exists():
        raise FileNotFoundError(f"cube source {path} does not exist")
    if path.is_file() and path.suffix.lower() == ".json":
        return _open_stac(path, ch, bands)
    if path.is_dir() and path.name.endswith(".SAFE"):
        return _open_safe([path], ch, bands)
    if path.is_dir():
        safes = sorted(p for p in path.iterdir() if p.is_dir() and p.name.endswith(".SAFE"))
        if safes:
            return _open_safe(safes, ch, bands)
        for name in ("catalog.json", "collection.json"):
            if (path / name).is_file() and not any(p.suffix.lower() in _TIF_SUFFIXES for p in path.iterdir()):
                return _open_stac(path / name, ch, bands)
        return _open_tif_folder(path, ch, bands)
    raise ValueError(
        f"cannot open {path} as a cube: expected a folder of GeoTIFFs, a .SAFE folder (or a folder of them) "
        "or a STAC catalog.json"
    )


# --- GeoTIFF folders ------------------------------------------------------------------------------


def _date_from_name(name: str) -> pd.Timestamp | None:
    m = _DATE_RE.search(name)
    if not m:
        return None
    try:
        return pd.Timestamp(m.group(1) + ("T" + m.group(2) if m.group(2) else ""))
    except ValueError:
        return None


def _file_date(path: Path, tags: dict[str, str]) -> pd.Timestamp:
    d = _date_from_name(path.stem)
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
                raise ValueError(f"{path}: tag {key}={tags[key]!r} is not a date") from exc
    raise ValueError(
        f"{path}: no acquisition date found; expected YYYYMMDD or YYYYMMDDTHHMMSS in the file name "
        "or an ACQUISITION_DATE tag"
    )


def _name_band(path: Path) -> str:
    stem = _DATE_RE.sub("", path.stem)
    tokens = [t for t in re.split(r"[_\-.]+", stem) if t]
    return _norm_band(tokens[-1]) if tokens else "band"


def _kind(path: Path) -> str:
    up = path.name.upper()
    if up.startswith("SCL"):
        return "scl"
    if up.startswith("FLAG"):
        return "flag"
    return "data"


def _open_tif_folder(folder: Path, ch: dict[str, int], bands: Sequence[str] | None) -> xr.Dataset:
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _TIF_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{folder}: no GeoTIFF (*.tif) files found")
    data: dict[pd.Timestamp, list[tuple[Path, list[str]]]] = defaultdict(list)
    flags: dict[pd.Timestamp, tuple[str, Path]] = {}
    grid = None
    undated: list[tuple[Path, ValueError]] = []
    for p in files:
        with rasterio.open(p) as src:
            tags = src.tags()
            g = (src.crs, src.transform, src.width, src.height)
            descs = list(src.descriptions)
            count = src.count
        if g[0] is None:
            raise ValueError(f"{p}: the file has no CRS; the cube needs georeferenced images")
        if grid is None:
            grid = (p, g)
        else:
            _check_same_grid(grid[0], grid[1], p, g)
        try:
            date = _file_date(p, tags)
        except ValueError as exc:
            undated.append((p, exc))
            continue
        kind = _kind(p)
        if kind in ("scl", "flag"):
            if count != 1:
                raise ValueError(f"{p}: a {kind.upper()} file must have 1 band, it has {count}")
            if date in flags:
                raise ValueError(f"{p}: a second flag/SCL file for {date.date()} (first: {flags[date][1]})")
            flags[date] = (kind, p)
            continue
        if count == 1 and not descs[0]:
            names = [_name_band(p)]
        else:
            names = [_norm_band(d) if d else f"band_{i + 1}" for i, d in enumerate(descs)]
        data[date].append((p, names))
    if undated:
        if not data:
            raise undated[0][1]
        warnings.warn(f"{folder}: {[p.name for p, _ in undated]} have no acquisition date; not part of the "
                      "time series, skipped", stacklevel=3)
    if not data:
        raise FileNotFoundError(f"{folder}: only SCL/FLAG files found, no image files")
    for d in flags:
        if d not in data:
            raise ValueError(f"{flags[d][1]}: flag file for {d} but no image file for that date in {folder}")
    dates = sorted(data)
    # band set per date
    band_order: list[str] | None = None
    for d in dates:
        names = [n for _, ns in data[d] for n in ns]
        if len(set(names)) != len(names):
            raise ValueError(f"{folder}: date {d} has repeated band names {names}")
        if band_order is None:
            band_order = names
        elif sorted(names) != sorted(band_order):
            raise ValueError(
                f"{folder}: date {d} has bands {sorted(names)} but {dates[0]} has {sorted(band_order)}; "
                "every date needs the same bands"
            )
    assert band_order is not None and grid is not None
    if len(data[dates[0]]) > 1:  # one file per band: order the bands the Sentinel-2 way, others by name
        band_order = sorted(band_order, key=_band_key)
    if bands is not None:
        want = [_norm_band(b) for b in bands]
        missing = [b for b in want if b not in band_order]
        if missing:
            raise ValueError(f"{folder}: bands {missing} not found; available: {band_order}")
        band_order = want
    crs, transform, width, height = grid[1]
    ref_arrays = []
    flag_arrays = []
    for d in dates:
        pieces = []
        nodata_masks = []
        for p, names in data[d]:
            arr = _lazy_read(p, ch)
            pieces.append((arr, names))
            if d not in flags:  # SCL/FLAG files already say where there is no data
                with rasterio.open(p) as src:
                    nd = src.nodata
                if nd is not None:
                    nodata_masks.append(da.all(_is_nodata(arr, nd), axis=0))
        if len(pieces) == 1:  # one file, all bands: select them in one indexing step, chunks stay whole
            arr, names = pieces[0]
            pick = [names.index(b) for b in band_order]
            ref_arrays.append(arr if pick == list(range(len(names))) else arr[pick])
        else:
            where = {n: (arr, i) for arr, names in pieces for i, n in enumerate(names)}
            ref_arrays.append(da.stack([where[b][0][where[b][1]] for b in band_order]))
        if d in flags:
            kind, fp = flags[d]
            fa = _lazy_read(fp, ch)[0]
            f = scl_to_flag(fa) if kind == "scl" else fa.astype(np.uint8)
        else:
            f = da.full((height, width), FLAG_CLEAR, dtype=np.uint8, chunks=(ch["y"], ch["x"]))
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
    return _assemble(refl, da.stack(flag_arrays), dates, band_order, crs, transform, str(folder))


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


def _lazy_read(path: Path, ch: dict[str, int]) -> da.Array:
    """A dask array (band, y, x) reading `path` window by window."""
    arr = rioxarray.open_rasterio(path, chunks={"band": -1, "y": ch["y"], "x": ch["x"]}, lock=False,
                                  mask_and_scale=False)
    return arr.data


# --- Sentinel-2 L2A SAFE --------------------------------------------------------------------------


def _safe_files(safe: Path) -> tuple[pd.Timestamp, dict[str, dict[int, Path]]]:
    d = _date_from_name(safe.name)
    if d is None:
        raise ValueError(f"{safe}: SAFE name has no acquisition date (expected S2?_MSIL2A_YYYYMMDDTHHMMSS_...)")
    granules = sorted((safe / "GRANULE").glob("*/IMG_DATA"))
    if len(granules) != 1:
        raise ValueError(f"{safe}: expected one GRANULE/*/IMG_DATA folder, found {len(granules)}")
    found: dict[str, dict[int, Path]] = defaultdict(dict)
    for jp2 in granules[0].rglob("*.jp2"):
        m = _SAFE_BAND_RE.search(jp2.name)
        if m:
            found[_norm_band(m.group(1)) if m.group(1).upper() != "SCL" else "SCL"][int(m.group(2))] = jp2
    if not found:
        raise FileNotFoundError(f"{granules[0]}: no *_Bxx_NNm.jp2 band files found")
    return d, found


def _boa_offsets(safe: Path) -> dict[str, int]:
    """Band name -> BOA_ADD_OFFSET from MTD_MSIL2A.xml (empty before processing baseline 04.00)."""
    mtd = safe / "MTD_MSIL2A.xml"
    if not mtd.is_file():
        return {}
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(mtd).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{mtd}: not readable XML ({exc})") from exc
    out = {}
    for el in root.iter():
        if el.tag.split("}")[-1] == "BOA_ADD_OFFSET":
            try:
                out[_S2_ORDER[int(el.get("band_id", ""))]] = int(float(el.text or "0"))
            except (ValueError, IndexError) as exc:
                raise ValueError(f"{mtd}: BOA_ADD_OFFSET with band_id={el.get('band_id')!r} "
                                 f"and value {el.text!r} is not understood") from exc
    return out


def _open_safe(safes: list[Path], ch: dict[str, int], bands: Sequence[str] | None) -> xr.Dataset:
    products = sorted((_safe_files(s) + (s,) for s in safes), key=lambda t: t[0])
    want = [_norm_band(b) for b in (bands if bands is not None else TS2C_BANDS)]
    ref_grid = None
    ref_arrays, flag_arrays, dates = [], [], []
    for date, found, safe in products:
        missing = [b for b in want if b not in found]
        if missing:
            raise ValueError(f"{safe}: bands {missing} not found; available: {sorted(found)}")
        # the 10 m grid: from a 10 m band if any, else the finest available
        res_avail = sorted({r for b in want for r in found[b]} | set(found.get("SCL", {})))
        target_res = res_avail[0]
        grid_file = next(found[b][target_res] for b in list(found) if target_res in found[b])
        with rasterio.open(grid_file) as src:
            if src.crs is None:
                raise ValueError(f"{grid_file}: the file has no CRS")
            grid = (src.crs, src.transform, src.width, src.height)
        if ref_grid is None:
            ref_grid = (grid_file, grid)
        elif grid != ref_grid[1]:
            raise ValueError(
                f"{safe}: its grid ({grid[0]}, {grid[1].c},{grid[1].f}, {grid[2]}x{grid[3]}) differs from "
                f"{ref_grid[0]}; open products of one tile at a time"
            )
        layers = [_safe_band(found[b], target_res, grid, ch, safe, b) for b in want]
        offsets = _boa_offsets(safe)
        if offsets:  # processing baseline >= 04.00: reflectance = (DN + BOA_ADD_OFFSET) / 10000
            layers = [da.clip(a.astype(np.int32) + offsets.get(b, 0), -32768, 32767).astype(np.int16)
                      for a, b in zip(layers, want)]
        ref_arrays.append(da.stack(layers))
        if "SCL" in found:
            flag_arrays.append(scl_to_flag(_safe_band(found["SCL"], target_res, grid, ch, safe, "SCL")))
        else:
            flag_arrays.append(da.full((grid[3], grid[2]), FLAG_CLEAR, dtype=np.uint8,
                                       chunks=(ch["y"], ch["x"])))
        dates.append(date)
    if len(set(dates)) != len(dates):
        raise ValueError(f"two SAFE products share an acquisition time: {sorted(map(str, dates))}")
    assert ref_grid is not None
    crs, transform, _, _ = ref_grid[1]
    refl = da.stack(ref_arrays).rechunk({1: -1})
    src_name = str(safes[0].parent if len(safes) > 1 else safes[0])
    ds = _assemble(refl, da.stack(flag_arrays), dates, want, crs, transform, src_name)
    tiles = {m.group(1) for s in safes if (m := re.search(r"_T(\d{2}[A-Z]{3})_", s.name))}
    if len(tiles) == 1:
        ds.attrs["tile"] = tiles.pop()
    return ds


def _safe_band(by_res: dict[int, Path], target_res: int, grid: tuple, ch: dict[str, int], safe: Path,
               band: str) -> da.Array:
    """The band on the target grid: native file if available, else the finest one upsampled by repetition."""
    crs, transform, width, height = grid
    if target_res in by_res:
        return _lazy_read(by_res[target_res], ch)[0]
    res = min(by_res)
    path = by_res[res]
    factor = res / target_res
    if factor != int(factor):
        raise ValueError(f"{path}: {res} m cannot be brought to {target_res} m by an integer factor")
    factor = int(factor)
    with rasterio.open(path) as src:
        if src.crs != crs or (src.transform.c, src.transform.f) != (transform.c, transform.f):
            raise ValueError(f"{path}: not aligned with the {target_res} m grid of {safe}")
    coarse = _lazy_read(path, {"y": max(1, ch["y"] // factor), "x": max(1, ch["x"] // factor)})[0]
    fine = da.repeat(da.repeat(coarse, factor, axis=0), factor, axis=1)
    if fine.shape != (height, width):
        if fine.shape[0] < height or fine.shape[1] < width:
            raise ValueError(f"{path}: {band} covers {fine.shape} at {target_res} m, grid is {(height, width)}")
        fine = fine[:height, :width]
    return fine.rechunk((ch["y"], ch["x"]))


# --- STAC -----------------------------------------------------------------------------------------


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


def _open_stac(src: Any, ch: dict[str, int], bands: Sequence[str] | None) -> xr.Dataset:
    import odc.stac

    items = _stac_items(src)
    if not items:
        raise ValueError(f"STAC source {src}: no items found")
    keys: list[str] = []
    for it in items:
        for k, a in it.assets.items():
            if k not in keys and (a.media_type is None or "tiff" in a.media_type or "jp2" in a.media_type
                                  or "geotiff" in str(a.media_type)):
                keys.append(k)
    flag_key = next((k for k in keys if k.upper() in ("SCL", "FLAG")), None)
    data_keys = [k for k in keys if k != flag_key]
    if bands is not None:
        want = [_norm_band(b) for b in bands]
        by_norm = {_norm_band(k): k for k in data_keys}
        missing = [b for b in want if b not in by_norm]
        if missing:
            raise ValueError(f"STAC source {src}: bands {missing} not found; assets: {data_keys}")
        data_keys = [by_norm[b] for b in want]
    for it in items:
        lacking = [k for k in data_keys if k not in it.assets]
        if lacking:
            raise ValueError(f"STAC item {it.id}: assets {lacking} missing (other items have them)")
        if it.properties.get("proj:epsg") is None and it.properties.get("proj:code") is None \
                and it.properties.get("proj:wkt2") is None:
            asset_proj = [a.extra_fields.get("proj:epsg") or a.extra_fields.get("proj:code")
                          for a in it.assets.values()]
            if not any(asset_proj):
                raise ValueError(f"STAC item {it.id}: no CRS (proj:epsg / proj:code); the cube needs one")
    load_keys = data_keys + ([flag_key] if flag_key else [])
    ds = odc.stac.load(items, bands=load_keys, chunks={"y": ch["y"], "x": ch["x"]}, resampling="nearest",
                       groupby="time", fail_on_error=True)
    refl = da.stack([ds[k].data for k in data_keys], axis=1).rechunk({1: -1})
    if flag_key is not None:
        fl = ds[flag_key].data
        flag = scl_to_flag(fl) if flag_key.upper() == "SCL" else fl.astype(np.uint8)
    else:
        flag = da.zeros((ds.sizes["time"], ds.sizes["y"], ds.sizes["x"]), dtype=np.uint8,
                        chunks=(1, ch["y"], ch["x"]))
    crs = ds.odc.geobox.crs
    transform = ds.odc.geobox.transform
    dates = list(pd.to_datetime(ds["time"].values))
    return _assemble(refl, flag, dates, [_norm_band(k) for k in data_keys], rasterio.crs.CRS.from_user_input(
        str(crs)), transform, str(src) if isinstance(src, (str, Path)) else "stac")


# --- common ---------------------------------------------------------------------------------------


def _assemble(refl: da.Array, flag: da.Array, dates: Iterable, band_names: list[str], crs: Any,
              transform: Any, source: str) -> xr.Dataset:
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
        coords={"time": pd.DatetimeIndex(list(dates)).values.astype("datetime64[ns]"), "band": list(band_names),
                "y": ys, "x": xs},
        attrs={"source": source},
    )
    if crs is None:
        raise ValueError(f"{source}: the cube has no CRS")
    ds = ds.rio.write_crs(crs).rio.write_transform(t)
    ds["reflectance"].attrs["grid_mapping"] = "spatial_ref"
    ds["flag"].attrs["grid_mapping"] = "spatial_ref"
    return ds

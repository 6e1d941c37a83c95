"""Sentinel-2 conventions (band names, SCL classes, dates in names) and Level-2A ``.SAFE`` products, for the cube.

A product's JPEG 2000 bands are found in ``GRANULE/*/IMG_DATA`` (any letter case) per band and resolution; the
product metadata (``MTD_MSIL2A.xml``, any letter case, or the older ``S2x_USER_MTD_SAFL2A_*.xml``) gives the
processing baseline (``PROCESSING_BASELINE``; the ``_Nxxxx_`` part of the product name says it too) and, from
baseline 04.00 on, ``BOA_ADD_OFFSET`` per band and ``BOA_QUANTIFICATION_VALUE``: values are read as
(DN + offset) x 10000 / quantification, i.e. reflectance x 10000 (int16). A product of baseline 04.00 or later
whose offsets cannot be read is refused. :func:`scan_safe` checks a set of products and picks the finest grid;
:func:`read_safe` returns their lazy reflectance and flags on it (``eokit.cube.open`` assembles the cube).
"""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import dask.array as da
import numpy as np
import pandas as pd

from eokit.rasterfiles import lazy_read, raster_info
from eokit.schema import FLAG_NODATA, SCL_TO_FLAG, TS2C_BANDS

__all__ = [
    "DATE_RE",
    "S2_ORDER",
    "SafeScan",
    "band_key",
    "date_from_name",
    "date_text",
    "norm_band",
    "read_safe",
    "scan_safe",
    "scl_to_flag",
]

S2_ORDER = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]

#: A date (YYYYMMDD, optionally THHMMSS) inside a file or product name.
DATE_RE = re.compile(r"(?<!\d)(\d{8})(?:T(\d{6}))?(?!\d)")
_SAFE_BAND_RE = re.compile(r"_(B\d{2}|B8A|SCL)_(\d{2})m\.jp2$", re.IGNORECASE)
#: Product metadata: MTD_MSIL2A.xml (PSD 14 and later, any letter case) or the older S2x_USER_MTD_SAFL2A_*.xml.
_L2A_MTD_RE = re.compile(r"^(MTD_MSIL2A|S2[A-Z]_(USER|OPER)_MTD_SAFL2A_.*)\.xml$", re.IGNORECASE)
#: Finest resolution at which L2A delivers each band (ESA Sentinel-2 Products Specification, PSD).
_NATIVE_RES = {
    "B1": 60,
    "B2": 10,
    "B3": 10,
    "B4": 10,
    "B5": 20,
    "B6": 20,
    "B7": 20,
    "B8": 10,
    "B8A": 20,
    "B9": 60,
    "B11": 20,
    "B12": 20,
    "SCL": 20,
}
_BASELINE_04 = (4, 0)
_LOCAL_BASELINE = (99, 99)  # N9999: processed by a user's Sen2Cor, baseline not stated
_FIRST_04_ACQUISITION = pd.Timestamp("2022-01-25")  # ESA switched production to baseline 04.00 that day
#: Lookup table SCL value -> flag code (all 256 values; SCL values not in SCL_TO_FLAG are clear).
_SCL_LUT = np.zeros(256, dtype=np.uint8)
for _k, _v in SCL_TO_FLAG.items():
    _SCL_LUT[_k] = _v


def scl_to_flag(scl: Any) -> Any:
    """Return TimeSen2Crop flag codes (uint8) for an array of Sentinel-2 SCL values (numpy or dask)."""
    if isinstance(scl, da.Array):
        return da.map_blocks(_scl_block, scl, dtype=np.uint8)
    return _scl_block(np.asarray(scl))


def _scl_block(block: np.ndarray) -> np.ndarray:
    return _SCL_LUT[np.clip(block, 0, 255).astype(np.intp)]


def norm_band(name: str) -> str:
    """Sentinel-2 style names without the leading zero (B02 -> B2, B8A stays); others unchanged."""
    m = re.fullmatch(r"[Bb]0?(\d{1,2}|8[Aa])", name.strip())
    if m:
        return "B" + m.group(1).upper()
    return name.strip()


def band_key(name: str) -> tuple[int, str]:
    """Return the sort key of a band name: Sentinel-2 order, other names after them by name."""
    return (S2_ORDER.index(name), "") if name in S2_ORDER else (len(S2_ORDER), name)


def date_from_name(name: str) -> pd.Timestamp | None:
    """The first valid date in `name`; None if it holds no date-like digits; ValueError if they are no date."""
    bad = []
    for m in DATE_RE.finditer(name):
        text = m.group(1) + ("T" + m.group(2) if m.group(2) else "")
        try:
            return pd.Timestamp(pd.to_datetime(text, format="%Y%m%dT%H%M%S" if m.group(2) else "%Y%m%d"))
        except ValueError:
            bad.append(text)
    if bad:
        raise ValueError(f"{bad[0]!r} in the name {name!r} is not a valid date; expected YYYYMMDD or YYYYMMDDTHHMMSS")
    return None


def date_text(d: pd.Timestamp) -> str:
    """Return the date (YYYY-MM-DD), or the ISO time when it is not midnight."""
    return str(d.date()) if d == d.normalize() else d.isoformat()


# --- Level-2A SAFE products -------------------------------------------------------------------------


def _child_ci(folder: Path, name: str) -> Path | None:
    """The entry of `folder` called `name` in any letter case (None if absent); two candidates are refused."""
    if not folder.is_dir():
        return None
    hits = [p for p in folder.iterdir() if p.name.lower() == name.lower()]
    if len(hits) > 1:
        raise ValueError(f"{folder}: {sorted(p.name for p in hits)} differ only in letter case; expected one")
    return hits[0] if hits else None


def _safe_files(safe: Path) -> tuple[pd.Timestamp, dict[str, dict[int, Path]]]:
    try:
        d = date_from_name(safe.name)
    except ValueError as exc:
        raise ValueError(f"{safe}: {exc}") from exc
    if d is None:
        raise ValueError(f"{safe}: SAFE name has no acquisition date (expected S2?_MSIL2A_YYYYMMDDTHHMMSS_...)")
    gran_root = _child_ci(safe, "GRANULE")
    granules = (
        []
        if gran_root is None
        else sorted(img for g in gran_root.iterdir() if g.is_dir() and (img := _child_ci(g, "IMG_DATA")) is not None)
    )
    if len(granules) != 1:
        raise ValueError(f"{safe}: expected one GRANULE/*/IMG_DATA folder, found {len(granules)}")
    found: dict[str, dict[int, Path]] = defaultdict(dict)
    for jp2 in sorted(granules[0].rglob("*")):
        m = _SAFE_BAND_RE.search(jp2.name)
        if m and jp2.is_file():
            band = norm_band(m.group(1)) if m.group(1).upper() != "SCL" else "SCL"
            res = int(m.group(2))
            if res in found[band]:
                raise ValueError(f"{jp2}: a second {band} file at {res} m (first: {found[band][res]}); expected one")
            found[band][res] = jp2
    if not found:
        raise FileNotFoundError(f"{granules[0]}: no *_Bxx_NNm.jp2 band files found")
    return d, found


def _parse_baseline(text: str, where: str) -> tuple[int, int]:
    m = re.fullmatch(r"\s*(\d{1,2})\.(\d{2})\s*", text or "")
    if not m:
        raise ValueError(f"{where}: PROCESSING_BASELINE {text!r} is not understood; expected NN.NN (e.g. 04.00)")
    return int(m.group(1)), int(m.group(2))


def _safe_metadata(safe: Path) -> dict[str, Any]:
    """What the product says about its radiometry: metadata file, baselines, offsets (band -> int), quantification."""
    m = re.search(r"_N(\d{2})(\d{2})(?:_|\.|$)", safe.name)
    out: dict[str, Any] = {
        "file": None,
        "name_baseline": (int(m.group(1)), int(m.group(2))) if m else None,
        "baseline": None,
        "offsets": None,
        "quantification": None,
        "offset_ids": None,
    }
    mtds = [p for p in safe.iterdir() if p.is_file() and _L2A_MTD_RE.match(p.name)]
    if len(mtds) > 1:
        raise ValueError(
            f"{safe}: several product metadata files {sorted(p.name for p in mtds)}; expected one MTD_MSIL2A.xml"
        )
    if not mtds:
        return out
    import xml.etree.ElementTree as ET

    mtd = out["file"] = mtds[0]
    try:
        root = ET.parse(mtd).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{mtd}: not readable XML ({exc}); expected the L2A product metadata") from exc
    by_name: dict[str, list] = defaultdict(list)
    for el in root.iter():
        by_name[el.tag.split("}")[-1]].append(el)
    if by_name.get("PROCESSING_BASELINE"):
        out["baseline"] = _parse_baseline(by_name["PROCESSING_BASELINE"][0].text or "", str(mtd))
    if by_name.get("BOA_QUANTIFICATION_VALUE"):
        text = by_name["BOA_QUANTIFICATION_VALUE"][0].text
        try:
            q = float(text or "")
        except ValueError:
            q = -1.0
        if not q > 0:
            raise ValueError(
                f"{mtd}: BOA_QUANTIFICATION_VALUE {text!r} is not understood; expected a positive number (10000)"
            )
        out["quantification"] = q
    if by_name.get("BOA_ADD_OFFSET_VALUES_LIST") or by_name.get("BOA_ADD_OFFSET"):
        out["offsets"], out["offset_ids"] = _boa_offsets(mtd, by_name)
    return out


def _boa_offsets(mtd: Path, by_name: dict[str, list]) -> tuple[dict[str, int], dict[str, str]]:
    """Band name -> BOA_ADD_OFFSET, band name -> its band_id; band_id resolved through Spectral_Information."""
    physical = {}
    for el in by_name.get("Spectral_Information", []):
        if el.get("bandId") is not None and el.get("physicalBand"):
            physical[el.get("bandId").strip()] = norm_band(el.get("physicalBand"))
    out: dict[str, int] = {}
    ids: dict[str, str] = {}
    for el in by_name.get("BOA_ADD_OFFSET", []):
        bid = (el.get("band_id") or "").strip()
        band = physical.get(bid)
        if band is None and bid.isdigit() and int(bid) < len(S2_ORDER):
            band = S2_ORDER[int(bid)]
        try:
            value = float((el.text or "").strip())
        except ValueError:
            value = float("nan")
        if band is None or not np.isfinite(value) or value != int(value):
            raise ValueError(
                f"{mtd}: BOA_ADD_OFFSET with band_id={el.get('band_id')!r} and value {el.text!r} is not "
                "understood; expected band_id 0..12 (B01..B12 with B8A after B08) and an integer"
            )
        if band in out:
            raise ValueError(f"{mtd}: BOA_ADD_OFFSET given twice for {band} (band_id={bid!r}); expected once")
        out[band] = int(value)
        ids[band] = bid
    return out, ids


def _safe_radiometry(safe: Path, date: pd.Timestamp, want: Sequence[str]) -> tuple[dict[str, int], float]:
    """(band -> BOA_ADD_OFFSET, quantification) to apply; refuses a product of baseline >= 04.00 without them."""
    meta = _safe_metadata(safe)
    mtd, name_b, mtd_b = meta["file"], meta["name_baseline"], meta["baseline"]
    where = mtd if mtd is not None else safe
    known = [b for b in (name_b, mtd_b) if b is not None and b != _LOCAL_BASELINE]
    if len(known) == 2 and (name_b >= _BASELINE_04) != (mtd_b >= _BASELINE_04):  # known == [name_b, mtd_b]
        raise ValueError(
            f"{mtd}: PROCESSING_BASELINE {mtd_b[0]:02d}.{mtd_b[1]:02d} contradicts the product name "
            f"{safe.name} (N{name_b[0]:02d}{name_b[1]:02d}); expected the same processing baseline "
            "in both (the BOA_ADD_OFFSET depends on it)"
        )
    offsets = meta["offsets"]
    needs = any(b >= _BASELINE_04 for b in known) or (not known and date >= _FIRST_04_ACQUISITION)
    if needs:
        said = (
            f"processing baseline {max(known)[0]:02d}.{max(known)[1]:02d}"
            if known
            else f"an acquisition on {date.date()} (from {_FIRST_04_ACQUISITION.date()} on: baseline 04.00 or later)"
        )
        if mtd is None:
            raise ValueError(
                f"{safe}: {said} needs BOA_ADD_OFFSET from the product metadata, but no MTD_MSIL2A.xml "
                "was found in the product folder; never read without it"
            )
        if offsets is None:
            raise ValueError(
                f"{mtd}: {said} but no BOA_ADD_OFFSET_VALUES_LIST/BOA_ADD_OFFSET (in "
                "General_Info/Product_Image_Characteristics); expected one offset per band"
            )
    if offsets is not None:
        lacking = [b for b in want if b not in offsets]
        if lacking:
            raise ValueError(
                f"{where}: no BOA_ADD_OFFSET for bands {lacking} (band_id "
                f"{[S2_ORDER.index(b) for b in lacking if b in S2_ORDER]}); found band_ids "
                f"{sorted(meta['offset_ids'].values(), key=lambda s: (len(s), s))}; expected one per band"
            )
    elif not known:
        why = (
            "N9999: processed locally by Sen2Cor"
            if _LOCAL_BASELINE in (name_b, mtd_b)
            else "no _Nxxxx_ in the name, no PROCESSING_BASELINE"
        )
        warnings.warn(
            f"{safe}: processing baseline unknown ({why}) and no BOA_ADD_OFFSET: DN read as reflectance "
            "x 10000, which is right for baselines before 04.00",
            UserWarning,
            stacklevel=5,
        )
    return offsets or {}, meta["quantification"] or 10000.0


def _safe_target(products: list, want: Sequence[str]) -> tuple[int, Path]:
    """The finest resolution of any wanted band (or SCL) in any product, and a file on that grid."""
    best = None
    for _, found, _safe in products:
        for b in list(want) + ["SCL"]:
            for res, p in found.get(b, {}).items():
                if best is None or res < best[0]:
                    best = (res, p)
    assert best is not None
    return best


def _warn_coarse(products: list, want: Sequence[str], target_res: int) -> None:
    """One warning per set of bands that some products lack at their native resolution."""
    groups: dict[tuple, list[str]] = defaultdict(list)
    for _, found, safe in products:
        coarse = tuple((b, min(found[b])) for b in want if b in found and min(found[b]) > _NATIVE_RES.get(b, 0))
        if coarse:
            groups[coarse].append(safe.name)
    for coarse, names in groups.items():
        desc = ", ".join(f"{b} (native {_NATIVE_RES[b]} m, found at {r} m)" for b, r in coarse)
        shown = ", ".join(names[:5]) + (f", ... ({len(names)} products)" if len(names) > 5 else "")
        lacking_10 = [b for b, _ in coarse if _NATIVE_RES[b] == 10]
        why = f"; no 10 m file (R10m) for {lacking_10}" if lacking_10 else ""
        warnings.warn(
            f"{shown}: bands missing at their native resolution: {desc}{why}; they are mapped onto the "
            f"{target_res} m grid by nearest neighbour (coarser detail than the product's own bands)",
            UserWarning,
            stacklevel=5,
        )


class SafeScan(NamedTuple):
    """Products (date, band -> resolution -> file, folder) by date, bands wanted, and the grid they go onto."""

    products: list[tuple[pd.Timestamp, dict[str, dict[int, Path]], Path]]
    bands: list[str]
    target_res: int
    grid_file: Path
    grid: tuple  # (crs, transform, width, height) of grid_file


def scan_safe(safes: list[Path], bands: Sequence[str] | None) -> SafeScan:
    """Return the products' band files, checked (one product per date, every band present), and the finest grid."""
    products = sorted((_safe_files(s) + (s,) for s in safes), key=lambda t: t[0])
    dates = [d for d, _, _ in products]
    if len(set(dates)) != len(dates):
        twice = sorted({d for d in dates if dates.count(d) > 1})
        raise ValueError(
            f"two SAFE products share an acquisition time {[date_text(d) for d in twice]}: "
            f"{[s.name for d, _, s in products if d in twice]}; expected one product per acquisition"
        )
    want = [norm_band(b) for b in (bands if bands is not None else TS2C_BANDS)]
    for _, found, safe in products:
        missing = [b for b in want if b not in found]
        if missing:
            only10 = [b for b in missing if _NATIVE_RES.get(b) == 10]
            hint = f" ({only10} are delivered at 10 m only: is the R10m folder missing?)" if only10 else ""
            raise ValueError(f"{safe}: bands {missing} not found{hint}; available: {sorted(found, key=band_key)}")
    target_res, grid_file = _safe_target(products, want)
    _warn_coarse(products, want, target_res)
    info = raster_info(grid_file)
    if info.crs is None:
        raise ValueError(f"{grid_file}: the file has no CRS")
    return SafeScan(products, want, target_res, grid_file, (info.crs, info.transform, info.width, info.height))


def read_safe(scan: SafeScan, ch: dict[str, int], fill: int | None) -> tuple[da.Array, da.Array]:
    """Return lazy (reflectance x 10000 int16 (time, band, y, x), flags (time, y, x)); `fill`: flag without SCL."""
    target_res, grid, grid_file, want = scan.target_res, scan.grid, scan.grid_file, scan.bands
    ref_arrays, flag_arrays = [], []
    for date, found, safe in scan.products:
        offsets, quant = _safe_radiometry(safe, date, want)
        layers = [_safe_band(found[b], target_res, grid, ch, safe, b, grid_file) for b in want]
        nodata = None
        if "SCL" not in found:  # SCL says where there is no data; without it, DN 0 (the L2A NO_DATA value) does
            nodata = layers[0] == 0
            for a in layers[1:]:
                nodata = nodata & (a == 0)
        # reflectance x 10000 = (DN + BOA_ADD_OFFSET) x 10000 / quantification, int16 for every baseline
        layers = [_rescale(a, offsets.get(b, 0), quant) for a, b in zip(layers, want, strict=True)]
        ref_arrays.append(da.stack(layers))
        if "SCL" in found:
            f = scl_to_flag(_safe_band(found["SCL"], target_res, grid, ch, safe, "SCL", grid_file))
        else:
            f = da.full((grid[3], grid[2]), fill, dtype=np.uint8, chunks=(ch["y"], ch["x"]))
        flag_arrays.append(f if nodata is None else da.where(nodata, np.uint8(FLAG_NODATA), f).astype(np.uint8))
    return da.stack(ref_arrays).rechunk({1: -1}), da.stack(flag_arrays)


def _rescale(a: da.Array, offset: int, quant: float) -> da.Array:
    """int16 reflectance x 10000 from L2A digital numbers: (DN + offset) x 10000 / quantification."""
    return da.map_blocks(_rescale_block, a, offset, quant, dtype=np.int16)


def _rescale_block(block: np.ndarray, offset: int, quant: float) -> np.ndarray:
    v = block.astype(np.int32) + offset
    if quant != 10000:
        v = np.round(v * (10000.0 / quant))
    return np.clip(v, -32768, 32767).astype(np.int16)


def _safe_band(
    by_res: dict[int, Path], target_res: int, grid: tuple, ch: dict[str, int], safe: Path, band: str, grid_file: Path
) -> da.Array:
    """The band on the target grid: native file if available, else the finest one upsampled by repetition."""
    crs, transform, width, height = grid
    res = target_res if target_res in by_res else min(by_res)
    path = by_res[res]
    count, h, w, dtype, _, f_crs, f_tr, _, _ = raster_info(path)
    if res == target_res:
        if (f_crs, f_tr, w, h) != grid:
            raise ValueError(
                f"{path}: its grid ({f_crs}, {f_tr.c},{f_tr.f}, {w}x{h}) differs from {grid_file} "
                f"({crs}, {transform.c},{transform.f}, {width}x{height}); open products of one tile "
                "at a time"
            )
        return lazy_read(path, ch, (count, h, w, dtype))[0]
    factor = res / target_res
    if factor != int(factor):
        raise ValueError(f"{path}: {res} m cannot be brought to {target_res} m by an integer factor")
    factor = int(factor)
    if f_crs != crs or (f_tr.c, f_tr.f) != (transform.c, transform.f):
        raise ValueError(
            f"{path}: not aligned with the {target_res} m grid of {grid_file} (CRS {f_crs} vs {crs}, "
            f"origin {f_tr.c},{f_tr.f} vs {transform.c},{transform.f}); open products of one tile at "
            "a time"
        )
    coarse = lazy_read(path, {"y": max(1, ch["y"] // factor), "x": max(1, ch["x"] // factor)}, (count, h, w, dtype))[0]
    fine = da.repeat(da.repeat(coarse, factor, axis=0), factor, axis=1)
    if fine.shape != (height, width):
        if fine.shape[0] < height or fine.shape[1] < width:
            raise ValueError(f"{path}: {band} covers {fine.shape} at {target_res} m, grid is {(height, width)}")
        fine = fine[:height, :width]
    return fine.rechunk((ch["y"], ch["x"]))

"""DLR Belgica Bank Sentinel-1 scenes with patch annotations (Zenodo 5075448 semantic, 5075861 LDA topics).

What is known: 24 Sentinel-1 scenes (HH + HV); the semantic set labels 256x256 patches with 10 classes, the LDA
set 4x4 patches with 11 topics. File formats are not documented, so the reader inspects each scene folder: it
needs the HH and HV images (two single-band GeoTIFFs named ``*HH*.tif``/``*HV*.tif``, or one two-band GeoTIFF)
and either a patch table (CSV with row/col of each patch and a ``label`` or ``topic`` column) or a label raster
(``*label*.tif``/``*topic*.tif``). Anything else raises an error listing what was found and what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["open", "scenes"]

_TIF = (".tif", ".tiff")
_ROW = ("row", "row0", "y", "r", "line")
_COL = ("col", "col0", "x", "c", "column", "sample")
_LAB = ("label", "class", "topic", "label_id", "class_id", "topic_id")
_EXPECTED = (
    "per scene folder: HH and HV GeoTIFFs (*HH*.tif, *HV*.tif, or one 2-band .tif) and a patch table "
    "CSV (columns row, col, label or topic) or a label GeoTIFF (*label*.tif / *topic*.tif)"
)


def _is_label_tif(p: Path) -> bool:
    n = p.name.lower()
    return p.suffix.lower() in _TIF and any(k in n for k in ("label", "topic", "class", "annot"))


def scenes(path: str | Path) -> list[Path]:
    """Return the scene folders under `path` (folders holding at least one GeoTIFF), sorted by name."""
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"DLR Belgica Bank: {root} does not exist")
    dirs = sorted({p.parent for p in root.rglob("*") if p.suffix.lower() in _TIF and "__MACOSX" not in p.parts})
    return dirs


def _pick(cols: list[str], names: tuple[str, ...]) -> str | None:
    low = {c.lower().strip(): c for c in cols}
    return next((low[n] for n in names if n in low), None)


def _found(folder: Path) -> str:
    return str(sorted(p.name for p in folder.iterdir())[:20])


def _raster(path: Path, single: bool = True) -> xr.DataArray:
    """One GeoTIFF, lazily; a file that GDAL cannot read raises ValueError naming its full path."""
    from eokit.rasterfiles import open_rasterio

    da = open_rasterio(path, "a GeoTIFF", hint=_EXPECTED, chunks={"x": 2048, "y": 2048})
    if single:
        if da.sizes["band"] != 1:
            raise ValueError(f"{path}: {da.sizes['band']} bands, expected 1; {_EXPECTED}")
        da = da.squeeze("band", drop=True)
    return da


def _same_grid(ref: xr.DataArray, ref_path: Path, other: xr.DataArray, path: Path) -> None:
    """Raise unless `other` lies on `ref`'s pixel grid (shape, transform, CRS)."""
    checks = [
        ("shape", ref.shape, other.shape),
        ("CRS", ref.rio.crs, other.rio.crs),
        ("transform", tuple(ref.rio.transform()), tuple(other.rio.transform())),
    ]
    for what, a, b in checks:
        if a != b:
            raise ValueError(
                f"{path}: {what} {b} differs from {ref_path.name}'s {a}; expected every raster of "
                "a scene on the same pixel grid"
            )


def _open_scene(folder: Path) -> xr.Dataset:
    tifs = sorted(p for p in folder.iterdir() if p.suffix.lower() in _TIF)
    images = [p for p in tifs if not _is_label_tif(p)]
    hh = [p for p in images if "hh" in p.stem.lower()]
    hv = [p for p in images if "hv" in p.stem.lower()]
    if len(hh) == 1 and len(hv) == 1:
        a, b = _raster(hh[0]), _raster(hv[0])
        _same_grid(a, hh[0], b, hv[0])
        ds = xr.Dataset({"HH": a, "HV": b})
        ref_path = hh[0]
    elif len(images) == 1:
        da = _raster(images[0], single=False)
        ref_path = images[0]
        if da.sizes["band"] != 2:
            raise ValueError(f"{images[0]}: {da.sizes['band']} band(s), expected 2 (HH, HV); {_EXPECTED}")
        ds = xr.Dataset({"HH": da.isel(band=0, drop=True), "HV": da.isel(band=1, drop=True)})
    else:
        raise ValueError(
            f"DLR Belgica Bank: {folder} holds {_found(folder)}; could not tell the HH and HV "
            f"images apart. Expected {_EXPECTED}"
        )
    ds.attrs["scene"] = folder.name
    label_tifs = [p for p in tifs if _is_label_tif(p)]
    csvs = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".csv", ".txt"))
    if label_tifs:
        lab = _raster(label_tifs[0])
        _same_grid(ds["HH"], ref_path, lab, label_tifs[0])
        ds["label"] = lab.assign_coords(x=ds.x, y=ds.y)
        ds.attrs["label_source"] = label_tifs[0].name
        return ds
    for c in csvs:
        t = _read_table(c)
        r, k, lab_c = _pick(list(t.columns), _ROW), _pick(list(t.columns), _COL), _pick(list(t.columns), _LAB)
        if r is None or k is None or lab_c is None:
            continue
        if len(t) == 0:
            raise ValueError(f"{c}: the patch table has a header but no rows; expected one row per patch")
        ny, nx = ds.sizes["y"], ds.sizes["x"]
        rows, cols, labels = (_int_column(t, col, c, 0) for col in (r, k, lab_c))
        size_c = _pick(list(t.columns), ("size", "patch_size"))
        size = _int_column(t, size_c, c, 1) if size_c else None
        ext_r, ext_c = (rows, cols) if size is None else (rows + size - 1, cols + size - 1)
        out = (ext_r >= ny) | (ext_c >= nx)
        if out.any():
            i = int(np.flatnonzero(out)[0])
            span = "" if size is None else f" (size {size[i]}: it ends at row {ext_r[i]}, col {ext_c[i]})"
            raise ValueError(
                f"{c}, line {i + 2}: patch at row {rows[i]}, col {cols[i]} is outside the "
                f"{ny}x{nx} image{span}; expected patches inside the image"
            )
        ds["row0"] = ("patch", rows)
        ds["col0"] = ("patch", cols)
        ds["label"] = ("patch", labels)
        if size is not None:
            ds["patch_size"] = ("patch", size)
        name_c = _pick(list(t.columns), ("label_name", "class_name", "name"))
        if name_c:
            ds["label_name"] = ("patch", t[name_c].astype(str).to_numpy())
        ds.attrs["label_source"] = c.name
        ds.attrs["label_kind"] = "topic" if "topic" in lab_c.lower() else "semantic"
        return ds
    raise ValueError(f"DLR Belgica Bank: no annotation in {folder} (found {_found(folder)}). Expected {_EXPECTED}")


def _read_table(path: Path) -> pd.DataFrame:
    """A patch table (CSV or whitespace/semicolon-separated text); unreadable files raise naming the path."""
    import csv

    try:
        return pd.read_csv(path, sep=None, engine="python", encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as e:
        raise ValueError(f"{path}: cannot be read as a patch table ({e}); {_EXPECTED}") from e


def _int_column(t: pd.DataFrame, col: str, path: Path, low: int) -> np.ndarray:
    """Column `col` as int64; raise naming the file, line and field unless every value is an integer >= `low`."""
    v = pd.to_numeric(t[col], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(v) | (np.mod(np.nan_to_num(v), 1) != 0) | (np.nan_to_num(v, nan=low) < low)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{path}, line {i + 2}, field {col}: expected an integer >= {low}, got {t[col].tolist()[i]!r}")
    return v.astype(np.int64)


def open(path: str | Path, scene: str | None = None) -> Any:  # noqa: A001
    """Return one scene as an xarray Dataset (HH, HV lazily, patch labels), or all scenes as an xarray DataTree."""
    dirs = scenes(path)
    if not dirs:
        root = Path(path).expanduser()
        found = sorted({p.suffix for p in root.rglob("*") if p.is_file()}) if root.is_dir() else [root.suffix]
        raise ValueError(f"DLR Belgica Bank: no GeoTIFF under {root} (found file types {found}). Expected {_EXPECTED}")
    if scene is not None:
        dirs = [d for d in dirs if scene in d.name]
        if len(dirs) != 1:
            raise FileNotFoundError(f"DLR Belgica Bank: scene {scene!r} matches {[d.name for d in dirs]} under {path}")
    if len(dirs) == 1:
        return _open_scene(dirs[0])
    return xr.DataTree.from_dict({d.name: _open_scene(d) for d in dirs})

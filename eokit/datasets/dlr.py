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
_EXPECTED = ("per scene folder: HH and HV GeoTIFFs (*HH*.tif, *HV*.tif, or one 2-band .tif) and a patch table "
             "CSV (columns row, col, label or topic) or a label GeoTIFF (*label*.tif / *topic*.tif)")


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


def _open_scene(folder: Path) -> xr.Dataset:
    import rioxarray

    tifs = sorted(p for p in folder.iterdir() if p.suffix.lower() in _TIF)
    images = [p for p in tifs if not _is_label_tif(p)]
    hh = [p for p in images if "hh" in p.stem.lower()]
    hv = [p for p in images if "hv" in p.stem.lower()]
    if len(hh) == 1 and len(hv) == 1:
        a = rioxarray.open_rasterio(hh[0], chunks={"x": 2048, "y": 2048}).squeeze("band", drop=True)
        b = rioxarray.open_rasterio(hv[0], chunks={"x": 2048, "y": 2048}).squeeze("band", drop=True)
        ds = xr.Dataset({"HH": a, "HV": b})
    elif len(images) == 1:
        da = rioxarray.open_rasterio(images[0], chunks={"x": 2048, "y": 2048})
        if da.sizes["band"] != 2:
            raise ValueError(f"{images[0]}: {da.sizes['band']} band(s), expected 2 (HH, HV); {_EXPECTED}")
        ds = xr.Dataset({"HH": da.isel(band=0, drop=True), "HV": da.isel(band=1, drop=True)})
    else:
        raise ValueError(f"DLR Belgica Bank: {folder} holds {_found(folder)}; could not tell the HH and HV "
                         f"images apart. Expected {_EXPECTED}")
    ds.attrs["scene"] = folder.name
    label_tifs = [p for p in tifs if _is_label_tif(p)]
    csvs = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".csv", ".txt"))
    if label_tifs:
        lab = rioxarray.open_rasterio(label_tifs[0], chunks={"x": 2048, "y": 2048}).squeeze("band", drop=True)
        if lab.shape != ds["HH"].shape:
            raise ValueError(f"{label_tifs[0]}: shape {lab.shape} differs from the image {ds['HH'].shape}")
        ds["label"] = lab.assign_coords(x=ds.x, y=ds.y)
        ds.attrs["label_source"] = label_tifs[0].name
        return ds
    for c in csvs:
        t = pd.read_csv(c, sep=None, engine="python")
        r, k, lab_c = _pick(list(t.columns), _ROW), _pick(list(t.columns), _COL), _pick(list(t.columns), _LAB)
        if r is None or k is None or lab_c is None:
            continue
        for col in (r, k, lab_c):
            v = pd.to_numeric(t[col], errors="coerce")
            if v.isna().any():
                i = int(np.flatnonzero(v.isna().to_numpy())[0])
                raise ValueError(f"{c}, line {i + 2}, field {col}: expected an integer, got {t[col].iloc[i]!r}")
        ny, nx = ds.sizes["y"], ds.sizes["x"]
        rows, cols = t[r].to_numpy(np.int64), t[k].to_numpy(np.int64)
        size_c = _pick(list(t.columns), ("size", "patch_size"))
        size = t[size_c].to_numpy(np.int64) if size_c else None
        out = (rows < 0) | (cols < 0) | (rows >= ny) | (cols >= nx)
        if out.any():
            i = int(np.flatnonzero(out)[0])
            raise ValueError(f"{c}, line {i + 2}: patch at row {rows[i]}, col {cols[i]} is outside the "
                             f"{ny}x{nx} image")
        ds["row0"] = ("patch", rows)
        ds["col0"] = ("patch", cols)
        ds["label"] = ("patch", t[lab_c].to_numpy(np.int64))
        if size is not None:
            ds["patch_size"] = ("patch", size)
        name_c = _pick(list(t.columns), ("label_name", "class_name", "name"))
        if name_c:
            ds["label_name"] = ("patch", t[name_c].astype(str).to_numpy())
        ds.attrs["label_source"] = c.name
        ds.attrs["label_kind"] = "topic" if "topic" in lab_c.lower() else "semantic"
        return ds
    raise ValueError(f"DLR Belgica Bank: no annotation in {folder} (found {_found(folder)}). Expected {_EXPECTED}")


def open(path: str | Path, scene: str | None = None) -> Any:  # noqa: A001
    """Return one scene as an xarray Dataset (HH, HV lazily, patch labels), or all scenes as an xarray DataTree."""
    dirs = scenes(path)
    if not dirs:
        root = Path(path).expanduser()
        found = sorted({p.suffix for p in root.rglob("*") if p.is_file()}) if root.is_dir() else [root.suffix]
        raise ValueError(f"DLR Belgica Bank: no GeoTIFF under {root} (found file types {found}). "
                         f"Expected {_EXPECTED}")
    if scene is not None:
        dirs = [d for d in dirs if scene in d.name]
        if len(dirs) != 1:
            raise FileNotFoundError(f"DLR Belgica Bank: scene {scene!r} matches {[d.name for d in dirs]} under {path}")
    if len(dirs) == 1:
        return _open_scene(dirs[0])
    return xr.DataTree.from_dict({d.name: _open_scene(d) for d in dirs})

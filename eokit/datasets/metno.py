"""METNO sea ice and iceberg analysis (ExtremeEarth, Zenodo 3695276 v1 / 4683174 v2): SIGRID-3 ice charts.

Each Sentinel-1 scene has one shapefile ``seaice_s1_<yyyymmddThhmmss>.shp`` (v2 under
``EE_Polar_Training_Dataset_v-2-0-0/EE/Sea_Ice-labels/``, some scenes split in ``-SW``/``-NE`` halves), with
the fields ``id, CA, SA, FA, CB, SB, FB, CT, poly_type, area, perimeter`` (v2 adds ``SD``). Stage-of-development
(``SA``, ``SB``, ``SC``) and form (``FA``, ``FB``, ``FC``) codes are decoded with the shipped table
``eokit/tables/sigrid_to_wmo.csv``, which also maps them to the six WMO classes of ``eokit.schema.ICE_CLASSES``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from eokit.schema import ICE_CLASSES

__all__ = ["open", "open_icebergs", "sigrid_table", "to_wmo_class", "REQUIRED_FIELDS", "POLY_TYPES"]

#: Attribute fields every sea-ice shapefile must have (v1 and v2; v2 adds SD).
REQUIRED_FIELDS: list[str] = ["id", "CA", "SA", "FA", "CB", "SB", "FB", "CT", "poly_type", "area", "perimeter"]
#: SIGRID-3 polygon types.
POLY_TYPES: dict[str, str] = {"W": "water", "I": "ice", "L": "land"}
#: Folder of the tables shipped as package data.
TABLES: Path = Path(__file__).resolve().parents[1] / "tables"
_NAME_RE = re.compile(r"^seaice_s1_(\d{8}T\d{6})(?:-(SW|NE))?$", re.IGNORECASE)


@lru_cache(maxsize=1)
def sigrid_table() -> pd.DataFrame:
    """Return the shipped SIGRID-3 code table (kind, code, name, wmo_class)."""
    t = pd.read_csv(TABLES / "sigrid_to_wmo.csv", dtype={"code": str}, keep_default_na=False)
    t["code"] = t["code"].astype(int)
    for c in t["wmo_class"]:
        if c and c not in ICE_CLASSES:
            raise ValueError(f"sigrid_to_wmo.csv: wmo_class {c!r} is not one of {ICE_CLASSES}")
    return t


def _codes(series: pd.Series) -> pd.Series:
    """SIGRID code column (str or int, with -9/blank as missing) -> nullable Int64."""
    s = pd.to_numeric(series.astype("string").str.strip().replace({"": None}), errors="coerce")
    s = s.astype("Int64")
    return s.mask(s < 0)


def _decode(gdf: pd.DataFrame, path: Path) -> pd.DataFrame:
    t = sigrid_table()
    names = {k: dict(zip(g["code"], g["name"])) for k, g in t.groupby("kind")}
    unknown: dict[str, list[int]] = {}
    for col in [c for c in gdf.columns if c in ("SA", "SB", "SC", "FA", "FB", "FC")]:
        kind = "stage" if col.startswith("S") else "form"
        codes = _codes(gdf[col])
        gdf[col] = codes
        gdf[f"{col}_name"] = codes.map(names[kind]).astype("string")
        bad = sorted({int(c) for c in codes.dropna() if int(c) not in names[kind]})
        if bad:
            unknown[col] = bad
    for col in [c for c in gdf.columns if c in ("CA", "CB", "CC", "CT")]:
        gdf[col] = _codes(gdf[col])
    pt = gdf["poly_type"].astype("string").str.strip().str.upper()
    bad_pt = sorted(set(pt.dropna()) - set(POLY_TYPES))
    if bad_pt:
        raise ValueError(f"{path}: field poly_type holds {bad_pt}; expected W (water), I (ice) or L (land)")
    gdf["poly_type"] = pt
    gdf["poly_type_name"] = pt.map(POLY_TYPES).astype("string")
    if unknown:
        gdf.attrs.setdefault("unknown_codes", {})[path.name] = unknown
    return gdf


def _read_one(path: Path) -> Any:
    import geopandas as gpd

    m = _NAME_RE.match(path.stem)
    if not m:
        raise ValueError(f"{path}: name does not follow seaice_s1_<yyyymmddThhmmss>[-SW|-NE].shp")
    gdf = gpd.read_file(path)
    missing = [f for f in REQUIRED_FIELDS if f not in gdf.columns]
    if missing:
        raise ValueError(f"{path}: missing attribute field(s) {missing}; expected {REQUIRED_FIELDS} (SIGRID-3)")
    if gdf.crs is None:
        raise ValueError(f"{path}: no CRS (missing .prj); expected a projected polar CRS")
    gdf = _decode(gdf, path)
    gdf["scene_time"] = pd.Timestamp(m.group(1))
    gdf["scene"] = m.group(1)
    gdf["half"] = (m.group(2) or "").upper()
    gdf["source_file"] = path.name
    return gdf


def _find(path: Path, pattern: str) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.exists():
        raise FileNotFoundError(f"METNO: {path} does not exist")
    return sorted(p for p in path.rglob(pattern) if "__MACOSX" not in p.parts)


def open(path: str | Path, scenes: list[str] | None = None) -> Any:  # noqa: A001
    """Return all sea-ice chart polygons under `path` (v1 or v2 folder, or one .shp) as one GeoDataFrame."""
    import geopandas as gpd

    path = Path(path).expanduser()
    files = [p for p in _find(path, "seaice_s1_*.shp") if "iceberg" not in str(p.parent).lower()]
    if not files:
        found = sorted({p.suffix for p in path.rglob("*") if p.is_file()}) if path.is_dir() else []
        raise FileNotFoundError(f"METNO: no seaice_s1_<yyyymmddThhmmss>.shp under {path} (found file types "
                                f"{found}); expected the unpacked Zenodo 3695276 (v1) or 4683174 (v2) record")
    if scenes is not None:
        files = [f for f in files if any(s in f.stem for s in scenes)]
        if not files:
            raise FileNotFoundError(f"METNO: none of scenes {scenes} under {path}")
    parts = [_read_one(f) for f in files]
    crs = parts[0].crs
    for f, g in zip(files, parts):
        if g.crs != crs:
            raise ValueError(f"{f}: CRS {g.crs} differs from {files[0].name} ({crs}); expected one CRS")
    unknown = {k: v for g in parts for k, v in g.attrs.get("unknown_codes", {}).items()}
    out = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=crs)
    out.attrs["unknown_codes"] = unknown
    out.attrs["version"] = "v2" if any("v-2" in str(f) for f in files) or "SD" in out.columns else "v1"
    return out


def open_icebergs(path: str | Path) -> Any:
    """Return the iceberg shapefiles under an ``icebergs/`` folder of `path` as one GeoDataFrame."""
    import geopandas as gpd

    path = Path(path).expanduser()
    files = [p for p in _find(path, "*.shp") if "iceberg" in str(p).lower()]
    if not files:
        raise FileNotFoundError(f"METNO: no iceberg shapefile (icebergs/*.shp) under {path}")
    parts = []
    for f in files:
        g = gpd.read_file(f)
        g["source_file"] = f.name
        parts.append(g.to_crs(gpd.read_file(files[0]).crs) if g.crs else g)
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=parts[0].crs)


def to_wmo_class(gdf: Any, on_unmapped: Literal["nan", "raise"] = "nan") -> pd.Series:
    """Return each polygon's WMO ice class (eokit.schema.ICE_CLASSES name; <NA> where none applies).

    Water polygons are "open water"; land and undetermined stages have none. Ice polygons take the class of
    their dominant (first, thickest) stage SA, except that form FA brash/pancake gives "brash/pancake ice".
    """
    t = sigrid_table()
    stage = {r.code: r.wmo_class for r in t[t.kind == "stage"].itertuples() if r.wmo_class}
    form = {r.code: r.wmo_class for r in t[t.kind == "form"].itertuples() if r.wmo_class}
    pt = gdf["poly_type"].astype("string").str.upper()
    sa = _codes(gdf["SA"]) if "SA" in gdf else pd.Series(pd.NA, index=gdf.index, dtype="Int64")
    fa = _codes(gdf["FA"]) if "FA" in gdf else pd.Series(pd.NA, index=gdf.index, dtype="Int64")
    out = pd.Series(pd.NA, index=gdf.index, dtype="string", name="wmo_class")
    out[pt == "W"] = "open water"
    ice = (pt == "I").fillna(False).to_numpy()
    by_stage = sa.map(stage).astype("string")
    by_form = fa.map(form).astype("string")
    out[ice] = by_form[ice].fillna(by_stage[ice])
    if on_unmapped == "raise":
        bad = ice & out.isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"polygon {gdf.index[i]}: ice with stage SA={sa.iloc[i]} and form FA={fa.iloc[i]} "
                             "has no WMO class in sigrid_to_wmo.csv")
    return out

"""METNO sea ice and iceberg analysis (ExtremeEarth, Zenodo 3695276 v1 / 4683174 v2): SIGRID-3 ice charts.

Each Sentinel-1 scene has one shapefile ``seaice_s1_<yyyymmddThhmmss>.shp`` (v2 under
``EE_Polar_Training_Dataset_v-2-0-0/EE/Sea_Ice-labels/``, some scenes split in ``-SW``/``-NE`` halves), with
the fields ``id, CA, SA, FA, CB, SB, FB, CT, poly_type, area, perimeter`` (v2 adds ``SD``, passed through).
METNO's files are one dialect of SIGRID-3: they are read and decoded by :mod:`eokit.sigrid` (the one home of
the code tables and of the mapping to the six WMO classes of ``eokit.schema.ICE_CLASSES``), so SIGRID-3 fields
come back in upper case (``POLY_TYPE``, ``AREA``, ...) with ``<FIELD>_name`` columns and ``wmo_class``.
``open`` finds the scene files of the published tree by their names; one explicit file of any name (a CIS,
NIC or DMI chart) is read too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from eokit import sigrid
from eokit.sigrid import POLY_TYPES, to_wmo_class
from eokit.sigrid import code_table as sigrid_table

__all__ = ["open", "open_icebergs", "sigrid_table", "to_wmo_class", "REQUIRED_FIELDS", "POLY_TYPES"]

#: Attribute fields of METNO's sea-ice shapefiles (v1 and v2; v2 adds SD). Reading needs only
#: ``eokit.sigrid.REQUIRED_FIELDS`` (in any letter case).
REQUIRED_FIELDS: list[str] = ["id", "CA", "SA", "FA", "CB", "SB", "FB", "CT", "poly_type", "area", "perimeter"]
#: Folder of the tables shipped as package data.
TABLES: Path = Path(__file__).resolve().parents[1] / "tables"
_NAME_RE = re.compile(r"^seaice_s1_(\d{8}T\d{6})(?:-(SW|NE))?$", re.IGNORECASE)
_STAMP_RE = re.compile(r"(\d{8}T\d{6})")


def _read_one(path: Path, on_unmapped: Literal["raise", "nan"] = "raise") -> Any:
    gdf = sigrid.read_ice_chart(path, on_unmapped=on_unmapped)
    m = _NAME_RE.match(path.stem) or _STAMP_RE.search(path.stem)
    stamp = m.group(1) if m else None
    half = m.group(2) if m and m.re is _NAME_RE else None
    gdf["scene_time"] = pd.Timestamp(stamp) if stamp else pd.NaT
    gdf["scene"] = stamp or path.stem
    gdf["half"] = (half or "").upper()
    gdf["source_file"] = path.name
    return gdf


def _find(path: Path, pattern: str) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.exists():
        raise FileNotFoundError(f"METNO: {path} does not exist")
    return sorted(p for p in path.rglob(pattern) if "__MACOSX" not in p.parts)


def open(
    path: str | Path,
    scenes: list[str] | None = None,  # noqa: A001
    on_unmapped: Literal["raise", "nan"] = "raise",
) -> Any:
    """Return all sea-ice chart polygons under `path` (v1 or v2 folder, or one chart file) as one GeoDataFrame.

    `on_unmapped`: what a code outside the SIGRID-3 tables does (see ``eokit.sigrid.decode``).
    """
    import geopandas as gpd

    path = Path(path).expanduser()
    files = [p for p in _find(path, "seaice_s1_*.shp") if "iceberg" not in str(p.parent).lower()]
    if not files:
        found = sorted({p.suffix for p in path.rglob("*") if p.is_file()}) if path.is_dir() else []
        raise FileNotFoundError(
            f"METNO: no seaice_s1_<yyyymmddThhmmss>.shp under {path} (found file types "
            f"{found}); expected the unpacked Zenodo 3695276 (v1) or 4683174 (v2) record"
        )
    if scenes is not None:
        files = [f for f in files if any(s in f.stem for s in scenes)]
        if not files:
            raise FileNotFoundError(f"METNO: none of scenes {scenes} under {path}")
    parts = [_read_one(f, on_unmapped) for f in files]
    crs = parts[0].crs
    for f, g in zip(files, parts, strict=True):
        if g.crs != crs:
            raise ValueError(f"{f}: CRS {g.crs} differs from {files[0].name} ({crs}); expected one CRS")
    unknown = {k: v for g in parts for k, v in g.attrs.get("unknown_codes", {}).items()}
    out = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry=parts[0].geometry.name, crs=crs)
    out.attrs["unknown_codes"] = unknown
    out.attrs["sigrid_decoded"] = True
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

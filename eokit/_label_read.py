"""Reading vector crop maps for :mod:`eokit.labels`: the polygon file, its geometries (checked, repaired), its
label codes mapped to classes through a table (the bundled ``"invekos"`` table maps Austrian INVEKOS crop names
to the 16 TimeSen2Crop classes) and the reprojection. Re-exported by :mod:`eokit.labels`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from eokit.schema import TS2C_CLASSES

__all__ = ["read_polygons", "load_mapping", "MAPPINGS"]

#: Bundled mapping tables, by short name (files in eokit/tables/).
MAPPINGS: dict[str, str] = {"invekos": "invekos_to_timesen2crop.csv"}
_TABLES = Path(__file__).resolve().parent / "tables"

_UMLAUTS = str.maketrans({"Ä": "AE", "Ö": "OE", "Ü": "UE", "ß": "SS", "ä": "AE", "ö": "OE", "ü": "UE"})


def _norm_code(code: Any) -> str:
    """Codes compare as upper-case ASCII strings (umlauts transliterated) or as integers."""
    if code is None or (isinstance(code, float) and np.isnan(code)):
        return "<null>"
    if isinstance(code, (int, np.integer)) or (isinstance(code, (float, np.floating)) and float(code).is_integer()):
        return str(int(code))
    s = str(code).strip().translate(_UMLAUTS).upper()
    try:
        f = float(s)
        if f.is_integer():
            return str(int(f))
    except ValueError:
        pass
    return " ".join(s.split())


def load_mapping(mapping: str | Path | Mapping[Any, Any] | pd.DataFrame) -> pd.DataFrame:
    """Return a mapping table with columns ``code`` (normalised str), ``class_id`` (int) and ``class_name``."""
    if isinstance(mapping, str) and mapping.lower() in MAPPINGS:
        table = pd.read_csv(_TABLES / MAPPINGS[mapping.lower()], dtype={"code": str})
        source = f"bundled table {MAPPINGS[mapping.lower()]}"
    elif isinstance(mapping, pd.DataFrame):
        table, source = mapping.copy(), "mapping DataFrame"
    elif isinstance(mapping, Mapping):
        vals = list(mapping.values())
        if all(isinstance(v, (int, np.integer)) for v in vals):
            table = pd.DataFrame({"code": list(mapping.keys()), "class_id": vals})
        elif all(isinstance(v, str) for v in vals):
            table = pd.DataFrame({"code": list(mapping.keys()), "class_name": vals})
        else:
            raise ValueError("a mapping dict must map codes to class ids (int) or to class names (str)")
        source = "mapping dict"
    else:
        p = Path(mapping)
        if not p.is_file():
            raise FileNotFoundError(
                f"mapping table {p} not found (give a CSV path, a dict or one of {sorted(MAPPINGS)})"
            )
        table = pd.read_csv(p, dtype={"code": str})
        source = str(p)
    if "code" not in table.columns:
        raise ValueError(f"{source}: needs a 'code' column, has {list(table.columns)}")
    if "class_id" not in table.columns and "class_name" not in table.columns:
        raise ValueError(f"{source}: needs a 'class_id' or 'class_name' column, has {list(table.columns)}")
    first = 2 if isinstance(mapping, (str, Path)) else 0  # files: CSV line numbers under the header
    if "class_id" in table.columns:
        table = table.assign(class_id=_whole_ids(table["class_id"], f"{source}: column 'class_id'", first))
    else:
        names = table["class_name"].astype(str)
        if names.isin(TS2C_CLASSES).all():
            table["class_id"] = [TS2C_CLASSES.index(n) for n in names]
        else:
            uniq = sorted(names.unique())
            table["class_id"] = [uniq.index(n) for n in names]
    if "class_name" not in table.columns:
        ids = table["class_id"].astype(int)
        table["class_name"] = [TS2C_CLASSES[i] if 0 <= i < len(TS2C_CLASSES) else str(i) for i in ids]
    no_code = table["code"].isna() | (table["code"].astype(str).str.strip() == "")
    if no_code.any():
        raise ValueError(
            f"{source}: rows {(np.flatnonzero(no_code) + first).tolist()} have no code; expected a code in every row"
        )
    table = table.assign(
        code=table["code"].map(_norm_code),
        class_id=table["class_id"].astype(np.int64),
        class_name=table["class_name"].astype(str),
    )
    dup = table[table["code"].duplicated(keep=False)]
    if not dup.empty and dup.groupby("code")["class_id"].nunique().gt(1).any():
        raise ValueError(f"{source}: codes mapped to two classes: {sorted(dup['code'].unique())}")
    return table.drop_duplicates("code")[["code", "class_id", "class_name"]].reset_index(drop=True)


def _whole_ids(values: pd.Series, what: str, offset: int = 0) -> np.ndarray:
    """`values` as int64 class/field ids; raise naming `what` and the rows holding blanks or non-integers.

    Rows are reported as positions + `offset` (2 for CSV lines under a header).
    """
    num = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(num) | (np.mod(np.where(np.isfinite(num), num, 0), 1) != 0)
    if bad.any():
        rows = (np.flatnonzero(bad) + offset).tolist()
        raise ValueError(
            f"{what} must hold whole-number ids; rows {rows[:10]} hold "
            f"{[values.tolist()[i] for i in np.flatnonzero(bad)[:10]]}"
        )
    return num.astype(np.int64)


def _read_any(path: Path) -> gpd.GeoDataFrame:
    if not path.exists():
        raise FileNotFoundError(f"polygon file {path} does not exist")
    try:
        if path.suffix.lower() in (".parquet", ".geoparquet"):
            return gpd.read_parquet(path)
        return gpd.read_file(path)
    except (OSError, RuntimeError, ValueError) as e:  # pyogrio DataSourceError, pyarrow errors
        raise ValueError(
            f"polygon file {path} cannot be read ({e}); expected a GeoPackage, Shapefile, "
            "GeoJSON or GeoParquet file of polygons"
        ) from e


def _polygonal(geom: Any) -> Any:
    """The polygonal part of a repaired geometry (make_valid may add lines or points to a collection)."""
    from shapely import make_valid, union_all
    from shapely.geometry import Polygon

    fixed = make_valid(geom)
    if fixed.geom_type in ("Polygon", "MultiPolygon"):
        return fixed
    parts = [g for g in getattr(fixed, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
    return union_all(parts) if parts else Polygon()


def _check_geometries(gdf: gpd.GeoDataFrame, where: str) -> gpd.GeoDataFrame:
    """Return `gdf` with a CRS and polygonal geometries; invalid polygons repaired (with a warning).

    Raises naming `where` when there is no row, no CRS, or a geometry that is not a (multi)polygon.
    """
    if len(gdf) == 0:
        raise ValueError(f"{where}: no polygons given (0 rows); expected at least one labelled polygon")
    if gdf.crs is None:
        raise ValueError(f"{where}: the polygons have no CRS; set one (e.g. gdf.set_crs('EPSG:...'))")
    geoms = gdf.geometry
    kind = geoms.geom_type
    wrong = geoms.notna() & ~geoms.is_empty & ~kind.isin(["Polygon", "MultiPolygon"])
    if wrong.any():
        rows = gdf.index[wrong.to_numpy()][:10].tolist()
        raise ValueError(
            f"{where}: geometries must be Polygon or MultiPolygon; rows {rows} are {sorted(set(kind[wrong]))}"
        )
    invalid = geoms.notna() & ~geoms.is_empty & ~geoms.is_valid
    if invalid.any():
        rows = gdf.index[invalid.to_numpy()][:10].tolist()
        warnings.warn(
            f"{where}: {int(invalid.sum())} invalid polygons (e.g. self-intersecting) repaired with "
            f"shapely.make_valid: rows {rows}",
            stacklevel=3,
        )
        fixed = geoms.copy()
        fixed[invalid] = [_polygonal(g) for g in geoms[invalid]]
        gdf = gdf.set_geometry(fixed)
    return gdf


def _to_crs(gdf: gpd.GeoDataFrame, crs: Any, where: str) -> gpd.GeoDataFrame:
    try:
        return gdf.to_crs(crs)
    except (RuntimeError, ValueError, TypeError) as e:  # pyproj CRSError
        raise ValueError(
            f"{where}: cannot reproject to crs={crs!r} ({e}); expected a CRS such as 'EPSG:32633' or a WKT string"
        ) from e


def _labels_from_codes(
    gdf: gpd.GeoDataFrame, label_column: str, name_column: str | None, where: str, on_missing: str
) -> gpd.GeoDataFrame:
    """`gdf` with ``label``/``label_name`` from its own codes (no mapping): integer ids kept, names enumerated."""
    codes = gdf[label_column]
    null = codes.isna()
    if null.any():
        rows = gdf.index[null][:10].tolist()
        msg = f"{where}: {int(null.sum())} polygons have no value in {label_column!r} (rows {rows})"
        if on_missing == "raise":
            raise ValueError(msg + "; pass on_missing='warn' to drop them")
        warnings.warn(msg + "; dropped", stacklevel=3)
        gdf = gdf[~null]
        codes = gdf[label_column]
    if pd.api.types.is_float_dtype(codes) and not np.all(np.mod(codes, 1) == 0):
        frac = np.flatnonzero(np.mod(codes.to_numpy(), 1) != 0)
        raise ValueError(
            f"{where}: column {label_column!r} holds numbers that are not whole class ids "
            f"(rows {gdf.index[frac][:10].tolist()}: {codes.iloc[frac[:10]].tolist()}); expected "
            "integer class ids, or pass mapping= to map these codes"
        )
    if pd.api.types.is_integer_dtype(codes) or pd.api.types.is_float_dtype(codes):
        labels = codes.astype(np.int64).to_numpy()
        given = gdf[name_column].tolist() if name_column else [None] * len(labels)
        # a missing or empty name falls back to the code itself
        names = [
            str(n).strip() if n is not None and not pd.isna(n) and str(n).strip() else str(v)
            for n, v in zip(given, labels, strict=True)
        ]
    else:
        s = codes.astype(str)
        if s.isin(TS2C_CLASSES).all():
            labels = np.array([TS2C_CLASSES.index(v) for v in s], dtype=np.int64)
        else:
            uniq = sorted(s.unique())
            labels = np.array([uniq.index(v) for v in s], dtype=np.int64)
        names = s.tolist()
    return gdf.assign(label=labels, label_name=names)


def read_polygons(
    path: str | Path | gpd.GeoDataFrame,
    label_column: str,
    mapping: str | Path | Mapping[Any, Any] | pd.DataFrame | None = None,
    crs: Any = None,
    on_missing: str = "raise",
    name_column: str | None = None,
) -> gpd.GeoDataFrame:
    """Return the polygons with ``label`` (int64), ``label_name`` and ``field_id`` columns, in `crs` if given."""
    if on_missing not in ("raise", "warn"):
        raise ValueError(f"on_missing must be 'raise' or 'warn', got {on_missing!r}")
    if isinstance(path, gpd.GeoDataFrame):
        gdf, where = path.copy(), "polygons"
    else:
        where = str(path)
        gdf = _read_any(Path(path))
    if label_column not in gdf.columns:
        cols = [c for c in gdf.columns if c != gdf.geometry.name]
        raise ValueError(f"{where}: label column {label_column!r} not found; columns are {cols}")
    if name_column is None and mapping is None and label_column == "label" and "label_name" in gdf.columns:
        name_column = "label_name"  # already read once: keep its names
    elif name_column is None and mapping is None and label_column.upper().endswith("_ID"):
        guess = label_column[:-3] + ("_NAME" if label_column.endswith("_ID") else "_name")
        name_column = guess if guess in gdf.columns else None
    if name_column is not None and name_column not in gdf.columns:
        raise ValueError(f"{where}: name column {name_column!r} not found")
    gdf = _check_geometries(gdf, where)
    empty = gdf.geometry.isna() | gdf.geometry.is_empty
    if empty.any():
        warnings.warn(f"{where}: {int(empty.sum())} rows with empty geometry dropped", stacklevel=2)
        gdf = gdf[~empty]
        if len(gdf) == 0:
            raise ValueError(f"{where}: every geometry is empty; expected at least one polygon")
    if "field_id" in gdf.columns and pd.api.types.is_integer_dtype(gdf["field_id"]) and gdf["field_id"].is_unique:
        fid = gdf["field_id"].astype(np.int64).to_numpy()
    else:
        if "field_id" in gdf.columns:
            gdf = gdf.rename(columns={"field_id": "field_id_source"})
        fid = np.arange(1, len(gdf) + 1, dtype=np.int64)
    gdf = gdf.assign(field_id=fid)
    codes = gdf[label_column]
    norm = codes.map(_norm_code)
    if mapping is not None:
        table = load_mapping(mapping)
        lut = dict(zip(table["code"], zip(table["class_id"], table["class_name"], strict=True), strict=True))
        missing = norm[~norm.isin(lut.keys())]
        if len(missing):
            counts = missing.value_counts()
            listing = ", ".join(f"{c!r} ({n} polygons)" for c, n in counts.items())
            msg = f"{where}: column {label_column!r} has codes missing from the mapping: {listing}"
            if on_missing == "raise":
                raise ValueError(msg + "; add them to the mapping table or pass on_missing='warn' to drop them")
            warnings.warn(msg + "; these polygons are dropped", stacklevel=2)
            keep = norm.isin(lut.keys())
            gdf, norm = gdf[keep], norm[keep]
        gdf = gdf.assign(
            label=np.array([lut[c][0] for c in norm], dtype=np.int64), label_name=[lut[c][1] for c in norm]
        )
    else:
        gdf = _labels_from_codes(gdf, label_column, name_column, where, on_missing)
    if len(gdf) == 0:
        raise ValueError(f"{where}: no polygons left after dropping those without a class; expected at least one")
    if crs is not None:
        gdf = _to_crs(gdf, crs, where)
    return gdf

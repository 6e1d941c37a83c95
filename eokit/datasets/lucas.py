"""LUCAS 2018 land use/cover survey points (Eurostat primary data or the JRC harmonised table).

Each row is a survey point with an identifier (``POINT_ID``), the theoretical grid coordinates (``TH_LAT``,
``TH_LONG``, WGS84, signed), the GPS position where it was observed (``GPS_LAT``, ``GPS_LONG``; 88.888888 when
not recorded) and the land cover code ``LC1`` (e.g. ``B11`` common wheat). Column names are matched without
regard to case (the harmonised table uses lower case). The shipped table
``eokit/tables/lucas_lc1_to_timesen2crop.csv`` maps LC1 codes to the 16 TimeSen2Crop classes; its ``note``
column documents every approximation (LUCAS does not record winter vs spring sowing, for instance).
LC1 codes without a TimeSen2Crop class (artificial land, woodland, water...) are reported, never dropped.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from eokit.schema import TS2C_CLASSES

__all__ = ["open", "lc1_table", "map_lc1", "LC1_NAMES"]

TABLES: Path = Path(__file__).resolve().parents[1] / "tables"
_MISSING_COORD = 88.888888

#: LC1 codes of the LUCAS 2018 nomenclature that are not crops (level 1 and level 2 names).
LC1_NAMES: dict[str, str] = {
    "A": "Artificial land",
    "B": "Cropland",
    "C": "Woodland",
    "D": "Shrubland",
    "E": "Grassland",
    "F": "Bare land and lichens/moss",
    "G": "Water areas",
    "H": "Wetlands",
}


@lru_cache(maxsize=1)
def lc1_table() -> pd.DataFrame:
    """Return the shipped LC1 -> TimeSen2Crop table (lc1, lc1_label, ts2c_label, ts2c_class, note)."""
    t = pd.read_csv(TABLES / "lucas_lc1_to_timesen2crop.csv", keep_default_na=False, dtype={"ts2c_label": int})
    for row in t.itertuples():
        if TS2C_CLASSES[row.ts2c_label] != row.ts2c_class:
            raise ValueError(
                f"lucas_lc1_to_timesen2crop.csv, {row.lc1}: class {row.ts2c_label} is "
                f"{TS2C_CLASSES[row.ts2c_label]!r}, not {row.ts2c_class!r}"
            )
    return t


def _col(df: pd.DataFrame, *names: str) -> str | None:
    low = {c.lower(): c for c in df.columns}
    for n in names:
        if n.lower() in low:
            return low[n.lower()]
    return None


#: An LC1 code of the LUCAS nomenclature: a level-1 letter A..H, then up to two digits (``x`` in codes
#: recorded by photo-interpretation only, e.g. ``Bx1``).
_LC1_CODE = r"[A-H](?:[0-9X][0-9X]?)?"


def _csv_path(path: str | Path) -> Path:
    p = Path(path).expanduser()
    if p.is_dir():
        csvs = sorted([*p.glob("*.csv"), *p.glob("*.CSV")]) or sorted(p.rglob("*.csv"))
        if len(csvs) != 1:
            raise FileNotFoundError(f"LUCAS: expected one CSV in {p}, found {[c.name for c in csvs]}")
        p = csvs[0]
    if not p.exists():
        raise FileNotFoundError(f"LUCAS: {p} does not exist (expected the LUCAS 2018 point CSV)")
    return p


def _read(p: Path) -> pd.DataFrame:
    """The CSV as strings (a UTF-8 byte-order mark is allowed); unreadable files raise naming the path."""
    try:
        df = pd.read_csv(p, dtype=str, keep_default_na=False, low_memory=False, encoding="utf-8-sig")
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as e:
        raise ValueError(
            f"{p}: cannot be read as a LUCAS point CSV ({e}); expected a UTF-8, comma-separated "
            "file with a header row (POINT_ID, TH_LAT, TH_LONG, LC1, ...)"
        ) from e
    return df


def _numbers(df: pd.DataFrame, col: str, p: Path) -> np.ndarray:
    """Column `col` as float (blank = NaN); any other non-number raises naming file, line and field."""
    text = df[col].str.strip()
    v = pd.to_numeric(text, errors="coerce")
    bad = v.isna() & text.ne("")
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{p}, line {i + 2}, field {col}: expected a number, got {df[col].iloc[i]!r}")
    return v.to_numpy(float)


def _point_ids(df: pd.DataFrame, col: str, p: Path) -> pd.Series:
    ids = df[col].str.strip()
    blank = ids.eq("").to_numpy()
    if blank.any():
        i = int(np.flatnonzero(blank)[0])
        raise ValueError(f"{p}, line {i + 2}, field {col}: expected a point identifier, got a blank")
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        lines = (np.flatnonzero(ids.eq(ids[dup].iloc[0]).to_numpy()) + 2).tolist()
        raise ValueError(
            f"{p}, field {col}: point {ids[dup].iloc[0]} appears on lines {lines}; expected each survey point once"
        )
    return ids


def _lc1_codes(df: pd.DataFrame, col: str, p: Path) -> pd.Series:
    """LC1 codes upper-cased; blank stays blank (no land cover recorded), anything else must be an LC1 code."""
    code = df[col].str.strip().str.upper()
    bad = (code.ne("") & ~code.str.fullmatch(_LC1_CODE)).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{p}, line {i + 2}, field {col}: {df[col].iloc[i]!r} is not a LUCAS land cover code; "
            "expected a letter A..H and up to two digits, e.g. B11"
        )
    return code


def open(
    path: str | Path,
    coords: Literal["th", "gps"] = "th",  # noqa: A001
    countries: list[str] | None = None,
) -> Any:
    """Return the LUCAS points of a CSV (or a folder holding one) as a GeoDataFrame in EPSG:4326.

    `coords="th"` places points at the theoretical grid position; `"gps"` at the observed GPS position where
    recorded (falling back to the grid position, see column ``coord_source``).
    """
    import geopandas as gpd

    if coords not in ("th", "gps"):
        raise ValueError(f"coords must be 'th' (theoretical grid position) or 'gps' (observed), got {coords!r}")
    if isinstance(countries, str):
        countries = [countries]
    p = _csv_path(path)
    df = _read(p)
    need = {
        "POINT_ID": _col(df, "POINT_ID"),
        "TH_LAT": _col(df, "TH_LAT"),
        "TH_LONG": _col(df, "TH_LONG"),
        "LC1": _col(df, "LC1"),
    }
    missing = [k for k, v in need.items() if v is None]
    if missing:
        raise ValueError(
            f"{p}: missing column(s) {missing}; expected POINT_ID, TH_LAT, TH_LONG, LC1 "
            f"(any case); found {list(df.columns)[:15]}"
        )
    cols = {k: v for k, v in need.items() if v is not None}  # all of them, now
    out = pd.DataFrame({"point_id": _point_ids(df, cols["POINT_ID"], p)})
    for k in ("TH_LAT", "TH_LONG"):
        out[k.lower()] = _numbers(df, cols[k], p)
    lat, lon = out["th_lat"].to_numpy(float), out["th_long"].to_numpy(float)
    out["coord_source"] = "th"
    if coords == "gps":
        glat_c, glon_c = _col(df, "GPS_LAT"), _col(df, "GPS_LONG")
        if glat_c is None or glon_c is None:
            raise ValueError(f"{p}: coords='gps' needs columns GPS_LAT and GPS_LONG")
        glat, glon = _numbers(df, glat_c, p), _numbers(df, glon_c, p)
        ew = _col(df, "GPS_EW")
        if ew is not None:  # primary data: GPS_LONG unsigned, GPS_EW 1 east / 2 west / 8 no fix
            code = df[ew].str.strip().to_numpy()
            odd = ~np.isin(code, ["1", "2", "8", ""])
            if odd.any():
                i = int(np.flatnonzero(odd)[0])
                raise ValueError(
                    f"{p}, line {i + 2}, field {ew}: expected 1 (east), 2 (west) or 8 (no GPS), got {df[ew].iloc[i]!r}"
                )
            glon = np.where(code == "2", -np.abs(glon), glon)
        missing = (np.abs(glat - _MISSING_COORD) < 1e-6) | (np.abs(np.abs(glon) - _MISSING_COORD) < 1e-6)
        ok = np.isfinite(glat) & np.isfinite(glon) & ~missing
        lat, lon = np.where(ok, glat, lat), np.where(ok, glon, lon)
        out["coord_source"] = np.where(ok, "gps", "th")
    bad = ~(np.isfinite(lat) & np.isfinite(lon)) | (np.abs(lat) > 90) | (np.abs(lon) > 180)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{p}, line {i + 2}: point {out['point_id'].iloc[i]} has no valid coordinates (lat {lat[i]}, lon {lon[i]})"
        )
    out["lat"], out["lon"] = lat, lon
    out["lc1"] = _lc1_codes(df, cols["LC1"], p)
    lab = _col(df, "LC1_LABEL")
    names = dict(zip(lc1_table()["lc1"], lc1_table()["lc1_label"], strict=True))
    fallback = out["lc1"].map(names).fillna(out["lc1"].str[:1].map(LC1_NAMES))
    out["lc1_label"] = df[lab].str.strip().where(df[lab].str.strip() != "", fallback) if lab else fallback
    for extra in ("NUTS0", "SURVEY_DATE", "LC1_PERC", "LU1"):
        c = _col(df, extra)
        if c is not None:
            out[extra.lower()] = df[c]
    if countries is not None:
        if "nuts0" not in out:
            raise ValueError(f"{p}: countries= needs a NUTS0 column")
        out = out[out["nuts0"].isin(countries)].reset_index(drop=True)
    gdf = gpd.GeoDataFrame(out, geometry=gpd.points_from_xy(out["lon"], out["lat"]), crs="EPSG:4326")
    gdf.attrs["source_file"] = str(p)
    return gdf


def map_lc1(gdf: Any) -> tuple[Any, pd.DataFrame]:
    """Return (points with ``ts2c_label``/``ts2c_class``, -1/<NA> where unmapped; report of unmapped codes).

    The report has one row per LC1 code that has no TimeSen2Crop class: ``lc1``, ``lc1_label``, ``n_points``
    and ``reason``. No point is removed; filter on ``ts2c_label >= 0`` to keep the mapped ones.
    """
    t = lc1_table()
    if "lc1" not in getattr(gdf, "columns", []):
        raise ValueError("map_lc1 needs a column 'lc1' of LC1 codes; expected the points of eokit.datasets.lucas.open")
    code = gdf["lc1"].fillna("").astype(str).str.strip().str.upper()
    label = code.map(dict(zip(t["lc1"], t["ts2c_label"], strict=True)))
    out = gdf.copy()
    out["ts2c_label"] = label.fillna(-1).astype(np.int64)
    out["ts2c_class"] = code.map(dict(zip(t["lc1"], t["ts2c_class"], strict=True))).astype("string")
    un = out.loc[out["ts2c_label"] < 0]
    names = out["lc1_label"] if "lc1_label" in out else code
    rep = (
        pd.DataFrame({"lc1": code[un.index], "lc1_label": names[un.index]})
        .groupby("lc1", as_index=False)
        .agg(lc1_label=("lc1_label", "first"), n_points=("lc1", "size"))
    )
    rep["reason"] = np.select(
        [rep["lc1"].eq(""), rep["lc1"].str.startswith("B")],
        ["no LC1 code recorded", "cropland code without a TimeSen2Crop class"],
        "not cropland or grassland",
    )
    rep = rep.sort_values("n_points", ascending=False, ignore_index=True)
    out.attrs["unmapped"] = rep.to_dict("records")
    return out, rep

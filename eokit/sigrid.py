"""SIGRID-3 ice charts of any ice service (METNO, CIS, US NIC, DMI, ...): read, validate, decode, WMO classes.

SIGRID-3 (JCOMM Technical Report 23, WMO/TD-1214, 2004; revisions 2007, 2010, 2014) stores an ice chart as
polygons whose attribute fields hold the egg code: total concentration ``CT``; for the three thickest ice types
partial concentration ``CA``/``CB``/``CC``, stage of development ``SA``/``SB``/``SC`` and form ``FA``/``FB``/``FC``;
the stage of ice in traces ``CN`` and of any remaining ice ``CD``; the predominant and secondary forms ``CF``
(two 2-character form codes run together, e.g. ``0504``; ``99-9`` = predominant undetermined, secondary null);
and ``POLY_TYPE``. Producers differ in how they write it, and all of these are read the same:

- field names in any letter case (``poly_type``, ``POLY_TYPE``): SIGRID-3 fields are renamed to upper case,
  other fields (METNO's ``id``) are kept as they are;
- codes as strings or numbers (``"86"``, ``86``, ``86.0``, ``" 86"``); ``-9``, blank or missing = null;
- ``99`` is a code ("unknown / undetermined") where the standard lists it, never silently a number.

Codes are decoded with the shipped table ``eokit/tables/sigrid_to_wmo.csv`` (the one mapping to the six WMO
classes of :data:`eokit.schema.ICE_CLASSES`). A code outside the standard's tables raises ``ValueError`` naming
the file, the feature, the field and the allowed codes (``on_unmapped="nan"`` turns it into ``<NA>`` instead,
with a warning and a list in ``attrs["unknown_codes"]``).

WMO class of a polygon (column ``wmo_class``), see :func:`to_wmo_class`:

- ``W`` (water) is "open water". ``L`` (land), ``N`` (no data) and ``S`` (ice shelf: glacier ice afloat, not
  sea ice) have no class: they are excluded from training labels, never given one silently.
- ``I`` (ice): a total concentration ``CT`` of 00 (ice free), 01 (< 1/10) or 02 (bergy water) is "open water"
  (WMO: open water has less than 1/10 sea ice). Otherwise the dominant ice type is the one with the largest
  partial concentration (range codes by their mid value; ties go to the thicker type, the SIGRID order A, B,
  C; a single type needs no partial concentration, as SIGRID-3 leaves ``CA`` blank then). A type whose
  concentration, stage and form are all null or 99 is fill (METNO writes ``99`` there) and is ignored. If
  two or more types are given and one lacks a known partial concentration, the dominant type is unknown and
  the class is ``<NA>``. The dominant type's form gives "brash/pancake ice" for brash (01) or pancake (22);
  otherwise its stage of development gives the class; stages 80 (none) and 99 (undetermined) give ``<NA>``.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from eokit.schema import ICE_CLASSES

__all__ = [
    "read_ice_chart",
    "decode",
    "to_wmo_class",
    "code_table",
    "is_chart",
    "read_vector",
    "POLY_TYPES",
    "CODE_FIELDS",
    "REQUIRED_FIELDS",
]

#: SIGRID-3 POLY_TYPE values and their meaning (only I and W polygons can carry a WMO class).
POLY_TYPES: dict[str, str] = {"I": "ice", "W": "water", "L": "land", "N": "no data", "S": "ice shelf"}
#: SIGRID-3 code fields and the code table (``kind`` in ``code_table()``) each is decoded with.
CODE_FIELDS: dict[str, str] = {
    "CT": "concentration",
    "CA": "concentration",
    "CB": "concentration",
    "CC": "concentration",
    "SA": "stage",
    "SB": "stage",
    "SC": "stage",
    "CN": "stage",
    "CD": "stage",
    "FA": "form",
    "FB": "form",
    "FC": "form",
}
#: Fields a chart must have to be decoded (in any letter case); the other SIGRID-3 fields may be absent.
REQUIRED_FIELDS: list[str] = ["POLY_TYPE", "CT", "CA", "SA"]
_SIGRID_FIELDS = set(CODE_FIELDS) | {"POLY_TYPE", "CF", "AREA", "PERIMETER"}
_TYPES = [("A", "CA", "SA", "FA"), ("B", "CB", "SB", "FB"), ("C", "CC", "SC", "FC")]
_ID_FIELDS = ("id", "ID", "OBJECTID", "FID", "POLY_ID")
_INT_RE = re.compile(r"^[+-]?\d+(?:\.0*)?$")
TABLE: Path = Path(__file__).resolve().parent / "tables" / "sigrid_to_wmo.csv"


class _Bad(Exception):
    """A value that is not a SIGRID-3 code at all (internal; always turned into a ValueError)."""


@lru_cache(maxsize=1)
def code_table() -> pd.DataFrame:
    """Return the shipped SIGRID-3 code table (kind, code, name, wmo_class, low, high tenths)."""
    t = pd.read_csv(TABLE, dtype={"code": str}, keep_default_na=False)
    t["code"] = t["code"].astype(int)
    for col in ("low", "high"):
        t[col] = pd.to_numeric(t[col].replace({"": None}), errors="raise").astype(float)
    for c in t["wmo_class"]:
        if c and c not in ICE_CLASSES:
            raise ValueError(f"{TABLE.name}: wmo_class {c!r} is not one of {ICE_CLASSES}")
    dup = t[t.duplicated(["kind", "code"])]
    if len(dup):
        raise ValueError(f"{TABLE.name}: codes listed twice: {dup[['kind', 'code']].values.tolist()}")
    return t


@lru_cache(maxsize=4)
def _table(kind: str) -> dict[int, Any]:
    t = code_table()
    return {int(r.code): r for r in t[t.kind == kind].itertuples()}


def _allowed(kind: str) -> str:
    return ", ".join(f"{c:02d}" for c in sorted(_table(kind))) + " or -9/blank (null)"


def _is_null(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, (float, np.floating)) and math.isnan(v):
        return True
    return isinstance(v, str) and v.strip() in ("", "-9")


def _parse_code(v: Any) -> int | None:
    """One code as stored (str, int, float; -9/blank/NaN = null) -> int or None; _Bad if not an integer."""
    if _is_null(v):
        return None
    if isinstance(v, (bool, np.bool_)):
        raise _Bad(repr(v))
    if isinstance(v, (int, np.integer)):
        n = int(v)
    elif isinstance(v, (float, np.floating)):
        if not float(v).is_integer():
            raise _Bad(repr(v))
        n = int(v)
    elif isinstance(v, str) and _INT_RE.match(v.strip()):
        n = int(float(v.strip()))
    else:
        raise _Bad(repr(v))
    if n == -9:
        return None
    if n < 0:
        raise _Bad(repr(v))
    return n


def _parse_cf(v: Any) -> tuple[int | None, int | None]:
    """CF (predominant + secondary form, two 2-character codes: ``0504``, ``99-9``) -> (FP, FS)."""
    if _is_null(v):
        return None, None
    if isinstance(v, (bool, np.bool_)):
        raise _Bad(repr(v))
    if isinstance(v, (int, np.integer)) or (isinstance(v, (float, np.floating)) and float(v).is_integer()):
        if int(v) == -9:
            return None, None
        s = f"{int(v):04d}" if int(v) >= 0 else str(int(v))
    elif isinstance(v, str):
        s = v.strip()
        s = s.zfill(4) if s.isdigit() and len(s) == 3 else s
    else:
        raise _Bad(repr(v))
    if len(s) != 4:
        raise _Bad(repr(v))
    return _parse_code(s[:2]), _parse_code(s[2:])


def _row(gdf: Any, i: int) -> str:
    for f in _ID_FIELDS:
        if f in gdf.columns and not _is_null(gdf[f].iloc[i]):
            return f"feature {i} ({f} {gdf[f].iloc[i]})"
    return f"feature {i}"


def is_chart(gdf: Any) -> bool:
    """Return True when `gdf` (a (Geo)DataFrame) has a POLY_TYPE field in any letter case (a SIGRID-3 chart)."""
    return any(str(c).strip().upper() == "POLY_TYPE" for c in gdf.columns)


def _normalise_names(gdf: Any, src: str) -> Any:
    geom = getattr(gdf, "_geometry_column_name", None)
    ren = {c: str(c).strip().upper() for c in gdf.columns if c != geom and str(c).strip().upper() in _SIGRID_FIELDS}
    seen: dict[str, list[Any]] = {}
    for c, u in ren.items():
        seen.setdefault(u, []).append(c)
    twice = {u: cs for u, cs in seen.items() if len(cs) > 1}
    if twice:
        raise ValueError(
            f"{src}: fields {twice} name the same SIGRID-3 field in different letter case; expected each field once"
        )
    missing = [f for f in REQUIRED_FIELDS if f not in ren.values()]
    if missing:
        raise ValueError(
            f"{src}: missing SIGRID-3 field(s) {missing} (in any letter case); expected at least "
            f"{REQUIRED_FIELDS}; fields are {[str(c) for c in gdf.columns]}"
        )
    return gdf.rename(columns=ren)


def _decode_codes(gdf: Any, field: str, kind: str, src: str, nan: bool, unknown: dict[str, list[int]]) -> Any:
    table = _table(kind)
    out: list[Any] = []
    for i, v in enumerate(gdf[field].tolist()):
        try:
            n = _parse_code(v)
        except _Bad:
            raise ValueError(
                f"{src}: {_row(gdf, i)}, field {field} holds {v!r}, which is not a SIGRID-3 code; "
                f"expected an integer {kind} code: {_allowed(kind)}"
            ) from None
        if n is not None and n not in table:
            if not nan:
                raise ValueError(
                    f"{src}: {_row(gdf, i)}, field {field} holds {n:02d}, which is not a SIGRID-3 "
                    f"{kind} code; expected one of {_allowed(kind)}"
                )
            unknown.setdefault(field, []).append(n)
            n = None
        out.append(pd.NA if n is None else n)
    return pd.array(out, dtype="Int64")


def _decode_cf(gdf: Any, src: str, nan: bool, unknown: dict[str, list[int]]) -> tuple[Any, Any]:
    table = _table("form")
    fp, fs = [], []
    for i, v in enumerate(gdf["CF"].tolist()):
        try:
            pair = _parse_cf(v)
        except _Bad:
            raise ValueError(
                f"{src}: {_row(gdf, i)}, field CF holds {v!r}; expected two 2-character SIGRID-3 "
                "form codes run together (predominant, secondary; e.g. '0504', '99-9') or -9/blank"
            ) from None
        vals = []
        for name, n in zip(("FP", "FS"), pair, strict=True):
            if n is not None and n not in table:
                if not nan:
                    raise ValueError(
                        f"{src}: {_row(gdf, i)}, field CF holds {v!r}: {name} {n:02d} is not a "
                        f"SIGRID-3 form code; expected one of {_allowed('form')}"
                    )
                unknown.setdefault("CF", []).append(n)
                n = None
            vals.append(pd.NA if n is None else n)
        fp.append(vals[0])
        fs.append(vals[1])
    return pd.array(fp, dtype="Int64"), pd.array(fs, dtype="Int64")


def _decode_poly_type(gdf: Any, src: str) -> Any:
    out = []
    for i, v in enumerate(gdf["POLY_TYPE"].tolist()):
        s = "" if _is_null(v) else str(v).strip().upper()
        if s not in POLY_TYPES:
            raise ValueError(
                f"{src}: {_row(gdf, i)}, field POLY_TYPE holds {v!r}; expected one of "
                + ", ".join(f"{k} ({m})" for k, m in POLY_TYPES.items())
            )
        out.append(s)
    return pd.array(out, dtype="string")


def _plain(gdf: Any, fields: list[str]) -> list[dict[str, Any]]:
    """Rows of `fields` as dicts of int / str / None (no pd.NA), for the per-polygon rules."""
    cols = {f: [None if v is pd.NA or v is None else v for v in gdf[f].tolist()] for f in fields}
    return [dict(zip(cols, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]


def _check_sums(gdf: Any, src: str) -> None:
    """Partial concentrations must fit in the total: sum of their lowest tenths <= the total's highest."""
    conc = _table("concentration")
    for i, rec in enumerate(_plain(gdf, ["CT", "CA", "CB", "CC"])):
        if rec["CT"] is None or math.isnan(conc[rec["CT"]].high):
            continue
        given = {f: rec[f] for f in ("CA", "CB", "CC") if rec[f] is not None and rec[f] != 99}
        total = sum(conc[c].low for c in given.values())
        if total > conc[rec["CT"]].high:
            parts = ", ".join(f"{f}={c:02d}" for f, c in given.items())
            raise ValueError(
                f"{src}: {_row(gdf, i)}, partial concentrations {parts} add up to at least "
                f"{total:g}/10, more than the total CT={rec['CT']:02d}; expected CA + CB + CC <= CT"
            )


def decode(
    gdf: Any, source: str | os.PathLike[str] = "GeoDataFrame", on_unmapped: Literal["raise", "nan"] = "raise"
) -> Any:
    """Return a copy of SIGRID-3 chart `gdf` with upper-case fields, Int64 codes, names and ``wmo_class``.

    Adds ``<FIELD>_name`` for every code field and ``POLY_TYPE``, ``FP``/``FS`` (from ``CF``), ``wmo_class``
    (string, ``<NA>`` where none applies) and ``dominant`` (``A``/``B``/``C``). Absent optional fields are
    added as null. `on_unmapped` says what a code outside the SIGRID-3 tables does: ``"raise"`` (ValueError
    naming file, feature, field and allowed codes) or ``"nan"`` (``<NA>``, listed in ``attrs["unknown_codes"]``).
    """
    if on_unmapped not in ("raise", "nan"):
        raise ValueError(f"on_unmapped={on_unmapped!r}; expected 'raise' or 'nan'")
    src = str(source)
    gdf = _normalise_names(gdf, src).copy()
    names = {k: {c: r.name for c, r in _table(k).items()} for k in ("concentration", "stage", "form")}
    unknown: dict[str, list[int]] = {}
    for field, kind in CODE_FIELDS.items():
        if field not in gdf.columns:
            gdf[field] = pd.array([pd.NA] * len(gdf), dtype="Int64")
        gdf[field] = _decode_codes(gdf, field, kind, src, on_unmapped == "nan", unknown)
        gdf[f"{field}_name"] = gdf[field].map(names[kind]).astype("string")
    if "CF" not in gdf.columns:
        gdf["CF"] = pd.array([pd.NA] * len(gdf), dtype="string")
    gdf["FP"], gdf["FS"] = _decode_cf(gdf, src, on_unmapped == "nan", unknown)
    gdf["CF"] = pd.array([pd.NA if _is_null(v) else str(v).strip() for v in gdf["CF"]], dtype="string")
    for f in ("FP", "FS"):
        gdf[f"{f}_name"] = gdf[f].map(names["form"]).astype("string")
    gdf["POLY_TYPE"] = _decode_poly_type(gdf, src)
    gdf["POLY_TYPE_name"] = gdf["POLY_TYPE"].map(POLY_TYPES).astype("string")
    _check_sums(gdf, src)
    cls, dom = _classes(gdf)
    gdf["wmo_class"], gdf["dominant"] = cls, dom
    if unknown:
        name = Path(src).name
        gdf.attrs.setdefault("unknown_codes", {})[name] = {f: sorted(set(v)) for f, v in unknown.items()}
        warnings.warn(
            f"{src}: codes outside the SIGRID-3 tables read as <NA> (on_unmapped='nan'): "
            f"{gdf.attrs['unknown_codes'][name]}",
            UserWarning,
            stacklevel=2,
        )
    gdf.attrs["sigrid_decoded"] = True
    return gdf


def _mid(code: int | None) -> float | None:
    if code is None or code == 99:
        return None
    r = _table("concentration")[code]
    return (r.low + r.high) / 2.0


def _dominant(rec: dict[str, Any]) -> str | None:
    def fill(v: int | None) -> bool:
        return v is None or v == 99

    given = [t for t in _TYPES if not (fill(rec[t[1]]) and fill(rec[t[2]]) and fill(rec[t[3]]))]
    if not given:
        return None
    if len(given) == 1:
        return given[0][0]
    mids = [_mid(rec[c]) for _, c, _, _ in given]
    known = [m for m in mids if m is not None]
    if len(known) < len(mids):
        return None
    return given[int(np.argmax(known))][0]  # argmax keeps the first (thickest) of equal concentrations


def _classes(gdf: Any) -> tuple[Any, Any]:
    stage, form, conc = (_table(k) for k in ("stage", "form", "concentration"))
    fields = ["POLY_TYPE", "CT"] + [f for t in _TYPES for f in t[1:]]
    cls: list[Any] = []
    dom: list[Any] = []
    for rec in _plain(gdf, fields):
        c, d = None, None
        if rec["POLY_TYPE"] == "W":
            c = "open water"
        elif rec["POLY_TYPE"] == "I":
            ct = rec["CT"]
            if ct is not None and conc[ct].wmo_class:
                c = conc[ct].wmo_class
            else:
                d = _dominant(rec)
                if d is not None:
                    _, _, s, f = next(t for t in _TYPES if t[0] == d)
                    by_form = form[rec[f]].wmo_class if rec[f] is not None else ""
                    by_stage = stage[rec[s]].wmo_class if rec[s] is not None else ""
                    c = by_form or by_stage or None
        cls.append(pd.NA if c is None else c)
        dom.append(pd.NA if d is None else d)
    return pd.array(cls, dtype="string"), pd.array(dom, dtype="string")


def to_wmo_class(gdf: Any, on_unmapped: Literal["nan", "raise"] = "nan") -> pd.Series:
    """Return each polygon's WMO ice class (eokit.schema.ICE_CLASSES name; <NA> where none applies).

    `gdf` is a SIGRID-3 chart, raw or decoded; the rules are in this module's docstring. Codes outside the
    SIGRID-3 tables always raise (unless `gdf` was decoded with ``on_unmapped="nan"``). With
    ``on_unmapped="raise"`` an ice polygon without a class (e.g. stage 99 undetermined) raises too.
    """
    dec = gdf if gdf.attrs.get("sigrid_decoded") and "wmo_class" in gdf.columns else decode(gdf)
    out = pd.Series(dec["wmo_class"].to_numpy(), index=gdf.index, dtype="string", name="wmo_class")
    if on_unmapped == "raise":
        bad = ((dec["POLY_TYPE"] == "I").to_numpy(dtype=bool)) & out.isna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            r = dec.iloc[i]
            raise ValueError(
                f"polygon {gdf.index[i]}: ice with CT={r['CT']}, CA={r['CA']}, stage SA={r['SA']}, "
                f"SB={r['SB']}, SC={r['SC']} and form FA={r['FA']} has no WMO class in "
                f"{TABLE.name} (dominant ice type {r['dominant']})"
            )
    return out


def read_vector(path: str | os.PathLike[str], layer: str | int | None = None) -> Any:
    """Return the features of a vector file GDAL reads (Shapefile, GeoPackage, ...) as a GeoDataFrame."""
    import geopandas as gpd

    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"vector file {p} does not exist")
    try:
        return gpd.read_file(p, layer=layer) if layer is not None else gpd.read_file(p)
    except Exception as e:  # pyogrio/fiona raise their own types (DataSourceError, DriverError, ...)
        raise ValueError(
            f"{p}: not a vector file GDAL can read ({type(e).__name__}: {e}); expected a "
            "Shapefile (.shp with .shx/.dbf/.prj), GeoPackage or another OGR format"
        ) from None


def read_ice_chart(
    path: str | os.PathLike[str], layer: str | int | None = None, on_unmapped: Literal["raise", "nan"] = "raise"
) -> Any:
    """Return the decoded polygons (GeoDataFrame, see :func:`decode`) of one SIGRID-3 chart of any name."""
    p = Path(path).expanduser()
    if p.is_dir():
        raise ValueError(f"{p} is a folder; expected one SIGRID-3 chart file (e.g. a .shp or .gpkg)")
    gdf = read_vector(p, layer)
    if len(gdf) == 0:
        raise ValueError(f"{p}: no features; expected the polygons of a SIGRID-3 ice chart")
    if gdf.crs is None:
        raise ValueError(f"{p}: no CRS (missing .prj?); expected the chart's projected CRS")
    geom = gdf.geometry
    empty = np.flatnonzero((geom.isna() | geom.is_empty).to_numpy())
    if len(empty):
        raise ValueError(f"{p}: feature(s) {empty[:10].tolist()} have no geometry; expected one polygon each")
    kinds = set(geom.geom_type)
    if not kinds <= {"Polygon", "MultiPolygon"}:
        raise ValueError(f"{p}: geometry types {sorted(kinds)}; expected Polygon/MultiPolygon (SIGRID-3 charts)")
    return decode(gdf, source=p, on_unmapped=on_unmapped)

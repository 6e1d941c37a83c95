"""Generate SIGRID-3 ice charts the way ice services write them (here: the Canadian Ice Service dialect).

A CIS chart (as seen in real files): one shapefile, Lambert conformal conic on WGS84, fields ``AREA, PERIMETER,
CT, CA, SA, FA, CB, SB, FB, CC, SC, FC, CN, CD, CF, POLY_TYPE`` in upper case, no ``id`` field, every code a
2-character STRING (``CF`` 4 characters: predominant + secondary form, e.g. ``99-9``), ``-9`` for null, and
POLY_TYPE ``I``, ``L``, ``W`` and ``N``. The METNO dialect is written by ``generators.metno``.
"""

from __future__ import annotations

from pathlib import Path

#: The CIS Lambert conformal conic (standard parallels 49 N / 77 N, origin 40 N 100 W) on WGS84.
CIS_CRS = "+proj=lcc +lat_1=49 +lat_2=77 +lat_0=40 +lon_0=-100 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"
FIELDS = [
    "AREA",
    "PERIMETER",
    "CT",
    "CA",
    "SA",
    "FA",
    "CB",
    "SB",
    "FB",
    "CC",
    "SC",
    "FC",
    "CN",
    "CD",
    "CF",
    "POLY_TYPE",
]
_N = "-9"
#: (POLY_TYPE, CT, CA, SA, FA, CB, SB, FB, CC, SC, FC, CN, CD, CF) per polygon, and the WMO class expected.
ROWS: list[tuple[tuple[str, ...], str | None]] = [
    (("W", "01", _N, _N, _N, _N, _N, _N, _N, _N, _N, _N, _N, _N), "open water"),
    (("I", "92", _N, "93", "08", _N, _N, _N, _N, _N, _N, _N, _N, "99-9"), "thick or deformed ice"),  # fast FY
    (("I", "91", "60", "95", "04", "30", "87", "04", _N, _N, _N, _N, _N, "99-9"), "thick or deformed ice"),
    # old ice listed first (thickest) but first-year ice dominates by partial concentration (7/10 vs 2/10)
    (("I", "90", "20", "95", "03", "70", "86", "04", _N, _N, _N, "97", _N, "0403"), "thin to medium first-year ice"),
    (("I", "79", "50", "85", "03", "30", "82", _N, _N, _N, _N, _N, _N, "99-9"), "young ice"),
    (("I", "13", _N, "81", "22", _N, _N, _N, _N, _N, _N, _N, _N, "2299"), "brash/pancake ice"),
    (("I", "92", "50", "93", "05", "30", "91", "05", "20", "87", "04", "95", "84", "0504"), "thick or deformed ice"),
    (("I", "02", _N, _N, _N, _N, _N, _N, _N, _N, _N, _N, _N, _N), "open water"),  # bergy water
    (("I", "46", "40", "99", "99", _N, _N, _N, _N, _N, _N, _N, _N, "99-9"), None),  # stage undetermined
    (("L", _N, _N, _N, _N, _N, _N, _N, _N, _N, _N, _N, _N, _N), None),
    (("N", _N, _N, _N, _N, _N, _N, _N, _N, _N, _N, _N, _N, _N), None),
]
EXPECTED: list[str | None] = [c for _, c in ROWS]


def records() -> list[dict[str, str]]:
    """Return the attribute records of the CIS chart (string codes, as in the real files), without geometry."""
    keys = ["POLY_TYPE", "CT", "CA", "SA", "FA", "CB", "SB", "FB", "CC", "SC", "FC", "CN", "CD", "CF"]
    return [dict(zip(keys, vals, strict=True)) for vals, _ in ROWS]


def frame(records_: list[dict[str, object]] | None = None, crs: str = CIS_CRS):
    """Return a GeoDataFrame of `records_` (default: the CIS chart) as side-by-side squares in `crs`."""
    import geopandas as gpd
    from shapely.geometry import box

    recs = records() if records_ is None else records_
    geoms = [
        box(-1.2e6 + i * 20000.0, 2.0e6, -1.2e6 + (i + 1) * 20000.0, 2.0e6 + 15000.0 + 500.0 * i)
        for i in range(len(recs))
    ]
    rows = []
    for r, g in zip(recs, geoms, strict=True):
        rows.append({"AREA": g.area, "PERIMETER": g.length, **r})
    gdf = gpd.GeoDataFrame(rows, geometry=geoms, crs=crs)
    order = [f for f in FIELDS if f in gdf.columns] + [c for c in gdf.columns if c not in FIELDS]
    return gdf[order]


def write_cis(path: str | Path, records_: list[dict[str, object]] | None = None, driver: str | None = None) -> Path:
    """Write a CIS-style SIGRID-3 chart to `path` (any name; .shp or .gpkg); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if driver:
        frame(records_).to_file(path, driver=driver)
    else:
        frame(records_).to_file(path)
    return path

"""Generate a small LUCAS 2018 point CSV in the Eurostat primary-data layout (upper-case columns, quoted).

Columns written (a subset of the 117 published, in published order): POINT_ID, NUTS0, TH_LAT, TH_LONG,
SURVEY_DATE, GPS_LAT, GPS_EW, GPS_LONG, LC1, LC1_SPEC, LC1_PERC, LU1. GPS fields hold 88.888888 when no GPS
fix was recorded, GPS_LONG is unsigned with GPS_EW 1 = east, 2 = west. ``harmonised=True`` writes the JRC
harmonised variant instead (lower-case names, an ``lc1_label`` column).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

#: (LC1 code, label) of the points written, in order; includes non-crop and unmapped crop codes.
CODES = [
    ("B11", "Common wheat"),
    ("B13", "Barley"),
    ("B16", "Maize"),
    ("B32", "Rape and turnip rape"),
    ("B31", "Sunflower"),
    ("B33", "Soya"),
    ("E20", "Grassland without tree/shrub cover"),
    ("B82", "Vineyards"),
    ("C10", "Broadleaved woodland"),
    ("A21", "Non built-up area features"),
    ("B22", "Sugar beet"),
    ("G11", "Inland fresh running water"),
    ("C10", "Broadleaved woodland"),
]


def make(path: str | Path, seed: int = 0, harmonised: bool = False) -> Path:
    """Write the CSV at `path` (one point per CODES entry, in Austria) and return it."""
    rng = np.random.default_rng(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = [
        "POINT_ID",
        "NUTS0",
        "TH_LAT",
        "TH_LONG",
        "SURVEY_DATE",
        "GPS_LAT",
        "GPS_EW",
        "GPS_LONG",
        "LC1",
        "LC1_SPEC",
        "LC1_PERC",
        "LU1",
    ]
    if harmonised:
        cols = [c.lower() for c in cols] + ["lc1_label"]
    rows = []
    for i, (code, label) in enumerate(CODES):
        lat, lon = 47.0 + rng.uniform(0, 1.5), 13.0 + rng.uniform(0, 3.0)
        gps = i % 3 != 2
        r = [
            str(47001300 + 2000 * i),
            "AT",
            f"{lat:.9f}",
            f"{lon:.9f}",
            "21/06/18",
            f"{lat + 1e-4:.6f}" if gps else "88.888888",
            "1" if gps else "8",
            f"{lon + 1e-4:.6f}" if gps else "88.888888",
            code,
            "8",
            "5",
            "U111",
        ]
        if harmonised:
            r.append(label)
        rows.append(r)
    with path.open("w", newline="") as f:
        w = csv.writer(f, quoting=csv.QUOTE_NONNUMERIC if not harmonised else csv.QUOTE_MINIMAL)
        w.writerow(cols)
        w.writerows(rows)
    return path


def set_field(path: str | Path, line: int, column: str, value: str) -> Path:
    """Rewrite one field of the CSV at `path` (`line` counts the header as line 1) and return the path."""
    path = Path(path)
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    rows[line - 1][rows[0].index(column)] = value
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    return path

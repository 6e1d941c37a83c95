"""Generate METNO SIGRID-3 sea-ice shapefiles in the v1 and v2 folder layouts (Zenodo 3695276 / 4683174).

v1 (assumed flat, as the record lists the files): ``<root>/seaice_s1_<yyyymmddThhmmss>.shp`` (+ .shx .dbf .prj)
and ``<root>/icebergs/icebergs_s1_<stamp>.shp``. v2: the same under
``<root>/EE_Polar_Training_Dataset_v-2-0-0/EE/Sea_Ice-labels/`` with the extra ``SD`` field and ``-SW``/``-NE``
halves for 20180213. Polygons are in EPSG:3413 (NSIDC sea ice polar stereographic north), metres.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SCENES = ["20180116T075430", "20180213T175444"]
V2_DIR = "EE_Polar_Training_Dataset_v-2-0-0/EE/Sea_Ice-labels"
#: (poly_type, CT, CA, SA, FA) rows written for each scene; codes as strings, as in SIGRID-3 shapefiles.
ROWS = [
    ("W", "01", "-9", "-9", "-9"),
    ("I", "92", "92", "93", "08"),  # thick first-year, fast ice
    ("I", "60", "60", "83", "04"),  # young ice
    ("I", "30", "30", "81", "-9"),  # new ice
    ("I", "50", "50", "91", "22"),  # pancake
    ("L", "-9", "-9", "-9", "-9"),
]


def _frame(seed: int, v2: bool, x0: float):
    import geopandas as gpd
    from shapely.geometry import box

    rng = np.random.default_rng(seed)
    recs = []
    for i, (pt, ct, ca, sa, fa) in enumerate(ROWS):
        g = box(x0 + i * 10000.0, -1.0e6, x0 + (i + 1) * 10000.0, -1.0e6 + 8000.0 + rng.integers(0, 2000))
        r = {
            "id": i + 1,
            "CA": ca,
            "SA": sa,
            "FA": fa,
            "CB": "-9",
            "SB": "-9",
            "FB": "-9",
            "CT": ct,
            "poly_type": pt,
            "area": g.area,
            "perimeter": g.length,
            "geometry": g,
        }
        if v2:
            r["SD"] = "-9"
        recs.append(r)
    return gpd.GeoDataFrame(recs, geometry="geometry", crs="EPSG:3413")


def make(root: str | Path, version: str = "v1", seed: int = 0) -> Path:
    """Write shapefiles for SCENES in the `version` layout under `root`; return the folder holding them."""
    import geopandas as gpd
    from shapely.geometry import Point

    root = Path(root)
    folder = root / V2_DIR if version == "v2" else root
    folder.mkdir(parents=True, exist_ok=True)
    for k, s in enumerate(SCENES):
        if version == "v2" and s.startswith("20180213"):
            for j, half in enumerate(["SW", "NE"]):
                _frame(seed + 10 * k + j, True, 200000.0 * j).to_file(folder / f"seaice_s1_{s}-{half}.shp")
        else:
            _frame(seed + 10 * k, version == "v2", 0.0).to_file(folder / f"seaice_s1_{s}.shp")
    berg = (root / "icebergs") if version == "v1" else folder.parent / "Icebergs" / "icebergs"
    berg.mkdir(parents=True, exist_ok=True)
    gpd.GeoDataFrame(
        {"id": [1, 2]}, geometry=[Point(0, -1e6).buffer(300), Point(5e3, -1e6).buffer(200)], crs="EPSG:3413"
    ).to_file(berg / f"icebergs_s1_{SCENES[0]}.shp")
    return folder

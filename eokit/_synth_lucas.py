"""LUCAS 2018 survey points over the sample Sentinel-2 stack of :mod:`eokit.synthetic`, in Eurostat's layout.

The CSV has the 97 columns of the Eurostat LUCAS 2018 primary data, in their published order and quoting
(``POINT_ID,"NUTS0",...``; text quoted, numbers not; 8, 88, 888 and 88.888888 where a field does not apply).
Each point inside a field of the stack records the LC1 code a surveyor would give its declared crop
(``INVEKOS_LC1``: spring barley is barley, B13, like winter barley: LUCAS does not record the sowing season);
points in the stack's woods and farmstead record non-crop codes (no TimeSen2Crop class) and a few points lie
outside the stack. The points are far denser than the 2 km LUCAS grid (which would put at most one point in a
1 km stack); the 8-digit ``POINT_ID`` values are therefore numbered, not the grid's.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from eokit._io import atomic_output
from eokit._synth_crops import _rng
from eokit._synth_s2 import field_layout

#: The LC1 code of the LUCAS 2018 nomenclature a surveyor records for each crop of the sample's fields.
INVEKOS_LC1: dict[str, str] = {
    "KOERNERERBSEN": "B41",  # dry pulses
    "DAUERWIESE": "E20",  # grassland without tree/shrub cover
    "KOERNERMAIS": "B16",
    "SILOMAIS": "B16",
    "KARTOFFELN": "B21",
    "SONNENBLUMEN": "B31",
    "SOJABOHNEN": "B33",
    "WINTERGERSTE": "B13",
    "KUEMMEL": "B37",  # caraway: other non-permanent industrial crops (aromatic plants)
    "WINTERROGGEN": "B14",
    "WINTERRAPS": "B32",
    "ZUCKERRUEBEN": "B22",
    "SOMMERGERSTE": "B13",  # barley: LUCAS has one code for winter and spring barley
    "WINTERWEICHWEIZEN": "B11",
    "WINTERTRITICALE": "B18",
    "WEINGARTEN": "B82",
    "OELKUERBIS": "B35",  # oil pumpkin: other fibre and oleaginous crops
}

#: The columns of the Eurostat LUCAS 2018 primary data, in published order.
COLUMNS: list[str] = (
    "POINT_ID NUTS0 NUTS1 NUTS2 NUTS3 TH_LAT TH_LONG OFFICE_PI EX_ANTE SURVEY_DATE CAR_LATITUDE CAR_EW "
    "CAR_LONGITUDE GPS_PROJ GPS_PREC GPS_ALTITUDE GPS_LAT GPS_EW GPS_LONG OBS_DIST OBS_DIRECT OBS_TYPE LC1 "
    "LC1_SPEC LC1_PERC LC2 LC2_SPEC LC2_PERC LU1 LU1_TYPE LU1_PERC LU2 LU2_TYPE LU2_PERC PARCEL_AREA_HA "
    "TREE_HEIGHT_SURVEY TREE_HEIGHT_MATURITY FEATURE_WIDTH LNDMNG_PLOUGH LM_PLOUGH_SLOPE LM_PLOUGH_DIRECT "
    "LM_STONE_WALLS CROP_RESIDUES LM_GRASS_MARGINS GRAZING SPECIAL_STATUS LC_LU_SPECIAL_REMARK CPRN_CANDO "
    "CPRN_LC CPRN_LC1N CPRNC_LC1E CPRNC_LC1S CPRNC_LC1W CPRN_LC1N_BRDTH CPRN_LC1E_BRDTH CPRN_LC1S_BRDTH "
    "CPRN_LC1W_BRDTH CPRN_LC1N_NEXT CPRN_LC1E_NEXT CPRN_LC1S_NEXT CPRN_LC1W_NEXT CPRN_URBAN "
    "CPRN_IMPERVIOUS_PERC INSPIRE_PLCC1 INSPIRE_PLCC2 INSPIRE_PLCC3 INSPIRE_PLCC4 INSPIRE_PLCC5 INSPIRE_PLCC6 "
    "INSPIRE_PLCC7 INSPIRE_PLCC8 EUNIS_COMPLEX GRASSLAND_SAMPLE GRASS_CANDO WM WM_SOURCE WM_TYPE WM_DELIVERY "
    "EROSION_CANDO SOIL_STONES_PERC BIO_SAMPLE SOIL_BIO_TAKEN BULK0_10_SAMPLE SOIL_BLK_0_10_TAKEN "
    "BULK10_20_SAMPLE SOIL_BLK_10_20_TAKEN BULK20_30_SAMPLE SOIL_BLK_20_30_TAKEN STANDARD_SAMPLE SOIL_STD_TAKEN "
    "ORGANIC_SAMPLE SOIL_ORG_DEPTH_CANDO PHOTO_POINT PHOTO_NORTH PHOTO_EAST PHOTO_SOUTH PHOTO_WEST"
).split()
#: Columns written as numbers (unquoted); every other column is quoted text.
_NUMERIC = set(
    "POINT_ID TH_LAT TH_LONG CAR_LATITUDE CAR_LONGITUDE GPS_PREC GPS_ALTITUDE GPS_LAT GPS_LONG OBS_DIST "
    "LC1_PERC LC2_PERC LU1_PERC LU2_PERC CROP_RESIDUES CPRN_CANDO CPRN_LC1N_BRDTH CPRN_LC1E_BRDTH CPRN_LC1S_BRDTH "
    "CPRN_LC1W_BRDTH CPRN_IMPERVIOUS_PERC INSPIRE_PLCC1 INSPIRE_PLCC2 INSPIRE_PLCC3 INSPIRE_PLCC4 INSPIRE_PLCC5 "
    "INSPIRE_PLCC6 INSPIRE_PLCC7 INSPIRE_PLCC8 GRASS_CANDO EROSION_CANDO SOIL_STONES_PERC SOIL_ORG_DEPTH_CANDO "
    "PHOTO_POINT PHOTO_NORTH PHOTO_EAST PHOTO_SOUTH PHOTO_WEST".split()
)
#: Values of an in-situ point where a survey item does not apply (from column LU2 on, in column order).
_NOT_APPLICABLE: dict[str, str] = dict(
    zip(
        COLUMNS[31:],
        "8 8 0 3 8 8 8 8 8 8 8 8 8 8 4 10 8 8 88 88 88 88 888 888 888 888 8 8 8 8 1 888 888 888 888 888 888 "
        "888 888 888 88 0 8 8 8 8 8 8 888 0 8 0 8 0 8 0 8 0 8 0 8 1 1 1 1 1".split(),
        strict=True,
    )
)
#: (LC1, LU1) of the non-crop points: broadleaved and spruce woodland, farm buildings.
_NON_CROP = {"forest": [("C10", "U120"), ("C21", "U120")], "farmstead": [("A11", "U111")]}


def _stack_grid(stack: Path) -> tuple[Any, int, tuple[float, float]]:
    """Return (CRS, side in pixels, upper-left corner) of the stack's first reflectance GeoTIFF."""
    import rasterio

    tifs = sorted(stack.glob("S2_*.tif"))
    if not tifs:
        raise FileNotFoundError(f"{stack}: no S2_<YYYYMMDD>.tif; expected a stack written by make_s2_stack")
    with rasterio.open(tifs[0]) as src:
        return src.crs, int(src.width), (float(src.transform.c), float(src.transform.f))


def _sites(stack: Path, seed: int, n_fields: int, n_crop: int, n_outside: int) -> tuple[Any, list[str], list[str]]:
    """Return (points in the stack's CRS, LC1 codes, LU1 codes): field interiors, woods/farmstead, outside."""
    import geopandas as gpd
    from shapely import affinity

    crs, size, (x0, y0) = _stack_grid(stack)
    rng = _rng(seed, "lucas")
    fields = gpd.read_file(stack / "fields.gpkg").to_crs(crs)
    inner = fields.geometry.buffer(-15.0)  # a pure pixel around each point
    order = [i for i in rng.permutation(len(fields)) if not inner.iloc[i].is_empty][:n_crop]
    pts, lc1, lu1 = [], [], []
    for i in sorted(order):
        pts.append(inner.iloc[i].representative_point())
        lc1.append(INVEKOS_LC1[str(fields["crop_code"].iloc[i])])
        lu1.append("U111")
    polys, kinds = field_layout(seed, size * 10.0, n_fields)  # the same layout make_s2_stack drew
    for kind, codes in _NON_CROP.items():
        shapes = [p for p, k in zip(polys, kinds, strict=True) if k == kind]
        for j, (code, use) in enumerate(codes[: len(shapes)]):
            shape = affinity.affine_transform(shapes[j], [1, 0, 0, -1, x0, y0]).buffer(-10.0)
            if not shape.is_empty:
                pts.append(shape.representative_point())
                lc1.append(code)
                lu1.append(use)
    side = size * 10.0
    for k in range(n_outside):  # 2..5 km beyond the stack, on cropland and grassland
        angle, dist = rng.uniform(0, 2 * np.pi), side / 2 + rng.uniform(2000, 5000)
        pts.append(
            gpd.points_from_xy([x0 + side / 2 + dist * np.cos(angle)], [y0 - side / 2 + dist * np.sin(angle)])[0]
        )
        lc1.append(("B11", "B16", "E20")[k % 3])
        lu1.append("U111")
    return gpd.GeoSeries(pts, crs=crs), lc1, lu1


def _row(i: int, lat: float, lon: float, lc1: str, lu1: str, rng: np.random.Generator) -> dict[str, str]:
    """Return one survey record (column -> text as written) of an in-situ point."""
    glat, glon = lat + rng.normal(0, 3e-5), lon + rng.normal(0, 4e-5)  # GPS a few metres from the grid point
    dist = int(round(np.hypot((glat - lat) * 111_320.0, (glon - lon) * 111_320.0 * np.cos(np.radians(lat)))))
    crop = lc1[0] == "B"
    r = dict(_NOT_APPLICABLE)
    r.update(
        POINT_ID=str(47_005_300 + 1000 * (i // 10) + 2 * (i % 10)),
        NUTS0="AT",
        NUTS1="AT2",
        NUTS2="AT22",
        NUTS3="AT224",
        TH_LAT=f"{lat:.9f}",
        TH_LONG=f"{lon:.9f}",
        OFFICE_PI="0",
        EX_ANTE="0",
        SURVEY_DATE=f"{int(rng.integers(4, 29)):02d}/{int(rng.integers(5, 9)):02d}/18",
        CAR_LATITUDE=f"{lat + rng.normal(0, 8e-4):.6f}",
        CAR_EW="1",
        CAR_LONGITUDE=f"{lon + rng.normal(0, 1e-3):.6f}",
        GPS_PROJ="1",
        GPS_PREC=str(int(rng.integers(2, 7))),
        GPS_ALTITUDE=str(int(rng.integers(330, 420))),
        GPS_LAT=f"{glat:.6f}",
        GPS_EW="1",
        GPS_LONG=f"{glon:.6f}",
        OBS_DIST=str(dist),
        OBS_DIRECT="1",
        OBS_TYPE="1",
        LC1=lc1,
        LC1_SPEC="8",
        LC1_PERC="100",
        LC2="8",
        LC2_SPEC="8",
        LC2_PERC="0",
        LU1=lu1,
        LU1_TYPE="8",
        LU1_PERC="100",
        PARCEL_AREA_HA="3" if crop else "5",
        CROP_RESIDUES="2" if crop else "8",
    )
    return r


def make_lucas_points(
    path: str | os.PathLike,
    stack: str | os.PathLike,
    seed: int = 0,
    n_fields: int = 40,
    n_crop: int = 20,
    n_outside: int = 3,
    overwrite: bool = False,
) -> Path:
    """Write LUCAS 2018 points over a stack of `make_s2_stack` (same `seed`, `n_fields`) and return the CSV's path.

    `n_crop` points in distinct fields (their declared crop's LC1 code), one in each of up to two woods
    and the farmstead (non-crop codes), `n_outside` beyond the stack; Eurostat primary-data layout.
    """
    import geopandas as gpd

    pts, lc1, lu1 = _sites(Path(stack), seed, n_fields, n_crop, n_outside)
    geo = gpd.GeoSeries(pts).to_crs("EPSG:4326")
    rng = _rng(seed, "lucas", "records")
    rows = [_row(i, g.y, g.x, c, u, rng) for i, (g, c, u) in enumerate(zip(geo, lc1, lu1, strict=True))]
    text = ",".join([COLUMNS[0]] + [f'"{c}"' for c in COLUMNS[1:]]) + "\n"
    for r in rows:
        text += ",".join(r[c] if c in _NUMERIC else f'"{r[c]}"' for c in COLUMNS) + "\n"
    with atomic_output(path, overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)

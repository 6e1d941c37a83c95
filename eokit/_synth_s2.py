"""The Sentinel-2 image stack of :mod:`eokit.synthetic`: a rotated field layout and an L2A-like GeoTIFF stack
(reflectance and SCL per date) plus the fields' GeoPackage, rendered with the crop model of the sample tree.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eokit._io import atomic_output, write_gpkg
from eokit._progress import tqdm
from eokit._synth_crops import (
    _BUILT,
    _HAZE,
    INVEKOS_CLASSES,
    SCL_BARE_SOIL,
    SCL_CIRRUS,
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MEDIUM,
    SCL_NO_DATA,
    SCL_SHADOW,
    SCL_SNOW,
    SCL_VEGETATION,
    _atmosphere,
    _canopy,
    _gauss,
    _rng,
    _sig,
    _sky,
    _smooth_field,
    _to_int,
    reflectance,
    season_day,
    tile_shift,
)
from eokit.schema import FLAG_CLEAR, FLAG_CLOUD, FLAG_SHADOW, FLAG_SNOW, TS2C_BANDS


def field_layout(seed: int = 0, size_m: float = 1200.0, n_target: int = 40) -> tuple[list, list[str]]:
    """Return (polygons in local metres, kinds) of a rotated strip-and-parcel field layout.

    Kinds are "field", "forest" or "farmstead"; some fields share boundaries, others are shrunk
    so that grass margins separate them.
    """
    import shapely
    from shapely import affinity
    from shapely.geometry import box

    rng = _rng(seed, "layout")
    scale = size_m / 1200.0 * np.sqrt(40.0 / n_target)
    margin = 0.2 * size_m
    rects = []
    x = -margin
    while x < size_m + margin:
        w = rng.uniform(110, 250) * scale
        y = -margin
        while y < size_m + margin:
            h = rng.uniform(90, 230) * scale
            rects.append(box(x, y, x + w, y + h))
            y += h
        x += w
    angle = rng.uniform(-12, 12)
    frame = box(0, 0, size_m, size_m)
    polys, kinds = [], []
    for r in rects:
        p = affinity.rotate(r, angle, origin=(size_m / 2, size_m / 2)).intersection(frame)
        if p.is_empty or p.area < 0.3 * (90 * scale) ** 2 or p.geom_type != "Polygon":
            continue
        polys.append(shapely.set_precision(p, 0.01))
        kinds.append("field")
    order = rng.permutation(len(polys))
    n_bg = max(len(polys) - n_target, 2)
    for j, i in enumerate(order[:n_bg]):
        kinds[i] = "farmstead" if j == 0 else "forest"
    for i in range(len(polys)):
        if kinds[i] == "field" and rng.random() < 0.45:  # grass margin: shrink, no longer touching
            shrunk = polys[i].buffer(-rng.uniform(5, 12), join_style="mitre")
            if shrunk.geom_type == "Polygon" and shrunk.area > 0.5 * polys[i].area:
                polys[i] = shapely.set_precision(shrunk, 0.01)
    return polys, kinds


def make_s2_stack(
    out: str | os.PathLike,
    dates: Sequence[Any],
    seed: int = 0,
    size: int = 120,
    n_fields: int = 40,
    tile: str = "33TWN",
    origin: tuple[float, float] = (560000.0, 5220000.0),
    fields_crs: str = "EPSG:3035",
    noise: float = 0.006,
    overwrite: bool = False,
) -> Path:
    """Write a Sentinel-2 L2A-like GeoTIFF stack (S2_/SCL_<YYYYMMDD>.tif) and fields.gpkg; return the folder.

    Reflectance follows the same phenology generator as the TimeSen2Crop sample, field by field; 10 m
    pixels in EPSG:32633 (pixels are rendered at 5 m and averaged, so field edges are mixed pixels).
    """
    from rasterio.transform import from_origin

    final = Path(out)
    acq = np.asarray(dates, dtype="datetime64[D]")
    if acq.size == 0:
        raise ValueError("dates is empty: the stack needs at least one acquisition date")
    rng = _rng(seed, "s2stack", tile)
    polys, kinds = field_layout(seed, size * 10.0, n_fields)
    fields, to_map, field_idx = _s2_fields(rng, polys, kinds, origin)
    obj, obj_kind = _s2_objects(fields, field_idx, kinds, to_map, size, origin)
    hi = 2 * size
    day = season_day(acq)
    shift = tile_shift(tile)
    G, C, F, soil = _s2_canopies(obj_kind, fields, day, rng, shift)
    vigour = np.clip(1 + 0.05 * _smooth_field(rng, (hi, hi), 6), 0.8, 1.2)
    soil_px = soil[obj] * np.clip(1 + 0.08 * _smooth_field(rng, (hi, hi), 10), 0.7, 1.3)
    built = np.array([k == "farmstead" for k in obj_kind])[obj]
    sky = _atmosphere(acq, _rng(seed, "sky", tile))

    x0, y0 = origin
    with atomic_output(final, overwrite, kind="dir") as tmp:
        transform = from_origin(x0, y0, 10.0, 10.0)
        prof = dict(
            driver="GTiff",
            width=size,
            height=size,
            crs="EPSG:32633",
            transform=transform,
            compress="deflate",
            zlevel=9,
            tiled=True,
            blockxsize=64,
            blockysize=64,
        )
        for t, date in enumerate(tqdm(acq, desc="S2 stack", unit="date")):
            data, scl = _s2_date(t, day, G, C, F, obj, vigour, soil_px, built, sky, rng, size, noise)
            _write_s2_date(tmp, date, data, scl, prof, tile)
        write_gpkg(fields.to_crs(fields_crs), tmp / "fields.gpkg", layer="fields")
    return final


def _s2_fields(
    rng: np.random.Generator, polys: list, kinds: list[str], origin: tuple[float, float]
) -> tuple[Any, list, list[int]]:
    """Return (the fields' GeoDataFrame with crop codes, every polygon in map coordinates, the field indices)."""
    import geopandas as gpd
    from shapely import affinity

    x0, y0 = origin
    to_map = [affinity.affine_transform(p, [1, 0, 0, -1, x0, y0]) for p in polys]  # local y down -> north up
    field_idx = [i for i, k in enumerate(kinds) if k == "field"]
    codes = list(INVEKOS_CLASSES)
    weights = np.array([3 if c in ("WINTERWEICHWEIZEN", "KOERNERMAIS", "DAUERWIESE") else 1 for c in codes], float)
    chosen = list(
        rng.permutation(
            [
                "WINTERWEICHWEIZEN",
                "KOERNERMAIS",
                "WINTERGERSTE",
                "SOJABOHNEN",
                "ZUCKERRUEBEN",
                "KARTOFFELN",
                "WINTERRAPS",
                "DAUERWIESE",
                "SOMMERGERSTE",
                "SILOMAIS",
                "SONNENBLUMEN",
                "WINTERTRITICALE",
            ]
        )
    )
    chosen += list(rng.choice(codes, size=max(len(field_idx) - len(chosen), 0), p=weights / weights.sum()))
    chosen = [str(c) for c in rng.permutation(chosen[: len(field_idx)])]
    fields = gpd.GeoDataFrame(
        {
            "field_id": np.arange(1, len(field_idx) + 1, dtype=np.int64),
            "crop_code": chosen,
            "class_id": np.array([INVEKOS_CLASSES[c] for c in chosen], dtype=np.int64),
        },
        geometry=[to_map[i] for i in field_idx],
        crs="EPSG:32633",
    )
    return fields, to_map, field_idx


def _s2_objects(
    fields: Any, field_idx: list[int], kinds: list[str], to_map: list, size: int, origin: tuple[float, float]
) -> tuple[np.ndarray, list[str]]:
    """Return (the object map at 5 m: 0 grass margin, 1..n fields, then forest/farmstead objects; their kinds)."""
    import rasterio.features
    from rasterio.transform import from_origin

    x0, y0 = origin
    hi = 2 * size
    t_hi = from_origin(x0, y0, 5.0, 5.0)
    obj_kind = ["margin"] + ["field"] * len(field_idx)
    shapes = [(g, k + 1) for k, g in enumerate(fields.geometry)]
    for i, k in enumerate(kinds):
        if k != "field":
            obj_kind.append(k)
            shapes.append((to_map[i], len(obj_kind) - 1))
    obj = rasterio.features.rasterize(shapes, out_shape=(hi, hi), transform=t_hi, fill=0, dtype="int32")
    return obj, obj_kind


def _s2_canopies(
    obj_kind: list[str], fields: Any, day: np.ndarray, rng: np.random.Generator, shift: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return (green, cover, flower) series per object and each object's soil brightness."""
    n_obj = len(obj_kind)
    G, C, F = (np.zeros((n_obj, day.size)) for _ in range(3))
    soil = np.ones(n_obj)
    for k, kind in enumerate(obj_kind):
        if kind == "field":
            G[k], C[k], F[k] = _canopy(int(fields.class_id.iloc[k - 1]), day, rng, shift)
            soil[k] = rng.uniform(0.7, 1.15)
        elif kind == "margin":
            g = 0.45 * (1 - 0.3 * _gauss(day, 140, 35)) + 0.3 * _sig(day, 200 + shift, 10)
            G[k], C[k] = g, np.clip(g + 0.15, 0, 1)
        elif kind == "forest":
            leaves = 0.35 * ((1 - _sig(day, 55, 8)) + _sig(day, 225 + shift, 8))
            G[k], C[k] = 0.5 + leaves, np.ones_like(day)
        else:  # farmstead: roofs and yards (built-up spectrum through the soil term), a few trees
            G[k], C[k] = 0.15 + 0.1 * _sig(day, 225, 8), 0.25 + 0.1 * _sig(day, 225, 8)
    return G, C, F, soil


def _s2_date(
    t: int,
    day: np.ndarray,
    G: np.ndarray,
    C: np.ndarray,
    F: np.ndarray,
    obj: np.ndarray,
    vigour: np.ndarray,
    soil_px: np.ndarray,
    built: np.ndarray,
    sky: dict[str, np.ndarray],
    rng: np.random.Generator,
    size: int,
    noise: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (reflectance int16 (size, size, 9) x 10000, SCL uint8 (size, size)) of acquisition `t`."""
    g = np.clip(G[obj, t] * vigour, 0, 1)
    c = np.clip(np.maximum(C[obj, t], g), 0, 1)
    f = F[obj, t]
    r = reflectance(g, c, f, rng, soil_brightness=soil_px, noise=noise)
    r[built] = 0.6 * (_BUILT * rng.normal(1, 0.1, size=(int(built.sum()), 1))) + 0.4 * r[built]
    r = r.reshape(size, 2, size, 2, 9).mean(axis=(1, 3)) + sky["haze"][t] * _HAZE  # 5 m -> 10 m
    ndvi = (r[..., 6] - r[..., 2]) / (r[..., 6] + r[..., 2])
    scl = np.where(ndvi > 0.35, SCL_VEGETATION, SCL_BARE_SOIL).astype(np.uint8)
    flags = np.zeros((size, size), dtype=np.uint8)
    opacity = np.ones((size, size))
    if sky["cloud"][t] > 0.02:
        dens = _smooth_field(rng, (size, size), size / 10)
        thr = np.quantile(dens, 1 - sky["cloud"][t])
        cloud = dens > thr
        shadow = np.roll(cloud, (int(size / 15), -int(size / 12)), axis=(0, 1)) & ~cloud
        flags[shadow], flags[cloud] = FLAG_SHADOW, FLAG_CLOUD
        scl[shadow] = SCL_SHADOW
        over = dens - thr
        opacity = np.clip(0.45 + over, 0.45, 1.0)
        scl[cloud] = np.where(over > 0.6, SCL_CLOUD_HIGH, np.where(over > 0.2, SCL_CLOUD_MEDIUM, SCL_CIRRUS))[cloud]
    if sky["snow"][t] > 0:
        patchy = _smooth_field(rng, (size, size), size / 8)
        snow = (flags == FLAG_CLEAR) & (ndvi < 0.6) & (patchy < np.quantile(patchy, sky["snow"][t]))
        flags[snow], scl[snow] = FLAG_SNOW, SCL_SNOW
    r = _sky(r, flags, rng, opacity=opacity)
    data = _to_int(r)
    if t == int(np.argmax(day > 120)) and day.size > 3:  # one acquisition at the swath edge
        cols = np.arange(size)[None, :] + 0.3 * np.arange(size)[:, None]
        edge = cols < size * 0.25
        data[edge] = 0
        scl[edge] = SCL_NO_DATA
    return data, scl


def _write_s2_date(tmp: Path, date: Any, data: np.ndarray, scl: np.ndarray, prof: dict[str, Any], tile: str) -> None:
    """Write S2_<YYYYMMDD>.tif and SCL_<YYYYMMDD>.tif of one acquisition into `tmp`."""
    import rasterio

    stamp = str(date).replace("-", "")
    with rasterio.open(tmp / f"S2_{stamp}.tif", "w", count=9, dtype="int16", nodata=0, predictor=2, **prof) as dst:
        dst.write(np.moveaxis(data, -1, 0))
        for b, name in enumerate(TS2C_BANDS, start=1):
            dst.set_band_description(b, name)
        dst.update_tags(
            ACQUISITION_DATE=str(date),
            TILE=tile,
            REFLECTANCE_SCALE="10000",
            PRODUCT="synthetic Sentinel-2 L2A (eokit.synthetic)",
        )
    with rasterio.open(tmp / f"SCL_{stamp}.tif", "w", count=1, dtype="uint8", **prof) as dst:
        dst.write(scl[None])
        dst.set_band_description(1, "SCL")
        dst.update_tags(
            ACQUISITION_DATE=str(date),
            TILE=tile,
            CODES="0 no data, 3 cloud shadow, 4 vegetation, 5 bare soil, "
            "8 cloud medium, 9 cloud high, 10 thin cirrus, 11 snow",
        )

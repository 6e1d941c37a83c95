"""The Sentinel-1 SAR scenes of :mod:`eokit.synthetic`: Voronoi ice cells, backscatter per WMO ice class with
incidence-angle slope, texture, ridges, HV noise floor and speckle; GeoTIFFs per scene plus the ice polygons.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eokit._io import atomic_output, check_target, write_gpkg
from eokit._progress import tqdm
from eokit._synth_crops import _rng, _smooth_field
from eokit.schema import ICE_CLASSES

#: Sample SAR scenes (names follow the METNO Sentinel-1 EW acquisitions of 2018).
SAR_SCENES: list[str] = ["S1B_20180213T175444", "S1A_20180313T181225", "S1A_20180612T180423"]

#: class -> (HH dB at 35 deg, HV dB at 35 deg, HH slope dB/deg, HV slope dB/deg, texture dB, texture scale px)
_ICE_SIGMA0: dict[int, tuple[float, float, float, float, float, float]] = {
    0: (-18.0, -28.0, -0.30, -0.08, 2.5, 30.0),  # open water: wind-roughened, steep angular decay
    1: (-22.0, -29.5, -0.22, -0.08, 0.8, 8.0),  # newly formed ice (grease, nilas): very dark
    2: (-11.5, -22.0, -0.18, -0.10, 2.0, 2.0),  # brash / pancake: bright, grainy
    3: (-15.0, -24.5, -0.20, -0.10, 1.2, 6.0),  # young ice
    4: (-17.0, -25.5, -0.20, -0.10, 0.8, 12.0),  # thin to medium first-year: smooth level ice
    5: (-9.5, -19.5, -0.15, -0.10, 1.5, 3.0),  # thick / deformed: ridges, bright
}


def _ice_cells(rng: np.random.Generator, size: int, classes: Sequence[int], n_cells: int, min_px: float):
    """Voronoi partition of a size x size scene (pixel coords) with a class per cell, big enough cells."""
    import shapely
    from shapely.geometry import MultiPoint, box

    frame = box(0, 0, size, size)
    for _ in range(200):
        pts = rng.uniform(0.1 * size, 0.9 * size, size=(n_cells, 2))
        cells = [c.intersection(frame) for c in shapely.voronoi_polygons(MultiPoint(pts), extend_to=frame).geoms]
        cells = sorted(cells, key=lambda c: (round(c.centroid.x, 6), round(c.centroid.y, 6)))
        labelled = [c.buffer(-rng.uniform(2, 5), join_style="mitre").simplify(1.0) for c in cells]
        if all((not lab.buffer(-min_px).is_empty) for lab in labelled):
            cls = list(rng.permutation(list(classes)))
            cls += list(rng.choice(list(classes), size=n_cells - len(cls)))
            return cells, labelled, [int(c) for c in cls[:n_cells]]
    raise RuntimeError(f"could not partition a {size}x{size} scene into {n_cells} cells of >= {2 * min_px} px")


def _backscatter(
    rng: np.random.Generator, cls_px: np.ndarray, ia: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return (HH, HV) in dB per pixel: each ice class's level and incidence slope plus its texture."""
    hh = np.zeros((size, size))
    hv = np.zeros((size, size))
    for k in range(len(ICE_CLASSES)):
        m = cls_px == k
        if not m.any():
            continue
        h0, v0, sh, sv, tex, scale = _ICE_SIGMA0[k]
        texture = tex * _smooth_field(rng, (size, size), scale)
        hh[m] = (h0 + sh * (ia - 35.0) + texture)[m]
        hv[m] = (v0 + sv * (ia - 35.0) + 0.8 * texture)[m]
    return hh, hv


def _ridges(rng: np.random.Generator, size: int) -> np.ndarray:
    """Return a boolean mask of random short lines: the ridges (bright linear features) of deformed ice."""
    import rasterio.features
    from shapely.geometry import LineString

    ridge = np.zeros((size, size), dtype=bool)
    lines = []
    for _ in range(size // 4):
        p = rng.uniform(0, size, 2)
        a = rng.uniform(0, np.pi)
        length = rng.uniform(10, 40)
        d = np.array([np.cos(a), np.sin(a)]) * length / 2
        lines.append(LineString([tuple(p - d), tuple(p + d)]))
    if lines:
        ridge = rasterio.features.rasterize(
            [(ln, 1) for ln in lines], out_shape=(size, size), fill=0, dtype="uint8"
        ).astype(bool)
    return ridge


def _speckle(
    rng: np.random.Generator, hh: np.ndarray, hv: np.ndarray, cols: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return linear (HH, HV): the HV thermal noise floor, scalloped across sub-swaths, then gamma speckle (ENL 8)."""
    nesz = 10 ** ((-29.0 + 1.5 * np.sin(2 * np.pi * cols / (size / 3.0)) ** 2) / 10)
    enl = 8.0
    hh_lin = 10 ** (hh / 10) * rng.gamma(enl, 1 / enl, size=(size, size))
    hv_lin = (10 ** (hv / 10) + nesz) * rng.gamma(enl, 1 / enl, size=(size, size))
    return hh_lin, hv_lin


def _write_bands(folder: Path, scene: str, size: int, transform: Any, bands: Sequence[tuple[str, Any, str]]) -> None:
    """Write each (name, array, unit) of `bands` as `folder/<name>.tif` (float32, 2 decimals, EPSG:3413)."""
    import rasterio

    prof = dict(
        driver="GTiff",
        width=size,
        height=size,
        count=1,
        dtype="float32",
        crs="EPSG:3413",
        transform=transform,
        compress="deflate",
        zlevel=9,
        predictor=3,
        tiled=True,
        blockxsize=128,
        blockysize=128,
    )
    for name, arr, unit in bands:
        with rasterio.open(folder / f"{name}.tif", "w", **prof) as dst:
            dst.write(np.round(arr, 2).astype(np.float32)[None])
            dst.set_band_description(1, name)
            dst.update_tags(SCENE=scene, UNITS=unit, PRODUCT="synthetic Sentinel-1 EW GRDM (eokit.synthetic)")


def make_sar_scene(
    out_dir: str | os.PathLike,
    scene: str,
    classes: Sequence[int],
    seed: int = 0,
    size: int = 256,
    pixel: float = 40.0,
    origin: tuple[float, float] = (640000.0, -1100000.0),
    overwrite: bool = False,
) -> Any:
    """Write one Sentinel-1-like scene (Sigma0_HH_db, Sigma0_HV_db, incidence_angle GeoTIFFs, EPSG:3413).

    Returns the scene's labelled ice polygons as a GeoDataFrame (EPSG:3413; scene, ice_class, ice_name).
    """
    import geopandas as gpd
    import rasterio.features
    from rasterio.transform import from_origin
    from shapely import affinity

    if not set(classes) <= set(range(len(ICE_CLASSES))):
        raise ValueError(f"classes must be ice class ids 0..{len(ICE_CLASSES) - 1}, got {list(classes)}")
    rng = _rng(seed, "sar", scene)
    n_cells = max(len(classes), min(int(size * size / 9000), 3 * len(classes)))  # 7 cells at 256 px
    cells, labelled, cls = _ice_cells(rng, size, classes, n_cells, min_px=23.0)
    x0, y0 = origin
    to_map = [1, 0, 0, -1, x0, y0]
    cell_map = [affinity.affine_transform(affinity.scale(c, pixel, pixel, origin=(0, 0)), to_map) for c in cells]
    transform = from_origin(x0, y0, pixel, pixel)
    cmap = rasterio.features.rasterize(
        [(g, k) for k, g in enumerate(cell_map)], out_shape=(size, size), transform=transform, fill=0, dtype="int32"
    )
    cls_px = np.asarray(cls)[cmap]
    rows, cols = np.mgrid[0:size, 0:size].astype(float)
    ia = (19.0 + 28.0 * cols / (size - 1) + 0.3 * rows / (size - 1)).astype(np.float32)
    hh, hv = _backscatter(rng, cls_px, ia, size)
    ridge = _ridges(rng, size)
    hh[ridge & (cls_px == 5)] += 5.0
    hv[ridge & (cls_px == 5)] += 4.0
    hh_lin, hv_lin = _speckle(rng, hh, hv, cols, size)
    with atomic_output(Path(out_dir) / scene, overwrite, kind="dir") as tmp:
        bands = (
            ("Sigma0_HH_db", 10 * np.log10(hh_lin), "dB"),
            ("Sigma0_HV_db", 10 * np.log10(hv_lin), "dB"),
            ("incidence_angle", ia, "degree"),
        )
        _write_bands(tmp, scene, size, transform, bands)
    geoms = [affinity.affine_transform(affinity.scale(p, pixel, pixel, origin=(0, 0)), to_map) for p in labelled]
    return gpd.GeoDataFrame(
        {
            "scene": [scene] * len(geoms),
            "ice_class": np.array(cls, dtype=np.int64),
            "ice_name": [ICE_CLASSES[c] for c in cls],
        },
        geometry=geoms,
        crs="EPSG:3413",
    )


def make_sar_sample(
    root: str | os.PathLike,
    scenes: Iterable[str] | None = None,
    seed: int = 0,
    size: int = 256,
    pixel: float = 40.0,
    overwrite: bool = False,
) -> Path:
    """Write SAR scenes under `root`/<scene>/ plus `root`/ice_polygons.gpkg; return `root`.

    Every scene leaves out one ice class (a different one each), so each class is in at least two scenes.
    """
    import pandas as pd

    root = Path(root)
    scenes = list(SAR_SCENES if scenes is None else scenes)
    target = check_target(root / "ice_polygons.gpkg", overwrite)
    root.mkdir(parents=True, exist_ok=True)
    n = len(ICE_CLASSES)
    frames = []
    for k, scene in enumerate(tqdm(scenes, desc="SAR scenes", unit="scene")):
        drop = (1 + 2 * k) % n if len(scenes) >= 3 else -1
        classes = [c for c in range(n) if c != drop]
        origin = (620000.0 + k * (size * pixel + 8000.0), -1080000.0 - k * 15000.0)
        frames.append(make_sar_scene(root, scene, classes, seed, size, pixel, origin, overwrite))
    polys = pd.concat(frames, ignore_index=True)
    polys.insert(1, "polygon_id", np.arange(1, len(polys) + 1, dtype=np.int64))
    write_gpkg(polys, target, overwrite, layer="ice_polygons")
    return root

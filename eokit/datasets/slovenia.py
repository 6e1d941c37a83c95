"""The real Slovenia case (eo-learn TestEOPatch): Sentinel-2 NDVI time series, clouds and land-use polygons."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401 - registers the .rio accessor
import xarray as xr

from eokit._io import atomic_output
from eokit.paths import SAMPLE_DIR

#: The Slovenia case's CRS (UTM 33N).
CRS = "EPSG:32633"
#: Land-use class ids of lulc.npy / the polygons' LULC_ID.
LULC_CLASSES: dict[int, str] = {
    0: "no data",
    1: "cultivated land",
    2: "forest",
    3: "grassland",
    4: "shrubland",
    8: "artificial surface",
}
_FILES = ("ndvi.npy", "cloud_mask.npy", "lulc.npy", "timestamps.json", "bbox.geojson")


def default_path() -> Path:
    """Return the folder of the bundled Slovenia case (data/sample/slovenia)."""
    return SAMPLE_DIR / "slovenia"


def _folder(path: str | os.PathLike | None) -> Path:
    p = Path(path) if path is not None else default_path()
    if not p.is_dir():
        raise FileNotFoundError(f"Slovenia case folder {p} does not exist (expected the files {', '.join(_FILES)})")
    return p


def _bbox(folder: Path) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of bbox.geojson, checking that it is in EPSG:32633."""
    p = folder / "bbox.geojson"
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing: it gives the raster's bounding box in {CRS}")
    gj = _json(p)
    if not isinstance(gj, dict):
        raise ValueError(f"{p}: expected a GeoJSON Polygon object, got a JSON {type(gj).__name__}")
    crs = str((gj.get("crs") or {}).get("properties", {}).get("name", ""))
    if crs and not crs.endswith("32633"):
        raise ValueError(f"{p}: field crs must be EPSG:32633, got {crs!r}")
    try:
        coords = np.asarray(gj["coordinates"][0], dtype=float)
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise ValueError(f"{p}: field 'coordinates' must hold one polygon ring of [x, y] pairs") from e
    if coords.ndim != 2 or coords.shape[1] < 2 or not np.isfinite(coords).all():
        raise ValueError(
            f"{p}: field 'coordinates' must hold one polygon ring of [x, y] pairs, got shape {coords.shape}"
        )
    xmin, ymin = coords[:, :2].min(axis=0)
    xmax, ymax = coords[:, :2].max(axis=0)
    if not (xmax > xmin and ymax > ymin):
        raise ValueError(
            f"{p}: field 'coordinates' spans no area (x {xmin}..{xmax}, y {ymin}..{ymax}); expected "
            "the raster's bounding box"
        )
    return float(xmin), float(ymin), float(xmax), float(ymax)


def _json(p: Path) -> Any:
    try:
        return json.loads(p.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{p}: not valid JSON ({e})") from e


def grid(path: str | os.PathLike | None = None, shape: tuple[int, int] = (101, 100)) -> tuple[str, Any]:
    """Return (crs, affine transform) of the north-up raster grid: bbox.geojson extent / `shape` (rows, cols)."""
    from rasterio.transform import from_bounds

    if len(shape) != 2 or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in shape):
        raise ValueError(f"shape must be (rows, cols) of positive integers, got {shape!r}")
    xmin, ymin, xmax, ymax = _bbox(_folder(path))
    return CRS, from_bounds(xmin, ymin, xmax, ymax, shape[1], shape[0])


def _load(folder: Path, name: str, ndim: int) -> np.ndarray:
    p = folder / name
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing (the Slovenia case needs {', '.join(_FILES)})")
    try:
        a = np.load(p)
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"{p}: cannot be read as a .npy array ({e})") from e
    if not isinstance(a, np.ndarray) or a.ndim != ndim:
        raise ValueError(f"{p}: expected {ndim} dimensions, got shape {getattr(a, 'shape', None)}")
    if a.shape[-1] != 1:
        raise ValueError(
            f"{p}: expected one feature in the last axis (eo-learn layout, shape (..., 1)), got shape {a.shape}"
        )
    return a[..., 0]


def _timestamps(folder: Path) -> np.ndarray:
    p = folder / "timestamps.json"
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing: it lists the ISO acquisition times")
    items = _json(p)
    if not isinstance(items, list):
        raise ValueError(
            f"{p}: expected a JSON list of ISO times, e.g. '2015-07-11T10:00:08'; got a JSON {type(items).__name__}"
        )
    try:
        times = pd.to_datetime(items, format="ISO8601").values.astype("datetime64[ns]")
    except (ValueError, TypeError) as e:
        raise ValueError(f"{p}: expected a JSON list of ISO times, e.g. '2015-07-11T10:00:08' ({e})") from e
    _ascending(times, str(p))
    return times


def _ascending(times: np.ndarray, where: str) -> None:
    """Raise unless `times` (one per time step) strictly increase and none is missing."""
    if np.isnat(times).any():
        raise ValueError(
            f"{where}: time step {int(np.flatnonzero(np.isnat(times))[0])} has no time; "
            "expected an ISO time for every step"
        )
    back = np.flatnonzero(np.diff(times) <= np.timedelta64(0, "ns"))
    if back.size:
        k = int(back[0])
        raise ValueError(
            f"{where}: time step {k + 1} ({str(times[k + 1])[:19]}) does not come after step {k} "
            f"({str(times[k])[:19]}); expected strictly ascending acquisition times"
        )


def _coords(transform: Any, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre x and y coordinates of a north-up grid."""
    rows, cols = shape
    x = transform.c + transform.a * (np.arange(cols) + 0.5)
    y = transform.f + transform.e * (np.arange(rows) + 0.5)
    return x, y


def _dataset(
    ndvi: np.ndarray, cloud: np.ndarray, lulc: np.ndarray, times: np.ndarray, transform: Any, source: str
) -> xr.Dataset:
    x, y = _coords(transform, lulc.shape)
    ds = xr.Dataset(
        {
            "ndvi": (("time", "y", "x"), ndvi.astype(np.float32), {"long_name": "NDVI", "source": "Sentinel-2 L1C"}),
            "cloud_mask": (
                ("time", "y", "x"),
                cloud.astype(np.uint8),
                {"long_name": "cloud mask", "flag_values": "0 clear, 1 cloud"},
            ),
            "lulc": (
                ("y", "x"),
                lulc.astype(np.uint16),
                {"long_name": "land use (RABA)", "classes": json.dumps(LULC_CLASSES)},
            ),
        },
        coords={"time": times, "y": y, "x": x},
        attrs={
            "title": "Slovenia: Sentinel-2 NDVI time series and land-use register (eo-learn TestEOPatch)",
            "licence": "MIT",
            "source": source,
            "crs": CRS,
        },
    )
    ds = ds.rio.write_crs(CRS).rio.write_transform(transform)
    return ds


def open(path: str | os.PathLike | None = None) -> xr.Dataset:  # noqa: A001 - the kit's verb
    """Return the Slovenia case as an xarray.Dataset: ndvi, cloud_mask (time, y, x), lulc (y, x), CRS+transform.

    `path` is the folder with the .npy files (default: the bundled copy) or its `stack/` GeoTIFF folder.
    """
    folder = _folder(path)
    if not (folder / "ndvi.npy").exists() and any(folder.glob("NDVI_*.tif")):
        return open_stack(folder)
    ndvi = _load(folder, "ndvi.npy", 4)
    cloud = _load(folder, "cloud_mask.npy", 4)
    lulc = _load(folder, "lulc.npy", 3)
    times = _timestamps(folder)
    if ndvi.shape != cloud.shape or ndvi.shape[1:] != lulc.shape:
        raise ValueError(
            f"{folder}: ndvi.npy {ndvi.shape}, cloud_mask.npy {cloud.shape} and lulc.npy "
            f"{lulc.shape} must share (time, y, x) / (y, x)"
        )
    if ndvi.shape[0] != times.size:
        raise ValueError(
            f"{folder / 'timestamps.json'}: {times.size} timestamps, but ndvi.npy has {ndvi.shape[0]} time steps"
        )
    _check_codes(cloud, folder / "cloud_mask.npy", (0, 1), "0 clear, 1 cloud")
    _check_codes(lulc, folder / "lulc.npy", tuple(LULC_CLASSES), "the LULC_ID classes")
    _, transform = grid(folder, lulc.shape)
    return _dataset(ndvi, cloud, lulc, times, transform, str(folder))


def _check_codes(a: np.ndarray, p: Path, allowed: tuple[int, ...], meaning: str) -> None:
    """Raise unless every value of `a` is one of `allowed` (the values are cast to small integers)."""
    bad = ~np.isin(a, allowed)
    if bad.any():
        raise ValueError(
            f"{p}: {int(bad.sum())} values outside {list(allowed)} ({meaning}), e.g. "
            f"{sorted(set(np.asarray(a)[bad].ravel()[:1000].tolist()))[:5]}"
        )


def polygons(path: str | os.PathLike | None = None) -> Any:
    """Return the land-use polygons (GeoDataFrame, EPSG:32633: RABA_ID, AREA, DATE, LULC_ID, LULC_NAME)."""
    import geopandas as gpd

    folder = _folder(path)
    p = folder / "lulc_polygons.gpkg"
    if not p.exists() and (folder.parent / "lulc_polygons.gpkg").exists():
        p = folder.parent / "lulc_polygons.gpkg"
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing: the Slovenia land-use polygons")
    try:
        gdf = gpd.read_file(p)
    except (OSError, RuntimeError, ValueError) as e:  # pyogrio DataSourceError
        raise ValueError(f"{p}: cannot be read as a GeoPackage of land-use polygons ({e})") from e
    missing = {"LULC_ID", "LULC_NAME"} - set(gdf.columns)
    if missing:
        raise ValueError(f"{p}: missing columns {sorted(missing)}; expected RABA_ID, AREA, DATE, LULC_ID, LULC_NAME")
    return gdf


def land_use_polygons(path: str | os.PathLike | None = None) -> Any:
    """Return the polygons with a land use recorded: those of LULC_ID 0 ("no data" in the register) left out.

    Training sets and maps take their classes from these; `polygons` keeps all of them, as published."""
    gdf = polygons(path)
    return gdf[gdf["LULC_ID"] != 0].reset_index(drop=True)


def _stamp(t: np.datetime64) -> str:
    return pd.Timestamp(t).strftime("%Y%m%dT%H%M%S")


def write_stack(
    out: str | os.PathLike | None = None, path: str | os.PathLike | None = None, overwrite: bool = False
) -> Path:
    """Write the case as GeoTIFFs NDVI_/FLAG_<YYYYMMDDTHHMMSS>.tif (+ LULC.tif) in `out`; return `out`.

    Default `out` is `<path>/stack`. FLAG holds TimeSen2Crop flag codes (1 cloud, 0 clear).
    """
    import rasterio

    from eokit._progress import tqdm

    ds = open(path)
    final = Path(out) if out is not None else _folder(path) / "stack"
    with atomic_output(final, overwrite, kind="dir") as tmp:
        rows, cols = ds.sizes["y"], ds.sizes["x"]
        prof = dict(
            driver="GTiff",
            width=cols,
            height=rows,
            count=1,
            crs=CRS,
            transform=ds.rio.transform(),
            compress="deflate",
            zlevel=9,
        )  # 100 x 101 pixels: strips beat padded 128-px tiles
        for i, t in enumerate(tqdm(ds.time.values, desc="Slovenia stack", unit="date")):
            stamp = _stamp(t)
            iso = pd.Timestamp(t).isoformat()
            with rasterio.open(tmp / f"NDVI_{stamp}.tif", "w", dtype="float32", predictor=3, **prof) as dst:
                dst.write(ds.ndvi.values[i][None])
                dst.set_band_description(1, "NDVI")
                dst.update_tags(ACQUISITION_TIME=iso, SOURCE="eo-learn TestEOPatch (MIT)")
            with rasterio.open(tmp / f"FLAG_{stamp}.tif", "w", dtype="uint8", **prof) as dst:
                dst.write(ds.cloud_mask.values[i][None])
                dst.set_band_description(1, "FLAG")
                dst.update_tags(ACQUISITION_TIME=iso, CODES="0 clear, 1 cloud (TimeSen2Crop flag codes)")
        with rasterio.open(tmp / "LULC.tif", "w", dtype="uint16", **prof) as dst:
            dst.write(ds.lulc.values[None])
            dst.set_band_description(1, "LULC_ID")
            dst.update_tags(CLASSES=json.dumps(LULC_CLASSES))
    return final


def _band(p: Path, grid_of: list) -> np.ndarray:
    """Band 1 of GeoTIFF `p`; raise naming `p` if unreadable or off the grid of the first file read."""
    from eokit.rasterfiles import read_band

    a, transform, crs = read_band(p, "a GeoTIFF")
    if not grid_of:
        grid_of.extend([p, transform, a.shape, crs])
    first, t0, shape0, crs0 = grid_of
    for what, got, want in (("shape", a.shape, shape0), ("transform", transform, t0), ("CRS", crs, crs0)):
        if got != want:
            raise ValueError(
                f"{p}: {what} {got} differs from the first file's ({first.name}) {want}; expected "
                "every file of the stack on one grid"
            )
    return a


def open_stack(path: str | os.PathLike | None = None) -> xr.Dataset:
    """Return the Dataset of `open` read back from the GeoTIFF stack folder (default: the bundled stack/)."""
    folder = Path(path) if path is not None else default_path() / "stack"
    ndvi_files = sorted(folder.glob("NDVI_*.tif"))
    if not ndvi_files:
        raise FileNotFoundError(f"{folder}: no NDVI_<YYYYMMDDTHHMMSS>.tif files")
    ndvi, cloud, times = [], [], []
    grid_of: list[Any] = []  # path, transform, shape, crs of the first band read
    for f in ndvi_files:
        stamp = f.stem[len("NDVI_") :]
        try:
            times.append(pd.to_datetime(stamp, format="%Y%m%dT%H%M%S"))
        except ValueError as e:
            raise ValueError(f"{f}: name must be NDVI_<YYYYMMDDTHHMMSS>.tif") from e
        flag = folder / f"FLAG_{stamp}.tif"
        if not flag.exists():
            raise FileNotFoundError(f"{flag} is missing: every NDVI file needs its FLAG file")
        ndvi.append(_band(f, grid_of))
        cloud.append(_band(flag, grid_of))
        _check_codes(cloud[-1], flag, (0, 1), "0 clear, 1 cloud")
    lulc_file = folder / "LULC.tif"
    if not lulc_file.exists():
        raise FileNotFoundError(f"{lulc_file} is missing")
    lulc = _band(lulc_file, grid_of)
    times_arr = np.array(times, dtype="datetime64[ns]")
    _ascending(times_arr, str(folder))
    return _dataset(np.stack(ndvi), np.stack(cloud), lulc, times_arr, grid_of[1], str(folder))


def rasterize_lulc(path: str | os.PathLike | None = None) -> np.ndarray:
    """Return LULC_ID of the polygons burnt onto the case's grid (uint16 (y, x), 0 outside every polygon)."""
    import rasterio.features

    ds = open(path)
    gdf = polygons(path).to_crs(CRS)
    return rasterio.features.rasterize(
        zip(gdf.geometry, gdf["LULC_ID"].astype(int), strict=True),
        out_shape=ds.lulc.shape,
        transform=ds.rio.transform(),
        fill=0,
        dtype="uint16",
    )


def scale_ndvi(cube: xr.Dataset, scale: int = 10000) -> xr.Dataset:
    """Return a copy of `cube` whose NDVI `reflectance` is int16 NDVI x `scale` (NaN -> 0), lazy if `cube` is.

    NDVI x 10000 as int16 is the TimeSen2Crop convention for reflectance (the training-set schema asks for
    integers); sample the training set and map from the same scaled cube, so the model sees at mapping time
    exactly what it was trained on.
    """
    if not isinstance(cube, xr.Dataset) or "reflectance" not in cube.variables:
        have = list(cube.variables) if isinstance(cube, xr.Dataset) else type(cube).__name__
        raise ValueError(f"scale_ndvi: expected an image cube with a 'reflectance' variable (NDVI), got {have}")
    if cube["reflectance"].dtype.kind != "f":
        raise ValueError(
            f"scale_ndvi: 'reflectance' is already {cube['reflectance'].dtype} (scaled?); expected "
            "float NDVI in [-1, 1] as read from the NDVI GeoTIFFs"
        )
    out = cube.copy()
    out["reflectance"] = (cube["reflectance"].fillna(0) * scale).round().astype("int16")
    return out

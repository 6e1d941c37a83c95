"""The real Slovenia case (eo-learn TestEOPatch): Sentinel-2 NDVI time series, clouds and land-use polygons."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401 - registers the .rio accessor
import xarray as xr

from eokit.paths import SAMPLE_DIR

#: The Slovenia case's CRS (UTM 33N).
CRS = "EPSG:32633"
#: Land-use class ids of lulc.npy / the polygons' LULC_ID.
LULC_CLASSES: dict[int, str] = {0: "no data", 1: "cultivated land", 2: "forest", 3: "grassland",
                                4: "shrubland", 8: "artificial surface"}
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
    gj = json.loads(p.read_text())
    crs = str(gj.get("crs", {}).get("properties", {}).get("name", ""))
    if crs and not crs.endswith("32633"):
        raise ValueError(f"{p}: field crs must be EPSG:32633, got {crs!r}")
    try:
        coords = np.asarray(gj["coordinates"][0], dtype=float)
    except (KeyError, IndexError, TypeError, ValueError) as e:
        raise ValueError(f"{p}: field 'coordinates' must hold one polygon ring of [x, y] pairs") from e
    return float(coords[:, 0].min()), float(coords[:, 1].min()), float(coords[:, 0].max()), float(coords[:, 1].max())


def grid(path: str | os.PathLike | None = None, shape: tuple[int, int] = (101, 100)) -> tuple[str, Any]:
    """Return (crs, affine transform) of the north-up raster grid: bbox.geojson extent / `shape` (rows, cols)."""
    from rasterio.transform import from_bounds

    xmin, ymin, xmax, ymax = _bbox(_folder(path))
    return CRS, from_bounds(xmin, ymin, xmax, ymax, shape[1], shape[0])


def _load(folder: Path, name: str, ndim: int) -> np.ndarray:
    p = folder / name
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing (the Slovenia case needs {', '.join(_FILES)})")
    a = np.load(p)
    if a.ndim != ndim:
        raise ValueError(f"{p}: expected {ndim} dimensions, got shape {a.shape}")
    return a


def _timestamps(folder: Path) -> np.ndarray:
    p = folder / "timestamps.json"
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing: it lists the ISO acquisition times")
    items = json.loads(p.read_text())
    try:
        return pd.to_datetime(items, format="ISO8601").values.astype("datetime64[ns]")
    except (ValueError, TypeError) as e:
        raise ValueError(f"{p}: expected a JSON list of ISO times, e.g. '2015-07-11T10:00:08' ({e})") from e


def _coords(transform: Any, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre x and y coordinates of a north-up grid."""
    rows, cols = shape
    x = transform.c + transform.a * (np.arange(cols) + 0.5)
    y = transform.f + transform.e * (np.arange(rows) + 0.5)
    return x, y


def _dataset(ndvi: np.ndarray, cloud: np.ndarray, lulc: np.ndarray, times: np.ndarray, transform: Any,
             source: str) -> xr.Dataset:
    x, y = _coords(transform, lulc.shape)
    ds = xr.Dataset(
        {
            "ndvi": (("time", "y", "x"), ndvi.astype(np.float32), {"long_name": "NDVI", "source": "Sentinel-2 L1C"}),
            "cloud_mask": (("time", "y", "x"), cloud.astype(np.uint8),
                           {"long_name": "cloud mask", "flag_values": "0 clear, 1 cloud"}),
            "lulc": (("y", "x"), lulc.astype(np.uint16),
                     {"long_name": "land use (RABA)", "classes": json.dumps(LULC_CLASSES)}),
        },
        coords={"time": times, "y": y, "x": x},
        attrs={"title": "Slovenia: Sentinel-2 NDVI time series and land-use register (eo-learn TestEOPatch)",
               "licence": "MIT", "source": source, "crs": CRS},
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
    ndvi = _load(folder, "ndvi.npy", 4)[..., 0]
    cloud = _load(folder, "cloud_mask.npy", 4)[..., 0]
    lulc = _load(folder, "lulc.npy", 3)[..., 0]
    times = _timestamps(folder)
    if ndvi.shape != cloud.shape or ndvi.shape[1:] != lulc.shape:
        raise ValueError(f"{folder}: ndvi.npy {ndvi.shape}, cloud_mask.npy {cloud.shape} and lulc.npy "
                         f"{lulc.shape} must share (time, y, x) / (y, x)")
    if ndvi.shape[0] != times.size:
        raise ValueError(f"{folder / 'timestamps.json'}: {times.size} timestamps, but ndvi.npy has "
                         f"{ndvi.shape[0]} time steps")
    _, transform = grid(folder, lulc.shape)
    return _dataset(ndvi, cloud, lulc, times, transform, str(folder))


def polygons(path: str | os.PathLike | None = None) -> Any:
    """Return the land-use polygons (GeoDataFrame, EPSG:32633: RABA_ID, AREA, DATE, LULC_ID, LULC_NAME)."""
    import geopandas as gpd

    folder = _folder(path)
    p = folder / "lulc_polygons.gpkg"
    if not p.exists() and (folder.parent / "lulc_polygons.gpkg").exists():
        p = folder.parent / "lulc_polygons.gpkg"
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing: the Slovenia land-use polygons")
    gdf = gpd.read_file(p)
    missing = {"LULC_ID", "LULC_NAME"} - set(gdf.columns)
    if missing:
        raise ValueError(f"{p}: missing columns {sorted(missing)}; expected RABA_ID, AREA, DATE, LULC_ID, LULC_NAME")
    return gdf


def _stamp(t: np.datetime64) -> str:
    return pd.Timestamp(t).strftime("%Y%m%dT%H%M%S")


def write_stack(out: str | os.PathLike | None = None, path: str | os.PathLike | None = None,
                overwrite: bool = False) -> Path:
    """Write the case as GeoTIFFs NDVI_/FLAG_<YYYYMMDDTHHMMSS>.tif (+ LULC.tif) in `out`; return `out`.

    Default `out` is `<path>/stack`. FLAG holds TimeSen2Crop flag codes (1 cloud, 0 clear).
    """
    import rasterio
    from tqdm.auto import tqdm

    ds = open(path)
    final = Path(out) if out is not None else _folder(path) / "stack"
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} exists; pass overwrite=True to rewrite it")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        rows, cols = ds.sizes["y"], ds.sizes["x"]
        prof = dict(driver="GTiff", width=cols, height=rows, count=1, crs=CRS, transform=ds.rio.transform(),
                    compress="deflate", zlevel=9)  # 100 x 101 pixels: strips beat padded 128-px tiles
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
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def open_stack(path: str | os.PathLike | None = None) -> xr.Dataset:
    """Return the Dataset of `open` read back from the GeoTIFF stack folder (default: the bundled stack/)."""
    import rasterio

    folder = Path(path) if path is not None else default_path() / "stack"
    ndvi_files = sorted(folder.glob("NDVI_*.tif"))
    if not ndvi_files:
        raise FileNotFoundError(f"{folder}: no NDVI_<YYYYMMDDTHHMMSS>.tif files")
    ndvi, cloud, times = [], [], []
    transform = None
    for f in ndvi_files:
        stamp = f.stem[len("NDVI_"):]
        try:
            times.append(pd.to_datetime(stamp, format="%Y%m%dT%H%M%S"))
        except ValueError as e:
            raise ValueError(f"{f}: name must be NDVI_<YYYYMMDDTHHMMSS>.tif") from e
        flag = folder / f"FLAG_{stamp}.tif"
        if not flag.exists():
            raise FileNotFoundError(f"{flag} is missing: every NDVI file needs its FLAG file")
        with rasterio.open(f) as src:
            ndvi.append(src.read(1))
            transform = src.transform if transform is None else transform
            if src.transform != transform:
                raise ValueError(f"{f}: transform {src.transform} differs from the first file's {transform}")
        with rasterio.open(flag) as src:
            cloud.append(src.read(1))
    lulc_file = folder / "LULC.tif"
    if not lulc_file.exists():
        raise FileNotFoundError(f"{lulc_file} is missing")
    with rasterio.open(lulc_file) as src:
        lulc = src.read(1)
    times_arr = np.array(times, dtype="datetime64[ns]")
    return _dataset(np.stack(ndvi), np.stack(cloud), lulc, times_arr, transform, str(folder))


def rasterize_lulc(path: str | os.PathLike | None = None) -> np.ndarray:
    """Return LULC_ID of the polygons burnt onto the case's grid (uint16 (y, x), 0 outside every polygon)."""
    import rasterio.features

    ds = open(path)
    gdf = polygons(path).to_crs(CRS)
    return rasterio.features.rasterize(
        zip(gdf.geometry, gdf["LULC_ID"].astype(int)), out_shape=ds.lulc.shape, transform=ds.rio.transform(),
        fill=0, dtype="uint16")

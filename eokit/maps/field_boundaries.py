"""Crop-field boundaries from a class map: a raster (`boundaries`), field polygons (`boundaries_to_vector`), files."""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from eokit._io import check_target, write_gpkg
from eokit.maps._blocks import NODATA_CLASS, _crs
from eokit.maps.cog import write_cog

#: Boundary raster codes (bit flags).
BOUNDARY_CLASS_EDGE, BOUNDARY_PARCEL = 1, 2


def _class_edges(a: np.ndarray) -> np.ndarray:
    """Return uint8 1 where a valid pixel has a valid 4-neighbour of another class (block with a 1-px halo)."""
    c = a[1:-1, 1:-1]
    edge = np.zeros(c.shape, dtype=bool)
    for nb in (a[:-2, 1:-1], a[2:, 1:-1], a[1:-1, :-2], a[1:-1, 2:]):
        edge |= (nb != c) & (nb != NODATA_CLASS)
    edge &= c != NODATA_CLASS
    return edge.astype(np.uint8)


def _parcel_block(block: np.ndarray, block_info: dict | None = None, *, geoms: Any, transform: Any) -> np.ndarray:
    """Return uint8 BOUNDARY_PARCEL where parcel outlines cross this chunk (rasterio.features.rasterize)."""
    import rasterio.features
    import rasterio.windows
    import shapely

    assert block_info is not None  # dask.array.map_blocks passes it
    (y0, y1), (x0, x1) = block_info[0]["array-location"]
    window = rasterio.windows.Window(x0, y0, x1 - x0, y1 - y0)
    t = rasterio.windows.transform(window, transform)
    bounds = rasterio.windows.bounds(window, transform)
    box = shapely.box(*bounds)
    hit = geoms[shapely.intersects(geoms, box)]
    if len(hit) == 0:
        return np.zeros(block.shape, dtype=np.uint8)
    return rasterio.features.rasterize(
        ((g, BOUNDARY_PARCEL) for g in hit), out_shape=block.shape, transform=t, fill=0, dtype="uint8"
    )


def _read_parcels(parcels: Any, crs: Any) -> Any:
    """Return parcel outlines (numpy array of shapely lines) in `crs` from a GeoDataFrame or vector file."""
    import geopandas as gpd

    if not isinstance(parcels, gpd.GeoDataFrame):
        p = Path(parcels)
        if not p.exists():
            raise FileNotFoundError(f"parcel file {p} does not exist")
        parcels = gpd.read_file(p)
    if parcels.crs is None:
        raise ValueError("parcels have no CRS; set one (GeoDataFrame.set_crs) so they can be reprojected")
    if crs is None:
        raise ValueError("the class map has no CRS, parcels cannot be placed on it")
    geoms = parcels.to_crs(crs).geometry
    geoms = geoms[~(geoms.is_empty | geoms.isna())]
    return np.asarray(geoms.boundary.values)


def boundaries(class_map: xr.Dataset | xr.DataArray, parcels: Any = None) -> xr.DataArray:
    """Return a uint8 boundary raster: 1 class edge (a 4-neighbour has another class), 2 parcel outline, 3 both.

    `class_map` is a map from `predict` (or its `class` DataArray); nodata (255) pixels are never edges.
    `parcels` (GeoDataFrame or vector file) are reprojected to the map's CRS and their outlines rasterised
    chunk by chunk with rasterio.features. Lazy maps stay lazy.
    """
    cls = class_map["class"] if isinstance(class_map, xr.Dataset) else class_map
    if cls.dims != ("y", "x"):
        cls = cls.transpose("y", "x")
    data = cls.data
    lazy = isinstance(data, da.Array)
    d = data if lazy else da.from_array(np.asarray(data), chunks=(1024, 1024))
    edges = da.map_overlap(_class_edges, d, depth=1, boundary=NODATA_CLASS, trim=False, dtype=np.uint8)
    if parcels is not None:
        crs = _crs(cls)
        geoms = _read_parcels(parcels, crs)
        outline = da.map_blocks(partial(_parcel_block, geoms=geoms, transform=cls.rio.transform()), d, dtype=np.uint8)
        edges = edges | outline
    out = xr.DataArray(edges if lazy else edges.compute(), dims=("y", "x"), coords=cls.coords, name="boundary")
    out.attrs.update(
        long_name="crop field boundaries",
        flag_values="1 2 3",
        flag_meanings="class_edge parcel_outline class_edge_and_parcel_outline",
        _FillValue=0,
    )
    crs = _crs(cls)
    if crs is not None:
        out = out.rio.write_crs(crs)
    return out


def boundaries_to_vector(
    boundary: xr.DataArray,
    class_map: xr.Dataset | xr.DataArray | None = None,
    path: str | os.PathLike | None = None,
    overwrite: bool = False,
    min_pixels: int = 1,
) -> Any:
    """Return a GeoDataFrame of field polygons (regions enclosed by boundaries) with class and area.

    Fields are the 4-connected regions of non-boundary pixels (rasterio.features.shapes); with `class_map`
    each carries its class index and name and nodata pixels are left out. With `path`, writes a GeoPackage
    with layers `fields` (polygons) and `boundaries` (their outlines as lines), via a temp file.
    """
    import geopandas as gpd
    import rasterio.features

    b = np.asarray(boundary.transpose("y", "x").values)
    crs = _crs(boundary)
    transform = boundary.rio.transform()
    interior = b == 0
    names: list[str] | None = None
    if class_map is not None:
        cls = class_map["class"] if isinstance(class_map, xr.Dataset) else class_map
        values = np.asarray(cls.transpose("y", "x").values).astype(np.uint8)
        if values.shape != b.shape:
            raise ValueError(f"class map shape {values.shape} differs from boundary shape {b.shape}")
        interior &= values != NODATA_CLASS
        if "class_names" in cls.attrs:
            names = json.loads(cls.attrs["class_names"])
    else:
        values = interior.astype(np.uint8)
    rows = []
    res = abs(transform.a * transform.e) or 1.0
    for geom, value in rasterio.features.shapes(values, mask=interior, connectivity=4, transform=transform):
        rows.append({"class": int(value), "geometry": geom})
    from shapely.geometry import shape

    gdf = gpd.GeoDataFrame(
        {"class": [r["class"] for r in rows]},
        geometry=[shape(r["geometry"]) for r in rows],
        crs=crs,
    )
    gdf["n_pixels"] = np.round(gdf.geometry.area / res).astype(np.int64)
    gdf = gdf[gdf["n_pixels"] >= int(min_pixels)].reset_index(drop=True)
    if class_map is None:
        gdf = gdf.drop(columns="class")
    elif names is not None:
        gdf["class_name"] = [names[c] if c < len(names) else "" for c in gdf["class"]]
    gdf.insert(0, "field_id", np.arange(1, len(gdf) + 1, dtype=np.int64))
    gdf["area"] = gdf.geometry.area
    if path is not None:
        _write_gpkg(gdf, Path(path), overwrite)
    return gdf


def _write_gpkg(gdf: Any, path: Path, overwrite: bool) -> None:
    """Write fields and their outlines to a GeoPackage (layers "fields", "boundaries"), atomically and reproducibly."""
    lines = gdf.copy()
    lines["geometry"] = gdf.geometry.boundary
    write_gpkg({"fields": gdf, "boundaries": lines}, path, overwrite)


def write_boundaries(
    boundary: xr.DataArray,
    path: str | os.PathLike,
    class_map: Any = None,
    overwrite: bool = False,
    progress: bool = True,
) -> tuple[Path, Path]:
    """Return (COG path, GeoPackage path): the boundary raster `path` and its field polygons beside it (.gpkg)."""
    path = Path(path)
    gpkg = check_target(path.with_suffix(".gpkg"), overwrite)
    tif = write_cog(boundary.rename("boundary"), path, overwrite=overwrite, progress=progress)[0]
    boundaries_to_vector(boundary, class_map=class_map, path=gpkg, overwrite=overwrite)
    return tif, gpkg

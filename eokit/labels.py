"""Vector crop maps as weak labels: read, reproject, map codes to classes, rasterise with inward erosion.

``read_polygons`` reads a GeoPackage, Shapefile or GeoParquet, checks the label column, maps its codes to
classes through a table (the bundled ``"invekos"`` table maps Austrian INVEKOS crop names to the 16
TimeSen2Crop classes) and reprojects to the cube's CRS. ``rasterize`` burns the polygons onto the cube's
grid block by block (``rasterio.features.rasterize``), removes pixels within ``erosion`` pixels of a field
boundary (inward buffer) and drops pixels claimed by two polygons (counted with ``MergeAlg.add``). The reading
and code mapping live in :mod:`eokit._label_read` (re-exported here).
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from affine import Affine
from rasterio.enums import MergeAlg
from rasterio.features import rasterize as _rio_rasterize

from eokit._label_read import (  # noqa: F401 - private names re-exported
    _TABLES,
    _UMLAUTS,
    MAPPINGS,
    _check_geometries,
    _labels_from_codes,
    _norm_code,
    _polygonal,
    _read_any,
    _to_crs,
    _whole_ids,
    load_mapping,
    read_polygons,
)

__all__ = ["read_polygons", "rasterize", "load_mapping", "MAPPINGS", "NO_LABEL"]

#: Value of unlabelled pixels in the label and field rasters.
NO_LABEL = -1

# --- rasterisation ---------------------------------------------------------------------------------


def _cube_grid(cube: xr.Dataset | xr.DataArray) -> tuple[Any, Affine, int, int]:
    missing = [d for d in ("y", "x") if d not in cube.dims]
    if missing:
        raise ValueError(
            f"the cube has no {missing} dimension(s) (dims {list(cube.dims)}); expected a cube "
            "with 'y' and 'x' as eokit.cube.open returns"
        )
    crs = cube.rio.crs
    if crs is None:
        raise ValueError("the cube has no CRS (cube.rio.crs is None); write one with cube.rio.write_crs(...)")
    return crs, cube.rio.transform(), cube.sizes["y"], cube.sizes["x"]


def _spatial_chunks(cube: xr.Dataset | xr.DataArray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    var = cube["reflectance"] if isinstance(cube, xr.Dataset) and "reflectance" in cube else cube
    if isinstance(var, xr.Dataset):
        var = next(iter(var.data_vars.values()))
    if var.chunks is not None:
        ch = dict(zip(var.dims, var.chunks, strict=True))
        return tuple(ch["y"]), tuple(ch["x"])
    return (cube.sizes["y"],), (cube.sizes["x"],)


def _prepare_polygons(
    polygons: gpd.GeoDataFrame, crs: Any, label_column: str, what: str = "polygons"
) -> gpd.GeoDataFrame:
    if label_column not in polygons.columns:
        cols = [c for c in polygons.columns if c != polygons.geometry.name]
        raise ValueError(f"{what}: label column {label_column!r} not found; columns are {cols}")
    if not pd.api.types.is_integer_dtype(polygons[label_column]):
        raise ValueError(
            f"{what}: label column {label_column!r} must hold integer class ids to rasterise "
            f"(it is {polygons[label_column].dtype}); map it with read_polygons(..., mapping=...)"
        )
    negative = polygons[label_column].to_numpy() < 0
    if negative.any():
        raise ValueError(
            f"{what}: label column {label_column!r} must hold class ids >= 0 ({NO_LABEL} marks "
            f"unlabelled pixels); rows {polygons.index[negative][:10].tolist()} hold "
            f"{sorted(set(polygons[label_column][negative].tolist()))}"
        )
    polygons = _check_geometries(polygons, what)
    if polygons.crs != crs:
        polygons = _to_crs(polygons, crs, what)
    if "field_id" not in polygons.columns:
        polygons = polygons.assign(field_id=np.arange(1, len(polygons) + 1, dtype=np.int64))
    else:
        polygons = polygons.assign(field_id=_whole_ids(polygons["field_id"], f"{what}: column 'field_id'"))
    return polygons


def _block_rasters(
    geoms: Any,
    eroded: Any,
    labels: np.ndarray,
    fids: np.ndarray,
    transform: Affine,
    shape: tuple[int, int],
    full: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(eroded labels, eroded field ids, full labels or None) for one window; overlaps and unlabelled are -1.

    Polygons are burnt as their position in the block's list (one pass each for full and eroded shapes) and
    looked up to labels and field ids; a ``MergeAlg.add`` pass counts claims to drop shared pixels.
    """
    lab_e = np.full(shape, NO_LABEL, dtype=np.int32)
    fid_e = np.full(shape, NO_LABEL, dtype=np.int64)
    lab_f = np.full(shape, NO_LABEL, dtype=np.int32) if full else None
    if len(geoms) == 0:
        return lab_e, fid_e, lab_f
    lut_lab = np.concatenate([[NO_LABEL], np.asarray(labels)]).astype(np.int32)
    lut_fid = np.concatenate([[NO_LABEL], np.asarray(fids)]).astype(np.int64)
    amb = (
        _rio_rasterize(
            ((g, 1) for g in geoms),
            out_shape=shape,
            transform=transform,
            fill=0,
            dtype="uint16",
            merge_alg=MergeAlg.add,
        )
        > 1
    )
    if full:
        pos_f = _rio_rasterize(
            ((g, k + 1) for k, g in enumerate(geoms)), out_shape=shape, transform=transform, fill=0, dtype="int32"
        )
        pos_f[amb] = 0
        lab_f = lut_lab[pos_f]
    keep = [(k, g) for k, g in enumerate(eroded) if g is not None and not g.is_empty]
    if keep:
        pos_e = _rio_rasterize(
            ((g, k + 1) for k, g in keep), out_shape=shape, transform=transform, fill=0, dtype="int32"
        )
        pos_e[amb] = 0
        lab_e, fid_e = lut_lab[pos_e], lut_fid[pos_e]
    return lab_e, fid_e, lab_f


class _BlockPlan:
    """Per-block windows and the polygons touching each, for block-by-block rasterisation."""

    def __init__(
        self, polygons: gpd.GeoDataFrame, cube: xr.Dataset | xr.DataArray, label_column: str, erosion: int
    ) -> None:
        if erosion < 0:
            raise ValueError(f"erosion must be >= 0 pixels, got {erosion}")
        self.crs, self.transform, self.ny, self.nx = _cube_grid(cube)
        polys = _prepare_polygons(polygons, self.crs, label_column)
        self.ychunks, self.xchunks = _spatial_chunks(cube)
        res = min(abs(self.transform.a), abs(self.transform.e))
        # object arrays: dask passes them to tasks whole instead of walking every geometry
        self.geoms = np.asarray(polys.geometry.values, dtype=object)
        self.eroded = (
            np.asarray(polys.geometry.buffer(-erosion * res).values, dtype=object) if erosion > 0 else self.geoms
        )
        self.labels = polys[label_column].to_numpy(np.int64)
        self.fids = polys["field_id"].to_numpy(np.int64)
        self.sindex = polys.sindex
        self.polygons = polys
        self.y0 = np.concatenate([[0], np.cumsum(self.ychunks)[:-1]]).astype(int)
        self.x0 = np.concatenate([[0], np.cumsum(self.xchunks)[:-1]]).astype(int)

    def blocks(self) -> list[tuple[int, int, int, int, int, int]]:
        """(i, j, row0, col0, nrows, ncols) for every block."""
        return [
            (i, j, int(self.y0[i]), int(self.x0[j]), self.ychunks[i], self.xchunks[j])
            for i in range(len(self.ychunks))
            for j in range(len(self.xchunks))
        ]

    def window(self, row0: int, col0: int, nrows: int, ncols: int) -> tuple[Affine, tuple]:
        """The block's transform and the polygons (geoms, eroded, labels, fids) touching it."""
        t = self.transform @ Affine.translation(col0, row0)
        x0, y1 = t @ (0, 0)
        x1, y0 = t @ (ncols, nrows)
        idx = np.sort(self.sindex.query(_box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))))
        return t, (self.geoms[idx], self.eroded[idx], self.labels[idx], self.fids[idx])

    def bounds_overlap(self) -> bool:
        """Whether any polygon intersects the cube's extent."""
        x0, y1 = self.transform @ (0, 0)
        x1, y0 = self.transform @ (self.nx, self.ny)
        return (
            len(self.sindex.query(_box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)), predicate="intersects")) > 0
        )


def _box(x0: float, y0: float, x1: float, y1: float):
    from shapely.geometry import box

    return box(x0, y0, x1, y1)


def rasterize(
    polygons: gpd.GeoDataFrame,
    cube: xr.Dataset | xr.DataArray,
    label_column: str = "label",
    erosion: int = 0,
) -> tuple[xr.DataArray, xr.DataArray]:
    """Return (labels int32, field_ids int64) rasters (y, x) on the cube's grid and chunks; -1 = no label."""
    plan = _BlockPlan(polygons, cube, label_column, erosion)
    if not plan.bounds_overlap():
        raise ValueError(
            f"no polygon overlaps the cube (cube CRS {plan.crs}, polygons bounds "
            f"{tuple(np.round(plan.polygons.total_bounds, 1))})"
        )
    lab_rows, fid_rows = [], []
    for i in range(len(plan.ychunks)):
        lab_row, fid_row = [], []
        for j in range(len(plan.xchunks)):
            _, _, r0, c0, nr, nc = plan.blocks()[i * len(plan.xchunks) + j]
            t, (g, e, lab, fid) = plan.window(r0, c0, nr, nc)
            out = dask.delayed(_block_rasters, nout=3, pure=False)(g, e, lab, fid, t, (nr, nc))
            lab_row.append(da.from_delayed(out[0], (nr, nc), dtype=np.int32))
            fid_row.append(da.from_delayed(out[1], (nr, nc), dtype=np.int64))
        lab_rows.append(lab_row)
        fid_rows.append(fid_row)
    coords = {"y": cube["y"].values, "x": cube["x"].values}
    labels = xr.DataArray(
        da.block(lab_rows),
        dims=("y", "x"),
        coords=coords,
        name="label",
        attrs={"_FillValue": NO_LABEL, "erosion_pixels": erosion},
    )
    fids = xr.DataArray(
        da.block(fid_rows), dims=("y", "x"), coords=coords, name="field_id", attrs={"_FillValue": NO_LABEL}
    )
    labels = labels.rio.write_crs(plan.crs).rio.write_transform(plan.transform)
    fids = fids.rio.write_crs(plan.crs).rio.write_transform(plan.transform)
    return labels, fids

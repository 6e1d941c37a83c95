"""The writers of a training set (:mod:`eokit.sampling`): Zarr store, GeoPackage of points, TimeSen2Crop tree."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from eokit.schema import FLAG_CLOUD, FLAG_NODATA


def write_zarr(ds: xr.Dataset, store: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write the training set to a Zarr store (via a temporary sibling, then renamed); return its path."""
    from eokit._io import atomic_output, check_target, write_zarr_dataset

    path = check_target(store, overwrite)
    out = ds.copy()
    for k in out.variables:
        out[k].encoding = {}
    with atomic_output(path, overwrite, kind="dir") as tmp:
        write_zarr_dataset(out, tmp)  # Zarr format and text dtype chosen in one place (eokit._io)
    return path


def write_points(ds: xr.Dataset, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Write one point per sample (label, label_name, field_id, tile) to a GeoPackage; return its path."""
    import geopandas as gpd

    from eokit._io import check_target, write_gpkg

    path = Path(path)
    for v in ("x", "y"):
        if v not in ds:
            raise ValueError(f"the training set has no {v!r} variable: only samples made from a cube have points")
    if "crs" not in ds.attrs:
        raise ValueError("the training set has no attrs['crs']")
    check_target(path, overwrite)
    cols = {k: ds[k].values for k in ("label", "label_name", "field_id", "tile") if k in ds}
    gdf = gpd.GeoDataFrame(
        {"sample": ds["sample"].values, **cols},
        geometry=gpd.points_from_xy(ds["x"].values, ds["y"].values),
        crs=ds.attrs["crs"],
    )
    return write_gpkg(gdf, path, overwrite, layer="samples")


def write_timesen2crop(ds: xr.Dataset, root: str | os.PathLike, overwrite: bool = False) -> Any:
    """Write the set in the published TimeSen2Crop layout; return the ``root/TimeSen2Crop`` folder.

    The CSV flags know only 0..3: observations flagged 255 (no data inside an acquisition) are written as
    1 (unusable, like cloud), with a warning saying how many. Samples need a tile name (``tile=`` of
    make_training_set) because the layout is ``<tile>/<class id>/<n>.csv``.
    """
    from eokit.datasets import timesen2crop

    tiles = np.asarray(ds["tile"].values).astype(str)
    if (tiles == "").any():
        raise ValueError(
            "the TimeSen2Crop layout needs a tile name per sample (folder <tile>/<class>/); "
            "make the set with make_training_set(..., tile='33UVP') or assign ds['tile']"
        )
    out = ds
    valid = ~np.isnat(np.asarray(ds["date"].values))
    nodata = (np.asarray(ds["flag"].values) == FLAG_NODATA) & valid
    if nodata.any():
        warnings.warn(
            f"{int(nodata.sum())} observations flagged 255 (no data) written with flag 1: the "
            "TimeSen2Crop CSV has flags 0..3 only",
            stacklevel=2,
        )
        out = ds.copy()
        out["flag"] = ds["flag"].where(~xr.DataArray(nodata, dims=ds["flag"].dims), FLAG_CLOUD).astype(np.uint8)
    return timesen2crop.write(out, root, overwrite=overwrite)

"""Training sets as xarray Datasets: open one (a Dataset, a Zarr store or a TimeSen2Crop tree) and tell its kind.

A time-series set follows `eokit.schema.TIMESERIES_SCHEMA` (variable `reflectance`, one row per `sample`), a
patch set `PATCH_SCHEMA` (variable `image`, one row per `patch`). Training, prediction and evaluation read
their data through `open_training_data`, so every one of them accepts the same three forms. No TensorFlow.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from eokit.schema import ICE_CLASSES, PATCH_SCHEMA, TIMESERIES_SCHEMA, check_schema

__all__ = ["data_kind", "dataset_class_names", "open_training_data", "sample_dim"]

#: Variables that mark a TimeSen2Crop store written by `eokit.datasets.timesen2crop.to_zarr`.
_TS2C_STORE_VARS = {"tile_index", "tile_dates", "tile_names"}


def _is_zarr(p: Path) -> bool:
    return p.suffix == ".zarr" or any((p / f).exists() for f in ("zarr.json", ".zgroup", ".zmetadata"))


def open_training_data(data: Any) -> xr.Dataset:
    """Return a time-series or patch training set as an (in-memory or lazy) xarray.Dataset, schema-checked.

    `data` is an xarray.Dataset, a Zarr store path (opened lazily; TimeSen2Crop stores written by
    `eokit.datasets.timesen2crop.to_zarr` through that module's reader) or a TimeSen2Crop folder tree or zip.
    """
    if isinstance(data, xr.Dataset):
        ds, where = data, data.attrs.get("source", "the training dataset")
    elif isinstance(data, (str, os.PathLike)):
        p = Path(data)
        if not p.exists():
            raise FileNotFoundError(f"training data {p} does not exist")
        where = str(p)
        if _is_zarr(p):
            ds = xr.open_zarr(p)
            if _TS2C_STORE_VARS <= set(ds.variables):
                # a store written by eokit.datasets.timesen2crop.to_zarr keeps per-tile tables instead of
                # per-sample dates/tiles/class names: its own reader rebuilds them (lazily)
                from eokit.datasets import timesen2crop

                ds = timesen2crop.open(p)
        else:
            try:
                from eokit.datasets import timesen2crop
            except ImportError as e:  # pragma: no cover - depends on helper module
                raise ValueError(f"{p} is not a Zarr store and eokit.datasets.timesen2crop is unavailable") from e
            ds = timesen2crop.open(p)
        if ds.attrs.get("source") not in (None, where):
            ds.attrs["derived_from"] = ds.attrs["source"]
        ds.attrs["source"] = where
    else:
        raise TypeError(f"training data must be an xarray.Dataset or a path, got {type(data).__name__}")
    kind = data_kind(ds, where)
    schema = dict(TIMESERIES_SCHEMA if kind == "timeseries" else PATCH_SCHEMA)
    if kind == "timeseries" and ds["reflectance"].dtype.kind == "f":  # e.g. NDVI series: any numeric dtype
        schema["reflectance"] = (schema["reflectance"][0], "f")
    check_schema(ds, schema, what=where)
    return ds


def data_kind(ds: xr.Dataset, where: str = "dataset") -> str:
    """Return "timeseries" (a `reflectance` variable) or "patch" (an `image` variable), refusing anything else."""
    if "reflectance" in ds.variables:
        return "timeseries"
    if "image" in ds.variables:
        return "patch"
    raise ValueError(f"{where}: neither a time-series set (variable 'reflectance') nor a patch set ('image')")


def sample_dim(kind: str) -> str:
    """Return the sample dimension of a training set of `kind`: "sample" (time series) or "patch"."""
    return "sample" if kind == "timeseries" else "patch"


def dataset_class_names(ds: xr.Dataset, kind: str, class_ids: Sequence[int]) -> list[str]:
    """Return a name per class id of a training set: its `label_name`, its `classes` attribute, the ice
    classes (patch sets) or the id itself."""
    names: dict[int, str] = {}
    if "label_name" in ds.variables:
        lab = np.asarray(ds["label"].values)
        nm = np.asarray(ds["label_name"].values)
        for c in class_ids:
            hit = np.flatnonzero(lab == c)
            if hit.size:
                names[int(c)] = str(nm[hit[0]])
    attr = ds.attrs.get("classes") or ds.attrs.get("class_names")
    if isinstance(attr, str):
        attr = json.loads(attr) if attr.startswith("[") else attr.split(",")
    for c in class_ids:
        if int(c) not in names:
            if attr is not None and 0 <= int(c) < len(attr):
                names[int(c)] = str(attr[int(c)])
            elif kind == "patch" and 0 <= int(c) < len(ICE_CLASSES):
                names[int(c)] = ICE_CLASSES[int(c)]
            else:
                names[int(c)] = str(int(c))
    return [names[int(c)] for c in class_ids]

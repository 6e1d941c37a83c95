"""Argument and input checks of `eokit.patches`: patch size/stride/channels, the scene's polygons, class labels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from eokit.schema import ICE_CLASSES, SAR_CHANNELS


def _whole(name: str, value: Any) -> int:
    """`value` as an int when it is a whole number (not a bool); raise naming `name` otherwise."""
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not np.isfinite(value)
        or float(value) != int(value)
    ):
        raise ValueError(f"{name} must be a whole number of pixels, got {value!r}")
    return int(value)


def _check_args(
    scene: Any, size: Any, stride: Any, min_fraction: Any, channels: Any, chunks: Any = None
) -> tuple[int, int, list[str]]:
    """Validate the arguments of `positions`/`extract` once; return (size, stride, channel names)."""
    if not isinstance(scene, xr.Dataset):
        raise ValueError(f"scene must be an xarray.Dataset from eokit.sar.open, got {type(scene).__name__}")
    name = str(scene.attrs.get("scene", ""))
    size, stride = _whole("patch size", size), _whole("stride", stride)
    if size < 1 or stride < 1:
        raise ValueError(f"patch size and stride must be positive, got size={size}, stride={stride}")
    if (
        isinstance(min_fraction, (bool, np.bool_))
        or not isinstance(min_fraction, (int, float, np.number))
        or not 0.0 < min_fraction <= 1.0
    ):
        raise ValueError(f"min_fraction must be a number in (0, 1], got {min_fraction!r}")
    dims = [d for d in ("y", "x") if d not in scene.dims]
    if dims:
        raise ValueError(
            f"scene {name!r} has no {dims} dimension(s) (dims {list(scene.dims)}); expected (y, x) "
            "images as eokit.sar.open returns"
        )
    ny, nx = scene.sizes["y"], scene.sizes["x"]
    if size > ny or size > nx:
        raise ValueError(f"patch size {size} is larger than scene {name!r} ({ny} x {nx} pixels)")
    if isinstance(channels, str):
        raise ValueError(
            f"channels must be a list of variable names such as {list(SAR_CHANNELS)}, got the string {channels!r}"
        )
    channels = [str(c) for c in channels]
    if not channels:
        raise ValueError(f"channels must name at least one variable of scene {name!r}, e.g. {list(SAR_CHANNELS)}")
    missing = [c for c in channels if c not in scene]
    if missing:
        raise ValueError(f"scene {name!r} lacks channel(s) {missing}; found {list(scene.data_vars)}")
    flat = chunks.values() if isinstance(chunks, Mapping) else ([] if chunks is None else [chunks])
    for v in flat:
        if _whole("chunks", v) < 1:
            raise ValueError(f"chunks must be a positive number of pixels, got {chunks!r}")
    return size, stride, channels


def _scene_polygons(scene: xr.Dataset, polygons: Any, label_column: str) -> Any:
    """Return the scene's polygons in pixel space with integer labels; raise if any lies outside the scene."""
    import geopandas as gpd
    from shapely.geometry import box

    from eokit.sar import read_ice_polygons, to_pixel_space

    name = str(scene.attrs.get("scene", ""))
    gdf = read_ice_polygons(polygons, label_column=label_column, scene=name or None)
    if len(gdf) == 0:
        raise ValueError(f"no labelled polygons for scene {name!r}")
    pix = to_pixel_space(gdf, scene)
    frame = box(0, 0, scene.sizes["x"], scene.sizes["y"])
    outside = ~pix.intersects(frame)
    if outside.any():
        ids = gdf.loc[outside, "polygon_id"].tolist()
        raise ValueError(
            f"{int(outside.sum())} of {len(gdf)} polygons lie outside scene {name!r} "
            f"({scene.sizes['y']} x {scene.sizes['x']} pixels, CRS {scene.rio.crs}): polygon_id {ids[:20]}; "
            "check the polygons' CRS and that they belong to this scene"
        )
    ids = pd.to_numeric(gdf["polygon_id"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(ids) | (np.mod(np.nan_to_num(ids), 1) != 0)
    if bad.any():
        raise ValueError(
            f"polygons of scene {name!r}: column 'polygon_id' must hold whole numbers; rows "
            f"{np.flatnonzero(bad)[:10].tolist()} hold {gdf['polygon_id'][bad].tolist()[:10]}"
        )
    # rasterise positions 0..n-1 (any polygon_id values are allowed) and map back afterwards
    return gpd.GeoDataFrame(
        {
            "index": np.arange(len(gdf), dtype=np.int64),
            "polygon_id": ids.astype(np.int64),
            "label": gdf[label_column].astype(np.int64).values,
        },
        geometry=pix.values,
    )


def _class_labels(ds: Any, what: str) -> np.ndarray:
    """The `label` values of a patch set as int64; raise unless they are ice class ids 0..5."""
    if not isinstance(ds, xr.Dataset) or "label" not in ds.variables:
        raise ValueError(f"{what} has no 'label' variable; expected a patch set (eokit.schema.PATCH_SCHEMA)")
    labels = np.asarray(ds["label"].values)
    ok = np.isin(labels, np.arange(len(ICE_CLASSES)))
    if not ok.all():
        raise ValueError(
            f"{what}: 'label' must hold ice class ids 0..{len(ICE_CLASSES) - 1} ({ICE_CLASSES}); "
            f"patches {np.flatnonzero(~ok)[:10].tolist()} hold {sorted(set(labels[~ok].tolist()))[:10]}"
        )
    return labels.astype(np.int64)

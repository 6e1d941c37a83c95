"""Cloud-Optimised GeoTIFF output of maps (`write_cog`) and the class colour table (`class_colours`)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from eokit._io import atomic_output, check_target
from eokit.maps._blocks import NODATA_CLASS, _check_scheduler, _crs, _gcps, _iter_blocks, _spatial_stack


def class_colours(names: list[str]) -> dict[int, tuple[int, int, int, int]]:
    """Return a GDAL colour table {class index: (r, g, b, a)} in the `eokit.palettes` colours; 255 transparent."""
    from eokit.palettes import rgba

    table = rgba(names)
    table[NODATA_CLASS] = (0, 0, 0, 0)
    return table


def _cog_targets(map_ds: xr.Dataset | xr.DataArray, path: Path) -> dict[str, Path]:
    """Return variable -> output path: `path` itself for a DataArray, `<stem>_<var>.tif` for a Dataset."""
    if isinstance(map_ds, xr.DataArray):
        return {str(map_ds.name or "map"): path}
    suffix = path.suffix or ".tif"
    return {str(v): path.with_name(f"{path.stem}_{v}{suffix}") for v in map_ds.data_vars}


def write_cog(
    map_ds: xr.Dataset | xr.DataArray,
    path: str | os.PathLike,
    overwrite: bool = False,
    scheduler: Any = None,
    progress: bool = True,
    blocksize: int = 512,
) -> list[Path]:
    """Return the Cloud-Optimised GeoTIFFs written: one per variable (`<stem>_<var>.tif`), or `path` itself.

    Blocks are computed chunk by chunk (lazy maps stream: memory bounded by the chunk size) into tiled
    GeoTIFFs beside the target, then GDAL's COG driver adds overviews (nearest for classes, average for
    probabilities), deflate compression and, for class bands, a colour table and the class names; each
    file is renamed into place only when complete.
    """
    import rasterio

    _check_cog_args(map_ds, path, scheduler, blocksize)
    path = Path(path)
    targets = _cog_targets(map_ds, path)
    for p in targets.values():
        check_target(p, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    crs = _crs(map_ds)
    try:
        transform = map_ds.rio.transform()
    except Exception:  # noqa: BLE001
        transform = None
    gcps = _gcps(map_ds)
    arr, layout = _spatial_stack(map_ds)
    variables = {str(map_ds.name or "map"): map_ds} if isinstance(map_ds, xr.DataArray) else map_ds
    dsts = {}
    with contextlib.ExitStack() as outputs:  # each COG renamed into place when all are complete
        cog = {name: outputs.enter_context(atomic_output(targets[name], overwrite)) for name, _, _ in layout}
        tmp = {name: cog[name].with_suffix(".part.tif") for name in cog}  # tiled GeoTIFF the COG is copied from
        try:
            for name, nb, dt in layout:
                var = variables[name]
                profile = _part_profile(arr.shape, nb, dt, blocksize, _nodata_for(var, dt), crs, transform, gcps)
                dsts[name] = rasterio.open(tmp[name], "w", **profile)
                if gcps is not None:
                    dsts[name].gcps = (gcps, crs)
                _describe(dsts[name], var, nb)  # colour table before any pixel is written (TIFF requirement)
            _write_blocks(arr, layout, dsts, scheduler, progress)
            for name, _nb, _dt in layout:
                dsts[name].close()
            for name, _nb, dt in layout:
                _copy_to_cog(tmp[name], cog[name], dt, blocksize)
        finally:
            for d in dsts.values():
                if not d.closed:
                    d.close()
            for p in tmp.values():
                p.unlink(missing_ok=True)
    return [targets[name] for name, _, _ in layout]


def _check_cog_args(map_ds: xr.Dataset | xr.DataArray, path: Any, scheduler: Any, blocksize: Any) -> None:
    """Raise ValueError for a blocksize that is no multiple of 16, a bad scheduler, or a map with no georeference."""
    if not isinstance(blocksize, (int, np.integer)) or isinstance(blocksize, bool) or blocksize < 16 or blocksize % 16:
        raise ValueError(
            f"blocksize must be a multiple of 16 pixels (GeoTIFF tiles), e.g. 256 or 512; got {blocksize!r}"
        )
    _check_scheduler(scheduler)
    if _crs(map_ds) is None and _gcps(map_ds) is None:
        raise ValueError(
            f"map to write to {path} has no CRS (nor ground control points): a GeoTIFF without "
            "georeferencing cannot be placed; expected a map from eokit.maps.predict or set one with "
            ".rio.write_crs(...)"
        )


def _part_profile(
    shape: tuple[int, ...], nb: int, dt: Any, blocksize: int, nodata: Any, crs: Any, transform: Any, gcps: Any
) -> dict[str, Any]:
    """Return the rasterio profile of the tiled GeoTIFF one variable is written to before its COG copy."""
    profile: dict[str, Any] = dict(
        driver="GTiff",
        width=shape[2],
        height=shape[1],
        count=nb,
        dtype=dt,
        tiled=True,
        blockxsize=min(blocksize, 512),
        blockysize=min(blocksize, 512),
        BIGTIFF="IF_SAFER",
        nodata=nodata,
    )
    if gcps is not None:  # radar geometry: GCPs given at open (else rasterio warns "no geotransform")
        profile.update(gcps=gcps, crs=crs)
    if crs is not None and gcps is None:
        profile["crs"] = crs
    if transform is not None and gcps is None:
        profile["transform"] = transform
    return profile


def _write_blocks(arr: Any, layout: Any, dsts: dict[str, Any], scheduler: Any, progress: bool) -> None:
    """Compute `arr` block by block and write each variable's bands of the block into its open GeoTIFF."""
    from rasterio.windows import Window

    for (sy, sx), block in _iter_blocks(arr, scheduler, progress, desc="write COG"):
        window = Window(sx.start, sy.start, sx.stop - sx.start, sy.stop - sy.start)
        b0 = 0
        for name, nb, dt in layout:
            dsts[name].write(block[b0 : b0 + nb].astype(dt), window=window)
            b0 += nb


def _copy_to_cog(part: Path, cog: Path, dt: Any, blocksize: int) -> None:
    """Copy a tiled GeoTIFF to a COG: overviews (nearest for classes, average otherwise), deflate."""
    import rasterio.shutil

    resampling = "NEAREST" if np.dtype(dt).kind in "iu" else "AVERAGE"
    rasterio.shutil.copy(
        part,
        cog,
        driver="COG",
        COMPRESS="DEFLATE",
        OVERVIEWS="AUTO",
        RESAMPLING=resampling,
        BLOCKSIZE=str(blocksize),
        BIGTIFF="IF_SAFER",
        NUM_THREADS="ALL_CPUS",
    )


def _nodata_for(var: xr.DataArray, dtype: np.dtype) -> float | int | None:
    """Return the nodata value of a map variable: its _FillValue, 255 for uint8, NaN for floats."""
    fill = var.attrs.get("_FillValue", var.encoding.get("_FillValue"))
    if fill is not None:
        return fill
    if np.dtype(dtype).kind == "f":
        return float("nan")
    return NODATA_CLASS if np.dtype(dtype) == np.uint8 else None


def _describe(dst: Any, var: xr.DataArray, n_bands: int) -> None:
    """Set band descriptions, class-name tags and (for class bands) the colour table of an open GeoTIFF."""
    names = var.attrs.get("class_names")
    if names is not None and n_bands == 1:
        names = json.loads(names) if isinstance(names, str) else list(names)
        dst.write_colormap(1, class_colours(names))
        dst.update_tags(1, class_names=json.dumps(names), class_ids=var.attrs.get("class_ids", ""))
        dst.update_tags(**{f"CLASS_{i}": n for i, n in enumerate(names)})
        dst.set_band_description(1, str(var.name))
    elif var.ndim == 3:
        labels = [str(v) for v in var[var.dims[0]].values]
        for i, label in enumerate(labels, start=1):
            dst.set_band_description(i, label)
    else:
        dst.set_band_description(1, str(var.name))
    meanings = var.attrs.get("flag_meanings")
    if meanings:
        dst.update_tags(flag_meanings=str(meanings), flag_values=str(var.attrs.get("flag_values", "")))

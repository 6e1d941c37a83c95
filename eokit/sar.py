"""Sentinel-1 SAR scenes as xarray Datasets (SNAP exports, GeoTIFF folders, GRD SAFE products) and preprocessing.

`open` reads what SNAP writes (its one multi-band GeoTIFF export, a BEAM-DIMAP `.dim` product with its `.data`
folder of ENVI files), a folder of single-band GeoTIFF/ENVI files, or a Sentinel-1 GRD `.SAFE`, and returns a
Dataset with dims (y, x) holding `HH`, `HV` (as stored: dB, linear sigma0 or amplitude, told by each variable's
`units` attribute), `IA` (incidence angle, degrees), optional `land` mask, a CRS and transform or ground
control points, and attrs `scene`. `preprocess` turns it into clipped dB backscatter with an optional
incidence-angle correction, a `valid` mask and reusable statistics.

SNAP products are read by :mod:`eokit.snap`, band naming, selection and loading is :mod:`eokit.sarbands`, files
are opened through :mod:`eokit.rasterfiles`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from eokit import snap
from eokit.sarbands import (
    POLARISATIONS,
    RASTER_SUFFIXES,
    Band,
    assemble,
    classify,
    grid_to_image,
    refuse_missing,
    select_bands,
)
from eokit.sarstats import _check_stats, combine_stats, load_stats, save_stats, standardize_scene  # noqa: F401
from eokit.schema import SAR_CHANNELS


def open(path: str | os.PathLike[str], chunks: Mapping[str, int] | int | str | None = None) -> xr.Dataset:
    """Return the SAR scene at `path` (SNAP GeoTIFF or BEAM-DIMAP, GeoTIFF folder, GRD .SAFE) as a (y, x) Dataset.

    Accepted: SNAP's GeoTIFF export (one multi-band .tif; band names from the GDAL band descriptions, else
    from the DIMAP header SNAP writes into TIFF tag 65000), a BEAM-DIMAP product (the `.dim` or its `.data`
    folder; ENVI bands, no-data and scaling as the header says, IA from a band or the `incident_angle`
    tie-point grid), a folder of single-band rasters named by band (Sigma0_HH_db.tif, ...), or a Sentinel-1
    GRD `.SAFE`. HH/HV may be dB, linear sigma0 or amplitude: with several, dB is taken, then linear; the
    incidence angle from the ellipsoid is taken before the projected local one; other bands (latitude,
    longitude, elevation, ...) are ignored; two bands of the same kind for one variable are refused.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"SAR scene {p} does not exist")
    if p.suffix.lower() == ".safe" or (p.is_dir() and (p / "manifest.safe").exists()) or p.name == "manifest.safe":
        return _open_safe(p.parent if p.name == "manifest.safe" else p, chunks)
    if p.suffix.lower() == ".dim":
        return snap.open_dimap(p, chunks)
    if p.is_dir() and p.suffix.lower() == ".data" and p.with_suffix(".dim").is_file():
        return snap.open_dimap(p.with_suffix(".dim"), chunks)
    if p.is_dir():
        return _open_geotiff_folder(p, chunks)
    if p.suffix.lower() in (".tif", ".tiff"):
        return snap.open_geotiff(p, chunks)
    if p.suffix.lower() == ".zip":
        raise ValueError(f"{p} is a zipped product: unzip it and pass the .SAFE folder inside it")
    raise ValueError(
        f"{p} is neither a SNAP GeoTIFF (.tif) or BEAM-DIMAP product (.dim), nor a folder of GeoTIFFs "
        "(Sigma0_HH_db.tif, Sigma0_HV_db.tif, incidence_angle.tif), nor a Sentinel-1 .SAFE product folder"
    )


def _open_geotiff_folder(folder: Path, chunks: Any) -> xr.Dataset:
    listing = sorted(f.name for f in folder.iterdir())
    bands = [Band(f.stem, f, single=True) for f in sorted(folder.iterdir()) if f.suffix.lower() in RASTER_SUFFIXES]
    chosen, virtual = select_bands(bands, f"SAR scene folder {folder}")
    hint = "" if chosen else "; a SNAP GeoTIFF export (one multi-band .tif) or a .dim is opened by its own path"
    try:
        refuse_missing(f"folder {folder}", chosen, listing, virtual, suffix=".tif", what="files")
    except ValueError as exc:
        raise ValueError(f"{exc}{hint}".replace("(any letter case)", "(any letter case, .tif/.tiff/.img)")) from None
    return assemble(chosen, chunks, {"scene": folder.name, "source": str(folder), "format": "geotiff"})


# --- Sentinel-1 SAFE ------------------------------------------------------------------------------------


def _open_safe(safe: Path, chunks: Any) -> xr.Dataset:
    import xarray_sentinel as xs
    from rasterio.control import GroundControlPoint

    if not (safe / "manifest.safe").exists():
        raise FileNotFoundError(f"{safe} has no manifest.safe: not a Sentinel-1 SAFE product folder")
    root = xs.open_sentinel1_dataset(str(safe))
    if root.attrs.get("product_type") != "GRD":
        raise ValueError(f"{safe} is a {root.attrs.get('product_type')} product; only GRD products are supported")
    pol_groups = {g.split("/")[1]: g for g in root.attrs.get("subgroups", []) if g.count("/") == 1}
    missing = [p for p in POLARISATIONS if p not in pol_groups]
    if missing:
        raise ValueError(
            f"Sentinel-1 product {safe} lacks polarisation {', '.join(missing)}: HH and HV (1SDH) are needed; "
            f"found {sorted(pol_groups) or 'none'} in manifest.safe"
        )
    rio_chunks = None
    if chunks is not None:
        c = chunks if isinstance(chunks, Mapping) else {"y": chunks, "x": chunks}
        rio_chunks = {"y": c.get("y", -1), "x": c.get("x", -1)}
    variables: dict[str, xr.DataArray] = {}
    gcp_ds = None
    for pol in POLARISATIONS:
        group = pol_groups[pol]
        meas = xs.open_sentinel1_dataset(str(safe), group=group, rasterio_chunks=rio_chunks).measurement
        cal = xs.open_sentinel1_dataset(str(safe), group=f"{group}/calibration")
        if meas.chunks is None:
            sigma0 = xs.calibrate_intensity(meas, cal.sigmaNought)
        else:  # calibrate block by block so the LUT is never interpolated to the whole image at once
            sigma0 = xr.map_blocks(
                lambda block, lut: xs.calibrate_intensity(block, lut),
                meas,
                args=[cal.sigmaNought],
                template=meas.astype(np.float32),
            )
        sigma0 = sigma0.swap_dims(
            {
                d: c
                for d, c in (("azimuth_time", "line"), ("ground_range", "pixel"), ("slant_range_time", "pixel"))
                if d in sigma0.dims
            }
        )
        sigma0 = sigma0.reset_coords(drop=True).rename({"line": "y", "pixel": "x"}).astype(np.float32)
        sigma0.attrs = {"units": "linear", "long_name": f"sigma0 {pol}", "source_file": Path(group).as_posix()}
        variables[pol] = sigma0
        if gcp_ds is None:
            gcp_ds = xs.open_sentinel1_dataset(str(safe), group=f"{group}/gcp")
    assert gcp_ds is not None
    hh = variables["HH"]
    ia = grid_to_image(gcp_ds.line.values, gcp_ds.pixel.values, gcp_ds.incidenceAngle.values, hh)
    variables["IA"] = xr.DataArray(ia, dims=("y", "x"), coords=hh.coords, attrs={"units": "degrees"})
    ds = xr.Dataset(variables)
    ds = ds.assign_coords(y=np.arange(ds.sizes["y"]), x=np.arange(ds.sizes["x"]))
    gcps = [
        GroundControlPoint(row=float(line), col=float(pixel), x=float(lon), y=float(lat), z=float(h))
        for line, lat_row, lon_row, h_row in zip(
            gcp_ds.line.values, gcp_ds.latitude.values, gcp_ds.longitude.values, gcp_ds.height.values, strict=True
        )
        for pixel, lat, lon, h in zip(gcp_ds.pixel.values, lat_row, lon_row, h_row, strict=True)
    ]
    ds = ds.rio.write_gcps(gcps, "EPSG:4326")
    attrs = root.attrs
    ds.attrs = {
        "scene": safe.name[: -len(safe.suffix)] if safe.suffix.lower() == ".safe" else safe.name,
        "source": str(safe),
        "format": "safe",
        **{k: attrs[k] for k in ("mode", "pass", "start_time", "stop_time", "product_type") if k in attrs},
        "mission": f"S1{attrs.get('number', '')}",
    }
    return ds


# --- preprocessing --------------------------------------------------------------------------------------


def to_db(da: xr.DataArray) -> xr.DataArray:
    """Return backscatter in dB from a band whose `units` attr is dB, linear (sigma0) or amplitude."""
    units = da.attrs.get("units", "dB")
    if units == "dB":
        out = da
    elif units in ("linear", "amplitude"):
        power = da if units == "linear" else da**2
        out = 10 * np.log10(power.where(power > 0))  # type: ignore[assignment]  # numpy stubs: a DataArray here
    else:
        raise ValueError(f"variable {da.name!r} has units {units!r}; expected 'dB', 'linear' or 'amplitude'")
    out = out.astype(np.float32)
    out.attrs = {**da.attrs, "units": "dB"}
    return out


def preprocess(
    scene: xr.Dataset,
    clip: tuple[float, float] | None = (-35.0, 5.0),
    ia_correction: Mapping[str, float] | None = None,
    ref_angle: float | None = None,
    stats: Mapping[str, Any] | None = None,
    standardize: bool = False,
    land: Any = None,
) -> tuple[xr.Dataset, dict[str, Any]]:
    """Return (scene in clipped dB with `valid`/`land` masks, statistics) after optional IA correction.

    `ia_correction` maps a polarisation to its backscatter slope in dB per degree of incidence angle
    (negative for sea ice, e.g. {"HH": -0.24, "HV": -0.16}); the band is normalised to `ref_angle` as
    ``sigma0_dB - slope * (IA - ref_angle)``. Statistics (mean and std per channel over valid pixels, the
    clip range, slopes and reference angle) are computed here unless `stats` is given (reuse the training
    scenes' statistics for test scenes); `standardize=True` also rescales HH, HV and IA to zero mean and
    unit variance. `land` is an optional land mask: polygons (path or GeoDataFrame) rasterised to the scene.
    """
    for var in (*POLARISATIONS, "IA"):
        if var not in scene:
            raise ValueError(
                f"scene {scene.attrs.get('scene', '?')} has no {var!r} variable; found {list(scene.data_vars)}"
            )
    if stats is not None:
        _check_stats(stats)
        clip = tuple(stats["clip"]) if stats.get("clip") is not None else None
        ia_correction = stats.get("ia_correction")
        ref_angle = stats.get("ref_angle")
    out = scene.copy()
    for pol in POLARISATIONS:
        out[pol] = to_db(scene[pol])
    ia = out["IA"].astype(np.float32)
    valid = np.isfinite(out["HH"]) & np.isfinite(out["HV"]) & np.isfinite(ia) & (ia > 0)
    if land is not None:
        out["land"] = _land_mask(out, land)
    if "land" in out:
        valid = valid & (out["land"] == 0)
    out["valid"] = valid.astype(np.uint8)
    out["valid"].attrs = {"long_name": "1 = valid sea pixel (finite HH, HV, IA and not land)"}
    if ia_correction:
        ref_angle = _ia_correct(out, ia, valid, ia_correction, ref_angle)
    if clip is not None:
        _clip_db(out, clip)
    for var in (*POLARISATIONS, "IA"):
        out[var] = out[var].where(out["valid"] == 1)
    if stats is None:
        stats = _scene_stats(out, scene, clip, ia_correction, ref_angle)
    else:
        stats = dict(stats)
    if standardize:
        out = standardize_scene(out, stats)
    out.attrs = {**scene.attrs, "preprocessed": 1, "standardized": int(standardize)}
    return out, stats


def _ia_correct(
    out: xr.Dataset, ia: xr.DataArray, valid: Any, ia_correction: Mapping[str, float], ref_angle: Any
) -> float:
    """Normalise each polarisation of `out` (in place) to `ref_angle` (default: the mean valid IA); return it."""
    unknown = set(ia_correction) - set(POLARISATIONS)
    if unknown:
        raise ValueError(f"ia_correction has slopes for {sorted(unknown)}; expected keys among {POLARISATIONS}")
    if ref_angle is None:
        ref_angle = float(ia.where(valid).mean().compute())
    for pol, slope in ia_correction.items():
        if float(slope) > 0:
            warnings.warn(
                f"ia_correction slope for {pol} is {slope} dB/degree: positive, yet sea-ice and water backscatter "
                "falls with incidence angle; pass the (negative) gradient, e.g. -0.24",
                stacklevel=3,
            )
        attrs = out[pol].attrs
        out[pol] = (out[pol] - float(slope) * (ia - float(ref_angle))).astype(np.float32)
        out[pol].attrs = {**attrs, "ia_correction_slope": float(slope), "ref_angle": float(ref_angle)}
    return ref_angle


def _clip_db(out: xr.Dataset, clip: Any) -> None:
    """Clip each polarisation of `out` (in place) to (low, high) dB, keeping its attributes."""
    lo, hi = float(clip[0]), float(clip[1])
    if lo >= hi:
        raise ValueError(f"clip must be (low, high) with low < high, got {clip}")
    for pol in POLARISATIONS:
        attrs = out[pol].attrs
        out[pol] = out[pol].clip(lo, hi)
        out[pol].attrs = attrs


def _scene_stats(out: xr.Dataset, scene: xr.Dataset, clip: Any, ia_correction: Any, ref_angle: Any) -> dict[str, Any]:
    """Return the statistics of a preprocessed scene: mean and std per channel, clip, slopes, reference angle."""
    import dask

    means = {v: out[v].mean() for v in SAR_CHANNELS}
    stds = {v: out[v].std() for v in SAR_CHANNELS}
    means, stds = dask.compute(means, stds)
    return {
        "mean": {v: float(m) for v, m in means.items()},
        "std": {v: float(s) for v, s in stds.items()},
        "clip": list(clip) if clip is not None else None,
        "ia_correction": dict(ia_correction) if ia_correction else None,
        "ref_angle": float(ref_angle) if ref_angle is not None else None,
        "scenes": [scene.attrs.get("scene", "")],
    }


def _land_mask(scene: xr.Dataset, land: Any) -> xr.DataArray:
    import geopandas as gpd
    from rasterio.features import rasterize

    gdf = gpd.read_file(land) if isinstance(land, (str, os.PathLike)) else land
    geoms = to_pixel_space(gdf, scene)
    mask = rasterize(
        ((g, 1) for g in geoms if g is not None and not g.is_empty),
        out_shape=(scene.sizes["y"], scene.sizes["x"]),
        fill=0,
        dtype=np.uint8,
    )
    return xr.DataArray(mask, dims=("y", "x"), coords={"y": scene.y, "x": scene.x}, attrs={"long_name": "1 = land"})


# --- polygons -------------------------------------------------------------------------------------------


def to_pixel_space(gdf: Any, scene: xr.Dataset) -> Any:
    """Return the GeoDataFrame's geometries (a GeoSeries) in the scene's pixel space (x = column, y = row)."""
    import shapely
    from shapely import affinity

    if gdf.crs is None:
        raise ValueError("polygons have no CRS; write one into the file (e.g. EPSG:3413) before using them")
    try:
        gcps = scene.rio.get_gcps()
    except Exception:  # rioxarray raises when the grid mapping has no GCPs
        gcps = None
    if not gcps and scene.rio.crs is not None:
        geoms = gdf.geometry.to_crs(scene.rio.crs)
        t = ~scene.rio.transform(recalc=True)
        return geoms.apply(lambda g: affinity.affine_transform(g, [t.a, t.b, t.d, t.e, t.c, t.f]))
    if not gcps:
        raise ValueError(f"scene {scene.attrs.get('scene', '?')} has neither a CRS nor ground control points")
    from rasterio.transform import GCPTransformer

    geoms = gdf.geometry.to_crs("EPSG:4326")
    transformer = GCPTransformer(gcps)

    def to_pix(coords: np.ndarray) -> np.ndarray:
        rows, cols = transformer.rowcol(coords[:, 0], coords[:, 1], op=lambda v: v)
        return np.column_stack([np.asarray(cols, dtype=float), np.asarray(rows, dtype=float)])

    return geoms.apply(lambda g: shapely.transform(g, to_pix))


def _scene_match(values: Any, scene: str) -> Any:
    """Rows whose `scene` value is the scene name, or a stamp inside it (METNO charts: 20180116T075430)."""
    vals = values.astype(str)
    return (vals == scene) | vals.map(lambda v: len(v) >= 8 and v in scene)


def read_ice_polygons(
    path: str | os.PathLike[str] | Any,
    label_column: str = "ice_class",
    scene: str | None = None,
) -> Any:
    """Return ice polygons (GeoDataFrame) with an integer `label_column` in 0..5 (the six WMO classes).

    Reads any vector file GDAL reads (GeoPackage, Shapefile, ...) with polygons labelled by class index or
    name, or a SIGRID-3 ice chart of any ice service and name (a POLY_TYPE field in any letter case; METNO
    folders and `seaice_s1_<stamp>.shp` files also get their scene columns), mapped to the WMO classes by
    `eokit.sigrid` and its shipped table (polygons with no class, e.g. land, no data, ice shelf, are
    dropped). `scene` keeps the rows whose `scene` column is that name or a time stamp within it.
    """
    from eokit import sigrid
    from eokit.schema import ICE_CLASSES

    src = str(path) if isinstance(path, (str, os.PathLike)) else "GeoDataFrame"
    if isinstance(path, (str, os.PathLike)):
        p = Path(path)
        if not p.exists():
            raise FileNotFoundError(f"ice polygon file {p} does not exist")
        if p.is_dir() or p.name.lower().startswith("seaice_s1_"):
            from eokit.datasets import metno

            gdf = metno.open(p)
        else:
            gdf = sigrid.read_vector(p)
            if label_column not in gdf.columns and sigrid.is_chart(gdf):
                gdf = sigrid.read_ice_chart(p)  # the chart checks (CRS, polygons) and decoding
    else:
        gdf = path.copy()
    if label_column not in gdf.columns:
        if not sigrid.is_chart(gdf):
            raise ValueError(
                f"{src} has no column {label_column!r} and is not a SIGRID-3 chart (no POLY_TYPE field in any "
                f"letter case); columns are {list(gdf.columns)}"
            )
        if not (gdf.attrs.get("sigrid_decoded") and "wmo_class" in gdf.columns):
            gdf = sigrid.decode(gdf, source=src)
        names = gdf["wmo_class"]
        gdf = gdf.assign(**{label_column: names})[names.notna().to_numpy()]
    if scene is not None and "scene" in gdf.columns:
        keep = _scene_match(gdf["scene"], scene)
        if not keep.any():
            raise ValueError(
                f"{src} has no polygons for scene {scene!r}; "
                f"scenes present: {sorted(gdf['scene'].astype(str).unique())}"
            )
        gdf = gdf[keep.to_numpy()]
    labels = gdf[label_column]
    if labels.dtype.kind in "OUST" or str(labels.dtype) == "string":
        names = {n.lower(): i for i, n in enumerate(ICE_CLASSES)}
        bad = sorted({str(v) for v in labels if str(v).lower() not in names})
        if bad:
            raise ValueError(f"{src} column {label_column!r} has unknown ice classes {bad}; expected {ICE_CLASSES}")
        gdf = gdf.assign(**{label_column: np.array([names[str(v).lower()] for v in labels], dtype=np.int64)})
    else:
        ok = labels.isin(range(len(ICE_CLASSES))).to_numpy()
        if not ok.all():
            rows = np.flatnonzero(~ok).tolist()
            raise ValueError(
                f"{src} column {label_column!r} has values outside 0..{len(ICE_CLASSES) - 1} in rows {rows[:10]}"
                f": {sorted(set(labels[~ok].tolist()))[:10]}"
            )
        gdf = gdf.assign(**{label_column: labels.astype(np.int64)})
    if "polygon_id" not in gdf.columns:
        gdf = gdf.assign(polygon_id=np.arange(len(gdf), dtype=np.int64))
    return gdf.reset_index(drop=True)


def find_scenes(folder: str | os.PathLike[str]) -> list[Path]:
    """Return the SAR scenes (.SAFE, BEAM-DIMAP .dim, SNAP GeoTIFFs, GeoTIFF folders) inside `folder`, by name."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"SAR scene folder {root} does not exist")
    found = []
    for p in sorted(root.iterdir()):
        if p.is_file():
            if p.suffix.lower() == ".dim" or (p.suffix.lower() in (".tif", ".tiff") and snap.is_snap_geotiff(p)):
                found.append(p)
        elif p.suffix.lower() == ".safe" or (p / "manifest.safe").exists():
            found.append(p)
        elif p.suffix.lower() == ".data" and p.with_suffix(".dim").is_file():
            continue  # the data folder of a BEAM-DIMAP product, found by its .dim
        elif any(f.suffix.lower() in RASTER_SUFFIXES and classify(f.stem) for f in p.iterdir()):
            found.append(p)
    if not found:
        raise FileNotFoundError(
            f"no SAR scenes in {root}: expected sub-folders with Sigma0_HH_db.tif/Sigma0_HV_db.tif/"
            "incidence_angle.tif, SNAP GeoTIFF exports (.tif), BEAM-DIMAP products (.dim) or Sentinel-1 .SAFE "
            f"products; found {sorted(p.name for p in root.iterdir())}"
        )
    return found

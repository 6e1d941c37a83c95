"""SNAP products: its GeoTIFF export (one multi-band .tif, band names in GDAL band descriptions or in the DIMAP
header SNAP writes into TIFF tag 65000) and BEAM-DIMAP (a ``.dim`` XML header with its ``.data`` folder of ENVI
files and tie-point grids).

The DIMAP header gives each band's name, index, no-data value, scaling and whether it is virtual (an expression,
no samples of its own); ``Data_Access`` lists the ENVI files, ``Tie_Point_Grids`` the tie-point grids (the
incidence angle from the ellipsoid when no band holds it, latitude/longitude as GCPs in image geometry).
Bands are picked and loaded by ``eokit.sarbands``; ``eokit.sar.open`` calls :func:`open_geotiff` and
:func:`open_dimap`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import rasterio.errors
import xarray as xr

from eokit.rasterfiles import gdal_detail, open_raster, read_band, tiff_text_tag
from eokit.sarbands import Band, assemble, grid_to_image, refuse_missing, select_bands

__all__ = ["is_snap_geotiff", "open_dimap", "open_geotiff"]

_BEAM_METADATA_TAG = 65000  # SNAP's private TIFF tag holding the DIMAP header XML


def _parse_dimap(text: str | bytes, source: Path) -> ET.Element:
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        raise ValueError(
            f"{source} is not a BEAM-DIMAP header: not well-formed XML ({exc}); expected a <Dimap_Document> XML file"
        ) from exc
    if root.tag != "Dimap_Document":
        raise ValueError(f"{source} is not a BEAM-DIMAP header: root element <{root.tag}>, expected <Dimap_Document>")
    return root


def _text(el: ET.Element, tag: str, default: str | None = None) -> str | None:
    found = el.find(tag)
    return found.text.strip() if found is not None and found.text is not None else default


def _dimap_bands(root: ET.Element, source: Path, files: Mapping[int, Path] | None) -> list[Band]:
    """Spectral_Band_Info entries in BAND_INDEX order; `files` maps BAND_INDEX -> ENVI file (None: GeoTIFF)."""
    infos = root.findall("Image_Interpretation/Spectral_Band_Info")
    out: list[tuple[int, Band]] = []
    for k, info in enumerate(infos):
        name = _text(info, "BAND_NAME")
        try:
            index = int(_text(info, "BAND_INDEX", str(k)))  # type: ignore[arg-type]
            scale = float(_text(info, "SCALING_FACTOR", "1") or 1)
            offset = float(_text(info, "SCALING_OFFSET", "0") or 0)
            nodata = (
                float(_text(info, "NO_DATA_VALUE", "nan"))  # type: ignore[arg-type]
                if (_text(info, "NO_DATA_VALUE_USED", "false") or "").lower() == "true"
                else None
            )
        except ValueError as exc:
            raise ValueError(f"{source}: Spectral_Band_Info {k} ({name}) has a non-numeric field: {exc}") from exc
        if not name:
            raise ValueError(f"{source}: Spectral_Band_Info {k} has no BAND_NAME")
        expression = _text(info, "EXPRESSION") if (_text(info, "VIRTUAL_BAND", "") or "").lower() == "true" else None
        path = source if files is None else files.get(index, source)
        out.append(
            (
                index,
                Band(
                    name,
                    path,
                    nodata=nodata,
                    scale=scale,
                    offset=offset,
                    log10=(_text(info, "LOG10_SCALED", "false") or "").lower() == "true",
                    expression=expression,
                ),
            )
        )
    return [b for _, b in sorted(out, key=lambda t: t[0])]


def open_geotiff(path: Path, chunks: Any) -> xr.Dataset:
    """Return the scene of a SNAP GeoTIFF export, bands named by the GDAL descriptions or tag 65000."""
    try:
        with open_raster(path) as src:  # GTiff: GDAL's SNAP_TIFF driver drops the map geocoding
            count, descriptions = src.count, list(src.descriptions)
    except rasterio.errors.RasterioError as exc:
        raise ValueError(f"{path} cannot be read as a GeoTIFF ({gdal_detail(exc)})") from exc
    try:
        header = tiff_text_tag(path, _BEAM_METADATA_TAG)
    except ValueError:
        header = None
    if all(descriptions):
        bands = [Band(d, path, k) for k, d in enumerate(descriptions, start=1)]
        where = "band descriptions"
    elif header and "<Dimap_Document" in header:
        listed = _dimap_bands(_parse_dimap(header, path), path, None)
        stored = [b for b in listed if b.expression is None]  # SNAP writes no samples for virtual bands
        if len(stored) != count:
            raise ValueError(
                f"{path}: its DIMAP header (TIFF tag 65000) lists {len(stored)} stored bands "
                f"{[b.name for b in stored]}, but the file has {count} bands; expected one header entry per band"
            )
        bands = [b._replace(index=k) for k, b in enumerate(stored, start=1)]
        bands += [b for b in listed if b.expression is not None]
        where = "bands (from the DIMAP header in TIFF tag 65000)"
    else:
        raise ValueError(
            f"{path} has {count} bands with band descriptions {descriptions} and no SNAP DIMAP header (TIFF tag "
            "65000): its bands cannot be named; expected a SNAP GeoTIFF export with bands Sigma0_HH_db, "
            "Sigma0_HV_db and incidenceAngleFromEllipsoid (or a folder of single-band files named so)"
        )
    chosen, virtual = select_bands(bands, path)
    refuse_missing(path, chosen, [b.name for b in bands], virtual, what=where)
    return assemble(chosen, chunks, {"scene": path.stem, "source": str(path), "format": "snap-geotiff"})


def _dimap_files(root: ET.Element, dim: Path) -> tuple[dict[int, Path], dict[str, Path]]:
    """(BAND_INDEX -> band .img, tie-point grid name -> .img) from Data_Access; refuse listed files not there."""
    bands: dict[int, Path] = {}
    grids: dict[str, Path] = {}
    missing: list[str] = []
    for tag, path_tag, index_tag in (
        ("Data_File", "DATA_FILE_PATH", "BAND_INDEX"),
        ("Tie_Point_Grid_File", "TIE_POINT_GRID_FILE_PATH", "TIE_POINT_GRID_INDEX"),
    ):
        for entry in root.findall(f"Data_Access/{tag}"):
            ref = entry.find(path_tag)
            href = ref.get("href") if ref is not None else None
            if not href:
                raise ValueError(f"{dim}: a Data_Access/{tag} has no {path_tag} href; expected the ENVI .hdr path")
            hdr = dim.parent / href.lstrip("/")
            img = hdr.with_suffix(".img")
            missing += [str(f.relative_to(dim.parent)) for f in (hdr, img) if not f.is_file()]
            if tag == "Data_File":
                bands[int(_text(entry, index_tag, "-1") or -1)] = img
            else:
                grids[hdr.stem] = img
    if missing:
        raise FileNotFoundError(
            f"BEAM-DIMAP product {dim} lists data files that are not there: {missing}; expected each band's ENVI "
            f".hdr and .img in {dim.with_suffix('.data').name}/"
        )
    return bands, grids


def open_dimap(dim: Path, chunks: Any) -> xr.Dataset:
    """Return the scene of a BEAM-DIMAP product (its `.dim`), IA from a band or the tie-point grid."""
    root = _parse_dimap(dim.read_bytes(), dim)
    files, grids = _dimap_files(root, dim)
    bands = _dimap_bands(root, dim, files)
    for b in bands:
        if b.expression is None and b.path == dim:
            raise ValueError(f"{dim}: band {b.name!r} has no Data_Access/Data_File entry; expected its ENVI .hdr path")
    chosen, virtual = select_bands(bands, dim)
    ia_grid = None
    if "IA" not in chosen or chosen["IA"][1].rank > 0:  # the ellipsoid angle grid beats a local-angle band
        grid_bands = [Band(name, p) for name, p in grids.items()]
        ia_grid = select_bands(grid_bands, f"{dim} tie-point grids")[0].get("IA")
        if ia_grid is not None and ia_grid[1].rank == 0:
            chosen = {**chosen, "IA": ia_grid}
    refuse_missing(dim, chosen, [b.name for b in bands] + [f"{g} (tie-point grid)" for g in grids], virtual)
    if ia_grid is not None and chosen["IA"] is ia_grid:
        chosen = {k: v for k, v in chosen.items() if k != "IA"}
    else:
        ia_grid = None
    attrs = {"scene": dim.stem, "source": str(dim), "format": "beam-dimap", **_dimap_attrs(root)}
    ds = assemble(chosen, chunks, attrs)
    if ia_grid is not None:
        ds["IA"] = _tie_point_grid(root, dim, ia_grid[0], ds["HH"])
    if ds.rio.crs is None and not _has_gcps(ds) and {"latitude", "longitude"} <= set(grids):
        ds = ds.rio.write_gcps(_tie_point_gcps(root, dim), "EPSG:4326")
    return ds


def _has_gcps(ds: xr.Dataset) -> bool:
    try:
        return bool(ds.rio.get_gcps())
    except (KeyError, ValueError, TypeError):  # some rioxarray versions raise when there are none
        return False


def _dimap_attrs(root: ET.Element) -> dict[str, str]:
    meta = {
        a.get("name"): (a.text or "").strip() for a in root.findall(".//MDElem[@name='Abstracted_Metadata']/MDATTR")
    }
    out = {}
    if meta.get("ACQUISITION_MODE"):
        out["mode"] = meta["ACQUISITION_MODE"]
    if meta.get("PASS"):
        out["pass"] = meta["PASS"].capitalize()
    if meta.get("MISSION", "").upper().startswith("SENTINEL-1"):
        out["mission"] = "S1" + meta["MISSION"][-1].upper()
    return out


def _grid_info(root: ET.Element, dim: Path, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(column positions, row positions, values) of a tie-point grid, positions as 0-based pixel indices."""
    for info in root.findall("Tie_Point_Grids/Tie_Point_Grid_Info"):
        if _text(info, "TIE_POINT_GRID_NAME") != name:
            continue
        try:
            ncols, nrows = int(_text(info, "NCOLS", "") or ""), int(_text(info, "NROWS", "") or "")
            ox, oy, sx, sy = (float(_text(info, t, "") or "") for t in ("OFFSET_X", "OFFSET_Y", "STEP_X", "STEP_Y"))
        except ValueError as exc:
            raise ValueError(f"{dim}: Tie_Point_Grid_Info {name!r} lacks NCOLS/NROWS/OFFSET/STEP: {exc}") from exc
        img = dim.parent / dim.with_suffix(".data").name / "tie_point_grids" / f"{name}.img"
        values = read_band(img, "an ENVI tie-point grid", driver="ENVI", georeferenced=False)[0].astype(np.float64)
        if values.shape != (nrows, ncols):
            raise ValueError(f"{img} is {values.shape[::-1]} (cols, rows), but {dim} says {ncols} x {nrows}")
        # SNAP places tie point i at image coordinate OFFSET + i * STEP, pixel centres at index + 0.5
        return ox + sx * np.arange(ncols) - 0.5, oy + sy * np.arange(nrows) - 0.5, values
    raise ValueError(f"{dim} has a tie-point grid file {name!r} but no Tie_Point_Grids/Tie_Point_Grid_Info for it")


def _tie_point_grid(root: ET.Element, dim: Path, band: Band, like: xr.DataArray) -> xr.DataArray:
    cols, rows, values = _grid_info(root, dim, band.name)
    data = grid_to_image(rows, cols, values, like)
    return xr.DataArray(
        data,
        dims=("y", "x"),
        coords=like.coords,
        attrs={"units": "degrees", "source_file": f"tie_point_grids/{band.name}"},
    )


def _tie_point_gcps(root: ET.Element, dim: Path) -> list[Any]:
    from rasterio.control import GroundControlPoint

    cols, rows, lat = _grid_info(root, dim, "latitude")
    _, _, lon = _grid_info(root, dim, "longitude")
    return [
        GroundControlPoint(row=float(r) + 0.5, col=float(c) + 0.5, x=float(lon[j, i]), y=float(lat[j, i]))
        for j, r in enumerate(rows)
        for i, c in enumerate(cols)
    ]


def is_snap_geotiff(path: Path) -> bool:
    """Return whether `path` is a TIFF holding SNAP's DIMAP header (tag 65000)."""
    try:
        header = tiff_text_tag(path, _BEAM_METADATA_TAG)
    except ValueError:
        return False
    return header is not None and "<Dimap_Document" in header

"""The bands of a SAR scene: which band is HH, HV, IA or a land mask, one picked per variable, loaded onto one grid.

Band names follow SNAP's (``Sigma0_HH_db``, ``Sigma0_HV``, ``Amplitude_HH``, ``incidenceAngleFromEllipsoid``,
...; any letter case): per variable dB is taken before linear before amplitude, the ellipsoid incidence angle
before the projected local one; two bands of the same kind for one variable are refused. Used by
``eokit.sar`` (GeoTIFF folders, Sentinel-1 SAFE) and ``eokit.snap`` (SNAP GeoTIFF export, BEAM-DIMAP).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import rasterio.errors
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from eokit.rasterfiles import open_raster, open_rasterio

__all__ = [
    "POLARISATIONS",
    "RASTER_SUFFIXES",
    "Band",
    "Kind",
    "assemble",
    "classify",
    "grid_to_image",
    "refuse_missing",
    "select_bands",
]

POLARISATIONS: tuple[str, ...] = ("HH", "HV")

#: band-name patterns (lower case, file stem or band name) -> (variable, units, rank); per variable the lowest
#: rank present wins (dB before linear before amplitude: SNAP products often hold Sigma0_HH and Sigma0_HH_db,
#: one measurement in two units), two bands of the same rank are ambiguous and refused.
_BAND_PATTERNS: list[tuple[re.Pattern[str], str, str, int]] = []
for _pol in POLARISATIONS:
    _p = _pol.lower()
    _BAND_PATTERNS += [
        (re.compile(rf"^(sigma0|sigma_0|sigmanought|intensity)_{_p}_db$"), _pol, "dB", 0),
        (re.compile(rf"^{_p}_db$"), _pol, "dB", 0),
        (re.compile(rf"^(sigma0|sigma_0|sigmanought|intensity)_{_p}$"), _pol, "linear", 1),
        (re.compile(rf"^{_p}$"), _pol, "linear", 1),
        (re.compile(rf"^amplitude_{_p}$"), _pol, "amplitude", 2),
    ]
_BAND_PATTERNS += [
    (re.compile(r"^(incidence_?angle(_?from_?ellipsoid)?|incident_?angle|ia|theta)$"), "IA", "degrees", 0),
    # the terrain-projected local angle equals the ellipsoid one on the sea surface; used only when alone
    (re.compile(r"^(projected_?)?local_?incidence_?angle$"), "IA", "degrees", 1),
    (re.compile(r"^land(_?mask)?$"), "land", "1", 0),
]
RASTER_SUFFIXES = {".tif", ".tiff", ".img"}

_EXPECTED = {
    "HH": "Sigma0_HH_db{s}, Sigma0_HH{s} (linear) or Amplitude_HH{s}",
    "HV": "Sigma0_HV_db{s}, Sigma0_HV{s} (linear) or Amplitude_HV{s}",
    "IA": "incidence_angle{s} or incidenceAngleFromEllipsoid{s} (projectedLocalIncidenceAngle{s} as a fallback)",
}


class Kind(NamedTuple):
    """What a band name says: variable, units, rank (lowest wins)."""

    var: str
    units: str
    rank: int


class Band(NamedTuple):
    """One named raster band of a product: where its samples are and how SNAP says to decode them."""

    name: str
    path: Path
    index: int = 1  # type: ignore[assignment]  # 1-based band in `path` (shadows tuple.index)
    single: bool = False  # the file must hold this band only (folder of single-band files)
    nodata: float | None = None
    scale: float = 1.0
    offset: float = 0.0
    log10: bool = False
    expression: str | None = None  # SNAP virtual band: computed from others, no samples of its own


def classify(stem: str) -> Kind | None:
    """Return what the band name (or file stem) `stem` is, None when it is none of the scene's variables."""
    s = stem.lower()
    for pattern, var, units, rank in _BAND_PATTERNS:
        if pattern.match(s):
            return Kind(var, units, rank)
    return None


def _rio_chunks(chunks: Mapping[str, int] | int | str | None) -> Any:
    if chunks is None or isinstance(chunks, (int, str)):
        return chunks
    return {"band": 1, "y": chunks.get("y", -1), "x": chunks.get("x", -1)}


def select_bands(bands: list[Band], source: Any) -> tuple[dict[str, tuple[Band, Kind]], dict[str, list[Band]]]:
    """Pick one band per variable by rank; return (chosen, virtual bands per variable)."""
    found: dict[str, list[tuple[Band, Kind]]] = {}
    virtual: dict[str, list[Band]] = {}
    for b in bands:
        kind = classify(b.name)
        if kind is None:
            continue
        if b.expression is not None:
            virtual.setdefault(kind.var, []).append(b)
        else:
            found.setdefault(kind.var, []).append((b, kind))
    chosen: dict[str, tuple[Band, Kind]] = {}
    for var, candidates in found.items():
        candidates.sort(key=lambda c: c[1].rank)
        best = [c[0].name for c in candidates if c[1].rank == candidates[0][1].rank]
        if len(best) > 1:
            raise ValueError(
                f"{source} has {len(best)} bands that are each {var} in {candidates[0][1].units}: {best}; "
                f"expected one, which one to use is ambiguous: remove or rename the others"
            )
        chosen[var] = candidates[0]
    return chosen, virtual


def refuse_missing(
    source: Any,
    chosen: Mapping[str, Any],
    found: list[str],
    virtual: Mapping[str, list[Band]],
    suffix: str = "",
    what: str = "bands",
) -> None:
    """Raise ValueError naming what was found unless HH, HV and IA are all chosen."""
    missing = [v for v in (*POLARISATIONS, "IA") if v not in chosen]
    if not missing:
        return
    notes = [
        f"{b.name} is a virtual band ({b.expression}) with no data of its own"
        for v in missing
        for b in virtual.get(v, [])
    ]
    if any(n.lower().startswith(("gamma0", "beta0")) for n in found):
        notes.append("Gamma0/Beta0 bands are not sigma0: calibrate to sigma0 in SNAP")
    raise ValueError(
        f"SAR scene {source} lacks {', '.join(missing)}: expected "
        + "; ".join(f"{m}: {_EXPECTED[m].format(s=suffix)}" for m in missing)
        + f" (any letter case); {what} found {found}"
        + "".join(f"; {n}" for n in notes)
    )


def _load_band(b: Band, chunks: Any) -> xr.DataArray:
    da = open_rasterio(
        b.path,
        "a raster",
        hint="expected a GeoTIFF or ENVI file",
        georeferenced=False,
        chunks=_rio_chunks(chunks),
        masked=True,
    )
    n = da.sizes.get("band", 1)
    if b.single and n != 1:
        raise ValueError(f"{b.path} has {n} bands, expected a single-band raster")
    if b.index > n:
        raise ValueError(f"{b.path} has {n} bands, but band {b.name!r} is band {b.index}")
    da = da.isel(band=b.index - 1, drop=True) if "band" in da.dims else da
    da = da.drop_vars("band", errors="ignore")
    if b.nodata is not None:
        da = da.where(da != b.nodata)
    if b.scale != 1.0 or b.offset != 0.0:
        da = da * b.scale + b.offset
    if b.log10:
        da = 10.0**da
    return da


def assemble(chosen: Mapping[str, tuple[Band, Kind]], chunks: Any, attrs: dict[str, Any]) -> xr.Dataset:
    """Load the chosen bands, check they share one grid, and return the scene Dataset."""
    variables: dict[str, xr.DataArray] = {}
    ref: xr.DataArray | None = None
    ref_band: Band | None = None
    for var, (b, kind) in chosen.items():
        da = _load_band(b, chunks)
        if ref is None or ref_band is None:  # the first band (both are set together)
            ref, ref_band = da, b
        elif da.shape != ref.shape or da.rio.transform() != ref.rio.transform() or da.rio.crs != ref.rio.crs:
            raise ValueError(
                f"{b.path if b.single else f'{b.path} ({b.name})'} is on grid {da.shape} {da.rio.crs} "
                f"{tuple(da.rio.transform())[:6]}, "
                f"but {ref_band.path} is on {ref.shape} {ref.rio.crs} {tuple(ref.rio.transform())[:6]}; "
                "all bands of a scene must share one grid"
            )
        if var == "land":
            da = (da.fillna(0) > 0).astype(np.uint8)
        else:
            da = da.astype(np.float32)
        da.attrs = {"units": kind.units, "source_file": b.path.name if b.single else f"{b.path.name}:{b.name}"}
        da.encoding = {}
        variables[var] = da.drop_vars("spatial_ref", errors="ignore")
        if var == "IA" and kind.rank > 0:
            warnings.warn(f"{b.path}: no ellipsoid incidence angle; using {b.name} as IA", stacklevel=4)
    assert ref is not None and ref_band is not None
    if variables["HH"].attrs["units"] == "linear":
        _check_linear(variables["HH"], chosen["HH"][0].path)
    ds = xr.Dataset(variables)
    if ref.rio.crs is not None:
        ds = ds.rio.write_crs(ref.rio.crs).rio.write_transform(ref.rio.transform())
    else:  # image geometry (not terrain-corrected): pixel indices as coordinates, GCPs where the file has them
        ds = ds.assign_coords(y=np.arange(ds.sizes["y"]), x=np.arange(ds.sizes["x"]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with open_raster(ref_band.path) as src:
                gcps, gcp_crs = src.gcps
        if gcps:
            ds = ds.rio.write_gcps(gcps, gcp_crs or "EPSG:4326")
    ds.attrs = attrs
    return ds


def _check_linear(da: xr.DataArray, f: Path) -> None:
    sample = np.asarray(da[:: max(1, da.shape[0] // 64), :: max(1, da.shape[1] // 64)].values)
    finite = sample[np.isfinite(sample)]
    if finite.size and (finite < 0).mean() > 0.01:
        warnings.warn(f"{f} is named as linear sigma0 but holds negative values: treating it as dB", stacklevel=3)
        da.attrs["units"] = "dB"


def _bilinear(
    g_lines: np.ndarray, g_pixels: np.ndarray, values: np.ndarray, lines: np.ndarray, pixels: np.ndarray
) -> np.ndarray:
    """Separable bilinear interpolation of a rectilinear (line, pixel) grid to the given lines/pixels."""
    along_pixel = np.stack([np.interp(pixels, g_pixels, row) for row in values])  # (n_grid_lines, n_pixels)
    # linear weights along lines, clamped at the grid's first and last line like np.interp
    pos = np.interp(lines, g_lines, np.arange(len(g_lines), dtype=float))
    j = np.minimum(pos.astype(int), len(g_lines) - 2) if len(g_lines) > 1 else np.zeros(len(lines), int)
    w = (pos - j)[:, None] if len(g_lines) > 1 else np.zeros((len(lines), 1))
    upper = along_pixel[np.minimum(j + 1, len(g_lines) - 1)]
    return ((1 - w) * along_pixel[j] + w * upper).astype(np.float32)


def grid_to_image(g_lines: np.ndarray, g_pixels: np.ndarray, values: np.ndarray, like: xr.DataArray) -> Any:
    """Return a geolocation grid's values at every pixel of `like` (bilinear; dask blocks when `like` is chunked)."""
    ny, nx = like.shape
    if like.chunks is None:
        return _bilinear(g_lines, g_pixels, values, np.arange(ny), np.arange(nx))
    import dask.array as da

    def block(x: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        assert block_info is not None  # dask.array.map_blocks passes it
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        return _bilinear(g_lines, g_pixels, values, np.arange(r0, r1), np.arange(c0, c1))

    return da.map_blocks(block, da.empty((ny, nx), chunks=like.data.chunks, dtype=np.float32), dtype=np.float32)

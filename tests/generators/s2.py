"""Tiny Sentinel-2 fixtures in the published layouts: GeoTIFF stacks, L2A .SAFE trees (JPEG 2000), STAC.

Every writer is seeded and returns what it wrote so tests can compare the reader's output to the truth.
Reflectance values encode their position: ``value = 100 * (band + 1) + 7 * t + (y + 3 * x) % 50`` plus
seeded noise, so a sample's time series can be checked against its pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import box

from eokit.schema import TS2C_BANDS

ORIGIN = (500000.0, 5200000.0)  # UTM 33N, metres
CRS = "EPSG:32633"
DATES = ["20180405", "20180415", "20180502", "20180520", "20180611", "20180703"]


def reflectance(n_bands: int, n_dates: int, shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Return a (time, band, y, x) int16 array whose values encode band, date and position."""
    rng = np.random.default_rng(seed)
    t, b, y, x = np.meshgrid(
        np.arange(n_dates), np.arange(n_bands), np.arange(shape[0]), np.arange(shape[1]), indexing="ij"
    )
    v = 100 * (b + 1) + 7 * t + (y + 3 * x) % 50 + rng.integers(0, 5, size=t.shape)
    return v.astype(np.int16)


def scl(n_dates: int, shape: tuple[int, int], seed: int = 0, cloudy: float = 0.2) -> np.ndarray:
    """Return (time, y, x) uint8 SCL codes: mostly vegetation (4), some cloud (9), shadow (3), snow (11), 0."""
    rng = np.random.default_rng(seed + 1)
    out = np.full((n_dates, *shape), 4, dtype=np.uint8)
    u = rng.random(out.shape)
    out[u < cloudy] = 9
    out[u < cloudy * 0.5] = 8
    out[u < cloudy * 0.25] = 3
    out[u < cloudy * 0.1] = 11
    out[u < cloudy * 0.05] = 0
    return out


def write_geotiff_stack(
    folder: Path,
    dates: Sequence[str] = DATES,
    shape: tuple[int, int] = (40, 48),
    bands: Sequence[str] = TS2C_BANDS,
    per_band: bool = False,
    flags: str | None = "scl",
    res: float = 10.0,
    crs: str | None = CRS,
    seed: int = 0,
    prefix: str = "S2",
) -> dict:
    """Write `S2_<date>.tif` (all bands, descriptions set) or `S2_<date>_<band>.tif` plus SCL_/FLAG_ files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    refl = reflectance(len(bands), len(dates), shape, seed)
    sc = scl(len(dates), shape, seed)
    transform = from_origin(ORIGIN[0], ORIGIN[1], res, res)
    prof = dict(
        driver="GTiff",
        height=shape[0],
        width=shape[1],
        dtype="int16",
        crs=crs,
        transform=transform,
        tiled=True,
        blockxsize=16,
        blockysize=16,
        compress="deflate",
    )
    for ti, d in enumerate(dates):
        if per_band:
            for bi, b in enumerate(bands):
                with rasterio.open(folder / f"{prefix}_{d}_{b}.tif", "w", count=1, **prof) as dst:
                    dst.write(refl[ti, bi], 1)
        else:
            with rasterio.open(folder / f"{prefix}_{d}.tif", "w", count=len(bands), **prof) as dst:
                dst.write(refl[ti])
                dst.descriptions = tuple(bands)
        if flags == "scl":
            with rasterio.open(folder / f"SCL_{d}.tif", "w", count=1, **{**prof, "dtype": "uint8"}) as dst:
                dst.write(sc[ti], 1)
        elif flags == "flag":
            from eokit.cube import scl_to_flag

            with rasterio.open(folder / f"FLAG_{d}.tif", "w", count=1, **{**prof, "dtype": "uint8"}) as dst:
                dst.write(scl_to_flag(sc[ti]), 1)
    return {
        "reflectance": refl,
        "scl": sc,
        "transform": transform,
        "crs": crs,
        "dates": list(dates),
        "bands": list(bands),
    }


_R10 = ["B02", "B03", "B04", "B08"]
_R20 = ["B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B11", "B12"]
_R60 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B8A", "B09", "B11", "B12"]
#: The 13 MSI bands in band_id order (0..12), as Spectral_Information physicalBand spells them.
PHYSICAL_BANDS = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"]


def write_safe(
    folder: Path,
    date: str = "20180405",
    tile: str = "33UVP",
    shape10: tuple[int, int] = (32, 40),
    seed: int = 0,
    boa_offset: int | Sequence[int] | None = None,
    baseline: str | None = None,
    name_baseline: str | None = None,
    mtd_name: str | None = "MTD_MSIL2A.xml",
    with_baseline_element: bool = True,
    offset_band_ids: Sequence[str] | None = None,
    quantification: float = 10000,
    omit: Sequence[str] = (),
    r60: bool = False,
) -> tuple[Path, dict]:
    """Write one L2A product `S2A_MSIL2A_<date>T101021_N<baseline>_R022_T<tile>_....SAFE`; return (path, truth).

    The layout is the PSD 14 one: ``MTD_MSIL2A.xml`` (``mtd_name``: any spelling, None = no file) with
    General_Info/Product_Info/PROCESSING_BASELINE and Product_Image_Characteristics (QUANTIFICATION_VALUES_LIST,
    BOA_ADD_OFFSET_VALUES_LIST when ``boa_offset`` is given: one value, or 13 in band_id order,
    Spectral_Information_List), ``GRANULE/L2A_T<tile>_.../MTD_TL.xml`` and ``IMG_DATA/R10m``, ``R20m`` (and
    ``R60m``) with ``T<tile>_<time>_<band>_<res>m.jp2``. ``baseline`` defaults to 04.00 with offsets, 02.06
    without; ``name_baseline`` overrides the ``N`` part of the name (e.g. ``"9999"``). ``omit`` drops parts:
    ``"R10m"`` (a folder), ``"B03_10m"`` (a file), ``"SCL"`` (every SCL file). ``truth`` holds the DNs written.
    """
    folder = Path(folder)
    when = f"{date}T101021"
    baseline = baseline or ("04.00" if boa_offset is not None else "02.06")
    nb = name_baseline or baseline.replace(".", "")
    safe = folder / f"S2A_MSIL2A_{when}_N{nb}_R022_T{tile}_{date}T125432.SAFE"
    gran = safe / "GRANULE" / f"L2A_T{tile}_A014744_{when}"
    h20, w20 = shape10[0] // 2, shape10[1] // 2
    h60, w60 = -(-shape10[0] // 6), -(-shape10[1] // 6)
    all_bands = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
    refl = {
        10: reflectance(len(all_bands), 1, shape10, seed)[0],
        20: reflectance(len(all_bands), 1, (h20, w20), seed + 7)[0],
        60: reflectance(len(all_bands), 1, (h60, w60), seed + 11)[0],
    }
    sc = {20: scl(1, (h20, w20), seed)[0], 60: scl(1, (h60, w60), seed + 3)[0]}
    truth: dict = {"bands10": {}, "bands20": {}, "bands60": {}, "scl20": sc[20], "scl60": sc[60]}
    layout = [(10, _R10, shape10), (20, _R20, (h20, w20))] + ([(60, _R60, (h60, w60))] if r60 else [])
    for res, names, _shape in layout:
        if f"R{res}m" in omit:
            continue
        d = gran / "IMG_DATA" / f"R{res}m"
        d.mkdir(parents=True, exist_ok=True)
        tr = from_origin(ORIGIN[0], ORIGIN[1], res, res)
        for b in names:
            if f"{b}_{res}m" in omit:
                continue
            a = refl[res][all_bands.index(b)].astype(np.uint16)
            truth[f"bands{res}"][b] = a
            _write_jp2(d / f"T{tile}_{when}_{b}_{res}m.jp2", a, tr)
        if res in sc and "SCL" not in omit:
            _write_jp2(d / f"T{tile}_{when}_SCL_{res}m.jp2", sc[res], tr)
    (gran / "IMG_DATA").mkdir(parents=True, exist_ok=True)
    (gran / "MTD_TL.xml").write_text(
        "<?xml version='1.0' encoding='UTF-8'?><n1:Level-2A_Tile_ID "
        "xmlns:n1='https://psd-14.sentinel2.eo.esa.int/PSD/S2_PDI_Level-2A_Tile_Metadata.xsd'><n1:General_Info>"
        f"<TILE_ID>S2A_OPER_MSI_L2A_TL_2APS_{date}T125432_A014744_T{tile}_N{nb[:2]}.{nb[2:]}</TILE_ID>"
        f"<SENSING_TIME>{pd.Timestamp(when).isoformat()}.024Z</SENSING_TIME></n1:General_Info>"
        "</n1:Level-2A_Tile_ID>"
    )
    if mtd_name is not None:
        (safe / mtd_name).write_text(
            _product_mtd(safe.name, when, baseline, with_baseline_element, boa_offset, offset_band_ids, quantification)
        )
    truth["offsets"] = boa_offset
    return safe, truth


def _product_mtd(
    name: str,
    when: str,
    baseline: str,
    with_baseline: bool,
    boa_offset: Any,
    offset_band_ids: Sequence[str] | None,
    quantification: float,
) -> str:
    """The product metadata (MTD_MSIL2A.xml) text, trimmed to the elements a reader of the radiometry needs."""
    offsets = ""
    if boa_offset is not None:  # processing baseline 04.00 and later (since 25 January 2022)
        values = [boa_offset] * 13 if np.ndim(boa_offset) == 0 else list(boa_offset)
        ids = list(offset_band_ids) if offset_band_ids is not None else [str(i) for i in range(13)]
        offsets = (
            "<BOA_ADD_OFFSET_VALUES_LIST>"
            + "".join(f'<BOA_ADD_OFFSET band_id="{i}">{v}</BOA_ADD_OFFSET>' for i, v in zip(ids, values, strict=True))
            + "</BOA_ADD_OFFSET_VALUES_LIST>"
        )
    spectral = "".join(
        f'<Spectral_Information bandId="{i}" physicalBand="{b}"><RESOLUTION>10</RESOLUTION></Spectral_Information>'
        for i, b in enumerate(PHYSICAL_BANDS)
    )
    pb = f"<PROCESSING_BASELINE>{baseline}</PROCESSING_BASELINE>" if with_baseline else ""
    return (
        "<?xml version='1.0' encoding='UTF-8'?><n1:Level-2A_User_Product "
        "xmlns:n1='https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-2A.xsd'>"
        f"<n1:General_Info><Product_Info><PRODUCT_START_TIME>{pd.Timestamp(when).isoformat()}.024Z"
        f"</PRODUCT_START_TIME><PRODUCT_URI>{name}</PRODUCT_URI><PROCESSING_LEVEL>Level-2A</PROCESSING_LEVEL>"
        f"<PRODUCT_TYPE>S2MSI2A</PRODUCT_TYPE>{pb}</Product_Info><Product_Image_Characteristics>"
        f"<QUANTIFICATION_VALUES_LIST><BOA_QUANTIFICATION_VALUE unit='none'>{quantification:g}"
        "</BOA_QUANTIFICATION_VALUE><AOT_QUANTIFICATION_VALUE unit='none'>1000.0</AOT_QUANTIFICATION_VALUE>"
        f"</QUANTIFICATION_VALUES_LIST>{offsets}<Spectral_Information_List>{spectral}</Spectral_Information_List>"
        "</Product_Image_Characteristics></n1:General_Info></n1:Level-2A_User_Product>"
    )


def _write_jp2(path: Path, a: np.ndarray, transform) -> None:
    with rasterio.open(
        path,
        "w",
        driver="JP2OpenJPEG",
        height=a.shape[0],
        width=a.shape[1],
        count=1,
        dtype=a.dtype,
        crs=CRS,
        transform=transform,
        QUALITY=100,
        REVERSIBLE="YES",
    ) as dst:
        dst.write(a, 1)


def write_stac(
    folder: Path,
    dates: Sequence[str] = DATES[:3],
    shape: tuple[int, int] = (24, 32),
    bands: Sequence[str] = ("B02", "B03", "B04", "B08"),
    seed: int = 0,
) -> tuple[Path, dict]:
    """Write a static STAC catalog (one item per date, one GeoTIFF asset per band plus SCL); return (path, truth)."""
    import pystac

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    refl = reflectance(len(bands), len(dates), shape, seed)
    sc = scl(len(dates), shape, seed)
    tr = from_origin(ORIGIN[0], ORIGIN[1], 10, 10)
    prof = dict(driver="GTiff", height=shape[0], width=shape[1], count=1, crs=CRS, transform=tr)
    cat = pystac.Catalog(id="eokit-test", description="tiny Sentinel-2 L2A cube for eokit tests")
    bbox_utm = (ORIGIN[0], ORIGIN[1] - 10 * shape[0], ORIGIN[0] + 10 * shape[1], ORIGIN[1])
    geom = gpd.GeoSeries([box(*bbox_utm)], crs=CRS).to_crs("EPSG:4326").iloc[0]
    for ti, d in enumerate(dates):
        item_dir = folder / f"S2_{d}"
        item_dir.mkdir(exist_ok=True)
        item = pystac.Item(
            id=f"S2_{d}",
            geometry=geom.__geo_interface__,
            bbox=list(geom.bounds),
            datetime=pd.Timestamp(d + "T101021").to_pydatetime(),
            properties={},
        )
        item.stac_extensions += [
            "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
            "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
        ]
        item.properties.update({"proj:epsg": 32633, "proj:shape": list(shape), "proj:transform": list(tr)[:6]})
        for bi, b in enumerate(bands):
            p = item_dir / f"{b}.tif"
            with rasterio.open(p, "w", dtype="int16", **prof) as dst:
                dst.write(refl[ti, bi], 1)
            item.add_asset(
                b,
                pystac.Asset(
                    href=str(p),
                    media_type=pystac.MediaType.GEOTIFF,
                    roles=["data"],
                    extra_fields={"raster:bands": [{"data_type": "int16"}]},
                ),
            )
        p = item_dir / "SCL.tif"
        with rasterio.open(p, "w", dtype="uint8", **prof) as dst:
            dst.write(sc[ti], 1)
        item.add_asset(
            "SCL",
            pystac.Asset(
                href=str(p),
                media_type=pystac.MediaType.GEOTIFF,
                roles=["data"],
                extra_fields={"raster:bands": [{"data_type": "uint8"}]},
            ),
        )
        cat.add_item(item)
    cat.normalize_hrefs(str(folder))
    cat.make_all_asset_hrefs_relative()
    cat.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return folder / "catalog.json", {"reflectance": refl, "scl": sc, "bands": list(bands), "dates": list(dates)}


def write_fields(
    path: Path,
    shape: tuple[int, int] = (40, 48),
    res: float = 10.0,
    crs_out: str = "EPSG:4326",
    codes: Sequence[str] = ("WINTERWEICHEN", "KOERNERMAIS", "DAUERWIESE", "SOJABOHNEN"),
    field: int = 8,
    overlap: bool = True,
    seed: int = 0,
) -> gpd.GeoDataFrame:
    """Write a grid of square fields (crop_code INVEKOS names, field_id) over the stack, in `crs_out`."""
    rng = np.random.default_rng(seed)
    rows = []
    fid = 100
    for i in range(0, shape[0] - field + 1, field):
        for j in range(0, shape[1] - field + 1, field):
            x0 = ORIGIN[0] + j * res
            y1 = ORIGIN[1] - i * res
            rows.append(
                {
                    "field_id": fid,
                    "crop_code": codes[int(rng.integers(len(codes)))],
                    "geometry": box(x0, y1 - field * res, x0 + field * res, y1),
                }
            )
            fid += 1
    if overlap:  # a field straddling two others: the shared pixels must be dropped
        x0, y1 = ORIGIN[0] + (field // 2) * res, ORIGIN[1] - 0 * res
        rows.append(
            {"field_id": fid, "crop_code": codes[0], "geometry": box(x0, y1 - field * res, x0 + field * res, y1)}
        )
    gdf = gpd.GeoDataFrame(rows, crs=CRS).to_crs(crs_out)
    path = Path(path)
    if path.suffix == ".parquet":
        gdf.to_parquet(path)
    else:
        gdf.to_file(path)
    return gdf

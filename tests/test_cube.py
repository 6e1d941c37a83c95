"""eokit.cube.open on GeoTIFF folders, Sentinel-2 L2A .SAFE trees (JPEG 2000) and local STAC catalogs."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin

from eokit import cube
from eokit.schema import SCL_TO_FLAG, TS2C_BANDS
from generators import s2


def _flags(scl: np.ndarray) -> np.ndarray:
    out = np.zeros_like(scl)
    for k, v in SCL_TO_FLAG.items():
        out[scl == k] = v
    return out


def test_scl_to_flag_follows_schema():
    scl = np.arange(12, dtype=np.uint8)
    assert cube.scl_to_flag(scl).tolist() == [255, 255, 0, 2, 0, 0, 0, 0, 1, 1, 1, 3]
    lazy = cube.scl_to_flag(da.from_array(scl, chunks=5))
    assert isinstance(lazy, da.Array) and lazy.compute().tolist() == cube.scl_to_flag(scl).tolist()


def test_geotiff_folder_one_file_per_date(tmp_path):
    truth = s2.write_geotiff_stack(tmp_path / "stack")
    ds = cube.open(tmp_path / "stack", chunks=16)
    assert ds["reflectance"].dims == ("time", "band", "y", "x")
    assert ds["flag"].dims == ("time", "y", "x") and ds["flag"].dtype == np.uint8
    assert isinstance(ds["reflectance"].data, da.Array) and ds["reflectance"].data.chunksize[2:] == (16, 16)
    assert list(ds["band"].values) == TS2C_BANDS
    assert list(pd.DatetimeIndex(ds["time"].values).strftime("%Y%m%d")) == truth["dates"]
    assert ds.rio.crs.to_epsg() == 32633
    assert ds.rio.transform() == truth["transform"]
    np.testing.assert_array_equal(ds["reflectance"].values, truth["reflectance"])
    np.testing.assert_array_equal(ds["flag"].values, _flags(truth["scl"]))
    # pixel centres
    assert ds["x"].values[0] == s2.ORIGIN[0] + 5 and ds["y"].values[0] == s2.ORIGIN[1] - 5


def test_geotiff_folder_per_band_files_flag_codes_and_band_subset(tmp_path):
    bands = ["B2", "B11", "B8A", "B4"]
    truth = s2.write_geotiff_stack(tmp_path / "pb", bands=bands, per_band=True, flags="flag")
    ds = cube.open(tmp_path / "pb")
    assert list(ds["band"].values) == ["B2", "B4", "B8A", "B11"]  # Sentinel-2 order
    order = [bands.index(b) for b in ds["band"].values]
    np.testing.assert_array_equal(ds["reflectance"].values, truth["reflectance"][:, order])
    np.testing.assert_array_equal(ds["flag"].values, _flags(truth["scl"]))
    sub = cube.open(tmp_path / "pb", bands=["B11", "B02"])
    assert list(sub["band"].values) == ["B11", "B2"]
    with pytest.raises(ValueError, match=r"bands \['B5'\] not found"):
        cube.open(tmp_path / "pb", bands=["B5"])


def test_geotiff_folder_without_flags_is_clear_and_nodata_is_255(tmp_path):
    folder = tmp_path / "nd"
    folder.mkdir()
    prof = dict(driver="GTiff", height=4, width=5, count=1, dtype="float32", crs="EPSG:32633",
                transform=from_origin(0, 40, 10, 10), nodata=np.nan)
    for d in ("20190101T101010", "20190111T101010"):
        a = np.ones((4, 5), np.float32)
        a[0, 0] = np.nan
        with rasterio.open(folder / f"NDVI_{d}.tif", "w", **prof) as dst:
            dst.write(a, 1)
    ds = cube.open(folder)
    assert list(ds["band"].values) == ["NDVI"]
    assert ds["time"].values[0] == np.datetime64("2019-01-01T10:10:10")
    f = ds["flag"].values
    assert (f[:, 0, 0] == 255).all() and (f[:, 1:, :] == 0).all()


def test_date_from_acquisition_date_tag(tmp_path):
    folder = tmp_path / "tagged"
    folder.mkdir()
    prof = dict(driver="GTiff", height=3, width=3, count=2, dtype="int16", crs="EPSG:32633",
                transform=from_origin(0, 30, 10, 10))
    for i, d in enumerate(("2018-05-01", "2018-04-01")):
        with rasterio.open(folder / f"scene_{'ab'[i]}.tif", "w", **prof) as dst:
            dst.write(np.full((2, 3, 3), i, np.int16))
            dst.descriptions = ("B04", "B08")
            dst.update_tags(ACQUISITION_DATE=d)
    ds = cube.open(folder)
    assert list(ds["band"].values) == ["B4", "B8"]
    assert list(pd.DatetimeIndex(ds["time"].values).strftime("%Y-%m-%d")) == ["2018-04-01", "2018-05-01"]
    assert ds["reflectance"].values[0].max() == 1  # the later-named file holds the earlier date


def test_errors_no_crs_mismatched_resolution_missing_date(tmp_path):
    nocrs = tmp_path / "nocrs"
    nocrs.mkdir()
    with rasterio.open(nocrs / "S2_20180101.tif", "w", driver="GTiff", height=3, width=3, count=1,
                       dtype="int16", transform=from_origin(0, 30, 10, 10)) as dst:
        dst.write(np.zeros((1, 3, 3), np.int16))
    with pytest.raises(ValueError, match="no CRS"):
        cube.open(nocrs)

    mixed = tmp_path / "mixed"
    s2.write_geotiff_stack(mixed, dates=["20180101"], bands=["B2"], per_band=True, flags=None)
    s2.write_geotiff_stack(mixed, dates=["20180101"], bands=["B5"], per_band=True, flags=None, res=20,
                           shape=(20, 24))
    with pytest.raises(ValueError, match="mismatched resolution"):
        cube.open(mixed)

    nodate = tmp_path / "nodate"
    nodate.mkdir()
    with rasterio.open(nodate / "image.tif", "w", driver="GTiff", height=3, width=3, count=1, dtype="int16",
                       crs="EPSG:32633", transform=from_origin(0, 30, 10, 10)) as dst:
        dst.write(np.zeros((1, 3, 3), np.int16))
    with pytest.raises(ValueError, match="image.tif: no acquisition date"):
        cube.open(nodate)

    with pytest.raises(FileNotFoundError):
        cube.open(tmp_path / "absent")

    uneven = tmp_path / "uneven"
    s2.write_geotiff_stack(uneven, dates=["20180101"], bands=["B2", "B3"], flags=None)
    s2.write_geotiff_stack(uneven, dates=["20180111"], bands=["B2"], flags=None)
    with pytest.raises(ValueError, match="every date needs the same bands"):
        cube.open(uneven)


def test_safe_products_resample_20m_and_map_scl(tmp_path):
    assert "JP2OpenJPEG" in rasterio.drivers.raster_driver_extensions().values()
    p1, t1 = s2.write_safe(tmp_path / "L2A", date="20180415", seed=1)
    p0, t0 = s2.write_safe(tmp_path / "L2A", date="20180405", seed=0)
    assert p0.name.startswith("S2A_MSIL2A_20180405T101021") and p0.name.endswith(".SAFE")
    ds = cube.open(tmp_path / "L2A", chunks=8)
    assert list(ds["band"].values) == TS2C_BANDS
    assert ds.sizes["y"] == 32 and ds.sizes["x"] == 40
    assert ds["time"].values[0] == np.datetime64("2018-04-05T10:10:21")
    assert ds.rio.crs.to_epsg() == 32633 and ds.rio.resolution() == (10.0, -10.0)
    up = lambda a: np.repeat(np.repeat(a, 2, axis=0), 2, axis=1)  # noqa: E731
    for t, truth in ((0, t0), (1, t1)):
        np.testing.assert_array_equal(ds["reflectance"].sel(band="B2").values[t], truth["bands10"]["B02"])
        for b in ("B05", "B8A", "B12"):
            np.testing.assert_array_equal(ds["reflectance"].sel(band=cube._norm_band(b)).values[t],
                                          up(truth["bands20"][b]))
        np.testing.assert_array_equal(ds["flag"].values[t], _flags(up(truth["scl20"])))
    one = cube.open(p0, bands=["B02", "B08"])
    assert one.sizes["time"] == 1 and list(one["band"].values) == ["B2", "B8"]
    np.testing.assert_array_equal(one["reflectance"].values[0, 1], t0["bands10"]["B08"])


def test_stac_catalog(tmp_path):
    import pystac

    cat, truth = s2.write_stac(tmp_path / "stac")
    ds = cube.open(cat, chunks=8)
    assert list(ds["band"].values) == ["B2", "B3", "B4", "B8"]
    assert ds["reflectance"].dtype == np.int16 and ds.rio.crs.to_epsg() == 32633
    np.testing.assert_array_equal(ds["reflectance"].values, truth["reflectance"])
    np.testing.assert_array_equal(ds["flag"].values, _flags(truth["scl"]))
    # a pystac object and the catalog folder work too
    again = cube.open(pystac.Catalog.from_file(str(cat)), bands=["B04"])
    np.testing.assert_array_equal(again["reflectance"].values[:, 0], truth["reflectance"][:, 2])
    assert cube.open(tmp_path / "stac").sizes["time"] == 3


def test_safe_baseline_04_offset_is_applied(tmp_path):
    p, truth = s2.write_safe(tmp_path / "new", date="20230405", boa_offset=-1000)
    ds = cube.open(p)
    assert ds["reflectance"].dtype == np.int16
    np.testing.assert_array_equal(ds["reflectance"].sel(band="B2").values[0],
                                  truth["bands10"]["B02"].astype(np.int32) - 1000)
    old, truth_old = s2.write_safe(tmp_path / "old", date="20180405")
    assert cube.open(old)["reflectance"].dtype == np.uint16  # before baseline 04.00: DN is reflectance x 10000

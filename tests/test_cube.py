"""eokit.cube.open on GeoTIFF folders, Sentinel-2 L2A .SAFE trees (JPEG 2000) and local STAC catalogs."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin

from badinput import refuses, warns_naming
from eokit import cube, rasterfiles, sentinel2
from eokit.schema import SCL_TO_FLAG, TS2C_BANDS
from generators import s2

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"
UP = lambda a, f=2: np.repeat(np.repeat(a, f, axis=0), f, axis=1)  # noqa: E731  (nearest-neighbour upsampling)


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
    prof = dict(
        driver="GTiff",
        height=4,
        width=5,
        count=1,
        dtype="float32",
        crs="EPSG:32633",
        transform=from_origin(0, 40, 10, 10),
        nodata=np.nan,
    )
    for d in ("20190101T101010", "20190111T101010"):
        a = np.ones((4, 5), np.float32)
        a[0, 0] = np.nan
        with rasterio.open(folder / f"NDVI_{d}.tif", "w", **prof) as dst:
            dst.write(a, 1)
    with warns_naming(UserWarning, "every observation will be treated as clear", "2019-01-11"):
        ds = cube.open(folder)
    assert list(ds["band"].values) == ["NDVI"]
    assert ds["time"].values[0] == np.datetime64("2019-01-01T10:10:10")
    f = ds["flag"].values
    assert (f[:, 0, 0] == 255).all() and (f[:, 1:, :] == 0).all()


def test_date_from_acquisition_date_tag(tmp_path):
    folder = tmp_path / "tagged"
    folder.mkdir()
    prof = dict(
        driver="GTiff",
        height=3,
        width=3,
        count=2,
        dtype="int16",
        crs="EPSG:32633",
        transform=from_origin(0, 30, 10, 10),
    )
    for i, d in enumerate(("2018-05-01", "2018-04-01")):
        with rasterio.open(folder / f"scene_{'ab'[i]}.tif", "w", **prof) as dst:
            dst.write(np.full((2, 3, 3), i, np.int16))
            dst.descriptions = ("B04", "B08")
            dst.update_tags(ACQUISITION_DATE=d)
    with warns_naming(UserWarning, "tagged", "no flag layer"):
        ds = cube.open(folder)
    assert list(ds["band"].values) == ["B4", "B8"]
    assert list(pd.DatetimeIndex(ds["time"].values).strftime("%Y-%m-%d")) == ["2018-04-01", "2018-05-01"]
    assert ds["reflectance"].values[0].max() == 1  # the later-named file holds the earlier date


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
    up = UP
    for t, truth in ((0, t0), (1, t1)):
        np.testing.assert_array_equal(ds["reflectance"].sel(band="B2").values[t], truth["bands10"]["B02"])
        for b in ("B05", "B8A", "B12"):
            np.testing.assert_array_equal(
                ds["reflectance"].sel(band=sentinel2.norm_band(b)).values[t], up(truth["bands20"][b])
            )
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
    np.testing.assert_array_equal(
        ds["reflectance"].sel(band="B2").values[0], truth["bands10"]["B02"].astype(np.int32) - 1000
    )
    old, truth_old = s2.write_safe(tmp_path / "old", date="20180405")
    assert "_N0206_" in old.name
    ds_old = cube.open(old)  # before baseline 04.00 (and no offsets): DN is reflectance x 10000
    assert ds_old["reflectance"].dtype == np.int16
    np.testing.assert_array_equal(ds_old["reflectance"].sel(band="B2").values[0], truth_old["bands10"]["B02"])


# --- Sentinel-2 L2A: metadata in any letter case, processing baselines, BOA_ADD_OFFSET ----------------------


@pytest.mark.parametrize("mtd_name", ["MTD_MSIL2a.xml", "mtd_msil2a.xml", "MTD_MSIL2A.xml"])
def test_safe_metadata_found_in_any_letter_case(tmp_path, mtd_name):
    p, truth = s2.write_safe(tmp_path, date="20220301", boa_offset=-1000, mtd_name=mtd_name)
    assert "_N0400_" in p.name and (p / mtd_name).is_file()
    ds = cube.open(p)
    for b in ("B02", "B05", "B12"):
        dn = truth["bands10"].get(b, truth["bands20"][b]).astype(np.int32)
        got = ds["reflectance"].sel(band=sentinel2.norm_band(b)).values[0]
        np.testing.assert_array_equal(got, dn - 1000 if b == "B02" else UP(dn) - 1000)


@pytest.mark.parametrize("baseline", ["04.00", "05.00", "05.09", "05.10", "05.11"])
def test_safe_offsets_follow_band_ids_for_every_new_baseline(tmp_path, baseline):
    # each band its own offset, so a band_id read for the wrong band shows: band_id i -> -1000 - 10 i
    offsets = [-1000 - 10 * i for i in range(13)]
    p, truth = s2.write_safe(tmp_path, date="20230405", boa_offset=offsets, baseline=baseline)
    assert f"_N{baseline.replace('.', '')}_" in p.name
    ds = cube.open(p, bands=["B02", "B8A", "B11", "B12"])
    for b, bid in (("B02", 1), ("B8A", 8), ("B11", 11), ("B12", 12)):
        dn = truth["bands10"][b] if b == "B02" else UP(truth["bands20"][b])
        np.testing.assert_array_equal(
            ds["reflectance"].sel(band=sentinel2.norm_band(b)).values[0], dn.astype(np.int32) + offsets[bid]
        )


def test_safe_quantification_value_rescales_to_reflectance_x_10000(tmp_path):
    p, truth = s2.write_safe(tmp_path, date="20230405", boa_offset=-1000, quantification=20000)
    got = cube.open(p, bands=["B02"])["reflectance"].values[0, 0]
    np.testing.assert_array_equal(got, np.round((truth["bands10"]["B02"].astype(np.int32) - 1000) / 2))


def test_safe_old_baseline_without_offsets_reads_dn_and_flags_nodata(tmp_path):
    p, truth = s2.write_safe(tmp_path, date="20180405", baseline="03.01")
    ds = cube.open(p, bands=["B02", "B03"])
    np.testing.assert_array_equal(ds["reflectance"].values[0, 1], truth["bands10"]["B03"])


def test_safe_locally_processed_n9999(tmp_path):
    # Sen2Cor run by a user: the name says N9999, the metadata 99.99; the offsets list decides
    p, truth = s2.write_safe(tmp_path / "a", date="20230405", boa_offset=-1000, baseline="99.99")
    assert "_N9999_" in p.name
    np.testing.assert_array_equal(
        cube.open(p, bands=["B02"])["reflectance"].values[0, 0], truth["bands10"]["B02"].astype(np.int32) - 1000
    )
    old, truth_old = s2.write_safe(tmp_path / "b", date="20180405", baseline="99.99")
    with warns_naming(UserWarning, old.name, "N9999", "processing baseline unknown"):
        ds = cube.open(old, bands=["B02"])
    np.testing.assert_array_equal(ds["reflectance"].values[0, 0], truth_old["bands10"]["B02"])


def test_safe_with_r60m_folder_and_60m_band(tmp_path):
    p, truth = s2.write_safe(tmp_path, date="20180405", r60=True)
    ds = cube.open(p, bands=["B02", "B09"])
    assert ds.sizes["y"] == 32 and ds.sizes["x"] == 40
    np.testing.assert_array_equal(ds["reflectance"].values[0, 1], UP(truth["bands60"]["B09"], 6)[:32, :40])


# --- Sentinel-2 L2A without its 10 m bands -------------------------------------------------------------------


def test_safe_without_r10m_maps_onto_the_20m_grid_with_a_warning(tmp_path):
    p, truth = s2.write_safe(tmp_path, date="20180405", omit=("R10m",))
    with warns_naming(UserWarning, p.name, "B2", "B3", "B4", "R10m", "20 m"):
        ds = cube.open(p)
    assert ds.rio.resolution() == (20.0, -20.0) and ds.sizes["y"] == 16 and ds.sizes["x"] == 20
    assert ds.rio.transform().c == s2.ORIGIN[0] and ds.rio.transform().f == s2.ORIGIN[1]
    np.testing.assert_array_equal(ds["reflectance"].sel(band="B2").values[0], truth["bands20"]["B02"])
    np.testing.assert_array_equal(ds["flag"].values[0], _flags(truth["scl20"]))


def test_safe_series_with_one_product_lacking_r10m_stays_on_the_10m_grid(tmp_path):
    s2.write_safe(tmp_path / "L2A", date="20180405")
    p1, t1 = s2.write_safe(tmp_path / "L2A", date="20180415", seed=1, omit=("R10m",))
    with warns_naming(UserWarning, p1.name, "B2", "10 m"):
        ds = cube.open(tmp_path / "L2A")
    assert ds.rio.resolution() == (10.0, -10.0) and ds.sizes["time"] == 2
    np.testing.assert_array_equal(ds["reflectance"].sel(band="B3").values[1], UP(t1["bands20"]["B03"]))


def test_safe_one_10m_band_missing_is_upsampled_with_a_warning(tmp_path):
    p, truth = s2.write_safe(tmp_path, date="20180405", omit=("B03_10m",))
    with warns_naming(UserWarning, p.name, "B3", "native 10 m", "20 m"):
        ds = cube.open(p, bands=["B02", "B03"])
    np.testing.assert_array_equal(ds["reflectance"].values[0, 0], truth["bands10"]["B02"])
    np.testing.assert_array_equal(ds["reflectance"].values[0, 1], UP(truth["bands20"]["B03"]))


def test_safe_full_product_gives_no_warning(tmp_path):
    p, _ = s2.write_safe(tmp_path, date="20230405", boa_offset=-1000)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        cube.open(p)


# --- flags: dates without a flag layer ------------------------------------------------------------------------


def _drop_scl(folder: Path, date: str) -> None:
    (folder / f"SCL_{date}.tif").unlink()


def test_geotiff_date_without_flags_is_refused_by_default(tmp_path):
    s2.write_geotiff_stack(tmp_path / "st", dates=s2.DATES[:3])
    _drop_scl(tmp_path / "st", s2.DATES[1])
    with refuses(ValueError, "st", "2018-04-15", "missing_flags", "1 of 3 dates"):
        cube.open(tmp_path / "st")
    with refuses(ValueError, "2018-04-15", "missing_flags"):
        cube.open(tmp_path / "st", missing_flags="raise")


def test_geotiff_date_without_flags_clear_warns_nodata_is_255(tmp_path):
    truth = s2.write_geotiff_stack(tmp_path / "st", dates=s2.DATES[:3])
    _drop_scl(tmp_path / "st", s2.DATES[1])
    with warns_naming(UserWarning, "2018-04-15", "clear"):
        ds = cube.open(tmp_path / "st", missing_flags="clear")
    f = ds["flag"].values
    assert (f[1] == 0).all()
    np.testing.assert_array_equal(f[[0, 2]], _flags(truth["scl"][[0, 2]]))
    nd = cube.open(tmp_path / "st", missing_flags="nodata")["flag"].values
    assert (nd[1] == 255).all() and (nd[0] == f[0]).all()


def test_geotiff_without_any_flag_layer_warns_or_refuses(tmp_path):
    s2.write_geotiff_stack(tmp_path / "st", dates=s2.DATES[:2], flags=None)
    with warns_naming(UserWarning, "every observation will be treated as clear"):
        ds = cube.open(tmp_path / "st")
    assert (ds["flag"].values == 0).all()
    with refuses(ValueError, "st", "no date has a flag layer", "missing_flags"):
        cube.open(tmp_path / "st", missing_flags="raise")
    assert (cube.open(tmp_path / "st", missing_flags="nodata")["flag"].values == 255).all()


def test_safe_without_scl(tmp_path):
    s2.write_safe(tmp_path / "L2A", date="20180405")
    p1, t1 = s2.write_safe(tmp_path / "L2A", date="20180415", seed=1, omit=("SCL",))
    with refuses(ValueError, "2018-04-15", "SCL", "missing_flags"):
        cube.open(tmp_path / "L2A")
    with warns_naming(UserWarning, "2018-04-15", "clear"):
        ds = cube.open(tmp_path / "L2A", missing_flags="clear")
    assert (ds["flag"].values[1] == 0).all()
    with warns_naming(UserWarning, "every observation will be treated as clear"):
        one = cube.open(p1)
    assert (one["flag"].values == 0).all()


def test_safe_without_scl_flags_dn_zero_as_no_data(tmp_path):
    p, truth = s2.write_safe(tmp_path, date="20180405", omit=("SCL",))
    for jp2 in p.rglob("*.jp2"):  # a no-data corner: DN 0 in every band
        with rasterio.open(jp2) as src:
            a, tr = src.read(1), src.transform
        a[0, 0] = 0
        jp2.unlink()
        s2._write_jp2(jp2, a, tr)
    with warns_naming(UserWarning, p.name, "treated as clear"):
        f = cube.open(p, missing_flags="clear")["flag"].values[0]
    assert f[0, 0] == 255 and (f.ravel()[1:] == 0).all()  # no data only where every band is 0


def test_stac_item_without_scl_is_refused(tmp_path):
    import pystac

    cat, _ = s2.write_stac(tmp_path / "stac")
    items = sorted(pystac.Catalog.from_file(str(cat)).get_items(recursive=True), key=lambda it: it.datetime)
    del items[1].assets["SCL"]
    with refuses(ValueError, "STAC", "2018-04-15", "missing_flags"):
        cube.open(items)
    ds = cube.open(items, missing_flags="nodata")
    assert (ds["flag"].values[1] == 255).all() and (ds["flag"].values[0] != 255).any()


@pytest.mark.parametrize("stack", ["s2stack", "slovenia/stack"])
def test_bundled_sample_stacks_have_flags_for_every_date(stack):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ds = cube.open(SAMPLE / stack)
    assert not [w for w in record if "flag" in str(w.message)], [str(w.message) for w in record]
    assert ds.sizes["time"] > 20 and (ds["flag"].values[:, ::10, ::10] != 0).any()  # clouds are flagged


# --- truncated and corrupt files -----------------------------------------------------------------------------


def _truncate(path: Path, keep: float = 0.6) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "layout",
    [
        {"driver": "COG", "blocksize": 64, "compress": "deflate"},
        {"driver": "GTiff", "tiled": False},
        {"driver": "GTiff", "tiled": True, "blockxsize": 16, "blockysize": 16},
        {"driver": "GTiff", "BIGTIFF": "YES", "tiled": True, "compress": "lzw"},
        {"driver": "GTiff", "ENDIANNESS": "BIG", "tiled": False, "compress": "deflate"},
    ],
)
def test_truncated_geotiff_is_refused_at_open_naming_the_full_path(tmp_path, layout):
    folder = tmp_path / "st"
    s2.write_geotiff_stack(folder, dates=s2.DATES[:2], shape=(100, 120))
    bad = folder / f"S2_{s2.DATES[1]}.tif"
    a = np.arange(9 * 100 * 120, dtype=np.int16).reshape(9, 100, 120)
    with rasterio.open(
        bad,
        "w",
        height=100,
        width=120,
        count=9,
        dtype="int16",
        crs=s2.CRS,
        transform=from_origin(*s2.ORIGIN, 10, 10),
        **layout,
    ) as dst:
        dst.write(a)
        dst.descriptions = tuple(TS2C_BANDS)
    np.testing.assert_array_equal(cube.open(folder)["reflectance"].values[1], a)  # the whole file passes the check
    _truncate(bad)
    with refuses(ValueError, str(bad.absolute()), "truncated"):
        cube.open(folder)


@pytest.mark.bad_input
def test_corrupt_geotiff_block_names_the_full_path_at_read_time(tmp_path):
    folder = tmp_path / "st"
    s2.write_geotiff_stack(folder, dates=s2.DATES[:2])
    bad = folder / f"S2_{s2.DATES[1]}.tif"
    with rasterio.open(bad) as src:
        off = int(src.get_tag_item("BLOCK_OFFSET_0_0", "TIFF", bidx=1))
        size = int(src.get_tag_item("BLOCK_SIZE_0_0", "TIFF", bidx=1))
    data = bytearray(bad.read_bytes())
    data[off : off + size] = b"\x13" * size  # same length: the header is fine, the compressed tile is not
    bad.write_bytes(bytes(data))
    ds = cube.open(folder, chunks=16)
    with refuses(ValueError, str(bad.absolute()), "rows 0-15", "corrupt"):
        _ = ds["reflectance"].values


@pytest.mark.bad_input
def test_truncated_jp2_in_a_safe_product_is_refused_at_open(tmp_path):
    p, _ = s2.write_safe(tmp_path, date="20180405")
    bad = next(p.rglob("*_B03_10m.jp2"))
    _truncate(bad, 0.9)
    with refuses(ValueError, str(bad.absolute()), "truncated"):
        cube.open(p)


def test_raster_reader_indexes_like_numpy(tmp_path):
    a = np.arange(3 * 20 * 30, dtype=np.int16).reshape(3, 20, 30)
    path = tmp_path / "r.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        height=20,
        width=30,
        count=3,
        dtype="int16",
        crs=s2.CRS,
        transform=from_origin(0, 0, 10, 10),
    ) as dst:
        dst.write(a)
    r = rasterfiles.Raster(path, 3, 20, 30, "int16")
    keys = [
        (slice(None), slice(2, 9), slice(5, 30)),
        (1, slice(None), 4),
        ([2, 0], slice(3, 4), [7, 1, 7]),
        (slice(None, None, -1), slice(0, 20, 3), slice(None)),
        (..., 3),
        (slice(0, 0),),
        (np.array([1]),),
    ]
    for key in keys:
        np.testing.assert_array_equal(r[key], _outer(a, key), err_msg=str(key))
    lazy = rasterfiles.lazy_read(path, {"y": 7, "x": 8})
    np.testing.assert_array_equal(lazy[[2, 0]][:, 5:17, ::2].compute(), a[[2, 0]][:, 5:17, ::2])


def _outer(a: np.ndarray, key: tuple) -> np.ndarray:
    """Outer (per-axis) indexing with numpy, the semantics dask expects from an array-like."""
    if any(k is Ellipsis for k in key):
        i = next(j for j, k in enumerate(key) if k is Ellipsis)
        key = key[:i] + (slice(None),) * (3 - len(key) + 1) + key[i + 1 :]
    key = key + (slice(None),) * (3 - len(key))
    out = a
    for ax in (2, 1, 0):
        out = np.take(out, np.arange(a.shape[ax])[key[ax]], axis=ax)
    return out


def test_open_checks_headers_fast_on_the_sample(tmp_path):
    import time

    files = sorted((SAMPLE / "slovenia" / "stack").glob("*.tif"))
    t0 = time.perf_counter()
    for p in files:
        rasterfiles.check_extent(p)
    per_file = (time.perf_counter() - t0) / len(files)
    assert per_file < 0.005, f"header check takes {per_file * 1000:.2f} ms per file"


# --- bad inputs (tests/badinput.py contract) ------------------------------------------------------------------


@pytest.mark.bad_input
def test_bad_nonexistent_path(tmp_path):
    with refuses(FileNotFoundError, "absent", "does not exist", "folder of GeoTIFFs"):
        cube.open(tmp_path / "absent")


@pytest.mark.bad_input
def test_bad_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with refuses(FileNotFoundError, "empty", "no GeoTIFF", "*.tif"):
        cube.open(tmp_path / "empty")


@pytest.mark.bad_input
def test_bad_unknown_missing_flags_value(tmp_path):
    s2.write_geotiff_stack(tmp_path / "st", dates=s2.DATES[:1])
    with refuses(ValueError, "missing_flags", "'cloudy'", "'raise'", "'clear'", "'nodata'"):
        cube.open(tmp_path / "st", missing_flags="cloudy")


@pytest.mark.bad_input
def test_bad_file_without_crs(tmp_path):
    (tmp_path / "nocrs").mkdir()
    with rasterio.open(
        tmp_path / "nocrs" / "S2_20180101.tif",
        "w",
        driver="GTiff",
        height=3,
        width=3,
        count=1,
        dtype="int16",
        transform=from_origin(0, 30, 10, 10),
    ) as dst:
        dst.write(np.zeros((1, 3, 3), np.int16))
    with refuses(ValueError, "S2_20180101.tif", "no CRS", "georeferenced"):
        cube.open(tmp_path / "nocrs")


@pytest.mark.bad_input
@pytest.mark.parametrize("what", ["resolution", "crs", "extent"])
def test_bad_files_on_different_grids(tmp_path, what):
    folder = tmp_path / "mixed"
    s2.write_geotiff_stack(folder, dates=["20180101"], bands=["B2"], per_band=True, flags=None)
    other = {"resolution": dict(res=20, shape=(20, 24)), "crs": dict(crs="EPSG:32634"), "extent": dict(shape=(40, 40))}[
        what
    ]
    s2.write_geotiff_stack(folder, dates=["20180101"], bands=["B5"], per_band=True, flags=None, **other)
    expected = {"resolution": "mismatched resolution", "crs": "one CRS", "extent": "same grid"}[what]
    with refuses(ValueError, "S2_20180101_B5.tif", "S2_20180101_B2.tif", expected):
        cube.open(folder)


@pytest.mark.bad_input
def test_bad_file_without_date_is_refused_when_alone(tmp_path):
    (tmp_path / "nodate").mkdir()
    with rasterio.open(
        tmp_path / "nodate" / "image.tif",
        "w",
        driver="GTiff",
        height=3,
        width=3,
        count=1,
        dtype="int16",
        crs="EPSG:32633",
        transform=from_origin(0, 30, 10, 10),
    ) as dst:
        dst.write(np.zeros((1, 3, 3), np.int16))
    with refuses(ValueError, "image.tif", "no acquisition date", "YYYYMMDD"):
        cube.open(tmp_path / "nodate")


@pytest.mark.bad_input
@pytest.mark.parametrize("bad", ["20181345", "20180230", "20180101T256000"])
def test_bad_date_that_cannot_be_parsed(tmp_path, bad):
    s2.write_geotiff_stack(tmp_path / "st", dates=["20180101", "20180111"])
    shutil.copy(tmp_path / "st" / "S2_20180111.tif", tmp_path / "st" / f"S2_{bad}.tif")
    with refuses(ValueError, f"S2_{bad}.tif", bad, "not a valid date", "YYYYMMDD"):
        cube.open(tmp_path / "st")


@pytest.mark.bad_input
def test_bad_duplicate_dates(tmp_path):
    s2.write_geotiff_stack(tmp_path / "st", dates=["20180101", "20180111"], flags=None)
    shutil.copy(tmp_path / "st" / "S2_20180111.tif", tmp_path / "st" / "S2b_20180111.tif")
    with refuses(ValueError, "2018-01-11", "S2_20180111.tif", "S2b_20180111.tif", "once per date"):
        cube.open(tmp_path / "st")


@pytest.mark.bad_input
def test_bad_band_missing_on_one_date(tmp_path):
    s2.write_geotiff_stack(tmp_path / "st", dates=["20180101", "20180111"], bands=["B2", "B3", "B4"], per_band=True)
    (tmp_path / "st" / "S2_20180111_B3.tif").unlink()
    with refuses(ValueError, "st", "2018-01-11", "lacks bands ['B3']", "every date needs the same bands"):
        cube.open(tmp_path / "st")


@pytest.mark.bad_input
def test_bad_flag_file_without_image(tmp_path):
    s2.write_geotiff_stack(tmp_path / "st", dates=["20180101", "20180111"])
    (tmp_path / "st" / "S2_20180111.tif").unlink()
    with refuses(ValueError, "SCL_20180111.tif", "2018-01-11", "no image file"):
        cube.open(tmp_path / "st")


@pytest.mark.bad_input
def test_bad_new_baseline_without_metadata_file(tmp_path):
    p, _ = s2.write_safe(tmp_path, date="20220301", boa_offset=-1000, mtd_name=None)
    with refuses(ValueError, p.name, "04.00", "BOA_ADD_OFFSET", "MTD_MSIL2A.xml"):
        cube.open(p)


@pytest.mark.bad_input
def test_bad_new_baseline_without_offsets_element(tmp_path):
    p, _ = s2.write_safe(tmp_path, date="20220301", baseline="04.00")  # N0400 and 04.00, but no offsets list
    with refuses(ValueError, str(p / "MTD_MSIL2A.xml"), "04.00", "BOA_ADD_OFFSET_VALUES_LIST", "one offset per band"):
        cube.open(p)


@pytest.mark.bad_input
def test_bad_new_baseline_only_in_metadata(tmp_path):
    # the name carries no baseline; PROCESSING_BASELINE 05.10 says offsets are needed and there are none
    p, _ = s2.write_safe(tmp_path / "x", date="20190301", baseline="05.10")
    renamed = p.with_name(p.name.replace("_N0510", ""))
    p.rename(renamed)
    with refuses(ValueError, "MTD_MSIL2A.xml", "05.10", "BOA_ADD_OFFSET"):
        cube.open(renamed)


@pytest.mark.bad_input
@pytest.mark.parametrize("ids", [[str(i) for i in range(1, 14)], ["B02"] * 13, [str(i) for i in range(10)]])
def test_bad_offsets_with_wrong_band_ids(tmp_path, ids):
    p, _ = s2.write_safe(tmp_path, date="20220301", boa_offset=[-1000] * len(ids), offset_band_ids=ids)
    with refuses(ValueError, "MTD_MSIL2A.xml", "BOA_ADD_OFFSET", "band_id"):
        cube.open(p)


@pytest.mark.bad_input
def test_bad_offset_value_not_an_integer(tmp_path):
    p, _ = s2.write_safe(tmp_path, date="20220301", boa_offset=["-1000"] * 12 + ["minus"])
    with refuses(ValueError, "MTD_MSIL2A.xml", "band_id='12'", "'minus'", "integer"):
        cube.open(p)


@pytest.mark.bad_input
@pytest.mark.parametrize("name_b, mtd_b", [("0400", "02.14"), ("0213", "04.00")])
def test_bad_baseline_in_name_contradicts_metadata(tmp_path, name_b, mtd_b):
    p, _ = s2.write_safe(tmp_path, date="20220301", boa_offset=-1000, baseline=mtd_b, name_baseline=name_b)
    with refuses(ValueError, p.name, f"N{name_b}", mtd_b, "MTD_MSIL2A.xml", "same processing baseline"):
        cube.open(p)


@pytest.mark.bad_input
def test_bad_unknown_baseline_after_the_04_switch_without_offsets(tmp_path):
    p, _ = s2.write_safe(tmp_path / "x", date="20230301", with_baseline_element=False, mtd_name=None)
    renamed = p.with_name(p.name.replace("_N0206", ""))
    p.rename(renamed)
    with refuses(ValueError, renamed.name, "2023-03-01", "04.00", "BOA_ADD_OFFSET"):
        cube.open(renamed)


@pytest.mark.bad_input
def test_bad_quantification_value(tmp_path):
    p, _ = s2.write_safe(tmp_path, date="20230301", boa_offset=-1000, quantification=0)
    with refuses(ValueError, "MTD_MSIL2A.xml", "BOA_QUANTIFICATION_VALUE", "positive"):
        cube.open(p)


@pytest.mark.bad_input
def test_bad_two_metadata_files_differing_in_case(tmp_path):
    p, _ = s2.write_safe(tmp_path, date="20230301", boa_offset=-1000)
    shutil.copy(p / "MTD_MSIL2A.xml", p / "MTD_MSIL2a.xml")
    with refuses(ValueError, p.name, "MTD_MSIL2A.xml", "MTD_MSIL2a.xml", "expected one"):
        cube.open(p)


@pytest.mark.bad_input
def test_bad_b8_requested_without_r10m(tmp_path):
    p, _ = s2.write_safe(tmp_path, date="20180405", omit=("R10m",))
    with refuses(ValueError, p.name, "B8", "10 m only", "R10m"):
        cube.open(p, bands=["B04", "B08"])


@pytest.mark.bad_input
def test_bad_two_products_of_one_acquisition(tmp_path):
    p, _ = s2.write_safe(tmp_path / "L2A", date="20180405")
    shutil.copytree(p, p.with_name(p.name.replace("T125432", "T140000")))
    with refuses(ValueError, "2018-04-05", p.name, "one product per acquisition"):
        cube.open(tmp_path / "L2A")


@pytest.mark.bad_input
def test_bad_products_of_two_tiles(tmp_path):
    s2.write_safe(tmp_path / "L2A", date="20180405")
    p2, _ = s2.write_safe(tmp_path / "L2A", date="20180415", tile="33UWP", shape10=(32, 48))
    with refuses(ValueError, p2.name, "differs", "one tile at a time"):
        cube.open(tmp_path / "L2A")

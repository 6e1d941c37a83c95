"""Tests of the Slovenia case reader: arrays, grid, GeoTIFF stack and polygons."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio

from badinput import refuses
from eokit.datasets import slovenia
from eokit.paths import SAMPLE_DIR

SRC = SAMPLE_DIR / "slovenia"


def test_open_returns_the_arrays_on_their_grid() -> None:
    ds = slovenia.open()
    assert dict(ds.sizes) == {"time": 68, "y": 101, "x": 100}
    assert ds.ndvi.dims == ("time", "y", "x") and ds.ndvi.dtype == np.float32
    assert ds.cloud_mask.dtype == np.uint8 and ds.lulc.dims == ("y", "x")
    np.testing.assert_array_equal(ds.ndvi.values, np.load(SRC / "ndvi.npy")[..., 0])
    np.testing.assert_array_equal(ds.cloud_mask.values, np.load(SRC / "cloud_mask.npy")[..., 0])
    np.testing.assert_array_equal(ds.lulc.values, np.load(SRC / "lulc.npy")[..., 0])
    assert ds.rio.crs.to_epsg() == 32633
    t = ds.rio.transform()
    assert t.c == pytest.approx(465181.0522318204) and t.f == pytest.approx(5080254.63349641)
    assert t.a == pytest.approx((466180.53145382757 - 465181.0522318204) / 100)
    assert t.e == pytest.approx(-(5080254.63349641 - 5079244.8912012065) / 101)
    assert ds.y.values[0] > ds.y.values[-1]  # row 0 is north
    times = json.loads((SRC / "timestamps.json").read_text())
    assert str(ds.time.values[0])[:19] == times[0] and ds.time.to_index().is_monotonic_increasing


def test_rasterised_polygons_reproduce_lulc_exactly() -> None:
    polys = slovenia.polygons()
    assert polys.crs.to_epsg() == 32633 and len(polys) == 88
    burnt = slovenia.rasterize_lulc()
    np.testing.assert_array_equal(burnt, slovenia.open().lulc.values)


def test_stack_holds_the_same_data() -> None:
    stack = SRC / "stack"
    ndvi = sorted(stack.glob("NDVI_*.tif"))
    assert len(ndvi) == 68 and len(list(stack.glob("FLAG_*.tif"))) == 68
    assert any(p.name.startswith("NDVI_20151208T1004") for p in ndvi) and any(
        p.name.startswith("NDVI_20151208T1011") for p in ndvi
    )  # two acquisitions on one date
    with rasterio.open(ndvi[0]) as src:
        assert src.count == 1 and src.dtypes[0] == "float32" and src.descriptions == ("NDVI",)
        assert src.crs.to_epsg() == 32633
    with rasterio.open(stack / ndvi[0].name.replace("NDVI_", "FLAG_")) as src:
        assert src.dtypes[0] == "uint8" and set(np.unique(src.read(1))) <= {0, 1}
    a, b = slovenia.open(), slovenia.open(stack)
    for v in ("ndvi", "cloud_mask", "lulc"):
        np.testing.assert_array_equal(a[v].values, b[v].values)
    np.testing.assert_array_equal(a.time.values, b.time.values)
    np.testing.assert_allclose(a.x.values, b.x.values)
    np.testing.assert_allclose(a.y.values, b.y.values)
    assert a.rio.transform().almost_equals(b.rio.transform())


def test_write_stack_refuses_to_overwrite(tmp_path: Path) -> None:
    out = slovenia.write_stack(tmp_path / "stack")
    with pytest.raises(FileExistsError, match="overwrite"):
        slovenia.write_stack(tmp_path / "stack")
    slovenia.write_stack(out, overwrite=True)
    assert len(list(out.glob("NDVI_*.tif"))) == 68
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_bad_input_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        slovenia.open(tmp_path / "nowhere")
    case = tmp_path / "case"
    shutil.copytree(SRC, case, ignore=shutil.ignore_patterns("stack"))
    (case / "timestamps.json").write_text(json.dumps(json.loads((case / "timestamps.json").read_text())[:-1]))
    with pytest.raises(ValueError, match="timestamps.json.*67 timestamps"):
        slovenia.open(case)
    (case / "cloud_mask.npy").unlink()
    with pytest.raises(FileNotFoundError, match="cloud_mask.npy"):
        slovenia.open(case)
    np.save(case / "lulc.npy", np.zeros((5, 5), dtype=np.uint16))
    shutil.copy(SRC / "cloud_mask.npy", case / "cloud_mask.npy")
    with pytest.raises(ValueError, match="lulc.npy: expected 3 dimensions"):
        slovenia.open(case)


# --- hostile inputs (tests/badinput.py contract) ----------------------------------------------------------


@pytest.fixture()
def case(tmp_path: Path) -> Path:
    dst = tmp_path / "case"
    shutil.copytree(SRC, dst, ignore=shutil.ignore_patterns("stack"))
    return dst


def _swap_times(case: Path, i: int, j: int) -> None:
    times = json.loads((case / "timestamps.json").read_text())
    times[i], times[j] = times[j], times[i]
    (case / "timestamps.json").write_text(json.dumps(times))


@pytest.mark.bad_input
def test_timestamps_out_of_order(case: Path) -> None:
    # before: read as is, so the time axis of the cube was not monotonic
    _swap_times(case, 3, 4)
    with refuses(ValueError, "timestamps.json", "time step 4", "strictly ascending"):
        slovenia.open(case)


@pytest.mark.bad_input
def test_duplicate_timestamp(case: Path) -> None:
    times = json.loads((case / "timestamps.json").read_text())
    times[4] = times[3]
    (case / "timestamps.json").write_text(json.dumps(times))
    with refuses(ValueError, "timestamps.json", "does not come after step 3", "strictly ascending"):
        slovenia.open(case)


@pytest.mark.bad_input
@pytest.mark.parametrize("name", ["ndvi.npy", "cloud_mask.npy", "lulc.npy"])
def test_corrupt_array_names_the_file(case: Path, name: str) -> None:
    # before: numpy's "This file contains pickled (object) data" without the file name
    (case / name).write_bytes(b"garbage")
    with refuses(ValueError, name, "cannot be read as a .npy array"):
        slovenia.open(case)


@pytest.mark.bad_input
@pytest.mark.parametrize("name", ["ndvi.npy", "cloud_mask.npy", "timestamps.json", "bbox.geojson"])
def test_missing_file(case: Path, name: str) -> None:
    (case / name).unlink()
    with refuses(FileNotFoundError, name, "missing"):
        slovenia.open(case)


@pytest.mark.bad_input
def test_more_than_one_feature(case: Path) -> None:
    # before: the second NDVI feature was dropped silently
    a = np.load(case / "ndvi.npy")
    np.save(case / "ndvi.npy", np.concatenate([a, a], axis=-1))
    with refuses(ValueError, "ndvi.npy", "one feature in the last axis", "(68, 101, 100, 2)"):
        slovenia.open(case)


@pytest.mark.bad_input
def test_cloud_mask_values_outside_0_1(case: Path) -> None:
    # before: 300 was cast to uint8 44 and kept as a "cloud mask" value
    a = np.load(case / "cloud_mask.npy").astype(np.int16)
    a[0, 0, 0, 0] = 300
    np.save(case / "cloud_mask.npy", a)
    with refuses(ValueError, "cloud_mask.npy", "outside [0, 1]", "0 clear, 1 cloud", "[300]"):
        slovenia.open(case)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "text, expected",
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"type": "Polygon", "coordinates": [[[1, 2], [1, 2]]]}), "spans no area"),
        (json.dumps({"type": "Polygon", "coordinates": [[1, 2, 3]]}), "one polygon ring of [x, y] pairs"),
    ],
)
def test_bad_bbox(case: Path, text: str, expected: str) -> None:
    # before: JSONDecodeError without the file, a zero-size grid, an IndexError
    (case / "bbox.geojson").write_text(text)
    with refuses(ValueError, "bbox.geojson", expected):
        slovenia.open(case)


@pytest.mark.bad_input
def test_timestamps_not_a_list(case: Path) -> None:
    (case / "timestamps.json").write_text(json.dumps({"a": 1}))
    with refuses(ValueError, "timestamps.json", "JSON list of ISO times", "dict"):
        slovenia.open(case)


@pytest.mark.bad_input
def test_grid_shape_must_be_positive() -> None:
    with refuses(ValueError, "shape", "positive integers", "(0, 100)"):
        slovenia.grid(shape=(0, 100))


@pytest.mark.bad_input
def test_unreadable_polygons(case: Path) -> None:
    (case / "lulc_polygons.gpkg").write_bytes(b"garbage")
    with refuses(ValueError, "lulc_polygons.gpkg", "cannot be read as a GeoPackage"):
        slovenia.polygons(case)


@pytest.fixture()
def stack(tmp_path: Path) -> Path:
    dst = tmp_path / "stack"
    shutil.copytree(SRC / "stack", dst)
    return dst


@pytest.mark.bad_input
def test_stack_file_of_another_shape(stack: Path) -> None:
    # before: numpy's "all input arrays must have the same shape"
    f = sorted(stack.glob("NDVI_*.tif"))[3]
    with rasterio.open(f) as src:
        prof = src.profile
    prof.update(width=50)
    with rasterio.open(f, "w", **prof) as dst:
        dst.write(np.zeros((1, 101, 50), np.float32))
    with refuses(ValueError, f.name, "shape (101, 50)", "one grid"):
        slovenia.open_stack(stack)


@pytest.mark.bad_input
def test_stack_corrupt_file(stack: Path) -> None:
    # before: RasterioIOError with the base name only
    f = sorted(stack.glob("FLAG_*.tif"))[2]
    f.write_bytes(b"II*\x00junk")
    with refuses(ValueError, str(f), "cannot be read as a GeoTIFF"):
        slovenia.open_stack(stack)


def test_scale_ndvi_gives_int16_ndvi_x_10000_lazily() -> None:
    import xarray as xr

    ndvi = np.array([[[0.5, -0.25], [np.nan, 0.99996]]], np.float32)[:, None]  # (time, band, y, x)
    cube = xr.Dataset(
        {
            "reflectance": (("time", "band", "y", "x"), ndvi),
            "flag": (("time", "y", "x"), np.zeros((1, 2, 2), np.uint8)),
        },
        coords={"band": ["NDVI"]},
    )
    got = slovenia.scale_ndvi(cube.chunk({"y": 1}))
    assert got["reflectance"].chunks is not None and got["reflectance"].dtype == np.int16
    assert got["reflectance"].values.ravel().tolist() == [5000, -2500, 0, 10000]
    assert cube["reflectance"].dtype == np.float32  # the input is left as it was
    assert got["flag"].identical(cube["flag"])


@pytest.mark.bad_input
def test_scale_ndvi_refuses_a_scaled_cube() -> None:
    import xarray as xr

    cube = xr.Dataset({"reflectance": (("time", "band", "y", "x"), np.ones((1, 1, 2, 2), np.int16))})
    with refuses(ValueError, "scale_ndvi", "int16", "float NDVI"):
        slovenia.scale_ndvi(cube)
    with refuses(ValueError, "scale_ndvi", "'reflectance'", "['flag']"):
        slovenia.scale_ndvi(xr.Dataset({"flag": ("t", [0])}))


def test_land_use_polygons_leave_out_the_no_data_ones() -> None:
    every, used = slovenia.polygons(), slovenia.land_use_polygons()
    assert len(every) - len(used) == int((every["LULC_ID"] == 0).sum()) > 0
    assert 0 not in set(used["LULC_ID"]) and slovenia.LULC_CLASSES[0] == "no data"

"""tifstack: undated files beside a GeoTIFF time series (timeless layers skipped quietly, unknown ones warned)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio

from badinput import refuses, warns_naming
from eokit import cube
from eokit.tifstack import TIMELESS_LAYERS
from generators import s2

SLOVENIA_STACK = Path(__file__).resolve().parents[1] / "data" / "sample" / "slovenia" / "stack"


def _undated_copy(folder: Path, name: str) -> None:
    """Write `name` in `folder`: one band on the stack's grid, no date in the name or the tags."""
    first = sorted(folder.glob("S2_*.tif"))[0]
    with rasterio.open(first) as src:
        profile = {**src.profile, "count": 1, "dtype": "uint16"}
    with rasterio.open(folder / name, "w", **profile) as dst:
        dst.write(np.ones((1, profile["height"], profile["width"]), np.uint16))


def test_timeless_layer_is_skipped_without_a_warning(tmp_path: Path) -> None:
    s2.write_geotiff_stack(tmp_path / "st", dates=["20180101", "20180111"])
    _undated_copy(tmp_path / "st", "LULC.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = cube.open(tmp_path / "st")
    assert ds.sizes["time"] == 2 and "LULC" not in [str(b) for b in ds["band"].values]


def test_unknown_undated_file_still_warns_and_is_skipped(tmp_path: Path) -> None:
    s2.write_geotiff_stack(tmp_path / "st", dates=["20180101", "20180111"])
    _undated_copy(tmp_path / "st", "LULC.tif")
    _undated_copy(tmp_path / "st", "elevation.tif")
    with warns_naming(UserWarning, "elevation.tif", "no acquisition date", "skipped"):
        ds = cube.open(tmp_path / "st")
    assert ds.sizes["time"] == 2
    with pytest.warns(UserWarning) as record:
        cube.open(tmp_path / "st")
    assert not any("LULC" in str(w.message) for w in record)  # the known layer is not among the names


def test_bundled_slovenia_stack_opens_without_warnings() -> None:
    assert (SLOVENIA_STACK / "LULC.tif").exists() and "LULC" in TIMELESS_LAYERS
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = cube.open(SLOVENIA_STACK)
    assert ds.sizes["time"] == len(list(SLOVENIA_STACK.glob("NDVI_*.tif")))


@pytest.mark.bad_input
def test_timeless_layer_alone_is_not_a_time_series(tmp_path: Path) -> None:
    s2.write_geotiff_stack(tmp_path / "st", dates=["20180101"])
    _undated_copy(tmp_path / "st", "LULC.tif")
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(tmp_path / "st" / "LULC.tif", alone / "LULC.tif")
    with refuses(FileNotFoundError, "alone", "no dated image files", "LULC"):
        cube.open(alone)

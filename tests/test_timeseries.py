"""eokit.timeseries: gap filling of flagged observations and resampling to a fixed date grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from eokit import timeseries as ts
from eokit.schema import TIMESERIES_SCHEMA, check_schema


def _set():
    dates = pd.to_datetime(["2018-01-01", "2018-01-11", "2018-01-21", "2018-01-31"]).values
    refl = np.array([
        [[100, 10], [999, 999], [300, 30], [400, 40]],   # cloud in the middle: 200 / 20 expected
        [[999, 9], [200, 20], [300, 30], [999, 9]],      # flagged at both ends: nearest clear value
        [[5, 5], [5, 5], [5, 5], [0, 0]],                # no clear observation at all, then padding
        [[100, 0], [999, 0], [700, 0], [0, 0]],          # padding at the end (NaT, flag 255)
    ], dtype=np.int16)
    flag = np.array([[0, 1, 0, 0], [2, 0, 0, 3], [1, 1, 1, 255], [0, 1, 0, 255]], dtype=np.uint8)
    date = np.broadcast_to(dates, (4, 4)).copy()
    date[2, 3] = date[3, 3] = np.datetime64("NaT")
    date[3, :3] = pd.to_datetime(["2018-01-01", "2018-01-04", "2018-01-07"]).values  # another tile's dates
    return xr.Dataset(
        {"reflectance": (("sample", "time", "band"), refl), "flag": (("sample", "time"), flag),
         "date": (("sample", "time"), date), "label": ("sample", np.arange(4)),
         "label_name": ("sample", np.array(list("abcd"))), "tile": ("sample", np.array(["T"] * 4)),
         "source_file": ("sample", np.array(["f"] * 4))},
        coords={"band": ["B4", "B8"]})


def test_gapfill_interpolates_flagged_observations_only():
    raw = _set()
    before = raw.copy(deep=True)
    out = ts.gapfill(raw)
    assert raw.identical(before)  # raw samples untouched
    r = out["reflectance"].values
    assert r.dtype == np.int16
    assert r[0, :, 0].tolist() == [100, 200, 300, 400] and r[0, 1, 1] == 20
    assert r[1, :, 0].tolist() == [200, 200, 300, 300]
    assert r[2].tolist() == raw["reflectance"].values[2].tolist()  # nothing to interpolate from
    # uneven dates: 2018-01-04 lies 1/2 of the way between 01-01 and 01-07; padding is left alone
    assert r[3, :, 0].tolist() == [100, 400, 700, 0]
    np.testing.assert_array_equal(out["flag"].values, raw["flag"].values)
    assert out["filled"].values.tolist() == [[False, True, False, False], [True, False, False, True],
                                             [False] * 4, [False, True, False, False]]
    check_schema(out, TIMESERIES_SCHEMA)


def test_resample_to_a_date_grid():
    raw = _set()
    out = ts.resample(raw, every="5D", start="2018-01-01", end="2018-01-31")
    assert out.sizes["time"] == 7
    grid = pd.date_range("2018-01-01", "2018-01-31", freq="5D").values
    assert (out["date"].values == grid).all()
    r, f = out["reflectance"].values, out["flag"].values
    assert r[0, :, 0].tolist() == [100, 150, 200, 250, 300, 350, 400]  # clear obs 01-01, 01-21, 01-31
    assert f[0].tolist() == [0] * 7
    # sample 1: clear from 01-11 to 01-21 only, 255 outside that span
    assert f[1].tolist() == [255, 255, 0, 0, 0, 255, 255] and r[1, 3, 0] == 250
    assert (f[2] == 255).all()
    check_schema(out, TIMESERIES_SCHEMA)
    assert out["label"].values.tolist() == [0, 1, 2, 3]
    default = ts.resample(raw, every="10D")
    assert default["date"].values[0, 0] == np.datetime64("2018-01-01") and default.sizes["time"] == 4


def test_resample_errors():
    with pytest.raises(ValueError, match="not a pandas frequency"):
        ts.resample(_set(), every="fortnightly")
    with pytest.raises(ValueError, match="before start"):
        ts.resample(_set(), start="2018-02-01", end="2018-01-01")
    with pytest.raises(ValueError, match="no 'date' variable"):
        ts.gapfill(_set().drop_vars("date"))


def test_mean_by_class_uses_clear_observations():
    raw = _set()
    m = ts.mean_by_class(raw, band="B4")
    a = m[m["label_name"] == "a"]
    assert a["value"].tolist() == [100.0, 300.0, 400.0] and (a["variable"] == "B4").all()
    assert "c" not in set(m["label_name"])  # no clear observation
    raw = raw.assign_coords(band=["B4", "B8A"])
    ndvi = ts.mean_by_class(raw)
    first = ndvi[(ndvi["label_name"] == "a")]["value"].iloc[0]
    assert ndvi["variable"].iloc[0] == "NDVI" and first == pytest.approx((10 - 100) / 110)
    with pytest.raises(ValueError, match="band 'B2' not in the training set"):
        ts.mean_by_class(raw, band="B2")


def test_gapfill_float_nan_counts_as_missing():
    raw = _set()
    raw["reflectance"] = raw["reflectance"].astype(np.float32)
    r = raw["reflectance"].values.copy()
    r[0, 2, :] = np.nan  # a "clear" observation without a value
    raw["reflectance"] = (("sample", "time", "band"), r)
    out = ts.gapfill(raw)
    assert out["reflectance"].dtype == np.float32
    # 01-11 (cloud) and 01-21 (NaN) both lie between 100 on 01-01 and 400 on 01-31
    np.testing.assert_allclose(out["reflectance"].values[0, :, 0], [100, 200, 300, 400])

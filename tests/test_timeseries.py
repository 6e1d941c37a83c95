"""eokit.timeseries: gap filling of flagged observations and resampling to a fixed date grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from badinput import refuses
from eokit import timeseries as ts
from eokit.schema import TIMESERIES_SCHEMA, check_schema


def _set():
    dates = pd.to_datetime(["2018-01-01", "2018-01-11", "2018-01-21", "2018-01-31"]).values
    refl = np.array(
        [
            [[100, 10], [999, 999], [300, 30], [400, 40]],  # cloud in the middle: 200 / 20 expected
            [[999, 9], [200, 20], [300, 30], [999, 9]],  # flagged at both ends: nearest clear value
            [[5, 5], [5, 5], [5, 5], [0, 0]],  # no clear observation at all, then padding
            [[100, 0], [999, 0], [700, 0], [0, 0]],  # padding at the end (NaT, flag 255)
        ],
        dtype=np.int16,
    )
    flag = np.array([[0, 1, 0, 0], [2, 0, 0, 3], [1, 1, 1, 255], [0, 1, 0, 255]], dtype=np.uint8)
    date = np.broadcast_to(dates, (4, 4)).copy()
    date[2, 3] = date[3, 3] = np.datetime64("NaT")
    date[3, :3] = pd.to_datetime(["2018-01-01", "2018-01-04", "2018-01-07"]).values  # another tile's dates
    return xr.Dataset(
        {
            "reflectance": (("sample", "time", "band"), refl),
            "flag": (("sample", "time"), flag),
            "date": (("sample", "time"), date),
            "label": ("sample", np.arange(4)),
            "label_name": ("sample", np.array(list("abcd"))),
            "tile": ("sample", np.array(["T"] * 4)),
            "source_file": ("sample", np.array(["f"] * 4)),
        },
        coords={"band": ["B4", "B8"]},
    )


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
    assert out["filled"].values.tolist() == [
        [False, True, False, False],
        [True, False, False, True],
        [False] * 4,
        [False, True, False, False],
    ]
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


# --- hostile inputs (tests/badinput.py contract) ----------------------------------------------------------


def _unsorted():
    raw = _set()
    d = raw["date"].values.copy()
    d[0] = d[0][[1, 0, 3, 2]]  # 01-11, 01-01, 01-31, 01-21
    raw["date"] = (("sample", "time"), d)
    raw["flag"].values[0] = [0, 0, 0, 1]
    return raw


@pytest.mark.bad_input
@pytest.mark.parametrize("fn", [ts.gapfill, ts.resample, ts.mean_by_class])
def test_dates_not_ascending(fn):
    # before: gapfill gave 533 for the cloudy 01-21 between 100 (01-11) and 300 (01-31), i.e. wrong neighbours
    with refuses(ValueError, "'date' of sample 0", "not in ascending order", "time step 1", "2018-01-01"):
        fn(_unsorted())


def test_nat_padding_between_dates_is_not_an_order_error():
    raw = _set()
    d = raw["date"].values.copy()
    d[0, 1] = np.datetime64("NaT")  # a missing acquisition in the middle
    raw["date"] = (("sample", "time"), d)
    assert ts.gapfill(raw)["reflectance"].values[0, :, 0].tolist()[0] == 100


@pytest.mark.bad_input
@pytest.mark.parametrize("every", ["0D", "-10D", 10, "fortnightly"])
def test_resample_frequency_must_be_a_positive_pandas_frequency(every):
    # before: "0D" raised ZeroDivisionError, 10 a TypeError
    with refuses(ValueError, f"every={every!r}", "not a pandas frequency", "'10D'"):
        ts.resample(_set(), every=every)


@pytest.mark.bad_input
@pytest.mark.parametrize("arg", ["start", "end"])
def test_resample_start_or_end_not_a_date(arg):
    # before: pandas DateParseError without the argument's name
    with refuses(ValueError, f"{arg}='soon'", "not a date", "2018-01-01"):
        ts.resample(_set(), **{arg: "soon"})


@pytest.mark.bad_input
def test_reflectance_without_band_dimension():
    # before: xarray's "Dimensions {'band'} do not exist"
    with refuses(ValueError, "'reflectance'", "('sample', 'time')", "expected ('sample', 'time', 'band')"):
        ts.gapfill(_set().isel(band=0))


@pytest.mark.bad_input
def test_dates_that_are_not_datetimes():
    # before: int64 values were read as nanoseconds since 1970
    with refuses(ValueError, "'date'", "datetime64", "int64"):
        ts.gapfill(_set().assign(date=_set()["date"].astype("int64")))


@pytest.mark.bad_input
def test_missing_variable():
    with refuses(ValueError, "no 'flag' variable", "time-series schema"):
        ts.resample(_set().drop_vars("flag"))


@pytest.mark.bad_input
def test_mean_by_class_without_class_names():
    # before: KeyError 'label_name'
    with refuses(ValueError, "'label_name'", "class names"):
        ts.mean_by_class(_set().drop_vars("label_name"))


def test_all_nan_float_sample_resamples_to_nan_not_zero():
    raw = _set()
    raw["reflectance"] = raw["reflectance"].astype(np.float32)
    r = raw["reflectance"].values.copy()
    r[0] = np.nan
    raw["reflectance"] = (("sample", "time", "band"), r)
    out = ts.resample(raw, every="10D")
    assert np.isnan(out["reflectance"].values[0]).all() and (out["flag"].values[0] == 255).all()  # before: 0.0
    assert np.isnan(ts.gapfill(raw)["reflectance"].values[0]).all()


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 6), st.integers(1, 12), st.integers(0, 2**31))
def test_filling_gaps_at_the_observation_times_equals_interpolating_there(n, t, seed):
    """The O(S x T) gap filler (gapfill, and flag_handling="interpolate") answers what the general interpolator
    answers when the query times are the observation times."""
    rng = np.random.default_rng(seed)
    days = np.sort(rng.choice(400, size=(n, t), replace=True), axis=1).astype(float)
    values = rng.normal(size=(n, t, 2))
    clear = rng.random((n, t)) < 0.5
    gaps = ~clear
    out, filled = ts._fill_gaps(values, days, clear, gaps)
    ref, _, any_clear = ts._interp_clear(values, days, clear, days)
    assert np.array_equal(filled, gaps & any_clear[:, None])
    assert np.allclose(out[filled], ref[filled]) and np.array_equal(out[~filled], values[~filled])

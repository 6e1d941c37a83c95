"""Optional time steps on a training set: gap filling of flagged observations and resampling to a date grid.

Both return a new Dataset and leave the raw samples untouched. Interpolation is linear in time (days)
between the clear observations (flag 0) of each sample; before the first and after the last clear
observation the nearest clear value is carried. The original flags stay in ``flag``;
``gapfill`` adds ``filled`` (True where a value was interpolated).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from eokit.schema import FLAG_CLEAR, FLAG_NODATA

__all__ = ["gapfill", "resample"]

_CHUNK = 512  # samples interpolated at once (memory ~ 8 bytes x chunk x queries x time)


def _days(dates: np.ndarray) -> np.ndarray:
    d = dates.astype("datetime64[ns]")
    out = (d - np.datetime64("1970-01-01", "ns")).astype("timedelta64[s]").astype(float) / 86400.0
    out[np.isnat(d)] = np.nan
    return out


def _interp_clear(
    values: np.ndarray, t: np.ndarray, clear: np.ndarray, tq: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Interpolate values (S, T, B) at query times tq (S, Q) from clear observations.

    Returns (out (S, Q, B) float64, inside (S, Q) bool: bracketed by clear observations, any (S,) bool: the
    sample has a clear observation).
    """
    S, T, B = values.shape
    Q = tq.shape[1]
    out = np.zeros((S, Q, B), dtype=np.float64)
    inside = np.zeros((S, Q), dtype=bool)
    anyc = np.asarray(clear.any(axis=1))
    for s0 in range(0, S, _CHUNK):
        sl = slice(s0, min(S, s0 + _CHUNK))
        tc = np.where(clear[sl], t[sl], np.nan)  # (s, T)
        q = tq[sl][:, :, None]  # (s, Q, 1)
        le = tc[:, None, :] <= q  # (s, Q, T) clear obs at or before the query
        ge = tc[:, None, :] >= q
        idx = np.arange(T)
        prev = np.where(le, idx, -1).max(axis=2)  # (s, Q)
        nxt = np.where(ge, idx, T).min(axis=2)
        first = np.where(clear[sl], idx, T).min(axis=1)  # (s,)
        last = np.where(clear[sl], idx, -1).max(axis=1)
        has_p, has_n = prev >= 0, nxt < T
        p = np.where(has_p, prev, np.where(has_n, nxt, first[:, None])).clip(0, T - 1)
        n = np.where(has_n, nxt, np.where(has_p, prev, last[:, None])).clip(0, T - 1)
        rows = np.arange(sl.stop - sl.start)[:, None]
        tp, tn = t[sl][rows, p], t[sl][rows, n]
        span = tn - tp
        w = np.where(span > 0, (tq[sl] - tp) / np.where(span > 0, span, 1.0), 0.0)
        w = np.nan_to_num(w)[:, :, None]
        v = values[sl].astype(np.float64)
        out[sl] = (1 - w) * v[rows, p] + w * v[rows, n]
        inside[sl] = has_p & has_n
    out[~anyc] = 0.0
    return out, inside, anyc


def _fill_gaps(values: np.ndarray, t: np.ndarray, clear: np.ndarray, gaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (values (S, T, B) as floats with the `gaps` (S, T) interpolated linearly in time `t` (days) between
    the sample's clear observations, or the nearest clear value before the first / after the last one;
    filled (S, T): the gaps that got a value, i.e. all of them in samples that have a clear observation).

    The query times are the observation times themselves, so the neighbours are the last clear step at or
    before each step and the first at or after it: two running extrema along time, O(S x T) (`_interp_clear`
    answers arbitrary query times in O(S x Q x T)).
    """
    n_t = values.shape[1]
    idx = np.broadcast_to(np.arange(n_t), clear.shape)
    prev = np.maximum.accumulate(np.where(clear, idx, -1), axis=1)
    nxt = np.minimum.accumulate(np.where(clear, idx, n_t)[:, ::-1], axis=1)[:, ::-1]
    filled = gaps & ((prev >= 0) | (nxt < n_t))
    out = values.astype(np.promote_types(values.dtype, np.float32))  # int16 / float32 stay 32-bit: exact
    si, ti = np.nonzero(filled)  # only the gaps are computed (a third of all steps under clouds)
    p, n = prev[si, ti], nxt[si, ti]
    p, n = np.where(p >= 0, p, n), np.where(n < n_t, n, p)
    flat_t, rows = t.reshape(-1), si * n_t  # flat (sample, time) rows: one index array gathers fastest
    tp, tn, tq = flat_t[rows + p], flat_t[rows + n], flat_t[rows + ti]
    span = tn - tp
    w = np.nan_to_num(np.where(span > 0, (tq - tp) / np.where(span > 0, span, 1.0), 0.0))[:, None]
    flat = out.reshape(-1, out.shape[2])
    flat[rows + ti] = (1 - w) * flat.take(rows + p, axis=0) + w * flat.take(rows + n, axis=0)
    return out, filled


def _finite(vals: np.ndarray) -> np.ndarray:
    """(sample, time) True where every band holds a finite value (always for integers)."""
    if np.issubdtype(vals.dtype, np.integer):
        return np.ones(vals.shape[:2], dtype=bool)
    return np.isfinite(vals).all(axis=2)


def _cast_like(out: np.ndarray, like: np.dtype) -> np.ndarray:
    if np.issubdtype(like, np.integer):
        info = np.iinfo(like)
        return np.clip(np.rint(out), info.min, info.max).astype(like)
    return out.astype(like)


_DIMS = {"reflectance": ("sample", "time", "band"), "flag": ("sample", "time"), "date": ("sample", "time")}


def _check(ds: xr.Dataset) -> None:
    """Raise unless `ds` has reflectance/flag/date on the schema's dims and each sample's dates ascend."""
    for v, dims in _DIMS.items():
        if v not in ds:
            raise ValueError(f"the training set has no {v!r} variable (expected the eokit time-series schema)")
        if set(ds[v].dims) != set(dims):
            raise ValueError(f"variable {v!r} has dims {ds[v].dims}; expected {dims} (the eokit time-series schema)")
    dates = ds["date"].transpose("sample", "time").values
    if not np.issubdtype(dates.dtype, np.datetime64):
        raise ValueError(f"variable 'date' must hold datetime64 values (NaT where padded), got dtype {dates.dtype}")
    t = _days(dates)
    # each sample's acquisitions in time order (NaT padding skipped): a later date never precedes an earlier one
    prev = np.fmax.accumulate(np.where(np.isnan(t), -np.inf, t), axis=1)
    back = ~np.isnan(t[:, 1:]) & (t[:, 1:] < prev[:, :-1])
    if back.any():
        s, k = (int(v[0]) for v in np.nonzero(back))
        raise ValueError(
            f"variable 'date' of sample {s} is not in ascending order: time step {k + 1} "
            f"({str(dates[s, k + 1])[:10]}) comes after an acquisition on "
            f"{str(np.datetime64(int(prev[s, k] * 86400), 's'))[:10]}; expected dates sorted along "
            "'time' (padding at the end)"
        )


def gapfill(ds: xr.Dataset) -> xr.Dataset:
    """Return a copy whose flagged observations are linearly interpolated in time from clear ones per sample."""
    _check(ds)
    refl = ds["reflectance"].transpose("sample", "time", "band")
    flag = ds["flag"].transpose("sample", "time").values
    dates = ds["date"].transpose("sample", "time").values
    t = _days(dates)
    acquired = ~np.isnan(t)
    vals = refl.values
    clear = (flag == FLAG_CLEAR) & acquired & _finite(vals)
    new, fill = _fill_gaps(vals, np.nan_to_num(t), clear, acquired & ~clear)  # padding and cloud-only samples stay
    res = ds.copy()
    res["reflectance"] = (("sample", "time", "band"), _cast_like(new, vals.dtype))
    res["reflectance"].attrs = dict(ds["reflectance"].attrs)
    res["filled"] = (("sample", "time"), fill)
    res.attrs = {**ds.attrs, "gapfill": "linear in time between clear observations (flag 0); flags unchanged"}
    return res


def _timestamp(name: str, value: object) -> pd.Timestamp:
    try:
        out = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}={value!r} is not a date; expected e.g. '2018-01-01'") from exc
    if pd.isna(out):
        raise ValueError(f"{name}={value!r} is not a date; expected e.g. '2018-01-01'")
    return out


def _grid(lo: pd.Timestamp, hi: pd.Timestamp, every: object) -> pd.DatetimeIndex:
    """The date grid lo..hi every `every`; raise unless `every` is a positive pandas frequency string."""
    msg = f"every={every!r} is not a pandas frequency; expected a positive one such as '10D' or '1MS'"
    if not isinstance(every, str):
        raise ValueError(msg)
    try:
        offset = pd.tseries.frequencies.to_offset(every)
        if offset.n <= 0:
            raise ValueError(msg)
        return pd.date_range(lo.normalize(), hi, freq=offset)
    except (ValueError, TypeError, ZeroDivisionError) as exc:
        raise ValueError(msg) from exc


def resample(
    ds: xr.Dataset, every: str = "10D", start: str | np.datetime64 | None = None, end: str | np.datetime64 | None = None
) -> xr.Dataset:
    """Return the samples on a fixed date grid (start..end every `every`), interpolated from clear observations."""
    _check(ds)
    dates = ds["date"].transpose("sample", "time").values
    t = _days(dates)
    if np.isnan(t).all():
        raise ValueError("the training set has no acquisition dates (all NaT)")
    lo = _timestamp("start", start) if start is not None else pd.Timestamp(np.nanmin(dates))
    hi = _timestamp("end", end) if end is not None else pd.Timestamp(np.nanmax(dates))
    if hi < lo:
        raise ValueError(f"end {hi.date()} is before start {lo.date()}")
    grid = _grid(lo, hi, every)
    if len(grid) == 0:
        raise ValueError(f"no grid date between {lo} and {hi} every {every}")
    flag = ds["flag"].transpose("sample", "time").values
    vals = ds["reflectance"].transpose("sample", "time", "band").values
    clear = (flag == FLAG_CLEAR) & ~np.isnan(t) & _finite(vals)
    S = vals.shape[0]
    gq = _days(grid.values)
    tq = np.broadcast_to(gq, (S, len(grid)))
    out, inside, anyc = _interp_clear(vals, np.nan_to_num(t), clear, tq)
    new_flag = np.where(inside & anyc[:, None], FLAG_CLEAR, FLAG_NODATA).astype(np.uint8)
    res = ds.drop_vars(["reflectance", "flag", "date"] + [v for v in ("filled",) if v in ds]).drop_dims(
        "time", errors="ignore"
    )
    if not np.issubdtype(vals.dtype, np.integer):
        out[~anyc] = np.nan  # a sample without any clear observation has no value to give (flag 255)
    res["reflectance"] = (("sample", "time", "band"), _cast_like(out, vals.dtype))
    res["reflectance"].attrs = dict(ds["reflectance"].attrs)
    res["flag"] = (("sample", "time"), new_flag)
    res["date"] = (("sample", "time"), np.broadcast_to(grid.values.astype("datetime64[ns]"), (S, len(grid))).copy())
    res.attrs = {
        **ds.attrs,
        "resample": f"every {every} from {grid[0].date()} to {grid[-1].date()}; linear "
        "between clear observations, flag 255 outside the first/last clear observation",
    }
    order = ["reflectance", "flag", "date"] + [v for v in res.data_vars if v not in ("reflectance", "flag", "date")]
    return res[order]


def mean_by_class(ds: xr.Dataset, band: str | None = None) -> pd.DataFrame:
    """Return the mean of clear observations per class and date (columns date, label_name, variable, value).

    `band` None: NDVI from B4 and B8A (or B8) when both are there, else the first band.
    """
    _check(ds)
    if "label_name" not in ds.variables:
        raise ValueError("the training set has no 'label_name' variable; expected per-sample class names")
    bands = [str(b) for b in ds["band"].values] if "band" in ds.coords else []
    if not bands:
        raise ValueError("the training set has no 'band' coordinate naming its bands (e.g. B2..B12 or NDVI)")
    refl = ds["reflectance"].transpose("sample", "time", "band")
    if band is None and "B4" in bands and ("B8A" in bands or "B8" in bands):
        nir = refl.sel(band="B8A" if "B8A" in bands else "B8").values.astype(float)
        red = refl.sel(band="B4").values.astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            val, name = (nir - red) / (nir + red), "NDVI"
    else:
        name = band if band is not None else bands[0]
        if name not in bands:
            raise ValueError(f"band {name!r} not in the training set; bands are {bands}")
        val = refl.sel(band=name).values.astype(float)
    clear = ds["flag"].transpose("sample", "time").values == FLAG_CLEAR
    dates = ds["date"].transpose("sample", "time").values
    labels = np.broadcast_to(ds["label_name"].values.astype(str)[:, None], clear.shape)
    ok = clear & ~np.isnat(dates) & np.isfinite(val)
    df = pd.DataFrame({"date": dates[ok], "label_name": labels[ok], "value": val[ok]})
    out = df.groupby(["label_name", "date"], as_index=False)["value"].mean()
    out.insert(2, "variable", name)
    return out

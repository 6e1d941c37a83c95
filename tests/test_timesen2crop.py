"""eokit.datasets.timesen2crop: exact values from the CSVs, round trip, Zarr store, bad input."""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from badinput import refuses
from eokit.datasets import timesen2crop as ts
from eokit.schema import TIMESERIES_SCHEMA, TS2C_BANDS, check_schema
from generators import timesen2crop as gen


@pytest.fixture()
def tree(tmp_path):
    return gen.make_tree(tmp_path / "src", tiles={"33UVP": 6, "32TNT": 4}, n_classes=16, samples_per_class=2)


def test_open_values_equal_csv(tree):
    ds = ts.open(tree.parent)
    check_schema(ds, TIMESERIES_SCHEMA)
    assert ds.sizes == {"sample": 64, "time": 6, "band": 9}
    assert list(ds["band"].values) == TS2C_BANDS
    assert ds["reflectance"].dtype == np.int16 and ds["flag"].dtype == np.uint8
    for i in [0, 17, 40, 63]:
        src = ds["source_file"].values[i]
        tile, cls, _ = src.split("/")
        raw = np.loadtxt(tree / src, delimiter=",", skiprows=1, dtype=np.int64)
        n = raw.shape[0]
        assert ds["tile"].values[i] == tile and ds["label"].values[i] == int(cls)
        np.testing.assert_array_equal(ds["reflectance"].values[i, :n], raw[:, :9])
        np.testing.assert_array_equal(ds["flag"].values[i, :n], raw[:, 9])
        dates = (tree / tile / "dates.csv").read_text().split()[1:]
        assert [str(d)[:10].replace("-", "") for d in ds["date"].values[i, :n]] == dates
        assert (ds["flag"].values[i, n:] == 255).all() and np.isnat(ds["date"].values[i, n:]).all()
        assert (ds["reflectance"].values[i, n:] == 0).all()
    assert ds["label_name"].values[ds["label"].values == 12][0] == "Winter wheat"
    assert ds.attrs["skipped"] == []


def test_open_tiles_and_root_forms(tree):
    a = ts.open(tree, tiles=["32TNT"])
    assert set(a["tile"].values) == {"32TNT"} and a.sizes["time"] == 4
    with pytest.raises(FileNotFoundError, match="33XXX"):
        ts.open(tree, tiles=["33XXX"])


def test_write_round_trip(tree, tmp_path):
    ds = ts.open(tree)
    out = ts.write(ds, tmp_path / "copy")
    back = ts.open(out)
    assert back.drop_attrs().equals(ds.drop_attrs())
    assert (tree / "33UVP" / "dates.csv").read_text() == (out / "33UVP" / "dates.csv").read_text()
    with pytest.raises(FileExistsError):
        ts.write(ds, tmp_path / "copy")
    ts.write(ds.isel(sample=slice(0, 3)), tmp_path / "copy", overwrite=True)
    assert ts.open(out).sizes["sample"] == 3


def test_to_zarr_equals_tree_and_is_resumable(tree, tmp_path):
    ds = ts.open(tree)
    store = ts.to_zarr(tree, tmp_path / "s.zarr", chunks=10, scheduler="synchronous", progress=False)
    z = ts.open(store)
    assert z["reflectance"].chunks[0][0] == 10
    assert z.load().drop_attrs().equals(ds.drop_attrs())
    assert ts.open(store, tiles=["33UVP"]).sizes["sample"] == 32
    with pytest.raises(FileExistsError):
        ts.to_zarr(tree, store)
    # simulate an interrupted run: the 4th chunk task dies; 3 chunks (in whatever order dask ran them) are done
    shutil.rmtree(store)
    ts_partial = tmp_path / "r.zarr"
    orig = ts._chunk_arrays
    try:
        ts._chunk_arrays = _failing_after(orig, 3)
        with pytest.raises(RuntimeError, match="killed"):
            ts.to_zarr(tree, ts_partial, chunks=10, scheduler="synchronous", progress=False)
    finally:
        ts._chunk_arrays = orig
    assert not ts_partial.exists()  # nothing that looks complete
    assert (tmp_path / "r.zarr.partial").exists()
    assert len(list((tmp_path / "r.zarr.progress").glob("*.done"))) == 3
    with pytest.raises((ValueError, FileNotFoundError)):
        ts.open(tmp_path / "r.zarr.partial")
    calls = []

    def counting(*a, **k):
        calls.append(1)
        return orig(*a, **k)

    ts._chunk_arrays = counting
    try:
        ts.to_zarr(tree, ts_partial, chunks=10, scheduler="synchronous", progress=False)
    finally:
        ts._chunk_arrays = orig
    assert len(calls) == 7 - 3  # 7 chunks of 10 samples (64 in all); the 3 finished ones are not redone
    assert ts.open(ts_partial).load().drop_attrs().equals(ds.drop_attrs())
    assert not (tmp_path / "r.zarr.partial").exists() and not (tmp_path / "r.zarr.progress").exists()


def _failing_after(fn, n):
    count = [0]

    def wrapped(*a, **k):
        if count[0] >= n:
            raise RuntimeError("killed")
        count[0] += 1
        return fn(*a, **k)

    return wrapped


def test_to_zarr_in_parallel_processes(tree, tmp_path):
    store = ts.to_zarr(tree, tmp_path / "p.zarr", chunks=16, workers=2, scheduler="processes", progress=False)
    assert ts.open(store).load().drop_attrs().equals(ts.open(tree).drop_attrs())


def test_to_zarr_takes_every_scheduler_name_sync_and_threaded_included(tree, tmp_path):
    """The name "sync" (once a bare KeyError) and the other names of eokit._dask work."""
    ref = ts.open(tree).drop_attrs()
    for name in ("sync", "threaded", "single-threaded"):
        store = ts.to_zarr(tree, tmp_path / f"{name}.zarr", chunks=16, workers=2, scheduler=name, progress=False)
        assert ts.open(store).load().drop_attrs().equals(ref), name


def test_to_zarr_runs_on_a_distributed_address_and_client(tree, tmp_path):
    from distributed import Client, LocalCluster

    ref = ts.open(tree).drop_attrs()
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, protocol="tcp", host="127.0.0.1", dashboard_address=None
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        for i, scheduler in enumerate((cluster.scheduler_address, client)):
            store = ts.to_zarr(tree, tmp_path / f"d{i}.zarr", chunks=16, scheduler=scheduler, progress=True)
            assert ts.open(store).load().drop_attrs().equals(ref)


@pytest.mark.bad_input
def test_to_zarr_refuses_an_unknown_scheduler_before_any_work(tree, tmp_path):
    with refuses(ValueError, "scheduler", "'synch'", "did you mean 'sync'", "'processes'"):
        ts.to_zarr(tree, tmp_path / "bad.zarr", scheduler="synch", progress=False)
    assert not (tmp_path / "bad.zarr.partial").exists()


# ---------------------------------------------------------------------------------------------- bad input
def _bad(tree, tile="33UVP", cls="3", n="1"):
    return tree / tile / cls / f"{n}.csv"


def test_missing_dates(tree):
    (tree / "32TNT" / "dates.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"32TNT/dates.csv: missing"):
        ts.open(tree)
    with pytest.warns(UserWarning, match="skipped 1"):
        ds = ts.open(tree, on_error="skip")
    assert set(ds["tile"].values) == {"33UVP"} and "dates.csv" in ds.attrs["skipped"][0]


def test_empty_tile(tree):
    for d in (tree / "32TNT").iterdir():
        if d.is_dir():
            shutil.rmtree(d)
    with pytest.raises(ValueError, match=r"32TNT: empty tile"):
        ts.open(tree)


def test_skip_bad_files_reports_them(tree, tmp_path):
    p = _bad(tree)
    p.write_text(p.read_text().replace("B9,Flag", "B9,QA"))
    q = _bad(tree, tile="32TNT", cls="0", n="0")
    q.write_text(q.read_text() + "1,2,3,4,5,6,7,8,9,0\n")
    with pytest.warns(UserWarning, match="skipped 2"):
        ds = ts.open(tree, on_error="skip")
    assert ds.sizes["sample"] == 62
    assert "33UVP/3/1.csv" not in set(ds["source_file"].values)
    assert any("32TNT/0/0.csv: 5 data rows" in s for s in ds.attrs["skipped"])
    with pytest.warns(UserWarning, match="skipped 2"):
        store = ts.to_zarr(
            tree, tmp_path / "k.zarr", chunks=20, scheduler="synchronous", on_error="skip", progress=False
        )
    z = ts.open(store).load()
    assert z.drop_attrs().equals(ds.drop_attrs()) and len(z.attrs["skipped"]) == 2
    with pytest.raises(ValueError, match="32TNT/0/0.csv: 5 data rows"):
        ts.to_zarr(tree, tmp_path / "k2.zarr", progress=False, scheduler="synchronous")
    assert not (tmp_path / "k2.zarr").exists()


def test_not_a_tree(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "readme.txt").write_text("hi")
    with pytest.raises(FileNotFoundError, match="holds no tile folders"):
        ts.open(tmp_path / "x")


def test_zip_read_in_place(tmp_path):
    archive = gen.make_zip(
        tmp_path / "g",
        tmp_path / "TimeSen2Crop.zip",
        tiles={"33UVP": 5, "2019_33UVP": 4},
        n_classes=3,
        samples_per_class=2,
    )
    tree = ts.open(tmp_path / "g")
    z = ts.open(archive)
    assert z.drop_attrs().equals(tree.drop_attrs())
    assert z.attrs["source"].endswith("TimeSen2Crop.zip!TimeSen2Crop/")
    store = ts.to_zarr(archive, tmp_path / "z.zarr", chunks=5, workers=2, scheduler="processes", progress=False)
    assert ts.open(store).load().drop_attrs().equals(tree.drop_attrs())
    data = archive.read_bytes()
    (tmp_path / "cut.zip").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut.zip: not a readable zip archive"):
        ts.open(tmp_path / "cut.zip")


def test_crlf_and_missing_final_newline(tree):
    p = _bad(tree, cls="0", n="0")
    raw = p.read_text()
    p.write_bytes(raw.replace("\n", "\r\n").encode())
    q = _bad(tree, cls="1", n="0")
    q.write_text(q.read_text().rstrip("\n"))
    ds = ts.open(tree)
    i = list(ds["source_file"].values).index("33UVP/0/0.csv")
    expect = np.loadtxt(raw.splitlines()[1:], delimiter=",", dtype=np.int64)
    np.testing.assert_array_equal(ds["reflectance"].values[i, :6], expect[:, :9])
    assert ds.attrs["skipped"] == []


# ------------------------------------------------------------------------------- hostile sample CSVs
def _zip_tree(tree, archive):
    """Pack `tree` (the TimeSen2Crop folder) as the published TimeSen2Crop.zip, folder entries included."""
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(tree.rglob("*")):
            zf.write(p, p.relative_to(tree.parent).as_posix())
    return archive


@pytest.fixture(params=["folder", "zip"])
def source(request, tree, tmp_path):
    """Return a function giving what to open after `tree` was edited: the tree itself or its zip."""
    if request.param == "folder":
        return lambda: tree
    return lambda: _zip_tree(tree, tmp_path / "TimeSen2Crop.zip")


def _edit_lines(path, fn):
    lines = path.read_bytes().decode().split("\n")[:-1]
    path.write_bytes(("\n".join(fn(lines)) + "\n").encode())


def _field(line_no, col, value):
    def fn(lines):
        parts = lines[line_no - 1].split(",")
        parts[col] = value
        lines[line_no - 1] = ",".join(parts)
        return lines

    return fn


def _lines(fn):
    return fn


_RANGE = "-32768..32767"
_FLAG = "0..3"
_SAMPLE_CASES = {
    # values that do not fit: once read as 0 (int32 wrap) or as a wrapped flag
    "b2_4294967296_wraps_to_0": (_field(3, 1, "4294967296"), ["line 3", "column B2", _RANGE, "got 4294967296"]),
    "b5_below_int16": (_field(2, 4, "-40000"), ["line 2", "column B5", _RANGE]),
    "b9_just_above_int16": (_field(7, 8, "32768"), ["line 7", "column B9", _RANGE]),
    "b1_beyond_int64": (_field(4, 0, "9" * 25), ["line 4", "column B1", _RANGE]),
    "b3_beyond_int64_negative": (_field(4, 2, "-" + "9" * 25), ["line 4", "column B3", _RANGE]),
    "flag_4294967299_wraps_to_3": (_field(5, 9, "4294967299"), ["line 5", "column Flag", _FLAG]),
    "flag_4": (_field(3, 9, "4"), ["line 3", "column Flag", _FLAG, "cloud"]),
    "flag_negative": (_field(3, 9, "-1"), ["line 3", "column Flag", _FLAG]),
    # not an integer
    "float_12.5": (_field(3, 2, "12.5"), ["line 3", "column B3", "expected an integer", "'12.5'"]),
    "float_12.0": (_field(3, 2, "12.0"), ["line 3", "column B3", "expected an integer", "'12.0'"]),
    "text": (_field(4, 1, "x3"), ["line 4", "column B2", "expected an integer", "'x3'"]),
    "exponent": (_field(4, 1, "1e3"), ["line 4", "column B2", "expected an integer"]),
    "plus_sign": (_field(2, 0, "+12"), ["line 2", "column B1", "expected an integer"]),
    "space": (_field(2, 5, " 12"), ["line 2", "column B6", "expected an integer"]),
    "empty_field": (_field(6, 7, ""), ["line 6", "column B8", "expected an integer", "got ''"]),
    "double_minus": (_field(6, 7, "--5"), ["line 6", "column B8", "expected an integer"]),
    "bom_inside": (_field(3, 0, "\ufeff12"), ["line 3", "column B1", "expected an integer"]),
    "lone_cr": (_field(3, 3, "1\r2"), ["line 3", "column B4", "expected an integer"]),
    "nan": (_field(3, 3, "nan"), ["line 3", "column B4", "expected an integer"]),
    # columns and lines
    "too_few_columns": (
        _lines(lambda ls: ls[:2] + [ls[2].rsplit(",", 1)[0]] + ls[3:]),
        ["line 3", "expected 10 comma-separated fields", "got 9"],
    ),
    "too_many_columns": (
        _lines(lambda ls: ls[:2] + [ls[2] + ",0"] + ls[3:]),
        ["line 3", "expected 10 comma-separated fields", "got 11"],
    ),
    "semicolons": (
        _lines(lambda ls: ls[:1] + [x.replace(",", ";") for x in ls[1:]]),
        ["line 2", "expected 10 comma-separated fields", "got 1"],
    ),
    "blank_line_between_rows": (_lines(lambda ls: ls[:3] + [""] + ls[3:-1]), ["line 4", "blank line"]),
    "byte_turned_into_newline": (_lines(lambda ls: ls[:3] + ["", ls[3][1:]] + ls[4:]), ["line 4", "blank line"]),
    "fewer_rows_than_dates": (_lines(lambda ls: ls[:-1]), ["5 data rows", "lists 6 acquisitions"]),
    "more_rows_than_dates": (_lines(lambda ls: ls + ls[-1:]), ["7 data rows", "lists 6 acquisitions"]),
    "wrong_header": (
        _lines(lambda ls: [ls[0].replace("B9,Flag", "B9,QA")] + ls[1:]),
        ["line 1", "expected header", "B9,Flag", "B9,QA"],
    ),
    "header_lower_case": (_lines(lambda ls: [ls[0].lower()] + ls[1:]), ["line 1", "expected header"]),
    "no_header": (_lines(lambda ls: ls[1:]), ["line 1", "expected header"]),
    "header_twice": (_lines(lambda ls: ls[:1] + ls), ["line 2", "column B1", "expected an integer", "'B1'"]),
}


@pytest.mark.bad_input
@pytest.mark.parametrize("case", list(_SAMPLE_CASES))
def test_hostile_sample_csv_refused(case, tree, source):
    fn, names = _SAMPLE_CASES[case]
    _edit_lines(tree / "33UVP" / "3" / "1.csv", fn)
    with refuses(ValueError, "33UVP/3/1.csv", *names):
        ts.open(source())


@pytest.mark.bad_input
def test_empty_sample_csv_refused(tree, source):
    (tree / "33UVP" / "3" / "1.csv").write_bytes(b"")
    with refuses(ValueError, "33UVP/3/1.csv", "line 1", "expected header", "empty file"):
        ts.open(source())


@pytest.mark.bad_input
def test_to_zarr_refuses_overflow_and_leaves_no_store(tree, tmp_path):
    _edit_lines(tree / "32TNT" / "7" / "0.csv", _field(3, 1, "4294967296"))
    with refuses(ValueError, "32TNT/7/0.csv", "line 3", "column B2", _RANGE):
        ts.to_zarr(tree, tmp_path / "s.zarr", chunks=10, scheduler="synchronous", progress=False)
    assert not (tmp_path / "s.zarr").exists()


@pytest.mark.parametrize("batch", [1, 3, 7, 4096])
def test_batches_and_skipped_files_give_the_same_set_whatever_the_batch_size(tree, tmp_path, monkeypatch, batch):
    from eokit.datasets import _ts2c_tree

    expect = ts.open(tree)
    bad = _bad(tree)  # 33UVP/3/1.csv: a file in the middle of its tile's list, so later rows move up
    bad.write_text(bad.read_text().replace("B9,Flag", "B9,QA"))
    monkeypatch.setattr(_ts2c_tree, "_BATCH", batch)
    with pytest.warns(UserWarning, match="skipped 1"):
        got = ts.open(tree, on_error="skip")
    keep = expect["source_file"].values != "33UVP/3/1.csv"
    assert got.drop_attrs().equals(expect.isel(sample=keep).drop_attrs())
    with pytest.warns(UserWarning, match="skipped 1"):
        store = ts.to_zarr(
            tree, tmp_path / "b.zarr", chunks=9, scheduler="synchronous", on_error="skip", progress=False
        )
    assert ts.open(store).load().drop_attrs().equals(got.drop_attrs())


def test_skip_names_each_hostile_file(tree):
    _edit_lines(tree / "33UVP" / "3" / "1.csv", _field(3, 1, "4294967296"))
    _edit_lines(tree / "33UVP" / "5" / "0.csv", lambda ls: ls[:3] + [""] + ls[3:-1])
    with pytest.warns(UserWarning, match="skipped 2"):
        ds = ts.open(tree, on_error="skip")
    assert ds.sizes["sample"] == 62
    assert any("3/1.csv, line 3, column B2" in s for s in ds.attrs["skipped"])
    assert any("5/0.csv, line 4: blank line" in s for s in ds.attrs["skipped"])


# -------------------------------------------------------------------------------- hostile dates.csv
_DATES_CASES = {
    "day_30_february": (_lines(lambda ls: ls[:2] + ["20180230"] + ls[3:]), ["line 3", "not a valid date"]),
    "month_13": (_lines(lambda ls: ls[:2] + ["20181301"] + ls[3:]), ["line 3", "not a valid date", "YYYYMMDD"]),
    "not_ascending": (
        _lines(lambda ls: ls[:2] + [ls[3], ls[2]] + ls[4:]),
        ["line 4", "is before", "strictly increasing"],
    ),
    "duplicate": (_lines(lambda ls: ls[:3] + [ls[2]] + ls[4:]), ["line 4", "repeats", "no duplicates"]),
    "missing_header": (_lines(lambda ls: ls[1:]), ["line 1", "expected header 'acquisition_date'"]),
    "header_typo": (_lines(lambda ls: ["acquisition date"] + ls[1:]), ["line 1", "expected header"]),
    "blank_line": (_lines(lambda ls: ls[:2] + [""] + ls[2:]), ["line 3", "blank line"]),
    "seven_digits": (_lines(lambda ls: ls[:2] + [ls[2][1:]] + ls[3:]), ["line 3", "expected a date YYYYMMDD"]),
    "iso_dashes": (_lines(lambda ls: ls[:2] + ["2018-01-05"] + ls[3:]), ["line 3", "expected a date YYYYMMDD"]),
    "year_1": (_lines(lambda ls: ["acquisition_date", "00010101"] + ls[1:]), ["line 2", "outside the supported years"]),
    "no_dates": (_lines(lambda ls: ls[:1]), ["no acquisition dates", "YYYYMMDD"]),
}


@pytest.mark.bad_input
@pytest.mark.parametrize("case", list(_DATES_CASES))
def test_hostile_dates_csv_refused(case, tree, source):
    fn, names = _DATES_CASES[case]
    _edit_lines(tree / "32TNT" / "dates.csv", fn)
    with refuses(ValueError, "32TNT/dates.csv", *names):
        ts.open(source())


# ------------------------------------------------------------------------------ hostile class folders
@pytest.mark.bad_input
@pytest.mark.parametrize("name", ["00", "01", "16", "abc", "-1", "+1", "1 "])
def test_class_folder_not_a_class_id(name, tree, source):
    shutil.copytree(tree / "33UVP" / "2", tree / "33UVP" / name)
    with refuses(ValueError, f"33UVP/{name}", f"class folder {name!r}", "0..15"):
        ts.open(source())


@pytest.mark.bad_input
def test_empty_class_folder_not_a_class_id(tree, source):
    (tree / "33UVP" / "abc").mkdir()
    with refuses(ValueError, "33UVP/abc", "class folder 'abc'", "0..15"):
        ts.open(source())


def test_class_folder_outside_range_skipped(tree, source):
    shutil.copytree(tree / "33UVP" / "2", tree / "33UVP" / "00")
    with pytest.warns(UserWarning, match="class folder '00'"):
        ds = ts.open(source(), on_error="skip")
    assert ds.sizes["sample"] == 64 and (ds["label"].values == 0).sum() == 4  # '00' not merged into class 0


# --------------------------------------------------------------------- variants other producers write
def test_bom_crlf_and_trailing_lines_read_as_published(tree, source):
    """Excel's UTF-8 CSV (BOM + CRLF), a missing or doubled final newline and leading zeros keep every value."""
    expect = ts.open(tree).drop_attrs()
    p = tree / "33UVP" / "0" / "0.csv"
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes().replace(b"\n", b"\r\n"))
    d = tree / "32TNT" / "dates.csv"
    d.write_bytes(b"\xef\xbb\xbf" + d.read_bytes().replace(b"\n", b"\r\n"))
    q = tree / "33UVP" / "1" / "0.csv"
    q.write_bytes(q.read_bytes() + b"\n\n")
    r = tree / "33UVP" / "1" / "1.csv"
    r.write_bytes(r.read_bytes().rstrip(b"\n"))
    (tree / "33UVP" / "dates.csv").write_bytes(b"\xef\xbb\xbf" + (tree / "33UVP" / "dates.csv").read_bytes())
    z = tree / "33UVP" / "2" / "0.csv"
    _edit_lines(
        z,
        lambda ls: (
            ls[:1] + [",".join(("000" + v) if not v.startswith("-") else v for v in x.split(",")) for x in ls[1:]]
        ),
    )
    got = ts.open(source())
    assert got.attrs["skipped"] == []
    assert got.drop_attrs().equals(expect)


def test_bom_and_crlf_stay_on_the_fast_path():
    rows = gen.random_rows(np.random.default_rng(1), 4)
    for kw in ({}, {"bom": True}, {"crlf": True}, {"bom": True, "crlf": True}, {"final_newline": False}):
        out, ok = ts._fast_parse([gen.sample_csv(rows, **kw)] * 3, 4)
        assert ok.all(), kw
        np.testing.assert_array_equal(out, np.stack([rows] * 3))


@pytest.mark.parametrize(
    "field",
    [b"", b"-", b"1-2", b"--1", b"-32769", b"32768", b"99999999999999999999", b"0x1F", b"+5", b" 5", b'"5"'],
)
def test_fast_path_leaves_every_non_int16_field_to_the_exact_parser(field):
    rows = gen.random_rows(np.random.default_rng(2), 3)
    good = gen.sample_csv(rows)
    lines = good.split(b"\n")
    parts = lines[2].split(b",")
    parts[4] = field
    bad = b"\n".join(lines[:2] + [b",".join(parts)] + lines[3:])
    out, ok = ts._fast_parse([good, bad, good], 3)
    assert ok.tolist() == [True, False, True]
    np.testing.assert_array_equal(out[[0, 2]], np.stack([rows] * 2))
    with pytest.raises(ValueError, match="line 3"):
        ts._parse_one("bad.csv", bad, 3)


def test_fast_path_reads_leading_zeros_and_minus_zero_as_the_exact_parser():
    rows = gen.random_rows(np.random.default_rng(3), 2)
    lines = gen.sample_csv(rows).split(b"\n")
    parts = lines[1].split(b",")
    parts[0], parts[1] = b"-0", b"00042"
    text = b"\n".join([lines[0], b",".join(parts)] + lines[2:])
    got, ok = ts._fast_parse([text], 2)
    assert ok.all()
    np.testing.assert_array_equal(got[0], ts._parse_one("x.csv", text, 2))
    assert got[0, 0, 0] == 0 and got[0, 0, 1] == 42


# ------------------------------------------------------------------- property tests: mutations of valid files
# A mutation either keeps every value (BOM, CRLF, a final newline, blank lines after the last row) or must be
# refused naming the file; it must never yield other values. Mutations that make another VALID file with other
# values (a digit changed, a '-' put in front of a number) are not faults a parser can see and are not drawn.
_PROPS = settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
_NOT_VALUE = b",\n\r .+eExX\t\x00\xef\xbb\xbf\xff;"  # bytes that are neither a digit nor '-'


def _mut_replace(b, d):
    i = d.draw(st.integers(0, len(b) - 1))
    new = d.draw(st.sampled_from(list(_NOT_VALUE) + [ord("-")]))
    if new == ord("-") and chr(b[i]).isdigit():
        return b  # '-' over a leading digit can make another valid number
    return b[:i] + bytes([new]) + b[i + 1 :]


def _mut_insert(b, d):
    i = d.draw(st.integers(0, len(b)))
    return b[:i] + bytes([d.draw(st.sampled_from(list(_NOT_VALUE)))]) + b[i:]


def _mut_delete(b, d):
    at = [i for i, c in enumerate(b) if not chr(c).isdigit() and c != ord("-")]
    i = d.draw(st.sampled_from(at))
    return b[:i] + b[i + 1 :]


def _mut_blank_line(b, d):
    at = [i + 1 for i, c in enumerate(b) if c == ord("\n")]
    i = d.draw(st.sampled_from(at))
    return b[:i] + d.draw(st.sampled_from([b"\n", b"\r\n"])) + b[i:]


def _mut_byte_to_newline(b, d):  # the reported fault: a byte turned into LF (1505 -> blank line + 505)
    starts = [i + 1 for i, c in enumerate(b[:-1]) if c == ord("\n")]
    i = d.draw(st.sampled_from(starts + [d.draw(st.integers(0, len(b) - 1))]))
    return b[:i] + b"\n" + b[i + 1 :]


def _lines_of(b):
    return b.split(b"\n")


def _mut_field(b, d, values):
    ls = _lines_of(b)
    li = d.draw(st.integers(1, len(ls) - 2))
    parts = ls[li].split(b",")
    ci = d.draw(st.integers(0, len(parts) - 1))
    parts[ci] = d.draw(st.sampled_from(values(ci)))
    ls[li] = b",".join(parts)
    return b"\n".join(ls)


def _bad_value(ci):
    if ci == 9:
        return [b"4", b"-1", b"256", b"4294967296", b"4294967299", b"18446744073709551619", b"1.0", b""]
    return [
        b"32768",
        b"-32769",
        b"65536",
        b"4294967296",
        b"4294967295",
        b"9" * 25,
        b"-" + b"9" * 25,
        b"12.5",
        b"12.0",
        b"1e3",
        b"0x10",
        b"+1",
        b" 1",
        b"",
        b"--1",
        b"nan",
    ]


def _mut_columns(b, d):
    ls = _lines_of(b)
    li = d.draw(st.integers(1, len(ls) - 2))
    parts = ls[li].split(b",")
    if d.draw(st.booleans()):
        del parts[d.draw(st.integers(0, len(parts) - 1))]
    else:
        parts.insert(d.draw(st.integers(0, len(parts))), b"0")
    ls[li] = b",".join(parts)
    return b"\n".join(ls)


def _mut_rows(b, d):
    ls = _lines_of(b)
    li = d.draw(st.integers(1, len(ls) - 2))
    if d.draw(st.booleans()):
        del ls[li]
    else:
        ls.insert(li, ls[li])
    return b"\n".join(ls)


def _mut_header(b, d):
    ls = _lines_of(b)
    ls[0] = d.draw(
        st.sampled_from(
            [ls[0].lower(), ls[0].upper(), ls[0] + b" ", b" " + ls[0], ls[0][:-1], ls[0].replace(b",", b";")]
        )
    )
    return b"\n".join(ls)


def _mut_keep(b, d):  # variants that must read as the same values
    how = d.draw(
        st.sampled_from(["bom", "crlf", "bom+crlf", "no_final_newline", "trailing_blank_lines", "leading_zeros"])
    )
    if how == "bom":
        return b"\xef\xbb\xbf" + b
    if how == "crlf":
        return b.replace(b"\n", b"\r\n")
    if how == "bom+crlf":
        return b"\xef\xbb\xbf" + b.replace(b"\n", b"\r\n")
    if how == "no_final_newline":
        return b.rstrip(b"\n")
    if how == "trailing_blank_lines":
        return b + b"\n" * d.draw(st.integers(1, 3))
    ls = _lines_of(b)  # leading zeros: the same number
    li = d.draw(st.integers(1, len(ls) - 2))
    parts = ls[li].split(b",")
    ci = d.draw(st.integers(0, len(parts) - 1))
    zeros = b"0" * d.draw(st.integers(1, 12))
    v = parts[ci]
    parts[ci] = b"-" + zeros + v[1:] if v.startswith(b"-") else zeros + v
    ls[li] = b",".join(parts)
    return b"\n".join(ls)


_CSV_MUTATIONS = {
    "replace_byte": _mut_replace,
    "insert_byte": _mut_insert,
    "delete_byte": _mut_delete,
    "blank_line": _mut_blank_line,
    "byte_to_newline": _mut_byte_to_newline,
    "bad_value": lambda b, d: _mut_field(b, d, _bad_value),
    "columns": _mut_columns,
    "rows": _mut_rows,
    "header": _mut_header,
    "keep": _mut_keep,
}


@_PROPS
@given(
    seed=st.integers(0, 2**32 - 1),
    n_dates=st.integers(1, 6),
    kind=st.sampled_from(list(_CSV_MUTATIONS)),
    neg=st.booleans(),
    data=st.data(),
)
def test_property_sample_csv_mutation_same_values_or_refused(seed, n_dates, kind, neg, data):
    rng = np.random.default_rng(seed)
    rows = gen.random_rows(rng, n_dates)
    if not neg:
        rows[:, :9] = np.abs(rows[:, :9]) // 3
    valid = gen.sample_csv(rows)
    mutated = _CSV_MUTATIONS[kind](valid, data)
    others = [gen.sample_csv(gen.random_rows(rng, n_dates)) for _ in range(2)]
    names = ["a.csv", "mutated.csv", "b.csv"]
    outcomes = []
    for parse in ("bulk", "one"):
        try:
            if parse == "bulk":
                got = ts._parse_many([others[0], mutated, others[1]], names.__getitem__, n_dates, "raise", [])[0][1]
            else:
                got = ts._parse_one("mutated.csv", mutated, n_dates)
        except ValueError as e:
            assert "mutated.csv" in str(e), str(e)
            outcomes.append("refused")
            continue
        np.testing.assert_array_equal(got, rows, err_msg=f"{kind}: {mutated!r} read as other values")
        outcomes.append("same")
    assert outcomes[0] == outcomes[1]  # the bulk path and the exact per-file parser agree
    if kind == "keep":
        assert outcomes == ["same", "same"]


def _dates_bytes(rng, n):
    days = np.sort(rng.choice(np.arange(0, 4000), size=n, replace=False))
    dates = (np.datetime64("2015-06-23") + days).astype("datetime64[D]")
    return [str(x).replace("-", "") for x in dates], dates.astype("datetime64[ns]")


def _mut_dates_lines(b, d):
    ls = _lines_of(b)
    body = ls[1:-1]
    how = d.draw(st.sampled_from(["swap", "duplicate", "dashes", "drop_header", "header_case", "short"]))
    i = d.draw(st.integers(0, len(body) - 1))
    if how == "swap" and len(body) > 1:
        j = (i + 1) % len(body)
        body[i], body[j] = body[j], body[i]
    elif how == "duplicate":
        body.insert(i, body[i])
    elif how == "dashes":
        body[i] = body[i][:4] + b"-" + body[i][4:6] + b"-" + body[i][6:]
    elif how == "short":
        body[i] = body[i][:-1]
    elif how == "header_case":
        ls[0] = ls[0].upper()
    else:
        return b"\n".join(body) + b"\n"
    return b"\n".join([ls[0], *body, b""])


_DATES_MUTATIONS = {
    "replace_byte": _mut_replace,
    "insert_byte": _mut_insert,
    "delete_byte": _mut_delete,
    "blank_line": _mut_blank_line,
    "byte_to_newline": _mut_byte_to_newline,
    "lines": _mut_dates_lines,
    "keep": lambda b, d: d.draw(
        st.sampled_from(
            [
                b"\xef\xbb\xbf" + b,
                b.replace(b"\n", b"\r\n"),
                b.rstrip(b"\n"),
                b + b"\n\n",
                b"\xef\xbb\xbf" + b.replace(b"\n", b"\r\n"),
            ]
        )
    ),
}


@_PROPS
@given(
    seed=st.integers(0, 2**32 - 1), n=st.integers(1, 8), kind=st.sampled_from(list(_DATES_MUTATIONS)), data=st.data()
)
def test_property_dates_csv_mutation_same_dates_or_refused(seed, n, kind, data):
    text, dates = _dates_bytes(np.random.default_rng(seed), n)
    valid = gen.dates_csv(text)
    np.testing.assert_array_equal(ts._parse_dates("t/dates.csv", valid), dates)
    mutated = _DATES_MUTATIONS[kind](valid, data)
    try:
        got = ts._parse_dates("t/dates.csv", mutated)
    except ValueError as e:
        assert "t/dates.csv" in str(e) and kind != "keep", str(e)
        return
    np.testing.assert_array_equal(got, dates, err_msg=f"{kind}: {mutated!r} read as other dates")


def test_store_chunk_reader_reads_what_zarr_reads(tree, tmp_path):
    import json
    from pathlib import Path

    import xarray as xr
    import zarr

    from eokit.datasets._ts2c_store import _ChunkFiles

    ds = ts.open(tree)
    store = ts._dataset_to_store(ds, tmp_path / "s.zarr", chunk=7)  # 64 samples: the last chunk partial
    opened = ts.open(store)
    assert opened["reflectance"].data.name.startswith("ts2c-")  # the chunk-file path, not zarr's
    plain = xr.open_zarr(store)
    for v in ("reflectance", "flag", "label", "source_file"):
        np.testing.assert_array_equal(opened[v].values, plain[v].values)
    meta = json.loads((Path(store) / ".zmetadata").read_text())["metadata"]
    arr = _ChunkFiles(Path(store) / "reflectance", meta["reflectance/.zarray"])
    z = zarr.open_array(Path(store) / "reflectance", mode="r")
    for key in [(slice(0, 64),), (slice(3, 12),), (slice(60, 64),), (slice(5, 6), slice(None), slice(2, 4))]:
        np.testing.assert_array_equal(arr[key], z[key])
    np.testing.assert_array_equal(arr[(slice(1, 40, 3),)], z[1:40:3])
    # uncompressed chunks are read straight into the output; a missing chunk holds the fill value
    raw = zarr.create_array(
        tmp_path / "raw.zarr", shape=(10, 3), chunks=(4, 3), dtype="i2", compressors=None, fill_value=-5, zarr_format=2
    )
    raw[:] = np.arange(30, dtype="i2").reshape(10, 3)
    (tmp_path / "raw.zarr" / "1.0").unlink()
    m = json.loads((tmp_path / "raw.zarr" / ".zarray").read_text())
    want = np.arange(30, dtype="i2").reshape(10, 3)
    want[4:8] = -5
    np.testing.assert_array_equal(_ChunkFiles(tmp_path / "raw.zarr", m)[(slice(0, 10),)], want)

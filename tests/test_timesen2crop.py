"""eokit.datasets.timesen2crop: exact values from the CSVs, round trip, Zarr store, bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

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


# ---------------------------------------------------------------------------------------------- bad input
def _bad(tree, tile="33UVP", cls="3", n="1"):
    return tree / tile / cls / f"{n}.csv"


def test_wrong_header(tree):
    p = _bad(tree)
    p.write_text(p.read_text().replace("B9,Flag", "B9,QA"))
    with pytest.raises(ValueError, match=r"3/1\.csv, line 1: expected header"):
        ts.open(tree)


def test_row_count_differs_from_dates(tree):
    p = _bad(tree)
    p.write_text("\n".join(p.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(ValueError, match=r"3/1\.csv: 5 data rows, but the tile's dates.csv lists 6"):
        ts.open(tree)


def test_non_numeric_value(tree):
    p = _bad(tree)
    lines = p.read_text().splitlines()
    lines[3] = "12,x3," + lines[3].split(",", 2)[2]
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"3/1\.csv, line 4, field B2: expected an integer, got 'x3'"):
        ts.open(tree)


def test_bad_flag(tree):
    p = _bad(tree)
    lines = p.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",7"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"line 3, field Flag: expected 0, 1, 2 or 3, got 7"):
        ts.open(tree)


def test_missing_dates(tree):
    (tree / "32TNT" / "dates.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"32TNT/dates.csv: missing"):
        ts.open(tree)
    with pytest.warns(UserWarning, match="skipped 1"):
        ds = ts.open(tree, on_error="skip")
    assert set(ds["tile"].values) == {"33UVP"} and "dates.csv" in ds.attrs["skipped"][0]


def test_class_folder_outside_range(tree):
    shutil.copytree(tree / "33UVP" / "2", tree / "33UVP" / "16")
    with pytest.raises(ValueError, match=r"33UVP/16: class folder '16' is not a class id"):
        ts.open(tree)
    with pytest.warns(UserWarning):
        ds = ts.open(tree, on_error="skip")
    assert ds.sizes["sample"] == 64


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
        store = ts.to_zarr(tree, tmp_path / "k.zarr", chunks=20, scheduler="synchronous", on_error="skip",
                           progress=False)
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
    archive = gen.make_zip(tmp_path / "g", tmp_path / "TimeSen2Crop.zip", tiles={"33UVP": 5, "2019_33UVP": 4},
                           n_classes=3, samples_per_class=2)
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

"""eokit.sampling: stratified weak-label sampling from a cube + crop map, writers, and notebook 01."""

from __future__ import annotations

import ast
import json
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from badinput import refuses, warns_naming
from eokit import cube, sampling
from eokit.schema import TIMESERIES_SCHEMA, check_schema
from generators import s2

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sampling")
    truth = s2.write_geotiff_stack(tmp / "stack", shape=(48, 64))
    s2.write_fields(
        tmp / "fields.gpkg",
        shape=(48, 64),
        codes=("WINTERWEICHEN", "KOERNERMAIS", "DAUERWIESE", "SOJABOHNEN", "KUEMMEL"),
    )
    return tmp, truth


def _open(case, chunks=16):
    return cube.open(case[0] / "stack", chunks=chunks)


def _rc(ds):
    rows = np.round((s2.ORIGIN[1] - ds["y"].values) / 10 - 0.5).astype(int)
    cols = np.round((ds["x"].values - s2.ORIGIN[0]) / 10 - 0.5).astype(int)
    return rows, cols


def test_allocate_strategies():
    pri = {0: 0.7, 1: 0.2, 2: 0.1, 3: 0.0}
    assert sampling.allocate(pri, 100) == {0: 70, 1: 20, 2: 10, 3: 0}
    assert sampling.allocate(pri, 100, min_per_class=15) == {0: 70, 1: 20, 2: 15, 3: 0}
    assert sampling.allocate(pri, 100, "balanced") == {0: 34, 1: 33, 2: 33, 3: 0}
    capped = sampling.allocate(pri, 100, "capped", cap_per_class=50)
    assert capped[0] == 50 and sum(capped.values()) == 100 and capped[1] > 20 and abs(capped[1] - 2 * capped[2]) <= 1
    assert sampling.allocate(pri, 100, cap_per_class=30)[0] == 30
    with pytest.raises(ValueError, match="needs cap_per_class"):
        sampling.allocate(pri, 100, "capped")
    with pytest.raises(ValueError, match="strategy must be one of"):
        sampling.allocate(pri, 100, "random")


def test_training_set_schema_values_and_report(case):
    tmp, truth = case
    ds = sampling.make_training_set(
        _open(case), tmp / "fields.gpkg", "crop_code", 120, mapping="invekos", min_per_class=3, progress=False
    )
    check_schema(ds, TIMESERIES_SCHEMA, "training set")
    assert ds["reflectance"].dtype == np.int16 and ds.sizes["time"] == len(truth["dates"])
    assert {"x", "y", "field_id"} <= set(ds.data_vars) and ds.attrs["crs"] == "EPSG:32633"
    rows, cols = _rc(ds)
    np.testing.assert_array_equal(ds["reflectance"].values, np.moveaxis(truth["reflectance"][:, :, rows, cols], -1, 0))
    flags = cube.scl_to_flag(truth["scl"])[:, rows, cols].T
    np.testing.assert_array_equal(ds["flag"].values, flags)
    assert (ds["date"].values[0] == _open(case)["time"].values).all()
    # no duplicates, each sample inside its field, at least one pixel from the boundary (erosion 1)
    assert len(set(zip(rows, cols, strict=True))) == ds.sizes["sample"]
    fields = gpd.read_file(tmp / "fields.gpkg").to_crs("EPSG:32633").set_index("field_id")
    for fid, x, y in zip(ds["field_id"].values, ds["x"].values, ds["y"].values, strict=True):
        assert fields.geometry.loc[fid].buffer(-10 + 1e-6).contains(gpd.points_from_xy([x], [y])[0])
    # no sample is cloudier than the default threshold
    assert ((ds["flag"].values != 0).mean(axis=1) <= 0.5).all()
    rep = sampling.sampling_report(ds)
    assert list(rep.columns) == [
        "label_name",
        "pixels",
        "prior",
        "asked",
        "available",
        "sampled",
        "sampled_share",
        "shortfall",
    ]
    assert abs(rep["prior"].sum() - 1) < 1e-9 and rep["sampled"].sum() == ds.sizes["sample"]
    assert (rep["sampled"] == np.bincount(ds["label"].values, minlength=16)[rep.index]).all()
    big = rep["prior"] > 0.1
    np.testing.assert_allclose(rep.loc[big, "sampled_share"], rep.loc[big, "prior"], atol=0.03)
    assert json.loads(ds.attrs["class_priors"]).keys() == set(rep["label_name"])


def test_same_seed_same_samples_and_options(case):
    tmp, _ = case
    kw = dict(mapping="invekos", progress=False, min_per_class=0)
    a = sampling.make_training_set(_open(case), tmp / "fields.gpkg", "crop_code", 80, seed=3, **kw)
    b = sampling.make_training_set(_open(case), tmp / "fields.gpkg", "crop_code", 80, seed=3, **kw)
    c = sampling.make_training_set(_open(case), tmp / "fields.gpkg", "crop_code", 80, seed=4, **kw)
    assert a.identical(b)
    assert not np.array_equal(a["x"].values, c["x"].values)
    k = sampling.make_training_set(_open(case), tmp / "fields.gpkg", "crop_code", 80, max_per_field=2, **kw)
    assert np.bincount(k["field_id"].values).max() <= 2
    clear = sampling.make_training_set(_open(case), tmp / "fields.gpkg", "crop_code", 40, max_cloud_fraction=0.0, **kw)
    assert (clear["flag"].values == 0).all()
    bal = sampling.make_training_set(_open(case), tmp / "fields.gpkg", "crop_code", 60, strategy="balanced", **kw)
    counts = np.bincount(bal["label"].values)
    assert set(counts[counts > 0]) == {12}


def test_shortfall_is_warned_and_reported(case):
    tmp, _ = case
    with pytest.warns(UserWarning, match=r"samples asked, only \d+ eligible pixels"):
        ds = sampling.make_training_set(
            _open(case), tmp / "fields.gpkg", "crop_code", 2000, mapping="invekos", progress=False, max_per_field=3
        )
    rep = sampling.sampling_report(ds)
    assert (rep["shortfall"] > 0).any()
    assert (rep["sampled"] == rep[["asked", "available"]].min(axis=1)).all()
    assert json.loads(ds.attrs["sampling_warnings"])


def test_bad_inputs(case, tmp_path):
    tmp, _ = case
    c = _open(case)
    far = gpd.GeoDataFrame({"crop_code": ["KOERNERMAIS"]}, geometry=[box(10, 10, 20, 20)], crs="EPSG:4326")
    with pytest.raises(ValueError, match="no polygon of the polygons overlaps the cube"):
        sampling.make_training_set(c, far, "crop_code", 10, mapping="invekos", progress=False)
    with pytest.raises(ValueError, match="label column 'kultur' not found"):
        sampling.make_training_set(c, tmp / "fields.gpkg", "kultur", 10, progress=False)
    raw = gpd.read_file(tmp / "fields.gpkg")
    raw.loc[0, "crop_code"] = "MONDKORN"
    with pytest.raises(ValueError, match="codes missing from the mapping: 'MONDKORN'"):
        sampling.make_training_set(c, raw, "crop_code", 10, mapping="invekos", progress=False)
    nocrs = c.drop_vars("spatial_ref")
    for v in ("reflectance", "flag"):
        nocrs[v].attrs.pop("grid_mapping", None)
    with pytest.raises(ValueError, match="the cube has no CRS"):
        sampling.make_training_set(nocrs, tmp / "fields.gpkg", "crop_code", 10, mapping="invekos", progress=False)
    with pytest.raises(ValueError, match="max_cloud_fraction"):
        sampling.make_training_set(c, tmp / "fields.gpkg", "crop_code", 10, max_cloud_fraction=2, progress=False)


def test_runs_on_a_distributed_scheduler(case):
    from distributed import Client, LocalCluster

    tmp, _ = case
    local = sampling.make_training_set(
        _open(case), tmp / "fields.gpkg", "crop_code", 50, mapping="invekos", progress=False
    )
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        remote = sampling.make_training_set(
            _open(case),
            tmp / "fields.gpkg",
            "crop_code",
            50,
            mapping="invekos",
            scheduler=cluster.scheduler_address,
            progress=True,
        )
        with Client(cluster) as client:
            again = sampling.make_training_set(
                _open(case), tmp / "fields.gpkg", "crop_code", 50, mapping="invekos", scheduler=client, progress=False
            )
    assert local.identical(remote) and local.identical(again)


def test_writers(case, tmp_path):
    tmp, _ = case
    ds = sampling.make_training_set(
        _open(case), tmp / "fields.gpkg", "crop_code", 40, mapping="invekos", progress=False, tile="33UVP"
    )
    store = sampling.write_zarr(ds, tmp_path / "out" / "trainingset.zarr")
    back = xr.open_zarr(store).load()
    for v in ds.variables:
        np.testing.assert_array_equal(back[v].values, ds[v].values)
    assert back.attrs["crs"] == ds.attrs["crs"]
    with pytest.raises(FileExistsError):
        sampling.write_zarr(ds, store)
    sampling.write_zarr(ds.isel(sample=slice(0, 5)), store, overwrite=True)
    assert xr.open_zarr(store).sizes["sample"] == 5
    assert [p.name for p in store.parent.iterdir()] == ["trainingset.zarr"]  # no temporary left over

    pts = sampling.write_points(ds, tmp_path / "out" / "samples.gpkg")
    g = gpd.read_file(pts)
    assert g.crs.to_epsg() == 32633 and len(g) == ds.sizes["sample"]
    np.testing.assert_allclose(g.geometry.x, ds["x"].values)
    assert g["label_name"].tolist() == ds["label_name"].values.tolist()
    with pytest.raises(FileExistsError):
        sampling.write_points(ds, pts)


def test_timesen2crop_layout_round_trip(case, tmp_path):
    from eokit.datasets import timesen2crop

    tmp, _ = case
    ds = sampling.make_training_set(
        _open(case), tmp / "fields.gpkg", "crop_code", 30, mapping="invekos", progress=False, tile="33UVP"
    )
    flag = ds["flag"].values.copy()
    flag[0, 1] = 255  # SCL "no data" inside an acquisition (the sample may hold others already)
    ds["flag"] = (("sample", "time"), flag)
    with pytest.warns(UserWarning, match=f"{int((flag == 255).sum())} observations flagged 255"):
        root = sampling.write_timesen2crop(ds, tmp_path / "ts2c")
    assert (root / "33UVP" / "dates.csv").exists()
    back = timesen2crop.open(root)
    assert back.sizes["sample"] == ds.sizes["sample"]

    def key(d):
        r, lab = d["reflectance"].values, d["label"].values
        return sorted(range(len(lab)), key=lambda i: (lab[i], r[i].astype(np.int64).tolist()))

    a, b = ds.isel(sample=key(ds)), back.isel(sample=key(back))
    np.testing.assert_array_equal(a["reflectance"].values, b["reflectance"].values)
    np.testing.assert_array_equal(a["label"].values, b["label"].values)
    np.testing.assert_array_equal(np.where(a["flag"].values == 255, 1, a["flag"].values), b["flag"].values)
    np.testing.assert_array_equal(a["date"].values.astype("datetime64[D]"), b["date"].values.astype("datetime64[D]"))
    untiled = ds.assign(tile=("sample", np.full(ds.sizes["sample"], "")))
    with pytest.raises(ValueError, match="tile"):
        sampling.write_timesen2crop(untiled, tmp_path / "ts2c_b")


def test_bundled_sample_and_slovenia():
    s2stack = ROOT / "data" / "sample" / "s2stack"
    slo = ROOT / "data" / "sample" / "slovenia"
    if not (s2stack / "fields.gpkg").exists() or not (slo / "stack").exists():
        pytest.fail("bundled sample data missing: run scripts/make_sample_data.py")
    ds = sampling.make_training_set(
        s2stack, s2stack / "fields.gpkg", "crop_code", 300, mapping="invekos", progress=False
    )
    assert ds.sizes["band"] == 9 and ds.attrs["crs"] == "EPSG:32633"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # class 1 is too small for its share (LULC.tif is skipped quietly)
        c = cube.open(slo / "stack")
        sl = sampling.make_training_set(c, slo / "lulc_polygons.gpkg", "LULC_ID", 200, progress=False)
    rep = sampling.sampling_report(sl)
    # the polygons' pixel counts reproduce the published raster lulc.npy
    lulc = np.load(slo / "lulc.npy")[..., 0]
    ids, n = np.unique(lulc, return_counts=True)
    assert dict(zip(rep.index, rep["pixels"], strict=True)) == dict(zip(ids.tolist(), n.tolist(), strict=True))
    assert sl["reflectance"].dtype == np.float32 and list(sl["band"].values) == ["NDVI"]
    assert rep.loc[2, "label_name"] == "forest"


@pytest.mark.notebooks
def test_notebook_01_runs_on_slovenia(tmp_path):
    import papermill as pm

    nb = ROOT / "notebooks" / "01_training_set_food_security.ipynb"
    out = tmp_path / "nbout"
    pm.execute_notebook(
        str(nb),
        str(tmp_path / "01.ipynb"),
        cwd=str(nb.parent),
        progress_bar=False,
        parameters={
            "cube": "../data/sample/slovenia/stack",
            "polygons": "../data/sample/slovenia/lulc_polygons.gpkg",
            "label_column": "LULC_ID",
            "mapping": None,
            "quick": True,
            "output": str(out),
        },
    )
    ts = xr.open_zarr(out / "trainingset.zarr")
    assert ts.sizes["band"] == 1 and ts.sizes["sample"] > 0
    assert (out / "trainingset_points.gpkg").exists()
    assert any((out / "figures").glob("*.png"))


def test_samples_from_safe_products(tmp_path):
    p0, t0 = s2.write_safe(tmp_path / "L2A", date="20180405", shape10=(32, 40))
    s2.write_safe(tmp_path / "L2A", date="20180415", shape10=(32, 40), seed=1)
    s2.write_fields(tmp_path / "f.gpkg", shape=(32, 40), overlap=False)
    c = cube.open(tmp_path / "L2A", chunks=16)
    ds = sampling.make_training_set(
        c,
        tmp_path / "f.gpkg",
        "crop_code",
        30,
        mapping="invekos",
        min_per_class=0,
        max_cloud_fraction=1.0,
        erosion=0,
        progress=False,
    )
    assert ds["reflectance"].dtype == np.int16 and list(ds["band"].values)[:3] == ["B2", "B3", "B4"]
    rows, cols = _rc(ds)
    np.testing.assert_array_equal(ds["reflectance"].values[:, 0, 0], t0["bands10"]["B02"][rows, cols])
    np.testing.assert_array_equal(ds["reflectance"].values[:, 0, 3], t0["bands20"]["B05"][rows // 2, cols // 2])
    assert ds.sizes["sample"] == 30 and (ds["tile"].values == "33UVP").all()  # from the SAFE names


# --- the sample depends on the seed, the data and the parameters only ------------------------------------------

CHUNKINGS = (5, 8, 4096)  # 4096: the whole 48 x 64 image in one block


def _draw(case, chunks, scheduler="threads", seed=7, per_field=None):
    return sampling.make_training_set(
        _open(case, chunks),
        case[0] / "fields.gpkg",
        "crop_code",
        30,
        seed=seed,
        mapping="invekos",
        min_per_class=2,
        max_per_field=per_field,
        scheduler=scheduler,
        progress=False,
    )


def test_same_seed_same_set_whatever_the_chunking_scheduler_and_workers(case):
    from distributed import LocalCluster

    got = {(ch, k, "threads"): _draw(case, ch, per_field=k) for ch in CHUNKINGS for k in (None, 2)}
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        for ch in CHUNKINGS:  # (the per-field cap with 2 processes: chunks of 8 only, to keep it short)
            for k in (None, 2) if ch == 8 else (None,):
                got[(ch, k, "2 processes")] = _draw(case, ch, cluster.scheduler_address, per_field=k)
    for k in (None, 2):
        ref = got[(4096, k, "threads")]
        assert ref.sizes["sample"] >= 30
        for key, ds in got.items():
            if key[1] == k:
                assert ds.identical(ref), f"{key} differs from the whole-image threaded run"
    assert np.bincount(got[(5, 2, "threads")]["field_id"].values).max() <= 2
    # pixels, order and values: the order is by class, field and pixel
    ref = got[(4096, None, "threads")]
    rows, cols = _rc(ref)
    assert (np.diff(ref["label"].values) >= 0).all() and len(set(zip(rows, cols, strict=True))) == ref.sizes["sample"]


def test_every_scheduler_name_gives_the_same_set_threaded_included(case):
    """The local names of eokit._dask ("threaded" was refused before) give the same set."""
    ref = _draw(case, 16)
    for name in ("threaded", "sync", "single-threaded"):
        assert _draw(case, 16, name).identical(ref), name


def test_another_seed_gives_another_set(case):
    a, b = _draw(case, 8, seed=7), _draw(case, 8, seed=8)
    assert a.sizes["sample"] == b.sizes["sample"]
    assert set(zip(*_rc(a), strict=True)) != set(zip(*_rc(b), strict=True))
    np.testing.assert_array_equal(np.bincount(a["label"].values), np.bincount(b["label"].values))


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(cy=st.integers(6, 64), cx=st.integers(6, 64), per_field=st.sampled_from([None, 2]))
def test_any_chunk_shape_gives_the_same_set(case, cy, cx, per_field):
    ref = _REFERENCE.get(per_field)
    if ref is None:
        ref = _REFERENCE[per_field] = _draw(case, 4096, per_field=per_field)
    assert _draw(case, {"y": cy, "x": cx}, per_field=per_field).identical(ref)


_REFERENCE: dict = {}


def test_pixel_keys_are_splitmix64():
    # splitmix64 seeded 0 (Steele, Lea & Flood 2014; the reference C code by Vigna): first outputs
    z = sampling._GAMMA * np.arange(1, 3, dtype=np.uint64)
    assert [hex(int(v)) for v in sampling._mix64(z)] == ["0xe220a8397b1dcdaf", "0x6e789e6aa1b965f4"]
    gidx = np.arange(10**5, dtype=np.int64)
    k = sampling._pixel_keys(3, 0, gidx)
    assert len(np.unique(k)) == len(gidx)
    assert not np.array_equal(k, sampling._pixel_keys(4, 0, gidx))
    assert not np.array_equal(k, sampling._pixel_keys(3, 1, gidx))
    np.testing.assert_array_equal(k[500:600], sampling._pixel_keys(3, 0, gidx[500:600]))  # counter-based
    assert abs(float((k >> np.uint64(11)).astype(np.float64).mean()) / 2**53 - 0.5) < 0.005


def _pixels(sizes, rng):
    """Candidates of fields of the given sizes (field f has class f % 2), at distinct random pixel indices."""
    n = sum(sizes)
    fid = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    return {
        "gidx": rng.choice(10**7, n, replace=False).astype(np.int64),
        "label": fid % 2,
        "field_id": fid,
        "flag": np.zeros((n, 3), np.uint8),
    }


def _sample(cand, need, per_field, seed, parts=1, rng=None):
    """The sample as the blocks and the merge tree make it, with the candidates split into `parts` blocks."""
    where = rng.integers(0, parts, len(cand["gidx"])) if parts > 1 else np.zeros(len(cand["gidx"]), int)
    blocks = []
    for p in range(parts):
        sub = {k: v[where == p] for k, v in cand.items()}
        blocks.append({k: v[sampling._keep(sub, need, per_field, seed, final=False)] for k, v in sub.items()})
    level = [
        sampling._merge_candidates(need, per_field, seed, False, *blocks[i : i + 3]) for i in range(0, len(blocks), 3)
    ]
    return sampling._merge_candidates(need, per_field, seed, True, *level)


def test_keys_give_a_uniform_sample_without_replacement():
    rng = np.random.default_rng(0)
    cand = _pixels([14, 20, 16, 30], rng)  # class 0: 30 pixels, class 1: 50
    need, n_seeds = {0: 5, 1: 10}, 400
    hits = np.zeros(len(cand["gidx"]))
    for seed in range(n_seeds):
        s = _sample(cand, need, None, seed)
        assert len(np.unique(s["gidx"])) == len(s["gidx"]) == 15
        assert (np.bincount(s["label"]) == [5, 10]).all()
        hits += np.isin(cand["gidx"], s["gidx"])
    p = np.where(cand["label"] == 0, 5 / 30, 10 / 50)
    assert (np.abs(hits / n_seeds - p) < 5 * np.sqrt(p * (1 - p) / n_seeds)).all()


def test_per_field_cap_is_uniform_over_the_capped_fields():
    # K = 2: fields of 40, 2 and 1 pixels (class 0) offer 2, 2 and 1 places; 3 samples are drawn among those
    # 5 places (multivariate hypergeometric), so the big field gets no more than the 2-pixel one
    rng = np.random.default_rng(1)
    cand = _pixels([40, 7, 2, 7, 1], rng)
    cand = {k: v[cand["label"] == 0] for k, v in cand.items()}
    n_seeds, per = 400, []
    for seed in range(n_seeds):
        s = _sample(cand, {0: 3}, 2, seed)
        per.append(np.bincount(s["field_id"], minlength=5)[[0, 2, 4]])
    per = np.array(per)
    assert (per.sum(axis=1) == 3).all() and per.max() <= 2
    np.testing.assert_allclose(per.mean(axis=0), [1.2, 1.2, 0.6], atol=0.12)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    sizes=st.lists(st.integers(1, 30), min_size=1, max_size=12),
    parts=st.integers(1, 9),
    per_field=st.sampled_from([None, 1, 3]),
    n0=st.integers(0, 40),
    n1=st.integers(0, 40),
    seed=st.integers(0, 2**64 - 1),
    split=st.integers(0, 2**32 - 1),
)
def test_blocks_and_merges_give_the_whole_image_sample(sizes, parts, per_field, n0, n1, seed, split):
    cand = _pixels(sizes, np.random.default_rng(split))
    need = {0: n0, 1: n1}
    whole = _sample(cand, need, per_field, seed)
    blocks = _sample(cand, need, per_field, seed, parts, np.random.default_rng(split + 1))
    assert sorted(whole["gidx"].tolist()) == sorted(blocks["gidx"].tolist())
    for lab, n in need.items():  # as many as asked, or all there are (at most K per field)
        fields = np.bincount(cand["field_id"][cand["label"] == lab])
        avail = int(np.minimum(fields, per_field).sum()) if per_field else int(fields.sum())
        assert (whole["label"] == lab).sum() == min(n, avail)


# --- bad inputs ------------------------------------------------------------------------------------------------


def _labelled(case, **extra):
    """The fields as a GeoDataFrame with integer class ids (cls) and names (cls_name), in the cube's CRS."""
    g = gpd.read_file(case[0] / "fields.gpkg").to_crs("EPSG:32633")
    codes = sorted(g["crop_code"].unique())
    g["cls"] = [codes.index(c) for c in g["crop_code"]]
    g["cls_name"] = g["crop_code"].str.lower()
    return g.drop(columns="crop_code")


def _bad(case, tmp_path, what):
    """make_training_set's arguments with one of them made hostile."""
    c = _open(case)
    kw = {"cube": c, "polygons": _labelled(case), "label_column": "cls", "samples": 20, "progress": False}
    if what == "empty polygon file":
        g = _labelled(case).iloc[:0]
        g.to_file(tmp_path / "empty.gpkg")
        kw["polygons"] = tmp_path / "empty.gpkg"
    elif what == "empty GeoDataFrame":
        kw["polygons"] = _labelled(case).iloc[:0]
    elif what == "polygons outside the cube":
        kw["polygons"] = gpd.GeoDataFrame({"cls": [1]}, geometry=[box(10, 10, 20, 20)], crs="EPSG:4326")
    elif what == "non-integer labels":
        g = _labelled(case)
        kw["polygons"] = g.assign(cls=g["cls"] + np.where(np.arange(len(g)) == 3, 0.5, 0.0))
    elif what == "negative class id":
        g = _labelled(case)
        kw["polygons"] = g.assign(cls=np.where(np.arange(len(g)) == 2, -3, g["cls"]))
    elif what == "polygons without CRS":
        kw["polygons"] = _labelled(case).set_crs(None, allow_override=True)
    elif what == "cube without flag":
        kw["cube"] = c.drop_vars("flag")
    elif what == "cube without CRS":
        nocrs = c.drop_vars("spatial_ref")
        for v in ("reflectance", "flag"):
            nocrs[v].attrs.pop("grid_mapping", None)
        kw["cube"] = nocrs
    elif what == "label column missing":
        _labelled(case).to_file(tmp_path / "f.gpkg")
        kw.update(polygons=tmp_path / "f.gpkg", label_column="kultur")
    elif what == "code missing from the mapping":
        raw = gpd.read_file(case[0] / "fields.gpkg")
        raw.loc[0, "crop_code"] = "MONDKORN"
        kw.update(polygons=raw, label_column="crop_code", mapping="invekos")
    else:
        key, value = what.split("=")
        kw[key] = float("nan") if value == "nan" else ast.literal_eval(value)
    return kw


BAD = [
    ("empty polygon file", ("no polygons given", "empty.gpkg", "at least one labelled polygon")),
    ("empty GeoDataFrame", ("polygons", "no polygons given", "at least one labelled polygon")),
    ("polygons outside the cube", ("overlaps the cube", "cube bounds", "polygon bounds")),
    ("non-integer labels", ("'cls'", "not whole class ids", "1.5", "rows [3]", "integer class ids")),
    ("negative class id", ("'cls'", "class id -3", "row 2", "from 0 to")),
    ("polygons without CRS", ("polygons", "no CRS")),
    ("cube without flag", ("'flag'", "(time, y, x)", "eokit.cube.open")),
    ("cube without CRS", ("cube", "no CRS", "write_crs")),
    ("label column missing", ("f.gpkg", "'kultur'", "not found", "columns are")),
    ("code missing from the mapping", ("'crop_code'", "MONDKORN", "mapping")),
    ("strategy='random'", ("strategy", "'random'", "proportional", "balanced", "capped")),
    ("strategy='capped'", ("capped", "cap_per_class")),
    ("samples=-5", ("samples", "-5", "positive integer")),
    ("samples=0", ("samples", "positive integer")),
    ("samples=12.5", ("samples", "12.5", "integer")),
    ("max_cloud_fraction=1.5", ("max_cloud_fraction", "1.5", "[0, 1]")),
    ("max_cloud_fraction=-0.1", ("max_cloud_fraction", "-0.1", "[0, 1]")),
    ("max_cloud_fraction=nan", ("max_cloud_fraction", "nan", "[0, 1]")),
    ("seed=-1", ("seed", "-1", "integer >= 0")),
    ("seed=1.5", ("seed", "1.5", "integer >= 0")),
    ("erosion=-1", ("erosion", "-1", ">= 0")),
    ("min_per_class=-2", ("min_per_class", "-2", ">= 0")),
    ("cap_per_class=0", ("cap_per_class", ">= 1")),
    ("max_per_field=0", ("max_per_field", ">= 1")),
    ("scheduler='thread'", ("scheduler", "'thread'", "threads", "address")),
    ("scheduler=42", ("scheduler", "42", "distributed.Client")),
]


@pytest.mark.bad_input
@pytest.mark.parametrize("what,names", BAD, ids=[w for w, _ in BAD])
def test_refuses(case, tmp_path, what, names):
    kw = _bad(case, tmp_path, what)
    with refuses(ValueError, *names):
        sampling.make_training_set(**kw)


def test_class_smaller_than_a_pixel_is_warned(case):
    # a polygon of 4 m x 4 m between pixel centres: its class reaches the cube but has no pixel
    g = _labelled(case)
    x, y = s2.ORIGIN[0] + 102, s2.ORIGIN[1] - 102
    tiny = gpd.GeoDataFrame(
        {"cls": [9], "cls_name": ["tiny crop"], "field_id": [999]}, geometry=[box(x, y - 4, x + 4, y)], crs=g.crs
    )
    g = gpd.GeoDataFrame(pd.concat([g, tiny], ignore_index=True), crs=g.crs)
    with warns_naming(UserWarning, "'tiny crop'", "id 9", "no pixel centre"):
        ds = sampling.make_training_set(_open(case), g, "cls", 20, name_column="cls_name", progress=False)
    assert 9 not in ds["label"].values
    rep = sampling.sampling_report(ds)
    assert rep.loc[9, "pixels"] == 0 and rep.loc[9, "sampled"] == 0
    assert any("tiny crop" in w for w in json.loads(ds.attrs["sampling_warnings"]))


def test_class_that_erosion_removes_is_warned(case):
    # fields 2 pixels wide: an erosion of 1 pixel leaves nothing of them
    g = _labelled(case)
    x0, y0 = s2.ORIGIN[0] + 40 * 10, s2.ORIGIN[1] - 41 * 10
    narrow = gpd.GeoDataFrame(
        {"cls": [8, 8], "cls_name": ["narrow strip"] * 2, "field_id": [901, 902]},
        geometry=[box(x0, y0 - 60, x0 + 20, y0), box(x0 + 40, y0 - 60, x0 + 60, y0)],
        crs=g.crs,
    )
    g = gpd.GeoDataFrame(pd.concat([g[~g.intersects(narrow.union_all())], narrow], ignore_index=True), crs=g.crs)
    with warns_naming(UserWarning, "'narrow strip'", "id 8", "only 0 eligible pixels", "erosion 1"):
        ds = sampling.make_training_set(
            _open(case), g, "cls", 20, name_column="cls_name", min_per_class=2, progress=False
        )
    assert sampling.sampling_report(ds).loc[8, "shortfall"] == 2


# --- class balance: oversample / class_counts (moved here from eokit.augment) --------------------------------


def test_oversample_balances_classes_keeps_every_original_and_is_seeded_in_sampling():
    y = np.array([0] * 50 + [1] * 5 + [3] * 12)
    idx = sampling.oversample(y, seed=1)
    assert np.bincount(y[idx], minlength=4).tolist() == [50, 50, 0, 50]
    assert set(np.arange(y.size)) <= set(idx.tolist()) and idx.dtype == np.int64
    np.testing.assert_array_equal(idx, sampling.oversample(y, seed=1))
    assert not np.array_equal(idx, sampling.oversample(y, seed=2))
    assert np.bincount(y[sampling.oversample(y, seed=0, target=10)]).tolist() == [10, 10, 0, 10]


def test_class_counts_before_and_after_oversampling_in_sampling():
    y = np.array([0] * 6 + [4] * 2)
    df = sampling.class_counts(y, sampling.oversample(y, seed=0))
    assert df.index.tolist() == ["open water", "thin to medium first-year ice"]
    assert df["before"].tolist() == [6, 2] and df["after oversampling"].tolist() == [6, 6]
    assert df["label"].tolist() == [0, 4]


def test_oversample_and_class_counts_old_names_warn_and_give_the_same_result():
    from eokit import augment

    y = np.array([0] * 7 + [2] * 3)
    with pytest.warns(DeprecationWarning, match=r"eokit\.sampling\.oversample"):
        old = augment.oversample(y, seed=3, target=5)
    np.testing.assert_array_equal(old, sampling.oversample(y, seed=3, target=5))
    with pytest.warns(DeprecationWarning, match=r"eokit\.sampling\.class_counts"):
        table = augment.class_counts(y, old)
    pd.testing.assert_frame_equal(table, sampling.class_counts(y, old))


@pytest.mark.bad_input
def test_oversample_and_class_counts_refuse_bad_input_in_sampling():
    with refuses(ValueError, "oversample", "nan at position 2", "class ids"):
        sampling.oversample([0.0, 0.0, np.nan, 1.0])
    with refuses(ValueError, "oversample", "target", "integer", "2.5"):
        sampling.oversample([0, 0, 1], target=2.5)
    with refuses(ValueError, "oversample", "non-empty 1-D", "(0,)"):
        sampling.oversample([])
    with refuses(ValueError, "class_counts", "indices", "integer positions", "float64"):
        sampling.class_counts([0, 1], [0.5])
    with refuses(ValueError, "class_counts", "indices must lie in", "[0, 2)"):
        sampling.class_counts([0, 1], [0, 8])


def test_each_block_is_one_task_whatever_the_number_of_dates(case, monkeypatch):
    # a task per date and chunk (plus stacks and merges) cost about 3 ms each of scheduling on a 2-core
    # LocalCluster, more than the reads: sampling scaled 1.5x on 2 workers. Each step now sends a task per block.
    import dask

    seen = {}
    run = sampling._compute_on

    def counting(objs, target, progress, desc, last_only):
        seen[desc] = sum(len(dict(o.__dask_graph__())) for o in objs) if not last_only else len(objs)
        return run(objs, target, progress, desc, last_only)

    monkeypatch.setattr(sampling, "_compute_on", counting)
    c = _open(case)
    blocks = len(c.chunks["y"]) * len(c.chunks["x"])
    assert c.sizes["time"] > 1
    with dask.config.set(scheduler="threads"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = sampling.make_training_set(c, case[0] / "fields.gpkg", "crop_code", 40, mapping="invekos", progress=False)
    assert ds.sizes["sample"] > 0
    assert seen["label pixels"] <= blocks
    assert seen["read series"] <= blocks

"""eokit.sampling: stratified weak-label sampling from a cube + crop map, writers, and notebook 01."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import xarray as xr
from shapely.geometry import box

from eokit import cube, sampling
from eokit.schema import TIMESERIES_SCHEMA, check_schema
from generators import s2

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sampling")
    truth = s2.write_geotiff_stack(tmp / "stack", shape=(48, 64))
    s2.write_fields(tmp / "fields.gpkg", shape=(48, 64), codes=("WINTERWEICHEN", "KOERNERMAIS", "DAUERWIESE",
                                                                  "SOJABOHNEN", "KUEMMEL"))
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
    ds = sampling.make_training_set(_open(case), tmp / "fields.gpkg", "crop_code", 120, mapping="invekos",
                                    min_per_class=3, progress=False)
    check_schema(ds, TIMESERIES_SCHEMA, "training set")
    assert ds["reflectance"].dtype == np.int16 and ds.sizes["time"] == len(truth["dates"])
    assert {"x", "y", "field_id"} <= set(ds.data_vars) and ds.attrs["crs"] == "EPSG:32633"
    rows, cols = _rc(ds)
    np.testing.assert_array_equal(ds["reflectance"].values, np.moveaxis(truth["reflectance"][:, :, rows, cols], -1, 0))
    flags = cube.scl_to_flag(truth["scl"])[:, rows, cols].T
    np.testing.assert_array_equal(ds["flag"].values, flags)
    assert (ds["date"].values[0] == _open(case)["time"].values).all()
    # no duplicates, each sample inside its field, at least one pixel from the boundary (erosion 1)
    assert len(set(zip(rows, cols))) == ds.sizes["sample"]
    fields = gpd.read_file(tmp / "fields.gpkg").to_crs("EPSG:32633").set_index("field_id")
    for fid, x, y in zip(ds["field_id"].values, ds["x"].values, ds["y"].values):
        assert fields.geometry.loc[fid].buffer(-10 + 1e-6).contains(gpd.points_from_xy([x], [y])[0])
    # no sample is cloudier than the default threshold
    assert ((ds["flag"].values != 0).mean(axis=1) <= 0.5).all()
    rep = sampling.sampling_report(ds)
    assert list(rep.columns) == ["label_name", "pixels", "prior", "asked", "available", "sampled",
                                 "sampled_share", "shortfall"]
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
    clear = sampling.make_training_set(_open(case), tmp / "fields.gpkg", "crop_code", 40, max_cloud_fraction=0.0,
                                       **kw)
    assert (clear["flag"].values == 0).all()
    bal = sampling.make_training_set(_open(case), tmp / "fields.gpkg", "crop_code", 60, strategy="balanced", **kw)
    counts = np.bincount(bal["label"].values)
    assert set(counts[counts > 0]) == {12}


def test_shortfall_is_warned_and_reported(case):
    tmp, _ = case
    with pytest.warns(UserWarning, match=r"samples asked, only \d+ eligible pixels"):
        ds = sampling.make_training_set(_open(case), tmp / "fields.gpkg", "crop_code", 2000, mapping="invekos",
                                        progress=False, max_per_field=3)
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
    local = sampling.make_training_set(_open(case), tmp / "fields.gpkg", "crop_code", 50, mapping="invekos",
                                       progress=False)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        remote = sampling.make_training_set(_open(case), tmp / "fields.gpkg", "crop_code", 50, mapping="invekos",
                                            scheduler=cluster.scheduler_address, progress=True)
        with Client(cluster) as client:
            again = sampling.make_training_set(_open(case), tmp / "fields.gpkg", "crop_code", 50,
                                               mapping="invekos", scheduler=client, progress=False)
    assert local.identical(remote) and local.identical(again)


def test_writers(case, tmp_path):
    tmp, _ = case
    ds = sampling.make_training_set(_open(case), tmp / "fields.gpkg", "crop_code", 40, mapping="invekos",
                                    progress=False, tile="33UVP")
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
    ds = sampling.make_training_set(_open(case), tmp / "fields.gpkg", "crop_code", 30, mapping="invekos",
                                    progress=False, tile="33UVP")
    flag = ds["flag"].values.copy()
    flag[0, 1] = 255  # SCL "no data" inside an acquisition
    ds["flag"] = (("sample", "time"), flag)
    with pytest.warns(UserWarning, match="1 observations flagged 255"):
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
    ds = sampling.make_training_set(s2stack, s2stack / "fields.gpkg", "crop_code", 300, mapping="invekos",
                                    progress=False)
    assert ds.sizes["band"] == 9 and ds.attrs["crs"] == "EPSG:32633"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # LULC.tif (no date) is skipped with a warning; class 1 is too small
        c = cube.open(slo / "stack")
        sl = sampling.make_training_set(c, slo / "lulc_polygons.gpkg", "LULC_ID", 200, progress=False)
    rep = sampling.sampling_report(sl)
    # the polygons' pixel counts reproduce the published raster lulc.npy
    lulc = np.load(slo / "lulc.npy")[..., 0]
    ids, n = np.unique(lulc, return_counts=True)
    assert dict(zip(rep.index, rep["pixels"])) == dict(zip(ids.tolist(), n.tolist()))
    assert sl["reflectance"].dtype == np.float32 and list(sl["band"].values) == ["NDVI"]
    assert rep.loc[2, "label_name"] == "forest"


@pytest.mark.notebooks
def test_notebook_01_runs_on_slovenia(tmp_path):
    import papermill as pm

    nb = ROOT / "notebooks" / "01_training_set_food_security.ipynb"
    out = tmp_path / "nbout"
    pm.execute_notebook(
        str(nb), str(tmp_path / "01.ipynb"), cwd=str(nb.parent), progress_bar=False,
        parameters={"cube": "../data/sample/slovenia/stack", "polygons": "../data/sample/slovenia/lulc_polygons.gpkg",
                    "label_column": "LULC_ID", "mapping": None, "quick": True, "output": str(out)})
    ts = xr.open_zarr(out / "trainingset.zarr")
    assert ts.sizes["band"] == 1 and ts.sizes["sample"] > 0
    assert (out / "trainingset_points.gpkg").exists()
    assert any((out / "figures").glob("*.png"))


def test_samples_from_safe_products(tmp_path):
    p0, t0 = s2.write_safe(tmp_path / "L2A", date="20180405", shape10=(32, 40))
    s2.write_safe(tmp_path / "L2A", date="20180415", shape10=(32, 40), seed=1)
    s2.write_fields(tmp_path / "f.gpkg", shape=(32, 40), overlap=False)
    c = cube.open(tmp_path / "L2A", chunks=16)
    ds = sampling.make_training_set(c, tmp_path / "f.gpkg", "crop_code", 30, mapping="invekos", min_per_class=0,
                                    max_cloud_fraction=1.0, erosion=0, progress=False)
    assert ds["reflectance"].dtype == np.int16 and list(ds["band"].values)[:3] == ["B2", "B3", "B4"]
    rows, cols = _rc(ds)
    np.testing.assert_array_equal(ds["reflectance"].values[:, 0, 0], t0["bands10"]["B02"][rows, cols])
    np.testing.assert_array_equal(ds["reflectance"].values[:, 0, 3], t0["bands20"]["B05"][rows // 2, cols // 2])
    assert ds.sizes["sample"] == 30 and (ds["tile"].values == "33UVP").all()  # from the SAFE names

"""Wall-to-wall maps: chunked prediction equals the bare model, COG output, boundaries, patch maps, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
import rioxarray  # noqa: F401
import tensorflow  # noqa: F401
import xarray as xr

from badinput import refuses
from eokit import maps

BANDS = ["B2", "B4", "B8A"]
CLASSES = ["Maize", "Winter wheat", "Grassland"]


# ------------------------------------------------------------------------------------------------
# fixtures: a tiny cube with three crops in column stripes, a small LSTM and its card
# ------------------------------------------------------------------------------------------------
def _cube(ny: int = 18, nx: int = 21, n_t: int = 5, bands: list[str] = BANDS, seed: int = 0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    truth = (np.arange(nx)[None, :] // 7 % 3).repeat(ny, axis=0)
    t = np.linspace(0, 1, n_t)
    base = {0: [400, 600, 3000], 1: [900, 700, 1500], 2: [500, 900, 5000]}
    refl = np.zeros((n_t, len(bands), ny, nx), dtype=np.int16)
    for k, b in enumerate(bands):
        j = BANDS.index(b) if b in BANDS else 0
        for c in range(3):
            curve = base[c][j] * (1 + (c + 1) * 0.4 * np.sin(np.pi * t))
            refl[:, k][:, truth == c] = (curve[:, None] + rng.normal(0, 30, (n_t, (truth == c).sum()))).astype(np.int16)
    flag = np.zeros((n_t, ny, nx), dtype=np.uint8)
    flag[1, :3, :] = 1  # a cloud in the second image
    flag[:, 0, 0] = 255  # never observed -> nodata
    flag[:, 1, 1] = 1  # always cloudy -> nodata
    dates = pd.date_range("2018-03-01", periods=n_t, freq="25D")
    x = 500005.0 + 10 * np.arange(nx)
    y = 5200005.0 - 10 * np.arange(ny)
    ds = xr.Dataset(
        {"reflectance": (("time", "band", "y", "x"), refl), "flag": (("time", "y", "x"), flag)},
        coords={"time": dates.values, "band": bands, "y": y, "x": x},
    )
    ds = ds.rio.write_crs("EPSG:32633")
    ds.attrs["truth"] = truth
    return ds.chunk({"time": 1, "y": 9, "x": 9})


def _card(n_t: int = 7, bands: list[str] = BANDS, **extra) -> dict:
    card = {
        "name": "lstm",
        "kind": "timeseries",
        "classes": CLASSES,
        "class_ids": [2, 12, 1],
        "bands": bands,
        "n_timesteps": n_t,
        "dates": None,
        "normalisation": {"mean": [600.0, 700.0, 3000.0], "std": [300.0, 300.0, 1500.0]},
        "flag_handling": "mask",
        "hparams": {"units": [8]},
    }
    card.update(extra)
    return card


@pytest.fixture(scope="module")
def lstm_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small LSTM trained for a few epochs on the cube's pixels, saved with its card."""
    import keras

    from eokit.models import build
    from eokit.train import prepare_inputs

    keras.utils.set_random_seed(0)
    cube = _cube().compute()
    card = _card()
    n_t, n_b, ny, nx = cube.reflectance.shape
    refl = cube.reflectance.values.reshape(n_t, n_b, -1).transpose(2, 0, 1)
    flag = cube.flag.values.reshape(n_t, -1).T
    date = np.broadcast_to(cube.time.values, flag.shape)
    y = np.asarray(cube.attrs["truth"]).ravel()
    ok = (flag == 0).any(axis=1)
    inputs = prepare_inputs(refl[ok], flag[ok], date[ok], card)
    model = build("lstm", n_bands=3, n_timesteps=card["n_timesteps"], n_classes=3, units=[8], dropout=0.0)
    model.compile(optimizer=keras.optimizers.Adam(0.03), loss="sparse_categorical_crossentropy")
    model.fit(inputs, y[ok], epochs=15, batch_size=64, verbose=0)
    path = tmp_path_factory.mktemp("model") / "lstm.keras"
    model.save(path)
    path.with_suffix(".json").write_text(json.dumps(card))
    return path


def _bare(model, cube: xr.Dataset, card: dict) -> tuple[np.ndarray, np.ndarray]:
    """The model's own predict on every observed pixel: (class, confidence) images."""
    from eokit.train import prepare_inputs

    c = cube.compute()
    refl = c.reflectance.sel(band=card["bands"]).values
    n_t, n_b, ny, nx = refl.shape
    pix = refl.reshape(n_t, n_b, -1).transpose(2, 0, 1)
    flag = c.flag.values.reshape(n_t, -1).T
    ok = (flag == 0).any(axis=1)
    probs = model.predict(
        prepare_inputs(pix[ok], flag[ok], np.broadcast_to(c.time.values, flag.shape)[ok], card), verbose=0
    )
    cls = np.full(ny * nx, 255, np.uint8)
    conf = np.full(ny * nx, np.nan, np.float32)
    cls[ok], conf[ok] = probs.argmax(1), probs.max(1)
    return cls.reshape(ny, nx), conf.reshape(ny, nx)


# ------------------------------------------------------------------------------------------------
# time-series maps
# ------------------------------------------------------------------------------------------------
def test_predict_equals_bare_model_and_keeps_the_grid(lstm_path: Path) -> None:
    from eokit.train import load_model

    model, card = load_model(lstm_path)
    cube = _cube()
    out = maps.predict(lstm_path, cube, chunks={"y": 8, "x": 8}, batch_size=64, progress=False)
    cls, conf = _bare(model, cube, card)
    assert out["class"].dtype == np.uint8 and out["confidence"].dtype == np.float32
    np.testing.assert_array_equal(out["class"].values, cls)
    np.testing.assert_allclose(out["confidence"].values, conf, atol=1e-5)
    assert out["class"].values[0, 0] == 255 and out["class"].values[1, 1] == 255
    assert np.isnan(out["confidence"].values[0, 0])
    assert out.rio.crs.to_epsg() == 32633
    assert out.rio.transform() == cube.rio.transform()
    np.testing.assert_array_equal(out.x, cube.x)
    truth = np.asarray(cube.attrs["truth"])
    valid = cls != 255
    assert (cls[valid] == truth[valid]).mean() > 0.9, "the trained LSTM should map the stripes"
    assert json.loads(out["class"].attrs["class_names"]) == CLASSES


def test_band_order_and_extra_bands_follow_the_card(lstm_path: Path) -> None:
    cube = _cube()
    ref = maps.predict(lstm_path, cube, chunks={"y": 9, "x": 9}, progress=False)
    extra = cube.reflectance.sel(band=["B2"]).assign_coords(band=["B11"]) + 7
    refl = xr.concat([cube.reflectance, extra], dim="band").sel(band=["B8A", "B11", "B2", "B4"])
    shuffled = cube.drop_vars(["reflectance", "band"]).assign(reflectance=refl)  # card's bands, another order
    assert list(shuffled.band.values) == ["B8A", "B11", "B2", "B4"]
    out = maps.predict(lstm_path, shuffled, chunks={"y": 9, "x": 9}, progress=False)
    np.testing.assert_array_equal(out["class"].values, ref["class"].values)
    np.testing.assert_allclose(out["confidence"].values, ref["confidence"].values, atol=1e-6)


def test_lazy_map_is_the_same_and_chunk_size_does_not_matter(lstm_path: Path) -> None:
    cube = _cube()
    a = maps.predict(lstm_path, cube, chunks={"y": 5, "x": 7}, progress=False, compute=False)
    assert a["class"].chunks is not None, "compute=False must stay lazy"
    b = maps.predict(lstm_path, cube, chunks={"y": 64, "x": 64}, scheduler="sync", progress=False)
    np.testing.assert_array_equal(a["class"].values, b["class"].values)
    np.testing.assert_allclose(a["confidence"].values, b["confidence"].values, atol=1e-6)


def test_model_object_needs_a_card_and_works_with_one(lstm_path: Path) -> None:
    from eokit.train import load_model

    model, card = load_model(lstm_path)
    cube = _cube()
    with pytest.raises(ValueError, match="card"):
        maps.predict(model, cube, progress=False)
    out = maps.predict(model, cube, card=card, progress=False)
    ref = maps.predict(lstm_path, cube, progress=False)
    np.testing.assert_array_equal(out["class"].values, ref["class"].values)


def test_bad_bands_and_time_steps_name_both(lstm_path: Path) -> None:
    with pytest.raises(ValueError) as e:
        maps.predict(lstm_path, _cube(bands=["B2", "B3", "B4"]), progress=False)
    msg = str(e.value)
    assert "B8A" in msg and "B3" in msg and "lstm" in msg
    with pytest.raises(ValueError, match=r"9 time steps.*n_timesteps=7"):
        maps.predict(lstm_path, _cube(n_t=9), progress=False)
    dates = pd.date_range("2018-01-01", periods=5, freq="10D").strftime("%Y-%m-%d").tolist()
    with pytest.raises(ValueError, match=r"cube time steps \(5: 2018-03-01\.\.2018-06-09\).*2018-01-01"):
        maps.predict(lstm_path, _cube(), card=_card(dates=dates), progress=False)
    with pytest.raises(ValueError, match="no 'reflectance'"):
        maps.predict(lstm_path, _cube().drop_vars("reflectance"), progress=False)
    with pytest.raises(FileNotFoundError, match="nothing.keras"):
        maps.predict(lstm_path.parent / "nothing.keras", _cube(), progress=False)
    with pytest.raises(ValueError, match="scheduler must be"):
        maps.predict(lstm_path, _cube(), scheduler="processes", progress=False)


def test_distributed_scheduler_by_address(lstm_path: Path) -> None:
    """Worker processes load the model themselves, once each, by path; a model object is saved for them."""
    from distributed import Client, LocalCluster

    from eokit.train import load_model

    cube = _cube()
    ref = maps.predict(lstm_path, cube, progress=False)
    model, card = load_model(lstm_path)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None) as cluster:
        out = maps.predict(
            lstm_path, cube, chunks={"y": 6, "x": 7}, scheduler=cluster.scheduler_address, progress=False
        )
        with Client(cluster) as client:
            loaded = client.run(lambda: sorted(k.split("|")[0] for k in maps._MODELS))
            from_object = maps.predict(model, cube, card=card, scheduler=client, progress=False)
    np.testing.assert_array_equal(out["class"].values, ref["class"].values)
    np.testing.assert_allclose(out["confidence"].values, ref["confidence"].values, atol=1e-5)
    np.testing.assert_array_equal(from_object["class"].values, ref["class"].values)
    (models_on_worker,) = loaded.values()
    assert models_on_worker == [f"path:{lstm_path.resolve()}"], "9 chunks must share one model per worker"


# ------------------------------------------------------------------------------------------------
# COG output
# ------------------------------------------------------------------------------------------------
def test_write_cog_streams_a_lazy_map(lstm_path: Path, tmp_path: Path) -> None:
    cube = _cube(ny=40, nx=44)
    lazy = maps.predict(lstm_path, cube, chunks={"y": 16, "x": 16}, progress=False, compute=False)
    paths = maps.write_cog(lazy, tmp_path / "maps" / "crop.tif", blocksize=16, progress=False)
    assert [p.name for p in paths] == ["crop_class.tif", "crop_confidence.tif"]
    ref = maps.predict(lstm_path, cube, progress=False)
    with rasterio.open(paths[0]) as src:
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert src.overviews(1), "COG without overviews"
        assert src.crs.to_epsg() == 32633 and src.transform == cube.rio.transform()
        assert src.nodata == 255 and src.dtypes[0] == "uint8"
        cmap = src.colormap(1)
        assert cmap[1] == maps.class_colours(CLASSES)[1] and cmap[255][3] == 0
        assert json.loads(src.tags(1)["class_names"]) == CLASSES
        np.testing.assert_array_equal(src.read(1), ref["class"].values)
    with rasterio.open(paths[1]) as src:
        assert src.dtypes[0] == "float32"
        np.testing.assert_allclose(src.read(1), ref["confidence"].values, atol=1e-6)
    with pytest.raises(FileExistsError, match="crop_class.tif"):
        maps.write_cog(ref, tmp_path / "maps" / "crop.tif", progress=False)
    maps.write_cog(ref, tmp_path / "maps" / "crop.tif", overwrite=True, progress=False)
    assert not [p for p in (tmp_path / "maps").iterdir() if "part" in p.name], "temp files left behind"


# ------------------------------------------------------------------------------------------------
# boundaries
# ------------------------------------------------------------------------------------------------
def _class_map() -> xr.DataArray:
    c = np.zeros((8, 10), np.uint8)
    c[:, 5:] = 1
    c[6:, :] = 2
    c[0, 0] = 255
    da = xr.DataArray(
        c,
        dims=("y", "x"),
        coords={"y": 5000.0 - 10 * np.arange(8) - 5, "x": 1000.0 + 10 * np.arange(10) + 5},
        name="class",
    )
    da.attrs["class_names"] = json.dumps(["a", "b", "c"])
    return da.rio.write_crs("EPSG:32633")


def test_class_edges_are_pixels_with_a_different_4_neighbour() -> None:
    cm = _class_map()
    b = maps.boundaries(cm).values
    c = cm.values
    expected = np.zeros_like(c)
    for i in range(8):
        for j in range(10):
            if c[i, j] == 255:
                continue
            for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                ii, jj = i + di, j + dj
                if 0 <= ii < 8 and 0 <= jj < 10 and c[ii, jj] not in (255, c[i, j]):
                    expected[i, j] = 1
    np.testing.assert_array_equal(b, expected)
    assert b[:5, 4].all() and b[:5, 5].all() and not b[:5, :4].any()
    lazy = maps.boundaries(cm.chunk({"y": 3, "x": 4}))
    np.testing.assert_array_equal(lazy.values, expected)


def test_parcel_outlines_and_vectors(tmp_path: Path) -> None:
    import geopandas as gpd
    import pyogrio
    from shapely.geometry import box

    cm = _class_map()
    # a parcel whose outline runs through the centres of columns 1 and 3, rows 0 and 4; given in another CRS
    parcel = gpd.GeoDataFrame({"id": [1]}, geometry=[box(1015, 4955, 1035, 4995)], crs="EPSG:32633")
    b = maps.boundaries(cm, parcels=parcel.to_crs("EPSG:4326")).values
    assert (b[0:5, 1] & 2).all() and (b[0:5, 3] & 2).all() and (b[4, 1:4] & 2).all(), "outline not rasterised"
    assert not (b[:, 5:] & 2).any() and not (b[5:] & 2).any()
    assert b[2, 2] == 0, "parcel interior must stay 0"
    assert b[2, 4] == 1 and b[0, 7] == 0
    fields = maps.boundaries_to_vector(maps.boundaries(cm), class_map=cm, path=tmp_path / "fields.gpkg")
    assert sorted(fields["class_name"]) == ["a", "b", "c"]
    assert fields.crs.to_epsg() == 32633
    a = fields.set_index("class_name")
    assert a.loc["a", "n_pixels"] == 5 * 4 - 1  # rows 0-4, cols 0-3 of class a, without the nodata corner
    assert set(pyogrio.list_layers(tmp_path / "fields.gpkg")[:, 0]) == {"fields", "boundaries"}
    with pytest.raises(FileExistsError):
        maps.boundaries_to_vector(maps.boundaries(cm), class_map=cm, path=tmp_path / "fields.gpkg")
    single = maps.write_cog(maps.boundaries(cm), tmp_path / "edges.tif", progress=False)
    assert single == [tmp_path / "edges.tif"], "a DataArray is written to the path itself"
    tif, gpkg = maps.write_boundaries(maps.boundaries(cm, parcel), tmp_path / "b.tif", class_map=cm, progress=False)
    with rasterio.open(tif) as src:
        np.testing.assert_array_equal(src.read(1), maps.boundaries(cm, parcel).values)
    assert gpkg.exists()


# ------------------------------------------------------------------------------------------------
# patch (sea-ice) maps
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cnn():
    import keras

    from eokit.models import build

    keras.utils.set_random_seed(1)
    model = build(
        "cnn", n_bands=3, n_timesteps=None, n_classes=3, patch_size=8, filters=(4,), dense_units=8, dropout=0.0
    )
    card = {
        "name": "cnn",
        "kind": "patch",
        "classes": ["open water", "young ice", "thick or deformed ice"],
        "class_ids": [0, 3, 5],
        "bands": ["HH", "HV", "IA"],
        "n_timesteps": None,
        "patch_size": 8,
        "normalisation": {"mean": [-15.0, -25.0, 35.0], "std": [5.0, 5.0, 8.0]},
    }
    return model, card


def _scene(ny: int = 30, nx: int = 34) -> xr.Dataset:
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:ny, 0:nx]
    hh = (-20 + 10 * (xx > nx // 2) + rng.normal(0, 2, (ny, nx))).astype(np.float32)
    hv = (-28 + 6 * (yy > ny // 2) + rng.normal(0, 2, (ny, nx))).astype(np.float32)
    ia = (20 + 25 * xx / nx).astype(np.float32)
    hh[0, 0] = np.nan
    land = np.zeros((ny, nx), np.uint8)
    land[-2:, -2:] = 1
    ds = xr.Dataset(
        {"HH": (("y", "x"), hh), "HV": (("y", "x"), hv), "IA": (("y", "x"), ia), "land": (("y", "x"), land)},
        coords={"y": -1e6 - 40 * np.arange(ny), "x": 6e5 + 40 * np.arange(nx)},
        attrs={"scene": "test"},
    )
    return ds.rio.write_crs("EPSG:3413")


def _direct(model, card, scene: xr.Dataset, r0: int, c0: int) -> np.ndarray:
    from eokit.train import prepare_patches

    img = np.stack([scene[c].values for c in card["bands"]], -1)[r0 : r0 + 8, c0 : c0 + 8]
    return model.predict(prepare_patches(img[None].astype(np.float32), card), verbose=0)[0]


def test_sliding_window_paints_stride_blocks(cnn) -> None:
    model, card = cnn
    scene = _scene()
    out = maps.predict_patches(model, scene, card, stride=4, mode="sliding", chunks={"y": 12, "x": 12}, progress=False)
    whole = maps.predict_patches(
        model, scene, card, stride=4, mode="sliding", chunks={"y": 64, "x": 64}, progress=False
    )
    np.testing.assert_array_equal(out["class"].values, whole["class"].values)  # no seams between chunks
    np.testing.assert_allclose(out["probability"].values, whole["probability"].values, atol=1e-5)
    br, bc = 12, 16  # block at rows 12..15, cols 16..19; its 8x8 window starts 2 px up-left
    p = _direct(model, card, scene, br - 2, bc - 2)
    block = out["probability"].values[:, br : br + 4, bc : bc + 4]
    np.testing.assert_allclose(block, np.broadcast_to(p[:, None, None], block.shape), atol=1e-5)
    assert (out["class"].values[br : br + 4, bc : bc + 4] == p.argmax()).all()
    assert out["class"].values[0, 0] == 255 and out["class"].values[-1, -1] == 255
    assert out["probability"].dims == ("label", "y", "x") and out.rio.crs.to_epsg() == 3413
    np.testing.assert_allclose(out["confidence"].values[5, 5], out["probability"].values[:, 5, 5].max())


def test_centred_patch_per_pixel(cnn, tmp_path: Path) -> None:
    model, card = cnn
    scene = _scene()
    out = maps.predict_patches(model, scene, card, mode="centred", chunks={"y": 10, "x": 10}, progress=False)
    for r, c in ((15, 17), (4, 9), (20, 25)):
        p = _direct(model, card, scene, r - 4, c - 4)
        np.testing.assert_allclose(out["probability"].values[:, r, c], p, atol=1e-5)
    paths = maps.write_cog(out, tmp_path / "ice.tif", blocksize=16, progress=False)
    with rasterio.open(paths[2]) as src:
        assert src.count == 3 and src.descriptions == tuple(card["classes"])
    with pytest.raises(ValueError, match=r"missing \['HV'\]"):
        maps.predict_patches(model, scene.drop_vars("HV"), card, progress=False)
    with pytest.raises(ValueError, match="mode"):
        maps.predict_patches(model, scene, card, mode="tiles", progress=False)


def test_gpu_check_dry_run_on_cpu(tmp_path: Path) -> None:
    """The device script runs end to end on a small lazily generated tile and records its results."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    summary = mod.main(
        ["--tile-size", "128", "--chunk", "64", "--skip-train", "--minutes-budget", "5", "--output", str(tmp_path)]
    )
    record = json.loads((tmp_path / "gpu_check.json").read_text())
    assert record["map"]["full_tile"] and record["map"]["pixels"] == 128 * 128
    assert record["map"]["pixels_per_s"] > 0 and summary["devices"]["tensorflow"]
    assert set(record["map"]["cog_bytes"]) == {"tile128_class.tif", "tile128_confidence.tif"}


def test_scene_in_radar_geometry_keeps_its_gcps(cnn, tmp_path: Path) -> None:
    """A SAFE-like scene (pixel coordinates + ground control points) maps to a COG carrying the GCPs."""
    from rasterio.control import GroundControlPoint

    model, card = cnn
    scene = _scene().drop_vars("spatial_ref")
    scene = scene.assign_coords(y=np.arange(scene.sizes["y"]), x=np.arange(scene.sizes["x"]))
    gcps = [GroundControlPoint(row=r, col=c, x=10 + c * 0.01, y=70 - r * 0.01, z=0) for r in (0, 29) for c in (0, 33)]
    scene = scene.rio.write_gcps(gcps, "EPSG:4326")
    out = maps.predict_patches(model, scene, card, stride=4, progress=False)
    paths = maps.write_cog(out, tmp_path / "ice.tif", progress=False)
    with rasterio.open(paths[0]) as src:
        points, crs = src.gcps
        assert len(points) == 4 and crs.to_epsg() == 4326
        assert {(p.row, p.col, round(p.x, 2)) for p in points} == {(g.row, g.col, round(g.x, 2)) for g in gcps}


def test_maps_a_geotiff_stack_read_by_eokit_cube(lstm_path: Path, tmp_path: Path) -> None:
    """End to end on the real reader: S2_/SCL_ GeoTIFFs -> eokit.cube.open -> predict -> COG on the same grid."""
    from eokit import cube as eocube
    from eokit import synthetic

    stack = synthetic.make_s2_stack(tmp_path / "stack", synthetic.make_dates(5, seed=1), size=24, n_fields=4)
    cube = eocube.open(stack, chunks=16)
    out = maps.predict(lstm_path, cube, chunks={"y": 16, "x": 16}, progress=False)
    clear = (cube.flag.values == 0).any(axis=0)
    np.testing.assert_array_equal(out["class"].values == 255, ~clear)
    assert out["class"].shape == (24, 24) and out.rio.transform() == cube.rio.transform()
    (cls_path, _) = maps.write_cog(out, tmp_path / "map.tif", progress=False)
    with rasterio.open(cls_path) as src:
        assert src.transform == cube.rio.transform() and src.crs == cube.rio.crs


# ------------------------------------------------------------------------------------------------
# hostile inputs: refused before any chunk is computed, naming the field and what was expected
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def untrained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny LSTM (3 bands, 7 steps, 3 classes) saved with the card `_card()`."""
    from eokit.models import build

    path = tmp_path_factory.mktemp("untrained") / "lstm.keras"
    build("lstm", n_bands=3, n_timesteps=7, n_classes=3, units=[4]).save(path)
    path.with_suffix(".json").write_text(json.dumps(_card()))
    return path


@pytest.fixture(scope="module")
def tiny_cnn():
    from eokit.models import build

    model = build("cnn", n_bands=3, n_timesteps=None, n_classes=3, patch_size=8, filters=(2,), dense_units=4)
    card = {
        "name": "cnn",
        "kind": "patch",
        "classes": ["open water", "young ice", "thick or deformed ice"],
        "class_ids": [0, 3, 5],
        "bands": ["HH", "HV", "IA"],
        "n_timesteps": None,
        "patch_size": 8,
        "normalisation": {"mean": [-15.0, -25.0, 35.0], "std": [5.0, 5.0, 8.0]},
    }
    return model, card


@pytest.mark.bad_input
def test_cube_without_a_band_of_the_card_names_it(untrained: Path) -> None:
    with refuses(ValueError, "cube bands ['B2', 'B3', 'B4']", "model 'lstm'", "missing ['B8A']"):
        maps.predict(untrained, _cube(bands=["B2", "B3", "B4"]), progress=False)


@pytest.mark.bad_input
def test_cube_with_more_dates_than_the_model_takes(untrained: Path) -> None:
    with refuses(ValueError, "cube has 9 time steps", "model 'lstm'", "at most n_timesteps=7"):
        maps.predict(untrained, _cube(n_t=9), progress=False)


@pytest.mark.bad_input
def test_cube_without_crs_is_refused(untrained: Path) -> None:
    with refuses(ValueError, "cube", "no CRS", "rio.write_crs"):
        maps.predict(untrained, _cube().drop_vars("spatial_ref"), progress=False)


@pytest.mark.bad_input
def test_a_data_array_is_not_a_cube(untrained: Path) -> None:
    with refuses(ValueError, "cube", "xarray.Dataset", "DataArray"):
        maps.predict(untrained, _cube()["reflectance"], progress=False)


def test_every_local_scheduler_name_gives_the_same_map_threaded_included(untrained: Path) -> None:
    """The names of eokit._dask that maps runs on ("threaded" was refused before): the same map."""
    cube = _cube()
    ref = maps.predict(untrained, cube, chunks={"y": 9, "x": 9}, progress=False)
    for name in ("threaded", "threading", "synchronous", "single-threaded"):
        out = maps.predict(untrained, cube, chunks={"y": 9, "x": 9}, scheduler=name, progress=False)
        np.testing.assert_array_equal(out["class"].values, ref["class"].values)


@pytest.mark.bad_input
@pytest.mark.parametrize("name", ["processes", "multiprocessing"])
def test_the_multiprocessing_scheduler_is_refused_saying_why_and_what_instead(untrained: Path, name: str) -> None:
    with refuses(
        ValueError,
        "scheduler",
        repr(name),
        "new pool of processes for every chunk",
        "load the model",
        "dask.distributed.Client",
        "LocalCluster",
        "'threads'",
        "'sync'",
    ):
        maps.predict(untrained, _cube(), scheduler=name, progress=False)


@pytest.mark.bad_input
@pytest.mark.parametrize("compute", [True, False])
def test_unknown_scheduler_lists_the_accepted_ones_even_for_a_lazy_map(untrained: Path, compute: bool) -> None:
    with refuses(ValueError, "scheduler", "'processes'", "'threads'", "'sync'", "dask.distributed"):
        maps.predict(untrained, _cube(), scheduler="processes", compute=compute, progress=False)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "kw,names",
    [
        ({"chunks": {"y": 0, "x": 8}}, ["chunks['y']", "integer >= 1", "got 0"]),
        ({"chunks": {"y": 8, "x": -1}}, ["chunks['x']", "integer >= 1", "got -1"]),
        ({"chunks": {"yy": 8}}, ["chunks keys ['yy']", "'y' and/or 'x'"]),
        ({"batch_size": 0}, ["batch_size", "integer >= 1", "got 0"]),
    ],
)
def test_bad_chunks_and_batch_size_are_refused(untrained: Path, kw: dict, names: list) -> None:
    with refuses(ValueError, *names):
        maps.predict(untrained, _cube(), progress=False, **kw)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "change,names",
    [
        ({"n_timesteps": None}, ["card=", "'n_timesteps'", "integer >= 1"]),
        ({"normalisation": {"mean": [0.0], "std": [1.0]}}, ["card=", "'normalisation.mean'", "one number per band"]),
        ({"kind": "patch", "patch_size": 8}, ["card=", "kind 'patch'", "expected a timeseries model"]),
        ({"n_timesteps": 5}, ["card=", "'n_timesteps' is 5", "takes 7"]),
    ],
)
def test_a_card_that_does_not_describe_the_model_object_is_refused(untrained: Path, change: dict, names: list) -> None:
    from eokit.train import load_model

    model, card = load_model(untrained)
    with refuses(ValueError, *names):
        maps.predict(model, _cube(), card={**card, **change}, progress=False)


@pytest.mark.bad_input
def test_write_cog_does_not_overwrite(untrained: Path, tmp_path: Path) -> None:
    out = maps.predict(untrained, _cube(), progress=False)
    maps.write_cog(out, tmp_path / "m.tif", progress=False)
    with refuses(FileExistsError, str(tmp_path / "m_class.tif"), "overwrite=True"):
        maps.write_cog(out, tmp_path / "m.tif", progress=False)


@pytest.mark.bad_input
@pytest.mark.parametrize("blocksize", [0, 100, -16])
def test_write_cog_refuses_blocks_that_are_not_multiples_of_16(blocksize: int, tmp_path: Path) -> None:
    with refuses(ValueError, "blocksize", "multiple of 16", repr(blocksize)):  # 0 used to abort the process
        maps.write_cog(_class_map(), tmp_path / "m.tif", blocksize=blocksize, progress=False)


@pytest.mark.bad_input
def test_write_cog_refuses_a_map_without_crs(tmp_path: Path) -> None:
    with refuses(ValueError, str(tmp_path / "m.tif"), "no CRS", "rio.write_crs"):
        maps.write_cog(_class_map().drop_vars("spatial_ref"), tmp_path / "m.tif", progress=False)
    assert not list(tmp_path.iterdir())


@pytest.mark.bad_input
def test_scene_without_hv_names_it(tiny_cnn) -> None:
    model, card = tiny_cnn
    with refuses(ValueError, "scene 'test'", "model 'cnn'", "['HH', 'HV', 'IA']", "missing ['HV']"):
        maps.predict_patches(model, _scene().drop_vars("HV"), card, progress=False)


@pytest.mark.bad_input
@pytest.mark.parametrize("stride", [0, -2, 2.5])
def test_patch_stride_must_be_a_positive_integer(tiny_cnn, stride) -> None:
    model, card = tiny_cnn
    with refuses(ValueError, "stride", "integer >= 1", repr(stride)):  # 0 silently became the patch size
        maps.predict_patches(model, _scene(), card, stride=stride, progress=False)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "change,names",
    [
        ({"patch_size": 10}, ["'patch_size' is 10", "model 'cnn' takes 8"]),
        (
            {"bands": ["HH", "HV"], "normalisation": {"mean": [0.0, 0.0], "std": [1.0, 1.0]}},
            ["'bands'", "2 bands", "3 input channels"],
        ),
        ({"kind": "timeseries", "n_timesteps": 5}, ["kind 'timeseries'", "expected a patch model"]),
    ],
)
def test_patch_card_that_does_not_describe_the_model_is_refused(tiny_cnn, change: dict, names: list) -> None:
    model, card = tiny_cnn
    with refuses(ValueError, "card=", *names):
        maps.predict_patches(model, _scene(), {**card, **change}, progress=False)


@pytest.mark.bad_input
def test_patch_map_refuses_chunk_size_zero_and_a_bad_scheduler(tiny_cnn) -> None:
    model, card = tiny_cnn
    with refuses(ValueError, "chunks['y']", "integer >= 1"):
        maps.predict_patches(model, _scene(), card, chunks={"y": 0, "x": 0}, progress=False)
    with refuses(ValueError, "scheduler", "'nope'", "'threads'"):
        maps.predict_patches(model, _scene(), card, scheduler="nope", progress=False)


def test_the_cog_colour_table_holds_the_class_colours_of_the_figures(tmp_path: Path) -> None:
    from eokit.palettes import class_colours, hex_to_rgb
    from eokit.schema import TS2C_CLASSES

    names = TS2C_CLASSES + ["hops"]
    cm = _class_map()
    cm.values[:] = np.arange(cm.size).reshape(cm.shape) % len(names)
    cm.attrs["class_names"] = json.dumps(names)
    (tif,) = maps.write_cog(cm, tmp_path / "crop.tif", progress=False)
    with rasterio.open(tif) as src:
        table = src.colormap(1)
    colours = class_colours(names)
    assert [table[i][:3] for i in range(len(names))] == [hex_to_rgb(colours[n]) for n in names]
    assert len({table[i] for i in range(len(names))}) == len(names) and table[255][3] == 0
    assert table[TS2C_CLASSES.index("Maize")][:3] == (255, 217, 47)

"""eokit.topics: the LDA topic level of 4x4 cells (vocabulary, windows, topic maps, patch mixtures, DLR maps)."""

from __future__ import annotations

import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine

from badinput import refuses
from eokit import topics
from eokit.datasets import dlr
from generators import dlr as gen_dlr

TRANSFORM = Affine(40.0, 0.0, 500_000.0, 0.0, -40.0, -1_000_000.0)


def _scene(ny: int = 130, nx: int = 98, seed: int = 0, chunks: int | None = None, name: str = "s1") -> xr.Dataset:
    """A scene of three backscatter regions (dark, bright smooth, bright rough) with speckle, EPSG:3413."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:ny, 0:nx]
    region = (cols > nx // 3).astype(int) + (rows > ny // 2)
    base_hh = np.array([-24.0, -12.0, -8.0])[region]
    base_hv = np.array([-30.0, -22.0, -17.0])[region]
    rough = np.array([0.5, 0.8, 3.0])[region]
    hh = (base_hh + rough * rng.standard_normal((ny, nx))).astype(np.float32)
    hv = (base_hv + rough * rng.standard_normal((ny, nx))).astype(np.float32)
    ds = xr.Dataset(
        {"HH": (("y", "x"), hh), "HV": (("y", "x"), hv), "valid": (("y", "x"), np.ones((ny, nx), np.uint8))},
        coords={"y": -1_000_000.0 - 40 * (np.arange(ny) + 0.5), "x": 500_000.0 + 40 * (np.arange(nx) + 0.5)},
        attrs={"scene": name},
    )
    ds = ds.rio.write_crs(3413).rio.write_transform(TRANSFORM)
    return ds.chunk({"y": chunks, "x": chunks}) if chunks else ds


@pytest.fixture(scope="module")
def model() -> topics.TopicModel:
    return topics.fit(_scene(), n_topics=3, vocabulary=8, window=16, seed=1, max_iter=10)


def test_cell_features_are_the_cells_statistics() -> None:
    """Each cell's six features are its pixels' mean, std and mean neighbour difference; an invalid pixel voids it."""
    from eokit import _topic_cells as tc

    sc = _scene(8, 12)
    sc["HV"][1, 5] = np.nan  # cell (0, 1)
    f = tc.features(sc, block=tc.block_chunks(64, 4)).compute()
    assert f.shape == (2, 3, len(topics.FEATURES))
    hh = sc["HH"].values[4:8, 8:12].astype(float)
    tex = (np.abs(np.diff(hh, axis=1)).mean() + np.abs(np.diff(hh, axis=0)).mean()) / 2
    assert np.allclose(f[1, 2, [0, 2, 4]], [hh.mean(), hh.std(), tex])
    assert np.isnan(f[0, 1]).all() and np.isfinite(f[1, 1]).all()


def test_same_seed_same_result_whatever_the_chunking(model: topics.TopicModel) -> None:
    """Fitting and mapping with other dask chunks (input and blocks) gives the same words, model and map."""
    other = topics.fit(_scene(chunks=50), n_topics=3, vocabulary=8, window=16, seed=1, max_iter=10, chunks=16)
    assert np.array_equal(model.centroids, other.centroids)
    assert np.allclose(model.lda.components_, other.lda.components_)
    a = topics.topic_map(_scene(), model).values
    b = topics.topic_map(_scene(chunks=37), other).values
    assert np.array_equal(a, b)
    assert np.array_equal(topics.words(_scene(), model).values, topics.words(_scene(chunks=20), other).values)
    different = topics.fit(_scene(), n_topics=3, vocabulary=8, window=16, seed=2, max_iter=10)
    assert not np.array_equal(model.centroids, different.centroids)


def test_counts_cover_every_valid_cell_once(model: topics.TopicModel) -> None:
    sc = _scene()
    sc["valid"][:6, :6] = 0  # 4 cells touched (rows/cols 0..5 -> cells 0..1)
    c = topics.word_counts(sc, model)
    n_cells = (130 // 4) * (98 // 4)
    assert c.shape == (-(-32 // 4), -(-24 // 4), 8)  # 32x24 cells in windows of 4x4 cells
    assert int(c.sum()) == n_cells - 4
    w = topics.words(sc, model).values
    assert (w[:2, :2] == topics.NO_WORD).all() and (w >= 0).sum() == n_cells - 4


def test_topic_map_is_argmax_of_theta_times_phi_on_the_coarse_grid(model: topics.TopicModel) -> None:
    sc = _scene()
    tm = topics.topic_map(sc, model)
    assert tm.shape == (32, 24) and tm.dtype == np.uint8
    assert tm.rio.crs.to_epsg() == 3413 and tm.rio.transform() == TRANSFORM @ Affine.scale(4)
    theta = topics.mixtures(sc, model).values
    assert np.allclose(theta.sum(-1), 1)
    w = topics.words(sc, model).values
    r, c = 13, 21
    expect = np.argmax(theta[r // 4, c // 4] * model.phi[:, w[r, c]])
    assert tm.values[r, c] == expect
    assert set(np.unique(tm.values)) <= set(range(3))


def test_write_cog_is_a_georeferenced_cog_with_a_colour_table(model: topics.TopicModel, tmp_path) -> None:
    import rasterio

    tm = topics.topic_map(_scene(), model)
    out = topics.write_cog(tm, tmp_path / "topics.tif")
    with rasterio.open(out) as f:
        assert f.crs.to_epsg() == 3413 and f.transform == tm.rio.transform() and f.nodata == 255
        assert np.array_equal(f.read(1), tm.values)
        assert f.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert len(f.colormap(1)) >= 3
    with refuses(FileExistsError, "topics.tif"):
        topics.write_cog(tm, out)


def test_patch_mixtures_are_the_windows_mixtures_for_aligned_patches(model: topics.TopicModel) -> None:
    """A patch covering exactly one window has that window's mixture; the order follows row0/col0/scene."""
    s1, s2 = _scene(), _scene(seed=3, name="s2")
    patches = xr.Dataset(
        {
            "row0": ("patch", [16, 0, 32]),
            "col0": ("patch", [32, 0, 16]),
            "scene": ("patch", ["s2", "s1", "s1"]),
            "patch_size": ("patch", [16, 16, 16]),
        }
    )
    mix = topics.patch_mixtures({"s1": s1, "s2": s2}, model, patches)
    assert mix.shape == (3, 3)
    assert np.allclose(mix[0], topics.mixtures(s2, model).values[1, 2])
    assert np.allclose(mix[1], topics.mixtures(s1, model).values[0, 0])
    assert np.allclose(mix[2], topics.mixtures(s1, model).values[2, 1])


def test_dlr_topic_raster_becomes_the_same_map_form(tmp_path, model: topics.TopicModel) -> None:
    root = gen_dlr.make(tmp_path / "lda", "lda", size=64)
    ds = dlr.open(root, scene=gen_dlr.SCENES[0][-15:])
    ref = topics.from_dlr(ds)
    assert ref.shape == (16, 16) and ref.dtype == np.uint8
    assert np.array_equal(ref.values, np.asarray(ds["label"].values)[::4, ::4])
    assert ref.rio.transform() == ds.rio.transform() @ Affine.scale(4)
    mine = topics.topic_map(ds, model)
    assert mine.shape == ref.shape and mine.rio.transform() == ref.rio.transform()
    shuffled = ref.copy(data=np.random.default_rng(0).permutation(11).astype(np.uint8)[ref.values])
    agree = topics.compare(ref, shuffled)  # renamed topics are the same partition
    assert agree["ami"] == pytest.approx(1.0) and agree["cells"] == 256
    assert int(agree["contingency"].to_numpy().sum()) == 256
    assert (agree["contingency"].to_numpy() > 0).sum(1).max() == 1


def test_dlr_topic_table_becomes_the_same_map_form(tmp_path) -> None:
    root = gen_dlr.make(tmp_path / "lda", "lda", size=32)
    folder = root / gen_dlr.SCENES[0]
    (folder / f"{gen_dlr.SCENES[0]}_topics.tif").unlink()
    (folder / "topics.csv").write_text("row,col,topic\n0,0,3\n0,4,7\n28,28,10\n")
    ds = dlr.open(root, scene=gen_dlr.SCENES[0][-15:])
    assert ds.attrs["label_kind"] == "topic"
    ref = topics.from_dlr(ds).values
    assert ref[0, 0] == 3 and ref[0, 1] == 7 and ref[7, 7] == 10 and (ref == 255).sum() == 64 - 3


def test_plots_return_holoviews_objects(model: topics.TopicModel) -> None:
    import holoviews as hv

    sc = _scene()
    assert isinstance(topics.plot_topic_map(sc, topics.topic_map(sc, model)), hv.Layout)
    assert isinstance(topics.plot_topic_profiles(model), hv.Layout)
    mix = topics.mixtures(sc, model).values.reshape(-1, 3)
    assert isinstance(topics.plot_patch_topics(mix, np.arange(len(mix)) % 2, ["a", "b"]), hv.HeatMap)
    assert list(model.topic_profiles().columns) == list(topics.FEATURES)


@pytest.mark.bad_input
@pytest.mark.parametrize("window", [2, 0, 6, 3.5])
def test_refuses_a_window_smaller_than_4x4_or_off_the_cell_grid(window) -> None:
    with refuses(ValueError, "window", "4x4", repr(window)):
        topics.fit(_scene(), window=window)


@pytest.mark.bad_input
def test_refuses_a_scene_smaller_than_one_cell() -> None:
    with refuses(ValueError, "tiny", "3x9", "4x4 cell"):
        topics.fit(_scene(3, 9, name="tiny"))


@pytest.mark.bad_input
def test_refuses_a_scene_without_hh_or_hv(model: topics.TopicModel) -> None:
    with refuses(ValueError, "'HV'", "HH and HV"):
        topics.fit(_scene().drop_vars("HV"))
    with refuses(ValueError, "'HH'", "found"):
        topics.topic_map(_scene().drop_vars("HH"), model)


@pytest.mark.bad_input
@pytest.mark.parametrize("n", [1, 0, 2.0, True])
def test_refuses_fewer_than_two_topics(n) -> None:
    with refuses(ValueError, "n_topics", ">= 2"):
        topics.fit(_scene(), n_topics=n)


@pytest.mark.bad_input
def test_refuses_a_vocabulary_larger_than_the_cells_sampled() -> None:
    with refuses(ValueError, "vocabulary 20", "10 of 10", "cell_sample=10"):
        topics.fit(_scene(), vocabulary=20, cell_sample=10)
    sc = _scene(16, 16)
    sc["valid"][:] = 0
    with refuses(ValueError, "vocabulary 4", "0 of 16"):
        topics.fit(sc, vocabulary=4)


@pytest.mark.bad_input
def test_refuses_a_semantic_dlr_set_and_maps_of_other_grids(tmp_path, model: topics.TopicModel) -> None:
    ds = dlr.open(gen_dlr.make(tmp_path / "sem", "semantic", size=32), scene=gen_dlr.SCENES[0][-15:])
    with refuses(ValueError, "label_kind", "semantic", "topic"):
        topics.from_dlr(ds)
    with refuses(ValueError, "DataTree of 2 scenes", "scene="):
        topics.from_dlr(dlr.open(tmp_path / "sem"))
    a = topics.topic_map(_scene(), model)
    with refuses(ValueError, "32x24", "16x16", "same grid"):
        topics.compare(a, topics.topic_map(_scene(64, 64), model))


@pytest.mark.bad_input
def test_refuses_patches_of_a_scene_not_given_and_maps_without_crs(model: topics.TopicModel, tmp_path) -> None:
    patches = xr.Dataset({"row0": ("patch", [0]), "col0": ("patch", [0]), "scene": ("patch", ["elsewhere"])})
    with refuses(ValueError, "elsewhere", "s1"):
        topics.patch_mixtures(_scene(), model, patches, size=16)
    tm = topics.topic_map(_scene(), model)
    bare = xr.DataArray(tm.values, dims=("y", "x"), name="topic")
    with refuses(ValueError, "no CRS", "bare.tif"):
        topics.write_cog(bare, tmp_path / "bare.tif")

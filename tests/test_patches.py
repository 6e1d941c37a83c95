"""eokit.patches: purity on the stride grid, chunk independence, SAFE scenes, Zarr output, counts, errors."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Polygon, box

from badinput import refuses
from eokit import patches, sar
from eokit.schema import ICE_CLASSES, PATCH_SCHEMA, check_schema
from generators import sar as gen


@pytest.fixture()
def two_scenes(tmp_path):
    truths = [
        gen.write_geotiff_scene(tmp_path, f"scene_{k}", seed=k, origin=(600_000.0 + 5_000 * k, -1_100_000.0))
        for k in range(2)
    ]
    poly = gen.write_polygons(tmp_path / "ice_polygons.gpkg", truths)
    scenes = [sar.preprocess(sar.open(t["path"]))[0] for t in truths]
    return truths, poly, scenes


def _loop_reference(ids: np.ndarray, size: int, stride: int) -> set[tuple[int, int, int]]:
    """Plain per-patch loop: origins whose window holds one polygon id (>= 0)."""
    out = set()
    for r in range(0, ids.shape[0] - size + 1, stride):
        for c in range(0, ids.shape[1] - size + 1, stride):
            w = ids[r : r + size, c : c + size]
            if w.min() >= 0 and w.min() == w.max():
                out.add((r, c, int(w[0, 0])))
    return out


def test_quadrant_counts_and_schema(two_scenes):
    _, poly, scenes = two_scenes
    # 64 x 64 scenes, four 32 x 32 polygons: size 10 stride 10 -> 9 + 6 + 6 + 4 patches per scene
    ds = patches.extract(scenes, poly, size=10, stride=10)
    check_schema(ds, PATCH_SCHEMA)
    assert ds.sizes["patch"] == 50
    assert list(ds["channel"].values) == ["HH", "HV", "IA"]
    assert ds["image"].dtype == np.float32
    assert set(ds["scene"].values) == {"scene_0", "scene_1"}
    # the patch image is the scene's pixels at (row0, col0)
    k = 7
    s = scenes[0] if ds["scene"].values[k] == "scene_0" else scenes[1]
    r, c = int(ds["row0"][k]), int(ds["col0"][k])
    np.testing.assert_array_equal(ds["image"].values[k, :, :, 0], s["HH"].values[r : r + 10, c : c + 10])
    np.testing.assert_array_equal(ds["image"].values[k, :, :, 2], s["IA"].values[r : r + 10, c : c + 10])
    # labels follow the polygons (scene_1's classes are shifted by one)
    first = ds.isel(patch=ds["scene"] == "scene_1")
    assert sorted(set(first["label"].values.tolist())) == [1, 2, 3, 4]
    assert (ds["label_name"].values == np.array(ICE_CLASSES)[ds["label"].values]).all()


def test_matches_plain_loop_on_irregular_polygons(tmp_path):
    truth = gen.write_geotiff_scene(tmp_path, "s", height=96, width=80)
    t = truth["transform"]
    rng = np.random.default_rng(1)
    geoms = []
    for _ in range(6):  # random convex-ish polygons, some overlapping, some crossing the edge
        cx, cy = rng.uniform(0, 80), rng.uniform(0, 96)
        ang = np.sort(rng.uniform(0, 2 * np.pi, 7))
        rad = rng.uniform(10, 30, 7)
        geoms.append(
            Polygon(
                [
                    (t.c + (cx + r * np.cos(a)) * t.a, t.f - (cy + r * np.sin(a)) * t.a)
                    for a, r in zip(ang, rad, strict=True)
                ]
            )
        )
    gdf = gpd.GeoDataFrame(
        {"ice_class": rng.integers(0, 6, 6), "polygon_id": np.arange(100, 106)}, geometry=geoms, crs=3413
    )
    scene = sar.open(truth["path"])
    from rasterio.features import rasterize

    ids = rasterize(
        zip(gdf.geometry, gdf["polygon_id"], strict=True), out_shape=(96, 80), transform=t, fill=-1, dtype="int32"
    )
    for size, stride, chunks in [(10, 10, 2048), (20, 10, 30), (8, 3, 25)]:
        ds = patches.extract(scene, gdf, size=size, stride=stride, chunks=chunks, progress=False)
        got = set(
            zip(ds["row0"].values.tolist(), ds["col0"].values.tolist(), ds["polygon_id"].values.tolist(), strict=True)
        )
        assert got == _loop_reference(ids, size, stride)
        labels = dict(zip(gdf["polygon_id"], gdf["ice_class"], strict=True))
        assert all(labels[p] == lab for p, lab in zip(ds["polygon_id"].values, ds["label"].values, strict=True))


def test_min_fraction_keeps_mixed_patches(two_scenes):
    _, poly, scenes = two_scenes
    pure = patches.extract(scenes[0], poly, size=10, stride=5, min_fraction=1.0, progress=False)
    mixed = patches.extract(scenes[0], poly, size=10, stride=5, min_fraction=0.6, progress=False)
    assert mixed.sizes["patch"] > pure.sizes["patch"]
    # a patch straddling the vertical boundary at column 32 with 7 of 10 columns left of it
    pick = mixed.isel(patch=(mixed["row0"] == 0) & (mixed["col0"] == 25))
    assert pick.sizes["patch"] == 1 and int(pick["label"][0]) == 0
    assert not ((pure["row0"] == 0) & (pure["col0"] == 25)).any()


def test_chunked_scene_gives_same_patches_lazily(two_scenes, tmp_path):
    truths, poly, _ = two_scenes
    eager = patches.extract(sar.preprocess(sar.open(truths[0]["path"]))[0], poly, size=10, progress=False)
    lazy_scene = sar.preprocess(sar.open(truths[0]["path"], chunks={"y": 16, "x": 16}))[0]
    lazy = patches.extract(lazy_scene, poly, size=10, chunks=20, progress=False)
    assert lazy["image"].chunks is not None
    np.testing.assert_array_equal(lazy["image"].values, eager["image"].values)
    np.testing.assert_array_equal(lazy["row0"].values, eager["row0"].values)


def test_safe_scene_patches_through_gcps(tmp_path):
    truth = gen.write_safe(tmp_path, lines=60, pixels=80)
    scene = sar.preprocess(sar.open(truth["path"]))[0]
    g = truth["grid"]
    # one polygon in lon/lat around the image's upper-left quarter, in EPSG:3413 like the UiT/METNO charts
    corners = [(0, 0), (0, 2), (2, 2), (2, 0)]  # grid indices (line, pixel) of the quarter
    ring = [(g["lon"][j, i], g["lat"][j, i]) for j, i in corners]
    gdf = gpd.GeoDataFrame({"ice_class": [4]}, geometry=[Polygon(ring)], crs=4326).to_crs(3413)
    ds = patches.extract(scene, gdf, size=10, stride=10, progress=False)
    assert ds.sizes["patch"] > 0
    assert (ds["label"] == 4).all()
    assert int(ds["row0"].max()) + 10 <= g["line"][2] + 1 and int(ds["col0"].max()) + 10 <= g["pixel"][2] + 1


def test_write_read_zarr_and_counts(two_scenes, tmp_path):
    _, poly, scenes = two_scenes
    sets = {s: patches.extract(scenes, poly, size=s, stride=10, progress=False) for s in (10, 20)}
    store = patches.write_patches(sets[10], tmp_path / "patches" / "patches_10.zarr")
    with pytest.raises(FileExistsError):
        patches.write_patches(sets[10], store)
    patches.write_patches(sets[10], store, overwrite=True)
    back = patches.read_patches(store)
    np.testing.assert_array_equal(back["image"].values, sets[10]["image"].values)
    assert back["scene"].values.tolist() == sets[10]["scene"].values.tolist()
    counts = patches.patch_counts(sets)
    assert list(counts.columns) == ["10x10", "20x20"]
    assert counts.loc["total", "10x10"] == 50
    assert counts.loc["UiT mission total (31 scenes)", "20x20"] == 16574
    assert counts.loc[list(ICE_CLASSES), "20x20"].sum() == sets[20].sizes["patch"]


def test_bad_inputs(two_scenes):
    truths, poly, scenes = two_scenes
    with pytest.raises(ValueError, match=r"patch size 100 is larger than scene 'scene_0' \(64 x 64"):
        patches.extract(scenes[0], poly, size=100)
    far = gpd.GeoDataFrame(
        {"ice_class": [1, 2], "polygon_id": [5, 6]},
        geometry=[box(0, 0, 1000, 1000), box(600_100, -1_100_500, 600_500, -1_100_100)],
        crs=3413,
    )
    with pytest.raises(ValueError, match=r"1 of 2 polygons lie outside scene 'scene_0'.*polygon_id \[5\]"):
        patches.extract(scenes[0], far, size=10)
    with pytest.raises(ValueError, match="min_fraction"):
        patches.extract(scenes[0], poly, size=10, min_fraction=0)


def test_positions_without_images_and_plots(two_scenes, tmp_path):
    _, poly, scenes = two_scenes
    pos = patches.positions(scenes[0], poly, size=20, stride=10, progress=False)
    ds = patches.extract(scenes[0], poly, size=20, stride=10, progress=False)
    assert pos["row0"].tolist() == ds["row0"].values.tolist() and pos["label"].tolist() == ds["label"].values.tolist()
    with pytest.warns(DeprecationWarning, match=r"plot_scene\(path=\.\.\.\) is deprecated"):
        fig = patches.plot_scene(scenes[0], poly, path=tmp_path / "fig" / "scene.png")
    assert (tmp_path / "fig" / "scene.png").stat().st_size > 0 and len(fig.axes) >= 3
    with pytest.warns(DeprecationWarning, match=r"plot_examples\(path=\.\.\.\) is deprecated"):
        patches.plot_examples(ds, per_class=2, path=tmp_path / "fig" / "ex.png")
    assert (tmp_path / "fig" / "ex.png").exists()
    with pytest.raises(ValueError, match="empty"):
        patches.plot_examples(ds.isel(patch=slice(0, 0)))


def test_no_patch_fits_gives_empty_valid_store(two_scenes, tmp_path):
    truths, _, scenes = two_scenes
    t = truths[0]["transform"]
    tiny = gpd.GeoDataFrame({"ice_class": [1]}, geometry=[box(t.c, t.f - 200, t.c + 200, t.f)], crs=3413)  # 5x5 px
    ds = patches.extract(scenes[0], tiny, size=10, progress=False)
    assert ds.sizes["patch"] == 0
    check_schema(ds, PATCH_SCHEMA)
    back = patches.read_patches(patches.write_patches(ds, tmp_path / "empty.zarr"))
    assert back.sizes["patch"] == 0 and back.sizes["row"] == 10
    assert patches.patch_counts(ds).loc["total", "10x10"] == 0


def test_mixed_patches_never_hold_invalid_pixels(tmp_path):
    truth = gen.write_geotiff_scene(tmp_path, "s", nodata_rows=3)
    poly = gen.write_polygons(tmp_path / "p.gpkg", [truth])
    scene = sar.preprocess(sar.open(truth["path"]))[0]
    ds = patches.extract(scene, poly, size=10, stride=2, min_fraction=0.5, progress=False)
    assert ds.sizes["patch"] > 0 and int(ds["row0"].min()) >= 3
    assert np.isfinite(ds["image"].values).all()


# --- hostile inputs (tests/badinput.py contract) ----------------------------------------------------------


@pytest.fixture()
def one_scene(tmp_path):
    truth = gen.write_geotiff_scene(tmp_path, "scene_0", seed=0, origin=(600_000.0, -1_100_000.0))
    poly = gen.write_polygons(tmp_path / "ice_polygons.gpkg", [truth])
    return sar.preprocess(sar.open(truth["path"]))[0], poly


@pytest.mark.bad_input
def test_patch_larger_than_the_scene(one_scene):
    scene, poly = one_scene
    with refuses(ValueError, "patch size 100", "scene_0", "64 x 64 pixels"):
        patches.extract(scene, poly, size=100, progress=False)


@pytest.mark.bad_input
@pytest.mark.parametrize("stride", [0, -3])
def test_stride_must_be_positive(one_scene, stride):
    scene, poly = one_scene
    with refuses(ValueError, f"stride={stride}", "must be positive"):
        patches.extract(scene, poly, size=10, stride=stride, progress=False)


@pytest.mark.bad_input
@pytest.mark.parametrize("size", [10.5, True, "10"])
def test_patch_size_must_be_a_whole_number(one_scene, size):
    # before: 10.5 crashed in xarray ("conflicting sizes for dimension 'row'"), True gave 1 x 1 patches
    scene, poly = one_scene
    with refuses(ValueError, "patch size", "whole number of pixels", repr(size)):
        patches.extract(scene, poly, size=size, progress=False)


@pytest.mark.bad_input
def test_scene_without_a_channel(one_scene):
    scene, poly = one_scene
    with refuses(ValueError, "scene_0", "lacks channel(s) ['HV']", "found"):
        patches.extract(scene.drop_vars("HV"), poly, size=10, progress=False)


@pytest.mark.bad_input
@pytest.mark.parametrize("channels, expected", [("HH", "list of variable names"), ([], "at least one variable")])
def test_channels_must_be_a_non_empty_list(one_scene, channels, expected):
    # before: "HH" was read as channels ['H', 'H']; [] crashed inside xarray
    scene, poly = one_scene
    with refuses(ValueError, "channels", expected):
        patches.extract(scene, poly, size=10, channels=channels, progress=False)


@pytest.mark.bad_input
def test_scene_without_x_dimension(one_scene):
    scene, poly = one_scene
    with refuses(ValueError, "scene_0", "['x']", "expected (y, x)"):
        patches.extract(scene.rename(x="col"), poly, size=10, progress=False)


@pytest.mark.bad_input
def test_min_fraction_must_be_a_number_in_range(one_scene):
    scene, poly = one_scene
    with refuses(ValueError, "min_fraction", "(0, 1]", "'0.5'"):
        patches.extract(scene, poly, size=10, min_fraction="0.5", progress=False)


@pytest.mark.bad_input
@pytest.mark.parametrize("chunks", [0, -5, {"y": 0, "x": 64}])
def test_chunks_must_be_positive(one_scene, chunks):
    scene, poly = one_scene
    with refuses(ValueError, "chunks", "positive number of pixels"):
        patches.positions(scene, poly, size=10, chunks=chunks, progress=False)


@pytest.mark.bad_input
def test_polygons_outside_the_scene_are_named(one_scene):
    scene, poly = one_scene
    far = gpd.GeoDataFrame(
        {"ice_class": [1, 2], "polygon_id": [5, 6]},
        geometry=[box(0, 0, 1000, 1000), box(600_100, -1_100_500, 600_500, -1_100_100)],
        crs=3413,
    )
    with refuses(
        ValueError, "1 of 2 polygons lie outside scene 'scene_0'", "polygon_id [5]", "check the polygons' CRS"
    ):
        patches.extract(scene, far, size=10, progress=False)


@pytest.mark.bad_input
def test_ice_class_outside_the_six_classes(one_scene):
    scene, poly = one_scene
    gdf = gpd.read_file(poly).assign(ice_class=7)
    with refuses(ValueError, "'ice_class'", "outside 0..5", "[7]"):
        patches.extract(scene, gdf, size=10, progress=False)


@pytest.mark.bad_input
@pytest.mark.parametrize("ids", [[1.0, np.nan, 2.0, 3.0], ["a", "b", "c", "d"]])
def test_polygon_ids_must_be_whole_numbers(one_scene, ids):
    # before: IntCastingNaNError / "invalid literal for int()"
    scene, poly = one_scene
    gdf = gpd.read_file(poly).assign(polygon_id=ids)
    with refuses(ValueError, "scene_0", "'polygon_id'", "whole numbers"):
        patches.extract(scene, gdf, size=10, progress=False)


@pytest.mark.bad_input
@pytest.mark.parametrize("value", [7, -1])
def test_patch_counts_refuses_labels_outside_the_classes(one_scene, value):
    # before: label 7 was silently left out of every count (total 0); -1 raised a numpy bincount error
    scene, poly = one_scene
    ds = patches.extract(scene, poly, size=10, progress=False)
    bad = ds.assign(label=ds["label"] * 0 + value)
    with refuses(ValueError, "patch set 10x10", "'label'", "ice class ids 0..5", f"[{value}]"):
        patches.patch_counts(bad)


@pytest.mark.bad_input
def test_read_patches_on_a_folder_that_is_not_zarr(tmp_path):
    (tmp_path / "notzarr").mkdir()
    (tmp_path / "notzarr" / "x.txt").write_text("hi")
    with refuses(ValueError, "notzarr", "cannot be opened as a Zarr store", "write_patches"):
        patches.read_patches(tmp_path / "notzarr")


@pytest.mark.bad_input
def test_plot_examples_unknown_channel(one_scene):
    scene, poly = one_scene
    ds = patches.extract(scene, poly, size=10, progress=False)
    with refuses(ValueError, "channel 'VV'", "channels are ['HH', 'HV', 'IA']"):
        patches.plot_examples(ds, channel="VV")


def test_plot_scene_draws_the_first_scene_row_at_the_top_like_the_polygon_outlines():
    """The image and the outlines (y = rows - row) must agree: a bright first row is drawn at the top."""
    import xarray as xr

    hh = np.full((20, 30), -30.0)
    hh[:3] = 0.0  # the first three rows (the scene's top) bright
    scene = xr.Dataset(
        {"HH": (("y", "x"), hh), "HV": (("y", "x"), hh - 5), "IA": (("y", "x"), np.full((20, 30), 30.0))}
    )
    layout = patches.plot_scene(scene)
    image = next(el for el in layout.values()[0].values() if type(el).__name__ == "Image")
    assert image[5.5, 19.5] == 0.0 and image[5.5, 0.5] == -30.0  # (x, y): near the top, near the bottom


# --- property tests: random polygons against plain per-patch loops -------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_star = st.tuples(
    st.floats(0, 1),  # centre, as a fraction of the scene's width and height
    st.floats(0, 1),
    st.floats(0, 2 * np.pi),  # first vertex angle
    st.lists(st.floats(2.0, 30.0), min_size=3, max_size=8),  # radii of evenly spaced vertices
    st.integers(0, 5),  # ice class
)


def _pixel_scene(height: int, width: int, stars: list, nan_seed: int | None):
    """A (y, x) HH/HV/IA scene whose CRS coordinates are (col, -row) and star polygons in pixel space."""
    import xarray as xr
    from affine import Affine

    rng = np.random.default_rng(len(stars) + height * width)
    data = {c: rng.normal(size=(height, width)).astype(np.float32) for c in ("HH", "HV", "IA")}
    if nan_seed is not None:
        holes = np.random.default_rng(nan_seed).random((height, width)) < 0.03
        data["HV"][holes] = np.nan
    scene = xr.Dataset(
        {c: (("y", "x"), v) for c, v in data.items()},
        coords={"y": -(np.arange(height) + 0.5), "x": np.arange(width) + 0.5},
        attrs={"scene": "prop"},
    )
    scene = scene.rio.write_crs(3413).rio.write_transform(Affine(1.0, 0, 0.0, 0, -1.0, 0.0))
    pix = []
    for fx, fy, a0, radii, _ in stars:
        cx, cy = fx * width, fy * height
        ang = a0 + 2 * np.pi * np.arange(len(radii)) / len(radii)
        pix.append(Polygon([(cx + r * np.cos(a), cy + r * np.sin(a)) for a, r in zip(ang, radii, strict=True)]))
    crs = [Polygon([(x, -y) for x, y in p.exterior.coords]) for p in pix]
    gdf = gpd.GeoDataFrame(
        {"ice_class": [s[4] for s in stars], "polygon_id": 1000 + 7 * np.arange(len(stars))}, geometry=crs, crs=3413
    )
    return scene, gdf, pix


@settings(max_examples=40, deadline=None)
@given(
    height=st.integers(12, 48),
    width=st.integers(12, 48),
    stars=st.lists(_star, min_size=1, max_size=5),
    size=st.integers(1, 12),
    stride=st.integers(1, 7),
    chunks=st.sampled_from([5, 16, 40, 2048]),
    nan_seed=st.none() | st.integers(0, 9),
    lazy=st.booleans(),
)
def test_extract_equals_plain_loop_on_ids_for_random_polygons(
    height, width, stars, size, stride, chunks, nan_seed, lazy
):
    """Same patches, order, labels, polygon ids and images as a per-patch loop on ids rasterised once."""
    from rasterio.features import rasterize

    scene, gdf, pix = _pixel_scene(height, width, stars, nan_seed)
    size = min(size, height, width)
    ids = rasterize(zip(pix, range(len(pix)), strict=True), out_shape=(height, width), fill=-1, dtype="int32")
    ids[~np.isfinite(scene["HV"].values)] = -1
    img = np.stack([scene[c].values for c in ("HH", "HV", "IA")], axis=-1)
    want = [
        (r, c, int(ids[r, c]))
        for r in range(0, height - size + 1, stride)
        for c in range(0, width - size + 1, stride)
        if ids[r, c] >= 0 and (ids[r : r + size, c : c + size] == ids[r, c]).all()
    ]
    src = scene.chunk({"y": 9, "x": 11}) if lazy else scene
    ds = patches.extract(src, gdf, size=size, stride=stride, chunks=chunks, progress=False)
    assert list(zip(ds["row0"].values.tolist(), ds["col0"].values.tolist(), strict=True)) == [w[:2] for w in want]
    k = np.array([w[2] for w in want], dtype=int)
    np.testing.assert_array_equal(ds["polygon_id"].values, gdf["polygon_id"].to_numpy()[k])
    np.testing.assert_array_equal(ds["label"].values, gdf["ice_class"].to_numpy()[k])
    expected = np.array([img[r : r + size, c : c + size] for r, c, _ in want], dtype=np.float32)
    np.testing.assert_array_equal(ds["image"].values, expected.reshape(len(want), size, size, 3))


@settings(max_examples=30, deadline=None)
@given(
    height=st.integers(16, 48),
    width=st.integers(16, 48),
    stars=st.lists(_star, min_size=1, max_size=4),
    size=st.integers(2, 10),
    stride=st.integers(1, 6),
)
def test_extract_brackets_the_shapely_contains_loop_for_random_polygons(height, width, stars, size, stride):
    """Footprints inside one polygon and touching no other are kept with its label; kept windows' pixel
    centres all lie in their polygon (the pixel-centre rule differs from `contains` only at the edges)."""
    from shapely.geometry import MultiPoint

    scene, gdf, pix = _pixel_scene(height, width, stars, None)
    ds = patches.extract(scene, gdf, size=size, stride=stride, chunks=16, progress=False)
    got = dict(
        zip(
            zip(ds["row0"].values.tolist(), ds["col0"].values.tolist(), strict=True),
            zip(ds["polygon_id"].values.tolist(), ds["label"].values.tolist(), strict=True),
            strict=True,
        )
    )
    pid = gdf["polygon_id"].to_numpy()
    for r in range(0, height - size + 1, stride):
        for c in range(0, width - size + 1, stride):
            foot = box(c, r, c + size, r + size)
            inside = [k for k, p in enumerate(pix) if p.contains(foot)]
            if len(inside) == 1 and sum(p.intersects(foot) for p in pix) == 1:
                assert got.get((r, c)) == (pid[inside[0]], stars[inside[0]][4])
    by_id = dict(zip(pid.tolist(), pix, strict=True))
    for (r, c), (p, _) in got.items():
        centres = MultiPoint([(c + 0.5 + i, r + 0.5 + j) for i in range(size) for j in range(size)])
        assert by_id[p].buffer(1e-6).covers(centres)

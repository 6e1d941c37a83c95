"""Evaluation protocols: random, spatially disjoint (blocks, fields, tiles) and leave-tile-out splits."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from badinput import refuses
from eokit import splits
from generators.training_sets import timeseries_set


@pytest.fixture(scope="module")
def ds():
    return timeseries_set(n_per_class=20, n_classes=4, seed=1)


def _disjoint(sp: splits.Split, n: int) -> None:
    parts = [set(sp.train.tolist()), set(sp.val.tolist()), set(sp.test.tolist())]
    assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
    assert sum(len(p) for p in parts) == n


def test_random_split_is_stratified_and_seeded(ds):
    a = splits.random_split(ds, test_fraction=0.25, val_fraction=0.1, seed=3)
    b = splits.random_split(ds, test_fraction=0.25, val_fraction=0.1, seed=3)
    c = splits.random_split(ds, test_fraction=0.25, val_fraction=0.1, seed=4)
    _disjoint(a, ds.sizes["sample"])
    assert np.array_equal(a.test, b.test) and not np.array_equal(a.test, c.test)
    counts = np.bincount(ds["label"].values[a.test])
    assert counts.max() - counts.min() <= 1  # stratified: 15 of each class
    assert a.describe()["n_test"] == len(a.test) == 60


@pytest.mark.parametrize("by,kw", [("xy", {"block_size": 5000.0}), ("field", {}), ("tile", {})])
def test_block_split_never_shares_a_field_or_block(ds, by, kw):
    sp = splits.block_split(ds, by=by, test_fraction=0.34, val_fraction=0.1 if by != "tile" else 0.0, seed=0, **kw)
    _disjoint(sp, ds.sizes["sample"])
    fid = ds["field_id"].values
    assert not set(fid[sp.train]) & set(fid[sp.test])
    if by == "xy":

        def cell(i):
            return (ds["tile"].values[i], np.floor(ds["x"].values[i] / 5000), np.floor(ds["y"].values[i] / 5000))

        assert not {cell(i) for i in sp.train} & {cell(i) for i in sp.test}
    if by == "tile":
        assert len(set(ds["tile"].values[sp.test])) == 1
    assert sp.protocol == {"xy": "block", "field": "field", "tile": "tile"}[by]


def test_tile_split_holds_out_tiles(ds):
    sp = splits.tile_split(ds, ["33UVP"], val_fraction=0.2, seed=0)
    tiles = ds["tile"].values
    assert set(tiles[sp.test]) == {"33UVP"} and "33UVP" not in set(tiles[sp.train]) | set(tiles[sp.val])
    # validation is made of whole fields
    fid = ds["field_id"].values
    assert not set(fid[sp.train]) & set(fid[sp.val])
    tr, va, te = sp.select(ds)
    assert te.sizes["sample"] == (tiles == "33UVP").sum()
    sp2 = splits.tile_split(ds, ["33UVP"], val_tiles=["33TWN"])
    assert set(tiles[sp2.val]) == {"33TWN"} and set(tiles[sp2.train]) == {"33UWP"}
    assert splits.make_split(ds, "tile", test_tiles=["33UVP"]).describe()["test_tiles"] == ["33UVP"]


def test_unknown_tile_is_a_clear_error(ds):
    with pytest.raises(ValueError, match=r"not in the data; available tiles: \['33TWN', '33UVP', '33UWP'\]"):
        splits.tile_split(ds, ["2019_33UVP"])


def test_split_leaving_a_class_without_training_samples_raises(ds):
    # class 2 only exists in 33UVP
    keep = ~((ds["tile"].values != "33UVP") & (ds["label"].values == 2))
    sub = ds.isel(sample=np.flatnonzero(keep))
    with pytest.raises(ValueError, match=r"without training samples: test: 'class2' \(id 2, 20 samples\)"):
        splits.tile_split(sub, ["33UVP"])
    sp = splits.tile_split(sub, ["33UVP"], unseen="drop")
    assert 2 not in set(sub["label"].values[sp.test]) and sp.params["dropped"]["test"] == 20


def test_block_split_needs_coordinates(ds):
    with pytest.raises(ValueError, match="needs per-sample 'x' and 'y'"):
        splits.block_split(ds.drop_vars(["x", "y"]), block_size=1000)
    with pytest.raises(ValueError, match="positive block_size"):
        splits.block_split(ds, by="xy")
    with pytest.raises(ValueError, match="unknown split protocol"):
        splits.make_split(ds, "spatial")


# --- hostile inputs (tests/badinput.py contract) ----------------------------------------------------------


@pytest.mark.bad_input
@pytest.mark.parametrize("protocol", ["spatial", "Random", ""])
def test_unknown_protocol(ds, protocol):
    with refuses(ValueError, f"unknown split protocol {protocol!r}", "'random', 'block', 'field' or 'tile'"):
        splits.make_split(ds, protocol)


@pytest.mark.bad_input
def test_block_larger_than_the_area(ds):
    with refuses(ValueError, "block_size of 1000000000.0", "one block", "smaller blocks"):
        splits.block_split(ds.drop_vars("tile"), block_size=1e9)


@pytest.mark.bad_input
@pytest.mark.parametrize("size", [float("nan"), -5, 0, "5000"])
def test_block_size_must_be_a_positive_number(ds, size):
    # before: NaN put every sample of a tile into one garbage block, silently
    with refuses(ValueError, "block_size", "positive"):
        splits.block_split(ds, block_size=size)


@pytest.mark.bad_input
def test_class_only_on_the_test_side(ds):
    keep = ~((ds["tile"].values != "33UVP") & (ds["label"].values == 2))
    sub = ds.isel(sample=np.flatnonzero(keep))
    with refuses(ValueError, "test: 'class2' (id 2, 20 samples)", "without training samples", "unseen='drop'"):
        splits.tile_split(sub, ["33UVP"])


@pytest.mark.bad_input
def test_no_test_tile_is_an_empty_side(ds):
    # before: an empty list gave a split with an empty test set
    with refuses(ValueError, "test_tiles", "at least one test tile"):
        splits.tile_split(ds, [])


@pytest.mark.bad_input
def test_every_tile_held_out_leaves_no_training_side(ds):
    # before: "cannot split 0 group(s) into two parts"
    with refuses(ValueError, "['33UVP', '33TWN', '33UWP']", "leaves no training samples", "available tiles"):
        splits.tile_split(ds, ["33UVP", "33TWN", "33UWP"])


@pytest.mark.bad_input
@pytest.mark.parametrize("value", [np.nan, 0.5])
def test_labels_must_be_whole_class_ids(ds, value):
    # before: NaN became class -9223372036854775808 and 0.5 became class 0, silently
    bad = ds.copy()
    lab = bad["label"].values.astype(float)
    lab[0] = value
    bad["label"] = ("sample", lab)
    with refuses(ValueError, "'label'", "whole-number class ids", "samples [0]"):
        splits.random_split(bad)


@pytest.mark.bad_input
def test_dataset_without_label(ds):
    with refuses(ValueError, "no 'label' variable", "per-sample integer class ids"):
        splits.random_split(ds.drop_vars("label"))


@pytest.mark.bad_input
def test_block_split_with_nan_coordinates(ds):
    # before: NaN coordinates formed one block of their own, silently
    bad = ds.copy()
    x = bad["x"].values.copy()
    x[:5] = np.nan
    bad["x"] = ("sample", x)
    with refuses(ValueError, "'x'/'y'", "finite map coordinates", "samples [0, 1, 2, 3, 4]"):
        splits.block_split(bad, block_size=5000)


@pytest.mark.bad_input
@pytest.mark.parametrize("seed", [-1, 1.5, 2**32])
def test_seed_must_be_a_whole_number_in_range(ds, seed):
    # before: scikit-learn's InvalidParameterError about 'random_state'
    with refuses(ValueError, "seed", "0 .. 2**32 - 1", repr(seed)):
        splits.random_split(ds, seed=seed)


@pytest.mark.bad_input
@pytest.mark.parametrize("n", [0, 1])
def test_too_few_samples(ds, n):
    # before: numpy "zero-size array to reduction operation" for 0 samples
    with refuses(ValueError, "at least 3 samples", f"has {n}"):
        splits.random_split(ds.isel(sample=slice(0, n)))


@pytest.mark.bad_input
@pytest.mark.parametrize("frac", [1.5, -0.2])
def test_tile_split_validation_fraction_out_of_range(ds, frac):
    # before: 1.5 was accepted and put as many samples in validation as in training
    with refuses(ValueError, "val_fraction", f"got {frac}"):
        splits.tile_split(ds, ["33UVP"], val_fraction=frac)


@pytest.mark.bad_input
def test_select_on_another_dataset(ds):
    # before: IndexError from xarray
    sp = splits.random_split(ds)
    with refuses(ValueError, "indexes sample", "has 10 along 'sample'", "the dataset the split was made of"):
        sp.select(ds.isel(sample=slice(0, 10)))


@pytest.mark.bad_input
def test_fractions_out_of_range(ds):
    with refuses(ValueError, "0 < test_fraction < 1", "got 0.6, 0.5"):
        splits.random_split(ds, test_fraction=0.6, val_fraction=0.5)


# --- the group column as a parameter (patch sets split by scene, no renaming) ---------------------------------


@pytest.fixture(scope="module")
def patches():
    from generators.training_sets import patch_set

    ps = patch_set(n_per_class=16, n_classes=3)
    ps["scene"] = ("patch", np.array(["sceneA", "sceneB", "sceneC"])[ps["polygon_id"].values % 3])
    return ps


def test_tile_split_by_scene_within_polygons_equals_the_renamed_split(patches):
    sp = splits.tile_split(patches, ["sceneB"], val_fraction=0.25, seed=0, by="scene", within="polygon_id")
    old = splits.tile_split(
        patches.rename({"scene": "tile", "polygon_id": "field_id"}), ["sceneB"], val_fraction=0.25, seed=0
    )
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(sp, part), getattr(old, part))
    scene, poly = patches["scene"].values, patches["polygon_id"].values
    assert set(scene[sp.test]) == {"sceneB"} and "sceneB" not in set(scene[sp.train]) | set(scene[sp.val])
    assert len(sp.val) and not set(poly[sp.train]) & set(poly[sp.val])  # whole polygons in validation
    assert sp.protocol == "scene"
    assert sp.describe()["by"] == "scene" and sp.params["test_groups"] == ["sceneB"]
    te = sp.select(patches)[2]
    assert te.sizes["patch"] == (scene == "sceneB").sum()


def test_tile_split_default_params_unchanged(ds):
    sp = splits.tile_split(ds, ["33UVP"], val_fraction=0.2, seed=0)
    assert sp.params == {"test_tiles": ["33UVP"], "val_tiles": [], "val_fraction": 0.2, "seed": 0}
    same = splits.tile_split(ds, ["33UVP"], val_fraction=0.2, seed=0, by="tile", within="field_id")
    np.testing.assert_array_equal(sp.val, same.val)


def test_block_split_by_any_per_sample_variable(patches):
    sp = splits.block_split(patches, by="polygon_id", test_fraction=0.3, val_fraction=0.0, seed=0)
    poly = patches["polygon_id"].values
    assert not set(poly[sp.train]) & set(poly[sp.test])
    assert sp.protocol == "polygon_id" and sp.params["n_groups"] == len(np.unique(poly))
    by_scene = splits.block_split(patches, by="scene", test_fraction=0.34, val_fraction=0.0, seed=0)
    assert len(set(patches["scene"].values[by_scene.test])) == 1


@pytest.mark.bad_input
def test_group_column_must_exist(patches):
    with refuses(ValueError, "by must be", "per-sample variable", "'polygon_id'", "'orbit'"):
        splits.block_split(patches, by="orbit")
    with refuses(ValueError, "leave-orbit-out", "per-sample 'orbit' variable"):
        splits.tile_split(patches, ["a"], by="orbit")
    with refuses(ValueError, "within='field'", "not a variable"):
        splits.tile_split(patches, ["sceneA"], by="scene", within="field")
    with refuses(ValueError, "test 'scene' values ['sceneZ']", "not in the data", "available 'scene' values"):
        splits.tile_split(patches, ["sceneZ"], by="scene")


# --- spatial group k-fold ----------------------------------------------------------------------------------


def _cells(ds, idx, size=5000.0):
    t, x, y = ds["tile"].values, ds["x"].values, ds["y"].values
    return {(t[i], np.floor(x[i] / size), np.floor(y[i] / size)) for i in idx}


@pytest.mark.parametrize("by,kw", [("xy", {"block_size": 5000.0}), ("field", {})])
def test_block_folds_test_every_sample_once_and_never_cut_a_group(ds, by, kw):
    folds = splits.block_folds(ds, n_folds=4, by=by, val_fraction=0.1, seed=0, **kw)
    n = ds.sizes["sample"]
    assert len(folds) == 4
    tested = np.concatenate([f.test for f in folds])
    assert np.array_equal(np.sort(tested), np.arange(n))  # every sample in exactly one test fold
    fid = ds["field_id"].values
    for k, f in enumerate(folds):
        _disjoint(f, n)
        assert len(f.val) and f.params["fold"] == k and f.params["n_folds"] == 4
        for part in (f.train, f.val):
            assert not set(fid[part]) & set(fid[f.test])
        assert not set(fid[f.train]) & set(fid[f.val])  # validation of whole groups, too
        if by == "xy":
            assert not _cells(ds, f.train) & _cells(ds, f.test) and not _cells(ds, f.val) & _cells(ds, f.test)
        assert f.protocol == {"xy": "block", "field": "field"}[by]
    if by == "field":  # 60 one-class fields of 4 samples, 15 per class: 15 fields a fold, 3 or 4 of each class
        assert {len(f.test) for f in folds} == {60}
        per_class = np.array([np.bincount(ds["label"].values[f.test], minlength=4) for f in folds])
        assert set(per_class.ravel().tolist()) <= {12, 16}


def test_block_folds_are_seeded(ds):
    a = splits.block_folds(ds, n_folds=3, by="field", seed=5)
    b = splits.block_folds(ds, n_folds=3, by="field", seed=5)
    c = splits.block_folds(ds, n_folds=3, by="field", seed=6)
    for fa, fb in zip(a, b, strict=True):
        for part in ("train", "val", "test"):
            np.testing.assert_array_equal(getattr(fa, part), getattr(fb, part))
    assert any(not np.array_equal(fa.test, fc.test) for fa, fc in zip(a, c, strict=True))


def _grouped_set(sizes: list[int], n_classes: int) -> xr.Dataset:
    """Samples in groups of the given sizes, each group cycling through the classes from its own offset."""
    group = np.repeat(np.arange(len(sizes)), sizes)
    label = np.concatenate([(np.arange(s) + g) % n_classes for g, s in enumerate(sizes)])
    return xr.Dataset({"label": ("sample", label), "block": ("sample", group)})


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    st.lists(st.integers(3, 30), min_size=3, max_size=25),
    st.integers(2, 3),
    st.integers(2, 5),
    st.integers(0, 2**32 - 1),
)
def test_block_folds_partition_the_groups(sizes, n_classes, n_folds, seed):
    n_folds = min(n_folds, len(sizes))
    sub = _grouped_set(sizes, n_classes)
    folds = splits.block_folds(sub, n_folds=n_folds, by="block", val_fraction=0.0, seed=seed)
    group = sub["block"].values
    owner = {}
    for k, f in enumerate(folds):
        assert len(f.test) and not set(group[f.train]) & set(group[f.test])
        assert np.array_equal(np.sort(np.concatenate([f.train, f.test])), np.arange(len(group)))
        for g in set(group[f.test].tolist()):
            assert g not in owner  # a group is tested in one fold only
            owner[g] = k
    assert sorted(owner) == list(range(len(sizes)))
    sizes_per_fold = [len(f.test) for f in folds]  # guaranteed: within one largest group of each other
    assert max(sizes_per_fold) - min(sizes_per_fold) <= max(sizes)


@pytest.mark.bad_input
@pytest.mark.parametrize("n_folds,expect", [(1, ["n_folds >= 2", "1"]), (True, ["n_folds", "True"]), (2.5, ["2.5"])])
def test_block_folds_need_two_or_more_folds(ds, n_folds, expect):
    with refuses(ValueError, "block_folds", *expect):
        splits.block_folds(ds, n_folds=n_folds, by="field")


@pytest.mark.bad_input
def test_block_folds_refuse_more_folds_than_groups(ds):
    with refuses(ValueError, "n_folds=4", "only 3", "'tile' groups"):
        splits.block_folds(ds, n_folds=4, by="tile")
    with refuses(ValueError, "n_folds=61", "only 60"):
        splits.block_folds(ds, n_folds=61, by="field")
    with refuses(ValueError, "val_fraction", "0.500", "0.6"):
        splits.block_folds(ds, n_folds=2, by="field", val_fraction=0.6)
    with refuses(ValueError, "positive block_size"):
        splits.block_folds(ds, n_folds=3)


@pytest.mark.bad_input
def test_block_folds_with_a_class_in_one_group_only(ds):
    # class 2 only in 33UVP: its fold tests it without training samples
    keep = ~((ds["tile"].values != "33UVP") & (ds["label"].values == 2))
    sub = ds.isel(sample=np.flatnonzero(keep))
    with refuses(ValueError, "'class2' (id 2, 20 samples)", "without training samples", "unseen='drop'"):
        splits.block_folds(sub, n_folds=3, by="tile", val_fraction=0.0)
    folds = splits.block_folds(sub, n_folds=3, by="tile", val_fraction=0.0, unseen="drop")
    assert sum(f.params.get("dropped", {}).get("test", 0) for f in folds) == 20


def test_make_split_tile_protocol_takes_validation_tiles_as_published():
    from generators.training_sets import timeseries_set

    ds = timeseries_set(n_per_class=4, n_classes=2, tiles=("33UVP", "33TWN", "33UWP"), n_steps=(6, 6, 6))
    sp = splits.make_split(ds, "tile", test_tiles=["33UVP"], val_tiles=["33TWN"])
    tiles = ds["tile"].values
    assert set(tiles[sp.test]) == {"33UVP"} and set(tiles[sp.val]) == {"33TWN"} and set(tiles[sp.train]) == {"33UWP"}


def test_another_seed_holds_out_other_blocks():
    """Seeds must give other spatial splits, or a mean ± std over seeds measures nothing of the split. Here every
    block has its own class mix (as real blocks do), where StratifiedGroupKFold's shuffle changes nothing."""
    from eokit._split_groups import _stratified_groups

    groups = np.repeat(np.arange(10), 20)
    y = np.concatenate([np.r_[np.zeros(20 - 2 * g), np.ones(g), np.full(g, 2)] for g in range(10)]).astype(int)
    held = {tuple(_stratified_groups(y, groups, 0.2, seed)[1]) for seed in range(3)}
    assert len(held) == 3
    assert (_stratified_groups(y, groups, 0.2, 1)[1] == _stratified_groups(y, groups, 0.2, 1)[1]).all()


def _lumpy_register() -> tuple[np.ndarray, np.ndarray]:
    """Labels and groups shaped like the Slovenia EOPatch's land-use polygons: the majority class in a few large
    fields (one holds almost half of it), the others in many small ones."""
    sizes = {
        0: [1100, 631, 248, 178, 117, 14, 3, 2],
        1: [143, 114, 103, 81, 60, 10, 7, 5, 4, 3, 3, 2, 1],
        2: [25, 9, 8, 5, 4, 2, 1],
        3: [33, 9],
    }
    y = np.concatenate([np.full(n, c) for c, ns in sizes.items() for n in ns])
    groups = np.concatenate([np.full(n, g) for g, n in enumerate(n for ns in sizes.values() for n in ns)])
    return y, groups


@pytest.mark.parametrize("fraction", [0.125, 0.2])
def test_held_out_part_has_the_majority_class_and_about_its_share_with_a_few_large_fields(fraction):
    """StratifiedGroupKFold's folds differ a lot in size here: its held-out fold had no forest (the majority
    class) in 4 of 5 Slovenia field splits, and early stopping on such a validation set kept a model that called
    a whole forest field shrubland (OA 0.72 against the forest's 0.91)."""
    from eokit._split_groups import _stratified_groups

    y, groups = _lumpy_register()
    for seed in range(5):
        rest, held = _stratified_groups(y, groups, fraction, seed)
        assert not set(groups[rest]) & set(groups[held])
        assert np.array_equal(np.sort(np.r_[rest, held]), np.arange(len(y)))
        share = np.bincount(y[held], minlength=4) / np.bincount(y)
        assert fraction / 2 <= share[0] <= 2 * fraction, (seed, share)
        assert fraction / 2 <= share[1] <= 2 * fraction, (seed, share)
        assert fraction / 2 <= len(held) / len(y) <= 2 * fraction, (seed, len(held))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 3), st.integers(1, 40)), min_size=2, max_size=30),
    st.sampled_from([0.1, 0.2, 0.5]),
    st.integers(0, 2**31),
)
def test_held_out_groups_stay_whole_and_neither_part_is_empty(spec, fraction, seed):
    from eokit._split_groups import _stratified_groups

    y = np.concatenate([np.full(n, c) for c, n in spec])
    groups = np.concatenate([np.full(n, g) for g, (_, n) in enumerate(spec)])
    rest, held = _stratified_groups(y, groups, fraction, seed)
    assert len(rest) and len(held)
    assert not set(groups[rest]) & set(groups[held])
    assert np.array_equal(np.sort(np.r_[rest, held]), np.arange(len(y)))
    again = _stratified_groups(y, groups, fraction, seed)
    assert np.array_equal(again[1], held)


def test_census_counts_samples_and_groups_per_class_and_part():
    """Per class and part: samples, and the distinct groups the split kept whole (what a spatial score rests on)."""
    sub = _grouped_set([6, 9, 4, 12, 5, 7, 8, 10], 3)
    sub = sub.assign(label_name=("sample", np.array(["a", "b", "c"])[sub["label"].values]))
    sub = sub.assign(half=("sample", sub["block"].values % 2))
    sp = splits.block_split(sub, by="block", test_fraction=0.25, val_fraction=0.15, seed=2)
    lab = sub["label"].values
    for by in (None, "half"):  # the split's own groups, or groups named explicitly
        table = splits.census(sub, sp, by=by)
        grp = sub[by or "block"].values
        assert list(table.index) == ["a", "b", "c"] and table["class_id"].tolist() == [0, 1, 2]
        assert table.attrs["by"] == (by or "block")
        for part in ("train", "val", "test"):
            idx = getattr(sp, part)
            for c in range(3):
                assert table[f"{part}_samples"].iloc[c] == (lab[idx] == c).sum()
                assert table[f"{part}_groups"].iloc[c] == len(set(grp[idx][lab[idx] == c].tolist()))
    assert table["train_groups"].max() <= 2


@pytest.mark.bad_input
def test_census_of_a_split_without_groups_asks_for_them(ds):
    sp = splits.random_split(ds, test_fraction=0.25, val_fraction=0.1, seed=0)
    with refuses(ValueError, "census", "random", "by='field'"):
        splits.census(ds, sp)


def test_census_of_a_tile_split_counts_tiles(ds):
    sp = splits.make_split(ds, "tile", test_tiles=["33UVP"], unseen="drop")
    table = splits.census(ds, sp)
    assert table.attrs["by"] == "tile"
    assert table["test_groups"].max() == 1 and table["test_samples"].sum() == len(sp.test)

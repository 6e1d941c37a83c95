"""Evaluation protocols: random, spatially disjoint (blocks, fields, tiles) and leave-tile-out splits."""

from __future__ import annotations

import numpy as np
import pytest

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
        cell = lambda i: (ds["tile"].values[i], np.floor(ds["x"].values[i] / 5000), np.floor(ds["y"].values[i] / 5000))
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

"""eokit.datasets.dlr: DLR Belgica Bank scenes + patch annotations (assumed layouts), clear errors otherwise."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import xarray as xr

from eokit.datasets import dlr
from generators import dlr as gen


def test_semantic_scene_and_tree(tmp_path):
    root = gen.make(tmp_path, "semantic")
    tree = dlr.open(root)
    assert isinstance(tree, xr.DataTree) and sorted(tree.children) == gen.SCENES
    ds = dlr.open(root, scene="20190111")
    assert ds.attrs["scene"] == gen.SCENES[0] and ds.rio.crs.to_epsg() == 3413
    with rasterio.open(root / gen.SCENES[0] / f"{gen.SCENES[0]}_HV.tif") as f:
        np.testing.assert_array_equal(ds["HV"].values, f.read(1))
    assert ds.sizes["patch"] == 16 and ds["label"].max() <= 9
    assert ds.attrs["label_kind"] == "semantic"
    assert list(ds["row0"].values[:5]) == [0, 0, 0, 0, 16]


def test_lda_scene_label_raster(tmp_path):
    root = gen.make(tmp_path, "lda")
    ds = dlr.open(root / gen.SCENES[1])
    assert set(ds.data_vars) == {"HH", "HV", "label"}
    lab = ds["label"].values
    assert lab.shape == (64, 64) and lab.max() <= 10
    assert (lab[:4, :4] == lab[0, 0]).all()


def test_bad_layouts(tmp_path):
    root = gen.make(tmp_path / "a", "semantic")
    scene = root / gen.SCENES[0]
    p = scene / f"{gen.SCENES[0]}_labels.csv"
    p.write_text(p.read_text().replace("\n5,16,16,16,", "\n5,16,999,16,"))
    with pytest.raises(ValueError, match=r"labels.csv, line 7: patch at row 16, col 999 is outside"):
        dlr.open(scene)
    p.unlink()
    with pytest.raises(ValueError, match=r"no annotation in .*Expected per scene folder"):
        dlr.open(scene)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.h5").write_bytes(b"")
    with pytest.raises(ValueError, match=r"no GeoTIFF under .*\['.h5'\]"):
        dlr.open(tmp_path / "b")

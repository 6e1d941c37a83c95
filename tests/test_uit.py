"""eokit.datasets.uit: discovery of the UiT patch arrays, PATCH_SCHEMA output, clear errors on unknown layouts."""

from __future__ import annotations

import numpy as np
import pytest

from eokit.datasets import uit
from eokit.schema import PATCH_SCHEMA, check_schema
from generators import uit as gen


def test_open_both_storage_styles(tmp_path):
    root = gen.make(tmp_path, n=12)
    assert sorted(uit.inspect(root)) == [10, 32]
    a = uit.open(root, patch_size=10)
    check_schema(a, PATCH_SCHEMA)
    np.testing.assert_array_equal(a["image"].values, np.load(root / "patches_10x10" / "patches.npy"))
    np.testing.assert_array_equal(a["label"].values, np.load(root / "patches_10x10" / "labels.npy"))
    b = uit.open(root / "patches_32x32.h5")
    assert b.sizes == {"patch": 12, "row": 32, "col": 32, "channel": 3}
    assert list(b["channel"].values) == ["HH", "HV", "IA"]
    np.testing.assert_allclose(b["image"].values[0, 0, :, 2], np.linspace(20, 45, 32), rtol=1e-6)
    with pytest.raises(ValueError, match=r"patch sizes \[10, 32\]"):
        uit.open(root)


def test_label_encoding_checked(tmp_path):
    root = gen.make(tmp_path)
    np.save(root / "patches_10x10" / "labels.npy", np.arange(1, 13) % 6 + 1)
    with pytest.raises(ValueError, match=r"labels, patch \d+: label 6 outside 0..5"):
        uit.open(root, patch_size=10)
    assert uit.open(root, patch_size=10, label_offset=1)["label"].max() == 5


def test_unknown_layout_lists_what_was_found(tmp_path):
    (tmp_path / "scene_01.tif").write_bytes(b"")
    np.save(tmp_path / "foo.npy", np.zeros((5, 7)))
    with pytest.raises(ValueError, match=r"no patch set recognised.*\.npy.*\.tif.*foo \(5, 7\).*Expected a 4-D"):
        uit.open(tmp_path)


def test_one_hot_labels(tmp_path):
    root = gen.make(tmp_path)
    lab = np.load(root / "patches_10x10" / "labels.npy")
    np.save(root / "patches_10x10" / "labels.npy", np.eye(6, dtype=np.float32)[lab])
    np.testing.assert_array_equal(uit.open(root, patch_size=10)["label"].values, lab)
    bad = np.eye(6, dtype=np.float32)[lab]
    bad[3, :] = 0.5
    np.save(root / "patches_10x10" / "labels.npy", bad)
    with pytest.raises(ValueError, match=r"patch 3: a 6-column label row must be one-hot"):
        uit.open(root, patch_size=10)

"""eokit.datasets.uit: discovery of the UiT patch arrays, PATCH_SCHEMA output, clear errors on unknown layouts."""

from __future__ import annotations

import numpy as np
import pytest

from badinput import refuses
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


# --- hostile inputs (tests/badinput.py contract) ----------------------------------------------------------


@pytest.mark.bad_input
def test_label_array_of_another_length_is_named(tmp_path):
    # before: "no 10x10 patches under ...; found [32]", without saying that the label array does not fit
    root = gen.make(tmp_path, n=12)
    np.save(root / "patches_10x10" / "labels.npy", np.arange(10) % 6)
    with refuses(ValueError, "patches_10x10", "'patches'", "12 patches", "'labels'", "(10,)", "one label per patch"):
        uit.open(root, patch_size=10)


@pytest.mark.bad_input
def test_nan_pixels_in_patches_are_refused(tmp_path):
    # before: read as is, so NaN reached the training loss
    root = gen.make(tmp_path)
    img = np.load(root / "patches_10x10" / "patches.npy")
    img[2, 0, 0, 1] = np.nan
    np.save(root / "patches_10x10" / "patches.npy", img)
    with refuses(ValueError, "patches_10x10:patches", "patches [2]", "expected finite"):
        uit.open(root, patch_size=10)


@pytest.mark.bad_input
def test_fractional_float_labels_are_refused(tmp_path):
    root = gen.make(tmp_path)
    lab = (np.arange(12) % 6).astype(np.float32)
    np.save(root / "patches_10x10" / "labels.npy", lab)
    assert uit.open(root, patch_size=10)["label"].values.tolist() == lab.astype(int).tolist()  # whole floats are fine
    lab[3] = 2.5
    np.save(root / "patches_10x10" / "labels.npy", lab)
    with refuses(ValueError, "labels, patch 3", "label 2.5", "not a whole number"):
        uit.open(root, patch_size=10)


@pytest.mark.bad_input
def test_two_channel_patches_are_refused(tmp_path):
    root = gen.make(tmp_path)
    np.save(root / "patches_10x10" / "patches.npy", np.load(root / "patches_10x10" / "patches.npy")[..., :2])
    with refuses(ValueError, "patches_10x10:patches", "2 channels", "expected 3 (HH, HV, IA)"):
        uit.open(root, patch_size=10)


@pytest.mark.bad_input
def test_corrupt_array_file_is_named(tmp_path):
    root = gen.make(tmp_path)
    (root / "patches_10x10" / "labels.npy").write_bytes(b"\x93NUMPY garbage")
    with refuses(ValueError, "labels.npy", "cannot be read as .npy"):
        uit.open(root, patch_size=10)


@pytest.mark.bad_input
def test_patch_size_not_present(tmp_path):
    root = gen.make(tmp_path)
    with refuses(ValueError, "no 20x20 patches", "found [10, 32]"):
        uit.open(root, patch_size=20)


@pytest.mark.bad_input
def test_label_outside_classes_after_offset(tmp_path):
    root = gen.make(tmp_path)
    with refuses(ValueError, "labels, patch", "label 5 outside 0..5", "label_offset=-1"):
        uit.open(root, patch_size=10, label_offset=-1)


@pytest.mark.bad_input
def test_missing_folder(tmp_path):
    with refuses(FileNotFoundError, "nope", "does not exist"):
        uit.open(tmp_path / "nope")

"""Patch models (sea ice): ad-hoc CNN, VGG-16 from scratch, VGG-16 transfer (local ImageNet file), no-pool VGG-16."""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest

from badinput import refuses
from eokit import models
from eokit.models import vgg16 as vgg
from generators import vgg16_weights


def _probs_ok(model, patch_size: int, n_bands: int = 3, n_classes: int = 6) -> np.ndarray:
    x = np.random.default_rng(0).normal(size=(2, patch_size, patch_size, n_bands)).astype("float32")
    p = np.asarray(model(x, training=False))
    assert p.shape == (2, n_classes)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    assert (p >= 0).all()
    return p


@pytest.mark.parametrize("patch_size", [10, 20, 32])
def test_cnn_builds_for_mission_patch_sizes(patch_size):
    m = models.build("cnn", 3, None, 6, patch_size=patch_size)
    assert m.input_shape == (None, patch_size, patch_size, 3)
    _probs_ok(m, patch_size)
    assert models.kind("cnn") == "patch"


def test_vgg16_scratch_upsamples_small_patches_and_keeps_vgg_backbone():
    m = models.build("vgg16", 2, None, 4, patch_size=10)
    assert m.input_shape == (None, 10, 10, 2)
    assert m.get_layer("upsample").output.shape[1:3] == (32, 32)
    backbone = m.get_layer("vgg16")
    convs = [layer for layer in backbone.layers if isinstance(layer, keras.layers.Conv2D)]
    pools = [layer for layer in backbone.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert len(convs) == 13 and len(pools) == 5
    assert convs[0].kernel.shape == (3, 3, 2, 64)  # input channels = n_bands
    _probs_ok(m, 10, n_bands=2, n_classes=4)
    # a 32x32 patch needs no upsampling; an input_size below 32 is refused
    assert "upsample" not in [layer.name for layer in models.build("vgg16", 3, None, 6, patch_size=32).layers]
    with pytest.raises(ValueError, match="input_size must be >= 32"):
        models.build("vgg16", 3, None, 6, patch_size=10, input_size=16)


def test_vgg16_nopool_has_same_conv_stack_without_pooling_and_runs_on_10px():
    m = models.build("vgg16_nopool", 3, None, 6, patch_size=10)
    assert not [layer for layer in m.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    assert not [layer for layer in m.layers if isinstance(layer, keras.layers.Resizing)]
    ref = keras.applications.VGG16(include_top=False, weights=None, input_shape=(32, 32, 3))
    ref_convs = {layer.name: layer.kernel.shape for layer in ref.layers if isinstance(layer, keras.layers.Conv2D)}
    ours = {layer.name: layer.kernel.shape for layer in m.layers if isinstance(layer, keras.layers.Conv2D)}
    assert ours == ref_convs
    # the last conv still sees 10x10: no downsampling anywhere
    assert m.get_layer("block5_conv3").output.shape[1:3] == (10, 10)
    _probs_ok(m, 10)
    small = models.build("vgg16_nopool", 3, None, 6, patch_size=10, width=0.125)
    assert small.get_layer("block5_conv3").kernel.shape == (3, 3, 64, 64)


def test_transfer_loads_weights_from_a_file_in_keras_imagenet_layout(tmp_path):
    path, written = vgg16_weights.write(tmp_path)
    with pytest.warns(UserWarning, match="not byte-identical"):
        m = models.build("vgg16_transfer", 3, None, 6, patch_size=20, weights_path=path)
    backbone = m.get_layer("vgg16")
    assert len(written) == 13
    for name, (kernel, bias) in written.items():
        w = backbone.get_layer(name).get_weights()
        np.testing.assert_array_equal(w[0], kernel)
        np.testing.assert_array_equal(w[1], bias)
    assert m.get_layer("upsample").output.shape[1:3] == (32, 32)
    _probs_ok(m, 20)
    # the no-pool variant can start from the same file
    with pytest.warns(UserWarning):
        nopool = models.build("vgg16_nopool", 3, None, 6, patch_size=10, weights_path=path)
    np.testing.assert_array_equal(nopool.get_layer("block3_conv2").get_weights()[0], written["block3_conv2"][0])


def test_transfer_finds_the_file_in_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    path, written = vgg16_weights.write(tmp_path / "kh" / "models", seed=3)
    assert vgg.keras_cache_weights_path() == path
    with pytest.warns(UserWarning):
        m = models.build("vgg16_transfer", 3, None, 6, patch_size=32, freeze_backbone=True)
    np.testing.assert_array_equal(
        m.get_layer("vgg16").get_layer("block1_conv1").get_weights()[0], written["block1_conv1"][0]
    )
    assert not m.get_layer("vgg16").trainable
    assert len(m.trainable_weights) == 4  # head only: two dense layers


def test_transfer_without_weights_says_what_to_download_where(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError) as err:
        models.build("vgg16_transfer", 3, None, 6, patch_size=20)
    msg = str(err.value)
    assert vgg.IMAGENET_NOTOP_URL in msg
    assert str(tmp_path / "empty" / "models" / vgg.IMAGENET_NOTOP_FILE) in msg
    assert "weights_path=" in msg
    with pytest.raises(FileNotFoundError, match="nothere.h5"):
        models.build("vgg16_transfer", 3, None, 6, patch_size=20, weights_path=tmp_path / "nothere.h5")


def test_transfer_rejects_wrong_file_and_wrong_channels(tmp_path):
    bad = tmp_path / "bad.h5"
    with h5py.File(bad, "w") as f:
        f.attrs["layer_names"] = np.array([b"dense"])
        g = f.create_group("dense")
        g.attrs["weight_names"] = np.array([b"dense_W:0"])
        g.create_dataset("dense_W:0", data=np.zeros((3, 3), "float32"))
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="bad.h5: not a VGG-16 notop weights file"):
        models.build("vgg16_transfer", 3, None, 6, patch_size=32, weights_path=bad)
    path, _ = vgg16_weights.write(tmp_path)
    with pytest.raises(ValueError, match="exactly 3 input channels"):
        models.build("vgg16_transfer", 2, None, 6, patch_size=32, weights_path=path)
    with pytest.raises(ValueError, match="ImageNet weights need n_bands == 3 and width == 1.0"):
        models.build("vgg16_nopool", 3, None, 6, patch_size=10, width=0.5, weights_path=path)


def test_bad_hparams_are_named():
    with pytest.raises(ValueError, match="unknown hparams \\['fliters'\\]"):
        models.build("cnn", 3, None, 6, patch_size=10, fliters=(8,))
    with pytest.raises(ValueError, match="patch_size must be an integer >= 2"):
        models.build("cnn", 3, None, 6, patch_size=None)
    with pytest.raises(ValueError, match="n_classes >= 2"):
        models.build("vgg16_nopool", 3, None, 1, patch_size=10)


def _learnable_patches(n_per_class: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Patches whose class sets the mean HH/HV level (plus texture noise); IA is a class-free ramp."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n_per_class)
    x = rng.normal(size=(y.size, size, size, 3)).astype("float32")
    x[..., 0] += 1.5 * (y[:, None, None] - 1)
    x[..., 1] -= 1.5 * (y[:, None, None] - 1)
    x[..., 2] = np.linspace(-1, 1, size)[None, None, :]
    order = rng.permutation(y.size)
    return x[order], y[order]


@pytest.mark.parametrize("name,hparams", [("cnn", {"filters": (8, 16)}), ("vgg16_nopool", {"width": 0.125})])
def test_patch_models_learn_a_class_signal(name, hparams):
    keras.utils.set_random_seed(0)
    x, y = _learnable_patches(60, 10)
    xt, yt = _learnable_patches(30, 10, seed=1)
    m = models.build(name, 3, None, 3, patch_size=10, dropout=0.1, **hparams)
    m.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    m.fit(x, y, epochs=6, batch_size=16, verbose=0)
    acc = float((np.asarray(m.predict(xt, verbose=0)).argmax(1) == yt).mean())
    assert acc > 0.8, f"{name} reached only {acc:.2f} accuracy on a separable 3-class signal (chance 0.33)"


def test_transfer_model_saves_and_reloads(tmp_path):
    path, _ = vgg16_weights.write(tmp_path)
    with pytest.warns(UserWarning):
        m = models.build("vgg16_transfer", 3, None, 6, patch_size=10, weights_path=path)
    x = np.random.default_rng(0).normal(size=(2, 10, 10, 3)).astype("float32")
    m.save(tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(np.asarray(back(x)), np.asarray(m(x)), rtol=1e-5, atol=1e-6)


def _patch_set(scenes: dict[str, list[int]], n: int = 30, size: int = 10, seed: int = 0):
    """A PATCH_SCHEMA set: per scene, n patches of each listed class with a class-dependent HH/HV level."""
    import xarray as xr

    rng = np.random.default_rng(seed)
    imgs, labels, scene_of, pid = [], [], [], []
    for k, (scene, classes) in enumerate(scenes.items()):
        for c in classes:
            x = rng.normal(size=(n, size, size, 3)).astype("float32")
            x[..., 0] += -20 + 4 * c
            x[..., 1] += -28 + 3 * c
            x[..., 2] = 30 + np.linspace(0, 2, size)[None, None, :] + 5 * k
            imgs.append(x)
            labels += [c] * n
            scene_of += [scene] * n
            pid += [100 * k + c] * n
    m = len(labels)
    return xr.Dataset(
        {
            "image": (("patch", "row", "col", "channel"), np.concatenate(imgs)),
            "label": ("patch", np.array(labels, "int64")),
            "row0": ("patch", np.zeros(m, "int64")),
            "col0": ("patch", np.zeros(m, "int64")),
            "polygon_id": ("patch", np.array(pid, "int64")),
            "scene": ("patch", np.array(scene_of)),
        },
        coords={"channel": ["HH", "HV", "IA"]},
    )


def test_scene_disjoint_training_with_augmentation_scores_held_out_scene(tmp_path):
    from eokit import evaluate, train
    from eokit.augment import make_augmenter
    from eokit.sampling import oversample

    ds = _patch_set({"A": [0, 1, 2], "B": [0, 2], "C": [0, 1, 2]})
    tr, te = ds.isel(patch=(ds["scene"] != "C").values), ds.isel(patch=(ds["scene"] == "C").values)
    std = tr["image"].std(("patch", "row", "col")).values.tolist()
    aug = make_augmenter(seed=0, shift=1, normalisation={"std": std})
    model, card, hist = train.fit(
        "cnn",
        tr,
        epochs=4,
        batch_size=16,
        seed=0,
        augment=aug,
        oversample=oversample(tr["label"].values, seed=0),
        hparams={"filters": (8, 16), "dropout": 0.1},
        output=tmp_path / "models",
        progress=False,
        jit_compile=False,
        split={"protocol": "scene", "test": ["C"]},
    )
    assert (tmp_path / "models" / "cnn.keras").exists() and card["hparams"]["augment"].startswith("flip+rot90")
    assert card["training_data"]["class_counts"] == {"open water": 60, "newly formed ice": 60, "brash/pancake ice": 60}
    result = evaluate.evaluate(model, card, te)
    assert result["n"] == 90 and result["overall_accuracy"] > 0.6, result["overall_accuracy"]


def test_class_absent_from_training_scenes_is_a_clear_error():
    from eokit import splits, train

    ds = _patch_set({"A": [0, 1], "B": [0, 1], "C": [0, 1, 3]}, n=6)
    with pytest.raises(ValueError, match="without training samples: test: .*id 3, 6 samples"):
        splits.tile_split(ds.rename({"scene": "tile", "polygon_id": "field_id"}), test_tiles=["C"], val_fraction=0)
    tr, te = ds.isel(patch=(ds["scene"] != "C").values), ds.isel(patch=(ds["scene"] == "C").values)
    with pytest.raises(ValueError, match="without training samples"):
        train.fit("cnn", tr, te, epochs=1, batch_size=4, progress=False, hparams={"filters": (4,)})


# ------------------------------------------------------------------------------------------------
# hostile inputs to the registry's `build` for patch models
# ------------------------------------------------------------------------------------------------


@pytest.mark.bad_input
def test_patch_model_without_patch_size_says_it_is_required():
    # was "TypeError: build_cnn() missing 1 required keyword-only argument"
    with refuses(ValueError, "model 'cnn'", "['patch_size']", "required"):
        models.build("cnn", 3, None, 6)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "name,hp,typo,meant",
    [
        ("vgg16", {"dens_units": 8}, "dens_units", "dense_units"),
        ("cnn", {"fliters": (8,)}, "fliters", "filters"),
        ("vgg16_nopool", {"widht": 0.5}, "widht", "width"),
    ],
)
def test_mistyped_patch_hparam_names_the_closest_one(name, hp, typo, meant):
    with refuses(ValueError, f"model {name!r}", f"unknown hparams ['{typo}']", f"'{typo}' -> '{meant}'"):
        models.build(name, 3, None, 6, patch_size=10, **hp)


@pytest.mark.bad_input
def test_patch_dropout_outside_0_1_is_refused():
    with refuses(ValueError, "model 'cnn'", "'dropout'", "[0, 1)"):
        models.build("cnn", 3, None, 6, patch_size=10, dropout=1.5)


def test_cnn_statistics_branch_computes_what_the_baselines_use():
    from eokit.inputs import patch_statistics
    from eokit.models.cnn import _patch_statistics

    x = np.random.default_rng(1).normal(size=(3, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(_patch_statistics(x)), patch_statistics(x), rtol=1e-5, atol=1e-5)
    net = models.build("cnn", 3, None, 3, patch_size=64)
    assert any(type(layer).__name__ == "PatchStatistics" for layer in net.layers)
    plain = models.build("cnn", 3, None, 3, patch_size=64, statistics=False)
    assert not any(type(layer).__name__ == "PatchStatistics" for layer in plain.layers)


@pytest.mark.bad_input
def test_cnn_statistics_must_be_a_bool():
    with refuses(ValueError, "statistics", "True or False"):
        models.build("cnn", 3, None, 3, patch_size=10, statistics="yes")


def test_rgb_render_patches_train_with_augmentation_and_reload_in_a_fresh_process(tmp_path):
    """Patches like the published polar-patch renders (R, G, B channels, 64 px) go through the public API as they
    are: no renaming to HH/HV/IA, geometric augmentation only (speckle is SAR physics, for dB channels only)."""
    import os
    import subprocess
    import sys

    import xarray as xr

    from eokit import train

    rng = np.random.default_rng(0)
    n = 24
    lab = np.arange(n) % 2
    img = rng.integers(0, 255, (n, 64, 64, 3)).astype("float32") * (0.5 + 0.5 * lab)[:, None, None, None]
    ds = xr.Dataset(
        {
            "image": (("patch", "row", "col", "channel"), img),
            "label": (("patch",), lab),
            "label_name": (("patch",), np.array(["water", "ice"])[lab]),
            "row0": (("patch",), np.zeros(n, int)),
            "col0": (("patch",), np.arange(n) * 64),
            "polygon_id": (("patch",), np.full(n, -1)),
            "scene": (("patch",), np.array(["s"] * n)),
        },
        coords={"channel": ["R", "G", "B"]},
    )
    net, card, _ = train.fit("cnn", ds, epochs=1, batch_size=8, augment=True, progress=False, output=tmp_path)
    assert card["bands"] == ["R", "G", "B"] and card["classes"] == ["water", "ice"]
    assert card["hparams"]["augment"] is not None
    with refuses(ValueError, "speckle", "dB channel"):
        from eokit.augment import make_augmenter

        make_augmenter(channels=["R", "G", "B"], normalisation=card["normalisation"])
    np.save(tmp_path / "x.npy", img[:4])
    want = train.predict(net, card, ds.isel(patch=slice(0, 4)))
    np.save(tmp_path / "want.npy", want)
    code = (
        "import numpy as np, sys, xarray as xr; from eokit import train; m, c = train.load_model(sys.argv[1]); "
        "assert any(type(l).__name__ == 'PatchStatistics' for l in m.layers); "
        "from eokit.inputs import prepare_patches; x = prepare_patches(np.load(sys.argv[2]), c); "
        "assert np.allclose(np.asarray(m(x, training=False)), np.load(sys.argv[3]), atol=1e-5)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "cnn.keras"), str(tmp_path / "x.npy"), str(tmp_path / "want.npy")],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert run.returncode == 0, run.stderr[-2000:]

"""Training: block-wise input pipeline, normalisation, model card, checkpoints/resume, patches, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from badinput import refuses, warns_naming
from eokit import train
from generators.training_sets import BANDS, patch_set, timeseries_set

SMALL = {"units": [8]}


@pytest.fixture(scope="module")
def data():
    ds = timeseries_set(n_per_class=8, n_classes=3, seed=0)
    tiles = ds["tile"].values
    return ds.isel(sample=np.flatnonzero(tiles != "33UVP")), ds.isel(sample=np.flatnonzero(tiles == "33UVP"))


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    tr, va = data
    out = tmp_path_factory.mktemp("models")
    model, card, hist = train.fit(
        "lstm", tr, va, epochs=2, batch_size=16, seed=1, output=out, hparams=SMALL, augment=True, progress=False
    )
    return out, model, card, hist


def test_fit_writes_model_and_card(trained, data):
    out, model, card, hist = trained
    tr, va = data
    assert (out / "lstm.keras").exists() and (out / "lstm.json").exists()
    on_disk = json.loads((out / "lstm.json").read_text())
    for key in (
        "name",
        "kind",
        "classes",
        "class_ids",
        "bands",
        "n_timesteps",
        "dates",
        "normalisation",
        "flag_handling",
        "patch_size",
        "hparams",
        "training_data",
        "split",
        "metrics",
        "created",
        "eokit_version",
    ):
        assert key in on_disk, key
    assert on_disk["classes"] == ["class0", "class1", "class2"] and on_disk["class_ids"] == [0, 1, 2]
    assert on_disk["bands"] == BANDS and on_disk["n_timesteps"] == tr.sizes["time"] and on_disk["kind"] == "timeseries"
    assert on_disk["training_data"]["n_samples"] == tr.sizes["sample"]
    assert on_disk["training_data"]["tiles"] == ["33TWN", "33UWP"]
    assert on_disk["hparams"]["units"] == [8]
    assert on_disk["hparams"]["augment"] == {"drop": 0.1, "noise": 0.02, "fill": True}  # fill: clouds interpolated
    assert len(hist["loss"]) == 2 and len(hist["val_accuracy"]) == 2
    assert on_disk["metrics"]["epochs_trained"] == 2
    assert not list(out.glob(".*tmp*"))


def test_normalisation_comes_from_clear_training_observations(trained, data):
    _, _, card, _ = trained
    tr, _ = data
    refl = tr["reflectance"].values.astype(float)
    clear = tr["flag"].values == 0
    assert np.allclose(card["normalisation"]["mean"], refl[clear].mean(axis=0), rtol=1e-6)
    assert np.allclose(card["normalisation"]["std"], refl[clear].std(axis=0), rtol=1e-6)


def test_load_model_and_prepare_inputs_reproduce_training_predictions(trained, data):
    out, model, card, _ = trained
    _, va = data
    m2, card2 = train.load_model(out / "lstm.keras")
    assert card2 == json.loads(json.dumps(card))
    x = train.prepare_inputs(va["reflectance"].values, va["flag"].values, va["date"].values, card2)
    assert x["x"].shape == (va.sizes["sample"], card["n_timesteps"], 9)
    # the default flag_handling interpolates clouds: every acquisition of a sample with a clear one counts
    flag = va["flag"].values
    assert card2["flag_handling"] == "interpolate"
    assert x["mask"].sum() == ((flag != 255) & (flag == 0).any(axis=1, keepdims=True)).sum()
    assert np.allclose(np.asarray(model(x)), np.asarray(m2(x)), atol=1e-6)
    p = train.predict(m2, card2, va)
    assert np.allclose(p, np.asarray(m2(x)), atol=1e-5)
    # shorter series are padded at the end to the model's length; doy 0 there
    short = train.prepare_inputs(
        va["reflectance"].values[:, :5], va["flag"].values[:, :5], va["date"].values[:, :5], card2
    )
    assert short["x"].shape[1] == card["n_timesteps"] and (short["doy"][:, 5:] == 0).all()
    with pytest.raises(ValueError, match="takes 9 bands"):
        train.prepare_inputs(va["reflectance"].values[..., :4], va["flag"].values, va["date"].values, card2)
    with pytest.raises(FileNotFoundError, match="model card"):
        (out / "lstm.json").rename(out / "other.json")
        try:
            train.load_model(out / "lstm.keras")
        finally:
            (out / "other.json").rename(out / "lstm.json")


def test_dropped_acquisitions_are_filled_in_time_like_clouds_across_the_year_turn():
    """Under a filling flag handling a dropped step gets the value a cloud would: the linear interpolation in time."""
    doy = np.array([[354.0, 364.0, 9.0, 29.0, 0.0]], np.float32)  # 2019-12-20, -30, 2020-01-09, -29, padding
    days = np.array([0.0, 10.0, 20.25, 40.25])  # differences of the days of year modulo 365.25
    x = np.zeros((1, 5, 2), np.float32)
    x[0, :4, 0], x[0, :4, 1] = days / 10, -days
    mask = np.array([[1, 1, 1, 1, 0]], np.float32)
    keep = np.array([[True, False, False, True, True]])
    out, new_mask = train.data._refill(x, mask, keep, doy)
    assert new_mask.tolist() == [[1, 1, 1, 1, 0]]  # the padding stays masked
    np.testing.assert_allclose(out[0, :4], x[0, :4], rtol=1e-6, atol=1e-5)
    assert not out[0, 4].any()
    # nothing kept: no value to interpolate from, so the dropped steps are masked
    out, new_mask = train.data._refill(x, mask, np.zeros_like(keep), doy)
    assert not new_mask.any() and not out.any()


def test_time_series_augmentation_fills_or_masks_what_it_drops_as_the_flag_handling_does():
    rng_draw = np.random.default_rng(0)
    x = {
        "x": rng_draw.normal(size=(64, 12, 3)).astype(np.float32),
        "mask": np.ones((64, 12), np.float32),
        "doy": np.arange(1, 13, dtype=np.float32)[None].repeat(64, 0) * 10,
    }
    filled = train._augment_ts(x, np.random.default_rng(1), drop=0.3, fill=True)
    masked = train._augment_ts(x, np.random.default_rng(1), drop=0.3, fill=False)
    dropped = masked["mask"] == 0
    assert 0.2 < dropped.mean() < 0.4
    assert (filled["mask"] == 1).all()  # every sample kept a step, so every dropped one got a value
    assert not np.allclose(filled["x"][dropped], x["x"][dropped])  # interpolated, not the observed value
    np.testing.assert_array_equal(filled["x"][~dropped], x["x"][~dropped])
    assert not masked["x"][dropped].any()
    assert train._check_ts_augment(True, "interpolate")["fill"] and train._check_ts_augment(True, "gapfill")["fill"]
    assert not train._check_ts_augment(True, "mask")["fill"]
    assert not train._check_ts_augment({"drop": 0.1, "fill": False}, "interpolate")["fill"]


def test_existing_output_is_not_overwritten(trained, data):
    out, *_ = trained
    tr, va = data
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        train.fit("lstm", tr, va, epochs=1, output=out, hparams=SMALL, progress=False)


def test_same_seed_same_result_and_resume_from_checkpoint(data, tmp_path):
    tr, va = data
    kw = dict(batch_size=16, seed=7, hparams=SMALL, progress=False, early_stopping=None, augment=True)
    _, _, h_full = train.fit("lstm", tr, va, epochs=2, output=tmp_path / "a", **kw)
    _, _, h_again = train.fit("lstm", tr, va, epochs=2, output=tmp_path / "b", **kw)
    assert h_full == h_again
    train.fit("lstm", tr, va, epochs=1, output=tmp_path / "c", **kw)
    assert (tmp_path / "c" / "checkpoints" / "lstm").is_dir()
    _, card, h_resumed = train.fit("lstm", tr, va, epochs=2, output=tmp_path / "c", resume=True, **kw)
    assert len(h_resumed["loss"]) == 2
    assert h_resumed["loss"] == pytest.approx(h_full["loss"], rel=1e-4)
    assert h_resumed["val_loss"] == pytest.approx(h_full["val_loss"], rel=1e-4)


def test_early_stopping(data, tmp_path):
    tr, va = data
    seen = []
    _, card, hist = train.fit(
        "lstm",
        tr,
        va,
        epochs=6,
        batch_size=32,
        learning_rate=0.0,
        early_stopping=1,
        hparams=SMALL,
        progress=False,
        output=tmp_path,
        callbacks=[lambda epoch, logs: seen.append((epoch, sorted(logs)))],
    )
    assert len(hist["loss"]) == 2 and card["metrics"]["best_epoch"] == 1
    assert [e for e, _ in seen] == [0, 1]
    assert seen[0][1] == ["accuracy", "loss", "seconds", "val_accuracy", "val_loss", "val_macro_f1"]
    assert len(card["metrics"]["epoch_seconds"]) == 2


def test_fit_reads_a_zarr_store_lazily(data, tmp_path):
    tr, va = data
    store = tmp_path / "train.zarr"
    tr.chunk({"sample": 10}).to_zarr(store, zarr_format=2)  # a plain xarray store, as another tool writes it
    model, card, hist = train.fit(
        "tempcnn",
        str(store),
        va,
        epochs=1,
        batch_size=16,
        seed=0,
        progress=False,
        hparams={"filters": 4, "dense": 8},
        output=tmp_path / "m",
    )
    assert card["training_data"]["source"] == str(store) and card["training_data"]["n_samples"] == tr.sizes["sample"]
    src = train._Source(train.open_training_data(store), "timeseries", list(range(9)), card)
    assert src.block == 10  # reads one store chunk at a time
    batches = list(train._epoch_batches(src, 16, np.random.default_rng(0)))
    assert sum(int((w > 0).sum()) for _, _, w in batches) == tr.sizes["sample"]
    assert all(len(y) == 16 for _, y, _ in batches)  # the last one is padded with weight 0


def test_balanced_class_weights(data):
    tr, _ = data
    unbalanced = tr.isel(sample=np.flatnonzero((tr["label"].values != 0) | (np.arange(tr.sizes["sample"]) % 4 == 0)))
    kw = dict(epochs=1, batch_size=16, hparams=SMALL, progress=False)
    _, card, _ = train.fit("lstm", unbalanced, None, class_weight=True, **kw)
    counts = np.array(list(card["training_data"]["class_counts"].values()))
    w = np.array(card["training_data"]["class_weights"])
    assert np.allclose(w * counts, counts.sum() / 3)
    _, plain, _ = train.fit("lstm", unbalanced, None, **kw)  # the default: the loss as Keras computes it
    assert plain["training_data"]["class_weights"] is None and plain["hparams"]["class_weight"] is False


def test_patch_set_with_augmentation_and_oversampling(tmp_path):
    import keras
    import tensorflow as tf

    ps = patch_set(n_per_class=8, n_classes=3, size=8)
    inp = keras.Input((8, 8, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inp))
    net = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(h), name="tinycnn")
    calls = []

    def flip(batch):
        calls.append(1)
        return tf.image.flip_left_right(batch)

    over = np.concatenate([np.arange(24), np.arange(8)])  # class 0 twice
    model, card, hist = train.fit(
        net, ps, ps, epochs=1, batch_size=8, augment=flip, oversample=over, output=tmp_path, progress=False
    )
    assert calls and card["kind"] == "patch" and card["patch_size"] == 8 and card["bands"] == ["HH", "HV", "IA"]
    assert card["training_data"]["n_samples"] == 32
    assert card["training_data"]["class_counts"]["open water"] == 16
    assert np.allclose(card["normalisation"]["mean"], ps["image"].values.reshape(-1, 3).mean(0), rtol=1e-5)
    x = train.prepare_patches(ps["image"].values[:2], card)
    assert x.shape == (2, 8, 8, 3) and abs(float(x[..., 2].mean())) < 3
    with pytest.raises(ValueError, match="takes 8x8 patches"):
        train.prepare_patches(np.zeros((1, 10, 10, 3)), card)
    m2, c2 = train.load_model(tmp_path / "tinycnn.keras")
    assert np.allclose(
        train.predict(m2, c2, ps), np.asarray(model(train.prepare_patches(ps["image"].values, card))), atol=1e-5
    )


def test_bad_input_is_a_clear_error(data):
    tr, va = data
    with pytest.raises(ValueError, match=r"asks for bands .* has only .*missing \['B1'\]"):
        train.fit("lstm", tr, va, epochs=1, bands=["B1", "B2"], hparams=SMALL, progress=False)
    only01 = tr.isel(sample=np.flatnonzero(tr["label"].values < 2))
    with pytest.raises(ValueError, match=r"leaves classes \[\(2, 'class2'\)\] without training samples"):
        train.fit("lstm", only01, va, epochs=1, hparams=SMALL, progress=False)
    with pytest.raises(ValueError, match="is a timeseries model but the data is a patch set"):
        train.fit("lstm", patch_set(n_per_class=2), None, epochs=1, progress=False)
    from eokit.models import build

    with pytest.raises(ValueError, match=r"takes x of shape \(\d+, 12\), the data gives"):
        train.fit(build("lstm", 12, tr.sizes["time"], 3, units=[4]), tr, None, epochs=1, progress=False)
    with pytest.raises(ValueError, match="does not follow the eokit schema"):
        train.fit("lstm", tr.drop_vars("flag"), None, epochs=1, progress=False)


def test_float_single_band_series_are_accepted(data):
    tr, _ = data
    refl = tr["reflectance"].values.astype("float32")
    ndvi = (refl[..., 6] - refl[..., 2]) / (refl[..., 6] + refl[..., 2] + 1e-6)
    ds = tr.drop_vars(["reflectance", "band"]).assign(reflectance=(("sample", "time", "band"), ndvi[..., None]))
    ds = ds.assign_coords(band=["NDVI"])
    opened = train.open_training_data(ds)
    mean, std, dates = train._band_statistics(opened, "timeseries", [0], "mask", progress=False)
    assert mean.shape == (1,) and np.isclose(mean[0], ndvi[tr["flag"].values == 0].mean(), rtol=1e-5)
    assert dates is None  # tiles have different acquisition dates


def test_written_cards_have_normal_permissions(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        p = train.write_card({"name": "x", "values": np.arange(3)}, tmp_path / "x.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o644
    assert json.loads(p.read_text())["values"] == [0, 1, 2]


def test_load_model_with_the_augmentation_layer_in_a_fresh_process(tmp_path):
    import subprocess
    import sys

    import keras

    from eokit.augment import augmentation_layers

    inp = keras.Input((8, 8, 3))
    h = augmentation_layers(seed=3)(inp)
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(h))
    net = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(h), name="augcnn")
    card = {
        "name": "augcnn",
        "kind": "patch",
        "classes": ["a", "b"],
        "class_ids": [0, 1],
        "bands": ["HH", "HV", "IA"],
        "normalisation": {"mean": [0.0] * 3, "std": [1.0] * 3},
        "patch_size": 8,
    }
    path = train.save_model(net, card, tmp_path / "augcnn.keras")
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "want.npy", np.asarray(net(x, training=False)))
    code = (
        "import numpy as np, sys; from eokit import train; m, c = train.load_model(sys.argv[1]); "
        "x = np.load(sys.argv[2]); "
        "assert any(type(l).__name__ == 'SARAugmentation' for l in m.layers); "
        "assert np.allclose(np.asarray(m(x, training=False)), np.load(sys.argv[3]), atol=1e-6)"
    )
    run = subprocess.run(
        [sys.executable, "-c", code, str(path), str(tmp_path / "x.npy"), str(tmp_path / "want.npy")],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert run.returncode == 0, run.stderr[-2000:]


def _tiny_patch_net(keras, name="tinycnn"):
    inp = keras.Input((8, 8, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inp))
    return keras.Model(inp, keras.layers.Dense(3, activation="softmax")(h), name=name)


def test_patch_augmentation_is_reproducible(tmp_path):
    import keras

    from eokit.augment import make_augmenter

    ps = patch_set(n_per_class=8, n_classes=3, size=8)
    kw = dict(epochs=2, batch_size=4, seed=5, progress=False, early_stopping=None, class_weight=False)
    runs = []
    for augment in (True, True):
        keras.utils.set_random_seed(0)
        net, _, hist = train.fit(_tiny_patch_net(keras), ps, None, augment=augment, **kw)
        runs.append(([np.array(w) for w in net.get_weights()], hist))
    # one augmenter object used for two fits: its own random stream must not leak into the second fit
    aug = make_augmenter(seed=11)
    for _ in range(2):
        keras.utils.set_random_seed(0)
        net, _, hist = train.fit(_tiny_patch_net(keras), ps, None, augment=aug, **kw)
        runs.append(([np.array(w) for w in net.get_weights()], hist))
    for a, b in ((runs[0], runs[1]), (runs[2], runs[3])):
        assert a[1] == b[1]
        assert all(np.array_equal(u, v) for u, v in zip(a[0], b[0], strict=True))
    assert runs[0][1] != runs[2][1]  # a different augmentation seed does change training


def test_default_patch_augmentation_scales_speckle_to_standardised_inputs(monkeypatch):
    import keras

    from eokit import augment as aug_mod

    made = []
    real = aug_mod.make_augmenter
    monkeypatch.setattr(aug_mod, "make_augmenter", lambda **kw: made.append(real(**kw)) or made[-1])
    ps = patch_set(n_per_class=4, n_classes=3, size=8)
    _, card, _ = train.fit(_tiny_patch_net(keras), ps, None, epochs=1, batch_size=4, augment=True, progress=False)
    (aug,) = made
    assert aug.channels == card["bands"] == ["HH", "HV", "IA"]
    std = np.asarray(card["normalisation"]["std"])
    assert np.allclose(aug._db_scale, [1 / std[0], 1 / std[1], 0.0], rtol=1e-6)
    # the noise added to a standardised dB channel is the dB speckle divided by that channel's std
    x = np.zeros((64, 8, 8, 3), np.float32)
    plain = real(flip=False, rot90=False, shift=0, seed=0, channels=card["bands"])
    fitted = real(flip=False, rot90=False, shift=0, seed=0, channels=card["bands"], normalisation=card["normalisation"])
    d_plain, d_fit = np.asarray(plain(x, seed=[1, 2])), np.asarray(fitted(x, seed=[1, 2]))
    assert np.allclose(d_fit[..., 0], d_plain[..., 0] / std[0], atol=1e-5) and (d_fit[..., 2] == 0).all()


def test_patch_augmentation_is_geometric_only_on_channels_that_are_not_sar(monkeypatch):
    """augment=True on R/G/B patches flips, rotates and shifts but adds no speckle; the default augments nothing."""
    import keras

    from eokit import augment as aug_mod

    made = []
    real = aug_mod.make_augmenter
    monkeypatch.setattr(aug_mod, "make_augmenter", lambda **kw: made.append(real(**kw)) or made[-1])
    rgb = patch_set(n_per_class=4, n_classes=3, size=8).assign_coords(channel=["R", "G", "B"])
    _, card, _ = train.fit(_tiny_patch_net(keras), rgb, None, epochs=1, batch_size=4, progress=False, augment=True)
    (aug,) = made
    assert aug.channels == ["R", "G", "B"] and aug.speckle_looks is None and aug.flip and aug.rot90
    assert card["hparams"]["augment"] is not None
    _, card_default, _ = train.fit(_tiny_patch_net(keras), rgb, None, epochs=1, batch_size=4, progress=False)
    assert len(made) == 1 and card_default["hparams"]["augment"] is None


@pytest.mark.bad_input
def test_fit_refuses_an_unknown_augment_word():
    with refuses(ValueError, "augment", "True, False, None, a dict or a callable", "'yes'"):
        train.fit("lstm", timeseries_set(n_per_class=4), **{**FAST, "augment": "yes"})


def test_timesen2crop_zarr_store_is_opened_with_its_reader(tmp_path):
    from eokit.datasets import timesen2crop
    from generators import timesen2crop as gen

    root = gen.make_tree(tmp_path, tiles={"33UVP": 6, "32TNT": 4}, n_classes=3, samples_per_class=4, seed=2)
    store = timesen2crop.to_zarr(root, tmp_path / "ts2c.zarr", chunks=8, scheduler="synchronous", progress=False)
    ds = train.open_training_data(store)
    ref = timesen2crop.open(root)
    assert {"date", "tile", "label_name"} <= set(ds.variables) and "tile_index" not in ds.variables
    assert ds.attrs["source"] == str(store)
    order = np.lexsort((ref["source_file"].values, ref["tile"].values))
    got = np.lexsort((ds["source_file"].values, ds["tile"].values))
    for v in ("reflectance", "flag", "label", "tile", "label_name"):
        assert np.array_equal(ds[v].values[got], ref[v].values[order]), v
    assert np.array_equal(ds["date"].values[got], ref["date"].values[order].astype(ds["date"].dtype), equal_nan=True)
    _, card, _ = train.fit("lstm", str(store), None, epochs=1, batch_size=16, hparams=SMALL, progress=False)
    assert card["training_data"]["tiles"] == ["32TNT", "33UVP"] and card["n_timesteps"] == 6
    first = np.unique(ref["label"].values, return_index=True)[1]
    assert card["classes"] == [str(n) for n in ref["label_name"].values[first]]


# ------------------------------------------------------------------------------------------------
# hostile inputs: each refused before any training step, naming the field and what was expected
# ------------------------------------------------------------------------------------------------

TINY = {"units": [4]}
FAST = {"epochs": 1, "batch_size": 16, "hparams": TINY, "progress": False}


@pytest.fixture(scope="module")
def small():
    return timeseries_set(n_per_class=4, n_classes=3, seed=0)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "var,expect",
    [("reflectance", "time-series set"), ("label", "eokit schema"), ("flag", "eokit schema"), ("date", "eokit schema")],
)
def test_fit_refuses_a_set_missing_a_variable(small, var, expect):
    with refuses(ValueError, "synthetic test set", f"'{var}'", expect):
        train.fit("lstm", small.drop_vars(var), **FAST)


@pytest.mark.bad_input
def test_fit_refuses_negative_labels(small):
    lab = small["label"].values.copy()
    lab[3] = -1
    with refuses(ValueError, "synthetic test set", "'label'", "[-1]", "sample 3", ">= 0"):
        train.fit("lstm", small.assign(label=("sample", lab)), **FAST)


@pytest.mark.bad_input
def test_fit_refuses_a_class_seen_only_in_validation(small):
    only01 = small.isel(sample=np.flatnonzero(small["label"].values < 2))
    with refuses(ValueError, "(2, 'class2')", "without training samples", "validation"):
        train.fit("lstm", only01, small, **FAST)


def test_fit_warns_when_validation_cannot_see_a_trained_class(small, recwarn):
    """A spatial split with few groups per class can leave a class out of validation: the monitor is then blind."""
    lab = small["label"].values
    only01 = small.isel(sample=np.flatnonzero(lab < 2))
    n2 = int((lab == 2).sum())
    blind = rf"validation data holds no samples of 'class2' \(id 2, {n2} training samples"
    with pytest.warns(UserWarning, match=blind) as got:
        train.fit("lstm", small, only01, **FAST)
    assert any(w.filename == __file__ for w in got if "validation data" in str(w.message))  # points at the call
    recwarn.clear()
    train.fit("lstm", small, small, **FAST)  # every trained class validated: nothing to say
    assert not [w for w in recwarn if "validation data holds no samples" in str(w.message)]


@pytest.mark.bad_input
def test_fit_refuses_an_empty_training_set(small):
    with refuses(ValueError, "synthetic test set", "no samples", "2 classes"):
        train.fit("lstm", small.isel(sample=slice(0, 0)), **FAST)


@pytest.mark.bad_input
def test_fit_refuses_infinite_reflectance(small):
    refl = small["reflectance"].values.astype("float32")
    refl[5, 2, 1] = np.inf
    with refuses(ValueError, "synthetic test set", "infinite", "'reflectance'", "sample 5, time 2, band B3", "finite"):
        train.fit("lstm", small.assign(reflectance=(("sample", "time", "band"), refl)), **FAST)


@pytest.mark.bad_input
def test_nan_at_clear_observations_warns_that_they_are_treated_as_missing(small):
    refl = small["reflectance"].values.astype("float32")
    clear = np.argwhere(small["flag"].values == 0)[0]
    refl[clear[0], clear[1], :] = np.nan
    ds = train.open_training_data(small.assign(reflectance=(("sample", "time", "band"), refl)))
    with warns_naming(UserWarning, "synthetic test set", "9 band values", "NaN", "treated as missing"):
        train._band_statistics(ds, "timeseries", list(range(9)), "mask", progress=False)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "arg,value", [("batch_size", 0), ("batch_size", 2.5), ("epochs", 0), ("epochs", -1), ("epochs", 1.5)]
)
def test_fit_refuses_bad_epochs_and_batch_size(small, arg, value):
    with refuses(ValueError, arg, "integer >= 1", repr(value)):
        train.fit("lstm", small, **{**FAST, arg: value})


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "arg,value,expect",
    [
        ("learning_rate", -0.1, "finite number >= 0"),
        ("learning_rate", float("nan"), "finite number >= 0"),
        ("early_stopping", -1, "patience"),
        ("flag_handling", "maskk", "'mask', 'gapfill', 'interpolate'"),
        ("class_weight", "balanced", "True (balanced)"),
        ("bands", [], "non-empty list"),
    ],
)
def test_fit_refuses_bad_training_options(small, arg, value, expect):
    with refuses(ValueError, arg, expect):
        train.fit("lstm", small, **{**FAST, arg: value})


@pytest.mark.bad_input
def test_fit_names_the_closest_flag_handling(small):
    with refuses(ValueError, "flag_handling", "did you mean 'mask'"):
        train.fit("lstm", small, **{**FAST, "flag_handling": "maskk"})


@pytest.mark.bad_input
def test_fit_refuses_a_band_named_twice(small):
    with refuses(ValueError, "bands", "['B2']", "more than once"):
        train.fit("lstm", small, **{**FAST, "bands": ["B2", "B4", "B2"]})


@pytest.mark.bad_input
def test_fit_refuses_class_weights_of_unknown_classes(small):
    with refuses(ValueError, "class_weight", "'clas1'", "class ids [0, 1, 2]", "did you mean 'class1'"):
        train.fit("lstm", small, **{**FAST, "class_weight": {"clas1": 2.0}})


@pytest.mark.bad_input
def test_fit_refuses_an_unknown_model_listing_the_available_ones(small):
    with refuses(ValueError, "'lstmm'", "did you mean 'lstm'", "available", "ltae", "tempcnn"):
        train.fit("lstmm", small, **FAST)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "model,hp,typo,meant",
    [
        ("lstm", {"unitz": [4]}, "unitz", "units"),
        ("tempcnn", {"filter": 4}, "filter", "filters"),
        ("ltae", {"d_modle": 8}, "d_modle", "d_model"),
    ],
)
def test_fit_refuses_a_mistyped_hparam(small, model, hp, typo, meant):
    with refuses(ValueError, f"model {model!r}", "unknown hparams", typo, f"did you mean '{typo}' -> '{meant}'"):
        train.fit(model, small, **{**FAST, "hparams": hp})


@pytest.mark.bad_input
def test_fit_refuses_n_timesteps_shorter_than_the_data(small):
    with refuses(ValueError, "n_timesteps", "24 time steps", "synthetic test set", "got 3"):
        train.fit("lstm", small, **{**FAST, "hparams": {"units": [4], "n_timesteps": 3}})


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "augment,expect",
    [
        ({"drop": 1.5}, "probability in [0, 1)"),
        ({"noise": -1}, "standard deviation >= 0"),
        ({"dropp": 0.1}, "did you mean 'drop'"),
        ({"fill": "yes"}, "True or False"),
    ],
)
def test_fit_refuses_bad_time_series_augmentation(small, augment, expect):
    with refuses(ValueError, "augmentation", next(iter(augment)), expect):
        train.fit("lstm", small, **{**FAST, "augment": augment})


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "over,expect",
    [
        (np.array([0, 1, 10_000]), "index 10000 (position 2) is outside 0..35"),
        (np.array([0, -1]), "index -1 (position 1) is outside 0..35"),
        (np.array([], np.int64), "non-empty"),
        (np.array([0.0, 1.5]), "integer indices"),
    ],
)
def test_fit_refuses_bad_oversample_indices(small, over, expect):
    with refuses(ValueError, "oversample", expect, "synthetic test set"):
        train.fit("lstm", small, **{**FAST, "oversample": over})


@pytest.mark.bad_input
def test_patch_model_of_another_patch_size_is_refused():
    import keras

    inp = keras.Input((10, 10, 3))
    h = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(2, 3)(inp))
    net = keras.Model(inp, keras.layers.Dense(3, activation="softmax")(h), name="tiny10")
    with refuses(ValueError, "'tiny10'", "(10, 10, 3)", "the data gives (8, 8, 3)"):
        train.fit(net, patch_set(n_per_class=2, n_classes=3, size=8), epochs=1, batch_size=4, progress=False)


@pytest.mark.bad_input
def test_existing_model_file_is_not_overwritten_before_training(small, tmp_path):
    (tmp_path / "lstm.keras").write_bytes(b"")
    with refuses(FileExistsError, str(tmp_path / "lstm.keras"), "overwrite=True"):
        train.fit("lstm", small, output=tmp_path, **FAST)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "model,hp,expect",
    [
        ("tempcnn", {"filters": 4, "dense": 8}, "model: checkpoint 'lstm', now 'tempcnn'"),
        ("lstm", {"units": [6]}, "weight shapes differ"),
    ],
)
def test_resume_from_the_checkpoints_of_another_model_is_refused(small, tmp_path, model, hp, expect):
    train.fit("lstm", small, output=tmp_path, name="m", **FAST)
    with refuses(ValueError, str(tmp_path / "checkpoints" / "m"), "another run", expect, "resume=False"):
        train.fit(
            model, small, output=tmp_path, name="m", resume=True, epochs=2, batch_size=16, hparams=hp, progress=False
        )


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """An untrained tiny LSTM saved with a valid card (9 bands, 24 steps, 3 classes)."""
    from eokit.models import build

    folder = tmp_path_factory.mktemp("saved")
    net = build("lstm", 9, 24, 3, units=[4])
    card = {
        "name": "m",
        "model": "lstm",
        "kind": "timeseries",
        "classes": ["a", "b", "c"],
        "class_ids": [0, 1, 2],
        "bands": BANDS,
        "n_timesteps": 24,
        "normalisation": {"mean": [0.0] * 9, "std": [1.0] * 9},
        "flag_handling": "mask",
        "patch_size": None,
    }
    train.save_model(net, card, folder / "m.keras")
    return folder, card


def _copy_with_card(saved, tmp_path, card_text):
    import shutil

    folder, _ = saved
    shutil.copy(folder / "m.keras", tmp_path / "m.keras")
    if card_text is not None:
        (tmp_path / "m.json").write_text(card_text)
    return tmp_path / "m.keras"


@pytest.mark.bad_input
def test_load_model_refuses_a_missing_file(tmp_path):
    with refuses(FileNotFoundError, "nope.keras", "does not exist"):
        train.load_model(tmp_path / "nope.keras")


@pytest.mark.bad_input
def test_load_model_refuses_a_model_without_its_card(saved, tmp_path):
    with refuses(FileNotFoundError, str(tmp_path / "m.json"), "beside m.keras", "does not exist"):
        train.load_model(_copy_with_card(saved, tmp_path, None))


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "change,names",
    [
        ({"bands": None}, ["lacks the field", "'bands'"]),
        (
            {"bands": BANDS[:4], "normalisation": {"mean": [0.0] * 4, "std": [1.0] * 4}},
            ["'bands'", "4 bands", "9 input channels"],
        ),
        ({"bands": BANDS[:4]}, ["'normalisation.mean'", "one number per band"]),
        ({"normalisation": {"mean": [0.0], "std": [1.0]}}, ["'normalisation.mean'", "one number per band"]),
        ({"classes": ["a", "b"], "class_ids": [0, 1]}, ["'classes'", "2 classes", "outputs 3"]),
        ({"class_ids": [0, 1]}, ["'classes' (3)", "'class_ids' (2)", "same length"]),
        ({"kind": "patch", "patch_size": 8}, ["'kind'", "'patch'", "timeseries inputs"]),
        ({"n_timesteps": 5}, ["'n_timesteps'", "is 5", "takes 24"]),
        ({"n_timesteps": None}, ["'n_timesteps'", "integer >= 1"]),
    ],
)
def test_load_model_refuses_a_card_that_does_not_describe_the_model(saved, tmp_path, change, names):
    card = {**saved[1], **change}
    card = {k: v for k, v in card.items() if v is not None or k not in ("bands",)}
    path = _copy_with_card(saved, tmp_path, json.dumps(card))
    with refuses(ValueError, str(tmp_path / "m.json"), *names):
        train.load_model(path)


@pytest.mark.bad_input
@pytest.mark.parametrize("text,expect", [("{not json", "not valid JSON"), ("[1, 2]", "not a JSON object")])
def test_load_model_refuses_a_card_that_is_not_a_json_object(saved, tmp_path, text, expect):
    with refuses(ValueError, str(tmp_path / "m.json"), expect):
        train.load_model(_copy_with_card(saved, tmp_path, text))


@pytest.mark.bad_input
def test_load_model_refuses_a_corrupt_keras_file(saved, tmp_path):
    path = _copy_with_card(saved, tmp_path, json.dumps(saved[1]))
    path.write_bytes(b"not a zip")
    with refuses(ValueError, str(path), "not a Keras .keras archive"):
        train.load_model(path)


@pytest.mark.bad_input
def test_predict_refuses_data_missing_a_band_of_the_card(saved, small):
    model, card = train.load_model(saved[0] / "m.keras")
    with refuses(ValueError, "model 'm'", "takes bands", "has only ['B2', 'B3', 'B4', 'B5', 'B6']"):
        train.predict(model, card, small.isel(band=slice(0, 5)))


def test_the_padded_last_batch_leaves_batch_norm_statistics_representative():
    """The last batch of an epoch is padded with weight-0 rows that BatchNorm sees: they must be real samples.

    With momentum 0 the moving statistics are those of the last batch. Padding it with copies of one sample (as
    before) gave a near-zero moving variance, so the trained model normalised every input wrongly at inference.
    """
    import keras

    size = 4
    ps = patch_set(n_per_class=35, n_classes=2, size=size)  # 70 = one batch of 64 + 6: 58 padding rows
    noise = np.random.default_rng(0).normal(0, 1, ps["image"].shape).astype(np.float32)
    ps["image"] = (ps["image"].dims, noise)
    inp = keras.Input((size, size, 3))
    x = keras.layers.BatchNormalization(momentum=0.0, name="bn")(keras.layers.Flatten()(inp))
    net = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x))
    train.fit(net, ps, None, epochs=1, batch_size=64, progress=False, augment=False, early_stopping=None)
    var = np.asarray(net.get_layer("bn").moving_variance)
    assert var.min() > 0.3, var.min()  # standardised inputs: the variance of 64 samples is near 1, not near 0

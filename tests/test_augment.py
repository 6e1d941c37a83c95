"""On-the-fly SAR patch augmentation: flips, rot90, shifts, speckle on dB channels only, oversampling."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import xarray as xr

from badinput import refuses
from eokit.augment import (
    augmentation_layers,
    augmented_examples,
    make_augmenter,
    plot_examples,
)
from eokit.sampling import oversample  # moved there (eokit.augment.oversample is a deprecated alias)


def _batch(n: int = 8, size: int = 10, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, size, size, 3)).astype("float32")


def _dihedral(p: np.ndarray) -> list[np.ndarray]:
    out = []
    for q in (p, p[:, ::-1]):
        for k in range(4):
            out.append(np.rot90(q, k, axes=(0, 1)))
    return out


def test_same_seed_same_augmentations_and_reset_repeats():
    x = _batch()
    a, b = make_augmenter(seed=7), make_augmenter(seed=7)
    first = np.asarray(a(x))
    np.testing.assert_array_equal(first, np.asarray(b(x)))
    assert not np.array_equal(first, np.asarray(a(x)))  # the stream moves on
    assert not np.array_equal(first, np.asarray(make_augmenter(seed=8)(x)))
    a.reset()
    np.testing.assert_array_equal(first, np.asarray(a(x)))
    assert first.shape == x.shape and first.dtype == np.float32


def test_flips_and_rotations_are_dihedral_transforms_of_each_patch():
    x = _batch(16)
    y = np.asarray(make_augmenter(shift=0, speckle_looks=None, seed=1)(x))
    used = set()
    for xi, yi in zip(x, y, strict=True):
        matches = [k for k, t in enumerate(_dihedral(xi)) if np.array_equal(t, yi)]
        assert matches, "augmented patch is not a flip/rotation of its input"
        used.add(matches[0])
    assert len(used) > 2  # different patches get different transforms


def test_shift_is_a_reflect_padded_translation_within_bounds():
    x = _batch(16, size=12)
    s = 2
    y = np.asarray(make_augmenter(flip=False, rot90=False, shift=s, speckle_looks=None, seed=3)(x))
    moved = 0
    for xi, yi in zip(x, y, strict=True):
        padded = np.pad(xi, ((s, s), (s, s), (0, 0)), mode="reflect")
        offsets = [
            (dy, dx)
            for dy in range(2 * s + 1)
            for dx in range(2 * s + 1)
            if np.array_equal(padded[dy : dy + 12, dx : dx + 12], yi)
        ]
        assert offsets, "shifted patch is not a crop of the reflect-padded input"
        moved += offsets[0] != (s, s)
    assert moved > 8


def test_speckle_is_gamma_multiplicative_in_linear_scale_and_spares_incidence_angle():
    rng = np.random.default_rng(0)
    x = np.zeros((64, 16, 16, 3), "float32")
    x[..., 0], x[..., 1] = -12.0, -25.0  # dB
    x[..., 2] = rng.uniform(19, 46, size=(64, 16, 16))  # incidence angle, degrees
    looks = 4.4
    y = np.asarray(make_augmenter(flip=False, rot90=False, shift=0, speckle_looks=looks, seed=0)(x))
    np.testing.assert_array_equal(y[..., 2], x[..., 2])
    for c in (0, 1):
        ratio = 10 ** ((y[..., c] - x[..., c]) / 10)  # linear-intensity multiplier
        assert abs(ratio.mean() - 1.0) < 0.02
        assert abs(ratio.var() - 1 / looks) < 0.02
        assert (ratio > 0).all()
    # on standardised inputs the dB perturbation is divided by the channel's std
    std = [2.0, 4.0, 7.0]
    z = np.asarray(
        make_augmenter(
            flip=False, rot90=False, shift=0, speckle_looks=looks, seed=0, normalisation={"mean": [0, 0, 0], "std": std}
        )(x)
    )
    np.testing.assert_allclose((z - x)[..., 0] * std[0], (y - x)[..., 0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose((z - x)[..., 1] * std[1], (y - x)[..., 1], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(z[..., 2], x[..., 2])


def test_works_inside_tf_data_map_deterministically_and_on_single_patches():
    x = _batch(12)
    runs = []
    for _ in range(2):
        aug = make_augmenter(seed=5)
        ds = tf.data.Dataset.from_tensor_slices(x).batch(4).map(aug)
        runs.append(np.concatenate([b.numpy() for b in ds]))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert runs[0].shape == x.shape
    assert np.asarray(make_augmenter(seed=0)(x[0])).shape == x[0].shape
    ds = tf.data.Dataset.from_tensor_slices(x).map(make_augmenter(seed=0))  # unbatched elements
    assert next(iter(ds)).shape == x[0].shape


def test_keras_layer_augments_only_in_training_and_trains():
    import keras

    layer = augmentation_layers(seed=0, shift=1)
    x = _batch(4)
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    assert not np.array_equal(np.asarray(layer(x, training=True)), x)
    inp = keras.Input((10, 10, 3))
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(layer(inp)))
    m = keras.Model(inp, out)
    m.compile("adam", "sparse_categorical_crossentropy")
    hist = m.fit(x, np.array([0, 1, 0, 1]), epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][0])


def test_bad_augmenter_arguments_and_inputs():
    with pytest.raises(ValueError, match="shift must be a non-negative integer"):
        make_augmenter(shift=-1)
    with pytest.raises(ValueError, match="speckle_looks must be > 0"):
        make_augmenter(speckle_looks=0)
    with pytest.raises(ValueError, match="speckle needs a dB channel"):
        make_augmenter(channels=("IA",))
    with pytest.raises(ValueError, match="one positive value per channel"):
        make_augmenter(normalisation={"std": [1.0, 1.0]})
    with pytest.raises(ValueError, match="augmenter was made for 3"):
        make_augmenter()(np.zeros((2, 10, 10, 2), "float32"))
    with pytest.raises(ValueError, match="square patches"):
        make_augmenter()(np.zeros((2, 10, 12, 3), "float32"))
    with pytest.raises(ValueError, match="smaller than the patch size"):
        make_augmenter(shift=4, rot90=False)(np.zeros((2, 4, 4, 3), "float32"))


def test_oversample_balances_classes_keeps_every_original_and_is_seeded():
    y = np.array([0] * 50 + [1] * 5 + [3] * 12)
    idx = oversample(y, seed=1)
    counts = np.bincount(y[idx], minlength=4)
    assert counts.tolist() == [50, 50, 0, 50]
    assert set(np.arange(y.size)) <= set(idx.tolist())
    np.testing.assert_array_equal(idx, oversample(y, seed=1))
    assert not np.array_equal(idx, oversample(y, seed=2))
    assert idx.dtype == np.int64
    assert np.bincount(y[oversample(y, seed=0, target=10)]).tolist() == [10, 10, 0, 10]
    with pytest.raises(ValueError, match="non-empty 1-D"):
        oversample(np.array([]))


def _patch_set(n: int = 12, size: int = 10) -> xr.Dataset:
    rng = np.random.default_rng(0)
    label = np.array([0, 3, 5] * (n // 3))
    img = rng.normal(size=(n, size, size, 3)).astype("float32")
    img[..., 0] += label[:, None, None] * 2 - 15
    return xr.Dataset(
        {
            "image": (("patch", "row", "col", "channel"), img),
            "label": ("patch", label),
            "row0": ("patch", np.arange(n) * 10),
            "col0": ("patch", np.zeros(n, "int64")),
            "polygon_id": ("patch", label.astype("int64")),
            "scene": ("patch", np.array(["s1"] * n)),
        },
        coords={"channel": ["HH", "HV", "IA"]},
    )


def test_augmented_examples_and_figure(tmp_path):
    ds = _patch_set()
    ex = augmented_examples(ds, n=3, seed=0)
    assert ex["image"].shape == (3, 4, 10, 10, 3)
    assert ex["label"].values.tolist() == [0, 3, 5]
    assert ex["label_name"].values[1] == "young ice"
    # example 0 is an original patch of that class
    originals = ds["image"].values[ds["label"].values == 3]
    assert any(np.array_equal(o, ex["image"].values[1, 0]) for o in originals)
    assert not np.array_equal(ex["image"].values[1, 0], ex["image"].values[1, 1])
    xr.testing.assert_identical(ex, augmented_examples(ds, n=3, seed=0))
    with pytest.warns(DeprecationWarning, match=r"plot_examples\(path=\.\.\.\) is deprecated"):
        png = plot_examples(ex, tmp_path / "fig" / "aug.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(FileExistsError, match="aug.png"):
        plot_examples(ex, png)
    with pytest.raises(ValueError, match="channel 'VV'"):
        plot_examples(ex, tmp_path / "x.png", channel="VV")
    with pytest.raises(ValueError, match="missing variable 'label'"):
        augmented_examples(ds.drop_vars("label"))


def test_explicit_seed_is_stateless_and_reproducible_in_a_parallel_map():
    x = _batch(16)
    aug = make_augmenter(seed=2)
    a1 = np.asarray(aug(x, seed=[0, 3]))
    aug(x)  # advancing the internal stream does not matter for explicit seeds
    np.testing.assert_array_equal(a1, np.asarray(aug(x, seed=[0, 3])))
    assert not np.array_equal(a1, np.asarray(aug(x, seed=[0, 4])))
    assert not np.array_equal(a1, np.asarray(make_augmenter(seed=3)(x, seed=[0, 3])))
    runs = []
    for _ in range(2):
        ds = (
            tf.data.Dataset.from_tensor_slices(x)
            .batch(2)
            .enumerate()
            .map(
                lambda i, b: aug(b, seed=tf.stack([tf.constant(1, tf.int64), i])),
                num_parallel_calls=4,
                deterministic=True,
            )
        )
        runs.append(np.concatenate([b.numpy() for b in ds]))
    np.testing.assert_array_equal(runs[0], runs[1])
    with pytest.raises(ValueError, match="seed must be 1 to 4 integers"):
        aug(x, seed=np.zeros(5, "int64"))


def test_class_counts_before_and_after_oversampling():
    from eokit.sampling import class_counts

    y = np.array([0] * 6 + [4] * 2)
    df = class_counts(y, oversample(y, seed=0))
    assert df.index.tolist() == ["open water", "thin to medium first-year ice"]
    assert df["before"].tolist() == [6, 2] and df["after oversampling"].tolist() == [6, 6]
    assert df["label"].tolist() == [0, 4]
    with pytest.raises(ValueError, match="indices must lie in"):
        class_counts(y, [0, 8])


def test_plot_class_counts(tmp_path):
    from eokit.augment import plot_class_counts
    from eokit.sampling import class_counts

    y = np.array([0, 0, 0, 2, 5, 5])
    with pytest.warns(DeprecationWarning, match=r"plot_class_counts\(path=\.\.\.\) is deprecated"):
        png = plot_class_counts(class_counts(y, oversample(y)), tmp_path / "counts.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(FileExistsError):
        plot_class_counts(class_counts(y), png)


def test_rotation_only_and_flip_only_stay_in_their_subgroups():
    x = _batch(32)
    rots = np.asarray(make_augmenter(flip=False, shift=0, speckle_looks=None, seed=4)(x))
    flips = np.asarray(make_augmenter(rot90=False, shift=0, speckle_looks=None, seed=4)(x))
    seen_r, seen_f = set(), set()
    for xi, ri, fi in zip(x, rots, flips, strict=True):
        r = [k for k in range(4) if np.array_equal(np.rot90(xi, k, axes=(0, 1)), ri)]
        f = [(a, b) for a in (0, 1) for b in (0, 1) if np.array_equal(xi[:: (-1 if b else 1), :: (-1 if a else 1)], fi)]
        assert r and f
        seen_r.add(r[0])
        seen_f.add(f[0])
    assert seen_r == {0, 1, 2, 3} and len(seen_f) == 4


def test_speckle_sampler_follows_the_gamma_distribution():
    from scipy import stats

    from eokit.augment import _gamma_unit_mean

    for looks in (4.4, 0.7):
        g = np.asarray(_gamma_unit_mean([200_000], tf.constant([3, 4], tf.int64), looks))
        res = stats.kstest(g, stats.gamma(looks, scale=1 / looks).cdf)
        assert res.statistic < 0.006, (looks, res)
        assert abs(g.mean() - 1) < 0.01 and abs(g.var() - 1 / looks) < 0.03


def test_augmenter_describes_itself_for_model_cards():
    assert make_augmenter(seed=3).__name__ == "flip+rot90+shift2+speckle4.4looks seed=3"
    assert make_augmenter(flip=False, rot90=False, shift=0, speckle_looks=None).__name__ == "identity seed=0"


def test_augmentation_layer_saves_and_loads_with_the_model(tmp_path):
    import keras

    from eokit.augment import register

    inp = keras.Input((10, 10, 3))
    layer = augmentation_layers(seed=1, shift=1, normalisation={"std": [2.0, 3.0, 7.0]})
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.Flatten()(layer(inp)))
    m = keras.Model(inp, out)
    m.save(tmp_path / "m.keras")
    register()
    back = keras.models.load_model(tmp_path / "m.keras")
    x = _batch(3)
    np.testing.assert_allclose(np.asarray(back(x)), np.asarray(m(x)), rtol=1e-6)
    cfg = back.get_layer("sar_augmentation").get_config()
    assert cfg["shift"] == 1 and cfg["normalisation"] == {"std": [2.0, 3.0, 7.0]} and cfg["seed"] == 1


# ------------------------------------------------------------------------------------------------
# hostile inputs
# ------------------------------------------------------------------------------------------------


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "kw,names",
    [
        ({"flip": "no"}, ["flip", "True or False", "'no'"]),  # a non-empty string used to mean True
        ({"rot90": 1}, ["rot90", "True or False"]),
        ({"speckle_looks": float("inf")}, ["speckle_looks", "> 0 and finite", "inf"]),
        ({"channels": [], "speckle_looks": None}, ["channels", "non-empty list"]),
        ({"channels": "HH"}, ["channels", "non-empty list", "'HH'"]),
        ({"channels": ["HH", "HH", "IA"]}, ["channels", "['HH']", "more than once"]),
        ({"shift": True}, ["shift", "non-negative integer"]),
    ],
)
def test_augmenter_refuses_bad_options(kw, names):
    with refuses(ValueError, "augment", *names):
        make_augmenter(**kw)


@pytest.mark.bad_input
def test_unknown_augmentation_option_names_the_closest_one():
    with refuses(ValueError, "augment", "unknown options ['flipp']", "did you mean 'flipp' -> 'flip'", "rot90"):
        make_augmenter(flipp=True)
    with refuses(ValueError, "augment", "unknown options ['speckle']", "'speckle' -> 'speckle_looks'"):
        augmentation_layers(speckle=4.4)


@pytest.mark.bad_input
def test_augmenter_refuses_text_images_and_too_large_shifts_before_tracing():
    with refuses(ValueError, "augment", "images must be numeric", "<U1"):
        make_augmenter()(np.array([[["a"]]]))
    with refuses(ValueError, "augment", "shift 8", "smaller than the patch size 8x8"):  # was "in user code: ..."
        make_augmenter(shift=8)(np.zeros((2, 8, 8, 3), np.float32))
    with refuses(ValueError, "augment", "seed", "integers", "1.5"):  # was silently truncated to 1
        make_augmenter()(np.zeros((2, 8, 8, 3), np.float32), seed=[1.5])


@pytest.mark.bad_input
def test_oversample_refuses_unlabelled_samples_and_fractional_targets():
    with refuses(ValueError, "oversample", "nan at position 2", "class ids"):  # NaN samples used to vanish
        oversample([0.0, 0.0, np.nan, 1.0])
    with refuses(ValueError, "oversample", "target", "integer", "2.5"):
        oversample([0, 0, 1], target=2.5)
    with refuses(ValueError, "oversample", "non-empty 1-D", "(0,)"):
        oversample([])


@pytest.mark.bad_input
def test_class_counts_refuses_fractional_indices():
    from eokit.sampling import class_counts

    with refuses(ValueError, "class_counts", "indices", "integer positions", "float64"):
        class_counts([0, 1], [0.5])

"""The training recipe (eokit.train.recipe) and the parts of `fit` it drives: the optimizer and its schedule,
label smoothing, weighted validation loss, early stopping on validation macro F1; and the gradient step checked
against plain Keras on the same batch, so a change of loss scaling, weighting or batch-norm mode cannot hide."""

from __future__ import annotations

import math

import numpy as np
import pytest

from badinput import refuses
from eokit.train import recipe as rc
from generators.training_sets import patch_set, timeseries_set


def test_learning_rate_warms_up_linearly_then_decays_to_zero_on_a_cosine():
    r = rc.make_recipe(schedule="cosine", warmup=2, epochs=10, has_val=False)
    steps, lr = 5, 1e-3
    got = [rc.learning_rate_at(r, lr, s, steps, 10) for s in range(50)]
    assert got[0] == pytest.approx(lr / 10) and got[9] == pytest.approx(lr)  # 10 warm-up steps
    assert got[10] == pytest.approx(lr)
    assert got[30] == pytest.approx(lr * 0.5 * (1 + math.cos(math.pi * 20 / 40)))
    assert all(a >= b for a, b in zip(got[10:], got[11:], strict=False))  # never rises after the warm-up
    assert rc.learning_rate_at(r, lr, 50, steps, 10) == pytest.approx(0.0, abs=1e-12)
    flat = rc.make_recipe(epochs=10, has_val=False)
    assert {rc.learning_rate_at(flat, lr, s, steps, 10) for s in range(50)} == {lr}


@pytest.mark.parametrize(
    "kw", [{"schedule": "cosine", "warmup": 3}, {"schedule": "constant", "warmup": 1}, {"schedule": "cosine"}]
)
def test_the_keras_optimizer_follows_the_recipe_step_by_step(kw):
    r = rc.make_recipe(optimizer="adamw", epochs=8, has_val=False, **kw)
    opt = rc.make_optimizer(r, 2e-3, 7, 8)
    assert type(opt).__name__ == "AdamW" and opt.weight_decay == pytest.approx(1e-4)
    for step in (0, 3, 6, 20, 21, 40, 55, 56):
        want = rc.learning_rate_at(r, 2e-3, step, 7, 8)
        assert _lr(opt, step) == pytest.approx(want, rel=1e-5, abs=1e-9)


def _lr(opt, step):
    """Return the optimizer's learning rate at `step` (its schedule evaluated there, or the constant)."""
    sched = opt._learning_rate
    return float(sched(step)) if callable(sched) else float(opt.learning_rate)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "kw, names",
    [
        ({"optimizer": "sgd"}, ["optimizer", "adam", "adamw"]),
        ({"optimizer": "adamW"}, ["optimizer", "did you mean", "adamw"]),
        ({"schedule": "linear"}, ["schedule", "cosine"]),
        ({"monitor": "val_f1"}, ["monitor", "val_macro_f1"]),
        ({"warmup": 10}, ["warmup", "epochs=10"]),
        ({"warmup": -1}, ["warmup"]),
        ({"warmup": 1.5}, ["warmup", "whole number"]),
        ({"label_smoothing": 1.0}, ["label_smoothing", "[0, 1)"]),
        ({"label_smoothing": float("nan")}, ["label_smoothing"]),
        ({"weight_decay": 1e-4}, ["weight_decay", "adamw"]),
        ({"optimizer": "adamw", "weight_decay": -0.1}, ["weight_decay"]),
        ({"monitor": "val_macro_f1", "has_val": False}, ["val_macro_f1", "validation set"]),
    ],
)
def test_bad_recipes_are_refused_naming_the_setting(kw, names):
    args = {"epochs": 10, "has_val": True, **kw}
    with refuses(ValueError, *names):
        rc.make_recipe(**args)


def _one_step_pair(label_smoothing: float, weights: np.ndarray | None):
    """Return (weights after one eokit gradient step, after one Keras train_on_batch) from the same start."""
    import keras

    from eokit import models
    from eokit.train.steps import _make_grad_fn

    keras.utils.set_random_seed(3)
    net = models.build("cnn", 3, None, 3, patch_size=16, dropout=0.0, filters=[4, 8])
    other = models.build("cnn", 3, None, 3, patch_size=16, dropout=0.0, filters=[4, 8])
    other.set_weights(net.get_weights())
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 16, 16, 3)).astype("float32")
    y = rng.integers(0, 3, 12).astype("int32")
    w = (weights[y] if weights is not None else np.ones(12)).astype("float32")
    opt = keras.optimizers.SGD(0.5)  # plain gradient: a loss scale or weighting error shows (Adam would hide it)
    opt.build(net.trainable_variables)
    _make_grad_fn(net, opt, False, 1, label_smoothing)(x, y, w)
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)
    other.compile(optimizer=keras.optimizers.SGD(0.5), loss=loss)
    other.train_on_batch(x, keras.ops.one_hot(y, 3), sample_weight=w if weights is not None else None)
    return net.get_weights(), other.get_weights()


@pytest.mark.parametrize("smoothing, weighted", [(0.0, False), (0.1, False), (0.0, True)])
def test_one_gradient_step_of_fit_equals_one_plain_keras_step(smoothing, weighted):
    ours, theirs = _one_step_pair(smoothing, np.array([0.5, 1.0, 2.5]) if weighted else None)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):  # trainable weights and batch-norm moving statistics alike
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6)


def test_validation_loss_is_weighted_like_the_training_loss():
    from eokit.train.data import _evaluate_source, _Source

    ds = patch_set(n_per_class=6, n_classes=3, size=8)
    card = {"class_ids": [0, 1, 2], "normalisation": {"mean": [0.0] * 3, "std": [1.0] * 3}, "bands": ["HH", "HV", "IA"]}
    card["patch_size"] = 8
    src = _Source(ds, "patch", [0, 1, 2], card)
    probs = np.array([0.7, 0.2, 0.1], np.float32)
    loss, acc, f1 = _evaluate_source(lambda x: np.tile(probs, (len(x), 1)), src, 8)
    assert loss == pytest.approx(-np.log(probs).mean(), rel=1e-6) and acc == pytest.approx(1 / 3)
    assert f1 == pytest.approx((2 * 6 / (6 + 18)) / 3)  # class 0: 6 right of 18 predicted; 1 and 2 never
    cw = np.array([1.0, 2.0, 3.0])
    wloss, _, _ = _evaluate_source(lambda x: np.tile(probs, (len(x), 1)), src, 8, cw)
    assert wloss == pytest.approx(float((cw * -np.log(probs)).sum() / cw.sum()), rel=1e-6)


def test_fit_with_the_recipe_records_it_and_restores_the_best_macro_f1_epoch():
    from eokit import train

    ds = timeseries_set(n_per_class=8, n_classes=3, tiles=("33UVP", "33TWN"), n_steps=(12, 10))
    tr, va = ds.isel(sample=slice(0, None, 2)), ds.isel(sample=slice(1, None, 2))
    kw = dict(optimizer="adamw", schedule="cosine", warmup=1, label_smoothing=0.1, monitor="val_macro_f1")
    net, card, hist = train.fit(
        "tempcnn", tr, va, epochs=4, batch_size=8, progress=False, early_stopping=2, jit_compile=False, **kw
    )
    for k, v in kw.items():
        assert card["hparams"][k] == v
    assert card["hparams"]["weight_decay"] == pytest.approx(1e-4)
    assert len(hist["val_macro_f1"]) == card["metrics"]["epochs_trained"]
    assert card["metrics"]["best_epoch"] == int(np.argmax(hist["val_macro_f1"])) + 1
    assert card["metrics"]["val_macro_f1"] == max(hist["val_macro_f1"])

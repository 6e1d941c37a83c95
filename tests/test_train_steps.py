"""The compiled step's pieces: the warm-up step leaves a run exactly as it was; the input pipeline is not autotuned."""

from __future__ import annotations

import numpy as np
import pytest

from eokit import train
from eokit.train import steps
from generators.training_sets import timeseries_set


@pytest.fixture(scope="module")
def data():
    ds = timeseries_set(n_per_class=8, n_classes=3, seed=0)
    tiles = ds["tile"].values
    return ds.isel(sample=np.flatnonzero(tiles != "33UVP")), ds.isel(sample=np.flatnonzero(tiles == "33UVP"))


@pytest.mark.parametrize(
    "model,hp,extra",
    [
        ("lstm", {"units": [8, 8], "dropout": 0.3}, {"optimizer": "adamw", "warmup": 1}),  # wavefront, dropout seeds
        ("tempcnn", {"filters": 8, "dense": 16}, {}),  # BatchNorm statistics
    ],
    ids=["lstm-wavefront-adamw", "tempcnn-batchnorm"],
)
def test_the_warm_up_step_leaves_the_run_as_without_it(data, monkeypatch, model, hp, extra):
    tr, va = data
    kw = dict(epochs=2, batch_size=16, seed=3, hparams=hp, progress=False, early_stopping=None, augment=True, **extra)
    calls = []
    real = steps._warm_up

    def counted(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr("eokit.train.steps._warm_up", counted)
    net_a, _, h_a = train.fit(model, tr, va, **kw)
    monkeypatch.setattr("eokit.train.steps._warm_up", lambda *a, **k: None)
    net_b, _, h_b = train.fit(model, tr, va, **kw)
    assert calls == [1]
    assert h_a == h_b
    for wa, wb in zip(net_a.get_weights(), net_b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_warm_up_puts_back_weights_optimizer_state_and_seeds():
    import keras
    import tensorflow as tf

    from eokit import models

    net = models.build("lstm", 3, 5, 2, units=[4, 4], dropout=0.5)
    opt = keras.optimizers.AdamW(1e-2, weight_decay=0.1)
    opt.build(net.trainable_variables)

    @tf.function
    def step(batch):  # a step that changes every kind of variable, whatever the batch
        x, y, w = batch
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(net(x, training=True)) + tf.reduce_sum(w)
        grads = tape.gradient(loss, net.trainable_variables)
        opt.apply_gradients(zip(grads, net.trainable_variables, strict=True))
        return loss

    before = [v.numpy().copy() for v in [*net.variables, *opt.variables]]
    card = {"n_timesteps": 5, "bands": ["a", "b", "c"]}
    steps._warm_up(step, net, opt, "timeseries", card, 4)
    after = [v.numpy() for v in [*net.variables, *opt.variables]]
    for b, a in zip(before, after, strict=True):
        np.testing.assert_array_equal(b, a)
    assert int(opt.iterations.numpy()) == 0


def test_the_training_pipeline_is_not_autotuned(data):
    from eokit.train.prepare import _prepare_data

    tr, _ = data
    d = _prepare_data(
        "lstm",
        tr,
        None,
        {},
        bands=None,
        flag_handling="interpolate",
        oversample=None,
        split=None,
        name=None,
        show=False,
    )

    class _Ctx:
        num_input_pipelines, input_pipeline_id, num_replicas_in_sync = 1, 0, 1

        def get_per_replica_batch_size(self, b):
            return b

    ds = steps._make_dataset_fn(d, 16, 0, None, None, None)(0)(_Ctx())
    assert ds.options().autotune.enabled is False
    assert sum(len(b[1]) for b in ds) >= d.src.n

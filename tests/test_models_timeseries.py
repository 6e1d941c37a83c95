"""Time-series models: contract inputs, softmax outputs, masked and padded observations, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from badinput import refuses
from eokit import models

T, C, K = 12, 9, 3
SMALL_TRANSFORMER = {"d_model": 16, "n_heads": 4, "n_layers": 2, "d_inner": 16}


def _inputs(n=4, seed=0, t=T):
    rng = np.random.default_rng(seed)
    mask = (rng.random((n, t)) > 0.3).astype("float32")
    mask[:, -2:] = 0.0  # padded at the end
    doy = np.where(mask > 0, np.sort(rng.integers(1, 366, (n, t)), axis=1), 0).astype("float32")
    return {"x": rng.normal(size=(n, t, C)).astype("float32"), "mask": mask, "doy": doy}


@pytest.fixture(
    scope="module",
    params=[
        ("lstm", {"units": [8, 8]}),
        ("lstm", {"units": 8, "masking": "keras"}),
        ("tempcnn", {"filters": 8, "dense": 16}),
        ("ltae", {"d_model": 16, "n_head": 4, "d_k": 4, "mlp": 8}),
        ("transformer", SMALL_TRANSFORMER),
    ],
    ids=["lstm", "lstm-keras-mask", "tempcnn", "ltae", "transformer"],
)
def built(request):
    name, hp = request.param
    return name, hp, models.build(name, C, T, K, **hp)


def test_contract_inputs_and_softmax_output(built):
    name, _, m = built
    assert models.kind(name) == "timeseries"
    assert set(m.input) == {"x", "mask", "doy"}
    p = np.asarray(m(_inputs(), training=False))
    assert p.shape == (4, K)
    assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5) and (p >= 0).all()


def test_masked_observations_do_not_change_the_output(built):
    _, _, m = built
    a = _inputs(seed=1)
    b = {k: v.copy() for k, v in a.items()}
    b["x"][a["mask"] == 0] = 1e3  # garbage in flagged and padded steps
    assert np.allclose(np.asarray(m(a, training=False)), np.asarray(m(b, training=False)), atol=1e-5)


def test_valid_observations_do_change_the_output(built):
    _, _, m = built
    a = _inputs(seed=2)
    b = {k: v.copy() for k, v in a.items()}
    b["x"][a["mask"] > 0] += 2.0
    assert not np.allclose(np.asarray(m(a, training=False)), np.asarray(m(b, training=False)), atol=1e-4)


@pytest.mark.parametrize(
    "name,hp",
    [
        ("lstm", {"units": 8, "masking": "keras"}),
        ("ltae", {"d_model": 16, "n_head": 4, "d_k": 4, "mlp": 8}),
        ("transformer", SMALL_TRANSFORMER),
    ],
)
def test_extra_padding_at_the_end_is_ignored(name, hp):
    short = _inputs(seed=3, t=T)
    long_ = {k: np.pad(v, ((0, 0), (0, 4)) + (((0, 0),) if v.ndim == 3 else ())) for k, v in short.items()}
    m_short = models.build(name, C, T, K, **hp)
    m_long = models.build(name, C, T + 4, K, **hp)
    m_long.set_weights(m_short.get_weights())
    assert np.allclose(np.asarray(m_short(short)), np.asarray(m_long(long_)), atol=1e-5)


def test_ltae_uses_the_day_of_year():
    m = models.build("ltae", C, T, K, d_model=16, n_head=4, d_k=4, mlp=8)
    a = _inputs(seed=4)
    b = dict(a, doy=np.where(a["mask"] > 0, (a["doy"] + 120) % 365 + 1, 0).astype("float32"))
    assert not np.allclose(np.asarray(m(a)), np.asarray(m(b)), atol=1e-5)


def test_save_and_load_roundtrip(built, tmp_path):
    import keras

    from eokit.models import ltae

    name, _, m = built
    ltae.register()
    path = tmp_path / f"{name}.keras"
    m.save(path)
    m2 = keras.models.load_model(path)
    x = _inputs(seed=5)
    assert np.allclose(np.asarray(m(x)), np.asarray(m2(x)), atol=1e-6)


def test_bad_hyperparameters_are_errors():
    with pytest.raises(ValueError, match="units must be one or more positive sizes"):
        models.build("lstm", C, T, K, units=[])
    with pytest.raises(ValueError, match="masking must be"):
        models.build("lstm", C, T, K, masking="zero")
    with pytest.raises(ValueError, match="must be divisible by n_head"):
        models.build("ltae", C, T, K, d_model=10, n_head=4)
    with pytest.raises(ValueError, match="n_timesteps must be >= 1"):
        models.build("tempcnn", C, None, K)


# ------------------------------------------------------------------------------------------------
# hostile inputs to the registry's `build`
# ------------------------------------------------------------------------------------------------


@pytest.mark.bad_input
def test_unknown_model_lists_the_available_ones():
    with refuses(ValueError, "unknown model 'lsmt'", "did you mean 'lstm'", "available", "ltae", "vgg16"):
        models.build("lsmt", C, T, K)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "name,hp,typo,meant",
    [
        ("lstm", {"unitz": 4}, "unitz", "units"),
        ("tempcnn", {"kernel": 3}, "kernel", "kernel_size"),
        ("ltae", {"nhead": 2}, "nhead", "n_head"),
        ("transformer", {"nlayers": 2}, "nlayers", "n_layers"),
    ],
)
def test_mistyped_hparam_names_the_closest_one(name, hp, typo, meant):
    # was a TypeError from deep inside the builder
    with refuses(ValueError, f"model {name!r}", f"unknown hparams ['{typo}']", f"'{typo}' -> '{meant}'", "accepted"):
        models.build(name, C, T, K, **hp)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "name,hp",
    [
        ("lstm", {"units": 4, "dropout": 2.0}),
        ("tempcnn", {"dropout": -0.1}),
        ("ltae", {"d_model": 8, "n_head": 2, "dropout": 1.0}),
        ("transformer", {"dropout": 1.5}),
    ],
)
def test_dropout_outside_0_1_is_refused_naming_the_model(name, hp):
    with refuses(ValueError, f"model {name!r}", "'dropout'", "[0, 1)", repr(hp["dropout"])):
        models.build(name, C, T, K, **hp)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "args,field", [((2.5, T, K), "n_bands"), ((C, 7.5, K), "n_timesteps"), ((C, T, True), "n_classes")]
)
def test_sizes_must_be_integers(args, field):
    with refuses(ValueError, "model 'lstm'", field, "(an integer)"):
        models.build("lstm", *args, units=4)


# ------------------------------------------------------------------------------------------------
# the Transformer encoder (BreizhCrops-style): day of year, degenerate masks, hparams, training
# ------------------------------------------------------------------------------------------------


def test_transformer_uses_the_day_of_year():
    m = models.build("transformer", C, T, K, **SMALL_TRANSFORMER)
    a = _inputs(seed=4)
    b = dict(a, doy=np.where(a["mask"] > 0, (a["doy"] + 120) % 365 + 1, 0).astype("float32"))
    assert not np.allclose(np.asarray(m(a)), np.asarray(m(b)), atol=1e-5)


@pytest.mark.parametrize("pooling,dropout", [("max", 0.2), ("mean", 0.0)])
def test_transformer_is_finite_with_one_or_no_valid_step(pooling, dropout):
    import tensorflow as tf

    m = models.build("transformer", C, T, K, pooling=pooling, dropout=dropout, **SMALL_TRANSFORMER)
    a = _inputs(seed=6)
    a["mask"][0] = 0.0  # nothing valid: pools zeros
    a["mask"][1] = 0.0
    a["mask"][1, 4] = 1.0  # one valid step
    a["doy"] = np.where(a["mask"] > 0, a["doy"] + 1, 0).astype("float32")
    a["x"][a["mask"] == 0] = np.nan  # never read
    with tf.GradientTape() as tape:
        p = m(a, training=True)
        loss = -tf.reduce_mean(tf.math.log(p[:, 0]))
    grads = tape.gradient(loss, m.trainable_weights)
    assert np.isfinite(np.asarray(p)).all() and np.allclose(np.asarray(p).sum(axis=1), 1.0, atol=1e-5)
    assert all(np.isfinite(np.asarray(g)).all() for g in grads if g is not None)
    # the one valid step alone decides series 1: values and dates of the cloudy steps do not matter
    b = {k: v.copy() for k, v in a.items()}
    b["x"][1, :4] = b["x"][1, 5:] = 7.0
    b["doy"][1, :4] = b["doy"][1, 5:] = 100.0
    b["doy"][0] = 50.0  # series 0 pools zeros whatever it holds: the head's prior
    assert np.allclose(np.asarray(m(a)), np.asarray(m(b)), atol=1e-5)
    bias = m.get_layer("probs").bias.numpy()
    assert np.allclose(np.asarray(m(b))[0], np.exp(bias) / np.exp(bias).sum(), atol=1e-6)


def test_transformer_is_built_from_keras_layers_only():
    import json

    m = models.build("transformer", C, T, K, **SMALL_TRANSFORMER)
    assert all(type(layer).__module__.startswith("keras.") for layer in m.layers)
    assert "eokit" not in json.dumps(m.get_config())  # loading it needs no eokit custom layer


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "hp,names",
    [
        ({"d_model": 10, "n_heads": 4}, ("d_model 10", "divisible by n_heads 4")),
        ({"n_layers": 0}, ("n_layers", "integers >= 1", "0")),
        ({"d_inner": 2.5}, ("d_inner", "integers >= 1", "2.5")),
        ({"n_heads": True}, ("n_heads", "integers >= 1")),
        ({"pooling": "avg"}, ("pooling", "'max'", "'mean'", "'avg'")),
    ],
)
def test_transformer_bad_hparams_are_refused_through_the_registry(hp, names):
    with refuses(ValueError, "transformer", *names):
        models.build("transformer", C, T, K, **hp)


def test_transformer_fits_with_xla_and_reloads_through_the_card(tmp_path):
    from eokit import card as model_card
    from eokit import train
    from generators.training_sets import timeseries_set

    ds = timeseries_set(n_per_class=4, n_classes=3, seed=0)
    hp = dict(SMALL_TRANSFORMER, n_layers=1)
    model, card, hist = train.fit(
        "transformer", ds, epochs=1, batch_size=16, output=tmp_path, hparams=hp, progress=False
    )
    assert card["model"] == "transformer" and card["hparams"]["jit_compile"] is True
    assert len(hist["loss"]) == 1 and np.isfinite(hist["loss"]).all()
    loaded, card2 = model_card.load_model(tmp_path / "transformer.keras")
    assert card2["hparams"]["n_layers"] == 1
    p = model_card.predict(model, card, ds)
    assert p.shape == (ds.sizes["sample"], 3) and np.isfinite(p).all()
    assert np.allclose(p, model_card.predict(loaded, card2, ds), atol=1e-6)


@pytest.mark.parametrize("units", [[8, 8], [8, 6, 5]], ids=["2-layers", "3-layers"])
def test_wavefront_lstm_computes_what_keras_stacked_lstm_layers_compute(units):
    fused = models.build("lstm", C, T, K, units=units, wavefront=True)
    plain = models.build("lstm", C, T, K, units=units, wavefront=False)
    assert "WavefrontLSTM" in [type(layer).__name__ for layer in fused.layers]
    assert [type(layer).__name__ for layer in plain.layers].count("LSTM") == len(units)
    plain.set_weights(fused.get_weights())  # the same weights, in the same order and shapes
    a = _inputs(seed=5)
    np.testing.assert_allclose(np.asarray(fused(a, training=False)), np.asarray(plain(a, training=False)), atol=1e-6)


def test_wavefront_lstm_drops_out_between_layers_only_in_training():
    a = _inputs(seed=6)
    m = models.build("lstm", C, T, K, units=[8, 8], dropout=0.5, wavefront=True)
    assert np.allclose(np.asarray(m(a, training=False)), np.asarray(m(a, training=False)))
    assert not np.allclose(np.asarray(m(a, training=True)), np.asarray(m(a, training=True)))
    # the last layer's dropout is a Dropout layer after it: without it, training still differs (between layers)
    inner = [layer for layer in m.layers if type(layer).__name__ == "WavefrontLSTM"][0]
    feats = np.concatenate([a["x"] * a["mask"][..., None], a["mask"][..., None]], axis=-1)
    assert not np.allclose(np.asarray(inner(feats, training=True)), np.asarray(inner(feats, training=False)))
    # no mask tensor outside training: at inference it would be (pixels, dates, units) of ones (1.3 GB for a
    # 256 x 256 px map chunk of 40 dates and 128 units), which broke the 2-worker map of the rehearsal
    assert inner._masks(feats, training=False) == [] and len(inner._masks(feats, training=True)) == 1


def test_wavefront_is_chosen_on_cpu_for_stacks_and_refused_where_it_cannot_run():
    names = [type(layer).__name__ for layer in models.build("lstm", C, T, K, units=[8, 8]).layers]
    assert "WavefrontLSTM" in names  # no GPU here: a stack of two runs as one loop
    assert "WavefrontLSTM" not in [type(layer).__name__ for layer in models.build("lstm", C, T, K, units=8).layers]
    for hp in ({"masking": "keras"}, {"unroll": True}):
        with refuses(ValueError, "wavefront", *hp):
            models.build("lstm", C, T, K, units=[8, 8], wavefront=True, **hp)

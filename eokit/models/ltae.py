"""Lightweight temporal attention encoder (L-TAE, Garnot & Landrieu 2020) using each acquisition's day of year.

Each head has one learned "master query"; keys come from the embedded observations, values are the head's
group of embedding channels, so attention pools the time series into one vector per head. The day of year
is encoded with sines and cosines of harmonics of the year, so the encoding is cyclic (late December and
early January are neighbours, which matters for agronomic years running from September to August).
"""

from __future__ import annotations

import math
from typing import Any

from eokit.models._common import timeseries_inputs


def _layer_class():
    import keras
    from keras import layers, ops

    @keras.saving.register_keras_serializable(package="eokit")
    class LightweightTemporalAttention(layers.Layer):
        """Multi-head master-query attention pooling (B, T, D) x mask (B, T) x doy (B, T) -> (B, D)."""

        def __init__(self, n_head: int = 16, d_k: int = 8, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.n_head = int(n_head)
            self.d_k = int(d_k)

        def build(self, input_shape: Any) -> None:
            d_model = int(input_shape[0][-1])
            if d_model % self.n_head:
                raise ValueError(f"ltae: d_model {d_model} must be divisible by n_head {self.n_head}")
            self.d_model = d_model
            self.key = layers.Dense(self.n_head * self.d_k, name="key")
            self.key.build((None, None, d_model))
            self.query = self.add_weight(
                shape=(self.n_head, self.d_k),
                initializer=keras.initializers.RandomNormal(stddev=(2.0 / self.d_k) ** 0.5),
                name="master_query",
            )
            harmonics = (ops.arange(d_model // 2, dtype="float32") + 1.0) * (2.0 * math.pi / 365.25)
            self._harmonics = harmonics

        def positional_encoding(self, doy: Any) -> Any:
            """Return the cyclic day-of-year encoding (B, T, D) (zero where doy is 0 = padding)."""
            ang = ops.expand_dims(doy, -1) * self._harmonics
            pe = ops.concatenate([ops.sin(ang), ops.cos(ang)], axis=-1)
            if self.d_model % 2:
                pe = ops.pad(pe, [[0, 0], [0, 0], [0, 1]])
            return pe * ops.cast(ops.expand_dims(doy > 0, -1), pe.dtype)

        def call(self, inputs: Any) -> Any:
            e, mask, doy = inputs
            e = e + self.positional_encoding(doy)
            shape = ops.shape(e)
            b, t = shape[0], shape[1]
            k = ops.reshape(self.key(e), (b, t, self.n_head, self.d_k))
            scores = ops.einsum("bthk,hk->bht", k, self.query) / math.sqrt(self.d_k)
            valid = ops.expand_dims(mask > 0.5, 1)
            scores = ops.where(valid, scores, ops.full_like(scores, -1e9))
            attn = ops.softmax(scores, axis=-1)
            v = ops.reshape(e, (b, t, self.n_head, self.d_model // self.n_head))
            out = ops.einsum("bht,bthd->bhd", attn, v)
            return ops.reshape(out, (b, self.d_model))

        def compute_output_shape(self, input_shape: Any) -> tuple:
            return (input_shape[0][0], input_shape[0][-1])

        def get_config(self) -> dict:
            return {**super().get_config(), "n_head": self.n_head, "d_k": self.d_k}

    return LightweightTemporalAttention


_LAYER = None


def LightweightTemporalAttention(**kwargs: Any) -> Any:
    """Return a LightweightTemporalAttention keras layer (class registered as eokit>LightweightTemporalAttention)."""
    global _LAYER
    if _LAYER is None:
        _LAYER = _layer_class()
    return _LAYER(**kwargs)


def register() -> None:
    """Return None after registering the custom layer with Keras (needed before loading a saved L-TAE)."""
    global _LAYER
    if _LAYER is None:
        _LAYER = _layer_class()


def build_ltae(
    n_bands: int,
    n_timesteps: int,
    n_classes: int,
    d_model: int = 128,
    n_head: int = 16,
    d_k: int = 8,
    mlp: int = 128,
    dropout: float = 0.2,
) -> Any:
    """Return an uncompiled keras.Model: embed -> L-TAE attention pooling (day-of-year encoding) -> MLP -> softmax."""
    import keras
    from keras import layers

    inputs = timeseries_inputs(n_timesteps, n_bands)
    # inputs are already normalised per band; a LayerNorm over bands here would erase overall brightness
    h = layers.Dense(d_model, name="embed")(inputs["x"])
    h = layers.LayerNormalization(name="embed_norm")(h)
    h = LightweightTemporalAttention(n_head=n_head, d_k=d_k, name="ltae")([h, inputs["mask"], inputs["doy"]])
    h = layers.Dense(mlp, name="mlp")(h)
    h = layers.BatchNormalization(name="mlp_bn")(h)
    h = layers.Activation("relu")(h)
    h = layers.Dropout(dropout)(h)
    out = layers.Dense(n_classes, activation="softmax", name="probs", dtype="float32")(h)
    return keras.Model(inputs, out, name="ltae")

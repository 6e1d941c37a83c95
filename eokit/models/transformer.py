"""Transformer-encoder crop-type classifier over masked S2 time series (after BreizhCrops, Russwurm et al. 2020).

Observations are projected to `d_model` channels and normalised, the acquisition's day of year is added as a
cyclic sinusoidal encoding (so irregular and tile-dependent sampling is handled like in the L-TAE), then
`n_layers` post-norm encoder blocks (multi-head self-attention + feed-forward, residuals, LayerNorm, dropout)
mix the time steps. Invalid observations (mask 0: clouds, shadows, padding) are never attended to nor pooled.
Built only from Keras layers and ops: a saved model needs no custom layer registered.
"""

from __future__ import annotations

import numbers
from typing import Any

from eokit.models._common import doy_encoding, timeseries_inputs

_POOLING = ("max", "mean")


def _check(d_model: int, n_heads: int, n_layers: int, d_inner: int, pooling: str) -> None:
    """Refuse sizes below 1, a d_model that the heads do not divide and an unknown pooling."""
    sizes = {"d_model": d_model, "n_heads": n_heads, "n_layers": n_layers, "d_inner": d_inner}
    bad = {k: v for k, v in sizes.items() if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1}
    if bad:
        raise ValueError(f"transformer: {', '.join(sizes)} must be integers >= 1, got {bad}")
    if d_model % n_heads:
        raise ValueError(f"transformer: d_model {d_model} must be divisible by n_heads {n_heads}")
    if pooling not in _POOLING:
        raise ValueError(f"transformer: pooling must be one of {_POOLING}, got {pooling!r}")


def _pool(h: Any, valid: Any, any_valid: Any, pooling: str) -> Any:
    """Return (B, D): the max (or mean) of h (B, T, D) over the valid steps; zeros for a series without any."""
    from keras import ops

    v = ops.expand_dims(valid, -1)
    if pooling == "max":
        # invalid steps take the series' minimum, which no valid step exceeds: no infinite constant needed
        pooled = ops.max(ops.where(v, h, ops.min(h, axis=1, keepdims=True)), axis=1)
    else:
        w = ops.cast(v, h.dtype)
        pooled = ops.sum(h * w, axis=1) / ops.maximum(ops.sum(w, axis=1), 1.0)
    return ops.where(any_valid, pooled, ops.zeros_like(pooled))


def _encoder_block(h: Any, attention_mask: Any, i: int, n_heads: int, d_inner: int, dropout: float) -> Any:
    """Return h after one post-norm encoder block: self-attention and feed-forward, each residual + LayerNorm."""
    from keras import layers

    d_model = int(h.shape[-1])
    a = layers.MultiHeadAttention(n_heads, d_model // n_heads, dropout=dropout, name=f"attn_{i}")(
        h, h, attention_mask=attention_mask
    )
    h = layers.LayerNormalization(name=f"attn_norm_{i}")(h + layers.Dropout(dropout)(a))
    f = layers.Dense(d_inner, activation="relu", name=f"ff_{i}_in")(h)
    f = layers.Dense(d_model, name=f"ff_{i}_out")(layers.Dropout(dropout)(f))
    return layers.LayerNormalization(name=f"ff_norm_{i}")(h + layers.Dropout(dropout)(f))


def build_transformer(
    n_bands: int,
    n_timesteps: int,
    n_classes: int,
    d_model: int = 64,
    n_heads: int = 4,
    n_layers: int = 3,
    d_inner: int = 128,
    dropout: float = 0.2,
    pooling: str = "max",
) -> Any:
    """Return an uncompiled keras.Model: embed + day-of-year encoding -> encoder blocks -> masked pooling -> softmax.

    Each of the `n_layers` blocks has `n_heads` attention heads of key size d_model / n_heads and a feed-forward
    layer of `d_inner` units. `pooling` ("max" as in BreizhCrops, or "mean") runs over the valid steps only; a
    series with no valid step pools to zeros, so its output is the head's prior, never NaN.
    """
    import keras
    from keras import layers, ops

    _check(d_model, n_heads, n_layers, d_inner, pooling)
    d_model, n_heads, n_layers, d_inner = int(d_model), int(n_heads), int(n_layers), int(d_inner)
    inputs = timeseries_inputs(n_timesteps, n_bands)
    valid = inputs["mask"] > 0.5
    any_valid = ops.any(valid, axis=1, keepdims=True)
    # every step may be attended to where none is valid: no query row is all masked
    keys = ops.logical_or(valid, ops.logical_not(any_valid))
    attention_mask = ops.repeat(ops.expand_dims(keys, 1), n_timesteps, axis=1)  # (B, T query, T key)
    # `where`, not a product: NaN or huge values at invalid steps cannot leak
    x = ops.where(ops.expand_dims(valid, -1), inputs["x"], ops.zeros_like(inputs["x"]))
    h = layers.Dense(d_model, name="embed")(x)
    h = layers.LayerNormalization(name="embed_norm")(h)
    h = h + doy_encoding(inputs["doy"], d_model)
    for i in range(n_layers):
        h = _encoder_block(h, attention_mask, i, n_heads, d_inner, dropout)
    h = layers.Activation("relu")(_pool(h, valid, any_valid, pooling))
    out = layers.Dense(n_classes, activation="softmax", name="probs", dtype="float32")(h)
    return keras.Model(inputs, out, name="transformer")

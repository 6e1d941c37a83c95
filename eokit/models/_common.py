"""Shared pieces of the time-series models: the dict inputs and the observation-mask handling."""

from __future__ import annotations

from typing import Any


def has_gpu() -> bool:
    """Return whether TensorFlow sees a GPU (where cuDNN and XLA kernels change which layers and compilation pay)."""
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def timeseries_inputs(n_timesteps: int, n_bands: int) -> dict[str, Any]:
    """Return the three keras.Input tensors of the time-series contract: x (T, C), mask (T,), doy (T,)."""
    import keras

    return {
        "x": keras.Input((n_timesteps, n_bands), name="x", dtype="float32"),
        "mask": keras.Input((n_timesteps,), name="mask", dtype="float32"),
        "doy": keras.Input((n_timesteps,), name="doy", dtype="float32"),
    }


def masked_features(inputs: dict[str, Any]) -> Any:
    """Return x zeroed where mask == 0, with the mask appended as an extra channel: (B, T, C + 1)."""
    from keras import ops

    m = ops.expand_dims(inputs["mask"], -1)
    return ops.concatenate([inputs["x"] * m, m], axis=-1)


def doy_features(inputs: dict[str, Any]) -> Any:
    """Return the cyclic day-of-year encoding (sin, cos of the annual angle) zeroed where mask == 0: (B, T, 2)."""
    import math

    from keras import ops

    ang = inputs["doy"] * (2.0 * math.pi / 365.25)
    m = inputs["mask"]
    return ops.stack([ops.sin(ang) * m, ops.cos(ang) * m], axis=-1)


def doy_encoding(doy: Any, dim: int) -> Any:
    """Return the sinusoidal day-of-year encoding (B, T, dim): sin, cos of harmonics 1..dim//2 of the year.

    Cyclic (31 December and 1 January are neighbours), zero where doy is 0 (padding); an odd `dim` ends in a
    zero channel. The same encoding as the L-TAE's (`eokit.models.ltae`).
    """
    import math

    from keras import ops

    harmonics = (ops.arange(dim // 2, dtype="float32") + 1.0) * (2.0 * math.pi / 365.25)
    ang = ops.expand_dims(ops.cast(doy, "float32"), -1) * harmonics
    pe = ops.concatenate([ops.sin(ang), ops.cos(ang)], axis=-1)
    if dim % 2:
        pe = ops.pad(pe, [[0, 0], [0, 0], [0, 1]])
    return pe * ops.cast(ops.expand_dims(doy > 0, -1), pe.dtype)

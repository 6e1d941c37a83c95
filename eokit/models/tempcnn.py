"""TempCNN (Pelletier et al. 2019, Remote Sensing 11(5) 523): 1-D convolutions over the time axis."""

from __future__ import annotations

from typing import Any

from eokit.models._common import masked_features, timeseries_inputs


def build_tempcnn(
    n_bands: int,
    n_timesteps: int,
    n_classes: int,
    filters: int = 64,
    kernel_size: int = 5,
    n_conv: int = 3,
    dense: int = 256,
    dropout: float = 0.2,
) -> Any:
    """Return an uncompiled keras.Model: TempCNN (conv-BN-ReLU-dropout x n_conv, flatten, dense) -> softmax.

    Invalid observations (mask 0: clouds, shadows, padding) are zeroed and the mask is an extra channel.
    """
    import keras
    from keras import layers

    if n_conv < 1 or filters < 1 or kernel_size < 1:
        raise ValueError(
            f"tempcnn: n_conv, filters and kernel_size must be >= 1, got {n_conv}, {filters}, {kernel_size}"
        )
    inputs = timeseries_inputs(n_timesteps, n_bands)
    h = masked_features(inputs)
    for i in range(n_conv):
        h = layers.Conv1D(filters, kernel_size, padding="same", name=f"conv_{i}")(h)
        h = layers.BatchNormalization(name=f"bn_{i}")(h)
        h = layers.Activation("relu")(h)
        h = layers.Dropout(dropout)(h)
    h = layers.Flatten()(h)
    h = layers.Dense(dense, name="dense")(h)
    h = layers.BatchNormalization(name="bn_dense")(h)
    h = layers.Activation("relu")(h)
    h = layers.Dropout(dropout)(h)
    out = layers.Dense(n_classes, activation="softmax", name="probs", dtype="float32")(h)
    return keras.Model(inputs, out, name="tempcnn")

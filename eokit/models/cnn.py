"""The sea-ice mission's ad-hoc CNN: a few conv + batch-norm + ReLU blocks, dropout and a dense head.

The incidence angle is simply the third input channel (HH, HV, IA), as in the ExtremeEarth polar use case.
Input: one (patch_size, patch_size, n_bands) float32 tensor (standardised per channel, see the model card's
`normalisation`); output: softmax class probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eokit.schema import PATCH_STAT_PERCENTILES as STAT_PERCENTILES


def _check_patch_args(name: str, n_bands: int, n_classes: int, patch_size: Any) -> int:
    """Validate the common patch-model arguments; return patch_size as int."""
    if patch_size is None or int(patch_size) != patch_size or int(patch_size) < 2:
        raise ValueError(f"model {name!r}: patch_size must be an integer >= 2, got {patch_size!r}")
    if n_bands < 1:
        raise ValueError(f"model {name!r}: n_bands must be >= 1, got {n_bands}")
    if n_classes < 2:
        raise ValueError(f"model {name!r}: n_classes must be >= 2, got {n_classes}")
    return int(patch_size)


def _patch_statistics(images: Any) -> Any:
    """Return per-channel mean, std and STAT_PERCENTILES of a batch of patches (B, P, P, C): a (B, 7 C) tensor."""
    from keras import ops

    n = int(images.shape[1]) * int(images.shape[2])
    flat = ops.reshape(images, (-1, n, int(images.shape[3])))  # (B, P*P, C)
    ordered = ops.sort(ops.transpose(flat, (0, 2, 1)), axis=-1)  # (B, C, P*P), ascending
    picks = [ops.mean(flat, axis=1), ops.std(flat, axis=1)]
    picks += [ordered[:, :, min(n - 1, round(q / 100 * (n - 1)))] for q in STAT_PERCENTILES]
    return ops.concatenate(picks, axis=-1)


_LAYER: Any = None


def _layer_class() -> Any:
    import keras

    @keras.saving.register_keras_serializable(package="eokit")
    class PatchStatistics(keras.layers.Layer):
        """Per-channel mean, std and percentiles of each patch: (B, P, P, C) -> (B, 7 C)."""

        def call(self, inputs: Any) -> Any:
            return _patch_statistics(inputs)

        def compute_output_shape(self, input_shape: Any) -> tuple:
            return (input_shape[0], (2 + len(STAT_PERCENTILES)) * input_shape[-1])

    return PatchStatistics


def register() -> Any:
    """Return the PatchStatistics layer class, registered with Keras (needed before loading a saved CNN)."""
    global _LAYER
    if _LAYER is None:
        _LAYER = _layer_class()
    return _LAYER


def build_cnn(
    n_bands: int,
    n_timesteps: int | None,
    n_classes: int,
    *,
    patch_size: int,
    filters: Sequence[int] = (32, 64, 128),
    kernel_size: int = 3,
    dense_units: int = 128,
    dropout: float = 0.3,
    bn_momentum: float = 0.9,
    statistics: bool = True,
    **unused: Any,
) -> Any:
    """Return an uncompiled keras.Model: the ad-hoc sea-ice CNN on (patch_size, patch_size, n_bands) patches.

    Each block is Conv2D -> BatchNorm -> ReLU, followed by 2x2 max pooling while the feature map is still at
    least 4 pixels wide (so 10x10 patches keep a spatial extent). `bn_momentum` 0.9 (Keras default 0.99)
    lets batch-norm statistics settle on small sea-ice training sets. With `statistics` (default) a second
    branch computes each channel's mean, standard deviation and 5/25/50/75/95th percentiles of the patch inside
    the model and joins them to the pooled texture features before the head: on real Sentinel-1 patches the
    per-channel distribution is what a random forest wins with, and pooled convolutions alone do not recover
    it (benchmarks/bench_accuracy.py). `n_timesteps` is ignored (patch model).
    """
    import keras
    from keras import layers

    if unused:
        raise ValueError(
            f"model 'cnn': unknown hparams {sorted(unused)}; expected filters, kernel_size, "
            "dense_units, dropout, bn_momentum, statistics"
        )
    size = _check_patch_args("cnn", n_bands, n_classes, patch_size)
    if not filters or any(int(f) < 1 for f in filters):
        raise ValueError(f"model 'cnn': filters must be a non-empty list of positive ints, got {filters!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"model 'cnn': dropout must be in [0, 1), got {dropout}")

    inputs = keras.Input(shape=(size, size, n_bands), name="patch", dtype="float32")
    x = inputs
    width = size
    for i, f in enumerate(filters, start=1):
        x = layers.Conv2D(int(f), kernel_size, padding="same", use_bias=False, name=f"block{i}_conv")(x)
        x = layers.BatchNormalization(momentum=bn_momentum, name=f"block{i}_bn")(x)
        x = layers.Activation("relu", name=f"block{i}_relu")(x)
        if width >= 4:
            x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
            width //= 2
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    if not isinstance(statistics, bool):
        raise ValueError(f"model 'cnn': statistics must be True or False, got {statistics!r}")
    if statistics:
        stats = register()(name="patch_statistics")(inputs)
        stats = layers.BatchNormalization(momentum=bn_momentum, name="statistics_bn")(stats)
        x = layers.Concatenate(name="texture_and_statistics")([x, stats])
    x = layers.Dropout(dropout, name="dropout1")(x)
    x = layers.Dense(int(dense_units), activation="relu", name="dense")(x)
    x = layers.Dropout(dropout, name="dropout2")(x)
    outputs = layers.Dense(n_classes, activation="softmax", name="probs")(x)
    return keras.Model(inputs, outputs, name="cnn")

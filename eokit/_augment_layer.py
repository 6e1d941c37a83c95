"""The SARAugmentation Keras layer of `eokit.augment` (registered with Keras as "eokit>SARAugmentation")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eokit._augmenter import AUGMENT_OPTIONS, _refuse_unknown_options, make_augmenter

_LAYER: Any = None


def _layer_class() -> Any:
    """Return the SARAugmentation Keras layer class, defined and registered with Keras on first use."""
    global _LAYER
    if _LAYER is not None:
        return _LAYER
    import keras

    @keras.saving.register_keras_serializable(package="eokit")
    class SARAugmentation(keras.layers.Layer):
        """Random flips, 90-degree rotations, shifts and speckle noise on SAR patches, in training only."""

        def __init__(
            self,
            flip: bool = True,
            rot90: bool = True,
            shift: int = 2,
            speckle_looks: float | None = 4.4,
            seed: int = 0,
            channels: Sequence[str] = ("HH", "HV", "IA"),
            normalisation: dict[str, Sequence[float]] | None = None,
            **kwargs: Any,
        ) -> None:
            super().__init__(**kwargs)
            self._options: dict[str, Any] = {
                "flip": bool(flip),
                "rot90": bool(rot90),
                "shift": int(shift),
                "speckle_looks": speckle_looks,
                "seed": int(seed),
                "channels": [str(c) for c in channels],
                "normalisation": (
                    {k: [float(v) for v in vals] for k, vals in normalisation.items()}
                    if normalisation is not None
                    else None
                ),
            }
            self.augmenter = make_augmenter(**self._options)

        def call(self, inputs: Any, training: bool | None = None) -> Any:
            return self.augmenter(inputs) if training else inputs

        def compute_output_shape(self, input_shape: Any) -> Any:
            return input_shape

        def get_config(self) -> dict:
            return {**super().get_config(), **self._options}

    _LAYER = SARAugmentation
    return _LAYER


def register() -> None:
    """Return None after registering the SARAugmentation layer with Keras (needed before loading a model with it)."""
    _layer_class()


def augmentation_layers(**kwargs: Any) -> Any:
    """Return a keras Layer applying `make_augmenter(**kwargs)` in training and the identity at inference.

    The layer (class `SARAugmentation`, registered as "eokit>SARAugmentation") saves with the model; call
    `eokit.augment.register()` before `keras.models.load_model` in a fresh process.
    """
    layer_kwargs = ("name", "dtype", "trainable", "autocast")
    _refuse_unknown_options(
        {k: v for k, v in kwargs.items() if k not in AUGMENT_OPTIONS + layer_kwargs}, also=layer_kwargs
    )
    kwargs.setdefault("name", "sar_augmentation")
    return _layer_class()(**kwargs)

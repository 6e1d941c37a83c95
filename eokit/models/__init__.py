"""Keras 3 models behind one interface: `build(name, n_bands, n_timesteps, n_classes, **hparams)`."""

from __future__ import annotations

import importlib
import inspect
import math
import numbers
from typing import Any

from eokit._checks import did_you_mean, renames

# name -> (module, builder function, kind). One file per model family.
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "lstm": ("eokit.models.lstm", "build_lstm", "timeseries"),
    "tempcnn": ("eokit.models.tempcnn", "build_tempcnn", "timeseries"),
    "ltae": ("eokit.models.ltae", "build_ltae", "timeseries"),
    "transformer": ("eokit.models.transformer", "build_transformer", "timeseries"),
    "cnn": ("eokit.models.cnn", "build_cnn", "patch"),
    "vgg16": ("eokit.models.vgg16", "build_vgg16", "patch"),
    "vgg16_transfer": ("eokit.models.vgg16", "build_vgg16_transfer", "patch"),
    "vgg16_nopool": ("eokit.models.vgg16", "build_vgg16_nopool", "patch"),
}
#: Builder arguments that are the data's sizes, not hparams.
_SIZES = ("n_bands", "n_timesteps", "n_classes")


def available() -> list[str]:
    """Return the names of all registered models."""
    return sorted(_REGISTRY)


def kind(name: str) -> str:
    """Return "timeseries" or "patch" for a registered model name."""
    if name not in _REGISTRY:
        raise ValueError(
            f"unknown model {name!r}{did_you_mean(name, available())}; available: {', '.join(available())}"
        )
    return _REGISTRY[name][2]


def accepted_hparams(name: str) -> list[str]:
    """Return the names of the hparams the builder of model `name` accepts."""
    kind(name)
    module, func, _ = _REGISTRY[name]
    sig = inspect.signature(getattr(importlib.import_module(module), func))
    return [p for p, v in sig.parameters.items() if p not in _SIZES and v.kind is not v.VAR_KEYWORD]


def _check_hparams(name: str, given: dict[str, Any]) -> None:
    """Refuse hparams the builder does not take (naming the closest accepted one), missing required ones and
    dropout rates outside [0, 1)."""
    module, func, _ = _REGISTRY[name]
    params = inspect.signature(getattr(importlib.import_module(module), func)).parameters
    accepted = accepted_hparams(name)
    unknown = sorted(k for k in given if k not in accepted)
    if unknown:
        hint = renames(unknown, accepted)
        raise ValueError(f"model {name!r}: unknown hparams {unknown}{hint}; accepted: {', '.join(accepted)}")
    required = [p for p in accepted if params[p].default is inspect.Parameter.empty and p not in given]
    if required:
        raise ValueError(f"model {name!r}: the hparams {required} are required (e.g. patch_size=10 for patch models)")
    for k, v in given.items():
        if "dropout" in k and isinstance(v, numbers.Real) and not 0.0 <= float(v) < 1.0:
            raise ValueError(f"model {name!r}: hparam {k!r} is a dropout rate and must be in [0, 1), got {v!r}")


def _check_size(name: str, what: str, value: Any, minimum: int) -> None:
    """Refuse a data size that is not an integer >= minimum (bools and non-integral floats included)."""
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
    ok = ok or (isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer())
    if not ok or int(value) < minimum:
        raise ValueError(f"model {name!r}: need {what} >= {minimum} (an integer), got {value!r}")


def build(name: str, n_bands: int, n_timesteps: int | None, n_classes: int, **hparams: Any):
    """Return an uncompiled keras.Model for `name` sized for the data."""
    k = kind(name)
    _check_size(name, "n_bands", n_bands, 1)
    _check_size(name, "n_classes", n_classes, 2)
    if k == "timeseries":
        if n_timesteps is None:
            raise ValueError(f"model {name!r} is a time-series model: n_timesteps must be >= 1, got None")
        _check_size(name, "n_timesteps", n_timesteps, 1)
        n_timesteps = int(n_timesteps)
    _check_hparams(name, hparams)
    module, func, _ = _REGISTRY[name]
    builder = getattr(importlib.import_module(module), func)
    return builder(n_bands=int(n_bands), n_timesteps=n_timesteps, n_classes=int(n_classes), **hparams)


# Custom Keras layers that saved eokit models may hold: registered name -> "module:function" registering it with
# Keras. One table, so loading a model (`eokit.card.load_model`) needs to know no layer module.
_CUSTOM_LAYERS: dict[str, str] = {
    "eokit>LightweightTemporalAttention": "eokit.models.ltae:register",
    "eokit>PatchStatistics": "eokit.models.cnn:register",
    "eokit>WavefrontLSTM": "eokit.models._wavefront_lstm:register",
    "eokit>SARAugmentation": "eokit._augment_layer:register",  # models built with eokit.augment.augmentation_layers
}


def register_custom_layers() -> dict[str, Any]:
    """Return {registered name: layer class} after registering every eokit custom layer with Keras (before a load)."""
    import keras

    for target in _CUSTOM_LAYERS.values():
        module, func = target.split(":")
        getattr(importlib.import_module(module), func)()
    return {name: keras.saving.get_registered_object(name) for name in _CUSTOM_LAYERS}

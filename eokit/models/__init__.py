"""Keras 3 models behind one interface: `build(name, n_bands, n_timesteps, n_classes, **hparams)`."""

from __future__ import annotations

import importlib
from typing import Any

# name -> (module, builder function, kind). One file per model family.
_REGISTRY: dict[str, tuple[str, str, str]] = {
    "lstm": ("eokit.models.lstm", "build_lstm", "timeseries"),
    "tempcnn": ("eokit.models.tempcnn", "build_tempcnn", "timeseries"),
    "ltae": ("eokit.models.ltae", "build_ltae", "timeseries"),
    "cnn": ("eokit.models.cnn", "build_cnn", "patch"),
    "vgg16": ("eokit.models.vgg16", "build_vgg16", "patch"),
    "vgg16_transfer": ("eokit.models.vgg16", "build_vgg16_transfer", "patch"),
    "vgg16_nopool": ("eokit.models.vgg16", "build_vgg16_nopool", "patch"),
}


def available() -> list[str]:
    """Return the names of all registered models."""
    return sorted(_REGISTRY)


def kind(name: str) -> str:
    """Return "timeseries" or "patch" for a registered model name."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(available())}")
    return _REGISTRY[name][2]


def build(name: str, n_bands: int, n_timesteps: int | None, n_classes: int, **hparams: Any):
    """Return an uncompiled keras.Model for `name` sized for the data."""
    kind(name)
    if n_bands < 1 or n_classes < 2:
        raise ValueError(f"model {name!r}: need n_bands >= 1 and n_classes >= 2, got {n_bands}, {n_classes}")
    module, func, k = _REGISTRY[name]
    if k == "timeseries" and (n_timesteps is None or n_timesteps < 1):
        raise ValueError(f"model {name!r} is a time-series model: n_timesteps must be >= 1, got {n_timesteps}")
    builder = getattr(importlib.import_module(module), func)
    return builder(n_bands=n_bands, n_timesteps=n_timesteps, n_classes=n_classes, **hparams)

"""What `fit` does before it builds the model: open the sets, check bands and classes, build the card, weights.

`_prepare_data` opens the training and validation sets, picks their bands and classes, computes the
normalisation statistics into a new model card and makes the block readers; `_class_weights` and
`_augmentation` turn `fit`'s `class_weight` and `augment` arguments into loss weights and augmentations.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from eokit import card as _card
from eokit.card import _is_int
from eokit.card import dataset_bands as _data_bands
from eokit.card import model_kind as _model_kind
from eokit.train.checks import _check_class_weight, _check_oversample, _check_ts_augment, _resolve_classes
from eokit.train.data import _band_statistics, _Source
from eokit.trainingdata import data_kind as _data_kind
from eokit.trainingdata import dataset_class_names as _class_names
from eokit.trainingdata import open_training_data
from eokit.trainingdata import sample_dim as _sample_dim


@dataclass
class _Data:
    """What `fit` takes from the training and validation sets before it builds the model."""

    train_ds: xr.Dataset
    val_ds: xr.Dataset | None
    kind: str
    model_name: str
    name: str
    want: list[str]
    class_ids: list[int]
    classes: list[str]
    n_timesteps: int | None
    patch_size: int | None
    card: dict
    src: _Source
    val_src: _Source | None
    counts: np.ndarray


def _open_sets(model: Any, train: Any, val: Any) -> tuple[xr.Dataset, xr.Dataset | None, str, str]:
    """Return (training set, validation set, kind, model name), refusing sets or a model of different kinds."""
    from eokit import models as registry

    train_ds = open_training_data(train)
    val_ds = open_training_data(val) if val is not None else None
    kind = _data_kind(train_ds)
    if val_ds is not None and _data_kind(val_ds) != kind:
        raise ValueError("train and val must both be time-series sets or both patch sets")
    if isinstance(model, str):
        model_name = model
        if registry.kind(model_name) != kind:
            raise ValueError(
                f"model {model_name!r} is a {registry.kind(model_name)} model but the data is a {kind} set"
            )
    else:
        model_name = model.name
        if _model_kind(model) != kind:
            raise ValueError(f"model {model.name!r} takes {_model_kind(model)} inputs but the data is a {kind} set")
    return train_ds, val_ds, kind, model_name


def _input_shape(
    train_ds: xr.Dataset, val_ds: xr.Dataset | None, kind: str, hparams: dict
) -> tuple[int | None, int | None]:
    """Return (n_timesteps, patch_size) of the model inputs; takes `n_timesteps` from hparams, sets `patch_size`."""
    if kind == "timeseries":
        n_timesteps = hparams.pop("n_timesteps", train_ds.sizes["time"])
        if not _is_int(n_timesteps) or n_timesteps < train_ds.sizes["time"]:
            raise ValueError(
                f"hparam n_timesteps must be an integer >= the {train_ds.sizes['time']} time steps of "
                f"{train_ds.attrs.get('source', 'the training data')}, got {n_timesteps!r}"
            )
        n_timesteps = int(n_timesteps)
        if val_ds is not None and val_ds.sizes["time"] > n_timesteps:
            raise ValueError(
                f"validation series have {val_ds.sizes['time']} steps, more than the model's {n_timesteps}"
            )
        return n_timesteps, None
    if train_ds.sizes["row"] != train_ds.sizes["col"]:
        raise ValueError(f"patches must be square, got {train_ds.sizes['row']}x{train_ds.sizes['col']}")
    patch_size = int(train_ds.sizes["row"])
    hparams.setdefault("patch_size", patch_size)
    return None, patch_size


def _prepare_data(
    model: Any,
    train: Any,
    val: Any,
    hparams: dict,
    *,
    bands: Sequence[str] | None,
    flag_handling: str,
    oversample: np.ndarray | None,
    split: dict | None,
    name: str | None,
    show: bool,
) -> _Data:
    """Return the opened sets, their bands and classes, the card with normalisation statistics, and the sources."""
    train_ds, val_ds, kind, model_name = _open_sets(model, train, val)
    name = name or model_name
    data_bands = _data_bands(train_ds, kind)
    want = [str(b) for b in bands] if bands is not None else data_bands
    band_idx = _card.select_bands(
        data_bands, {"name": name, "bands": want}, str(train_ds.attrs.get("source", "the training data"))
    )
    if val_ds is not None and _data_bands(val_ds, kind) != data_bands:
        raise ValueError(f"validation bands {_data_bands(val_ds, kind)} differ from training bands {data_bands}")
    class_ids = _resolve_classes(train_ds, val_ds, kind, hparams.pop("classes", None))
    classes = _class_names(train_ds, kind, class_ids)
    n_timesteps, patch_size = _input_shape(train_ds, val_ds, kind, hparams)
    mean, std, dates = _band_statistics(train_ds, kind, band_idx, flag_handling, show)
    card: dict[str, Any] = dict(
        _card.build_card(
            name=name,
            model=model_name,
            kind=kind,
            classes=classes,
            class_ids=class_ids,
            bands=want,
            mean=mean,
            std=std,
            n_timesteps=n_timesteps,
            dates=dates,
            flag_handling=flag_handling,
            patch_size=patch_size,
            hparams=hparams,
            split=split,
        )
    )
    if oversample is not None:
        oversample = _check_oversample(
            oversample, train_ds.sizes[_sample_dim(kind)], str(train_ds.attrs.get("source", "the training data"))
        )
    src = _Source(train_ds, kind, band_idx, card, indices=oversample)
    val_src = _Source(val_ds, kind, band_idx, card) if val_ds is not None else None
    counts = np.bincount(src.labels if oversample is None else src.labels[src.indices], minlength=len(class_ids))
    card["training_data"] = {
        "source": str(train_ds.attrs.get("source", "in-memory dataset")),
        "n_samples": int(src.n),
        "class_counts": {c: int(k) for c, k in zip(classes, counts, strict=True)},
        "validation": str(val_ds.attrs.get("source", "in-memory dataset")) if val_ds is not None else None,
        "n_validation": int(val_src.n) if val_src is not None else 0,
    }
    if kind == "timeseries" and "tile" in train_ds.variables:
        card["training_data"]["tiles"] = sorted({str(t) for t in np.unique(train_ds["tile"].values)})
    return _Data(
        train_ds,
        val_ds,
        kind,
        model_name,
        name,
        want,
        class_ids,
        classes,
        n_timesteps,
        patch_size,
        card,
        src,
        val_src,
        counts,
    )


def _class_weights(class_weight: bool | dict | None, d: _Data) -> np.ndarray | None:
    """Return the per-class loss weights (balanced for True, from a dict, None for none), recorded in the card."""
    if not isinstance(class_weight, (bool, dict)) and class_weight is not None:
        raise ValueError(
            f"class_weight must be True (balanced), False/None or a dict {{class id or name: weight}}, "
            f"got {class_weight!r}"
        )
    if isinstance(class_weight, dict):
        _check_class_weight(class_weight, d.class_ids, d.classes)
    weights: np.ndarray | None
    if class_weight is True:
        weights = d.counts.sum() / (len(d.class_ids) * np.maximum(d.counts, 1))
    elif isinstance(class_weight, dict):
        weights = np.array(
            [float(class_weight.get(c, class_weight.get(n, 1.0))) for c, n in zip(d.class_ids, d.classes, strict=True)]
        )
    else:
        weights = None
    d.card["training_data"]["class_weights"] = weights.tolist() if weights is not None else None
    return weights


def _augmentation(augment: Any, d: _Data, seed: int) -> tuple[dict | None, Callable | None]:
    """Return (time-series augmentation options, patch augmentation callable); at most one is set.

    Off by default: on the real polar patches (5 block folds x 3 seeds) the CNN with augmentation tied the CNN
    without it (OA 0.636 vs 0.633, macro F1 0.535 vs 0.528; benchmarks/bench_accuracy.py, `cnn_augment` vs `cnn`
    rows), so augmentation stays a choice for both kinds.
    """
    if isinstance(augment, str):
        raise ValueError(f"fit: augment must be True, False, None, a dict or a callable, got {augment!r}")
    if not augment:
        return None, None
    if d.kind == "timeseries":
        if callable(augment):
            raise ValueError(
                "time-series augmentation is configured with True or {'drop': p, 'noise': sigma, 'fill': bool}"
            )
        return _check_ts_augment(augment, d.card.get("flag_handling", "mask")), None
    if augment is True:
        from eokit.augment import DB_CHANNELS, make_augmenter

        # the patches reach the augmenter standardised with the card's statistics: the speckle noise
        # (additive in dB) must be scaled by 1/std of each dB channel, and applies to dB channels only
        speckle: dict[str, Any] = {} if any(b in DB_CHANNELS for b in d.want) else {"speckle_looks": None}
        augment = make_augmenter(seed=seed, channels=d.want, normalisation=d.card["normalisation"], **speckle)
    if not callable(augment):
        raise ValueError("patch augmentation must be a callable on a batch of images")
    return None, augment

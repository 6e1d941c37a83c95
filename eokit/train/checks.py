"""Checks of `fit` arguments, training labels and checkpoint folders, refusing bad input before training."""

from __future__ import annotations

import json
import math
import numbers
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from eokit._checks import did_you_mean
from eokit.card import _is_int
from eokit.inputs import _check_flag_handling
from eokit.trainingdata import dataset_class_names as _class_names
from eokit.trainingdata import sample_dim as _sample_dim

#: Default time-series augmentation when `augment=True` ("fill" follows the card's flag handling unless given).
DEFAULT_TS_AUGMENT = {"drop": 0.1, "noise": 0.02}
_TS_AUGMENT_KEYS = ("drop", "noise", "fill")
#: flag handlings under which the model sees no masked acquisition at inference: a dropped one is filled too
_FILLED_HANDLINGS = ("interpolate", "gapfill")


def _check_labels(ds: xr.Dataset, kind: str, what: str) -> None:
    """Refuse a set without samples or with negative class ids (the schema's labels are ids >= 0)."""
    where = ds.attrs.get("source", f"the {what} data")
    lab = np.asarray(ds["label"].values)
    if lab.size == 0:
        raise ValueError(f"{where}: the {what} set holds no {_sample_dim(kind)}s; at least 2 classes are needed")
    bad = np.flatnonzero(lab < 0)
    if bad.size:
        raise ValueError(
            f"{where}: 'label' holds negative class ids {sorted(set(lab[bad].tolist()))[:10]} (first at "
            f"{_sample_dim(kind)} {int(bad[0])}); class ids must be >= 0 - drop unlabelled samples first"
        )


def _resolve_classes(train: xr.Dataset, val: xr.Dataset | None, kind: str, hparams_classes: Any) -> list[int]:
    _check_labels(train, kind, "training")
    if val is not None:
        _check_labels(val, kind, "validation")
    tr = np.unique(np.asarray(train["label"].values))
    if hparams_classes is not None:
        ids = [int(c) for c in hparams_classes]
        missing = sorted(set(ids) - set(tr.tolist()))
        if missing:
            raise ValueError(f"the training split has no samples of class ids {missing}")
    else:
        ids = [int(c) for c in tr]
    val_ids: set[int] | None = None
    if val is not None:
        val_ids = set(np.unique(np.asarray(val["label"].values)).tolist())
        unseen = sorted(val_ids - set(ids))
        if unseen:
            names = _class_names(val, kind, unseen)
            raise ValueError(
                f"the split leaves classes {list(zip(unseen, names, strict=True))} without training samples (they "
                f"occur only in the validation data); change the split or drop them"
            )
    if len(ids) < 2:
        raise ValueError(f"the training split holds {len(ids)} class(es) {ids}; at least 2 are needed")
    if val_ids is not None:
        _warn_val_blind(train, val_ids, kind, ids)
    return ids


def _warn_val_blind(train: xr.Dataset, val_ids: set[int], kind: str, ids: list[int]) -> None:
    """Warn when the validation data (its class ids `val_ids`) lacks classes the model is trained on: the monitor
    cannot see them."""
    blind = [c for c in ids if c not in val_ids]
    if not blind:
        return
    lab = np.asarray(train["label"].values)
    names = _class_names(train, kind, blind)
    pairs = zip(blind, names, strict=True)
    desc = ", ".join(f"{n!r} (id {c}, {int((lab == c).sum())} training samples)" for c, n in pairs)
    warnings.warn(
        f"the validation data holds no samples of {desc}: early stopping and the best epoch restored cannot see "
        "how the model does on them (a spatial split with few groups per class; `eokit.splits.census` shows them)",
        stacklevel=5,  # the caller of fit (fit -> _prepare_data -> _resolve_classes -> here)
    )


def _hint(key: str, candidates: Sequence[str]) -> str:
    """Return ' (did you mean X?)' for the candidate closest to `key`, or ''."""
    return did_you_mean(key, candidates)


def _check_fit_args(
    epochs: Any, batch_size: Any, learning_rate: Any, early_stopping: Any, flag_handling: Any, bands: Any
) -> None:
    """Refuse fit arguments of the wrong type or range before any data is read."""
    for what, v in (("epochs", epochs), ("batch_size", batch_size)):
        if not _is_int(v) or v < 1:
            raise ValueError(f"{what} must be an integer >= 1, got {v!r}")
    if not isinstance(learning_rate, numbers.Real) or not math.isfinite(learning_rate) or learning_rate < 0:
        raise ValueError(f"learning_rate must be a finite number >= 0, got {learning_rate!r}")
    if early_stopping not in (None, False) and (not _is_int(early_stopping) or early_stopping < 0):
        raise ValueError(f"early_stopping must be None or a patience of >= 1 epochs (0 = off), got {early_stopping!r}")
    _check_flag_handling(flag_handling)
    if bands is not None:
        if isinstance(bands, str) or len(bands) == 0:
            raise ValueError(f"bands must be a non-empty list of band names, got {bands!r}")
        dup = sorted({str(b) for b in bands if [str(x) for x in bands].count(str(b)) > 1})
        if dup:
            raise ValueError(f"bands {list(bands)} name {dup} more than once; each band must appear once")


def _check_ts_augment(augment: Any, flag_handling: str = "mask") -> dict[str, Any]:
    """Return the time-series augmentation options, refusing unknown names and values out of range.

    "fill" (bool) says whether a dropped acquisition is interpolated in time from the kept ones (mask 1) or
    zeroed with mask 0; by default it follows `flag_handling`, so that training sees gaps as inference does.
    """
    opts = dict(DEFAULT_TS_AUGMENT) if augment is True else dict(augment)
    unknown = sorted(k for k in opts if k not in _TS_AUGMENT_KEYS)
    if unknown:
        hint = "".join(_hint(k, list(_TS_AUGMENT_KEYS)) for k in unknown)
        raise ValueError(f"unknown time-series augmentation options {unknown}{hint}; use 'drop', 'noise', 'fill'")
    fill = opts.pop("fill", flag_handling in _FILLED_HANDLINGS)
    if not isinstance(fill, bool | np.bool_):
        raise ValueError(f"time-series augmentation 'fill' must be True or False, got {fill!r}")
    out: dict[str, Any] = {}
    for k, v in opts.items():
        if not isinstance(v, numbers.Real) or isinstance(v, bool) or not math.isfinite(v):
            raise ValueError(f"time-series augmentation {k!r} must be a number, got {v!r}")
        out[k] = float(v)
    if not 0.0 <= out.get("drop", 0.0) < 1.0:
        raise ValueError(f"time-series augmentation 'drop' is a probability in [0, 1), got {out['drop']}")
    if out.get("noise", 0.0) < 0:
        raise ValueError(f"time-series augmentation 'noise' is a standard deviation >= 0, got {out['noise']}")
    out["fill"] = bool(fill)
    return out


def _check_oversample(oversample: Any, n: int, where: str) -> np.ndarray:
    """Return `oversample` as int64 indices, refusing empty, non-integer or out-of-range ones."""
    idx = np.asarray(oversample)
    if idx.ndim != 1 or idx.size == 0:
        raise ValueError(f"oversample must be a non-empty 1-D array of indices into {where}, got shape {idx.shape}")
    if idx.dtype.kind not in "iu":
        raise ValueError(f"oversample must hold integer indices into {where}, got dtype {idx.dtype}")
    bad = np.flatnonzero((idx < 0) | (idx >= n))
    if bad.size:
        raise ValueError(
            f"oversample index {int(idx[bad[0]])} (position {int(bad[0])}) is outside 0..{n - 1}: "
            f"indices must point into the {n} samples of {where}"
        )
    return idx.astype(np.int64)


def _check_class_weight(class_weight: dict, class_ids: list[int], classes: list[str]) -> None:
    """Refuse class_weight keys that are neither class ids nor class names of the training data."""
    known = set(class_ids) | set(classes)
    unknown = [k for k in class_weight if k not in known]
    if unknown:
        raise ValueError(
            f"class_weight keys {unknown} are neither class ids {class_ids} nor class names "
            f"{classes} of the training data{_hint(str(unknown[0]), [str(c) for c in classes])}"
        )
    bad = {k: v for k, v in class_weight.items() if not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0}
    if bad:
        raise ValueError(f"class_weight values must be finite numbers >= 0, got {bad}")


def _check_model_shapes(
    net: Any, kind: str, n_bands: int, n_timesteps: int | None, patch_size: int | None, n_classes: int
) -> None:
    if kind == "timeseries":
        shape = tuple(net.input["x"].shape[1:])
        if shape[-1] != n_bands or (shape[0] is not None and shape[0] != n_timesteps):
            raise ValueError(f"model {net.name!r} takes x of shape {shape}, the data gives ({n_timesteps}, {n_bands})")
    else:
        shape = tuple(net.input.shape[1:])
        if shape[-1] != n_bands or (shape[0] is not None and shape[0] != patch_size):
            raise ValueError(
                f"model {net.name!r} takes patches {shape}, the data gives ({patch_size}, {patch_size}, {n_bands})"
            )
    out = net.output.shape[-1]
    if out != n_classes:
        raise ValueError(f"model {net.name!r} outputs {out} classes, the training data has {n_classes}")


def _run_identity(name: str, net: Any, card: dict) -> dict:
    """Return what a checkpoint folder must match to be resumed: model, weight shapes, bands, classes."""
    return {
        "model": card["model"],
        "name": name,
        "bands": list(card["bands"]),
        "class_ids": [int(c) for c in card["class_ids"]],
        "n_timesteps": card["n_timesteps"],
        "patch_size": card["patch_size"],
        "weights": [list(map(int, w.shape)) for w in net.weights],
    }


def _check_resume(ckpt_dir: Path, identity: dict) -> None:
    """Refuse to resume from a checkpoint folder written for another model, data layout or architecture."""
    run_file = ckpt_dir / "run.json"
    if not run_file.exists():
        return
    try:
        saved = json.loads(run_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(
            f"checkpoint record {run_file} is not valid JSON ({e}); remove {ckpt_dir} or pass resume=False"
        ) from e
    diff = [k for k in identity if saved.get(k) != identity[k]]
    if diff:
        shown = "; ".join(f"{k}: checkpoint {saved.get(k)!r}, now {identity[k]!r}" for k in diff if k != "weights")
        if "weights" in diff:
            shown = (shown + "; " if shown else "") + "the layers' weight shapes differ (other model or hparams)"
        raise ValueError(
            f"cannot resume from {ckpt_dir}: it holds checkpoints of another run ({shown}); "
            "resume with the same model, hparams, bands and classes, or pass resume=False"
        )

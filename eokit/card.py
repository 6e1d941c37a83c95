"""The model card: one typed home for what a trained model takes and how its inputs are prepared.

A card is a JSON object written beside the model (`<stem>.json` next to `<stem>.keras`) and held in memory as a
plain dict typed `ModelCard`, so `card["bands"]`, `json.dumps(card)` and cards written by hand keep working.
`build_card` assembles it after training, `validate_card` / `check_card` refuse cards that are incomplete or do
not describe their model, `read_card` / `write_card` move it to and from disk, `select_bands` picks the card's
bands out of a dataset (or refuses naming the missing ones), and `prepare_inputs` / `prepare_patches` (from
`eokit.inputs`, re-exported) normalise inputs exactly as training did, for training, maps and evaluation
alike. `save_model` / `load_model` move a model and its card to and from disk, `predict` runs a model over a
training set as training prepared it, and `add_metrics` records scores in the card. TensorFlow is imported
only inside `load_model` and `predict`; custom Keras layers are registered through
`eokit.models.register_custom_layers`.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import numbers
import os
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Required, TypedDict

import numpy as np

from eokit._checks import is_int
from eokit._io import atomic_output, write_json_atomic
from eokit.inputs import _doy, _prepare_ts, prepare_inputs, prepare_patches  # noqa: F401 (re-exported)
from eokit.schema import FLAG_HANDLINGS, SAR_CHANNELS
from eokit.trainingdata import data_kind, open_training_data, sample_dim

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "CARD_FIELDS",
    "CARD_SCORES",
    "ModelCard",
    "add_metrics",
    "build_card",
    "card_path",
    "check_card",
    "class_names",
    "dataset_bands",
    "load_model",
    "model_kind",
    "predict",
    "prepare_inputs",
    "prepare_patches",
    "read_card",
    "save_model",
    "select_bands",
    "validate_card",
    "write_card",
]

#: Fields every model card must hold.
CARD_FIELDS = ("name", "kind", "classes", "class_ids", "bands", "normalisation")
_KINDS = ("timeseries", "patch")


class ModelCard(TypedDict, total=False):
    """The fields of a model card (a plain dict at run time; see docs/ARCHITECTURE.md "Model card")."""

    name: Required[str]
    model: str
    kind: Required[str]
    classes: Required[list[str]]
    class_ids: Required[list[int]]
    bands: Required[list[str]]
    n_timesteps: int | None
    dates: list[str] | None
    normalisation: Required[dict[str, list[float]]]
    flag_handling: str
    patch_size: int | None
    hparams: dict[str, Any]
    training_data: dict[str, Any]
    split: dict[str, Any]
    metrics: dict[str, Any]
    created: str
    eokit_version: str
    distribution: dict[str, Any]


# ------------------------------------------------------------------------------------------------ build
def _version() -> str:
    try:
        from eokit import __version__

        return __version__
    except ImportError:  # an outdated editable install can expose eokit as a namespace package
        from importlib.metadata import version

        return version("eokit")


def build_card(
    *,
    name: str,
    model: str,
    kind: str,
    classes: Sequence[str],
    class_ids: Sequence[int],
    bands: Sequence[str],
    mean: Any,
    std: Any,
    n_timesteps: int | None = None,
    dates: list[str] | None = None,
    flag_handling: str = "mask",
    patch_size: int | None = None,
    hparams: Mapping[str, Any] | None = None,
    split: Mapping[str, Any] | None = None,
) -> ModelCard:
    """Return a new model card (empty `training_data` and `metrics`, stamped `created` and `eokit_version`)."""
    return {
        "name": name,
        "model": model,
        "kind": kind,
        "classes": list(classes),
        "class_ids": list(class_ids),
        "bands": list(bands),
        "n_timesteps": n_timesteps,
        "dates": dates,
        "normalisation": {"mean": np.asarray(mean).tolist(), "std": np.asarray(std).tolist()},
        "flag_handling": flag_handling,
        "patch_size": patch_size,
        "hparams": {k: (list(v) if isinstance(v, tuple) else v) for k, v in (hparams or {}).items()},
        "training_data": {},
        "split": dict(split or {}),
        "metrics": {},
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "eokit_version": _version(),
    }


# ------------------------------------------------------------------------------------------------ validate
_is_int = is_int  # the one whole-number check (eokit._checks); train imports it from here


def _check_fields(card: Mapping[str, Any], where: str) -> None:
    """Refuse a card whose fields are missing, of the wrong type or of inconsistent lengths."""
    missing = [k for k in CARD_FIELDS if k not in card]
    if missing:
        raise ValueError(f"{where} lacks the field(s) {missing}; a model card holds {list(CARD_FIELDS)}")
    if card["kind"] not in _KINDS:
        raise ValueError(f"{where}: field 'kind' must be 'timeseries' or 'patch', got {card['kind']!r}")
    for key in ("bands", "classes", "class_ids"):
        if isinstance(card[key], str) or not isinstance(card[key], list) or not card[key]:
            raise ValueError(f"{where}: field {key!r} must be a non-empty list, got {card[key]!r}")
    if len(card["classes"]) != len(card["class_ids"]):
        raise ValueError(
            f"{where}: fields 'classes' ({len(card['classes'])}) and 'class_ids' "
            f"({len(card['class_ids'])}) must have the same length"
        )
    norm, n_b = card["normalisation"], len(card["bands"])
    for key in ("mean", "std"):
        vals = norm.get(key) if isinstance(norm, dict) else None
        if not isinstance(vals, list) or len(vals) != n_b or not all(isinstance(v, numbers.Real) for v in vals):
            raise ValueError(
                f"{where}: field 'normalisation.{key}' must hold one number per band {card['bands']}, got {vals!r}"
            )
    if not all(math.isfinite(v) and v > 0 for v in norm["std"]):
        raise ValueError(f"{where}: field 'normalisation.std' must be finite and > 0, got {norm['std']}")
    size = "n_timesteps" if card["kind"] == "timeseries" else "patch_size"
    if not _is_int(card.get(size)) or card[size] < 1:
        raise ValueError(
            f"{where}: a {card['kind']} model card needs the field {size!r} (an integer >= 1), got {card.get(size)!r}"
        )
    if card.get("flag_handling", "mask") not in FLAG_HANDLINGS:
        got = card["flag_handling"]
        raise ValueError(f"{where}: field 'flag_handling' must be one of {FLAG_HANDLINGS}, got {got!r}")


def validate_card(card: Any, where: str = "model card", kind: str | None = None) -> ModelCard:
    """Return `card` after checking its fields (presence, types, lengths) and, if given, that it is a `kind` model."""
    if not isinstance(card, dict):
        got = type(card).__name__
        raise ValueError(f"{where} is not a JSON object of model-card fields (got {got})")  # noqa: TRY004
    _check_fields(card, where)
    if kind is not None and card["kind"] != kind:
        raise ValueError(f"{where}: model {card['name']!r} has kind {card['kind']!r}; expected a {kind} model here")
    return card  # type: ignore[return-value]


def model_kind(model: Any) -> str:
    """Return "timeseries" for a Keras model taking a dict input with "x", else "patch"."""
    inp = model.input
    return "timeseries" if isinstance(inp, dict) and "x" in inp else "patch"


def _model_input_shapes(model: Any) -> tuple[str, tuple, int] | None:
    """Return (kind, input shape without batch, n outputs) of a functional model, or None when unknown."""
    try:
        kind = model_kind(model)
        shape = tuple(model.input["x"].shape[1:] if kind == "timeseries" else model.input.shape[1:])
        return kind, shape, int(model.output.shape[-1])
    except (AttributeError, KeyError, TypeError, ValueError):
        return None


def check_card(model: Any, card: Any, where: str = "model card", kind: str | None = None) -> ModelCard:
    """Return `card` after checking its fields and that they describe `model` (kind, bands, size, classes)."""
    card = validate_card(card, where, kind)
    name = card["name"]
    shapes = _model_input_shapes(model) if model is not None else None
    if shapes is None:
        return card
    mkind, shape, n_out = shapes
    if mkind != card["kind"]:
        raise ValueError(f"{where}: field 'kind' says {card['kind']!r} but model {name!r} takes {mkind} inputs")
    if shape[-1] != len(card["bands"]):
        raise ValueError(
            f"{where}: field 'bands' lists {len(card['bands'])} bands {card['bands']} but model "
            f"{name!r} takes {shape[-1]} input channels"
        )
    size = "n_timesteps" if mkind == "timeseries" else "patch_size"
    if shape[0] is not None and shape[0] != card[size]:
        raise ValueError(f"{where}: field {size!r} is {card[size]} but model {name!r} takes {shape[0]}")
    if n_out != len(card["classes"]):
        raise ValueError(
            f"{where}: field 'classes' lists {len(card['classes'])} classes but model {name!r} outputs {n_out}"
        )
    return card


# ------------------------------------------------------------------------------------------------ files
def card_path(path: str | os.PathLike) -> Path:
    """Return the card path of a model path: `<stem>.json` beside `<stem>.keras` (a `.json` path is kept)."""
    p = Path(path)
    return p.with_suffix(".json") if p.suffix in ("", ".keras") else p


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (Path, _dt.date)):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def write_card(card: Mapping[str, Any], path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Return the path of the card written as JSON (numpy values as numbers) atomically (temp file, then rename).

    `path` is the `.json` path or the model's `.keras` path (the card goes beside it, same stem). An existing
    card raises FileExistsError unless `overwrite`. The card is written as given, not validated.
    """
    return write_json_atomic(card, card_path(path), default=_json_default, overwrite=overwrite)


def read_card(path: str | os.PathLike) -> ModelCard:
    """Return the validated model card read from `path` (the `.json` card, or the `.keras` model it is beside)."""
    p = Path(path)
    cp = card_path(p)
    if not cp.exists():
        beside = f" (beside {p.with_suffix('.keras').name})" if p.with_suffix(".keras").exists() else ""
        raise FileNotFoundError(f"model card {cp}{beside} does not exist")
    try:
        card = json.loads(cp.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"model card {cp} is not valid JSON: {e}") from e
    return validate_card(card, f"model card {cp}")


def load_model(path: str | os.PathLike) -> tuple[Any, ModelCard]:
    """Return (keras model, model card dict) from `<stem>.keras` (or its folder/stem) and `<stem>.json`."""
    import keras

    from eokit.models import register_custom_layers

    p = Path(path)
    if p.is_dir():
        found = sorted(p.glob("*.keras"))
        if len(found) != 1:
            raise FileNotFoundError(f"{p}: expected exactly one .keras model, found {[f.name for f in found]}")
        p = found[0]
    if p.suffix != ".keras":
        p = p.with_suffix(".keras")
    if not p.exists():
        raise FileNotFoundError(f"model file {p} does not exist")
    card = read_card(p)
    register_custom_layers()
    try:
        model = keras.models.load_model(p, compile=False)
    except (ValueError, OSError, KeyError) as e:
        import zipfile

        if not zipfile.is_zipfile(p):
            raise ValueError(
                f"model file {p} is not a Keras .keras archive (expected a zip written by "
                "model.save / eokit.card.save_model)"
            ) from e
        raise ValueError(f"model file {p} cannot be loaded by Keras: {e}") from e
    check_card(model, card, f"model card {card_path(p)}")
    return model, card


def save_model(model: Any, card: Mapping[str, Any], path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Return the path of `<stem>.keras` after writing the model and its `<stem>.json` card (temp + rename)."""
    path = Path(path)
    if path.suffix != ".keras":
        path = path.with_suffix(".keras")
    with atomic_output(path, overwrite) as tmp:  # keeps the .keras suffix Keras requires
        model.save(tmp)
    write_card(card, path.with_suffix(".json"), overwrite=True)
    return path


#: The headline scores `add_metrics` copies into a model card by default.
CARD_SCORES = ("n", "overall_accuracy", "kappa", "macro_f1", "weighted_f1")


def add_metrics(
    card: dict,
    name: str,
    result: Mapping[str, Any],
    keys: Sequence[str] = CARD_SCORES,
    path: str | os.PathLike | None = None,
) -> dict:
    """Return `card` with `card["metrics"][name]` set to the `keys` of a `scores` result; written to `path` if given.

    The card is changed in place (and returned); with `path` it is written with `write_card`
    (atomically, replacing the file), e.g. over the card that `train.fit` wrote beside the model.
    """
    if isinstance(keys, str):
        keys = [keys]
    missing = [k for k in keys if k not in result]
    if missing:
        raise ValueError(
            f"add_metrics: the {name!r} result has no {missing} (has {sorted(result)}); expected the "
            "dict of evaluate.scores"
        )
    card.setdefault("metrics", {})[name] = {k: result[k] for k in keys}
    if path is not None:
        write_card(card, path, overwrite=True)
    return card


# ------------------------------------------------------------------------------------------------ bands, classes
def dataset_bands(ds: xr.Dataset, kind: str | None = None) -> list[str]:
    """Return the band names of a dataset: its `band` (time series, cubes) or `channel` (patches) coordinate,
    default names when the coordinate is absent, or its data variables (a SAR scene: one variable per band)."""
    if kind is None:
        kind = "timeseries" if "band" in ds.dims else "patch" if "channel" in ds.dims else "scene"
    if kind == "timeseries":
        if "band" in ds.coords:
            return [str(b) for b in ds["band"].values]
        return [f"b{i}" for i in range(ds.sizes["band"])]
    if kind == "scene":
        return sorted(str(v) for v in ds.data_vars)
    n = ds.sizes["channel"]
    if "channel" in ds.coords:
        return [str(c) for c in ds["channel"].values]
    return SAR_CHANNELS[:n] if n <= len(SAR_CHANNELS) else [f"c{i}" for i in range(n)]


def select_bands(ds_or_bands: Any, card: Mapping[str, Any], where: str = "the data") -> list[int]:
    """Return the indices of the card's `bands`, in the card's order, among the bands of a dataset (or a list).

    Raises ValueError naming `where` (the data), the model, the bands it takes and the missing ones.
    """
    have = dataset_bands(ds_or_bands) if hasattr(ds_or_bands, "data_vars") else [str(b) for b in ds_or_bands]
    want = [str(b) for b in card.get("bands") or []]
    name = card.get("name", "?")
    if not want:
        raise ValueError(f"model card of {name!r} lists no 'bands'")
    missing = [b for b in want if b not in have]
    if missing:
        raise ValueError(
            f"{where} lacks {missing}: model {name!r} asks for bands {want} but {where} has only {have} "
            f"(missing {missing}); the model takes bands by name, so {where} bands {have} must "
            "include them"
        )
    return [have.index(b) for b in want]


def class_names(card: Mapping[str, Any]) -> list[str]:
    """Return the class names of a model card (index = model output), refusing a card without them."""
    names = card.get("classes")
    if not names:
        raise ValueError(f"model card of {card.get('name', '?')!r} has no 'classes' list")
    return [str(c) for c in names]


# ------------------------------------------------------------------------------------------------ predict
#: One traced inference function per model (a new one per call retraced, and TF warned from the fifth call).
_INFERENCE_FNS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _inference_fn(model: Any) -> Any:
    """Return the model's cached tf.function `x -> model(x, training=False)`."""
    fn = _INFERENCE_FNS.get(model)
    if fn is None:
        import tensorflow as tf

        ref = weakref.ref(model)  # the cache must not keep the model alive through its own function

        def call(x: Any) -> Any:
            net = ref()
            assert net is not None, "predict holds the model while it runs"
            return net(x, training=False)

        fn = _INFERENCE_FNS[model] = tf.function(call, reduce_retracing=True)
    return fn


def predict(
    model: Any, card: Mapping[str, Any], data: Any, batch_size: int = 1024, progress: bool = False
) -> np.ndarray:
    """Return class probabilities (N, n_classes) for a time-series or patch set, preprocessed as in training."""
    from eokit._progress import tqdm

    check_card(model, card)
    ds = open_training_data(data)
    kind = data_kind(ds)
    if kind != card["kind"]:
        raise ValueError(f"model {card['name']!r} is a {card['kind']} model but the data is a {kind} set")
    band_idx = select_bands(dataset_bands(ds, kind), card, str(ds.attrs.get("source", "the data")))
    dim = sample_dim(kind)
    n = ds.sizes[dim]
    fn = _inference_fn(model)
    out = []
    for a in tqdm(range(0, n, batch_size), desc="predict", disable=not progress, leave=False):
        sub = ds.isel({dim: slice(a, min(a + batch_size, n))})
        x: dict[str, np.ndarray] | np.ndarray
        if kind == "timeseries":
            refl = np.asarray(sub["reflectance"].values)[..., band_idx]
            x = prepare_inputs(refl, sub["flag"].values, sub["date"].values, card)
        else:
            x = prepare_patches(np.asarray(sub["image"].values)[..., band_idx], card)
        out.append(np.asarray(fn(x)))
    k = len(card["classes"])
    return np.concatenate(out) if out else np.zeros((0, k), np.float32)

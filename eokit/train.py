"""Training: a tf.data input pipeline read block by block from xarray/Zarr, one training loop, model cards.

One custom training loop (`strategy.run` over per-replica batches made by `distribute_datasets_from_function`)
serves a single machine and `tf.distribute.MultiWorkerMirroredStrategy` alike, because Keras 3 `fit` fails
under the multi-worker strategy. On one machine the gradient step is compiled with XLA.

Time-series data follow `eokit.schema.TIMESERIES_SCHEMA`; patch sets follow `PATCH_SCHEMA`. Inputs given to
the models are normalised with per-band statistics of the training split (clear observations only), which
are stored in the model card and reused by `prepare_inputs` / `prepare_patches` at prediction time.
"""

from __future__ import annotations

import difflib
import json
import math
import numbers
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from eokit import card as _card
from eokit._io import atomic_output, check_target, write_json_atomic
from eokit.card import (  # noqa: F401 (CARD_FIELDS, check_card, load_model, save_model, predict, ...: re-exported)
    CARD_FIELDS,
    _is_int,
    _prepare_ts,
    check_card,
    load_model,
    predict,
    prepare_inputs,
    prepare_patches,
    save_model,
)
from eokit.card import dataset_bands as _data_bands
from eokit.card import dataset_class_names as _class_names
from eokit.card import model_kind as _model_kind
from eokit.schema import FLAG_CLEAR, FLAG_NODATA
from eokit.trainingdata import data_kind as _data_kind
from eokit.trainingdata import open_training_data  # also re-exported: eokit.train.open_training_data
from eokit.trainingdata import sample_dim as _sample_dim

#: Samples read from the store at once when the store is not chunked along `sample`.
DEFAULT_BLOCK = 4096
#: Minimum number of samples held in the shuffle window (several store chunks are mixed).
SHUFFLE_WINDOW = 16384
#: Default time-series augmentation when `augment=True`.
DEFAULT_TS_AUGMENT = {"drop": 0.1, "noise": 0.02}


# ------------------------------------------------------------------------------------------------ data
# open_training_data (re-exported), data_kind and sample_dim live in eokit.trainingdata


class _Source:
    """Block-wise reader of a training set: reads only the samples of one block at a time."""

    def __init__(self, ds: xr.Dataset, kind: str, band_idx: list[int], card: dict, indices: np.ndarray | None = None):
        self.ds, self.kind, self.band_idx, self.card = ds, kind, band_idx, card
        self.dim = _sample_dim(kind)
        n = ds.sizes[self.dim]
        self.indices = np.sort(np.asarray(indices, dtype=np.int64)) if indices is not None else None
        self.n = len(self.indices) if self.indices is not None else n
        var = ds["reflectance" if kind == "timeseries" else "image"]
        chunks = var.chunks
        self.block = int(chunks[0][0]) if chunks else DEFAULT_BLOCK
        self.block = max(1, min(self.block, DEFAULT_BLOCK * 4))
        self.id_to_index = {int(c): i for i, c in enumerate(card["class_ids"])}
        self.labels = self._label_index(np.asarray(ds["label"].values))

    def _label_index(self, labels: np.ndarray) -> np.ndarray:
        lut = np.full(int(max(labels.max(initial=0), max(self.id_to_index))) + 1, -1, np.int64)
        for cid, i in self.id_to_index.items():
            lut[cid] = i
        out = np.where(labels >= 0, lut[np.clip(labels, 0, len(lut) - 1)], -1)
        bad = np.flatnonzero(out < 0)
        if bad.size:
            where = self.ds.attrs.get("source", "the data")
            raise ValueError(
                f"{where}: labels {sorted(set(labels[bad].tolist()))[:10]} (first at {self.dim} {bad[0]}) are not "
                f"among the model's class ids {list(self.id_to_index)}"
            )
        return out

    def _select(self, a: int, b: int) -> tuple[xr.Dataset, np.ndarray]:
        if self.indices is None:
            return self.ds.isel({self.dim: slice(a, b)}), np.arange(a, b)
        idx = self.indices[a:b]
        return self.ds.isel({self.dim: idx}), idx

    def read(self, a: int, b: int) -> tuple[dict[str, np.ndarray] | np.ndarray, np.ndarray]:
        """Return (model inputs, class indices) for positions a..b."""
        sub, idx = self._select(a, b)
        y = self.labels[idx]
        if self.kind == "timeseries":
            refl = np.asarray(sub["reflectance"].values)[..., self.band_idx]
            norm = self.card["normalisation"]
            x = _prepare_ts(refl, sub["flag"].values, sub["date"].values, np.asarray(norm["mean"]),
                            np.asarray(norm["std"]), int(self.card["n_timesteps"]), self.card["flag_handling"])
        else:
            img = np.asarray(sub["image"].values)[..., self.band_idx]
            x = prepare_patches(img, self.card)
        return x, y


def _band_statistics(ds: xr.Dataset, kind: str, band_idx: list[int], flag_handling: str,
                     progress: bool) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Per-band mean/std over valid observations, read block by block; also the common date grid if any."""
    from tqdm.auto import tqdm

    dim = _sample_dim(kind)
    n = ds.sizes[dim]
    var = ds["reflectance" if kind == "timeseries" else "image"]
    block = min(int(var.chunks[0][0]), DEFAULT_BLOCK * 4) if var.chunks else DEFAULT_BLOCK
    c = len(band_idx)
    s, ss, cnt = np.zeros(c), np.zeros(c), np.zeros(c)
    grid: np.ndarray | None = None
    same_grid = kind == "timeseries"
    nan_clear = 0
    for a in tqdm(range(0, n, block), desc="normalisation statistics", disable=not progress, leave=False):
        sub = ds.isel({dim: slice(a, min(a + block, n))})
        if kind == "timeseries":
            v = np.asarray(sub["reflectance"].values, dtype=np.float64)[..., band_idx]
            flag = np.asarray(sub["flag"].values)
            ok = (flag == FLAG_CLEAR) if flag_handling == "mask" else (flag != FLAG_NODATA)
            if same_grid:
                d = np.asarray(sub["date"].values)
                grid = d[0] if grid is None else grid
                same_grid = d.shape[1] == grid.shape[0] and bool(np.all((d == grid) | (np.isnat(d) & np.isnat(grid))))
        else:
            v = np.asarray(sub["image"].values, dtype=np.float64)[..., band_idx]
            ok = np.ones(v.shape[:-1], bool)
        _refuse_infinite(v, a, ds, kind, band_idx)
        if kind == "timeseries":
            nan_clear += int((ok[..., None] & np.isnan(v)).sum())
        ok = ok[..., None] & np.isfinite(v)
        v = np.where(ok, v, 0.0)
        axes = tuple(range(v.ndim - 1))
        s += v.sum(axis=axes)
        ss += (v * v).sum(axis=axes)
        cnt += ok.sum(axis=axes)
    if nan_clear:
        warnings.warn(f"{ds.attrs.get('source', 'training data')}: {nan_clear} band values of observations flagged "
                      f"{'clear' if flag_handling == 'mask' else 'observed'} are NaN in 'reflectance'; they are "
                      "treated as missing observations (flag them 255 to say so)", stacklevel=3)
    if (cnt == 0).any():
        raise ValueError(f"{ds.attrs.get('source', 'training data')}: no valid observation for bands "
                         f"{[i for i, k in zip(band_idx, cnt) if k == 0]}")
    mean = s / cnt
    std = np.sqrt(np.maximum(ss / cnt - mean * mean, 0.0))
    std = np.where(std < 1e-6, 1.0, std)
    dates = None
    if same_grid and grid is not None and not np.isnat(grid).any():
        dates = [str(np.datetime_as_string(d, unit="D")) for d in grid]
    return mean, std, dates


def _refuse_infinite(v: np.ndarray, offset: int, ds: xr.Dataset, kind: str, band_idx: list[int]) -> None:
    """Refuse +-inf in a block of training values: never a measurement nor a missing-value marker."""
    inf = np.isinf(v)
    if inf.any():
        pos = [int(i) for i in np.argwhere(inf)[0]]
        pos[0] += offset
        pos[-1] = _data_bands(ds, kind)[band_idx[pos[-1]]]
        var = "reflectance" if kind == "timeseries" else "image"
        where = ", ".join(f"{d} {i}" for d, i in zip(ds[var].dims, pos))
        raise ValueError(f"{ds.attrs.get('source', 'training data')}: {int(inf.sum())} infinite values in {var!r} "
                         f"of this block (first at {where}); expected finite values (NaN or flag 255 for missing)")


def _epoch_batches(src: _Source, batch_size: int, rng: np.random.Generator | None, *, pipeline: int = 0,
                   n_pipelines: int = 1, weights: np.ndarray | None = None, ts_augment: dict | None = None,
                   aug_rng: np.random.Generator | None = None) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
    """Yield (inputs, y, w) batches of one epoch: shuffled store blocks, mixed in a window, sliced per pipeline.

    Every pipeline (worker) draws the same global order and keeps its slice of each global batch, so all
    workers run the same number of steps. The last batch is padded to full size with weight-0 rows, so
    that compiled steps see one shape only.
    """
    blocks = [(a, min(a + src.block, src.n)) for a in range(0, src.n, src.block)]
    order = rng.permutation(len(blocks)) if rng is not None else np.arange(len(blocks))
    per_window = max(1, math.ceil(max(SHUFFLE_WINDOW, 4 * batch_size) / src.block))
    pending_x: list[Any] = []
    pending_y: list[np.ndarray] = []

    def _cat(parts: list[Any]) -> Any:
        if isinstance(parts[0], dict):
            return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        return np.concatenate(parts)

    def _take(x: Any, sl: Any) -> Any:
        return {k: v[sl] for k, v in x.items()} if isinstance(x, dict) else x[sl]

    def _emit(x: Any, y: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray]:
        w = weights[y].astype(np.float32) if weights is not None else np.ones(len(y), np.float32)
        n_real = len(y)
        if n_real < batch_size:  # pad the last batch with weight-0 copies of its first row
            take = np.concatenate([np.arange(n_real), np.zeros(batch_size - n_real, np.int64)])
            x, y, w = _take(x, take), y[take], w[take]
            w[n_real:] = 0.0
        lo, hi = pipeline * batch_size // n_pipelines, (pipeline + 1) * batch_size // n_pipelines
        x, y, w = _take(x, slice(lo, hi)), y[lo:hi], w[lo:hi]
        if ts_augment and aug_rng is not None:
            x = _augment_ts(x, aug_rng, **ts_augment)
        return x, y.astype(np.int32), w

    for start in range(0, len(order), per_window):
        parts = [src.read(*blocks[i]) for i in order[start:start + per_window]]
        xs = pending_x + [p[0] for p in parts]
        ys = pending_y + [p[1] for p in parts]
        x, y = _cat(xs), np.concatenate(ys)
        if rng is not None:
            perm = rng.permutation(len(y))
            x, y = _take(x, perm), y[perm]
        n_full = len(y) // batch_size
        for b in range(n_full):
            sl = slice(b * batch_size, (b + 1) * batch_size)
            yield _emit(_take(x, sl), y[sl])
        rest = slice(n_full * batch_size, len(y))
        pending_x, pending_y = ([_take(x, rest)], [y[rest]]) if len(y) > n_full * batch_size else ([], [])
    if pending_y:
        yield _emit(pending_x[0], pending_y[0])


def _augment_ts(x: dict[str, np.ndarray], rng: np.random.Generator, drop: float = 0.0,
                noise: float = 0.0) -> dict[str, np.ndarray]:
    """Randomly drop acquisitions (mask -> 0) and add Gaussian noise to valid normalised values."""
    mask = x["mask"]
    xx = x["x"]
    if drop > 0:
        keep = rng.random(mask.shape) >= drop
        mask = mask * keep
        xx = xx * mask[..., None]
    if noise > 0:
        xx = xx + rng.normal(0.0, noise, xx.shape).astype(np.float32) * mask[..., None]
    return {"x": xx.astype(np.float32), "mask": mask.astype(np.float32), "doy": x["doy"]}


def _output_signature(kind: str, card: dict, batch: int | None = None) -> tuple:
    import tensorflow as tf

    t, c = card.get("n_timesteps"), len(card["bands"])
    if kind == "timeseries":
        x = {"x": tf.TensorSpec((batch, t, c), tf.float32), "mask": tf.TensorSpec((batch, t), tf.float32),
             "doy": tf.TensorSpec((batch, t), tf.float32)}
    else:
        p = card["patch_size"]
        x = tf.TensorSpec((batch, p, p, c), tf.float32)
    return x, tf.TensorSpec((batch,), tf.int32), tf.TensorSpec((batch,), tf.float32)


# ------------------------------------------------------------------------------------------------ strategy
def _tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON: {e}") from e


def _n_workers(cfg: dict) -> int:
    cluster = cfg.get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def is_chief() -> bool:
    """Return True on the chief worker (or on a single machine): the one that writes outputs."""
    cfg = _tf_config()
    task = cfg.get("task", {})
    if not cfg or _n_workers(cfg) <= 1:
        return True
    if "chief" in cfg.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0


def get_strategy(strategy: Any = None) -> Any:
    """Return the tf.distribute strategy to train with: MultiWorkerMirrored when TF_CONFIG lists workers.

    `strategy` may be a strategy object, "multiworker" (force MultiWorkerMirroredStrategy), "default"
    (no distribution) or None/"auto" (from TF_CONFIG).
    """
    import tensorflow as tf

    if strategy is not None and not isinstance(strategy, str):
        return strategy
    name = (strategy or "auto").lower().replace("-", "").replace("_", "")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multiworker" or (name == "auto" and _n_workers(_tf_config()) > 1):
        opts = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=opts)
    if name != "auto":
        raise ValueError(f"strategy must be a tf.distribute.Strategy, 'auto', 'default' or 'multiworker', got {strategy!r}")
    return tf.distribute.get_strategy()


def _is_multiworker(strategy: Any) -> bool:
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or \
        type(strategy).__name__.startswith("CollectiveAllReduceStrategy")


# ------------------------------------------------------------------------------------------------ cards
def write_card(card: dict, path: str | os.PathLike) -> Path:
    """Return the path of the model card JSON written atomically (temp file, then rename), replacing any."""
    return _card.write_card(card, path, overwrite=True)


# ------------------------------------------------------------------------------------------------ fit
def _check_labels(ds: xr.Dataset, kind: str, what: str) -> None:
    """Refuse a set without samples or with negative class ids (the schema's labels are ids >= 0)."""
    where = ds.attrs.get("source", f"the {what} data")
    lab = np.asarray(ds["label"].values)
    if lab.size == 0:
        raise ValueError(f"{where}: the {what} set holds no {_sample_dim(kind)}s; at least 2 classes are needed")
    bad = np.flatnonzero(lab < 0)
    if bad.size:
        raise ValueError(f"{where}: 'label' holds negative class ids {sorted(set(lab[bad].tolist()))[:10]} (first at "
                         f"{_sample_dim(kind)} {int(bad[0])}); class ids must be >= 0 - drop unlabelled samples first")


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
    if val is not None:
        vl = np.unique(np.asarray(val["label"].values))
        unseen = sorted(set(vl.tolist()) - set(ids))
        if unseen:
            names = _class_names(val, kind, unseen)
            raise ValueError(
                f"the split leaves classes {list(zip(unseen, names))} without training samples (they occur "
                f"only in the validation data); change the split or drop them"
            )
    if len(ids) < 2:
        raise ValueError(f"the training split holds {len(ids)} class(es) {ids}; at least 2 are needed")
    return ids


def _hint(key: str, candidates: Sequence[str]) -> str:
    """Return ' (did you mean X?)' for the candidate closest to `key`, or ''."""
    close = difflib.get_close_matches(str(key), [str(c) for c in candidates], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_fit_args(epochs: Any, batch_size: Any, learning_rate: Any, early_stopping: Any, flag_handling: Any,
                    bands: Any) -> None:
    """Refuse fit arguments of the wrong type or range before any data is read."""
    for what, v in (("epochs", epochs), ("batch_size", batch_size)):
        if not _is_int(v) or v < 1:
            raise ValueError(f"{what} must be an integer >= 1, got {v!r}")
    if not isinstance(learning_rate, numbers.Real) or not math.isfinite(learning_rate) or learning_rate < 0:
        raise ValueError(f"learning_rate must be a finite number >= 0, got {learning_rate!r}")
    if early_stopping not in (None, False) and (not _is_int(early_stopping) or early_stopping < 0):
        raise ValueError(f"early_stopping must be None or a patience of >= 1 epochs (0 = off), got {early_stopping!r}")
    if flag_handling not in ("mask", "gapfill"):
        raise ValueError(f"flag_handling must be 'mask' or 'gapfill', got {flag_handling!r}"
                         f"{_hint(str(flag_handling), ['mask', 'gapfill'])}")
    if bands is not None:
        if isinstance(bands, str) or len(bands) == 0:
            raise ValueError(f"bands must be a non-empty list of band names, got {bands!r}")
        dup = sorted({str(b) for b in bands if [str(x) for x in bands].count(str(b)) > 1})
        if dup:
            raise ValueError(f"bands {list(bands)} name {dup} more than once; each band must appear once")


def _check_ts_augment(augment: Any) -> dict[str, float]:
    """Return the time-series augmentation options, refusing unknown names and values out of range."""
    opts = dict(DEFAULT_TS_AUGMENT) if augment is True else dict(augment)
    unknown = sorted(k for k in opts if k not in ("drop", "noise"))
    if unknown:
        hint = "".join(_hint(k, ["drop", "noise"]) for k in unknown)
        raise ValueError(f"unknown time-series augmentation options {unknown}{hint}; use 'drop', 'noise'")
    out = {}
    for k, v in opts.items():
        if not isinstance(v, numbers.Real) or isinstance(v, bool) or not math.isfinite(v):
            raise ValueError(f"time-series augmentation {k!r} must be a number, got {v!r}")
        out[k] = float(v)
    if not 0.0 <= out.get("drop", 0.0) < 1.0:
        raise ValueError(f"time-series augmentation 'drop' is a probability in [0, 1), got {out['drop']}")
    if out.get("noise", 0.0) < 0:
        raise ValueError(f"time-series augmentation 'noise' is a standard deviation >= 0, got {out['noise']}")
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
        raise ValueError(f"oversample index {int(idx[bad[0]])} (position {int(bad[0])}) is outside 0..{n - 1}: "
                         f"indices must point into the {n} samples of {where}")
    return idx.astype(np.int64)


def _check_class_weight(class_weight: dict, class_ids: list[int], classes: list[str]) -> None:
    """Refuse class_weight keys that are neither class ids nor class names of the training data."""
    known = set(class_ids) | set(classes)
    unknown = [k for k in class_weight if k not in known]
    if unknown:
        raise ValueError(f"class_weight keys {unknown} are neither class ids {class_ids} nor class names "
                         f"{classes} of the training data{_hint(str(unknown[0]), [str(c) for c in classes])}")
    bad = {k: v for k, v in class_weight.items()
           if not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0}
    if bad:
        raise ValueError(f"class_weight values must be finite numbers >= 0, got {bad}")


def _run_identity(name: str, net: Any, card: dict) -> dict:
    """Return what a checkpoint folder must match to be resumed: model, weight shapes, bands, classes."""
    return {"model": card["model"], "name": name, "bands": list(card["bands"]),
            "class_ids": [int(c) for c in card["class_ids"]], "n_timesteps": card["n_timesteps"],
            "patch_size": card["patch_size"], "weights": [list(map(int, w.shape)) for w in net.weights]}


def _check_resume(ckpt_dir: Path, identity: dict) -> None:
    """Refuse to resume from a checkpoint folder written for another model, data layout or architecture."""
    run_file = ckpt_dir / "run.json"
    if not run_file.exists():
        return
    try:
        saved = json.loads(run_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"checkpoint record {run_file} is not valid JSON ({e}); remove {ckpt_dir} or pass "
                         "resume=False") from e
    diff = [k for k in identity if saved.get(k) != identity[k]]
    if diff:
        shown = "; ".join(f"{k}: checkpoint {saved.get(k)!r}, now {identity[k]!r}" for k in diff if k != "weights")
        if "weights" in diff:
            shown = (shown + "; " if shown else "") + "the layers' weight shapes differ (other model or hparams)"
        raise ValueError(f"cannot resume from {ckpt_dir}: it holds checkpoints of another run ({shown}); "
                         "resume with the same model, hparams, bands and classes, or pass resume=False")


def fit(
    model: Any,
    train: Any,
    val: Any = None,
    *,
    epochs: int = 20,
    batch_size: int = 128,
    seed: int = 0,
    output: str | os.PathLike | None = None,
    class_weight: bool | dict = True,
    augment: Any = None,
    early_stopping: int | None = 5,
    checkpoint: bool = True,
    resume: bool = False,
    progress: bool = True,
    strategy: Any = None,
    hparams: dict | None = None,
    learning_rate: float = 1e-3,
    bands: Sequence[str] | None = None,
    flag_handling: str = "mask",
    oversample: np.ndarray | None = None,
    split: dict | None = None,
    name: str | None = None,
    overwrite: bool = False,
    jit_compile: bool | None = None,
    callbacks: Sequence[Callable[[int, dict], Any]] | None = None,
) -> tuple[Any, dict, dict]:
    """Return (trained keras model, model card, history) after training on `train` (validating on `val`).

    `model` is a registered name (`eokit.models.available()`) or a keras.Model. `train`/`val` are xarray
    Datasets or store paths. Time series: `augment=True` or {"drop": p, "noise": sigma}; patches: a callable
    on batches of images (e.g. `eokit.augment.make_augmenter(...)`) or True (flips, rotations, shifts and speckle
    scaled to the standardised channels), and `oversample` indices into `train`. A callable taking `seed=`
    (as `Augmenter` does) gets a stateless seed per batch and runs in parallel, reproducibly; others run in order.
    The model and its card are written to `{output}/{name}.keras` and `.json`; checkpoints each epoch go to
    `{output}/checkpoints/{name}/` and `resume=True` continues from the latest one. Each of `callbacks`
    is called as `callback(epoch, logs)` after every epoch (logs: that epoch's metrics and seconds).
    """
    import keras
    import tensorflow as tf
    from tqdm.auto import tqdm

    from eokit import models as registry

    _check_fit_args(epochs, batch_size, learning_rate, early_stopping, flag_handling, bands)
    hparams = dict(hparams or {})
    strategy = get_strategy(strategy)
    multi = _is_multiworker(strategy)
    chief = is_chief() if multi else True
    show = progress and chief
    n_replicas = strategy.num_replicas_in_sync
    # ---- data
    train_ds = open_training_data(train)
    val_ds = open_training_data(val) if val is not None else None
    kind = _data_kind(train_ds)
    if val_ds is not None and _data_kind(val_ds) != kind:
        raise ValueError("train and val must both be time-series sets or both patch sets")
    if isinstance(model, str):
        model_name = model
        if registry.kind(model_name) != kind:
            raise ValueError(f"model {model_name!r} is a {registry.kind(model_name)} model but the data is a {kind} set")
    else:
        model_name = model.name
        if _model_kind(model) != kind:
            raise ValueError(f"model {model.name!r} takes {_model_kind(model)} inputs but the data is a {kind} set")
    name = name or model_name
    data_bands = _data_bands(train_ds, kind)
    want = [str(b) for b in bands] if bands is not None else data_bands
    band_idx = _card.select_bands(data_bands, {"name": name, "bands": want},
                                  str(train_ds.attrs.get("source", "the training data")))
    if val_ds is not None and _data_bands(val_ds, kind) != data_bands:
        raise ValueError(f"validation bands {_data_bands(val_ds, kind)} differ from training bands {data_bands}")
    class_ids = _resolve_classes(train_ds, val_ds, kind, hparams.pop("classes", None))
    classes = _class_names(train_ds, kind, class_ids)
    n_classes = len(class_ids)
    if kind == "timeseries":
        n_timesteps = hparams.pop("n_timesteps", train_ds.sizes["time"])
        if not _is_int(n_timesteps) or n_timesteps < train_ds.sizes["time"]:
            raise ValueError(f"hparam n_timesteps must be an integer >= the {train_ds.sizes['time']} time steps of "
                             f"{train_ds.attrs.get('source', 'the training data')}, got {n_timesteps!r}")
        n_timesteps = int(n_timesteps)
        if val_ds is not None and val_ds.sizes["time"] > n_timesteps:
            raise ValueError(f"validation series have {val_ds.sizes['time']} steps, more than the model's {n_timesteps}")
        patch_size = None
    else:
        n_timesteps = None
        if train_ds.sizes["row"] != train_ds.sizes["col"]:
            raise ValueError(f"patches must be square, got {train_ds.sizes['row']}x{train_ds.sizes['col']}")
        patch_size = int(train_ds.sizes["row"])
        hparams.setdefault("patch_size", patch_size)
    mean, std, dates = _band_statistics(train_ds, kind, band_idx, flag_handling, show)
    card: dict[str, Any] = dict(_card.build_card(
        name=name, model=model_name, kind=kind, classes=classes, class_ids=class_ids, bands=want, mean=mean, std=std,
        n_timesteps=n_timesteps, dates=dates, flag_handling=flag_handling, patch_size=patch_size, hparams=hparams,
        split=split))
    if oversample is not None:
        oversample = _check_oversample(oversample, train_ds.sizes[_sample_dim(kind)],
                                       str(train_ds.attrs.get("source", "the training data")))
    src = _Source(train_ds, kind, band_idx, card, indices=oversample)
    val_src = _Source(val_ds, kind, band_idx, card) if val_ds is not None else None
    counts = np.bincount(src.labels if oversample is None else src.labels[src.indices], minlength=n_classes)
    card["training_data"] = {
        "source": str(train_ds.attrs.get("source", "in-memory dataset")),
        "n_samples": int(src.n),
        "class_counts": {c: int(k) for c, k in zip(classes, counts)},
        "validation": str(val_ds.attrs.get("source", "in-memory dataset")) if val_ds is not None else None,
        "n_validation": int(val_src.n) if val_src is not None else 0,
    }
    if kind == "timeseries" and "tile" in train_ds.variables:
        card["training_data"]["tiles"] = sorted({str(t) for t in np.unique(train_ds["tile"].values)})
    if not isinstance(class_weight, (bool, dict)) and class_weight is not None:
        raise ValueError(f"class_weight must be True (balanced), False/None or a dict {{class id or name: weight}}, "
                         f"got {class_weight!r}")
    if isinstance(class_weight, dict):
        _check_class_weight(class_weight, class_ids, classes)
    if class_weight is True:
        weights = counts.sum() / (n_classes * np.maximum(counts, 1))
    elif isinstance(class_weight, dict):
        weights = np.array([float(class_weight.get(c, class_weight.get(n, 1.0))) for c, n in zip(class_ids, classes)])
    else:
        weights = None
    card["training_data"]["class_weights"] = weights.tolist() if weights is not None else None
    # ---- augmentation
    ts_aug: dict | None = None
    tf_aug: Callable | None = None
    if augment:
        if kind == "timeseries":
            if callable(augment):
                raise ValueError("time-series augmentation is configured with True or {'drop': p, 'noise': sigma}")
            ts_aug = _check_ts_augment(augment)
        else:
            if augment is True:
                from eokit.augment import DB_CHANNELS, make_augmenter

                # the patches reach the augmenter standardised with the card's statistics: the speckle noise
                # (additive in dB) must be scaled by 1/std of each dB channel, and applies to dB channels only
                speckle = {} if any(b in DB_CHANNELS for b in want) else {"speckle_looks": None}
                augment = make_augmenter(seed=seed, channels=want, normalisation=card["normalisation"], **speckle)
            if not callable(augment):
                raise ValueError("patch augmentation must be a callable on a batch of images")
            tf_aug = augment
    aug_stateless = tf_aug is not None and _takes_seed(tf_aug)
    card["hparams"]["augment"] = ts_aug if ts_aug else (getattr(tf_aug, "__name__", "callable") if tf_aug else None)
    card["hparams"].update({"learning_rate": learning_rate, "batch_size": batch_size, "seed": seed,
                            "class_weight": bool(class_weight), "early_stopping": early_stopping})
    # ---- output paths
    out_dir = Path(output) if output is not None else None
    model_path = out_dir / f"{name}.keras" if out_dir is not None else None
    if model_path is not None:
        check_target(model_path, overwrite or resume)
    ckpt_dir = out_dir / "checkpoints" / name if (out_dir is not None and checkpoint) else None
    if ckpt_dir is not None and not chief:
        ckpt_dir = Path(tempfile.mkdtemp(prefix=f"eokit-worker-ckpt-{name}-"))
    if ckpt_dir is not None and not resume and ckpt_dir.exists() and chief:
        shutil.rmtree(ckpt_dir)
    if ckpt_dir is not None:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    # ---- model, optimizer, checkpoint
    keras.utils.set_random_seed(seed)
    with strategy.scope():
        if isinstance(model, str):
            net = registry.build(model_name, n_bands=len(want), n_timesteps=n_timesteps, n_classes=n_classes, **hparams)
        else:
            net = model
        _check_model_shapes(net, kind, len(want), n_timesteps, patch_size, n_classes)
        optimizer = keras.optimizers.Adam(learning_rate=learning_rate)
        optimizer.build(net.trainable_variables)
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False)
        best_var = tf.Variable(np.inf, dtype=tf.float64, trainable=False)
        wait_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    # the dropout seed-generator states are not tracked by the model: checkpoint them explicitly, so that a
    # resumed run continues exactly as an uninterrupted one
    seed_states = {f"s{i}": v.value for i, v in enumerate(net.non_trainable_variables) if "seed_generator" in v.path}
    ckpt = tf.train.Checkpoint(model=net, optimizer=optimizer, epoch=epoch_var, best=best_var, wait=wait_var,
                               seed_states=seed_states)
    identity = _run_identity(name, net, card)
    if resume and ckpt_dir is not None and chief:
        _check_resume(ckpt_dir, identity)
    manager = tf.train.CheckpointManager(ckpt, str(ckpt_dir), max_to_keep=2) if ckpt_dir is not None else None
    history: dict[str, list[float]] = {"loss": [], "accuracy": []}
    if val_src is not None:
        history.update({"val_loss": [], "val_accuracy": []})
    best_weights_path = ckpt_dir / "best.weights.h5" if ckpt_dir is not None else None
    best_weights = None
    if resume and manager is not None and manager.latest_checkpoint:
        try:
            ckpt.restore(manager.latest_checkpoint)
        except (ValueError, tf.errors.OpError) as e:  # a folder from before run.json was written
            raise ValueError(f"cannot resume from {ckpt_dir}: its checkpoint {manager.latest_checkpoint} does not fit "
                             f"model {model_name!r} with these hparams ({str(e).splitlines()[0]}); resume with the "
                             "same model and hparams, or pass resume=False") from e
        hist_file = ckpt_dir / "history.json"
        if hist_file.exists():
            history = json.loads(hist_file.read_text())
        if best_weights_path is not None and best_weights_path.exists():
            best_weights = _read_weights(net, best_weights_path)
        if show:
            print(f"resumed {name} from {manager.latest_checkpoint} after epoch {int(epoch_var.numpy())}")
    if ckpt_dir is not None and chief:
        write_json_atomic(identity, ckpt_dir / "run.json")
    # ---- compiled steps (XLA on one machine; recurrent layers run faster without it on CPU)
    if jit_compile is None:
        jit_compile = not multi and not any(isinstance(layer, keras.layers.RNN) for layer in net.layers)
    card["hparams"]["jit_compile"] = bool(jit_compile)
    grad_fn = _make_grad_fn(net, optimizer, jit_compile, n_replicas)

    def _replica_step(x: Any, y: Any, w: Any) -> tuple[Any, Any, Any]:
        return grad_fn(x, y, w)

    @tf.function
    def _train_step(batch: Any) -> tuple[Any, Any]:
        x, y, w = batch
        loss, correct, n = strategy.run(_replica_step, args=(x, y, w))
        return tuple(strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in (loss, correct, n))

    n_pipelines = max(1, _n_workers(_tf_config())) if multi else 1
    if batch_size % n_replicas:
        raise ValueError(f"batch_size {batch_size} must be divisible by the {n_replicas} replicas")
    steps = math.ceil(src.n / batch_size)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    options.deterministic = True

    def _dataset_fn(epoch: int) -> Callable:
        def fn(ctx: Any) -> Any:
            per_replica = ctx.get_per_replica_batch_size(batch_size)
            n_pipe, pid = ctx.num_input_pipelines, ctx.input_pipeline_id
            rng = np.random.default_rng([seed, epoch])
            aug_rng = np.random.default_rng([seed, epoch, pid, 1])

            def gen() -> Iterator:
                return _epoch_batches(src, batch_size, rng, pipeline=pid, n_pipelines=n_pipe,
                                      weights=weights, ts_augment=ts_aug, aug_rng=aug_rng)

            data = tf.data.Dataset.from_generator(gen, output_signature=_output_signature(kind, card))
            if ctx.num_replicas_in_sync // n_pipe > 1:  # several replicas per worker: per-replica batches
                data = data.rebatch(per_replica)
            if tf_aug is not None and aug_stateless:
                # one stateless seed per (epoch, pipeline, batch): a parallel map gives the same draws on every
                # run and on resume, whatever order the batches are augmented in
                data = data.enumerate().map(
                    lambda i, b: (tf_aug(b[0], seed=tf.stack([tf.constant(epoch, tf.int64), tf.constant(pid, tf.int64),
                                                                  i])), b[1], b[2]),
                    num_parallel_calls=tf.data.AUTOTUNE)
            elif tf_aug is not None:  # a plain callable: keep its calls in batch order (a stateful one stays seeded)
                data = data.map(lambda x, y, w: (tf_aug(x), y, w))
            return data.prefetch(tf.data.AUTOTUNE).with_options(options)
        return fn

    predict_fn = tf.function(lambda x: net(x, training=False), jit_compile=jit_compile, reduce_retracing=True)
    start_epoch = int(epoch_var.numpy())
    epoch_seconds: list[float] = []
    patience = int(early_stopping) if early_stopping else None
    stop = patience is not None and int(wait_var.numpy()) >= patience
    for epoch in range(start_epoch, epochs):
        if stop:
            break
        t0 = time.perf_counter()
        dist = strategy.distribute_datasets_from_function(_dataset_fn(epoch))
        tot_loss = tot_correct = 0.0
        seen = 0
        bar = tqdm(total=steps, desc=f"{name} epoch {epoch + 1}/{epochs}", disable=not show, leave=True)
        for i, batch in enumerate(dist):
            loss, correct, nb = _train_step(batch)
            tot_loss += float(loss) * batch_size
            tot_correct += float(correct)
            seen += float(nb)
            bar.update(1)
            if i % 5 == 0 or i == steps - 1:
                bar.set_postfix(loss=f"{tot_loss / seen:.4f}", acc=f"{tot_correct / seen:.3f}")
        epoch_seconds.append(time.perf_counter() - t0)
        history["loss"].append(tot_loss / max(seen, 1))
        history["accuracy"].append(tot_correct / max(seen, 1))
        monitor = history["loss"][-1]
        if val_src is not None:
            vl, va = _evaluate_source(predict_fn, val_src, batch_size)
            history["val_loss"].append(vl)
            history["val_accuracy"].append(va)
            bar.set_postfix(loss=f"{history['loss'][-1]:.4f}", acc=f"{history['accuracy'][-1]:.3f}",
                            val_loss=f"{vl:.4f}", val_acc=f"{va:.3f}")
            monitor = vl
        bar.close()
        epoch_var.assign(epoch + 1)
        if monitor < float(best_var.numpy()) - 1e-6:
            best_var.assign(monitor)
            wait_var.assign(0)
            best_weights = [np.array(w) for w in net.get_weights()]
            if best_weights_path is not None:
                _write_weights(net, best_weights_path)
        else:
            wait_var.assign_add(1)
        if manager is not None:
            manager.save(checkpoint_number=epoch + 1)
            (ckpt_dir / "history.json").write_text(json.dumps(history))
        logs = {k: v[-1] for k, v in history.items()}
        logs["seconds"] = epoch_seconds[-1]
        for cb in callbacks or ():
            cb(epoch, logs)
        if patience is not None and int(wait_var.numpy()) >= patience:
            if show:
                print(f"early stopping after epoch {epoch + 1}: no improvement for {patience} epochs")
            stop = True
    if patience is not None and best_weights is not None:
        net.set_weights(best_weights)
    best_epoch = int(np.argmin(history["val_loss" if val_src is not None else "loss"])) + 1 if history["loss"] else 0
    card["metrics"] = {
        "epochs_trained": len(history["loss"]),
        "epoch_seconds": [round(t, 3) for t in epoch_seconds],
        "best_epoch": best_epoch,
        "loss": history["loss"][best_epoch - 1] if best_epoch else None,
        "accuracy": history["accuracy"][best_epoch - 1] if best_epoch else None,
    }
    if val_src is not None and best_epoch:
        card["metrics"].update(val_loss=history["val_loss"][best_epoch - 1],
                               val_accuracy=history["val_accuracy"][best_epoch - 1])
    card["distribution"] = {"strategy": type(strategy).__name__, "replicas": int(n_replicas),
                            "workers": int(n_pipelines)}
    if model_path is not None:
        if chief:
            save_model(net, card, model_path, overwrite=True)
        else:  # every worker must take part in saving; non-chief workers write to a throw-away folder
            tmp = Path(tempfile.mkdtemp(prefix="eokit-worker-model-"))
            net.save(tmp / f"{name}.keras")
            shutil.rmtree(tmp, ignore_errors=True)
            if ckpt_dir is not None:
                shutil.rmtree(ckpt_dir, ignore_errors=True)
    return net, card, history


def _takes_seed(fn: Callable) -> bool:
    """Whether an augmentation callable accepts a stateless `seed=` keyword (as eokit.augment.Augmenter does)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "seed" in params  # not **kwargs: e.g. a Keras layer's __call__ would pass seed= on to call()


def _write_weights(net: Any, path: Path) -> None:
    with atomic_output(path, overwrite=True) as tmp:  # keeps the .weights.h5 suffix Keras requires
        net.save_weights(tmp)


def _read_weights(net: Any, path: Path) -> list[np.ndarray]:
    current = [np.array(w) for w in net.get_weights()]
    net.load_weights(path)
    best = [np.array(w) for w in net.get_weights()]
    net.set_weights(current)
    return best


def _check_model_shapes(net: Any, kind: str, n_bands: int, n_timesteps: int | None, patch_size: int | None,
                        n_classes: int) -> None:
    if kind == "timeseries":
        shape = tuple(net.input["x"].shape[1:])
        if shape[-1] != n_bands or (shape[0] is not None and shape[0] != n_timesteps):
            raise ValueError(f"model {net.name!r} takes x of shape {shape}, the data gives ({n_timesteps}, {n_bands})")
    else:
        shape = tuple(net.input.shape[1:])
        if shape[-1] != n_bands or (shape[0] is not None and shape[0] != patch_size):
            raise ValueError(f"model {net.name!r} takes patches {shape}, the data gives ({patch_size}, {patch_size}, {n_bands})")
    out = net.output.shape[-1]
    if out != n_classes:
        raise ValueError(f"model {net.name!r} outputs {out} classes, the training data has {n_classes}")


def _make_grad_fn(net: Any, optimizer: Any, jit_compile: bool, n_replicas: int) -> Callable:
    import keras
    import tensorflow as tf

    def step(x: Any, y: Any, w: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            probs = net(x, training=True)
            per = keras.losses.sparse_categorical_crossentropy(y, probs)
            denom = tf.cast(tf.shape(y)[0] * n_replicas, tf.float32)
            loss = tf.reduce_sum(per * w) / denom
            if net.losses:
                loss += tf.add_n(net.losses) / n_replicas
        grads = tape.gradient(loss, net.trainable_variables)
        optimizer.apply_gradients(zip(grads, net.trainable_variables))
        real = tf.cast(w > 0, tf.float32)
        correct = tf.reduce_sum(real * tf.cast(tf.equal(tf.argmax(probs, -1, output_type=tf.int32), y), tf.float32))
        return loss, correct, tf.reduce_sum(real)

    if jit_compile:
        return tf.function(step, jit_compile=True, reduce_retracing=True)
    return step


def _evaluate_source(predict_fn: Callable, src: _Source, batch_size: int) -> tuple[float, float]:
    tot = correct = 0.0
    n = 0
    for x, y, w in _epoch_batches(src, max(batch_size, 256), None):
        real = w > 0
        p = np.asarray(predict_fn(x))[real]
        y = y[real]
        tot += float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0)).sum())
        correct += float((p.argmax(-1) == y).sum())
        n += len(y)
    return tot / max(n, 1), correct / max(n, 1)

"""The input pipeline: training sets read block by block from xarray/Zarr, normalisation statistics, epochs.

Time-series inputs are normalised with per-band statistics of the training split (clear observations only),
stored in the model card; `_epoch_batches` yields shuffled, per-worker sliced, padded batches of one epoch.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import xarray as xr

from eokit.card import dataset_bands as _data_bands
from eokit.inputs import _prepare_ts, _taken_as_is, prepare_patches
from eokit.timeseries import _fill_gaps
from eokit.trainingdata import sample_dim as _sample_dim

#: Samples read from the store at once when the store is not chunked along `sample`.
DEFAULT_BLOCK = 4096
#: Minimum number of samples held in the shuffle window (several store chunks are mixed).
SHUFFLE_WINDOW = 16384


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
        x: dict[str, np.ndarray] | np.ndarray
        if self.kind == "timeseries":
            refl = np.asarray(sub["reflectance"].values)[..., self.band_idx]
            norm = self.card["normalisation"]
            x = _prepare_ts(
                refl,
                sub["flag"].values,
                sub["date"].values,
                np.asarray(norm["mean"]),
                np.asarray(norm["std"]),
                int(self.card["n_timesteps"]),
                self.card["flag_handling"],
            )
        else:
            img = np.asarray(sub["image"].values)[..., self.band_idx]
            x = prepare_patches(img, self.card)
        return x, y


def _band_statistics(
    ds: xr.Dataset, kind: str, band_idx: list[int], flag_handling: str, progress: bool
) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """Per-band mean/std over valid observations, read block by block; also the common date grid if any."""
    from eokit._progress import tqdm

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
            ok = _taken_as_is(flag, flag_handling)
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
        warnings.warn(
            f"{ds.attrs.get('source', 'training data')}: {nan_clear} band values of observations flagged "
            f"{'observed' if flag_handling == 'gapfill' else 'clear'} are NaN in 'reflectance'; they are "
            "treated as missing observations (flag them 255 to say so)",
            stacklevel=3,
        )
    if (cnt == 0).any():
        raise ValueError(
            f"{ds.attrs.get('source', 'training data')}: no valid observation for bands "
            f"{[i for i, k in zip(band_idx, cnt, strict=True) if k == 0]}"
        )
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
        pos: list[Any] = [int(i) for i in np.argwhere(inf)[0]]
        pos[0] += offset
        pos[-1] = _data_bands(ds, kind)[band_idx[pos[-1]]]
        var = "reflectance" if kind == "timeseries" else "image"
        where = ", ".join(f"{d} {i}" for d, i in zip(ds[var].dims, pos, strict=True))
        raise ValueError(
            f"{ds.attrs.get('source', 'training data')}: {int(inf.sum())} infinite values in {var!r} "
            f"of this block (first at {where}); expected finite values (NaN or flag 255 for missing)"
        )


def _epoch_batches(
    src: _Source,
    batch_size: int,
    rng: np.random.Generator | None,
    *,
    pipeline: int = 0,
    n_pipelines: int = 1,
    weights: np.ndarray | None = None,
    ts_augment: dict | None = None,
    aug_rng: np.random.Generator | None = None,
) -> Iterator[tuple[Any, np.ndarray, np.ndarray]]:
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
    seen: tuple[Any, np.ndarray] | None = None  # the last window's full batches: padding for the last batch

    def _emit(x: Any, y: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray]:
        w = weights[y].astype(np.float32) if weights is not None else np.ones(len(y), np.float32)
        if len(y) < batch_size:
            x, y, w = _pad(x, y, w, batch_size, seen)
        lo, hi = pipeline * batch_size // n_pipelines, (pipeline + 1) * batch_size // n_pipelines
        x, y, w = _take(x, slice(lo, hi)), y[lo:hi], w[lo:hi]
        if ts_augment and aug_rng is not None:
            x = _augment_ts(x, aug_rng, **ts_augment)
        return x, y.astype(np.int32), w

    for start in range(0, len(order), per_window):
        parts = [src.read(*blocks[i]) for i in order[start : start + per_window]]
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
        seen = (_take(x, slice(0, n_full * batch_size)), y[: n_full * batch_size]) if n_full else seen
        pending_x, pending_y = ([_take(x, rest)], [y[rest]]) if len(y) > n_full * batch_size else ([], [])
    if pending_y:
        yield _emit(pending_x[0], pending_y[0])


def _cat(parts: list[Any]) -> Any:
    if isinstance(parts[0], dict):
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    return np.concatenate(parts)


def _take(x: Any, sl: Any) -> Any:
    return {k: v[sl] for k, v in x.items()} if isinstance(x, dict) else x[sl]


def _pad(
    x: Any, y: np.ndarray, w: np.ndarray, batch_size: int, fill: tuple[Any, np.ndarray] | None
) -> tuple[Any, np.ndarray, np.ndarray]:
    """Return the last batch padded to `batch_size` with weight-0 rows that batch normalisation may safely see.

    Padding rows carry no loss, but they do count in a BatchNormalization layer's batch statistics and so in
    its moving mean and variance. Copies of one sample (as before) made the last batch of every epoch a
    degenerate one (almost no variance) that pulled the moving statistics off, and cost the patch CNN several
    points of accuracy against plain Keras on the real polar patches. The padding is taken from the epoch's
    other samples (`fill`, already shuffled) where there are enough, else the batch's own rows in turn.
    """
    need = batch_size - len(y)
    if fill is not None and len(fill[1]) >= need:
        px, py = _take(fill[0], slice(0, need)), fill[1][:need]
    else:
        idx = np.resize(np.arange(len(y)), need)
        px, py = _take(x, idx), y[idx]
    return _cat([x, px]), np.concatenate([y, py]), np.concatenate([w, np.zeros(need, np.float32)])


def _augment_ts(
    x: dict[str, np.ndarray], rng: np.random.Generator, drop: float = 0.0, noise: float = 0.0, fill: bool = False
) -> dict[str, np.ndarray]:
    """Return the batch with acquisitions randomly dropped and Gaussian noise added to valid normalised values.

    A dropped acquisition is zeroed with mask 0 or, with `fill` (the cards whose inputs are interpolated or
    gap-filled, where inference meets no masked acquisition), interpolated in time from the sample's kept
    ones with mask 1, as a cloud is at inference.
    """
    mask = x["mask"]
    xx = x["x"]
    if drop > 0:
        keep = rng.random(mask.shape) >= drop
        if fill:
            xx, mask = _refill(xx, mask, keep, x["doy"])
        else:
            mask = mask * keep
            xx = xx * mask[..., None]
    if noise > 0:
        xx = xx + rng.normal(0.0, noise, xx.shape).astype(np.float32) * mask[..., None]
    return {"x": xx.astype(np.float32), "mask": mask.astype(np.float32), "doy": x["doy"]}


def _refill(x: np.ndarray, mask: np.ndarray, keep: np.ndarray, doy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (x, mask) with the valid steps not kept interpolated linearly in time from the kept ones.

    The prepared inputs hold no dates, only the day of year: the days between two acquisitions are the
    difference of their days of year modulo a year (exact to a day at a year's turn; S2 revisits are days,
    never a year). A sample left without a kept step keeps those steps masked.
    """
    valid = mask > 0
    step = np.diff(doy, axis=1) % np.float32(365.25)
    step = np.where((doy[:, 1:] > 0) & (doy[:, :-1] > 0), step, 0.0)
    t = np.concatenate([np.zeros((len(doy), 1), np.float32), np.cumsum(step, axis=1, dtype=np.float32)], axis=1)
    out, filled = _fill_gaps(x, t, valid & keep, valid & ~keep)
    new_mask = (valid & keep) | filled
    return np.where(new_mask[..., None], out, np.float32(0.0)), new_mask.astype(np.float32)


def _output_signature(kind: str, card: dict, batch: int | None = None) -> tuple:
    import tensorflow as tf

    t, c = card.get("n_timesteps"), len(card["bands"])
    if kind == "timeseries":
        x = {
            "x": tf.TensorSpec((batch, t, c), tf.float32),
            "mask": tf.TensorSpec((batch, t), tf.float32),
            "doy": tf.TensorSpec((batch, t), tf.float32),
        }
    else:
        p = card["patch_size"]
        x = tf.TensorSpec((batch, p, p, c), tf.float32)
    return x, tf.TensorSpec((batch,), tf.int32), tf.TensorSpec((batch,), tf.float32)


def _evaluate_source(
    predict_fn: Callable, src: _Source, batch_size: int, class_weights: np.ndarray | None = None
) -> tuple[float, float, float]:
    """Return (cross-entropy, accuracy, macro F1 over the classes present or predicted) on a whole set.

    With `class_weights` (those training uses) the cross-entropy is their weighted mean, so that early stopping
    watches the objective being optimised, not a differently weighted one.
    """
    tot = correct = wsum = 0.0
    n = 0
    k = len(src.card["class_ids"])
    confusion = np.zeros((k, k), np.int64)
    for x, y, w in _epoch_batches(src, max(batch_size, 256), None):
        real = w > 0
        p = np.asarray(predict_fn(x))[real]
        y = y[real]
        cw = class_weights[y] if class_weights is not None else np.ones(len(y))
        tot += float((cw * -np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0))).sum())
        wsum += float(cw.sum())
        correct += float((p.argmax(-1) == y).sum())
        np.add.at(confusion, (y, p.argmax(-1)), 1)
        n += len(y)
    return tot / max(wsum, 1e-12), correct / max(n, 1), _macro_f1(confusion)


def _macro_f1(confusion: np.ndarray) -> float:
    """Return the macro F1 of a confusion matrix (rows: truth) over the classes that occur in truth or prediction."""
    tp = np.diag(confusion).astype(float)
    support, predicted = confusion.sum(1), confusion.sum(0)
    seen = (support + predicted) > 0
    f1 = np.divide(2 * tp, support + predicted, out=np.zeros_like(tp), where=seen)
    return float(f1[seen].mean()) if seen.any() else 0.0

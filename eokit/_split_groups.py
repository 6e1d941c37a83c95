"""Groups and labels of the sample splits (`eokit.splits`): class ids, spatial groups, group-stratified hold-outs.

`_groups` turns a training set into integer group ids (blocks of `block_size` map units, fields within their
tile, tiles, or any per-sample variable); `_stratified_groups` holds out whole groups with classes balanced;
`census` counts each part's samples and groups per class (re-exported by `eokit.splits`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from eokit.trainingdata import dataset_class_names

if TYPE_CHECKING:
    import pandas as pd

    from eokit.splits import Split


def _dim(ds: xr.Dataset) -> str:
    for d in ("sample", "patch"):
        if d in ds["label"].dims:
            return d
    raise ValueError(f"dataset has no 'sample' or 'patch' dimension on 'label' (dims {ds['label'].dims})")


def _labels(ds: xr.Dataset) -> np.ndarray:
    """The per-sample class ids as int64; raise unless `label` exists and holds whole numbers."""
    if not isinstance(ds, xr.Dataset) or "label" not in ds.variables:
        have = list(ds.variables) if isinstance(ds, xr.Dataset) else type(ds).__name__
        raise ValueError(
            f"the dataset has no 'label' variable (has {have}); expected a training set with "
            "per-sample integer class ids"
        )
    raw = np.asarray(ds["label"].values)
    if raw.dtype.kind in "iu":
        return raw.astype(np.int64)
    num = np.asarray(raw, dtype=float) if raw.dtype.kind in "fb" else np.full(raw.shape, np.nan)
    bad = ~np.isfinite(num) | (np.mod(np.nan_to_num(num), 1) != 0)
    if bad.any():
        raise ValueError(
            f"variable 'label' must hold whole-number class ids; samples "
            f"{np.flatnonzero(bad)[:10].tolist()} hold {raw[bad][:10].tolist()}"
        )
    return num.astype(np.int64)


def _stratified_groups(y: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (rest, held) with whole groups held out, about `fraction` of samples, classes balanced.

    Of two candidates, the one whose class counts come closer to `fraction` of each class (`_held_cost`) is
    kept: a fold of scikit-learn's StratifiedGroupKFold (where every class has a sample per fold) and the
    seeded greedy pick of `_held_groups`. With a few large groups (fields of a land-use register), the folds
    differ a lot in size: on the Slovenia EOPatch the held-out fold was 11 % to 41 % of the samples, and 4 of 5
    field splits had validation sets without the majority class (forest, 78 % of the samples).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError(f"cannot split {n_groups} group(s) into two parts; use smaller blocks or another protocol")
    n_splits = int(min(max(2, round(1.0 / fraction)), n_groups))
    gid, counts = _group_counts(y, groups)
    target = fraction * counts.sum(axis=0)
    greedy = np.isin(gid, _held_groups(counts, gid, target, seed))
    if counts.sum(axis=0).min() >= n_splits:
        # StratifiedGroupKFold's shuffle only breaks ties between groups of equal class mix, so its first fold is
        # the same for every seed: the seed picks which of the folds is held out instead
        skf = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        fold = np.isin(gid, np.unique(groups[list(skf.split(np.zeros(len(y)), y, groups))[seed % n_splits][1]]))
        if _held_cost(counts[fold].sum(axis=0), target) <= _held_cost(counts[greedy].sum(axis=0), target):
            greedy = fold
    held = np.flatnonzero(np.isin(groups, gid[greedy]))
    return np.setdiff1d(np.arange(len(y)), held), held


def _group_counts(y: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(group ids, samples per group and class as a (group, class) float array)."""
    gid, ginv = np.unique(groups, return_inverse=True)
    codes = np.unique(y, return_inverse=True)[1]
    counts = np.zeros((len(gid), int(codes.max()) + 1))
    np.add.at(counts, (ginv, codes), 1.0)
    return gid, counts


def _held_cost(held: np.ndarray, target: np.ndarray) -> float:
    """How far held class counts are from their targets: the sum over classes of |held - target| / max(target, 1)."""
    return float((np.abs(held - target) / np.maximum(target, 1.0)).sum())


def _held_groups(counts: np.ndarray, gid: np.ndarray, target: np.ndarray, seed: int) -> np.ndarray:
    """The group ids held out: whole groups, visited in a seeded random order, each taken when it brings the held
    class counts closer to `target` (`_held_cost`); never every group, never none. One visit is enough: a group
    that moves the counts away from the target once does so however many more groups are taken."""
    held = np.zeros(counts.shape[1])
    taken = np.zeros(len(gid), bool)
    n_taken, cost = 0, _held_cost(held, target)
    order = np.random.default_rng(seed).permutation(len(gid))
    for g in order:
        if n_taken == len(gid) - 1:
            break
        new = _held_cost(held + counts[g], target)
        if new < cost:
            taken[g], held, cost, n_taken = True, held + counts[g], new, n_taken + 1
    if not taken.any():  # every single group overshoots: the one that overshoots least
        taken[int(np.argmin([_held_cost(c, target) for c in counts]))] = True
    return gid[taken]


def _groups(ds: xr.Dataset, by: str, block_size: float | None) -> tuple[np.ndarray, dict]:
    have = ds.variables
    tile = np.asarray(ds["tile"].values).astype(str) if "tile" in have else None
    if by == "xy":
        if "x" not in have or "y" not in have:
            raise ValueError(
                "block split by='xy' needs per-sample 'x' and 'y' coordinates (sampler output); "
                "this dataset has none - use by='tile' or by='field'"
            )
        if (
            isinstance(block_size, (bool, np.bool_))
            or not isinstance(block_size, (int, float, np.number))
            or not np.isfinite(block_size)
            or block_size <= 0
        ):
            raise ValueError(f"block split by='xy' needs a positive block_size in map units, got {block_size}")
        xs, ys = np.asarray(ds["x"].values, float), np.asarray(ds["y"].values, float)
        bad = ~(np.isfinite(xs) & np.isfinite(ys))
        if bad.any():
            raise ValueError(
                f"block split by='xy': variables 'x'/'y' must be finite map coordinates; samples "
                f"{np.flatnonzero(bad)[:10].tolist()} have NaN or infinite x/y"
            )
        bx = np.floor(xs / block_size).astype(np.int64)
        by_ = np.floor(ys / block_size).astype(np.int64)
        key = np.char.add(np.char.add(bx.astype(str), "_"), by_.astype(str))
        if tile is not None:
            key = np.char.add(np.char.add(tile, ":"), key)
        return np.unique(key, return_inverse=True)[1], {"block_size": float(block_size)}
    if by == "field":
        if "field_id" not in have:
            raise ValueError("block split by='field' needs a per-sample 'field_id' (sampler output)")
        key = np.asarray(ds["field_id"].values).astype(str)
        if tile is not None:
            key = np.char.add(np.char.add(tile, ":"), key)
        return np.unique(key, return_inverse=True)[1], {}
    if by == "tile":
        if tile is None:
            raise ValueError("block split by='tile' needs a per-sample 'tile' variable")
        return np.unique(tile, return_inverse=True)[1], {}
    if isinstance(by, str) and by not in ("x", "y", "label") and _is_per_sample(ds, by):
        return np.unique(np.asarray(ds[by].values).astype(str), return_inverse=True)[1], {}
    names = [str(v) for v in ds.variables if _is_per_sample(ds, str(v)) and v not in ("x", "y", "label")]
    raise ValueError(f"by must be 'xy', 'field', 'tile' or a per-sample variable of the dataset ({names}), got {by!r}")


def _is_per_sample(ds: xr.Dataset, name: str) -> bool:
    """True if `name` is a 1-D variable along the sample (or patch) dimension."""
    return name in ds.variables and ds[name].dims == (_dim(ds),)


def census(ds: xr.Dataset, split: Split, by: str | None = None, block_size: float | None = None) -> pd.DataFrame:
    """Return a table per class (rows) of each part's samples and distinct groups (columns like `train_groups`).

    The groups are those the split kept whole (its `by` and block size, tiles for a tile split; else `by`):
    a spatial score generalises over groups, not samples, so a class held by one or two training groups, or
    none in validation, is measured on a handful of fields whatever its sample count.
    """
    import pandas as pd

    by = by or split.params.get("by") or ("tile" if split.protocol == "tile" else None)
    if by is None:
        raise ValueError(
            f"census: the {split.protocol} split kept no groups whole (no 'by' in its parameters); "
            "name the groups to count, e.g. by='field' or by='xy' with a block_size"
        )
    size = block_size if block_size is not None else split.params.get("block_size")
    y = _labels(ds)
    groups, _ = _groups(ds, by, size)
    ids = np.unique(y)
    names = _class_names(ds, ids)
    rows: dict[str, list[int]] = {}
    for part in ("train", "val", "test"):
        idx = np.asarray(getattr(split, part), np.int64)
        rows[f"{part}_samples"] = [int((y[idx] == c).sum()) for c in ids]
        rows[f"{part}_groups"] = [len(np.unique(groups[idx][y[idx] == c])) for c in ids]
    table = pd.DataFrame(rows, index=pd.Index(names, name="class"))
    table.insert(0, "class_id", [int(c) for c in ids])
    table.attrs["by"] = by
    return table


def _class_names(ds: xr.Dataset, ids: Any) -> list[str]:
    """Each class id's name, as the model card and fit name a training set's classes (`dataset_class_names`)."""
    return dataset_class_names(ds, "patch" if _dim(ds) == "patch" else "timeseries", [int(c) for c in ids])

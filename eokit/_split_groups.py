"""Groups and labels of the sample splits (`eokit.splits`): class ids, spatial groups, group-stratified hold-outs.

`_groups` turns a training set into integer group ids (blocks of `block_size` map units, fields within their
tile, tiles, or any per-sample variable); `_stratified_groups` holds out whole groups with classes balanced.
"""

from __future__ import annotations

import numpy as np
import xarray as xr


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
    """Positions (rest, held) with whole groups held out, about `fraction` of samples, classes balanced."""
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError(f"cannot split {n_groups} group(s) into two parts; use smaller blocks or another protocol")
    n_splits = int(min(max(2, round(1.0 / fraction)), n_groups))
    counts = np.bincount(np.unique(y, return_inverse=True)[1])
    if counts.min() >= n_splits:
        # StratifiedGroupKFold's shuffle only breaks ties between groups of equal class mix, so its first fold is
        # the same for every seed: the seed picks which of the folds is held out instead
        skf = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        folds = list(skf.split(np.zeros(len(y)), y, groups))
        rest, held = folds[seed % n_splits]
    else:  # too few samples per class for stratification: plain group shuffle
        gss = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        rest, held = next(iter(gss.split(np.zeros(len(y)), y, groups)))
    return np.sort(rest), np.sort(held)


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

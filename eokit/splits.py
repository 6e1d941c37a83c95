"""Evaluation protocols as sample splits: random, spatially disjoint blocks/fields, leave-tile(s)-out.

Every function returns a `Split` of integer sample indices (train, val, test) with the protocol and its
parameters, so the model card can record how the model was evaluated. Group splits never cut a group
(spatial block, field or tile) across train and test, so no pixel of a test field is seen in training.
A split that leaves a validation or test class without training samples raises a ValueError (or, with
`unseen="drop"`, drops those samples and says so in `Split.params["dropped"]`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["Split", "random_split", "block_split", "tile_split", "make_split", "check_split"]


@dataclass(frozen=True)
class Split:
    """Sample indices of train/val/test and the protocol that made them."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    protocol: str
    params: dict = field(default_factory=dict)

    def select(self, ds: xr.Dataset) -> tuple[xr.Dataset, xr.Dataset | None, xr.Dataset]:
        """Return (train, val or None, test) subsets of `ds` (lazy if `ds` is lazy)."""
        dim = _dim(ds)
        top = max((int(p.max()) for p in (self.train, self.val, self.test) if len(p)), default=-1)
        if top >= ds.sizes[dim]:
            raise ValueError(
                f"this {self.protocol} split indexes sample {top}, but the dataset has "
                f"{ds.sizes[dim]} along {dim!r}; select from the dataset the split was made of"
            )
        val = ds.isel({dim: self.val}) if len(self.val) else None
        return ds.isel({dim: self.train}), val, ds.isel({dim: self.test})

    def describe(self) -> dict:
        """Return a JSON-ready summary (protocol, parameters, sizes) for the model card."""
        return {
            "protocol": self.protocol,
            **self.params,
            "n_train": int(len(self.train)),
            "n_val": int(len(self.val)),
            "n_test": int(len(self.test)),
        }


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


def _check_seed(seed: object) -> None:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be a whole number in 0 .. 2**32 - 1, got {seed!r}")


def _check_size(y: np.ndarray, protocol: str, val_fraction: float) -> None:
    need = 3 if val_fraction > 0 else 2
    if len(y) < need:
        raise ValueError(
            f"the {protocol} split needs at least {need} samples (train, {'validation, ' * (need == 3)}"
            f"test); the dataset has {len(y)}"
        )


def _class_name(ds: xr.Dataset, cid: int) -> str:
    if "label_name" in ds.variables:
        lab = _labels(ds)
        hit = np.flatnonzero(lab == cid)
        if hit.size:
            return str(ds["label_name"].values[hit[0]])
    return str(cid)


def check_split(ds: xr.Dataset, split: Split, unseen: str = "raise") -> Split:
    """Return `split` (unseen-class samples dropped if `unseen="drop"`); raise if val/test classes lack train data."""
    if unseen not in ("raise", "drop"):
        raise ValueError(f"unseen must be 'raise' or 'drop', got {unseen!r}")
    lab = _labels(ds)
    seen = set(np.unique(lab[split.train]).tolist())
    problems = {}
    for part in ("val", "test"):
        idx = getattr(split, part)
        missing = sorted(set(np.unique(lab[idx]).tolist()) - seen)
        if missing:
            problems[part] = missing
    if not problems:
        return split
    if unseen == "raise":
        desc = "; ".join(
            f"{part}: "
            + ", ".join(
                f"{_class_name(ds, c)!r} (id {c}, {int((lab[getattr(split, part)] == c).sum())} samples)" for c in cls
            )
            for part, cls in problems.items()
        )
        raise ValueError(
            f"the {split.protocol} split {split.params} leaves classes without training samples: {desc}. "
            f"Choose other test tiles/blocks or a different seed, or pass unseen='drop'."
        )
    keep = {p: getattr(split, p)[np.isin(lab[getattr(split, p)], sorted(seen))] for p in ("val", "test")}
    dropped = {p: int(len(getattr(split, p)) - len(keep[p])) for p in ("val", "test")}
    return Split(split.train, keep["val"], keep["test"], split.protocol, {**split.params, "dropped": dropped})


def _stratified_groups(y: np.ndarray, groups: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions (rest, held) with whole groups held out, about `fraction` of samples, classes balanced."""
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold

    n_groups = len(np.unique(groups))
    if n_groups < 2:
        raise ValueError(f"cannot split {n_groups} group(s) into two parts; use smaller blocks or another protocol")
    n_splits = int(min(max(2, round(1.0 / fraction)), n_groups))
    counts = np.bincount(np.unique(y, return_inverse=True)[1])
    if counts.min() >= n_splits:
        skf = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        rest, held = next(iter(skf.split(np.zeros(len(y)), y, groups)))
    else:  # too few samples per class for stratification: plain group shuffle
        gss = GroupShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
        rest, held = next(iter(gss.split(np.zeros(len(y)), y, groups)))
    return np.sort(rest), np.sort(held)


def _check_fractions(test_fraction: float, val_fraction: float) -> None:
    if not 0 < test_fraction < 1 or not 0 <= val_fraction < 1 or test_fraction + val_fraction >= 1:
        raise ValueError(
            f"need 0 < test_fraction < 1, 0 <= val_fraction < 1 and their sum < 1, got {test_fraction}, {val_fraction}"
        )


def random_split(
    ds: xr.Dataset,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
    stratify: bool = True,
    unseen: str = "raise",
) -> Split:
    """Return a random (stratified by class) sample split; the optimistic protocol that ignores space."""
    from sklearn.model_selection import train_test_split

    _check_fractions(test_fraction, val_fraction)
    _check_seed(seed)
    y = _labels(ds)
    _check_size(y, "random", val_fraction)
    idx = np.arange(len(y))
    strat = y if stratify and np.bincount(np.unique(y, return_inverse=True)[1]).min() >= 2 else None
    rest, test = train_test_split(idx, test_size=test_fraction, random_state=seed, stratify=strat)
    val = np.array([], np.int64)
    if val_fraction > 0:
        frac = val_fraction / (1 - test_fraction)
        enough = np.bincount(np.unique(y[rest], return_inverse=True)[1]).min() >= 2
        s2 = y[rest] if strat is not None and enough else None
        rest, val = train_test_split(rest, test_size=frac, random_state=seed + 1, stratify=s2)
    sp = Split(
        np.sort(rest),
        np.sort(val),
        np.sort(test),
        "random",
        {"test_fraction": test_fraction, "val_fraction": val_fraction, "seed": seed, "stratify": stratify},
    )
    return check_split(ds, sp, unseen)


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


def block_split(
    ds: xr.Dataset,
    block_size: float | None = None,
    by: str = "xy",
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    seed: int = 0,
    unseen: str = "raise",
) -> Split:
    """Return a spatially disjoint split: whole blocks (cells of `block_size` map units), fields or tiles held out.

    `by` is "xy" (blocks), "field" (`field_id` within its tile), "tile", or the name of any other per-sample
    variable whose values are the groups kept whole (e.g. "scene" or "polygon_id" of a patch set).
    """
    _check_fractions(test_fraction, val_fraction)
    _check_seed(seed)
    y = _labels(ds)
    _check_size(y, f"by={by!r} block", val_fraction)
    groups, extra = _groups(ds, by, block_size)
    if len(np.unique(groups)) < 2:
        hint = (
            f"a block_size of {block_size} map units puts every sample in one block; use smaller blocks"
            if by == "xy"
            else f"every sample is in the same {by}"
        )
        raise ValueError(f"cannot split 1 group into train and test: {hint}")
    rest, test = _stratified_groups(y, groups, test_fraction, seed)
    val = np.array([], np.int64)
    if val_fraction > 0:
        r2, v2 = _stratified_groups(y[rest], groups[rest], val_fraction / (1 - test_fraction), seed + 1)
        rest, val = rest[r2], rest[v2]
    sp = Split(
        rest,
        val,
        test,
        "block" if by == "xy" else by,
        {
            "by": by,
            **extra,
            "test_fraction": test_fraction,
            "val_fraction": val_fraction,
            "seed": seed,
            "n_groups": int(groups.max() + 1),
        },
    )
    return check_split(ds, sp, unseen)


def tile_split(
    ds: xr.Dataset,
    test_tiles: Sequence[str],
    val_tiles: Sequence[str] | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
    unseen: str = "raise",
    by: str = "tile",
    within: str | None = None,
) -> Split:
    """Return a leave-tile(s)-out split: `test_tiles` (e.g. ["33UVP"] or ["2019_33UVP"]) form the test set.

    Validation is `val_tiles` if given, else a stratified `val_fraction` of the remaining samples (whole
    fields when `field_id` is present). `by` names the per-sample variable holding the groups that are held
    out (default "tile"; e.g. "scene" for a patch set) and `within` the smaller groups kept whole in the
    validation fraction (default `field_id` if present, else single samples; e.g. "polygon_id").
    """
    if isinstance(test_tiles, str):
        test_tiles = [test_tiles]
    if isinstance(val_tiles, str):
        val_tiles = [val_tiles]
    tile, have, what = _check_tile_args(ds, test_tiles, val_tiles, val_fraction, seed, by, within)
    idx = np.arange(len(tile))
    is_test = np.isin(tile, list(test_tiles))
    test = idx[is_test]
    if val_tiles:
        is_val = np.isin(tile, list(val_tiles))
        val, train = idx[is_val], idx[~is_test & ~is_val]
    elif val_fraction > 0:
        rest = idx[~is_test]
        if len(rest) == 0:
            raise ValueError(
                f"leave-{by}-out with test {what} {list(test_tiles)} leaves no training samples; "
                f"available {what}: {have}"
            )
        train, val = _val_fraction_of(ds, tile, rest, within, val_fraction, seed)
    else:
        train, val = idx[~is_test], np.array([], np.int64)
    if len(train) == 0:
        raise ValueError(f"leave-{by}-out with test {what} {list(test_tiles)} leaves no training samples")
    params = _tile_params(test_tiles, val_tiles, val_fraction, seed, by, within)
    sp = Split(np.sort(train), np.sort(val), np.sort(test), "tile" if by == "tile" else by, params)
    return check_split(ds, sp, unseen)


def _check_tile_args(
    ds: xr.Dataset,
    test_tiles: Sequence[str],
    val_tiles: Sequence[str] | None,
    val_fraction: float,
    seed: int,
    by: str,
    within: str | None,
) -> tuple[np.ndarray, list[str], str]:
    """Return (each sample's group as text, the groups present, what to call them); ValueError for bad arguments."""
    if not test_tiles:
        raise ValueError("leave-tile-out needs at least one test tile in test_tiles, e.g. ['33UVP']; got none")
    if not val_tiles and not 0 <= val_fraction < 1:
        raise ValueError(f"need 0 <= val_fraction < 1, got {val_fraction}")
    _check_seed(seed)
    if not isinstance(by, str) or by not in ds.variables:
        raise ValueError(f"leave-{by}-out needs a per-sample {by!r} variable")
    if within is not None and within not in ds.variables:
        raise ValueError(
            f"leave-{by}-out: within={within!r} is not a variable of the dataset (has {list(ds.variables)})"
        )
    what = "tiles" if by == "tile" else f"{by!r} values"
    tile = np.asarray(ds[by].values).astype(str)
    have = sorted(set(tile.tolist()))
    for name, tiles in (("test", test_tiles), ("validation", val_tiles or [])):
        missing = [t for t in tiles if t not in have]
        if missing:
            raise ValueError(f"{name} {what} {missing} are not in the data; available {what}: {have}")
    if val_tiles and set(val_tiles) & set(test_tiles):
        raise ValueError(f"{what} {sorted(set(val_tiles) & set(test_tiles))} are both validation and test {what}")
    return tile, have, what


def _val_fraction_of(
    ds: xr.Dataset, tile: np.ndarray, rest: np.ndarray, within: str | None, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return (train, val) indices: a stratified `val_fraction` of `rest`, keeping `within` groups whole."""
    y = _labels(ds)[rest]
    inner = within or ("field_id" if "field_id" in ds.variables else None)
    if inner is not None:
        g = np.unique(
            np.char.add(np.char.add(tile[rest], ":"), np.asarray(ds[inner].values)[rest].astype(str)),
            return_inverse=True,
        )[1]
    else:
        g = np.arange(len(rest))
    r2, v2 = _stratified_groups(y, g, val_fraction, seed)
    return rest[r2], rest[v2]


def _tile_params(
    test_tiles: Sequence[str],
    val_tiles: Sequence[str] | None,
    val_fraction: float,
    seed: int,
    by: str,
    within: str | None,
) -> dict[str, Any]:
    """Return the parameters a leave-tile(s)-out split records (group names for `by` other than tile)."""
    if by != "tile":
        return {
            "by": by,
            "within": within,
            "test_groups": list(test_tiles),
            "val_groups": list(val_tiles or []),
            "val_fraction": val_fraction,
            "seed": seed,
        }
    params: dict[str, Any] = {
        "test_tiles": list(test_tiles),
        "val_tiles": list(val_tiles or []),
        "val_fraction": val_fraction,
        "seed": seed,
    }
    if within is not None:
        params["within"] = within
    return params


def make_split(
    ds: xr.Dataset,
    protocol: str,
    seed: int = 0,
    test_tiles: Sequence[str] | None = None,
    block_size: float | None = None,
    test_fraction: float = 0.2,
    val_fraction: float = 0.1,
    unseen: str = "raise",
) -> Split:
    """Return the split of a named protocol: "random", "block" (xy blocks), "field", "tile" (leave-tiles-out).

    Only the arguments that the protocol uses are read: `test_tiles` for "tile", `block_size` for "block",
    the fractions for the others.
    """
    if protocol == "random":
        return random_split(ds, test_fraction, val_fraction, seed=seed, unseen=unseen)
    if protocol in ("block", "field"):
        return block_split(
            ds,
            block_size,
            by="xy" if protocol == "block" else "field",
            test_fraction=test_fraction,
            val_fraction=val_fraction,
            seed=seed,
            unseen=unseen,
        )
    if protocol == "tile":
        if not test_tiles:
            raise ValueError("the 'tile' protocol needs test_tiles, e.g. ['33UVP']")
        return tile_split(ds, test_tiles, val_fraction=val_fraction, seed=seed, unseen=unseen)
    raise ValueError(f"unknown split protocol {protocol!r}; use 'random', 'block', 'field' or 'tile'")

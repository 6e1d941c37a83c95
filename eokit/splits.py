"""Evaluation protocols as sample splits: random, spatially disjoint blocks/fields, leave-tile(s)-out.

Every function returns a `Split` of integer sample indices (train, val, test) with the protocol and its
parameters, so the model card can record how the model was evaluated. Group splits never cut a group
(spatial block, field or tile) across train and test, so no pixel of a test field is seen in training.
A split that leaves a validation or test class without training samples raises a ValueError (or, with
`unseen="drop"`, drops those samples and says so in `Split.params["dropped"]`).
`block_folds` is the spatial group k-fold: every block, field or tile is in the test set of exactly one
fold (spatial folds differ a lot, so report a model over all folds, never on one split).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import xarray as xr

from eokit._split_groups import _class_names, _dim, _groups, _labels, _stratified_groups, census

__all__ = ["Split", "census", "random_split", "block_split", "block_folds", "tile_split", "make_split", "check_split"]


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

        def _named(part: str, cls: list[int]) -> str:
            named = zip(_class_names(ds, cls), cls, strict=True)
            return ", ".join(f"{m!r} (id {c}, {int((lab[getattr(split, part)] == c).sum())} samples)" for m, c in named)

        desc = "; ".join(f"{part}: {_named(part, cls)}" for part, cls in problems.items())
        raise ValueError(
            f"the {split.protocol} split {split.params} leaves classes without training samples: {desc}. "
            f"Choose other test tiles/blocks or a different seed, or pass unseen='drop'."
        )
    keep = {p: getattr(split, p)[np.isin(lab[getattr(split, p)], sorted(seen))] for p in ("val", "test")}
    dropped = {p: int(len(getattr(split, p)) - len(keep[p])) for p in ("val", "test")}
    return Split(split.train, keep["val"], keep["test"], split.protocol, {**split.params, "dropped": dropped})


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


def _check_folds(n_folds: object, n_groups: int, by: str, val_fraction: float) -> None:
    if isinstance(n_folds, (bool, np.bool_)) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ValueError(f"block_folds needs n_folds >= 2 (a whole number), got {n_folds!r}")
    if n_folds > n_groups:
        what = "blocks (use smaller blocks)" if by == "xy" else f"{by!r} groups"
        raise ValueError(f"block_folds: n_folds={n_folds} folds but the data has only {n_groups} {what}")
    if not 0 <= val_fraction < 1 - 1 / n_folds:
        raise ValueError(
            f"block_folds: need 0 <= val_fraction < 1 - 1/n_folds = {1 - 1 / n_folds:.3f}, got {val_fraction}"
        )


def _assign_folds(y: np.ndarray, groups: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Return each group's fold: greedy, largest group first, to balance fold sizes and, after them, class mix.

    Each group goes to the fold whose load grows least in squared terms: the fold's sample count (weighted as
    much as all classes together) and its count of each class, each relative to its share per fold; only
    folds that stay within the largest group's size of the smallest fold are candidates, so fold sizes never
    differ by more than the largest group. Groups of equal size are taken in an order drawn from `seed`;
    ties between folds go to the smaller fold.
    """
    classes, yi = np.unique(y, return_inverse=True)
    n_groups = int(groups.max()) + 1
    counts = np.zeros((n_groups, len(classes)), np.float64)
    np.add.at(counts, (groups, yi), 1.0)
    sizes = counts.sum(axis=1)
    order = np.random.default_rng(seed).permutation(n_groups)
    order = order[np.argsort(-sizes[order], kind="stable")]
    per_class_share = counts.sum(axis=0) / n_folds
    size_share = len(y) / n_folds
    load = np.zeros((n_folds, len(classes)), np.float64)
    fold_size = np.zeros(n_folds, np.float64)
    fold_of = np.empty(n_groups, np.int64)
    largest = sizes.max()
    for g in order:
        cost = len(classes) * fold_size * sizes[g] / size_share**2 + load @ (counts[g] / per_class_share**2)
        cost[fold_size + sizes[g] > fold_size.min() + largest] = np.inf  # the smallest fold always qualifies
        best = np.lexsort((np.arange(n_folds), fold_size, cost))[0]
        fold_of[g] = best
        load[best] += counts[g]
        fold_size[best] += sizes[g]
    return fold_of


def block_folds(
    ds: xr.Dataset,
    n_folds: int = 5,
    block_size: float | None = None,
    by: str = "xy",
    val_fraction: float = 0.1,
    seed: int = 0,
    unseen: str = "raise",
) -> list[Split]:
    """Return `n_folds` spatial group k-fold splits: each block/field/tile group is in exactly one fold's test set.

    Groups are those of `block_split` (`by`, `block_size`). They are dealt to folds greedily, largest first,
    balancing sample counts and then class mix (deterministic for a `seed`). The rest of each fold is split
    into train and validation (about `val_fraction` of all samples) with whole groups, classes balanced.
    Each Split records `fold` and `n_folds` in its params and is checked like `block_split` (`unseen`).
    """
    _check_seed(seed)
    y = _labels(ds)
    _check_size(y, f"by={by!r} block folds", val_fraction)
    groups, extra = _groups(ds, by, block_size)
    n_groups = int(groups.max()) + 1
    _check_folds(n_folds, n_groups, by, val_fraction)
    fold_of = _assign_folds(y, groups, int(n_folds), seed)[groups]
    out = []
    for k in range(int(n_folds)):
        test = np.flatnonzero(fold_of == k)
        rest = np.flatnonzero(fold_of != k)
        val = np.array([], np.int64)
        if val_fraction > 0:
            if len(np.unique(groups[rest])) < 2:
                raise ValueError(
                    f"block_folds: fold {k} leaves 1 group outside its test set, too few for training and "
                    f"validation; use val_fraction=0, fewer folds or smaller groups ({n_groups} groups)"
                )
            frac = min(val_fraction * len(y) / len(rest), 0.5)
            r2, v2 = _stratified_groups(y[rest], groups[rest], frac, (seed + 1 + k) % 2**32)
            rest, val = rest[r2], rest[v2]
        params = {"by": by, **extra, "n_folds": int(n_folds), "fold": k, "val_fraction": val_fraction, "seed": seed}
        params["n_groups"], params["n_test_groups"] = n_groups, int(len(np.unique(groups[test])))
        sp = Split(rest, val, test, "block" if by == "xy" else by, params)
        out.append(check_split(ds, sp, unseen))
    return out


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
    val_tiles: Sequence[str] | None = None,
) -> Split:
    """Return the split of a named protocol: "random", "block" (xy blocks), "field", "tile" (leave-tiles-out).

    Only the arguments that the protocol uses are read: `test_tiles` (and `val_tiles`, else a `val_fraction`
    of the other tiles) for "tile", `block_size` for "block", the fractions for the others. TimeSen2Crop's
    published protocol: `make_split(ds, "tile", test_tiles=["33UVP"], val_tiles=["33TWN"])`.
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
        return tile_split(ds, test_tiles, val_tiles=val_tiles, val_fraction=val_fraction, seed=seed, unseen=unseen)
    raise ValueError(f"unknown split protocol {protocol!r}; use 'random', 'block', 'field' or 'tile'")

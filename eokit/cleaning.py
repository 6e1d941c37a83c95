"""Weak-label cleaning of crop training sets: flag declared crops that are probably wrong, drop or relabel them.

Farmer declarations label whole parcels; some are wrong (another crop declared), mixed or changed after the
declaration. `out_of_fold` predicts every sample with a classifier that never saw the sample's own parcel
(folds of whole fields or spatial blocks, `eokit.splits`), by default the random-forest baseline of
`eokit.evaluate` on its features. `find_issues` then flags labels three ways: pixels disagreeing with the strict
majority of their parcel (no classifier needed), whole parcels that parcel-level confident learning (Northcutt,
Jiang and Chuang 2021, JAIR 70: per-class thresholds = the mean self-confidence of each class) confidently
assigns to another crop, and per-sample confident learning (cleanlab's prune by noise rate). The classifier
rules act only for classes the out-of-fold classifier recognises (precision and recall >= `min_reliability`),
flag at most `max_class_share` of a class and never a whole class. `class_report` / `field_report` tabulate the
flags, `clean` drops or relabels them (the original kept as `label_original`, the step recorded in attrs) and
`plot_flags` / `plot_class_report` show them.
No TensorFlow: the features come from `eokit.evaluate`, which loads Keras only to score a saved model.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from eokit._checks import did_you_mean, is_int
from eokit._cleaning_cl import _check_flags, confident_flags, field_agreement, parcel_minority, reliability
from eokit._cleaning_plots import plot_class_report, plot_flags
from eokit._progress import tqdm
from eokit._split_groups import _dim, _groups, _labels
from eokit.evaluate import _baseline_features, dataset_bands
from eokit.splits import _assign_folds
from eokit.trainingdata import data_kind, dataset_class_names

__all__ = [
    "ACTIONS",
    "METHODS",
    "out_of_fold",
    "find_issues",
    "class_report",
    "field_report",
    "clean",
    "plot_flags",
    "plot_class_report",
]

#: What `clean` does with flagged samples.
ACTIONS = ("drop", "relabel")
#: Confident-learning rules: the off-diagonal of the confident joint, or cleanlab's default pruning by noise rate.
METHODS = ("confident_joint", "prune_by_noise_rate")


def _check_estimator(estimator: Any) -> None:
    missing = [m for m in ("fit", "predict_proba") if not callable(getattr(estimator, m, None))]
    if missing:
        raise ValueError(
            f"estimator {type(estimator).__name__} has no {' / '.join(missing)}; expected a classifier with "
            "fit(X, y) and predict_proba(X) (e.g. a scikit-learn classifier)"
        )


def _check_fraction(name: str, value: Any) -> float:
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, (bool, np.bool_))
    if not ok or not np.isfinite(value) or not 0 <= float(value) <= 1:
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
    return float(value)


def _check_classes(ds: xr.Dataset, y: np.ndarray, n_folds: Any) -> tuple[list[int], list[str]]:
    """Return (class ids, class names); raise for one class only or a class with fewer samples than folds."""
    if not is_int(n_folds) or n_folds < 2:
        raise ValueError(f"n_folds must be a whole number >= 2, got {n_folds!r}")
    ids, counts = np.unique(y, return_counts=True)
    names = [str(n) for n in dataset_class_names(ds, data_kind(ds), [int(i) for i in ids])]
    if len(ids) < 2:
        raise ValueError(
            f"variable 'label' holds one class only ({names[0]!r}, id {int(ids[0])}, {int(counts[0])} samples): "
            "label cleaning compares classes, it needs at least 2"
        )
    few = [f"{n!r} (id {int(i)}): {int(c)}" for i, n, c in zip(ids, names, counts, strict=True) if c < n_folds]
    if few:
        raise ValueError(
            f"classes with fewer samples than n_folds={n_folds} in variable 'label': {', '.join(few)}; "
            "every class needs a sample in each fold: use fewer folds or leave those classes out"
        )
    return [int(i) for i in ids], names


def _folds(ds: xr.Dataset, y: np.ndarray, n_folds: int, by: str, block_size: float | None, seed: int) -> np.ndarray:
    """Return each sample's fold: whole groups (fields, blocks, tiles) dealt to folds as `splits.block_folds` does."""
    if by == "field" and "field_id" not in ds.variables:
        raise ValueError(
            "by='field' needs a per-sample 'field_id' variable (sampler output) so that a parcel never predicts "
            f"itself; this dataset has {sorted(str(v) for v in ds.variables)} - pass by='xy' with a block_size"
        )
    groups, _ = _groups(ds, by, block_size)
    n_groups = int(groups.max()) + 1
    if n_folds > n_groups:
        raise ValueError(f"n_folds={n_folds} folds but the data has only {n_groups} {by!r} groups; use fewer folds")
    return _assign_folds(y, groups, n_folds, seed)[groups]


def _default_estimator(seed: int, n_jobs: int | None) -> Any:
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=200, random_state=seed, n_jobs=n_jobs, class_weight="balanced")


def _fresh(estimator: Any) -> Any:
    """Return an unfitted copy of `estimator` (scikit-learn's clone, else a deep copy)."""
    import copy

    try:
        from sklearn.base import clone

        return clone(estimator)
    except (TypeError, ValueError, AttributeError):
        return copy.deepcopy(estimator)


def out_of_fold(
    ds: xr.Dataset,
    estimator: Any = None,
    n_folds: int = 5,
    by: str = "field",
    block_size: float | None = None,
    seed: int = 0,
    features: Callable[[xr.Dataset], np.ndarray] | None = None,
    n_jobs: int | None = None,
    progress: bool = False,
) -> xr.DataArray:
    """Return out-of-fold class probabilities (sample, class): each sample predicted by a model blind to its group.

    Groups are whole fields (`by="field"`: `field_id` within its tile), spatial blocks (`by="xy"`, `block_size`
    map units) or any per-sample variable, dealt to `n_folds` folds. The default classifier is a random forest
    (200 trees, balanced classes) on `eokit.evaluate`'s baseline features (every acquisition's bands, flagged ones
    missing); `estimator` is any object with fit/predict_proba (cloned per fold) and `features(ds) -> (n, f)`
    replaces the features. Coordinates: `class` (names), `class_id`, `fold`, and `seen` (False where the
    sample's class had no training sample in its fold: its probabilities carry no evidence about its label).
    """
    y = _labels(ds)
    ids, names = _check_classes(ds, y, n_folds)
    fold = _folds(ds, y, int(n_folds), by, block_size, seed)
    est = _default_estimator(seed, n_jobs) if estimator is None else estimator
    _check_estimator(est)
    if features is None:
        kind = data_kind(ds)
        t = ds.sizes["time"] if kind == "timeseries" else None
        x = _baseline_features(ds, kind, dataset_bands(ds, kind), t)
    else:
        x = np.asarray(features(ds))
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"features(ds) returned shape {x.shape}; expected (n_samples={len(y)}, n_features)")
    yi = np.searchsorted(ids, y)
    proba = np.zeros((len(y), len(ids)), np.float64)
    seen = np.zeros(len(y), bool)
    for k in tqdm(range(int(n_folds)), desc="out-of-fold", unit="fold", disable=not progress):
        test, train = fold == k, fold != k
        cols = ~np.isnan(x[train]).all(axis=0) if x.dtype.kind == "f" else np.ones(x.shape[1], bool)
        model = _fresh(est).fit(x[train][:, cols], yi[train])
        p = np.asarray(model.predict_proba(x[test][:, cols]), np.float64)
        classes = np.asarray(getattr(model, "classes_", np.unique(yi[train])), np.int64)
        proba[np.ix_(np.flatnonzero(test), classes)] = p
        seen[test] = np.isin(yi[test], classes)
    dim = _dim(ds)
    return xr.DataArray(
        proba,
        dims=(dim, "class"),
        coords={"class": names, "class_id": ("class", ids), "fold": (dim, fold), "seen": (dim, seen)},
        name="proba",
        attrs={"n_folds": int(n_folds), "by": by, "seed": int(seed), "estimator": type(est).__name__},
    )


def _check_proba(ds: xr.Dataset, proba: xr.DataArray, ids: list[int]) -> None:
    dim = _dim(ds)
    if not isinstance(proba, xr.DataArray) or proba.dims != (dim, "class") or proba.sizes[dim] != ds.sizes[dim]:
        got = (getattr(proba, "dims", None), getattr(proba, "shape", None))
        raise ValueError(
            f"proba must be out_of_fold(ds)'s DataArray ({dim}, class) of {ds.sizes[dim]} samples, got {got}"
        )
    if [int(c) for c in proba["class_id"].values] != ids:
        raise ValueError(f"proba class_id {proba['class_id'].values.tolist()} != the dataset's class ids {ids}")


def find_issues(
    ds: xr.Dataset,
    proba: xr.DataArray | None = None,
    method: str = "prune_by_noise_rate",
    field_threshold: float | None = 0.5,
    min_field_pixels: int = 3,
    sample_issues: bool | None = None,
    min_reliability: float = 0.5,
    max_class_share: float = 0.5,
    **oof: Any,
) -> xr.Dataset:
    """Return per-sample flags (parcel-minority pixels, confidently wrong parcels and samples, suggestions, rank).

    `proba` is `out_of_fold(ds, **oof)` (computed when None). Three rules, from the most to the least certain:
    - `parcel_minority`: a pixel whose label differs from a strict majority of its parcel's (`field_id`, at least
      `min_field_pixels` pixels) labels; needs no classifier, suggests the majority label.
    - `field_flagged`: a whole parcel whose agreement with its declared crop (share of its pixels predicted as it)
      is below `field_threshold` (None: no field check) and whose mean out-of-fold probability of another crop
      reaches that crop's threshold while the declared crop's is below its own (parcel-level confident learning).
    - `issue`: per-sample confident learning; `method` "prune_by_noise_rate" (cleanlab's default: per pair of
      classes at most as many samples as the calibrated confident joint estimates, largest margin first) or
      "confident_joint" (every off-diagonal sample). It joins `flagged` when `sample_issues` is True (default:
      only when the set has no `field_id`, where it is the only evidence; on parcels it is less precise).
    The classifier is trusted per class only where its `reliability` (min of out-of-fold precision and recall
    against the given labels, on the samples that are neither parcel minorities nor in parcels the capped parcel
    rule would flag without the check) reaches `min_reliability`: the two
    classifier rules neither question nor suggest other classes (listed in attrs `unreliable_classes`). They
    flag at most `max_class_share` of a class's samples and never all of a class (nor all its parcels).
    Variables: `issue`, `field_agreement`, `field_flagged`, `parcel_minority`, `flagged`, `margin` (given minus
    best other probability), `suggestion` (+ `_name`), `rank` (0 = most suspect flagged sample, -1 unflagged);
    attrs `thresholds`, `confident_joint`, `class_ids`, `reliability`, `unreliable_classes`.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}{did_you_mean(method, METHODS)}")
    if field_threshold is not None:
        field_threshold = _check_fraction("field_threshold", field_threshold)
    min_reliability = _check_fraction("min_reliability", min_reliability)
    max_class_share = _check_fraction("max_class_share", max_class_share)
    if not is_int(min_field_pixels) or min_field_pixels < 1:
        raise ValueError(f"min_field_pixels must be a whole number >= 1, got {min_field_pixels!r}")
    y = _labels(ds)
    ids, names = _check_classes(ds, y, oof.get("n_folds", 5) if proba is None else 2)
    proba = out_of_fold(ds, **oof) if proba is None else proba
    _check_proba(ds, proba, ids)
    p = np.asarray(proba.values, np.float64)
    given = np.searchsorted(ids, y)
    valid = np.asarray(proba["seen"].values, bool)
    has_fields = field_threshold is not None and "field_id" in ds.variables
    key = _groups(ds, "field", None)[0] if has_fields else np.full(len(y), -1)
    minority = parcel_minority(key, given, len(ids), int(min_field_pixels))[0] if has_fields else np.zeros(len(y), bool)
    # self-check: judge the classifier on the samples that neither rule (untrusted, capped) calls wrong
    first = field_agreement(
        key, given, p, valid, field_threshold or 0.0, int(min_field_pixels), has_fields, None, max_class_share
    )
    rel = reliability(given, p, valid & ~minority & ~first["flagged"])
    trusted = rel >= min_reliability
    cl = confident_flags(given, p, valid, method, trusted, max_class_share)
    fa = field_agreement(
        key, given, p, valid, field_threshold or 0.0, int(min_field_pixels), has_fields, trusted, max_class_share
    )
    use_issues = "field_id" not in ds.variables if sample_issues is None else bool(sample_issues)
    flagged = fa["flagged"] | fa["minority"] | (cl["issue"] if use_issues else False)
    suggestion = np.where(cl["issue"], cl["suggestion"], given)
    suggestion = np.where(fa["flagged"] | fa["minority"], fa["suggestion"], suggestion)
    out = _flags_dataset(ds, y, ids, names, proba, p, given, valid, cl, fa, flagged, suggestion)
    out.attrs.update(
        method=method,
        field_threshold=-1.0 if field_threshold is None else field_threshold,
        min_field_pixels=int(min_field_pixels),
        sample_issues=int(use_issues),
        min_reliability=min_reliability,
        max_class_share=max_class_share,
        reliability=[float(r) for r in rel],
        unreliable_classes=[int(c) for c, ok in zip(ids, trusted, strict=True) if not ok],
        thresholds=[float(t) for t in cl["thresholds"]],
        confident_joint=json.dumps(cl["confident_joint"].astype(int).tolist()),
    )
    return out


def _flags_dataset(
    ds: xr.Dataset,
    y: np.ndarray,
    ids: list[int],
    names: list[str],
    proba: xr.DataArray,
    p: np.ndarray,
    given: np.ndarray,
    valid: np.ndarray,
    cl: dict,
    fa: dict,
    flagged: np.ndarray,
    suggestion: np.ndarray,
) -> xr.Dataset:
    """The per-sample flags Dataset of `find_issues` (ranked: 0 = the most suspect flagged sample)."""
    dim = _dim(ds)
    order = np.lexsort((np.arange(len(y)), cl["margin"], ~flagged))
    rank = np.full(len(y), -1, np.int64)
    rank[order[: int(flagged.sum())]] = np.arange(int(flagged.sum()))
    ids_arr, names_arr = np.asarray(ids, np.int64), np.asarray(names)
    out = xr.Dataset(
        {
            "label": (dim, y),
            "label_name": (dim, names_arr[given]),
            "proba": proba.drop_vars(["fold", "seen"]),
            "fold": (dim, np.asarray(proba["fold"].values)),
            "seen": (dim, valid),
            "predicted": (dim, ids_arr[p.argmax(1)]),
            "self_confidence": (dim, p[np.arange(len(y)), given]),
            "margin": (dim, cl["margin"]),
            "issue": (dim, cl["issue"]),
            "field_agreement": (dim, fa["agreement"]),
            "field_flagged": (dim, fa["flagged"]),
            "parcel_minority": (dim, fa["minority"]),
            "flagged": (dim, flagged),
            "suggestion": (dim, ids_arr[suggestion]),
            "suggestion_name": (dim, names_arr[suggestion]),
            "rank": (dim, rank),
        },
        coords={dim: ds[dim].values} if dim in ds.coords else None,
    )
    for v in ("field_id", "tile", "x", "y"):
        if v in ds.variables and ds[v].dims == (dim,):
            out[v] = (dim, np.asarray(ds[v].values))
    out.attrs.update(class_ids=ids, class_names=names, **{f"oof_{k}": v for k, v in proba.attrs.items()})
    return out


def class_report(flags: xr.Dataset) -> pd.DataFrame:
    """Return per class (index label): label_name, n, n_flagged, share_flagged, issues, in flagged fields, threshold,
    reliability (and whether the classifier rules were trusted for it), the most common suggestion of its flags."""
    f = _check_flags(flags)
    df = f[["label", "label_name", "flagged", "issue", "field_flagged", "suggestion_name"]].to_dataframe()
    rel = np.atleast_1d(f.attrs.get("reliability", [np.nan] * len(f.attrs["class_ids"])))
    rows = []
    for (cid, name), g in df.groupby(["label", "label_name"], sort=True):
        sug = g.loc[g["flagged"], "suggestion_name"]
        rows.append(
            {
                "label": int(cid),
                "label_name": str(name),
                "n": len(g),
                "n_flagged": int(g["flagged"].sum()),
                "share_flagged": float(g["flagged"].mean()),
                "n_issues": int(g["issue"].sum()),
                "n_in_flagged_fields": int(g["field_flagged"].sum()),
                "threshold": float(f.attrs["thresholds"][list(f.attrs["class_ids"]).index(int(cid))]),
                "reliability": float(rel[list(f.attrs["class_ids"]).index(int(cid))]),
                "reliable": int(cid) not in set(f.attrs.get("unreliable_classes", [])),
                "suggested": str(sug.mode().iloc[0]) if len(sug) else "",
            }
        )
    return pd.DataFrame(rows).set_index("label")


def field_report(flags: xr.Dataset) -> pd.DataFrame:
    """Return per parcel (tile, field_id): declared label, n pixels, agreement, flagged, suggestion (most suspect
    first); empty when the set has no `field_id` or the field check was off."""
    f = _check_flags(flags)
    cols = ["field_id", "label", "label_name", "n", "agreement", "flagged", "suggestion", "suggestion_name"]
    if "field_id" not in f.variables or f.attrs.get("field_threshold", -1) < 0:
        return pd.DataFrame(columns=cols)
    keep = ["field_id", "label", "field_agreement", "field_flagged", "predicted"] + (["tile"] * ("tile" in f))
    df = f[keep].to_dataframe()
    names = dict(zip(f.attrs["class_ids"], f.attrs["class_names"], strict=True))
    rows = []
    for key, g in df.groupby(["tile", "field_id"] if "tile" in df else ["field_id"], sort=True):
        parcel = int(g["label"].mode().iloc[0])
        sug = int(g["predicted"].mode().iloc[0]) if bool(g["field_flagged"].any()) else parcel
        row = {"tile": key[0]} if "tile" in df else {}
        row.update(field_id=int(g["field_id"].iloc[0]), label=parcel, label_name=names[parcel], n=len(g))
        row.update(agreement=float(g["field_agreement"].iloc[0]), flagged=bool(g["field_flagged"].any()))
        rows.append({**row, "suggestion": sug, "suggestion_name": names[sug]})
    return pd.DataFrame(rows).sort_values(["agreement", "field_id"], kind="stable").reset_index(drop=True)


def clean(ds: xr.Dataset, flags: xr.Dataset, action: str = "relabel") -> xr.Dataset:
    """Return a new training set with the flagged samples dropped, or relabelled to their suggestion.

    `action="relabel"` sets `label` and `label_name` to the suggestion (a flagged parcel's majority predicted
    class, else the sample's confidently likely class), keeps the given ones in `label_original` and marks
    `relabelled`. Either way attrs `label_cleaning` (JSON) records the action, the method and the counts.
    Relabel is the default: on benchmarks/bench_cleaning.py it recovered random label flips fully (recovery 1.00 on
    the sample and on Slovenia) where dropping the flagged samples recovered 0.56-1.5 of the loss.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {list(ACTIONS)}, got {action!r}{did_you_mean(action, ACTIONS)}")
    f = _check_flags(flags)
    y = _labels(ds)
    dim = _dim(ds)
    if f.sizes.get(dim) != len(y) or not np.array_equal(np.asarray(f["label"].values), y):
        raise ValueError(
            f"flags describe {f.sizes.get(dim)} samples whose 'label' differs from this dataset's {len(y)}; "
            "pass the flags find_issues made of this very dataset"
        )
    flagged = np.asarray(f["flagged"].values, bool)
    sug = np.asarray(f["suggestion"].values, np.int64)
    record = {"action": action, "method": f.attrs.get("method"), "field_threshold": f.attrs.get("field_threshold")}
    record.update(n_before=len(y), n_flagged=int(flagged.sum()), n_issues=int(np.asarray(f["issue"].values).sum()))
    record["n_in_flagged_fields"] = int(np.asarray(f["field_flagged"].values).sum())
    if action == "drop":
        out = ds.isel({dim: np.flatnonzero(~flagged)})
        record["n_dropped"] = int(flagged.sum())
    else:
        names = dict(zip(f.attrs["class_ids"], f.attrs["class_names"], strict=True))
        new = np.where(flagged, sug, y)
        out = ds.copy()
        out["label_original"] = (dim, y)
        out["label"] = (dim, new.astype(ds["label"].dtype))
        out["label_name"] = (dim, np.asarray([names[int(c)] for c in new]))
        out["relabelled"] = (dim, flagged & (new != y))
        record["n_relabelled"] = int((flagged & (new != y)).sum())
    record["n_after"] = int(out.sizes[dim])
    out.attrs = {**ds.attrs, "label_cleaning": json.dumps(record)}
    return out

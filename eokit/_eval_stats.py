"""Research-grade reporting for `eokit.evaluate` (re-exported there): per-class table, runs over seeds, paired tests.

`per_class` turns a `scores` result into a per-class precision/recall/F1/support table (from its confusion
matrix); `summarise_runs` reports repeated runs (seeds, folds) as mean ± std per model, case and protocol;
`paired_by_fold` compares two models fold by fold (spatial folds differ a lot: never judge on one split);
`mcnemar` tests whether two classifiers differ on the same test samples. Also the label checks that
`scores` and `mcnemar` share (`_check_class_names`, `_as_index`). No TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

#: Columns of a run record that identify the run and are never summarised as metrics.
RUN_KEYS = ("model", "case", "protocol", "fold", "seed")
#: Below this many disagreements McNemar's test is the exact binomial test, else chi-square (Edwards' correction).
EXACT_BELOW = 25


def _check_class_names(class_names: Any) -> list[str]:
    """Return the class names as strings, refusing a bare string, an empty list and duplicates."""
    if isinstance(class_names, str) or not isinstance(class_names, (Sequence, np.ndarray)):
        raise ValueError(f"class_names must be a list of names, got {class_names!r}")  # noqa: TRY004
    names = [str(c) for c in class_names]
    if not names:
        raise ValueError("class_names is empty; expected one name per class index")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"class_names {names} name {dup} more than once; each class needs its own name")
    return names


def _as_index(y: Any, class_names: Sequence[str], what: str) -> np.ndarray:
    arr = np.asarray(y)
    k = len(class_names)
    if arr.ndim != 1:
        hint = " (class probabilities? take .argmax(axis=-1))" if arr.ndim == 2 else ""
        raise ValueError(f"{what} must be a 1-D sequence of class indices or names, got shape {arr.shape}{hint}")
    if arr.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(arr) | (arr != np.round(arr)))
        if bad.size:
            raise ValueError(
                f"{what}: value {arr[bad[0]]} at position {bad[0]} is not a class index; expected "
                f"integers 0..{k - 1} or class names"
            )
    elif arr.dtype.kind == "b" or (arr.dtype.kind not in "iuUSO" and arr.size):
        raise ValueError(f"{what}: expected class indices 0..{k - 1} or class names, got dtype {arr.dtype}")
    if arr.dtype.kind in ("U", "S", "O"):
        lut = {str(n): i for i, n in enumerate(class_names)}
        unknown = sorted({str(v) for v in arr.tolist()} - set(lut))
        if unknown:
            raise ValueError(f"{what}: labels {unknown[:10]} are not among the classes {list(class_names)}")
        return np.array([lut[str(v)] for v in arr.tolist()], np.int64)
    arr = arr.astype(np.int64)
    bad = np.flatnonzero((arr < 0) | (arr >= k))
    if bad.size:
        raise ValueError(
            f"{what}: class index {arr[bad[0]]} at position {bad[0]} is outside 0..{k - 1} "
            f"({k} classes: {list(class_names)})"
        )
    return arr


def per_class(result: dict) -> pd.DataFrame:
    """Return a table (one row per class, in class order) of precision, recall, F1 and support of a `scores` result.

    Computed from the result's confusion matrix (true rows, predicted columns); a class never predicted has
    precision 0, a class absent from the truth recall 0 (as `scores` does, scikit-learn's zero_division=0).
    """
    if not isinstance(result, dict) or "confusion_matrix" not in result or "classes" not in result:
        have = sorted(result) if isinstance(result, dict) else type(result).__name__
        raise ValueError(f"per_class needs a scores(...) result with 'confusion_matrix' and 'classes'; got {have}")
    names = [str(c) for c in result["classes"]]
    cm = np.asarray(result["confusion_matrix"], dtype=float)
    if cm.shape != (len(names), len(names)) or not np.all(np.isfinite(cm)) or (cm < 0).any():
        raise ValueError(
            f"per_class: the confusion_matrix must be {len(names)} x {len(names)} non-negative counts "
            f"(one row and column per class of {names}), got shape {cm.shape}"
        )
    tp = np.diag(cm)
    predicted, support = cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)},
        index=pd.Index(names, name="class"),
    )


def _runs_frame(runs: Any, what: str) -> pd.DataFrame:
    """Return the run records as a DataFrame (a copy), refusing an empty set and a non-record."""
    if isinstance(runs, pd.DataFrame):
        df = runs.reset_index(drop=all(n is None for n in runs.index.names))
    elif isinstance(runs, Sequence) and not isinstance(runs, str) and all(isinstance(r, dict) for r in runs):
        df = pd.DataFrame(list(runs))
    else:
        raise ValueError(
            f"{what}: runs must be a list of dicts (one per run) or a DataFrame, got {type(runs).__name__}"
        )
    if df.empty:
        raise ValueError(f"{what}: no runs given; expected one record per model, case, protocol, fold and seed")
    return df


def _plain(value: Any) -> Any:
    """Return a numpy scalar as the Python value (for messages that read like the user's records)."""
    return value.item() if isinstance(value, np.generic) else value


def _check_metric(df: pd.DataFrame, metric: str, what: str) -> np.ndarray:
    """Return the metric column as floats; ValueError naming the run if it is missing, not numeric or not finite."""
    if metric not in df.columns:
        raise ValueError(f"{what}: runs have no column {metric!r} (columns: {list(df.columns)})")
    values = pd.to_numeric(df[metric], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        row = df.iloc[int(bad[0])]
        who = {k: _plain(row[k]) for k in RUN_KEYS if k in df.columns}
        raise ValueError(
            f"{what}: metric {metric!r} of run {who} (row {int(bad[0])}) is {_plain(row[metric])!r}; "
            "expected a finite number"
        )
    return values


def _default_metrics(df: pd.DataFrame, by: Sequence[str]) -> list[str]:
    skip = set(by) | set(RUN_KEYS) | {"n"}  # "n" is the run count of the summary
    return [str(c) for c in df.columns if c not in skip and pd.api.types.is_numeric_dtype(df[c])]


def _check_unique_runs(df: pd.DataFrame, keys: list[str], what: str) -> None:
    dup = df.duplicated(subset=keys, keep=False)
    if dup.any():
        first = {k: _plain(v) for k, v in df.loc[dup, keys].iloc[0].items()}
        raise ValueError(
            f"{what}: {int(dup.sum())} runs share the same {keys}, e.g. {first}; each run needs its own seed or fold"
        )


def summarise_runs(
    runs: Any, metrics: Sequence[str] | None = None, by: Sequence[str] = ("model", "case", "protocol"), digits: int = 3
) -> pd.DataFrame:
    """Return one row per (model, case, protocol): n runs, mean and std (ddof=1) and "mean ± std" of each metric.

    `runs` holds one record per run (dicts or a DataFrame), e.g. {"model", "case", "protocol", "fold", "seed",
    "oa", "kappa", "macro_f1", "train_seconds"}. `metrics` defaults to every numeric column other than the
    grouping keys, "fold" and "seed". Columns: the keys of `by`, `n`, then per metric `<m>_mean`, `<m>_std`
    (NaN for a single run) and `<m>` (text, `digits` decimals, "(n=1)" instead of a spread for one run).
    Rows keep the order in which the groups first appear.
    """
    what = "summarise_runs"
    df = _runs_frame(runs, what)
    by = [str(b) for b in ([by] if isinstance(by, str) else by)]
    missing = [b for b in by if b not in df.columns]
    if missing:
        raise ValueError(f"{what}: runs have no column(s) {missing} to group by (columns: {list(df.columns)})")
    metrics = list(_default_metrics(df, by) if metrics is None else [metrics] if isinstance(metrics, str) else metrics)
    if not metrics:
        raise ValueError(f"{what}: runs have no numeric metric column besides {by} (columns: {list(df.columns)})")
    if "n" in metrics or set(metrics) & set(by):
        raise ValueError(f"{what}: metrics {metrics} name 'n' (the run count) or a grouping key of {by}")
    values = pd.DataFrame({m: _check_metric(df, m, what) for m in metrics}, index=df.index)
    _check_unique_runs(df, by + [k for k in ("fold", "seed") if k in df.columns and k not in by], what)
    grouped = values.groupby([df[b] for b in by], sort=False, dropna=False)
    out = grouped.size().rename("n").to_frame()
    for m in metrics:
        mean, std = grouped[m].mean(), grouped[m].std(ddof=1)
        text = [
            f"{mu:.{digits}f} (n=1)" if n == 1 else f"{mu:.{digits}f} ± {sd:.{digits}f}"
            for mu, sd, n in zip(mean, std, out["n"], strict=True)
        ]
        out[f"{m}_mean"], out[f"{m}_std"], out[m] = mean, std, text
    return out.reset_index()


def paired_by_fold(runs: Any, a: str, b: str, metric: str, model: str = "model", fold: str = "fold") -> dict:
    """Return a fold-by-fold comparison of models `a` and `b`: per-fold means, a - b, and the folds each wins.

    Runs are averaged over seeds within each fold; folds are paired within their case and protocol (where
    those columns exist). The dict holds `per_fold` (a DataFrame: keys, `a`, `b`, `difference`, `n_a`, `n_b`),
    `n_folds`, `wins_a`, `wins_b`, `ties`, `mean_difference`, `std_difference` (ddof=1) and `sign_test_p`
    (two-sided exact binomial test of the wins, ties left out; 1.0 when every fold is a tie).
    """
    from scipy.stats import binomtest

    what = "paired_by_fold"
    df = _runs_frame(runs, what)
    for col in (model, fold):
        if col not in df.columns:
            raise ValueError(f"{what}: runs have no {col!r} column (columns: {list(df.columns)})")
    if a == b:
        raise ValueError(f"{what}: a and b are both {a!r}; compare two different models")
    have = sorted({str(m) for m in df[model]})
    absent = [m for m in (a, b) if m not in have]
    if absent:
        raise ValueError(f"{what}: model(s) {absent} have no runs; models in the runs: {have}")
    df = df[df[model].astype(str).isin([a, b])]
    values = _check_metric(df, metric, what)
    keys = [k for k in ("case", "protocol") if k in df.columns and k not in (model, fold)] + [fold]
    means = (
        pd.Series(values, index=df.index)
        .groupby([df[k] for k in keys] + [df[model].astype(str)], dropna=False)
        .agg(["mean", "size"])
    )
    table = means.unstack(model)
    unpaired = table[table["mean"].isna().any(axis=1)]
    if len(unpaired):
        at = unpaired.index[0] if isinstance(unpaired.index[0], tuple) else (unpaired.index[0],)
        first = {k: _plain(v) for k, v in zip(keys, at, strict=True)}
        raise ValueError(
            f"{what}: {len(unpaired)} fold(s) have runs of only one of {a!r} and {b!r}, e.g. {first}; "
            "compare the models on the same folds"
        )
    per_fold = pd.DataFrame(
        {"a": table["mean"][a], "b": table["mean"][b], "n_a": table["size"][a], "n_b": table["size"][b]}
    )
    per_fold.insert(2, "difference", per_fold["a"] - per_fold["b"])
    per_fold[["n_a", "n_b"]] = per_fold[["n_a", "n_b"]].astype(np.int64)
    diff = per_fold["difference"].to_numpy()
    tie = np.abs(diff) <= 1e-12
    wins_a, wins_b = int(((diff > 0) & ~tie).sum()), int(((diff < 0) & ~tie).sum())
    decided = wins_a + wins_b
    return {
        "metric": metric,
        "a": a,
        "b": b,
        "per_fold": per_fold.reset_index(),
        "n_folds": int(len(diff)),
        "wins_a": wins_a,
        "wins_b": wins_b,
        "ties": int(tie.sum()),
        "mean_difference": float(diff.mean()),
        "std_difference": float(diff.std(ddof=1)) if len(diff) > 1 else float("nan"),
        "sign_test_p": float(binomtest(wins_a, decided, 0.5).pvalue) if decided else 1.0,
    }


def _mcnemar_classes(arrays: list[np.ndarray], names: tuple[str, ...]) -> list[str]:
    """Class names for `mcnemar` without `class_names`: 0..max of integer ids, or the labels that occur."""
    kinds = {a.dtype.kind for a in arrays if a.size}
    if kinds <= set("iuf"):
        for arr, what in zip(arrays, names, strict=True):
            bad = np.flatnonzero(~np.isfinite(arr) | (arr != np.round(arr)) | (arr < 0))
            if len(bad):
                raise ValueError(
                    f"{what}: value {arr[bad[0]]} at position {bad[0]} is not a class index; expected whole "
                    "numbers >= 0 or class names"
                )
        top = max((int(a.max()) for a in arrays if a.size), default=0)
        return [str(i) for i in range(top + 1)]
    if kinds <= set("USO"):
        return sorted({str(v) for a in arrays for v in a.tolist()})
    raise ValueError(
        f"mcnemar: {', '.join(names)} mix class ids and names (dtypes {[str(a.dtype) for a in arrays]}); "
        "pass class_names to say which id is which name"
    )


def mcnemar(y_true: Any, pred_a: Any, pred_b: Any, class_names: Sequence[str] | None = None) -> dict:
    """Return McNemar's test of two classifiers on the same test samples: n01, n10, statistic, p_value, test.

    `n01` counts samples that model a gets wrong and model b right, `n10` the reverse (Dietterich 1998). With
    fewer than 25 disagreements the test is the exact two-sided binomial test (statistic = min(n01, n10)),
    else chi-square with continuity correction, (|n01 - n10| - 1)^2 / (n01 + n10), 1 degree of freedom.
    Labels are class indices into `class_names` or the names themselves, as `scores` accepts; without
    `class_names` they must all be ids (>= 0) or all names. Also returns n and each model's accuracy.
    """
    from scipy.stats import binomtest, chi2

    what = ("y_true", "pred_a", "pred_b")
    if class_names is None:
        arrays = [np.asarray(v) for v in (y_true, pred_a, pred_b)]
        for arr, name in zip(arrays, what, strict=True):
            if arr.ndim != 1:
                _as_index(arr, ["?"], name)  # raises: names the shape (and a probabilities hint)
        class_names = _mcnemar_classes(arrays, what)
    names = _check_class_names(class_names)
    yt, ya, yb = (_as_index(v, names, w) for v, w in zip((y_true, pred_a, pred_b), what, strict=True))
    if not len(yt) == len(ya) == len(yb):
        raise ValueError(
            f"mcnemar: y_true has {len(yt)} labels, pred_a {len(ya)} and pred_b {len(yb)}; expected one "
            "prediction of each model per test sample"
        )
    if len(yt) == 0:
        raise ValueError("mcnemar: y_true, pred_a and pred_b are empty; cannot test on no samples")
    ok_a, ok_b = ya == yt, yb == yt
    n01, n10 = int((~ok_a & ok_b).sum()), int((ok_a & ~ok_b).sum())
    n = n01 + n10
    if n < EXACT_BELOW:
        test = "exact binomial"
        statistic = float(min(n01, n10))
        p = float(binomtest(min(n01, n10), n, 0.5).pvalue) if n else 1.0
    else:
        test = "chi-square with continuity correction"
        statistic = (abs(n01 - n10) - 1.0) ** 2 / n
        p = float(chi2.sf(statistic, 1))
    return {
        "n": int(len(yt)),
        "n01": n01,
        "n10": n10,
        "statistic": float(statistic),
        "p_value": min(1.0, p),
        "test": test,
        "accuracy_a": float(ok_a.mean()),
        "accuracy_b": float(ok_b.mean()),
    }

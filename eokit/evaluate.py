"""Scores of crop-type and ice-type classifiers with scikit-learn metrics, as JSON and plots.

`scores` computes overall accuracy, Cohen's kappa, macro and weighted F1, per-class precision/recall/F1
and the confusion matrix (counts and row-normalised). `evaluate` predicts a held-out set with a trained
model and its card; `random_forest` and `gradient_boosting` are the scikit-learn baselines trained on the same
split (time series or patch sets); `lucas`
scores a model on LUCAS 2018 survey points sampled from an image cube (`lucas_points`: what became of each
point, `plot_lucas_points`: their map; both in eokit._eval_lucas, re-exported). For research-grade reports:
`per_class` (precision/recall/F1/support table of a result), `summarise_runs` (mean ± std over seeds and
folds), `paired_by_fold` (two models fold by fold) and `mcnemar` (two models on the same test samples).
TensorFlow is imported only inside the functions that predict.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from eokit._eval_lucas import lucas_model_file, lucas_points, plot_lucas_points
from eokit._eval_stats import _as_index, _check_class_names, mcnemar, paired_by_fold, per_class, summarise_runs
from eokit._io import write_json_atomic
from eokit.card import (  # noqa: F401
    CARD_SCORES,
    add_metrics,
    dataset_bands,
    prepare_inputs,
    select_bands,
)
from eokit.card import predict as _predict
from eokit.inputs import _check_flag_handling, _prepare_ts, patch_statistics
from eokit.trainingdata import data_kind, dataset_class_names, open_training_data

__all__ = [
    "scores",
    "write_scores",
    "plot_confusion",
    "plot_history",
    "evaluate",
    "random_forest",
    "gradient_boosting",
    "lucas",
    "lucas_points",
    "lucas_scores",
    "lucas_model_file",
    "plot_lucas_points",
    "compare",
    "map_agreement",
    "add_metrics",
    "per_class",
    "summarise_runs",
    "paired_by_fold",
    "mcnemar",
]
# add_metrics and CARD_SCORES live in eokit.card (they edit the card); re-exported here. per_class,
# summarise_runs, paired_by_fold and mcnemar (and the label checks) live in eokit._eval_stats; re-exported here


def scores(y_true: Any, y_pred: Any, class_names: Sequence[str]) -> dict:
    """Return a JSON-ready dict of OA, kappa, macro/weighted F1, per-class P/R/F1 and confusion matrices.

    `y_true`/`y_pred` are class indices into `class_names` (or the names themselves). Macro and weighted
    averages run over the classes present in `y_true` or `y_pred`; per-class rows cover all classes.
    """
    from sklearn.metrics import (
        accuracy_score,
        cohen_kappa_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    class_names = _check_class_names(class_names)
    yt = _as_index(y_true, class_names, "y_true")
    yp = _as_index(y_pred, class_names, "y_pred")
    if yt.shape != yp.shape:
        raise ValueError(
            f"y_true has {yt.shape[0]} labels but y_pred has {yp.shape[0]}; expected one prediction per label"
        )
    if yt.size == 0:
        raise ValueError("y_true and y_pred are empty: cannot score an empty set of predictions")
    present = sorted(set(yt.tolist()) | set(yp.tolist()))
    all_labels = list(range(len(class_names)))
    p, r, f, s = precision_recall_fscore_support(yt, yp, labels=all_labels, zero_division=0)
    cm = confusion_matrix(yt, yp, labels=all_labels)
    rows = cm.sum(axis=1, keepdims=True)
    cm_norm = np.divide(cm, rows, out=np.zeros(cm.shape, float), where=rows > 0)
    kappa = cohen_kappa_score(yt, yp) if len(present) > 1 else 1.0
    return {
        "n": int(yt.size),
        "overall_accuracy": float(accuracy_score(yt, yp)),
        "kappa": float(0.0 if np.isnan(kappa) else kappa),
        "macro_f1": float(f1_score(yt, yp, labels=present, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(yt, yp, labels=present, average="weighted", zero_division=0)),
        "classes": class_names,
        "per_class": {
            name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": cm.astype(int).tolist(),
        "confusion_matrix_normalised": cm_norm.round(6).tolist(),
    }


def write_scores(result: dict, path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Return the path of the scores written as JSON (temp file, then rename)."""
    return write_json_atomic(result, path, overwrite=overwrite)


def plot_confusion(result: dict, normalised: bool = True, title: str | None = None) -> Any:
    """Return an hvplot heatmap of the confusion matrix (true class rows, predicted columns)."""
    from eokit import plots

    plots.use_hvplot("pandas")
    names = result["classes"]
    cm = np.asarray(result["confusion_matrix_normalised" if normalised else "confusion_matrix"], float)
    df = pd.DataFrame(cm, index=pd.Index(names, name="true"), columns=pd.Index(names, name="predicted"))
    long = df.stack().rename("value").reset_index()
    default = f"confusion matrix (OA {result['overall_accuracy']:.3f}, macro F1 {result['macro_f1']:.3f})"
    plot = long.hvplot.heatmap(
        x="predicted",
        y="true",
        C="value",
        cmap="Blues",
        rot=90,
        width=650,
        height=550,
        title=title or default,
        # the darkest blue at 1.35 (not 1): black cell values stay readable on the best cells
        clim=(0, 1.35) if normalised else (0, 1.35 * max(float(cm.max()), 1.0)),
    )
    # Explicit category order, first class at the top: categorical y axes run bottom-up in both backends, while
    # `flip_yaxis` turned the matplotlib image upside down under unflipped tick labels (rows mislabelled).
    plot = plot.redim.values(predicted=list(names), true=list(names)[::-1])
    plot = plot.redim.value_format(value=(lambda v: f"{v:.2f}") if normalised else (lambda v: f"{v:.0f}"))
    return _matplotlib_size(plot, (9, 8), show_values=len(names) <= 8)


def _matplotlib_size(plot: Any, inches: tuple[float, float], **opts: Any) -> Any:
    import holoviews as hv

    if "matplotlib" in hv.Store.renderers:  # the pixel sizes above only apply to bokeh
        return plot.opts(fig_inches=inches, backend="matplotlib", **opts)
    return plot


def plot_history(history: dict, title: str = "training curves") -> Any:
    """Return hvplot line plots of loss and accuracy per epoch (training and validation)."""
    from eokit import plots

    plots.use_hvplot("pandas")
    df = pd.DataFrame({k: v for k, v in history.items() if len(v)})
    df.index = pd.RangeIndex(1, len(df) + 1, name="epoch")
    loss = df[[c for c in df if "loss" in c]].hvplot.line(title=f"{title}: loss", ylabel="loss", width=420)
    acc = df[[c for c in df if "acc" in c]].hvplot.line(title=f"{title}: accuracy", ylabel="accuracy", width=420)
    both = _matplotlib_size(loss, (5, 3.5)) + _matplotlib_size(acc, (5, 3.5))
    return plots.backend_opts(both, {"shared_axes": False}, bokeh={}, matplotlib={})  # loss and accuracy scales


def _true_index(data: xr.Dataset, card: dict) -> np.ndarray:
    lab = np.asarray(data["label"].values).astype(np.int64)
    ids = [int(c) for c in card["class_ids"]]
    lut = {c: i for i, c in enumerate(ids)}
    bad = sorted(set(lab.tolist()) - set(lut))
    if bad:
        first = int(np.flatnonzero(np.isin(lab, bad))[0])
        raise ValueError(
            f"{data.attrs.get('source', 'the data')}: labels {bad} (first at sample {first}) are not "
            f"among the model {card['name']!r} classes {dict(zip(ids, card['classes'], strict=True))}"
        )
    return np.array([lut[v] for v in lab.tolist()], np.int64)


def evaluate(model: Any, card: dict, data: Any, batch_size: int = 1024, predictions: bool = False) -> dict:
    """Return `scores` of a trained model (with its card) on a labelled time-series or patch set.

    `predictions=True` adds `y_true` and `y_pred` (class indices per sample), e.g. for `mcnemar`.
    """
    ds = open_training_data(data)
    y_true = _true_index(ds, card)
    y_pred = _predict(model, card, ds, batch_size=batch_size).argmax(axis=-1)
    return _with_predictions(scores(y_true, y_pred, card["classes"]), y_true, y_pred, predictions)


def _with_predictions(result: dict, y_true: np.ndarray, y_pred: np.ndarray, keep: bool) -> dict:
    """Return `result`, with the per-sample class indices `y_true` and `y_pred` added when `keep`."""
    if keep:
        result.update(y_true=[int(v) for v in y_true], y_pred=[int(v) for v in y_pred])
    return result


def _rf_features(ds: xr.Dataset, bands: list[str], n_timesteps: int, flag_handling: str = "mask") -> np.ndarray:
    """Return (sample, time x band) features: observations the flag handling does not take or fill are NaN."""
    refl = np.asarray(ds["reflectance"].values, dtype=np.float32)
    refl = refl[..., select_bands([str(b) for b in ds["band"].values], {"name": "random_forest", "bands": bands})]
    if refl.shape[1] > n_timesteps:
        raise ValueError(f"data has {refl.shape[1]} time steps, the forest was trained on {n_timesteps}")
    # the series as the networks see it, unnormalised; what they see masked (flagged under "mask", unfilled
    # under "interpolate", never acquired or padded in every mode) is a missing value
    c = refl.shape[-1]
    flag = np.asarray(ds["flag"].values)
    ins = _prepare_ts(refl, flag, ds["date"].values, np.zeros(c), np.ones(c), refl.shape[1], flag_handling)
    refl = np.where(ins["mask"][..., None] > 0, ins["x"], np.float32(np.nan))
    if refl.shape[1] < n_timesteps:
        refl = np.pad(refl, ((0, 0), (0, n_timesteps - refl.shape[1]), (0, 0)), constant_values=np.nan)
    return refl.reshape(len(refl), -1)


def _baseline_features(
    ds: xr.Dataset, kind: str, bands: list[str], n_timesteps: int | None, flag_handling: str = "mask"
) -> np.ndarray:
    """Return the baselines' features: every acquisition's bands (time series) or each channel's statistics."""
    if kind == "timeseries":
        assert n_timesteps is not None
        return _rf_features(ds, bands, n_timesteps, flag_handling)
    have = dataset_bands(ds, "patch")
    idx = select_bands(have, {"name": "baseline", "bands": bands})
    return patch_statistics(np.asarray(ds["image"].values)[..., idx])


def _baseline(
    estimator: Any, train: Any, test: Any, predictions: bool = False, flag_handling: str = "mask"
) -> tuple[dict, Any]:
    """Return (scores on `test`, fitted estimator) of a scikit-learn classifier on the baseline features."""
    _check_flag_handling(flag_handling)  # refused before any work
    tr = open_training_data(train)
    te = open_training_data(test)
    kind = data_kind(tr)
    if data_kind(te) != kind:
        raise ValueError("train and test must both be time-series sets or both patch sets")
    bands = dataset_bands(tr, kind)
    t = max(tr.sizes["time"], te.sizes["time"]) if kind == "timeseries" else None
    ids = sorted(int(c) for c in np.unique(tr["label"].values))
    card: dict[str, Any] = {"name": type(estimator).__name__, "class_ids": ids}
    card["classes"] = dataset_class_names(tr, kind, ids)
    y_tr = _true_index(tr, card)
    y_te = _true_index(te, card)
    x_tr = _baseline_features(tr, kind, bands, t, flag_handling)
    x_te = _baseline_features(te, kind, bands, t, flag_handling)
    seen = ~np.isnan(x_tr).all(axis=0)  # a date cloudy in every training series says nothing (and breaks binning)
    estimator.fit(x_tr[:, seen], y_tr)
    pred = estimator.predict(x_te[:, seen])
    return _with_predictions(scores(y_te, pred, card["classes"]), y_te, pred, predictions), estimator


def random_forest(
    train: Any,
    test: Any,
    seed: int = 0,
    n_estimators: int = 300,
    n_jobs: int | None = None,
    class_weight: str | None = "balanced",
    predictions: bool = False,
    flag_handling: str = "mask",
) -> tuple[dict, Any]:
    """Return (scores on `test`, fitted RandomForestClassifier) for a scikit-learn baseline on the same split.

    Time series: the reflectances of every acquisition and band. `flag_handling` "mask" (default): flagged and
    padded observations are missing values, which scikit-learn's forests handle natively (the pattern of clouds
    is then a feature, and neighbouring pixels share it); "interpolate": clouds and shadows filled linearly in
    time from the clear dates, as `eokit.train.fit` gives its networks by default; "gapfill": every acquisition
    as observed. Patch sets (no flags, the argument is ignored): each channel's mean, std and percentiles
    (`eokit.inputs.patch_statistics`). `predictions=True` adds `y_true` and `y_pred` as `evaluate` does.
    """
    from sklearn.ensemble import RandomForestClassifier

    rf = RandomForestClassifier(n_estimators=n_estimators, random_state=seed, n_jobs=n_jobs, class_weight=class_weight)
    return _baseline(rf, train, test, predictions, flag_handling)


def gradient_boosting(
    train: Any,
    test: Any,
    seed: int = 0,
    max_iter: int = 200,
    class_weight: str | None = "balanced",
    predictions: bool = False,
    flag_handling: str = "mask",
) -> tuple[dict, Any]:
    """Return (scores on `test`, fitted HistGradientBoostingClassifier) on the random forest's features.

    Missing values are handled natively; no internal early stopping (its stratified hold-out fails on classes
    with a single training sample, which spatial splits produce). `flag_handling` as for `random_forest`.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    hgb = HistGradientBoostingClassifier(
        max_iter=max_iter, random_state=seed, class_weight=class_weight, early_stopping=False
    )
    return _baseline(hgb, train, test, predictions, flag_handling)


def compare(results: dict[Any, dict]) -> pd.DataFrame:
    """Return one table (rows = result keys, e.g. (model, protocol)) of n, OA, kappa, macro and weighted F1."""
    rows = []
    for key, r in results.items():
        key = key if isinstance(key, tuple) else (key,)
        rows.append(
            {
                **{f"key{i}": k for i, k in enumerate(key)},
                "n": r["n"],
                "overall_accuracy": r["overall_accuracy"],
                "kappa": r["kappa"],
                "macro_f1": r["macro_f1"],
                "weighted_f1": r["weighted_f1"],
            }
        )
    df = pd.DataFrame(rows)
    keys = [c for c in df.columns if c.startswith("key")]
    names = ["model", "protocol"] + [f"key{i}" for i in range(2, len(keys))]
    # one key column gets a name list of two: unequal lengths are intended here
    return df.rename(columns=dict(zip(keys, names, strict=False))).set_index(names[: len(keys)])


def map_agreement(class_map: Any, reference: Any, card: dict, nodata: int | None = None) -> dict:
    """Return `scores` of a class map against a reference raster of class ids on the same grid (e.g. a register).

    `class_map` is the output of `eokit.maps.predict` (its `class` variable: indices into `card["classes"]`,
    `nodata` = `eokit.maps.NODATA_CLASS` where nothing was mapped), a DataArray or an array; `reference` holds
    the reference's class ids (`card["class_ids"]`) per pixel. Pixels with no mapped class, or whose reference
    id is not a class of the model (0 outside every polygon, classes the model was not trained on), are left
    out; `n` of the result counts the pixels compared. The reference is itself imperfect: agreement, not accuracy.
    """
    if nodata is None:
        from eokit import maps

        nodata = maps.NODATA_CLASS
    pred = np.asarray(class_map["class"].values if isinstance(class_map, xr.Dataset) else class_map)
    ref = np.asarray(reference.values if isinstance(reference, xr.DataArray) else reference)
    if pred.shape != ref.shape:
        raise ValueError(
            f"map_agreement: the class map has shape {pred.shape} but the reference {ref.shape}; "
            "expected the reference rasterised on the map's grid"
        )
    ids = [int(i) for i in card["class_ids"]]
    truth = np.full(ref.shape, -1, np.int64)
    for k, cid in enumerate(ids):
        truth[ref == cid] = k
    keep = (truth >= 0) & (pred != nodata)
    if not keep.any():
        raise ValueError(
            f"map_agreement: no pixel has both a mapped class and a reference id among the model's "
            f"class_ids {ids}; reference ids present: {np.unique(ref)[:10].tolist()}"
        )
    return scores(truth[keep], pred[keep], card["classes"])


def lucas(model: Any, card: dict, cube: xr.Dataset, points: Any, batch_size: int = 1024) -> dict:
    """Return scores of `model` on LUCAS points (GeoDataFrame with an LC1 column) sampled from `cube`.

    LC1 codes are mapped to TimeSen2Crop classes with `eokit.datasets.lucas.map_lc1`; points whose code
    has no class, or whose class the model does not know, or that fall outside the cube are counted in
    the result (`n_points`, `n_unmapped`, `n_unknown_class`, `n_outside`) and left out of the scores;
    `lucas_points` gives what became of each point, `lucas_scores` scores its table.
    """
    return lucas_scores(lucas_points(model, card, cube, points, batch_size=batch_size), card)


def lucas_scores(table: pd.DataFrame, card: dict) -> dict:
    """Return `scores` of the ``scored`` points of a `lucas_points` table, with the counts of the others."""
    if not isinstance(table, pd.DataFrame) or not {"status", "true_class", "predicted_class"} <= set(table.columns):
        raise ValueError("lucas_scores needs the table of lucas_points (columns status, true_class, predicted_class)")
    done = table[table["status"] == "scored"]
    index = {c: i for i, c in enumerate(card["classes"])}
    result = scores(done["true_class"].map(index), done["predicted_class"].map(index), card["classes"])
    n = table["status"].value_counts()
    result.update(
        n_points=len(table),
        n_unmapped=int(n.get("unmapped", 0)),
        n_unknown_class=int(n.get("unknown class", 0)),
        n_outside=int(n.get("outside", 0)),
    )
    return result

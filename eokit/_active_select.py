"""The model and selection steps of the active-learning loop (`eokit.active`): patch features, the default
classifier (or any estimator / training callable), uncertainty (margin, entropy), a diverse batch, held-out scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from eokit._checks import did_you_mean
from eokit.inputs import patch_statistics

STRATEGIES = ("margin", "entropy", "random")
DIVERSITY = ("kmeans", "farthest", "none")


def patch_features(ds: xr.Dataset, batch: int = 1024) -> np.ndarray:
    """Return standardised patch statistics (N, 7 C) of the patch set's `image`, computed in batches."""
    n = ds.sizes.get("patch", 0)
    if n == 0:
        raise ValueError("empty pool: the patch set has no patches (dimension 'patch' has length 0)")
    parts = [patch_statistics(ds["image"].isel(patch=slice(i, i + batch)).values) for i in range(0, n, batch)]
    f = np.concatenate(parts)
    sd = f.std(axis=0)
    return np.nan_to_num((f - f.mean(axis=0)) / np.where(sd > 0, sd, 1.0)).astype(np.float32)


def make_classifier(seed: int = 0) -> Any:
    """Return the default fast classifier: a seeded scikit-learn random forest (100 trees, one core)."""
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)


def uncertainty(proba: np.ndarray, strategy: str) -> np.ndarray:
    """Return each row's uncertainty in [0, 1]: 1 - (top - second) probability ("margin") or entropy / log K."""
    p = np.clip(np.asarray(proba, dtype=float), 0.0, 1.0)
    if strategy == "margin":
        top2 = -np.sort(-p, axis=1)[:, :2] if p.shape[1] > 1 else np.c_[p, np.zeros(len(p))]
        return 1.0 - (top2[:, 0] - top2[:, 1])
    if strategy == "entropy":
        logs = np.log(np.where(p > 0, p, 1.0))
        return -(p * logs).sum(axis=1) / np.log(max(p.shape[1], 2))
    raise ValueError(
        f"uncertainty: strategy must be 'margin' or 'entropy', got {strategy!r}{did_you_mean(strategy, STRATEGIES)}"
    )


def select_batch(
    scores: np.ndarray,
    features: np.ndarray,
    batch_size: int,
    seed: int = 0,
    candidates: int = 5,
    diversity: str = "kmeans",
) -> np.ndarray:
    """Return positions of a diverse batch: the `candidates` x `batch_size` most uncertain, then one per cluster.

    "kmeans" clusters the candidates' features into `batch_size` clusters and takes each cluster's most uncertain
    patch; "farthest" starts at the most uncertain and adds the candidate farthest from those taken; "none" takes
    the top of the ranking. Ties are broken by position, so the same inputs give the same batch.
    """
    _check_choice(diversity, DIVERSITY, "diversity")
    scores = np.asarray(scores, dtype=float)
    order = np.lexsort((np.arange(len(scores)), -scores))
    k = min(batch_size, len(scores))
    pool = order[: max(k, min(len(scores), candidates * k))]
    if diversity == "none" or len(pool) == k:
        return pool[:k]
    x = features[pool]
    if diversity == "farthest":
        taken = [0]
        dist = np.linalg.norm(x - x[0], axis=1)
        while len(taken) < k:
            taken.append(int(np.argmax(np.where(np.isin(np.arange(len(pool)), taken), -1.0, dist))))
            dist = np.minimum(dist, np.linalg.norm(x - x[taken[-1]], axis=1))
        return pool[taken]
    from sklearn.cluster import KMeans

    lab = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(x)
    best = [int(np.flatnonzero(lab == c)[0]) for c in range(k) if (lab == c).any()]  # pool is ranked: first = top
    rest = [i for i in range(len(pool)) if i not in best][: k - len(best)]  # duplicate points can empty a cluster
    return pool[np.sort(np.array(best + rest))]


def _check_choice(value: Any, allowed: Sequence[str], what: str) -> str:
    if value not in allowed:
        raise ValueError(
            f"unknown {what} {value!r}{did_you_mean(value, allowed)}; expected one of {', '.join(allowed)}"
        )
    return str(value)


def _check_pool(ds: xr.Dataset) -> None:
    if not isinstance(ds, xr.Dataset) or "image" not in ds.variables or "label" not in ds.variables:
        raise ValueError("active learning needs a patch set (eokit.schema.PATCH_SCHEMA) with 'image' and 'label'")
    if ds.sizes.get("patch", 0) == 0:
        raise ValueError("empty pool: the patch set has no patches (dimension 'patch' has length 0)")


def _predict(
    model: Any, ds: xr.Dataset, feats: np.ndarray, train: np.ndarray, y: np.ndarray, at: np.ndarray, k: int, seed: int
) -> np.ndarray:
    """Train `model` on the labelled positions and return class probabilities (len(at), k) at `at`."""
    if model is None or (hasattr(model, "fit") and hasattr(model, "predict_proba")):
        from sklearn.base import clone

        est = make_classifier(seed) if model is None else clone(model)
        if "random_state" in est.get_params():
            est.set_params(random_state=seed)
        est.fit(feats[train], y)
        out = np.zeros((len(at), k))
        out[:, np.asarray(est.classes_, int)] = est.predict_proba(feats[at])
        return out
    if not callable(model):
        raise ValueError(f"model must be an estimator with fit/predict_proba or a callable, got {type(model).__name__}")
    predict = model(ds.isel(patch=train).assign(label=("patch", y)), seed)
    out = np.asarray(predict(ds.isel(patch=at)), dtype=float)
    if out.shape != (len(at), k):
        raise ValueError(
            f"model callable's predict returned shape {out.shape}; expected ({len(at)}, {k}) probabilities"
        )
    return out


def _holdout_scores(y: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    if not len(y):
        return {"accuracy": None, "macro_f1": None, "n_holdout": 0}
    from sklearn.metrics import accuracy_score, f1_score

    acc, f1 = accuracy_score(y, pred), f1_score(y, pred, average="macro", zero_division=0)
    return {"accuracy": round(float(acc), 6), "macro_f1": round(float(f1), 6), "n_holdout": int(len(y))}

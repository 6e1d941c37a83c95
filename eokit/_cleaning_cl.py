"""The arithmetic of label cleaning (`eokit.cleaning`): confident learning and per-field agreement, NumPy only
(plus the check of the flags Dataset that the module and its plots share).

Confident learning (Northcutt, Jiang and Chuang 2021): the threshold of class j is the mean predicted
probability of j over the samples labelled j (its mean self-confidence); a sample's confidently likely class is
the most probable of the classes whose probability reaches their threshold; counting (given, likely) pairs gives
the confident joint C. Its off-diagonal entries are the label issues ("confident_joint"); "prune_by_noise_rate"
calibrates C to the class counts and, for each off-diagonal pair (i, j), flags that many samples labelled i
with the largest margin p_j - p_i. As in cleanlab, a sample whose most probable class is its given label is
never flagged.

Two guards keep a weak classifier from doing harm. `reliability` estimates, per class, how far the out-of-fold
classifier can be trusted (the lower of its precision and recall against the given labels, on the samples no
classifier-free rule flags); classes below `min_reliability` neither have their labels questioned nor are
suggested. And per class at most `max_share` of its samples (and never all of them, never all its parcels) is
flagged by the classifier, most suspect first.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr


def _thresholds(given: np.ndarray, p: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Return each class's mean self-confidence over its valid samples (inf for a class without any)."""
    k = p.shape[1]
    t = np.full(k, np.inf)
    for j in range(k):
        m = valid & (given == j)
        if m.any():
            t[j] = float(p[m, j].mean())
    return t


def _likely(p: np.ndarray, t: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Return each sample's confidently likely class (the most probable at or above its threshold), -1 for none."""
    above = p >= t[None, :] - 1e-12
    masked = np.where(above, p, -1.0)
    out = masked.argmax(axis=1)
    out[~above.any(axis=1) | ~valid] = -1
    return out


def _margin(given: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Return p(given) - max over the other classes (negative: another class is more probable)."""
    rows = np.arange(len(given))
    own = p[rows, given]
    other = p.copy()
    other[rows, given] = -np.inf
    return own - other.max(axis=1)


def reliability(given: np.ndarray, p: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Return per class min(precision, recall) of the argmax of `p` against `given` over the samples in `use`
    (0 for a class never given or never predicted there)."""
    k = p.shape[1]
    pred = p.argmax(axis=1)
    g, q = given[use], pred[use]
    hit = np.bincount(g[g == q], minlength=k).astype(np.float64)
    n_given = np.bincount(g, minlength=k).astype(np.float64)
    n_pred = np.bincount(q, minlength=k).astype(np.float64)
    recall = np.divide(hit, n_given, out=np.zeros(k), where=n_given > 0)
    precision = np.divide(hit, n_pred, out=np.zeros(k), where=n_pred > 0)
    return np.minimum(recall, precision)


def _prune_by_noise_rate(given: np.ndarray, p: np.ndarray, valid: np.ndarray, joint: np.ndarray) -> np.ndarray:
    """Return the flags of cleanlab's prune-by-noise-rate rule from the (uncalibrated) confident joint."""
    k = p.shape[1]
    counts = np.bincount(given[valid], minlength=k).astype(np.float64)
    rows = joint.sum(axis=1, keepdims=True).astype(np.float64)
    cal = np.divide(joint * counts[:, None], rows, out=np.zeros(joint.shape), where=rows > 0)
    issue = np.zeros(len(given), bool)
    for i in range(k):
        members = np.flatnonzero(valid & (given == i))
        for j in range(k):
            n = int(round(cal[i, j])) if i != j else 0
            if n > 0:
                gap = p[members, j] - p[members, i]
                top = members[np.argsort(-gap, kind="stable")[:n]]
                issue[top[p[top, j] > p[top, i]]] = True
    return issue


def cap_per_class(flag: np.ndarray, given: np.ndarray, margin: np.ndarray, max_share: float, size=None) -> np.ndarray:
    """Return `flag` keeping per class at most floor(max_share * its size) flagged items, never all of them,
    smallest `margin` (most suspect) first, skipping one too large for what is left; `size` weighs items (pixels
    of a parcel), default 1 each."""
    w = np.ones(len(given)) if size is None else np.asarray(size, np.float64)
    out = np.zeros(len(flag), bool)
    for c in np.unique(given):
        members = np.flatnonzero(given == c)
        total = float(w[members].sum())
        budget = min(np.floor(max_share * total), total - float(w[members].min()))
        cand = members[flag[members]]
        cand = cand[np.argsort(margin[cand], kind="stable")]
        used = 0.0
        for i in cand:  # most suspect first; an item too large for what is left is skipped
            if used + w[i] <= budget + 1e-9:
                out[i], used = True, used + w[i]
    return out


def confident_flags(
    given: np.ndarray,
    p: np.ndarray,
    valid: np.ndarray,
    method: str,
    trusted: np.ndarray | None = None,
    max_share: float = 1.0,
) -> dict[str, np.ndarray]:
    """Return {thresholds, confident_joint, issue, suggestion, margin} for class indices `given` and probabilities
    `p` (n, k); samples not `valid` (their class unseen in their fold) are never flagged, nor samples whose given
    or suggested class is not `trusted` (per class, default all), and per class at most `max_share` of it."""
    t = _thresholds(given, p, valid)
    likely = _likely(p, t, valid)
    k = p.shape[1]
    joint = np.zeros((k, k), np.int64)
    has = likely >= 0
    np.add.at(joint, (given[has], likely[has]), 1)
    margin = _margin(given, p)
    if method == "confident_joint":
        issue = has & (likely != given)
    else:
        issue = _prune_by_noise_rate(given, p, valid, joint)
    best_other = np.where(np.arange(k)[None, :] == given[:, None], -np.inf, p).argmax(axis=1)
    suggestion = np.where(has & (likely != given), likely, best_other)
    issue &= valid & (p.argmax(axis=1) != given)  # never flag a sample the model predicts as its given label
    if trusted is not None:
        issue &= trusted[given] & trusted[suggestion]
    issue = cap_per_class(issue, given, margin, max_share)
    return {"thresholds": t, "confident_joint": joint, "issue": issue, "suggestion": suggestion, "margin": margin}


def _parcels(key: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(key, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(key[order])) + 1)


def parcel_minority(key: np.ndarray, given: np.ndarray, k: int, min_pixels: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (minority, parcel label) per sample: a pixel is a minority when its parcel (samples sharing `key`)
    has >= `min_pixels` pixels, one label holds a strict majority of them, and the pixel's label differs from it.
    The parcel label is the majority label (the smallest of the most common ones where there is a tie)."""
    minority = np.zeros(len(given), bool)
    label = given.copy()
    for idx in _parcels(key):
        counts = np.bincount(given[idx], minlength=k)
        label[idx] = counts.argmax()
        if len(idx) >= min_pixels and 2 * counts.max() > len(idx):
            minority[idx] = given[idx] != counts.argmax()
    return minority, label


def field_agreement(
    key: np.ndarray,
    given: np.ndarray,
    p: np.ndarray,
    valid: np.ndarray,
    threshold: float,
    min_pixels: int,
    enabled: bool,
    trusted: np.ndarray | None = None,
    max_share: float = 1.0,
) -> dict[str, np.ndarray]:
    """Return per sample {agreement, flagged, suggestion, minority} of its parcel (samples sharing `key`).

    A parcel's label is its majority given label; `agreement` is the share of its pixels predicted (argmax of `p`)
    as that label; `minority` marks pixels whose given label differs from a strict majority (`parcel_minority`).
    A parcel is `flagged` whole when its agreement is below `threshold` and confident learning at the parcel level
    (each parcel's mean probabilities, per-class thresholds = mean parcel self-confidence) is sure: the suggested
    class's mean probability reaches its threshold while the declared one's is below its own, both classes are
    `trusted`, and per declared class at most as many parcels as the calibrated parcel-level confident joint
    estimates off its diagonal, at most `max_share` of the class's pixels and never all its parcels (lowest margin
    first). Parcels with fewer than `min_pixels` pixels, or whose label was unseen in training, are not judged.
    """
    n, k = p.shape
    out = {"agreement": np.full(n, np.nan), "flagged": np.zeros(n, bool), "suggestion": given.copy()}
    out["minority"] = np.zeros(n, bool)
    if not enabled:
        return out
    out["minority"], out["suggestion"] = parcel_minority(key, given, k, min_pixels)
    parcels = _parcels(key)
    label = np.array([out["suggestion"][idx[0]] for idx in parcels])
    mean_p = np.stack([p[idx].mean(axis=0) for idx in parcels])
    size = np.array([len(idx) for idx in parcels], np.float64)
    pred = p.argmax(axis=1)
    share = np.array([float((pred[idx] == c).mean()) for idx, c in zip(parcels, label, strict=True)])
    judged = np.array([len(idx) >= min_pixels and bool(valid[idx].all()) for idx in parcels])
    cl = confident_flags(label, mean_p, judged, "prune_by_noise_rate", trusted)
    own_low = mean_p[np.arange(len(parcels)), label] < cl["thresholds"][label]
    sug = cl["suggestion"]
    sug_high = mean_p[np.arange(len(parcels)), sug] >= cl["thresholds"][sug]
    sure = judged & (share < threshold) & cl["issue"] & own_low & sug_high
    sure = cap_per_class(sure, label, cl["margin"], max_share, size)
    for g, idx in enumerate(parcels):
        out["agreement"][idx] = share[g]
        if sure[g]:
            out["flagged"][idx] = True
            out["suggestion"][idx] = sug[g]
    return out


def _check_flags(flags: Any) -> xr.Dataset:
    need = {"label", "flagged", "suggestion", "issue", "field_flagged"}
    if not isinstance(flags, xr.Dataset) or not need <= set(flags.variables):
        have = sorted(str(v) for v in flags.variables) if isinstance(flags, xr.Dataset) else type(flags).__name__
        raise ValueError(f"flags must be find_issues(ds)'s Dataset (with {sorted(need)}), got {have}")
    return flags

"""The arithmetic of label cleaning (`eokit.cleaning`): confident learning and per-field agreement, NumPy only.

Confident learning (Northcutt, Jiang and Chuang 2021): the threshold of class j is the mean predicted
probability of j over the samples labelled j (its mean self-confidence); a sample's confidently likely class is
the most probable of the classes whose probability reaches their threshold; counting (given, likely) pairs gives
the confident joint C. Its off-diagonal entries are the label issues ("confident_joint"); "prune_by_noise_rate"
calibrates C to the class counts and, for each off-diagonal pair (i, j), flags that many samples labelled i
with the largest margin p_j - p_i. As in cleanlab, a sample whose most probable class is its given label is
never flagged.
"""

from __future__ import annotations

import numpy as np


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


def _prune_by_noise_rate(given: np.ndarray, p: np.ndarray, valid: np.ndarray, joint: np.ndarray) -> np.ndarray:
    """Return the flags of cleanlab's prune-by-noise-rate rule from the (uncalibrated) confident joint."""
    k = p.shape[1]
    counts = np.bincount(given[valid], minlength=k).astype(np.float64)
    rows = joint.sum(axis=1, keepdims=True).astype(np.float64)
    cal = np.divide(joint * counts[:, None], rows, out=np.zeros(joint.shape), where=rows > 0)
    issue = np.zeros(len(given), bool)
    for i in range(k):
        members = np.flatnonzero(valid & (given == i))
        budget = max(len(members) - 1, 0)  # a class is never emptied
        for j in range(k):
            n = min(int(round(cal[i, j])), budget) if i != j else 0
            if n > 0:
                gap = p[members, j] - p[members, i]
                top = members[np.argsort(-gap, kind="stable")[:n]]
                issue[top[p[top, j] > p[top, i]]] = True
    return issue


def confident_flags(given: np.ndarray, p: np.ndarray, valid: np.ndarray, method: str) -> dict[str, np.ndarray]:
    """Return {thresholds, confident_joint, issue, suggestion, margin} for class indices `given` and probabilities
    `p` (n, k); samples not `valid` (their class unseen in their fold) are never flagged."""
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
    return {"thresholds": t, "confident_joint": joint, "issue": issue, "suggestion": suggestion, "margin": margin}


def field_agreement(
    key: np.ndarray,
    given: np.ndarray,
    p: np.ndarray,
    valid: np.ndarray,
    threshold: float,
    min_pixels: int,
    enabled: bool,
) -> dict[str, np.ndarray]:
    """Return per sample {agreement, flagged, suggestion, minority} of its parcel (samples sharing `key`).

    A parcel's label is its majority given label; `agreement` is the share of its pixels predicted (argmax of `p`)
    as that label; `minority` marks pixels whose given label differs from it. A parcel is `flagged` whole when its
    agreement is below `threshold` and confident learning at the parcel level (each parcel's mean probabilities,
    per-class thresholds = mean parcel self-confidence) finds another class confidently likely; the suggestion is
    that class. Parcels with fewer than `min_pixels` pixels, or whose label was unseen in training, are not judged.
    """
    n, k = p.shape
    out = {"agreement": np.full(n, np.nan), "flagged": np.zeros(n, bool), "suggestion": given.copy()}
    out["minority"] = np.zeros(n, bool)
    if not enabled:
        return out
    order = np.argsort(key, kind="stable")
    parcels = np.split(order, np.flatnonzero(np.diff(key[order])) + 1)
    label = np.array([np.bincount(given[idx], minlength=k).argmax() for idx in parcels])
    mean_p = np.stack([p[idx].mean(axis=0) for idx in parcels])
    pred = p.argmax(axis=1)
    share = np.array([float((pred[idx] == c).mean()) for idx, c in zip(parcels, label, strict=True)])
    judged = np.array([len(idx) >= min_pixels and bool(valid[idx].all()) for idx in parcels])
    cl = confident_flags(label, mean_p, judged, "confident_joint")
    for g, idx in enumerate(parcels):
        out["agreement"][idx] = share[g]
        out["minority"][idx] = given[idx] != label[g]
        out["suggestion"][idx] = label[g]
        if judged[g] and share[g] < threshold and cl["issue"][g]:
            out["flagged"][idx] = True
            out["suggestion"][idx] = cl["suggestion"][g]
    return out

"""Class balance of a labelled training set: :func:`oversample` (minority classes repeated up to a target)
and :func:`class_counts` (samples per class before and after). Re-exported by :mod:`eokit.sampling`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def oversample(labels: Any, seed: int = 0, target: int | None = None) -> np.ndarray:
    """Return shuffled int64 indices into `labels` in which every class occurs `target` times (default: max).

    Every original index is kept once (when target >= its class count); minority classes are topped up by
    drawing their indices again with replacement.
    """
    y = np.asarray(labels)
    if y.ndim != 1 or y.size == 0:
        raise ValueError(f"oversample: labels must be a non-empty 1-D array, got shape {y.shape}")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        bad = int(np.flatnonzero(~np.isfinite(y))[0])
        raise ValueError(
            f"oversample: labels must be class ids, got {y[bad]} at position {bad} (an empty class "
            "cannot be oversampled); drop unlabelled samples first"
        )
    if target is not None and (isinstance(target, bool) or not float(target).is_integer()):
        raise ValueError(f"oversample: target must be an integer number of samples per class, got {target!r}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    n = int(counts.max()) if target is None else int(target)
    if n < 1:
        raise ValueError(f"oversample: target must be >= 1, got {target}")
    parts = []
    for c, count in zip(classes, counts, strict=True):
        idx = np.flatnonzero(y == c)
        if count >= n:
            parts.append(rng.choice(idx, size=n, replace=False) if count > n else idx)
        else:
            parts.append(np.concatenate([idx, rng.choice(idx, size=n - count, replace=True)]))
    out = np.concatenate(parts).astype("int64")
    rng.shuffle(out)
    return out


def class_counts(labels: Any, indices: Any = None) -> pd.DataFrame:
    """Return a pandas DataFrame of samples per class before and after oversampling (`indices` into labels)."""
    from eokit.schema import ICE_CLASSES

    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(f"class_counts: labels must be 1-D, got shape {y.shape}")
    classes = np.unique(y)
    before = [int((y == c).sum()) for c in classes]
    table = {"before": before}
    if indices is not None:
        idx = np.asarray(indices)
        if idx.size and idx.dtype.kind not in "iu":
            raise ValueError(f"class_counts: indices must be integer positions in [0, {y.size}), got dtype {idx.dtype}")
        if idx.size and (idx.min() < 0 or idx.max() >= y.size):
            raise ValueError(f"class_counts: indices must lie in [0, {y.size}), got {idx.min()}..{idx.max()}")
        table["after oversampling"] = [int((y[idx] == c).sum()) for c in classes]
    names = [ICE_CLASSES[int(c)] if 0 <= int(c) < len(ICE_CLASSES) else str(c) for c in classes]
    df = pd.DataFrame(table, index=pd.Index(names, name="class"))
    df.insert(0, "label", classes.astype("int64"))
    return df

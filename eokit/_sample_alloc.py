"""Sample counts for :func:`eokit.sampling.make_training_set`: the argument checks, the per-class allocation
(``proportional``, ``balanced``, ``capped``; largest remainder, minimum and cap per class) and the samples to take
per class once the blocks' pixels are counted (with the report rows and the shortfall warnings).
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import numpy as np

from eokit._checks import is_int

STRATEGIES = ("proportional", "balanced", "capped")


def _largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    if total <= 0 or weights.sum() <= 0:
        return np.zeros(len(weights), dtype=np.int64)
    raw = weights / weights.sum() * total
    out = np.floor(raw).astype(np.int64)
    rest = total - out.sum()
    order = np.argsort(-(raw - out), kind="stable")
    out[order[:rest]] += 1
    return out


_is_int = is_int  # the one whole-number check (eokit._checks); sampling re-exports it


def _check_allocation(samples: Any, strategy: Any, min_per_class: Any, cap_per_class: Any) -> None:
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
    if not _is_int(samples) or samples <= 0:
        raise ValueError(f"samples must be a positive integer, got {samples!r}")
    if not _is_int(min_per_class) or min_per_class < 0:
        raise ValueError(f"min_per_class must be an integer >= 0, got {min_per_class!r}")
    if cap_per_class is not None and (not _is_int(cap_per_class) or cap_per_class < 1):
        raise ValueError(f"cap_per_class must be an integer >= 1 or None, got {cap_per_class!r}")
    if strategy == "capped" and cap_per_class is None:
        raise ValueError("strategy='capped' needs cap_per_class (the most samples any class may get)")


def allocate(
    priors: Mapping[int, float],
    samples: int,
    strategy: str = "proportional",
    min_per_class: int = 0,
    cap_per_class: int | None = None,
) -> dict[int, int]:
    """Return the number of samples asked per class id for the given class priors (pixel shares)."""
    _check_allocation(samples, strategy, min_per_class, cap_per_class)
    ids = sorted(priors)
    w = np.array([priors[c] for c in ids], dtype=float)
    present = w > 0
    if strategy == "balanced":
        n = _largest_remainder(present.astype(float), samples)
    else:
        n = _largest_remainder(w, samples)
    if strategy == "capped":
        # cap, then give what the capped classes free up to the others in proportion to their priors
        assert cap_per_class is not None
        for _ in range(len(ids)):
            over = n > cap_per_class
            if not over.any():
                break
            freed = int((n[over] - cap_per_class).sum())
            n[over] = cap_per_class
            room = present & (n < cap_per_class)
            if not room.any():
                break
            n += _largest_remainder(np.where(room, w, 0.0), freed)
    n = np.where(present, np.maximum(n, min_per_class), 0)
    if cap_per_class is not None:
        n = np.minimum(n, cap_per_class)
    return {c: int(k) for c, k in zip(ids, n, strict=True)}


def _check_args(
    samples: Any,
    strategy: Any,
    seed: Any,
    erosion: Any,
    min_per_class: Any,
    cap_per_class: Any,
    max_per_field: Any,
    max_cloud_fraction: Any,
) -> None:
    _check_allocation(samples, strategy, min_per_class, cap_per_class)
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    if not _is_int(erosion) or erosion < 0:
        raise ValueError(f"erosion must be an integer >= 0 (pixels), got {erosion!r}")
    if max_per_field is not None and (not _is_int(max_per_field) or max_per_field < 1):
        raise ValueError(f"max_per_field must be an integer >= 1 or None, got {max_per_field!r}")
    if (
        not isinstance(max_cloud_fraction, (int, float, np.integer, np.floating))
        or isinstance(max_cloud_fraction, bool)
        or not 0 <= max_cloud_fraction <= 1
    ):
        raise ValueError(f"max_cloud_fraction must be a number within [0, 1], got {max_cloud_fraction!r}")


def _takes(
    counted: dict,
    names: dict[int, str],
    touching: set[int],
    samples: int,
    strategy: str,
    min_per_class: int,
    cap_per_class: int | None,
    max_per_field: int | None,
    erosion: int,
    max_cloud_fraction: float,
    where: str,
) -> tuple[dict[int, int], list, list]:
    """Samples to take per class (asked, cut to the eligible pixels), the report rows and the warnings."""
    prior_px: dict[int, int] = defaultdict(int)
    elig: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for pr, el in counted.values():
        for k, v in pr.items():
            prior_px[k] += v
        for (lab, fid), v in el.items():
            elig[lab][fid] += v
    total_px = sum(prior_px.values())
    if total_px == 0:
        raise ValueError(
            f"the polygons of {where} cover no pixel centre of the cube (classes "
            f"{sorted(names.get(k, str(k)) for k in touching)}); expected polygons of at least "
            "one pixel"
        )
    notes: list[str] = []
    for lab in sorted(touching - set(prior_px)):
        notes.append(
            f"class {names.get(lab, str(lab))!r} (id {lab}): its polygons reach the cube but cover no "
            "pixel centre (smaller than a pixel?); no samples of it"
        )
        warnings.warn(notes[-1], stacklevel=4)  # the caller of make_training_set
    for lab in names:
        prior_px.setdefault(lab, 0)
    priors = {lab: prior_px[lab] / total_px for lab in sorted(prior_px)}
    asked = allocate(priors, samples, strategy, min_per_class, cap_per_class)
    need, report = {}, []
    for lab in sorted(asked):
        n_f = np.array(list(elig.get(lab, {}).values()), dtype=np.int64)
        available = int((np.minimum(n_f, max_per_field) if max_per_field else n_f).sum())
        need[lab] = min(asked[lab], available)
        if need[lab] < asked[lab]:
            notes.append(
                f"class {names.get(lab, str(lab))!r} (id {lab}): {asked[lab]} samples asked, only "
                f"{available} eligible pixels (erosion {erosion}, max_cloud_fraction {max_cloud_fraction}"
                + (f", max_per_field {max_per_field}" if max_per_field else "")
                + ")"
            )
            warnings.warn(notes[-1], stacklevel=4)
        report.append(
            {
                "label": lab,
                "label_name": names.get(lab, str(lab)),
                "pixels": prior_px[lab],
                "prior": priors[lab],
                "asked": asked[lab],
                "available": available,
                "sampled": need[lab],
            }
        )
    if not any(need.values()):
        raise ValueError(
            "no eligible pixel to sample: every labelled pixel is on a field boundary "
            f"(erosion {erosion}) or cloudier than max_cloud_fraction {max_cloud_fraction}"
        )
    return need, report, notes

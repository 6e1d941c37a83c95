"""SAR scene statistics: standardising a scene with saved per-channel statistics, combining and storing them."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from eokit._io import check_target, write_json_atomic
from eokit.schema import SAR_CHANNELS


def standardize_scene(scene: xr.Dataset, stats: Mapping[str, Any]) -> xr.Dataset:
    """Return the scene with HH, HV and IA rescaled by the statistics' mean and std."""
    _check_stats(stats)
    out = scene.copy()
    for var in SAR_CHANNELS:
        std = float(stats["std"][var]) or 1.0
        attrs = scene[var].attrs
        out[var] = ((scene[var] - float(stats["mean"][var])) / std).astype(np.float32)
        out[var].attrs = {**attrs, "standardized": 1}
    return out


def _check_stats(stats: Mapping[str, Any]) -> None:
    for key in ("mean", "std"):
        if key not in stats or not all(v in stats[key] for v in SAR_CHANNELS):
            raise ValueError(f"SAR statistics need {key!r} for {SAR_CHANNELS}; got {dict(stats).get(key)}")


def combine_stats(stats: list[Mapping[str, Any]], weights: list[float] | None = None) -> dict[str, Any]:
    """Return statistics pooled over several scenes (weighted by pixel counts when given)."""
    if not stats:
        raise ValueError("combine_stats needs at least one statistics dict")
    w = np.asarray(weights if weights is not None else [1.0] * len(stats), dtype=float)
    out = dict(stats[0])
    out["mean"], out["std"] = {}, {}
    for v in SAR_CHANNELS:
        m = np.array([s["mean"][v] for s in stats])
        sd = np.array([s["std"][v] for s in stats])
        mean = float(np.sum(w * m) / w.sum())
        out["mean"][v] = mean
        out["std"][v] = float(np.sqrt(np.sum(w * (sd**2 + (m - mean) ** 2)) / w.sum()))
    out["scenes"] = [n for s in stats for n in s.get("scenes", [])]
    return out


def save_stats(stats: Mapping[str, Any], path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Write preprocessing statistics as JSON (temp file then rename) and return the path."""
    p = check_target(path, overwrite)
    _check_stats(stats)
    return write_json_atomic(stats, p, overwrite=overwrite)


def load_stats(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Return statistics saved by `save_stats`."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"SAR statistics file {p} does not exist")
    try:
        stats = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p} is not valid JSON: {exc}") from exc
    _check_stats(stats)
    return stats

"""Model inputs prepared exactly as training prepared them, shared by training, maps and evaluation.

`prepare_inputs` normalises time series (reflectance, flags, dates) into the model's {"x", "mask", "doy"}
inputs, padded to the card's `n_timesteps`; `prepare_patches` standardises image patches per channel. Both take
the statistics from a model card (`eokit.card`, which re-exports them). Plain NumPy: no TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from eokit._checks import did_you_mean
from eokit.schema import FLAG_CLEAR, FLAG_HANDLINGS, FLAG_NODATA, PATCH_STAT_PERCENTILES
from eokit.timeseries import _days, _fill_gaps

__all__ = ["prepare_inputs", "prepare_patches"]


def _doy(date: np.ndarray) -> np.ndarray:
    d = np.asarray(date).astype("datetime64[D]")
    nat = np.isnat(d)
    start = d.astype("datetime64[Y]").astype("datetime64[D]")
    out = (d - start).astype("timedelta64[D]").astype(np.int64) + 1
    out[nat] = 0
    return out.astype(np.float32)


def _check_flag_handling(flag_handling: Any) -> None:
    """Refuse a flag handling other than `eokit.schema.FLAG_HANDLINGS`, naming them and the closest one."""
    if flag_handling not in FLAG_HANDLINGS:
        raise ValueError(
            f"flag_handling must be one of {', '.join(map(repr, FLAG_HANDLINGS))}, got {flag_handling!r}"
            f"{did_you_mean(str(flag_handling), list(FLAG_HANDLINGS))}"
        )


def _taken_as_is(flag: np.ndarray, flag_handling: str) -> np.ndarray:
    """(sample, time) True where the value is used as observed: every acquisition under "gapfill", else the
    clear ones (the normalisation statistics and the model inputs alike); refuses an unknown mode."""
    _check_flag_handling(flag_handling)
    return flag != FLAG_NODATA if flag_handling == "gapfill" else flag == FLAG_CLEAR


def _prepare_ts(
    reflectance: np.ndarray,
    flag: np.ndarray,
    date: np.ndarray,
    mean: np.ndarray,
    std: np.ndarray,
    n_timesteps: int,
    flag_handling: str,
) -> dict[str, np.ndarray]:
    refl = np.asarray(reflectance, dtype=np.float32)
    flag = np.asarray(flag)
    t = refl.shape[1]
    if t > n_timesteps:
        raise ValueError(f"data has {t} time steps but the model takes at most {n_timesteps}")
    valid = _taken_as_is(flag, flag_handling) & np.isfinite(refl).all(axis=-1)
    if flag_handling == "interpolate":
        days = _days(np.asarray(date))
        gaps = (flag != FLAG_NODATA) & ~np.isnan(days) & ~valid
        filled_refl, filled = _fill_gaps(refl, np.nan_to_num(days), valid, gaps)
        refl, valid = filled_refl.astype(np.float32), valid | filled
    x = (refl - mean.astype(np.float32)) / std.astype(np.float32)
    x = np.where(valid[..., None], x, np.float32(0.0)).astype(np.float32)
    doy = _doy(date)
    mask = valid.astype(np.float32)
    if t < n_timesteps:
        pad = n_timesteps - t
        x = np.pad(x, ((0, 0), (0, pad), (0, 0)))
        mask = np.pad(mask, ((0, 0), (0, pad)))
        doy = np.pad(doy, ((0, 0), (0, pad)))
    return {"x": x, "mask": mask, "doy": doy}


def prepare_inputs(reflectance: Any, flag: Any, date: Any, card: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Return the normalised model inputs {"x" (N,T,C), "mask" (N,T), "doy" (N,T)} float32, as in training.

    `reflectance` (N, T, C) in the card's band order, `flag` (N, T) in eokit flag codes, `date` (N, T)
    datetime64 (NaT where padded). Shorter series are padded at the end to the model's `n_timesteps`.
    """
    refl = np.asarray(reflectance)
    if refl.ndim != 3:
        raise ValueError(f"reflectance must be (sample, time, band), got shape {refl.shape}")
    bands = card["bands"]
    if refl.shape[-1] != len(bands):
        raise ValueError(f"model {card.get('name')!r} takes {len(bands)} bands {bands}, the data has {refl.shape[-1]}")
    flag = np.asarray(flag)
    date = np.asarray(date)
    if flag.shape != refl.shape[:2] or date.shape != refl.shape[:2]:
        raise ValueError(f"flag {flag.shape} and date {date.shape} must be (sample, time) = {refl.shape[:2]}")
    norm = card["normalisation"]
    return _prepare_ts(
        refl,
        flag,
        date,
        np.asarray(norm["mean"]),
        np.asarray(norm["std"]),
        int(card["n_timesteps"]),
        card.get("flag_handling", "mask"),
    )


def prepare_patches(images: Any, card: Mapping[str, Any]) -> np.ndarray:
    """Return patches (N, P, P, C) normalised per channel with the card's statistics, NaN -> 0, float32."""
    img = np.asarray(images, dtype=np.float32)
    if img.ndim == 3:
        img = img[None]
    if img.ndim != 4:
        raise ValueError(f"patches must be (patch, row, col, channel), got shape {img.shape}")
    bands = card["bands"]
    if img.shape[-1] != len(bands):
        raise ValueError(
            f"model {card.get('name')!r} takes {len(bands)} channels {bands}, the data has {img.shape[-1]}"
        )
    p = card.get("patch_size")
    if p is not None and tuple(img.shape[1:3]) != (int(p), int(p)):
        raise ValueError(f"model {card.get('name')!r} takes {p}x{p} patches, got {img.shape[1]}x{img.shape[2]}")
    norm = card["normalisation"]
    x = (img - np.asarray(norm["mean"], np.float32)) / np.asarray(norm["std"], np.float32)
    return np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def patch_statistics(images: Any) -> np.ndarray:
    """Return per-channel mean, std and PATCH_STAT_PERCENTILES of patches (N, P, P, C): (N, 7 C), NaN ignored."""
    img = np.asarray(images, dtype=np.float32)
    if img.ndim != 4:
        raise ValueError(f"patches must be (patch, row, col, channel), got shape {img.shape}")
    flat = img.reshape(img.shape[0], -1, img.shape[3])
    parts = [np.nanmean(flat, axis=1), np.nanstd(flat, axis=1)]
    parts += list(np.nanpercentile(flat, PATCH_STAT_PERCENTILES, axis=1, method="nearest"))
    return np.concatenate(parts, axis=1).astype(np.float32)

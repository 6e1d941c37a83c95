"""Time-series maps (`predict`, a Sentinel-2 cube) and patch maps (`predict_patches`, a SAR scene), chunk by chunk."""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import partial
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from eokit.card import class_names as _class_names
from eokit.card import prepare_inputs, prepare_patches, select_bands
from eokit.maps._blocks import NODATA_CLASS, _check_scheduler, _crs, _gcps, _map_dataset, _maybe_compute
from eokit.maps._runtime import _register_model, _run_model
from eokit.schema import FLAG_CLEAR, FLAG_NODATA


# ------------------------------------------------------------------------------------------------
# time-series maps
# ------------------------------------------------------------------------------------------------
def _check_cube(cube: xr.Dataset, card: dict) -> tuple[xr.DataArray, xr.DataArray]:
    """Return the cube's reflectance (bands in card order) and flag; raise ValueError on a mismatch."""
    name = card.get("name", "?")
    for var in ("reflectance", "flag"):
        if var not in cube.variables:
            raise ValueError(
                f"cube has no {var!r} variable (found {sorted(map(str, cube.data_vars))}); open it with eokit.cube.open"
            )
    refl = cube["reflectance"]
    if set(refl.dims) != {"time", "band", "y", "x"}:
        raise ValueError(f"cube 'reflectance' has dims {refl.dims}, expected ('time', 'band', 'y', 'x')")
    cube_bands = [str(b) for b in cube["band"].values]
    want = [cube_bands[i] for i in select_bands(cube_bands, card, "the cube")]
    n_t = cube.sizes["time"]
    cube_dates = pd.DatetimeIndex(cube["time"].values)
    fixed = card.get("dates")
    if fixed:
        card_dates = pd.DatetimeIndex(pd.to_datetime(list(fixed)))
        if len(card_dates) != n_t or not (card_dates.normalize() == cube_dates.normalize()).all():
            raise ValueError(
                f"cube time steps ({n_t}: {_fmt_dates(cube_dates)}) differ from the fixed dates of model "
                f"{name!r} ({len(card_dates)}: {_fmt_dates(card_dates)})"
            )
    max_t = card.get("n_timesteps")
    if max_t is not None and n_t > int(max_t):
        raise ValueError(
            f"cube has {n_t} time steps ({_fmt_dates(cube_dates)}) but model {name!r} takes at most n_timesteps={max_t}"
        )
    refl = refl.sel(band=want).transpose("time", "band", "y", "x")
    flag = cube["flag"].transpose("time", "y", "x")
    return refl, flag


def _fmt_dates(d: pd.DatetimeIndex) -> str:
    """Return a short text of a date list: first..last."""
    if len(d) == 0:
        return "none"
    return f"{d[0].date()}..{d[-1].date()}"


def _predict_ts_block(
    refl: np.ndarray,
    flag: np.ndarray,
    *,
    key: str,
    card: dict,
    dates: np.ndarray,
    batch_size: int,
    jit: bool | None = None,
) -> np.ndarray:
    """Return (2, h, w) float32: class (255 nodata) and confidence of one cube chunk."""
    n_t, n_b, h, w = refl.shape
    pix = np.moveaxis(refl.reshape(n_t, n_b, h * w), 2, 0)  # (pixel, time, band)
    flg = np.ascontiguousarray(flag.reshape(n_t, h * w).T)  # (pixel, time)
    if pix.dtype.kind == "f":
        flg = np.where(np.isfinite(pix).all(axis=2), flg, FLAG_NODATA).astype(np.uint8)
    out = np.full((2, h * w), np.nan, dtype=np.float32)
    out[0] = NODATA_CLASS
    idx = np.flatnonzero((flg == FLAG_CLEAR).any(axis=1))  # pixels with at least one clear observation
    for s in range(0, len(idx), batch_size):
        sel = idx[s : s + batch_size]
        date = np.broadcast_to(dates, (len(sel), n_t))
        inputs = prepare_inputs(pix[sel], flg[sel], date, card)
        probs = _run_model(key, inputs, batch_size, jit)
        out[0, sel] = probs.argmax(axis=1)
        out[1, sel] = probs.max(axis=1)
    return out.reshape(2, h, w)


def _check_map_args(
    data: Any, what: str, chunks: Mapping[str, int] | None, batch_size: Any, scheduler: Any, default_chunk: int
) -> tuple[int, int]:
    """Return the (y, x) chunk sizes after refusing a non-Dataset, bad chunks, batch size or scheduler."""
    if not isinstance(data, xr.Dataset):
        got = type(data).__name__
        raise ValueError(f"{what} must be an xarray.Dataset, got {got}")  # noqa: TRY004
    if _crs(data) is None and _gcps(data) is None:
        raise ValueError(
            f"{what} {data.attrs.get('scene', '')!r} has no CRS (nor ground control points): the map "
            "could not be placed; expected ds.rio.crs as eokit.cube.open / eokit.sar.open give, or "
            "set one with ds.rio.write_crs(...)"
        )
    chunks = dict(chunks or {})
    unknown = sorted(str(k) for k in chunks if k not in ("y", "x"))
    if unknown:
        raise ValueError(
            f"chunks keys {unknown} are not map dimensions; expected 'y' and/or 'x', e.g. {{'y': 256, 'x': 256}}"
        )
    sizes = []
    for dim in ("y", "x"):
        v = chunks.get(dim, default_chunk)
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
            raise ValueError(f"chunks[{dim!r}] must be an integer >= 1 (pixels per chunk), got {v!r}")
        sizes.append(int(v))
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}")
    _check_scheduler(scheduler)
    return sizes[0], sizes[1]


def predict(
    model_or_path: Any,
    cube: xr.Dataset,
    chunks: Mapping[str, int] | None = None,
    batch_size: int = 4096,
    card: dict | None = None,
    scheduler: Any = None,
    progress: bool = True,
    compute: bool = True,
    jit_compile: bool | None = None,
) -> xr.Dataset:
    """Return a Dataset with `class` (uint8, 255 nodata) and `confidence` (float32) over the cube's grid.

    `model_or_path` is a saved `model.keras` (card read beside it) or a keras.Model with `card`. The cube's
    bands are selected and ordered as the card's, time steps padded to its `n_timesteps`, flags handled as
    the card says (all via `eokit.card.prepare_inputs`). Pixels without any clear observation get 255.
    `scheduler`: None/"threads" (local threads), "sync", a dask.distributed address or Client (not "processes":
    for worker processes use a distributed Client, e.g. on a LocalCluster).
    `compute=False` returns the lazy map (write it with `write_cog`, memory bounded by the chunk size).
    `jit_compile`: run the model XLA-compiled (None: on CPU only; falls back to Keras if XLA fails).
    """
    cy, cx = _check_map_args(cube, "cube", chunks, batch_size, scheduler, 256)
    key, card = _register_model(model_or_path, card, scheduler, "timeseries")
    refl, flag = _check_cube(cube, card)
    r = refl.data if isinstance(refl.data, da.Array) else da.from_array(refl.data)
    f = flag.data if isinstance(flag.data, da.Array) else da.from_array(flag.data)
    r = r.rechunk({0: -1, 1: -1, 2: cy, 3: cx})
    f = f.rechunk({0: -1, 1: cy, 2: cx})
    f = f.astype(np.uint8) if f.dtype != np.uint8 else f
    dates = np.asarray(cube["time"].values).astype("datetime64[ns]")
    func = partial(_predict_ts_block, key=key, card=card, dates=dates, batch_size=int(batch_size), jit=jit_compile)
    stack = da.blockwise(
        func,
        "kyx",
        r,
        "tbyx",
        f,
        "tyx",
        new_axes={"k": 2},
        dtype=np.float32,
        concatenate=True,
        meta=np.empty((0, 0, 0), dtype=np.float32),
        name="eokit-predict-" + dask.base.tokenize(key, card, r.name, f.name, batch_size),
    )
    ds = _map_dataset(stack, cube, card, probabilities=False)
    ds.attrs.update(model=str(card.get("name", "")), kind="timeseries")
    return _maybe_compute(ds, compute, scheduler, progress)


# ------------------------------------------------------------------------------------------------
# patch (sea-ice) maps
# ------------------------------------------------------------------------------------------------
def _patch_geometry(patch: int, stride: int, mode: str) -> tuple[int, int]:
    """Return (halo, window offset relative to the stride block / pixel) for the patch layout."""
    if mode == "sliding":
        off = (stride - patch) // 2  # window origin relative to its stride block's origin
        return max(-off, off + patch - 1, 0), off
    off = -(patch // 2)
    return max(-off, off + patch - 1, 0), off


def _predict_patch_block(
    block: np.ndarray,
    *,
    key: str,
    card: dict,
    patch: int,
    stride: int,
    mode: str,
    halo: int,
    off: int,
    n_classes: int,
    batch_size: int,
    jit: bool | None = None,
) -> np.ndarray:
    """Return (1 + n_classes, h, w) float32: class and per-class probabilities of one halo'd scene chunk."""
    hp, wp, _ = block.shape
    h, w = hp - 2 * halo, wp - 2 * halo
    out = np.zeros((1 + n_classes, h, w), dtype=np.float32)
    if h <= 0 or w <= 0:
        return out
    view = np.lib.stride_tricks.sliding_window_view(block, (patch, patch), axis=(0, 1))  # (r, c, C, P, P)
    if mode == "sliding":
        rows = np.arange(0, h, stride)
        cols = np.arange(0, w, stride)
    else:
        rows, cols = np.arange(h), np.arange(w)
    grid_r, grid_c = np.meshgrid(rows, cols, indexing="ij")
    rr, cc = grid_r.ravel(), grid_c.ravel()
    probs = np.empty((len(rr), n_classes), dtype=np.float32)
    for s in range(0, len(rr), batch_size):
        r0 = rr[s : s + batch_size] + halo + off
        c0 = cc[s : s + batch_size] + halo + off
        images = np.ascontiguousarray(view[r0, c0].transpose(0, 2, 3, 1), dtype=np.float32)
        images = prepare_patches(images, card)  # NaN -> 0 (the channel mean)
        probs[s : s + batch_size] = _run_model(key, images, batch_size, jit)
    if mode == "sliding":
        grid = probs.reshape(len(rows), len(cols), n_classes)
        grid = np.repeat(np.repeat(grid, stride, axis=0), stride, axis=1)[:h, :w]
        out[1:] = np.moveaxis(grid, 2, 0)
    else:
        out[1:] = np.moveaxis(probs.reshape(h, w, n_classes), 2, 0)
    out[0] = out[1:].argmax(axis=0)
    return out


def predict_patches(
    model_or_path: Any,
    scene: xr.Dataset,
    card: dict | None = None,
    stride: int | None = None,
    mode: str = "sliding",
    chunks: Mapping[str, int] | None = None,
    batch_size: int = 1024,
    scheduler: Any = None,
    progress: bool = True,
    compute: bool = True,
    jit_compile: bool | None = None,
) -> xr.Dataset:
    """Return a Dataset with `class` (uint8, 255 nodata), `confidence` and `probability` (label, y, x).

    mode="sliding": a patch every `stride` pixels (default: the patch size), its class painted on the
    stride x stride block at the window's centre; mode="centred": one patch centred on every pixel.
    Channels come from the card's `bands` (default HH, HV, IA), normalised by `eokit.card.prepare_patches`.
    Pixels that are non-finite in any channel, `valid == 0` or `land == 1` get 255. Chunks overlap by a halo
    (`dask.array.map_overlap`, reflected at the scene edge) so the map has no seams. `jit_compile` as in
    `predict`.
    """
    from eokit.schema import SAR_CHANNELS

    if mode not in ("sliding", "centred"):
        raise ValueError(f"mode must be 'sliding' or 'centred', got {mode!r}")
    cy, cx = _check_map_args(scene, "scene", chunks, batch_size, scheduler, 512)
    key, card = _register_model(model_or_path, card, scheduler, "patch")
    name = card.get("name", "?")
    patch = int(card["patch_size"])
    stride = _check_stride(patch if stride is None else stride)
    channels = [str(c) for c in (card.get("bands") or SAR_CHANNELS)]
    select_bands(
        sorted(map(str, scene.data_vars)), {**card, "bands": channels}, f"scene {scene.attrs.get('scene', '')!r}"
    )
    n_classes = len(_class_names(card))
    if mode == "sliding":  # chunk edges on the stride grid, so every chunk paints whole blocks
        cy, cx = max(stride, cy // stride * stride), max(stride, cx // stride * stride)
    halo, off = _patch_geometry(patch, stride, mode)
    layers = [_channel(scene[c]) for c in channels]
    stacked = da.stack(layers, axis=-1).rechunk({0: cy, 1: cx, 2: -1})
    ny, nx = stacked.shape[:2]
    if min(ny, nx) < halo + 1:
        raise ValueError(
            f"scene {scene.attrs.get('scene', '')!r} is {ny} x {nx} pixels, smaller than the "
            f"{patch} x {patch} patches of model {name!r}"
        )
    stacked = _fit_halo(stacked, halo, stride, mode)
    func = partial(
        _predict_patch_block,
        key=key,
        card=card,
        patch=patch,
        stride=stride,
        mode=mode,
        halo=halo,
        off=off,
        n_classes=n_classes,
        batch_size=int(batch_size),
        jit=jit_compile,
    )

    out = da.map_overlap(
        func,
        stacked,
        depth={0: halo, 1: halo, 2: 0},
        boundary="reflect",
        trim=False,
        chunks=((1 + n_classes,), stacked.chunks[0], stacked.chunks[1]),
        drop_axis=2,
        new_axis=0,
        dtype=np.float32,
        meta=np.empty((0, 0, 0), dtype=np.float32),
    )
    valid = _valid_pixels(scene, layers).rechunk(out.chunks[1:])
    cls = da.where(valid, out[0], NODATA_CLASS)
    prob = da.where(valid[None], out[1:], np.nan)
    stack = da.concatenate([cls[None], prob], axis=0)
    ds = _map_dataset(stack, scene, card, probabilities=True)
    ds.attrs.update(model=str(name), kind="patch", mode=mode, stride=stride, patch_size=patch)
    return _maybe_compute(ds, compute, scheduler, progress)


def _check_stride(stride: Any) -> int:
    """Return the stride as an int; ValueError unless it is an integer >= 1."""
    if not isinstance(stride, (int, np.integer)) or isinstance(stride, bool) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1 (pixels between patches), got {stride!r}")
    return int(stride)


def _channel(var: xr.DataArray) -> da.Array:
    """Return one scene channel as a float32 dask array (y, x)."""
    v = var.transpose("y", "x").data
    return (v if isinstance(v, da.Array) else da.from_array(v)).astype(np.float32)


def _fit_halo(stacked: da.Array, halo: int, stride: int, mode: str) -> da.Array:
    """Return `stacked` with its last chunks merged where smaller than the halo needs (keeping the stride grid)."""
    min_chunk = halo if mode == "centred" else math.ceil(halo / stride) * stride
    if min(stacked.chunks[0][-1], stacked.chunks[1][-1]) < min_chunk:
        stacked = stacked.rechunk(
            {0: _merge_last(stacked.chunks[0], min_chunk), 1: _merge_last(stacked.chunks[1], min_chunk)}
        )
    return stacked


def _valid_pixels(scene: xr.Dataset, layers: list[da.Array]) -> da.Array:
    """Return the pixels to map: finite in every channel, `valid != 0` and `land == 0` where the scene has them."""
    valid = da.stack([da.isfinite(x) for x in layers], axis=0).all(axis=0)
    if "valid" in scene.variables:
        valid = valid & (_dask(scene["valid"]) != 0)
    if "land" in scene.variables:
        valid = valid & (_dask(scene["land"]) == 0)
    return valid


def _merge_last(chunks: tuple[int, ...], minimum: int) -> tuple[int, ...]:
    """Return chunk sizes with a too-small last chunk merged into the previous one."""
    c = list(chunks)
    if len(c) > 1 and c[-1] < minimum:
        last = c.pop()
        c[-1] += last
    return tuple(c)


def _dask(v: xr.DataArray) -> da.Array:
    """Return the (y, x) data of `v` as a dask array."""
    d = v.transpose("y", "x").data
    return d if isinstance(d, da.Array) else da.from_array(d)

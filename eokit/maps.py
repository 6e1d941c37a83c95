"""Wall-to-wall maps: trained eokit models run over whole image cubes and SAR scenes, chunk by chunk with dask.

`predict` maps a time-series model (LSTM, TempCNN, L-TAE) over a Sentinel-2 cube (`eokit.cube.open`),
`predict_patches` maps a patch model (CNN, VGG-16) over a SAR scene (`eokit.sar.open`) with a sliding window
or a centred patch per pixel. Both build one lazy dask array whose blocks each hold every time step and band
of one spatial chunk, so memory is bounded by the chunk size whatever the tile size. The Keras model is loaded
once per worker process (cached by path) and never shipped inside tasks; preprocessing is the training
pipeline's own (`eokit.card.prepare_inputs` / `prepare_patches`), so maps see exactly what training saw.

`write_cog` streams the blocks into tiled GeoTIFFs and converts them with GDAL's COG driver (overviews,
deflate, a colour table from the class names); `boundaries` and `boundaries_to_vector` derive crop-field
boundaries (class edges and, when given, parcel outlines) as a raster and as GeoPackage vectors.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from eokit import _dask as _scheduling
from eokit._io import atomic_output, check_target, write_gpkg
from eokit.card import check_card, load_model, prepare_inputs, prepare_patches, save_model, select_bands
from eokit.card import class_names as _class_names
from eokit.schema import FLAG_CLEAR, FLAG_NODATA

#: Class value of pixels without a prediction (no clear observation, outside the scene, masked).
NODATA_CLASS = 255
#: Boundary raster codes (bit flags).
BOUNDARY_CLASS_EDGE, BOUNDARY_PARCEL = 1, 2

_MODELS: dict[str, Any] = {}
_MODELS_LOCK = threading.Lock()
_RUN_LOCKS: dict[str, threading.Lock] = {}
_CARDS: dict[str, dict] = {}
_FNS: dict[str, Any] = {}
_SAVED: dict[int, tuple[Any, str]] = {}


# ------------------------------------------------------------------------------------------------
# models and cards
# ------------------------------------------------------------------------------------------------
def _is_distributed(scheduler: Any) -> bool:
    """Return True when `scheduler` names a dask.distributed scheduler (address or Client)."""
    return _scheduling.is_client(scheduler) or _scheduling.is_address(scheduler)


def _register_model(model_or_path: Any, card: dict | None, scheduler: Any, kind: str) -> tuple[str, dict]:
    """Return (model key, card checked against the model and `kind`): a path key or an in-process object key."""
    key, card = _register_unchecked(model_or_path, card, scheduler)
    where = f"model card of {model_or_path}" if isinstance(model_or_path, (str, os.PathLike)) else "card="
    with _MODELS_LOCK:
        model = _MODELS.get(key, _SAVED.get(id(model_or_path), (model_or_path,))[0])
    return key, check_card(model, card, where, kind=kind)


def _register_unchecked(model_or_path: Any, card: dict | None, scheduler: Any) -> tuple[str, dict]:
    """Return (model key, card): a path key workers load themselves, or an in-process object key."""
    if isinstance(model_or_path, (str, os.PathLike)):
        path = Path(model_or_path).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"model file {path} does not exist")
        # cached per file version: a retrained model saved under the same name is loaded afresh
        key = f"path:{path.resolve()}|{path.stat().st_mtime_ns}"
        with _MODELS_LOCK:
            loaded = _MODELS.get(key)
            if loaded is None or card is None:
                model, file_card = load_model(path)  # checks the card; local workers reuse this copy
                _MODELS[key] = model
                _CARDS[key] = file_card
        return key, (card if card is not None else _CARDS[key])
    if card is None:
        raise ValueError(
            "a keras.Model object was given without its model card: pass card=... (the JSON written beside "
            "model.keras) or give the path of the saved model"
        )
    if _is_distributed(scheduler):
        # Workers load models by path: save once (per model object) to a temporary folder that local
        # workers can read and that is removed when this process exits.
        import atexit
        import shutil

        with _MODELS_LOCK:
            saved = _SAVED.get(id(model_or_path))
        if saved is None or saved[0] is not model_or_path:
            folder = tempfile.mkdtemp(prefix="eokit-maps-")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            tmp = save_model(model_or_path, card, Path(folder) / "model.keras")
            saved = (model_or_path, f"path:{tmp}|{tmp.stat().st_mtime_ns}")
            with _MODELS_LOCK:
                _SAVED[id(model_or_path)] = saved
        return saved[1], card
    key = f"obj:{id(model_or_path)}"
    with _MODELS_LOCK:
        _MODELS[key] = model_or_path
    return key, card


def _get_model(key: str) -> Any:
    """Return the Keras model for `key`, loading it once per process."""
    with _MODELS_LOCK:
        if key not in _MODELS:
            if not key.startswith("path:"):
                raise RuntimeError(f"model {key} is not registered in this process (pass a saved model path)")
            _MODELS[key] = load_model(key[5:].rsplit("|", 1)[0])[0]
        _RUN_LOCKS.setdefault(key, threading.Lock())
        return _MODELS[key]


def _bucket(n: int, batch_size: int) -> int:
    """Return the padded batch length for `n` rows: batch_size/16, batch_size/4 or batch_size (few shapes)."""
    for size in sorted({max(1, batch_size // 16), max(1, batch_size // 4), batch_size}):
        if n <= size:
            return size
    return batch_size


def _pad_rows(x: Any, size: int) -> Any:
    """Return `x` (array or dict of arrays) padded with zeros along axis 0 to `size` rows."""
    if isinstance(x, Mapping):
        return {k: _pad_rows(v, size) for k, v in x.items()}
    x = np.asarray(x)
    if len(x) == size:
        return x
    pad = np.zeros((size - len(x),) + x.shape[1:], dtype=x.dtype)
    return np.concatenate([x, pad])


@lru_cache(maxsize=1)
def _auto_jit() -> bool:
    """Return True where XLA compilation pays (CPU: about 2x on the LSTM); on a GPU keep cuDNN kernels."""
    import tensorflow as tf

    return not tf.config.list_physical_devices("GPU")


def _infer_fn(key: str, jit: bool | None) -> Any:
    """Return the callable that runs the model on one padded batch: XLA-compiled or Keras predict_on_batch."""
    jit = _auto_jit() if jit is None else bool(jit)
    fkey = f"{key}#jit={jit}"
    with _MODELS_LOCK:
        fn = _FNS.get(fkey)
    if fn is not None:
        return fn
    model = _get_model(key)
    if jit:
        import tensorflow as tf

        compiled = tf.function(lambda d: model(d, training=False), jit_compile=True)

        def fn(batch: Any) -> Any:
            try:
                return compiled(batch)
            except Exception:  # noqa: BLE001 - a layer XLA cannot compile: fall back to Keras for good
                with _MODELS_LOCK:
                    _FNS[fkey] = model.predict_on_batch
                return model.predict_on_batch(batch)
    else:
        fn = model.predict_on_batch
    with _MODELS_LOCK:
        _FNS.setdefault(fkey, fn)
        return _FNS[fkey]


def _run_model(key: str, inputs: Any, batch_size: int, jit: bool | None = None) -> np.ndarray:
    """Return the model's class probabilities for `inputs` (one batch of at most batch_size rows)."""
    fn = _infer_fn(key, jit)
    n = len(next(iter(inputs.values()))) if isinstance(inputs, Mapping) else len(inputs)
    padded = _pad_rows(inputs, _bucket(n, batch_size))
    # One model call at a time per process: TF already spreads one call over every core (or the GPU),
    # while the other dask threads keep reading and preparing the next chunks.
    with _RUN_LOCKS[key]:
        probs = fn(padded)
    return np.asarray(probs, dtype=np.float32)[:n]


# ------------------------------------------------------------------------------------------------
# time-series maps
# ------------------------------------------------------------------------------------------------
def _check_cube(cube: xr.Dataset, card: dict) -> tuple[xr.DataArray, xr.DataArray]:
    """Return the cube's reflectance (bands in card order) and flag; raise ValueError on a mismatch."""
    name = card.get("name", "?")
    for var in ("reflectance", "flag"):
        if var not in cube.variables:
            raise ValueError(f"cube has no {var!r} variable (found {sorted(cube.data_vars)}); "
                             "open it with eokit.cube.open")
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
            f"cube has {n_t} time steps ({_fmt_dates(cube_dates)}) but model {name!r} takes at most "
            f"n_timesteps={max_t}"
        )
    refl = refl.sel(band=want).transpose("time", "band", "y", "x")
    flag = cube["flag"].transpose("time", "y", "x")
    return refl, flag


def _fmt_dates(d: pd.DatetimeIndex) -> str:
    """Return a short text of a date list: first..last."""
    if len(d) == 0:
        return "none"
    return f"{d[0].date()}..{d[-1].date()}"


def _predict_ts_block(refl: np.ndarray, flag: np.ndarray, *, key: str, card: dict, dates: np.ndarray,
                      batch_size: int, jit: bool | None = None) -> np.ndarray:
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
        sel = idx[s:s + batch_size]
        date = np.broadcast_to(dates, (len(sel), n_t))
        inputs = prepare_inputs(pix[sel], flg[sel], date, card)
        probs = _run_model(key, inputs, batch_size, jit)
        out[0, sel] = probs.argmax(axis=1)
        out[1, sel] = probs.max(axis=1)
    return out.reshape(2, h, w)


def _check_map_args(data: Any, what: str, chunks: Mapping[str, int] | None, batch_size: Any, scheduler: Any,
                    default_chunk: int) -> tuple[int, int]:
    """Return the (y, x) chunk sizes after refusing a non-Dataset, bad chunks, batch size or scheduler."""
    if not isinstance(data, xr.Dataset):
        got = type(data).__name__
        raise ValueError(f"{what} must be an xarray.Dataset, got {got}")  # noqa: TRY004
    if _crs(data) is None and _gcps(data) is None:
        raise ValueError(f"{what} {data.attrs.get('scene', '')!r} has no CRS (nor ground control points): the map "
                         "could not be placed; expected ds.rio.crs as eokit.cube.open / eokit.sar.open give, or "
                         "set one with ds.rio.write_crs(...)")
    chunks = dict(chunks or {})
    unknown = sorted(str(k) for k in chunks if k not in ("y", "x"))
    if unknown:
        raise ValueError(f"chunks keys {unknown} are not map dimensions; expected 'y' and/or 'x', e.g. "
                         "{'y': 256, 'x': 256}")
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


def _check_scheduler(scheduler: Any) -> Any:
    """Return `scheduler` normalised (eokit._dask vocabulary), refusing dask's multiprocessing scheduler."""
    return _scheduling.check_scheduler(scheduler, refuse=_NO_PROCESSES, none_means="local threads")


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
    func = partial(_predict_ts_block, key=key, card=card, dates=dates, batch_size=int(batch_size),
                   jit=jit_compile)
    stack = da.blockwise(func, "kyx", r, "tbyx", f, "tyx", new_axes={"k": 2}, dtype=np.float32,
                         concatenate=True, meta=np.empty((0, 0, 0), dtype=np.float32),
                         name="eokit-predict-" + dask.base.tokenize(key, card, r.name, f.name, batch_size))
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


def _predict_patch_block(block: np.ndarray, *, key: str, card: dict, patch: int, stride: int, mode: str,
                         halo: int, off: int, n_classes: int, batch_size: int,
                         jit: bool | None = None) -> np.ndarray:
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
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    rr, cc = rr.ravel(), cc.ravel()
    probs = np.empty((len(rr), n_classes), dtype=np.float32)
    for s in range(0, len(rr), batch_size):
        r0 = rr[s:s + batch_size] + halo + off
        c0 = cc[s:s + batch_size] + halo + off
        images = np.ascontiguousarray(view[r0, c0].transpose(0, 2, 3, 1), dtype=np.float32)
        images = prepare_patches(images, card)  # NaN -> 0 (the channel mean)
        probs[s:s + batch_size] = _run_model(key, images, batch_size, jit)
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
    if stride is None:
        stride = patch
    if not isinstance(stride, (int, np.integer)) or isinstance(stride, bool) or stride < 1:
        raise ValueError(f"stride must be an integer >= 1 (pixels between patches), got {stride!r}")
    stride = int(stride)
    channels = [str(c) for c in (card.get("bands") or SAR_CHANNELS)]
    select_bands(sorted(map(str, scene.data_vars)), {**card, "bands": channels}, f"scene {scene.attrs.get('scene', '')!r}")
    n_classes = len(_class_names(card))
    if mode == "sliding":  # chunk edges on the stride grid, so every chunk paints whole blocks
        cy, cx = max(stride, cy // stride * stride), max(stride, cx // stride * stride)
    halo, off = _patch_geometry(patch, stride, mode)
    layers = []
    for c in channels:
        v = scene[c].transpose("y", "x").data
        layers.append((v if isinstance(v, da.Array) else da.from_array(v)).astype(np.float32))
    stacked = da.stack(layers, axis=-1).rechunk({0: cy, 1: cx, 2: -1})
    ny, nx = stacked.shape[:2]
    if min(ny, nx) < halo + 1:
        raise ValueError(f"scene {scene.attrs.get('scene', '')!r} is {ny} x {nx} pixels, smaller than the "
                         f"{patch} x {patch} patches of model {name!r}")
    # Halos larger than the smallest chunk need bigger chunks; keep the stride grid.
    min_chunk = halo if mode == "centred" else math.ceil(halo / stride) * stride
    if min(stacked.chunks[0][-1], stacked.chunks[1][-1]) < min_chunk:
        stacked = stacked.rechunk({0: _merge_last(stacked.chunks[0], min_chunk),
                                   1: _merge_last(stacked.chunks[1], min_chunk)})
    func = partial(_predict_patch_block, key=key, card=card, patch=patch, stride=stride, mode=mode,
                   halo=halo, off=off, n_classes=n_classes, batch_size=int(batch_size), jit=jit_compile)

    out = da.map_overlap(
        func, stacked, depth={0: halo, 1: halo, 2: 0}, boundary="reflect", trim=False,
        chunks=((1 + n_classes,), stacked.chunks[0], stacked.chunks[1]), drop_axis=2, new_axis=0,
        dtype=np.float32, meta=np.empty((0, 0, 0), dtype=np.float32),
    )
    valid = da.stack([da.isfinite(x) for x in layers], axis=0).all(axis=0)
    if "valid" in scene.variables:
        valid = valid & (_dask(scene["valid"]) != 0)
    if "land" in scene.variables:
        valid = valid & (_dask(scene["land"]) == 0)
    valid = valid.rechunk(out.chunks[1:])
    cls = da.where(valid, out[0], NODATA_CLASS)
    prob = da.where(valid[None], out[1:], np.nan)
    stack = da.concatenate([cls[None], prob], axis=0)
    ds = _map_dataset(stack, scene, card, probabilities=True)
    ds.attrs.update(model=str(name), kind="patch", mode=mode, stride=stride, patch_size=patch)
    return _maybe_compute(ds, compute, scheduler, progress)


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


# ------------------------------------------------------------------------------------------------
# shared: dataset assembly, streaming computation
# ------------------------------------------------------------------------------------------------
def _map_dataset(stack: da.Array, src: xr.Dataset, card: dict, probabilities: bool) -> xr.Dataset:
    """Return the map Dataset (class, confidence[, probability]) on the grid and CRS of `src`."""
    names = _class_names(card)
    coords = {"y": src["y"], "x": src["x"]}
    cls = xr.DataArray(da.where(da.isnan(stack[0]), NODATA_CLASS, stack[0]).astype(np.uint8),
                       dims=("y", "x"), coords=coords)
    if probabilities:
        prob = xr.DataArray(stack[1:], dims=("label", "y", "x"), coords={**coords, "label": names})
        conf = prob.max("label", skipna=True)
    else:
        prob, conf = None, xr.DataArray(stack[1], dims=("y", "x"), coords=coords)
    ids = card.get("class_ids") or list(range(len(names)))
    cls.attrs.update(long_name="class index (model output order)", class_names=json.dumps(names),
                     class_ids=json.dumps([int(i) for i in ids]), _FillValue=NODATA_CLASS)
    conf.attrs.update(long_name="probability of the predicted class")
    ds = xr.Dataset({"class": cls, "confidence": conf.astype(np.float32)})
    if prob is not None:
        prob.attrs.update(long_name="class probabilities")
        ds["probability"] = prob.astype(np.float32)
    crs = _crs(src)
    gcps = _gcps(src)
    if gcps is not None:  # SAR scenes in radar geometry: ground control points, no affine transform
        ds = ds.rio.write_gcps(gcps, crs)
    elif crs is not None:
        ds = ds.rio.write_crs(crs).rio.write_transform(src.rio.transform())
    return ds


def _gcps(ds: Any) -> list | None:
    """Return the ground control points of a Dataset/DataArray (rioxarray), or None."""
    try:
        return ds.rio.get_gcps() or None
    except Exception:  # noqa: BLE001
        return None


def _crs(ds: Any) -> Any:
    """Return the CRS of a Dataset/DataArray via rioxarray, or None."""
    try:
        return ds.rio.crs
    except Exception:  # noqa: BLE001 - rioxarray raises various errors for grids without a CRS
        return None


_NO_PROCESSES = {"processes": (
    "maps cannot run on dask's multiprocessing scheduler: it starts a new pool of processes for every chunk, so "
    "each chunk would import TensorFlow and load the model again, and a model object cannot reach them; for "
    "several processes pass a dask.distributed.Client (e.g. Client(LocalCluster(n_workers=4))) or its scheduler "
    "address, whose workers load the model once each")}


def _spatial_stack(ds: xr.Dataset | xr.DataArray) -> tuple[da.Array, list[tuple[str, int, np.dtype]]]:
    """Return one float dask array (band, y, x) of every variable, plus (name, n bands, dtype) per variable."""
    arrays = {ds.name or "map": ds} if isinstance(ds, xr.DataArray) else dict(ds.data_vars)
    parts, layout = [], []
    dtype = np.result_type(np.float32, *[a.dtype for a in arrays.values()])
    ref = None
    for name, a in arrays.items():
        if a.dims[-2:] != ("y", "x") or a.ndim not in (2, 3):
            raise ValueError(f"map variable {name!r} has dims {a.dims}; expected (y, x) or (band, y, x)")
        d = a.data if isinstance(a.data, da.Array) else da.from_array(np.asarray(a.data))
        d = d[None] if d.ndim == 2 else d
        if ref is None:
            ref = d.chunks[1:]
        parts.append(d.astype(dtype).rechunk({0: -1, 1: ref[0], 2: ref[1]}))
        layout.append((str(name), d.shape[0], a.dtype))
    return da.concatenate(parts, axis=0).rechunk({0: -1}), layout


def _iter_blocks(arr: da.Array, scheduler: Any = None, progress: bool = True,
                 desc: str = "map") -> Iterator[tuple[tuple[slice, slice], np.ndarray]]:
    """Yield ((y slice, x slice), block) of a (band, y, x) dask array, computing a few chunks at a time."""
    from tqdm.auto import tqdm

    ys = np.cumsum((0,) + arr.chunks[1])
    xs = np.cumsum((0,) + arr.chunks[2])
    delayed = arr.to_delayed(optimize_graph=True)
    tasks = [((slice(ys[i], ys[i + 1]), slice(xs[j], xs[j + 1])), delayed[0, i, j])
             for i in range(len(ys) - 1) for j in range(len(xs) - 1)]
    bar = tqdm(total=len(tasks), desc=desc, unit="chunk", disable=not progress)
    try:
        scheduler = _check_scheduler(scheduler)
        if _is_distributed(scheduler):
            yield from _iter_distributed(tasks, scheduler, bar)
            return
        n = 1 if scheduler == "sync" else max(1, os.cpu_count() or 1)
        todo = iter(tasks)
        with ThreadPoolExecutor(max_workers=n) as pool:
            running = {}
            for window, d in todo:
                running[pool.submit(d.compute, scheduler="sync")] = window
                if len(running) >= 2 * n:
                    break
            while running:
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in done:
                    window = running.pop(fut)
                    yield window, fut.result()
                    bar.update(1)
                    nxt = next(todo, None)
                    if nxt is not None:
                        running[pool.submit(nxt[1].compute, scheduler="sync")] = nxt[0]
    finally:
        bar.close()


def _iter_distributed(tasks: list, scheduler: Any, bar: Any) -> Iterator:
    """Yield computed blocks from a dask.distributed cluster, keeping at most 2 per worker thread in flight."""
    from distributed import as_completed

    with _scheduling.compute_target(scheduler) as client:
        n = max(2, 2 * sum(client.nthreads().values()))
        todo = iter(tasks)
        windows = {}
        ac = as_completed(loop=client.loop)  # the client is not the default one
        for window, d in todo:
            fut = client.compute(d)
            windows[fut.key] = window
            ac.add(fut)
            if len(windows) >= n:
                break
        for fut in ac:
            yield windows.pop(fut.key), fut.result()
            fut.release()
            bar.update(1)
            nxt = next(todo, None)
            if nxt is not None:
                f2 = client.compute(nxt[1])
                windows[f2.key] = nxt[0]
                ac.add(f2)


def _maybe_compute(ds: xr.Dataset, compute: bool, scheduler: Any, progress: bool) -> xr.Dataset:
    """Return `ds` loaded into memory chunk by chunk (class and probabilities computed once), or lazy."""
    if not compute:
        return ds
    arr, layout = _spatial_stack(ds)
    out = {name: np.empty((nb,) + arr.shape[1:], dtype=dt) for name, nb, dt in layout}
    for (sy, sx), block in _iter_blocks(arr, scheduler, progress, desc="predict"):
        b0 = 0
        for name, nb, dt in layout:
            out[name][:, sy, sx] = block[b0:b0 + nb].astype(dt)
            b0 += nb
    loaded = ds.copy()
    for name, nb, dt in layout:
        loaded[name] = ds[name].copy(data=out[name][0] if ds[name].ndim == 2 else out[name])
    return loaded


# ------------------------------------------------------------------------------------------------
# Cloud-Optimised GeoTIFF output
# ------------------------------------------------------------------------------------------------
def class_colours(names: list[str]) -> dict[int, tuple[int, int, int, int]]:
    """Return a GDAL colour table {class index: (r, g, b, a)} for the class names; 255 is transparent."""
    from matplotlib import colormaps

    cmap = colormaps["tab20"] if len(names) <= 20 else colormaps["hsv"]
    n = len(names)
    table = {}
    for i in range(n):
        rgba = cmap(i if n <= 20 else i / n)
        table[i] = tuple(int(round(255 * c)) for c in rgba[:3]) + (255,)
    table[NODATA_CLASS] = (0, 0, 0, 0)
    return table


def _cog_targets(map_ds: xr.Dataset | xr.DataArray, path: Path) -> dict[str, Path]:
    """Return variable -> output path: `path` itself for a DataArray, `<stem>_<var>.tif` for a Dataset."""
    if isinstance(map_ds, xr.DataArray):
        return {str(map_ds.name or "map"): path}
    suffix = path.suffix or ".tif"
    return {str(v): path.with_name(f"{path.stem}_{v}{suffix}") for v in map_ds.data_vars}


def write_cog(
    map_ds: xr.Dataset | xr.DataArray,
    path: str | os.PathLike,
    overwrite: bool = False,
    scheduler: Any = None,
    progress: bool = True,
    blocksize: int = 512,
) -> list[Path]:
    """Return the Cloud-Optimised GeoTIFFs written: one per variable (`<stem>_<var>.tif`), or `path` itself.

    Blocks are computed chunk by chunk (lazy maps stream: memory bounded by the chunk size) into tiled
    GeoTIFFs beside the target, then GDAL's COG driver adds overviews (nearest for classes, average for
    probabilities), deflate compression and, for class bands, a colour table and the class names; each
    file is renamed into place only when complete.
    """
    import rasterio
    import rasterio.shutil
    from rasterio.windows import Window

    if not isinstance(blocksize, (int, np.integer)) or isinstance(blocksize, bool) or blocksize < 16 or blocksize % 16:
        raise ValueError(f"blocksize must be a multiple of 16 pixels (GeoTIFF tiles), e.g. 256 or 512; "
                         f"got {blocksize!r}")
    _check_scheduler(scheduler)
    if _crs(map_ds) is None and _gcps(map_ds) is None:
        raise ValueError(f"map to write to {path} has no CRS (nor ground control points): a GeoTIFF without "
                         "georeferencing cannot be placed; expected a map from eokit.maps.predict or set one with "
                         ".rio.write_crs(...)")
    path = Path(path)
    targets = _cog_targets(map_ds, path)
    for p in targets.values():
        check_target(p, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    crs = _crs(map_ds)
    try:
        transform = map_ds.rio.transform()
    except Exception:  # noqa: BLE001
        transform = None
    gcps = _gcps(map_ds)
    arr, layout = _spatial_stack(map_ds)
    variables = {str(map_ds.name or "map"): map_ds} if isinstance(map_ds, xr.DataArray) else map_ds
    dsts = {}
    with contextlib.ExitStack() as outputs:  # each COG renamed into place when all are complete
        cog = {name: outputs.enter_context(atomic_output(targets[name], overwrite)) for name, _, _ in layout}
        tmp = {name: cog[name].with_suffix(".part.tif") for name in cog}  # tiled GeoTIFF the COG is copied from
        try:
            for name, nb, dt in layout:
                var = variables[name]
                nodata = _nodata_for(var, dt)
                profile = dict(driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=nb, dtype=dt,
                               tiled=True, blockxsize=min(blocksize, 512), blockysize=min(blocksize, 512),
                               BIGTIFF="IF_SAFER", nodata=nodata)
                if crs is not None and gcps is None:
                    profile["crs"] = crs
                if transform is not None and gcps is None:
                    profile["transform"] = transform
                dsts[name] = rasterio.open(tmp[name], "w", **profile)
                if gcps is not None:
                    dsts[name].gcps = (gcps, crs)
                _describe(dsts[name], var, nb)  # colour table before any pixel is written (TIFF requirement)
            for (sy, sx), block in _iter_blocks(arr, scheduler, progress, desc="write COG"):
                window = Window(sx.start, sy.start, sx.stop - sx.start, sy.stop - sy.start)
                b0 = 0
                for name, nb, dt in layout:
                    dsts[name].write(block[b0:b0 + nb].astype(dt), window=window)
                    b0 += nb
            for name, nb, dt in layout:
                dsts[name].close()
            for name, nb, dt in layout:
                resampling = "NEAREST" if np.dtype(dt).kind in "iu" else "AVERAGE"
                rasterio.shutil.copy(tmp[name], cog[name], driver="COG", COMPRESS="DEFLATE", OVERVIEWS="AUTO",
                                     RESAMPLING=resampling, BLOCKSIZE=str(blocksize), BIGTIFF="IF_SAFER",
                                     NUM_THREADS="ALL_CPUS")
        finally:
            for d in dsts.values():
                if not d.closed:
                    d.close()
            for p in tmp.values():
                p.unlink(missing_ok=True)
    return [targets[name] for name, _, _ in layout]


def _nodata_for(var: xr.DataArray, dtype: np.dtype) -> float | int | None:
    """Return the nodata value of a map variable: its _FillValue, 255 for uint8, NaN for floats."""
    fill = var.attrs.get("_FillValue", var.encoding.get("_FillValue"))
    if fill is not None:
        return fill
    if np.dtype(dtype).kind == "f":
        return float("nan")
    return NODATA_CLASS if np.dtype(dtype) == np.uint8 else None


def _describe(dst: Any, var: xr.DataArray, n_bands: int) -> None:
    """Set band descriptions, class-name tags and (for class bands) the colour table of an open GeoTIFF."""
    names = var.attrs.get("class_names")
    if names is not None and n_bands == 1:
        names = json.loads(names) if isinstance(names, str) else list(names)
        dst.write_colormap(1, class_colours(names))
        dst.update_tags(1, class_names=json.dumps(names), class_ids=var.attrs.get("class_ids", ""))
        dst.update_tags(**{f"CLASS_{i}": n for i, n in enumerate(names)})
        dst.set_band_description(1, str(var.name))
    elif var.ndim == 3:
        labels = [str(v) for v in var[var.dims[0]].values]
        for i, label in enumerate(labels, start=1):
            dst.set_band_description(i, label)
    else:
        dst.set_band_description(1, str(var.name))
    meanings = var.attrs.get("flag_meanings")
    if meanings:
        dst.update_tags(flag_meanings=str(meanings), flag_values=str(var.attrs.get("flag_values", "")))


# ------------------------------------------------------------------------------------------------
# crop boundaries
# ------------------------------------------------------------------------------------------------
def _class_edges(a: np.ndarray) -> np.ndarray:
    """Return uint8 1 where a valid pixel has a valid 4-neighbour of another class (block with a 1-px halo)."""
    c = a[1:-1, 1:-1]
    edge = np.zeros(c.shape, dtype=bool)
    for nb in (a[:-2, 1:-1], a[2:, 1:-1], a[1:-1, :-2], a[1:-1, 2:]):
        edge |= (nb != c) & (nb != NODATA_CLASS)
    edge &= c != NODATA_CLASS
    return edge.astype(np.uint8)


def _parcel_block(block: np.ndarray, block_info: dict | None = None, *, geoms: Any, transform: Any) -> np.ndarray:
    """Return uint8 BOUNDARY_PARCEL where parcel outlines cross this chunk (rasterio.features.rasterize)."""
    import rasterio.features
    import rasterio.windows
    import shapely

    (y0, y1), (x0, x1) = block_info[0]["array-location"]
    window = rasterio.windows.Window(x0, y0, x1 - x0, y1 - y0)
    t = rasterio.windows.transform(window, transform)
    bounds = rasterio.windows.bounds(window, transform)
    box = shapely.box(*bounds)
    hit = geoms[shapely.intersects(geoms, box)]
    if len(hit) == 0:
        return np.zeros(block.shape, dtype=np.uint8)
    return rasterio.features.rasterize(((g, BOUNDARY_PARCEL) for g in hit), out_shape=block.shape, transform=t,
                                       fill=0, dtype="uint8")


def _read_parcels(parcels: Any, crs: Any) -> Any:
    """Return parcel outlines (numpy array of shapely lines) in `crs` from a GeoDataFrame or vector file."""
    import geopandas as gpd

    if not isinstance(parcels, gpd.GeoDataFrame):
        p = Path(parcels)
        if not p.exists():
            raise FileNotFoundError(f"parcel file {p} does not exist")
        parcels = gpd.read_file(p)
    if parcels.crs is None:
        raise ValueError("parcels have no CRS; set one (GeoDataFrame.set_crs) so they can be reprojected")
    if crs is None:
        raise ValueError("the class map has no CRS, parcels cannot be placed on it")
    geoms = parcels.to_crs(crs).geometry
    geoms = geoms[~(geoms.is_empty | geoms.isna())]
    return np.asarray(geoms.boundary.values)


def boundaries(class_map: xr.Dataset | xr.DataArray, parcels: Any = None) -> xr.DataArray:
    """Return a uint8 boundary raster: 1 class edge (a 4-neighbour has another class), 2 parcel outline, 3 both.

    `class_map` is a map from `predict` (or its `class` DataArray); nodata (255) pixels are never edges.
    `parcels` (GeoDataFrame or vector file) are reprojected to the map's CRS and their outlines rasterised
    chunk by chunk with rasterio.features. Lazy maps stay lazy.
    """
    cls = class_map["class"] if isinstance(class_map, xr.Dataset) else class_map
    if cls.dims != ("y", "x"):
        cls = cls.transpose("y", "x")
    data = cls.data
    lazy = isinstance(data, da.Array)
    d = data if lazy else da.from_array(np.asarray(data), chunks=(1024, 1024))
    edges = da.map_overlap(_class_edges, d, depth=1, boundary=NODATA_CLASS, trim=False, dtype=np.uint8)
    if parcels is not None:
        crs = _crs(cls)
        geoms = _read_parcels(parcels, crs)
        outline = da.map_blocks(partial(_parcel_block, geoms=geoms, transform=cls.rio.transform()), d,
                                dtype=np.uint8)
        edges = edges | outline
    out = xr.DataArray(edges if lazy else edges.compute(), dims=("y", "x"), coords=cls.coords, name="boundary")
    out.attrs.update(long_name="crop field boundaries", flag_values="1 2 3",
                     flag_meanings="class_edge parcel_outline class_edge_and_parcel_outline", _FillValue=0)
    crs = _crs(cls)
    if crs is not None:
        out = out.rio.write_crs(crs)
    return out


def boundaries_to_vector(
    boundary: xr.DataArray,
    class_map: xr.Dataset | xr.DataArray | None = None,
    path: str | os.PathLike | None = None,
    overwrite: bool = False,
    min_pixels: int = 1,
) -> Any:
    """Return a GeoDataFrame of field polygons (regions enclosed by boundaries) with class and area.

    Fields are the 4-connected regions of non-boundary pixels (rasterio.features.shapes); with `class_map`
    each carries its class index and name and nodata pixels are left out. With `path`, writes a GeoPackage
    with layers `fields` (polygons) and `boundaries` (their outlines as lines), via a temp file.
    """
    import geopandas as gpd
    import rasterio.features

    b = np.asarray(boundary.transpose("y", "x").values)
    crs = _crs(boundary)
    transform = boundary.rio.transform()
    interior = b == 0
    names: list[str] | None = None
    if class_map is not None:
        cls = class_map["class"] if isinstance(class_map, xr.Dataset) else class_map
        values = np.asarray(cls.transpose("y", "x").values).astype(np.uint8)
        if values.shape != b.shape:
            raise ValueError(f"class map shape {values.shape} differs from boundary shape {b.shape}")
        interior &= values != NODATA_CLASS
        if "class_names" in cls.attrs:
            names = json.loads(cls.attrs["class_names"])
    else:
        values = interior.astype(np.uint8)
    rows = []
    res = abs(transform.a * transform.e) or 1.0
    for geom, value in rasterio.features.shapes(values, mask=interior, connectivity=4, transform=transform):
        rows.append({"class": int(value), "geometry": geom})
    from shapely.geometry import shape

    gdf = gpd.GeoDataFrame(
        {"class": [r["class"] for r in rows]},
        geometry=[shape(r["geometry"]) for r in rows], crs=crs,
    )
    gdf["n_pixels"] = np.round(gdf.geometry.area / res).astype(np.int64)
    gdf = gdf[gdf["n_pixels"] >= int(min_pixels)].reset_index(drop=True)
    if class_map is None:
        gdf = gdf.drop(columns="class")
    elif names is not None:
        gdf["class_name"] = [names[c] if c < len(names) else "" for c in gdf["class"]]
    gdf.insert(0, "field_id", np.arange(1, len(gdf) + 1, dtype=np.int64))
    gdf["area"] = gdf.geometry.area
    if path is not None:
        _write_gpkg(gdf, Path(path), overwrite)
    return gdf


def _write_gpkg(gdf: Any, path: Path, overwrite: bool) -> None:
    """Write fields and their outlines to a GeoPackage (layers "fields", "boundaries"), atomically and reproducibly."""
    lines = gdf.copy()
    lines["geometry"] = gdf.geometry.boundary
    write_gpkg({"fields": gdf, "boundaries": lines}, path, overwrite)


def write_boundaries(boundary: xr.DataArray, path: str | os.PathLike, class_map: Any = None,
                     overwrite: bool = False, progress: bool = True) -> tuple[Path, Path]:
    """Return (COG path, GeoPackage path): the boundary raster `path` and its field polygons beside it (.gpkg)."""
    path = Path(path)
    gpkg = check_target(path.with_suffix(".gpkg"), overwrite)
    tif = write_cog(boundary.rename("boundary"), path, overwrite=overwrite, progress=progress)[0]
    boundaries_to_vector(boundary, class_map=class_map, path=gpkg, overwrite=overwrite)
    return tif, gpkg



# ------------------------------------------------------------------------------------------------
# plots (holoviews / hvplot; any backend, e.g. hv.extension("matplotlib") for headless PNGs)
# ------------------------------------------------------------------------------------------------
def _hex(rgba: tuple[int, ...]) -> str:
    """Return '#rrggbb' for an (r, g, b, a) 0-255 tuple."""
    return "#{:02x}{:02x}{:02x}".format(*rgba[:3])


def plot_classes(class_map: xr.Dataset | xr.DataArray, title: str = "class map", all_classes: bool = False) -> Any:
    """Return a holoviews plot of the class band in its COG colours with a legend of class names."""
    from eokit import plots

    plots.use_hvplot("xarray")
    cls = class_map["class"] if isinstance(class_map, xr.Dataset) else class_map
    names = json.loads(cls.attrs["class_names"]) if "class_names" in cls.attrs else None
    values = np.asarray(cls.values)
    present = sorted(int(v) for v in np.unique(values) if v != NODATA_CLASS)
    if names is None:
        names = [str(i) for i in range(max(present, default=0) + 1)]
    table = class_colours(names)
    shown = range(len(names)) if all_classes else present
    img = cls.where(cls != NODATA_CLASS).astype(np.float32).hvplot.image(
        x="x", y="y", cmap=[_hex(table[i]) for i in range(len(names))], clim=(-0.5, len(names) - 0.5),
        colorbar=False, data_aspect=1, title=title)
    return (img * plots.legend([(names[i], _hex(table[i])) for i in shown])).opts(legend_position="right")


def plot_confidence(map_ds: xr.Dataset, title: str = "confidence") -> Any:
    """Return a holoviews image of the confidence (probability of the predicted class), 0..1."""
    from eokit import plots

    plots.use_hvplot("xarray")
    return map_ds["confidence"].hvplot.image(x="x", y="y", cmap="viridis", clim=(0, 1), data_aspect=1,
                                             title=title)


def composite(cube: xr.Dataset, bands: tuple[str, ...] = ("B4", "B3", "B2"), time: Any = None,
              scale: float | None = None) -> xr.DataArray:
    """Return a display image of the clearest acquisition (or `time`): RGB (band, y, x) in 0..1, or one band.

    Bands missing from the cube fall back to its first band (e.g. NDVI stacks) shown as one grey band.
    """
    flag = cube["flag"]
    if time is None:
        clear = (flag == 0).mean(["y", "x"]).values
        idx = int(np.argmax(clear))
    else:
        idx = int(np.flatnonzero(cube["time"].values == np.datetime64(time, "ns"))[0])
    refl = cube["reflectance"].isel(time=idx)
    have = [b for b in bands if b in refl["band"].values]
    img = (refl.sel(band=have) if len(have) == len(bands) else refl.isel(band=0)).astype(np.float32)
    img = img.where(cube["flag"].isel(time=idx) != FLAG_NODATA)
    values = img.values
    if scale is None:
        lo, hi = np.nanpercentile(values, [2, 98]) if np.isfinite(values).any() else (0.0, 1.0)
    else:
        lo, hi = 0.0, scale
    out = img.copy(data=np.clip((values - lo) / max(hi - lo, 1e-9), 0, 1))
    out.attrs["time"] = str(cube["time"].values[idx])[:10]
    return out


def plot_boundaries(boundary: xr.DataArray, image: xr.DataArray | None = None,
                    title: str = "field boundaries") -> Any:
    """Return boundary pixels (class edges, parcel outlines) drawn over `image` (from `composite`)."""
    from eokit import plots

    plots.use_hvplot("xarray")
    colours = ["#ff2020", "#ffd000", "#ff00ff"]
    edges = boundary.where(boundary > 0).astype(np.float32).hvplot.image(
        x="x", y="y", cmap=colours, clim=(0.5, 3.5), colorbar=False, data_aspect=1, title=title)
    labels = [("class edge", colours[0]), ("parcel outline", colours[1]), ("both", colours[2])]
    present = [labels[i] for i in range(3) if bool((boundary == i + 1).any())]
    if image is None:
        plot = edges
    elif image.ndim == 3:
        plot = image.hvplot.rgb(x="x", y="y", bands="band", data_aspect=1, title=title) * edges
    else:
        plot = image.hvplot.image(x="x", y="y", cmap="gray", colorbar=False, data_aspect=1, title=title) * edges
    return (plot * plots.legend(present)).opts(legend_position="right") if present else plot

__all__: list[str] = [
    "NODATA_CLASS", "predict", "predict_patches", "write_cog", "class_colours", "boundaries",
    "boundaries_to_vector", "write_boundaries", "plot_classes", "plot_confidence", "composite", "plot_boundaries",
]

"""The map format and its streaming computation: the map Dataset, CRS/GCPs, the scheduler check, the block executor.

`_iter_blocks` computes a (band, y, x) dask array a few chunks at a time (local threads or a dask.distributed
cluster) and yields each block with its window, so memory stays bounded by the chunk size.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any

import dask.array as da
import numpy as np
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr

from eokit import _dask as _scheduling
from eokit.card import class_names as _class_names
from eokit.maps._runtime import _is_distributed

#: Class value of pixels without a prediction (no clear observation, outside the scene, masked).
NODATA_CLASS = 255


def _check_scheduler(scheduler: Any) -> Any:
    """Return `scheduler` normalised (eokit._dask vocabulary), refusing dask's multiprocessing scheduler."""
    return _scheduling.check_scheduler(scheduler, refuse=_NO_PROCESSES, none_means="local threads")


def _map_dataset(stack: da.Array, src: xr.Dataset, card: dict, probabilities: bool) -> xr.Dataset:
    """Return the map Dataset (class, confidence[, probability]) on the grid and CRS of `src`."""
    names = _class_names(card)
    coords = {"y": src["y"], "x": src["x"]}
    cls = xr.DataArray(
        da.where(da.isnan(stack[0]), NODATA_CLASS, stack[0]).astype(np.uint8), dims=("y", "x"), coords=coords
    )
    if probabilities:
        prob = xr.DataArray(stack[1:], dims=("label", "y", "x"), coords={**coords, "label": names})
        conf = prob.max("label", skipna=True)
    else:
        prob, conf = None, xr.DataArray(stack[1], dims=("y", "x"), coords=coords)
    ids = card.get("class_ids") or list(range(len(names)))
    cls.attrs.update(
        long_name="class index (model output order)",
        class_names=json.dumps(names),
        class_ids=json.dumps([int(i) for i in ids]),
        _FillValue=NODATA_CLASS,
    )
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


_NO_PROCESSES = {
    "processes": (
        "maps cannot run on dask's multiprocessing scheduler: it starts a new pool of processes for every chunk, so "
        "each chunk would import TensorFlow and load the model again, and a model object cannot reach them; for "
        "several processes pass a dask.distributed.Client (e.g. Client(LocalCluster(n_workers=4))) or its scheduler "
        "address, whose workers load the model once each"
    )
}


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


def _iter_blocks(
    arr: da.Array, scheduler: Any = None, progress: bool = True, desc: str = "map"
) -> Iterator[tuple[tuple[slice, slice], np.ndarray]]:
    """Yield ((y slice, x slice), block) of a (band, y, x) dask array, computing a few chunks at a time."""
    from eokit._progress import tqdm

    ys = np.cumsum((0,) + arr.chunks[1])
    xs = np.cumsum((0,) + arr.chunks[2])
    delayed = arr.to_delayed(optimize_graph=True)
    tasks = [
        ((slice(ys[i], ys[i + 1]), slice(xs[j], xs[j + 1])), delayed[0, i, j])
        for i in range(len(ys) - 1)
        for j in range(len(xs) - 1)
    ]
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
            out[name][:, sy, sx] = block[b0 : b0 + nb].astype(dt)
            b0 += nb
    loaded = ds.copy()
    for name, _nb, _dt in layout:
        loaded[name] = ds[name].copy(data=out[name][0] if ds[name].ndim == 2 else out[name])
    return loaded

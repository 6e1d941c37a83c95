"""Wall-to-wall maps: end-to-end pixels/s (read cube from disk, predict, write COG) against the bare model.

Baseline (same process, same model, same pixels): every pixel's inputs prepared in memory first, then only
`model.predict(..., batch_size)` is timed. eokit: `eokit.maps.predict(..., compute=False)` + `write_cog`,
timed from opening the cube on disk to the finished Cloud-Optimised GeoTIFFs. Goal: ratio >= 0.8.
eokit runs the model XLA-compiled on CPU, so a second row compares against that same compiled call on the
in-memory arrays: what the pipeline itself (read, prepare, write) costs. Runs are interleaved, best of two.

Memory: peak RSS above the phase's start (psutil, sampled every 10 ms in a thread) for two cube sizes; the
chunked pipeline stays flat while the in-memory baseline grows with the tile. The chunked runs go first, so
memory the baseline frees and keeps in the allocator cannot hide the pipeline's own peak.
Usage: `python benchmarks/bench_maps.py [--quick]` (prints a table, writes benchmarks/results_maps.json).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
BANDS = ["B2", "B3", "B4", "B5", "B6", "B7", "B8A", "B11", "B12"]
N_T, UNITS, CHUNK, BATCH = 12, [64], 256, 4096
sys.path.insert(0, str(HERE))  # benchmarks/_common, however this script is loaded
from _common import PeakRSS, report  # noqa: E402


def machine() -> str:
    """Return e.g. 'cpu 2 cores' (or the GPU TensorFlow sees)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    load = os.getloadavg()[0]  # other work on the machine makes timings noisy: say so
    return f"gpu {len(gpus)}x" if gpus else f"cpu {os.cpu_count()} cores, load {load:.1f}"


def make_model(folder: Path) -> Path:
    """Save a small LSTM (random weights: speed does not depend on training) and its card; return the path."""
    import keras

    from eokit.models import build
    from eokit.schema import TS2C_CLASSES
    from eokit.train import save_model

    keras.utils.set_random_seed(0)
    model = build("lstm", n_bands=len(BANDS), n_timesteps=N_T, n_classes=len(TS2C_CLASSES), units=UNITS, dropout=0.0)
    card = {
        "name": "lstm",
        "kind": "timeseries",
        "classes": TS2C_CLASSES,
        "class_ids": list(range(len(TS2C_CLASSES))),
        "bands": BANDS,
        "n_timesteps": N_T,
        "dates": None,
        "normalisation": {"mean": [1000.0] * len(BANDS), "std": [800.0] * len(BANDS)},
        "flag_handling": "mask",
        "hparams": {"units": UNITS},
        "created": "benchmark",
    }
    return save_model(model, card, folder / "lstm.keras", overwrite=True)


def write_zarr_cube(path: Path, size: int, seed: int = 0) -> Path:
    """Write a (time, band, y, x) int16 reflectance + uint8 flag cube of size x size pixels to Zarr, lazily."""
    import dask.array as da
    import pandas as pd
    import rioxarray  # noqa: F401
    import xarray as xr
    from rasterio.transform import from_origin

    rng = da.random.default_rng(seed)
    shape = (N_T, len(BANDS), size, size)
    refl = rng.integers(100, 6000, size=shape, chunks=(1, len(BANDS), CHUNK, CHUNK)).astype(np.int16)
    flag = (rng.random((N_T, size, size), chunks=(1, CHUNK, CHUNK)) < 0.2).astype(np.uint8)  # 20 % cloudy
    x = 500005.0 + 10 * np.arange(size)
    y = 5300005.0 - 10 * np.arange(size)
    ds = xr.Dataset(
        {"reflectance": (("time", "band", "y", "x"), refl), "flag": (("time", "y", "x"), flag)},
        coords={"time": pd.date_range("2018-03-01", periods=N_T, freq="15D").values, "band": BANDS, "y": y, "x": x},
    )
    ds = ds.rio.write_crs("EPSG:32633").rio.write_transform(from_origin(500000.0, 5300010.0, 10, 10))
    ds.to_zarr(path, mode="w", zarr_format=2, consolidated=True)
    return path


def open_zarr_cube(path: Path):
    """Open the benchmark cube lazily (dask, 256 x 256 chunks) with its CRS."""
    import rioxarray  # noqa: F401
    import xarray as xr

    return xr.open_zarr(path, chunks={"time": -1, "band": -1, "y": CHUNK, "x": CHUNK}, decode_coords="all")


def pipeline(model_path: Path, cube, out: Path) -> float:
    """Return seconds for predict + COG write of an opened (lazy) cube."""
    from eokit import maps

    t = time.perf_counter()
    lazy = maps.predict(
        model_path, cube, chunks={"y": CHUNK, "x": CHUNK}, batch_size=BATCH, compute=False, progress=False
    )
    maps.write_cog(lazy, out / "map.tif", overwrite=True, progress=False)
    return time.perf_counter() - t


def bare(model_path: Path, cube) -> tuple[float, float, int]:
    """Return (s of model.predict, s of the XLA-compiled model call, pixels) on in-memory prepared pixels."""
    import tensorflow as tf

    from eokit.train import load_model, prepare_inputs

    model, card = load_model(model_path)
    c = cube.load()
    refl = c.reflectance.sel(band=card["bands"]).values
    n_t, n_b = refl.shape[:2]
    pix = refl.reshape(n_t, n_b, -1).transpose(2, 0, 1)
    flag = c.flag.values.reshape(n_t, -1).T
    ok = (flag == 0).any(axis=1)
    inputs = prepare_inputs(pix[ok], flag[ok], np.broadcast_to(c.time.values, flag.shape)[ok], card)
    del pix, refl
    n = len(inputs["x"])
    model.predict({k: v[:BATCH] for k, v in inputs.items()}, batch_size=BATCH, verbose=0)  # warm-up
    t = time.perf_counter()
    model.predict(inputs, batch_size=BATCH, verbose=0)
    t_predict = time.perf_counter() - t
    xla = tf.function(lambda d: model(d, training=False), jit_compile=True)
    batches = [{k: v[s : s + BATCH] for k, v in inputs.items()} for s in range(0, n - BATCH + 1, BATCH)]
    np.asarray(xla(batches[0]))  # compile
    t = time.perf_counter()
    for batch in batches:
        np.asarray(xla(batch))
    t_xla = (time.perf_counter() - t) * n / (len(batches) * BATCH)
    return t_predict, t_xla, int(flag.shape[0])


def run(quick: bool = False, tiny: bool = False) -> list[dict]:
    """Return benchmark rows: end-to-end px/s vs bare predict, peak memory for two cube sizes (`tiny`: one, 64 px)."""
    from eokit import cube as eocube
    from eokit import synthetic

    sizes = (64,) if tiny else (128, 256) if quick else (512, 1024)
    tif_size = 64 if tiny else 128 if quick else 512
    repeats = 1 if quick or tiny else 2
    mach = machine()
    rows = []
    with tempfile.TemporaryDirectory(prefix="eokit-bench-maps-") as tmp:
        tmp = Path(tmp)
        model_path = make_model(tmp)
        zarrs = {s: write_zarr_cube(tmp / f"cube{s}.zarr", s) for s in sizes}
        stack = synthetic.make_s2_stack(tmp / "s2stack", synthetic.make_dates(N_T, seed=0), size=tif_size)
        # warm the model cache and compiled graphs (every batch shape) outside the timings
        pipeline(model_path, open_zarr_cube(zarrs[sizes[0]]), tmp)
        pipeline(model_path, eocube.open(stack, chunks=CHUNK), tmp)
        mem = {}
        for s in sizes:  # memory: chunked pipeline first (see module docstring), then the in-memory baseline
            with PeakRSS(0.01) as m:
                pipeline(model_path, open_zarr_cube(zarrs[s]), tmp)
            mem[s] = [m.rise_mib]
        for s in sizes:
            with PeakRSS(0.01) as m:
                bare(model_path, open_zarr_cube(zarrs[s]))
            mem[s].insert(0, m.rise_mib)
        # speed: pipeline and baselines interleaved, best of `repeats`, so machine load hits both alike
        cases = {f"zarr{s}": (lambda s=s: open_zarr_cube(zarrs[s])) for s in sizes}
        cases["tif"] = lambda: eocube.open(stack, chunks=CHUNK)
        speed = {}
        for name, opener in cases.items():
            ours, base, xla = [], [], []
            for _ in range(repeats):
                ours.append(pipeline(model_path, opener(), tmp))
                t_predict, t_xla, n = bare(model_path, opener())
                base.append(t_predict)
                xla.append(t_xla)
            speed[name] = (min(base), min(xla), min(ours), n)
    labels = {f"zarr{s}": f"map {s}x{s} px, zarr cube -> predict -> COG (LSTM{UNITS} T={N_T}, 9 bands)" for s in sizes}
    labels["tif"] = f"map {tif_size}x{tif_size} px, GeoTIFF stack (eokit.cube.open) -> predict -> COG"
    for name, (t_base, t_xla, t_ours, n) in speed.items():
        rows.append(
            {
                "what": labels[name] + " vs bare model.predict in memory",
                "baseline": n / t_base,
                "eokit": n / t_ours,
                "ratio": t_base / t_ours,
                "unit": "pixels/s",
                "machine": mach,
            }
        )
        rows.append(
            {
                "what": labels[name] + " vs the same XLA-compiled model call in memory (overhead only)",
                "baseline": n / t_xla,
                "eokit": n / t_ours,
                "ratio": t_xla / t_ours,
                "unit": "pixels/s",
                "machine": mach,
            }
        )
    for s in sizes:
        rows.append(
            {
                "what": f"peak RSS above start, {s}x{s} px: in-memory predict vs chunked {CHUNK}^2 pipeline",
                "baseline": mem[s][0],
                "eokit": mem[s][1],
                "ratio": mem[s][0] / max(mem[s][1], 1.0),
                "unit": "MiB",
                "machine": mach,
            }
        )
    return rows


if __name__ == "__main__":
    report(run(quick="--quick" in sys.argv), "maps")

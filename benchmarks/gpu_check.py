"""Device check: TensorFlow's devices, LSTM training samples/s, and a full Sentinel-2 tile mapped end to end.

Run on a machine with a GPU (or on CPU as a dry run with a small tile):

    python benchmarks/gpu_check.py --minutes-budget 8              # 10,980 x 10,980 tile, goal <= 5 min
    python benchmarks/gpu_check.py --tile-size 1024 --minutes-budget 3   # CPU dry run

Steps: (1) list TF devices; (2) train the eokit LSTM (`eokit.models.build` + `eokit.train.fit`) briefly on a
synthetic training set and report samples/s; (3) build a synthetic cube of the tile lazily with dask (never
materialised: each chunk is generated when the map needs it), time `eokit.maps.predict` + `write_cog` on a
crop with and without XLA, estimate the full tile from the faster one, and map the full tile if the
estimate fits the remaining budget (otherwise the largest square that fits, and says so). Prints one line
per result and writes `gpu_check.json` to --output (default: $OUT, else a temp folder). The COGs go to a
temporary folder that is deleted (their sizes are reported).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # use this checkout even if not installed
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common, however this script is loaded

import numpy as np  # noqa: E402
from _common import PeakRSS  # noqa: E402

BANDS = ["B2", "B3", "B4", "B5", "B6", "B7", "B8A", "B11", "B12"]
T0 = time.monotonic()


def say(msg: str) -> None:
    """Print one timestamped line at once."""
    print(f"[{time.monotonic() - T0:7.1f}s] {msg}", flush=True)


def devices() -> dict:
    """Return TF version and devices (with GPU names where TF reports them)."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    for g in gpus:
        try:
            tf.config.experimental.set_memory_growth(g, True)
        except (ValueError, RuntimeError):
            pass
    names = []
    for g in gpus:
        try:
            names.append(tf.config.experimental.get_device_details(g).get("device_name", g.name))
        except Exception:  # noqa: BLE001
            names.append(g.name)
    info = {
        "tensorflow": tf.__version__,
        "devices": [d.name for d in tf.config.list_physical_devices()],
        "gpus": names,
        "cpu_count": os.cpu_count(),
        "built_with_cuda": tf.test.is_built_with_cuda(),
    }
    say(
        f"TensorFlow {info['tensorflow']}; devices {info['devices']}; GPUs {names or 'none'}; "
        f"{info['cpu_count']} CPU cores"
    )
    return info


def synthetic_training_set(n: int, n_t: int, n_classes: int, seed: int = 0):
    """Return a TIMESERIES_SCHEMA Dataset: class-dependent seasonal curves + noise, 20 % cloudy steps."""
    import pandas as pd
    import xarray as xr

    rng = np.random.default_rng(seed)
    label = rng.integers(0, n_classes, n)
    t = np.linspace(0, 1, n_t)
    peak = 0.2 + 0.6 * label / max(n_classes - 1, 1)
    curve = np.exp(-((t[None, :] - peak[:, None]) ** 2) / 0.02)
    base = 500 + 300 * np.arange(len(BANDS))
    refl = base[None, None, :] + 3000 * curve[:, :, None] * ((np.arange(len(BANDS)) % 3) + 1)[None, None, :]
    refl = (refl + rng.normal(0, 150, refl.shape)).astype(np.int16)
    flag = (rng.random((n, n_t)) < 0.2).astype(np.uint8)
    dates = pd.date_range("2018-03-01", periods=n_t, freq="14D").values
    return xr.Dataset(
        {
            "reflectance": (("sample", "time", "band"), refl),
            "flag": (("sample", "time"), flag),
            "date": (("sample", "time"), np.broadcast_to(dates, (n, n_t)).copy()),
            "label": ("sample", label.astype(np.int64)),
            "label_name": ("sample", np.array([f"class {k}" for k in label])),
            "tile": ("sample", np.full(n, "SYNTH")),
            "source_file": ("sample", np.full(n, "synthetic")),
        },
        coords={"band": BANDS},
    )


def train_check(args: argparse.Namespace, out: Path, gpu: bool) -> dict:
    """Train the LSTM briefly with eokit.train.fit; return samples/s and the saved model path."""
    from eokit import models, train

    n = args.train_samples or (100_000 if gpu else 4_000)
    ds = synthetic_training_set(n, args.timesteps, args.classes)
    net = models.build(
        "lstm", n_bands=len(BANDS), n_timesteps=args.timesteps, n_classes=args.classes, units=args.units, dropout=0.0
    )
    t = time.perf_counter()
    model, card, history = train.fit(
        net,
        ds,
        epochs=args.epochs,
        batch_size=args.train_batch,
        seed=0,
        output=out,
        name="lstm",
        progress=False,
        overwrite=True,
        early_stopping=None,
        checkpoint=False,
    )
    secs = time.perf_counter() - t
    acc = history.get("accuracy", [None])[-1] if isinstance(history, dict) else None
    res = {
        "train_samples": n,
        "epochs": args.epochs,
        "batch_size": args.train_batch,
        "units": args.units,
        "timesteps": args.timesteps,
        "seconds": secs,
        "samples_per_s": n * args.epochs / secs,
        "final_accuracy": acc,
    }
    say(
        f"LSTM{args.units} T={args.timesteps}: {n} samples x {args.epochs} epochs in {secs:.1f} s = "
        f"{res['samples_per_s']:,.0f} samples/s (incl. tracing), train accuracy {acc}"
    )
    res["model"] = str(out / "lstm.keras")
    return res


def lazy_cube(size: int, n_t: int, chunk: int, seed: int = 0):
    """Return a (time, band, y, x) cube of size x size pixels generated chunk by chunk with dask (never stored)."""
    import dask.array as da
    import pandas as pd
    import rioxarray  # noqa: F401
    import xarray as xr
    from rasterio.transform import from_origin

    rng = da.random.default_rng(seed)
    refl = rng.integers(
        100, 6000, size=(n_t, len(BANDS), size, size), chunks=(n_t, len(BANDS), chunk, chunk), dtype=np.int16
    )
    flag = (rng.random((n_t, size, size), chunks=(n_t, chunk, chunk)) < 0.2).astype(np.uint8)
    transform = from_origin(600000.0, 5300040.0, 10.0, 10.0)  # a Sentinel-2 tile's 10 m grid
    ds = xr.Dataset(
        {"reflectance": (("time", "band", "y", "x"), refl), "flag": (("time", "y", "x"), flag)},
        coords={
            "time": pd.date_range("2018-03-01", periods=n_t, freq="14D").values,
            "band": BANDS,
            "y": 5300040.0 - 10.0 * (np.arange(size) + 0.5),
            "x": 600000.0 + 10.0 * (np.arange(size) + 0.5),
        },
    )
    return ds.rio.write_crs("EPSG:32633").rio.write_transform(transform)


def map_once(model: str, size: int, args: argparse.Namespace, jit: bool | None, tmp: Path) -> dict:
    """Map a size x size synthetic tile to COGs; return wall seconds, px/s, peak host memory, file sizes."""
    from eokit import maps

    cube = lazy_cube(size, args.timesteps, args.chunk)
    target = tmp / f"tile{size}.tif"
    with PeakRSS(0.05) as mem:
        t = time.perf_counter()
        lazy = maps.predict(
            model,
            cube,
            chunks={"y": args.chunk, "x": args.chunk},
            batch_size=args.batch,
            compute=False,
            progress=args.progress,
            jit_compile=jit,
        )
        paths = maps.write_cog(lazy, target, overwrite=True, progress=args.progress)
        secs = time.perf_counter() - t
    sizes = {p.name: p.stat().st_size for p in paths}
    for p in paths:
        p.unlink()
    return {
        "size": size,
        "pixels": size * size,
        "seconds": secs,
        "pixels_per_s": size * size / secs,
        "peak_host_gb": mem.peak_gib,
        "jit_compile": jit,
        "cog_bytes": sizes,
    }


def gpu_memory() -> float | None:
    """Return the GPU's peak memory use (GB) seen by TF, or None."""
    import tensorflow as tf

    try:
        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**30
    except Exception:  # noqa: BLE001
        return None


def main(argv: list[str] | None = None) -> dict:
    """Run the checks; return (and write) the summary."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes-budget", type=float, required=True, help="wall time this script may use")
    p.add_argument("--tile-size", type=int, default=10980, help="pixels per side (10980 = one S2 tile)")
    p.add_argument("--timesteps", type=int, default=12)
    p.add_argument("--classes", type=int, default=16)
    p.add_argument("--units", type=int, nargs="+", default=[64])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-samples", type=int, default=0, help="0: 100k on GPU, 4k on CPU")
    p.add_argument("--train-batch", type=int, default=1024)
    p.add_argument("--chunk", type=int, default=0, help="map chunk (pixels); 0: 512 on GPU, 256 on CPU")
    p.add_argument("--batch", type=int, default=0, help="predict batch; 0: 16384 on GPU, 4096 on CPU")
    p.add_argument("--probe-size", type=int, default=0, help="crop timed first; 0: 2048 on GPU, tile/2 on CPU")
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--progress", action="store_true", help="show progress bars")
    p.add_argument("--output", default=os.environ.get("OUT") or tempfile.mkdtemp(prefix="gpu_check-"))
    args = p.parse_args(argv)
    budget = args.minutes_budget * 60
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"args": vars(args)}

    def left() -> float:
        return budget - (time.monotonic() - T0)

    def save() -> None:
        (out / "gpu_check.json").write_text(json.dumps(summary, indent=2, default=str))

    summary["devices"] = devices()
    gpu = bool(summary["devices"]["gpus"])
    args.chunk = args.chunk or (512 if gpu else 256)
    args.batch = args.batch or (16384 if gpu else 4096)
    probe = args.probe_size or (2048 if gpu else max(args.chunk, args.tile_size // 2))
    probe = min(probe, args.tile_size)
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        tmp = Path(tmp)
        if args.skip_train:
            from eokit import models
            from eokit.train import save_model

            net = models.build(
                "lstm",
                n_bands=len(BANDS),
                n_timesteps=args.timesteps,
                n_classes=args.classes,
                units=args.units,
                dropout=0.0,
            )
            card = {
                "name": "lstm",
                "kind": "timeseries",
                "classes": [f"class {k}" for k in range(args.classes)],
                "class_ids": list(range(args.classes)),
                "bands": BANDS,
                "n_timesteps": args.timesteps,
                "normalisation": {"mean": [2000.0] * len(BANDS), "std": [1500.0] * len(BANDS)},
                "flag_handling": "mask",
            }
            model = str(save_model(net, card, tmp / "lstm.keras", overwrite=True))
        else:
            summary["train"] = train_check(args, tmp, gpu)
            model = summary["train"]["model"]
        save()
        # probe: warm-up (tracing/compilation), then timed runs with and without XLA
        say(f"probe {probe} x {probe} px, chunk {args.chunk}, batch {args.batch}")
        probes = {}
        modes = [True, False] if gpu else [None]
        for jit in modes:
            map_once(model, min(probe, 2 * args.chunk), args, jit, tmp)  # warm-up of this mode
            r = map_once(model, probe, args, jit, tmp)
            probes[str(jit)] = r
            say(
                f"probe jit_compile={jit}: {r['pixels_per_s']:,.0f} px/s, {r['seconds']:.1f} s, "
                f"host peak {r['peak_host_gb']:.2f} GB"
            )
        best = max(probes.values(), key=lambda r: r["pixels_per_s"])
        summary["probe"] = probes
        est = args.tile_size**2 / best["pixels_per_s"]
        summary["estimate_full_s"] = est
        say(
            f"estimated {args.tile_size} x {args.tile_size} px: {est:.0f} s ({est / 60:.1f} min) with "
            f"jit_compile={best['jit_compile']}; {left():.0f} s of budget left"
        )
        save()
        size = args.tile_size
        if est > 0.9 * left():
            size = int(math.sqrt(0.8 * max(left(), 0) * best["pixels_per_s"]) // args.chunk * args.chunk)
            say(f"the full tile does not fit the budget: mapping {size} x {size} px instead (extrapolate)")
        if size >= args.chunk:
            r = map_once(model, size, args, best["jit_compile"], tmp)
            r["gpu_peak_gb"] = gpu_memory() if gpu else None
            r["full_tile"] = size == args.tile_size
            r["extrapolated_full_s"] = args.tile_size**2 / r["pixels_per_s"]
            summary["map"] = r
            if args.tile_size != 10980:
                goal = "n/a (dry run: not a full Sentinel-2 tile)"
            elif r["full_tile"]:
                goal = "MET" if r["seconds"] <= 300 else "not met"
            else:
                goal = "not measured (extrapolated)"
            say(
                f"map {size} x {size} px -> COG: {r['seconds']:.1f} s ({r['seconds'] / 60:.2f} min), "
                f"{r['pixels_per_s']:,.0f} px/s, host peak {r['peak_host_gb']:.2f} GB, GPU peak "
                f"{r['gpu_peak_gb']} GB, COGs {r['cog_bytes']}; goal (10,980^2 px tile <= 5 min): {goal}"
                + ("" if r["full_tile"] else f" (full tile at this rate: {r['extrapolated_full_s'] / 60:.1f} min)")
            )
        save()
    say(f"summary written to {out / 'gpu_check.json'}")
    return summary


if __name__ == "__main__":
    main()

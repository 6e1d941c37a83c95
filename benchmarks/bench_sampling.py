"""Benchmark: weak-label sampling of a Sentinel-2 cube on a dask LocalCluster, 2 workers against 1.

A benchmark cube is generated as GeoTIFFs (one deflate-compressed, tiled file per date with all 9 bands,
plus an SCL file), with square fields as polygons. `eokit.sampling.make_training_set` then runs on a
LocalCluster of 1 worker (baseline) and of 2 workers (single-threaded worker processes), same seed, same
samples; rows report the best wall time of two runs, samples/s, and check that both give identical sets.
Full: 2048 x 2048 pixels x 24 dates x 9 bands (1.8 GB as int16), 20,000 samples. Quick: 256 x 256 x 6.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common, however this script is loaded
from _common import MACHINE, report  # noqa: E402

BANDS = ["B2", "B3", "B4", "B5", "B6", "B7", "B8A", "B11", "B12"]


def make_cube(folder: Path, size: int, n_dates: int, field: int = 32, seed: int = 0) -> Path:
    """Write S2_<date>.tif (9 bands int16) + SCL_<date>.tif and fields.gpkg under `folder`; return folder."""
    import geopandas as gpd
    import rasterio
    from rasterio.transform import from_origin
    from shapely.geometry import box

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    x0, y0 = 500000.0, 5300000.0
    transform = from_origin(x0, y0, 10, 10)
    nf = size // field
    crop = rng.integers(0, 8, size=(nf, nf))
    idx = np.minimum(np.arange(size) // field, nf - 1)
    fmap = crop[idx][:, idx]  # class of each pixel
    level = rng.uniform(300, 3000, size=(8, len(BANDS), n_dates))
    dates = np.datetime64("2018-03-01") + np.arange(n_dates) * 10
    prof = dict(
        driver="GTiff",
        width=size,
        height=size,
        crs="EPSG:32633",
        transform=transform,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
    )
    for t, d in enumerate(dates):
        stamp = str(d).replace("-", "")
        with rasterio.open(folder / f"S2_{stamp}.tif", "w", count=len(BANDS), dtype="int16", **prof) as dst:
            for b in range(len(BANDS)):
                v = level[fmap, b, t] + rng.normal(0, 40, size=(size, size))
                dst.write(v.astype(np.int16), b + 1)
            dst.descriptions = tuple(BANDS)
        coarse = rng.random((size // 64 + 1, size // 64 + 1))
        cloud = np.repeat(np.repeat(coarse, 64, 0), 64, 1)[:size, :size] < 0.2
        scl = np.where(cloud, 9, 4).astype(np.uint8)
        with rasterio.open(folder / f"SCL_{stamp}.tif", "w", count=1, dtype="uint8", **prof) as dst:
            dst.write(scl, 1)
    geoms, codes = [], []
    for i in range(nf):
        for j in range(nf):
            geoms.append(
                box(x0 + j * field * 10, y0 - (i + 1) * field * 10, x0 + (j + 1) * field * 10, y0 - i * field * 10)
            )
            codes.append(int(crop[i, j]))
    gpd.GeoDataFrame({"class_id": codes}, geometry=geoms, crs="EPSG:32633").to_file(folder / "fields.gpkg")
    return folder


def _timed(folder: Path, n_workers: int, samples: int, chunk: int, repeats: int) -> tuple[float, object]:
    """Best wall time of `repeats` runs on a LocalCluster of `n_workers` single-threaded processes."""
    from distributed import LocalCluster

    from eokit import cube, sampling

    best, ds = float("inf"), None
    with LocalCluster(
        n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None, memory_limit="3GiB"
    ) as cluster:
        for _ in range(repeats):
            c = cube.open(folder, chunks=chunk)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = sampling.make_training_set(
                    c,
                    folder / "fields.gpkg",
                    "class_id",
                    samples,
                    seed=0,
                    scheduler=cluster.scheduler_address,
                    progress=False,
                )
            best = min(best, time.perf_counter() - t0)
    return best, ds


def run(quick: bool = False, tiny: bool = False) -> list[dict]:
    """Return benchmark rows: sampling wall time and samples/s with 2 dask workers against 1 (`tiny`: 128 px x 3)."""
    size, n_dates, samples, chunk = (
        (128, 3, 100, 64) if tiny else (256, 6, 500, 128) if quick else (2048, 24, 20000, 512)
    )
    tmp = Path(tempfile.mkdtemp(prefix="eokit-bench-sampling-"))
    try:
        folder = make_cube(tmp / "cube", size, n_dates)
        os.sync()  # the cube was just written: its write-back would otherwise run during the first timings
        for p in folder.iterdir():  # warm the page cache so neither run pays the first disk read
            p.read_bytes()
        repeats = 1 if quick or tiny else 2  # best of two: the machine may be shared
        t1, ds1 = _timed(folder, 1, samples, chunk, repeats)
        t2, ds2 = _timed(folder, 2, samples, chunk, repeats)
        same = bool(ds1.identical(ds2))
        n = int(ds2.sizes["sample"])
        shape = f"{size}x{size}x{n_dates} dates x 9 bands, chunks {chunk}"
        return [
            {
                "what": f"make_training_set wall time, 2 workers vs 1 ({shape}, {n} samples, identical={same})",
                "baseline": t1,
                "eokit": t2,
                "ratio": t1 / t2,
                "unit": "s",
                "machine": MACHINE,
            },
            {
                "what": "make_training_set throughput, 2 workers vs 1",
                "baseline": n / t1,
                "eokit": n / t2,
                "ratio": t1 / t2,
                "unit": "samples/s",
                "machine": MACHINE,
            },
        ]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    report(run(quick="--quick" in sys.argv), "sampling")

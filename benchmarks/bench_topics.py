"""The LDA topic level on a whole scene: eokit.topics (dask, block by block) against a plain in-memory baseline.

The scene: one synthetic Sentinel-1 scene (`eokit.synthetic.make_sar_scene`: HH, HV in dB, IA) tiled n x n lazily
into a whole scene of 6,400 x 6,400 px, i.e. 2.56 M 4x4 cells, the order of DLR's 2.6 M patches per scene
(`--quick`: 1,600 px, 160 k cells; tests: 512 px). eokit: `topics.fit` (64 words, 11 topics, windows of 64 px),
`topics.topic_map` and `topics.write_cog`, blocks of 1,024 px with two dask threads. Baseline: HH and HV read whole
into NumPy, all cell features in one array, the same seeded samples, k-means, LDA and topic rule in memory; its
map is checked identical to eokit's. Rows: wall time and peak resident memory above the starting point (sampled
every 20 ms). `python benchmarks/bench_topics.py [--quick]` prints the table and writes results_topics.json.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common, however this script is loaded
from _common import MACHINE, PeakRSS, report  # noqa: E402

PARAMS = {"n_topics": 11, "vocabulary": 64, "window": 64, "seed": 0, "max_iter": 20}


def _measured(fn: Any) -> tuple[float, float, Any]:
    """Return (peak resident MiB above the start, seconds, result) of calling `fn`."""
    with PeakRSS(0.02) as mem:
        t0 = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - t0
    return mem.rise_mib, elapsed, result


def _scene(tmp: Path, tile: int, reps: int) -> Any:
    """Return a lazy preprocessed scene: one synthetic scene of `tile` px tiled reps x reps (same CRS, grid)."""
    import dask.array as da
    import xarray as xr
    from affine import Affine

    from eokit import sar
    from eokit.synthetic import make_sar_scene

    make_sar_scene(tmp, "tile", classes=range(6), seed=0, size=tile)
    one = sar.open(tmp / "tile", chunks=1024)
    n, res = tile * reps, 40.0
    data = {v: (("y", "x"), da.block([[one[v].data] * reps] * reps).rechunk(1024)) for v in ("HH", "HV", "IA")}
    ds = xr.Dataset(
        data,
        coords={"y": -1_000_000.0 - res * (np.arange(n) + 0.5), "x": 500_000.0 + res * (np.arange(n) + 0.5)},
        attrs={"scene": f"synthetic_{n}"},
    )
    ds = ds.rio.write_crs(3413).rio.write_transform(Affine(res, 0, 500_000.0, 0, -res, -1_000_000.0))
    for v in ("HH", "HV"):
        ds[v].attrs["units"] = "dB"
    return sar.preprocess(ds)[0]


def _eokit(scene: Any, out: Path) -> np.ndarray:
    import dask

    from eokit import topics

    with dask.config.set(scheduler="threads", num_workers=2):
        model = topics.fit(scene, chunks=1024, **PARAMS)
        tm = topics.topic_map(scene, model)
        topics.write_cog(tm, out, overwrite=True)
    import rasterio

    with rasterio.open(out) as f:
        return f.read(1)


def _baseline(scene: Any) -> np.ndarray:
    """Everything in memory: HH, HV, valid whole; every cell's features in one NumPy array."""
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import LatentDirichletAllocation

    from eokit import _topic_cells as tc

    n_cy, n_cx = tc.check_scene(scene)
    stack = np.stack(
        [np.asarray(scene[v].values, np.float32)[: n_cy * 4, : n_cx * 4] for v in ("HH", "HV")]
        + [(np.asarray(scene["valid"].values) == 1).astype(np.float32)[: n_cy * 4, : n_cx * 4]]
    )
    feat = tc._block_features(stack)  # (cells y, cells x, 6), all at once
    del stack
    ss_cells, ss_windows = np.random.SeedSequence(PARAMS["seed"]).spawn(2)
    ((r, c),) = tc.sample_cells([(n_cy, n_cx)], 100_000, ss_cells)
    sample = feat[r, c]
    sample = sample[np.isfinite(sample).all(1)]
    mean, std = sample.mean(0), sample.std(0)
    std[std == 0] = 1
    km = MiniBatchKMeans(PARAMS["vocabulary"], random_state=PARAMS["seed"], n_init=3, batch_size=4096, max_iter=100)
    km.fit((sample - mean) / std)
    words = tc._block_words(feat, mean, std, np.asarray(km.cluster_centers_, np.float64))
    del feat
    wc = PARAMS["window"] // 4
    counts = tc._block_counts(words, wc, PARAMS["vocabulary"])
    flat = counts.reshape(-1, PARAMS["vocabulary"])
    docs = flat[flat.sum(1) > 0]
    rng = np.random.default_rng(ss_windows)
    fit_docs = docs[np.sort(rng.choice(len(docs), size=min(20_000, len(docs)), replace=False))]
    lda = LatentDirichletAllocation(
        PARAMS["n_topics"], random_state=PARAMS["seed"], learning_method="batch", max_iter=PARAMS["max_iter"], n_jobs=1
    )
    lda.fit(fit_docs)
    theta = np.full((len(flat), PARAMS["n_topics"]), np.nan)
    ok = flat.sum(1) > 0
    theta[ok] = lda.transform(flat[ok])
    phi = lda.components_ / lda.components_.sum(1, keepdims=True)
    info = {0: {"array-location": [(0, words.shape[0]), (0, words.shape[1])]}}
    return tc._block_topics(words, theta.reshape(*counts.shape[:2], -1), phi, wc, block_info=info)


def run(quick: bool = False, tiny: bool = False) -> list[dict]:
    """Return rows: wall time and peak memory of eokit.topics vs the in-memory baseline on a whole scene."""
    tile, reps = (256, 2) if tiny else (800, 2) if quick else (1600, 4)
    with tempfile.TemporaryDirectory() as tmp:
        scene = _scene(Path(tmp), tile, reps)
        n = tile * reps
        cells = (n // 4) ** 2
        _eokit(scene.isel(y=slice(0, 128), x=slice(0, 128)), Path(tmp) / "warm.tif")  # imports, GDAL, caches
        mem_e, t_e, map_e = _measured(lambda: _eokit(scene, Path(tmp) / "topics.tif"))
        mem_b, t_b, map_b = _measured(lambda: _baseline(scene))
    if not np.array_equal(map_e, map_b):
        raise AssertionError("eokit's topic map differs from the in-memory baseline's")
    what = f"{n}x{n} px scene, {cells / 1e6:.2f} M 4x4 cells, 64 words, 11 topics, 64-px windows"
    return [
        {"what": f"topic map + COG, wall time ({what})", "baseline": t_b, "eokit": t_e, "ratio": t_b / t_e,
         "unit": "s", "machine": MACHINE},
        {"what": f"topic map + COG, peak RSS above start ({what}; baseline: all cell features in one array)",
         "baseline": mem_b, "eokit": mem_e, "ratio": mem_b / max(mem_e, 1e-6), "unit": "MiB", "machine": MACHINE},
    ]  # fmt: skip


if __name__ == "__main__":
    report(run(quick="--quick" in sys.argv), "topics")

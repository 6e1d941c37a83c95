"""TimeSen2Crop: CSV tree -> Zarr store with eokit vs per-file numpy.loadtxt (torchgeo's way), read-back speed,
and peak memory. Generates its own tree (published layout, smooth seeded time series) in a temporary folder."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FULL_SIZE = 1_212_224  # samples (CSV files) of the published tree
sys.path.insert(0, str(ROOT / "benchmarks"))  # benchmarks/_common, however this script is loaded
from _common import MACHINE, PeakRSS, report  # noqa: E402


def _make_tree(root: Path, n_files: int, seed: int = 0) -> tuple[Path, float]:
    """Write a tree of the published shape (16 tiles, real class imbalance) with about `n_files` sample CSVs by
    the full-size generator; return (the TimeSen2Crop folder, seconds it took)."""
    from eokit.synthetic import make_timesen2crop_fullsize

    t0 = time.perf_counter()
    base = make_timesen2crop_fullsize(root, scale=min(1.0, n_files / FULL_SIZE), seed=seed, workers=2, progress=False)
    return base, time.perf_counter() - t0


def _baseline_convert(base: Path, store: Path) -> int:
    """torchgeo-style: numpy.loadtxt per file, stack, then one xarray.to_zarr. Returns the number of samples."""
    import xarray as xr

    from eokit.schema import TS2C_BANDS

    tiles = sorted(d for d in base.iterdir() if d.is_dir())
    n_time = max(len((t / "dates.csv").read_text().split()) - 1 for t in tiles)
    refl, flags, labels = [], [], []
    for t in tiles:
        for cdir in sorted((d for d in t.iterdir() if d.is_dir()), key=lambda d: int(d.name)):
            for f in sorted(cdir.glob("*.csv"), key=lambda p: int(p.stem)):
                a = np.loadtxt(f, delimiter=",", skiprows=1, dtype=np.int64)
                r = np.zeros((n_time, 9), np.int16)
                r[: len(a)] = a[:, :9]
                fl = np.full(n_time, 255, np.uint8)
                fl[: len(a)] = a[:, 9]
                refl.append(r)
                flags.append(fl)
                labels.append(int(cdir.name))
    ds = xr.Dataset(
        {
            "reflectance": (("sample", "time", "band"), np.stack(refl)),
            "flag": (("sample", "time"), np.stack(flags)),
            "label": ("sample", np.array(labels)),
        },
        coords={"band": TS2C_BANDS},
    )
    ds.to_zarr(store, mode="w")
    return ds.sizes["sample"]


def _cpu() -> float:
    import resource

    a, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return a.ru_utime + a.ru_stime + c.ru_utime + c.ru_stime


def _timed(fn: Any) -> tuple[float, float, Any]:
    c0, t0 = _cpu(), time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, _cpu() - c0, out


def run(quick: bool = False, tiny: bool = False, n_files: int | None = None) -> list[dict]:
    """Return benchmark rows (what, baseline, eokit, ratio, unit, machine); `tiny`: 300 files (a smoke test),
    `n_files`: a tree of that many files (the published shape at that fraction of its 1,212,224)."""
    import zipfile

    import xarray as xr
    import zarr.codecs  # noqa: F401 - import costs paid before timing either contender

    from eokit.datasets import timesen2crop as ts
    from eokit.synthetic import make_timesen2crop_fullsize

    n_files = n_files or (300 if tiny else 3000 if quick else 60000)
    chunk = 100 if tiny else 1000 if quick else 20000
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_ts2c_") as tmpd:
        tmp = Path(tmpd)
        base, t_gen = _make_tree(tmp / "src", n_files)
        n = sum(1 for _ in base.rglob("*/*/*.csv"))
        archive = tmp / "TimeSen2Crop.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for f in sorted(base.rglob("*")):
                zf.write(f, f.relative_to(base.parent).as_posix())
        for f in base.rglob("*.csv"):  # warm the page cache equally for both contenders
            f.read_bytes()
        xr.Dataset({"a": ("x", np.zeros(2))}).to_zarr(tmp / "warm.zarr")
        # the tree and the archive were just written: without this the kernel's write-back of their dirty pages
        # runs during the timings below (measured: the baseline 8.4 s instead of 5.2 s, eokit 2.3 s instead of 1.3)
        os.sync()

        def machine() -> str:
            return f"{MACHINE}, load avg {os.getloadavg()[0]:.1f}"

        # best of 2 each, alternating: the first eokit run also pays its one-time imports (the compiled CSV scanner,
        # the codecs, dask's process pool: about 0.5 s, a fixed cost a full-size run does not notice)
        runs = []
        for i in range(2):
            tb, cb, _ = _timed(lambda i=i: _baseline_convert(base, tmp / f"baseline{i}.zarr"))
            te, ce, store = _timed(
                lambda i=i: ts.to_zarr(
                    base, tmp / f"eokit{i}.zarr", chunks=chunk, workers=2, scheduler="processes", progress=False
                )
            )
            runs.append((tb, cb, te, ce))
        tb, cb = min(r[:2] for r in runs)
        te, ce = min(r[2:] for r in runs)
        m = machine()
        rows.append(
            {
                "what": f"CSV tree -> Zarr, {n} files (wall, 2 processes)",
                "baseline": n / tb,
                "eokit": n / te,
                "ratio": tb / te,
                "unit": "files/s",
                "machine": m,
            }
        )
        rows.append(
            {
                "what": f"synthetic tree writer (2 processes) vs the conversion it feeds, {n} files",
                "baseline": n / te,
                "eokit": n / t_gen,
                "ratio": te / t_gen,
                "unit": "files/s",
                "machine": m,
            }
        )
        rows.append(
            {
                "what": f"CSV tree -> Zarr, {n} files (CPU time, all processes)",
                "baseline": cb,
                "eokit": ce,
                "ratio": cb / ce,
                "unit": "CPU s",
                "machine": m,
            }
        )
        tw, _, _ = _timed(
            lambda: make_timesen2crop_fullsize(
                tmp / "zipsrc", scale=min(1.0, n_files / FULL_SIZE), seed=0, workers=2, progress=False, archive=True
            )
        )
        rows.append(
            {
                "what": f"synthetic TimeSen2Crop.zip writer (2 processes) vs the conversion it feeds, {n} files",
                "baseline": n / te,
                "eokit": n / tw,
                "ratio": te / tw,
                "unit": "files/s",
                "machine": machine(),
            }
        )
        tz, cz, _ = _timed(
            lambda: ts.to_zarr(
                archive, tmp / "zip.zarr", chunks=chunk, workers=2, scheduler="processes", progress=False
            )
        )
        rows.append(
            {
                "what": f"TimeSen2Crop.zip read in place -> Zarr, {n} files (wall)",
                "baseline": n / tb,
                "eokit": n / tz,
                "ratio": tb / tz,
                "unit": "files/s",
                "machine": machine(),
            }
        )
        to, co, ds = _timed(lambda: ts.open(base))
        rows.append(
            {
                "what": "CSV tree -> memory, 1 process (wall)",
                "baseline": n / tb,
                "eokit": n / to,
                "ratio": tb / to,
                "unit": "files/s",
                "machine": machine(),
            }
        )
        # memory measured in separate runs (polling would disturb the timings): PSS summed over the process tree,
        # so the worker processes count and the pages they share with this one count once
        with PeakRSS(0.02, tree=True, pss=True) as mb:
            _baseline_convert(base, tmp / "baseline2.zarr")
        with PeakRSS(0.02, tree=True, pss=True) as me:
            ts.to_zarr(base, tmp / "eokit2.zarr", chunks=chunk, workers=2, scheduler="processes", progress=False)
        rows.append(
            {
                "what": f"peak memory (PSS) during conversion, chunks of {chunk}",
                "baseline": mb.rise_mib,
                "eokit": me.rise_mib,
                "ratio": mb.rise_mib / max(me.rise_mib, 1e-9),
                "unit": "MiB above start",
                "machine": machine(),
            }
        )
        # read-back speed: the baseline's store (xarray defaults) against eokit's, on a bigger store made by
        # repeating the converted samples
        reps = max(1, (5_000 if tiny else 50_000 if quick else 400_000) // ds.sizes["sample"])
        big = xr.concat([ds] * reps, dim="sample")
        big_store = ts._dataset_to_store(big, tmp / "big.zarr", 20000)
        nb = big.sizes["sample"]
        plain = tmp / "big_plain.zarr"
        big[["reflectance", "flag", "label"]].to_zarr(plain, mode="w")
        del big
        os.sync()  # as above: the stores just written are not flushed during the timings

        def best_of(fn: Any) -> float:
            best = np.inf
            for _ in range(3):
                t0 = time.perf_counter()
                out = fn()
                best = min(best, time.perf_counter() - t0)
            assert out.sizes["sample"] == nb
            return best

        tbl = best_of(lambda: xr.open_zarr(plain).load())
        tzp = best_of(lambda: xr.open_zarr(big_store).load())  # the same store through zarr-python
        tel = best_of(lambda: ts.open(big_store).load())
        for what, tb_ in (("xarray.to_zarr defaults, 3 variables", tbl), ("the same store via xarray.open_zarr", tzp)):
            rows.append(
                {
                    "what": f"read store into memory, {nb} samples (baseline: {what}; goal 1 M/s)",
                    "baseline": nb / tb_,
                    "eokit": nb / tel,
                    "ratio": tb_ / tel,
                    "unit": "samples/s",
                    "machine": machine(),
                }
            )

        def blocks(opened: Any) -> Any:  # what the training reader takes: consecutive blocks of whole chunks
            for a in range(0, nb, 20000):
                sub = opened.isel(sample=slice(a, a + 20000))
                dates = "date" if "date" in sub else "tile_index"  # the plain reader's per-sample date key
                sub["reflectance"].values, sub["flag"].values, sub[dates].values, sub["label"].values
            return opened

        tbz = best_of(lambda: blocks(xr.open_zarr(big_store)))
        tbe = best_of(lambda: blocks(ts.open(big_store)))
        rows.append(
            {
                "what": f"read store block by block (reflectance, flag, date, label), {nb} samples "
                "(baseline: xarray.open_zarr)",
                "baseline": nb / tbz,
                "eokit": nb / tbe,
                "ratio": tbz / tbe,
                "unit": "samples/s",
                "machine": machine(),
            }
        )
        assert store.exists()
    return rows


if __name__ == "__main__":
    files = int(sys.argv[sys.argv.index("--files") + 1]) if "--files" in sys.argv else None
    report(run(quick="--quick" in sys.argv, n_files=files), "timesen2crop")

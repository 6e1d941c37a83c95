"""TimeSen2Crop: CSV tree -> Zarr store with eokit vs per-file numpy.loadtxt (torchgeo's way), read-back speed,
and peak memory. Generates its own tree (published layout, smooth seeded time series) in a temporary folder."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _machine() -> str:
    return f"cpu {os.cpu_count()} cores"


def _make_tree(root: Path, n_files: int, seed: int = 0) -> Path:
    """Write a tree of about `n_files` sample CSVs over 3 tiles (40-70 dates) with smooth reflectance series."""
    from eokit.schema import TS2C_CSV_COLUMNS

    rng = np.random.default_rng(seed)
    base = root / "TimeSen2Crop"
    tiles = {"33UVP": 70, "33TWN": 55, "32TNT": 42}
    per_tile = n_files // len(tiles)
    header = ",".join(TS2C_CSV_COLUMNS)
    for tile, n_dates in tiles.items():
        tdir = base / tile
        tdir.mkdir(parents=True)
        days = np.sort(rng.choice(np.arange(365), n_dates, replace=False))
        dates = (np.datetime64("2017-09-01") + days).astype(str)
        (tdir / "dates.csv").write_text("acquisition_date\n" + "\n".join(d.replace("-", "") for d in dates) + "\n")
        labels = rng.integers(0, 16, per_tile)
        counters = np.zeros(16, int)
        t = np.linspace(0, 2 * np.pi, n_dates)
        for lab in labels:
            cdir = tdir / str(lab)
            cdir.mkdir(exist_ok=True)
            base_refl = rng.integers(300, 3000, 9)
            amp = rng.integers(100, 2500, 9)
            refl = (base_refl[None] + amp[None] * np.sin(t[:, None] + lab / 3.0)
                    + rng.normal(0, 60, (n_dates, 9))).clip(0, 12000).astype(np.int64)
            flag = rng.choice([0, 0, 0, 0, 1, 2, 3], (n_dates, 1))
            rows = np.hstack([refl, flag])
            body = "\n".join(",".join(map(str, r)) for r in rows.tolist())
            (cdir / f"{counters[lab]}.csv").write_text(header + "\n" + body + "\n")
            counters[lab] += 1
    return base


class _PeakRSS:
    """Poll the RSS of this process plus its children; .peak is the maximum sum seen (bytes)."""

    def __init__(self, interval: float = 0.01) -> None:
        import psutil

        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()

    def _sample(self) -> int:
        total = self.proc.memory_info().rss
        for c in self.proc.children(recursive=True):
            try:
                total += c.memory_info().rss
            except Exception:  # noqa: BLE001 - a child that just exited
                pass
        return total

    def __enter__(self) -> "_PeakRSS":
        self.base = self._sample()
        self.peak = self.base
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            time.sleep(self.interval)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._sample())


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
    ds = xr.Dataset({"reflectance": (("sample", "time", "band"), np.stack(refl)),
                     "flag": (("sample", "time"), np.stack(flags)), "label": ("sample", np.array(labels))},
                    coords={"band": TS2C_BANDS})
    ds.to_zarr(store, mode="w")
    return ds.sizes["sample"]


def run(quick: bool = False) -> list[dict]:
    """Return benchmark rows (what, baseline, eokit, ratio, unit, machine)."""
    import xarray as xr

    from eokit.datasets import timesen2crop as ts

    n_files = 3000 if quick else 12000
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_ts2c_") as tmp:
        tmp = Path(tmp)
        base = _make_tree(tmp / "src", n_files)
        n = sum(1 for _ in base.rglob("*/*/*.csv"))
        for f in base.rglob("*.csv"):  # warm the page cache equally for both contenders
            f.read_bytes()
        import zarr.codecs  # noqa: F401 - import costs paid before timing either contender
        xr.Dataset({"a": ("x", np.zeros(2))}).to_zarr(tmp / "warm.zarr")

        with _PeakRSS() as mb:
            t0 = time.perf_counter()
            _baseline_convert(base, tmp / "baseline.zarr")
            tb = time.perf_counter() - t0
        with _PeakRSS() as me:
            t0 = time.perf_counter()
            store = ts.to_zarr(base, tmp / "eokit.zarr", chunks=1000 if quick else 3000, workers=2, scheduler="processes",
                               progress=False)
            te = time.perf_counter() - t0
        rows.append({"what": f"TimeSen2Crop CSV tree -> Zarr ({n} files)", "baseline": n / tb, "eokit": n / te,
                     "ratio": tb / te, "unit": "files/s", "machine": _machine()})
        # single process, no store: the parser alone
        t0 = time.perf_counter()
        ds = ts.open(base)
        to = time.perf_counter() - t0
        rows.append({"what": "TimeSen2Crop CSV tree -> memory, 1 process", "baseline": n / tb, "eokit": n / to,
                     "ratio": tb / to, "unit": "files/s", "machine": _machine()})
        rows.append({"what": "peak RSS during conversion (process + workers)", "baseline": (mb.peak - mb.base) / 1e6,
                     "eokit": (me.peak - me.base) / 1e6, "ratio": (mb.peak - mb.base) / max(me.peak - me.base, 1),
                     "unit": "MB above start", "machine": _machine()})
        # read-back speed: a store of >= 200k samples made by repeating the converted samples
        reps = max(1, (50_000 if quick else 400_000) // ds.sizes["sample"])
        big = xr.concat([ds] * reps, dim="sample")
        big_store = tmp / "big.zarr"
        ts._dataset_to_store(big, big_store, 20000)
        nb = big.sizes["sample"]
        del big
        best = np.inf
        for _ in range(3):
            t0 = time.perf_counter()
            loaded = ts.open(big_store).load()
            best = min(best, time.perf_counter() - t0)
        assert loaded.sizes["sample"] == nb
        del loaded
        rows.append({"what": f"read store into memory ({nb} samples)", "baseline": n / tb, "eokit": nb / best,
                     "ratio": (nb / best) / (n / tb), "unit": "samples/s", "machine": _machine()})
        shutil.rmtree(tmp / "baseline.zarr", ignore_errors=True)
        assert store.exists()
    return rows


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    res = run(quick=quick)
    w = max(len(r["what"]) for r in res)
    print(f"{'what':<{w}}  {'baseline':>12}  {'eokit':>12}  {'ratio':>7}  unit")
    for r in res:
        print(f"{r['what']:<{w}}  {r['baseline']:>12.1f}  {r['eokit']:>12.1f}  {r['ratio']:>7.2f}  {r['unit']}"
              f"  ({r['machine']})")
    (Path(__file__).parent / "results_timesen2crop.json").write_text(json.dumps(res, indent=2))

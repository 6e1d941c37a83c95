"""Small in-memory training sets in the eokit schemas (TIMESERIES_SCHEMA, PATCH_SCHEMA) with a learnable signal.

Time series: every class has its own phenology (a seasonal bump of the near-infrared/red contrast at a
class-specific date); clouds (flag 1) brighten all bands; tiles have different numbers of acquisitions,
so the shorter ones are padded at the end (flag 255, NaT). Samples carry x, y and field_id like the
sampler's output.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

BANDS = ["B2", "B3", "B4", "B5", "B6", "B7", "B8A", "B11", "B12"]


def timeseries_set(
    n_per_class: int = 20,
    n_classes: int = 4,
    tiles: tuple[str, ...] = ("33UVP", "33TWN", "33UWP"),
    n_steps: tuple[int, ...] = (24, 20, 22),
    seed: int = 0,
    cloud: float = 0.15,
    field_size: int = 4,
) -> xr.Dataset:
    """Return a TIMESERIES_SCHEMA dataset: n_per_class samples of each class in each tile."""
    rng = np.random.default_rng(seed)
    t_max = max(n_steps)
    refl, flag, date, label, tile, src, xs, ys, fid = [], [], [], [], [], [], [], [], []
    field = 0
    for ti, (tname, nt) in enumerate(zip(tiles, n_steps, strict=True)):
        days = np.sort(rng.choice(np.arange(0, 365), nt, replace=False))
        dates = np.datetime64("2017-09-01") + days.astype("timedelta64[D]")
        for c in range(n_classes):
            peak = 60 + 250 * c / max(n_classes - 1, 1)
            for k in range(n_per_class):
                if k % field_size == 0:
                    field += 1
                    fx, fy = rng.uniform(0, 20000, 2) + ti * 100000
                bump = np.exp(-0.5 * ((days - peak - rng.normal(0, 8)) / 35.0) ** 2)
                r = np.empty((t_max, len(BANDS)), np.int16)
                base = np.array([500, 700, 600, 1200, 2000, 2300, 2500, 1800, 1000], float)
                veg = np.array([-200, 0, -400, 300, 1200, 1600, 2000, 200, -300], float)
                v = base[None] + bump[:, None] * veg[None] + rng.normal(0, 80, (nt, len(BANDS)))
                f = np.where(rng.random(nt) < cloud, 1, 0).astype(np.uint8)
                v[f == 1] += 3000
                r[:] = 0
                r[:nt] = np.clip(v, 0, 10000).astype(np.int16)
                ff = np.full(t_max, 255, np.uint8)
                ff[:nt] = f
                d = np.full(t_max, np.datetime64("NaT"), "datetime64[ns]")
                d[:nt] = dates
                refl.append(r)
                flag.append(ff)
                date.append(d)
                label.append(c)
                tile.append(tname)
                src.append(f"{tname}/{c}/{k}.csv")
                xs.append(fx + rng.uniform(0, 30))
                ys.append(fy + rng.uniform(0, 30))
                fid.append(field)
    names = [f"class{c}" for c in range(n_classes)]
    ds = xr.Dataset(
        {
            "reflectance": (("sample", "time", "band"), np.stack(refl)),
            "flag": (("sample", "time"), np.stack(flag)),
            "date": (("sample", "time"), np.stack(date)),
            "label": (("sample",), np.array(label, np.int64)),
            "label_name": (("sample",), np.array([names[c] for c in label])),
            "tile": (("sample",), np.array(tile)),
            "source_file": (("sample",), np.array(src)),
            "x": (("sample",), np.array(xs)),
            "y": (("sample",), np.array(ys)),
            "field_id": (("sample",), np.array(fid, np.int64)),
        },
        coords={"band": BANDS},
        attrs={"crs": "EPSG:32633", "source": "synthetic test set"},
    )
    return ds


def patch_set(n_per_class: int = 16, n_classes: int = 3, size: int = 8, seed: int = 0) -> xr.Dataset:
    """Return a PATCH_SCHEMA dataset: HH/HV/IA patches whose mean backscatter and texture depend on the class."""
    rng = np.random.default_rng(seed)
    imgs, labels = [], []
    for c in range(n_classes):
        for _ in range(n_per_class):
            hh = -20 + 5 * c + rng.normal(0, 1 + c, (size, size))
            hv = -28 + 3 * c + rng.normal(0, 1, (size, size))
            ia = np.full((size, size), 30.0) + rng.uniform(-5, 5)
            imgs.append(np.stack([hh, hv, ia], -1))
            labels.append(c)
    n = len(labels)
    return xr.Dataset(
        {
            "image": (("patch", "row", "col", "channel"), np.stack(imgs).astype(np.float32)),
            "label": (("patch",), np.array(labels, np.int64)),
            "row0": (("patch",), np.arange(n, dtype=np.int64)),
            "col0": (("patch",), np.zeros(n, np.int64)),
            "polygon_id": (("patch",), np.arange(n, dtype=np.int64) // 4),
            "scene": (("patch",), np.array(["scene0"] * n)),
        },
        coords={"channel": ["HH", "HV", "IA"]},
    )

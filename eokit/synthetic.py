"""Seeded generators of the bundled sample data: crop phenology, a TimeSen2Crop tree, an S2 stack, SAR scenes.

Everything here is deterministic for a given seed (numpy ``Generator`` seeded from the seed and the
tile/scene name), so ``scripts/make_sample_data.py`` rebuilds the committed bundle byte for byte (the
GeoPackages excepted: SQLite stores a write time).

Physics in brief:

* Crop phenology is a double-logistic green-vegetation curve per class (autumn sowing and winter dip for
  winter crops, spring/summer green-up, senescence, harvest; grassland is cut two to four times; rapeseed
  flowers yellow), with per-sample jitter of every date, amplitude and rate, and a small shift per tile.
* Reflectance is a linear mixture of green vegetation, senescent (dry) vegetation, yellow flowers and
  soil endmembers of the nine TimeSen2Crop bands, with soil moisture, haze and sensor noise; clouds are
  bright, shadows dark, snow bright in the visible and dark in the SWIR.
* SAR backscatter (sigma0, dB) has realistic levels per WMO ice class, a linear incidence-angle slope
  (about -0.2 dB per degree in HH), class texture (ridges in deformed ice, wind on open water), a
  noise floor with scalloping in HV, and multiplicative gamma speckle.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from eokit._io import atomic_output, check_target, write_gpkg
from eokit.schema import (
    FLAG_CLEAR,
    FLAG_CLOUD,
    FLAG_SHADOW,
    FLAG_SNOW,
    ICE_CLASSES,
    TS2C_BANDS,
    TS2C_CLASSES,
    TS2C_CSV_COLUMNS,
)

#: First and last day of the TimeSen2Crop agronomic year (the sample's acquisitions lie in between).
SEASON_START = np.datetime64("2017-09-01", "D")
SEASON_END = np.datetime64("2018-08-31", "D")
#: Sample tiles -> number of acquisitions (different per tile, as in the published set).
SAMPLE_TILES: dict[str, int] = {"33UVP": 27, "33TWN": 30, "33UWP": 24}
#: Austrian INVEKOS crop names (German, as in the national declarations) -> TimeSen2Crop class id.
INVEKOS_CLASSES: dict[str, int] = {
    "KOERNERERBSEN": 0,
    "DAUERWIESE": 1,
    "KOERNERMAIS": 2,
    "SILOMAIS": 2,
    "KARTOFFELN": 3,
    "SONNENBLUMEN": 4,
    "SOJABOHNEN": 5,
    "WINTERGERSTE": 6,
    "KUEMMEL": 7,
    "WINTERROGGEN": 8,
    "WINTERRAPS": 9,
    "ZUCKERRUEBEN": 10,
    "SOMMERGERSTE": 11,
    "WINTERWEICHWEIZEN": 12,
    "WINTERTRITICALE": 13,
    "WEINGARTEN": 14,
    "OELKUERBIS": 15,
}
#: Sentinel-2 L2A scene classification codes used in the sample stack.
SCL_NO_DATA, SCL_SHADOW, SCL_VEGETATION, SCL_BARE_SOIL = 0, 3, 4, 5
SCL_CLOUD_MEDIUM, SCL_CLOUD_HIGH, SCL_CIRRUS, SCL_SNOW = 8, 9, 10, 11
#: Sample SAR scenes (names follow the METNO Sentinel-1 EW acquisitions of 2018).
SAR_SCENES: list[str] = ["S1B_20180213T175444", "S1A_20180313T181225", "S1A_20180612T180423"]

# --- spectral endmembers (reflectance, bands B2 B3 B4 B5 B6 B7 B8A B11 B12) -----------------------
_SOIL = np.array([0.075, 0.105, 0.135, 0.165, 0.195, 0.215, 0.235, 0.305, 0.255])
_VEG = np.array([0.030, 0.070, 0.035, 0.110, 0.300, 0.400, 0.450, 0.220, 0.110])
_DRY = np.array([0.070, 0.100, 0.125, 0.160, 0.210, 0.240, 0.270, 0.370, 0.290])
_FLOWER = np.array([0.050, 0.160, 0.140, 0.200, 0.300, 0.360, 0.400, 0.230, 0.120])
_SNOW = np.array([0.800, 0.790, 0.770, 0.740, 0.700, 0.680, 0.660, 0.080, 0.060])
_CLOUD = np.array([0.420, 0.410, 0.420, 0.440, 0.460, 0.470, 0.480, 0.360, 0.260])
_BUILT = np.array([0.110, 0.120, 0.130, 0.140, 0.150, 0.160, 0.170, 0.220, 0.200])
_HAZE = np.array([1.0, 0.8, 0.6, 0.5, 0.4, 0.35, 0.3, 0.1, 0.05])

# --- class phenology parameters in season days (0 = 1 September) ------------------------------------
# sow: autumn emergence (None: spring crop), aut: autumn green cover, dip: winter loss of green,
# sos/rs: spring green-up day and rate, amp: peak green fraction, eos/re: senescence day and rate,
# harv: harvest day, flower: (day, width, depth) of a yellow/white flowering phase.
_CLASS_PARAMS: dict[int, dict[str, Any]] = {
    0: dict(sow=None, aut=0.0, dip=0.0, sos=220, rs=9, amp=0.78, eos=292, re=7, harv=308),
    2: dict(sow=None, aut=0.0, dip=0.0, sos=272, rs=8, amp=0.88, eos=372, re=10, harv=400),
    3: dict(sow=None, aut=0.0, dip=0.0, sos=250, rs=7, amp=0.80, eos=322, re=8, harv=345),
    4: dict(sow=None, aut=0.0, dip=0.0, sos=258, rs=8, amp=0.78, eos=330, re=6, harv=372),
    5: dict(sow=None, aut=0.0, dip=0.0, sos=278, rs=8, amp=0.86, eos=357, re=6, harv=390),
    6: dict(sow=28, aut=0.32, dip=0.30, sos=192, rs=9, amp=0.86, eos=275, re=7, harv=302),
    7: dict(sow=-30, aut=0.40, dip=0.25, sos=186, rs=10, amp=0.72, eos=288, re=8, harv=318,
            flower=(262, 10, 0.12)),
    8: dict(sow=35, aut=0.30, dip=0.30, sos=188, rs=9, amp=0.82, eos=282, re=7, harv=312),
    9: dict(sow=-8, aut=0.58, dip=0.25, sos=186, rs=8, amp=0.88, eos=282, re=6, harv=305,
            flower=(240, 12, 0.35)),
    10: dict(sow=None, aut=0.0, dip=0.0, sos=262, rs=12, amp=0.90, eos=420, re=10, harv=430),
    11: dict(sow=None, aut=0.0, dip=0.0, sos=222, rs=8, amp=0.82, eos=290, re=6, harv=322),
    12: dict(sow=45, aut=0.25, dip=0.30, sos=196, rs=9, amp=0.86, eos=292, re=7, harv=318),
    13: dict(sow=40, aut=0.27, dip=0.30, sos=193, rs=9, amp=0.84, eos=288, re=7, harv=314),
}


def _rng(seed: int | np.random.Generator, *keys: str | int) -> np.random.Generator:
    """A Generator derived from `seed` and stable keys (names hash with crc32, independent of PYTHONHASHSEED)."""
    if isinstance(seed, np.random.Generator):
        return seed
    ints = [int(seed)] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return np.random.default_rng(ints)


def _sig(t: np.ndarray, t0: float, r: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(t - t0) / max(r, 0.5)))


def _gauss(t: np.ndarray, t0: float, w: float) -> np.ndarray:
    return np.exp(-0.5 * ((t - t0) / w) ** 2)


def season_day(dates: Any) -> np.ndarray:
    """Return days since the 1 September that opens each date's agronomic year (float array)."""
    d = np.asarray(dates, dtype="datetime64[D]")
    years = d.astype("datetime64[Y]").astype(int) + 1970
    months = d.astype("datetime64[M]").astype(int) % 12 + 1
    start_year = np.where(months >= 9, years, years - 1)
    starts = np.array([np.datetime64(f"{y:04d}-09-01", "D") for y in start_year.ravel()]).reshape(d.shape)
    return (d - starts).astype(float)


def tile_shift(tile: str) -> float:
    """Return the phenology shift in days of a tile (southern 'T' latitude band earlier, 'U' later)."""
    band = tile[-3] if len(tile) >= 3 else "U"
    return {"T": -6.0, "U": 2.0}.get(band, 0.0) + (zlib.crc32(tile.encode()) % 5) - 2.0


def _params(class_id: int, rng: np.random.Generator, shift: float) -> dict[str, Any]:
    """Per-sample phenology parameters of one crop class, jittered."""
    if class_id == 15:  # other crops: anything from early spring to late summer crops
        sos = rng.uniform(200, 285)
        eos = sos + rng.uniform(50, 110)
        p = dict(sow=None, aut=0.0, dip=0.0, sos=sos, rs=rng.uniform(6, 12), amp=rng.uniform(0.45, 0.85),
                 eos=eos, re=rng.uniform(5, 10), harv=eos + rng.uniform(5, 30))
    else:
        p = dict(_CLASS_PARAMS[class_id])
    common = rng.normal(0.0, 6.0) + shift
    for k in ("sos", "eos", "harv"):
        p[k] = p[k] + common + rng.normal(0.0, 4.0)
    p["harv"] = max(p["harv"], p["eos"] + 3)
    if p["sow"] is not None:
        p["sow"] = p["sow"] + rng.normal(0.0, 8.0)
        p["aut"] = p["aut"] * rng.uniform(0.7, 1.25)
    p["amp"] = float(np.clip(p["amp"] * rng.uniform(0.88, 1.06), 0.2, 0.95))
    p["rs"] *= rng.uniform(0.85, 1.2)
    p["re"] *= rng.uniform(0.85, 1.2)
    if "flower" in p:
        d, w, depth = p["flower"]
        p["flower"] = (d + common + rng.normal(0, 3), w, depth * rng.uniform(0.8, 1.2))
    # catch crop / volunteers after an early harvest, in about a third of the fields
    p["post"] = rng.uniform(0.15, 0.35) if (p["harv"] < 330 and rng.random() < 0.35) else 0.0
    return p


def _canopy(class_id: int, day: np.ndarray, rng: np.random.Generator, shift: float = 0.0
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(green, cover, flower) fractions of one sample at season days `day`; cover >= green + flower."""
    t = np.asarray(day, dtype=float)
    if not 0 <= class_id < len(TS2C_CLASSES):
        raise ValueError(f"class_id must be in 0..{len(TS2C_CLASSES) - 1}, got {class_id}")
    if class_id == 1:  # grassland: green all year, winter dip, two to four cuts
        base = rng.uniform(0.38, 0.5)
        green = base * (1 - 0.3 * _gauss(t, 140, 35)) + (rng.uniform(0.78, 0.9) - base) * _sig(
            t, 200 + shift + rng.normal(0, 6), 10) * (1 - _sig(t, 400, 10))
        green = green * (1 - 0.2 * _sig(t, 50 + rng.normal(0, 8), 10))  # autumn decline
        n_cuts = int(rng.integers(2, 5))
        first = 258 + shift + rng.normal(0, 8)
        cover = green.copy()
        for c in first + np.cumsum(np.r_[0, rng.uniform(32, 48, n_cuts - 1)]):
            after = np.clip(t - c, 0, None)
            drop = np.where(t >= c, rng.uniform(0.45, 0.65) * np.exp(-after / rng.uniform(12, 20)), 0.0)
            green = green * (1 - drop)
            cover = np.maximum(green, cover * (1 - drop)) + np.where(t >= c, 0.12 * np.exp(-after / 5), 0)
        return green, np.clip(cover, green, 1), np.zeros_like(t)
    if class_id == 14:  # permanent plantation (vineyards, orchards): grass between rows + leaves
        inter = rng.uniform(0.25, 0.35)
        leaves = rng.uniform(0.28, 0.4) * ((1 - _sig(t, 62 + rng.normal(0, 6), 7))
                                           + _sig(t, 228 + shift + rng.normal(0, 6), 8))
        green = inter * (1 - 0.25 * _gauss(t, 140, 35)) + leaves
        return green, np.clip(green + 0.12, 0, 1), np.zeros_like(t)
    p = _params(class_id, rng, shift)
    green = np.zeros_like(t)
    if p["sow"] is not None:
        green += p["aut"] * _sig(t, p["sow"], 8) * (1 - p["dip"] * _gauss(t, 140, 30))
    green += (p["amp"] - (p["aut"] if p["sow"] is not None else 0.0)) * _sig(t, p["sos"], p["rs"])
    alive = 1 - _sig(t, p["eos"], p["re"])
    cut = 1 - _sig(t, p["harv"], 2.5)
    structure = np.maximum.accumulate(green)  # canopy stays until harvest, then only residue
    flower = np.zeros_like(t)
    if "flower" in p:
        d, w, depth = p["flower"]
        flower = depth * _gauss(t, d, w) * structure
    cover = structure * cut + 0.08 * (1 - cut) * _sig(t, p["eos"], 5)
    green = green * alive * cut
    green = np.maximum(green - flower, 0)
    if p["post"] > 0:
        regrow = p["post"] * _sig(t, p["harv"] + 25, 6)
        green = green + regrow
        cover = cover + regrow
    cover = np.clip(np.maximum(cover, green + flower), 0, 1)
    return np.clip(green, 0, 1), cover, flower


def phenology(class_id: int, doy: Any, rng: np.random.Generator | int = 0, shift: float = 0.0) -> np.ndarray:
    """Return the green-vegetation fraction (0..1, NDVI-shaped) of one jittered sample at season days `doy`.

    `doy` counts days since 1 September (see `season_day`); `shift` moves the calendar (tiles).
    """
    return _canopy(int(class_id), np.asarray(doy, dtype=float), _rng(rng, "phenology", int(class_id)), shift)[0]


def reflectance(green: np.ndarray, cover: np.ndarray, flower: np.ndarray, rng: np.random.Generator,
                soil_brightness: float | np.ndarray = 1.0, noise: float = 0.02) -> np.ndarray:
    """Return clear-sky surface reflectance (..., 9 bands, fraction) of a canopy, with soil moisture and noise.

    `noise` is the relative per-band sensor/heterogeneity noise (standard deviation).
    """
    g, c, f = (np.asarray(a, dtype=float)[..., None] for a in (green, cover, flower))
    dry = np.clip(c - g - f, 0, 1)
    soil = _SOIL * np.asarray(soil_brightness, dtype=float)[..., None]
    moisture = rng.normal(1.0, 0.06) if g.ndim > 2 else rng.normal(1.0, 0.06, size=g.shape)  # rain
    r = g * _VEG + f * _FLOWER + dry * _DRY + (1 - c) * soil * moisture
    r = r * rng.normal(1.0, noise, size=r.shape) + rng.normal(0.0, noise / 10, size=r.shape)
    return np.clip(r, 0.0001, 1.0)


def make_dates(n: int, seed: int | np.random.Generator = 0, start: Any = SEASON_START,
               end: Any = SEASON_END) -> np.ndarray:
    """Return `n` sorted acquisition dates (datetime64[D]) on a 5-day revisit grid, more in summer."""
    rng = _rng(seed, "dates")
    start, end = np.datetime64(start, "D"), np.datetime64(end, "D")
    grid = np.arange(start + int(rng.integers(0, 5)), end + 1, 5)
    if not 1 <= n <= grid.size:
        raise ValueError(f"n must be in 1..{grid.size} for {start}..{end}, got {n}")
    w = 1.0 + 0.8 * np.cos(2 * np.pi * (season_day(grid) - 320) / 365.0)  # clear skies peak in July
    idx = rng.choice(grid.size, size=n, replace=False, p=w / w.sum())
    return np.sort(grid[idx])


def _atmosphere(dates: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-date cloud, shadow, snow probabilities and haze of one tile."""
    t = season_day(dates)
    winter = _gauss(t, 130, 45)
    cloud = np.clip(rng.beta(0.6, 3.0, size=t.size) + 0.15 * winter, 0, 0.9)
    snow_date = (t > 85) & (t < 185) & (rng.random(t.size) < 0.3)
    snow = np.where(snow_date, rng.uniform(0.3, 0.9, size=t.size), 0.0)
    haze = rng.exponential(0.008, size=t.size)
    return {"cloud": cloud, "shadow": 0.3 * cloud, "snow": snow, "haze": haze}


def _sky(refl: np.ndarray, flags: np.ndarray, rng: np.random.Generator, opacity: np.ndarray | None = None
         ) -> np.ndarray:
    """Replace clear reflectance (..., 9) by cloud, shadow or snow where `flags` says so.

    `opacity` (same shape as flags, 0..1) gives spatially coherent cloud opacity; else drawn per sample.
    """
    out = refl.copy()
    cl = flags == FLAG_CLOUD
    shared = opacity is not None
    if cl.any():
        n = int(cl.sum())
        alpha = opacity[cl][:, None] if shared else rng.uniform(0.55, 1.0, size=(n, 1))
        thick = rng.uniform(0.6, 1.4, size=1 if shared else (n, 1))
        out[cl] = alpha * np.clip(_CLOUD * thick, 0, 1) + (1 - alpha) * refl[cl]
    sh = flags == FLAG_SHADOW
    if sh.any():
        dark = rng.uniform(0.25, 0.5, size=1 if shared else (int(sh.sum()), 1))
        out[sh] = refl[sh] * dark * np.linspace(1.3, 0.9, 9)
    sn = flags == FLAG_SNOW
    if sn.any():
        depth = rng.uniform(0.6, 1.0, size=1 if shared else (int(sn.sum()), 1))
        out[sn] = depth * _SNOW + (1 - depth) * refl[sn]
    return np.clip(out, 0.0001, 1.0)


def _to_int(refl: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(refl * 10000), 1, 32767).astype(np.int16)


def timesen2crop_samples(tile: str, dates: np.ndarray, class_id: int, n: int, seed: int = 0
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Return (reflectance int16 (n, T, 9) x 10000, flag uint8 (n, T)) for `n` samples of one class/tile."""
    rng = _rng(seed, "ts2c", tile, int(class_id))
    sky = _atmosphere(dates, _rng(seed, "sky", tile))
    day = season_day(dates)
    shift = tile_shift(tile)
    refl = np.empty((n, day.size, len(TS2C_BANDS)))
    flags = np.zeros((n, day.size), dtype=np.uint8)
    for i in range(n):
        g, c, f = _canopy(int(class_id), day, rng, shift)
        refl[i] = reflectance(g, c, f, rng, soil_brightness=rng.uniform(0.7, 1.15))
        refl[i] += sky["haze"][:, None] * _HAZE
        u = rng.random(day.size)
        flags[i] = np.where(u < sky["cloud"], FLAG_CLOUD,
                            np.where(u < sky["cloud"] + sky["shadow"], FLAG_SHADOW, FLAG_CLEAR))
        snow = (flags[i] == FLAG_CLEAR) & (rng.random(day.size) < sky["snow"])
        flags[i][snow] = FLAG_SNOW
        refl[i] = _sky(refl[i], flags[i], rng)
    return _to_int(refl), flags


def make_timesen2crop_tree(root: str | os.PathLike, tiles: Mapping[str, int] | Sequence[str] | None = None,
                           samples_per_class: int = 25, seed: int = 0, overwrite: bool = False) -> Path:
    """Write a TimeSen2Crop-layout tree under `root`/TimeSen2Crop and return that folder's path.

    `tiles` maps tile name -> number of acquisitions (default `SAMPLE_TILES`); a plain list gives each tile
    a seeded count in 24..36. Layout and CSV format are those of Zenodo record 4715631.
    """
    if tiles is None:
        tiles = SAMPLE_TILES
    if not isinstance(tiles, Mapping):
        tiles = {t: int(_rng(seed, "ndates", t).integers(24, 37)) for t in tiles}
    if samples_per_class < 1:
        raise ValueError(f"samples_per_class must be >= 1, got {samples_per_class}")
    final = Path(root) / "TimeSen2Crop"
    with atomic_output(final, overwrite, kind="dir") as tmp:
        header = ",".join(TS2C_CSV_COLUMNS)
        with tqdm(total=len(tiles) * len(TS2C_CLASSES), desc="TimeSen2Crop sample", unit="class") as bar:
            for tile, n_dates in tiles.items():
                dates = make_dates(int(n_dates), _rng(seed, "dates", tile))
                tdir = tmp / tile
                tdir.mkdir()
                (tdir / "dates.csv").write_text(
                    "acquisition_date\n" + "".join(f"{str(d).replace('-', '')}\n" for d in dates))
                for cid in range(len(TS2C_CLASSES)):
                    refl, flags = timesen2crop_samples(tile, dates, cid, samples_per_class, seed)
                    cdir = tdir / str(cid)
                    cdir.mkdir()
                    for i in range(samples_per_class):
                        rows = np.column_stack([refl[i].astype(np.int64), flags[i].astype(np.int64)])
                        body = "\n".join(",".join(map(str, r)) for r in rows.tolist())
                        (cdir / f"{i}.csv").write_text(f"{header}\n{body}\n")
                    bar.update()
    return final


def read_tile_dates(tile_dir: str | os.PathLike) -> np.ndarray:
    """Return the acquisition dates (datetime64[D]) listed in a TimeSen2Crop `<tile>/dates.csv`."""
    p = Path(tile_dir) / "dates.csv"
    lines = p.read_text().split()
    if not lines or lines[0] != "acquisition_date":
        raise ValueError(f"{p}: line 1 must be the header 'acquisition_date', got {lines[:1]}")
    out = []
    for i, s in enumerate(lines[1:], start=2):
        if len(s) != 8 or not s.isdigit():
            raise ValueError(f"{p}: line {i} must be a date YYYYMMDD, got {s!r}")
        out.append(np.datetime64(f"{s[:4]}-{s[4:6]}-{s[6:]}", "D"))
    return np.array(out, dtype="datetime64[D]")


# --- Sentinel-2 image stack ---------------------------------------------------------------------

def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-correlated random field with zero mean and unit standard deviation."""
    from scipy.ndimage import gaussian_filter

    f = gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-12)


def field_layout(seed: int = 0, size_m: float = 1200.0, n_target: int = 40) -> tuple[list, list[str]]:
    """Return (polygons in local metres, kinds) of a rotated strip-and-parcel field layout.

    Kinds are "field", "forest" or "farmstead"; some fields share boundaries, others are shrunk
    so that grass margins separate them.
    """
    import shapely
    from shapely import affinity
    from shapely.geometry import box

    rng = _rng(seed, "layout")
    scale = size_m / 1200.0 * np.sqrt(40.0 / n_target)
    margin = 0.2 * size_m
    rects = []
    x = -margin
    while x < size_m + margin:
        w = rng.uniform(110, 250) * scale
        y = -margin
        while y < size_m + margin:
            h = rng.uniform(90, 230) * scale
            rects.append(box(x, y, x + w, y + h))
            y += h
        x += w
    angle = rng.uniform(-12, 12)
    frame = box(0, 0, size_m, size_m)
    polys, kinds = [], []
    for r in rects:
        p = affinity.rotate(r, angle, origin=(size_m / 2, size_m / 2)).intersection(frame)
        if p.is_empty or p.area < 0.3 * (90 * scale) ** 2 or p.geom_type != "Polygon":
            continue
        polys.append(shapely.set_precision(p, 0.01))
        kinds.append("field")
    order = rng.permutation(len(polys))
    n_bg = max(len(polys) - n_target, 2)
    for j, i in enumerate(order[:n_bg]):
        kinds[i] = "farmstead" if j == 0 else "forest"
    for i in range(len(polys)):
        if kinds[i] == "field" and rng.random() < 0.45:  # grass margin: shrink, no longer touching
            shrunk = polys[i].buffer(-rng.uniform(5, 12), join_style="mitre")
            if shrunk.geom_type == "Polygon" and shrunk.area > 0.5 * polys[i].area:
                polys[i] = shapely.set_precision(shrunk, 0.01)
    return polys, kinds


def make_s2_stack(out: str | os.PathLike, dates: Sequence[Any], seed: int = 0, size: int = 120,
                  n_fields: int = 40, tile: str = "33TWN", origin: tuple[float, float] = (560000.0, 5220000.0),
                  fields_crs: str = "EPSG:3035", noise: float = 0.006, overwrite: bool = False) -> Path:
    """Write a Sentinel-2 L2A-like GeoTIFF stack (S2_/SCL_<YYYYMMDD>.tif) and fields.gpkg; return the folder.

    Reflectance follows the same phenology generator as the TimeSen2Crop sample, field by field; 10 m
    pixels in EPSG:32633 (pixels are rendered at 5 m and averaged, so field edges are mixed pixels).
    """
    import geopandas as gpd
    import rasterio
    import rasterio.features
    from rasterio.transform import from_origin
    from shapely import affinity

    final = Path(out)
    dates = np.asarray(dates, dtype="datetime64[D]")
    if dates.size == 0:
        raise ValueError("dates is empty: the stack needs at least one acquisition date")
    rng = _rng(seed, "s2stack", tile)
    polys, kinds = field_layout(seed, size * 10.0, n_fields)
    x0, y0 = origin
    to_map = [affinity.affine_transform(p, [1, 0, 0, -1, x0, y0]) for p in polys]  # local y down -> north up
    field_idx = [i for i, k in enumerate(kinds) if k == "field"]
    codes = list(INVEKOS_CLASSES)
    weights = np.array([3 if c in ("WINTERWEICHWEIZEN", "KOERNERMAIS", "DAUERWIESE") else 1 for c in codes], float)
    chosen = list(rng.permutation(["WINTERWEICHWEIZEN", "KOERNERMAIS", "WINTERGERSTE", "SOJABOHNEN",
                                   "ZUCKERRUEBEN", "KARTOFFELN", "WINTERRAPS", "DAUERWIESE", "SOMMERGERSTE",
                                   "SILOMAIS", "SONNENBLUMEN", "WINTERTRITICALE"]))
    chosen += list(rng.choice(codes, size=max(len(field_idx) - len(chosen), 0), p=weights / weights.sum()))
    chosen = [str(c) for c in rng.permutation(chosen[: len(field_idx)])]
    fields = gpd.GeoDataFrame(
        {"field_id": np.arange(1, len(field_idx) + 1, dtype=np.int64), "crop_code": chosen,
         "class_id": np.array([INVEKOS_CLASSES[c] for c in chosen], dtype=np.int64)},
        geometry=[to_map[i] for i in field_idx], crs="EPSG:32633")

    # object map at 5 m: 0 grass margin, 1..n fields, then forest/farmstead objects
    hi = 2 * size
    t_hi = from_origin(x0, y0, 5.0, 5.0)
    obj_kind = ["margin"] + ["field"] * len(field_idx)
    shapes = [(g, k + 1) for k, g in enumerate(fields.geometry)]
    for i, k in enumerate(kinds):
        if k != "field":
            obj_kind.append(k)
            shapes.append((to_map[i], len(obj_kind) - 1))
    obj = rasterio.features.rasterize(shapes, out_shape=(hi, hi), transform=t_hi, fill=0, dtype="int32")

    day = season_day(dates)
    shift = tile_shift(tile)
    n_obj = len(obj_kind)
    G, C, F = (np.zeros((n_obj, day.size)) for _ in range(3))
    soil = np.ones(n_obj)
    for k, kind in enumerate(obj_kind):
        if kind == "field":
            G[k], C[k], F[k] = _canopy(int(fields.class_id.iloc[k - 1]), day, rng, shift)
            soil[k] = rng.uniform(0.7, 1.15)
        elif kind == "margin":
            g = 0.45 * (1 - 0.3 * _gauss(day, 140, 35)) + 0.3 * _sig(day, 200 + shift, 10)
            G[k], C[k] = g, np.clip(g + 0.15, 0, 1)
        elif kind == "forest":
            leaves = 0.35 * ((1 - _sig(day, 55, 8)) + _sig(day, 225 + shift, 8))
            G[k], C[k] = 0.5 + leaves, np.ones_like(day)
        else:  # farmstead: roofs and yards (built-up spectrum through the soil term), a few trees
            G[k], C[k] = 0.15 + 0.1 * _sig(day, 225, 8), 0.25 + 0.1 * _sig(day, 225, 8)
    vigour = np.clip(1 + 0.05 * _smooth_field(rng, (hi, hi), 6), 0.8, 1.2)
    soil_px = soil[obj] * np.clip(1 + 0.08 * _smooth_field(rng, (hi, hi), 10), 0.7, 1.3)
    built = np.array([k == "farmstead" for k in obj_kind])[obj]
    sky = _atmosphere(dates, _rng(seed, "sky", tile))

    with atomic_output(final, overwrite, kind="dir") as tmp:
        transform = from_origin(x0, y0, 10.0, 10.0)
        prof = dict(driver="GTiff", width=size, height=size, crs="EPSG:32633", transform=transform,
                    compress="deflate", zlevel=9, tiled=True, blockxsize=64, blockysize=64)
        for t, date in enumerate(tqdm(dates, desc="S2 stack", unit="date")):
            g = np.clip(G[obj, t] * vigour, 0, 1)
            c = np.clip(np.maximum(C[obj, t], g), 0, 1)
            f = F[obj, t]
            r = reflectance(g, c, f, rng, soil_brightness=soil_px, noise=noise)
            r[built] = 0.6 * (_BUILT * rng.normal(1, 0.1, size=(int(built.sum()), 1))) + 0.4 * r[built]
            r = r.reshape(size, 2, size, 2, 9).mean(axis=(1, 3)) + sky["haze"][t] * _HAZE  # 5 m -> 10 m
            ndvi = (r[..., 6] - r[..., 2]) / (r[..., 6] + r[..., 2])
            scl = np.where(ndvi > 0.35, SCL_VEGETATION, SCL_BARE_SOIL).astype(np.uint8)
            flags = np.zeros((size, size), dtype=np.uint8)
            opacity = np.ones((size, size))
            if sky["cloud"][t] > 0.02:
                dens = _smooth_field(rng, (size, size), size / 10)
                thr = np.quantile(dens, 1 - sky["cloud"][t])
                cloud = dens > thr
                shadow = np.roll(cloud, (int(size / 15), -int(size / 12)), axis=(0, 1)) & ~cloud
                flags[shadow], flags[cloud] = FLAG_SHADOW, FLAG_CLOUD
                scl[shadow] = SCL_SHADOW
                over = dens - thr
                opacity = np.clip(0.45 + over, 0.45, 1.0)
                scl[cloud] = np.where(over > 0.6, SCL_CLOUD_HIGH, np.where(over > 0.2, SCL_CLOUD_MEDIUM, SCL_CIRRUS))[cloud]
            if sky["snow"][t] > 0:
                patchy = _smooth_field(rng, (size, size), size / 8)
                snow = (flags == FLAG_CLEAR) & (ndvi < 0.6) & (patchy < np.quantile(patchy, sky["snow"][t]))
                flags[snow], scl[snow] = FLAG_SNOW, SCL_SNOW
            r = _sky(r, flags, rng, opacity=opacity)
            data = _to_int(r)
            if t == int(np.argmax(day > 120)) and day.size > 3:  # one acquisition at the swath edge
                cols = np.arange(size)[None, :] + 0.3 * np.arange(size)[:, None]
                edge = cols < size * 0.25
                data[edge] = 0
                scl[edge] = SCL_NO_DATA
            stamp = str(date).replace("-", "")
            with rasterio.open(tmp / f"S2_{stamp}.tif", "w", count=9, dtype="int16", nodata=0, predictor=2,
                               **prof) as dst:
                dst.write(np.moveaxis(data, -1, 0))
                for b, name in enumerate(TS2C_BANDS, start=1):
                    dst.set_band_description(b, name)
                dst.update_tags(ACQUISITION_DATE=str(date), TILE=tile, REFLECTANCE_SCALE="10000",
                                PRODUCT="synthetic Sentinel-2 L2A (eokit.synthetic)")
            with rasterio.open(tmp / f"SCL_{stamp}.tif", "w", count=1, dtype="uint8", **prof) as dst:
                dst.write(scl[None])
                dst.set_band_description(1, "SCL")
                dst.update_tags(ACQUISITION_DATE=str(date), TILE=tile,
                                CODES="0 no data, 3 cloud shadow, 4 vegetation, 5 bare soil, "
                                      "8 cloud medium, 9 cloud high, 10 thin cirrus, 11 snow")
        write_gpkg(fields.to_crs(fields_crs), tmp / "fields.gpkg", layer="fields")
    return final


# --- Sentinel-1 SAR scenes with ice polygons ------------------------------------------------------
#: class -> (HH dB at 35 deg, HV dB at 35 deg, HH slope dB/deg, HV slope dB/deg, texture dB, texture scale px)
_ICE_SIGMA0: dict[int, tuple[float, float, float, float, float, float]] = {
    0: (-18.0, -28.0, -0.30, -0.08, 2.5, 30.0),  # open water: wind-roughened, steep angular decay
    1: (-22.0, -29.5, -0.22, -0.08, 0.8, 8.0),   # newly formed ice (grease, nilas): very dark
    2: (-11.5, -22.0, -0.18, -0.10, 2.0, 2.0),   # brash / pancake: bright, grainy
    3: (-15.0, -24.5, -0.20, -0.10, 1.2, 6.0),   # young ice
    4: (-17.0, -25.5, -0.20, -0.10, 0.8, 12.0),  # thin to medium first-year: smooth level ice
    5: (-9.5, -19.5, -0.15, -0.10, 1.5, 3.0),    # thick / deformed: ridges, bright
}


def _ice_cells(rng: np.random.Generator, size: int, classes: Sequence[int], n_cells: int, min_px: float):
    """Voronoi partition of a size x size scene (pixel coords) with a class per cell, big enough cells."""
    import shapely
    from shapely.geometry import MultiPoint, box

    frame = box(0, 0, size, size)
    for _ in range(200):
        pts = rng.uniform(0.1 * size, 0.9 * size, size=(n_cells, 2))
        cells = [c.intersection(frame) for c in shapely.voronoi_polygons(MultiPoint(pts), extend_to=frame).geoms]
        cells = sorted(cells, key=lambda c: (round(c.centroid.x, 6), round(c.centroid.y, 6)))
        labelled = [c.buffer(-rng.uniform(2, 5), join_style="mitre").simplify(1.0) for c in cells]
        if all((not lab.buffer(-min_px).is_empty) for lab in labelled):
            cls = list(rng.permutation(list(classes)))
            cls += list(rng.choice(list(classes), size=n_cells - len(cls)))
            return cells, labelled, [int(c) for c in cls[:n_cells]]
    raise RuntimeError(f"could not partition a {size}x{size} scene into {n_cells} cells of >= {2 * min_px} px")


def make_sar_scene(out_dir: str | os.PathLike, scene: str, classes: Sequence[int], seed: int = 0,
                   size: int = 256, pixel: float = 40.0, origin: tuple[float, float] = (640000.0, -1100000.0),
                   overwrite: bool = False) -> Any:
    """Write one Sentinel-1-like scene (Sigma0_HH_db, Sigma0_HV_db, incidence_angle GeoTIFFs, EPSG:3413).

    Returns the scene's labelled ice polygons as a GeoDataFrame (EPSG:3413; scene, ice_class, ice_name).
    """
    import geopandas as gpd
    import rasterio
    import rasterio.features
    from rasterio.transform import from_origin
    from shapely import affinity

    if not set(classes) <= set(range(len(ICE_CLASSES))):
        raise ValueError(f"classes must be ice class ids 0..{len(ICE_CLASSES) - 1}, got {list(classes)}")
    rng = _rng(seed, "sar", scene)
    n_cells = max(len(classes), min(int(size * size / 9000), 3 * len(classes)))  # 7 cells at 256 px
    cells, labelled, cls = _ice_cells(rng, size, classes, n_cells, min_px=23.0)
    x0, y0 = origin
    to_map = [1, 0, 0, -1, x0, y0]
    cell_map = [affinity.affine_transform(affinity.scale(c, pixel, pixel, origin=(0, 0)), to_map) for c in cells]
    transform = from_origin(x0, y0, pixel, pixel)
    cmap = rasterio.features.rasterize([(g, k) for k, g in enumerate(cell_map)], out_shape=(size, size),
                                       transform=transform, fill=0, dtype="int32")
    cls_px = np.asarray(cls)[cmap]
    rows, cols = np.mgrid[0:size, 0:size].astype(float)
    ia = (19.0 + 28.0 * cols / (size - 1) + 0.3 * rows / (size - 1)).astype(np.float32)
    hh = np.zeros((size, size))
    hv = np.zeros((size, size))
    for k in range(len(ICE_CLASSES)):
        m = cls_px == k
        if not m.any():
            continue
        h0, v0, sh, sv, tex, scale = _ICE_SIGMA0[k]
        texture = tex * _smooth_field(rng, (size, size), scale)
        hh[m] = (h0 + sh * (ia - 35.0) + texture)[m]
        hv[m] = (v0 + sv * (ia - 35.0) + 0.8 * texture)[m]
    # ridges in deformed ice: bright linear features
    ridge = np.zeros((size, size), dtype=bool)
    from shapely.geometry import LineString
    lines = []
    for _ in range(size // 4):
        p = rng.uniform(0, size, 2)
        a = rng.uniform(0, np.pi)
        length = rng.uniform(10, 40)
        d = np.array([np.cos(a), np.sin(a)]) * length / 2
        lines.append(LineString([tuple(p - d), tuple(p + d)]))
    if lines:
        ridge = rasterio.features.rasterize([(ln, 1) for ln in lines], out_shape=(size, size), fill=0,
                                            dtype="uint8").astype(bool)
    hh[ridge & (cls_px == 5)] += 5.0
    hv[ridge & (cls_px == 5)] += 4.0
    # thermal noise floor in HV, scalloped across sub-swaths, then gamma speckle (ENL about 8)
    nesz = 10 ** ((-29.0 + 1.5 * np.sin(2 * np.pi * cols / (size / 3.0)) ** 2) / 10)
    enl = 8.0
    hh_lin = 10 ** (hh / 10) * rng.gamma(enl, 1 / enl, size=(size, size))
    hv_lin = (10 ** (hv / 10) + nesz) * rng.gamma(enl, 1 / enl, size=(size, size))
    with atomic_output(Path(out_dir) / scene, overwrite, kind="dir") as tmp:
        prof = dict(driver="GTiff", width=size, height=size, count=1, dtype="float32", crs="EPSG:3413",
                    transform=transform, compress="deflate", zlevel=9, predictor=3, tiled=True,
                    blockxsize=128, blockysize=128)
        for name, arr, unit in (("Sigma0_HH_db", 10 * np.log10(hh_lin), "dB"),
                                ("Sigma0_HV_db", 10 * np.log10(hv_lin), "dB"),
                                ("incidence_angle", ia, "degree")):
            with rasterio.open(tmp / f"{name}.tif", "w", **prof) as dst:
                dst.write(np.round(arr, 2).astype(np.float32)[None])
                dst.set_band_description(1, name)
                dst.update_tags(SCENE=scene, UNITS=unit, PRODUCT="synthetic Sentinel-1 EW GRDM (eokit.synthetic)")
    geoms = [affinity.affine_transform(affinity.scale(p, pixel, pixel, origin=(0, 0)), to_map) for p in labelled]
    return gpd.GeoDataFrame({"scene": [scene] * len(geoms), "ice_class": np.array(cls, dtype=np.int64),
                             "ice_name": [ICE_CLASSES[c] for c in cls]}, geometry=geoms, crs="EPSG:3413")


def make_sar_sample(root: str | os.PathLike, scenes: Iterable[str] | None = None, seed: int = 0,
                    size: int = 256, pixel: float = 40.0, overwrite: bool = False) -> Path:
    """Write SAR scenes under `root`/<scene>/ plus `root`/ice_polygons.gpkg; return `root`.

    Every scene leaves out one ice class (a different one each), so each class is in at least two scenes.
    """
    import pandas as pd

    root = Path(root)
    scenes = list(SAR_SCENES if scenes is None else scenes)
    target = check_target(root / "ice_polygons.gpkg", overwrite)
    root.mkdir(parents=True, exist_ok=True)
    n = len(ICE_CLASSES)
    frames = []
    for k, scene in enumerate(tqdm(scenes, desc="SAR scenes", unit="scene")):
        drop = (1 + 2 * k) % n if len(scenes) >= 3 else -1
        classes = [c for c in range(n) if c != drop]
        origin = (620000.0 + k * (size * pixel + 8000.0), -1080000.0 - k * 15000.0)
        frames.append(make_sar_scene(root, scene, classes, seed, size, pixel, origin, overwrite))
    polys = pd.concat(frames, ignore_index=True)
    polys.insert(1, "polygon_id", np.arange(1, len(polys) + 1, dtype=np.int64))
    write_gpkg(polys, target, overwrite, layer="ice_polygons")
    return root

"""The crop model behind :mod:`eokit.synthetic`: seeded generators, phenology per TimeSen2Crop class, the
spectral mixture, acquisition dates, the sky (haze, clouds, shadows, snow) and per-class TimeSen2Crop samples.
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from eokit.schema import FLAG_CLEAR, FLAG_CLOUD, FLAG_SHADOW, FLAG_SNOW, TS2C_BANDS, TS2C_CLASSES

#: First and last day of the TimeSen2Crop agronomic year (the sample's acquisitions lie in between).
SEASON_START = np.datetime64("2017-09-01", "D")
SEASON_END = np.datetime64("2018-08-31", "D")
#: Sample tiles -> number of acquisitions (different per tile, as in the published set).
SAMPLE_TILES: dict[str, int] = {"33UVP": 27, "33TWN": 30, "33UWP": 24}
#: The 16 tile folders of the published set -> (acquisitions, share of the samples). The names are the real ones
#: (FORMATS.md); the counts are not published per tile: tens of dates, at most 76 (the padded length T of the
#: real set), more where tracks overlap; shares follow the arable land of each tile (alpine west small, east large).
FULL_TILES: dict[str, tuple[int, float]] = {
    "32TNT": (38, 0.015),
    "32TPT": (45, 0.025),
    "32TQT": (52, 0.030),
    "33TUM": (41, 0.040),
    "33TUN": (58, 0.060),
    "33TVM": (47, 0.050),
    "33TVN": (63, 0.085),
    "33TWM": (44, 0.060),
    "33TWN": (71, 0.095),
    "33TXN": (66, 0.090),
    "33UUP": (49, 0.045),
    "33UVP": (76, 0.090),
    "33UWP": (69, 0.110),
    "33UWQ": (57, 0.055),
    "33UXP": (61, 0.090),
    "2019_33UVP": (54, 0.060),
}
#: Samples per class of the published set (1,212,224 in all). Grassland (about 283k) and Winter caraway (about
#: 1.5k) as FORMATS.md states; Other crops = 1,212,224 - 1,135,511 (the count of the set without that class, as
#: the MONSTER benchmark's card of TimeSen2Crop gives it); the rest estimated from Austrian INVEKOS crop areas.
FULL_CLASS_COUNTS: tuple[int, ...] = (
    26000, 283000, 230000, 19000, 15000, 60000, 92000, 1500,
    33000, 40000, 34000, 58000, 175000, 42000, 27011, 76713,
)  # fmt: skip
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
    7: dict(sow=-30, aut=0.40, dip=0.25, sos=186, rs=10, amp=0.72, eos=288, re=8, harv=318, flower=(262, 10, 0.12)),
    8: dict(sow=35, aut=0.30, dip=0.30, sos=188, rs=9, amp=0.82, eos=282, re=7, harv=312),
    9: dict(sow=-8, aut=0.58, dip=0.25, sos=186, rs=8, amp=0.88, eos=282, re=6, harv=305, flower=(240, 12, 0.35)),
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
    p: dict[str, Any]
    if class_id == 15:  # other crops: anything from early spring to late summer crops
        sos = rng.uniform(200, 285)
        eos = sos + rng.uniform(50, 110)
        p = dict(
            sow=None,
            aut=0.0,
            dip=0.0,
            sos=sos,
            rs=rng.uniform(6, 12),
            amp=rng.uniform(0.45, 0.85),
            eos=eos,
            re=rng.uniform(5, 10),
            harv=eos + rng.uniform(5, 30),
        )
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


def _canopy(
    class_id: int, day: np.ndarray, rng: np.random.Generator, shift: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(green, cover, flower) fractions of one sample at season days `day`; cover >= green + flower."""
    t = np.asarray(day, dtype=float)
    if not 0 <= class_id < len(TS2C_CLASSES):
        raise ValueError(f"class_id must be in 0..{len(TS2C_CLASSES) - 1}, got {class_id}")
    if class_id == 1:  # grassland: green all year, winter dip, two to four cuts
        base = rng.uniform(0.38, 0.5)
        green = base * (1 - 0.3 * _gauss(t, 140, 35)) + (rng.uniform(0.78, 0.9) - base) * _sig(
            t, 200 + shift + rng.normal(0, 6), 10
        ) * (1 - _sig(t, 400, 10))
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
        leaves = rng.uniform(0.28, 0.4) * (
            (1 - _sig(t, 62 + rng.normal(0, 6), 7)) + _sig(t, 228 + shift + rng.normal(0, 6), 8)
        )
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


def reflectance(
    green: np.ndarray,
    cover: np.ndarray,
    flower: np.ndarray,
    rng: np.random.Generator,
    soil_brightness: float | np.ndarray = 1.0,
    noise: float = 0.02,
) -> np.ndarray:
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


def make_dates(
    n: int, seed: int | np.random.Generator = 0, start: Any = SEASON_START, end: Any = SEASON_END
) -> np.ndarray:
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


def _sky(
    refl: np.ndarray, flags: np.ndarray, rng: np.random.Generator, opacity: np.ndarray | None = None
) -> np.ndarray:
    """Replace clear reflectance (..., 9) by cloud, shadow or snow where `flags` says so.

    `opacity` (same shape as flags, 0..1) gives spatially coherent cloud opacity; else drawn per sample.
    """
    out = refl.copy()
    cl = flags == FLAG_CLOUD
    shared = opacity is not None
    if cl.any():
        n = int(cl.sum())
        alpha = opacity[cl][:, None] if opacity is not None else rng.uniform(0.55, 1.0, size=(n, 1))
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


def timesen2crop_samples(
    tile: str, dates: np.ndarray, class_id: int, n: int, seed: int = 0
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
        flags[i] = np.where(
            u < sky["cloud"], FLAG_CLOUD, np.where(u < sky["cloud"] + sky["shadow"], FLAG_SHADOW, FLAG_CLEAR)
        )
        snow = (flags[i] == FLAG_CLEAR) & (rng.random(day.size) < sky["snow"])
        flags[i][snow] = FLAG_SNOW
        refl[i] = _sky(refl[i], flags[i], rng)
    return _to_int(refl), flags


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian-correlated random field with zero mean and unit standard deviation."""
    from scipy.ndimage import gaussian_filter

    f = gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return (f - f.mean()) / (f.std() + 1e-12)

"""Shared data contracts: band and class names, flag codes and the schemas every module exchanges."""

from __future__ import annotations

from typing import Any

# --- TimeSen2Crop (UNITN, Zenodo 4715631) -------------------------------------------------------
#: Sentinel-2 bands as stored in TimeSen2Crop (CSV columns B1..B9 hold these), reflectance x 10000.
TS2C_BANDS: list[str] = ["B2", "B3", "B4", "B5", "B6", "B7", "B8A", "B11", "B12"]
#: Column names in the published sample CSVs, in order.
TS2C_CSV_COLUMNS: list[str] = ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "Flag"]
#: The 16 TimeSen2Crop classes, index = class id = folder name.
TS2C_CLASSES: list[str] = [
    "Legumes",
    "Grassland",
    "Maize",
    "Potato",
    "Sunflower",
    "Soy",
    "Winter barley",
    "Winter caraway",
    "Rye",
    "Rapeseed",
    "Beet",
    "Spring cereals",
    "Winter wheat",
    "Winter triticale",
    "Permanent plantation",
    "Other crops",
]
#: The published tiles (2019_33UVP is tile 33UVP in the following agronomic year).
TS2C_TILES: list[str] = [
    "32TNT",
    "32TPT",
    "32TQT",
    "33TUM",
    "33TUN",
    "33TVM",
    "33TVN",
    "33TWM",
    "33TWN",
    "33TXN",
    "33UUP",
    "33UVP",
    "33UWP",
    "33UWQ",
    "33UXP",
    "2019_33UVP",
]

# --- Observation flags (TimeSen2Crop codes, extended with 255 for "no acquisition") ------------
FLAG_CLEAR, FLAG_CLOUD, FLAG_SHADOW, FLAG_SNOW, FLAG_NODATA = 0, 1, 2, 3, 255
FLAG_NAMES: dict[int, str] = {0: "clear", 1: "cloud", 2: "shadow", 3: "snow", 255: "no acquisition"}
#: How a time-series model sees flagged observations: "mask" (zeroed, mask 0), "gapfill" (every acquisition's
#: value taken as it is, e.g. after `timeseries.gapfill`), "interpolate" (linear in time between the clear
#: ones, mask 1: a cloud pattern, which is shared by neighbouring pixels, is then no cue to where a pixel is).
FLAG_HANDLINGS: tuple[str, ...] = ("mask", "gapfill", "interpolate")
#: Sentinel-2 L2A scene classification (SCL) -> TimeSen2Crop flag; SCL values not listed are clear.
SCL_TO_FLAG: dict[int, int] = {0: 255, 1: 255, 3: 2, 8: 1, 9: 1, 10: 1, 11: 3}

# --- Sea ice: the six WMO classes of the UiT ice-type set ----------------------------------------
ICE_CLASSES: list[str] = [
    "open water",
    "newly formed ice",
    "brash/pancake ice",
    "young ice",
    "thin to medium first-year ice",
    "thick or deformed ice",
]
#: Percentiles of each channel that describe a patch's value distribution, with its mean and std: the features of
#: the patch baselines (`eokit.evaluate.random_forest` on patch sets) and of the CNN's statistics branch.
PATCH_STAT_PERCENTILES: tuple[int, ...] = (5, 25, 50, 75, 95)
#: SAR channels of a patch, in order: HH and HV backscatter (dB) and incidence angle (degrees).
SAR_CHANNELS: list[str] = ["HH", "HV", "IA"]

# --- Time-series training-set schema (TimeSen2Crop reader output == sampler output) -------------
#: variable -> (dims, dtype kind). Extra per-sample variables (x, y, field_id) are allowed.
TIMESERIES_SCHEMA: dict[str, tuple[tuple[str, ...], str]] = {
    "reflectance": (("sample", "time", "band"), "n"),  # int16 for S2 reflectance x 10000, float for NDVI
    "flag": (("sample", "time"), "u"),
    "date": (("sample", "time"), "M"),
    "label": (("sample",), "i"),
    "label_name": (("sample",), "U"),
    "tile": (("sample",), "U"),
    "source_file": (("sample",), "U"),
}

# --- Patch-set schema (eokit.patches.extract output) ----------------------------------------------
PATCH_SCHEMA: dict[str, tuple[tuple[str, ...], str]] = {
    "image": (("patch", "row", "col", "channel"), "f"),
    "label": (("patch",), "i"),
    "row0": (("patch",), "i"),
    "col0": (("patch",), "i"),
    "polygon_id": (("patch",), "i"),
    "scene": (("patch",), "U"),
}


def _kind_ok(dtype: Any, kind: str) -> bool:
    k = dtype.kind
    if kind == "U":
        return k in ("U", "O", "S", "T")
    if kind == "i":
        return k in ("i", "u")
    if kind == "n":
        return k in ("i", "u", "f")
    return k == kind


def check_schema(ds: Any, schema: dict[str, tuple[tuple[str, ...], str]], what: str = "dataset") -> None:
    """Return None if `ds` follows `schema`; raise ValueError naming every missing or wrong variable."""
    problems = []
    for name, (dims, kind) in schema.items():
        if name not in ds.variables:
            problems.append(f"missing variable {name!r} with dims {dims}")
            continue
        var = ds[name]
        if tuple(var.dims) != dims:
            problems.append(f"{name!r} has dims {tuple(var.dims)}, expected {dims}")
        if not _kind_ok(var.dtype, kind):
            problems.append(f"{name!r} has dtype {var.dtype}, expected kind {kind!r}")
    if problems:
        raise ValueError(f"{what} does not follow the eokit schema: " + "; ".join(problems))

"""Categorical colours: one fixed colour per crop / land-cover class, the WMO ice-chart colours for sea ice.

Every figure and every COG colour table takes its class colours from `class_colours` (or `rgba`), so a class
name has the same colour everywhere. Names are matched without regard to case, spaces, ``_`` or ``-``; a
name in no table gets a colour from `FALLBACK`, chosen from a hash of the name (so it too keeps its colour
from figure to figure unless two such names collide) and never one already used in the same figure.
No plotting library is imported here.
"""

from __future__ import annotations

import colorsys
import re
import zlib
from collections.abc import Iterable, Sequence

__all__ = ["CROP_COLOURS", "FALLBACK", "ICE_COLOURS", "SURFACE_COLOURS", "class_colours", "hex_to_rgb", "rgba"]

#: Crop and land-cover classes (the 16 TimeSen2Crop classes, the Slovenia LULC classes): distinct colours,
#: agronomic where it costs nothing (grassland green, maize yellow, beet red, vineyards wine).
CROP_COLOURS: dict[str, str] = {
    "Legumes": "#2a6fdb",
    "Grassland": "#66c24a",
    "Maize": "#ffd92f",
    "Potato": "#00a6a6",
    "Sunflower": "#ff8c00",
    "Soy": "#8dd3e8",
    "Winter barley": "#c9a0dc",
    "Winter caraway": "#5b2c83",
    "Rye": "#b15928",
    "Rapeseed": "#d6f542",
    "Beet": "#e41a1c",
    "Spring cereals": "#f2c57c",
    "Winter wheat": "#c7913a",
    "Winter triticale": "#f781bf",
    "Permanent plantation": "#8e0152",
    "Other crops": "#9e9e9e",
    "cultivated land": "#fdb8a0",
    "forest": "#0b5d1e",
    "shrubland": "#8a9a3b",
    "artificial surface": "#3d3d3d",
    "no data": "#ffffff",
}

#: Sea-ice classes (eokit.schema.ICE_CLASSES) in the WMO colour code for stage of development, Ice Chart
#: Colour Code Standard, JCOMM Technical Report No. 24, WMO/TD-No. 1215 (2004, rev. 2014), the code of
#: SIGRID-3 charts: open water 150-200-255, new ice 240-210-250, grey ice 135-060-215, young ice
#: 170-040-240, thin first-year ice 155-210-000, thick first-year ice 000-120-000 (the standard's other
#: codes: grey-white 220-080-215, first-year 255-255-000, medium first-year 000-200-020, old ice
#: 180-100-050). Brash/pancake ice, a form of thin ice and no stage of its own, takes the grey-white colour of
#: the young-ice family: grey ice (135-060-215) beside young ice (170-040-240) could not be told apart on a
#: map; thin-to-medium first-year the thin first-year colour; thick or deformed the thick first-year.
ICE_COLOURS: dict[str, str] = {
    "open water": "#96c8ff",
    "newly formed ice": "#f0d2fa",
    "brash/pancake ice": "#dc50d7",
    "young ice": "#aa28f0",
    "thin to medium first-year ice": "#9bd200",
    "thick or deformed ice": "#007800",
}

#: SIGRID-3 polygon types (water / ice / land of the polar-patch charts, eokit.sigrid.POLY_TYPES): water in
#: the WMO open-water blue, land in the tan of ice-service charts (211-181-141), ice of no stage pale grey.
SURFACE_COLOURS: dict[str, str] = {
    "water": "#96c8ff",
    "ice": "#dcdcdc",
    "land": "#d3b58d",
    "ice shelf": "#a0a0a0",
}

#: Colours for names in no table: 20 colours picked greedily for the largest CIELAB distance (>= 29) to the
#: tables above and to each other.
FALLBACK: tuple[str, ...] = (
    "#00ff00",
    "#00ffcc",
    "#ff00bb",
    "#ff2277",
    "#440000",
    "#ccffbb",
    "#0000ff",
    "#554400",
    "#000033",
    "#006699",
    "#dd88ff",
    "#00ff77",
    "#ff7777",
    "#990022",
    "#aa6677",
    "#000088",
    "#66aa77",
    "#aa2299",
    "#002200",
    "#44ffff",
)


def _key(name: object) -> str:
    """Return the lookup key of a class name: lower case, runs of spaces, `_` and `-` as one space."""
    return re.sub(r"[\s_\-]+", " ", str(name)).strip().lower()


_TABLE: dict[str, str] = {
    _key(k): v.lower() for table in (SURFACE_COLOURS, CROP_COLOURS, ICE_COLOURS) for k, v in table.items()
}


def _generated(i: int) -> str:
    """Return the i-th colour beyond FALLBACK: golden-ratio hues at three lightness levels."""
    h = (0.137 + i * 0.618033988749895) % 1.0
    light, sat = ((0.45, 0.75), (0.65, 0.6), (0.3, 0.8))[i % 3]
    r, g, b = colorsys.hls_to_rgb(h, light, sat)
    return "#{:02x}{:02x}{:02x}".format(*(round(255 * c) for c in (r, g, b)))


def _free_colour(name: str, used: set[str]) -> str:
    """Return the fallback colour for `name` (hash-chosen in FALLBACK, probing on) not in `used`."""
    start = zlib.crc32(_key(name).encode("utf-8")) % len(FALLBACK)
    for k in range(len(FALLBACK)):
        c = FALLBACK[(start + k) % len(FALLBACK)]
        if c not in used:
            return c
    i = 0
    while _generated(i) in used:
        i += 1
    return _generated(i)


def class_colours(names: Iterable[object]) -> dict[str, str]:
    """Return {name: '#rrggbb'} for the classes of one figure: table colours, all distinct within the call.

    A name in a table gets its table colour; a name in none (or whose table colour another name of the call
    already holds) gets a fallback colour; the same set of names always gives the same colours.
    """
    unique: list[str] = list(dict.fromkeys(str(n) for n in names))
    out: dict[str, str] = {}
    used: set[str] = set()
    by_key: dict[str, str] = {}
    for n in unique:  # table colours first, so a fallback never takes a colour a known class needs
        colour = by_key.get(_key(n)) or _TABLE.get(_key(n))
        if colour is not None and (colour not in used or by_key.get(_key(n)) == colour):
            out[n] = colour
            used.add(colour)
            by_key[_key(n)] = colour
    for n in sorted((n for n in unique if n not in out), key=_key):
        out[n] = by_key.get(_key(n)) or _free_colour(n, used)
        used.add(out[n])
        by_key[_key(n)] = out[n]
    return {n: out[n] for n in unique}


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    """Return the (r, g, b) 0-255 of a '#rrggbb' colour."""
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", colour):
        raise ValueError(f"colour {colour!r}: expected '#rrggbb'")
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def rgba(names: Sequence[object]) -> dict[int, tuple[int, int, int, int]]:
    """Return {class index: (r, g, b, 255)} for the class names in order (a GDAL colour table's entries)."""
    colours = class_colours(names)
    return {i: (*hex_to_rgb(colours[str(n)]), 255) for i, n in enumerate(names)}

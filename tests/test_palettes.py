"""eokit.palettes: one fixed colour per class, distinct within a figure, WMO colours for sea ice."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from badinput import refuses
from eokit import palettes
from eokit.datasets.slovenia import LULC_CLASSES
from eokit.schema import ICE_CLASSES, TS2C_CLASSES


def _lab(colour: str) -> np.ndarray:
    """CIELAB (D65) of an sRGB '#rrggbb' colour."""
    rgb = np.array(palettes.hex_to_rgb(colour)) / 255
    lin = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = m @ lin / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _min_distance(colours: list[str]) -> float:
    return min(float(np.linalg.norm(_lab(a) - _lab(b))) for a, b in itertools.combinations(colours, 2))


def test_the_16_crop_classes_and_the_land_cover_classes_get_distinct_table_colours():
    names = TS2C_CLASSES + [n for k, n in LULC_CLASSES.items() if k]
    colours = palettes.class_colours(names)
    assert colours["grassland"] == colours["Grassland"]  # one class under two spellings: one colour
    assert len(set(colours.values())) == len(names) - 1 == 20
    assert all(colours[n] == palettes.CROP_COLOURS[n] for n in TS2C_CLASSES)  # the table, not a fallback
    assert _min_distance(list(set(colours.values()))) > 15  # CIELAB distance: told apart side by side
    assert colours["Maize"] == "#ffd92f" and colours["Grassland"] == "#66c24a"


def test_a_class_keeps_its_colour_whatever_else_is_in_the_figure():
    alone = palettes.class_colours(["Winter wheat"])
    crowd = palettes.class_colours(list(reversed(TS2C_CLASSES)) + ["hops"])
    assert alone["Winter wheat"] == crowd["Winter wheat"]
    assert palettes.class_colours(["winter_wheat"])["winter_wheat"] == alone["Winter wheat"]  # case, '_' ignored
    assert palettes.class_colours(["hops", "Maize"])["hops"] == crowd["hops"]  # a fallback is stable too


def test_unknown_classes_never_repeat_a_colour_in_one_figure():
    names = TS2C_CLASSES[:12] + [f"class {i}" for i in range(40)]
    colours = palettes.class_colours(names)
    assert len(set(colours.values())) == len(names)
    assert palettes.class_colours(names) == colours  # deterministic
    assert _min_distance(list(palettes.FALLBACK)) > 25
    twenty = palettes.class_colours(TS2C_CLASSES + ["fallow", "hops", "orchard", "vegetables"])
    assert len(set(twenty.values())) == 20


def test_two_names_sharing_a_table_colour_in_one_figure_are_told_apart():
    colours = palettes.class_colours(["open water", "water", "land"])  # the same WMO blue in two tables
    assert colours["open water"] == palettes.ICE_COLOURS["open water"]
    assert len(set(colours.values())) == 3


def test_sea_ice_classes_are_in_the_wmo_stage_of_development_colours():
    rgb = {n: palettes.hex_to_rgb(c) for n, c in palettes.class_colours(ICE_CLASSES).items()}
    assert rgb == {
        "open water": (150, 200, 255),
        "newly formed ice": (240, 210, 250),
        "brash/pancake ice": (220, 80, 215),
        "young ice": (170, 40, 240),
        "thin to medium first-year ice": (155, 210, 0),
        "thick or deformed ice": (0, 120, 0),
    }
    assert palettes.rgba(ICE_CLASSES)[0] == (150, 200, 255, 255)
    assert set(palettes.class_colours(["water", "ice", "land"]).values()) == {
        palettes.SURFACE_COLOURS[n] for n in ("water", "ice", "land")
    }


@pytest.mark.bad_input
def test_a_malformed_colour_is_refused():
    with refuses(ValueError, "'#12345'", "#rrggbb"):
        palettes.hex_to_rgb("#12345")

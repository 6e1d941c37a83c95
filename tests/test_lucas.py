"""eokit.datasets.lucas: LUCAS 2018 points to a GeoDataFrame and the documented LC1 -> TimeSen2Crop table."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from eokit.datasets import lucas
from eokit.schema import TS2C_CLASSES
from generators import lucas as gen


def test_open_primary(tmp_path):
    p = gen.make(tmp_path / "EU_2018.csv")
    gdf = lucas.open(p)
    assert gdf.crs.to_epsg() == 4326 and len(gdf) == len(gen.CODES)
    assert list(gdf["lc1"]) == [c for c, _ in gen.CODES]
    assert gdf["lc1_label"].iloc[0] == "Common wheat" and gdf["lc1_label"].iloc[8] == "Woodland"
    np.testing.assert_allclose(gdf.geometry.x, gdf["th_long"])
    assert gdf["point_id"].iloc[1] == "47003300"
    g = lucas.open(tmp_path, coords="gps")  # folder with one CSV
    assert list(g["coord_source"][:3]) == ["gps", "gps", "th"]
    np.testing.assert_allclose(g.geometry.y[0], gdf.geometry.y[0] + 1e-4, atol=1e-6)
    np.testing.assert_allclose(g.geometry.y[2], gdf.geometry.y[2])


def test_open_harmonised_lower_case(tmp_path):
    gdf = lucas.open(gen.make(tmp_path / "lucas_harmo_uf_2018.csv", harmonised=True))
    assert gdf["lc1_label"].iloc[9] == "Non built-up area features"
    assert lucas.open(tmp_path / "lucas_harmo_uf_2018.csv", countries=["AT"]).shape[0] == len(gen.CODES)


def test_map_lc1_reports_unmapped(tmp_path):
    gdf = lucas.open(gen.make(tmp_path / "p.csv"))
    mapped, report = lucas.map_lc1(gdf)
    assert len(mapped) == len(gdf)  # nothing dropped
    assert list(mapped["ts2c_class"][:8]) == ["Winter wheat", "Winter barley", "Maize", "Rapeseed", "Sunflower",
                                              "Soy", "Grassland", "Permanent plantation"]
    assert mapped["ts2c_class"].iloc[10] == "Beet"
    assert (mapped["ts2c_label"][8:10] == -1).all()
    assert list(report["lc1"]) == ["C10", "A21", "G11"] and list(report["n_points"]) == [2, 1, 1]
    assert report["reason"].iloc[0] == "not cropland or grassland"
    assert mapped.attrs["unmapped"][0]["lc1"] == "C10"


def test_table_is_consistent_with_schema():
    t = lucas.lc1_table()
    assert t["lc1"].is_unique
    for code, cls in [("B11", "Winter wheat"), ("B13", "Winter barley"), ("B14", "Rye"), ("B16", "Maize"),
                      ("B21", "Potato"), ("B22", "Beet"), ("B32", "Rapeseed"), ("B31", "Sunflower"), ("B33", "Soy"),
                      ("B41", "Legumes"), ("E20", "Grassland"), ("B71", "Permanent plantation")]:
        row = t[t.lc1 == code].iloc[0]
        assert row.ts2c_class == cls and TS2C_CLASSES[row.ts2c_label] == cls
    assert set(t["ts2c_class"]) <= set(TS2C_CLASSES)


def test_bad_input(tmp_path):
    p = gen.make(tmp_path / "p.csv")
    txt = p.read_text().splitlines()
    p.write_text("\n".join([txt[0].replace('"LC1"', '"LCX"')] + txt[1:]) + "\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['LC1'\]"):
        lucas.open(p)
    p2 = gen.make(tmp_path / "q.csv")
    rows = list(csv.reader(p2.open()))
    rows[3][2] = "north"  # TH_LAT of the point on line 4
    with p2.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(ValueError, match=r"q.csv, line 4, field TH_LAT: expected a number, got 'north'"):
        lucas.open(p2)

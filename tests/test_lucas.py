"""eokit.datasets.lucas: LUCAS 2018 points to a GeoDataFrame and the documented LC1 -> TimeSen2Crop table."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from badinput import refuses
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
    assert list(mapped["ts2c_class"][:8]) == [
        "Winter wheat",
        "Winter barley",
        "Maize",
        "Rapeseed",
        "Sunflower",
        "Soy",
        "Grassland",
        "Permanent plantation",
    ]
    assert mapped["ts2c_class"].iloc[10] == "Beet"
    assert (mapped["ts2c_label"][8:10] == -1).all()
    assert list(report["lc1"]) == ["C10", "A21", "G11"] and list(report["n_points"]) == [2, 1, 1]
    assert report["reason"].iloc[0] == "not cropland or grassland"
    assert mapped.attrs["unmapped"][0]["lc1"] == "C10"


def test_table_is_consistent_with_schema():
    t = lucas.lc1_table()
    assert t["lc1"].is_unique
    for code, cls in [
        ("B11", "Winter wheat"),
        ("B13", "Winter barley"),
        ("B14", "Rye"),
        ("B16", "Maize"),
        ("B21", "Potato"),
        ("B22", "Beet"),
        ("B32", "Rapeseed"),
        ("B31", "Sunflower"),
        ("B33", "Soy"),
        ("B41", "Legumes"),
        ("E20", "Grassland"),
        ("B71", "Permanent plantation"),
    ]:
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
    with p2.open(newline="") as f:
        rows = list(csv.reader(f))
    rows[3][2] = "north"  # TH_LAT of the point on line 4
    with p2.open("w", newline="") as f:
        csv.writer(f).writerows(rows)
    with pytest.raises(ValueError, match=r"q.csv, line 4, field TH_LAT: expected a number, got 'north'"):
        lucas.open(p2)


# --- hostile inputs (tests/badinput.py contract) ----------------------------------------------------------


@pytest.mark.bad_input
def test_missing_lc1_column(tmp_path):
    p = gen.make(tmp_path / "p.csv")
    txt = p.read_text().splitlines()
    p.write_text("\n".join([txt[0].replace('"LC1"', '"LCX"')] + txt[1:]) + "\n")
    with refuses(ValueError, "p.csv", "missing column(s) ['LC1']", "expected POINT_ID, TH_LAT, TH_LONG, LC1"):
        lucas.open(p)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "column, value, coords",
    [("TH_LAT", "north", "th"), ("TH_LONG", "13,2", "th"), ("GPS_LAT", "abc", "gps"), ("GPS_LONG", "n/a", "gps")],
)
def test_coordinates_that_are_not_numbers(tmp_path, column, value, coords):
    # before: a GPS field that is not a number fell back to the grid position without a word
    p = gen.set_field(gen.make(tmp_path / "q.csv"), 3, column, value)
    with refuses(ValueError, "q.csv", "line 3", f"field {column}", "expected a number", repr(value)):
        lucas.open(p, coords=coords)


@pytest.mark.bad_input
def test_latitude_out_of_range(tmp_path):
    p = gen.set_field(gen.make(tmp_path / "q.csv"), 3, "TH_LAT", "95")
    with refuses(ValueError, "q.csv", "line 3", "no valid coordinates", "lat 95.0"):
        lucas.open(p)


@pytest.mark.bad_input
def test_gps_ew_code_outside_the_codes(tmp_path):
    # before: any value other than "2" was read as east
    p = gen.set_field(gen.make(tmp_path / "q.csv"), 2, "GPS_EW", "W")
    with refuses(ValueError, "q.csv", "line 2", "field GPS_EW", "1 (east), 2 (west) or 8"):
        lucas.open(p, coords="gps")


@pytest.mark.bad_input
@pytest.mark.parametrize("value", ["wheat", "B1234", "Z11", "8"])
def test_lc1_values_that_are_not_land_cover_codes(tmp_path, value):
    # before: 'wheat' was reported as "not cropland or grassland", as if it were a real LUCAS class
    p = gen.set_field(gen.make(tmp_path / "q.csv"), 3, "LC1", value)
    with refuses(ValueError, "q.csv", "line 3", "field LC1", "not a LUCAS land cover code", "A..H"):
        lucas.open(p)


@pytest.mark.bad_input
def test_duplicate_point_id(tmp_path):
    p = gen.make(tmp_path / "q.csv")
    lines = p.read_text().splitlines()
    p.write_text("\n".join(lines + [lines[1]]) + "\n")
    with refuses(ValueError, "q.csv", "field POINT_ID", "lines [2, 15]", "each survey point once"):
        lucas.open(p)


@pytest.mark.bad_input
def test_blank_point_id(tmp_path):
    p = gen.set_field(gen.make(tmp_path / "q.csv"), 3, "POINT_ID", " ")
    with refuses(ValueError, "q.csv", "line 3", "field POINT_ID", "point identifier"):
        lucas.open(p)


@pytest.mark.bad_input
def test_unknown_coords_choice(tmp_path):
    # before: anything but "gps" silently meant the theoretical grid position
    with refuses(ValueError, "coords", "'th'", "'gps'", "'xyz'"):
        lucas.open(gen.make(tmp_path / "q.csv"), coords="xyz")


@pytest.mark.bad_input
@pytest.mark.parametrize("content, why", [(b"", "No columns"), (b"POINT_ID,TH_LAT\n\xff\xfe\x00", "codec")])
def test_empty_or_binary_file(tmp_path, content, why):
    # before: pandas EmptyDataError / UnicodeDecodeError without the file name
    (tmp_path / "bad.csv").write_bytes(content)
    with refuses(ValueError, "bad.csv", "cannot be read as a LUCAS point CSV", why, "header row"):
        lucas.open(tmp_path / "bad.csv")


@pytest.mark.bad_input
def test_folder_with_two_csvs(tmp_path):
    gen.make(tmp_path / "a.csv")
    gen.make(tmp_path / "b.csv")
    with refuses(FileNotFoundError, "expected one CSV", "a.csv", "b.csv"):
        lucas.open(tmp_path)


@pytest.mark.bad_input
def test_map_lc1_without_lc1_column(tmp_path):
    gdf = lucas.open(gen.make(tmp_path / "q.csv")).drop(columns="lc1")
    with refuses(ValueError, "'lc1'", "eokit.datasets.lucas.open"):
        lucas.map_lc1(gdf)


def test_bom_country_string_and_blank_lc1(tmp_path):
    p = gen.set_field(gen.make(tmp_path / "q.csv"), 3, "LC1", "")
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())  # what Excel writes
    gdf = lucas.open(p, countries="AT")
    assert len(gdf) == len(gen.CODES) and gdf["point_id"].iloc[0] == "47001300"
    _, report = lucas.map_lc1(gdf)
    blank = report[report["lc1"] == ""]
    assert blank["n_points"].tolist() == [1] and blank["reason"].tolist() == ["no LC1 code recorded"]


def _stack_polygons():
    """(fields in the stack's CRS, woods and farmstead polygons there) of the bundled S2 stack."""
    import geopandas as gpd
    from shapely import affinity

    from eokit.paths import SAMPLE_DIR
    from eokit.synthetic import field_layout

    fields = gpd.read_file(SAMPLE_DIR / "s2stack" / "fields.gpkg").to_crs("EPSG:32633")
    polys, kinds = field_layout(0, 1000.0, 40)
    to_map = [1, 0, 0, -1, 560000.0, 5220000.0]  # local metres (y down) -> EPSG:32633, as make_s2_stack
    other = [affinity.affine_transform(p, to_map) for p, k in zip(polys, kinds, strict=True) if k != "field"]
    return fields, gpd.GeoSeries(other, crs="EPSG:32633")


def test_bundled_points_carry_the_lc1_code_of_the_crop_under_them():
    from shapely.geometry import box

    from eokit.paths import SAMPLE_DIR
    from eokit.synthetic import INVEKOS_CLASSES

    pts = lucas.open(SAMPLE_DIR / "lucas" / "LUCAS_2018_sample_AT.csv")
    assert pts.attrs["source_file"].endswith("LUCAS_2018_sample_AT.csv") and set(pts["nuts0"]) == {"AT"}
    mapped, unmapped = lucas.map_lc1(pts)
    fields, other = _stack_polygons()
    utm = mapped.to_crs("EPSG:32633")
    in_stack = utm.geometry.within(box(560000.0, 5219000.0, 561000.0, 5220000.0))  # the stack's extent
    hit = utm.sjoin(fields, predicate="within", how="left")
    crop = hit["crop_code"].notna()
    assert crop.sum() == 20 and (~in_stack).sum() == 3 and hit.index.is_unique
    # the field's declared crop and the surveyed code agree up to the table's documented approximations
    approx = {"SOMMERGERSTE": 6, "KUEMMEL": 15}  # barley is B13 whatever the season; caraway has no code
    want = [approx.get(c, INVEKOS_CLASSES[c]) for c in hit.loc[crop, "crop_code"]]
    assert hit.loc[crop, "ts2c_label"].tolist() == want
    # the points with no TimeSen2Crop class lie in the stack's woods and farmstead, not in a field
    non_crop = hit["ts2c_label"] < 0
    assert sorted(unmapped["lc1"]) == ["A11", "C10", "C21"] and non_crop.sum() == 3
    assert all(other.contains(g).any() for g in utm.geometry[non_crop])
    assert not (crop & non_crop).any()


def test_bundled_points_are_remade_byte_for_byte(tmp_path):
    from eokit.paths import SAMPLE_DIR
    from eokit.synthetic import make_lucas_points

    p = make_lucas_points(tmp_path / "pts.csv", SAMPLE_DIR / "s2stack", seed=0, n_fields=40)
    assert p.read_bytes() == (SAMPLE_DIR / "lucas" / "LUCAS_2018_sample_AT.csv").read_bytes()
    header = p.read_text().splitlines()[0].split(",")
    assert len(header) == 97 and header[:3] == ["POINT_ID", '"NUTS0"', '"NUTS1"'] and header[-1] == '"PHOTO_WEST"'
    with refuses(FileExistsError, "pts.csv"):
        make_lucas_points(p, SAMPLE_DIR / "s2stack")
    other = make_lucas_points(tmp_path / "seed1.csv", SAMPLE_DIR / "s2stack", seed=1, n_fields=40)
    assert other.read_bytes() != p.read_bytes()


@pytest.mark.bad_input
def test_points_over_a_folder_that_holds_no_stack(tmp_path):
    from eokit.synthetic import make_lucas_points

    with refuses(FileNotFoundError, "no S2_<YYYYMMDD>.tif", "make_s2_stack"):
        make_lucas_points(tmp_path / "pts.csv", tmp_path)

"""eokit.datasets.metno: SIGRID-3 shapefiles (v1/v2 layouts) to decoded GeoDataFrames and WMO classes."""

from __future__ import annotations

import pytest

from badinput import refuses
from eokit import sigrid
from eokit.datasets import metno
from eokit.schema import ICE_CLASSES
from generators import metno as gen


def test_v1_decoded_crs_kept(tmp_path):
    gen.make(tmp_path, "v1")
    gdf = metno.open(tmp_path)
    assert gdf.crs.to_epsg() == 3413
    assert len(gdf) == 2 * len(gen.ROWS)
    assert sorted(gdf["scene"].unique()) == gen.SCENES
    assert list(gdf["POLY_TYPE_name"][:6]) == ["water", "ice", "ice", "ice", "ice", "land"]
    assert list(gdf["SA_name"][1:5]) == ["thick first-year ice", "young ice", "new ice", "medium first-year ice"]
    assert gdf["SA"].isna().iloc[0]  # -9 -> missing
    assert gdf["FA_name"].iloc[4] == "pancake ice"
    assert gdf.attrs["version"] == "v1" and gdf.attrs["unknown_codes"] == {}
    assert gdf["wmo_class"].tolist()[:5] == [
        "open water",
        "thick or deformed ice",
        "young ice",
        "newly formed ice",
        "brash/pancake ice",
    ]
    assert "id" in gdf.columns and "AREA" in gdf.columns  # METNO's own id kept; SIGRID-3 fields upper case
    assert "icebergs" not in set(gdf["source_file"])


def test_v2_layout_with_halves(tmp_path):
    gen.make(tmp_path, "v2")
    gdf = metno.open(tmp_path)
    assert "SD" in gdf.columns and gdf.attrs["version"] == "v2"
    assert sorted(gdf["half"].unique()) == ["", "NE", "SW"]
    assert len(gdf) == 3 * len(gen.ROWS)
    one = metno.open(tmp_path, scenes=["20180116"])
    assert set(one["scene"]) == {"20180116T075430"}
    bergs = metno.open_icebergs(tmp_path)
    assert len(bergs) == 2 and bergs.crs.to_epsg() == 3413


def test_to_wmo_class(tmp_path):
    gen.make(tmp_path, "v1")
    gdf = metno.open(tmp_path)
    w = metno.to_wmo_class(gdf)
    assert list(w[:6].astype(object).where(w[:6].notna(), None)) == [
        "open water",
        "thick or deformed ice",
        "young ice",
        "newly formed ice",
        "brash/pancake ice",
        None,
    ]
    assert set(w.dropna()) <= set(ICE_CLASSES)
    t = metno.sigrid_table()
    assert {81, 82, 83, 84, 85, 86, 87, 91, 93, 95, 98, 99} <= set(t[t.kind == "stage"].code)


def test_public_names_are_the_sigrid_ones():
    assert metno.to_wmo_class is sigrid.to_wmo_class and metno.sigrid_table is sigrid.code_table
    assert metno.POLY_TYPES is sigrid.POLY_TYPES and set(metno.POLY_TYPES) == {"I", "W", "L", "N", "S"}


def _chart(tmp_path):
    folder = gen.make(tmp_path / "a", "v1")
    return folder, folder / f"seaice_s1_{gen.SCENES[0]}.shp"


def test_unknown_code_reported_when_asked(tmp_path):
    import geopandas as gpd

    folder, p = _chart(tmp_path)
    g = gpd.read_file(p)
    g.loc[1, "SA"] = "77"
    g.to_file(p)
    with pytest.warns(UserWarning, match="outside the SIGRID-3 tables"):
        gdf = metno.open(folder, on_unmapped="nan")
    assert gdf.attrs["unknown_codes"] == {p.name: {"SA": [77]}}
    assert gdf["SA_name"].isna().iloc[1] and gdf["wmo_class"].isna().iloc[1]
    with pytest.raises(ValueError, match="no WMO class"):
        metno.to_wmo_class(gdf, on_unmapped="raise")


@pytest.mark.bad_input
def test_unknown_code_refused_by_default(tmp_path):
    import geopandas as gpd

    folder, p = _chart(tmp_path)
    g = gpd.read_file(p)
    g.loc[1, "SA"] = "77"
    g.to_file(p)
    with refuses(ValueError, p.name, "feature 1 (id 2)", "field SA", "77", "expected one of"):
        metno.open(folder)


@pytest.mark.bad_input
def test_unknown_poly_type_refused(tmp_path):
    import geopandas as gpd

    folder, p = _chart(tmp_path)
    g = gpd.read_file(p)
    g.loc[1, "poly_type"] = "X"
    g.to_file(p)
    with refuses(ValueError, p.name, "feature 1", "field POLY_TYPE holds 'X'", "expected one of", "W (water)"):
        metno.open(folder)


@pytest.mark.bad_input
def test_missing_field_refused(tmp_path):
    import geopandas as gpd

    folder, p = _chart(tmp_path)
    gpd.read_file(p).drop(columns=["CT"]).to_file(p)
    with refuses(ValueError, p.name, "missing SIGRID-3 field(s) ['CT']", "expected at least"):
        metno.open(folder)


def test_nothing_found(tmp_path):
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(FileNotFoundError, match=r"no seaice_s1_.*found file types \['.txt'\]"):
        metno.open(tmp_path)

"""eokit.labels: reading crop maps in any CRS, code mapping, block-wise rasterisation with erosion."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from shapely.geometry import box

from badinput import refuses, warns_naming
from eokit import cube, labels
from eokit.schema import TS2C_CLASSES
from generators import s2


@pytest.fixture()
def stack(tmp_path):
    s2.write_geotiff_stack(tmp_path / "stack", dates=s2.DATES[:2])
    s2.write_fields(tmp_path / "fields.gpkg")
    return tmp_path


def test_invekos_table_covers_classes_and_known_names():
    table = labels.load_mapping("invekos")
    assert set(table["class_id"]) == set(range(16))
    for cid, name in zip(table["class_id"], table["class_name"], strict=True):
        assert TS2C_CLASSES[cid] == name
    lut = dict(zip(table["code"], table["class_id"], strict=True))
    expected = {
        "WINTERWEICHWEIZEN": 12,
        "KOERNERMAIS": 2,
        "SILOMAIS": 2,
        "WINTERGERSTE": 6,
        "SOMMERGERSTE": 11,
        "SOJABOHNEN": 5,
        "ZUCKERRUEBEN": 10,
        "KARTOFFELN": 3,
        "WINTERRAPS": 9,
        "SONNENBLUMEN": 4,
        "DAUERWIESE": 1,
        "MAEHWIESE": 1,
        "WINTERROGGEN": 8,
        "WINTERTRITICALE": 13,
        "KUEMMEL": 7,
        "ERBSEN": 0,
        "ACKERBOHNEN": 0,
        "OBSTANLAGEN": 14,
        "WEINGAERTEN": 14,
        "OELKUERBIS": 15,
    }
    for code, cid in expected.items():
        assert lut[code] == cid, code
    # the bundled synthetic sample uses these names: the table must agree with it
    from eokit.synthetic import INVEKOS_CLASSES

    for code, cid in INVEKOS_CLASSES.items():
        assert lut[code] == cid, code


def test_read_polygons_maps_and_reprojects(stack):
    gdf = labels.read_polygons(stack / "fields.gpkg", "crop_code", mapping="invekos", crs="EPSG:32633")
    assert gdf.crs.to_epsg() == 32633
    raw = gpd.read_file(stack / "fields.gpkg")
    assert raw.crs.to_epsg() == 4326
    assert {"label", "label_name", "field_id"} <= set(gdf.columns)
    assert gdf["label"].dtype == np.int64
    wheat = gdf[gdf["crop_code"] == "WINTERWEICHEN"]
    assert (wheat["label"] == 12).all() and (wheat["label_name"] == "Winter wheat").all()
    assert gdf["field_id"].tolist() == raw["field_id"].tolist()
    x0, y0, x1, y1 = gdf.total_bounds
    assert abs(x0 - s2.ORIGIN[0]) < 1 and abs(y1 - s2.ORIGIN[1]) < 1


def test_read_polygons_formats_umlauts_and_errors(stack, tmp_path):
    raw = gpd.read_file(stack / "fields.gpkg")
    raw.loc[0, "crop_code"] = "Körnermais"
    raw.to_parquet(tmp_path / "f.parquet")
    raw.to_file(tmp_path / "f.shp")
    for p in (tmp_path / "f.parquet", tmp_path / "f.shp"):
        g = labels.read_polygons(p, "crop_code", mapping="invekos")
        assert g["label"].iloc[0] == 2
    with pytest.raises(ValueError, match=r"label column 'kultur' not found; columns are \['field_id', 'crop_code'\]"):
        labels.read_polygons(stack / "fields.gpkg", "kultur")
    raw.loc[1, "crop_code"] = "MARSWEIZEN"
    raw.loc[2, "crop_code"] = "MARSWEIZEN"
    raw.to_file(tmp_path / "bad.gpkg")
    with pytest.raises(
        ValueError,
        match=r"bad.gpkg: column 'crop_code' has codes missing from the mapping: "
        r"'MARSWEIZEN' \(2 polygons\)",
    ):
        labels.read_polygons(tmp_path / "bad.gpkg", "crop_code", mapping="invekos")
    with pytest.warns(UserWarning, match="MARSWEIZEN"):
        g = labels.read_polygons(tmp_path / "bad.gpkg", "crop_code", mapping="invekos", on_missing="warn")
    assert len(g) == len(raw) - 2
    with pytest.raises(FileNotFoundError):
        labels.read_polygons(tmp_path / "nope.gpkg", "crop_code")
    with pytest.raises(FileNotFoundError, match="mapping table"):
        labels.read_polygons(stack / "fields.gpkg", "crop_code", mapping=tmp_path / "nope.csv")


def test_read_polygons_without_mapping_and_custom_mapping(stack, tmp_path):
    g = labels.read_polygons(stack / "fields.gpkg", "crop_code")
    codes = sorted(g["crop_code"].unique())
    assert g["label"].tolist() == [codes.index(c) for c in g["crop_code"]]
    g = labels.read_polygons(stack / "fields.gpkg", "field_id")  # integer codes are kept as class ids
    assert g["label"].tolist() == g["field_id"].tolist()
    pd.DataFrame(
        {
            "code": ["WINTERWEICHEN", "KOERNERMAIS", "DAUERWIESE", "SOJABOHNEN"],
            "class_name": ["cereal", "summer", "grass", "summer"],
        }
    ).to_csv(tmp_path / "m.csv", index=False)
    g = labels.read_polygons(stack / "fields.gpkg", "crop_code", mapping=tmp_path / "m.csv")
    assert set(g["label_name"]) <= {"cereal", "summer", "grass"}
    assert dict(zip(g["label_name"], g["label"], strict=True)) == {
        n: i for i, n in enumerate(["cereal", "grass", "summer"]) if n in set(g["label_name"])
    }


def _square(i0, j0, n, res=10.0):
    x0 = s2.ORIGIN[0] + j0 * res
    y1 = s2.ORIGIN[1] - i0 * res
    return box(x0, y1 - n * res, x0 + n * res, y1)


def test_rasterize_erosion_and_overlaps(stack):
    ds = cube.open(stack / "stack", chunks=16)
    polys = gpd.GeoDataFrame(
        {"label": [3, 5, 7], "field_id": [11, 12, 13]},
        geometry=[_square(2, 2, 8), _square(20, 20, 10), _square(24, 24, 10)],
        crs="EPSG:32633",
    ).to_crs("EPSG:3035")  # reprojected back by rasterize
    lab0, fid0 = labels.rasterize(polys, ds, erosion=0)
    lab1, fid1 = labels.rasterize(polys, ds, erosion=1)
    lab2, _ = labels.rasterize(polys, ds, erosion=2)
    assert isinstance(lab0, xr.DataArray) and lab0.dims == ("y", "x") and lab0.chunks == ((16, 16, 8), (16, 16, 16))
    l0, l1, l2 = lab0.values, lab1.values, lab2.values
    assert (l0 == 3).sum() == 64 and (l1 == 3).sum() == 36 and (l2 == 3).sum() == 16
    assert (l1[3:9, 3:9] == 3).all() and (l1[2, 2:10] == -1).all()
    # the two overlapping squares share rows/cols 24..29: those pixels belong to neither
    assert (l0[24:30, 24:30] == -1).all()
    assert (l0 == 5).sum() == 100 - 36 and (l0 == 7).sum() == 100 - 36
    f1 = fid1.values
    assert set(np.unique(f1)) == {-1, 11, 12, 13} and ((f1 == 11) == (l1 == 3)).all()
    # block-wise equals one block
    whole = cube.open(stack / "stack", chunks=4096)
    lw, fw = labels.rasterize(polys, whole, erosion=1)
    np.testing.assert_array_equal(lw.values, l1)
    np.testing.assert_array_equal(fw.values, f1)
    assert lab1.rio.crs.to_epsg() == 32633


def test_rasterize_errors(stack):
    ds = cube.open(stack / "stack", chunks=16)
    far = gpd.GeoDataFrame({"label": [1]}, geometry=[box(0, 0, 10, 10)], crs="EPSG:32633")
    with pytest.raises(ValueError, match="no polygon overlaps the cube"):
        labels.rasterize(far, ds)
    named = gpd.GeoDataFrame({"label": ["maize"]}, geometry=[_square(0, 0, 4)], crs="EPSG:32633")
    with pytest.raises(ValueError, match="must hold integer class ids"):
        labels.rasterize(named, ds)
    with pytest.raises(ValueError, match="label column 'class' not found"):
        labels.rasterize(named, ds, label_column="class")
    nocrs = ds.drop_vars("spatial_ref")
    nocrs["reflectance"].attrs.pop("grid_mapping", None)
    nocrs["flag"].attrs.pop("grid_mapping", None)
    with pytest.raises(ValueError, match="the cube has no CRS"):
        labels.rasterize(named.assign(label=[1]), nocrs)
    with pytest.raises(ValueError, match="erosion must be >= 0"):
        labels.rasterize(named.assign(label=[1]), ds, erosion=-1)


def test_name_column_and_empty_names_fall_back_to_codes(tmp_path):
    gdf = gpd.GeoDataFrame(
        {"LULC_ID": [0, 2, 3], "LULC_NAME": ["", "forest", None]},
        geometry=[_square(0, 0, 2), _square(4, 4, 2), _square(8, 8, 2)],
        crs="EPSG:32633",
    )
    g = labels.read_polygons(gdf, "LULC_ID")  # LULC_NAME found from the _ID column name
    assert g["label_name"].tolist() == ["0", "forest", "3"] and g["label"].tolist() == [0, 2, 3]
    again = labels.read_polygons(g, "label")
    assert again["label_name"].tolist() == ["0", "forest", "3"]


# --- hostile inputs (tests/badinput.py contract) ----------------------------------------------------------


def _gdf(values, geoms=None, column="label", crs="EPSG:32633"):
    geoms = geoms if geoms is not None else [_square(4 * k, 4 * k, 3) for k in range(len(values))]
    return gpd.GeoDataFrame({column: values}, geometry=geoms, crs=crs)


@pytest.mark.bad_input
def test_read_polygons_refuses_polygons_without_crs():
    with refuses(ValueError, "polygons", "no CRS", "set_crs"):
        labels.read_polygons(_gdf([1, 2], crs=None), "label")


@pytest.mark.bad_input
@pytest.mark.parametrize("call", ["read_polygons", "rasterize"])
def test_empty_polygon_set_is_refused(stack, call):
    empty = _gdf(np.array([], np.int64), geoms=[])
    with refuses(ValueError, "no polygons given", "at least one"):
        if call == "read_polygons":
            labels.read_polygons(empty, "label")
        else:
            labels.rasterize(empty, cube.open(stack / "stack", chunks=16))


@pytest.mark.bad_input
def test_missing_label_column_names_the_file_and_columns(stack):
    with refuses(ValueError, "fields.gpkg", "'kultur'", "columns are"):
        labels.read_polygons(stack / "fields.gpkg", "kultur")


@pytest.mark.bad_input
def test_float_codes_that_are_not_whole_class_ids_are_refused():
    # before: 1.5 and 10.0 became classes 0 and 1 by the string order of '1.5', '10.0', '2.0'
    with refuses(ValueError, "'c'", "not whole class ids", "rows [0]", "mapping="):
        labels.read_polygons(_gdf([1.5, 10.0, 2.0], column="c"), "c")


@pytest.mark.bad_input
def test_float_label_column_with_nan_names_the_rows():
    with refuses(ValueError, "'c'", "no value", "rows [1]", "on_missing='warn'"):
        labels.read_polygons(_gdf([1.0, np.nan, 2.0], column="c"), "c")


@pytest.mark.bad_input
def test_codes_missing_from_the_mapping_are_listed(stack, tmp_path):
    raw = gpd.read_file(stack / "fields.gpkg")
    raw.loc[[1, 2], "crop_code"] = "MARSWEIZEN"
    raw.to_file(tmp_path / "bad.gpkg")
    with refuses(ValueError, "bad.gpkg", "'crop_code'", "MARSWEIZEN", "missing from the mapping"):
        labels.read_polygons(tmp_path / "bad.gpkg", "crop_code", mapping="invekos")


@pytest.mark.bad_input
def test_lines_and_points_are_not_polygons():
    from shapely.geometry import LineString, Point

    x0, y0 = s2.ORIGIN
    gdf = _gdf([1, 2], geoms=[LineString([(x0, y0 - 5), (x0 + 200, y0 - 5)]), Point(x0 + 5, y0 - 5)])
    with refuses(ValueError, "polygons", "Polygon or MultiPolygon", "rows [0, 1]", "LineString", "Point"):
        labels.read_polygons(gdf, "label")


@pytest.mark.bad_input
def test_self_intersecting_polygon_is_repaired_with_a_warning(stack):
    from shapely import make_valid
    from shapely.geometry import Polygon

    x0, y0 = s2.ORIGIN  # a 10 x 10 pixel bow-tie: two triangles touching at the centre
    bow = Polygon([(x0, y0), (x0 + 100, y0 - 100), (x0 + 100, y0), (x0, y0 - 100)])
    ds = cube.open(stack / "stack", chunks=16)
    with warns_naming(UserWarning, "invalid polygons", "make_valid", "rows [0]"):
        g = labels.read_polygons(_gdf([1], geoms=[bow]), "label")
    assert g.is_valid.all()
    with warns_naming(UserWarning, "invalid polygons", "rows [0]"):
        lab, _ = labels.rasterize(_gdf([1], geoms=[bow]), ds, erosion=1)
    # before: the eroded invalid ring kept 6 pixels; the repaired triangles give what their valid shape gives
    want, _ = labels.rasterize(_gdf([1], geoms=[make_valid(bow)]), ds, erosion=1)
    np.testing.assert_array_equal(lab.values, want.values)


@pytest.mark.bad_input
def test_unreadable_polygon_file_names_it(tmp_path):
    (tmp_path / "bad.gpkg").write_bytes(b"garbage" * 100)
    with refuses(ValueError, "bad.gpkg", "cannot be read", "GeoPackage"):
        labels.read_polygons(tmp_path / "bad.gpkg", "crop_code")


@pytest.mark.bad_input
@pytest.mark.parametrize("value", ["abc", "1.5", ""])
def test_mapping_table_class_ids_must_be_whole_numbers(tmp_path, value):
    # before: 'abc' gave "invalid literal for int()", 1.5 was truncated to class 1, a blank was reported by row
    (tmp_path / "m.csv").write_text(f"code,class_id\nWINTERWEICHEN,12\nKOERNERMAIS,{value}\n")
    with refuses(ValueError, "m.csv", "'class_id'", "whole-number ids", "rows [3]"):
        labels.load_mapping(tmp_path / "m.csv")


@pytest.mark.bad_input
def test_mapping_table_rows_without_code_are_refused(tmp_path):
    (tmp_path / "m.csv").write_text("code,class_id\nWINTERWEICHEN,12\n,2\n")
    with refuses(ValueError, "m.csv", "rows [3]", "no code"):
        labels.load_mapping(tmp_path / "m.csv")


@pytest.mark.bad_input
def test_unknown_target_crs_is_a_clear_error(stack):
    with refuses(ValueError, "fields.gpkg", "EPSG:99999", "expected a CRS"):
        labels.read_polygons(stack / "fields.gpkg", "crop_code", crs="EPSG:99999")


@pytest.mark.bad_input
def test_rasterize_polygons_outside_the_cube(stack):
    far = _gdf([1], geoms=[box(0, 0, 10, 10)])
    with refuses(ValueError, "no polygon overlaps the cube", "EPSG:32633"):
        labels.rasterize(far, cube.open(stack / "stack", chunks=16))


@pytest.mark.bad_input
def test_rasterize_refuses_negative_class_ids(stack):
    # before: a polygon of class -1 was burnt as -1, the "no label" value, and vanished without a word
    with refuses(ValueError, "'label'", ">= 0", "rows [0]", "[-1]"):
        labels.rasterize(_gdf([-1, 3]), cube.open(stack / "stack", chunks=16))


@pytest.mark.bad_input
def test_rasterize_refuses_field_ids_that_are_not_integers(stack):
    # before: NaN became -9223372036854775808 and 5.5 became 5 in the field raster
    gdf = _gdf([1, 3]).assign(field_id=[5.5, np.nan])
    with refuses(ValueError, "'field_id'", "whole-number ids", "rows [0, 1]"):
        labels.rasterize(gdf, cube.open(stack / "stack", chunks=16))


@pytest.mark.bad_input
def test_rasterize_needs_y_and_x_dimensions(stack):
    ds = cube.open(stack / "stack", chunks=16).rename(x="lon")
    with refuses(ValueError, "['x']", "dimension", "expected a cube with 'y' and 'x'"):
        labels.rasterize(_gdf([1]), ds)

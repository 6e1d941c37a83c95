"""Tests of the sample Intake catalog and eokit.catalog (every entry opens, describe's table)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from badinput import refuses
from eokit import catalog
from eokit.paths import CATALOG_DIR, SAMPLE_DIR

# intake 2.0.9 warns for every string parameter default (see eokit.catalog)
pytestmark = pytest.mark.filterwarnings("ignore:Shell command not executed")


@pytest.fixture(scope="module")
def cat():
    return catalog.open_catalog("sample")


def test_open_by_name_or_path(cat) -> None:
    assert "sample" in catalog.available()
    by_path = catalog.open_catalog(CATALOG_DIR / "sample.yaml")
    assert sorted(by_path) == sorted(cat)
    assert catalog.open_catalog(cat) is cat
    with pytest.raises(FileNotFoundError, match="available: .*sample"):
        catalog.open_catalog("no-such-catalog")


def test_every_entry_opens(cat) -> None:
    assert len(list(cat)) >= 12
    for name in cat:
        src = cat[name]
        out = src.read()
        assert out is not None, name
        if isinstance(out, xr.Dataset):
            assert out.sizes and all(n > 0 for n in out.sizes.values()), name
            if isinstance(src, catalog.EokitSource):  # to_dask is read() there: already exercised
                continue
            lazy = src.to_dask()
            assert isinstance(lazy, xr.Dataset) and set(lazy.data_vars) == set(out.data_vars), name
        elif isinstance(out, pd.DataFrame):
            assert len(out) > 0, name
        else:
            assert np.asarray(out).size > 0, name


def test_entries_hold_the_expected_data(cat) -> None:
    refl = cat.s2stack_reflectance.read()
    assert refl.sizes["date"] == len(list((SAMPLE_DIR / "s2stack").glob("S2_*.tif"))) and refl.sizes["band"] == 9
    assert np.issubdtype(refl.date.dtype, np.datetime64)
    fields = cat.s2stack_fields.read()
    assert isinstance(fields, gpd.GeoDataFrame) and fields.crs.to_epsg() == 3035
    assert {"field_id", "crop_code", "class_id"} <= set(fields.columns)
    ts = cat.timesen2crop_sample.read()
    assert ts.sizes["band"] == 9 and set(np.unique(ts.tile.values)) == {"33UVP", "33TWN", "33UWP"}
    one = cat.timesen2crop_sample_csv(tile="33UVP", class_id=12, sample=3).read()
    dates = cat.timesen2crop_sample_dates(tile="33UVP").read()
    assert list(one.columns) == ["B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B9", "Flag"]
    assert len(one) == len(dates) and dates.acquisition_date.str.len().eq(8).all()
    hh = cat.sar_layers(scene="S1B_20180213T175444").read()
    assert list(hh.layer.values) == ["Sigma0_HH_db", "Sigma0_HV_db", "incidence_angle"]
    scene = cat.sar_scene(scene="S1A_20180612T180423").read()
    assert {"HH", "HV", "IA"} <= set(scene.data_vars)
    with pytest.raises(ValueError):
        cat.sar_scene(scene="not-a-scene")
    ice = cat.sar_ice_polygons.read()
    assert set(ice.ice_class) == set(range(6))
    slo = cat.slovenia.read()
    np.testing.assert_array_equal(cat.slovenia_lulc.read()[..., 0], slo.lulc.values)
    ndvi = cat.slovenia_ndvi_stack.read()
    np.testing.assert_array_equal(ndvi.band_data.values[:, 0], slo.ndvi.values)
    np.testing.assert_array_equal(ndvi.time.values, slo.time.values)


def test_describe_lists_licence_citation_size(cat) -> None:
    table = catalog.describe(cat)
    assert list(table.columns) == ["name", "description", "licence", "citation", "size", "url"]
    assert sorted(table.name) == sorted(cat)
    assert (table.licence != "").all() and (table.citation != "").all() and (table.description != "").all()
    assert table.set_index("name").loc["slovenia", "licence"] == "MIT"
    size = table.set_index("name").loc["s2stack_reflectance", "size"]
    assert size.endswith("MB") and 0.5 < float(size.split()[0]) < 12
    assert catalog.describe("sample").equals(table)


def test_describe_reads_other_catalogs(tmp_path: Path) -> None:
    yaml = tmp_path / "remote.yaml"
    yaml.write_text(
        "sources:\n"
        "  archive:\n"
        "    description: a remote archive\n"
        "    driver: csv\n"
        "    args: {urlpath: 'https://example.org/a.csv'}\n"
        "    metadata: {license: CC-BY-4.0, citation: Someone 2021, size: 1.03 GB, urls: [https://a, https://b]}\n"
    )
    row = catalog.describe(yaml).iloc[0]
    assert (row["name"], row.licence, row["size"], row.url) == (
        "archive",
        "CC-BY-4.0",
        "1.03 GB",
        "https://a https://b",
    )
    if (CATALOG_DIR / "extremeearth.yaml").exists():
        table = catalog.describe("extremeearth")
        assert len(table) >= 7 and (table.licence != "").all()


@pytest.mark.bad_input
def test_unknown_catalog_name_lists_the_available_ones() -> None:
    with refuses(FileNotFoundError, "no-such-catalog", "available", "sample"):
        catalog.open_catalog("no-such-catalog")
    with refuses(FileNotFoundError, "no-such-catalog", "available", "sample"):
        catalog.describe("no-such-catalog")


@pytest.mark.bad_input
def test_catalog_path_that_does_not_exist(tmp_path: Path) -> None:
    with refuses(FileNotFoundError, str(tmp_path / "mine.yaml"), "does not exist"):
        catalog.open_catalog(tmp_path / "mine.yaml")


@pytest.mark.bad_input
def test_vector_source_missing_file(tmp_path: Path) -> None:
    with refuses(FileNotFoundError, "missing.gpkg", "does not exist"):
        catalog.GeoDataFrameSource(str(tmp_path / "missing.gpkg")).read()


@pytest.mark.bad_input
def test_vector_source_file_that_is_no_vector_file(tmp_path: Path) -> None:
    bad = tmp_path / "fields.gpkg"
    bad.write_text("not a GeoPackage")
    with refuses(ValueError, str(bad), "cannot be read", "GeoPackage"):
        catalog.GeoDataFrameSource(str(bad)).read()


@pytest.mark.bad_input
def test_vector_source_missing_layer() -> None:
    path = SAMPLE_DIR / "s2stack" / "fields.gpkg"
    with refuses(ValueError, str(path), "layer 'nope'", "cannot be read"):
        catalog.GeoDataFrameSource(str(path), layer="nope").read()


@pytest.mark.bad_input
def test_opener_without_module_function_form() -> None:
    with refuses(ValueError, "eokit.datasets.slovenia.open", "module:function"):
        catalog.EokitSource("eokit.datasets.slovenia.open")


@pytest.mark.bad_input
@pytest.mark.parametrize("opener", ["eokit.nowhere:open", "eokit.datasets.slovenia:nope"])
def test_opener_that_cannot_be_imported(tmp_path: Path, opener: str) -> None:
    with refuses(ImportError, opener, "cannot be imported"):
        catalog.EokitSource(opener, str(tmp_path)).read()


def test_one_driver_for_both_catalogs(tmp_path: Path) -> None:
    from eokit import download

    assert download.EokitSource is catalog.EokitSource  # the old import path is an alias of the one class
    for name in ("sample", "extremeearth"):
        text = catalog.catalog_path(name).read_text()
        assert "eokit.download.EokitSource" not in text and "opener:" not in text, name
    # the old key `opener:` still works in a catalog, as an alias of `reader:`
    yaml = tmp_path / "old.yaml"
    yaml.write_text(
        "sources:\n"
        "  slovenia:\n"
        "    driver: eokit.download.EokitSource\n"
        f"    args: {{opener: 'eokit.datasets.slovenia:open', path: '{SAMPLE_DIR / 'slovenia'}'}}\n"
    )
    old = catalog.open_catalog(yaml).slovenia
    assert isinstance(old, catalog.EokitSource) and old.reader == old.opener == "eokit.datasets.slovenia:open"
    assert old.read().drop_attrs().identical(catalog.open_catalog("sample").slovenia.read().drop_attrs())


def test_read_is_in_memory_and_new_to_dask_is_lazy(cat) -> None:
    src = cat.timesen2crop_sample
    first, second = src.read(), src.read()
    assert first is not second and first.identical(second)
    assert not first.chunks  # numpy, not dask
    lazy = src.to_dask()
    assert lazy.chunks and set(lazy.data_vars) == set(first.data_vars)
    first["extra"] = first.reflectance * 0  # a caller's change does not reach the source
    assert "extra" not in src.read()


@pytest.mark.bad_input
def test_reader_and_opener_that_differ() -> None:
    with refuses(ValueError, "eokit.cube:open", "eokit.sar:open", "opener"):
        catalog.EokitSource(reader="eokit.cube:open", opener="eokit.sar:open")

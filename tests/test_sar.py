"""eokit.sar: GeoTIFF and SAFE scenes, preprocessing, statistics, ice polygons."""

from __future__ import annotations

import numpy as np
import pyproj
import pytest
import rasterio
import rasterio.transform

from badinput import refuses, warns_naming
from eokit import sar
from generators import sar as gen


@pytest.mark.parametrize("kind", ["db", "linear", "amplitude"])
def test_open_geotiff_folder_any_snap_naming(tmp_path, kind):
    truth = gen.write_geotiff_scene(tmp_path, "S1A_20180116", kind=kind, height=40, width=48)
    scene = sar.open(truth["path"])
    assert dict(scene.sizes) == {"y": 40, "x": 48}
    assert scene.attrs["scene"] == "S1A_20180116"
    assert scene.rio.crs.to_epsg() == 3413
    assert scene["HH"].attrs["units"] == {"db": "dB", "linear": "linear", "amplitude": "amplitude"}[kind]
    out, _ = sar.preprocess(scene, clip=None)
    expected = 10 * np.log10(truth["sigma0"]["HV"])
    np.testing.assert_allclose(out["HV"].values, expected, atol=1e-4)
    np.testing.assert_allclose(out["IA"].values, truth["ia"], atol=1e-5)


def test_open_geotiff_case_insensitive_and_chunked(tmp_path):
    truth = gen.write_geotiff_scene(tmp_path, "s", height=40, width=48)
    for f in truth["path"].iterdir():
        f.rename(f.with_name(f.name.upper().replace(".TIF", ".tif")))
    scene = sar.open(truth["path"], chunks={"y": 16, "x": 16})
    assert scene["HH"].chunks is not None
    np.testing.assert_allclose(scene["HH"].values, 10 * np.log10(truth["sigma0"]["HH"]), atol=1e-4)


def test_missing_polarisation_names_folder_and_files(tmp_path):
    truth = gen.write_geotiff_scene(tmp_path, "only_hh", polarisations=("HH",))
    with pytest.raises(ValueError, match=r"only_hh.*lacks HV.*Sigma0_HV_db.tif.*found \['Sigma0_HH_db.tif'"):
        sar.open(truth["path"])


def test_mismatched_grids_are_refused(tmp_path):
    a = gen.write_geotiff_scene(tmp_path / "a", "s", height=32, width=32)
    b = gen.write_geotiff_scene(tmp_path / "b", "s", height=32, width=40)
    (b["path"] / "Sigma0_HV_db.tif").replace(a["path"] / "Sigma0_HV_db.tif")
    with pytest.raises(ValueError, match="Sigma0_HV_db.tif is on grid"):
        sar.open(a["path"])


def test_open_safe_calibrates_sigma0_and_interpolates_ia(tmp_path):
    truth = gen.write_safe(tmp_path, lines=48, pixels=64, seed=3)
    scene = sar.open(truth["path"])
    assert dict(scene.sizes) == {"y": 48, "x": 64}
    assert scene.attrs["scene"].startswith("S1A_EW_GRDM_1SDH_")
    assert scene.attrs["format"] == "safe" and scene.attrs["mode"] == "EW"
    np.testing.assert_allclose(scene["HH"].values, truth["sigma0"]["HH"], rtol=1e-5)
    np.testing.assert_allclose(scene["HV"].values, truth["sigma0"]["HV"], rtol=1e-5)
    np.testing.assert_allclose(scene["IA"].values, truth["ia"], atol=1e-4)
    gcps = scene.rio.get_gcps()
    assert len(gcps) == truth["grid"]["lat"].size
    g = gcps[-1]
    assert (g.row, g.col) == (47.0, 63.0)
    np.testing.assert_allclose(g.y, truth["grid"]["lat"][-1, -1])
    # chunked: calibration block by block gives the same numbers
    with pytest.warns(UserWarning, match="separate the stored chunks"):  # xarray: finer than the stored strips
        chunked = sar.open(truth["path"], chunks={"y": 16, "x": 32})
    assert chunked["HH"].chunks is not None
    np.testing.assert_allclose(chunked["HH"].values, truth["sigma0"]["HH"], rtol=1e-5)
    np.testing.assert_allclose(chunked["IA"].values, truth["ia"], atol=1e-4)


def test_safe_without_hv_is_refused(tmp_path):
    truth = gen.write_safe(tmp_path, lines=20, pixels=24, polarisations=("HH",))
    with pytest.raises(ValueError, match=r"lacks polarisation HV.*found \['HH'\]"):
        sar.open(truth["path"])


def test_preprocess_clip_masks_and_stats_roundtrip(tmp_path):
    truth = gen.write_geotiff_scene(tmp_path, "s", kind="linear", land=True, nodata_rows=3)
    scene = sar.open(truth["path"])
    out, stats = sar.preprocess(scene, clip=(-25.0, -12.0))
    valid = out["valid"].values
    assert valid[:3].sum() == 0  # no-data rows
    assert valid[:, -4:].sum() == 0  # land
    assert valid[3:, :-4].all()
    hh = out["HH"].values[valid == 1]
    assert hh.min() >= -25.0 and hh.max() <= -12.0
    assert np.isnan(out["HH"].values[valid == 0]).all()
    db = np.clip(10 * np.log10(truth["sigma0"]["HH"][3:, :-4]), -25, -12)
    assert stats["mean"]["HH"] == pytest.approx(db.mean(), abs=1e-3)
    assert stats["std"]["HH"] == pytest.approx(db.std(), abs=1e-3)
    path = sar.save_stats(stats, tmp_path / "stats.json")
    with pytest.raises(FileExistsError):
        sar.save_stats(stats, path)
    loaded = sar.load_stats(path)
    # reused statistics standardise another scene with the first one's numbers
    other = gen.write_geotiff_scene(tmp_path, "t", kind="linear", seed=9)
    std_out, same = sar.preprocess(sar.open(other["path"]), stats=loaded, standardize=True)
    assert same["mean"] == stats["mean"]
    expected = (np.clip(10 * np.log10(other["sigma0"]["HV"]), -25, -12) - stats["mean"]["HV"]) / stats["std"]["HV"]
    np.testing.assert_allclose(std_out["HV"].values, expected, atol=1e-4)


def test_incidence_angle_correction_removes_linear_trend(tmp_path):
    truth = gen.write_geotiff_scene(tmp_path, "s", height=16, width=32)
    scene = sar.open(truth["path"])
    slope, ref = -0.24, 30.0
    scene["HH"] = (-15.0 + slope * (scene["IA"] - ref)).astype(np.float32).assign_attrs(units="dB")
    out, stats = sar.preprocess(scene, clip=None, ia_correction={"HH": slope}, ref_angle=ref)
    np.testing.assert_allclose(out["HH"].values, -15.0, atol=1e-4)
    assert stats["ia_correction"] == {"HH": slope} and stats["ref_angle"] == ref
    with pytest.warns(UserWarning, match="positive"):
        sar.preprocess(scene, clip=None, ia_correction={"HH": 0.24}, ref_angle=ref)
    with pytest.raises(ValueError, match="ia_correction has slopes for \\['VV'\\]"):
        sar.preprocess(scene, ia_correction={"VV": -0.2})


def test_land_polygons_mask(tmp_path):
    import geopandas as gpd
    from shapely.geometry import box

    truth = gen.write_geotiff_scene(tmp_path, "s", height=32, width=32)
    t = truth["transform"]
    land = gpd.GeoDataFrame(geometry=[box(t.c, t.f - 32 * 40, t.c + 8 * 40, t.f)], crs=3413)
    out, _ = sar.preprocess(sar.open(truth["path"]), land=land)
    assert out["land"].values[:, :8].all() and not out["land"].values[:, 8:].any()
    assert not out["valid"].values[:, :8].any()


def test_read_ice_polygons_names_and_bad_classes(tmp_path):
    truth = gen.write_geotiff_scene(tmp_path, "s")
    path = gen.write_polygons(tmp_path / "p.gpkg", [truth])
    gdf = sar.read_ice_polygons(path, label_column="ice_name")
    assert gdf["ice_name"].tolist() == [0, 1, 2, 3]
    shp = gen.write_polygons(tmp_path / "p.shp", [truth])
    assert sar.read_ice_polygons(shp)["ice_class"].tolist() == [0, 1, 2, 3]
    import geopandas as gpd

    bad = gpd.read_file(path)
    bad.loc[2, "ice_class"] = 7
    with pytest.raises(ValueError, match=r"values outside 0..5 in rows \[2\]"):
        sar.read_ice_polygons(bad)
    with pytest.raises(ValueError, match="no column 'stage'"):
        sar.read_ice_polygons(path, label_column="stage")
    with pytest.raises(ValueError, match="no polygons for scene 'x'; scenes present: \\['s'\\]"):
        sar.read_ice_polygons(path, scene="x")


def test_metno_sigrid_chart_mapped_to_wmo_classes(tmp_path):
    from eokit.schema import ICE_CLASSES
    from generators import metno as metno_gen

    folder = metno_gen.make(tmp_path / "metno", version="v1")
    chart = folder / "seaice_s1_20180116T075430.shp"
    gdf = sar.read_ice_polygons(chart, scene="S1A_EW_GRDM_1SDH_20180116T075430_20180116T075500_020182_0226A3_9F1B")
    names = [ICE_CLASSES[k] for k in gdf["ice_class"]]
    # water, thick first-year, young, new, pancake; the land polygon has no class and is dropped
    assert names[0] == "open water" and len(gdf) == 5
    assert "brash/pancake ice" in names and "young ice" in names
    assert gdf.crs.to_epsg() == 3413


def test_find_scenes_and_combined_stats(tmp_path):
    a = gen.write_geotiff_scene(tmp_path, "a", seed=1)
    gen.write_geotiff_scene(tmp_path, "b", seed=2)
    gen.write_safe(tmp_path, lines=20, pixels=24)
    (tmp_path / "notes").mkdir()
    found = sar.find_scenes(tmp_path)
    assert [p.name for p in found] == sorted(p.name for p in found)
    assert {p.name for p in found} == {"a", "b", gen.write_safe.__name__ and found[0].name}
    assert found[0].suffix == ".SAFE"
    assert len(found) == 3
    s1, st1 = sar.preprocess(sar.open(a["path"]), clip=None)
    s2, st2 = sar.preprocess(sar.open(tmp_path / "b"), clip=None)
    pooled = sar.combine_stats([st1, st2], weights=[s1["valid"].sum().item(), s2["valid"].sum().item()])
    both = np.concatenate([s1["HH"].values.ravel(), s2["HH"].values.ravel()])
    assert pooled["mean"]["HH"] == pytest.approx(both.mean(), rel=1e-5)
    assert pooled["std"]["HH"] == pytest.approx(both.std(), rel=1e-4)
    with pytest.raises(FileNotFoundError, match="no SAR scenes in"):
        sar.find_scenes(tmp_path / "notes")


def test_open_rejects_files_that_are_not_scenes(tmp_path):
    (tmp_path / "S1A_x.zip").write_bytes(b"PK")
    with pytest.raises(ValueError, match="unzip it"):
        sar.open(tmp_path / "S1A_x.zip")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        sar.open(tmp_path / "missing")


# --- SNAP products: one multi-band GeoTIFF export, BEAM-DIMAP (.dim + .data/) -----------------------------


SNAP_BANDS = (
    "latitude",
    "Sigma0_HV_db",
    "incidenceAngleFromEllipsoid",
    "Sigma0_HH",
    "longitude",
    "projectedLocalIncidenceAngle",
    "Sigma0_HH_db",
    "Sigma0_HV",
    "elevation",
)


@pytest.mark.parametrize(
    "bands",
    [SNAP_BANDS, ("Sigma0_HV", "Sigma0_HH", "incidenceAngleFromEllipsoid")],
    ids=["db-and-linear-with-extras", "linear"],
)
def test_open_snap_geotiff_names_bands_from_its_dimap_header(tmp_path, bands):
    truth = gen.write_snap_geotiff(tmp_path, bands=bands)
    with rasterio.open(truth["path"]) as src:  # what SNAP writes: no GDAL band descriptions, big-endian
        assert src.descriptions == (None,) * len(bands)
    assert truth["path"].read_bytes()[:4] == b"MM\x00\x2a"
    scene = sar.open(truth["path"])
    assert dict(scene.sizes) == {"y": 40, "x": 48} and set(scene.data_vars) == {"HH", "HV", "IA"}
    assert scene.attrs["scene"] == truth["path"].stem and scene.attrs["format"] == "snap-geotiff"
    assert scene.rio.crs.to_epsg() == 3413 and scene.rio.transform() == truth["transform"]
    # both Sigma0_HH and Sigma0_HH_db present: the dB band is taken (one measurement, two units)
    assert scene["HH"].attrs["units"] == ("dB" if "Sigma0_HH_db" in bands else "linear")
    out, _ = sar.preprocess(scene, clip=None)
    np.testing.assert_allclose(out["HH"].values, 10 * np.log10(truth["sigma0"]["HH"]), atol=1e-4)
    np.testing.assert_allclose(out["HV"].values, 10 * np.log10(truth["sigma0"]["HV"]), atol=1e-4)
    # the ellipsoid incidence angle, not projectedLocalIncidenceAngle (+3 degrees in the fixture)
    np.testing.assert_allclose(scene["IA"].values, truth["ia"], atol=1e-5)


def test_open_snap_geotiff_by_gdal_band_descriptions_and_chunked(tmp_path):
    truth = gen.write_snap_geotiff(
        tmp_path, header=False, descriptions=True, bands=("incidenceAngleFromEllipsoid", "Sigma0_HV_db", "Sigma0_HH_db")
    )
    scene = sar.open(truth["path"], chunks={"y": 16, "x": 16})
    assert scene["HV"].chunks is not None
    np.testing.assert_allclose(scene["HV"].values, 10 * np.log10(truth["sigma0"]["HV"]), atol=1e-4)
    np.testing.assert_allclose(scene["IA"].values, truth["ia"], atol=1e-5)


def test_snap_geotiff_virtual_bands_hold_no_samples_and_no_data_is_masked(tmp_path):
    truth = gen.write_snap_geotiff(
        tmp_path,
        bands=("Sigma0_HH", "Sigma0_HH_db", "Sigma0_HV", "Sigma0_HV_db", "incidenceAngleFromEllipsoid"),
        virtual={"Sigma0_HH_db": "log10(Sigma0_HH) * 10", "Sigma0_HV_db": "log10(Sigma0_HV) * 10"},
        nodata_rows=2,
    )
    with rasterio.open(truth["path"]) as src:
        assert src.count == 3  # the two virtual bands are listed in the header only
    scene = sar.open(truth["path"])
    assert scene["HH"].attrs["units"] == "linear"
    assert np.isnan(scene["HV"].values[:2]).all() and np.isnan(scene["IA"].values[:2]).all()
    np.testing.assert_allclose(scene["HV"].values[2:], truth["sigma0"]["HV"][2:], rtol=1e-6)


def test_folder_of_snap_single_band_geotiffs_keeps_the_map_geocoding(tmp_path):
    # GDAL >= 3.10 hands such files to its SNAP_TIFF driver, which reports no CRS nor transform
    folder = tmp_path / "scene"
    folder.mkdir()
    for name in ("Sigma0_HH_db", "Sigma0_HV_db", "incidenceAngleFromEllipsoid"):
        one = gen.write_snap_geotiff(tmp_path / "tmp", name=name, bands=(name,))
        one["path"].rename(folder / f"{name}.tif")
    scene = sar.open(folder)
    assert scene.rio.crs.to_epsg() == 3413 and scene.rio.transform() == one["transform"]
    np.testing.assert_allclose(scene["HH"].values, 10 * np.log10(one["sigma0"]["HH"]), atol=1e-4)


def test_open_beam_dimap_terrain_corrected_by_dim_or_data_folder(tmp_path):
    truth = gen.write_beam_dimap(tmp_path)
    hdr = (truth["data"] / "Sigma0_HH.hdr").read_text()
    assert "byte order = 1" in hdr and "band names = { Sigma0_HH }" in hdr
    raw = np.fromfile(truth["data"] / "Sigma0_HH.img", dtype=">f4").reshape(40, 48)  # SNAP writes big-endian
    np.testing.assert_array_equal(raw, truth["sigma0"]["HH"].astype(np.float32))
    for path in (truth["path"], truth["data"]):
        scene = sar.open(path)
        assert set(scene.data_vars) == {"HH", "HV", "IA"} and dict(scene.sizes) == {"y": 40, "x": 48}
        assert scene.attrs["scene"] == truth["path"].stem and scene.attrs["format"] == "beam-dimap"
        assert scene.attrs["mode"] == "EW" and scene.attrs["mission"] == "S1A"
        # SNAP's default map CRS, WGS84(DD): geographic WGS 84 under another name
        assert pyproj.CRS(scene.rio.crs.to_wkt()).equals(pyproj.CRS(4326), ignore_axis_order=True)
        assert scene.rio.transform() == truth["transform"]
        # Sigma0_HH_db is a virtual band (no file): the linear band is read
        assert scene["HH"].attrs["units"] == "linear"
        np.testing.assert_allclose(scene["HH"].values, truth["sigma0"]["HH"], rtol=1e-6)
        np.testing.assert_allclose(scene["IA"].values, truth["ia"], atol=1e-5)


def test_open_beam_dimap_in_image_geometry_interpolates_tie_point_grids(tmp_path):
    truth = gen.write_beam_dimap(tmp_path, geocoded=False, bands=("Sigma0_HH", "Sigma0_HV"), nodata_rows=1)
    scene = sar.open(truth["path"], chunks={"y": 16, "x": 16})
    assert scene["IA"].chunks is not None and scene["IA"].attrs["source_file"] == "tie_point_grids/incident_angle"
    np.testing.assert_allclose(scene["IA"].values, truth["ia"], atol=1e-4)
    assert np.isnan(scene["HH"].values[0]).all()
    gcps = scene.rio.get_gcps()
    lat = truth["tie_point_grids"][0]["values"]
    assert len(gcps) == lat.size and (gcps[0].row, gcps[0].col) == (0.5, 0.5)
    np.testing.assert_allclose(gcps[-1].y, lat[-1, -1], rtol=1e-6)


def test_projected_local_incidence_angle_is_a_fallback_with_a_warning(tmp_path):
    truth = gen.write_snap_geotiff(tmp_path, bands=("Sigma0_HH_db", "Sigma0_HV_db", "projectedLocalIncidenceAngle"))
    with warns_naming(UserWarning, "projectedLocalIncidenceAngle", "no ellipsoid incidence angle"):
        scene = sar.open(truth["path"])
    np.testing.assert_allclose(scene["IA"].values, truth["values"]["projectedLocalIncidenceAngle"])


def test_find_scenes_lists_snap_products_once(tmp_path):
    dim = gen.write_beam_dimap(tmp_path)
    tif = gen.write_snap_geotiff(tmp_path, name="other_TC")
    rasterio_plain = tmp_path / "quicklook.tif"
    with rasterio.open(
        rasterio_plain,
        "w",
        driver="GTiff",
        width=4,
        height=4,
        count=1,
        dtype="uint8",
        crs="EPSG:3413",
        transform=rasterio.transform.from_origin(0, 0, 40, 40),
    ) as dst:
        dst.write(np.zeros((1, 4, 4), np.uint8))
    assert sar.find_scenes(tmp_path) == sorted([dim["path"], tif["path"]])


@pytest.mark.bad_input
def test_multiband_geotiff_without_band_names_is_refused(tmp_path):
    path = tmp_path / "stack.tif"
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=8,
        height=8,
        count=3,
        dtype="float32",
        crs="EPSG:3413",
        transform=rasterio.transform.from_origin(0, 0, 40, 40),
    ) as dst:
        dst.write(np.ones((3, 8, 8), np.float32))
    with refuses(ValueError, "stack.tif", "band descriptions [None, None, None]", "tag 65000", "Sigma0_HH_db"):
        sar.open(path)


@pytest.mark.bad_input
def test_snap_geotiff_without_hv_is_refused(tmp_path):
    truth = gen.write_snap_geotiff(tmp_path, bands=("Sigma0_HH_db", "incidenceAngleFromEllipsoid", "latitude"))
    with refuses(ValueError, truth["path"].name, "lacks HV", "Sigma0_HV_db", "'latitude'"):
        sar.open(truth["path"])


@pytest.mark.bad_input
def test_snap_geotiff_with_two_hh_bands_in_db_is_ambiguous(tmp_path):
    truth = gen.write_snap_geotiff(
        tmp_path, bands=("Sigma0_HH_db", "HH_db", "Sigma0_HV_db", "incidenceAngleFromEllipsoid")
    )
    with refuses(ValueError, truth["path"].name, "2 bands that are each HH in dB", "'HH_db'", "ambiguous"):
        sar.open(truth["path"])


@pytest.mark.bad_input
def test_snap_geotiff_header_not_matching_the_bands_is_refused(tmp_path):
    truth = gen.write_snap_geotiff(tmp_path)
    xml = gen.dimap_header(
        "x", ["Sigma0_HH_db", "Sigma0_HV_db"], (40, 48), {"Sigma0_HH_db": "dB", "Sigma0_HV_db": "dB"}
    )
    path = gen.write_tiff_like_snap(
        tmp_path / "bad.tif",
        [truth["values"][b] for b in truth["bands"]],
        "x",
        xml,
        transform=truth["transform"],
        epsg=3413,
    )
    with refuses(ValueError, "bad.tif", "lists 2 stored bands", "file has 3 bands"):
        sar.open(path)


@pytest.mark.bad_input
def test_truncated_snap_geotiff_is_refused_naming_the_path(tmp_path):
    truth = gen.write_snap_geotiff(tmp_path)
    data = truth["path"].read_bytes()
    truth["path"].write_bytes(data[:200])
    with refuses(ValueError, str(truth["path"]), "cannot be read"):
        sar.open(truth["path"])


@pytest.mark.bad_input
def test_dimap_missing_a_listed_band_file_is_refused(tmp_path):
    truth = gen.write_beam_dimap(tmp_path)
    (truth["data"] / "Sigma0_HV.img").unlink()
    with refuses(FileNotFoundError, truth["path"].name, "Sigma0_HV.img", "not there", ".hdr and .img"):
        sar.open(truth["path"])


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "content, expected",
    [
        ("Sigma0_HH_db = data.img\n", "not well-formed XML"),
        ('<?xml version="1.0"?><graph id="Graph"><node id="Read"/></graph>', "root element <graph>"),
    ],
    ids=["text", "other-xml"],
)
def test_dim_that_is_not_dimap_xml_is_refused(tmp_path, content, expected):
    path = tmp_path / "product.dim"
    path.write_text(content)
    with refuses(ValueError, "product.dim", expected, "Dimap_Document"):
        sar.open(path)


@pytest.mark.bad_input
def test_dimap_with_hh_only_as_a_virtual_band_is_refused(tmp_path):
    truth = gen.write_beam_dimap(
        tmp_path,
        bands=("Sigma0_HH_db", "Sigma0_HV", "incidenceAngleFromEllipsoid"),
        virtual={"Sigma0_HH_db": "log10(Intensity_HH) * 10"},
    )
    with refuses(
        ValueError, truth["path"].name, "lacks HH", "Sigma0_HH_db is a virtual band", "log10(Intensity_HH) * 10"
    ):
        sar.open(truth["path"])


@pytest.mark.bad_input
def test_dimap_of_gamma0_is_refused_naming_the_bands(tmp_path):
    truth = gen.write_beam_dimap(tmp_path, bands=("Gamma0_HH", "Gamma0_HV", "incidenceAngleFromEllipsoid"), virtual={})
    with refuses(ValueError, truth["path"].name, "lacks HH, HV", "'Gamma0_HH'", "Sigma0_HH_db", "not sigma0"):
        sar.open(truth["path"])


@pytest.mark.bad_input
def test_dimap_band_on_another_grid_is_refused(tmp_path):
    truth = gen.write_beam_dimap(tmp_path)
    other = gen.write_beam_dimap(tmp_path / "other", width=40)
    for ext in (".hdr", ".img"):
        (other["data"] / f"Sigma0_HV{ext}").replace(truth["data"] / f"Sigma0_HV{ext}")
    with refuses(ValueError, "Sigma0_HV.img", "all bands of a scene must share one grid"):
        sar.open(truth["path"])


@pytest.mark.bad_input
def test_folder_with_two_files_for_one_band_is_ambiguous(tmp_path):
    truth = gen.write_geotiff_scene(tmp_path, "s", height=16, width=16)
    (truth["path"] / "HH_db.tif").write_bytes((truth["path"] / "Sigma0_HH_db.tif").read_bytes())
    with refuses(ValueError, "folder", "2 bands that are each HH in dB", "'HH_db'", "ambiguous"):
        sar.open(truth["path"])

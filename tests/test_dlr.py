"""eokit.datasets.dlr: DLR Belgica Bank scenes + patch annotations (assumed layouts), clear errors otherwise."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import xarray as xr

from badinput import refuses
from eokit.datasets import dlr
from generators import dlr as gen


def test_semantic_scene_and_tree(tmp_path):
    root = gen.make(tmp_path, "semantic")
    tree = dlr.open(root)
    assert isinstance(tree, xr.DataTree) and sorted(tree.children) == gen.SCENES
    ds = dlr.open(root, scene="20190111")
    assert ds.attrs["scene"] == gen.SCENES[0] and ds.rio.crs.to_epsg() == 3413
    with rasterio.open(root / gen.SCENES[0] / f"{gen.SCENES[0]}_HV.tif") as f:
        np.testing.assert_array_equal(ds["HV"].values, f.read(1))
    assert ds.sizes["patch"] == 16 and ds["label"].max() <= 9
    assert ds.attrs["label_kind"] == "semantic"
    assert list(ds["row0"].values[:5]) == [0, 0, 0, 0, 16]


def test_lda_scene_label_raster(tmp_path):
    root = gen.make(tmp_path, "lda")
    ds = dlr.open(root / gen.SCENES[1])
    assert set(ds.data_vars) == {"HH", "HV", "label"}
    lab = ds["label"].values
    assert lab.shape == (64, 64) and lab.max() <= 10
    assert (lab[:4, :4] == lab[0, 0]).all()


def test_bad_layouts(tmp_path):
    root = gen.make(tmp_path / "a", "semantic")
    scene = root / gen.SCENES[0]
    p = scene / f"{gen.SCENES[0]}_labels.csv"
    p.write_text(p.read_text().replace("\n5,16,16,16,", "\n5,16,999,16,"))
    with pytest.raises(ValueError, match=r"labels.csv, line 7: patch at row 16, col 999 is outside"):
        dlr.open(scene)
    p.unlink()
    with pytest.raises(ValueError, match=r"no annotation in .*Expected per scene folder"):
        dlr.open(scene)
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.h5").write_bytes(b"")
    with pytest.raises(ValueError, match=r"no GeoTIFF under .*\['.h5'\]"):
        dlr.open(tmp_path / "b")


# --- hostile inputs (tests/badinput.py contract) ----------------------------------------------------------

S0 = gen.SCENES[0]


def _semantic(tmp_path):
    return gen.make(tmp_path, "semantic") / S0


def _edit_table(scene, old, new):
    p = scene / f"{S0}_labels.csv"
    p.write_text(p.read_text().replace(old, new))


@pytest.mark.bad_input
def test_hv_of_another_shape(tmp_path):
    # before: xarray's outer join padded HV with NaN to the HH grid, silently
    scene = _semantic(tmp_path)
    gen._write(scene / f"{S0}_HV.tif", np.zeros((32, 64), np.float32))
    with refuses(ValueError, f"{S0}_HV.tif", "shape (32, 64)", "same pixel grid"):
        dlr.open(scene)


@pytest.mark.bad_input
def test_hv_on_another_transform(tmp_path):
    # before: HV came back all NaN (4096 of 4096 pixels), as the two grids did not overlap
    from affine import Affine

    scene = _semantic(tmp_path)
    with rasterio.open(scene / f"{S0}_HV.tif", "r+") as f:
        f.transform = Affine(40.0, 0.0, 500000.0, 0.0, -40.0, -1000000.0)
    with refuses(ValueError, f"{S0}_HV.tif", "transform", "same pixel grid"):
        dlr.open(scene)


@pytest.mark.bad_input
def test_label_raster_in_another_crs(tmp_path):
    # before: its coordinates were overwritten with the image's, whatever grid it was on
    from affine import Affine

    scene = gen.make(tmp_path, "lda") / S0
    with rasterio.open(
        scene / f"{S0}_topics.tif",
        "w",
        driver="GTiff",
        width=64,
        height=64,
        count=1,
        dtype="uint8",
        crs="EPSG:4326",
        transform=Affine(0.001, 0, 10, 0, -0.001, 60),  # not the identity: rasterio warns on that
    ) as f:
        f.write(np.zeros((1, 64, 64), np.uint8))
    with refuses(ValueError, f"{S0}_topics.tif", "CRS EPSG:4326", "same pixel grid"):
        dlr.open(scene)


@pytest.mark.bad_input
def test_fractional_patch_column(tmp_path):
    # before: 16.5 was truncated to column 16
    scene = _semantic(tmp_path)
    _edit_table(scene, "\n5,16,16,16,", "\n5,16,16.5,16,")
    with refuses(ValueError, "labels.csv", "line 7", "field col", "expected an integer"):
        dlr.open(scene)


@pytest.mark.bad_input
def test_patch_reaching_past_the_image_edge(tmp_path):
    # before: only the origin was checked, so a 16-pixel patch at column 60 of a 64-pixel image was kept
    scene = _semantic(tmp_path)
    _edit_table(scene, "\n15,48,48,16,", "\n15,48,60,16,")
    with refuses(ValueError, "labels.csv", "line 17", "outside the 64x64 image", "size 16"):
        dlr.open(scene)


@pytest.mark.bad_input
@pytest.mark.parametrize("row, field", [("\n5,16,16,16,{}", "label"), ("\n5,16,16,0,{}", "size")])
def test_negative_label_or_zero_size(tmp_path, row, field):
    scene = _semantic(tmp_path)
    p = scene / f"{S0}_labels.csv"
    lines = p.read_text().splitlines()
    lines[6] = row.strip().format(-3 if field == "label" else 3)
    p.write_text("\n".join(lines) + "\n")
    with refuses(ValueError, "labels.csv", "line 7", f"field {field}", ">= "):
        dlr.open(scene)


@pytest.mark.bad_input
def test_patch_table_without_rows(tmp_path):
    scene = _semantic(tmp_path)
    (scene / f"{S0}_labels.csv").write_text("patch_id,row,col,size,label\n")
    with refuses(ValueError, "labels.csv", "no rows", "one row per patch"):
        dlr.open(scene)


@pytest.mark.bad_input
def test_corrupt_geotiff_names_the_full_path(tmp_path):
    # before: RasterioIOError naming the base name only
    scene = _semantic(tmp_path)
    (scene / f"{S0}_HH.tif").write_bytes(b"II*\x00garbage")
    with refuses(ValueError, str(scene / f"{S0}_HH.tif"), "cannot be read as a GeoTIFF"):
        dlr.open(scene)


@pytest.mark.bad_input
def test_binary_patch_table(tmp_path):
    # before: UnicodeDecodeError without the file name
    scene = _semantic(tmp_path)
    (scene / f"{S0}_labels.csv").write_bytes(b"\x00\x01\x02garbage\xff")
    with refuses(ValueError, "labels.csv", "cannot be read as a patch table"):
        dlr.open(scene)


@pytest.mark.bad_input
def test_folder_without_geotiff(tmp_path):
    (tmp_path / "x.h5").write_bytes(b"")
    with refuses(ValueError, "no GeoTIFF under", "'.h5'", "Expected per scene folder"):
        dlr.open(tmp_path)


@pytest.mark.bad_input
def test_unknown_scene_name(tmp_path):
    root = gen.make(tmp_path, "semantic")
    with refuses(FileNotFoundError, "scene '2020'", "matches []"):
        dlr.open(root, scene="2020")

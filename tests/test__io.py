"""The shared output helpers: atomic files and folders, JSON and the reproducible GeoPackage writer."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from badinput import refuses
from eokit import _io
from eokit._io import atomic_output, check_target, swap_in, write_gpkg, write_json_atomic


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_file_is_renamed_into_place_with_the_umask_mode(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.txt"  # the parent folder is made
    with atomic_output(target) as tmp:
        assert tmp.parent == target.parent and not tmp.exists()
        assert tmp.name.startswith(".out.tmp-") and tmp.name.endswith(".txt")
        tmp.write_text("hello")
        assert not target.exists()  # nothing at the target until the block ends
    assert target.read_text() == "hello"
    assert os.listdir(target.parent) == ["out.txt"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~_umask() == _io._file_mode()


def test_temporary_keeps_every_suffix(tmp_path: Path) -> None:
    # Keras needs .keras / .weights.h5, GDAL and matplotlib pick the format by the suffix
    for name, end in [("m.keras", ".keras"), ("best.weights.h5", ".weights.h5"), ("a.gpkg", ".gpkg"), ("store", "")]:
        with atomic_output(tmp_path / name) as tmp:
            assert tmp.name.startswith(f".{name[: len(name) - len(end)]}.tmp-{os.getpid()}-")
            assert tmp.name.endswith(end)
            tmp.write_text("x")


def test_exception_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "out.gpkg"
    with pytest.raises(RuntimeError, match="boom"), atomic_output(target) as tmp:
        tmp.write_text("half")
        Path(str(tmp) + "-journal").write_text("side file")  # e.g. SQLite's journal beside the temporary
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    with pytest.raises(KeyboardInterrupt), atomic_output(tmp_path / "d", kind="dir") as tmp:
        (tmp / "part").write_text("half")
        raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_exception_keeps_the_old_output(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(ValueError), atomic_output(target, overwrite=True) as tmp:
        tmp.write_text("new")
        raise ValueError("failed half way")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.json"]


@pytest.mark.bad_input
def test_existing_target_is_refused_naming_it(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    with refuses(FileExistsError, str(target), "overwrite=True"), atomic_output(target):
        pytest.fail("the block must not run")
    with refuses(FileExistsError, str(tmp_path), "overwrite=True"), atomic_output(tmp_path, kind="dir"):
        pytest.fail("the block must not run")
    with refuses(FileExistsError, str(target), "overwrite=True"):
        check_target(target)
    with refuses(FileExistsError, str(target), "overwrite=True"):
        write_json_atomic({}, target, overwrite=False)
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.json"]


@pytest.mark.bad_input
def test_target_created_meanwhile_is_not_clobbered(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    with refuses(FileExistsError, str(target), "overwrite=True"), atomic_output(target) as tmp:
        tmp.write_text("mine")
        target.write_text("another writer's")
    assert target.read_text() == "another writer's" and os.listdir(tmp_path) == ["out.txt"]


@pytest.mark.bad_input
def test_bad_kind_and_nothing_written_are_refused(tmp_path: Path) -> None:
    bad_kind: Any = "folder"
    with refuses(ValueError, "kind", "'file' or 'dir'", "'folder'"), atomic_output(tmp_path / "x", kind=bad_kind):
        pytest.fail("the block must not run")
    with refuses(FileNotFoundError, "nothing was written", str(tmp_path / "x.txt")), atomic_output(tmp_path / "x.txt"):
        pass
    with refuses(ValueError, str(tmp_path / "y"), "kind='dir'"), atomic_output(tmp_path / "y") as tmp:
        tmp.mkdir()
    assert os.listdir(tmp_path) == []


def test_overwrite_replaces_a_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    with atomic_output(target, overwrite=True) as tmp:
        tmp.write_text("new")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["out.txt"]


def test_directory_kind_and_overwrite_replace_the_whole_folder(tmp_path: Path) -> None:
    target = tmp_path / "store.zarr"
    with atomic_output(target, kind="dir") as tmp:
        assert tmp.is_dir() and list(tmp.iterdir()) == [] and tmp.name.endswith(".zarr")
        (tmp / "a").write_text("1")
    assert sorted(os.listdir(target)) == ["a"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~_umask()
    with atomic_output(target, overwrite=True, kind="dir") as tmp:
        (tmp / "b").write_text("2")
    assert sorted(os.listdir(target)) == ["b"]  # the old folder's files are gone, not merged
    assert os.listdir(tmp_path) == ["store.zarr"]


def test_swap_in_replaces_a_folder_with_a_file_and_back(tmp_path: Path) -> None:
    target = tmp_path / "x"
    target.mkdir()
    (target / "old").write_text("1")
    new = tmp_path / "new"
    new.write_text("file")
    assert swap_in(new, target) == target and target.read_text() == "file"
    folder = tmp_path / "folder"
    folder.mkdir()
    swap_in(folder, target)
    assert target.is_dir() and os.listdir(tmp_path) == ["x"]


def test_write_json_atomic(tmp_path: Path) -> None:
    p = write_json_atomic({"a": 1}, tmp_path / "a.json")
    assert json.loads(p.read_text()) == {"a": 1}
    write_json_atomic({"a": 2}, p)  # replaces by default, as before
    assert json.loads(p.read_text()) == {"a": 2}
    assert stat.S_IMODE(p.stat().st_mode) == _io._file_mode()
    with pytest.raises(TypeError):
        write_json_atomic({"a": object()}, tmp_path / "b.json")
    assert sorted(os.listdir(tmp_path)) == ["a.json"]


def test_write_gpkg_is_reproducible_and_atomic(tmp_path: Path) -> None:
    import geopandas as gpd
    import pyogrio
    from shapely.geometry import Point

    gdf = gpd.GeoDataFrame({"v": [1, 2]}, geometry=[Point(0, 0), Point(1, 1)], crs="EPSG:3035")
    a = write_gpkg(gdf, tmp_path / "a.gpkg", layer="points")
    b = write_gpkg(gdf, tmp_path / "b.gpkg", layer="points")
    assert a.read_bytes() == b.read_bytes()  # GDAL's write time pinned: same input, same bytes
    assert pyogrio.list_layers(a)[:, 0].tolist() == ["points"]
    assert pyogrio.get_gdal_config_option("OGR_CURRENT_DATE") is None  # the option is restored
    two = write_gpkg({"fields": gdf, "outlines": gdf}, tmp_path / "two.gpkg")
    assert pyogrio.list_layers(two)[:, 0].tolist() == ["fields", "outlines"]
    assert pyogrio.list_layers(write_gpkg(gdf, tmp_path / "stem.gpkg"))[:, 0].tolist() == ["stem"]
    with refuses(FileExistsError, str(a), "overwrite=True"):
        write_gpkg(gdf, a, layer="points")
    write_gpkg(gdf.iloc[:1], a, overwrite=True, layer="points")
    assert len(gpd.read_file(a)) == 1
    assert sorted(os.listdir(tmp_path)) == ["a.gpkg", "b.gpkg", "stem.gpkg", "two.gpkg"]

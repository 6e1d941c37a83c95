"""eokit.datasets.polarpatch: the published meta.csv + PNG layout read into a patch set, and every bad input named."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from badinput import refuses
from eokit.datasets import polarpatch
from eokit.datasets.polarpatch import open_polar_patch
from eokit.schema import PATCH_SCHEMA, check_schema
from eokit.splits import block_split
from generators import polarpatch as gen


def _open(root: Path, **kwargs) -> object:
    return open_polar_patch(root, progress=False, **kwargs)


def _meta(root: Path, text: str) -> None:
    (root / "meta.csv").write_text(text, encoding="ascii")


def _first_png(root: Path) -> Path:
    return root / "images" / f"{gen.patches()[0][0]}.png"


def test_round_trip_values_labels_positions(tmp_path):
    root = gen.make(tmp_path)
    truth = gen.patches()
    ds = _open(root)
    check_schema(ds, PATCH_SCHEMA)
    assert ds.sizes == {"patch": 18, "row": 64, "col": 64, "channel": 3}
    assert list(ds["channel"].values) == ["R", "G", "B"]
    assert ds["image"].dtype == np.float32
    np.testing.assert_array_equal(ds["image"].values, np.stack([t[4] for t in truth]).astype(np.float32))
    assert ds["image"].values.min() == 0 and ds["image"].values.max() == 255  # raw values, not rescaled
    assert ds["image_id"].values.tolist() == [t[0] for t in truth]
    assert ds["x"].values.tolist() == [t[1] for t in truth] == ds["col0"].values.tolist()
    assert ds["y"].values.tolist() == [t[2] for t in truth] == ds["row0"].values.tolist()
    ids = {"W": 0, "I": 1, "L": 2}
    assert ds["label"].values.tolist() == [ids[t[3]] for t in truth]
    names = {"W": "water", "I": "ice", "L": "land"}
    assert ds["label_name"].values.tolist() == [names[t[3]] for t in truth]
    assert ds.attrs["classes"] == ["water", "ice", "land"] and ds.attrs["class_letters"] == ["W", "I", "L"]
    assert (ds["polygon_id"].values == -1).all()
    assert set(ds["scene"].values) == {"danmarkshavn-2018"}
    assert set(_open(root, scene="dmh-2018-03")["scene"].values) == {"dmh-2018-03"}
    assert polarpatch.open is open_polar_patch


def test_classes_select_and_order(tmp_path):
    root = gen.make(tmp_path)
    full = _open(root)
    wi = _open(root, classes=["I", "W"])
    keep = full["label"].values != 2
    assert wi.sizes["patch"] == int(keep.sum()) == 12
    assert wi["image_id"].values.tolist() == full["image_id"].values[keep].tolist()
    assert wi["label"].values.tolist() == (1 - full["label"].values[keep]).tolist()  # I -> 0, W -> 1
    assert wi.attrs["classes"] == ["ice", "water"]
    assert _open(root, classes=("L",))["label_name"].values.tolist() == ["land"] * 6


def test_block_split_by_xy_keeps_blocks_whole(tmp_path):
    ds = _open(gen.make(tmp_path, per_class=12))
    sp = block_split(ds, gen.BLOCK, by="xy", test_fraction=0.3, val_fraction=0.0)
    block = (ds["x"].values // gen.BLOCK) * 100 + ds["y"].values // gen.BLOCK
    assert len(sp.test) and len(sp.train) and len(sp.test) + len(sp.train) == ds.sizes["patch"]
    assert not set(block[sp.test]) & set(block[sp.train])
    assert sp.params["n_groups"] == len(gen.BLOCKS)


def test_same_seed_same_tree(tmp_path):
    a, b = _open(gen.make(tmp_path / "a")), _open(gen.make(tmp_path / "b"))
    assert a.drop_attrs().equals(b.drop_attrs())
    assert not a["image"].equals(_open(gen.make(tmp_path / "c", seed=1))["image"])


def test_grey_palette_and_opaque_alpha_pngs(tmp_path):
    root = gen.make(tmp_path / "grey", per_class=1)
    want = []
    for image_id, *_rest in gen.patches(1):
        im = Image.open(root / "images" / f"{image_id}.png").convert("L")
        im.save(root / "images" / f"{image_id}.png")
        want.append(np.asarray(im))
    grey = _open(root)
    assert list(grey["channel"].values) == ["grey"] and grey.sizes["channel"] == 1
    np.testing.assert_array_equal(grey["image"].values[..., 0], np.stack(want))
    root = gen.make(tmp_path / "mixed", per_class=2)
    truth = _open(root)["image"].values
    ids = [t[0] for t in gen.patches(2)]
    Image.open(root / "images" / f"{ids[0]}.png").convert("RGBA").save(root / "images" / f"{ids[0]}.png")
    pal = Image.fromarray(np.zeros((64, 64, 3), np.uint8) + np.array([10, 200, 30], np.uint8)).quantize(4)
    pal.save(root / "images" / f"{ids[1]}.png")
    ds = _open(root)
    np.testing.assert_array_equal(ds["image"].values[0], truth[0])  # alpha 255 everywhere: dropped
    np.testing.assert_array_equal(ds["image"].values[1], np.broadcast_to([10, 200, 30], (64, 64, 3)))
    np.testing.assert_array_equal(ds["image"].values[2:], truth[2:])


def test_header_line_is_accepted(tmp_path):
    root = gen.make(tmp_path)
    plain = _open(root)
    text = (root / "meta.csv").read_text()
    _meta(root, "image_id x y label\n" + text)
    assert _open(root).drop_attrs().equals(plain.drop_attrs())
    _meta(root, "image_id x_position y_position label\n\n" + text + "\n")  # README's names, blank lines
    assert _open(root).drop_attrs().equals(plain.drop_attrs())


def test_unpacked_github_archive_is_found(tmp_path, monkeypatch):
    """A copy fetched as the repository zip (one top folder) opens through the registry and the catalog."""
    import intake

    from eokit import download
    from eokit.paths import CATALOG_DIR

    tree = gen.make(tmp_path / "polar-patch-f7d97ea2abc")
    home = tmp_path / "cache"
    (home / "polar_patch").mkdir(parents=True)
    with zipfile.ZipFile(home / "polar_patch" / "polar-patch-f7d97ea2.zip", "w") as zf:
        for f in sorted(tree.rglob("*")):
            zf.write(f, f.relative_to(tmp_path).as_posix())
    monkeypatch.setenv("EOKIT_DATA", str(home))
    folder = download.fetch("polar_patch")
    assert (folder / tree.name / "meta.csv").is_file()
    ds = _open(folder)
    assert ds.sizes["patch"] == 18 and ds.attrs["source"] == str(folder / tree.name)
    entry = intake.open_catalog(str(CATALOG_DIR / "extremeearth.yaml"))["polar_patch"]
    assert entry.metadata["checksum"] and entry.metadata["licence"]
    assert entry(progress=False).read()["image"].equals(ds["image"])


# --- hostile inputs (tests/badinput.py contract) ----------------------------------------------------------


@pytest.mark.bad_input
def test_missing_root_meta_and_images(tmp_path):
    with refuses(FileNotFoundError, "nope", "does not exist", "meta.csv"):
        _open(tmp_path / "nope")
    (tmp_path / "images").mkdir()
    with refuses(FileNotFoundError, "meta.csv", "found ['images']", "image_id x y label"):
        _open(tmp_path)
    root = gen.make(tmp_path / "t")
    for p in (root / "images").iterdir():
        p.unlink()
    (root / "images").rmdir()
    with refuses(FileNotFoundError, "images", "beside meta.csv"):
        _open(root)


@pytest.mark.bad_input
def test_two_copies_under_one_folder_are_not_guessed(tmp_path):
    gen.make(tmp_path / "a")
    gen.make(tmp_path / "b")
    with refuses(FileNotFoundError, "meta.csv", str(tmp_path / "a"), str(tmp_path / "b"), "pass one"):
        _open(tmp_path)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "line, names",
    [
        ("17 5986 4374", ["row 3", "3 fields", "expected 4", "image_id x y label"]),
        ("17 5986 4374 I extra", ["row 3", "5 fields", "expected 4"]),
        ("17 5986.5 4374 I", ["row 3", "field x", "'5986.5'", "not an integer", "pixel position"]),
        ("17 5986 4_374 I", ["row 3", "field y", "'4_374'", "not an integer"]),
        ("17 -5 4374 I", ["row 3", "x=-5", ">= 0"]),
        ("17 5986 4374 S", ["row 3", "field label", "unknown label 'S'", "W (water)", "I (ice)", "L (land)"]),
        ("17 5986 4374 w", ["row 3", "unknown label 'w'", "upper case 'W'"]),
        ("../17 5986 4374 W", ["row 3", "field image_id", "'../17'", "file stem"]),
    ],
    ids=["3-fields", "5-fields", "float-x", "underscore-y", "negative", "label", "lower-case", "path-id"],
)
def test_bad_meta_rows_are_named(tmp_path, line, names):
    root = gen.make(tmp_path)
    lines = (root / "meta.csv").read_text().splitlines()
    lines[2] = line
    _meta(root, "\n".join(lines) + "\n")
    with refuses(ValueError, "meta.csv", *names):
        _open(root)


@pytest.mark.bad_input
def test_duplicated_image_id_names_both_rows(tmp_path):
    root = gen.make(tmp_path)
    lines = (root / "meta.csv").read_text().splitlines()
    lines[5] = lines[1].split()[0] + " 10 20 W"
    _meta(root, "\n".join(lines) + "\n")
    with refuses(ValueError, "meta.csv", "row 6", f"image_id {lines[1].split()[0]!r}", "repeats row 2", "once"):
        _open(root)


@pytest.mark.bad_input
def test_other_header_is_refused_with_a_hint(tmp_path):
    root = gen.make(tmp_path)
    _meta(root, "id x y class\n" + (root / "meta.csv").read_text())
    with refuses(ValueError, "meta.csv", "row 1", "field x", "not an integer", "a header line", "image_id x y label"):
        _open(root)


@pytest.mark.bad_input
@pytest.mark.parametrize("text", ["", "\n\n", "image_id x y label\n"], ids=["empty", "blank", "header-only"])
def test_empty_meta_is_refused(tmp_path, text):
    root = gen.make(tmp_path)
    _meta(root, text)
    with refuses(ValueError, "meta.csv", "no patch rows", "image_id x y label"):
        _open(root)


@pytest.mark.bad_input
def test_meta_that_is_not_text(tmp_path):
    root = gen.make(tmp_path)
    (root / "meta.csv").write_bytes(b"17 5986 4374 \xff\xfe\n")
    with refuses(ValueError, "meta.csv", "not a UTF-8", "image_id x y label"):
        _open(root)


@pytest.mark.bad_input
def test_missing_png_names_file_and_row(tmp_path):
    root = gen.make(tmp_path)
    gone, letter = gen.patches()[3][0], gen.patches()[3][3]
    (root / "images" / f"{gone}.png").unlink()
    with refuses(FileNotFoundError, "meta.csv", "1 patches with no PNG", f"images/{gone}.png (row 4)"):
        _open(root)
    others = [c for c in "WIL" if c != letter]
    assert _open(root, classes=others).sizes["patch"] == 12  # rows of classes left out are not read


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "image, names",
    [
        (np.zeros((32, 64, 3), np.uint8), ["64x32 pixels", "expected a 64x64 PNG"]),
        (np.zeros((64, 64), np.uint16) + 300, ["16-bit grey", "8-bit samples"]),
        (np.zeros((64, 64), bool), ["1-bit grey", "8-bit samples"]),
    ],
    ids=["size", "16-bit", "1-bit"],
)
def test_wrong_png_size_or_depth_is_named(tmp_path, image, names):
    root = gen.make(tmp_path)
    Image.fromarray(image).save(_first_png(root))
    with refuses(ValueError, _first_png(root).name, "meta.csv row 1", *names):
        _open(root)


@pytest.mark.bad_input
def test_transparent_pixels_are_refused(tmp_path):
    root = gen.make(tmp_path)
    la = np.zeros((64, 64, 2), np.uint8) + 255
    la[:2, :, 1] = 0
    Image.fromarray(la, mode="LA").save(_first_png(root))
    with refuses(ValueError, _first_png(root).name, "128 pixels are transparent", "opaque"):
        _open(root)


@pytest.mark.bad_input
def test_grey_among_rgb_is_refused(tmp_path):
    root = gen.make(tmp_path)
    second = root / "images" / f"{gen.patches()[1][0]}.png"
    Image.open(second).convert("L").save(second)
    with refuses(ValueError, second.name, "meta.csv row 2", "grey", f"{_first_png(root).name} is RGB", "same channels"):
        _open(root)


@pytest.mark.bad_input
@pytest.mark.parametrize("cut", [0, 50], ids=["not-png", "truncated"])
def test_corrupt_png_is_named(tmp_path, cut):
    root = gen.make(tmp_path)
    png = _first_png(root)
    png.write_bytes(b"GIF89a not a png" * 4 if cut == 0 else png.read_bytes()[:cut])
    with refuses(ValueError, png.name, "meta.csv row 1", "png", "expected a 64x64 png"):
        _open(root)


@pytest.mark.bad_input
@pytest.mark.parametrize("classes", [["X"], "WI", [], ["W", "W"]], ids=["unknown", "string", "empty", "twice"])
def test_bad_classes_argument(tmp_path, classes):
    root = gen.make(tmp_path)
    with refuses(ValueError, "classes=", "label letters", "['W', 'I', 'L']"):
        _open(root, classes=classes)

"""Tests of the seeded sample-data generators and of the committed bundle they made."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import rasterio.features

from eokit import synthetic
from eokit.paths import ROOT, SAMPLE_DIR
from eokit.schema import ICE_CLASSES, TS2C_BANDS, TS2C_CLASSES, TS2C_CSV_COLUMNS

TILES = {"33UVP": 6, "33TWN": 8}


def _content(path: Path) -> bytes:
    """Bytes that identify a file's content; GeoPackages by their layer (rows, geometry, CRS).

    SQLite page layout may vary with GDAL settings made earlier in the same process, so a GeoPackage is
    compared by what it holds, not by its bytes.
    """
    if path.suffix == ".gpkg":
        gdf = gpd.read_file(path)
        return gdf.to_wkb().to_csv().encode() + str(gdf.crs.to_epsg()).encode()
    return path.read_bytes()


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.md5(_content(p)).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _ndvi(refl: np.ndarray) -> np.ndarray:
    b4, b8a = refl[..., TS2C_BANDS.index("B4")].astype(float), refl[..., TS2C_BANDS.index("B8A")].astype(float)
    return (b8a - b4) / (b8a + b4)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    return synthetic.make_timesen2crop_tree(tmp_path_factory.mktemp("ts2c"), TILES, samples_per_class=3, seed=7)


def test_tree_follows_published_layout(tree: Path) -> None:
    assert tree.name == "TimeSen2Crop"
    assert sorted(p.name for p in tree.iterdir()) == sorted(TILES)
    dates = {}
    for tile, n in TILES.items():
        lines = (tree / tile / "dates.csv").read_text().splitlines()
        assert lines[0] == "acquisition_date" and len(lines) == n + 1
        d = pd.to_datetime(lines[1:], format="%Y%m%d")
        assert d.is_monotonic_increasing
        assert d.min() >= pd.Timestamp("2017-09-01") and d.max() <= pd.Timestamp("2018-08-31")
        dates[tile] = tuple(lines[1:])
        assert sorted(int(p.name) for p in (tree / tile).iterdir() if p.is_dir()) == list(range(len(TS2C_CLASSES)))
        for c in range(len(TS2C_CLASSES)):
            files = sorted((tree / tile / str(c)).glob("*.csv"))
            assert [f.name for f in files] == ["0.csv", "1.csv", "2.csv"]
            text = files[0].read_text()
            assert text.splitlines()[0] == ",".join(TS2C_CSV_COLUMNS)
            df = pd.read_csv(files[0])
            assert len(df) == n and all(df.dtypes == np.int64)
            assert df["Flag"].isin([0, 1, 2, 3]).all()
            assert (df.iloc[:, :9] > 0).all().all() and (df.iloc[:, :9] <= 10000).all().all()
    assert dates["33UVP"] != dates["33TWN"]
    assert synthetic.read_tile_dates(tree / "33TWN").size == TILES["33TWN"]


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path, tree: Path) -> None:
    again = synthetic.make_timesen2crop_tree(tmp_path / "a", TILES, samples_per_class=3, seed=7)
    assert _digest(again) == _digest(tree)
    other = synthetic.make_timesen2crop_tree(tmp_path / "b", TILES, samples_per_class=3, seed=8)
    assert _digest(other) != _digest(tree)


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    synthetic.make_timesen2crop_tree(tmp_path, {"33UWP": 3}, samples_per_class=1)
    with pytest.raises(FileExistsError, match="overwrite"):
        synthetic.make_timesen2crop_tree(tmp_path, {"33UWP": 3}, samples_per_class=1)
    out = synthetic.make_timesen2crop_tree(tmp_path, {"33UWP": 4}, samples_per_class=1, overwrite=True)
    assert len((out / "33UWP" / "dates.csv").read_text().splitlines()) == 5
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_phenology_has_the_agronomic_calendar() -> None:
    day = synthetic.season_day(np.array(["2017-11-15", "2018-04-20", "2018-08-10"], dtype="datetime64[D]"))
    np.testing.assert_array_equal(day, [75, 231, 343])
    mean = {c: np.mean([synthetic.phenology(c, day, rng) for rng in range(20)], axis=0) for c in range(16)}
    wheat, maize, barley, grass = mean[12], mean[2], mean[6], mean[1]
    assert wheat[0] > 0.1 and maize[0] < 0.05  # winter crops emerge in autumn, maize is not sown
    assert wheat[1] > 0.5 > maize[1]  # April: cereals green, maize bare
    assert maize[2] > 0.6 > wheat[2]  # August: wheat harvested, maize green
    assert barley[2] < 0.35 and grass.min() > 0.2  # grassland never bare
    for c in range(16):
        g = synthetic.phenology(c, np.arange(365), 3)
        assert g.min() >= 0 and g.max() <= 1
    with pytest.raises(ValueError, match="class_id"):
        synthetic.phenology(16, day)


def test_flags_match_reflectance(tree: Path) -> None:
    refl, flags = [], []
    for f in sorted(tree.glob("*/*/*.csv")):
        if f.name == "dates.csv":
            continue
        a = pd.read_csv(f).to_numpy()
        refl.append(a[:, :9])
        flags.append(a[:, 9])
    refl, flags = np.concatenate(refl), np.concatenate(flags)
    blue = refl[:, 0]
    assert (flags == 1).sum() > 20 and (flags == 2).sum() > 5
    assert np.median(blue[flags == 1]) > 3 * np.median(blue[flags == 0])  # clouds are bright
    assert np.median(refl[flags == 2, 6]) < 0.7 * np.median(refl[flags == 0, 6])  # shadows are dark


def test_classes_are_learnable_but_not_trivial(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import cross_val_score

    root = synthetic.make_timesen2crop_tree(tmp_path, {"33TWN": 30}, samples_per_class=12, seed=3)
    X, y = [], []
    for c in range(16):
        for f in sorted((root / "33TWN" / str(c)).glob("*.csv")):
            X.append(pd.read_csv(f).to_numpy()[:, :9].ravel())
            y.append(c)
    acc = cross_val_score(RandomForestClassifier(100, random_state=0), np.array(X), np.array(y), cv=3).mean()
    assert 0.35 < acc < 0.995, acc  # far above chance (1/16), yet some classes look alike


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Path:
    dates = synthetic.make_dates(5, 1)
    return synthetic.make_s2_stack(tmp_path_factory.mktemp("s2") / "s2stack", dates, seed=2, size=48, n_fields=10)


def test_s2_stack_files(stack: Path) -> None:
    s2 = sorted(stack.glob("S2_*.tif"))
    scl = sorted(stack.glob("SCL_*.tif"))
    assert len(s2) == len(scl) == 5
    for f, g in zip(s2, scl, strict=True):
        stamp = f.stem[3:]
        assert g.stem == f"SCL_{stamp}"
        with rasterio.open(f) as src:
            assert src.count == 9 and src.dtypes[0] == "int16" and src.crs.to_epsg() == 32633
            assert src.res == (10.0, 10.0) and src.shape == (48, 48)
            assert list(src.descriptions) == TS2C_BANDS
            assert src.tags()["ACQUISITION_DATE"].replace("-", "") == stamp
            assert src.compression.name.lower() == "deflate" and src.block_shapes[0] == (64, 64)
            data = src.read()
        with rasterio.open(g) as src:
            assert src.count == 1 and src.dtypes[0] == "uint8" and src.transform == rasterio.open(f).transform
            codes = src.read(1)
        assert set(np.unique(codes)) <= {0, 3, 4, 5, 8, 9, 10, 11}
        clear = np.isin(codes, [4, 5])
        if (codes == 9).any():
            assert np.median(data[0][codes == 9]) > 2 * np.median(data[0][clear])
        assert (data[:, codes == 0] == 0).all() and (data[:, codes != 0] > 0).all()


def test_s2_fields_in_another_crs_match_the_pixels(stack: Path) -> None:
    fields = gpd.read_file(stack / "fields.gpkg")
    assert fields.crs.to_epsg() == 3035
    assert list(fields.columns[:3]) == ["field_id", "crop_code", "class_id"]
    assert fields.field_id.is_unique
    assert all(synthetic.INVEKOS_CLASSES[c] == k for c, k in zip(fields.crop_code, fields.class_id, strict=True))
    utm = fields.to_crs(32633)
    with rasterio.open(sorted(stack.glob("S2_*.tif"))[-1]) as src:
        transform, data = src.transform, src.read().astype(float)
    ids = rasterio.features.rasterize(
        zip(utm.geometry, utm.field_id, strict=True), out_shape=(48, 48), transform=transform
    )
    assert len(np.unique(ids)) > 5
    # pixels of one field are more alike than pixels of different fields (fields drive the reflectance)
    nir = data[6]
    within = np.mean([nir[ids == i].std() for i in np.unique(ids[ids > 0]) if (ids == i).sum() > 4])
    assert within < nir[ids > 0].std()


def test_invekos_names_agree_with_the_kit_table() -> None:
    table = ROOT / "eokit" / "tables" / "invekos_to_timesen2crop.csv"
    if not table.exists():
        pytest.skip("no INVEKOS table in eokit/tables")
    codes = pd.read_csv(table).set_index("code")["class_id"]
    assert {c: int(codes[c]) for c in synthetic.INVEKOS_CLASSES} == synthetic.INVEKOS_CLASSES


def test_s2_stack_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="dates"):
        synthetic.make_s2_stack(tmp_path / "x", [], seed=0)


@pytest.fixture(scope="module")
def sar(tmp_path_factory) -> Path:
    return synthetic.make_sar_sample(tmp_path_factory.mktemp("sar"), seed=5, size=192)


def test_sar_scenes_and_polygons(sar: Path) -> None:
    polys = gpd.read_file(sar / "ice_polygons.gpkg")
    assert polys.crs.to_epsg() == 3413
    assert list(polys.columns[:4]) == ["scene", "polygon_id", "ice_class", "ice_name"]
    assert polys.polygon_id.is_unique
    assert all(ICE_CLASSES[c] == n for c, n in zip(polys.ice_class, polys.ice_name, strict=True))
    per_class = polys.groupby("ice_class").scene.nunique()
    assert set(per_class.index) == set(range(6)) and (per_class >= 2).all()
    for scene in synthetic.SAR_SCENES:
        layers = {}
        for name in ("Sigma0_HH_db", "Sigma0_HV_db", "incidence_angle"):
            with rasterio.open(sar / scene / f"{name}.tif") as src:
                assert src.crs.to_epsg() == 3413 and src.res == (40.0, 40.0) and src.dtypes[0] == "float32"
                layers[name] = src.read(1)
                transform = src.transform
        ia = layers["incidence_angle"]
        assert 18.9 < ia.min() < 20 and 46 < ia.max() < 47.5 and (np.diff(ia, axis=1) > 0).all()
        hh, hv = layers["Sigma0_HH_db"], layers["Sigma0_HV_db"]
        assert -35 < np.median(hh) < -5 and np.median(hv) < np.median(hh)
        sub = polys[polys.scene == scene]
        cls = (
            rasterio.features.rasterize(
                zip(sub.geometry, sub.ice_class + 1, strict=True), out_shape=hh.shape, transform=transform
            )
            - 1
        )
        level = {k: np.median(hh[cls == k]) for k in range(6) if (cls == k).any()}
        if 1 in level and 5 in level:
            assert level[5] > level[1] + 8  # deformed ice far brighter than new ice


def test_sar_incidence_angle_slope(sar: Path) -> None:
    polys = gpd.read_file(sar / "ice_polygons.gpkg")
    scene = polys[polys.ice_class == 4].scene.iloc[0]
    sub = polys[(polys.scene == scene) & (polys.ice_class == 4)]
    with rasterio.open(sar / scene / "Sigma0_HH_db.tif") as src:
        hh, transform = src.read(1), src.transform
    with rasterio.open(sar / scene / "incidence_angle.tif") as src:
        ia = src.read(1)
    m = (
        rasterio.features.rasterize(
            zip(sub.geometry, [1] * len(sub), strict=True), out_shape=hh.shape, transform=transform
        )
        == 1
    )
    lin = 10 ** (hh[m] / 10)
    # fit in linear power per 1-degree bin (speckle averages out), then slope in dB/degree
    bins = np.floor(ia[m]).astype(int)
    keep = np.bincount(bins) > 50
    centres = np.nonzero(keep)[0]
    db = 10 * np.log10(np.array([lin[bins == b].mean() for b in centres]))
    slope = np.polyfit(centres + 0.5, db, 1)[0]
    assert -0.35 < slope < -0.1, slope


def test_every_ice_polygon_holds_a_32px_patch(sar: Path) -> None:
    polys = gpd.read_file(sar / "ice_polygons.gpkg")
    for row in polys.itertuples():
        with rasterio.open(sar / row.scene / "Sigma0_HH_db.tif") as src:
            inside = rasterio.features.rasterize([(row.geometry, 1)], out_shape=src.shape, transform=src.transform)
        c = np.pad(inside.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        window = c[32:, 32:] - c[:-32, 32:] - c[32:, :-32] + c[:-32, :-32]
        assert (window == 32 * 32).any(), f"polygon {row.polygon_id} of {row.scene} holds no 32x32 patch"


# --- the committed bundle -------------------------------------------------------------------------


def test_bundle_is_small_and_complete() -> None:
    total = sum(p.stat().st_size for p in SAMPLE_DIR.rglob("*") if p.is_file())
    assert total < 12e6, f"bundled sample is {total / 1e6:.1f} MB"
    tiles = {t.name: synthetic.read_tile_dates(t) for t in (SAMPLE_DIR / "timesen2crop" / "TimeSen2Crop").iterdir()}
    assert len(tiles) == 3 and len({d.size for d in tiles.values()}) == 3
    longest = max(tiles.values(), key=len)
    stack_dates = sorted(p.stem[3:] for p in (SAMPLE_DIR / "s2stack").glob("S2_*.tif"))
    assert stack_dates == [str(d).replace("-", "") for d in longest]  # a model trained on the tree maps the stack
    fields = gpd.read_file(SAMPLE_DIR / "s2stack" / "fields.gpkg")
    assert len(fields) >= 35 and fields.class_id.nunique() >= 8
    utm = fields.to_crs(32633)
    touching = sum(
        utm.geometry.iloc[i].intersection(utm.geometry.iloc[j]).length > 1
        for i in range(len(utm))
        for j in range(i + 1, len(utm))
    )
    assert touching >= 5
    for tile in tiles:
        assert all(
            len(list((SAMPLE_DIR / "timesen2crop" / "TimeSen2Crop" / tile / str(c)).glob("*.csv"))) >= 20
            for c in range(16)
        )


def test_script_rebuilds_the_committed_bundle(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_sample_data", ROOT / "scripts" / "make_sample_data.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--out", str(tmp_path)]) == 0
    assert _digest(tmp_path) == _digest(SAMPLE_DIR)
    with pytest.raises(FileExistsError):
        mod.main(["--out", str(tmp_path), "--only", "sar"])


# ----------------------------------------------------------------- full-size TimeSen2Crop tree (at a small scale)
def test_fullsize_plan_has_the_published_shape():
    plan = synthetic.timesen2crop_fullsize_plan(1.0)
    assert plan["files"] == 1_212_224 == sum(synthetic.FULL_CLASS_COUNTS)
    assert list(plan["tiles"]) == [
        "32TNT", "32TPT", "32TQT", "33TUM", "33TUN", "33TVM", "33TVN", "33TWM",
        "33TWN", "33TXN", "33UUP", "33UVP", "33UWP", "33UWQ", "33UXP", "2019_33UVP",
    ]  # fmt: skip
    classes = plan["classes"]
    assert max(classes, key=classes.get) == "Grassland" and min(classes, key=classes.get) == "Winter caraway"
    assert all(20 <= t["dates"] <= 76 for t in plan["tiles"].values())


def test_fullsize_tree_reads_back_with_its_planned_counts(tmp_path):
    from eokit.datasets import timesen2crop as ts

    plan = synthetic.timesen2crop_fullsize_plan(0.0005, seed=3)
    base = synthetic.make_timesen2crop_fullsize(tmp_path, scale=0.0005, seed=3, workers=2, progress=False)
    ds = ts.open(base)
    assert ds.sizes["sample"] == plan["files"]
    for tile, info in plan["tiles"].items():
        sel = ds["tile"].values == tile
        assert sel.sum() == info["samples"]
        assert (~np.isnat(ds["date"].values[sel][0])).sum() == info["dates"]
    names, counts = np.unique(ds["label_name"].values, return_counts=True)
    assert dict(zip(names.tolist(), counts.tolist(), strict=True)) == {k: v for k, v in plan["classes"].items() if v}
    assert set(np.unique(ds["flag"].values)) <= {0, 1, 2, 3, 255}
    refl = ds["reflectance"].values[~np.isnat(ds["date"].values)]
    assert 0 < refl.min() and refl.max() <= 32767 and refl.std() > 100


def test_fullsize_tree_is_seeded_whatever_the_workers(tmp_path):
    a = synthetic.make_timesen2crop_fullsize(tmp_path / "a", scale=0.0003, seed=1, workers=1, progress=False)
    b = synthetic.make_timesen2crop_fullsize(tmp_path / "b", scale=0.0003, seed=1, workers=2, progress=False)
    c = synthetic.make_timesen2crop_fullsize(tmp_path / "c", scale=0.0003, seed=2, workers=2, progress=False)

    def digest(base):
        h = hashlib.sha1()
        for f in sorted(base.rglob("*.csv")):
            h.update(f.relative_to(base).as_posix().encode() + f.read_bytes())
        return h.hexdigest()

    assert digest(a) == digest(b) != digest(c)


@pytest.mark.bad_input
def test_fullsize_refuses_a_scale_outside_0_1(tmp_path):
    from badinput import refuses

    for scale in (0, -0.1, 1.5):
        with refuses(ValueError, "scale", "(0, 1]"):
            synthetic.make_timesen2crop_fullsize(tmp_path, scale=scale, progress=False)


def test_csv_block_text_is_what_the_exact_parser_reads():
    from eokit.datasets._ts2c_parse import HEADER, _parse_one

    rng = np.random.default_rng(0)
    vals = np.concatenate([rng.integers(0, 32768, (5, 7, 9)), rng.integers(0, 4, (5, 7, 1))], axis=2)
    vals[0, 0, :9] = [0, 9, 10, 99, 100, 999, 1000, 9999, 32767]
    text, off = synthetic._csv_block(vals, (HEADER + "\n").encode())
    raw = text.tobytes()
    assert raw.startswith(f"{HEADER}\n0,9,10,99,100,999,1000,9999,32767,".encode())
    for i in range(5):
        np.testing.assert_array_equal(_parse_one(f"{i}.csv", raw[off[i] : off[i + 1]], 7), vals[i])


def test_fullsize_archive_reads_as_the_tree_and_is_seeded(tmp_path):
    from eokit.datasets import timesen2crop as ts

    tree = synthetic.make_timesen2crop_fullsize(tmp_path / "t", scale=0.0003, seed=1, workers=2, progress=False)
    a = synthetic.make_timesen2crop_fullsize(
        tmp_path / "a", scale=0.0003, seed=1, workers=1, progress=False, archive=True
    )
    b = synthetic.make_timesen2crop_fullsize(
        tmp_path / "b", scale=0.0003, seed=1, workers=2, progress=False, archive=True
    )
    assert a.name == "TimeSen2Crop.zip" and a.read_bytes() == b.read_bytes()
    assert ts.open(a).drop_attrs().equals(ts.open(tree).drop_attrs())

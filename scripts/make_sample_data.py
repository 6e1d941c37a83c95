#!/usr/bin/env python
"""Make the bundled sample data (data/sample/) from seeded generators, plus a copy of the real Slovenia case.

    python scripts/make_sample_data.py                       # the committed bundle (seed 0)
    python scripts/make_sample_data.py --out /tmp/big --scale 4 --seed 1   # a bigger one elsewhere

--scale multiplies the samples per class of the TimeSen2Crop tree, the S2 stack's side (pixels) and
number of fields, and the SAR scenes' side. Same seed and scale -> the same files.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eokit import synthetic  # noqa: E402
from eokit.datasets import slovenia  # noqa: E402

SLOVENIA_SRC = ROOT.parent / "shared" / "data" / "slovenia-eopatch"
BUNDLED_SLOVENIA = ROOT / "data" / "sample" / "slovenia"
LUCAS_FILE = "LUCAS_2018_sample_AT.csv"
#: The files of the real case, copied byte for byte (the rest of data/sample/slovenia is derived from them).
SLOVENIA_FILES = [
    "LICENSE",
    "README.md",
    "bbox.geojson",
    "cloud_mask.npy",
    "lulc.npy",
    "lulc_polygons.gpkg",
    "ndvi.npy",
    "timestamps.json",
]
PROVENANCE = """# Provenance of data/sample/slovenia

The files LICENSE, README.md, bbox.geojson, cloud_mask.npy, lulc.npy, lulc_polygons.gpkg, ndvi.npy and
timestamps.json were copied byte for byte from `../shared/data/slovenia-eopatch/` (itself the `example_data/TestEOPatch` of
eo-learn by Sinergise, MIT licence, see LICENSE) by `scripts/make_sample_data.py`. The folder `stack/` is
derived from these files by `eokit.datasets.slovenia.write_stack`: one `NDVI_<YYYYMMDDTHHMMSS>.tif`
(float32, band "NDVI") and one `FLAG_<YYYYMMDDTHHMMSS>.tif` (uint8, TimeSen2Crop flag codes: 1 cloud,
0 clear) per timestamp (two acquisitions share 2015-12-08, hence the time in the names), plus `LULC.tif`
(uint16 LULC_ID), all in EPSG:32633 on the grid of bbox.geojson (row 0 = north, pixel size = extent / shape).
Read either form with `eokit.datasets.slovenia.open(path)`; the polygons with `slovenia.polygons()`.
"""


def _copy_slovenia(src: Path, dst: Path, overwrite: bool) -> None:
    """Copy the Slovenia case as it is, add PROVENANCE.md and the GeoTIFF stack."""
    missing = [f for f in SLOVENIA_FILES if not (src / f).exists()]
    if missing:
        raise FileNotFoundError(f"{src} does not hold the Slovenia case (missing: {', '.join(missing)})")
    if dst.exists() and not overwrite:
        raise FileExistsError(f"{dst} exists; pass --overwrite to regenerate it")
    if dst.resolve() == src.resolve():  # regenerating the bundle from its own committed originals
        shutil.rmtree(dst / "stack", ignore_errors=True)
    else:
        if dst.exists():
            shutil.rmtree(dst)
        dst.mkdir(parents=True)
        for name in SLOVENIA_FILES:
            shutil.copyfile(src / name, dst / name)
    (dst / "PROVENANCE.md").write_text(PROVENANCE.lstrip("\n"))
    slovenia.write_stack(dst / "stack", dst)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, generate every part of the sample, return the exit status."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "sample", help="output folder (data/sample)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (0 for the committed bundle)")
    ap.add_argument("--scale", type=int, default=1, help="make everything this many times bigger")
    ap.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    ap.add_argument(
        "--only",
        nargs="*",
        choices=["timesen2crop", "s2stack", "lucas", "sar", "slovenia"],
        help="make only these parts (lucas: points over the s2stack already in --out)",
    )
    ap.add_argument(
        "--slovenia-src",
        type=Path,
        default=None,
        help="folder of the real Slovenia case (default: ../shared/data/slovenia-eopatch where it "
        "exists, else the originals committed in data/sample/slovenia)",
    )
    a = ap.parse_args(argv)
    if a.scale < 1:
        ap.error("--scale must be >= 1")
    parts = set(a.only or ["timesen2crop", "s2stack", "lucas", "sar", "slovenia"])
    out: Path = a.out
    out.mkdir(parents=True, exist_ok=True)
    tiles = dict(synthetic.SAMPLE_TILES)
    if "timesen2crop" in parts:
        synthetic.make_timesen2crop_tree(
            out / "timesen2crop", tiles, samples_per_class=25 * a.scale, seed=a.seed, overwrite=a.overwrite
        )
    if "s2stack" in parts:
        # the stack repeats the acquisitions of the sample tile with the most dates, so a model trained
        # on the tree can map it
        tile = max(tiles, key=lambda t: (tiles[t], t))
        dates = synthetic.read_tile_dates(out / "timesen2crop" / "TimeSen2Crop" / tile)
        synthetic.make_s2_stack(
            out / "s2stack",
            dates,
            seed=a.seed,
            size=100 * a.scale,
            n_fields=40 * a.scale**2,
            tile=tile,
            overwrite=a.overwrite,
        )
    if "lucas" in parts:  # LUCAS 2018 survey points (Eurostat layout) over the stack's fields, woods and beyond
        synthetic.make_lucas_points(
            out / "lucas" / LUCAS_FILE, out / "s2stack", seed=a.seed, n_fields=40 * a.scale**2, overwrite=a.overwrite
        )
    if "sar" in parts:
        synthetic.make_sar_sample(out / "sar", seed=a.seed, size=256 * a.scale, overwrite=a.overwrite)
    if "slovenia" in parts:
        src = a.slovenia_src or (SLOVENIA_SRC if (SLOVENIA_SRC / "ndvi.npy").exists() else BUNDLED_SLOVENIA)
        _copy_slovenia(src, out / "slovenia", a.overwrite)
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"sample data in {out}: {total / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Seeded generators of the bundled sample data: crop phenology, a TimeSen2Crop tree, an S2 stack, SAR scenes.

Everything here is deterministic for a given seed (numpy ``Generator`` seeded from the seed and the
tile/scene name), so ``scripts/make_sample_data.py`` rebuilds the committed bundle byte for byte (the
GeoPackages excepted: SQLite stores a write time).

Physics in brief:

* Crop phenology is a double-logistic green-vegetation curve per class (autumn sowing and winter dip for
  winter crops, spring/summer green-up, senescence, harvest; grassland is cut two to four times; rapeseed
  flowers yellow), with per-sample jitter of every date, amplitude and rate, and a small shift per tile.
* Reflectance is a linear mixture of green vegetation, senescent (dry) vegetation, yellow flowers and
  soil endmembers of the nine TimeSen2Crop bands, with soil moisture, haze and sensor noise; clouds are
  bright, shadows dark, snow bright in the visible and dark in the SWIR.
* SAR backscatter (sigma0, dB) has realistic levels per WMO ice class, a linear incidence-angle slope
  (about -0.2 dB per degree in HH), class texture (ridges in deformed ice, wind on open water), a
  noise floor with scalloping in HV, and multiplicative gamma speckle.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from eokit._io import atomic_output
from eokit._progress import tqdm
from eokit._synth_crops import (  # noqa: F401 - the crop model, importable from here as before
    INVEKOS_CLASSES,
    SAMPLE_TILES,
    SCL_BARE_SOIL,
    SCL_CIRRUS,
    SCL_CLOUD_HIGH,
    SCL_CLOUD_MEDIUM,
    SCL_NO_DATA,
    SCL_SHADOW,
    SCL_SNOW,
    SCL_VEGETATION,
    SEASON_END,
    SEASON_START,
    _rng,
    make_dates,
    phenology,
    reflectance,
    season_day,
    tile_shift,
    timesen2crop_samples,
)
from eokit._synth_s2 import field_layout, make_s2_stack  # noqa: F401
from eokit._synth_sar import SAR_SCENES, make_sar_sample, make_sar_scene  # noqa: F401
from eokit.schema import TS2C_CLASSES, TS2C_CSV_COLUMNS


def make_timesen2crop_tree(
    root: str | os.PathLike,
    tiles: Mapping[str, int] | Sequence[str] | None = None,
    samples_per_class: int = 25,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write a TimeSen2Crop-layout tree under `root`/TimeSen2Crop and return that folder's path.

    `tiles` maps tile name -> number of acquisitions (default `SAMPLE_TILES`); a plain list gives each tile
    a seeded count in 24..36. Layout and CSV format are those of Zenodo record 4715631.
    """
    if tiles is None:
        tiles = SAMPLE_TILES
    if not isinstance(tiles, Mapping):
        tiles = {t: int(_rng(seed, "ndates", t).integers(24, 37)) for t in tiles}
    if samples_per_class < 1:
        raise ValueError(f"samples_per_class must be >= 1, got {samples_per_class}")
    final = Path(root) / "TimeSen2Crop"
    with atomic_output(final, overwrite, kind="dir") as tmp:
        header = ",".join(TS2C_CSV_COLUMNS)
        with tqdm(total=len(tiles) * len(TS2C_CLASSES), desc="TimeSen2Crop sample", unit="class") as bar:
            for tile, n_dates in tiles.items():
                dates = make_dates(int(n_dates), _rng(seed, "dates", tile))
                tdir = tmp / tile
                tdir.mkdir()
                (tdir / "dates.csv").write_text(
                    "acquisition_date\n" + "".join(f"{str(d).replace('-', '')}\n" for d in dates)
                )
                for cid in range(len(TS2C_CLASSES)):
                    refl, flags = timesen2crop_samples(tile, dates, cid, samples_per_class, seed)
                    cdir = tdir / str(cid)
                    cdir.mkdir()
                    for i in range(samples_per_class):
                        rows = np.column_stack([refl[i].astype(np.int64), flags[i].astype(np.int64)])
                        body = "\n".join(",".join(map(str, r)) for r in rows.tolist())
                        (cdir / f"{i}.csv").write_text(f"{header}\n{body}\n")
                    bar.update()
    return final


def read_tile_dates(tile_dir: str | os.PathLike) -> np.ndarray:
    """Return the acquisition dates (datetime64[D]) listed in a TimeSen2Crop `<tile>/dates.csv`."""
    p = Path(tile_dir) / "dates.csv"
    lines = p.read_text().split()
    if not lines or lines[0] != "acquisition_date":
        raise ValueError(f"{p}: line 1 must be the header 'acquisition_date', got {lines[:1]}")
    out = []
    for i, s in enumerate(lines[1:], start=2):
        if len(s) != 8 or not s.isdigit():
            raise ValueError(f"{p}: line {i} must be a date YYYYMMDD, got {s!r}")
        out.append(np.datetime64(f"{s[:4]}-{s[4:6]}-{s[6:]}", "D"))
    return np.array(out, dtype="datetime64[D]")

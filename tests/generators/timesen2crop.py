"""Generate a small TimeSen2Crop tree in the published layout (Zenodo 4715631).

Layout written: ``<root>/TimeSen2Crop/<tile>/dates.csv`` (header ``acquisition_date``, one ``YYYYMMDD`` per
row, oldest first) and ``<root>/TimeSen2Crop/<tile>/<class id>/<n>.csv`` (header
``B1,B2,B3,B4,B5,B6,B7,B8,B9,Flag``, one row per acquisition, integers).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

HEADER = "B1,B2,B3,B4,B5,B6,B7,B8,B9,Flag"


def make_tree(
    root: str | Path,
    tiles: dict[str, int] | None = None,
    n_classes: int = 16,
    samples_per_class: int = 3,
    seed: int = 0,
) -> Path:
    """Write a tree under `root` and return the ``TimeSen2Crop`` folder; `tiles` maps tile -> n dates."""
    rng = np.random.default_rng(seed)
    tiles = tiles or {"33UVP": 7, "32TNT": 5}
    base = Path(root) / "TimeSen2Crop"
    for tile, n_dates in tiles.items():
        tdir = base / tile
        tdir.mkdir(parents=True, exist_ok=True)
        start = pd.Timestamp("2017-09-01") + pd.Timedelta(days=int(rng.integers(0, 5)))
        offsets = np.sort(rng.choice(np.arange(0, 360), size=n_dates, replace=False))
        dates = [(start + pd.Timedelta(days=int(o))).strftime("%Y%m%d") for o in offsets]
        (tdir / "dates.csv").write_text("acquisition_date\n" + "\n".join(dates) + "\n")
        for c in range(n_classes):
            cdir = tdir / str(c)
            cdir.mkdir(exist_ok=True)
            for n in range(samples_per_class):
                refl = rng.integers(0, 10000, size=(n_dates, 9))
                flag = rng.choice([0, 0, 0, 1, 2, 3], size=(n_dates, 1))
                rows = np.hstack([refl, flag])
                body = "\n".join(",".join(str(v) for v in r) for r in rows)
                (cdir / f"{n}.csv").write_text(HEADER + "\n" + body + "\n")
    return base


def make_zip(root: str | Path, archive: str | Path, **kwargs) -> Path:
    """Write a tree with `make_tree` and pack it as the published ``TimeSen2Crop.zip``; return the archive."""
    base = make_tree(root, **kwargs)
    archive = Path(archive)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(base.rglob("*")):
            zf.write(p, p.relative_to(base.parent).as_posix())
    return archive


def sample_csv(rows: np.ndarray, bom: bool = False, crlf: bool = False, final_newline: bool = True) -> bytes:
    """Return the bytes of one sample CSV holding `rows` ((n, 10) ints: B1..B9, Flag) in the published form,
    optionally with a UTF-8 BOM and CRLF line ends as Excel writes them."""
    lines = [HEADER] + [",".join(str(int(v)) for v in r) for r in np.asarray(rows).reshape(-1, 10)]
    eol = "\r\n" if crlf else "\n"
    text = eol.join(lines) + (eol if final_newline else "")
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode()


def dates_csv(dates: list[str], bom: bool = False, crlf: bool = False, header: str = "acquisition_date") -> bytes:
    """Return the bytes of one dates.csv listing `dates` (YYYYMMDD strings), optionally with BOM / CRLF."""
    eol = "\r\n" if crlf else "\n"
    return (b"\xef\xbb\xbf" if bom else b"") + (eol.join([header, *dates]) + eol).encode()


def random_rows(rng: np.random.Generator, n_dates: int) -> np.ndarray:
    """Return (n_dates, 10) valid values: reflectance anywhere in int16, Flag in 0..3."""
    refl = rng.integers(-32768, 32768, size=(n_dates, 9))
    return np.hstack([refl, rng.integers(0, 4, size=(n_dates, 1))])

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

import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eokit._io import atomic_output
from eokit._progress import tqdm
from eokit._synth_crops import (  # noqa: F401 - the crop model, importable from here as before
    FULL_CLASS_COUNTS,
    FULL_TILES,
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
from eokit._synth_lucas import make_lucas_points  # noqa: F401
from eokit._synth_s2 import field_layout, make_s2_stack  # noqa: F401
from eokit._synth_sar import SAR_SCENES, make_sar_sample, make_sar_scene  # noqa: F401
from eokit.datasets._ts2c_parse import dates_text
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
                (tdir / "dates.csv").write_text(dates_text(dates))
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


_FULL_BLOCK = 4000  # sample CSVs per task of the full-size writer
_FULL_PROTOTYPES = 24  # modelled series per (tile, class); samples are jittered copies of them


def _full_counts(scale: float, seed: int) -> dict[str, np.ndarray]:
    """Return tile -> samples per class of the full-size tree at `scale` (exact class totals, seeded mix)."""
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1] (a fraction of the published 1,212,224 samples), got {scale}")
    rng = _rng(seed, "full-counts")
    share = np.array([s for _, s in FULL_TILES.values()])
    out = np.zeros((len(FULL_TILES), len(FULL_CLASS_COUNTS)), dtype=np.int64)
    for c, total in enumerate(FULL_CLASS_COUNTS):
        p = share * np.exp(rng.normal(0.0, 0.6, share.size))  # each class has its own spread over the tiles
        out[:, c] = rng.multinomial(max(1, round(total * scale)), p / p.sum())
    for t in np.flatnonzero(out.sum(axis=1) == 0):  # every tile holds samples, even at a tiny scale
        donor = int(np.argmax(out[:, 1]))
        out[donor, 1] -= 1
        out[t, 1] += 1
    return {name: out[i] for i, name in enumerate(FULL_TILES)}


def _full_dates(tile: str, n: int, seed: int) -> np.ndarray:
    """Return `n` distinct acquisition days (datetime64[D]) of one tile's agronomic year, more in summer."""
    start = np.datetime64("2018-09-01" if tile.startswith("2019_") else "2017-09-01", "D")
    rng = _rng(seed, "full-dates", tile)
    day = np.arange(365)
    w = 1.0 + 0.8 * np.cos(2 * np.pi * (day - 320) / 365.0)
    return start + np.sort(rng.choice(day, size=n, replace=False, p=w / w.sum()))


def timesen2crop_fullsize_plan(scale: float = 1.0, seed: int = 0) -> dict[str, object]:
    """Return what :func:`make_timesen2crop_fullsize` would write (files, dates, bytes, disk) without writing."""
    counts = _full_counts(scale, seed)
    n = int(sum(int(c.sum()) for c in counts.values()))
    # about 4.4 characters per reflectance value (3-5 digits) + the flag digit + 10 separators per row
    text = sum(int(c.sum()) * (len(TS2C_CSV_COLUMNS) * 4 + 40.6 * FULL_TILES[t][0]) for t, c in counts.items())
    block = os.statvfs(os.getcwd()).f_frsize or 4096
    disk = sum(int(c.sum()) * -(-int(40 + 40.6 * FULL_TILES[t][0]) // block) * block for t, c in counts.items())
    return {
        "files": n,
        "tiles": {t: {"dates": FULL_TILES[t][0], "samples": int(c.sum())} for t, c in counts.items()},
        "classes": dict(zip(TS2C_CLASSES, np.sum(list(counts.values()), axis=0).tolist(), strict=True)),
        "text_bytes": int(text),
        "disk_bytes": int(disk + 17 * len(counts) * block),
        "inodes": n + 17 * len(counts),
    }


@functools.cache
def _digit_table(hi: int = 32768) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the 8-byte slots of the numbers 0..hi-1 as uint64 (text + ',', text + LF) and their used bytes."""
    s = np.char.add(np.arange(hi).astype("S5"), b",").astype("S8")
    comma = np.frombuffer(s.tobytes(), dtype=np.uint8).reshape(hi, 8).copy()
    lens = np.char.str_len(s)
    lf = comma.copy()
    lf[np.arange(hi), lens - 1] = ord("\n")
    used = np.ascontiguousarray(np.arange(8)[None, :] < lens[:, None]).view(np.uint64).ravel()
    return comma.view(np.uint64).ravel(), lf.view(np.uint64).ravel(), used


def _csv_block(vals: np.ndarray, header: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Return (text uint8, file offsets (n + 1)) of `n` sample CSVs from their (n, T, 10) values 0..32767."""
    comma, lf, used = _digit_table()
    n, t, k = vals.shape
    h = -(-len(header) // 8) * 8  # the header padded to whole slots
    slots = np.zeros((n, h // 8 + t * k), dtype=np.uint64)  # header, then an 8-byte slot per value
    slots[:, : h // 8] = np.frombuffer(header.ljust(h, b"\0"), dtype=np.uint64)
    idx = vals.astype(np.int32, copy=True)  # the last column's values index the LF half of one table
    idx[..., -1] += comma.size
    np.take(np.concatenate([comma, lf]), idx.reshape(n, t * k), out=slots[:, h // 8 :])
    mask = np.empty((n, h + t * k * 8), dtype=bool)
    mask[:, :h] = np.arange(h) < len(header)
    np.take(used, vals.reshape(n, t * k), out=mask[:, h:].view(np.uint64))
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(mask.sum(axis=1), out=offsets[1:])
    return slots.view(np.uint8)[mask], offsets


def _full_text(args: tuple[str, str, np.ndarray, int, int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Return (text uint8, file offsets) of sample CSVs first..first+n-1 of one (tile, class) folder of `total`."""
    _, tile, dates, cid, first, n, total, seed = args
    k = min(_FULL_PROTOTYPES, total)
    refl, flags = timesen2crop_samples(tile, dates, cid, k, seed)
    rng = _rng(seed, "full-samples", tile, cid, first)
    pick = rng.integers(0, k, n)
    gain = rng.normal(1.0, 0.04, (n, 1, refl.shape[2]))  # per-pixel brightness, then sensor noise
    r = refl[pick] * gain + rng.normal(0.0, 25.0, (n, dates.size, refl.shape[2]))
    vals = np.concatenate([np.clip(np.rint(r), 1, 32767).astype(np.int64), flags[pick][..., None]], axis=2)
    return _csv_block(vals, (",".join(TS2C_CSV_COLUMNS) + "\n").encode())


def _full_task(args: tuple[str, str, np.ndarray, int, int, int, int, int]) -> int:
    """Write sample CSVs first..first+n-1 of one (tile, class) folder of `total`; return how many."""
    folder, first, n = args[0], args[4], args[5]
    text, off = _full_text(args)
    mv = memoryview(text)  # type: ignore[arg-type]
    mode = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    for i in range(n):
        fd = os.open(f"{folder}/{first + i}.csv", mode, 0o666)
        try:
            os.write(fd, mv[off[i] : off[i + 1]])
        finally:
            os.close(fd)
    return n


def _zip_task(args: tuple[str, str, np.ndarray, int, int, int, int, int]) -> tuple[str, int, bytes, list[int]]:
    """Return (folder, first, text, offsets) of one block, for the archive writer."""
    text, off = _full_text(args)
    return args[0], args[4], text.tobytes(), off.tolist()


def _write_zip_block(zf: Any, folder: str, first: int, text: bytes, off: list[int]) -> int:
    """Append one block's CSVs to the open archive as stored members (fixed timestamp: same bytes every run)."""
    import zipfile

    mv = memoryview(text)
    for i in range(len(off) - 1):
        info = zipfile.ZipInfo(f"{folder}/{first + i}.csv", date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        zf.writestr(info, mv[off[i] : off[i + 1]])
    return len(off) - 1


def make_timesen2crop_fullsize(
    root: str | os.PathLike,
    scale: float = 1.0,
    seed: int = 0,
    workers: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
    archive: bool = False,
) -> Path:
    """Write a TimeSen2Crop tree of the published size and shape (16 tiles, `FULL_CLASS_COUNTS` x `scale`
    samples) under `root`/TimeSen2Crop and return that folder; FileExistsError/OSError when it cannot fit.
    `archive`: write `root`/TimeSen2Crop.zip instead (the published archive's layout, members stored), read in
    place by eokit, and return it: no inode per sample, several times faster to write than the tree here.

    Seeded (same seed and scale: the same files, whatever `workers`); written by `workers` processes, each
    formatting blocks of thousands of CSVs in one vectorised pass. Check the size first with
    :func:`timesen2crop_fullsize_plan`."""
    plan = timesen2crop_fullsize_plan(scale, seed)
    dest = Path(root)
    dest.mkdir(parents=True, exist_ok=True)
    st = os.statvfs(dest)
    need, inodes = int(plan["disk_bytes"]), int(plan["inodes"])  # type: ignore[call-overload]
    if archive:  # the text plus about 100 bytes of headers per member, one inode
        need, inodes = int(plan["text_bytes"]) + 100 * inodes, 1  # type: ignore[call-overload]
    if st.f_bavail * st.f_frsize < 1.1 * need or (st.f_files and st.f_favail < 1.1 * inodes):
        raise OSError(
            f"{dest}: not enough room for the TimeSen2Crop tree at scale {scale} (needs about {need / 1e9:.1f} GB "
            f"and {inodes} inodes; free {st.f_bavail * st.f_frsize / 1e9:.1f} GB, {st.f_favail} inodes)"
        )
    final = dest / ("TimeSen2Crop.zip" if archive else "TimeSen2Crop")
    with atomic_output(final, overwrite, kind="file" if archive else "dir") as tmp:
        if archive:
            import zipfile

            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
                _full_blocks(plan, scale, seed, workers, progress, zf)
        else:
            _full_blocks(plan, scale, seed, workers, progress, tmp)
    return final


def _full_blocks(
    plan: Mapping[str, Any], scale: float, seed: int, workers: int | None, progress: bool, out: Any
) -> None:
    """Write every tile's dates.csv and sample CSVs into the folder `out` (a Path) or the open ZipFile `out`."""
    import multiprocessing as mp
    import zipfile

    to_zip = isinstance(out, zipfile.ZipFile)
    tasks = []
    for tile, counts in _full_counts(scale, seed).items():
        dates = _full_dates(tile, FULL_TILES[tile][0], seed)
        text = dates_text(dates)
        if to_zip:
            out.writestr(zipfile.ZipInfo(f"TimeSen2Crop/{tile}/", date_time=(1980, 1, 1, 0, 0, 0)), b"")
            out.writestr(zipfile.ZipInfo(f"TimeSen2Crop/{tile}/dates.csv", date_time=(1980, 1, 1, 0, 0, 0)), text)
        else:
            (out / tile).mkdir()
            (out / tile / "dates.csv").write_text(text)
        for cid, c in enumerate(counts.tolist()):
            folder = f"TimeSen2Crop/{tile}/{cid}" if to_zip else str(out / tile / str(cid))
            if to_zip:
                out.writestr(zipfile.ZipInfo(folder + "/", date_time=(1980, 1, 1, 0, 0, 0)), b"")
            else:
                os.mkdir(folder)
            for first in range(0, c, _FULL_BLOCK):
                tasks.append((folder, tile, dates, cid, first, min(_FULL_BLOCK, c - first), c, seed))
    tasks.sort(key=lambda a: -a[5])  # big blocks first: the pool ends together (stable: a fixed member order)
    nproc = max(1, min(workers or os.cpu_count() or 1, len(tasks)))
    fn: Any = _zip_task if to_zip else _full_task

    def done(r: Any) -> int:
        return _write_zip_block(out, *r) if to_zip else int(r)

    with tqdm(total=int(plan["files"]), desc="TimeSen2Crop full size", unit="file", disable=not progress) as bar:
        if nproc == 1:
            for r in map(fn, tasks):
                bar.update(done(r))
            return
        with mp.get_context("fork" if os.name == "posix" else "spawn").Pool(nproc) as pool:
            # archive members keep the task order (the same bytes whatever `workers`); files need no order
            for r in pool.imap(fn, tasks) if to_zip else pool.imap_unordered(fn, tasks):
                bar.update(done(r))


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

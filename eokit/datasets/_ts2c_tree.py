"""TimeSen2Crop tree reading: the unpacked folder or the published zip as one source, the tile scan, and the
parse of a tile's sample CSVs into padded per-sample arrays. Used by :mod:`eokit.datasets.timesen2crop`.
"""

from __future__ import annotations

import builtins
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from eokit.datasets._ts2c_parse import OnError, _parse_dates, _parse_many
from eokit.schema import FLAG_NODATA, TS2C_BANDS, TS2C_CLASSES

_CLASS_DIRS = {str(i): i for i in range(len(TS2C_CLASSES))}  # the canonical names only: not '00', not '+1'


@dataclass
class _Tile:
    name: str
    dates: np.ndarray  # datetime64[ns], one per acquisition
    files: list[tuple[int, str]] = field(default_factory=list)  # (class id, path relative to base)


class _DirSource:
    """The unpacked tree: `base` holds the tile folders."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._prefix = str(base) + os.sep

    def where(self, rel: str) -> str:
        return self._prefix + rel

    def dirs(self, rel: str = "") -> list[str]:
        d = self.base / rel if rel else self.base
        return [e.name for e in os.scandir(d) if e.is_dir() and not e.name.startswith(".")]

    def csvs(self, rel: str) -> list[str]:
        return [n for n in os.listdir(self._prefix + rel) if n.endswith(".csv")]

    def exists(self, rel: str) -> bool:
        return os.path.exists(self._prefix + rel)

    def read(self, rel: str) -> bytes:
        return _read_bytes(self._prefix + rel)


class _ZipSource:
    """The published archive read in place: members are inflated straight from a memory map (no unpacking)."""

    def __init__(self, path: Path) -> None:
        import zipfile

        self.path = path
        try:
            with zipfile.ZipFile(path) as zf:
                infos = zf.infolist()
        except zipfile.BadZipFile as e:
            raise ValueError(f"{path}: not a readable zip archive ({e}); truncated or corrupted?") from e
        names = [i.filename for i in infos]
        roots = {n.split("/", 1)[0] for n in names if n.endswith("/dates.csv") and n.count("/") == 2}
        prefix = (
            "TimeSen2Crop/"
            if "TimeSen2Crop" in roots
            else ("" if any(n.endswith("/dates.csv") and n.count("/") == 1 for n in names) else None)
        )
        if prefix is None:
            raise FileNotFoundError(
                f"{path}: no <tile>/dates.csv or TimeSen2Crop/<tile>/dates.csv inside the "
                f"archive (found e.g. {names[:5]})"
            )
        self.prefix: str = prefix
        self.base = f"{path}!{self.prefix}"
        k = len(self.prefix)
        self._info = {
            i.filename[k:]: (i.header_offset, i.compress_size, i.compress_type, i.file_size)
            for i in infos
            if i.filename.startswith(self.prefix) and not i.is_dir()
        }
        # the folders the archive holds, as os.scandir would list them unpacked (empty folders included, names
        # starting with '.' left out), so a zip and its unpacked tree are read and refused alike
        self._tree: dict[str, dict[str, list[str]]] = {}
        for i in infos:
            if not i.filename.startswith(self.prefix):
                continue
            parts = i.filename[k:].rstrip("/").split("/")
            if not parts[0] or parts[0].startswith(".") or (len(parts) == 1 and not i.is_dir()):
                continue
            tile = self._tree.setdefault(parts[0], {})
            if len(parts) == 1 or parts[1].startswith(".") or (len(parts) == 2 and not i.is_dir()):
                continue
            files = tile.setdefault(parts[1], [])
            if len(parts) == 3 and not i.is_dir() and parts[2].endswith(".csv"):
                files.append(parts[2])
        self._mm: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_mm": None}

    def where(self, rel: str) -> str:
        return f"{self.path}!{self.prefix}{rel}"

    def dirs(self, rel: str = "") -> list[str]:
        if not rel:
            return list(self._tree)
        return list(self._tree.get(rel, {}))

    def csvs(self, rel: str) -> list[str]:
        tile, _, cls = rel.partition("/")
        return list(self._tree.get(tile, {}).get(cls, []))

    def exists(self, rel: str) -> bool:
        return rel in self._info

    def read(self, rel: str) -> bytes:
        import mmap
        import struct
        import zlib

        if self._mm is None:
            with builtins.open(self.path, "rb") as f:
                self._mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        off, csize, ctype, size = self._info[rel]
        mm = self._mm
        if mm[off : off + 4] != b"PK\x03\x04":
            raise ValueError(f"{self.where(rel)}: bad local header in the archive (corrupted?)")
        n, m = struct.unpack_from("<HH", mm, off + 26)
        start = off + 30 + n + m
        raw = mm[start : start + csize]
        if len(raw) != csize:
            raise ValueError(f"{self.where(rel)}: archive truncated inside this member")
        if ctype == 0:
            return raw
        if ctype == 8:
            try:
                return zlib.decompress(raw, -15)
            except zlib.error as e:
                raise ValueError(f"{self.where(rel)}: cannot inflate ({e}); the archive is corrupted") from e
        import zipfile

        with zipfile.ZipFile(self.path) as zf:
            return zf.read(self.prefix + rel)


def _source(path: str | Path) -> _DirSource | _ZipSource:
    """Return the tree under `path` (folder, its TimeSen2Crop/ child, or the TimeSen2Crop.zip archive)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(
            f"TimeSen2Crop: {p} does not exist (expected the unpacked TimeSen2Crop/ tree or TimeSen2Crop.zip)"
        )
    if p.is_file():
        if p.suffix.lower() != ".zip":
            raise ValueError(f"TimeSen2Crop: {p} is a file but not a .zip archive")
        return _ZipSource(p)
    if (p / "TimeSen2Crop").is_dir():
        return _DirSource(p / "TimeSen2Crop")
    subdirs = [d for d in p.iterdir() if d.is_dir() and not d.name.startswith(".")]
    if any((d / "dates.csv").exists() or any(c.name.isdigit() for c in d.iterdir() if c.is_dir()) for d in subdirs):
        return _DirSource(p)
    found = sorted(x.name for x in p.iterdir())[:20]
    raise FileNotFoundError(
        f"TimeSen2Crop: {p} holds no tile folders (found {found}); expected <tile>/dates.csv and "
        "<tile>/<class 0..15>/<n>.csv, or a TimeSen2Crop/ folder holding them"
    )


def _read_dates(src: _DirSource | _ZipSource, rel: str) -> np.ndarray:
    path = src.where(rel)
    if not src.exists(rel):
        raise FileNotFoundError(
            f"{path}: missing; every tile folder must hold dates.csv (header acquisition_date, one YYYYMMDD per line)"
        )
    return _parse_dates(path, src.read(rel))


def _num_key(stem: str) -> tuple[int, Any]:
    return (0, int(stem)) if stem.isdigit() else (1, stem)


def _csv_sort_key(name: str) -> tuple[int, Any]:
    return _num_key(name[:-4])


def _sorted_csvs(names: list[str]) -> list[str]:
    """Return sample CSV names in numeric order (as `_csv_sort_key`); canonical ``<n>.csv`` names (digits, no
    leading zero) sort by (length, text) with two C-level sorts, the rest by the exact key."""
    if all(n[:-4].isdigit() and (n[0] != "0" or n == "0.csv") for n in names):
        names = sorted(names)
        names.sort(key=len)
        return names
    return sorted(names, key=_csv_sort_key)


def _scan(
    src: _DirSource | _ZipSource, tiles: Iterable[str] | None, on_error: OnError, skipped: list[str]
) -> list[_Tile]:
    available = sorted(src.dirs())
    if tiles is None:
        names = available
    else:
        names = list(tiles)
        missing = [t for t in names if t not in available]
        if missing:
            raise FileNotFoundError(f"{src.base}: tile folder(s) {missing} not found; available: {available}")
    out = []
    for name in names:
        try:
            tile = _Tile(name, _read_dates(src, f"{name}/dates.csv"))
            for cname in sorted(src.dirs(name), key=_num_key):
                if cname not in _CLASS_DIRS:
                    msg = (
                        f"{src.where(name + '/' + cname)}: class folder {cname!r} is not a class id "
                        f"(expected folders named 0..{len(TS2C_CLASSES) - 1}, written without leading zeros)"
                    )
                    if on_error == "skip":
                        skipped.append(msg)
                        continue
                    raise ValueError(msg)
                label = _CLASS_DIRS[cname]
                names_csv = _sorted_csvs(src.csvs(f"{name}/{cname}"))
                tile.files.extend((label, f"{name}/{cname}/{n}") for n in names_csv)
            if not tile.files:
                raise ValueError(
                    f"{src.where(name)}: empty tile, no sample CSV under <class 0..15>/ (expected <n>.csv files)"
                )
        except (ValueError, FileNotFoundError) as e:
            if on_error == "skip":
                skipped.append(str(e))
                continue
            raise
        out.append(tile)
    return out


def _read_bytes(path: str | Path) -> bytes:
    # 64 KiB: below malloc's mmap threshold (a 1 MiB buffer costs an mmap/munmap pair per file, 5x slower)
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, 1 << 16)
        if len(data) == 1 << 16:  # larger than any sample CSV, but read it all anyway
            chunks = [data]
            while b := os.read(fd, 1 << 16):
                chunks.append(b)
            data = b"".join(chunks)
    finally:
        os.close(fd)
    return data


def _read_many(paths: list[str]) -> list[bytes]:
    """Return the bytes of many small files (as `_read_bytes`, inlined: a file per few microseconds)."""
    out = []
    o_open, o_read, o_close, flags, cap = os.open, os.read, os.close, os.O_RDONLY, 1 << 16
    for p in paths:
        fd = o_open(p, flags)
        try:
            data = o_read(fd, cap)
        finally:
            o_close(fd)
        out.append(data if len(data) < cap else _read_bytes(p))
    return out


#: Sample CSVs read and scanned at once: a few MB of buffers, freed and reused batch after batch, so that a chunk
#: job touches little fresh memory (page faults cost ~14 us each in this VM: a job holding all its 20,000 files'
#: bytes at once spent a third of its time in the kernel)
_BATCH = 2048


def _namer(src: _DirSource | _ZipSource, rel: list[str]) -> Callable[[int], str]:
    """Return i -> the full name of file rel[i] (what an error message names)."""
    return lambda i: src.where(rel[i])


def _fill_values(
    src: _DirSource | _ZipSource,
    rel: list[str],
    n_dates: int,
    on_error: OnError,
    skipped: list[str],
    refl: np.ndarray,
    flag: np.ndarray,
) -> np.ndarray:
    """Parse sample CSVs of one tile into refl[i, :n_dates] and flag[i, :n_dates] (row i: file i), batch by batch;
    return the kept mask (n,) bool (False: skipped, its row's values meaningless; `_fill_block` clears it)."""
    kept = np.ones(len(rel), dtype=bool)
    for a in range(0, len(rel), _BATCH):
        part = rel[a : a + _BATCH]
        if isinstance(src, _DirSource):  # the bare open + read loop, no call per file beyond the syscalls
            datas = _read_many([src.where(r) for r in part])
        else:
            read = src.read
            datas = [read(r) for r in part]
        vals, ok = _parse_many(datas, _namer(src, part), n_dates, on_error, skipped)
        del datas
        sl = slice(a, a + len(part))
        refl[sl, :n_dates] = vals[..., :-1]
        flag[sl, :n_dates] = vals[..., -1]
        kept[sl] = ok
    return kept


def _fill_block(
    src: _DirSource | _ZipSource,
    tile: _Tile,
    rel_idx: slice,
    out: dict[str, np.ndarray],
    at: int,
    on_error: OnError,
    skipped: list[str],
) -> int:
    """Write a slice of one tile's files into rows at.. of the store's per-sample arrays `out` (reflectance, flag,
    label, source_file; rows already zero / FLAG_NODATA); return how many were kept (their rows first, in order)."""
    files = tile.files[rel_idx]
    rel = [f for _, f in files]
    sl = slice(at, at + len(rel))
    refl, flag = out["reflectance"][sl], out["flag"][sl]
    kept = _fill_values(src, rel, tile.dates.size, on_error, skipped, refl, flag)
    labels = np.array([c for c, _ in files], dtype=np.int64)
    n = int(kept.sum())
    if n < len(rel):  # skipped files: the kept rows move up, the rest are reset to empty slots
        refl[:n], flag[:n] = refl[kept], flag[kept]
        refl[n:], flag[n:] = 0, FLAG_NODATA
        labels, rel = labels[kept], [r for r, k in zip(rel, kept, strict=True) if k]
    out["label"][at : at + n] = labels
    out["source_file"][at : at + n] = rel
    return n


def _tile_block(
    src: _DirSource | _ZipSource,
    tile: _Tile,
    rel_idx: slice,
    n_time: int,
    on_error: OnError,
    skipped: list[str],
) -> dict[str, np.ndarray]:
    """Parse a slice of one tile's files into padded arrays (dict of numpy arrays, per sample)."""
    files = tile.files[rel_idx]
    m = len(files)
    width = max((len(f) for _, f in files), default=1)
    out: dict[str, np.ndarray] = {
        "reflectance": np.zeros((m, n_time, len(TS2C_BANDS)), dtype=np.int16),
        "flag": np.full((m, n_time), FLAG_NODATA, dtype=np.uint8),
        "label": np.zeros(m, dtype=np.int64),
        "source_file": np.full(m, "", dtype=f"<U{width}"),
    }
    n = _fill_block(src, tile, rel_idx, out, 0, on_error, skipped)
    T = tile.dates.size
    date = np.full((n, n_time), np.datetime64("NaT", "ns"), dtype="datetime64[ns]")
    date[:, :T] = tile.dates
    labels = out["label"][:n]
    names = np.array(TS2C_CLASSES, dtype=object)[labels] if n else np.array([], dtype=object)
    return {
        "reflectance": out["reflectance"][:n],
        "flag": out["flag"][:n],
        "date": date,
        "label": labels,
        "label_name": names.astype(str),
        "tile": np.full(n, tile.name).astype(str),
        "source_file": out["source_file"][:n].astype(str),
    }


def _to_dataset(parts: list[dict[str, np.ndarray]], n_time: int) -> xr.Dataset:
    def cat(k: str, empty: np.ndarray) -> np.ndarray:
        arrs = [p[k] for p in parts if len(p[k])]
        return np.concatenate(arrs) if arrs else empty

    refl = cat("reflectance", np.zeros((0, n_time, len(TS2C_BANDS)), np.int16))
    ds = xr.Dataset(
        {
            "reflectance": (("sample", "time", "band"), refl),
            "flag": (("sample", "time"), cat("flag", np.zeros((0, n_time), np.uint8))),
            "date": (("sample", "time"), cat("date", np.zeros((0, n_time), "datetime64[ns]"))),
            "label": (("sample",), cat("label", np.zeros(0, np.int64))),
            "label_name": (("sample",), cat("label_name", np.zeros(0, str))),
            "tile": (("sample",), cat("tile", np.zeros(0, str))),
            "source_file": (("sample",), cat("source_file", np.zeros(0, str))),
        },
        coords={"band": TS2C_BANDS},
    )
    ds["reflectance"].attrs.update(long_name="surface reflectance x 10000", source_columns="B1..B9")
    ds["flag"].attrs.update(flag_values=[0, 1, 2, 3, 255], flag_meanings="clear cloud shadow snow no_acquisition")
    return ds


def _report_skipped(ds: xr.Dataset, skipped: list[str]) -> None:
    ds.attrs["skipped"] = list(skipped)
    if skipped:
        warnings.warn(
            f"TimeSen2Crop: skipped {len(skipped)} item(s) (see ds.attrs['skipped']); first: {skipped[0]}", stacklevel=3
        )


def _is_zarr(p: Path) -> bool:
    return p.is_dir() and ((p / "zarr.json").exists() or (p / ".zgroup").exists())

"""TimeSen2Crop (UNITN, Zenodo 4715631): CSV tree <-> xarray time-series set <-> chunked Zarr store.

The published tree is ``TimeSen2Crop/<tile>/dates.csv`` plus ``TimeSen2Crop/<tile>/<class 0..15>/<n>.csv``,
one CSV per pixel (header ``B1,...,B9,Flag``, one integer row per acquisition of the tile). The real tree has
1.2 million such files, so parsing is done in bulk: the bytes of many files are concatenated, proved to be in a
strict subset of the grammar by a few whole-buffer checks (10 fields ``-?[0-9]{1,9}`` per line, no blank line,
values in range) and parsed by a single C call (``numpy.fromstring``). Any chunk outside that subset goes to the
exact per-file parser, which reads the same values or names the file, line and column at fault, so no input is
ever read as other values. Accepted variants that change no value: a UTF-8 BOM, CRLF line ends, a missing final
newline or empty lines after the last row. The published ``TimeSen2Crop.zip`` can be read in place (members
inflated from a memory map), without unpacking 1.2 million files; it is read and refused exactly as its tree.

Zarr store layout (written by :func:`to_zarr` in Zarr format ``eokit._io.ZARR_FORMAT``, text as ``<U``): per-sample
arrays ``reflectance``, ``flag``, ``label``, ``tile_index``, ``source_file`` chunked along ``sample``, plus
per-tile tables ``tile_names`` and ``tile_dates``;
:func:`open` rebuilds ``date``, ``tile`` and ``label_name`` lazily from the tables, so a store opens as the same
Dataset as the tree.
"""

from __future__ import annotations

import builtins
import datetime
import hashlib
import json
import os
import re
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

import numpy as np
import xarray as xr

from eokit._dask import check_scheduler, compute_target
from eokit._io import (
    ZARR_FORMAT,
    atomic_output,
    check_target,
    swap_in,
    write_json_atomic,
    write_zarr_dataset,
    zarr_compressors,
)
from eokit.schema import (
    FLAG_NODATA,
    TIMESERIES_SCHEMA,
    TS2C_BANDS,
    TS2C_CLASSES,
    TS2C_CSV_COLUMNS,
    check_schema,
)

__all__ = ["open", "write", "to_zarr", "HEADER"]

#: The header line every sample CSV starts with.
HEADER: str = ",".join(TS2C_CSV_COLUMNS)
_HEADER_B = HEADER.encode()
_NCOL = len(TS2C_CSV_COLUMNS)
_BOM = b"\xef\xbb\xbf"
_DATES_HEADER = "acquisition_date"
_DATES_HEADER_B = _DATES_HEADER.encode()
_EPOCH = datetime.date(1970, 1, 1)
_CLASS_DIRS = {str(i): i for i in range(len(TS2C_CLASSES))}  # the canonical names only: not '00', not '+1'
#: allowed range per CSV column: reflectance x 10000 is stored as int16, Flag is 0 clear .. 3 snow
_LIMITS = [(-32768, 32767)] * (_NCOL - 1) + [(0, 3)]
_LO = np.array([lo for lo, _ in _LIMITS], dtype=np.int64)
_HI = np.array([hi for _, hi in _LIMITS], dtype=np.int64)
_INT_RE = re.compile(rb"-?[0-9]+")
_ROW_RE = re.compile(rb"-?[0-9]+(?:,-?[0-9]+){%d}" % (_NCOL - 1))
#: the bytes of a field on the fast path; with ',' and LF the only ones it lets through
_FIELD_BYTES = b"0123456789-"
_ROW_SEPS = b"," * (_NCOL - 1) + b"\n"
_FAST_MAX_FIELD = 9  # a field of at most 9 characters cannot overflow int32
_COMPLETE_ATTR = "eokit_complete"

OnError = Literal["raise", "skip"]


# ----------------------------------------------------------------------------------------------------
# scanning the tree
# ----------------------------------------------------------------------------------------------------
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
        return [e.name for e in os.scandir(self.base / rel) if e.name.endswith(".csv")]

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
        self.prefix = "TimeSen2Crop/" if "TimeSen2Crop" in roots else ("" if any(
            n.endswith("/dates.csv") and n.count("/") == 1 for n in names) else None)
        if self.prefix is None:
            raise FileNotFoundError(f"{path}: no <tile>/dates.csv or TimeSen2Crop/<tile>/dates.csv inside the "
                                    f"archive (found e.g. {names[:5]})")
        self.base = f"{path}!{self.prefix}"
        k = len(self.prefix)
        self._info = {i.filename[k:]: (i.header_offset, i.compress_size, i.compress_type, i.file_size)
                      for i in infos if i.filename.startswith(self.prefix) and not i.is_dir()}
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
        if mm[off:off + 4] != b"PK\x03\x04":
            raise ValueError(f"{self.where(rel)}: bad local header in the archive (corrupted?)")
        n, m = struct.unpack_from("<HH", mm, off + 26)
        start = off + 30 + n + m
        raw = mm[start:start + csize]
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
        raise FileNotFoundError(f"TimeSen2Crop: {p} does not exist (expected the unpacked TimeSen2Crop/ tree "
                                "or TimeSen2Crop.zip)")
    if p.is_file():
        if p.suffix.lower() != ".zip":
            raise ValueError(f"TimeSen2Crop: {p} is a file but not a .zip archive")
        return _ZipSource(p)
    if (p / "TimeSen2Crop").is_dir():
        return _DirSource(p / "TimeSen2Crop")
    subdirs = [d for d in p.iterdir() if d.is_dir() and not d.name.startswith(".")]
    if any((d / "dates.csv").exists() or any(c.name.isdigit() for c in d.iterdir() if c.is_dir())
           for d in subdirs):
        return _DirSource(p)
    found = sorted(x.name for x in p.iterdir())[:20]
    raise FileNotFoundError(
        f"TimeSen2Crop: {p} holds no tile folders (found {found}); expected <tile>/dates.csv and "
        "<tile>/<class 0..15>/<n>.csv, or a TimeSen2Crop/ folder holding them"
    )


def _normalize(data: bytes) -> bytes:
    """Return the text of a CSV with a UTF-8 BOM removed, CRLF line ends made LF and one final LF (if any
    text): the variants other producers write (Excel: BOM + CRLF) that do not change a value."""
    if data.startswith(_BOM):
        data = data[3:]
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    if not data.endswith(b"\n"):
        return data + b"\n" if data else data
    if data.endswith(b"\n\n"):  # empty lines after the last row: nothing follows them, so nothing shifts
        data = data.rstrip(b"\n") + b"\n"
    return data


def _show(b: bytes) -> str:
    return repr(b.decode("utf-8", errors="replace"))


def _parse_dates(path: str, data: bytes) -> np.ndarray:
    """Return the acquisition dates (datetime64[ns]) of one dates.csv; ValueError naming file and line."""
    lines = _normalize(data).split(b"\n")[:-1]
    if not lines or lines[0] != _DATES_HEADER_B:
        got = _show(lines[0]) if lines else "an empty file"
        raise ValueError(f"{path}, line 1: expected header {_DATES_HEADER!r}, got {got}")
    out: list[int] = []
    prev = ""
    for i, line in enumerate(lines[1:], start=2):
        if not line:
            raise ValueError(f"{path}, line {i}: blank line between dates (expected one YYYYMMDD per line)")
        s = line.decode("ascii", errors="replace")
        if len(s) != 8 or not all("0" <= c <= "9" for c in s):
            raise ValueError(f"{path}, line {i}: expected a date YYYYMMDD, got {_show(line)}")
        try:
            day = datetime.date(int(s[:4]), int(s[4:6]), int(s[6:]))
        except ValueError as e:
            raise ValueError(f"{path}, line {i}: {s!r} is not a valid date YYYYMMDD ({e})") from None
        if not 1678 <= day.year <= 2261:  # the span of datetime64[ns]
            raise ValueError(f"{path}, line {i}: date {s} outside the supported years 1678..2261")
        if prev and s <= prev:
            what = "repeats" if s == prev else "is before"
            raise ValueError(f"{path}, line {i}: date {s} {what} {prev} of line {i - 1} (expected dates "
                             "strictly increasing, oldest first, no duplicates)")
        prev = s
        out.append((day - _EPOCH).days)
    if not out:
        raise ValueError(f"{path}: no acquisition dates (expected one YYYYMMDD per line after the header)")
    return np.array(out, dtype="datetime64[D]").astype("datetime64[ns]")


def _read_dates(src: _DirSource | _ZipSource, rel: str) -> np.ndarray:
    path = src.where(rel)
    if not src.exists(rel):
        raise FileNotFoundError(f"{path}: missing; every tile folder must hold dates.csv "
                                "(header acquisition_date, one YYYYMMDD per line)")
    return _parse_dates(path, src.read(rel))


def _num_key(stem: str) -> tuple[int, Any]:
    return (0, int(stem)) if stem.isdigit() else (1, stem)


def _csv_sort_key(name: str) -> tuple[int, Any]:
    return _num_key(name[:-4])


def _scan(src: _DirSource | _ZipSource, tiles: Iterable[str] | None, on_error: OnError,
          skipped: list[str]) -> list[_Tile]:
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
                    msg = (f"{src.where(name + '/' + cname)}: class folder {cname!r} is not a class id "
                           f"(expected folders named 0..{len(TS2C_CLASSES) - 1}, written without leading zeros)")
                    if on_error == "skip":
                        skipped.append(msg)
                        continue
                    raise ValueError(msg)
                label = _CLASS_DIRS[cname]
                names_csv = sorted(src.csvs(f"{name}/{cname}"), key=_csv_sort_key)
                tile.files.extend((label, f"{name}/{cname}/{n}") for n in names_csv)
            if not tile.files:
                raise ValueError(f"{src.where(name)}: empty tile, no sample CSV under <class 0..15>/ "
                                 "(expected <n>.csv files)")
        except (ValueError, FileNotFoundError) as e:
            if on_error == "skip":
                skipped.append(str(e))
                continue
            raise
        out.append(tile)
    return out


# ----------------------------------------------------------------------------------------------------
# bulk parsing
# ----------------------------------------------------------------------------------------------------
def _range_msg(col: int) -> str:
    lo, hi = _LIMITS[col]
    what = "0 clear, 1 cloud, 2 shadow, 3 snow" if col == _NCOL - 1 else "int16 reflectance x 10000"
    return f"expected an integer in {lo}..{hi} ({what})"


def _bad_row(path: str, i: int, line: bytes) -> str:
    """Return the message for data line `i` that does not match the row grammar."""
    parts = line.split(b",")
    if len(parts) != _NCOL:
        return (f"{path}, line {i}: expected {_NCOL} comma-separated fields ({HEADER}), got {len(parts)}: "
                f"{_show(line)}")
    for col, v in zip(TS2C_CSV_COLUMNS, parts):
        if not _INT_RE.fullmatch(v):
            return f"{path}, line {i}, column {col}: expected an integer, got {_show(v)}"
    return f"{path}, line {i}: cannot be read: {_show(line)}"


def _parse_one(path: str, data: bytes, n_dates: int) -> np.ndarray:
    """Return the (n_dates, 10) int16 values of one sample CSV (the exact grammar, one file); ValueError naming
    the file, line and column of the first fault."""
    lines = _normalize(data).split(b"\n")[:-1]
    if not lines or lines[0] != _HEADER_B:
        got = _show(lines[0]) if lines else "an empty file"
        raise ValueError(f"{path}, line 1: expected header {HEADER!r}, got {got}")
    rows = []
    for i, line in enumerate(lines[1:], start=2):
        if not line:
            raise ValueError(f"{path}, line {i}: blank line between data rows (expected one row "
                             f"{HEADER} per acquisition)")
        if not _ROW_RE.fullmatch(line):
            raise ValueError(_bad_row(path, i, line))
        vals = [int(v) for v in line.split(b",")]
        for col, (v, (lo, hi)) in enumerate(zip(vals, _LIMITS)):
            if not lo <= v <= hi:  # Python ints: no overflow whatever the length
                raise ValueError(f"{path}, line {i}, column {TS2C_CSV_COLUMNS[col]}: {_range_msg(col)}, got {v}")
        rows.append(vals)
    if len(rows) != n_dates:
        raise ValueError(f"{path}: {len(rows)} data rows, but the tile's dates.csv lists {n_dates} acquisitions "
                         "(expected one row per date)")
    return np.array(rows, dtype=np.int16).reshape(n_dates, _NCOL)


def _fast_parse(datas: list[bytes], n_dates: int) -> np.ndarray | None:
    """Return the (n, n_dates, 10) int16 values of many sample CSVs parsed in bulk, or None when any file is
    outside the strict subset this path proves correct (then the exact per-file parser decides).

    The subset: each file is the header then `n_dates` lines of exactly 10 fields ``-?[0-9]{1,9}`` (checked
    on the whole buffer with numpy), every value inside its column's range. It accepts nothing the exact
    parser refuses and yields the same values, so a file is never read differently on the two paths."""
    n = len(datas)
    hdr = _HEADER_B + b"\n"
    k = len(hdr)
    bodies = []
    for d in datas:  # per file only cheap C-level steps
        d = _normalize(d)
        if not d.startswith(hdr) or d.count(b"\n") != n_dates + 1:
            return None
        bodies.append(d[k:])
    buf = b"".join(bodies)
    del bodies
    rows = n * n_dates
    # with digits and '-' taken out, what is left must be 9 commas and a LF per line: no other byte, 10 fields
    if not buf or buf.translate(None, _FIELD_BYTES) != _ROW_SEPS * rows:
        return None
    a = np.frombuffer(buf, dtype=np.uint8)
    sep = np.flatnonzero(a < ord("-"))  # among the allowed bytes only ',' (44) and LF (10) are below '-' (45)
    step = sep[1:] - sep[:-1]  # field width + 1 (field 0 starts at byte 0, so its width is sep[0])
    if not 1 <= sep[0] <= _FAST_MAX_FIELD or (step.size and not (
            step.min() >= 2 and step.max() <= _FAST_MAX_FIELD + 1)):  # no empty field or blank line, no overflow
        return None
    if b"-" in buf:  # '-' only as the first character of a field and followed by a digit
        m = np.flatnonzero(a == ord("-"))
        if ((m > 0) & (a[np.maximum(m - 1, 0)] >= ord("-"))).any() or (a[m + 1] < ord("0")).any():
            return None
    del a, sep, step
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        try:
            vals = np.fromstring(buf.replace(b"\n", b","), dtype=np.int32, sep=",")  # type: ignore[call-overload]
        except (DeprecationWarning, ValueError):
            return None
    if vals.size != rows * _NCOL:
        return None
    vals = vals.reshape(n, n_dates, _NCOL)
    if (vals.min(axis=(0, 1)) < _LO).any() or (vals.max(axis=(0, 1)) > _HI).any():
        return None
    return vals.astype(np.int16)


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


def _parse_files(src: _DirSource | _ZipSource, rel: list[str], n_dates: int, on_error: OnError,
                 skipped: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Parse sample CSVs of one tile; return (values (n, n_dates, 10) int16, kept mask (n,) bool)."""
    read = src.read
    datas = [read(r) for r in rel]
    return _parse_many(datas, lambda i: src.where(rel[i]), n_dates, on_error, skipped)


def _parse_many(datas: list[bytes], where: Callable[[int], str], n_dates: int, on_error: OnError,
                skipped: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Parse the bytes of many sample CSVs (bulk fast path, else file by file); `where(i)` names file i."""
    n = len(datas)
    if n:
        values = _fast_parse(datas, n_dates)
        if values is not None:
            return values, np.ones(n, dtype=bool)
    out = np.zeros((n, n_dates, _NCOL), dtype=np.int16)
    kept = np.ones(n, dtype=bool)
    for i, data in enumerate(datas):
        try:
            out[i] = _parse_one(where(i), data, n_dates)
        except ValueError as e:
            if on_error != "skip":
                raise
            skipped.append(str(e))
            kept[i] = False
    return out, kept


def _tile_block(src: _DirSource | _ZipSource, tile: _Tile, rel_idx: slice, n_time: int, on_error: OnError,
                skipped: list[str], lite: bool = False) -> dict[str, np.ndarray]:
    """Parse a slice of one tile's files into padded arrays (dict of numpy arrays, per sample)."""
    files = tile.files[rel_idx]
    rel = [f for _, f in files]
    labels = np.array([c for c, _ in files], dtype=np.int64)
    T = tile.dates.size
    vals, kept = _parse_files(src, rel, T, on_error, skipped)
    vals, labels = vals[kept], labels[kept]
    rel = [r for r, k in zip(rel, kept) if k]
    n = len(rel)
    refl = np.zeros((n, n_time, len(TS2C_BANDS)), dtype=np.int16)
    refl[:, :T] = vals[..., :-1]
    flag = np.full((n, n_time), FLAG_NODATA, dtype=np.uint8)
    flag[:, :T] = vals[..., -1]
    if lite:  # what the store keeps per sample
        return {"reflectance": refl, "flag": flag, "label": labels, "source_file": np.array(rel, dtype=str)}
    date = np.full((n, n_time), np.datetime64("NaT", "ns"), dtype="datetime64[ns]")
    date[:, :T] = tile.dates
    names = np.array(TS2C_CLASSES, dtype=object)[labels] if n else np.array([], dtype=object)
    return {
        "reflectance": refl, "flag": flag, "date": date, "label": labels,
        "label_name": names.astype(str), "tile": np.full(n, tile.name).astype(str),
        "source_file": np.array(rel, dtype=str),
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
    ds["flag"].attrs.update(flag_values=[0, 1, 2, 3, 255],
                            flag_meanings="clear cloud shadow snow no_acquisition")
    return ds


def _report_skipped(ds: xr.Dataset, skipped: list[str]) -> None:
    ds.attrs["skipped"] = list(skipped)
    if skipped:
        warnings.warn(f"TimeSen2Crop: skipped {len(skipped)} item(s) (see ds.attrs['skipped']); first: "
                      f"{skipped[0]}", stacklevel=3)


# ----------------------------------------------------------------------------------------------------
# public API
# ----------------------------------------------------------------------------------------------------
def _is_zarr(p: Path) -> bool:
    return p.is_dir() and ((p / "zarr.json").exists() or (p / ".zgroup").exists())


def open(path: str | Path, tiles: Iterable[str] | None = None, on_error: OnError = "raise") -> xr.Dataset:  # noqa: A001
    """Return the TimeSen2Crop samples as a time-series Dataset (TIMESERIES_SCHEMA) from the tree, zip or Zarr store."""
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    p = Path(path).expanduser()
    if _is_zarr(p):
        return _open_store(p, tiles)
    if p.name.endswith(".partial") and _is_zarr(p):
        raise ValueError(f"{p}: an unfinished Zarr store")
    src = _source(p)
    skipped: list[str] = []
    scanned = _scan(src, tiles, on_error, skipped)
    n_time = max((t.dates.size for t in scanned), default=0)
    parts = []
    from tqdm.auto import tqdm

    n_files = sum(len(t.files) for t in scanned)
    step = 20000
    with tqdm(total=n_files, unit="file", desc="TimeSen2Crop", disable=n_files <= 2 * step) as bar:
        for t in scanned:
            for i in range(0, len(t.files), step):
                parts.append(_tile_block(src, t, slice(i, i + step), n_time, on_error, skipped))
                bar.update(len(t.files[i:i + step]))
    ds = _to_dataset(parts, n_time)
    ds.attrs.update(dataset="TimeSen2Crop", source=str(src.base))
    _report_skipped(ds, skipped)
    return ds


def write(ds: xr.Dataset, root: str | Path, overwrite: bool = False) -> Path:
    """Write a time-series Dataset in the published layout under `root`; return the ``root/TimeSen2Crop`` folder."""
    check_schema(ds, TIMESERIES_SCHEMA, "TimeSen2Crop dataset")
    root = Path(root)
    final = root / "TimeSen2Crop"
    with atomic_output(final, overwrite, kind="dir") as tmp:
        refl = np.asarray(ds["reflectance"].values)
        flag = np.asarray(ds["flag"].values)
        date = np.asarray(ds["date"].values).astype("datetime64[ns]")
        label = np.asarray(ds["label"].values).astype(np.int64)
        tile = np.asarray(ds["tile"].values).astype(str)
        src = np.asarray(ds["source_file"].values).astype(str)
        if np.any((label < 0) | (label >= len(TS2C_CLASSES))):
            bad = int(np.flatnonzero((label < 0) | (label >= len(TS2C_CLASSES)))[0])
            raise ValueError(f"sample {bad}: label {label[bad]} outside 0..{len(TS2C_CLASSES) - 1}")
        counters: dict[tuple[str, int], int] = {}
        used: set[str] = set()
        for t in dict.fromkeys(tile.tolist()):
            idx = np.flatnonzero(tile == t)
            valid = ~np.isnat(date[idx[0]])
            n_t = int(valid.sum())
            if not valid[:n_t].all():
                raise ValueError(f"sample {idx[0]} (tile {t}): missing dates must be padding at the end of the "
                                 "time axis")
            dates = date[idx[0], :n_t]
            same = (date[idx][:, :n_t] == dates).all(axis=1) & np.isnat(date[idx][:, n_t:]).all(axis=1)
            if not same.all():
                bad = int(idx[np.flatnonzero(~same)[0]])
                raise ValueError(f"sample {bad} (tile {t}): dates differ from the tile's other samples; "
                                 "a TimeSen2Crop tile has one date list")
            tdir = tmp / t
            tdir.mkdir(parents=True, exist_ok=True)
            days = [str(d)[:10].replace("-", "") for d in dates.astype("datetime64[D]")]
            (tdir / "dates.csv").write_text("acquisition_date\n" + "\n".join(days) + "\n")
            for i in idx:
                c = int(label[i])
                parts = src[i].split("/")
                name = parts[-1] if (len(parts) == 3 and parts[0] == t and parts[1] == str(c)
                                     and parts[2].endswith(".csv")) else None
                rel = f"{t}/{c}/{name}" if name else None
                if rel is None or rel in used:
                    while True:
                        k = counters.get((t, c), 0)
                        counters[(t, c)] = k + 1
                        rel = f"{t}/{c}/{k}.csv"
                        if rel not in used:
                            break
                used.add(rel)
                rows = np.column_stack([refl[i, :n_t].astype(np.int64), flag[i, :n_t].astype(np.int64)])
                if np.any(flag[i, :n_t] == FLAG_NODATA):
                    raise ValueError(f"sample {i} (tile {t}): flag 255 inside the acquisitions; "
                                     "the CSV format has no such flag")
                body = "\n".join(",".join(map(str, r)) for r in rows.tolist())
                out = tmp / rel
                out.parent.mkdir(exist_ok=True)
                out.write_text(HEADER + "\n" + body + "\n")
    return final


# ----------------------------------------------------------------------------------------------------
# Zarr store layout: per-sample arrays plus per-tile tables; `date`, `tile` and `label_name` are rebuilt
# lazily on open by indexing the small tables (no per-sample date decoding, no per-sample strings).
# ----------------------------------------------------------------------------------------------------
_CLASS_ARR = np.array(TS2C_CLASSES + [""])  # index -1 (a skipped slot) -> ""


def _lookup(idx: np.ndarray, table: np.ndarray, fill: Any) -> np.ndarray:
    out = table[np.clip(idx, 0, len(table) - 1)]
    if (idx < 0).any():
        out[idx < 0] = fill
    return out


def _open_store(p: Path, tiles: Iterable[str] | None) -> xr.Dataset:
    import dask.array as da

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*consolidated.*", category=RuntimeWarning)
        z = xr.open_zarr(p)
    if not z.attrs.get(_COMPLETE_ATTR, False):
        raise ValueError(f"{p}: Zarr store is not marked complete (an interrupted to_zarr?); rerun to_zarr")
    missing = [v for v in ("reflectance", "flag", "label", "tile_index", "tile_dates", "tile_names", "source_file")
               if v not in z.variables]
    if missing:
        raise ValueError(f"{p}: not a TimeSen2Crop store written by eokit (missing {missing})")
    names = z["tile_names"].values.astype(str)
    dates = z["tile_dates"].values.astype("datetime64[ns]")
    n_time = dates.shape[1]
    if z.attrs.get("skipped"):  # slots of skipped files hold label -1
        z = z.isel(sample=np.flatnonzero(z["label"].values >= 0))
    if tiles is not None:
        tiles = list(tiles)
        bad = [t for t in tiles if t not in names]
        if bad:
            raise FileNotFoundError(f"{p}: tile(s) {bad} not in the store; available: {sorted(names)}")
        want = np.flatnonzero(np.isin(names, tiles))
        z = z.isel(sample=np.flatnonzero(np.isin(z["tile_index"].values, want)))
    idx = z["tile_index"].data
    if not isinstance(idx, da.Array):
        idx = da.from_array(idx, chunks=-1)
    nat = np.datetime64("NaT", "ns")
    date = idx.map_blocks(lambda i: _lookup(i, dates, nat), dtype="datetime64[ns]", new_axis=1,
                          chunks=(idx.chunks[0], (n_time,)))
    tile = idx.map_blocks(lambda i: _lookup(i, names, ""), dtype=names.dtype)
    lab = z["label"].data
    label_name = lab.map_blocks(lambda v: _CLASS_ARR[np.where(v < 0, -1, v)], dtype=_CLASS_ARR.dtype)
    ds = z.drop_vars(["tile_index", "tile_dates", "tile_names"]).assign(
        date=(("sample", "time"), date), tile=(("sample",), tile), label_name=(("sample",), label_name))
    ds = ds[["reflectance", "flag", "date", "label", "label_name", "tile", "source_file"]]
    ds.attrs = {k: v for k, v in z.attrs.items()}
    return ds


def _store_vars(ds: xr.Dataset, tile_names: list[str], width: int) -> xr.Dataset:
    """Time-series Dataset -> the per-sample variables of the store (tile_index instead of date/tile strings)."""
    pos = {t: i for i, t in enumerate(tile_names)}
    tile = ds["tile"].values
    idx = np.array([pos.get(t, -1) for t in tile.tolist()], dtype=np.int16)
    out = ds[["reflectance", "flag", "label", "source_file"]].drop_vars("band")
    out["tile_index"] = ("sample", idx)
    out["source_file"] = out["source_file"].astype(f"<U{width}")
    return out


def _dataset_to_store(ds: xr.Dataset, store: str | Path, chunk: int = 20000) -> Path:
    """Write an in-memory time-series Dataset in the store layout (complete, consolidated); return the store."""
    tiles = list(dict.fromkeys(ds["tile"].values.astype(str).tolist()))
    scanned = []
    for t in tiles:
        i = int(np.flatnonzero(ds["tile"].values == t)[0])
        d = ds["date"].values[i]
        scanned.append(_Tile(t, d[~np.isnat(d)]))
    width = max(1, int(max((len(x) for x in ds["source_file"].values.astype(str)), default=1)))
    out = _store_vars(ds, tiles, width)
    n_time = ds.sizes["time"]
    tmpl = _template(0, n_time, scanned, width, chunk)
    out = out.assign(tile_dates=tmpl["tile_dates"], tile_names=tmpl["tile_names"])
    out = out.assign_coords(band=TS2C_BANDS)
    out.attrs = {"dataset": "TimeSen2Crop", _COMPLETE_ATTR: True, "skipped": []}
    return write_zarr_dataset(out, store, _encoding(out, chunk))


# ----------------------------------------------------------------------------------------------------
# Zarr conversion
# ----------------------------------------------------------------------------------------------------
def _encoding(ds: xr.Dataset, chunk: int) -> dict[str, dict[str, Any]]:
    fast = zarr_compressors()
    enc: dict[str, dict[str, Any]] = {}
    for v in ds.data_vars:
        if "sample" in ds[v].dims:
            enc[v] = {"chunks": (chunk,) + ds[v].shape[1:], "compressors": fast}
    enc["tile_dates"] = {"units": "days since 1970-01-01", "dtype": "int64"}
    return enc


def _template(n: int, n_time: int, scanned: list[_Tile], width: int, chunk: int) -> xr.Dataset:
    import dask.array as da

    def z(shape: tuple[int, ...], dtype: Any) -> Any:
        return da.zeros(shape, dtype=dtype, chunks=(chunk,) + shape[1:])

    tile_dates = np.full((len(scanned), n_time), np.datetime64("NaT", "ns"), dtype="datetime64[ns]")
    for i, t in enumerate(scanned):
        tile_dates[i, : t.dates.size] = t.dates
    return xr.Dataset(
        {
            "reflectance": (("sample", "time", "band"), z((n, n_time, len(TS2C_BANDS)), np.int16)),
            "flag": (("sample", "time"), z((n, n_time), np.uint8)),
            "label": (("sample",), z((n,), np.int64)),
            "tile_index": (("sample",), z((n,), np.int16)),
            "source_file": (("sample",), z((n,), f"<U{width}")),
            "tile_dates": (("tile", "time"), tile_dates),
            "tile_names": (("tile",), np.array([t.name for t in scanned])),
        },
        coords={"band": TS2C_BANDS},
    )


def _create_store(path: Path, n: int, n_time: int, scanned: list[_Tile], width: int, chunk: int,
                  attrs: dict[str, Any]) -> None:
    """Create the empty store (format `ZARR_FORMAT`): small tables through xarray (CF dates), per-sample arrays
    directly with zarr (the same metadata xarray writes, without its dask-graph overhead)."""
    import zarr

    tmpl = _template(0, n_time, scanned, width, chunk)
    small = tmpl[["tile_dates", "tile_names"]].assign_coords(band=TS2C_BANDS)
    small.attrs.update(attrs)
    write_zarr_dataset(small, path, {"tile_dates": _encoding(tmpl, chunk)["tile_dates"]})
    g = zarr.open_group(path, mode="r+", zarr_format=ZARR_FORMAT)
    for v in ("reflectance", "flag", "label", "tile_index", "source_file"):
        var = tmpl[v]
        shape = (n,) + var.shape[1:]
        # no fill value, as xarray writes: in format 2 xarray reads one as _FillValue (label 0 would become NaN);
        # every chunk is written by its task anyway
        g.create_array(v, shape=shape, chunks=(chunk,) + shape[1:], dtype=var.dtype, compressors=zarr_compressors(),
                       fill_value=None, attributes={"_ARRAY_DIMENSIONS": list(var.dims)})


def _chunk_arrays(src: _DirSource | _ZipSource, pieces: list[tuple[Any, ...]], n_time: int, tile_names: list[str],
                  width: int, on_error: OnError, skipped: list[str]) -> dict[str, np.ndarray]:
    """Parse one chunk's files into the store's per-sample arrays; slots of skipped files (at the end) hold
    label -1, tile_index -1 and flag 255."""
    n = sum(len(f) for _, _, f in pieces)
    out = {
        "reflectance": np.zeros((n, n_time, len(TS2C_BANDS)), np.int16),
        "flag": np.full((n, n_time), FLAG_NODATA, np.uint8),
        "label": np.full(n, -1, np.int64),
        "tile_index": np.full(n, -1, np.int16),
        "source_file": np.full(n, "", dtype=f"<U{width}"),
    }
    i = 0
    for name, dates, files in pieces:
        b = _tile_block(src, _Tile(name, dates, files), slice(None), n_time, on_error, skipped, lite=True)
        sl = slice(i, i + len(b["label"]))
        for v in ("reflectance", "flag", "label", "source_file"):
            out[v][sl] = b[v]
        out["tile_index"][sl] = tile_names.index(name)
        i = sl.stop
    return out


def _write_chunk(src: _DirSource | _ZipSource, partial: str, progress: str, k: int, start: int,
                 pieces: list[tuple[Any, ...]], n_time: int, tile_names: list[str], width: int,
                 on_error: OnError) -> list[str]:
    """Parse the files of sample chunk `k` and write them into its region of the partial store."""
    marker = Path(progress) / f"{k}.done"
    if marker.exists():
        return json.loads(marker.read_text())
    skipped: list[str] = []
    arrays = _chunk_arrays(src, pieces, n_time, tile_names, width, on_error, skipped)
    import zarr

    g = zarr.open_group(partial, mode="r+", zarr_format=ZARR_FORMAT, use_consolidated=False)
    for v, a in arrays.items():  # chunk-aligned region: no other task writes these chunks
        g[v][start:start + len(a)] = a
    write_json_atomic(skipped, marker)
    return skipped


class _Job:
    """Arguments of one chunk task, opaque to dask (so it does not walk the long file lists)."""

    __slots__ = ("args",)

    def __init__(self, *args: Any) -> None:
        self.args = args


def _run_job(job: _Job) -> list[str]:
    return _write_chunk(*job.args)


def to_zarr(root: str | Path, store: str | Path, chunks: int = 20000, overwrite: bool = False,
            tiles: Iterable[str] | None = None, workers: int | None = None,
            scheduler: Literal["processes", "threads", "sync", "synchronous"] | Any = "processes",
            on_error: OnError = "raise", progress: bool = True) -> Path:
    """Convert the CSV tree under `root` (or TimeSen2Crop.zip) to a chunked Zarr store in parallel; return it.

    Each dask task parses `chunks` consecutive samples and writes them into their own chunk-aligned region, so
    memory per worker is bounded by one chunk (about `chunks` x 2.5 kB of CSV text plus its arrays) whatever the
    tree's size. Work goes to ``<store>.partial`` with one marker per finished chunk in ``<store>.progress``;
    rerunning after an interruption redoes only the unfinished chunks (the file listing must be unchanged), and
    the store is renamed to `store` only when complete. Open the result with :func:`open`. `scheduler`: any
    value of :mod:`eokit._dask` (a name, a Client or an address; None: dask's default) or a dask get function;
    `workers`: the local pool's size.
    """
    import dask
    from dask.diagnostics import ProgressBar

    sched = check_scheduler(scheduler, allow_callable=True)
    store = check_target(store, overwrite)
    src = _source(root)
    skipped: list[str] = []
    scanned = _scan(src, tiles, on_error, skipped)
    if not scanned:
        raise ValueError(f"{src.base}: no readable tile to convert")
    n_time = max(t.dates.size for t in scanned)
    offsets = np.cumsum([0] + [len(t.files) for t in scanned])  # first sample of each tile
    n = int(offsets[-1])
    tile_names = [t.name for t in scanned]
    h = hashlib.sha1()
    width = 1
    for t in scanned:
        h.update(f"{t.name}:{t.dates.astype('int64').tolist()}:".encode())
        joined = "\n".join(r for _, r in t.files)
        width = max(width, max(map(len, joined.split("\n"))))
        h.update(joined.encode())
    manifest = f"v3-zarr{ZARR_FORMAT}:{h.hexdigest()}:{n}:{n_time}:{chunks}"

    partial = store.with_name(store.name + ".partial")
    prog = store.with_name(store.name + ".progress")
    resume = False
    if _is_zarr(partial) and prog.is_dir():
        try:
            resume = xr.open_zarr(partial, consolidated=False).attrs.get("eokit_manifest") == manifest
        except Exception:  # noqa: BLE001 - an unreadable partial store is simply rebuilt
            resume = False
    if not resume:
        for p in (partial, prog):
            if p.exists():
                shutil.rmtree(p)
        _create_store(partial, n, n_time, scanned, width, chunks,
                      {"dataset": "TimeSen2Crop", "source": str(src.base), "eokit_manifest": manifest})
        prog.mkdir()

    tasks = []
    for k, start in enumerate(range(0, n, chunks)):
        stop = min(start + chunks, n)
        pieces: list[tuple[Any, ...]] = []  # (tile, dates, files) for the tiles this chunk overlaps
        for ti in range(int(np.searchsorted(offsets, start, side="right")) - 1, len(scanned)):
            if offsets[ti] >= stop:
                break
            lo, hi = max(start, offsets[ti]) - offsets[ti], min(stop, offsets[ti + 1]) - offsets[ti]
            pieces.append((scanned[ti].name, scanned[ti].dates, scanned[ti].files[lo:hi]))
        job = _Job(src, str(partial), str(prog), k, start, pieces, n_time, tile_names, width, on_error)
        tasks.append(dask.delayed(_run_job, pure=False)(job))
    cfg: dict[str, Any] = {}
    if sched == "processes" and sys.platform.startswith("linux"):
        cfg["multiprocessing.context"] = "fork"  # no re-import per worker
    # a callable scheduler spares dask.compute the import of `distributed` (about 1 s) to look for a Client
    with compute_target(sched, workers, allow_callable=True) as get, dask.config.set(cfg):
        if progress:
            with ProgressBar():
                results = dask.compute(*tasks, scheduler=get, num_workers=workers)
        else:
            results = dask.compute(*tasks, scheduler=get, num_workers=workers)
    for r in results:
        skipped.extend(r)

    import zarr

    g = zarr.open_group(str(partial), mode="r+", zarr_format=ZARR_FORMAT, use_consolidated=False)
    g.attrs.update({_COMPLETE_ATTR: True, "skipped": skipped})
    zarr.consolidate_metadata(str(partial), zarr_format=ZARR_FORMAT)
    swap_in(partial, store)  # the resumable `.partial` store becomes `store` only now, complete
    shutil.rmtree(prog, ignore_errors=True)
    if skipped:
        warnings.warn(f"TimeSen2Crop: skipped {len(skipped)} item(s) (store attrs 'skipped'); "
                      f"first: {skipped[0]}", stacklevel=2)
    return store

"""TimeSen2Crop CSV grammar: the exact per-file parsers (sample CSVs, dates.csv) and the bulk fast path.

Bytes in, arrays out (no file access). The fast path (:func:`_fast_parse`) accepts a strict subset of the
grammar, proved by whole-buffer checks, and reads the same values as the exact parser (:func:`_parse_one`),
which names the file, line and column of any fault. Used by :mod:`eokit.datasets.timesen2crop`.
"""

from __future__ import annotations

import datetime
import re
import warnings
from collections.abc import Callable
from typing import Literal

import numpy as np

from eokit.schema import TS2C_CSV_COLUMNS

#: The header line every sample CSV starts with.
HEADER: str = ",".join(TS2C_CSV_COLUMNS)
_HEADER_B = HEADER.encode()
_NCOL = len(TS2C_CSV_COLUMNS)
_BOM = b"\xef\xbb\xbf"
_DATES_HEADER = "acquisition_date"
_DATES_HEADER_B = _DATES_HEADER.encode()
_EPOCH = datetime.date(1970, 1, 1)
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

OnError = Literal["raise", "skip"]


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
            raise ValueError(
                f"{path}, line {i}: date {s} {what} {prev} of line {i - 1} (expected dates "
                "strictly increasing, oldest first, no duplicates)"
            )
        prev = s
        out.append((day - _EPOCH).days)
    if not out:
        raise ValueError(f"{path}: no acquisition dates (expected one YYYYMMDD per line after the header)")
    return np.array(out, dtype="datetime64[D]").astype("datetime64[ns]")


def _range_msg(col: int) -> str:
    lo, hi = _LIMITS[col]
    what = "0 clear, 1 cloud, 2 shadow, 3 snow" if col == _NCOL - 1 else "int16 reflectance x 10000"
    return f"expected an integer in {lo}..{hi} ({what})"


def _bad_row(path: str, i: int, line: bytes) -> str:
    """Return the message for data line `i` that does not match the row grammar."""
    parts = line.split(b",")
    if len(parts) != _NCOL:
        return f"{path}, line {i}: expected {_NCOL} comma-separated fields ({HEADER}), got {len(parts)}: {_show(line)}"
    for col, v in zip(TS2C_CSV_COLUMNS, parts, strict=True):
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
            raise ValueError(
                f"{path}, line {i}: blank line between data rows (expected one row {HEADER} per acquisition)"
            )
        if not _ROW_RE.fullmatch(line):
            raise ValueError(_bad_row(path, i, line))
        vals = [int(v) for v in line.split(b",")]
        for col, (v, (lo, hi)) in enumerate(zip(vals, _LIMITS, strict=True)):
            if not lo <= v <= hi:  # Python ints: no overflow whatever the length
                raise ValueError(f"{path}, line {i}, column {TS2C_CSV_COLUMNS[col]}: {_range_msg(col)}, got {v}")
        rows.append(vals)
    if len(rows) != n_dates:
        raise ValueError(
            f"{path}: {len(rows)} data rows, but the tile's dates.csv lists {n_dates} acquisitions "
            "(expected one row per date)"
        )
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
    if not 1 <= sep[0] <= _FAST_MAX_FIELD or (
        step.size and not (step.min() >= 2 and step.max() <= _FAST_MAX_FIELD + 1)
    ):  # no empty field or blank line, no overflow
        return None
    if b"-" in buf:  # '-' only as the first character of a field and followed by a digit
        m = np.flatnonzero(a == ord("-"))
        if ((m > 0) & (a[np.maximum(m - 1, 0)] >= ord("-"))).any() or (a[m + 1] < ord("0")).any():
            return None
    del a, sep, step
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        try:
            vals = np.fromstring(buf.replace(b"\n", b","), dtype=np.int32, sep=",")
        except (DeprecationWarning, ValueError):
            return None
    if vals.size != rows * _NCOL:
        return None
    vals = vals.reshape(n, n_dates, _NCOL)
    if (vals.min(axis=(0, 1)) < _LO).any() or (vals.max(axis=(0, 1)) > _HI).any():
        return None
    return vals.astype(np.int16)


def _parse_many(
    datas: list[bytes], where: Callable[[int], str], n_dates: int, on_error: OnError, skipped: list[str]
) -> tuple[np.ndarray, np.ndarray]:
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

"""TimeSen2Crop CSV grammar: the exact per-file parsers (sample CSVs, dates.csv) and the bulk fast path.

Bytes in, arrays out (no file access). The fast path (:func:`_fast_parse`) accepts a strict subset of the
grammar, proved by whole-buffer checks, and reads the same values as the exact parser (:func:`_parse_one`),
which names the file, line and column of any fault. Used by :mod:`eokit.datasets.timesen2crop`.
"""

from __future__ import annotations

import datetime
import re
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

OnError = Literal["raise", "skip"]


def dates_text(dates: np.ndarray) -> str:
    """Return the text of a tile's dates.csv: the header, then one YYYYMMDD line per acquisition date."""
    days = np.asarray(dates).astype("datetime64[D]").astype(str)
    return _DATES_HEADER + "\n" + "".join(f"{d.replace('-', '')}\n" for d in days)


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


def _arrow_ints(buf: bytes, rows: int) -> np.ndarray | None:
    """Return the (rows, 10) int16 values of a buffer of data lines, parsed by pyarrow's CSV reader (one C++
    call, no quoting, no null values, int16 columns), or None when any field is not an int16 integer."""
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.csv as pc  # type: ignore[import-untyped]

    names = [f"c{i}" for i in range(_NCOL)]
    try:
        tab = pc.read_csv(
            pa.py_buffer(buf),
            read_options=pc.ReadOptions(column_names=names, use_threads=False, block_size=max(1 << 20, len(buf) + 1)),
            parse_options=pc.ParseOptions(quote_char=False, escape_char=False, ignore_empty_lines=False),
            convert_options=pc.ConvertOptions(
                column_types={c: pa.int16() for c in names},
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if tab.num_rows != rows or any(c.null_count for c in tab.columns):
        return None
    out = np.empty((rows, _NCOL), dtype=np.int16)
    for j, col in enumerate(tab.columns):
        out[:, j] = col.to_numpy()
    return out


def _fast_parse(datas: list[bytes], n_dates: int) -> np.ndarray | None:
    """Return the (n, n_dates, 10) int16 values of many sample CSVs parsed in bulk, or None when any file is
    outside the strict subset this path proves correct (then the exact per-file parser decides).

    The subset: each file is the header then `n_dates` lines of exactly 10 fields of digits and '-' (checked on
    the whole buffer), each field an int16 integer (pyarrow refuses an empty field, a lone or inner '-', an
    overflow), every value inside its column's range. It accepts nothing the exact parser refuses and yields
    the same values, so a file is never read differently on the two paths."""
    n = len(datas)
    hdr = _HEADER_B + b"\n"
    k = len(hdr)
    lines = n_dates + 1
    bodies = []
    for d in datas:  # per file only cheap C-level steps
        if not d.startswith(hdr) or d.count(b"\n") != lines or not d.endswith(b"\n"):
            d = _normalize(d)  # a BOM, CRLF, no final LF: made canonical, then checked again
            if not d.startswith(hdr) or d.count(b"\n") != lines:
                return None
        bodies.append(d[k:])
    buf = b"".join(bodies)
    del bodies
    rows = n * n_dates
    # with digits and '-' taken out, what is left must be 9 commas and a LF per line: no other byte, 10 fields
    if not buf or buf.translate(None, _FIELD_BYTES) != _ROW_SEPS * rows:
        return None
    vals = _arrow_ints(buf, rows)
    if vals is None:
        return None
    vals = vals.reshape(n, n_dates, _NCOL)
    flag = vals[..., -1]
    if flag.min() < _LO[-1] or flag.max() > _HI[-1]:
        return None
    return vals


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

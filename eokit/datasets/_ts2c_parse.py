"""TimeSen2Crop CSV grammar: the exact per-file parsers (sample CSVs, dates.csv) and the bulk fast path.

Bytes in, arrays out (no file access). The fast path (:func:`_fast_parse`) accepts a strict subset of the
grammar, checked and read in one compiled pass over the bytes of many files (numba), and reads the same values
as the exact parser (:func:`_parse_one`), which decides every file outside that subset and names the file, line
and column of any fault. Used by :mod:`eokit.datasets.timesen2crop`.
"""

from __future__ import annotations

import datetime
import re
import threading
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
_HEADER_ARR = np.frombuffer(_HEADER_B + b"\n", dtype=np.uint8).copy()  # writable: the kernel's signature
_INT_RE = re.compile(rb"-?[0-9]+")
_ROW_RE = re.compile(rb"-?[0-9]+(?:,-?[0-9]+){%d}" % (_NCOL - 1))

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


_KERNEL: Callable | None = None


def _kernel() -> Callable:
    """Return the compiled bulk scanner (numba; compiled on first use and cached on disk beside this module)."""
    global _KERNEL
    if _KERNEL is None:
        import numba

        # compiled here for the one signature it is called with (loaded from the cache after the first time), so
        # that a caller that forks workers after this call hands them the machine code: a lazy compile would run
        # in every worker (0.3 s and 100 MB of fresh memory each)
        t = numba.types
        u1, i8 = t.uint8[::1], t.int64[::1]
        sig = t.void(u1, i8, i8, u1, t.int64, i8, i8, t.int16[:, :, ::1], t.boolean[::1])
        _KERNEL = numba.njit(sig, cache=True, nogil=True, boundscheck=False)(_scan_files)
    return _KERNEL


def _scan_files(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    header: np.ndarray,
    n_dates: int,
    lo: np.ndarray,
    hi: np.ndarray,
    out: np.ndarray,
    ok: np.ndarray,
) -> None:
    """Fill out[f] with the values of file f (bytes buf[starts[f]:ends[f]]) and ok[f] with whether the file is
    exactly `header` then `n_dates` rows of `lo.size` fields `-?[0-9]+` (',' between, LF after each), every value
    in [lo, hi] of its column, and nothing else. One pass over the bytes; compiled by :func:`_kernel`."""
    ncol = lo.size
    hl = header.size
    for f in range(starts.size):
        p, e = starts[f], ends[f]
        good = e - p >= hl
        j = 0
        while good and j < hl:
            good = buf[p + j] == header[j]
            j += 1
        p += hl
        r = 0
        while good and p < e:
            if r == n_dates:  # more lines than dates
                good = False
                break
            for c in range(ncol):
                neg = p < e and buf[p] == 45  # '-'
                if neg:
                    p += 1
                v = 0
                n_dig = 0
                while p < e:
                    d = int(buf[p]) - 48
                    if d < 0 or d > 9:
                        break
                    v = min(v * 10 + d, 1 << 20)  # saturates: a value only grows with more digits
                    n_dig += 1
                    p += 1
                if neg:
                    v = -v
                sep = 44 if c < ncol - 1 else 10  # ',' or LF
                if n_dig == 0 or v < lo[c] or v > hi[c] or p >= e or buf[p] != sep:
                    good = False
                    break
                out[f, r, c] = v
                p += 1
            r += 1
        ok[f] = good and r == n_dates


def _fast_parse(datas: list[bytes], n_dates: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (values (n, n_dates, 10) int16, ok (n,) bool) of many sample CSVs scanned in bulk: ok where a file
    is in the strict subset this path proves correct, else its values are left to the exact per-file parser.

    The subset: the header then `n_dates` lines of exactly 10 integer fields (digits after an optional '-'),
    each inside its column's range (int16, the flag 0..3), after the variants that change no value are made
    canonical (a BOM, CRLF, no final LF, blank lines after the last row: :func:`_normalize`). It accepts nothing
    the exact parser refuses and yields the same values, so a file is never read differently on the two paths."""
    n = len(datas)
    out = np.zeros((n, n_dates, _NCOL), dtype=np.int16)
    ok = np.zeros(n, dtype=bool)
    if not n:
        return out, ok
    _scan_into(datas, n_dates, out, ok)
    redo = np.flatnonzero(~ok)
    if redo.size:  # a BOM, CRLF, ...: made canonical and scanned again
        part = np.zeros((redo.size, n_dates, _NCOL), dtype=np.int16)
        part_ok = np.zeros(redo.size, dtype=bool)
        _scan_into([_normalize(datas[i]) for i in redo], n_dates, part, part_ok)
        out[redo], ok[redo] = part, part_ok
    return out, ok


def _scan_into(datas: list[bytes], n_dates: int, out: np.ndarray, ok: np.ndarray) -> None:
    lens = np.fromiter(map(len, datas), dtype=np.int64, count=len(datas))
    ends = np.cumsum(lens)
    buf = _scratch(int(ends[-1]))
    view = memoryview(buf)  # type: ignore[arg-type]  # a uint8 array exposes the buffer protocol
    a = 0
    for d, b in zip(datas, ends.tolist(), strict=True):
        view[a:b] = d
        a = b
    _kernel()(buf, ends - lens, ends, _HEADER_ARR, n_dates, _LO, _HI, out, ok)


_LOCAL = threading.local()


def _scratch(size: int) -> np.ndarray:
    """Return a uint8 buffer of at least `size` bytes, kept per thread and reused from call to call (the files'
    bytes copied in, not joined into a new bytes object: fresh memory per batch cost 15,000 page faults, 0.25 s,
    per 60,000 files here)."""
    buf = getattr(_LOCAL, "buf", None)
    if buf is None or buf.size < size:
        buf = np.empty(max(size, 3 * (0 if buf is None else buf.size) // 2), dtype=np.uint8)
        _LOCAL.buf = buf
    return buf


def _parse_many(
    datas: list[bytes], where: Callable[[int], str], n_dates: int, on_error: OnError, skipped: list[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Parse the bytes of many sample CSVs (bulk fast path, else file by file); `where(i)` names file i."""
    out, fast = _fast_parse(datas, n_dates)
    kept = np.ones(len(datas), dtype=bool)
    for i in np.flatnonzero(~fast).tolist():  # only files outside the fast path's subset: the exact parser decides
        data = datas[i]
        try:
            out[i] = _parse_one(where(i), data, n_dates)
        except ValueError as e:
            if on_error != "skip":
                raise
            skipped.append(str(e))
            kept[i] = False
    return out, kept

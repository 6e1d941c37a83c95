"""Raster files: open and check them, read them lazily window by window; every error names the file's full path.

* :func:`check_extent` refuses a TIFF (classic or BigTIFF, either byte order, strips or tiles; parsed by
  ``tifffile``) or JPEG 2000 file whose header points past the end of the file, so a truncated download is
  refused when it is opened, not when some block of it is read.
* :func:`raster_info` runs that check and returns what rasterio says of the file; :func:`lazy_read` returns a
  dask array reading it window by window, a read error naming the file, the bands, rows and columns.
* :func:`open_raster`, :func:`read_band` and :func:`open_rasterio` open a file with the GDAL driver
  :func:`driver_for` picks: GTiff for ``.tif``, not GDAL's SNAP_TIFF driver (GDAL >= 3.10), which drops the map
  geocoding of the GeoTIFFs SNAP writes.
* :func:`tiff_text_tag` returns an ASCII tag of a TIFF's first directory (SNAP's DIMAP header, tag 65000).
"""

from __future__ import annotations

import logging
import struct
import threading
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, cast

import dask.array as da
import numpy as np
import rasterio
import tifffile
import xarray as xr
from dask.base import tokenize
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.windows import Window

__all__ = [
    "Raster",
    "RasterInfo",
    "check_extent",
    "driver_for",
    "gdal_detail",
    "lazy_read",
    "open_raster",
    "open_rasterio",
    "raster_info",
    "read_band",
    "tiff_text_tag",
]

#: GDAL driver forced per suffix (other suffixes, e.g. ENVI .img or .jp2: whichever driver GDAL finds)
_DRIVERS = {".tif": "GTiff", ".tiff": "GTiff"}


def driver_for(path: str | Path) -> str | None:
    """Return the GDAL driver to open `path` with (GTiff for .tif/.tiff), None to let GDAL choose."""
    return _DRIVERS.get(Path(path).suffix.lower())


def _driver_kw(path: str | Path, driver: str | None = None) -> dict[str, Any]:
    driver = driver or driver_for(path)
    return {"driver": driver} if driver else {}


def open_raster(path: str | Path, driver: str | None = None) -> Any:
    """Return `path` opened for reading by rasterio with the driver of :func:`driver_for` (rasterio's errors)."""
    return rasterio.open(path, **_driver_kw(path, driver))


def gdal_detail(exc: BaseException) -> str:
    """Return rasterio's message plus the GDAL error it chains ("See previous exception")."""
    cause = exc.__cause__ or exc.__context__
    return f"{exc}: {cause}" if cause is not None and str(cause) not in str(exc) else str(exc)


def read_band(
    path: str | Path, what: str, index: int = 1, driver: str | None = None, georeferenced: bool = True
) -> tuple[np.ndarray, Any, Any]:
    """Return (band `index` of `path`, its transform, its CRS); ValueError naming the full path if unreadable."""
    try:
        with warnings.catch_warnings():
            if not georeferenced:  # e.g. a tie-point grid: no geocoding of its own
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with open_raster(path, driver) as src:
                return src.read(index), src.transform, src.crs
    except (RasterioError, OSError) as exc:
        raise ValueError(f"{Path(path).absolute()}: cannot be read as {what} ({gdal_detail(exc)})") from exc


def open_rasterio(
    path: str | Path, what: str, hint: str = "", georeferenced: bool = True, **kwargs: Any
) -> xr.DataArray:
    """Return ``rioxarray.open_rasterio(path, **kwargs)`` (driver of :func:`driver_for`); ValueError naming the path."""
    import rioxarray

    try:
        with warnings.catch_warnings():
            if not georeferenced:  # geolocated by tie points/GCPs, or refused by the caller without them
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
            # one raster file, no subdatasets: a DataArray (rioxarray's annotation covers lists of Datasets too)
            return cast(xr.DataArray, rioxarray.open_rasterio(path, **_driver_kw(path), **kwargs))
    except (RasterioError, OSError) as exc:
        raise ValueError(
            f"{Path(path).absolute()}: cannot be read as {what} ({gdal_detail(exc)})" + (f"; {hint}" if hint else "")
        ) from exc


# --- lazy window reads -----------------------------------------------------------------------------------

_HANDLES = threading.local()
_MAX_HANDLES = 32  # open datasets kept per thread


def _handle(key: tuple) -> Any:
    cache = getattr(_HANDLES, "files", None)
    if cache is None:
        cache = _HANDLES.files = OrderedDict()
    src = cache.pop(key, None)
    if src is None or src.closed:
        src = open_raster(key[0])
    cache[key] = src
    while len(cache) > _MAX_HANDLES:
        cache.popitem(last=False)[1].close()
    return src


def _drop_handle(key: tuple) -> None:
    src = getattr(_HANDLES, "files", {}).pop(key, None)
    if src is not None:
        src.close()


class Raster:
    """Array-like (band, y, x) view of a raster file for dask: indexing reads the covering window."""

    def __init__(self, path: Path, count: int, height: int, width: int, dtype: Any):
        st = Path(path).stat()
        self.key = (str(Path(path).absolute()), st.st_mtime_ns, st.st_size)  # a rewritten file is a new file
        self.shape = (int(count), int(height), int(width))
        self.dtype = np.dtype(dtype)
        self.ndim = 3

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if any(k is Ellipsis for k in key):
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (3 - len(key) + 1) + key[i + 1 :]
        key = key + (slice(None),) * (3 - len(key))
        idx = [np.arange(n)[k] for n, k in zip(self.shape, key, strict=True)]
        if any(np.size(i) == 0 for i in idx):
            return np.empty(tuple(np.size(i) for i in idx if np.ndim(i)), self.dtype)
        lo = [int(np.min(i)) for i in idx]
        hi = [int(np.max(i)) + 1 for i in idx]
        try:
            block = _handle(self.key).read(
                indexes=list(range(lo[0] + 1, hi[0] + 1)),
                out_dtype=self.dtype,
                window=Window(lo[2], lo[1], hi[2] - lo[2], hi[1] - lo[1]),
            )
        except (RasterioError, OSError) as exc:
            _drop_handle(self.key)
            raise ValueError(
                f"{self.key[0]}: reading bands {lo[0] + 1}-{hi[0]}, rows {lo[1]}-{hi[1] - 1}, "
                f"columns {lo[2]}-{hi[2] - 1} failed ({gdal_detail(exc)}); the file is truncated or "
                "corrupt"
            ) from exc
        for ax in (2, 1, 0):  # outer indexing, last axis first so earlier axis numbers stay valid
            i = idx[ax] - lo[ax]
            if np.ndim(i) == 0:
                block = np.take(block, int(i), axis=ax)
            elif not (i.size == block.shape[ax] and (i == np.arange(i.size)).all()):
                block = np.take(block, i, axis=ax)
        return block


class RasterInfo(NamedTuple):
    """What rasterio says of a raster file (its header checked first)."""

    count: int  # type: ignore[assignment]  # the field shadows tuple.count, as rasterio names it
    height: int
    width: int
    dtype: Any
    nodata: float | None
    crs: Any
    transform: Any
    tags: dict[str, str]
    descriptions: list[str | None]


def lazy_read(path: Path, ch: dict[str, int], profile: tuple | None = None) -> da.Array:
    """Return a dask array (band, y, x) reading `path` window by window; `profile` = (count, height, width, dtype)."""
    if profile is None:
        profile = raster_info(path)[:4]
    count, height, width, dtype = profile
    r = Raster(path, count, height, width, dtype)
    return da.from_array(
        r,
        chunks=(count, ch["y"], ch["x"]),
        lock=False,
        fancy=True,
        asarray=False,
        meta=np.empty((0, 0, 0), r.dtype),
        name="raster-" + tokenize(r.key, r.shape, str(r.dtype)),
    )


def raster_info(path: Path) -> RasterInfo:
    """Return the file's :class:`RasterInfo` after :func:`check_extent`; ValueError naming the full path."""
    path = Path(path).absolute()
    check_extent(path)
    try:
        with open_raster(path) as src:
            return RasterInfo(
                src.count,
                src.height,
                src.width,
                np.result_type(*src.dtypes),
                src.nodata,
                src.crs,
                src.transform,
                src.tags(),
                list(src.descriptions),
            )
    except RasterioError as exc:
        raise ValueError(
            f"{path}: not a readable raster ({gdal_detail(exc)}); the file is truncated or corrupt"
        ) from exc


# --- header checks: the file must hold every byte its header points to ------------------------------------

#: (offsets tag, byte counts tag, what) of strips and tiles
_DATA_TAGS = ((273, 279, "StripOffsets/StripByteCounts"), (324, 325, "TileOffsets/TileByteCounts"))
_OFFSET_TYPES = {3: "SHORT", 4: "LONG", 13: "IFD", 16: "LONG8", 18: "IFD8"}


def check_extent(path: str | Path) -> None:
    """Refuse (ValueError naming the path) a TIFF or JPEG 2000 file whose header points past the end of the file."""
    path = Path(path)
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(16)
        if head[4:8] == b"jP  " or head[:4] == b"\xff\x4f\xff\x51":
            _check_jp2(path, f, head, size)
    if head[:2] in (b"II", b"MM"):
        _check_tiff(path, size)


class _Problems(logging.Handler):
    """Collects what tifffile logs as errors in this thread (it logs, and goes on, where a directory is corrupt)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # a tag tifffile cannot parse is skipped (TIFF 6.0: readers skip unknown field types); the data tags
        # are checked below, so only errors about the directory chain and strip/tile counts matter here
        if record.thread == self.thread and not record.getMessage().startswith("<TiffTag.fromfile>"):
            self.messages.append(record.getMessage())


@contextmanager
def _tifffile_errors() -> Iterator[list[str]]:
    """Collect what tifffile logs as errors in this thread while the block runs."""
    log = logging.getLogger("tifffile")
    problems = _Problems()
    log.addHandler(problems)
    try:
        yield problems.messages
    finally:
        log.removeHandler(problems)


def _tiff_directories(path: Path) -> tuple[list[dict[int, Any]], list[str]]:
    """(per directory of the main chain: tag code -> tifffile tag, what tifffile logged as errors)."""
    with _tifffile_errors() as problems:
        try:
            with tifffile.TiffFile(path) as tif:
                n = len(tif.pages)  # index the directory chain first: iterating a circular chain never ends
                pages = [
                    {code: tags[code] for code in (273, 279, 324, 325) if code in tags}
                    for tags in (tif.pages[i].tags for i in range(n))  # type: ignore[union-attr]  # pages, not frames
                ]
                for page in pages:  # load the offsets and byte counts while the file is open
                    for tag in page.values():
                        _ = tag.value
        except (tifffile.TiffFileError, struct.error, ValueError, IndexError) as exc:
            raise ValueError(f"{path}: truncated or corrupt: not a readable TIFF ({exc})") from exc
    return pages, problems


def _check_tiff(path: Path, size: int) -> None:
    pages, problems = _tiff_directories(path)
    if problems:
        raise ValueError(
            f"{path}: truncated or corrupt TIFF directory structure ({problems[0]}); the file has {size} bytes"
        )
    if not pages:
        raise ValueError(f"{path}: truncated: the first TIFF directory lies past the end of the file ({size} bytes)")
    for n, tags in enumerate(pages, start=1):
        pair = next(((o, c, what) for o, c, what in _DATA_TAGS if o in tags or c in tags), None)
        if pair is None or pair[0] not in tags or pair[1] not in tags:
            raise ValueError(
                f"{path}: truncated or corrupt: TIFF directory {n} lacks StripOffsets/StripByteCounts "
                "or TileOffsets/TileByteCounts, or their values lie past the end of the file "
                f"({size} bytes)"
            )
        off_tag, cnt_tag, what = pair
        for tag in (tags[off_tag], tags[cnt_tag]):
            if tag.dtype not in _OFFSET_TYPES:
                raise ValueError(
                    f"{path}: TIFF offsets/byte counts stored as field type {int(tag.dtype)}; expected "
                    "SHORT, LONG or LONG8 (the file is corrupt)"
                )
        offs = np.atleast_1d(np.asarray(tags[off_tag].value, dtype=np.int64))
        cnts = np.atleast_1d(np.asarray(tags[cnt_tag].value, dtype=np.int64))
        if offs.size != cnts.size:
            raise ValueError(
                f"{path}: TIFF {what} have {offs.size} and {cnts.size} entries; expected equal counts (corrupt file)"
            )
        ends = offs + cnts
        end = int(ends[cnts > 0].max()) if (cnts > 0).any() else 0
        if end > size:
            raise ValueError(
                f"{path}: truncated: TIFF {what} of directory {n} point to image data up to byte "
                f"{end}, but the file has {size} bytes"
            )


def _check_jp2(path: Path, f: Any, head: bytes, size: int) -> None:
    if head[:4] == b"\xff\x4f\xff\x51":  # bare codestream (.j2k)
        spans = [(b"jp2c", 0, size)]
    else:
        spans, pos = [], 0
        while pos < size:
            f.seek(pos)
            hdr = f.read(8)
            if len(hdr) < 8:
                raise ValueError(f"{path}: truncated: JPEG 2000 box header at byte {pos} is cut off ({size} bytes)")
            length, box = struct.unpack(">I4s", hdr)
            if length == 1:
                xl = f.read(8)
                length = struct.unpack(">Q", xl)[0] if len(xl) == 8 else -1
            elif length == 0:
                length = size - pos
            if length < 8 or pos + length > size:
                raise ValueError(
                    f"{path}: truncated: JPEG 2000 box {box.decode('latin-1')!r} at byte {pos} declares "
                    f"{length} bytes, the file ends at byte {size}"
                )
            spans.append((box, pos, pos + length))
            pos += length
    for box, _, end in spans:
        if box == b"jp2c":
            f.seek(end - 2)
            if f.read(2) != b"\xff\xd9":
                raise ValueError(f"{path}: truncated: the JPEG 2000 codestream does not end with its EOC marker (FFD9)")


def tiff_text_tag(path: str | Path, tag: int) -> str | None:
    """Return the ASCII value (up to its first NUL) of `tag` in a TIFF's first directory; None when absent."""
    try:
        with _tifffile_errors(), tifffile.TiffFile(path) as tif:  # a tag tifffile cannot read counts as absent
            found = tif.pages[0].tags.get(tag) if len(tif.pages) else None  # type: ignore[union-attr]  # a page
            if found is None or found.dtype != 2:  # 2: ASCII
                return None
            value = found.value
    except (tifffile.TiffFileError, OSError, struct.error, ValueError, IndexError) as exc:
        raise ValueError(f"{Path(path).absolute()}: truncated or corrupt: not a readable TIFF ({exc})") from exc
    if isinstance(value, bytes):  # neither UTF-8 nor cp1252
        value = value.decode("utf-8", errors="replace")
    return str(value).split("\0", 1)[0]

"""Internal file helpers shared by the modules that write outputs: atomic writes, JSON, GeoPackage, Zarr."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, Literal


def _umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux), as os.umask is process-wide."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _file_mode() -> int:
    """Permission bits of a newly created file under the current umask (e.g. 0o644 for umask 022)."""
    return 0o666 & ~_umask()


def _dir_mode() -> int:
    """Permission bits of a newly created folder under the current umask (e.g. 0o755 for umask 022)."""
    return 0o777 & ~_umask()


# --- atomic output: the one way every eokit writer puts a file or folder in place ----------------------
def check_target(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """Return `path` as a Path; raise FileExistsError naming it if it exists and `overwrite` is False."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    return path


def _tmp_sibling(path: Path) -> Path:
    """A fresh hidden name beside `path` that keeps its suffixes (GDAL, Keras, matplotlib choose by them):
    ``.<stem>.tmp-<pid>-<random><suffixes>``, e.g. ``.model.tmp-123-1a2b3c4d.keras``."""
    suffixes = "".join(path.suffixes)
    base = path.name[: len(path.name) - len(suffixes)]
    return path.with_name(f".{base}.tmp-{os.getpid()}-{secrets.token_hex(4)}{suffixes}")


def _remove(path: Path) -> None:
    """Remove a file, link or folder if there is one."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


def swap_in(tmp: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Return `path` after renaming `tmp` onto it: os.replace for a file over a file; otherwise (a folder, or a
    file where a folder was) the old one is renamed aside first, the new one renamed in, then the old one removed."""
    tmp, path = Path(tmp), Path(path)
    if path.exists() and (tmp.is_dir() or path.is_dir()):
        old = _tmp_sibling(path)
        os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(old, path)  # put the old one back
            raise
        _remove(old)
    else:
        os.replace(tmp, path)
    return path


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike, overwrite: bool = False, *, kind: Literal["file", "dir"] = "file"
) -> Iterator[Path]:
    """Yield a temporary sibling of `path` to write into (a new empty folder for ``kind="dir"``, an unused file
    name for ``kind="file"``); when the block ends it is renamed onto `path`, or removed if the block raised.

    Refuses an existing `path` (FileExistsError naming it) unless `overwrite`; creates the parent folder; the
    output gets the usual umask-based mode (e.g. 0o644 files, 0o755 folders).
    """
    if kind not in ("file", "dir"):
        raise ValueError(f"atomic_output: kind must be 'file' or 'dir', got {kind!r}")
    path = check_target(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_sibling(path)
    if kind == "dir":
        tmp.mkdir()
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written to {tmp}, the temporary file of {path}")
        if kind == "file" and tmp.is_dir():
            raise ValueError(f"{tmp}, the temporary file of {path}, was made a folder; use kind='dir'")
        check_target(path, overwrite)  # another writer may have created it meanwhile
        os.chmod(tmp, _dir_mode() if kind == "dir" else _file_mode())
        swap_in(tmp, path)
    except BaseException:
        for p in tmp.parent.glob(f"{glob.escape(tmp.name)}*"):  # the temporary and its side files (-journal)
            _remove(p)
        raise


def write_json_atomic(
    obj: Any, path: str | os.PathLike, default: Callable[[Any], Any] | None = None, overwrite: bool = True
) -> Path:
    """Return `path` after writing `obj` as JSON to a temporary sibling and renaming it into place."""
    with atomic_output(path, overwrite) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=2, default=default)
    return Path(path)


# --- GeoPackage: one reproducible writer -----------------------------------------------------------------
#: Write time stamped into every GeoPackage eokit writes (GDAL would stamp the current time): same input, same bytes.
GPKG_DATE = "2018-09-01T00:00:00.000Z"


def write_gpkg(gdf: Any, path: str | os.PathLike, overwrite: bool = False, *, layer: str | None = None) -> Path:
    """Return `path` after writing `gdf` (a GeoDataFrame, or a mapping layer name -> GeoDataFrame, written in order)
    as a GeoPackage, atomically and reproducibly (GDAL's write time pinned to `GPKG_DATE`); `layer` defaults to
    the file's stem."""
    import pyogrio

    path = Path(path)
    layers = dict(gdf) if isinstance(gdf, Mapping) else {layer or path.stem: gdf}
    with atomic_output(path, overwrite) as tmp:
        old = pyogrio.get_gdal_config_option("OGR_CURRENT_DATE")
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_DATE})
        try:
            for name, frame in layers.items():
                frame.to_file(tmp, layer=name, driver="GPKG", engine="pyogrio")
        finally:
            pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": old})
    return path


# --- Zarr: the one place that decides how every eokit store is written --------------------------------
#: Zarr format of every store eokit writes. Format 2 because its specification defines both what eokit stores
#: hold: fixed-width unicode text (dtype ``<U``, numpy's UTF-32) and consolidated metadata (``.zmetadata``),
#: and every Zarr reader reads it (zarr-python 2 and 3, xarray, zarrs, zarr.js, GDAL, netCDF-C). In format 3
#: ``<U`` becomes zarr-python's ``fixed_length_utf32``, which has no specification yet
#: (UnstableSpecificationWarning), and consolidated metadata is not part of the format 3 specification either.
ZARR_FORMAT: Final = 2


def zarr_compressors() -> list[Any]:
    """Return the compressor list for eokit's per-sample arrays (Blosc lz4 + byte shuffle, fast to read)."""
    from numcodecs import Blosc

    return [Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)]


def zarr_text(ds: Any) -> Any:
    """Return `ds` with every text variable (coordinates too) as fixed-width unicode ``<U``, the text type of
    the Zarr format 2 specification; object arrays that hold anything but str are left to xarray."""
    import numpy as np

    out = ds.copy()
    for k, v in ds.variables.items():
        if v.dtype.kind not in ("O", "T"):
            continue
        vals = v.values
        if v.dtype.kind == "O" and not all(isinstance(x, str) for x in vals.ravel().tolist()):
            continue
        out[k] = (v.dims, np.array(vals.tolist(), dtype=str).reshape(vals.shape), v.attrs)
        out[k].encoding = {}
    return out


def write_zarr_dataset(ds: Any, path: str | os.PathLike, encoding: dict[str, Any] | None = None) -> Path:
    """Return `path` after writing `ds` there (mode "w") as a consolidated store in `ZARR_FORMAT`, text as ``<U``."""
    zarr_text(ds).to_zarr(path, mode="w", encoding=encoding or {}, zarr_format=ZARR_FORMAT, consolidated=True)
    return Path(path)

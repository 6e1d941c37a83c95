"""Internal file helpers shared by the modules that write small outputs."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def _file_mode() -> int:
    """Permission bits of a newly created file under the current umask (e.g. 0o644 for umask 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_json_atomic(obj: Any, path: str | os.PathLike, default: Callable[[Any], Any] | None = None) -> Path:
    """Return `path` after writing `obj` as JSON to a temporary sibling and renaming it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, default=default)
        os.chmod(tmp, _file_mode())  # mkstemp creates 0600; give the output the usual umask-based mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


# --- Zarr: the one place that decides how every eokit store is written --------------------------------
#: Zarr format of every store eokit writes. Format 2 because its specification defines both what eokit stores
#: hold: fixed-width unicode text (dtype ``<U``, numpy's UTF-32) and consolidated metadata (``.zmetadata``),
#: and every Zarr reader reads it (zarr-python 2 and 3, xarray, zarrs, zarr.js, GDAL, netCDF-C). In format 3
#: ``<U`` becomes zarr-python's ``fixed_length_utf32``, which has no specification yet
#: (UnstableSpecificationWarning), and consolidated metadata is not part of the format 3 specification either.
ZARR_FORMAT = 2


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

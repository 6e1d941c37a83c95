"""Intake catalogs of the kit (catalogs/*.yaml): open one by name, describe its datasets as a table.

The catalogs use Intake's v1 YAML syntax, which intake 2.0.x still opens. Rasters go through
intake-xarray's ``rasterio``/``zarr`` drivers, tables through ``csv``; vector files and the kit's own
readers through two small drivers defined here and named in the YAML by import path:

* ``eokit.catalog.GeoDataFrameSource`` (args ``path``, optional ``layer``): a GeoPackage/shapefile read with
  geopandas. ``read()`` and ``to_dask()`` both return the (small, in-memory) GeoDataFrame.
* ``eokit.catalog.EokitSource`` (args ``opener`` "module:function", ``path``, optional ``kwargs``): calls an
  eokit reader such as ``eokit.datasets.timesen2crop:open`` and returns its xarray object (lazy where the
  reader is lazy) from both ``read()`` and ``to_dask()``.
"""

from __future__ import annotations

import glob
import importlib
import os
import re
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
from intake.source.base import DataSource, Schema

from eokit.paths import CATALOG_DIR

# intake 2.0.9 warns "Shell command not executed" for every string parameter default (a bug in
# intake.catalog.utils.expand_defaults, which warns even when there is no shell() template).
warnings.filterwarnings("ignore", message="Shell command not executed due to getshell=False")

_COLUMNS = ["name", "description", "licence", "citation", "size", "url"]


def available() -> list[str]:
    """Return the names of the catalogs shipped in catalogs/ (file stems)."""
    return sorted({p.stem for p in CATALOG_DIR.glob("*.yaml")} | {p.stem for p in CATALOG_DIR.glob("*.yml")})


def catalog_path(name_or_path: str | os.PathLike = "sample") -> Path:
    """Return the YAML file of a catalog given its name in catalogs/ or a path."""
    p = Path(name_or_path).expanduser()
    if p.suffix.lower() in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise FileNotFoundError(f"catalog file {p} does not exist")
        return p
    for suffix in (".yaml", ".yml"):
        q = CATALOG_DIR / f"{name_or_path}{suffix}"
        if q.is_file():
            return q
    raise FileNotFoundError(
        f"no catalog named {str(name_or_path)!r}: expected {CATALOG_DIR / (str(name_or_path) + '.yaml')}; "
        f"available: {', '.join(available()) or 'none'}"
    )


def open_catalog(name_or_path: str | os.PathLike | Any = "sample") -> Any:
    """Return the Intake catalog named `name_or_path` in catalogs/ (e.g. "sample") or at that YAML path."""
    import intake

    if hasattr(name_or_path, "walk") or hasattr(name_or_path, "entries"):  # already a catalog
        return name_or_path
    return intake.open_catalog(str(catalog_path(name_or_path)))


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000.0
    return f"{n:.1f} TB"


def _local_size(args: dict[str, Any]) -> int | None:
    """Bytes of the local files an entry's expanded args point at (pattern fields as wildcards), or None."""
    for key in ("urlpath", "path"):
        value = args.get(key)
        if not isinstance(value, str) or "://" in value:
            continue
        pattern = re.sub(r"\{[^{}]*\}", "*", value)
        files = [Path(f) for f in glob.glob(pattern)]
        if not files:
            return None
        total = 0
        for f in files:
            if f.is_dir():
                total += sum(g.stat().st_size for g in f.rglob("*") if g.is_file())
            else:
                total += f.stat().st_size
        return total
    return None


def _entry_info(catalog: Any, name: str) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(description, metadata, expanded args) of one entry of a v1 or v2 catalog."""
    entries = getattr(catalog, "_entries", None)
    if entries is not None and name in entries:  # v1 YAML catalog
        entry = entries[name]
        desc = entry.describe()
        try:
            _, args = entry._create_open_args({})
        except Exception:  # noqa: BLE001 - a remote or parametrised entry: fall back to the raw args
            args = desc.get("args", {})
        return str(desc.get("description") or ""), dict(desc.get("metadata") or {}), dict(args)
    entry = catalog.entries[name]  # v2 ("Take2") catalog: ReaderDescription / DataDescription
    md = dict(getattr(entry, "metadata", {}) or {})
    kwargs = dict(getattr(entry, "kwargs", {}) or {})
    return str(md.get("description", "")), md, kwargs


def _names(catalog: Any) -> list[str]:
    names = list(catalog)
    if not names and hasattr(catalog, "entries"):
        names = list(catalog.entries)
    return names


def describe(catalog: Any = "sample") -> pd.DataFrame:
    """Return one row per catalog entry: name, description, licence, citation, size, url (a DataFrame)."""
    cat = open_catalog(catalog)
    rows = []
    for name in _names(cat):
        description, md, args = _entry_info(cat, name)
        urls = md.get("url") or md.get("urls") or md.get("doi") or ""
        if isinstance(urls, (list, tuple)):
            urls = " ".join(str(u) for u in urls)
        size = md.get("size")
        if size is None:
            nbytes = _local_size(args)
            size = _human(nbytes) if nbytes is not None else ""
        rows.append({
            "name": name,
            "description": " ".join(description.split()),
            "licence": str(md.get("licence") or md.get("license") or ""),
            "citation": " ".join(str(md.get("citation") or "").split()),
            "size": str(size),
            "url": str(urls),
        })
    return pd.DataFrame(rows, columns=_COLUMNS)


class GeoDataFrameSource(DataSource):
    """Intake v1 driver: a vector file (GeoPackage, shapefile, ...) read with geopandas into a GeoDataFrame."""

    name = "eokit_geodataframe"
    container = "dataframe"
    version = "0.1.0"
    partition_access = False

    def __init__(self, path: str, layer: str | None = None, metadata: dict | None = None, **kwargs: Any):
        super().__init__(metadata=metadata)
        self.path = path
        self.layer = layer
        self.kwargs = kwargs
        self._gdf = None

    def _load(self) -> Any:
        import geopandas as gpd

        if self._gdf is None:
            if not Path(self.path).exists():
                raise FileNotFoundError(f"vector file {self.path} does not exist")
            kw = dict(self.kwargs)
            if self.layer is not None:
                kw["layer"] = self.layer
            try:
                self._gdf = gpd.read_file(self.path, **kw)
            except (RuntimeError, ValueError) as e:  # pyogrio's DataSourceError / DataLayerError are RuntimeErrors
                layer = f", layer {self.layer!r}" if self.layer is not None else ""
                raise ValueError(f"vector file {self.path}{layer} cannot be read ({' '.join(str(e).split())}); "
                                 "expected a GeoPackage, shapefile or other vector file GDAL reads") from e
        return self._gdf

    def _get_schema(self) -> Schema:
        gdf = self._load()
        return Schema(datashape=None, dtype={k: str(v) for k, v in gdf.dtypes.items()}, shape=gdf.shape,
                      npartitions=1, extra_metadata={"crs": str(gdf.crs)})

    def read(self) -> Any:
        """Return the GeoDataFrame."""
        return self._load().copy()

    def to_dask(self) -> Any:
        """Return the GeoDataFrame (vector files of this kit are small: no dask collection is made)."""
        return self.read()

    def _close(self) -> None:
        self._gdf = None


class EokitSource(DataSource):
    """Intake v1 driver: open a path with an eokit reader given as "module:function" (e.g. slovenia.open)."""

    name = "eokit"
    container = "xarray"
    version = "0.1.0"
    partition_access = False

    def __init__(self, opener: str, path: str | None = None, kwargs: dict | None = None,
                 metadata: dict | None = None):
        super().__init__(metadata=metadata)
        if ":" not in opener:
            raise ValueError(f"opener must be 'module:function', e.g. 'eokit.datasets.slovenia:open', got {opener!r}")
        self.opener = opener
        self.path = path
        self.kwargs = dict(kwargs or {})

    def _function(self) -> Any:
        module, func = self.opener.split(":", 1)
        try:
            return getattr(importlib.import_module(module), func)
        except (ImportError, AttributeError) as e:
            raise ImportError(f"catalog opener {self.opener!r} cannot be imported: {e}") from e

    def _get_schema(self) -> Schema:
        return Schema(datashape=None, dtype=None, shape=None, npartitions=1, extra_metadata={})

    def read(self) -> Any:
        """Return what the opener returns for `path` (an xarray.Dataset for the kit's readers)."""
        f = self._function()
        return f(self.path, **self.kwargs) if self.path is not None else f(**self.kwargs)

    def to_dask(self) -> Any:
        """Return the same object as read() (the kit's readers are lazy where the data are large)."""
        return self.read()

"""Intake catalogs of the kit (catalogs/*.yaml): open one by name, describe its datasets as a table.

The catalogs use Intake's v1 YAML syntax, which intake 2.0.x still opens. Rasters go through
intake-xarray's ``rasterio``/``zarr`` drivers, tables through ``csv``; vector files and the kit's own
readers through two small drivers defined here and named in the YAML by import path:

* ``eokit.catalog.GeoDataFrameSource`` (args ``path``, optional ``layer``): a GeoPackage/shapefile read with
  geopandas. ``read()`` and ``to_dask()`` both return the (small, in-memory) GeoDataFrame.
* ``eokit.catalog.EokitSource`` (args ``reader`` "module:function" - ``opener`` is its old name - and either
  ``path`` or ``dataset``, a name of ``eokit.download.REGISTRY`` fetched with ``eokit.download.fetch``): calls an
  eokit reader such as ``eokit.datasets.timesen2crop:open`` on it; ``to_dask()`` returns the reader's object
  lazily, ``read()`` in memory. It is the one driver of both catalogs (``eokit.download.EokitSource`` is an
  alias kept for old catalogs).
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
        rows.append(
            {
                "name": name,
                "description": " ".join(description.split()),
                "licence": str(md.get("licence") or md.get("license") or ""),
                "citation": " ".join(str(md.get("citation") or "").split()),
                "size": str(size),
                "url": str(urls),
            }
        )
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
                raise ValueError(
                    f"vector file {self.path}{layer} cannot be read ({' '.join(str(e).split())}); "
                    "expected a GeoPackage, shapefile or other vector file GDAL reads"
                ) from e
        return self._gdf

    def _get_schema(self) -> Schema:
        gdf = self._load()
        return Schema(
            datashape=None,
            dtype={k: str(v) for k, v in gdf.dtypes.items()},
            shape=gdf.shape,
            npartitions=1,
            extra_metadata={"crs": str(gdf.crs)},
        )

    def read(self) -> Any:
        """Return the GeoDataFrame."""
        return self._load().copy()

    def to_dask(self) -> Any:
        """Return the GeoDataFrame (vector files of this kit are small: no dask collection is made)."""
        return self.read()

    def _close(self) -> None:
        self._gdf = None


def _resolve(spec: str) -> Any:
    """Return the function named by `spec` ("package.module:function"); ImportError naming it otherwise."""
    module, _, func = spec.partition(":")
    try:
        return getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as e:
        raise ImportError(f"reader {spec!r} cannot be imported ({e}); expected 'package.module:function'") from e


def _in_memory(obj: Any) -> Any:
    """A loaded copy of an xarray object, a copy of a table; the cached (lazy) object is left as it is."""
    import xarray as xr

    if isinstance(obj, (xr.Dataset, xr.DataArray, xr.DataTree)):
        return obj.compute()
    return obj.copy() if isinstance(obj, pd.DataFrame) else obj


class EokitSource(DataSource):
    """Intake v1 driver: open a local path, or a dataset fetched by eokit.download.fetch, with an eokit reader.

    Entry args: ``reader`` "module:function" (``opener`` is accepted as an alias); either ``path`` (the file or
    folder to open) or ``dataset`` (a name of ``eokit.download.REGISTRY``; ``path`` then names a copy outside the
    cache, ``unpack`` goes to fetch); optional ``subpath`` below it, ``container`` ("xarray" or "dataframe") and
    reader keyword arguments as ``reader_kwargs``, ``kwargs`` or any other arg. The reader runs once per source;
    ``to_dask()`` returns its object lazily (chunked if the reader gave numpy), ``read()`` an in-memory copy.
    """

    name = "eokit"
    container = "xarray"
    version = "0.1.0"
    partition_access = False

    def __init__(
        self,
        reader: str | None = None,
        path: str | None = None,
        kwargs: dict | None = None,
        metadata: dict | None = None,
        *,
        dataset: str | None = None,
        subpath: str = "",
        unpack: bool = True,
        container: str = "xarray",
        reader_kwargs: dict | None = None,
        opener: str | None = None,
        **extra: Any,
    ) -> None:
        if reader is not None and opener is not None and reader != opener:
            raise ValueError(
                f"reader {reader!r} and opener {opener!r} differ; expected one of them "
                "('opener' is the old name of 'reader')"
            )
        reader = reader if reader is not None else opener
        if not isinstance(reader, str) or ":" not in reader:
            raise ValueError(f"reader {reader!r}: expected 'module:function', e.g. 'eokit.datasets.slovenia:open'")
        if dataset is not None:
            from eokit import download

            download._spec(dataset)  # an unknown name is refused when the entry is made, not when it is read
        super().__init__(metadata=metadata)
        self.reader, self.path, self.dataset, self.subpath, self.unpack = reader, path, dataset, subpath, unpack
        self.kwargs = {**(kwargs or {}), **(reader_kwargs or {}), **extra}  # all go to the reader
        self.container = container
        self._obj: Any = None

    @property
    def opener(self) -> str:
        """Return the reader "module:function" (the old name of `reader`)."""
        return self.reader

    def _target(self) -> str | Path | None:
        if self.dataset is not None:
            from eokit import download

            root: str | Path | None = download.fetch(self.dataset, self.path or None, unpack=self.unpack)
        else:
            root = self.path
        return Path(root) / self.subpath if root is not None and self.subpath else root

    def _open(self) -> Any:
        if self._obj is None:
            f = _resolve(self.reader)
            target = self._target()
            self._obj = f(target, **self.kwargs) if target is not None else f(**self.kwargs)
        return self._obj

    def _get_schema(self) -> Schema:
        return Schema(datashape=None, dtype=None, shape=None, npartitions=1, extra_metadata={})

    def read(self) -> Any:
        """Return what the reader gives (xarray object or GeoDataFrame) in memory, as a new object each call."""
        return _in_memory(self._open())

    def to_dask(self) -> Any:
        """Return the reader's xarray object lazily (chunked if it came as numpy), or a dask DataFrame for tables."""
        obj = self._open()
        if hasattr(obj, "chunk"):
            return obj if getattr(obj, "chunks", None) else obj.chunk()
        import dask.dataframe as dd

        return dd.from_pandas(obj, npartitions=1)

    def _close(self) -> None:
        self._obj = None

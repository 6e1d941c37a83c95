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

import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import xarray as xr

from eokit._dask import check_scheduler, compute_target
from eokit._io import ZARR_FORMAT, atomic_output, check_target, write_json_atomic
from eokit.datasets._ts2c_parse import (  # noqa: F401 - private names re-exported for tests and benchmarks
    HEADER,
    OnError,
    _fast_parse,
    _kernel,
    _normalize,
    _parse_dates,
    _parse_many,
    _parse_one,
    dates_text,
)
from eokit.datasets._ts2c_store import (  # noqa: F401 - private names re-exported for tests and benchmarks
    _COMPLETE_ATTR,
    _chunk_plan,
    _create_store,
    _dataset_to_store,
    _finish_store,
    _manifest,
    _open_store,
    _prepare_partial,
)
from eokit.datasets._ts2c_tree import (  # noqa: F401 - private names re-exported for tests and benchmarks
    _DirSource,
    _fill_block,
    _is_zarr,
    _report_skipped,
    _scan,
    _source,
    _Tile,
    _tile_block,
    _to_dataset,
    _ZipSource,
)
from eokit.schema import FLAG_NODATA, TIMESERIES_SCHEMA, TS2C_BANDS, TS2C_CLASSES, check_schema

__all__ = ["open", "write", "to_zarr", "HEADER"]


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
    from eokit._progress import tqdm

    n_files = sum(len(t.files) for t in scanned)
    step = 20000
    with tqdm(total=n_files, unit="file", desc="TimeSen2Crop", disable=n_files <= 2 * step) as bar:
        for t in scanned:
            for i in range(0, len(t.files), step):
                parts.append(_tile_block(src, t, slice(i, i + step), n_time, on_error, skipped))
                bar.update(len(t.files[i : i + step]))
    ds = _to_dataset(parts, n_time)
    ds.attrs.update(dataset="TimeSen2Crop", source=str(src.base))
    _report_skipped(ds, skipped)
    return ds


def write(ds: xr.Dataset, root: str | os.PathLike[str], overwrite: bool = False) -> Path:
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
                raise ValueError(
                    f"sample {idx[0]} (tile {t}): missing dates must be padding at the end of the time axis"
                )
            dates = date[idx[0], :n_t]
            same = (date[idx][:, :n_t] == dates).all(axis=1) & np.isnat(date[idx][:, n_t:]).all(axis=1)
            if not same.all():
                bad = int(idx[np.flatnonzero(~same)[0]])
                raise ValueError(
                    f"sample {bad} (tile {t}): dates differ from the tile's other samples; "
                    "a TimeSen2Crop tile has one date list"
                )
            tdir = tmp / t
            tdir.mkdir(parents=True, exist_ok=True)
            (tdir / "dates.csv").write_text(dates_text(dates))
            for i in idx:
                c = int(label[i])
                parts = src[i].split("/")
                name = (
                    parts[-1]
                    if (len(parts) == 3 and parts[0] == t and parts[1] == str(c) and parts[2].endswith(".csv"))
                    else None
                )
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
                    raise ValueError(
                        f"sample {i} (tile {t}): flag 255 inside the acquisitions; the CSV format has no such flag"
                    )
                body = "\n".join(",".join(map(str, r)) for r in rows.tolist())
                out = tmp / rel
                out.parent.mkdir(exist_ok=True)
                out.write_text(HEADER + "\n" + body + "\n")
    return final


def _chunk_arrays(
    src: _DirSource | _ZipSource,
    pieces: list[tuple[Any, ...]],
    n_time: int,
    tile_names: list[str],
    width: int,
    on_error: OnError,
    skipped: list[str],
) -> dict[str, np.ndarray]:
    """Parse one chunk's files into the store's per-sample arrays; slots of skipped files (at the end) hold
    label -1, tile_index -1 and flag 255."""
    n = sum(len(f) for _, _, f in pieces)
    out: dict[str, np.ndarray] = {
        "reflectance": np.zeros((n, n_time, len(TS2C_BANDS)), np.int16),
        "flag": np.full((n, n_time), FLAG_NODATA, np.uint8),
        "label": np.full(n, -1, np.int64),
        "tile_index": np.full(n, -1, np.int16),
        "source_file": np.full(n, "", dtype=f"<U{width}"),
    }
    i = 0
    for name, dates, files in pieces:
        k = _fill_block(src, _Tile(name, dates, files), slice(None), out, i, on_error, skipped)
        out["tile_index"][i : i + k] = tile_names.index(name)
        i += k
    return out


def _write_chunk(
    src: _DirSource | _ZipSource,
    partial: str,
    progress: str,
    k: int,
    start: int,
    pieces: list[tuple[Any, ...]],
    n_time: int,
    tile_names: list[str],
    width: int,
    on_error: OnError,
) -> list[str]:
    """Parse the files of sample chunk `k` and write them into its region of the partial store."""
    marker = Path(progress) / f"{k}.done"
    if marker.exists():
        return json.loads(marker.read_text())
    skipped: list[str] = []
    arrays = _chunk_arrays(src, pieces, n_time, tile_names, width, on_error, skipped)
    import zarr

    g = zarr.open_group(partial, mode="r+", zarr_format=ZARR_FORMAT, use_consolidated=False)
    for v, a in arrays.items():  # chunk-aligned region: no other task writes these chunks
        arr = g[v]
        assert isinstance(arr, zarr.Array)  # created by _prepare_partial
        arr[start : start + len(a)] = a
    write_json_atomic(skipped, marker)
    return skipped


class _Job:
    """Arguments of one chunk task, opaque to dask (so it does not walk the long file lists)."""

    __slots__ = ("args",)

    def __init__(self, *args: Any) -> None:
        self.args = args


def _run_job(job: _Job) -> list[str]:
    return _write_chunk(*job.args)


def to_zarr(
    root: str | Path,
    store: str | Path,
    chunks: int = 20000,
    overwrite: bool = False,
    tiles: Iterable[str] | None = None,
    workers: int | None = None,
    scheduler: Literal["processes", "threads", "sync", "synchronous"] | Any = "processes",
    on_error: OnError = "raise",
    progress: bool = True,
) -> Path:
    """Convert the CSV tree under `root` (or TimeSen2Crop.zip) to a chunked Zarr store in parallel; return it.

    Each dask task parses `chunks` consecutive samples and writes them into their own chunk-aligned region, so
    memory per worker is bounded by one chunk (about `chunks` x 2.5 kB of CSV text plus its arrays) whatever the
    tree's size. Work goes to ``<store>.partial`` with one marker per finished chunk in ``<store>.progress``;
    rerunning after an interruption redoes only the unfinished chunks (the file listing must be unchanged), and
    the store is renamed to `store` only when complete. Open the result with :func:`open`. `scheduler`: any
    value of :mod:`eokit._dask` (a name, a Client or an address; None: dask's default) or a dask get function;
    `workers`: the local pool's size.
    """
    sched = check_scheduler(scheduler, allow_callable=True)
    store = check_target(store, overwrite)
    src = _source(root)
    skipped: list[str] = []
    scanned = _scan(src, tiles, on_error, skipped)
    if not scanned:
        raise ValueError(f"{src.base}: no readable tile to convert")
    n_time = max(t.dates.size for t in scanned)
    n = sum(len(t.files) for t in scanned)
    tile_names = [t.name for t in scanned]
    manifest, width = _manifest(scanned, n, n_time, chunks)
    partial = store.with_name(store.name + ".partial")
    prog = store.with_name(store.name + ".progress")
    _prepare_partial(partial, prog, manifest, n, n_time, scanned, width, chunks, str(src.base))
    _kernel()  # the bulk scanner compiled (or loaded from its cache) once here rather than in every forked worker

    jobs = [
        _Job(src, str(partial), str(prog), k, start, pieces, n_time, tile_names, width, on_error)
        for k, (start, pieces) in enumerate(_chunk_plan(scanned, chunks))
    ]
    for r in _run_jobs(jobs, sched, workers, progress):
        skipped.extend(r)
    _finish_store(partial, prog, store, skipped)
    return store


def _run_jobs(jobs: list[_Job], sched: Any, workers: int | None, progress: bool) -> tuple[list[str], ...]:
    """Run the chunk jobs as dask tasks on `sched`; return each job's skipped items."""
    import dask
    from dask.diagnostics import ProgressBar

    tasks = [dask.delayed(_run_job, pure=False)(job) for job in jobs]
    cfg: dict[str, Any] = {}
    if sched == "processes" and sys.platform.startswith("linux"):
        cfg["multiprocessing.context"] = "fork"  # no re-import per worker
    # a callable scheduler spares dask.compute the import of `distributed` (about 1 s) to look for a Client
    with compute_target(sched, workers, allow_callable=True) as get, dask.config.set(cfg):
        if progress:
            with ProgressBar():
                return dask.compute(*tasks, scheduler=get, num_workers=workers)
        return dask.compute(*tasks, scheduler=get, num_workers=workers)

"""What the benchmark scripts share: paths, the machine line, a peak-memory sampler, the crop training set, the
results table and the JSON record.

Not a benchmark: run_all.py and tests/test_benchmarks.py take `bench_*.py` only. A script imports it after putting
its own folder on `sys.path` (`sys.path.insert(0, str(Path(__file__).resolve().parent))`), which works whether the
script is run as `python benchmarks/bench_x.py` or loaded by path (run_all.py, the tests). Importing it is cheap:
psutil and eokit are imported where they are used.
"""

from __future__ import annotations

import gc
import os
import platform
import threading
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
#: Real data sets, read in place (never copied into the project); a benchmark skips a case when it is absent.
SHARED = ROOT.parent / "shared" / "data"
MACHINE = f"cpu {os.cpu_count()} cores ({platform.machine()})"
#: The runner's row keys, in table order.
COLUMNS = ("what", "baseline", "eokit", "ratio", "unit", "machine")


class PeakRSS:
    """Context manager: the peak resident memory while the block runs, sampled every `interval` seconds in a thread.

    `pid`: the process watched (default: this one). `tree`: that process and all its descendants summed (workers
    that start or exit during the block included);
    `pss`: the proportional set size instead of RSS (pages shared between processes split among them, so a tree's
    sum counts them once; slower to read). Garbage is collected before the starting value is taken. After the
    block, `start` and `peak` are bytes; `rise_mib` / `rise_gib` the peak above the start, `peak_mib` / `peak_gib`
    the peak itself.
    """

    def __init__(
        self, interval: float = 0.02, *, tree: bool = False, pss: bool = False, pid: int | None = None
    ) -> None:
        import psutil  # type: ignore[import-untyped]

        if not interval > 0:
            raise ValueError(f"PeakRSS interval: expected seconds > 0, got {interval!r}")
        self.interval, self.tree, self.pss = interval, tree, pss
        self._proc = psutil.Process(pid)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.start = self.peak = 0

    def sample(self) -> int:
        """Return the memory (bytes) of the watched process, or of its process tree, now (0 once it is gone)."""
        import psutil

        procs = [self._proc]
        if self.tree:
            try:
                procs += self._proc.children(recursive=True)
            except psutil.Error:
                pass
        total = 0
        for p in procs:
            try:
                if self.pss:
                    info = p.memory_full_info()
                    total += getattr(info, "pss", info.rss)
                else:
                    total += p.memory_info().rss
            except psutil.Error:  # a child that has just exited
                pass
        return total

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.sample())

    def __enter__(self) -> PeakRSS:
        gc.collect()
        self.start = self.peak = self.sample()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="PeakRSS", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak = max(self.peak, self.sample())

    @property
    def rise_mib(self) -> float:
        """Return the peak above the value at entry, in MiB."""
        return (self.peak - self.start) / 2**20

    @property
    def rise_gib(self) -> float:
        """Return the peak above the value at entry, in GiB."""
        return (self.peak - self.start) / 2**30

    @property
    def peak_mib(self) -> float:
        """Return the peak, in MiB."""
        return self.peak / 2**20

    @property
    def peak_gib(self) -> float:
        """Return the peak, in GiB."""
        return self.peak / 2**30


def crop_set(
    stack: Path, polygons: Any, column: str, n: int, mapping: str | None, name_column: str | None = None
) -> Any:
    """Return the loaded crop training set: `n` proportional samples (seed 0, erosion 1) of the cube at `stack`
    inside `polygons` (a GeoDataFrame or a file), labelled by `column` (mapped through `mapping` when given)."""
    from eokit import cube, sampling

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = cube.open(stack, chunks=256)
        ts = sampling.make_training_set(
            c,
            polygons,
            column,
            n,
            strategy="proportional",
            seed=0,
            erosion=1,
            mapping=mapping,
            progress=False,
            name_column=name_column,
        )
    return ts.load()


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def table(rows: list[dict]) -> str:
    """Return the rows as an aligned plain-text table of the runner's columns."""
    cells = [[_fmt(r.get(c, "")) for c in COLUMNS] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(COLUMNS)]
    line = "  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True))
    out = [line, "-" * len(line)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(out)


def report(rows: list[dict], name: str) -> Path:
    """Return the JSON file written: print the rows as a table, then write them atomically to
    `benchmarks/results_<name>.json`."""
    from eokit._io import write_json_atomic

    print(table(rows) if rows else "no benchmark rows")
    out = write_json_atomic(rows, HERE / f"results_{name}.json", default=float)
    print(f"wrote {out}")
    return out

"""Run every `benchmarks/bench_*.py`, print one table and write `benchmarks/results.json`.

Each benchmark module exposes `run(quick: bool = False) -> list[dict]` with rows holding
`what`, `baseline`, `eokit`, `ratio`, `unit`, `machine` (baseline and eokit measured side by side in the
same process; ratio > 1 means eokit is better). Usage: `python benchmarks/run_all.py [--quick] [names...]`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # benchmarks/_common, however this script is loaded
from _common import COLUMNS, table  # noqa: E402, F401 - COLUMNS re-exported: the runner's columns


def machine() -> str:
    """Return a short description of this machine (CPU count, platform, GPU if TensorFlow sees one)."""
    python = f"{platform.python_implementation()} {platform.python_version()}"
    return f"{platform.machine()} {os.cpu_count()} cores, {python}"


def discover(names: list[str] | None = None) -> list[Path]:
    """Return the benchmark scripts, all or those whose name contains one of `names`."""
    scripts = sorted(HERE.glob("bench_*.py"))
    if names:
        scripts = [s for s in scripts if any(n in s.stem for n in names)]
    return scripts


def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = mod
    spec.loader.exec_module(mod)
    return mod


def main(argv: list[str] | None = None) -> int:
    """Run the benchmarks, print the table, write the JSON; return the exit status."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help="only benchmarks whose file name contains one of these")
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run, not a measurement)")
    ap.add_argument("--output", default=str(HERE / "results.json"))
    args = ap.parse_args(argv)
    rows: list[dict] = []
    failures = []
    for script in discover(args.names):
        print(f"== {script.name}", flush=True)
        start = time.perf_counter()
        try:
            got = _load(script).run(quick=args.quick)
        except Exception:  # one broken benchmark must not hide the others' numbers
            failures.append(script.name)
            traceback.print_exc()
            continue
        for r in got:
            r.setdefault("machine", machine())
            r["benchmark"] = script.stem
        rows.extend(got)
        print(f"   {len(got)} row(s) in {time.perf_counter() - start:.0f} s", flush=True)
    print()
    print(table(rows) if rows else "no benchmark rows")
    record = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "quick": args.quick,
        "machine": machine(),
        "rows": rows,
        "failed": failures,
    }
    from eokit._io import write_json_atomic

    out = write_json_atomic(record, args.output, default=float)
    print(f"\nwritten {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())

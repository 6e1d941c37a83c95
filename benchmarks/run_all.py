"""Run every `benchmarks/bench_*.py`, print one table and write `benchmarks/results.json`.

Each benchmark module exposes `run(quick: bool = False) -> list[dict]` with rows holding
`what`, `baseline`, `eokit`, `ratio`, `unit`, `machine` (baseline and eokit measured side by side in the
same process; ratio > 1 means eokit is better). Usage: `python benchmarks/run_all.py [--quick] [names...]`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLUMNS = ("what", "baseline", "eokit", "ratio", "unit", "machine")


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


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def table(rows: list[dict]) -> str:
    """Return the rows as an aligned plain-text table."""
    cells = [[_fmt(r.get(c, "")) for c in COLUMNS] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(COLUMNS)]
    line = "  ".join(c.ljust(w) for c, w in zip(COLUMNS, widths, strict=True))
    out = [line, "-" * len(line)]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(out)


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
    out = Path(args.output)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, default=float))
    tmp.replace(out)
    print(f"\nwritten {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())

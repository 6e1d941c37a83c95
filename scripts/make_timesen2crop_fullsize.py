#!/usr/bin/env python
"""Write a synthetic TimeSen2Crop tree of the published size and shape (16 tiles, 1,212,224 sample CSVs).

    python scripts/make_timesen2crop_fullsize.py --out /data/ts2c --dry-run     # sizes and free space only
    python scripts/make_timesen2crop_fullsize.py --out /data/ts2c               # the full 1.2 M files
    python scripts/make_timesen2crop_fullsize.py --out /tmp/ts2c --scale 0.05   # the same shape, 5 % of it

Layout and CSV format are those of Zenodo record 4715631 (see FORMATS.md); tile names are the real ones, class
counts follow the published imbalance (eokit._synth_crops.FULL_CLASS_COUNTS). Same seed and scale -> the same
files. Prints the files written per second.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from eokit import synthetic  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, print the plan, write the tree unless --dry-run; return the exit status."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="folder to write TimeSen2Crop/ into")
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the published size, in (0, 1]")
    ap.add_argument("--seed", type=int, default=0, help="random seed")
    ap.add_argument("--workers", type=int, default=None, help="writer processes (default: all cores)")
    ap.add_argument("--overwrite", action="store_true", help="replace an existing TimeSen2Crop/ folder")
    ap.add_argument("--dry-run", action="store_true", help="print sizes and free space, write nothing")
    a = ap.parse_args(argv)
    if not 0 < a.scale <= 1:
        ap.error("--scale must be in (0, 1]")
    plan = synthetic.timesen2crop_fullsize_plan(a.scale, a.seed)
    probe = a.out if a.out.exists() else next(p for p in a.out.parents if p.exists())
    free = shutil.disk_usage(probe).free
    print(
        f"TimeSen2Crop at scale {a.scale}: {plan['files']:,} sample CSVs in {len(plan['tiles'])} tiles, "  # type: ignore[arg-type]
        f"{plan['text_bytes'] / 1e9:.2f} GB of text, about {plan['disk_bytes'] / 1e9:.2f} GB on disk "  # type: ignore[operator]
        f"({plan['inodes']:,} inodes); {free / 1e9:.1f} GB free at {probe}"
    )
    if a.dry_run:
        for tile, info in plan["tiles"].items():  # type: ignore[attr-defined]
            print(f"  {tile:>11}: {info['dates']:>3} dates, {info['samples']:>8,} samples")
        return 0
    t0 = time.perf_counter()
    base = synthetic.make_timesen2crop_fullsize(a.out, a.scale, a.seed, a.workers, a.overwrite)
    dt = time.perf_counter() - t0
    print(f"wrote {base} in {dt:.1f} s: {plan['files'] / dt:,.0f} files/s")  # type: ignore[operator]
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

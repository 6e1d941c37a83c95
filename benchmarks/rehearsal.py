"""Full-size rehearsal: TimeSen2Crop at its published size end to end, each step timed with peak RSS and disk.

    python benchmarks/rehearsal.py --workdir /tmp/rehearsal            # the whole run (1,212,224 samples)
    python benchmarks/rehearsal.py --workdir /tmp/r --scale 0.01       # a small tree of the same shape
    make rehearsal                                                      # the whole run, workdir ./rehearsal

Steps, each in its own child process so its peak memory is its own (RSS summed over the process and all its
children, e.g. the conversion's worker processes or the LocalCluster's workers, sampled every 0.2 s):
  tree   a synthetic TimeSen2Crop tree of the real size and shape (16 tiles, real class imbalance), seeded
  zarr   tree -> Zarr store (`eokit.datasets.timesen2crop.to_zarr`, resumable, 2 processes)
  train  one epoch of the LSTM 2x128 streaming from the store through `eokit.train.fit`, with the published
         leave-tile-out split (train 13 tiles, validate 33TWN, test 33UVP)
  score  the trained model on the test tile 33UVP (`eokit.evaluate.evaluate`)
  map    a 10,980 x 10,980 px x ~40 dates synthetic cube (generated chunk by chunk, never stored) mapped to a COG by
         `eokit.maps.predict` + `write_cog` on a 2-worker dask LocalCluster
Finished steps are skipped on a rerun (their record is kept in `<workdir>/rehearsal.json`); `--redo` reruns them.
The goal: every step finishes with peak RSS < 4 GiB. Figures go to benchmarks/results_rehearsal.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout, installed or not
sys.path.insert(0, str(ROOT / "benchmarks"))  # benchmarks/_common, gpu_check
from _common import PeakRSS  # noqa: E402

STEPS = ("tree", "zarr", "train", "score", "map")
GOAL_GIB = 4.0
TEST_TILE, VAL_TILE = "33UVP", "33TWN"
RESULTS = ROOT / "benchmarks" / "results_rehearsal.json"


def _du(path: Path) -> int:
    """Return the bytes allocated on disk under `path` (0 if it does not exist)."""
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_blocks * 512
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _run_child(step: str, args: argparse.Namespace) -> dict:
    """Run one step in a child process; return its record (wall s, peak RSS GiB, its own figures)."""
    out = Path(args.workdir) / f".{step}.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, __file__, "--child", step, *_forward(args)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    with PeakRSS(0.2, tree=True, pid=proc.pid) as mem:  # the child and every worker it starts
        rc = proc.wait()
    wall = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"rehearsal step {step!r} failed (exit status {rc}); its output is above")
    rec = json.loads(out.read_text())
    rec.update({"step": step, "wall_s": round(wall, 1), "peak_rss_gib": round(mem.peak_gib, 3)})
    rec["rss_goal_met"] = rec["peak_rss_gib"] < GOAL_GIB
    return rec


def _forward(args: argparse.Namespace) -> list[str]:
    """Return the command-line flags a child needs to redo `args`."""
    return [
        "--workdir",
        str(args.workdir),
        "--scale",
        str(args.scale),
        "--seed",
        str(args.seed),
        "--map-size",
        str(args.map_size),
        "--map-dates",
        str(args.map_dates),
        "--map-model",
        args.map_model,
        "--batch-size",
        str(args.batch_size),
        "--chunks",
        str(args.chunks),
    ]


def _paths(workdir: Path) -> dict[str, Path]:
    return {
        "tree": workdir / "TimeSen2Crop",
        "store": workdir / "timesen2crop.zarr",
        "model": workdir / "model",
        "map": workdir / "map" / "tile.tif",
    }


def step_tree(args: argparse.Namespace) -> dict:
    """Write the synthetic full-size tree; return its sample and file counts and disk use."""
    from eokit.synthetic import make_timesen2crop_fullsize

    p = _paths(Path(args.workdir))
    t = time.perf_counter()
    root = make_timesen2crop_fullsize(Path(args.workdir), scale=args.scale, seed=args.seed, overwrite=True)
    secs = time.perf_counter() - t
    n = sum(1 for _ in root.rglob("*.csv")) - sum(1 for _ in root.glob("*/dates.csv"))
    return {"samples": n, "files_per_s": round(n / secs), "disk_gib": round(_du(p["tree"]) / 2**30, 2)}


def step_zarr(args: argparse.Namespace) -> dict:
    """Convert the tree to a Zarr store with 2 processes (resumable); return samples/s and the store's size."""
    from eokit.datasets import timesen2crop

    p = _paths(Path(args.workdir))
    # the tree step has just written 4.6 GB: flushed first, so that this step times the conversion and not the
    # kernel's write-back of the tree (measured: 50.8 s without, 39.8 s with; a downloaded tree is long flushed)
    os.sync()
    t = time.perf_counter()
    timesen2crop.to_zarr(p["tree"], p["store"], chunks=args.chunks, workers=2, progress=True, overwrite=True)
    secs = time.perf_counter() - t
    ds = timesen2crop.open(p["store"])
    n = int(ds.sizes["sample"])
    return {"samples": n, "samples_per_s": round(n / secs), "disk_gib": round(_du(p["store"]) / 2**30, 2)}


def _split(ds: Any) -> Any:
    from eokit.splits import tile_split

    # classes missing from the 13 training tiles (only at tiny scales) leave validation and test: counted, not hidden
    return tile_split(ds, test_tiles=[TEST_TILE], val_tiles=[VAL_TILE], unseen="drop")


def step_train(args: argparse.Namespace) -> dict:
    """One epoch of the LSTM 2x128 from the store (leave-tile-out split); return samples/s and the split sizes.

    The model is notebook 02's: with the acquisitions' day of year (tiles have their own dates, 38-76 of them)."""
    from eokit import train
    from eokit.datasets import timesen2crop

    train.cpu_threads()  # as notebook 02 does for its LSTM (this step runs in its own process)
    p = _paths(Path(args.workdir))
    ds = timesen2crop.open(p["store"])
    split = _split(ds)
    tr, va, _ = split.select(ds)
    t = time.perf_counter()
    _, card, hist = train.fit(
        "lstm",
        tr,
        va,
        epochs=1,
        batch_size=args.batch_size,
        seed=args.seed,
        output=p["model"],
        name="lstm",
        overwrite=True,
        checkpoint=False,
        early_stopping=None,
        hparams={"units": [128, 128], "use_doy": True},
        split=split.describe(),
    )
    secs = time.perf_counter() - t
    n = int(tr.sizes["sample"])
    return {
        "train_samples": n,
        "val_samples": int(va.sizes["sample"]) if va is not None else 0,
        "samples_per_s": round(n / secs),
        "val_accuracy": hist.get("val_accuracy", [None])[-1],
        "dropped_unseen": split.params.get("dropped", {}),
    }


def step_score(args: argparse.Namespace) -> dict:
    """Score the trained LSTM on the test tile; return its OA, kappa, macro F1 and samples/s."""
    from eokit.card import load_model
    from eokit.datasets import timesen2crop
    from eokit.evaluate import evaluate

    p = _paths(Path(args.workdir))
    ds = timesen2crop.open(p["store"])
    _, _, te = _split(ds).select(ds)
    model, card = load_model(p["model"] / "lstm.keras")
    t = time.perf_counter()
    res = evaluate(model, card, te, batch_size=4096)
    secs = time.perf_counter() - t
    n = int(te.sizes["sample"])
    keys = ("overall_accuracy", "kappa", "macro_f1")
    return {"test_samples": n, "samples_per_s": round(n / secs), **{k: round(float(res[k]), 4) for k in keys}}


def _map_model(args: argparse.Namespace, folder: Path) -> Path:
    """Return the model that maps the tile: the rehearsal's LSTM 2x128, or a TempCNN of the same card (faster)."""
    trained = _paths(Path(args.workdir))["model"] / "lstm.keras"
    if args.map_model == "lstm" and trained.exists():
        return trained
    from gpu_check import BANDS

    from eokit import models
    from eokit.card import save_model

    net = models.build(args.map_model, n_bands=len(BANDS), n_timesteps=args.map_dates, n_classes=16)
    card = {
        "name": args.map_model,
        "kind": "timeseries",
        "classes": [f"class {k}" for k in range(16)],
        "class_ids": list(range(16)),
        "bands": BANDS,
        "n_timesteps": args.map_dates,
        "normalisation": {"mean": [2000.0] * len(BANDS), "std": [1500.0] * len(BANDS)},
        "flag_handling": "mask",
    }
    return save_model(net, card, folder / f"{args.map_model}.keras", overwrite=True)


def step_map(args: argparse.Namespace) -> dict:
    """Map the synthetic tile to COGs on a 2-worker LocalCluster; return px/s and the COG sizes."""
    from dask.distributed import Client, LocalCluster
    from gpu_check import lazy_cube

    from eokit import maps

    target = _paths(Path(args.workdir))["map"]
    target.parent.mkdir(parents=True, exist_ok=True)
    model = _map_model(args, target.parent)
    cube = lazy_cube(args.map_size, args.map_dates, chunk=args.map_chunk, seed=args.seed)
    with LocalCluster(n_workers=2, threads_per_worker=1, memory_limit="1.5GiB", processes=True) as cluster:
        with Client(cluster) as client:
            t = time.perf_counter()
            lazy = maps.predict(
                str(model), cube, chunks={"y": args.map_chunk, "x": args.map_chunk}, scheduler=client, compute=False
            )
            paths = maps.write_cog(lazy, target, overwrite=True, scheduler=client)
            secs = time.perf_counter() - t
    px = args.map_size**2
    return {
        "pixels": px,
        "dates": args.map_dates,
        "model": Path(model).stem,
        "pixels_per_s": round(px / secs),
        "cog_mib": {q.name: round(q.stat().st_size / 2**20, 1) for q in paths},
    }


def _table(records: list[dict]) -> str:
    lines = [f"{'step':<6} {'wall':>9} {'peak RSS':>9}  {'< 4 GiB':<7} figures", "-" * 100]
    for r in records:
        figs = {k: v for k, v in r.items() if k not in ("step", "wall_s", "peak_rss_gib", "rss_goal_met")}
        ok = "yes" if r["rss_goal_met"] else "NO"
        head = f"{r['step']:<6} {r['wall_s'] / 60:7.1f} m {r['peak_rss_gib']:7.2f} G  {ok:<7} "
        lines.append(head + ", ".join(f"{k} {v}" for k, v in figs.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the rehearsal's steps (or one, as a child); print the table; write the JSON record."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("rehearsal"))
    ap.add_argument("--scale", type=float, default=1.0, help="fraction of the published 1,212,224 samples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    ap.add_argument("--redo", action="store_true", help="rerun steps already recorded as finished")
    ap.add_argument("--map-size", type=int, default=10980, help="pixels per side of the mapped tile")
    ap.add_argument("--map-dates", type=int, default=40)
    ap.add_argument("--map-chunk", type=int, default=256, help="map chunk (pixels per side)")
    ap.add_argument("--map-model", default="lstm", help="lstm (the rehearsal's own) or another registered model")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--chunks", type=int, default=20000, help="samples per Zarr chunk")
    ap.add_argument("--output", type=Path, default=RESULTS)
    ap.add_argument("--child", choices=STEPS, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.child:
        rec = globals()[f"step_{args.child}"](args)
        (args.workdir / f".{args.child}.json").write_text(json.dumps(rec, default=str))
        return 0
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        ap.error(f"unknown steps {unknown}; expected some of {list(STEPS)}")
    log = args.workdir / "rehearsal.json"
    done: dict[str, dict] = json.loads(log.read_text())["steps"] if log.exists() else {}
    for step in [s for s in STEPS if s in steps]:
        if step in done and not args.redo:
            print(f"{step}: done before ({done[step]['wall_s']} s), kept; --redo reruns it", flush=True)
            continue
        print(f"== {step}", flush=True)
        done[step] = _run_child(step, args)
        free = shutil.disk_usage(args.workdir).free / 2**30
        done[step]["disk_free_gib"] = round(free, 1)
        log.write_text(json.dumps({"scale": args.scale, "seed": args.seed, "steps": done}, indent=1))
    records = [done[s] for s in STEPS if s in done]
    print(_table(records))
    from eokit._io import write_json_atomic

    machine = f"cpu {os.cpu_count()} cores"
    write_json_atomic({"machine": machine, "scale": args.scale, "steps": records}, args.output, overwrite=True)
    print(f"written {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The benchmark runner aggregates every bench_*.py into one table and one JSON (no timing asserted); each
benchmark runs its quick mode at a tiny size, in its own process, and returns well-formed rows."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted((ROOT / "benchmarks").glob("bench_*.py"))
ROW_KEYS = {"what", "baseline", "eokit", "ratio", "unit", "machine"}
#: Tiny runs that still take more than a few seconds (TensorFlow import and tracing, a dask cluster's start):
#: marked slow, not deselected; CPU seconds on 2 cores: maps ~9, training ~9, sampling ~6, augment ~6.
SLOW = {"bench_augment", "bench_maps", "bench_sampling", "bench_training"}
_DRIVER = """
import importlib.util, inspect, json, sys, time
path = sys.argv[1]
spec = importlib.util.spec_from_file_location("bench_under_test", path)
mod = importlib.util.module_from_spec(spec)
sys.modules["bench_under_test"] = mod
spec.loader.exec_module(mod)
if "tiny" not in inspect.signature(mod.run).parameters:
    sys.exit(f"{path}: run() takes no `tiny` parameter (the test size): add run(quick=False, tiny=False)")
start = time.perf_counter()
rows = mod.run(quick=True, tiny=True)
print(json.dumps({"rows": rows, "seconds": time.perf_counter() - start}, default=float))
"""


def _runner():
    spec = importlib.util.spec_from_file_location("run_all", ROOT / "benchmarks" / "run_all.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_every_benchmark_exposes_run() -> None:
    mod = _runner()
    scripts = mod.discover()
    for s in scripts:
        assert "def run(" in s.read_text(), f"{s.name} must expose run(quick=False) -> list[dict]"


def test_runner_table_and_json(tmp_path: Path, monkeypatch) -> None:
    mod = _runner()
    bench = tmp_path / "bench_toy.py"
    bench.write_text(
        "def run(quick=False):\n    return [{'what': 'toy', 'baseline': 2.0, 'eokit': 8.0, "
        "'ratio': 4.0, 'unit': 'items/s'}]\n"
    )
    broken = tmp_path / "bench_broken.py"
    broken.write_text("def run(quick=False):\n    raise RuntimeError('boom')\n")
    monkeypatch.setattr(mod, "HERE", tmp_path)
    out = tmp_path / "results.json"
    assert mod.main(["--quick", "--output", str(out)]) == 1  # the broken one is reported, the toy one kept
    record = json.loads(out.read_text())
    assert record["failed"] == ["bench_broken.py"]
    assert record["rows"][0]["ratio"] == 4.0 and record["rows"][0]["benchmark"] == "bench_toy"
    text = mod.table(record["rows"])
    assert text.splitlines()[0].split() == list(mod.COLUMNS)


def _check_rows(name: str, rows: object) -> None:
    assert isinstance(rows, list) and rows, f"{name}.run returned no rows: {rows!r}"
    for r in rows:
        assert isinstance(r, dict) and ROW_KEYS <= set(r), f"{name}: row lacks {ROW_KEYS - set(r)}: {r}"
        assert isinstance(r["what"], str) and r["what"] and isinstance(r["unit"], str) and r["unit"], r
        assert isinstance(r["machine"], str) and r["machine"], r
        memory = "MB" in r["unit"] or "MiB" in r["unit"]  # a peak above start may be 0 at a tiny size
        for key in ("baseline", "eokit", "ratio"):
            v = r[key]
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            ok = ok and (v >= 0 if memory else v > 0)
            assert ok, f"{name}: {key}={v!r} is not a finite {'non-negative' if memory else 'positive'} number: {r}"


@pytest.mark.parametrize(
    "script", [pytest.param(s, id=s.stem, marks=[pytest.mark.slow] if s.stem in SLOW else []) for s in BENCHMARKS]
)
def test_benchmark_runs_quick_at_tiny_size(script: Path) -> None:
    """Each benchmark's run(quick=True, tiny=True) returns rows with the runner's keys and finite numbers."""
    res = subprocess.run(
        [sys.executable, "-c", _DRIVER, str(script)], capture_output=True, text=True, cwd=ROOT, timeout=300, check=False
    )
    assert res.returncode == 0, f"{script.name} failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
    out = json.loads(res.stdout.strip().splitlines()[-1])
    _check_rows(script.stem, out["rows"])
    print(f"{script.name}: {len(out['rows'])} rows in {out['seconds']:.1f} s")


@pytest.mark.slow
def test_rehearsal_runs_every_step_at_a_tiny_scale(tmp_path: Path) -> None:
    """benchmarks/rehearsal.py: tree, Zarr, one epoch, scoring and a 2-worker map at 1/2000 of the published size."""
    out = tmp_path / "rehearsal.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "rehearsal.py"), "--workdir", str(tmp_path / "w")]
    cmd += ["--scale", "0.0005", "--map-size", "256", "--map-dates", "6", "--chunks", "500", "--output", str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)
    assert res.returncode == 0, f"rehearsal failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
    record = json.loads(out.read_text())
    steps = {r["step"]: r for r in record["steps"]}
    assert list(steps) == ["tree", "zarr", "train", "score", "map"]
    for r in steps.values():
        assert r["wall_s"] > 0 and r["peak_rss_gib"] > 0, r
    assert steps["tree"]["samples"] == steps["zarr"]["samples"]
    n_split = steps["train"]["train_samples"] + steps["train"]["val_samples"] + steps["score"]["test_samples"]
    assert n_split + sum(steps["train"]["dropped_unseen"].values()) == steps["zarr"]["samples"]
    assert steps["map"]["pixels"] == 256 * 256
    # a rerun keeps the finished steps (their record) and reruns nothing
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120, check=False)
    assert again.returncode == 0 and again.stdout.count("done before") == 5, again.stdout


def test_accuracy_merge_adds_runs_and_replaces_the_same_run(tmp_path: Path) -> None:
    """bench_accuracy --merge: seeds run in pieces end in one record; a rerun of one run replaces it."""
    spec = importlib.util.spec_from_file_location("bench_accuracy_t", ROOT / "benchmarks" / "bench_accuracy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    key = {"case": "polar", "protocol": "block_folds", "fold": 0, "split_seed": 0}
    old = [dict(key, model="rf", seed=0, oa=0.6), dict(key, model="cnn", seed=0, oa=0.5)]
    out = tmp_path / "acc.json"
    out.write_text(json.dumps({"records": old, "epochs": {"patch": 8}, "note": "seeds 0-2", "summary": []}))
    new = [dict(key, model="cnn", seed=0, oa=0.7), dict(key, model="cnn", seed=1, oa=0.65)]
    merged, kept = mod._merged(out, new)
    runs = sorted((r["model"], r["seed"], r["oa"]) for r in merged)
    assert runs == [("cnn", 0, 0.7), ("cnn", 1, 0.65), ("rf", 0, 0.6)]
    assert kept == {"epochs": {"patch": 8}, "note": "seeds 0-2"}  # the header says what the old runs were
    assert mod._merged(tmp_path / "absent.json", new) == (new, {})
    out.write_text("[1, 2]")
    with pytest.raises(SystemExit, match="is not a bench_accuracy record"):
        mod._merged(out, new)
    assert mod._args(["--seeds", "2", "--first-seed", "1"]).first_seed == 1
    with pytest.raises(SystemExit, match="unknown model 'tempcnn_noag'"):
        mod._check_models(["tempcnn_noag"])


def test_accuracy_pairs_time_series_models_split_by_split_and_cnns_with_plain_keras() -> None:
    """One split per seed (time series) is paired by split; a CNN meets the forest and plain Keras; a model run
    on fewer splits than the forest is compared on the splits both ran."""
    import pandas as pd

    spec = importlib.util.spec_from_file_location("bench_accuracy_p", ROOT / "benchmarks" / "bench_accuracy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    ts = [
        {"model": m, "case": "s", "protocol": "block", "fold": 0, "seed": k, "split_seed": k, "oa": oa, "macro_f1": oa}
        for k in range(4)
        for m, oa in (("rf", 0.9), ("tempcnn", 0.9 + 0.01 * (k - 1)))
    ] + [{"model": "lstm", "case": "s", "protocol": "block", "fold": 0, "seed": 0, "split_seed": 0, "oa": 1.0}]
    out = mod._paired(pd.DataFrame(ts), "s block", "tempcnn")
    assert out["s block tempcnn vs rf oa"]["paired_by"] == "split_seed"
    v = out["s block tempcnn vs rf oa"]
    assert (v["wins"], v["losses"], v["folds"]) == (2, 1, 4) and v["per_fold"] == [-0.01, 0.0, 0.01, 0.02]
    assert mod._paired(pd.DataFrame(ts), "s block", "lstm") == {}  # one split in common: nothing to pair
    both = ts + [dict(r, model="rf_interp", oa=0.95, macro_f1=0.95) for r in ts if r["model"] == "rf"]
    out = mod._paired(pd.DataFrame(both), "s block", "tempcnn")  # against either forest, never itself
    assert out["s block tempcnn vs rf_interp oa"]["losses"] == 4 and "s block tempcnn vs rf oa" in out
    assert set(mod._paired(pd.DataFrame(both), "s block", "rf_interp")) == {
        "s block rf_interp vs rf oa",
        "s block rf_interp vs rf macro_f1",
    }
    patch = [
        {
            "model": m,
            "case": "p",
            "protocol": "block_folds",
            "fold": f,
            "seed": 0,
            "split_seed": 0,
            "oa": oa,
            "macro_f1": oa,
        }
        for f in range(3)
        for m, oa in (("rf", 0.6), ("cnn_keras", 0.7), ("cnn", 0.65 + 0.1 * (f == 0)))
    ]
    out = mod._paired(pd.DataFrame(patch), "p", "cnn")
    assert out["p cnn vs rf oa"]["wins"] == 3 and out["p cnn vs cnn_keras oa"]["wins"] == 1
    assert out["p cnn vs cnn_keras oa"]["losses"] == 2 and out["p cnn vs cnn_keras oa"]["paired_by"] == "fold"


def test_accuracy_records_each_splits_groups_per_class() -> None:
    """bench_accuracy: every run records, per class, the fields in its train/val/test parts (splits.census)."""
    from eokit import splits

    spec = importlib.util.spec_from_file_location("bench_accuracy_g", ROOT / "benchmarks" / "bench_accuracy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    recs = mod.collect(["sample"], ["rf"], [0], {"timeseries": 1, "patch": 1}, 2, True, ["field"])
    ds = mod._sample(True)
    sp = splits.make_split(ds, "field", seed=0, block_size=250.0, unseen="drop")
    table = splits.census(ds, sp, by="field")
    assert len(recs) == 1 and recs[0]["groups"] == {
        str(k): [int(row.train_groups), int(row.val_groups), int(row.test_groups)] for k, row in table.iterrows()
    }
    assert all(g[0] >= 1 for g in recs[0]["groups"].values())  # every trained class has a field in training

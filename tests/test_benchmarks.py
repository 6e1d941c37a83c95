"""The benchmark runner aggregates every bench_*.py into one table and one JSON (no timing asserted)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
    bench.write_text("def run(quick=False):\n    return [{'what': 'toy', 'baseline': 2.0, 'eokit': 8.0, "
                     "'ratio': 4.0, 'unit': 'items/s'}]\n")
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

"""Multi-worker data-parallel training: two worker processes on localhost run eokit.train.fit under TF_CONFIG."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = r"""
import json, os, sys
sys.path.insert(0, {tests!r})
from generators.training_sets import timeseries_set
from eokit import train
ds = timeseries_set(n_per_class=6, n_classes=3, seed=3)
model, card, history = train.fit("lstm", ds, ds.isel(sample=slice(0, 20)), epochs=2, batch_size=16, seed=5,
                                 output={out!r}, hparams={{"units": [8]}}, progress=False)
print("RESULT " + json.dumps({{"history": history, "distribution": card["distribution"], "chief": train.is_chief()}}))
"""


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_two_workers_train_the_same_model(tmp_path: Path) -> None:
    ports = _free_ports(2)
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    out = tmp_path / "models"
    code = WORKER.format(tests=str(Path(__file__).parent), out=str(out))
    procs = []
    for i in range(2):
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
            TF_CPP_MIN_LOG_LEVEL="2",
            CUDA_VISIBLE_DEVICES="",
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
            )
        )
    results = []
    try:
        for p in procs:
            text, _ = p.communicate(timeout=360)
            assert p.returncode == 0, text[-3000:]
            line = [ln for ln in text.splitlines() if ln.startswith("RESULT ")]
            assert line, text[-3000:]
            results.append(json.loads(line[-1][len("RESULT ") :]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [r["chief"] for r in results] == [True, False]
    for r in results:
        assert r["distribution"]["replicas"] == 2 and r["distribution"]["workers"] == 2
        assert "MultiWorker" in r["distribution"]["strategy"] or "Collective" in r["distribution"]["strategy"]
        assert len(r["history"]["loss"]) == 2
    # both workers hold the same (all-reduced) weights: their validation losses agree
    assert results[0]["history"]["val_loss"] == pytest.approx(results[1]["history"]["val_loss"], rel=1e-4)
    assert (out / "lstm.keras").exists() and (out / "lstm.json").exists()
    card = json.loads((out / "lstm.json").read_text())
    assert card["distribution"]["workers"] == 2
    assert not list(out.glob(".*tmp*"))

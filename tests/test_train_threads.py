"""CPU thread pools: asked for before TensorFlow starts; the user's environment wins; bad values refused."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from badinput import refuses, warns_naming
from eokit.train import threads


def _run(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True, timeout=300, check=True
    )
    return out.stdout.strip().splitlines()[-1]


def test_pools_asked_for_before_tensorflow_starts_are_the_ones_it_uses():
    code = (
        "from eokit.train import cpu_threads, current_threads; print(cpu_threads(inter=3), end=' ');"
        "import tensorflow as tf; tf.constant(1.0) + 1; print(current_threads())"
    )
    assert _run(code) == "{'intra': 1, 'inter': 3} {'intra': 1, 'inter': 3}"


def test_the_users_environment_wins():
    code = "from eokit.train import cpu_threads; print(cpu_threads())"
    assert _run(code, TF_NUM_INTRAOP_THREADS="2", TF_NUM_INTEROP_THREADS="4") == "{'intra': 2, 'inter': 4}"


def test_once_tensorflow_runs_the_pools_stay_and_a_warning_says_so():
    code = (
        "import warnings; warnings.simplefilter('error');"
        "import tensorflow as tf; tf.constant(1.0) + 1;"
        "from eokit.train import cpu_threads\n"
        "try:\n    cpu_threads()\n"
        "except UserWarning as e:\n    print('warned:', 'before anything uses TensorFlow' in str(e))"
    )
    assert _run(code) == "warned: True"


@pytest.mark.parametrize("kw", [{"intra": 0}, {"inter": -1}, {"intra": 1.5}, {"intra": True}])
def test_bad_pool_sizes_are_refused(kw):
    with refuses(ValueError, "cpu_threads", next(iter(kw)), "positive integer"):
        threads.cpu_threads(**kw)


def test_a_bad_environment_value_is_named(monkeypatch):
    monkeypatch.setenv("TF_NUM_INTEROP_THREADS", "two")
    with refuses(ValueError, "TF_NUM_INTEROP_THREADS", "two", "positive integer"):
        threads.cpu_threads()


def test_the_warning_is_the_documented_one(monkeypatch):
    import tensorflow as tf

    tf.constant(1.0) + 1  # TensorFlow runs in the test process: the pools can no longer change
    now = threads.current_threads()
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    monkeypatch.delenv("TF_NUM_INTEROP_THREADS", raising=False)
    want = {"intra": now["intra"] % 7 + 1, "inter": now["inter"] % 7 + 1}
    with warns_naming(UserWarning, "already running", str(want)):
        threads.cpu_threads(**want)

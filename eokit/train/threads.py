"""TensorFlow's CPU thread pools: one thread per op and one op per core, the setting recurrent models train fastest in.

A recurrent step is many small ops (256 x 128 matrix products, gate arithmetic) that gain little from
splitting each op across cores; running independent ops side by side (the layers of a wavefront LSTM,
`eokit.models._wavefront_lstm`, and the two gradients of each product) gains more. For recurrent models only:
convolution and attention models lose with it (2 cores, batch 256, T=76: the wavefront LSTM 2 x 128 1,230 ->
1,510 samples/s, TempCNN 2,200 -> 1,350, the Transformer 550 -> 330). TensorFlow fixes its pools when it first
runs an op, so this must be asked for before anything in the process uses TensorFlow: notebook 02 does so for its
LSTM in its first cell. Measured in `benchmarks/bench_training.py`.
"""

from __future__ import annotations

import os
import sys
import warnings

_ENV = {"intra": "TF_NUM_INTRAOP_THREADS", "inter": "TF_NUM_INTEROP_THREADS"}


def _check(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"cpu_threads: {name} must be a positive integer (threads), got {value!r}")
    return value


def cpu_threads(intra: int = 1, inter: int | None = None) -> dict[str, int]:
    """Return {"intra", "inter"}: the thread pools TensorFlow will use (0 = its default, one per core) after asking
    for `intra` threads per op and `inter` ops at once (default: one per core).

    Values already set in TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS are kept (the user's choice wins).
    Once TensorFlow has run an op its pools cannot change: then a warning says so and the pools in effect are
    returned."""
    want = {
        "intra": _check("intra", intra),
        "inter": _check("inter", inter if inter is not None else os.cpu_count() or 1),
    }
    for k in _ENV:
        want[k] = _env_threads(k) or want[k]
    if "tensorflow" not in sys.modules:
        for k, var in _ENV.items():
            os.environ[var] = str(want[k])
        return want
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(want["intra"])
        tf.config.threading.set_inter_op_parallelism_threads(want["inter"])
    except RuntimeError:
        now = current_threads()
        if now != want:
            warnings.warn(
                f"cpu_threads: TensorFlow is already running in this process, its thread pools stay at {now} "
                f"(asked for {want}); call eokit.train.cpu_threads() before anything uses TensorFlow",
                stacklevel=2,
            )
        return now
    return want


def current_threads() -> dict[str, int]:
    """Return {"intra", "inter"}: TensorFlow's CPU thread pools in this process (0 = its default, one per core)."""
    import tensorflow as tf

    got = {
        "intra": int(tf.config.threading.get_intra_op_parallelism_threads()),
        "inter": int(tf.config.threading.get_inter_op_parallelism_threads()),
    }
    # pools set through the environment before TensorFlow started are not reported by tf.config
    return {k: v or _env_threads(k) for k, v in got.items()}


def _env_threads(k: str) -> int:
    """Return the pool size the environment sets for `k` ("intra"/"inter"), 0 where unset."""
    raw = os.environ.get(_ENV[k], "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{_ENV[k]}={raw!r}: expected a positive integer (threads)")
    return int(raw)

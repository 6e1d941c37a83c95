"""Augmentation throughput: eokit's batched TensorFlow augmenter vs a plain per-patch NumPy loop.

Both apply the same steps to (N, 32, 32, 3) SAR patches: random horizontal and vertical flip, a random
90-degree rotation, a random shift of up to 2 pixels with reflect padding, and Gamma speckle (4.4 looks) on
the two dB channels. The baseline is what one writes first: a Python loop over patches with numpy.random.
Unit: patches per second (higher is better); ratio = eokit / baseline.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/_common, however this script is loaded
from _common import MACHINE, report  # noqa: E402


def _numpy_loop(x: np.ndarray, rng: np.random.Generator, shift: int = 2, looks: float = 4.4) -> np.ndarray:
    out = np.empty_like(x)
    for i, p in enumerate(x):
        if rng.random() < 0.5:
            p = p[:, ::-1]
        if rng.random() < 0.5:
            p = p[::-1]
        p = np.rot90(p, int(rng.integers(4)), axes=(0, 1))
        dy, dx = rng.integers(-shift, shift + 1, size=2)
        padded = np.pad(p, ((shift, shift), (shift, shift), (0, 0)), mode="reflect")
        p = padded[shift + dy : shift + dy + x.shape[1], shift + dx : shift + dx + x.shape[2]].copy()
        n = rng.gamma(looks, 1 / looks, size=p.shape[:2] + (2,))
        p[..., :2] += 10 * np.log10(np.maximum(n, 1e-6))
        out[i] = p
    return out


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run(quick: bool = False, tiny: bool = False) -> list[dict]:
    """Return benchmark rows: patches/s of the per-patch NumPy loop and of eokit's augmenter (eager, tf.data).

    `tiny`: a few hundred patches, one repeat (a smoke test of the code path, not a measurement).
    """
    import tensorflow as tf

    from eokit.augment import make_augmenter

    n = 256 if tiny else 1024 if quick else 8192
    batch = 128 if tiny else 256
    repeat = 1 if tiny else 2 if quick else 3
    rng = np.random.default_rng(0)
    x = rng.normal(-15, 4, size=(n, 32, 32, 3)).astype("float32")
    x[..., 2] = np.linspace(20, 45, 32)[None, None, :]
    aug = make_augmenter(seed=0)
    aug(x[:batch])  # warm-up: traces nothing, but loads kernels

    t_base = _best(lambda: _numpy_loop(x, np.random.default_rng(1)), repeat)

    def eager() -> None:
        for i in range(0, n, batch):
            aug(x[i : i + batch])

    t_eager = _best(eager, repeat)
    ds = tf.data.Dataset.from_tensor_slices(x).batch(batch).map(aug).prefetch(tf.data.AUTOTUNE)
    for _ in ds.take(1):  # trace the map function once
        pass

    def pipeline() -> None:
        for _ in ds:
            pass

    t_pipe = _best(pipeline, repeat)
    rows = []
    for what, t in (
        (f"augment {n} 32x32x3 patches, batches of {batch}, eager", t_eager),
        (f"augment {n} 32x32x3 patches inside tf.data.map (batches of {batch})", t_pipe),
    ):
        rows.append(
            {
                "what": what + " vs per-patch NumPy loop",
                "baseline": n / t_base,
                "eokit": n / t,
                "ratio": t_base / t,
                "unit": "patches/s",
                "machine": MACHINE,
            }
        )
    return rows


if __name__ == "__main__":
    report(run(quick="--quick" in sys.argv), "augment")

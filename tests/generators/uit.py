"""Generate UiT sea-ice type patches in an ASSUMED layout (the DataverseNO record's format is unknown).

Written under ``root``:
- ``patches_10x10/patches.npy`` float32 (N, 10, 10, 3) channels-last HH, HV (dB), IA (deg) and
  ``patches_10x10/labels.npy`` int64 (N,) with classes 0..5 (eokit.schema.ICE_CLASSES order);
- ``patches_32x32.h5`` with datasets ``patches`` float32 (N, 3, 32, 32) channels-first and ``labels`` uint8.
Both storage styles are ones the reader is expected to meet; the values are seeded random, class-dependent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _patches(rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    labels = rng.integers(0, 6, n)
    hh = -25 + 3 * labels[:, None, None] + rng.normal(0, 1, (n, size, size))
    hv = -32 + 2 * labels[:, None, None] + rng.normal(0, 1, (n, size, size))
    ia = np.broadcast_to(np.linspace(20, 45, size)[None, None, :], (n, size, size))
    return np.stack([hh, hv, ia], axis=-1).astype(np.float32), labels


def make(root: str | Path, n: int = 12, seed: int = 0) -> Path:
    """Write the assumed layout under `root` and return it."""
    import h5py

    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "patches_10x10").mkdir(parents=True, exist_ok=True)
    img, lab = _patches(rng, n, 10)
    np.save(root / "patches_10x10" / "patches.npy", img)
    np.save(root / "patches_10x10" / "labels.npy", lab.astype(np.int64))
    img, lab = _patches(rng, n, 32)
    with h5py.File(root / "patches_32x32.h5", "w") as h:
        h["patches"] = np.moveaxis(img, -1, 1)
        h["labels"] = lab.astype(np.uint8)
    return root

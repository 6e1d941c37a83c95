"""Generate DLR Belgica Bank scenes in an ASSUMED layout (the Zenodo records' file formats are unknown).

``make(root, "semantic")``: for each scene ``<root>/<scene>/<scene>_HH.tif`` and ``<scene>_HV.tif`` (float32,
EPSG:3413, 40 m pixels) and ``<scene>_labels.csv`` (columns patch_id,row,col,size,label: a grid of
`patch` x `patch` patches with labels 0..9). ``make(root, "lda")``: one two-band GeoTIFF ``<scene>.tif``
(HH, HV) and a ``<scene>_topics.tif`` raster of topics 0..10 constant over 4x4 blocks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SCENES = ["S1B_EW_GRDM_1SDH_20190111T082514", "S1B_EW_GRDM_1SDH_20190125T080857"]


def _write(path: Path, data: np.ndarray) -> None:
    import rasterio
    from affine import Affine

    data = data if data.ndim == 3 else data[None]
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[2],
        height=data.shape[1],
        count=data.shape[0],
        dtype=data.dtype,
        crs="EPSG:3413",
        transform=Affine(40.0, 0.0, 400000.0, 0.0, -40.0, -1000000.0),
    ) as f:
        f.write(data)


def make(root: str | Path, kind: str = "semantic", size: int = 64, patch: int = 16, seed: int = 0) -> Path:
    """Write the assumed layout under `root` and return it."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    for s in SCENES:
        d = root / s
        d.mkdir(parents=True, exist_ok=True)
        hh = rng.normal(-20, 3, (size, size)).astype(np.float32)
        hv = rng.normal(-28, 3, (size, size)).astype(np.float32)
        if kind == "semantic":
            _write(d / f"{s}_HH.tif", hh)
            _write(d / f"{s}_HV.tif", hv)
            rows, cols = np.meshgrid(np.arange(0, size, patch), np.arange(0, size, patch), indexing="ij")
            n = rows.size
            lines = ["patch_id,row,col,size,label"] + [
                f"{i},{r},{c},{patch},{lab}"
                for i, (r, c, lab) in enumerate(zip(rows.ravel(), cols.ravel(), rng.integers(0, 10, n), strict=True))
            ]
            (d / f"{s}_labels.csv").write_text("\n".join(lines) + "\n")
        else:
            _write(d / f"{s}.tif", np.stack([hh, hv]))
            topics = rng.integers(0, 11, (size // 4, size // 4)).astype(np.uint8)
            _write(d / f"{s}_topics.tif", np.kron(topics, np.ones((4, 4), np.uint8)))
    return root

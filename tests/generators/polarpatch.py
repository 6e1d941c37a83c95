"""Generate a small polar-patch tree in the published layout (GitHub ysbecca/polar-patch).

Written under ``root``: ``meta.csv`` (space-separated, no header, one row per patch ``image_id x y label``, label
W/I/L, x/y pixel positions in a source scene) and ``images/<image_id>.png`` (64x64 8-bit RGB). Image ids are
scattered integers in shuffled row order, as published; positions fall in a few 3,000-px blocks (every class in
every block); the pixels are seeded random and class-dependent (water dark, ice bright, land mid-grey, textured).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

BLOCK = 3000
#: (column, row) of the 3,000-px blocks the positions fall in
BLOCKS = ((0, 0), (1, 0), (2, 0), (0, 1), (1, 1), (2, 1))
_MEAN = {"W": 40.0, "I": 190.0, "L": 120.0}


def patches(per_class: int = 6, seed: int = 0) -> list[tuple[str, int, int, str, np.ndarray]]:
    """Return the rows the tree holds, in meta.csv order: (image_id, x, y, letter, uint8 (64, 64, 3) pixels)."""
    rng = np.random.default_rng(seed)
    rows = []
    for letter in ("W", "I", "L"):
        for i in range(per_class):
            bx, by = BLOCKS[i % len(BLOCKS)]
            x, y = (int(v) for v in rng.integers(0, BLOCK - 64, 2) + (bx * BLOCK, by * BLOCK))
            texture = rng.normal(0, 25 if letter == "L" else 10, (64, 64, 1)) + rng.normal(0, 4, (64, 64, 3))
            img = np.clip(_MEAN[letter] + texture, 0, 255).astype(np.uint8)
            img[0, 0] = (0, 128, 255)  # full range and distinct channels in every patch
            rows.append((letter, x, y, img))
    order = rng.permutation(len(rows))
    ids = np.sort(rng.choice(10 * len(rows), len(rows), replace=False))
    return [(str(ids[k]), *rows[j][1:3], rows[j][0], rows[j][3]) for k, j in enumerate(order)]


def make(root: str | Path, per_class: int = 6, seed: int = 0) -> Path:
    """Write the published layout under `root` and return it."""
    from PIL import Image

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = patches(per_class, seed)
    for image_id, _x, _y, _letter, img in rows:
        Image.fromarray(img).save(root / "images" / f"{image_id}.png")
    meta = "".join(f"{image_id} {x} {y} {letter}\n" for image_id, x, y, letter, _img in rows)
    (root / "meta.csv").write_text(meta, encoding="ascii", newline="\n")
    return root

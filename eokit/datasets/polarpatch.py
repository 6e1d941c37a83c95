"""polar-patch (GitHub ysbecca/polar-patch): 64x64 Sentinel-1 patches over Danmarkshavn 2018, water/ice/land.

Published layout, read as is: ``meta.csv`` (space-separated, no header, one row per patch: ``image_id x y label``,
x/y the pixel position of the patch in the source scene, label ``W``/``I``/``L`` = water/ice/land from the METNO
ice charts, Zenodo 3695276) and ``images/<image_id>.png`` (64x64, 8-bit RGB renders of the SAR backscatter, not
calibrated sigma0, no incidence angle). Choices made where the publication is silent:

* a first line ``image_id x y label`` (or the README's ``image_id x_position y_position label``) is taken as a
  header and skipped; any other line whose x/y are not integers is refused, naming its row (the file's line
  number, from 1); blank lines are skipped;
* PNGs must be 64x64 with 8-bit samples: colour type RGB (channels R, G, B), grey (one channel ``grey``) or a
  palette (expanded to R, G, B); an alpha channel or tRNS transparency is accepted only where every pixel is
  opaque (and then dropped); 1/2/4/16-bit samples and mixed grey/colour sets are refused naming the file;
* ``row0``/``col0`` are the published y/x (whether they mark a patch's corner or centre is not documented), also
  kept as ``x``/``y`` so ``eokit.splits.block_split(ds, 3000, by="xy")`` works; ``polygon_id`` is -1 (the files
  name no ice-chart polygon); ``image_id`` is the PNG's stem as a string; PNGs not listed in meta.csv are ignored;
* ``root`` may also be a folder holding exactly one subfolder with ``meta.csv`` (a GitHub archive unpacks so).
"""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from eokit.schema import PATCH_SCHEMA, check_schema

__all__ = ["CLASSES", "PATCH_SIZE", "open", "open_polar_patch"]

#: label letter of meta.csv -> class name; the order gives the default class ids 0, 1, 2.
CLASSES: dict[str, str] = {"W": "water", "I": "ice", "L": "land"}
PATCH_SIZE = 64
SCENE = "danmarkshavn-2018"
SOURCE = "https://github.com/ysbecca/polar-patch"
_HEADERS = (("image_id", "x", "y", "label"), ("image_id", "x_position", "y_position", "label"))
_ROW = "image_id x y label (space-separated, e.g. '17 5986 4374 I')"
_INT = re.compile(r"[+-]?[0-9]+")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOUR_TYPES = {0: "grey", 2: "RGB", 3: "palette", 4: "grey + alpha", 6: "RGB + alpha"}
#: one checked meta.csv row: (row number, image_id, x, y, label letter)
_Row = tuple[int, str, int, int, str]
_PNG_EXPECTED = f"a {PATCH_SIZE}x{PATCH_SIZE} PNG with 8-bit samples (RGB, grey or palette, opaque)"


def _find_root(root: Path) -> Path:
    """The folder holding meta.csv: `root` itself or its one subfolder that does (an unpacked GitHub archive)."""
    if not root.exists():
        raise FileNotFoundError(f"polar-patch: {root} does not exist; expected a folder with meta.csv and images/")
    if not root.is_dir():
        raise FileNotFoundError(f"polar-patch: {root} is not a folder; expected a folder with meta.csv and images/")
    if (root / "meta.csv").is_file():
        return root
    inner = sorted(p.parent for p in root.glob("*/meta.csv") if p.is_file())
    if len(inner) == 1:
        return inner[0]
    found = sorted(p.name for p in root.iterdir())[:20]
    where = f" (found meta.csv in {[str(p) for p in inner]}; pass one)" if inner else ""
    raise FileNotFoundError(
        f"polar-patch: no {root / 'meta.csv'}{where}; found {found}. Expected the published layout: meta.csv "
        f"({_ROW}, no header) and images/<image_id>.png"
    )


def _parse_row(meta: Path, n: int, line: str, first: bool) -> tuple[str, int, int, str] | None:
    """One meta.csv row as (image_id, x, y, letter); None for a header; ValueError naming the row otherwise."""
    fields = line.split()
    if len(fields) != 4:
        raise ValueError(f"{meta}, row {n}: {len(fields)} fields in {line.strip()!r}; expected 4: {_ROW}")
    image_id, xs, ys, letter = fields
    if not (_INT.fullmatch(xs) and _INT.fullmatch(ys)):
        if first and tuple(f.lower() for f in fields) in _HEADERS:
            return None
        field, value = ("y", ys) if _INT.fullmatch(xs) else ("x", xs)
        hint = " (a header line? the published file has none; 'image_id x y label' is accepted)" if first else ""
        raise ValueError(
            f"{meta}, row {n}, field {field}: {value!r} is not an integer; expected a pixel position{hint}"
        )
    x, y = int(xs), int(ys)
    if x < 0 or y < 0:
        raise ValueError(f"{meta}, row {n}: position x={x}, y={y}; expected pixel positions >= 0")
    if letter not in CLASSES:
        case = f" (upper case {letter.upper()!r}?)" if letter.upper() in CLASSES else ""
        raise ValueError(
            f"{meta}, row {n}, field label: unknown label {letter!r}{case}; expected one of "
            + ", ".join(f"{k} ({v})" for k, v in CLASSES.items())
        )
    if image_id in (".", "..") or "/" in image_id or "\\" in image_id:
        raise ValueError(f"{meta}, row {n}, field image_id: {image_id!r}; expected a file stem of images/*.png")
    return image_id, x, y, letter


def _read_meta(meta: Path) -> list[_Row]:
    """Every row of meta.csv as (row number, image_id, x, y, letter), checked."""
    try:
        text = meta.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{meta}: not a UTF-8/ASCII text file ({e}); expected rows {_ROW}") from e
    rows: list[_Row] = []
    seen: dict[str, int] = {}
    first = True
    for n, line in enumerate(text.split("\n"), 1):  # row numbers = line numbers, whatever other control bytes
        if not line.strip():
            continue
        row = _parse_row(meta, n, line, first)
        first = False
        if row is None:
            continue
        if row[0] in seen:
            raise ValueError(
                f"{meta}, row {n}: image_id {row[0]!r} repeats row {seen[row[0]]}; expected each image_id once"
            )
        seen[row[0]] = n
        rows.append((n, *row))
    if not rows:
        raise ValueError(f"{meta}: holds no patch rows; expected one row per patch: {_ROW}")
    return rows


def _check_classes(classes: Sequence[str] | None) -> list[str]:
    if classes is None:
        return list(CLASSES)
    if isinstance(classes, str) or not isinstance(classes, Sequence):
        raise ValueError(
            f"classes={classes!r}: expected a sequence of label letters from {list(CLASSES)}, e.g. ['W', 'I']"
        )
    letters = [str(c) for c in classes]
    bad = [c for c in letters if c not in CLASSES]
    if bad or not letters or len(set(letters)) != len(letters):
        raise ValueError(
            f"classes={list(classes)!r}: expected distinct label letters from {list(CLASSES)} "
            f"({', '.join(f'{k} = {v}' for k, v in CLASSES.items())}), at least one"
        )
    return letters


def _ihdr(data: bytes, path: Path, row: int) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from the PNG header; ValueError naming the file if it is no PNG."""
    if len(data) < 33 or data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError(
            f"{path} (meta.csv row {row}): not a PNG file (bad signature or header); expected {_PNG_EXPECTED}"
        )
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    return width, height, depth, colour


def _decode(path: Path, row: int) -> np.ndarray:
    """One PNG as uint8 (row, col, channel), 1 (grey) or 3 (R, G, B) channels; ValueError naming what is wrong."""
    from PIL import Image

    data = path.read_bytes()
    width, height, depth, colour = _ihdr(data, path, row)
    what = f"{path} (meta.csv row {row})"
    if (width, height) != (PATCH_SIZE, PATCH_SIZE):
        raise ValueError(f"{what}: {width}x{height} pixels; expected {_PNG_EXPECTED}")
    if colour not in _COLOUR_TYPES or (depth != 8 and colour != 3):
        kind = _COLOUR_TYPES.get(colour, f"colour type {colour}")
        raise ValueError(f"{what}: {depth}-bit {kind}; expected {_PNG_EXPECTED}")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            grey = colour in (0, 4)
            if colour in (4, 6) or "transparency" in im.info:
                arr = np.asarray(im.convert("LA" if grey else "RGBA"))
                if (arr[..., -1] != 255).any():
                    raise ValueError(
                        f"{what}: {int((arr[..., -1] != 255).sum())} pixels are transparent (alpha < 255); "
                        f"expected {_PNG_EXPECTED}"
                    )
                arr = arr[..., :-1]
            else:
                arr = np.asarray(im if colour != 3 else im.convert("RGB"))
    except (OSError, SyntaxError) as e:  # Pillow: truncated or corrupt data
        raise ValueError(f"{what}: cannot be decoded as PNG ({e}); expected {_PNG_EXPECTED}") from e
    return arr.reshape(PATCH_SIZE, PATCH_SIZE, -1)


def _read_images(folder: Path, rows: list[_Row], progress: bool) -> tuple[np.ndarray, list[str]]:
    """The rows' PNGs as float32 (patch, row, col, channel) raw 0..255 values, and the channel names."""
    from eokit._progress import tqdm  # tqdm.auto, or text bars where EOKIT_PROGRESS=text

    listed = {p.name for p in folder.iterdir()}
    missing = [(r[0], r[1]) for r in rows if f"{r[1]}.png" not in listed]
    if missing:
        shown = ", ".join(f"images/{i}.png (row {n})" for n, i in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise FileNotFoundError(
            f"polar-patch: {folder.parent / 'meta.csv'} lists {len(missing)} patches with no PNG: {shown}{more}; "
            f"expected images/<image_id>.png for every row"
        )
    out: np.ndarray | None = None
    first = ""
    for k, (n, image_id, *_rest) in enumerate(tqdm(rows, desc="polar-patch PNGs", unit="png", disable=not progress)):
        path = folder / f"{image_id}.png"
        arr = _decode(path, n)
        if out is None:
            out, first = np.empty((len(rows), *arr.shape), np.float32), path.name
        elif arr.shape[-1] != out.shape[-1]:
            kinds = {1: "grey", 3: "RGB"}
            raise ValueError(
                f"{path} (meta.csv row {n}): {kinds[arr.shape[-1]]}, but {first} is {kinds[out.shape[-1]]}; "
                "expected every PNG of the set with the same channels"
            )
        out[k] = arr
    if out is None:
        out = np.empty((0, PATCH_SIZE, PATCH_SIZE, 3), np.float32)
    return out, ["grey"] if out.shape[-1] == 1 else ["R", "G", "B"]


def open_polar_patch(
    root: str | Path, *, classes: Sequence[str] | None = None, progress: bool = True, scene: str = SCENE
) -> xr.Dataset:
    """Return the polar-patch set under `root` as a patch set (eokit.schema.PATCH_SCHEMA, plus x, y, image_id).

    `image` holds the raw 0..255 PNG values as float32, channels R, G, B (or ``grey``); `label` is the position of
    the row's letter in `classes` (default ``["W", "I", "L"]``: 0 water, 1 ice, 2 land); rows of letters left out
    of `classes` are dropped, e.g. ``classes=["W", "I"]`` for water/ice only. Patches are in meta.csv order.
    """
    letters = _check_classes(classes)
    base = _find_root(Path(root).expanduser())
    folder = base / "images"
    if not folder.is_dir():
        raise FileNotFoundError(f"polar-patch: no folder {folder}; expected images/<image_id>.png beside meta.csv")
    rows = [r for r in _read_meta(base / "meta.csv") if r[4] in letters]
    image, channels = _read_images(folder, rows, progress)
    names = [CLASSES[c] for c in letters]
    label = np.array([letters.index(r[4]) for r in rows], np.int64)
    x = np.array([r[2] for r in rows], np.int64)
    y = np.array([r[3] for r in rows], np.int64)
    n = len(rows)
    ds = xr.Dataset(
        {
            "image": (("patch", "row", "col", "channel"), image),
            "label": ("patch", label),
            "label_name": ("patch", np.array(names, dtype=f"<U{max(map(len, names))}")[label]),
            "row0": ("patch", y),
            "col0": ("patch", x),
            "polygon_id": ("patch", np.full(n, -1, np.int64)),
            "scene": ("patch", np.full(n, scene, dtype=f"<U{max(len(scene), 1)}")),
            "x": ("patch", x.copy()),
            "y": ("patch", y.copy()),
            "image_id": ("patch", np.array([r[1] for r in rows], dtype=str)),
        },
        coords={"channel": channels, "row": np.arange(PATCH_SIZE), "col": np.arange(PATCH_SIZE)},
        attrs={
            "dataset": f"polar-patch ({SOURCE}), labels from METNO ice charts (doi:10.5281/zenodo.3695276)",
            "source": str(base),
            "scene": scene,
            "size": PATCH_SIZE,
            "classes": names,
            "class_letters": letters,
            "positions_known": 1,
            "values": "raw 0..255 values of 8-bit PNG renders of the SAR backscatter (not calibrated sigma0)",
        },
    )
    check_schema(ds, PATCH_SCHEMA, "polar-patch set")
    return ds


open = open_polar_patch  # noqa: A001 - the `eokit.datasets.<name>.open` entry point of every reader

"""UiT Sentinel-1 sea-ice type patches (DataverseNO doi:10.18710/QAYI4O): discover the published arrays.

What is known: 31 scenes, HH + HV + incidence angle, six WMO classes (``eokit.schema.ICE_CLASSES``), patches at
10x10, 20x20 and 32x32 pixels. The file format is not documented, so the reader inspects the folder: it looks
for a 4-D image array (patch, row, col, channel) or (patch, channel, row, col) and a 1-D integer label array
of the same length, stored together in one ``.npz``/``.h5``/``.hdf5``/``.nc`` file or as sibling ``.npy`` files
in one folder. Anything else raises an error listing what was found and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from eokit.schema import ICE_CLASSES, PATCH_SCHEMA, SAR_CHANNELS, check_schema

__all__ = ["open", "inspect"]

_IMAGE_NAMES = ("patches", "images", "image", "x", "data", "patch")
_LABEL_NAMES = ("labels", "label", "y", "classes", "class", "target")


@dataclass
class _Array:
    container: Path
    key: str
    shape: tuple[int, ...]
    dtype: np.dtype


def _arrays(root: Path) -> list[_Array]:
    out: list[_Array] = []
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for f in files:
        suf = f.suffix.lower()
        try:
            if suf == ".npy":
                a = np.load(f, mmap_mode="r")
                out.append(_Array(f.parent, f.stem, a.shape, a.dtype))
            elif suf == ".npz":
                with np.load(f) as z:
                    for k in z.files:
                        out.append(_Array(f, k, z[k].shape, z[k].dtype))
            elif suf in (".h5", ".hdf5", ".nc"):
                import h5py

                with h5py.File(f, "r") as h:
                    h.visititems(
                        lambda name, obj, f=f: (
                            out.append(_Array(f, name, obj.shape, obj.dtype)) if isinstance(obj, h5py.Dataset) else None
                        )
                    )
        except (OSError, ValueError) as e:
            raise ValueError(f"{f}: cannot be read as {suf} ({e})") from e
    return out


def _patch_size(a: _Array) -> int | None:
    s = a.shape
    if len(s) != 4 or a.dtype.kind not in "fiu":
        return None
    if s[1] == s[2] and s[3] <= 4:
        return s[1]
    if s[2] == s[3] and s[1] <= 4:
        return s[2]
    return None


def inspect(path: str | Path) -> dict[int, tuple[_Array, _Array]]:
    """Return {patch size: (image array, label array)} found under `path`, raising if none pairs up."""
    root = Path(path).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"UiT ice types: {root} does not exist")
    arrays = _arrays(root)
    pairs: dict[int, tuple[_Array, _Array]] = {}
    for img in arrays:
        size = _patch_size(img)
        if size is None:
            continue
        siblings = [
            a
            for a in arrays
            if a.container == img.container and a.key != img.key and a.dtype.kind in "iuf" and 1 <= len(a.shape) <= 2
        ]
        labels = [
            a for a in siblings if a.shape in ((img.shape[0],), (img.shape[0], 1), (img.shape[0], len(ICE_CLASSES)))
        ]
        if len(labels) > 1:
            named = [a for a in labels if a.key.split("/")[-1].lower() in _LABEL_NAMES]
            labels = named or [a for a in labels if a.dtype.kind != "f" or a.shape[-1] == len(ICE_CLASSES)] or labels
        if not labels:
            named = [a for a in siblings if a.key.split("/")[-1].lower() in _LABEL_NAMES]
            if named:  # the label array is there but does not fit: say so instead of "nothing recognised"
                raise ValueError(
                    f"{img.container}: image array {img.key!r} holds {img.shape[0]} patches {img.shape}, but label "
                    f"array {named[0].key!r} has shape {named[0].shape}; expected one label per patch "
                    f"(({img.shape[0]},) class ids or ({img.shape[0]}, {len(ICE_CLASSES)}) one-hot rows)"
                )
            continue
        if size in pairs:
            raise ValueError(
                f"UiT ice types: two {size}x{size} patch sets ({pairs[size][0].container}/"
                f"{pairs[size][0].key} and {img.container}/{img.key}); pass the folder of one"
            )
        pairs[size] = (img, labels[0])
    if not pairs:
        found = [f"{a.container.name}:{a.key} {a.shape} {a.dtype}" for a in arrays][:20]
        exts = sorted({p.suffix for p in root.rglob("*") if p.is_file()}) if root.is_dir() else [root.suffix]
        raise ValueError(
            f"UiT ice types: no patch set recognised under {root}. Found file types {exts} and arrays {found}. "
            "Expected a 4-D image array (patch, row, col, channel=HH,HV,IA) with a 1-D integer label array of "
            "the same length (0..5 = eokit.schema.ICE_CLASSES) or one-hot (patch, 6) labels, together in one "
            ".npz/.h5/.nc file or as .npy files in one folder"
        )
    return pairs


def _load(a: _Array) -> np.ndarray:
    if a.container.is_dir():
        return np.load(a.container / f"{a.key}.npy")
    if a.container.suffix.lower() == ".npz":
        with np.load(a.container) as z:
            return z[a.key]
    import h5py

    with h5py.File(a.container, "r") as h:
        return h[a.key][()]


def open(path: str | Path, patch_size: int | None = None, label_offset: int = 0) -> xr.Dataset:  # noqa: A001
    """Return one patch set (eokit.schema.PATCH_SCHEMA, channels HH, HV, IA) found under `path`.

    `patch_size` picks 10, 20 or 32 when several are present; `label_offset` is subtracted from the stored
    labels (1 if the files number the classes 1..6).
    """
    pairs = inspect(path)
    if patch_size is None:
        if len(pairs) > 1:
            raise ValueError(f"UiT ice types: patch sizes {sorted(pairs)} under {path}; pass patch_size=")
        patch_size = next(iter(pairs))
    if patch_size not in pairs:
        raise ValueError(f"UiT ice types: no {patch_size}x{patch_size} patches under {path}; found {sorted(pairs)}")
    img_a, lab_a = pairs[patch_size]
    img = _load(img_a)
    if img.shape[1] <= 4 and img.shape[2] == img.shape[3]:  # channels first
        img = np.moveaxis(img, 1, -1)
    if img.shape[-1] != len(SAR_CHANNELS):
        raise ValueError(
            f"{img_a.container}:{img_a.key}: {img.shape[-1]} channels, expected "
            f"{len(SAR_CHANNELS)} ({', '.join(SAR_CHANNELS)})"
        )
    bad = ~np.isfinite(img).all(axis=(1, 2, 3)) if img.dtype.kind == "f" else np.zeros(len(img), bool)
    if bad.any():
        raise ValueError(
            f"{img_a.container}:{img_a.key}: {int(bad.sum())} patches hold NaN or infinite pixels "
            f"(patches {np.flatnonzero(bad)[:10].tolist()}); expected finite HH, HV (dB) and IA values"
        )
    raw = _load(lab_a)
    if raw.ndim == 2 and raw.shape[1] == len(ICE_CLASSES):  # one-hot rows
        if not (np.isin(raw, (0, 1)).all() and (raw.sum(axis=1) == 1).all()):
            i = int(np.flatnonzero(~(np.isin(raw, (0, 1)).all(axis=1) & (raw.sum(axis=1) == 1)))[0])
            raise ValueError(
                f"{lab_a.container}:{lab_a.key}, patch {i}: a {len(ICE_CLASSES)}-column label row "
                f"must be one-hot (one 1, five 0), got {raw[i].tolist()}"
            )
        raw = raw.argmax(axis=1) + label_offset
    raw = raw.reshape(-1)
    if raw.dtype.kind == "f":
        frac = ~np.isfinite(raw) | (np.mod(np.nan_to_num(raw), 1) != 0)
        if frac.any():
            i = int(np.flatnonzero(frac)[0])
            raise ValueError(
                f"{lab_a.container}:{lab_a.key}, patch {i}: label {raw[i]} is not a whole number; "
                f"expected class ids 0..{len(ICE_CLASSES) - 1} (or one-hot rows)"
            )
    lab = raw.astype(np.int64) - label_offset
    bad = (lab < 0) | (lab >= len(ICE_CLASSES))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{lab_a.container}:{lab_a.key}, patch {i}: label {lab[i] + label_offset} outside "
            f"0..{len(ICE_CLASSES) - 1} after label_offset={label_offset} (classes {ICE_CLASSES})"
        )
    n = img.shape[0]
    ds = xr.Dataset(
        {
            "image": (("patch", "row", "col", "channel"), img.astype(np.float32)),
            "label": (("patch",), lab),
            "label_name": (("patch",), np.array(ICE_CLASSES)[lab]),
            "row0": (("patch",), np.full(n, -1, np.int64)),
            "col0": (("patch",), np.full(n, -1, np.int64)),
            "polygon_id": (("patch",), np.full(n, -1, np.int64)),
            "scene": (("patch",), np.full(n, "")),
        },
        coords={"channel": SAR_CHANNELS},
        attrs={
            "dataset": "UiT sea ice types (doi:10.18710/QAYI4O)",
            "patch_size": patch_size,
            "source": f"{img_a.container}:{img_a.key}",
            "positions_known": 0,
        },
    )
    check_schema(ds, PATCH_SCHEMA, "UiT patch set")
    return ds

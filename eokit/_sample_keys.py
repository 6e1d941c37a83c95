"""The counter-based draw of :func:`eokit.sampling.make_training_set`: per-block counts and candidates, pixel
keys (splitmix64 of the seed and the global pixel index), candidate selection, the merge tree, and the order of
the drawn sample. The draw depends on the seed, the data and the parameters only, not on the chunking.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dask
import numpy as np

from eokit._block_tasks import Block, as_array
from eokit.labels import NO_LABEL, _block_rasters
from eokit.schema import FLAG_CLEAR

#: A block's polygons as `_block_rasters` takes them: (geometries, eroded geometries, labels, field ids).
_Polys = tuple[Any, Any, np.ndarray, np.ndarray]


def _eligible(flag_block: np.ndarray, lab_e: np.ndarray, max_cloud_fraction: float) -> np.ndarray:
    not_clear = (flag_block != FLAG_CLEAR).mean(axis=0) if flag_block.shape[0] else np.zeros(lab_e.shape)
    return (lab_e != NO_LABEL) & (not_clear <= max_cloud_fraction + 1e-12)


def _count_block(
    flag_block: Block | np.ndarray, polys: _Polys, transform: Any, shape: tuple[int, int], max_cloud_fraction: float
) -> tuple[dict[int, int], dict[tuple[int, int], int]]:
    """Pixel counts per class (full raster) and eligible counts per (class, field) for one block."""
    flag_block = as_array(flag_block)
    lab_e, fid_e, lab_f = _block_rasters(*polys, transform, shape)
    assert lab_f is not None  # full=True
    labs, cnt = np.unique(lab_f[lab_f != NO_LABEL], return_counts=True)
    prior = {int(k): int(v) for k, v in zip(labs, cnt, strict=True)}
    ok = _eligible(flag_block, lab_e, max_cloud_fraction)
    fids, first, cnt = np.unique(fid_e[ok], return_index=True, return_counts=True)  # a field has one class
    labs = lab_e[ok][first]
    elig = {(int(a), int(b)): int(c) for a, b, c in zip(labs, fids, cnt, strict=True)}
    return prior, elig


# splitmix64 (Steele, Lea & Flood 2014): output i of the generator seeded s is mix(s + (i + 1) * gamma)
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_STREAM = np.uint64(0xD1B54A32D192ED03)


def _mix64(z: np.ndarray) -> np.ndarray:
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


def _pixel_keys(seed: int, stream: int, gidx: np.ndarray) -> np.ndarray:
    """uint64 key of each global pixel index: splitmix64 output number `gidx` of the (seed, stream) generator."""
    base = _mix64(_mix64(np.array([seed % 2**64], dtype=np.uint64)) ^ (np.array([stream + 1], np.uint64) * _STREAM))
    return _mix64(base + (np.asarray(gidx).astype(np.uint64) + np.uint64(1)) * _GAMMA)


def _smallest(group: np.ndarray, key: np.ndarray, gidx: np.ndarray, limit: int | Mapping[int, int]) -> np.ndarray:
    """Positions of the `limit` smallest (key, pixel index) of each group; `limit` an int or per group id."""
    if len(group) == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.lexsort((gidx, key, group))
    g = group[order]
    rank = np.arange(len(g)) - np.searchsorted(g, g, side="left")
    lim: np.ndarray | int
    if isinstance(limit, Mapping):
        ids, inv = np.unique(g, return_inverse=True)
        lim = np.array([limit.get(int(k), 0) for k in ids], dtype=np.int64)[inv]
    else:
        lim = limit
    return np.sort(order[rank < lim])


def _keep(
    cand: dict[str, np.ndarray], need: Mapping[int, int], per_field: int | None, seed: int, final: bool
) -> np.ndarray:
    """Positions of the candidates that can still be sampled (final: the sample itself).

    Without a per-field cap a class's sample is its `need` smallest keys, so any subset keeps only those of
    its own. With a cap K, a field's candidates are its K smallest keys (also decidable on any subset); the
    class's sample is then the smallest keys of a second stream among all its fields' candidates (final).
    """
    gidx = cand["gidx"]
    if per_field is None:
        return _smallest(cand["label"], _pixel_keys(seed, 0, gidx), gidx, need)
    idx = _smallest(cand["field_id"], _pixel_keys(seed, 0, gidx), gidx, per_field)
    if not final:
        return idx
    return idx[_smallest(cand["label"][idx], _pixel_keys(seed, 1, gidx[idx]), gidx[idx], need)]


def _candidates_block(
    flag_block: Block | np.ndarray,
    polys: _Polys,
    transform: Any,
    shape: tuple[int, int],
    max_cloud_fraction: float,
    need: dict[int, int],
    per_field: int | None,
    seed: int,
    row0: int,
    col0: int,
    width: int,
) -> dict[str, np.ndarray]:
    """The block's candidates (global pixel index, label, field id, flag series) that can still be sampled."""
    flag_block = as_array(flag_block)
    lab_e, fid_e, _ = _block_rasters(*polys, transform, shape, full=False)
    ok = _eligible(flag_block, lab_e, max_cloud_fraction) & np.isin(lab_e, [k for k, v in need.items() if v > 0])
    r, c = np.nonzero(ok)
    cand = {
        "gidx": (r + row0).astype(np.int64) * width + (c + col0),
        "label": lab_e[r, c].astype(np.int64),
        "field_id": fid_e[r, c].astype(np.int64),
    }
    idx = _keep(cand, need, per_field, seed, final=False)
    out = {k: v[idx] for k, v in cand.items()}
    out["flag"] = flag_block[:, r[idx], c[idx]].T.astype(np.uint8)
    return out


def _merge_candidates(
    need: dict[int, int], per_field: int | None, seed: int, final: bool, *parts: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The candidates of several blocks that can still be sampled (final: the sample)."""
    cand = {k: np.concatenate([p[k] for p in parts], axis=0) for k in parts[0]}
    idx = _keep(cand, need, per_field, seed, final)
    return {k: v[idx] for k, v in cand.items()}


def _merge_tree(parts: list, need: dict[int, int], per_field: int | None, seed: int, fan_in: int = 16) -> Any:
    """A delayed tree of merges over the blocks' candidate lists (fan-in `fan_in`); its root is the sample."""
    merge = dask.delayed(_merge_candidates, pure=False)
    while len(parts) > fan_in:
        parts = [merge(need, per_field, seed, False, *parts[i : i + fan_in]) for i in range(0, len(parts), fan_in)]
    return merge(need, per_field, seed, True, *parts)


def _order(picked: dict[str, np.ndarray], need: dict[int, int], width: int) -> dict[str, np.ndarray]:
    """The sample sorted by class, field and pixel, with rows and columns; checks the counts per class."""
    got = dict(zip(*np.unique(picked["label"], return_counts=True), strict=True))
    short = {lab: (int(got.get(lab, 0)), n) for lab, n in need.items() if got.get(lab, 0) != n}
    if short:  # cannot happen unless the inputs changed between the two passes
        raise RuntimeError(f"samples drawn per class differ from the eligible counts (drawn, expected): {short}")
    order = np.lexsort((picked["gidx"], picked["field_id"], picked["label"]))
    out = {k: v[order] for k, v in picked.items()}
    out["row"], out["col"] = np.divmod(out.pop("gidx"), width)
    return out

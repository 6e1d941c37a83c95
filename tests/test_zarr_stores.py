"""Every Zarr store eokit writes opens with plain xarray / zarr (no eokit import) and its text survives.

The writers: TimeSen2Crop's resumable `to_zarr` and its in-memory `_dataset_to_store`, `sampling.write_zarr` and
`patches.write_patches`. None may emit a Zarr "no specification" warning (UnstableSpecificationWarning for
fixed-length UTF-32 in Zarr format 3, or the format-3 consolidated-metadata warning): both mean other Zarr
libraries may not read the store.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import xarray as xr

from eokit import patches, sampling
from eokit._io import ZARR_FORMAT
from eokit.datasets import timesen2crop as ts
from generators import timesen2crop as gen

#: opens `store` with xarray and zarr only, every warning an error; prints the text variables as JSON
_READER = textwrap.dedent("""
    import json, sys, warnings
    warnings.simplefilter("error")
    import xarray as xr, zarr
    store, names = sys.argv[1], sys.argv[2].split(",")
    ds = xr.open_zarr(store)
    g = zarr.open(store, mode="r")
    out = {"format": g.metadata.zarr_format, "xarray": {}, "zarr": {}}
    for n in names:
        out["xarray"][n] = [str(v) for v in ds[n].values.ravel().tolist()]
        out["zarr"][n] = [str(v) for v in g[n][...].ravel().tolist()]
    assert not any(m == "eokit" or m.startswith("eokit.") for m in sys.modules), "eokit was imported"
    print(json.dumps(out))
""")


def _open_elsewhere(store, names):
    """Return what a fresh interpreter without eokit reads from `store` (text of the variables `names`)."""
    r = subprocess.run(
        [sys.executable, "-c", _READER, str(store), ",".join(names)],
        capture_output=True,
        text=True,
        cwd=store.parent,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def _zarr_warnings(record):
    return [
        f"{w.category.__name__}: {w.message}"
        for w in record
        if w.category.__module__.startswith("zarr")
        or "specification" in str(w.message).lower()
        or "zarr" in str(w.message).lower()
    ]


def _write_quietly(fn, *a, **k):
    """Run writer `fn`, asserting it raised no Zarr specification warning; return its result."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = fn(*a, **k)
    assert not _zarr_warnings(record), _zarr_warnings(record)
    return out


def _check(store, ds, names):
    got = _open_elsewhere(store, names)
    assert got["format"] == ZARR_FORMAT
    for n in names:
        want = [str(v) for v in np.asarray(ds[n].values).ravel().tolist()]
        assert got["xarray"][n] == want, n
        assert got["zarr"][n] == want, n


@pytest.fixture()
def tree(tmp_path):
    return gen.make_tree(tmp_path / "src", tiles={"33UVP": 4, "2019_33UVP": 3}, n_classes=3, samples_per_class=2)


def test_timesen2crop_store_opens_without_eokit(tree, tmp_path):
    store = _write_quietly(ts.to_zarr, tree, tmp_path / "ts.zarr", chunks=4, scheduler="synchronous", progress=False)
    ds = ts.open(tree)
    back = xr.open_zarr(store)
    _check(store, back, ["source_file", "tile_names", "band"])
    assert sorted(back["source_file"].values.tolist()) == sorted(ds["source_file"].values.tolist())
    assert back["tile_names"].values.tolist() == ["2019_33UVP", "33UVP"]
    assert back["band"].values.tolist() == list(ds["band"].values)
    np.testing.assert_array_equal(back["label"].values, ds["label"].values)  # label 0 not read as a fill value
    np.testing.assert_array_equal(back["reflectance"].values, ds["reflectance"].values)
    assert ts.open(store).load().drop_attrs().equals(ds.drop_attrs())


def test_timesen2crop_in_memory_store_opens_without_eokit(tree, tmp_path):
    ds = ts.open(tree)
    store = _write_quietly(ts._dataset_to_store, ds, tmp_path / "mem.zarr", 5)
    _check(store, xr.open_zarr(store), ["source_file", "tile_names", "band"])
    assert ts.open(store).load().drop_attrs().equals(ds.drop_attrs())


def test_training_set_store_opens_without_eokit(tree, tmp_path):
    ds = ts.open(tree)
    n = ds.sizes["sample"]
    ds["note"] = ("sample", np.array([f"field é{i} ñ" for i in range(n)], dtype=object))  # object text
    ds["crop"] = ("sample", np.array(["Winter wheat"] * n, dtype=np.dtypes.StringDType()))  # numpy 2 text
    store = _write_quietly(sampling.write_zarr, ds, tmp_path / "trainingset.zarr")
    _check(store, ds, ["label_name", "tile", "source_file", "note", "crop", "band"])


def test_patch_store_opens_without_eokit(tmp_path):
    n = 5
    rng = np.random.default_rng(0)
    ds = xr.Dataset(
        {
            "image": (("patch", "row", "col", "channel"), rng.normal(size=(n, 4, 4, 2)).astype(np.float32)),
            "label": ("patch", np.arange(n) % 3),
            "row0": ("patch", np.arange(n) * 4),
            "col0": ("patch", np.zeros(n, int)),
            "polygon_id": ("patch", np.arange(n)),
            "scene": ("patch", np.array(["S1A_EW_GRDM_1SDH_α", "scène 2", "s3", "s4", "s5"])),
        },
        coords={"channel": ["HH", "HV"]},
    )
    store = _write_quietly(patches.write_patches, ds, tmp_path / "patches.zarr", chunk_patches=2)
    _check(store, ds, ["scene", "channel"])
    np.testing.assert_array_equal(patches.read_patches(store)["image"].values, ds["image"].values)

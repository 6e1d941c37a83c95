"""Opening a training set (Dataset, Zarr store) and telling its kind; no TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from badinput import refuses
from eokit import trainingdata as td


def _series(n: int = 3) -> xr.Dataset:
    return xr.Dataset(
        {
            "reflectance": (("sample", "time", "band"), np.ones((n, 2, 2), np.int16)),
            "flag": (("sample", "time"), np.zeros((n, 2), np.uint8)),
            "date": (("sample", "time"), np.full((n, 2), np.datetime64("2020-05-01", "ns"))),
            "label": ("sample", np.arange(n, dtype=np.int64)),
            "label_name": ("sample", [f"c{i}" for i in range(n)]),
            "tile": ("sample", ["33UVP"] * n),
            "source_file": ("sample", ["f.csv"] * n),
        },
        coords={"band": ["B4", "B8"]},
        attrs={"source": "mine"},
    )


def test_open_training_data_returns_a_dataset_as_given_and_tells_its_kind():
    ds = td.open_training_data(_series())
    assert td.data_kind(ds) == "timeseries" and td.sample_dim("timeseries") == "sample"
    assert td.sample_dim("patch") == "patch" and ds.attrs["source"] == "mine"


def test_open_training_data_opens_a_zarr_store_lazily_and_names_it(tmp_path):
    store = tmp_path / "set.zarr"
    _series(5).to_zarr(store, zarr_format=2)
    ds = td.open_training_data(store)
    assert ds.sizes["sample"] == 5 and ds.attrs == {"source": str(store), "derived_from": "mine"}
    assert ds["reflectance"].chunks is not None


@pytest.mark.bad_input
def test_open_training_data_refuses_what_is_not_a_training_set(tmp_path):
    with refuses(FileNotFoundError, "training data", "nothing.zarr", "does not exist"):
        td.open_training_data(tmp_path / "nothing.zarr")
    with refuses(ValueError, "mine", "'reflectance'", "'image'"):
        td.open_training_data(xr.Dataset(attrs={"source": "mine"}))
    with refuses(TypeError, "xarray.Dataset or a path", "int"):
        td.open_training_data(3)


def test_dataset_class_names_label_name_then_attribute_then_ice_classes_then_id():
    ds = xr.Dataset({"label": ("sample", [2, 5]), "label_name": ("sample", ["Maize", "Potato"])})
    assert td.dataset_class_names(ds, "timeseries", [2, 5, 7]) == ["Maize", "Potato", "7"]
    assert td.dataset_class_names(xr.Dataset(attrs={"classes": "a,b"}), "timeseries", [1, 2]) == ["b", "2"]
    assert td.dataset_class_names(xr.Dataset(attrs={"classes": '["x", "y"]'}), "patch", [0]) == ["x"]
    assert td.dataset_class_names(xr.Dataset(), "patch", [0]) == ["open water"]

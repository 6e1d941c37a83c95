"""Write a VGG-16 notop weights file in the layout of Keras' published ImageNet file (random values).

`vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5` is a legacy Keras HDF5 weights file: the root has
attributes `layer_names` (every layer, in model order, pooling and input layers included), `backend` and
`keras_version`; each layer is a group whose `weight_names` attribute lists its datasets in order
(`<layer>_W_1:0` kernel (3, 3, in, out) in TF dim ordering, `<layer>_b_1:0` bias); weightless layers have an
empty `weight_names`. Keras loads it by layer order. The real file cannot be downloaded here, so the tests use
this one to exercise the real loading code path.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

FILENAME = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
_BLOCKS = [(1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512)]


def write(folder: Path, seed: int = 0) -> tuple[Path, dict[str, list[np.ndarray]]]:
    """Write the file into `folder`; return (path, {conv layer name: [kernel, bias]}) of what was written."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILENAME
    layer_names = ["input_1"]
    values: dict[str, list[np.ndarray]] = {}
    c_in = 3
    for block, n_conv, filters in _BLOCKS:
        for i in range(1, n_conv + 1):
            name = f"block{block}_conv{i}"
            layer_names.append(name)
            kernel = rng.normal(0, np.sqrt(2 / (9 * c_in)), size=(3, 3, c_in, filters)).astype("float32")
            bias = rng.normal(0, 0.01, size=filters).astype("float32")
            values[name] = [kernel, bias]
            c_in = filters
        layer_names.append(f"block{block}_pool")
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in layer_names])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.0.8"
        for name in layer_names:
            g = f.create_group(name)
            if name in values:
                wnames = [f"{name}_W_1:0", f"{name}_b_1:0"]
                g.attrs["weight_names"] = np.array([w.encode() for w in wnames])
                for w, v in zip(wnames, values[name], strict=True):
                    g.create_dataset(w, data=v)
            else:
                g.attrs["weight_names"] = np.array([], dtype="S1")
    return path, values

"""VGG-16 for SAR sea-ice patches: from scratch, transfer learning from ImageNet, and without pooling.

* `vgg16`: `keras.applications.VGG16(weights=None)` backbone, input channels = n_bands, our head.
* `vgg16_transfer`: the same backbone with ImageNet weights read from a LOCAL file (`weights_path=` or
  Keras' cache `~/.keras/models/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`); HH, HV and incidence
  angle are the three input channels. Without the file it fails with a message saying what to download from
  where and where to put it - never a silent random initialisation.
* `vgg16_nopool`: the same 13-conv stack (same layer names and kernel shapes) with its five max-pooling
  layers removed and a global-average-pooling head, so it runs on 10x10 patches without upsampling.

VGG-16 halves the feature map five times, so patches smaller than 32 pixels (the mission's 10 and 20) are
upsampled with a bilinear `Resizing` layer to `input_size` (default max(32, patch_size)) for the pooled
variants. Inputs are standardised SAR channels (see the model card's `normalisation`); for the transfer
model the ImageNet filters are fine-tuned on them (`freeze_backbone=True` trains only the head).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

from eokit.models.cnn import _check_patch_args

#: File name of Keras' VGG-16 ImageNet weights without the classifier top (legacy Keras HDF5 layout).
IMAGENET_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
#: Where Keras publishes that file.
IMAGENET_NOTOP_URL = "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/" + IMAGENET_NOTOP_FILE
#: md5 of the published file (the `file_hash` keras.applications.VGG16 checks).
IMAGENET_NOTOP_MD5 = "6d6bbae143d832006294945121d1f1fc"

#: VGG-16 conv stack: (block, number of 3x3 convs, filters).
_VGG16_BLOCKS: list[tuple[int, int, int]] = [(1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512)]


def keras_cache_weights_path() -> Path:
    """Return where Keras' cache keeps the VGG-16 ImageNet notop weights ($KERAS_HOME or ~/.keras, /models)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models" / IMAGENET_NOTOP_FILE


def find_imagenet_weights(weights_path: str | os.PathLike | None = None) -> Path:
    """Return the local VGG-16 ImageNet notop weights file; raise FileNotFoundError saying how to get it."""
    candidates = [Path(weights_path).expanduser()] if weights_path is not None else [keras_cache_weights_path()]
    for p in candidates:
        if p.is_file():
            return p
    where = candidates[0]
    raise FileNotFoundError(
        f"VGG-16 ImageNet weights not found at {where}. They cannot be downloaded from this machine "
        f"(no internet). Download {IMAGENET_NOTOP_URL} (md5 {IMAGENET_NOTOP_MD5}, about 58 MB) on a "
        f"connected machine - or run `keras.applications.VGG16(weights='imagenet', include_top=False)` "
        f"there, which puts it in ~/.keras/models/ - then copy it to {keras_cache_weights_path()} or pass "
        f"weights_path='/path/to/{IMAGENET_NOTOP_FILE}'."
    )


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _imagenet_backbone(weights_path: str | os.PathLike | None, size: int):
    """Return keras.applications.VGG16 notop at (size, size, 3) with the local ImageNet weights loaded."""
    import keras

    path = find_imagenet_weights(weights_path)
    if _md5(path) != IMAGENET_NOTOP_MD5:
        warnings.warn(
            f"{path} is not byte-identical to Keras' published ImageNet file (md5 differs from "
            f"{IMAGENET_NOTOP_MD5}); loading it anyway as VGG-16 notop weights",
            stacklevel=4,
        )
    try:
        return keras.applications.VGG16(include_top=False, weights=str(path), input_shape=(size, size, 3))
    except (ValueError, OSError, KeyError) as exc:
        raise ValueError(
            f"{path}: not a VGG-16 notop weights file in Keras' HDF5 layout "
            f"(expected the 13 conv layers of {IMAGENET_NOTOP_FILE}): {exc}"
        ) from exc


def _resize_input(inputs, patch_size: int, input_size: int | None, name: str):
    """Return (tensor, size): inputs upsampled to input_size (>= 32) when the patch is smaller."""
    from keras import layers

    size = max(32, patch_size) if input_size is None else int(input_size)
    if size < 32:
        raise ValueError(f"model {name!r}: input_size must be >= 32 (VGG-16 pools five times), got {size}")
    if size != patch_size:
        return layers.Resizing(size, size, interpolation="bilinear", name="upsample")(inputs), size
    return inputs, size


def _head(x, n_classes: int, dense_units: int, dropout: float, name: str):
    from keras import layers

    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"model {name!r}: dropout must be in [0, 1), got {dropout}")
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="head_dropout1")(x)
    x = layers.Dense(int(dense_units), activation="relu", name="head_dense")(x)
    x = layers.Dropout(dropout, name="head_dropout2")(x)
    return layers.Dense(n_classes, activation="softmax", name="probs")(x)


def _no_unused(name: str, unused: dict, allowed: str) -> None:
    if unused:
        raise ValueError(f"model {name!r}: unknown hparams {sorted(unused)}; expected {allowed}")


def build_vgg16(
    n_bands: int,
    n_timesteps: int | None,
    n_classes: int,
    *,
    patch_size: int,
    input_size: int | None = None,
    dense_units: int = 256,
    dropout: float = 0.5,
    **unused: Any,
) -> Any:
    """Return an uncompiled keras.Model: VGG-16 trained from scratch on (patch_size, patch_size, n_bands)."""
    import keras

    _no_unused("vgg16", unused, "input_size, dense_units, dropout")
    size = _check_patch_args("vgg16", n_bands, n_classes, patch_size)
    inputs = keras.Input(shape=(size, size, n_bands), name="patch", dtype="float32")
    x, s = _resize_input(inputs, size, input_size, "vgg16")
    with warnings.catch_warnings():  # Keras warns about n_bands != 3, which is intended here
        warnings.filterwarnings("ignore", message="This model usually expects")
        backbone = keras.applications.VGG16(include_top=False, weights=None, input_shape=(s, s, n_bands))
    x = backbone(x)
    return keras.Model(inputs, _head(x, n_classes, dense_units, dropout, "vgg16"), name="vgg16")


def build_vgg16_transfer(
    n_bands: int,
    n_timesteps: int | None,
    n_classes: int,
    *,
    patch_size: int,
    weights_path: str | os.PathLike | None = None,
    input_size: int | None = None,
    freeze_backbone: bool = False,
    dense_units: int = 256,
    dropout: float = 0.5,
    **unused: Any,
) -> Any:
    """Return an uncompiled keras.Model: VGG-16 with ImageNet weights from a local file, HH/HV/IA input."""
    import keras

    _no_unused("vgg16_transfer", unused, "weights_path, input_size, freeze_backbone, dense_units, dropout")
    size = _check_patch_args("vgg16_transfer", n_bands, n_classes, patch_size)
    if n_bands != 3:
        raise ValueError(
            f"model 'vgg16_transfer': ImageNet filters take exactly 3 input channels "
            f"(HH, HV, IA); got n_bands={n_bands}"
        )
    find_imagenet_weights(weights_path)  # fail before building anything when the file is missing
    inputs = keras.Input(shape=(size, size, n_bands), name="patch", dtype="float32")
    x, s = _resize_input(inputs, size, input_size, "vgg16_transfer")
    backbone = _imagenet_backbone(weights_path, s)
    backbone.trainable = not freeze_backbone
    x = backbone(x, training=False if freeze_backbone else None)
    model = keras.Model(inputs, _head(x, n_classes, dense_units, dropout, "vgg16_transfer"), name="vgg16_transfer")
    return model


def build_vgg16_nopool(
    n_bands: int,
    n_timesteps: int | None,
    n_classes: int,
    *,
    patch_size: int,
    width: float = 1.0,
    dense_units: int = 256,
    dropout: float = 0.5,
    weights_path: str | os.PathLike | None = None,
    **unused: Any,
) -> Any:
    """Return an uncompiled keras.Model: VGG-16's conv stack without max pooling, global-average head.

    `width` scales every block's filter count (1.0 = VGG-16). `weights_path` optionally initialises the
    convs from the ImageNet notop file (needs n_bands == 3 and width == 1.0): kernels do not depend on the
    spatial size, so pooling-free VGG-16 can start from ImageNet too.
    """
    import keras
    from keras import layers

    _no_unused("vgg16_nopool", unused, "width, dense_units, dropout, weights_path")
    size = _check_patch_args("vgg16_nopool", n_bands, n_classes, patch_size)
    if not width > 0:
        raise ValueError(f"model 'vgg16_nopool': width must be > 0, got {width}")
    if weights_path is not None and (n_bands != 3 or width != 1.0):
        raise ValueError(
            "model 'vgg16_nopool': ImageNet weights need n_bands == 3 and width == 1.0, got "
            f"n_bands={n_bands}, width={width}"
        )
    inputs = keras.Input(shape=(size, size, n_bands), name="patch", dtype="float32")
    x = inputs
    for block, n_conv, filters in _VGG16_BLOCKS:
        f = max(1, int(round(filters * width)))
        for i in range(1, n_conv + 1):
            x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"block{block}_conv{i}")(x)
    model = keras.Model(inputs, _head(x, n_classes, dense_units, dropout, "vgg16_nopool"), name="vgg16_nopool")
    if weights_path is not None:
        ref = _imagenet_backbone(weights_path, 32)
        for layer in ref.layers:
            if layer.name.startswith("block") and "conv" in layer.name:
                model.get_layer(layer.name).set_weights(layer.get_weights())
    return model

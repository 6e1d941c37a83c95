"""On-the-fly augmentation of SAR sea-ice patches for scarce, imbalanced training data.

Geometric: random horizontal/vertical flips, 90-degree rotations and small integer shifts (translation with
reflect padding, so no artificial zero borders). Radiometric: multiplicative speckle-like noise drawn from a
Gamma distribution with mean 1 and `speckle_looks` looks (the statistics of multilooked SAR intensity),
applied on the LINEAR intensity scale of the dB channels - i.e. adding 10*log10(n) in dB - and never to the
incidence-angle channel. Imbalance: `eokit.sampling.oversample` repeats minority-class patches until every
class is as frequent as the largest one (`oversample`/`class_counts` here are deprecated aliases).

`make_augmenter(...)` returns a seeded callable made of TensorFlow ops: it takes a batch (B, P, P, C) (or one
patch (P, P, C)) and returns an augmented batch of the same shape, usable eagerly or inside `tf.data.map`;
this is what `eokit.train.fit(..., augment=...)` calls. `augmentation_layers(...)` wraps it as a Keras layer
that augments only in training.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eokit._augment_layer import _layer_class, augmentation_layers, register  # noqa: F401 - re-exported
from eokit._augment_plots import plot_class_counts, plot_examples  # noqa: F401 - re-exported
from eokit._augmenter import (  # noqa: F401 - re-exported (private names too: tests use them)
    AUGMENT_OPTIONS,
    DB_CHANNELS,
    Augmenter,
    _gamma_unit_mean,
    _refuse_unknown_options,
    _shift,
    _where,
    make_augmenter,
)


def oversample(labels: Any, seed: int = 0, target: int | None = None) -> np.ndarray:
    """Return `eokit.sampling.oversample(labels, seed, target)`; deprecated here, moved to `eokit.sampling`."""
    from eokit import sampling

    _moved("oversample")
    return sampling.oversample(labels, seed=seed, target=target)


def _moved(name: str) -> None:
    import warnings

    warnings.warn(
        f"eokit.augment.{name} moved to eokit.sampling.{name}; import it from there "
        "(the old name goes in the next release)",
        DeprecationWarning,
        stacklevel=3,
    )


def augmented_examples(ds: Any, n: int = 4, seed: int = 0, augmenter: Augmenter | None = None) -> Any:
    """Return an xarray Dataset `image` (class, example, row, col, channel): example 0 original, then n augmented.

    `ds` is a patch set (eokit.schema.PATCH_SCHEMA); for each class present one patch is drawn (seeded) and
    shown with `n` augmentations (default augmenter: `make_augmenter(seed=seed)` on the set's channels). `label`
    and `label_name` coordinates name the classes.
    """
    import xarray as xr

    from eokit.schema import ICE_CLASSES, PATCH_SCHEMA, check_schema

    check_schema(ds, PATCH_SCHEMA, "patch set")
    if n < 1:
        raise ValueError(f"augmented_examples: n must be >= 1, got {n}")
    channels = [str(c) for c in ds["channel"].values] if "channel" in ds.coords else ["HH", "HV", "IA"]
    aug = augmenter if augmenter is not None else make_augmenter(seed=seed, channels=channels)
    rng = np.random.default_rng(seed)
    labels = np.asarray(ds["label"].values)
    classes = np.unique(labels)
    images = []
    for c in classes:
        i = int(rng.choice(np.flatnonzero(labels == c)))
        patch = np.asarray(ds["image"].isel(patch=i).values, dtype="float32")
        batch = np.repeat(patch[np.newaxis], n, axis=0)
        augmented = np.asarray(aug(batch))
        images.append(np.concatenate([patch[np.newaxis], augmented]))
    names = [ICE_CLASSES[int(c)] if 0 <= int(c) < len(ICE_CLASSES) else str(int(c)) for c in classes]
    return xr.Dataset(
        {"image": (("class", "example", "row", "col", "channel"), np.stack(images))},
        coords={
            "class": np.arange(len(classes)),
            "label": ("class", classes.astype("int64")),
            "label_name": ("class", names),
            "example": np.arange(n + 1),
            "channel": channels,
        },
    )


def class_counts(labels: Any, indices: Any = None) -> Any:
    """Return `eokit.sampling.class_counts(labels, indices)`; deprecated here, moved to `eokit.sampling`."""
    from eokit import sampling

    _moved("class_counts")
    return sampling.class_counts(labels, indices)

"""The seeded TensorFlow augmenter of `eokit.augment`: flips, 90-degree rotations, shifts, speckle noise.

TensorFlow is imported inside the functions that build or run the ops, so importing this module loads none.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from eokit._checks import renames

#: Channels holding backscatter in dB (speckle applies); anything else (e.g. IA) is left untouched.
DB_CHANNELS: tuple[str, ...] = ("HH", "HV", "VV", "VH")


class Augmenter:
    """Seeded random augmentation of patch batches with TensorFlow ops (see `make_augmenter`)."""

    def __init__(
        self,
        flip: bool = True,
        rot90: bool = True,
        shift: int = 2,
        speckle_looks: float | None = 4.4,
        seed: int = 0,
        channels: Sequence[str] = ("HH", "HV", "IA"),
        normalisation: dict[str, Sequence[float]] | None = None,
    ) -> None:
        for what, v in (("flip", flip), ("rot90", rot90)):
            if not isinstance(v, (bool, np.bool_)):
                raise ValueError(f"augment: {what} must be True or False, got {v!r}")  # noqa: TRY004
        if isinstance(shift, bool) or int(shift) != shift or shift < 0:
            raise ValueError(f"augment: shift must be a non-negative integer number of pixels, got {shift!r}")
        if speckle_looks is not None and not (speckle_looks > 0 and math.isfinite(speckle_looks)):
            raise ValueError(
                f"augment: speckle_looks must be > 0 and finite (or None to disable), got {speckle_looks!r}"
            )
        if isinstance(channels, str) or not list(channels):
            raise ValueError(f"augment: channels must be a non-empty list of channel names, got {channels!r}")
        dup = sorted({str(c) for c in channels if [str(x) for x in channels].count(str(c)) > 1})
        if dup:
            raise ValueError(f"augment: channels {list(channels)} name {dup} more than once; each channel once")
        self.flip, self.rot90, self.shift = bool(flip), bool(rot90), int(shift)
        self.speckle_looks = None if speckle_looks is None else float(speckle_looks)
        self.seed = int(seed)
        self.channels = [str(c) for c in channels]
        # dB per unit of the model input: 1 for raw dB, std for standardised channels (z = (dB - mean)/std).
        if normalisation is not None:
            std = np.asarray(normalisation.get("std", []), dtype="float64")
            if std.shape != (len(self.channels),) or not np.all(std > 0):
                raise ValueError(
                    f"augment: normalisation['std'] must hold one positive value per channel "
                    f"{self.channels}, got {normalisation.get('std')!r}"
                )
        else:
            std = np.ones(len(self.channels))
        self._db_scale = np.array(
            [1.0 / s if c in DB_CHANNELS else 0.0 for c, s in zip(self.channels, std, strict=True)], dtype="float32"
        )
        if self.speckle_looks is not None and not self._db_scale.any():
            raise ValueError(
                f"augment: speckle needs a dB channel ({', '.join(DB_CHANNELS)}) among "
                f"{self.channels}; pass speckle_looks=None to disable it"
            )
        import tensorflow as tf

        # Created eagerly here (a tf.Variable cannot be created inside tf.data/tf.function tracing).
        steps = (
            (["flip"] if self.flip else [])
            + (["rot90"] if self.rot90 else [])
            + ([f"shift{self.shift}"] if self.shift else [])
            + ([f"speckle{self.speckle_looks:g}looks"] if self.speckle_looks is not None else [])
        )
        #: Short description (recorded in model cards), e.g. "flip+rot90+shift2+speckle4.4looks seed=0".
        self.__name__ = ("+".join(steps) or "identity") + f" seed={self.seed}"
        self._gen = tf.random.Generator.from_seed(self.seed)
        self._graph_fn = tf.function(self._augment, reduce_retracing=True)  # for eager calls

    def reset(self) -> None:
        """Return None; restart the random stream so the next calls repeat the first ones."""
        self._gen.reset_from_seed(self.seed)

    def __call__(self, images: Any, seed: Any = None) -> Any:
        """Return the augmented batch (same shape and dtype) of `images` (B, P, P, C) or (P, P, C).

        Without `seed` the draws come from the augmenter's own seeded stream (call order matters). With
        `seed` (two ints, e.g. [epoch, batch index]) the call is stateless - the same seed gives the same
        result whatever the call order - which keeps a parallel `tf.data.map` reproducible.
        """
        import tensorflow as tf

        if not isinstance(images, tf.Tensor):
            arr = np.asarray(images)
            if arr.dtype.kind not in "fiub":
                raise ValueError(f"augment: images must be numeric (float32 patches), got dtype {arr.dtype}")
        x = tf.convert_to_tensor(images)
        if x.dtype != tf.float32:
            x = tf.cast(x, tf.float32)
        single = x.shape.rank == 3
        if single:
            x = x[tf.newaxis]
        if x.shape.rank != 4:
            raise ValueError(
                f"augment: expected images (batch, row, col, channel) or (row, col, channel), got shape {x.shape}"
            )
        if x.shape[-1] is not None and x.shape[-1] != len(self.channels):
            raise ValueError(
                f"augment: images have {x.shape[-1]} channels, augmenter was made for "
                f"{len(self.channels)} {self.channels}"
            )
        if self.rot90 and x.shape[1] is not None and x.shape[2] is not None and x.shape[1] != x.shape[2]:
            raise ValueError(f"augment: 90-degree rotations need square patches, got {x.shape[1]}x{x.shape[2]}")
        if self.shift and any(n is not None and n <= self.shift for n in x.shape[1:3]):
            raise ValueError(
                f"augment: shift {self.shift} must be smaller than the patch size {x.shape[1]}x{x.shape[2]}"
            )
        if seed is not None and not isinstance(seed, tf.Tensor) and np.asarray(seed).dtype.kind not in "iu":
            raise ValueError(f"augment: seed must be 1 to 4 integers, got {seed!r}")
        if seed is None:
            seeds = self._gen.make_seeds(5)  # one stateless seed pair per random step, shape (2, 5)
        else:
            parts = tf.reshape(tf.cast(seed, tf.int64), [-1])
            if parts.shape[0] is None or not 1 <= parts.shape[0] <= 4:
                raise ValueError(f"augment: seed must be 1 to 4 integers of static length, got shape {parts.shape}")
            key = tf.constant([self.seed, 0], tf.int64)
            for i in range(parts.shape[0]):
                key = tf.random.experimental.stateless_fold_in(key, parts[i])
            seeds = tf.transpose(tf.random.experimental.stateless_split(key, num=5))
        x = self._graph_fn(x, seeds) if tf.executing_eagerly() else self._augment(x, seeds)
        return x[0] if single else x

    def _augment(self, x, seeds):
        """Return the augmented 4-D batch x, with stateless draws from `seeds` (2, 5)."""
        import tensorflow as tf

        b = tf.shape(x)[0]
        if self.flip or self.rot90:
            # The dihedral group of the square: transpose (t), then flip columns (a), then flip rows (b).
            # flip + rot90: t, a, b independent fair bits -> the 8 transforms equally likely.
            # rot90 only: k in 0..3 -> rot90 by k (k=1: t,b; k=2: a,b; k=3: t,a). flip only: a, b.
            u = tf.random.stateless_uniform([b, 3], seeds[:, 0], 0, 2, dtype=tf.int32)
            if self.rot90 and not self.flip:
                k = tf.random.stateless_uniform([b], seeds[:, 1], 0, 4, dtype=tf.int32)
                t, fa, fb = k % 2 == 1, k >= 2, (k == 1) | (k == 2)
            else:
                t = u[:, 0] == 1
                fa, fb = u[:, 1] == 1, u[:, 2] == 1
            if self.rot90:
                x = _where(t, tf.transpose(x, [0, 2, 1, 3]), x)
            x = _where(fa, tf.reverse(x, [2]), x)
            x = _where(fb, tf.reverse(x, [1]), x)
        if self.shift:
            x = _shift(x, self.shift, seeds[:, 3])
        if self.speckle_looks is not None:
            idx = [i for i, s in enumerate(self._db_scale) if s != 0]
            shape = tf.concat([tf.shape(x)[:3], [len(idx)]], 0)
            n = _gamma_unit_mean(shape, seeds[:, 4], self.speckle_looks)  # mean 1, variance 1/L
            db = (10.0 / np.log(10.0)) * tf.math.log(tf.maximum(n, 1e-6)) * self._db_scale[idx]
            parts, j = [], 0
            for i in range(len(self.channels)):
                if i in idx:
                    parts.append(x[..., i : i + 1] + db[..., j : j + 1])
                    j += 1
                else:
                    parts.append(x[..., i : i + 1])
            x = tf.concat(parts, axis=-1)
        return x


def _where(mask, a, b):
    """Return a where the per-patch boolean mask (B,) is true, else b."""
    import tensorflow as tf

    return tf.where(mask[:, tf.newaxis, tf.newaxis, tf.newaxis], a, b)


def _gamma_unit_mean(shape, seed, looks: float, rounds: int = 2):
    """Return Gamma(looks, 1/looks) draws (mean 1, variance 1/looks) with the Marsaglia-Tsang method.

    Vectorised with a fixed number of proposal rounds: a sample rejected in every round (probability about
    1e-4 at 4.4 looks) keeps its last proposal, d*v, the Wilson-Hilferty approximation of the same draw.
    Several times faster on CPU than `tf.random.stateless_gamma`, whose per-element rejection loop is slow.
    """
    import tensorflow as tf

    alpha = looks if looks >= 1 else looks + 1.0  # boost: Gamma(a) = Gamma(a + 1) * U**(1/a)
    d = alpha - 1.0 / 3.0
    c = 1.0 / np.sqrt(9.0 * d)
    keys = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2 * rounds + 1)
    out: Any = None  # tensors (TensorFlow has no type information)
    done: Any = None
    for r in range(rounds):
        z = tf.random.stateless_normal(shape, keys[2 * r])
        u = tf.random.stateless_uniform(shape, keys[2 * r + 1], minval=1e-12, maxval=1.0)
        v = (1.0 + c * z) ** 3
        pos = v > 0
        ok = pos & (tf.math.log(u) < 0.5 * z * z + d - d * v + d * tf.math.log(tf.where(pos, v, 1.0)))
        cand = tf.where(pos, d * v, d)
        if out is None:
            out, done = cand, ok
        else:
            out = tf.where(done, out, cand)
            done = done | ok
    if looks < 1:
        out = out * tf.random.stateless_uniform(shape, keys[-1], minval=1e-12, maxval=1.0) ** (1.0 / looks)
    return out / looks


def _shift(x, shift: int, seed):
    """Return x translated by a random integer (dy, dx) in [-shift, shift] per patch, reflect padded."""
    import tensorflow as tf

    b, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    if x.shape[1] is not None and x.shape[1] <= shift or x.shape[2] is not None and x.shape[2] <= shift:
        raise ValueError(f"augment: shift {shift} must be smaller than the patch size {x.shape[1]}")
    padded = tf.pad(x, [[0, 0], [shift, shift], [shift, shift], [0, 0]], mode="REFLECT")
    d = tf.random.stateless_uniform([b, 2], seed, -shift, shift + 1, dtype=tf.int32)
    wp = w + 2 * shift
    rows = tf.range(h)[tf.newaxis, :, tf.newaxis] + shift + d[:, :1, tf.newaxis]  # (B, P, 1)
    cols = tf.range(w)[tf.newaxis, tf.newaxis, :] + shift + d[:, 1:, tf.newaxis]  # (B, 1, P)
    flat = tf.reshape(padded, [b, -1, tf.shape(x)[3]])
    out = tf.gather(flat, tf.reshape(rows * wp + cols, [b, -1]), axis=1, batch_dims=1)
    return tf.reshape(out, tf.shape(x))


def make_augmenter(
    flip: bool = True,
    rot90: bool = True,
    shift: int = 2,
    speckle_looks: float | None = 4.4,
    seed: int = 0,
    channels: Sequence[str] = ("HH", "HV", "IA"),
    normalisation: dict[str, Sequence[float]] | None = None,
    **unknown: Any,
) -> Augmenter:
    """Return a seeded callable images_batch -> augmented images_batch (TF ops, usable in tf.data.map).

    `normalisation` ({"std": per channel}) is needed when the images are standardised, so the speckle noise
    (multiplicative on linear intensity = additive in dB) is scaled to standardised units. Same seed and same
    call sequence -> same augmentations.
    """
    _refuse_unknown_options(unknown)
    return Augmenter(
        flip=flip,
        rot90=rot90,
        shift=shift,
        speckle_looks=speckle_looks,
        seed=seed,
        channels=channels,
        normalisation=normalisation,
    )


#: Options of make_augmenter (and of the SARAugmentation layer).
AUGMENT_OPTIONS: tuple[str, ...] = ("flip", "rot90", "shift", "speckle_looks", "seed", "channels", "normalisation")


def _refuse_unknown_options(unknown: dict[str, Any], also: Sequence[str] = ()) -> None:
    """Refuse augmentation option names that do not exist, naming the closest known one."""
    if not unknown:
        return
    known = list(AUGMENT_OPTIONS) + list(also)
    hint = renames(unknown, known)
    raise ValueError(f"augment: unknown options {sorted(unknown)}{hint}; known: {', '.join(known)}")

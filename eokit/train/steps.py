"""The compiled pieces of a training step: the gradient function, the per-replica step, weight files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from eokit._io import atomic_output


def _make_train_step(strategy: Any, grad_fn: Callable) -> Callable:
    """Return the compiled step: a gradient step on every replica, (loss, correct, count) summed over replicas."""
    import tensorflow as tf

    def _replica_step(x: Any, y: Any, w: Any) -> tuple[Any, Any, Any]:
        return grad_fn(x, y, w)

    @tf.function
    def _train_step(batch: Any) -> tuple[Any, Any, Any]:
        x, y, w = batch
        loss, correct, n = strategy.run(_replica_step, args=(x, y, w))
        return tuple(strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in (loss, correct, n))

    return _train_step


def _takes_seed(fn: Callable) -> bool:
    """Whether an augmentation callable accepts a stateless `seed=` keyword (as eokit.augment.Augmenter does)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "seed" in params  # not **kwargs: e.g. a Keras layer's __call__ would pass seed= on to call()


def _write_weights(net: Any, path: Path) -> None:
    with atomic_output(path, overwrite=True) as tmp:  # keeps the .weights.h5 suffix Keras requires
        net.save_weights(tmp)


def _read_weights(net: Any, path: Path) -> list[np.ndarray]:
    current = [np.array(w) for w in net.get_weights()]
    net.load_weights(path)
    best = [np.array(w) for w in net.get_weights()]
    net.set_weights(current)
    return best


def _make_grad_fn(net: Any, optimizer: Any, jit_compile: bool, n_replicas: int) -> Callable:
    import keras
    import tensorflow as tf

    def step(x: Any, y: Any, w: Any) -> tuple[Any, Any, Any]:
        with tf.GradientTape() as tape:
            probs = net(x, training=True)
            per = keras.losses.sparse_categorical_crossentropy(y, probs)
            denom = tf.cast(tf.shape(y)[0] * n_replicas, tf.float32)
            loss = tf.reduce_sum(per * w) / denom
            if net.losses:
                loss += tf.add_n(net.losses) / n_replicas
        grads = tape.gradient(loss, net.trainable_variables)
        optimizer.apply_gradients(zip(grads, net.trainable_variables, strict=True))
        real = tf.cast(w > 0, tf.float32)
        correct = tf.reduce_sum(real * tf.cast(tf.equal(tf.argmax(probs, -1, output_type=tf.int32), y), tf.float32))
        return loss, correct, tf.reduce_sum(real)

    if jit_compile:
        return tf.function(step, jit_compile=True, reduce_retracing=True)
    return step

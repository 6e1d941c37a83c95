"""The compiled pieces of a training step: the gradient function, the per-replica step, each epoch's input
pipeline (`_make_dataset_fn`), weight files."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eokit._io import atomic_output
from eokit.train.data import _epoch_batches, _output_signature

if TYPE_CHECKING:
    from eokit.train.prepare import _Data


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


def _make_grad_fn(
    net: Any, optimizer: Any, jit_compile: bool, n_replicas: int, label_smoothing: float = 0.0
) -> Callable:
    import keras
    import tensorflow as tf

    def step(x: Any, y: Any, w: Any) -> tuple[Any, Any, Any]:
        with tf.GradientTape() as tape:
            probs = net(x, training=True)
            if label_smoothing:
                target = tf.one_hot(y, tf.shape(probs)[-1], dtype=probs.dtype)
                per = keras.losses.categorical_crossentropy(target, probs, label_smoothing=label_smoothing)
            else:
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


def _make_dataset_fn(
    d: _Data, batch_size: int, seed: int, weights: np.ndarray | None, ts_aug: dict | None, tf_aug: Callable | None
) -> Callable[[int], Callable]:
    """Return epoch -> the function `distribute_datasets_from_function` calls once per input pipeline."""
    import tensorflow as tf

    src, kind, card = d.src, d.kind, d.card
    aug_stateless = tf_aug is not None and _takes_seed(tf_aug)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    options.deterministic = True
    # no autotuning: its model-optimisation thread took a core from the step now and then, halving whole epochs
    # (LSTM 2 x 128 on 2 cores: epochs at 805 or 1,530 samples/s with it, 1,500-1,560 without); the pipeline is
    # a generator and a map, sized below, with nothing left to tune
    options.autotune.enabled = False
    n_cpu = os.cpu_count() or 1

    def _dataset_fn(epoch: int) -> Callable:
        def fn(ctx: Any) -> Any:
            per_replica = ctx.get_per_replica_batch_size(batch_size)
            n_pipe, pid = ctx.num_input_pipelines, ctx.input_pipeline_id
            rng = np.random.default_rng([seed, epoch])
            aug_rng = np.random.default_rng([seed, epoch, pid, 1])

            def gen() -> Iterator:
                return _epoch_batches(
                    src,
                    batch_size,
                    rng,
                    pipeline=pid,
                    n_pipelines=n_pipe,
                    weights=weights,
                    ts_augment=ts_aug,
                    aug_rng=aug_rng,
                )

            data = tf.data.Dataset.from_generator(gen, output_signature=_output_signature(kind, card))
            if ctx.num_replicas_in_sync // n_pipe > 1:  # several replicas per worker: per-replica batches
                data = data.rebatch(per_replica)
            if tf_aug is not None and aug_stateless:
                # one stateless seed per (epoch, pipeline, batch): a parallel map gives the same draws on every
                # run and on resume, whatever order the batches are augmented in
                data = data.enumerate().map(
                    lambda i, b: (
                        tf_aug(b[0], seed=tf.stack([tf.constant(epoch, tf.int64), tf.constant(pid, tf.int64), i])),
                        b[1],
                        b[2],
                    ),
                    num_parallel_calls=n_cpu,
                )
            elif tf_aug is not None:  # a plain callable: keep its calls in batch order (a stateful one stays seeded)
                data = data.map(lambda x, y, w: (tf_aug(x), y, w))
            return data.prefetch(2).with_options(options)

        return fn

    return _dataset_fn


def _warm_up(train_step: Callable, net: Any, optimizer: Any, kind: str, card: dict, batch_size: int) -> None:
    """Return None after running the step once on an all-zero batch of weight 0 and putting back every model and
    optimizer variable (weights, optimizer slots and step count, dropout seeds, BatchNorm statistics), so that the
    run goes on exactly as without it.

    Why: when the first run of a step in a process is fed by a `from_generator` pipeline, TensorFlow settles into
    an execution half as fast for every step after it, in that process (LSTM 2 x 128, 2 cores: 690 against 1,500
    samples/s, new models included); a first step on tensors avoids it. The cause inside TensorFlow was not found;
    `benchmarks/bench_training.py` measures the effect. The batch has the pipeline's shapes, so the step is
    traced once for both."""
    import tensorflow as tf

    spec = _output_signature(kind, card)
    zeros = tf.nest.map_structure(lambda s: tf.zeros((batch_size, *s.shape[1:]), s.dtype), spec)
    saved = [(v, v.numpy()) for v in [*net.variables, *optimizer.variables]]
    for batch in tf.data.Dataset.from_tensors(zeros).unbatch().batch(batch_size):  # batch size unknown, as in fit
        train_step(batch)
    for v, value in saved:
        v.assign(value)

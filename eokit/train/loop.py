"""The training loop: `fit`, step by step (data and card, augmentation, outputs, model and checkpoints, epochs).

One custom training loop (`strategy.run` over per-replica batches made by `distribute_datasets_from_function`)
serves a single machine and `tf.distribute.MultiWorkerMirroredStrategy` alike, because Keras 3 `fit` fails
under the multi-worker strategy. On one machine the gradient step is compiled with XLA.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eokit._io import check_target, write_json_atomic
from eokit.card import save_model
from eokit.models._common import has_gpu
from eokit.train import steps as _steps
from eokit.train.checks import _check_fit_args, _check_model_shapes, _check_resume, _run_identity
from eokit.train.data import _evaluate_source
from eokit.train.prepare import _augmentation, _class_weights, _Data, _prepare_data
from eokit.train.recipe import Recipe, make_optimizer, make_recipe
from eokit.train.steps import _make_dataset_fn, _make_grad_fn, _make_train_step, _read_weights, _write_weights
from eokit.train.strategy import _is_multiworker, _n_workers, _tf_config, get_strategy, is_chief
from eokit.train.threads import current_threads


@dataclass
class _Run:
    """The model in training, its optimizer, checkpointed counters and checkpoints, and the history so far."""

    net: Any
    optimizer: Any
    epoch_var: Any
    best_var: Any
    wait_var: Any
    ckpt: Any
    manager: Any = None
    ckpt_dir: Path | None = None
    history: dict[str, list[float]] = field(default_factory=dict)
    best_weights_path: Path | None = None
    best_weights: list[np.ndarray] | None = None
    epoch_seconds: list[float] = field(default_factory=list)


def fit(
    model: Any,
    train: Any,
    val: Any = None,
    *,
    epochs: int = 20,
    batch_size: int = 128,
    seed: int = 0,
    output: str | os.PathLike | None = None,
    class_weight: bool | dict = False,
    augment: Any = None,
    early_stopping: int | None = 5,
    checkpoint: bool = True,
    resume: bool = False,
    progress: bool = True,
    strategy: Any = None,
    hparams: dict | None = None,
    learning_rate: float = 1e-3,
    bands: Sequence[str] | None = None,
    flag_handling: str = "interpolate",
    oversample: np.ndarray | None = None,
    split: dict | None = None,
    name: str | None = None,
    overwrite: bool = False,
    jit_compile: bool | None = None,
    callbacks: Sequence[Callable[[int, dict], Any]] | None = None,
    optimizer: str = Recipe.optimizer,
    weight_decay: float | None = None,
    schedule: str = Recipe.schedule,
    warmup: int = Recipe.warmup,
    label_smoothing: float = Recipe.label_smoothing,
    monitor: str = Recipe.monitor,
) -> tuple[Any, dict, dict]:
    """Return (trained keras model, model card, history) after training on `train` (validating on `val`).

    `model` is a registered name (`eokit.models.available()`) or a keras.Model. `train`/`val` are xarray
    Datasets or store paths. Time series: `augment=True` or {"drop": p, "noise": sigma, "fill": bool}
    (dropped acquisitions interpolated like clouds; by default when `flag_handling` fills them); patches: a callable
    on batches of images (e.g. `eokit.augment.make_augmenter(...)`) or True (flips, rotations, shifts and speckle
    scaled to the standardised channels; speckle only on dB SAR channels), and `oversample` indices into `train`.
    Off by default (None or False). A callable
    taking `seed=` (as `Augmenter` does) gets a stateless seed per batch and runs in parallel, reproducibly; others
    run in order.
    The model and its card are written to `{output}/{name}.keras` and `.json`; checkpoints each epoch go to
    `{output}/checkpoints/{name}/` and `resume=True` continues from the latest one. Each of `callbacks`
    is called as `callback(epoch, logs)` after every epoch (logs: that epoch's metrics and seconds).
    `class_weight` True weights the loss by inverse class frequency (balanced), a dict gives weights per class id
    or name; off by default: on the real cases balanced weights cost overall accuracy without raising macro F1
    (Slovenia TempCNN block split: OA 0.918 vs 0.955, macro F1 0.389 vs 0.391; polar patches fold 0: OA 0.605
    vs 0.611, macro F1 0.589 vs 0.630; benchmarks/bench_accuracy.py).
    The recipe (`eokit.train.recipe`): `optimizer` "adam" or "adamw" (`weight_decay`, default 1e-4 for AdamW),
    `schedule` "constant" or "cosine" (to zero at the last epoch) after `warmup` epochs of linear warm-up,
    `label_smoothing`, and `monitor` "val_loss" or "val_macro_f1" for early stopping and the best epoch restored.
    `flag_handling` (time series, `eokit.schema.FLAG_HANDLINGS`): "interpolate" (default) fills clouds, shadows and
    snow linearly in time between clear observations; "mask" zeroes them with mask 0. A cloud pattern is shared
    by neighbouring pixels, so masked series let a model learn where a pixel is: on whole held-out Slovenia
    fields TempCNN scored OA 0.775 masked against 0.921 interpolated (forest 0.912; block split 0.966 vs 0.955).
    """
    import tensorflow as tf

    _check_fit_args(epochs, batch_size, learning_rate, early_stopping, flag_handling, bands)
    hparams = dict(hparams or {})
    strategy = get_strategy(strategy)
    multi = _is_multiworker(strategy)
    chief = is_chief() if multi else True
    show = progress and chief
    n_replicas = strategy.num_replicas_in_sync
    d = _prepare_data(
        model,
        train,
        val,
        hparams,
        bands=bands,
        flag_handling=flag_handling,
        oversample=oversample,
        split=split,
        name=name,
        show=show,
    )
    has_val = d.val_src is not None
    recipe = make_recipe(
        optimizer, weight_decay, schedule, warmup, label_smoothing, monitor, epochs=epochs, has_val=has_val
    )
    weights = _class_weights(class_weight, d)
    ts_aug, tf_aug = _augmentation(augment, d, seed)
    card = d.card
    _record_hparams(card, ts_aug, tf_aug, learning_rate, batch_size, seed, class_weight, early_stopping)
    card["hparams"].update(recipe.as_dict())
    model_path, ckpt_dir = _output_paths(
        output, d.name, checkpoint=checkpoint, chief=chief, resume=resume, overwrite=overwrite
    )
    steps_per_epoch = math.ceil(d.src.n / batch_size)
    run = _build_model(
        model, d, hparams, strategy, lambda: make_optimizer(recipe, learning_rate, steps_per_epoch, epochs), seed
    )
    _restore(run, d, ckpt_dir, resume=resume, chief=chief, show=show)
    if batch_size % n_replicas:
        raise ValueError(f"batch_size {batch_size} must be divisible by the {n_replicas} replicas")
    jit_compile = _use_jit(jit_compile, multi, run.net)
    card["hparams"]["jit_compile"] = jit_compile
    grad_fn = _make_grad_fn(run.net, run.optimizer, jit_compile, n_replicas, recipe.label_smoothing)
    train_step = _make_train_step(strategy, grad_fn)
    if not multi:
        _steps._warm_up(train_step, run.net, run.optimizer, d.kind, d.card, batch_size)
    n_pipelines = max(1, _n_workers(_tf_config())) if multi else 1
    dataset_fn = _make_dataset_fn(d, batch_size, seed, weights, ts_aug, tf_aug)
    predict_fn = tf.function(lambda x: run.net(x, training=False), jit_compile=jit_compile, reduce_retracing=True)
    patience = _run_epochs(
        run,
        d,
        strategy,
        train_step,
        dataset_fn,
        predict_fn,
        epochs=epochs,
        batch_size=batch_size,
        early_stopping=early_stopping,
        show=show,
        callbacks=callbacks,
        monitor=recipe.monitor,
        class_weights=weights,
    )
    if patience is not None and run.best_weights is not None:
        run.net.set_weights(run.best_weights)
    card["metrics"] = _final_metrics(run.history, run.epoch_seconds, d.val_src is not None, recipe.monitor)
    card["distribution"] = {
        "strategy": type(strategy).__name__,
        "replicas": int(n_replicas),
        "workers": int(n_pipelines),
        "cpu_threads": current_threads(),
    }
    if model_path is not None:
        _save_outputs(run.net, card, model_path, ckpt_dir, chief=chief, name=d.name)
    return run.net, card, run.history


def _record_hparams(
    card: dict,
    ts_aug: Any,
    tf_aug: Any,
    learning_rate: float,
    batch_size: int,
    seed: int,
    class_weight: bool | dict,
    early_stopping: int | None,
) -> None:
    """Record the training settings in the card's hparams (augmentation by name when it is a callable)."""
    card["hparams"]["augment"] = ts_aug if ts_aug else (getattr(tf_aug, "__name__", "callable") if tf_aug else None)
    card["hparams"].update(
        {
            "learning_rate": learning_rate,
            "batch_size": batch_size,
            "seed": seed,
            "class_weight": bool(class_weight),
            "early_stopping": early_stopping,
        }
    )


def _use_jit(jit_compile: bool | None, multi: bool, net: Any) -> bool:
    """Return whether steps are XLA-compiled: as asked, else on one machine for models without recurrent layers,
    and without 2-D convolutions unless a GPU is present (on CPU, XLA's convolutions are slower than oneDNN's:
    32 vs 41 s per epoch of the sea-ice CNN on 64-px patches, 2 cores, plus 25 s of compilation)."""
    import keras

    if jit_compile is None:
        layers = net._flatten_layers(include_self=False) if hasattr(net, "_flatten_layers") else net.layers
        kinds = [type(layer) for layer in layers]
        recurrent = any(issubclass(k, keras.layers.RNN) for k in kinds)
        conv2d = any(issubclass(k, keras.layers.Conv2D) for k in kinds)
        jit_compile = not multi and not recurrent and (not conv2d or has_gpu())
    return bool(jit_compile)


# ------------------------------------------------------------------------------------------------ model and outputs
def _output_paths(
    output: str | os.PathLike | None, name: str, *, checkpoint: bool, chief: bool, resume: bool, overwrite: bool
) -> tuple[Path | None, Path | None]:
    """Return (model path, checkpoint folder), refusing an existing model and clearing old checkpoints."""
    out_dir = Path(output) if output is not None else None
    model_path = out_dir / f"{name}.keras" if out_dir is not None else None
    if model_path is not None:
        check_target(model_path, overwrite or resume)
    ckpt_dir = out_dir / "checkpoints" / name if (out_dir is not None and checkpoint) else None
    if ckpt_dir is not None and not chief:
        ckpt_dir = Path(tempfile.mkdtemp(prefix=f"eokit-worker-ckpt-{name}-"))
    if ckpt_dir is not None and not resume and ckpt_dir.exists() and chief:
        shutil.rmtree(ckpt_dir)
    if ckpt_dir is not None:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
    return model_path, ckpt_dir


def _build_model(model: Any, d: _Data, hparams: dict, strategy: Any, make_opt: Callable[[], Any], seed: int) -> _Run:
    """Return the run: the model built (or given) under the strategy, its optimizer (made by `make_opt` in the
    strategy's scope, as Keras requires), counters and checkpoint."""
    import keras
    import tensorflow as tf

    from eokit import models as registry

    keras.utils.set_random_seed(seed)
    n_classes = len(d.class_ids)
    with strategy.scope():
        if isinstance(model, str):
            net = registry.build(
                d.model_name, n_bands=len(d.want), n_timesteps=d.n_timesteps, n_classes=n_classes, **hparams
            )
        else:
            net = model
        _check_model_shapes(net, d.kind, len(d.want), d.n_timesteps, d.patch_size, n_classes)
        optimizer = make_opt()
        optimizer.build(net.trainable_variables)
        epoch_var = tf.Variable(0, dtype=tf.int64, trainable=False)
        best_var = tf.Variable(np.inf, dtype=tf.float64, trainable=False)
        wait_var = tf.Variable(0, dtype=tf.int64, trainable=False)
    # the dropout seed-generator states are not tracked by the model: checkpoint them explicitly, so that a
    # resumed run continues exactly as an uninterrupted one
    seed_states = {f"s{i}": v.value for i, v in enumerate(net.non_trainable_variables) if "seed_generator" in v.path}
    ckpt = tf.train.Checkpoint(
        model=net, optimizer=optimizer, epoch=epoch_var, best=best_var, wait=wait_var, seed_states=seed_states
    )
    return _Run(net, optimizer, epoch_var, best_var, wait_var, ckpt)


def _restore(run: _Run, d: _Data, ckpt_dir: Path | None, *, resume: bool, chief: bool, show: bool) -> None:
    """Set up checkpoints in `ckpt_dir` and, with `resume`, continue from the latest one and its history."""
    import tensorflow as tf

    identity = _run_identity(d.name, run.net, d.card)
    if resume and ckpt_dir is not None and chief:
        _check_resume(ckpt_dir, identity)
    run.ckpt_dir = ckpt_dir
    manager = tf.train.CheckpointManager(run.ckpt, str(ckpt_dir), max_to_keep=2) if ckpt_dir is not None else None
    run.manager = manager
    run.history = {"loss": [], "accuracy": []}
    if d.val_src is not None:
        run.history.update({"val_loss": [], "val_accuracy": [], "val_macro_f1": []})
    run.best_weights_path = ckpt_dir / "best.weights.h5" if ckpt_dir is not None else None
    if resume and manager is not None and manager.latest_checkpoint:
        assert ckpt_dir is not None
        try:
            run.ckpt.restore(manager.latest_checkpoint)
        except (ValueError, tf.errors.OpError) as e:  # a folder from before run.json was written
            raise ValueError(
                f"cannot resume from {ckpt_dir}: its checkpoint {manager.latest_checkpoint} does not fit "
                f"model {d.model_name!r} with these hparams ({str(e).splitlines()[0]}); resume with the "
                "same model and hparams, or pass resume=False"
            ) from e
        hist_file = ckpt_dir / "history.json"
        if hist_file.exists():
            run.history = json.loads(hist_file.read_text())
        if run.best_weights_path is not None and run.best_weights_path.exists():
            run.best_weights = _read_weights(run.net, run.best_weights_path)
        if show:
            print(f"resumed {d.name} from {manager.latest_checkpoint} after epoch {int(run.epoch_var.numpy())}")
    if ckpt_dir is not None and chief:
        write_json_atomic(identity, ckpt_dir / "run.json")


def _save_outputs(net: Any, card: dict, model_path: Path, ckpt_dir: Path | None, *, chief: bool, name: str) -> None:
    """Write the model and its card (chief); the other workers take part in saving, into a throw-away folder."""
    if chief:
        save_model(net, card, model_path, overwrite=True)
    else:  # every worker must take part in saving; non-chief workers write to a throw-away folder
        tmp = Path(tempfile.mkdtemp(prefix="eokit-worker-model-"))
        net.save(tmp / f"{name}.keras")
        shutil.rmtree(tmp, ignore_errors=True)
        if ckpt_dir is not None:
            shutil.rmtree(ckpt_dir, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ steps and epochs


def _train_epoch(dist: Any, train_step: Callable, bar: Any, batch_size: int, steps: int) -> tuple[float, float]:
    """Return (mean loss, accuracy) over one epoch's distributed batches, updating the progress bar."""
    tot_loss = tot_correct = 0.0
    seen = 0.0
    for i, batch in enumerate(dist):
        loss, correct, nb = train_step(batch)
        tot_loss += float(loss) * batch_size
        tot_correct += float(correct)
        seen += float(nb)
        bar.update(1)
        if i % 5 == 0 or i == steps - 1:
            bar.set_postfix(loss=f"{tot_loss / seen:.4f}", acc=f"{tot_correct / seen:.3f}")
    return tot_loss / max(seen, 1), tot_correct / max(seen, 1)


def _end_epoch(run: _Run, epoch: int, monitor: float) -> None:
    """Count the epoch, keep the best weights so far (or one more epoch without improvement), checkpoint."""
    run.epoch_var.assign(epoch + 1)
    if monitor < float(run.best_var.numpy()) - 1e-6:
        run.best_var.assign(monitor)
        run.wait_var.assign(0)
        run.best_weights = [np.array(w) for w in run.net.get_weights()]
        if run.best_weights_path is not None:
            _write_weights(run.net, run.best_weights_path)
    else:
        run.wait_var.assign_add(1)
    if run.manager is not None and run.ckpt_dir is not None:
        run.manager.save(checkpoint_number=epoch + 1)
        (run.ckpt_dir / "history.json").write_text(json.dumps(run.history))


def _run_epochs(
    run: _Run,
    d: _Data,
    strategy: Any,
    train_step: Callable,
    dataset_fn: Callable[[int], Callable],
    predict_fn: Callable,
    *,
    epochs: int,
    batch_size: int,
    early_stopping: int | None,
    show: bool,
    callbacks: Sequence[Callable[[int, dict], Any]] | None,
    monitor: str = "val_loss",
    class_weights: np.ndarray | None = None,
) -> int | None:
    """Train epoch by epoch up to `epochs` or early stopping; return the patience (None: no early stopping)."""
    from eokit._progress import tqdm

    steps = math.ceil(d.src.n / batch_size)
    history = run.history
    patience = int(early_stopping) if early_stopping else None
    stop = patience is not None and int(run.wait_var.numpy()) >= patience
    for epoch in range(int(run.epoch_var.numpy()), epochs):
        if stop:
            break
        t0 = time.perf_counter()
        dist = strategy.distribute_datasets_from_function(dataset_fn(epoch))
        bar = tqdm(total=steps, desc=f"{d.name} epoch {epoch + 1}/{epochs}", disable=not show, leave=True)
        loss, accuracy = _train_epoch(dist, train_step, bar, batch_size, steps)
        run.epoch_seconds.append(time.perf_counter() - t0)
        history["loss"].append(loss)
        history["accuracy"].append(accuracy)
        if d.val_src is not None:
            vl, va, vf = _evaluate_source(predict_fn, d.val_src, batch_size, class_weights)
            history["val_loss"].append(vl)
            history["val_accuracy"].append(va)
            history.setdefault("val_macro_f1", []).append(vf)  # a history resumed from an older run may lack it
            bar.set_postfix(
                loss=f"{history['loss'][-1]:.4f}",
                acc=f"{history['accuracy'][-1]:.3f}",
                val_loss=f"{vl:.4f}",
                val_acc=f"{va:.3f}",
            )
            watched = -vf if monitor == "val_macro_f1" else vl
        else:
            watched = history["loss"][-1]
        bar.close()
        _end_epoch(run, epoch, watched)
        logs = {k: v[-1] for k, v in history.items()}
        logs["seconds"] = run.epoch_seconds[-1]
        for cb in callbacks or ():
            cb(epoch, logs)
        if patience is not None and int(run.wait_var.numpy()) >= patience:
            if show:
                print(f"early stopping after epoch {epoch + 1}: no improvement for {patience} epochs")
            stop = True
    return patience


def _final_metrics(
    history: dict[str, list[float]], epoch_seconds: list[float], has_val: bool, monitor: str = "val_loss"
) -> dict[str, Any]:
    """Return the card's metrics: epochs trained and their seconds, the best epoch (by the monitor) and its scores."""
    if not history["loss"]:
        best_epoch = 0
    elif has_val and monitor == "val_macro_f1":
        best_epoch = int(np.argmax(history["val_macro_f1"])) + 1
    else:
        best_epoch = int(np.argmin(history["val_loss" if has_val else "loss"])) + 1
    metrics: dict[str, Any] = {
        "epochs_trained": len(history["loss"]),
        "epoch_seconds": [round(t, 3) for t in epoch_seconds],
        "best_epoch": best_epoch,
        "loss": history["loss"][best_epoch - 1] if best_epoch else None,
        "accuracy": history["accuracy"][best_epoch - 1] if best_epoch else None,
    }
    if has_val and best_epoch:
        metrics.update(
            val_loss=history["val_loss"][best_epoch - 1], val_accuracy=history["val_accuracy"][best_epoch - 1]
        )
        if history.get("val_macro_f1"):
            metrics["val_macro_f1"] = history["val_macro_f1"][best_epoch - 1]
    return metrics

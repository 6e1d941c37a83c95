"""The per-process model runtime of maps: models loaded once per process (by path), checked cards, compiled calls.

One `_ModelCache` object (`_CACHE`) holds every cached thing; `eokit.maps._MODELS` is its `models` dict. Workers
(local threads or dask.distributed processes) load a model by its path key the first time a task needs it, so
models never travel inside tasks; a model object given to a distributed scheduler is saved once to a temporary
folder and loaded from there.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import numpy as np

from eokit import _dask as _scheduling
from eokit.card import check_card, load_model, save_model
from eokit.models._common import has_gpu


@dataclass
class _ModelCache:
    """Per-process model state: loaded models and cards by key, compiled calls, run locks, saved model copies."""

    models: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    run_locks: dict[str, threading.Lock] = field(default_factory=dict)
    cards: dict[str, dict] = field(default_factory=dict)
    fns: dict[str, Any] = field(default_factory=dict)
    saved: dict[int, tuple[Any, str]] = field(default_factory=dict)


_CACHE = _ModelCache()


def _is_distributed(scheduler: Any) -> bool:
    """Return True when `scheduler` names a dask.distributed scheduler (address or Client)."""
    return _scheduling.is_client(scheduler) or _scheduling.is_address(scheduler)


def _register_model(model_or_path: Any, card: dict | None, scheduler: Any, kind: str) -> tuple[str, dict]:
    """Return (model key, card checked against the model and `kind`): a path key or an in-process object key."""
    key, card = _register_unchecked(model_or_path, card, scheduler)
    where = f"model card of {model_or_path}" if isinstance(model_or_path, (str, os.PathLike)) else "card="
    with _CACHE.lock:
        model = _CACHE.models.get(key, _CACHE.saved.get(id(model_or_path), (model_or_path,))[0])
    return key, cast(dict, check_card(model, card, where, kind=kind))  # a ModelCard is a plain dict


def _register_unchecked(model_or_path: Any, card: dict | None, scheduler: Any) -> tuple[str, dict]:
    """Return (model key, card): a path key workers load themselves, or an in-process object key."""
    if isinstance(model_or_path, (str, os.PathLike)):
        path = Path(model_or_path).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"model file {path} does not exist")
        # cached per file version: a retrained model saved under the same name is loaded afresh
        key = f"path:{path.resolve()}|{path.stat().st_mtime_ns}"
        with _CACHE.lock:
            loaded = _CACHE.models.get(key)
            if loaded is None or card is None:
                model, file_card = load_model(path)  # checks the card; local workers reuse this copy
                _CACHE.models[key] = model
                _CACHE.cards[key] = cast(dict, file_card)  # a ModelCard is a plain dict
        return key, (card if card is not None else _CACHE.cards[key])
    if card is None:
        raise ValueError(
            "a keras.Model object was given without its model card: pass card=... (the JSON written beside "
            "model.keras) or give the path of the saved model"
        )
    if _is_distributed(scheduler):
        # Workers load models by path: save once (per model object) to a temporary folder that local
        # workers can read and that is removed when this process exits.
        import atexit
        import shutil

        with _CACHE.lock:
            saved = _CACHE.saved.get(id(model_or_path))
        if saved is None or saved[0] is not model_or_path:
            folder = tempfile.mkdtemp(prefix="eokit-maps-")
            atexit.register(shutil.rmtree, folder, ignore_errors=True)
            tmp = save_model(model_or_path, card, Path(folder) / "model.keras")
            saved = (model_or_path, f"path:{tmp}|{tmp.stat().st_mtime_ns}")
            with _CACHE.lock:
                _CACHE.saved[id(model_or_path)] = saved
        return saved[1], card
    key = f"obj:{id(model_or_path)}"
    with _CACHE.lock:
        _CACHE.models[key] = model_or_path
    return key, card


def _get_model(key: str) -> Any:
    """Return the Keras model for `key`, loading it once per process."""
    with _CACHE.lock:
        if key not in _CACHE.models:
            if not key.startswith("path:"):
                raise RuntimeError(f"model {key} is not registered in this process (pass a saved model path)")
            _CACHE.models[key] = load_model(key[5:].rsplit("|", 1)[0])[0]
        _CACHE.run_locks.setdefault(key, threading.Lock())
        return _CACHE.models[key]


def _bucket(n: int, batch_size: int) -> int:
    """Return the padded batch length for `n` rows: batch_size/16, batch_size/4 or batch_size (few shapes)."""
    for size in sorted({max(1, batch_size // 16), max(1, batch_size // 4), batch_size}):
        if n <= size:
            return size
    return batch_size


def _pad_rows(x: Any, size: int) -> Any:
    """Return `x` (array or dict of arrays) padded with zeros along axis 0 to `size` rows."""
    if isinstance(x, Mapping):
        return {k: _pad_rows(v, size) for k, v in x.items()}
    x = np.asarray(x)
    if len(x) == size:
        return x
    pad = np.zeros((size - len(x),) + x.shape[1:], dtype=x.dtype)
    return np.concatenate([x, pad])


@lru_cache(maxsize=1)
def _auto_jit() -> bool:
    """Return True where XLA compilation pays (CPU: about 2x on the LSTM); on a GPU keep cuDNN kernels."""
    return not has_gpu()


def _infer_fn(key: str, jit: bool | None) -> Any:
    """Return the callable that runs the model on one padded batch: XLA-compiled or Keras predict_on_batch."""
    jit = _auto_jit() if jit is None else bool(jit)
    fkey = f"{key}#jit={jit}"
    with _CACHE.lock:
        fn = _CACHE.fns.get(fkey)
    if fn is not None:
        return fn
    model = _get_model(key)
    if jit:
        import tensorflow as tf

        compiled = tf.function(lambda d: model(d, training=False), jit_compile=True)

        def fn(batch: Any) -> Any:
            try:
                return compiled(batch)
            except Exception:  # noqa: BLE001 - a layer XLA cannot compile: fall back to Keras for good
                with _CACHE.lock:
                    _CACHE.fns[fkey] = model.predict_on_batch
                return model.predict_on_batch(batch)
    else:
        fn = model.predict_on_batch
    with _CACHE.lock:
        _CACHE.fns.setdefault(fkey, fn)
        return _CACHE.fns[fkey]


def _run_model(key: str, inputs: Any, batch_size: int, jit: bool | None = None) -> np.ndarray:
    """Return the model's class probabilities for `inputs` (one batch of at most batch_size rows)."""
    fn = _infer_fn(key, jit)
    n = len(next(iter(inputs.values()))) if isinstance(inputs, Mapping) else len(inputs)
    padded = _pad_rows(inputs, _bucket(n, batch_size))
    # One model call at a time per process: TF already spreads one call over every core (or the GPU),
    # while the other dask threads keep reading and preparing the next chunks.
    with _CACHE.run_locks[key]:
        probs = fn(padded)
    return np.asarray(probs, dtype=np.float32)[:n]

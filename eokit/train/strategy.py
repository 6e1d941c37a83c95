"""Distribution: the tf.distribute strategy to train with, and which worker is the chief (from TF_CONFIG)."""

from __future__ import annotations

import json
import os
from typing import Any


def _tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON: {e}") from e


def _n_workers(cfg: dict) -> int:
    cluster = cfg.get("cluster", {})
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def is_chief() -> bool:
    """Return True on the chief worker (or on a single machine): the one that writes outputs."""
    cfg = _tf_config()
    task = cfg.get("task", {})
    if not cfg or _n_workers(cfg) <= 1:
        return True
    if "chief" in cfg.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0


def get_strategy(strategy: Any = None) -> Any:
    """Return the tf.distribute strategy to train with: MultiWorkerMirrored when TF_CONFIG lists workers.

    `strategy` may be a strategy object, "multiworker" (force MultiWorkerMirroredStrategy), "default"
    (no distribution) or None/"auto" (from TF_CONFIG).
    """
    import tensorflow as tf

    if strategy is not None and not isinstance(strategy, str):
        return strategy
    name = (strategy or "auto").lower().replace("-", "").replace("_", "")
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "multiworker" or (name == "auto" and _n_workers(_tf_config()) > 1):
        opts = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING
        )
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=opts)
    if name != "auto":
        raise ValueError(
            f"strategy must be a tf.distribute.Strategy, 'auto', 'default' or 'multiworker', got {strategy!r}"
        )
    return tf.distribute.get_strategy()


def _is_multiworker(strategy: Any) -> bool:
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or type(strategy).__name__.startswith(
        "CollectiveAllReduceStrategy"
    )

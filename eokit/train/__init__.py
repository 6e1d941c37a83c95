"""Training: a tf.data input pipeline read block by block from xarray/Zarr, one training loop, model cards.

One custom training loop (`strategy.run` over per-replica batches made by `distribute_datasets_from_function`)
serves a single machine and `tf.distribute.MultiWorkerMirroredStrategy` alike, because Keras 3 `fit` fails
under the multi-worker strategy. On one machine the gradient step is compiled with XLA.

Time-series data follow `eokit.schema.TIMESERIES_SCHEMA`; patch sets follow `PATCH_SCHEMA`. Inputs given to
the models are normalised with per-band statistics of the training split (clear observations only), which
are stored in the model card and reused by `prepare_inputs` / `prepare_patches` at prediction time.

The parts: `data` (the input pipeline: block readers, statistics, epochs of batches), `strategy`
(distribution from TF_CONFIG), `checks` (refusing bad arguments and checkpoint folders), `prepare` (sets,
bands, classes and the card before the model is built), `loop` (`fit` and its steps), `ensemble`
(`fit_ensemble`: seed ensembles), `threads` (TensorFlow's CPU thread
pools) and `steps` (the compiled gradient step and weight files). Every name is
importable from `eokit.train`, as are the card and training-data names training re-exports.
"""

from __future__ import annotations

import os
from pathlib import Path

from eokit import card as _card
from eokit.card import (  # noqa: F401 (CARD_FIELDS, check_card, load_model, save_model, predict, ...: re-exported)
    CARD_FIELDS,
    _is_int,
    _prepare_ts,
    check_card,
    load_model,
    predict,
    prepare_inputs,
    prepare_patches,
    save_model,
)
from eokit.card import dataset_bands as _data_bands  # noqa: F401
from eokit.card import model_kind as _model_kind  # noqa: F401
from eokit.train.checks import (  # noqa: F401
    DEFAULT_TS_AUGMENT,
    _check_class_weight,
    _check_fit_args,
    _check_labels,
    _check_model_shapes,
    _check_oversample,
    _check_resume,
    _check_ts_augment,
    _hint,
    _resolve_classes,
    _run_identity,
)
from eokit.train.data import (  # noqa: F401
    DEFAULT_BLOCK,
    SHUFFLE_WINDOW,
    _augment_ts,
    _band_statistics,
    _epoch_batches,
    _evaluate_source,
    _output_signature,
    _refuse_infinite,
    _Source,
)
from eokit.train.ensemble import average_members, fit_ensemble  # noqa: F401
from eokit.train.loop import fit  # noqa: F401
from eokit.train.steps import _make_grad_fn, _read_weights, _takes_seed, _write_weights  # noqa: F401
from eokit.train.strategy import _is_multiworker, _n_workers, _tf_config, get_strategy, is_chief  # noqa: F401
from eokit.train.threads import cpu_threads, current_threads  # noqa: F401
from eokit.trainingdata import data_kind as _data_kind  # noqa: F401
from eokit.trainingdata import dataset_class_names as _class_names  # noqa: F401
from eokit.trainingdata import open_training_data  # noqa: F401 (re-exported: eokit.train.open_training_data)
from eokit.trainingdata import sample_dim as _sample_dim  # noqa: F401


def write_card(card: dict, path: str | os.PathLike) -> Path:
    """Return the path of the model card JSON written atomically (temp file, then rename), replacing any."""
    return _card.write_card(card, path, overwrite=True)

"""Seed ensembles: one model trained `members` times by `fit` with different seeds, its class probabilities averaged.

A deep ensemble (Lakshminarayanan et al. 2017) costs `members` trainings and averages out what one seed learns
by chance. Measured, not assumed (benchmarks/bench_accuracy.py, `tempcnn_ensemble` rows): on the Slovenia case
three TempCNN seeds averaged did not beat one (block split OA 0.957 vs 0.962, field 0.947 vs 0.950): there the
networks share their errors (the same forest parcel called artificial surface), which averaging cannot remove.
The result is one Keras model (the members nested, a mean of their softmax outputs) with one card, so
`evaluate`, `maps.predict` and `card.load_model` take it as they take any model: the members share the first
member's inputs and normalisation, which `fit` computes from the training data alone (the same for every seed).
"""

from __future__ import annotations

import copy
import os
from typing import Any

from eokit._io import check_target
from eokit.card import save_model
from eokit.train.loop import fit

__all__ = ["fit_ensemble", "average_members"]


def average_members(nets: list[Any], name: str = "ensemble") -> Any:
    """Return one keras.Model whose output is the mean of the class probabilities of `nets` (same inputs)."""
    import keras

    if len(nets) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {len(nets)}")
    shapes = {tuple(n.output.shape[1:]) for n in nets}
    if len(shapes) != 1:
        raise ValueError(f"ensemble members must give the same output shape, got {sorted(shapes)}")
    inputs = keras.tree.map_structure(
        lambda t: keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name.split(":")[0]), nets[0].input
    )
    # each member renamed (as a wrapper sharing its layers) so that the nested models' names are unique
    outs = [keras.Model(n.input, n.output, name=f"member_{k}")(inputs) for k, n in enumerate(nets)]
    probs = keras.layers.Average(name="probs", dtype="float32")(outs)
    return keras.Model(inputs, probs, name=name)


def fit_ensemble(
    model: Any,
    train: Any,
    val: Any = None,
    *,
    members: int = 3,
    seed: int = 0,
    output: str | os.PathLike | None = None,
    name: str | None = None,
    overwrite: bool = False,
    **fit_kwargs: Any,
) -> tuple[Any, dict, list[dict]]:
    """Return (ensemble keras model, its model card, each member's history) after `members` runs of `fit`.

    Member k is trained with seed `seed + k` and every other argument of `fit` as given (`fit_kwargs`); the
    card is the first member's, named `name` (default `<model>_ensemble`), with `hparams["ensemble"]` listing
    the members' seeds and `metrics["members"]` each member's training metrics. Written, like `fit`'s, to
    `{output}/{name}.keras` and `.json` when `output` is given (members are not written).
    """
    if isinstance(members, bool) or not isinstance(members, int) or members < 2:
        raise ValueError(f"fit_ensemble: members must be a whole number >= 2, got {members!r}")
    for key in ("checkpoint", "resume", "strategy"):
        if key in fit_kwargs:
            raise ValueError(f"fit_ensemble: {key!r} is not supported (members are trained in turn on one machine)")
    path = None
    if output is not None:  # refused before hours of training, as fit refuses
        path = check_target(os.path.join(os.fspath(output), f"{name or _default_name(model)}.keras"), overwrite)
    nets, cards, histories = [], [], []
    for k in range(members):
        net, card, history = fit(model, train, val, seed=seed + k, checkpoint=False, **fit_kwargs)
        nets.append(net)
        cards.append(card)
        histories.append(history)
    card = copy.deepcopy(cards[0])
    card["name"] = name or _default_name(model)
    card["hparams"]["seed"] = seed
    card["hparams"]["ensemble"] = {"members": members, "seeds": [seed + k for k in range(members)]}
    card["metrics"] = {
        "epochs_trained": sum(c["metrics"]["epochs_trained"] for c in cards),
        "members": [c["metrics"] for c in cards],
    }
    ens = average_members(nets, name=card["name"])
    if path is not None:
        save_model(ens, card, path, overwrite=overwrite)
    return ens, card, histories


def _default_name(model: Any) -> str:
    return f"{model if isinstance(model, str) else model.name}_ensemble"

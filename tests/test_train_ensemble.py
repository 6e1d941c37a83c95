"""Seed ensembles: members trained in turn, probabilities averaged, one model and card that load like any other."""

from __future__ import annotations

import json

import numpy as np
import pytest

from badinput import refuses
from eokit import train
from generators.training_sets import patch_set, timeseries_set

FAST = {"epochs": 1, "batch_size": 16, "progress": False, "hparams": {"units": [4]}}


@pytest.fixture(scope="module")
def small():
    return timeseries_set(n_per_class=6, n_classes=3, seed=0)


def test_ensemble_averages_its_members_and_loads_like_a_model(small, tmp_path):
    ens, card, histories = train.fit_ensemble("lstm", small, members=2, seed=5, output=tmp_path, **FAST)
    assert len(histories) == 2 and card["name"] == "lstm_ensemble"
    assert card["hparams"]["ensemble"] == {"members": 2, "seeds": [5, 6]}
    assert len(card["metrics"]["members"]) == 2 and card["metrics"]["epochs_trained"] == 2
    x = train.prepare_inputs(small["reflectance"].values, small["flag"].values, small["date"].values, card)
    members = [np.asarray(ens.get_layer(f"member_{k}")(x)) for k in range(2)]
    assert not np.allclose(members[0], members[1])  # two seeds, two models
    assert np.allclose(np.asarray(ens(x)), np.mean(members, axis=0), atol=1e-6)
    m2, c2 = train.load_model(tmp_path / "lstm_ensemble.keras")
    assert c2 == json.loads(json.dumps(card))
    assert np.allclose(train.predict(m2, c2, small), np.asarray(ens(x)), atol=1e-5)
    # the same seed gives the same ensemble
    again, _, _ = train.fit_ensemble("lstm", small, members=2, seed=5, **FAST)
    assert np.allclose(np.asarray(again(x)), np.asarray(ens(x)), atol=1e-6)


def test_ensemble_of_a_two_input_patch_model(tmp_path):
    ps = patch_set(n_per_class=6, n_classes=3, size=16)
    hp = {"filters": [4, 4], "dense_units": 8}
    ens, card, _ = train.fit_ensemble("cnn", ps, members=2, epochs=1, batch_size=8, progress=False, hparams=hp)
    p = train.predict(ens, card, ps)
    assert p.shape == (ps.sizes["patch"], 3) and np.allclose(p.sum(-1), 1, atol=1e-5)


@pytest.mark.bad_input
def test_ensemble_refuses_one_member_unsupported_options_and_an_existing_output(small, tmp_path):
    with refuses(ValueError, "members must be a whole number >= 2", "1"):
        train.fit_ensemble("lstm", small, members=1, **FAST)
    with refuses(ValueError, "'resume' is not supported"):
        train.fit_ensemble("lstm", small, resume=True, **FAST)
    (tmp_path / "lstm_ensemble.keras").write_bytes(b"")
    with refuses(FileExistsError, "lstm_ensemble.keras", "overwrite=True"):
        train.fit_ensemble("lstm", small, output=tmp_path, **FAST)
    with refuses(ValueError, "at least 2 members"):
        train.average_members([])

"""Model card: build, JSON round trip, validation, band selection, class names, input preparation; no TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

from badinput import refuses
from eokit import card as mc

BANDS = ["B2", "B3", "B4"]


def _card(**change) -> dict:
    card = mc.build_card(
        name="m",
        model="lstm",
        kind="timeseries",
        classes=["Maize", "Wheat"],
        class_ids=[2, 12],
        bands=BANDS,
        mean=np.array([1.0, 2.0, 3.0], np.float32),
        std=np.array([1.0, 2.0, 4.0]),
        n_timesteps=4,
        dates=None,
        hparams={"units": (8,)},
        split={"test": ["33UVP"]},
    )
    return {**card, **change}


def test_importing_the_card_module_does_not_import_tensorflow():
    code = "import sys, eokit.card; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_build_card_holds_every_field_in_the_written_order():
    card = _card()
    assert list(card) == [
        "name",
        "model",
        "kind",
        "classes",
        "class_ids",
        "bands",
        "n_timesteps",
        "dates",
        "normalisation",
        "flag_handling",
        "patch_size",
        "hparams",
        "training_data",
        "split",
        "metrics",
        "created",
        "eokit_version",
    ]
    assert card["normalisation"] == {"mean": [1.0, 2.0, 3.0], "std": [1.0, 2.0, 4.0]}
    assert card["hparams"] == {"units": [8]} and card["flag_handling"] == "mask"
    assert mc.validate_card(card) is card


def test_write_then_read_round_trips_the_card(tmp_path):
    card = _card(metrics={"epochs": np.int64(3), "loss": np.float32(0.5)}, training_data={"counts": np.arange(2)})
    path = mc.write_card(card, tmp_path / "m.keras")  # beside the model: same stem, .json
    assert path == tmp_path / "m.json"
    back = mc.read_card(path)
    assert back == json.loads(json.dumps(card, default=mc._json_default))
    assert back["metrics"] == {"epochs": 3, "loss": 0.5} and back["training_data"]["counts"] == [0, 1]
    assert mc.read_card(tmp_path / "m.keras") == back
    assert json.loads(path.read_text()) == back  # plain JSON, readable without eokit


@pytest.mark.bad_input
def test_write_card_refuses_to_replace_a_card_unless_told(tmp_path):
    mc.write_card(_card(), tmp_path / "m.json")
    with refuses(FileExistsError, str(tmp_path / "m.json"), "overwrite=True"):
        mc.write_card(_card(name="other"), tmp_path / "m.json")
    mc.write_card(_card(name="other"), tmp_path / "m.json", overwrite=True)
    assert mc.read_card(tmp_path / "m.json")["name"] == "other"


@pytest.mark.bad_input
def test_read_card_refuses_a_missing_or_broken_file(tmp_path):
    with refuses(FileNotFoundError, str(tmp_path / "nope.json"), "does not exist"):
        mc.read_card(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with refuses(ValueError, str(tmp_path / "bad.json"), "not valid JSON"):
        mc.read_card(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with refuses(ValueError, str(tmp_path / "list.json"), "not a JSON object"):
        mc.read_card(tmp_path / "list.json")


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "change,names",
    [
        ({"bands": None}, ["lacks the field", "'bands'"]),
        ({"kind": "image"}, ["'kind'", "'timeseries' or 'patch'", "'image'"]),
        ({"bands": "B2"}, ["'bands'", "non-empty list"]),
        ({"classes": []}, ["'classes'", "non-empty list"]),
        ({"class_ids": [2]}, ["'classes' (2)", "'class_ids' (1)", "same length"]),
        ({"normalisation": {"mean": [0.0], "std": [1.0, 1.0, 1.0]}}, ["'normalisation.mean'", "one number per band"]),
        ({"normalisation": {"mean": [0.0] * 3, "std": [1.0, 0.0, 1.0]}}, ["'normalisation.std'", "> 0"]),
        ({"n_timesteps": None}, ["'n_timesteps'", "integer >= 1"]),
        ({"n_timesteps": True}, ["'n_timesteps'", "integer >= 1"]),
        ({"kind": "patch", "patch_size": 0}, ["'patch_size'", "integer >= 1"]),
        ({"flag_handling": "drop"}, ["'flag_handling'", "'mask', 'gapfill', 'interpolate'", "'drop'"]),
    ],
)
def test_validate_card_refuses_bad_fields(change, names):
    card = {k: v for k, v in _card(**change).items() if v is not None or k != "bands"}
    with refuses(ValueError, "card.json", *names):
        mc.validate_card(card, "card.json")


@pytest.mark.bad_input
def test_validate_card_refuses_a_non_object_and_the_wrong_kind():
    with refuses(ValueError, "card=", "not a JSON object", "list"):
        mc.validate_card([1, 2], "card=")
    with refuses(ValueError, "card=", "model 'm'", "kind 'timeseries'", "expected a patch model"):
        mc.validate_card(_card(), "card=", kind="patch")


def test_select_bands_returns_indices_in_the_card_order():
    card = _card(bands=["B4", "B2"])
    assert mc.select_bands(["B2", "B3", "B4"], card) == [2, 0]
    ds = xr.Dataset({"reflectance": (("sample", "time", "band"), np.zeros((1, 2, 3)))}, coords={"band": BANDS})
    assert mc.select_bands(ds, card, "the set") == [2, 0]
    scene = xr.Dataset({"HV": (("y", "x"), np.zeros((2, 2))), "HH": (("y", "x"), np.zeros((2, 2)))})
    assert mc.select_bands(scene, _card(bands=["HH", "HV"])) == [0, 1]  # a scene's bands are its variables


@pytest.mark.bad_input
def test_select_bands_names_the_missing_bands():
    with refuses(
        ValueError,
        "the cube lacks ['B8A']",
        "model 'm'",
        "asks for bands ['B2', 'B8A']",
        "has only ['B2', 'B3']",
        "missing ['B8A']",
    ):
        mc.select_bands(["B2", "B3"], _card(bands=["B2", "B8A"]), "the cube")
    with refuses(ValueError, "model card of 'm'", "lists no 'bands'"):
        mc.select_bands(["B2"], {"name": "m", "bands": []})


def test_class_names():
    assert mc.class_names(_card()) == ["Maize", "Wheat"]
    with refuses(ValueError, "model card of 'm'", "no 'classes' list"):
        mc.class_names({"name": "m"})


def test_prepare_inputs_normalises_masks_and_pads():
    card = _card()
    refl = np.array([[[1.0, 2.0, 3.0], [3.0, 6.0, 11.0], [9.0, 9.0, 9.0]]])
    flag = np.array([[0, 0, 1]])
    date = np.array([["2020-01-01", "2020-01-10", "NaT"]], dtype="datetime64[D]")
    x = mc.prepare_inputs(refl, flag, date, card)
    assert x["x"].shape == (1, 4, 3) and x["x"].dtype == np.float32
    np.testing.assert_allclose(x["x"][0, :2], [[0, 0, 0], [2, 2, 2]])
    assert x["mask"].tolist() == [[1, 1, 0, 0]] and x["doy"].tolist() == [[1, 10, 0, 0]]
    with refuses(ValueError, "model 'm'", "takes 3 bands", "the data has 2"):
        mc.prepare_inputs(refl[..., :2], flag, date, card)


def test_prepare_inputs_interpolates_clouded_observations_in_time_and_keeps_their_mask():
    """flag_handling="interpolate": a cloud (1) or shadow (2) gets the value linear in time between the clear
    neighbours (the nearest clear one at the ends) and mask 1; no acquisition (255) and padding stay 0."""
    card = _card(flag_handling="interpolate", n_timesteps=6)
    refl = np.array([[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0], [7.0, 14.0, 27.0], [0.0, 0.0, 0.0], [5.0, 5.0, 5.0]]])
    flag = np.array([[0, 1, 0, 2, 255]])
    date = np.array([["2020-01-01", "2020-01-04", "2020-01-13", "2020-01-20", "2020-01-25"]], dtype="datetime64[D]")
    x = mc.prepare_inputs(refl, flag, date, card)
    # day 4 is 1/4 of the way from day 1 to day 13: value 1 + (7 - 1) / 4 = 2.5 in band 1, then normalised
    np.testing.assert_allclose(x["x"][0, 1], [(2.5 - 1) / 1, (5.0 - 2) / 2, (9.0 - 3) / 4])
    np.testing.assert_allclose(x["x"][0, 3], x["x"][0, 2])  # after the last clear one: carried
    assert x["mask"].tolist() == [[1, 1, 1, 1, 0, 0]]
    cloud_only = mc.prepare_inputs(refl, np.array([[1, 1, 2, 1, 255]]), date, card)
    assert cloud_only["mask"].sum() == 0 and not cloud_only["x"].any()
    masked = mc.prepare_inputs(refl, flag, date, _card(n_timesteps=6))
    assert masked["mask"].tolist() == [[1, 0, 1, 0, 0, 0]] and not masked["x"][0, 1].any()
    with refuses(ValueError, "flag_handling", "interpolate"):
        mc.validate_card(_card(flag_handling="interpolated"))


def test_prepare_patches_normalises_and_zeroes_nan():
    card = _card(kind="patch", patch_size=2, n_timesteps=None)
    img = np.full((2, 2, 3), 5.0)
    img[0, 0, 0] = np.nan
    x = mc.prepare_patches(img, card)
    assert x.shape == (1, 2, 2, 3) and x[0, 0, 0, 0] == 0.0
    np.testing.assert_allclose(x[0, 1, 1], [4.0, 1.5, 0.5])
    with refuses(ValueError, "model 'm'", "takes 2x2 patches", "got 3x3"):
        mc.prepare_patches(np.zeros((3, 3, 3)), card)


class _FakeModel:
    """Stands in for a keras.Model: `save` writes a file, so saving needs no TensorFlow."""

    def save(self, path) -> None:
        with open(path, "w") as f:
            f.write("model")


def test_save_model_writes_the_model_and_its_card_beside_it(tmp_path):
    card = _card()
    path = mc.save_model(_FakeModel(), card, tmp_path / "lstm")
    assert path == tmp_path / "lstm.keras" and path.read_text() == "model"
    assert mc.read_card(path) == json.loads(json.dumps(card))
    assert [p.name for p in sorted(tmp_path.iterdir())] == ["lstm.json", "lstm.keras"]  # no temporary left


@pytest.mark.bad_input
def test_save_model_refuses_to_replace_a_model_unless_told(tmp_path):
    mc.save_model(_FakeModel(), _card(), tmp_path / "m.keras")
    with refuses(FileExistsError, "m.keras"):
        mc.save_model(_FakeModel(), _card(name="other"), tmp_path / "m.keras")
    mc.save_model(_FakeModel(), _card(name="other"), tmp_path / "m.keras", overwrite=True)
    assert mc.read_card(tmp_path / "m.json")["name"] == "other"


def test_add_metrics_records_the_headline_scores_in_the_card(tmp_path):
    result = {"n": 4, "overall_accuracy": 0.75, "kappa": 0.5, "macro_f1": 0.7, "weighted_f1": 0.72, "classes": []}
    card = mc.add_metrics(_card(), "test", result, path=tmp_path / "m.json")
    assert card["metrics"]["test"] == {k: result[k] for k in mc.CARD_SCORES}
    assert mc.read_card(tmp_path / "m.json")["metrics"] == card["metrics"]
    with refuses(ValueError, "add_metrics", "'rf'", "['kappa']"):
        mc.add_metrics(_card(), "rf", {"n": 3}, keys=("n", "kappa"))


def test_the_moved_names_stay_importable_from_their_old_modules():
    code = (
        "import sys; from eokit import card, evaluate, trainingdata; "
        "assert evaluate.add_metrics is card.add_metrics and evaluate.CARD_SCORES is card.CARD_SCORES; "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules; "
        "from eokit import train; assert train.save_model is card.save_model and train.predict is card.predict "
        "and train.load_model is card.load_model and train.open_training_data is trainingdata.open_training_data"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_predict_traces_its_model_once_and_lets_the_model_go():
    """A new tf.function per call retraced on every call, and TensorFlow warned of excessive retracing from the
    fifth (evaluating a model fold after fold, or over seeds)."""
    import gc

    from eokit import train
    from generators.training_sets import timeseries_set

    ds = timeseries_set(n_per_class=4, n_classes=2, seed=0)
    model, card, _ = train.fit("lstm", ds, epochs=1, batch_size=8, hparams={"units": [4]}, progress=False)
    first = mc.predict(model, card, ds, batch_size=4)
    for _ in range(5):
        assert np.array_equal(mc.predict(model, card, ds, batch_size=4), first)
    fn = mc._inference_fn(model)
    assert fn is mc._inference_fn(model) and fn.experimental_get_tracing_count() <= 2
    held = len(mc._INFERENCE_FNS)
    del model, fn
    gc.collect()
    assert len(mc._INFERENCE_FNS) == held - 1

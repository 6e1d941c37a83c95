"""Active learning (eokit.active): selection, the loop with an oracle, the round record, resuming, the panel."""

from __future__ import annotations

import json
from pathlib import Path

import holoviews as hv
import numpy as np
import pytest
import xarray as xr

from badinput import refuses
from eokit import active, plots
from generators.training_sets import patch_set

CLASSES = ["water", "ice", "land"]


@pytest.fixture(scope="module")
def ds() -> xr.Dataset:
    """60 patches of 3 classes spread over a 400 x 400 px scene (so there are spatial blocks to hold out)."""
    base = patch_set(n_per_class=20, n_classes=3, size=8, seed=1)
    rng = np.random.default_rng(3)
    n = base.sizes["patch"]
    out = base.assign(row0=("patch", rng.integers(0, 400, n)), col0=("patch", rng.integers(0, 400, n)))
    out.attrs["classes"] = CLASSES
    return out


def _learner(ds: xr.Dataset, **kw) -> active.ActiveLearner:
    kw.setdefault("batch_size", 5)
    kw.setdefault("progress", False)
    return active.ActiveLearner(ds, **kw)


def test_uncertainty_margin_and_entropy() -> None:
    p = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.6, 0.3, 0.1]])
    np.testing.assert_allclose(active.uncertainty(p, "margin"), [0.0, 1.0, 1.0, 0.7])
    ent = active.uncertainty(p, "entropy")
    np.testing.assert_allclose(ent[:3], [0.0, np.log(2) / np.log(3), 1.0])
    assert 0 < ent[3] < 1


@pytest.mark.parametrize("diversity", ["kmeans", "farthest"])
def test_diversity_avoids_near_identical_patches(diversity: str) -> None:
    """Ten copies of one patch are the most uncertain: plain top-k takes them all, the diverse batch does not."""
    rng = np.random.default_rng(0)
    feats = np.vstack([np.zeros((10, 4)), rng.normal(0, 3, (40, 4))]).astype(np.float32)
    scores = np.r_[np.full(10, 0.99), rng.uniform(0.5, 0.9, 40)]
    top = active.select_batch(scores, feats, 5, diversity="none")
    assert set(top) <= set(range(10))
    batch = active.select_batch(scores, feats, 5, seed=0, candidates=5, diversity=diversity)
    assert len(batch) == 5 == len(set(batch.tolist()))
    assert sum(int(i) < 10 for i in batch) == 1  # one of the copies, the rest elsewhere in feature space
    np.testing.assert_array_equal(batch, active.select_batch(scores, feats, 5, seed=0, diversity=diversity))


def test_spatial_holdout_keeps_blocks_whole(ds: xr.Dataset) -> None:
    sp = active.spatial_holdout(ds, block_size=100, seed=0)
    block = np.char.add((ds["row0"].values // 100).astype(str), (ds["col0"].values // 100).astype(str))
    assert len(sp.test) and not set(block[sp.test]) & set(block[sp.train])


def test_oracle_loop_records_every_round(ds: xr.Dataset, tmp_path: Path) -> None:
    holdout = active.spatial_holdout(ds, block_size=100, seed=0)
    lr = _learner(ds, holdout=holdout, output=tmp_path, seed=2).run(active.oracle(ds), n_rounds=3)
    rec = json.loads((tmp_path / active.RECORD).read_text())
    assert rec["finished"] and rec["pending"] is None and len(rec["rounds"]) == 4
    start = rec["rounds"][0]
    assert start["strategy"] == "start" and len(start["labels"]) == 5
    assert {e["label"] for e in start["labels"]} == set(CLASSES)  # one per known class first
    seen = set()
    for r, rnd in enumerate(rec["rounds"]):
        for e in rnd["labels"]:
            assert e["round"] == r and e["who"] == "oracle" and e["when"].endswith("+00:00")
            assert e["label"] == CLASSES[int(ds["label"].values[e["patch"]])]
        assert not set(rnd["proposal"]) & seen and not set(rnd["proposal"]) & set(holdout.test.tolist())
        seen |= set(rnd["proposal"])
        assert rnd["n_labels"] == len(seen) and 0 <= rnd["macro_f1"] <= 1
    assert all(s is not None for s in rec["rounds"][1]["scores"]) and rec["rounds"][1]["predicted"][0] in CLASSES
    hist = lr.history()
    assert hist["n_labels"].tolist() == [5, 10, 15, 20] and hist["strategy"].eq("margin").all()


def test_resumed_loop_continues_where_it_stopped(ds: xr.Dataset, tmp_path: Path) -> None:
    """Stopping after 2 rounds and restarting gives the same rounds as one uninterrupted run; same seed, same result."""
    whole = _learner(ds, seed=4).run(active.oracle(ds), 4)
    part = _learner(ds, seed=4, output=tmp_path)
    part.submit(active.oracle(ds)(part.propose()), who="oracle")
    part.submit(active.oracle(ds)(part.propose()), who="oracle")
    pending = part.propose().indices  # proposed, never answered: the restart proposes it again
    again = _learner(ds, seed=4, output=tmp_path)
    assert len(again.rounds) == 2 and len(again.labels) == 10
    np.testing.assert_array_equal(again.propose().indices, pending)
    again.run(active.oracle(ds), 4)
    assert [r["proposal"] for r in again.rounds] == [r["proposal"] for r in whole.rounds]
    assert again.history()["macro_f1"].tolist() == whole.history()["macro_f1"].tolist()
    with refuses(FileExistsError, active.RECORD, "finished", "overwrite=True"):
        _learner(ds, seed=4, output=tmp_path).run(active.oracle(ds), 4)
    more = _learner(ds, seed=4, output=tmp_path).run(active.oracle(ds), 5)  # more rounds: continues
    assert len(more.rounds) == 6
    fresh = _learner(ds, seed=4, output=tmp_path, overwrite=True)
    assert fresh.rounds == [] and fresh.run(active.oracle(ds), 1).rounds[0]["round"] == 0


def test_random_baseline_and_entropy_differ_from_margin(ds: xr.Dataset) -> None:
    runs = {s: _learner(ds, strategy=s, seed=0).run(active.oracle(ds), 2) for s in active.STRATEGIES}
    starts = {s: r.rounds[0]["proposal"] for s, r in runs.items()}
    assert starts["margin"] == starts["random"] == starts["entropy"]  # same start, so curves are paired
    assert runs["margin"].rounds[1]["proposal"] != runs["random"].rounds[1]["proposal"]


def test_any_estimator_or_training_callable(ds: xr.Dataset) -> None:
    from sklearn.linear_model import LogisticRegression

    held = active.spatial_holdout(ds, block_size=100)
    lr = _learner(ds, model=LogisticRegression(max_iter=500), holdout=held).run(active.oracle(ds), 1)
    assert lr.params["model"] == "LogisticRegression" and lr.rounds[1]["macro_f1"] is not None
    assert _learner(ds).run(active.oracle(ds), 1).rounds[1]["macro_f1"] is None  # nothing held out: no score
    calls = []

    def centroid(train: xr.Dataset, seed: int):  # a stand-in for the kit's CNN: patches in, probabilities out
        calls.append((train.sizes["patch"], seed))
        mean = train["image"].mean(("row", "col")).values
        cent = np.stack([mean[train["label"].values == c].mean(0) for c in range(3)])

        def predict(patches: xr.Dataset) -> np.ndarray:
            d = np.linalg.norm(patches["image"].mean(("row", "col")).values[:, None] - cent[None], axis=2)
            e = np.exp(-d)
            return e / e.sum(1, keepdims=True)

        return predict

    _learner(ds, model=centroid).run(active.oracle(ds), 1)
    assert [c[0] for c in calls] == [5, 10]


def test_learning_curve_and_plots(ds: xr.Dataset, tmp_path: Path) -> None:
    curve = active.learning_curve(ds, seeds=(0, 1), batch_size=5, n_rounds=2, block_size=100)
    assert set(curve["strategy"]) == {"margin", "random"} and len(curve) == 2 * 2 * 3
    summary = active.summarise_curve(curve)
    assert summary["macro_f1_count"].eq(2).all() and summary["n_labels"].tolist() == [5, 10, 15] * 2
    fig = active.plot_learning_curve(curve)
    assert isinstance(fig, hv.Overlay)
    assert plots.save(fig, tmp_path / "curve.png")[0].stat().st_size > 0  # it renders
    lr = _learner(ds)
    lr.submit(active.oracle(ds)(lr.propose()))
    prop = lr.propose()
    assert isinstance(active.plot_proposal(prop), hv.Layout)
    where = active.plot_locations(prop, ds)
    assert isinstance(where, (hv.Overlay, hv.Layout)) and plots.save(where, tmp_path / "where.png")


def test_panel_turns_picked_classes_into_labels(ds: xr.Dataset, tmp_path: Path) -> None:
    pytest.importorskip("ipywidgets")
    lr = _learner(ds, output=tmp_path)
    panel = active.ActiveLearningPanel(lr, n_rounds=1, who="analyst A")
    assert len(panel.dropdowns) == 5 and all(d.value == "" for d in panel.dropdowns)  # no model guess yet
    assert len(panel.grid.children) == 5 and "Round 0" in panel.header.value
    picks = [CLASSES[k % 3] for k in range(5)]
    panel.dropdowns[0].value = picks[0]
    assert panel.submit() is None and "#2" in panel.status.value  # incomplete: nothing recorded
    for d, v in zip(panel.dropdowns, picks, strict=True):
        d.value = v
    panel.button.click()
    rec = json.loads((tmp_path / active.RECORD).read_text())
    assert [e["label"] for e in rec["rounds"][0]["labels"]] == picks
    assert {e["who"] for e in rec["rounds"][0]["labels"]} == {"analyst A"}
    assert "Round 1" in panel.header.value and all(d.value in CLASSES for d in panel.dropdowns)  # guesses
    for d in panel.dropdowns:
        d.value = "ice"
    panel.submit()
    assert panel.button.disabled and "Finished" in panel.header.value
    assert json.loads((tmp_path / active.RECORD).read_text())["finished"]


# ------------------------------------------------------------------------------------------ bad inputs
@pytest.mark.bad_input
def test_empty_pool_is_refused(ds: xr.Dataset) -> None:
    with refuses(ValueError, "empty pool", "patch"):
        _learner(ds.isel(patch=slice(0, 0)))
    with refuses(ValueError, "empty pool", "held out"):
        _learner(ds, holdout=np.arange(ds.sizes["patch"]))
    lr = _learner(ds.isel(patch=slice(0, 30)), batch_size=40, n_start=30)  # label everything, then ask for more
    lr.submit(active.oracle(ds)(lr.propose()))
    with refuses(ValueError, "empty pool", "labelled"):
        lr.propose()


@pytest.mark.bad_input
def test_one_class_start_is_refused(ds: xr.Dataset, tmp_path: Path) -> None:
    lr = _learner(ds, output=tmp_path)
    with refuses(ValueError, "only one class", "'ice'", "round 0", "two classes"):
        lr.run(lambda p: ["ice"] * len(p), 2)
    assert lr.pending is not None and not lr.rounds  # the round stays open, nothing recorded


@pytest.mark.bad_input
def test_unknown_class_from_labeller_is_refused(ds: xr.Dataset) -> None:
    lr = _learner(ds)
    with refuses(ValueError, "unknown class", "'icee'", "did you mean 'ice'", "round 0", "water"):
        lr.run(lambda p: ["water", "icee", "land", "ice", "ice"], 1)
    with refuses(ValueError, "unknown class", "7"):
        lr.submit([0, 1, 2, 7, 1])


@pytest.mark.bad_input
def test_wrong_number_of_labels_is_refused(ds: xr.Dataset) -> None:
    lr = _learner(ds)
    with refuses(ValueError, "3 labels", "5 proposed patches", "round 0"):
        lr.run(lambda p: ["water", "ice", "land"], 1)


@pytest.mark.bad_input
@pytest.mark.parametrize("size", [0, -3, 2.5, True])
def test_batch_size_below_one_is_refused(ds: xr.Dataset, size) -> None:
    with refuses(ValueError, "batch_size", ">= 1"):
        active.ActiveLearner(ds, batch_size=size)


@pytest.mark.bad_input
def test_unknown_strategy_is_refused(ds: xr.Dataset) -> None:
    with refuses(ValueError, "strategy", "'margn'", "did you mean 'margin'", "entropy", "random"):
        active.ActiveLearner(ds, strategy="margn")
    with refuses(ValueError, "diversity", "kmeans"):
        active.ActiveLearner(ds, diversity="k-means")


@pytest.mark.bad_input
def test_record_of_other_parameters_is_refused(ds: xr.Dataset, tmp_path: Path) -> None:
    _learner(ds, output=tmp_path, seed=0).run(active.oracle(ds), 1)
    with refuses(ValueError, active.RECORD, "batch_size", "overwrite=True"):
        _learner(ds, output=tmp_path, seed=0, batch_size=6)
    (tmp_path / active.RECORD).write_text("{not json")
    with refuses(ValueError, active.RECORD, "JSON"):
        _learner(ds, output=tmp_path)

"""Scores with scikit-learn, JSON output, confusion plots, the random-forest baseline and LUCAS scoring."""

from __future__ import annotations

import json

import numpy as np
import pytest

from badinput import refuses
from eokit import evaluate
from generators.training_sets import timeseries_set


def test_scores_match_hand_computed_values():
    names = ["a", "b", "c"]
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 1, 0]
    s = evaluate.scores(y_true, y_pred, names)
    assert s["overall_accuracy"] == pytest.approx(4 / 6)
    assert s["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert s["confusion_matrix_normalised"][0] == pytest.approx([2 / 3, 1 / 3, 0])
    # per class: a P=2/3 R=2/3; b P=2/3 R=1; c P=0 R=0
    assert s["per_class"]["a"]["f1"] == pytest.approx(2 / 3)
    assert s["per_class"]["b"]["f1"] == pytest.approx(0.8)
    assert s["per_class"]["c"]["support"] == 1
    assert s["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 0) / 3)
    po, pe = 4 / 6, (3 * 3 + 2 * 3 + 1 * 0) / 36
    assert s["kappa"] == pytest.approx((po - pe) / (1 - pe))
    # names are accepted as labels, too
    assert evaluate.scores(["a", "b"], ["a", "a"], names)["overall_accuracy"] == 0.5


def test_labels_outside_the_classes_are_errors():
    with pytest.raises(ValueError, match=r"y_pred: class index 3 at position 1 is outside 0..2"):
        evaluate.scores([0, 1], [0, 3], ["a", "b", "c"])
    with pytest.raises(ValueError, match=r"y_true: labels \['z'\]"):
        evaluate.scores(["z"], ["a"], ["a", "b"])


def test_write_scores_and_plots(tmp_path):
    import holoviews as hv
    import hvplot

    s = evaluate.scores([0, 1, 1, 2], [0, 1, 2, 2], ["x", "y", "z"])
    p = evaluate.write_scores(s, tmp_path / "metrics" / "scores.json")
    assert json.loads(p.read_text())["macro_f1"] == pytest.approx(s["macro_f1"])
    with pytest.raises(FileExistsError):
        evaluate.write_scores(s, p)
    evaluate.write_scores(s, p, overwrite=True)
    assert not list(p.parent.glob(".*tmp"))
    hv.extension("matplotlib")
    plot = evaluate.plot_confusion(s)
    hvplot.save(plot, str(tmp_path / "cm.png"), backend="matplotlib")
    assert (tmp_path / "cm.png").stat().st_size > 1000
    curves = evaluate.plot_history(
        {"loss": [1.0, 0.5], "accuracy": [0.4, 0.6], "val_loss": [1.1, 0.7], "val_accuracy": [0.3, 0.5]}
    )
    hvplot.save(curves, str(tmp_path / "curves.png"), backend="matplotlib")
    assert (tmp_path / "curves.png").exists()
    table = evaluate.compare({("lstm", "tile"): s, ("rf", "tile"): s})
    assert list(table.index.names) == ["model", "protocol"] and table.loc[("rf", "tile"), "n"] == 4


def test_random_forest_baseline_learns_the_synthetic_phenology():
    ds = timeseries_set(n_per_class=15, n_classes=4, seed=2)
    tiles = ds["tile"].values
    tr, te = ds.isel(sample=np.flatnonzero(tiles != "33UVP")), ds.isel(sample=np.flatnonzero(tiles == "33UVP"))
    s, rf = evaluate.random_forest(tr, te, seed=0, n_estimators=50)
    assert s["n"] == te.sizes["sample"] and s["classes"] == ["class0", "class1", "class2", "class3"]
    assert s["overall_accuracy"] > 0.5  # chance is 0.25
    s2, _ = evaluate.random_forest(tr, te, seed=0, n_estimators=50)
    assert s2 == s  # same seed, same result
    bad = te.copy()
    bad["label"] = bad["label"].copy(data=np.where(bad["label"].values == 3, 9, bad["label"].values))
    with pytest.raises(ValueError, match=r"labels \[9\] \(first at sample .*\) are not among"):
        evaluate.random_forest(tr, bad, n_estimators=5)


def _cube():
    import pandas as pd
    import rioxarray  # noqa: F401
    import xarray as xr

    t = pd.date_range("2018-03-01", periods=6, freq="20D").values
    bands = ["B2", "B3", "B4", "B5", "B6", "B7", "B8A", "B11", "B12"]
    x = 500000 + 10 * np.arange(20) + 5
    y = 5100000 - 10 * np.arange(20) - 5
    rng = np.random.default_rng(0)
    refl = rng.integers(100, 3000, (6, 9, 20, 20)).astype(np.int16)
    flag = np.zeros((6, 20, 20), np.uint8)
    flag[2] = 1
    cube = xr.Dataset(
        {"reflectance": (("time", "band", "y", "x"), refl), "flag": (("time", "y", "x"), flag)},
        coords={"time": t, "band": bands, "x": x, "y": y},
    )
    return cube.rio.write_crs("EPSG:32633")


def test_lucas_scores_points_inside_the_cube():
    import geopandas as gpd
    from shapely.geometry import Point

    import eokit.datasets.lucas  # noqa: F401
    from eokit.models import build
    from eokit.train import prepare_inputs

    cube = _cube()
    pts_utm = [
        Point(500055, 5099945),
        Point(500105, 5099905),
        Point(500155, 5099855),
        Point(500025, 5099985),
        Point(600000, 5000000),
        Point(500015, 5099995),
    ]
    lc1 = ["B16", "B11", "B16", "C10", "B11", "B33"]  # maize, wheat, maize, woodland, outside, soy (unknown)
    points = gpd.GeoDataFrame({"LC1": lc1}, geometry=pts_utm, crs="EPSG:32633").to_crs("EPSG:4326")
    card = {
        "name": "lstm",
        "kind": "timeseries",
        "classes": ["Maize", "Winter wheat"],
        "class_ids": [2, 12],
        "bands": ["B2", "B3", "B4", "B5", "B6", "B7", "B8A", "B11", "B12"],
        "n_timesteps": 8,
        "normalisation": {"mean": [1500.0] * 9, "std": [800.0] * 9},
        "flag_handling": "mask",
    }
    model = build("lstm", 9, 8, 2, units=[4])
    r = evaluate.lucas(model, card, cube, points)
    assert (r["n_points"], r["n_unmapped"], r["n_unknown_class"], r["n_outside"], r["n"]) == (6, 1, 1, 1, 3)
    assert sum(r["per_class"][c]["support"] for c in card["classes"]) == 3
    assert r["per_class"]["Maize"]["support"] == 2
    # the prediction uses the training preprocessing: 6 dates padded to 8, the cloudy date masked
    x = prepare_inputs(np.zeros((1, 6, 9)), cube["flag"].values[:, :1, 0].T, cube["time"].values[None], card)
    assert x["mask"].tolist() == [[1, 1, 0, 1, 1, 1, 0, 0]]
    card_bad = dict(card, bands=card["bands"] + ["B1"])
    with pytest.raises(ValueError, match="the cube lacks"):
        evaluate.lucas(build("lstm", 10, 8, 2, units=[4]), card_bad, cube, points)


def _cm_scores():
    names = ["z_first", "a_second", "m_third"]  # not alphabetical: any sorting would show
    s = evaluate.scores([0, 1, 1, 2, 2, 2], [0, 0, 1, 1, 2, 2], names)
    return names, s, np.asarray(s["confusion_matrix_normalised"])


def test_confusion_figure_rows_match_their_labels_matplotlib():
    import holoviews as hv

    names, s, cm = _cm_scores()
    hv.extension("matplotlib")
    plot = evaluate.plot_confusion(s)
    assert list(plot.get_dimension("predicted").values) == names
    assert list(plot.get_dimension("true").values) == names[::-1]  # categories run bottom-up: first class on top
    mpl = hv.renderer("matplotlib").get_plot(plot)
    ax, mesh = mpl.handles["axis"], mpl.handles["artist"]
    import matplotlib

    assert np.allclose(mesh.get_cmap()(1.0), matplotlib.colormaps["Blues"](1.0))  # styling survives the reorder
    values = np.asarray(mesh.get_array()).reshape(len(names), len(names))  # mesh rows bottom-up in y
    centres = mesh.get_coordinates()[:-1, 0, 1] + 0.5
    ylabels = {float(t): lab.get_text() for t, lab in zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)}
    xlabels = [lab.get_text() for lab in ax.get_xticklabels()]
    assert xlabels == names
    for row, yc in zip(values, centres, strict=True):
        label = ylabels[float(yc)]
        assert np.allclose(row, cm[names.index(label)]), (label, row)
    ylo, yhi = ax.get_ylim()
    top = max(ylabels, key=lambda y: y if yhi > ylo else -y)
    assert ylabels[top] == "z_first"


def test_confusion_figure_rows_match_their_labels_bokeh():
    import holoviews as hv

    names, s, cm = _cm_scores()
    hv.extension("bokeh")
    try:
        plot = evaluate.plot_confusion(s, normalised=False)
        fig = hv.renderer("bokeh").get_plot(plot)
        assert list(fig.state.y_range.factors) == names[::-1]  # bokeh factors run bottom-up
        assert list(fig.state.x_range.factors) == names
        src = fig.handles["source"].data
        counts = np.asarray(s["confusion_matrix"])
        for t, p, v in zip(src["true"], src["predicted"], src["value"], strict=True):
            assert float(v) == counts[names.index(str(t)), names.index(str(p))]
    finally:
        hv.extension("matplotlib")


def test_written_scores_have_normal_permissions(tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        p = evaluate.write_scores(evaluate.scores([0, 1], [0, 1], ["a", "b"]), tmp_path / "s.json")
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o644


# ------------------------------------------------------------------------------------------------
# hostile inputs
# ------------------------------------------------------------------------------------------------


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "y_true,y_pred,names,expect",
    [
        ([0, 1, 2], [0, 1], ["a", "b", "c"], ["y_true has 3 labels", "y_pred has 2", "one prediction per label"]),
        ([0, 1, 2], [0, 1, 2], ["a", "b"], ["y_true", "class index 2", "outside 0..1", "2 classes"]),
        ([], [], ["a", "b"], ["y_true and y_pred are empty"]),
        ([0], [0], [], ["class_names is empty", "one name per class"]),
        ([0, 1], [0, 1], ["a", "a"], ["class_names", "['a']", "more than once"]),
        ([0, 1], [0, 1], "ab", ["class_names", "list of names", "'ab'"]),
        ([0.5, 1], [0, 1], ["a", "b"], ["y_true", "value 0.5 at position 0", "not a class index"]),
        ([np.nan, 1], [0, 1], ["a", "b"], ["y_true", "nan at position 0", "integers 0..1"]),
        ([0, 1], [[0.9, 0.1], [0.2, 0.8]], ["a", "b"], ["y_pred", "1-D", "(2, 2)", "argmax"]),
        (1, 1, ["a", "b"], ["y_true", "1-D", "shape ()"]),
        ([True, False], [True, True], ["a", "b"], ["y_true", "class indices 0..1", "dtype bool"]),
    ],
)
def test_scores_refuse_inconsistent_labels_and_class_names(y_true, y_pred, names, expect):
    with refuses(ValueError, *expect):
        evaluate.scores(y_true, y_pred, names)


@pytest.mark.bad_input
def test_scores_are_not_written_over_an_existing_file(tmp_path):
    evaluate.write_scores({"n": 1}, tmp_path / "s.json")
    with refuses(FileExistsError, str(tmp_path / "s.json"), "overwrite=True"):
        evaluate.write_scores({"n": 1}, tmp_path / "s.json")


# --- map vs reference raster, metrics into the model card -----------------------------------------------------


def _register_case():
    import xarray as xr

    rng = np.random.default_rng(0)
    card = {"name": "m", "class_ids": [1, 3, 8], "classes": ["cultivated", "grass", "built"]}
    ref = rng.choice([0, 1, 2, 3, 8], size=(12, 10)).astype(np.uint16)  # 0: outside, 2: a class the model lacks
    pred = rng.integers(0, 3, size=ref.shape).astype(np.uint8)
    pred[0, :4] = 255  # no data
    class_map = xr.Dataset({"class": (("y", "x"), pred)}, coords={"y": np.arange(12), "x": np.arange(10)})
    return class_map, ref, card


def test_map_agreement_matches_the_pixelwise_comparison():
    import xarray as xr

    class_map, ref, card = _register_case()
    got = evaluate.map_agreement(class_map, ref, card)
    # the notebook 07 computation it replaces
    lut = {cid: k for k, cid in enumerate(card["class_ids"])}
    truth = np.vectorize(lambda v: lut.get(int(v), -1))(ref)
    pred = class_map["class"].values
    keep = (truth >= 0) & (pred != 255)
    assert got == evaluate.scores(truth[keep], pred[keep], card["classes"])
    assert got["n"] == int(keep.sum()) < ref.size
    same = evaluate.map_agreement(class_map["class"], xr.DataArray(ref, dims=("y", "x")), card, nodata=255)
    assert same == got


@pytest.mark.bad_input
def test_map_agreement_refuses_another_grid_and_no_overlap():
    class_map, ref, card = _register_case()
    with refuses(ValueError, "map_agreement", "(12, 10)", "(12, 9)", "map's grid"):
        evaluate.map_agreement(class_map, ref[:, :9], card)
    with refuses(ValueError, "map_agreement", "no pixel", "[1, 3, 8]", "[0, 2]"):
        evaluate.map_agreement(class_map, np.where(np.isin(ref, [1, 3, 8]), 0, ref), card)


def test_add_metrics_puts_the_headline_scores_in_the_card_and_writes_it(tmp_path):
    s = evaluate.scores([0, 1, 1, 0], [0, 1, 0, 0], ["a", "b"])
    card = {"name": "m", "metrics": {"epochs_trained": 3}, "normalisation": {"mean": np.float32(0.5)}}
    out = evaluate.add_metrics(card, "test", s)
    assert out is card and card["metrics"]["epochs_trained"] == 3
    assert card["metrics"]["test"] == {k: s[k] for k in ("n", "overall_accuracy", "kappa", "macro_f1", "weighted_f1")}
    path = tmp_path / "m.json"
    evaluate.add_metrics(card, "rf", s, keys=("overall_accuracy", "kappa"), path=path)
    written = json.loads(path.read_text())
    assert written["metrics"]["rf"] == {"overall_accuracy": s["overall_accuracy"], "kappa": s["kappa"]}
    assert written["metrics"]["test"] == card["metrics"]["test"] and written["normalisation"]["mean"] == 0.5
    assert evaluate.add_metrics({}, "x", s, keys="n")["metrics"] == {"x": {"n": 4}}


@pytest.mark.bad_input
def test_add_metrics_refuses_a_result_without_the_scores():
    with refuses(ValueError, "add_metrics", "'test'", "['kappa']", "evaluate.scores"):
        evaluate.add_metrics({}, "test", {"n": 3, "overall_accuracy": 1.0}, keys=("n", "kappa"))

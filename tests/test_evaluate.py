"""Scores with scikit-learn, JSON output, confusion plots, the random-forest baseline and LUCAS scoring."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_baselines_see_clouds_as_missing_or_filled_in_time_as_the_networks_do():
    from eokit.evaluate import _rf_features

    ds = timeseries_set(n_per_class=2, n_classes=2, seed=1, cloud=0.0).isel(sample=[4])  # 20 of 24 dates
    refl = ds["reflectance"].values.copy()
    refl[0, 3] = 9000  # a bright cloud between two clear dates
    flag = ds["flag"].values.copy()
    flag[0, 3] = 1
    ds = ds.assign(reflectance=ds["reflectance"].copy(data=refl), flag=ds["flag"].copy(data=flag))
    nb, nt = ds.sizes["band"], ds.sizes["time"]
    bands = [str(b) for b in ds["band"].values]
    days = (ds["date"].values[0, 2:5] - ds["date"].values[0, 2]).astype("timedelta64[D]").astype(float)
    expected = refl[0, 2] + (refl[0, 4] - refl[0, 2]) * (days[1] - days[0]) / (days[2] - days[0])
    masked = _rf_features(ds, bands, nt + 2).reshape(nt + 2, nb)
    filled = _rf_features(ds, bands, nt + 2, "interpolate").reshape(nt + 2, nb)
    as_is = _rf_features(ds, bands, nt + 2, "gapfill").reshape(nt + 2, nb)
    assert np.isnan(masked[3]).all() and not np.isnan(masked[2]).any()
    np.testing.assert_allclose(filled[3], expected, rtol=1e-5)  # linear in time, not the cloud's 9000
    np.testing.assert_allclose(as_is[3], 9000)
    for f in (masked, filled, as_is):  # dates never acquired (flag 255) and padding stay missing in every mode
        assert np.isnan(f[:nt][ds["flag"].values[0] == 255]).all() and np.isnan(f[nt:]).all()
    np.testing.assert_array_equal(filled[2], masked[2])  # clear dates as observed
    assert (ds["flag"].values[0] == 255).sum() == 4


def test_baselines_take_the_flag_handling_of_the_networks_and_refuse_an_unknown_one():
    ds = timeseries_set(n_per_class=10, n_classes=3, seed=4, cloud=0.3)
    tiles = ds["tile"].values
    tr, te = ds.isel(sample=np.flatnonzero(tiles != "33UVP")), ds.isel(sample=np.flatnonzero(tiles == "33UVP"))
    a, _ = evaluate.gradient_boosting(tr, te, seed=0, max_iter=10, flag_handling="interpolate")
    b, _ = evaluate.gradient_boosting(tr, te, seed=0, max_iter=10, flag_handling="interpolate")
    assert a == b and a["n"] == te.sizes["sample"]
    with refuses(ValueError, "flag_handling", "'interpolated'", "did you mean 'interpolate'"):
        evaluate.random_forest(tr, te, n_estimators=5, flag_handling="interpolated")


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


def _lucas_card() -> dict:
    """The card of a small LSTM over the 9 TimeSen2Crop bands, 8 steps, Maize and Winter wheat (LUCAS tests)."""
    return {
        "name": "lstm",
        "kind": "timeseries",
        "classes": ["Maize", "Winter wheat"],
        "class_ids": [2, 12],
        "bands": ["B2", "B3", "B4", "B5", "B6", "B7", "B8A", "B11", "B12"],
        "n_timesteps": 8,
        "normalisation": {"mean": [1500.0] * 9, "std": [800.0] * 9},
        "flag_handling": "mask",
    }


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
    card = _lucas_card()
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


PROPS = settings(max_examples=60, deadline=None, derandomize=True)


def test_per_class_table_matches_hand_computed_values():
    s = evaluate.scores([0, 0, 0, 1, 1, 2], [0, 0, 1, 1, 1, 0], ["a", "b", "c"])
    t = evaluate.per_class(s)
    assert list(t.index) == ["a", "b", "c"] and t.index.name == "class"
    assert t.loc["a"].tolist() == pytest.approx([2 / 3, 2 / 3, 2 / 3, 3])
    assert t.loc["b"].tolist() == pytest.approx([2 / 3, 1.0, 0.8, 2])
    assert t.loc["c"].tolist() == [0.0, 0.0, 0.0, 1]  # never predicted right: zero, not NaN
    assert t["support"].dtype == np.int64


@PROPS
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=60))
def test_per_class_agrees_with_the_per_class_scores(pairs):
    y_true, y_pred = zip(*pairs, strict=True)
    s = evaluate.scores(list(y_true), list(y_pred), ["a", "b", "c", "d"])
    t = evaluate.per_class(s)
    for name, row in s["per_class"].items():
        assert t.loc[name, ["precision", "recall", "f1"]].tolist() == pytest.approx(
            [row["precision"], row["recall"], row["f1"]]
        )
        assert t.loc[name, "support"] == row["support"]


@pytest.mark.bad_input
def test_per_class_refuses_a_result_without_a_confusion_matrix():
    with refuses(ValueError, "per_class", "confusion_matrix", "classes"):
        evaluate.per_class({"overall_accuracy": 0.5})
    with refuses(ValueError, "per_class", "2 x 2", "(3, 3)"):
        evaluate.per_class({"classes": ["a", "b"], "confusion_matrix": np.eye(3).tolist()})


def _runs() -> list[dict]:
    rows = []
    for seed, oa in enumerate([0.7, 0.8, 0.9]):
        rows.append({"model": "rf", "case": "s", "protocol": "block", "fold": 0, "seed": seed, "oa": oa, "kappa": 0.5})
    rows.append({"model": "lstm", "case": "s", "protocol": "block", "fold": 0, "seed": 0, "oa": 0.6, "kappa": 0.4})
    return rows


def test_summarise_runs_gives_mean_std_and_text_per_group():
    out = evaluate.summarise_runs(_runs())
    assert out["model"].tolist() == ["rf", "lstm"]  # order of first appearance
    assert out["n"].tolist() == [3, 1]
    assert out.loc[0, "oa_mean"] == pytest.approx(0.8) and out.loc[0, "oa_std"] == pytest.approx(0.1)
    assert out.loc[0, "oa"] == "0.800 ± 0.100" and out.loc[0, "kappa"] == "0.500 ± 0.000"
    assert math.isnan(out.loc[1, "oa_std"]) and out.loc[1, "oa"] == "0.600 (n=1)"
    assert "fold_mean" not in out.columns and "seed_mean" not in out.columns  # run keys are not metrics
    # a DataFrame is accepted, and a metric subset
    two = evaluate.summarise_runs(pd.DataFrame(_runs()), metrics=["kappa"], digits=2)
    assert list(two.columns) == ["model", "case", "protocol", "n", "kappa_mean", "kappa_std", "kappa"]
    assert two.loc[1, "kappa"] == "0.40 (n=1)"


@pytest.mark.bad_input
def test_summarise_runs_refuses_missing_keys_nan_metrics_and_duplicates():
    with refuses(ValueError, "summarise_runs", "no runs"):
        evaluate.summarise_runs([])
    with refuses(ValueError, "summarise_runs", "['case']"):
        evaluate.summarise_runs([{"model": "rf", "protocol": "block", "oa": 0.5}])
    bad = _runs()
    bad[1]["oa"] = float("nan")
    with refuses(ValueError, "summarise_runs", "'oa'", "row 1", "'seed': 1", "finite"):
        evaluate.summarise_runs(bad)
    dup = _runs()
    dup[1]["seed"] = 0
    with refuses(ValueError, "summarise_runs", "2 runs share", "seed"):
        evaluate.summarise_runs(dup)
    with refuses(ValueError, "summarise_runs", "'f1'"):
        evaluate.summarise_runs(_runs(), metrics=["f1"])
    with refuses(ValueError, "summarise_runs", "'n' (the run count)"):
        evaluate.summarise_runs([{**r, "n": 100} for r in _runs()], metrics=["oa", "n"])
    assert "n_mean" not in evaluate.summarise_runs([{**r, "n": 100} for r in _runs()]).columns


def _fold_runs() -> list[dict]:
    per_fold = {"cnn": [[0.6, 0.7], [0.5, 0.5], [0.8, 0.8]], "rf": [[0.6], [0.55], [0.7]]}
    return [
        {"model": m, "case": "polar", "protocol": "block", "fold": f, "seed": s, "oa": v}
        for m, folds in per_fold.items()
        for f, vals in enumerate(folds)
        for s, v in enumerate(vals)
    ]


def test_paired_by_fold_averages_seeds_and_counts_wins():
    out = evaluate.paired_by_fold(_fold_runs(), "cnn", "rf", "oa")
    per_fold = out["per_fold"]
    assert per_fold["fold"].tolist() == [0, 1, 2] and set(per_fold["case"]) == {"polar"}
    assert per_fold["difference"].tolist() == pytest.approx([0.05, -0.05, 0.1])
    assert per_fold["n_a"].tolist() == [2, 2, 2] and per_fold["n_b"].tolist() == [1, 1, 1]
    assert (out["n_folds"], out["wins_a"], out["wins_b"], out["ties"]) == (3, 2, 1, 0)
    assert out["mean_difference"] == pytest.approx(0.1 / 3)
    assert out["std_difference"] == pytest.approx(np.std([0.05, -0.05, 0.1], ddof=1))
    assert out["sign_test_p"] == pytest.approx(1.0)  # 2 wins of 3 is no evidence
    back = evaluate.paired_by_fold(_fold_runs(), "rf", "cnn", "oa")
    assert (back["wins_a"], back["wins_b"]) == (1, 2) and back["mean_difference"] == pytest.approx(-0.1 / 3)


@pytest.mark.bad_input
def test_paired_by_fold_refuses_unpaired_folds_and_unknown_models():
    runs = [r for r in _fold_runs() if not (r["model"] == "rf" and r["fold"] == 2)]
    with refuses(ValueError, "paired_by_fold", "1 fold(s)", "'fold': 2", "only one of 'cnn' and 'rf'"):
        evaluate.paired_by_fold(runs, "cnn", "rf", "oa")
    with refuses(ValueError, "paired_by_fold", "['lstm']", "['cnn', 'rf']"):
        evaluate.paired_by_fold(_fold_runs(), "lstm", "rf", "oa")
    with refuses(ValueError, "paired_by_fold", "both 'rf'"):
        evaluate.paired_by_fold(_fold_runs(), "rf", "rf", "oa")
    with refuses(ValueError, "paired_by_fold", "'fold'"):
        evaluate.paired_by_fold([{"model": "rf", "oa": 0.5}], "rf", "cnn", "oa")


def _pairs(both_right: int, n01: int, n10: int, both_wrong: int) -> tuple[list, list, list]:
    """Labels with the given McNemar counts: n01 = a wrong and b right, n10 = a right and b wrong."""
    y = [0] * (both_right + n01 + n10 + both_wrong)
    a = [0] * both_right + [1] * n01 + [0] * n10 + [1] * both_wrong
    b = [0] * both_right + [0] * n01 + [2] * n10 + [2] * both_wrong
    return y, a, b


def test_mcnemar_exact_and_chi_square_match_hand_computed_values():
    r = evaluate.mcnemar(*_pairs(4, 1, 5, 2), class_names=["a", "b", "c"])
    assert (r["n"], r["n01"], r["n10"], r["test"]) == (12, 1, 5, "exact binomial")
    assert r["statistic"] == 1.0 and r["p_value"] == pytest.approx(2 * (1 + 6) / 2**6)
    assert r["accuracy_a"] == pytest.approx(9 / 12) and r["accuracy_b"] == pytest.approx(5 / 12)
    r = evaluate.mcnemar(*_pairs(30, 10, 20, 5))
    assert r["test"] == "chi-square with continuity correction"
    assert r["statistic"] == pytest.approx(81 / 30) and r["p_value"] == pytest.approx(math.erfc(math.sqrt(81 / 60)))
    # 24 disagreements: still exact; 25: chi-square
    assert evaluate.mcnemar(*_pairs(0, 12, 12, 0))["test"] == "exact binomial"
    assert evaluate.mcnemar(*_pairs(0, 12, 13, 0))["test"].startswith("chi-square")
    # names as labels, with class_names, give the same counts as the ids
    y, a, b = _pairs(4, 1, 5, 2)
    names = ["water", "ice", "land"]
    as_names = evaluate.mcnemar(*([names[i] for i in v] for v in (y, a, b)), class_names=names)
    assert as_names == evaluate.mcnemar(y, a, b, class_names=names)
    assert evaluate.mcnemar(*([names[i] for i in v] for v in (y, a, b)))["p_value"] == as_names["p_value"]


@pytest.mark.parametrize("counts", [(4, 1, 5, 2), (0, 3, 0, 1), (30, 10, 20, 5), (10, 40, 12, 3), (5, 0, 0, 5)])
def test_mcnemar_agrees_with_statsmodels(counts):
    from statsmodels.stats import contingency_tables as contingency

    both_right, n01, n10, both_wrong = counts
    r = evaluate.mcnemar(*_pairs(*counts))
    ref = contingency.mcnemar([[both_right, n10], [n01, both_wrong]], exact=n01 + n10 < 25, correction=True)
    assert r["p_value"] == pytest.approx(float(ref.pvalue)) and r["statistic"] == pytest.approx(float(ref.statistic))


_labels3 = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)), min_size=1, max_size=80)


@PROPS
@given(_labels3)
def test_mcnemar_is_symmetric_in_the_two_models(triples):
    y, a, b = (list(v) for v in zip(*triples, strict=True))
    ab, ba = evaluate.mcnemar(y, a, b, ["x", "y", "z"]), evaluate.mcnemar(y, b, a, ["x", "y", "z"])
    assert (ab["n01"], ab["n10"]) == (ba["n10"], ba["n01"])
    assert ab["p_value"] == pytest.approx(ba["p_value"]) and 0.0 <= ab["p_value"] <= 1.0
    same = evaluate.mcnemar(y, a, a, ["x", "y", "z"])
    assert (same["n01"], same["n10"], same["p_value"]) == (0, 0, 1.0)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "y,a,b,names,expect",
    [
        ([0, 1], [0, 1, 1], [0, 1], None, ["y_true has 2", "pred_a 3", "pred_b 2"]),
        ([0, 1], [0, float("nan")], [0, 1], None, ["pred_a", "nan", "position 1"]),
        ([0, 1], [0, 1], [0, 1.5], ["a", "b"], ["pred_b", "1.5", "not a class index"]),
        (["a", "b"], ["a", "q"], ["a", "b"], ["a", "b"], ["pred_a", "['q']", "['a', 'b']"]),
        ([0, 1], [0, 3], [0, 1], ["a", "b"], ["pred_a", "class index 3", "outside 0..1"]),
        ([0, 1], [0, -1], [0, 1], None, ["pred_a", "-1", "position 1"]),
        ([0, 1], ["a", "b"], [0, 1], None, ["mix class ids and names", "class_names"]),
        ([], [], [], ["a"], ["empty"]),
        ([[0.2, 0.8]], [0], [0], None, ["y_true", "1-D", "argmax"]),
    ],
)
def test_mcnemar_refuses_bad_labels(y, a, b, names, expect):
    with refuses(ValueError, *expect):
        evaluate.mcnemar(y, a, b, class_names=names)


def test_baselines_on_patch_sets_use_each_channels_statistics():
    from eokit.inputs import patch_statistics
    from generators.training_sets import patch_set

    tr, te = (
        patch_set(n_per_class=12, n_classes=3, size=8, seed=0),
        patch_set(n_per_class=6, n_classes=3, size=8, seed=1),
    )
    for fn in (evaluate.random_forest, evaluate.gradient_boosting):
        s, est = fn(tr, te, seed=0)
        assert s["n"] == te.sizes["patch"] and est.n_features_in_ == 3 * 7
    feats = patch_statistics(tr["image"].values)
    np.testing.assert_allclose(feats[:, :3], tr["image"].values.mean(axis=(1, 2)), rtol=1e-5)


@pytest.mark.bad_input
def test_baselines_refuse_a_time_series_test_set_for_a_patch_training_set():
    from generators.training_sets import patch_set, timeseries_set

    with refuses(ValueError, "time-series", "patch"):
        evaluate.random_forest(patch_set(), timeseries_set(n_per_class=2))


def test_predictions_kept_on_request_feed_mcnemar():
    from generators.training_sets import patch_set

    tr, te = patch_set(n_per_class=12, seed=0), patch_set(n_per_class=6, seed=1)
    a, _ = evaluate.random_forest(tr, te, seed=0, predictions=True)
    b, _ = evaluate.gradient_boosting(tr, te, seed=0, predictions=True)
    assert "y_pred" not in evaluate.random_forest(tr, te, seed=0)[0]
    assert a["y_true"] == b["y_true"] and len(a["y_pred"]) == te.sizes["patch"]
    assert a["overall_accuracy"] == pytest.approx(np.mean(np.array(a["y_true"]) == np.array(a["y_pred"])))
    m = evaluate.mcnemar(a["y_true"], a["y_pred"], b["y_pred"])
    assert m["n"] == te.sizes["patch"] and 0.0 <= m["p_value"] <= 1.0


def test_baselines_skip_a_date_missing_in_every_training_series():
    from generators.training_sets import timeseries_set

    ds = timeseries_set(n_per_class=6, n_classes=3, tiles=("33UVP",), n_steps=(10,))
    ds["flag"][:, 4] = 1  # every series cloudy at the fifth date
    tr, te = ds.isel(sample=slice(0, None, 2)), ds.isel(sample=slice(1, None, 2))
    for fn in (evaluate.random_forest, evaluate.gradient_boosting):
        s, est = fn(tr, te, seed=0)
        assert s["n"] == te.sizes["sample"] and est.n_features_in_ == 9 * 9


def _lucas_case():
    """A cube, six LUCAS points (3 scored, 1 unmapped, 1 outside, 1 of a class the model lacks), card, model."""
    import geopandas as gpd
    from shapely.geometry import Point

    from eokit.models import build

    xy = [(500055, 5099945), (500105, 5099905), (500155, 5099855), (500025, 5099985), (600000, 5000000)]
    xy.append((500015, 5099995))
    lc1 = ["B16", "B11", "B16", "C10", "B11", "B33"]  # maize, wheat, maize, woodland, outside, soy (unknown)
    points = gpd.GeoDataFrame(
        {"point_id": [f"p{i}" for i in range(6)], "LC1": lc1}, geometry=[Point(p) for p in xy], crs="EPSG:32633"
    ).to_crs("EPSG:4326")
    card = _lucas_card()
    return _cube(), points, card, build("lstm", 9, 8, 2, units=[4]), np.array(xy, float)


def test_lucas_points_say_what_became_of_each_point():
    from eokit.card import prepare_inputs

    cube, points, card, model, xy = _lucas_case()
    t = evaluate.lucas_points(model, card, cube, points)
    assert list(t["status"]) == ["scored", "scored", "scored", "unmapped", "outside", "unknown class"]
    assert list(t["true_class"][:3]) == ["Maize", "Winter wheat", "Maize"] and t["true_class"][3:].isna().all()
    np.testing.assert_allclose(np.c_[t["x"], t["y"]], xy, atol=1e-3)  # in the cube's CRS
    assert t.attrs["cube_bounds"] == (500000.0, 5099800.0, 500200.0, 5100000.0)
    # each scored point is the prediction of the nearest pixel's series, prepared as in training
    px = [(5, 5), (9, 10), (14, 15)]  # (row, column) of the pixels nearest to the three scored points
    refl = np.stack([cube["reflectance"].values[:, :, r, c] for r, c in px])
    flag = np.stack([cube["flag"].values[:, r, c] for r, c in px])
    dates = np.broadcast_to(cube["time"].values[None], flag.shape)
    want = np.asarray(model.predict(prepare_inputs(refl, flag, dates, card), verbose=0)).argmax(-1)
    assert list(t["predicted_class"][:3]) == [card["classes"][i] for i in want]
    assert list(t["correct"][:3]) == list(t["true_class"][:3] == t["predicted_class"][:3])
    assert t["correct"][3:].isna().all() and t["predicted_class"][3:].isna().all()
    r = evaluate.lucas_scores(t, card)
    assert r == evaluate.lucas(model, card, cube, points)  # the same points, the same scores
    assert (r["n"], r["n_points"], r["n_unmapped"], r["n_unknown_class"], r["n_outside"]) == (3, 6, 1, 1, 1)
    assert r["overall_accuracy"] == pytest.approx(float(np.mean(t["correct"][:3].astype(bool))))


def test_lucas_points_map_is_saved(tmp_path):
    from eokit import plots

    cube, points, card, model, _ = _lucas_case()
    t = evaluate.lucas_points(model, card, cube, points)
    fig = evaluate.plot_lucas_points(t, title="test")
    [p] = plots.save(fig, tmp_path / "lucas.png")
    assert p.stat().st_size > 1000
    n_ok = int(t["correct"][:3].astype(bool).sum())
    assert f"{n_ok} of 3 correct, 1 outside the cube" in fig.opts.get().kwargs["title"]


@pytest.mark.bad_input
def test_lucas_refuses_points_without_lc1_a_cube_without_the_bands_and_other_tables():
    cube, points, card, model, _ = _lucas_case()
    with refuses(ValueError, "no LC1 column", "point_id"):
        evaluate.lucas_points(model, card, cube, points.drop(columns="LC1"))
    with refuses(ValueError, "the cube lacks", "B8A"):
        evaluate.lucas_points(model, card, cube.sel(band=[b for b in cube["band"].values if b != "B8A"]), points)
    with refuses(ValueError, "time-series model", "patch"):
        evaluate.lucas_points(model, dict(card, kind="patch"), cube, points)
    with refuses(ValueError, "none of the 6 LUCAS points maps to a class", "lstm"):
        evaluate.lucas_points(model, dict(card, class_ids=[0, 1]), cube, points)
    far = points.iloc[[4]]
    with refuses(ValueError, "none of the 1 LUCAS points falls inside the cube extent"):
        evaluate.lucas_points(model, card, cube, far)
    with refuses(ValueError, "lucas_scores needs the table of lucas_points", "status"):
        evaluate.lucas_scores(points, card)
    with refuses(ValueError, "plot_lucas_points needs the table of lucas_points", "correct"):
        evaluate.plot_lucas_points(points)


@pytest.mark.bad_input
def test_lucas_model_file_names_the_parameter_and_what_to_change(tmp_path):
    (tmp_path / "lstm.keras").write_bytes(b"")
    assert evaluate.lucas_model_file("lstm", tmp_path) == tmp_path / "lstm.keras"
    assert evaluate.lucas_model_file(tmp_path / "lstm.keras", "elsewhere") == tmp_path / "lstm.keras"
    with refuses(FileNotFoundError, "lucas_model 'tempcnn'", "tempcnn.keras", '"tile" in `protocols`'):
        evaluate.lucas_model_file("tempcnn", tmp_path)
    with refuses(FileNotFoundError, "mine.keras", "saved model file given does not exist"):
        evaluate.lucas_model_file(tmp_path / "mine.keras", tmp_path)

"""Weak-label cleaning: out-of-fold probabilities by field, confident learning, per-field agreement, clean, plots."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from badinput import refuses
from eokit import cleaning
from eokit._cleaning_cl import cap_per_class, confident_flags, field_agreement, parcel_minority, reliability

NAMES = {0: "Maize", 1: "Winter wheat", 2: "Grassland"}


def _set(n_fields: int = 30, pixels: int = 8, seed: int = 0) -> xr.Dataset:
    """A separable time-series set in TIMESERIES_SCHEMA: 3 classes, each field's pixels share one profile."""
    rng = np.random.default_rng(seed)
    t, b = 12, 2
    field = np.repeat(np.arange(n_fields), pixels)
    label = field % 3
    base = np.stack([np.sin(np.linspace(0, np.pi, t) * (c + 1)) for c in range(3)]) * 3000 + 3000
    refl = base[label][:, :, None] + rng.normal(0, 150, (len(field), t, b))
    dates = np.broadcast_to(
        np.arange("2018-01", "2019-01", dtype="datetime64[M]").astype("datetime64[ns]"), (len(field), t)
    )
    return xr.Dataset(
        {
            "reflectance": (("sample", "time", "band"), refl.astype(np.int16)),
            "flag": (("sample", "time"), np.zeros((len(field), t), np.uint8)),
            "date": (("sample", "time"), dates),
            "label": ("sample", label.astype(np.int64)),
            "label_name": ("sample", np.array([NAMES[c] for c in label])),
            "field_id": ("sample", field.astype(np.int64)),
            "tile": ("sample", np.full(len(field), "33UVP")),
            "x": ("sample", (field % 6) * 100.0 + rng.uniform(0, 50, len(field))),
            "y": ("sample", (field // 6) * 100.0 + rng.uniform(0, 50, len(field))),
        },
        coords={"band": ["B4", "B8"]},
        attrs={"crs": "EPSG:32633"},
    )


def _relabel(ds: xr.Dataset, mask: np.ndarray, to: int) -> xr.Dataset:
    out = ds.copy(deep=True)
    lab = out["label"].values.copy()
    lab[mask] = to
    out["label"] = ("sample", lab)
    out["label_name"] = ("sample", np.array([NAMES[int(c)] for c in lab]))
    return out


def test_out_of_fold_never_predicts_a_field_with_itself() -> None:
    ds = _set()
    p = cleaning.out_of_fold(ds, n_folds=3, seed=1)
    assert p.dims == ("sample", "class") and list(p["class"].values) == ["Maize", "Winter wheat", "Grassland"]
    np.testing.assert_allclose(p.values.sum(axis=1), 1.0)
    fold = p["fold"].values
    for f in np.unique(ds["field_id"].values):  # every pixel of a field in one fold
        assert len(np.unique(fold[ds["field_id"].values == f])) == 1
    assert p["seen"].values.all()
    assert (p["class_id"].values[p.values.argmax(1)] == ds["label"].values).mean() > 0.9  # separable set


def test_out_of_fold_same_seed_same_result_and_any_estimator() -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ds = _set()
    a = cleaning.out_of_fold(ds, n_folds=3, seed=4)
    b = cleaning.out_of_fold(ds, n_folds=3, seed=4)
    np.testing.assert_array_equal(a.values, b.values)
    lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500))
    c = cleaning.out_of_fold(ds, lr, n_folds=3, by="xy", block_size=150.0)
    assert c.attrs["estimator"] == "Pipeline" and c.attrs["by"] == "xy"
    d = cleaning.out_of_fold(ds, n_folds=3, features=lambda s: s["reflectance"].values[:, :, 0].astype(float))
    assert d.shape == a.shape


def test_a_relabelled_parcel_is_flagged_whole_with_its_true_crop_suggested() -> None:
    ds = _set()
    wrong = np.isin(ds["field_id"].values, [0, 3])  # two maize parcels declared grassland
    noisy = _relabel(ds, wrong, 2)
    flags = cleaning.find_issues(noisy, n_folds=3)
    assert flags["field_flagged"].values[wrong].all()
    assert not flags["field_flagged"].values[~wrong].any()
    assert (flags["suggestion"].values[wrong] == 0).all()
    fields = cleaning.field_report(flags)
    top = fields.head(2)
    assert set(top["field_id"]) == {0, 3} and (top["suggestion_name"] == "Maize").all() and top["flagged"].all()
    assert (top["agreement"] < 0.5).all() and not fields["flagged"].iloc[2:].any()
    assert (flags["rank"].values[flags["flagged"].values] >= 0).all() and (flags["rank"].values[~wrong] == -1).all()


def test_pixel_flips_inside_a_parcel_are_flagged_and_confident_learning_finds_them() -> None:
    ds = _set()
    rng = np.random.default_rng(3)
    flip = np.zeros(ds.sizes["sample"], bool)
    flip[rng.choice(ds.sizes["sample"], 20, replace=False)] = True
    lab = ds["label"].values.copy()
    lab[flip] = (lab[flip] + 1) % 3
    noisy = _relabel(ds, np.zeros_like(flip), 0).assign(label=("sample", lab))
    noisy["label_name"] = ("sample", np.array([NAMES[int(c)] for c in lab]))
    flags = cleaning.find_issues(noisy, n_folds=3, sample_issues=True)
    np.testing.assert_array_equal(flags["parcel_minority"].values, flip)
    assert flags["issue"].values[flip].mean() > 0.5 and flags["issue"].values[~flip].mean() < 0.1
    np.testing.assert_array_equal(flags["suggestion"].values[flip], ds["label"].values[flip])
    cj = np.array(json.loads(flags.attrs["confident_joint"]))
    assert cj.shape == (3, 3) and cj.sum() > 0 and np.trace(cj) > cj.sum() - np.trace(cj)
    table = cleaning.class_report(flags)
    assert list(table.index) == [0, 1, 2] and table["n"].sum() == ds.sizes["sample"]
    assert table["n_flagged"].sum() == int(flags["flagged"].sum())


def test_confident_joint_by_hand() -> None:
    given = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    out = confident_flags(given, p, np.ones(6, bool), "confident_joint")
    np.testing.assert_allclose(out["thresholds"], [(0.9 + 0.8 + 0.1) / 3, (0.8 + 0.7 + 0.4) / 3])
    # sample 2: p1 0.9 >= t1 0.633 and p0 0.1 < t0 0.6 -> (0, 1); sample 5: p0 0.6 >= t0 -> (1, 0)
    np.testing.assert_array_equal(out["confident_joint"], [[2, 1], [1, 2]])
    np.testing.assert_array_equal(out["issue"], [False, False, True, False, False, True])
    np.testing.assert_allclose(out["margin"], [0.8, 0.6, -0.8, 0.6, 0.4, -0.2])
    pruned = confident_flags(given, p, np.ones(6, bool), "prune_by_noise_rate")
    np.testing.assert_array_equal(pruned["issue"], out["issue"])
    unseen = confident_flags(given, p, np.array([1, 1, 0, 1, 1, 1], bool), "confident_joint")
    assert not unseen["issue"][2]


def test_field_agreement_by_hand() -> None:
    key = np.array([0, 0, 0, 1, 1, 1])
    given = np.array([0, 0, 1, 1, 1, 1])
    p = np.array([[0.9, 0.1]] * 3 + [[0.8, 0.2]] * 3)
    out = field_agreement(key, given, p, np.ones(6, bool), 0.5, 3, True)
    np.testing.assert_allclose(out["agreement"], [1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(out["minority"], [False, False, True, False, False, False])
    np.testing.assert_array_equal(out["suggestion"], [0, 0, 0, 1, 1, 1])
    # parcel 1 disagrees wholly, but its own class's threshold is its self-confidence 0.2 (the only parcel of
    # class 1) and p0 = 0.8 < t0 = 0.9: no class is confidently likely instead, so nothing is flagged
    assert not out["flagged"].any()
    off = field_agreement(key, given, p, np.ones(6, bool), 0.5, 3, False)
    assert np.isnan(off["agreement"]).all() and not off["flagged"].any()


def test_reliability_is_the_lower_of_precision_and_recall_by_hand() -> None:
    given = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    pred = np.array([0, 0, 0, 1, 1, 0, 0, 0])  # class 2 is never predicted
    p = np.eye(3)[pred]
    # class 0: recall 3/4, precision 3/6; class 1: recall 1/2, precision 1/2; class 2: 0
    np.testing.assert_allclose(reliability(given, p, np.ones(8, bool)), [0.5, 0.5, 0.0])
    use = np.array([1, 1, 1, 1, 1, 1, 0, 0], bool)  # without the class-2 samples class 0's precision is 3/4
    np.testing.assert_allclose(reliability(given, p, use), [0.75, 0.5, 0.0])


def test_cap_per_class_keeps_the_most_suspect_and_never_a_whole_class() -> None:
    given = np.array([0, 0, 0, 0, 1, 1])
    margin = np.array([-0.1, -0.5, -0.3, 0.2, -0.2, -0.4])
    flag = np.array([True, True, True, False, True, True])
    # class 0: floor(0.5 * 4) = 2 -> the two lowest margins (samples 1, 2); class 1: 1 of 2 -> sample 5
    np.testing.assert_array_equal(cap_per_class(flag, given, margin, 0.5), [0, 1, 1, 0, 0, 1])
    # share 1.0 still leaves one sample of each class (the least suspect)
    np.testing.assert_array_equal(cap_per_class(flag, given, margin, 1.0), [1, 1, 1, 0, 0, 1])
    # weighted by parcel size: class 0 has 10 + 1 + 1 + 1 pixels, half = 6 -> the 10-pixel parcel does not fit
    size = np.array([1, 10, 1, 1, 3, 3])
    np.testing.assert_array_equal(cap_per_class(flag, given, margin, 0.5, size), [1, 0, 1, 0, 0, 1])


def test_parcel_minority_needs_a_strict_majority_and_enough_pixels_by_hand() -> None:
    key = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    given = np.array([0, 0, 0, 1, 0, 0, 1, 1, 1, 0])
    minority, label = parcel_minority(key, given, 2, 3)
    # parcel 0: 3 of 4 are class 0 -> the class-1 pixel; parcel 1: a tie, no majority; parcel 2: only 2 pixels
    np.testing.assert_array_equal(minority, [0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(label[:4], [0, 0, 0, 0])
    assert parcel_minority(key, given, 2, 2)[0][8:].tolist() == [False, False]  # 1 of 2 is no strict majority


def test_untrusted_classes_are_neither_questioned_nor_suggested_by_hand() -> None:
    given = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    out = confident_flags(given, p, np.ones(6, bool), "confident_joint", np.array([True, False]))
    assert not out["issue"].any()  # both issues involve class 1 (as the given or the suggested class)
    # a wholly disagreeing parcel whose declared class the classifier cannot recognise is not flagged
    key = np.repeat(np.arange(4), 3)
    given = np.repeat([0, 0, 1, 1], 3)
    pp = np.array([[0.9, 0.1]] * 6 + [[0.1, 0.9]] * 3 + [[0.9, 0.1]] * 3)
    sure = field_agreement(key, given, pp, np.ones(12, bool), 0.5, 3, True)
    np.testing.assert_array_equal(sure["flagged"], np.repeat([0, 0, 0, 1], 3).astype(bool))
    assert (sure["suggestion"][9:] == 0).all()
    unsure = field_agreement(key, given, pp, np.ones(12, bool), 0.5, 3, True, np.array([True, False]))
    assert not unsure["flagged"].any()


def test_a_parcel_is_flagged_only_when_the_evidence_is_confident_by_hand() -> None:
    key = np.repeat(np.arange(4), 3)
    given = np.repeat([0, 0, 1, 1], 3)
    # parcel 3: every pixel predicted class 0, yet p0 = 0.55 < class 0's threshold 0.9: no class is confident
    pp = np.array([[0.9, 0.1]] * 6 + [[0.1, 0.9]] * 3 + [[0.55, 0.45]] * 3)
    out = field_agreement(key, given, pp, np.ones(12, bool), 0.5, 3, True)
    assert not out["flagged"].any() and (out["agreement"][9:] == 0).all()
    # thresholds t0 = 0.52, t1 = (0.45 + 0.3) / 2 = 0.375; parcel 2 (p1 0.45 >= t1: its own class is still likely)
    # is not flagged, parcel 3 (p1 0.3 < t1, p0 0.7 >= t0) is
    pp = np.array([[0.52, 0.48]] * 6 + [[0.55, 0.45]] * 3 + [[0.7, 0.3]] * 3)
    out = field_agreement(key, given, pp, np.ones(12, bool), 0.5, 3, True)
    np.testing.assert_array_equal(out["flagged"], np.repeat([0, 0, 0, 1], 3).astype(bool))


def test_the_parcel_rule_flags_at_most_max_class_share_of_a_class_by_hand() -> None:
    key = np.repeat(np.arange(5), 3)
    given = np.repeat([0, 0, 1, 1, 1], 3)
    pp = np.array([[0.9, 0.1]] * 6 + [[0.1, 0.9]] * 3 + [[0.95, 0.05]] * 3 + [[0.9, 0.1]] * 3)
    both = field_agreement(key, given, pp, np.ones(15, bool), 0.5, 3, True)
    np.testing.assert_array_equal(both["flagged"], np.repeat([0, 0, 0, 1, 1], 3).astype(bool))
    # at most a third of class 1's 9 pixels: one parcel, the one with the lowest margin (parcel 3)
    one = field_agreement(key, given, pp, np.ones(15, bool), 0.5, 3, True, None, 1 / 3)
    np.testing.assert_array_equal(one["flagged"], np.repeat([0, 0, 0, 1, 0], 3).astype(bool))


def test_find_issues_skips_the_classifier_for_unreliable_classes_and_says_so() -> None:
    ds = _set()
    wrong = np.isin(ds["field_id"].values, [0, 3])
    noisy = _relabel(ds, wrong, 2)
    strict = cleaning.find_issues(noisy, n_folds=3, min_reliability=1.0)  # the wrong parcels cost 0 and 2 precision
    assert not strict["field_flagged"].any() and {0, 2} <= set(strict.attrs["unreliable_classes"])
    table = cleaning.class_report(strict)
    assert not table.loc[[0, 2], "reliable"].any() and (table["reliability"] < 1).sum() >= 2
    loose = cleaning.find_issues(noisy, n_folds=3)
    assert loose.attrs["unreliable_classes"] == [] and len(loose.attrs["reliability"]) == 3
    # random pixel flips are caught by the parcel-minority rule even when no class is trusted
    lab = ds["label"].values.copy()
    flip = np.zeros(len(lab), bool)
    flip[::9] = True
    lab[flip] = (lab[flip] + 1) % 3
    flips = ds.assign(label=("sample", lab), label_name=("sample", np.array([NAMES[int(c)] for c in lab])))
    only = cleaning.find_issues(flips, n_folds=3, min_reliability=1.0)
    np.testing.assert_array_equal(only["flagged"].values, flip)
    np.testing.assert_array_equal(cleaning.clean(flips, only, "relabel")["label"].values, ds["label"].values)


def test_clean_drops_or_relabels_and_records_it() -> None:
    ds = _set()
    wrong = np.isin(ds["field_id"].values, [0, 3])
    noisy = _relabel(ds, wrong, 2)
    flags = cleaning.find_issues(noisy, n_folds=3)
    dropped = cleaning.clean(noisy, flags, "drop")
    assert dropped.sizes["sample"] == int((~flags["flagged"].values).sum())
    rec = json.loads(dropped.attrs["label_cleaning"])
    assert rec["action"] == "drop" and rec["n_dropped"] == int(flags["flagged"].sum()) and dropped.attrs["crs"]
    fixed = cleaning.clean(noisy, flags, "relabel")
    np.testing.assert_array_equal(fixed["label"].values[wrong], ds["label"].values[wrong])
    assert (fixed["label_name"].values[wrong] == "Maize").all()
    np.testing.assert_array_equal(fixed["label_original"].values, noisy["label"].values)
    assert fixed["relabelled"].values[wrong].all() and json.loads(fixed.attrs["label_cleaning"])["n_relabelled"] > 0
    assert "label_original" not in noisy and noisy["label"].values[wrong].tolist() == [2] * int(wrong.sum())


def test_plots_return_holoviews_objects() -> None:
    import holoviews as hv

    ds = _set()
    flags = cleaning.find_issues(_relabel(ds, np.isin(ds["field_id"].values, [0]), 2), n_folds=3)
    assert isinstance(cleaning.plot_flags(flags), hv.Overlay)
    assert isinstance(cleaning.plot_class_report(cleaning.class_report(flags)), hv.Element)


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.bad_input
def test_refuses_one_class_only() -> None:
    ds = _set()
    one = _relabel(ds, np.ones(ds.sizes["sample"], bool), 0)
    with refuses(ValueError, "one class", "Maize", "label"):
        cleaning.out_of_fold(one)


@pytest.mark.bad_input
def test_refuses_a_class_smaller_than_the_folds() -> None:
    ds = _set()
    lab = ds["label"].values.copy()
    lab[lab == 2] = 1
    lab[:2] = 2  # two grassland samples for five folds
    few = ds.assign(label=("sample", lab), label_name=("sample", np.array([NAMES[int(c)] for c in lab])))
    with refuses(ValueError, "fewer samples than n_folds=5", "id 2", "2"):
        cleaning.find_issues(few, n_folds=5)


@pytest.mark.bad_input
def test_refuses_grouping_by_field_without_field_id() -> None:
    with refuses(ValueError, "field_id", "by='field'"):
        cleaning.out_of_fold(_set().drop_vars("field_id"), n_folds=3)


@pytest.mark.bad_input
def test_refuses_an_unknown_action_with_a_hint() -> None:
    ds = _set()
    flags = cleaning.find_issues(ds, n_folds=3)
    with refuses(ValueError, "action", "'drp'", "did you mean 'drop'"):
        cleaning.clean(ds, flags, "drp")


@pytest.mark.bad_input
@pytest.mark.parametrize("name", ["field_threshold", "min_reliability", "max_class_share"])
@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), "half"])
def test_refuses_a_threshold_outside_0_1(name, value) -> None:
    with refuses(ValueError, name, "[0, 1]"):
        cleaning.find_issues(_set(), n_folds=3, **{name: value})


@pytest.mark.bad_input
def test_refuses_an_unknown_method_an_estimator_without_predict_proba_and_foreign_flags() -> None:
    ds = _set()
    with refuses(ValueError, "method", "prune_by_noise"):
        cleaning.find_issues(ds, method="prune_by_noise")
    with refuses(ValueError, "predict_proba", "object"):
        cleaning.out_of_fold(ds, object(), n_folds=3)
    flags = cleaning.find_issues(ds, n_folds=3)
    with refuses(ValueError, "flags", "label"):
        cleaning.clean(ds.isel(sample=slice(0, 50)), flags)
    with refuses(ValueError, "flags must be find_issues"):
        cleaning.clean(ds, ds)

"""Weak-label cleaning: how much of the macro F1 lost to label noise does `eokit.cleaning` win back?

The training part of a spatial split (whole 250 m blocks held out, `eokit.splits.block_split`) gets noisy labels:
`random` flips 10 / 20 / 30 % of its samples to another class drawn at random; `parcel` relabels whole parcels,
drawn in random order until that share of samples is reached (parcels overshooting it by more than 20 % skipped,
one parcel of each crop kept) to the most similar crop (nearest class mean of the baseline features). A random
forest and an MLP (which label noise hurts more; `--tempcnn` adds the kit's TempCNN) are trained on the clean
labels, the noisy ones and the noisy ones after `eokit.cleaning.find_issues` (out-of-fold forest, folds of whole
fields; flagged samples dropped, or relabelled) and scored (macro F1) on the untouched test blocks. Per condition
(means over seeds): the F1 lost to noise, recovery = (F1_cleaned - F1_noisy) / (F1_clean - F1_noisy) ("no loss
to recover" where under MIN_LOSS was lost; goal >= 0.5), the per-seed recovery mean ± std, precision / recall of
the flags against the samples the noise changed (all flags, parcel minorities, whole parcels) and the
out-of-fold accuracy on the samples that are not parcel minorities; for whole-parcel noise, whether the signal
is there at all: the AUC of the parcel mean margin separating relabelled from untouched parcels and how many
relabelled parcels the out-of-fold classifier assigns to their true class. Cases: the bundled sample (synthetic
Sentinel-2 stack, INVEKOS fields) and the real Slovenia EOPatch of ../shared/data/slovenia-eopatch (skipped
when absent). `python benchmarks/bench_cleaning.py [--quick] [--kinds random,parcel] [--seeds 5]
[--cases sample,slovenia] [--models rf,mlp] [--action drop,relabel]`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # benchmarks/_common, however this script is loaded
from _common import MACHINE, ROOT, SHARED, crop_set  # noqa: E402

RATES = (0.1, 0.2, 0.3)
KINDS = ("random", "parcel")


# ------------------------------------------------------------------------------------------------ the cases
def _sample(n: int):
    s = ROOT / "data" / "sample" / "s2stack"
    return crop_set(s, s / "fields.gpkg", "crop_code", n, "invekos")


def _slovenia(n: int):
    """The real case, read from ../shared/data (its GeoTIFF stack written to a temporary folder, then sampled)."""
    from eokit.datasets import slovenia

    src = SHARED / "slovenia-eopatch"
    if not (src / "ndvi.npy").exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        stack = slovenia.write_stack(Path(tmp) / "stack", path=src)
        polys = slovenia.land_use_polygons(src)
        return crop_set(stack, polys, "LULC_ID", n, None, "LULC_NAME")


CASES = {"sample": _sample, "slovenia": _slovenia}


# ------------------------------------------------------------------------------------------------ the noise
def _names(ds) -> dict[int, str]:
    return {int(k): str(v) for k, v in zip(ds["label"].values, ds["label_name"].values, strict=True)}


def _with_labels(ds, labels: np.ndarray, names: dict[int, str]):
    out = ds.copy()
    out["label"] = ("sample", labels.astype(np.int64))
    out["label_name"] = ("sample", np.asarray([names[int(c)] for c in labels]))
    return out


def _similar(ds) -> dict[int, int]:
    """Return each class's most similar other class: nearest class mean of the baseline features (NaN-aware)."""
    from eokit.evaluate import _baseline_features, dataset_bands

    x = _baseline_features(ds, "timeseries", dataset_bands(ds, "timeseries"), ds.sizes["time"])
    y = ds["label"].values
    ids = np.unique(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        means = np.stack([np.nanmean(x[y == c], axis=0) for c in ids])
        d = np.array([[np.nanmean((a - b) ** 2) for b in means] for a in means])
    d[np.arange(len(ids)), np.arange(len(ids))] = np.inf
    return {int(c): int(ids[np.nanargmin(row)]) for c, row in zip(ids, d, strict=True)}


def _noisy(ds, kind: str, rate: float, seed: int):
    """Return (noisy copy of the training set, mask of the samples whose label was changed)."""
    rng = np.random.default_rng(seed)
    y = ds["label"].values.astype(np.int64)
    ids = np.unique(y)
    new = y.copy()
    if kind == "random":
        flip = rng.random(len(y)) < rate
        offset = rng.integers(1, len(ids), size=len(y))  # another class, uniformly
        pos = np.searchsorted(ids, y)
        new[flip] = ids[(pos[flip] + offset[flip]) % len(ids)]
    else:
        near = _similar(ds)
        field = np.char.add(np.char.add(ds["tile"].values.astype(str), ":"), ds["field_id"].values.astype(str))
        target, taken = rate * len(y), 0
        parcels = {f: np.flatnonzero(field == f) for f in rng.permutation(np.unique(field))}
        left = {int(c): len({f for f, idx in parcels.items() if y[idx[0]] == c}) for c in ids}
        for idx in parcels.values():  # in random order, skipping parcels that overshoot by more than 20 %
            c = int(np.bincount(y[idx] - y.min()).argmax() + y.min())
            if taken >= target:
                break
            if taken + len(idx) > 1.2 * target or left[c] <= 1:  # a crop wholly mislabelled cannot be learnt back
                continue
            new[idx], taken, left[c] = near[c], taken + len(idx), left[c] - 1
    return _with_labels(ds, new, _names(ds)), new != y


# ------------------------------------------------------------------------------------------------ training
def _features(tr, te):
    from eokit.evaluate import _baseline_features, dataset_bands

    t = max(tr.sizes["time"], te.sizes["time"])
    bands = dataset_bands(tr, "timeseries")
    x_tr, x_te = _baseline_features(tr, "timeseries", bands, t), _baseline_features(te, "timeseries", bands, t)
    seen = ~np.isnan(x_tr).all(axis=0)
    return x_tr[:, seen], x_te[:, seen]


def _f1_sklearn(tr, te, seed: int, model: str, trees: int) -> float:
    """Macro F1 on `te` of a forest or an MLP trained on `tr` (classes missing from training count as F1 0)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.impute import SimpleImputer
    from sklearn.metrics import f1_score
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x_tr, x_te = _features(tr, te)
    if model == "rf":
        est = RandomForestClassifier(n_estimators=trees, random_state=seed, n_jobs=2, class_weight="balanced")
    else:  # a network memorises wrong labels where a forest averages them away
        net = MLPClassifier((64,), max_iter=60, batch_size=64, random_state=seed)
        est = make_pipeline(SimpleImputer(), StandardScaler(), net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(x_tr, tr["label"].values)
    return float(f1_score(te["label"].values, est.predict(x_te), average="macro", zero_division=0))


def _f1_tempcnn(tr, te, seed: int, epochs: int) -> float:
    """Macro F1 on `te` of the kit's TempCNN trained on `tr` (test classes unknown to it count as misses)."""
    from sklearn.metrics import f1_score

    from eokit import card as eocard
    from eokit import train

    net, card, _ = train.fit("tempcnn", tr, None, epochs=epochs, seed=seed, progress=False, batch_size=32)
    pred = np.asarray(card["class_ids"])[eocard.predict(net, card, te).argmax(-1)]
    return float(f1_score(te["label"].values, pred, average="macro", zero_division=0))


def _score(tr, te, seed: int, model: str, trees: int, epochs: int) -> float:
    return _f1_tempcnn(tr, te, seed, epochs) if model == "tempcnn" else _f1_sklearn(tr, te, seed, model, trees)


# ------------------------------------------------------------------------------------------------ the runs
SIGNALS = ("parcel_minority", "field_flagged", "issue", "flagged")
MIN_LOSS = 0.01  # below this much macro F1 lost to noise there is nothing to recover


def _flags(noisy, seed: int, trees: int):
    from sklearn.ensemble import RandomForestClassifier

    from eokit import cleaning

    folds = int(min(5, np.bincount(np.unique(noisy["label"].values, return_inverse=True)[1]).min()))
    rf = RandomForestClassifier(n_estimators=trees, random_state=seed, n_jobs=2, class_weight="balanced")
    return cleaning.find_issues(noisy, estimator=rf, n_folds=max(folds, 2), by="field", seed=seed)


def _detection(flags, changed: np.ndarray, true: np.ndarray) -> dict:
    """Return precision / recall of each flagging rule against the samples whose label the noise changed."""
    out: dict[str, float] = {}
    for sig in SIGNALS:
        m = np.asarray(flags[sig].values, bool)
        out[f"n_{sig}"] = int(m.sum())
        out[f"prec_{sig}"] = float((m & changed).sum() / m.sum()) if m.any() else float("nan")
        out[f"rec_{sig}"] = float((m & changed).sum() / max(changed.sum(), 1))
    given = np.asarray(flags["label"].values)
    keep = ~np.asarray(flags["parcel_minority"].values, bool)
    out["oof_accuracy_unflagged"] = float((np.asarray(flags["predicted"].values)[keep] == given[keep]).mean())
    out["unreliable_classes"] = len(flags.attrs["unreliable_classes"])
    out["n_classes"] = len(flags.attrs["class_ids"])
    return {**out, **_parcel_evidence(flags, changed, true)}


def _parcel_evidence(flags, changed: np.ndarray, true: np.ndarray) -> dict:
    """Return whether the out-of-fold probabilities can tell wholly relabelled parcels from untouched ones: the AUC
    of the parcel's mean margin (given minus best other class; 0.5 = no signal), how many parcels were relabelled
    and how many of those the parcel-mean OOF argmax assigns to their true class (what a classifier rule could fix)."""
    from sklearn.metrics import roc_auc_score

    from eokit._split_groups import _groups

    nan = {"n_relabelled_parcels": 0, "n_relabelled_parcels_oof_true": 0, "parcel_margin_auc": float("nan")}
    if "field_id" not in flags.variables:
        return nan
    key = _groups(flags, "field", None)[0]
    ids = np.asarray(flags.attrs["class_ids"])
    proba, margin = np.asarray(flags["proba"].values), np.asarray(flags["margin"].values)
    whole, score, hit = [], [], 0
    for g in np.unique(key):
        idx = np.flatnonzero(key == g)
        if changed[idx].all() or not changed[idx].any():
            whole.append(bool(changed[idx].all()))
            score.append(-float(margin[idx].mean()))
            hit += int(whole[-1] and ids[proba[idx].mean(axis=0).argmax()] == np.bincount(true[idx]).argmax())
    nan.update(n_relabelled_parcels=int(sum(whole)), n_relabelled_parcels_oof_true=hit)
    if 0 < sum(whole) < len(whole):
        nan["parcel_margin_auc"] = float(roc_auc_score(whole, score))
    return nan


def collect(cases, seeds, rates, kinds, actions, models, n: dict, trees: int, epochs: int) -> list[dict]:
    """Return one record per (case, model, seed, kind, rate, action), printing each."""
    from eokit import cleaning, splits

    records = []
    for case in cases:
        ds = CASES[case](n[case])
        if ds is None:
            print(f"-- {case}: data not found, skipped", flush=True)
            continue
        for seed in seeds:
            sp = splits.block_split(ds, block_size=250.0, test_fraction=0.3, val_fraction=0, seed=seed, unseen="drop")
            tr, _, te = sp.select(ds)
            tr, te = tr.load(), te.load()
            f1_clean = {m: _score(tr, te, seed, m, trees, epochs) for m in models}
            for kind in kinds:
                for rate in rates:
                    t0 = time.perf_counter()
                    noisy, changed = _noisy(tr, kind, rate, seed)
                    flags = _flags(noisy, seed, trees)
                    det = _detection(flags, changed, tr["label"].values.astype(np.int64))
                    cleaned = {a: cleaning.clean(noisy, flags, a) for a in actions}
                    for model in models:
                        f1_noisy = _score(noisy, te, seed, model, trees, epochs)
                        for action in actions:
                            f1_cleaned = _score(cleaned[action], te, seed, model, trees, epochs)
                            lost = f1_clean[model] - f1_noisy
                            rec = {"case": case, "model": model, "seed": seed, "kind": kind, "rate": rate}
                            rec.update(action=action, n_train=int(tr.sizes["sample"]), n_test=int(te.sizes["sample"]))
                            rec.update(n_changed=int(changed.sum()), share_changed=float(changed.mean()), **det)
                            rec.update(f1_clean=f1_clean[model], f1_noisy=f1_noisy, f1_cleaned=f1_cleaned)
                            rec["lost"] = lost
                            rec["recovery"] = (
                                float((f1_cleaned - f1_noisy) / lost) if lost >= MIN_LOSS else float("nan")
                            )
                            rec["seconds"] = round(time.perf_counter() - t0, 1)
                            records.append(rec)
                            print(
                                f"{case:>8} {model:>4} seed {seed} {kind:>6} {rate:.0%} ({changed.mean():.0%}) "
                                f"{action:>7}: F1 clean {f1_clean[model]:.3f} noisy {f1_noisy:.3f} cleaned "
                                f"{f1_cleaned:.3f} recovery {rec['recovery']:+.2f} | flagged {det['n_flagged']} prec "
                                f"{det['prec_flagged']:.2f} rec {det['rec_flagged']:.2f} (minority "
                                f"{det['prec_parcel_minority']:.2f}/{det['rec_parcel_minority']:.2f}, parcels "
                                f"{det['prec_field_flagged']:.2f}/{det['rec_field_flagged']:.2f}), OOF acc "
                                f"{det['oof_accuracy_unflagged']:.2f}, unreliable {det['unreliable_classes']}"
                                f"/{det['n_classes']}",
                                flush=True,
                            )
    return records


def summary(records: list[dict]):
    """Return the table per condition: mean F1 clean/noisy/cleaned over seeds, F1 lost, recovery of the means
    ("no loss to recover" below MIN_LOSS), per-seed recovery mean ± std where that seed lost, flag precision/recall."""
    import pandas as pd

    df = pd.DataFrame(records)
    keys = ["case", "model", "kind", "rate", "action"]
    g = df.groupby(keys, sort=False)
    cols = ["share_changed", "f1_clean", "f1_noisy", "f1_cleaned", "lost", "prec_flagged", "rec_flagged"]
    cols += ["prec_parcel_minority", "rec_parcel_minority", "prec_field_flagged", "rec_field_flagged"]
    cols += ["n_relabelled_parcels", "n_relabelled_parcels_oof_true", "parcel_margin_auc"]
    out = g[cols + ["oof_accuracy_unflagged", "unreliable_classes"]].mean()
    out["n_seeds"] = g.size()
    out["recovery_seed_mean"] = g["recovery"].mean()
    out["recovery_seed_std"] = g["recovery"].std()
    out["f1_cleaned_std"] = g["f1_cleaned"].std()
    lost = out["f1_clean"] - out["f1_noisy"]
    out["recovery"] = np.where(
        lost >= MIN_LOSS, (out["f1_cleaned"] - out["f1_noisy"]) / lost.where(lost > 0, 1), np.nan
    )
    out["verdict"] = np.where(lost < MIN_LOSS, "no loss to recover", np.where(out["recovery"] >= 0.5, "met", "missed"))
    return out.reset_index()


def _rows(table) -> list[dict]:
    rows = []
    for _, r in table.iterrows():
        rec = float(r["recovery"])
        rows.append(
            {
                "what": f"{r['case']} {r['model']}: {r['kind']} noise {r['rate']:.0%}, {r['action']} flagged, "
                f"macro F1 trained on noisy (baseline) vs cleaned (eokit); clean-train F1 {r['f1_clean']:.3f}, "
                f"lost {r['lost']:.3f}, recovered share {rec:+.2f} ({r['verdict']}, n={int(r['n_seeds'])})",
                "baseline": max(float(r["f1_noisy"]), 1e-6),
                "eokit": max(float(r["f1_cleaned"]), 1e-6),
                "ratio": max(float(r["f1_cleaned"]), 1e-6) / max(float(r["f1_noisy"]), 1e-6),
                "unit": "macro F1",
                "machine": MACHINE,
                "recovery": rec,
                "verdict": str(r["verdict"]),
                "f1_clean": float(r["f1_clean"]),
            }
        )
    return rows


def _args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sets, one seed (a smoke run, not a measurement)")
    ap.add_argument("--seeds", type=int, default=5, help="split and noise seeds (default 5)")
    ap.add_argument("--models", default="rf,mlp", help="classifiers trained after cleaning: rf, mlp (and tempcnn)")
    ap.add_argument("--cases", default="sample,slovenia", help="comma-separated cases")
    ap.add_argument("--kinds", default="random,parcel", help="comma-separated noise kinds")
    ap.add_argument("--action", default="drop,relabel", help="what clean() does with flagged samples")
    ap.add_argument("--tempcnn", action="store_true", help="also train the kit's TempCNN (slow)")
    ap.add_argument("--output", default=str(HERE / "results_cleaning.json"), help="where the JSON record goes")
    return ap.parse_known_args(argv)[0]


def run(quick: bool = False, tiny: bool = False, argv: list[str] | None = None) -> list[dict]:
    """Return runner rows (macro F1 trained on noisy vs cleaned labels, recovery in each row); JSON unless tiny."""
    from eokit._io import write_json_atomic

    args = _args(argv or [])
    if tiny:
        recs = collect(["sample"], [0], [0.2], ["random"], ["drop"], ["rf"], {"sample": 300}, 30, 1)
        return _rows(summary(recs))
    seeds = [0] if quick else list(range(args.seeds))
    n = {"sample": 800, "slovenia": 1000} if quick else {"sample": 2000, "slovenia": 3000}
    models = args.models.split(",") + (["tempcnn"] if args.tempcnn else [])
    recs = collect(
        args.cases.split(","),
        seeds,
        list(RATES),
        args.kinds.split(","),
        args.action.split(","),
        models,
        n,
        100,
        5 if quick else 40,
    )
    table = summary(recs)
    out = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": MACHINE, "quick": quick, "records": recs}
    out["summary"] = table.to_dict(orient="records")
    write_json_atomic(out, args.output, default=float)
    return _rows(table)


def main(argv: list[str]) -> None:
    """Print the cleaning table (mean ± std over seeds) and write the JSON record."""
    import json

    import pandas as pd

    run(quick="--quick" in argv, argv=argv)
    res = json.loads(Path(_args(argv).output).read_text())
    t = pd.DataFrame(res["summary"])
    t["rate"] = [f"{r:.0%} ({c:.0%})" for r, c in zip(t["rate"], t["share_changed"], strict=True)]
    t["recovery"] = [f"{v:+.2f}" if v == v else "-" for v in t["recovery"]]
    t["per seed"] = [
        f"{m:+.2f} ± {s:.2f}" if m == m and s == s else "-"
        for m, s in zip(t["recovery_seed_mean"], t["recovery_seed_std"], strict=True)
    ]
    t["flags P/R"] = [f"{p:.2f}/{r:.2f}" for p, r in zip(t["prec_flagged"], t["rec_flagged"], strict=True)]
    t["minority P/R"] = [
        f"{p:.2f}/{r:.2f}" for p, r in zip(t["prec_parcel_minority"], t["rec_parcel_minority"], strict=True)
    ]
    t["parcels P/R"] = [
        f"{p:.2f}/{r:.2f}" for p, r in zip(t["prec_field_flagged"], t["rec_field_flagged"], strict=True)
    ]
    t["relabelled parcels (OOF true)"] = [
        f"{a:.1f} ({b:.1f})" for a, b in zip(t["n_relabelled_parcels"], t["n_relabelled_parcels_oof_true"], strict=True)
    ]
    for c in ("f1_clean", "f1_noisy", "f1_cleaned", "lost", "oof_accuracy_unflagged", "parcel_margin_auc"):
        t[c] = t[c].map(lambda v: f"{v:.3f}")
    cols = ["case", "model", "kind", "rate", "action", "n_seeds", "f1_clean", "f1_noisy", "f1_cleaned", "lost"]
    cols += ["recovery", "per seed", "verdict", "flags P/R", "minority P/R", "parcels P/R", "oof_accuracy_unflagged"]
    cols += ["relabelled parcels (OOF true)", "parcel_margin_auc"]
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print("\n" + t[cols].to_string(index=False))
    print(f"written {_args(argv).output}")


if __name__ == "__main__":
    main(sys.argv[1:])

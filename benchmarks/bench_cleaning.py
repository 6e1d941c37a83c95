"""Weak-label cleaning: how much of the macro F1 lost to label noise does `eokit.cleaning` win back?

The training part of a spatial split (whole 250 m blocks held out, `eokit.splits.block_split`) gets noisy labels:
`random` flips 10 / 20 / 30 % of its samples to another class drawn at random; `parcel` relabels whole parcels
(drawn until that share of samples is reached) to the most similar crop (nearest class mean profile of the
baseline features). A random forest (`eokit.evaluate`'s features) is trained on the clean labels, on the noisy
ones and on the noisy ones after `eokit.cleaning` (out-of-fold forest, folds of whole fields; flagged samples
dropped, or relabelled), and scored (macro F1) on the untouched test blocks. Recovery = (F1_cleaned - F1_noisy) /
(F1_clean - F1_noisy), the share of the lost F1 won back (goal >= 0.5); mean ± std over seeds. Cases: the bundled
sample (synthetic Sentinel-2 stack, INVEKOS fields) and the real Slovenia EOPatch of ../shared/data/slovenia-eopatch
(NDVI + land-use register, skipped when absent). `--tempcnn` adds the kit's TempCNN as the trained classifier (slow).
`python benchmarks/bench_cleaning.py [--quick] [--seeds 3] [--cases sample,slovenia] [--action drop,relabel]`.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SHARED = ROOT.parent / "shared" / "data"
MACHINE = f"cpu {os.cpu_count()} cores ({platform.machine()})"
RATES = (0.1, 0.2, 0.3)
KINDS = ("random", "parcel")


# ------------------------------------------------------------------------------------------------ the cases
def _crop_set(stack: Path, polygons, column: str, n: int, mapping: str | None, name_column: str | None = None):
    from eokit import cube, sampling

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        c = cube.open(stack, chunks=256)
        ts = sampling.make_training_set(
            c,
            polygons,
            column,
            n,
            strategy="proportional",
            seed=0,
            erosion=1,
            mapping=mapping,
            progress=False,
            name_column=name_column,
        )
    return ts.load()


def _sample(n: int):
    s = ROOT / "data" / "sample" / "s2stack"
    return _crop_set(s, s / "fields.gpkg", "crop_code", n, "invekos")


def _slovenia(n: int):
    """The real case, read from ../shared/data (its GeoTIFF stack written to a temporary folder, then sampled)."""
    from eokit.datasets import slovenia

    src = SHARED / "slovenia-eopatch"
    if not (src / "ndvi.npy").exists():
        return None
    with tempfile.TemporaryDirectory() as tmp:
        stack = slovenia.write_stack(Path(tmp) / "stack", path=src)
        polys = slovenia.land_use_polygons(src)
        return _crop_set(stack, polys, "LULC_ID", n, None, "LULC_NAME")


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
        taken = 0
        for f in rng.permutation(np.unique(field)):
            if taken >= rate * len(y):
                break
            m = field == f
            new[m] = near[int(np.bincount(y[m] - y.min()).argmax() + y.min())]
            taken += int(m.sum())
    return _with_labels(ds, new, _names(ds)), new != y


# ------------------------------------------------------------------------------------------------ training
def _f1_rf(tr, te, seed: int, trees: int) -> float:
    """Macro F1 on `te` of a forest trained on `tr` (classes missing from training count as F1 0)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import f1_score

    from eokit.evaluate import _baseline_features, dataset_bands

    t = max(tr.sizes["time"], te.sizes["time"])
    bands = dataset_bands(tr, "timeseries")
    x_tr, x_te = _baseline_features(tr, "timeseries", bands, t), _baseline_features(te, "timeseries", bands, t)
    seen = ~np.isnan(x_tr).all(axis=0)
    rf = RandomForestClassifier(n_estimators=trees, random_state=seed, n_jobs=2, class_weight="balanced")
    rf.fit(x_tr[:, seen], tr["label"].values)
    return float(f1_score(te["label"].values, rf.predict(x_te[:, seen]), average="macro", zero_division=0))


def _f1_tempcnn(tr, te, seed: int, epochs: int) -> float:
    """Macro F1 on `te` of the kit's TempCNN trained on `tr` (test classes unknown to it count as misses)."""
    from sklearn.metrics import f1_score

    from eokit import card as eocard
    from eokit import train

    net, card, _ = train.fit("tempcnn", tr, None, epochs=epochs, seed=seed, progress=False, batch_size=32)
    pred = np.asarray(card["class_ids"])[eocard.predict(net, card, te).argmax(-1)]
    return float(f1_score(te["label"].values, pred, average="macro", zero_division=0))


def _score(tr, te, seed: int, model: str, trees: int, epochs: int) -> float:
    return _f1_rf(tr, te, seed, trees) if model == "rf" else _f1_tempcnn(tr, te, seed, epochs)


# ------------------------------------------------------------------------------------------------ the runs
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
            for model in models:
                f1_clean = _score(tr, te, seed, model, trees, epochs)
                for kind in kinds:
                    for rate in rates:
                        t0 = time.perf_counter()
                        noisy, changed = _noisy(tr, kind, rate, seed)
                        f1_noisy = _score(noisy, te, seed, model, trees, epochs)
                        folds = int(min(5, np.bincount(np.unique(noisy["label"].values, return_inverse=True)[1]).min()))
                        flags = cleaning.find_issues(noisy, n_folds=max(folds, 2), by="field", seed=seed, n_jobs=2)
                        hit = np.asarray(flags["flagged"].values)
                        for sig in ("issue", "field_flagged", "parcel_minority"):
                            m = np.asarray(flags[sig].values)
                            print(f"    {sig}: {int(m.sum())} flagged, {int((m & changed).sum())} of them changed")
                        for action in actions:
                            cleaned = cleaning.clean(noisy, flags, action)
                            f1_cleaned = _score(cleaned, te, seed, model, trees, epochs)
                            lost = f1_clean - f1_noisy
                            rec = {
                                "case": case,
                                "model": model,
                                "seed": seed,
                                "kind": kind,
                                "rate": rate,
                                "action": action,
                                "n_train": int(tr.sizes["sample"]),
                                "n_test": int(te.sizes["sample"]),
                                "n_changed": int(changed.sum()),
                                "n_flagged": int(hit.sum()),
                                "precision": float((hit & changed).sum() / max(hit.sum(), 1)),
                                "recall": float((hit & changed).sum() / max(changed.sum(), 1)),
                                "f1_clean": f1_clean,
                                "f1_noisy": f1_noisy,
                                "f1_cleaned": f1_cleaned,
                                "recovery": float((f1_cleaned - f1_noisy) / lost) if lost > 1e-9 else float("nan"),
                                "seconds": round(time.perf_counter() - t0, 1),
                            }
                            records.append(rec)
                            print(
                                f"{case:>8} {model} seed {seed} {kind:>6} {rate:.0%} {action:>7}: F1 clean "
                                f"{f1_clean:.3f} noisy {f1_noisy:.3f} cleaned {f1_cleaned:.3f} recovery "
                                f"{rec['recovery']:+.2f} (flagged {rec['n_flagged']}, precision {rec['precision']:.2f}"
                                f", recall {rec['recall']:.2f})",
                                flush=True,
                            )
    return records


def summary(records: list[dict]):
    """Return the table: mean ± std over seeds of F1 clean/noisy/cleaned and recovery per condition."""
    import pandas as pd

    df = pd.DataFrame(records)
    keys = ["case", "model", "kind", "rate", "action"]
    g = df.groupby(keys, sort=False)
    out = g[["f1_clean", "f1_noisy", "f1_cleaned", "recovery", "precision", "recall"]].agg(["mean", "std"])
    out.columns = [f"{a}_{b}" for a, b in out.columns]
    out["n_seeds"] = g.size()
    return out.reset_index()


def _rows(table) -> list[dict]:
    rows = []
    for _, r in table.iterrows():
        rec, sd = float(r["recovery_mean"]), float(r["recovery_std"]) if r["n_seeds"] > 1 else float("nan")
        rows.append(
            {
                "what": f"{r['case']} {r['model']}: {r['kind']} noise {r['rate']:.0%}, {r['action']} flagged, "
                f"macro F1 trained on noisy (baseline) vs cleaned (eokit); clean-train F1 {r['f1_clean_mean']:.3f}, "
                f"recovered share of the lost F1 {rec:+.2f} ± {sd:.2f} (n={int(r['n_seeds'])})",
                "baseline": max(float(r["f1_noisy_mean"]), 1e-6),
                "eokit": max(float(r["f1_cleaned_mean"]), 1e-6),
                "ratio": max(float(r["f1_cleaned_mean"]), 1e-6) / max(float(r["f1_noisy_mean"]), 1e-6),
                "unit": "macro F1",
                "machine": MACHINE,
                "recovery": rec,
                "recovery_std": sd,
                "f1_clean": float(r["f1_clean_mean"]),
            }
        )
    return rows


def _args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sets, one seed (a smoke run, not a measurement)")
    ap.add_argument("--seeds", type=int, default=3, help="split and noise seeds (default 3)")
    ap.add_argument("--cases", default="sample,slovenia", help="comma-separated cases")
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
    models = ["rf", "tempcnn"] if args.tempcnn else ["rf"]
    recs = collect(
        args.cases.split(","),
        seeds,
        list(RATES),
        list(KINDS),
        args.action.split(","),
        models,
        n,
        100 if quick else 200,
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
    fmt = {c: f"{c}" for c in ("f1_clean", "f1_noisy", "f1_cleaned", "recovery", "precision", "recall")}
    for c in fmt:
        t[c] = [
            f"{m:.3f} ± {s:.3f}" if s == s else f"{m:.3f}" for m, s in zip(t[f"{c}_mean"], t[f"{c}_std"], strict=True)
        ]
    cols = ["case", "model", "kind", "rate", "action", "n_seeds", *fmt]
    print("\n" + t[cols].to_string(index=False))
    print(f"written {_args(argv).output}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""Accuracy of eokit's models against the strong simple baselines on the same spatial splits, mean ± std over seeds.

Cases (each skipped when its data is absent):
- `slovenia`: the bundled real Slovenia EOPatch (NDVI series + RABA land-use polygons, MIT): 3,000 proportional
  samples (as `eokit run 01` draws them; the register's "no data" polygons, LULC_ID 0, are left out), "block"
  (250 m cells) and "field" protocols, one split per seed;
- `sample`: the bundled synthetic Sentinel-2 stack and crop fields, same protocols;
- `polar`: the real Sentinel-1 patches of `../shared/data/polar-patch-dev/` (read in place, never copied): 5
  spatial folds of whole 3,000-px blocks (`eokit.splits.block_folds`), every model seed on every fold;
- `sar_sample`: 20-px patches of the bundled synthetic SAR scenes, folds of whole polygons.
Models: the baselines `rf` (random forest) and `hgb` (histogram gradient boosting) on the same features
(`eokit.evaluate.random_forest` / `gradient_boosting`: clouds as missing values), `rf_interp` / `hgb_interp` the
same on the series the networks see by default (clouds interpolated in time); eokit's models through
`eokit.train.fit` with their defaults; `*_recipe` the same with the stronger recipe (AdamW, warm-up + cosine, label
smoothing, early stopping on validation macro F1); `cnn_keras` the same CNN through plain `keras.Model.fit`;
`cnn_texture` the CNN without its statistics branch; `cnn_augment` the CNN with `fit(augment=True)`; `cnn_noes` the
CNN without early stopping (the last epoch kept, as plain Keras does); `*_noaug` a time-series model without its
augmentation; `*_ensemble` three seeds of a model averaged (`eokit.train.fit_ensemble`); `*_mask` a time-series
model with clouds masked (mask 0) instead of `fit`'s default interpolation (`*_interp` that default, named); `*_f1`
early stopping on validation macro F1. Every run is a record (model, case, protocol, fold, seed, OA, kappa, macro
F1, training seconds, and per class the fields, else the split's groups, in its train/val/test parts: a spatial
score rests on groups, not samples); the table gives mean ± std per model, and for folds the per-fold wins
against the forest.
`python benchmarks/bench_accuracy.py [--quick] [--seeds 3] [--cases slovenia,polar] [--models rf,cnn]`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # benchmarks/_common, however this script is loaded
from _common import MACHINE, ROOT, SHARED, crop_set  # noqa: E402

#: The stronger recipe (issue 12): each part justified by the `*_recipe` rows against the default rows.
RECIPE = {
    "optimizer": "adamw",
    "weight_decay": 1e-4,
    "warmup": 5,
    "schedule": "cosine",
    "label_smoothing": 0.1,
    "monitor": "val_macro_f1",
}
#: Published anchors printed beside the results (BreizhCrops, Russwurm et al. 2020, 4 region folds).
ANCHORS = {"BreizhCrops LSTM": "OA 0.79 ± 0.03, kappa 0.72 ± 0.05", "BreizhCrops Transformer": "OA 0.80"}
TS_MODELS = (
    "rf",
    "hgb",
    "rf_interp",
    "hgb_interp",
    "lstm",
    "tempcnn",
    "ltae",
    "transformer",
    "tempcnn_recipe",
    "transformer_recipe",
)
PATCH_MODELS = ("rf", "hgb", "cnn", "cnn_keras", "cnn_texture", "cnn_recipe", "cnn_augment")
#: Every name `--models` accepts per kind: the defaults above plus the recipe, `noaug`, `noes` and `ensemble` variants.
_TS_NETS = ("lstm", "tempcnn", "ltae", "transformer")
_TS_VARIANTS = ("noaug", "ensemble", "interp", "mask", "f1", "nofill", "f1_nofill")
KNOWN = {
    "timeseries": {*TS_MODELS, "lstm_recipe", "ltae_recipe", *(f"{m}_{v}" for m in _TS_NETS for v in _TS_VARIANTS)},
    "patch": {*PATCH_MODELS, "cnn_ensemble", "cnn_noes"},
}


def _check_models(models: list[str] | None) -> None:
    """Refuse a model name no case kind knows (it would silently run nothing), naming the known ones."""
    from eokit._checks import did_you_mean

    known = sorted(KNOWN["timeseries"] | KNOWN["patch"])
    for m in models or []:
        if m not in known:
            raise SystemExit(f"bench_accuracy: unknown model {m!r}{did_you_mean(m, known)}; known: {', '.join(known)}")


# ------------------------------------------------------------------------------------------------ the cases
def _slovenia(tiny: bool, samples: int | None = None):
    """The real case; the register's LULC_ID 0 polygons ("no data": no land use recorded) are no class."""
    from eokit.datasets import slovenia

    s = ROOT / "data" / "sample" / "slovenia"
    if not (s / "stack").is_dir():
        return None
    polys = slovenia.land_use_polygons(s)
    return crop_set(s / "stack", polys, "LULC_ID", 300 if tiny else samples or 3000, None, "LULC_NAME")


def _sample(tiny: bool, samples: int | None = None):
    s = ROOT / "data" / "sample" / "s2stack"
    return crop_set(s, s / "fields.gpkg", "crop_code", 300 if tiny else samples or 2000, "invekos")


def _polar(tiny: bool, samples: int | None = None):
    from eokit.datasets.polarpatch import open_polar_patch

    root = SHARED / "polar-patch-dev"
    if not (root / "meta.csv").exists():
        return None
    ds = open_polar_patch(root, progress=False)
    return ds.isel(patch=slice(None, None, 20)) if tiny else ds


def _sar_sample(tiny: bool, samples: int | None = None):
    from eokit import patches, sar

    scenes = ROOT / "data" / "sample" / "sar"
    prepared = [sar.preprocess(sar.open(p), clip=(-35, 5))[0] for p in sar.find_scenes(scenes)]
    ds = patches.extract(prepared, scenes / "ice_polygons.gpkg", label_column="ice_class", size=20, stride=10)
    return ds.load()


#: case -> (loader, kind, protocols, block size in the data's units)
CASES: dict[str, tuple[Callable, str, tuple[str, ...], float]] = {
    "slovenia": (_slovenia, "timeseries", ("block", "field"), 250.0),
    "sample": (_sample, "timeseries", ("block", "field"), 250.0),
    "polar": (_polar, "patch", ("block_folds",), 3000.0),
    "sar_sample": (_sar_sample, "patch", ("polygon_folds",), 0.0),
}


def _splits(ds, kind: str, protocol: str, block: float, seeds: list[int], n_folds: int):
    """Yield (fold, split seed, model seeds, split): one split per seed (time series) or k folds x every seed."""
    from eokit import splits

    if kind == "timeseries":
        for s in seeds:
            yield 0, s, [s], splits.make_split(ds, protocol, seed=s, block_size=block, unseen="drop")
        return
    by = "xy" if protocol == "block_folds" else "polygon_id"
    for f, sp in enumerate(splits.block_folds(ds, n_folds, block_size=block or None, by=by, unseen="drop")):
        yield f, 0, seeds, sp


# ------------------------------------------------------------------------------------------------ the models
def _fit_eokit(name: str, tr, va, te, seed: int, epochs: int, kind: str) -> dict:
    from eokit import evaluate, train

    model, *variants = name.split("_")  # variants combine: tempcnn_f1_nofill
    kw: dict = {"epochs": epochs, "seed": seed, "progress": False}
    if kind == "timeseries":
        kw.update(batch_size=32, augment=True, early_stopping=max(5, epochs // 6))
    else:
        kw.update(batch_size=64, early_stopping=max(3, epochs // 4))
    if "recipe" in variants:
        kw.update(RECIPE, warmup=min(RECIPE["warmup"], max(epochs // 5, 0)))
    hparams = {"statistics": False} if "texture" in variants else None
    if "noes" in variants:  # every epoch trained, the last one kept (as plain Keras does): no restore of the best
        kw["early_stopping"] = None
    if "interp" in variants or "mask" in variants:  # clouded observations interpolated in time, or zeroed, mask 0
        kw["flag_handling"] = "mask" if "mask" in variants else "interpolate"
    if "f1" in variants:  # early stopping on validation macro F1 instead of the validation loss
        kw["monitor"] = "val_macro_f1"
    if "noaug" in variants:  # the time-series default (drop-out of dates, noise) switched off
        kw["augment"] = False
    if "nofill" in variants:  # dropped dates zeroed with mask 0 (the former default) though clouds are interpolated
        kw["augment"] = {"drop": 0.1, "noise": 0.02, "fill": False}
    if "augment" in variants:  # flips, rotations, shifts (speckle only on dB SAR channels): what augmentation adds
        kw["augment"] = True
    if "ensemble" in variants:  # three seeds (seed, seed + 1, seed + 2), probabilities averaged
        net, card, _ = train.fit_ensemble(model, tr, va, members=3, hparams=hparams, **kw)
    else:
        net, card, _ = train.fit(model, tr, va, hparams=hparams, **kw)
    return evaluate.evaluate(net, card, te)


def _fit_keras(tr, te, seed: int, epochs: int) -> dict:
    """The same CNN through plain Keras: per-channel standardisation, compile, fit on NumPy arrays, no weights."""
    import keras

    from eokit import evaluate, models, trainingdata

    keras.utils.set_random_seed(seed)
    x_tr = np.asarray(tr["image"].values, np.float32)
    mu, sd = x_tr.mean((0, 1, 2)), x_tr.std((0, 1, 2)) + 1e-6
    ids = sorted(int(c) for c in np.unique(tr["label"].values))
    lut = {c: i for i, c in enumerate(ids)}
    y_tr = np.array([lut[int(v)] for v in tr["label"].values])
    net = models.build("cnn", x_tr.shape[-1], None, len(ids), patch_size=x_tr.shape[1])
    net.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    net.fit((x_tr - mu) / sd, y_tr, batch_size=64, epochs=epochs, verbose=0, shuffle=True)
    keep = np.isin(te["label"].values, ids)
    x_te = (np.asarray(te["image"].values[keep], np.float32) - mu) / sd
    pred = net.predict(x_te, verbose=0).argmax(-1)
    names = [str(n) for n in trainingdata.dataset_class_names(tr, "patch", ids)]
    truth = np.array([lut[int(v)] for v in te["label"].values[keep]])
    return evaluate.scores(truth, pred, names)


#: The scikit-learn baselines (no epochs).
BASELINES = ("rf", "hgb", "rf_interp", "hgb_interp")


def _run_model(name: str, tr, va, te, seed: int, epochs: int, kind: str) -> dict:
    from eokit import evaluate

    flags = "interpolate" if name.endswith("_interp") else "mask"
    if name in BASELINES and name.startswith("rf"):
        return evaluate.random_forest(tr, te, seed=seed, n_estimators=300, n_jobs=2, flag_handling=flags)[0]
    if name in BASELINES:
        return evaluate.gradient_boosting(tr, te, seed=seed, flag_handling=flags)[0]
    if name == "cnn_keras":
        return _fit_keras(tr, te, seed, epochs)
    return _fit_eokit(name, tr, va, te, seed, epochs, kind)


# ------------------------------------------------------------------------------------------------ the runs
def collect(
    cases: list[str],
    models: list[str] | None,
    seeds: list[int],
    epochs: dict[str, int],
    n_folds: int,
    tiny: bool,
    only: list[str] | None = None,
    samples: int | None = None,
) -> list[dict]:
    """Return one record per (case, protocol, fold, seed, model) run, printing each as it finishes.

    `samples`: the time-series cases' sample size instead of their own (patch cases take every patch)."""
    records: list[dict] = []
    for case in cases:
        loader, kind, protocols, block = CASES[case]
        protocols = tuple(p for p in protocols if not only or p in only)
        ds = loader(tiny, samples if kind == "timeseries" else None)
        if ds is None:
            print(f"-- {case}: data not found, skipped", flush=True)
            continue
        names = [m for m in (models or (TS_MODELS if kind == "timeseries" else PATCH_MODELS)) if m in KNOWN[kind]]
        for protocol in protocols:
            for fold, split_seed, model_seeds, sp in _splits(ds, kind, protocol, block, seeds, n_folds):
                tr, va, te = sp.select(ds)
                groups = _census(ds, sp)
                for seed in model_seeds:
                    for name in names:
                        t0 = time.perf_counter()
                        s = _run_model(name, tr, va, te, seed, epochs[kind], kind)
                        rec = {
                            "model": name,
                            "case": case,
                            "protocol": protocol,
                            "fold": fold,
                            "seed": seed,
                            "split_seed": split_seed,
                            "n_test": int(s["n"]),
                            "n_samples": int(ds.sizes["sample" if kind == "timeseries" else "patch"]),
                            "oa": float(s["overall_accuracy"]),
                            "kappa": float(s["kappa"]),
                            "macro_f1": float(s["macro_f1"]),
                            "train_seconds": round(time.perf_counter() - t0, 1),
                            "groups": groups,
                        }
                        if name not in BASELINES:
                            rec["epochs"] = epochs[kind]
                        records.append(rec)
                        print(
                            f"{case:>10} {protocol:>13} fold {fold} seed {seed} {name:>18}: OA {rec['oa']:.3f} "
                            f"kappa {rec['kappa']:.3f} macro F1 {rec['macro_f1']:.3f} ({rec['train_seconds']:.0f} s)",
                            flush=True,
                        )
    return records


def _census(ds, sp) -> dict:
    """Return {class: [train, val, test] groups}: fields where the set has them (what a crop score rests on),
    else the groups the split kept whole."""
    from eokit import splits

    table = splits.census(ds, sp, by="field" if "field_id" in ds.variables else None)
    cols = ["train_groups", "val_groups", "test_groups"]
    return {str(name): [int(v) for v in row] for name, row in table[cols].iterrows()}


def _paired(sub, where: str, model: str) -> dict:
    """Return `model` against the forests (and a CNN against the same CNN in plain Keras) split by split: the
    per-fold wins, the mean difference and the sign test, over the folds (patch cases) or the one split per
    seed (time series) that both models ran on."""
    from eokit import evaluate

    by = "fold" if sub["fold"].nunique() > 1 else "split_seed"
    refs = ["rf", "rf_interp"] + (["cnn_keras"] if model.startswith("cnn") else [])
    refs = [r for r in refs if r != model]
    out = {}
    for ref in refs:
        both = set(sub.loc[sub["model"] == model, by]) & set(sub.loc[sub["model"] == ref, by])
        if len(both) < 2:
            continue
        pair = sub[sub[by].isin(both)]
        for metric in ("oa", "macro_f1"):
            p = evaluate.paired_by_fold(pair, model, ref, metric, fold=by)
            out[f"{where} {model} vs {ref} {metric}"] = {
                "wins": int(p["wins_a"]),
                "losses": int(p["wins_b"]),
                "folds": int(p["n_folds"]),
                "paired_by": by,
                "mean_difference": float(p["mean_difference"]),
                "sign_test_p": float(p["sign_test_p"]),
                "per_fold": p["per_fold"]["difference"].round(4).tolist(),
            }
    return out


def _rows(records: list[dict]) -> tuple[list[dict], dict]:
    """Return (runner rows: each model against the forest on OA and macro F1, paired per-fold comparisons)."""
    import pandas as pd

    from eokit import evaluate

    df = pd.DataFrame(records)
    summary = evaluate.summarise_runs(df, metrics=["oa", "kappa", "macro_f1", "train_seconds"])
    rows, paired = [], {}
    for (case, protocol), grp in summary.groupby(["case", "protocol"], sort=False):
        rf = grp[grp["model"] == "rf"]
        if rf.empty:
            continue
        for _, r in grp[grp["model"] != "rf"].iterrows():
            for metric in ("oa", "macro_f1"):
                rows.append(
                    {
                        "what": f"{case} {protocol}: {r['model']} vs random forest, {metric} (n={int(r['n'])})",
                        "baseline": float(rf[f"{metric}_mean"].iloc[0]),
                        "eokit": float(r[f"{metric}_mean"]),
                        "ratio": float(r[f"{metric}_mean"] / max(rf[f"{metric}_mean"].iloc[0], 1e-9)),
                        "unit": metric,
                        "machine": MACHINE,
                        "eokit_std": float(r[f"{metric}_std"]) if r["n"] > 1 else None,
                        "baseline_std": float(rf[f"{metric}_std"].iloc[0]) if rf["n"].iloc[0] > 1 else None,
                        "train_seconds": float(r["train_seconds_mean"]),
                    }
                )
            sub = df[(df["case"] == case) & (df["protocol"] == protocol)]
            paired.update(_paired(sub, f"{case} {protocol}", str(r["model"])))
    return rows, {"summary": summary.to_dict(orient="records"), "paired": paired}


def run(quick: bool = False, tiny: bool = False, argv: list[str] | None = None) -> list[dict]:
    """Return the runner rows (each model vs the forest on OA and macro F1); writes results_accuracy.json.

    `tiny`: the bundled cases at a few hundred samples, one seed, one epoch (a smoke test of the code path).
    """
    from eokit._io import write_json_atomic

    args = _args(argv or [])
    seeds = [0] if tiny else list(range(args.first_seed, args.first_seed + args.seeds))
    epochs = {"timeseries": 1 if tiny else 20 if quick else 150, "patch": 1 if tiny else 4 if quick else 20}
    if args.epochs:
        epochs = {k: args.epochs for k in epochs}
    cases = ["sample", "sar_sample"] if tiny else args.cases.split(",")
    models = args.models.split(",") if args.models else (["rf", "hgb", "tempcnn", "cnn"] if tiny else None)
    _check_models(models)
    only = args.protocols.split(",") if args.protocols else None
    known = sorted({p for c in CASES.values() for p in c[2]})
    for p in only or []:
        if p not in known:
            raise SystemExit(f"bench_accuracy: unknown protocol {p!r}; known: {', '.join(known)}")
    records = collect(cases, models, seeds, epochs, 2 if tiny else args.folds, tiny, only, args.samples or None)
    kept: dict = {}
    if args.merge and not tiny:
        records, kept = _merged(Path(args.output), records)
    rows, extra = _rows(records)
    out = {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": MACHINE, "epochs": epochs}
    out.update(kept)  # a merged record keeps its header's epochs and note (each network run names its own epochs)
    out.update(anchors=ANCHORS, recipe=RECIPE, records=records, **extra)
    if not tiny:
        write_json_atomic(out, args.output, default=float)
    return rows


_RUN_KEY = ("model", "case", "protocol", "fold", "seed", "split_seed")


def _merged(output: Path, records: list[dict]) -> tuple[list[dict], dict]:
    """Return (the records already in `output` with the new ones added, a new run replacing the same run's
    record; the header entries "epochs" and "note" of `output` to keep)."""
    if not output.is_file():
        return records, {}
    try:
        head = json.loads(output.read_text())
        old = head["records"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise SystemExit(f"bench_accuracy --merge: {output} is not a bench_accuracy record ({e})") from e
    new = {tuple(r[k] for k in _RUN_KEY) for r in records}
    kept = {k: head[k] for k in ("epochs", "note") if k in head}
    return [r for r in old if tuple(r.get(k) for k in _RUN_KEY) not in new] + records, kept


def _args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer epochs (a smoke run, not a measurement)")
    ap.add_argument("--seeds", type=int, default=3, help="seeds per split (default 3)")
    ap.add_argument("--first-seed", type=int, default=0, help="first seed (run seeds first..first+seeds-1)")
    ap.add_argument("--merge", action="store_true", help="add the runs to --output's records (same run: replaced)")
    ap.add_argument("--folds", type=int, default=5, help="spatial folds of the patch cases (default 5)")
    ap.add_argument("--epochs", type=int, default=0, help="override the epochs of every eokit model")
    ap.add_argument("--samples", type=int, default=0, help="time-series cases: samples drawn (slovenia 3000)")
    ap.add_argument("--cases", default="slovenia,polar,sample,sar_sample", help="comma-separated cases")
    ap.add_argument("--protocols", default="", help="comma-separated protocols (default: every protocol of a case)")
    ap.add_argument("--models", default="", help="comma-separated models (default: all for the case's kind)")
    ap.add_argument("--output", default=str(HERE / "results_accuracy.json"), help="where the JSON record goes")
    return ap.parse_known_args(argv)[0]


def main(argv: list[str]) -> None:
    """Print the accuracy table (mean ± std per model) and the per-fold comparisons."""
    import pandas as pd

    rows = run(quick="--quick" in argv, argv=argv)
    output = Path(_args(argv).output)
    res = json.loads(output.read_text())
    table = pd.DataFrame(res["summary"])
    cols = ["case", "protocol", "model", "n", "oa", "kappa", "macro_f1", "train_seconds"]
    print("\n" + table[[c for c in cols if c in table]].to_string(index=False))
    for k, v in res["paired"].items():
        unit = "folds" if v.get("paired_by", "fold") == "fold" else "splits"
        p = f", sign test p = {v['sign_test_p']:.2f}" if "sign_test_p" in v else ""
        print(f"{k}: {v['wins']} of {v['folds']} {unit} won, mean difference {v['mean_difference']:+.3f}{p}")
    for k, v in ANCHORS.items():
        print(f"published anchor, {k}: {v}")
    print(f"{len(rows)} rows; written {output}")


if __name__ == "__main__":
    main(sys.argv[1:])

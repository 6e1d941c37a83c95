"""Active learning vs random selection: learning curves on a held-out spatial block, mean ± std over seeds.

Cases (each skipped when its data is absent):
- `sar_sample`: 20-px patches of the bundled synthetic SAR scenes (as notebook 03 cuts them), six ice classes,
  blocks of a quarter scene held out (`eokit.active.spatial_holdout`);
- `polar`: the real Sentinel-1 patches of `../shared/data/polar-patch-dev/` (read in place, never copied),
  water/ice/land, whole 3,000-px blocks held out.
Each seed has its own hold-out; "margin" (uncertainty + k-means diversity) and "random" start from the same
labelled patches and are labelled by the oracle (the patch set's known labels). Rows: macro F1 at fixed label
budgets (active / random) and labels needed to reach 95 % of random's final macro F1 (random / active).
`python benchmarks/bench_active.py [--quick]` prints the curve table and writes results_active.json.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # benchmarks/_common, however this script is loaded
from _common import MACHINE, ROOT, SHARED  # noqa: E402


def _sar_sample(tiny: bool):
    from eokit import patches, sar

    scenes = ROOT / "data" / "sample" / "sar"
    prepared = [sar.preprocess(sar.open(p), clip=(-35, 5))[0] for p in sar.find_scenes(scenes)]
    ds = patches.extract(
        prepared, scenes / "ice_polygons.gpkg", label_column="ice_class", size=20, stride=10, progress=False
    )
    return ds.load(), None


def _polar(tiny: bool):
    from eokit.datasets.polarpatch import open_polar_patch

    root = SHARED / "polar-patch-dev"
    if tiny or not (root / "meta.csv").exists():
        return None
    return open_polar_patch(root, progress=False), 3000.0


#: case -> (loader, batch size, rounds, seeds) for (full, quick, tiny)
CASES = {"sar_sample": _sar_sample, "polar": _polar}
SIZES = {"full": (10, 15, 5), "quick": (10, 8, 3), "tiny": (5, 2, 1)}


def _labels_to_reach(summary: pd.DataFrame, strategy: str, target: float) -> tuple[float, bool]:
    """Labels at which the strategy's mean macro F1 first reaches `target`; (the largest budget, False) if never."""
    part = summary[summary["strategy"] == strategy].sort_values("n_labels")
    hit = part[part["macro_f1_mean"] >= target]
    return (float(hit["n_labels"].iloc[0]), True) if len(hit) else (float(part["n_labels"].iloc[-1]), False)


def _rows(case: str, summary: pd.DataFrame, n_seeds: int) -> list[dict]:
    rows = []
    budgets = sorted(summary["n_labels"].unique())
    picks = sorted({budgets[len(budgets) // 3], budgets[(2 * len(budgets)) // 3], budgets[-1]})
    get = summary.set_index(["strategy", "n_labels"])
    for b in picks:
        act, rnd = get.loc[("margin", b)], get.loc[("random", b)]
        rows.append(
            {
                "what": f"active_{case} macro F1 at {b} labels (margin vs random, {n_seeds} seeds, "
                f"± {act['macro_f1_std']:.3f} / {rnd['macro_f1_std']:.3f})",
                "baseline": round(float(rnd["macro_f1_mean"]), 4),
                "eokit": round(float(act["macro_f1_mean"]), 4),
                "ratio": round(float(act["macro_f1_mean"] / max(rnd["macro_f1_mean"], 1e-9)), 3),
                "unit": "macro F1",
                "machine": MACHINE,
            }
        )
    target = 0.95 * float(get.loc[("random", budgets[-1]), "macro_f1_mean"])
    (need_a, ok_a), (need_r, ok_r) = (_labels_to_reach(summary, s, target) for s in ("margin", "random"))
    censored = "".join(f", {s} never reached it (> {n:.0f})" for s, n, ok in (("active", need_a, ok_a),
                       ("random", need_r, ok_r)) if not ok)  # fmt: skip
    rows.append(
        {
            "what": f"active_{case} labels to reach macro F1 {target:.3f} (95% of random's final){censored}",
            "baseline": need_r,
            "eokit": need_a,
            "ratio": round(need_r / need_a, 3),
            "unit": "labels (ratio: random / active)",
            "machine": MACHINE,
        }
    )
    return rows


def run(quick: bool = False, tiny: bool = False) -> list[dict]:
    """Return the runner rows (active vs random per case); writes results_active.json unless `tiny`."""
    from eokit._io import write_json_atomic
    from eokit.active import learning_curve, summarise_curve

    batch, rounds, n_seeds = SIZES["tiny" if tiny else "quick" if quick else "full"]
    rows, record = [], {"created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": MACHINE, "cases": {}}
    for case, loader in CASES.items():
        got = loader(tiny)
        if got is None:
            continue
        ds, block = got
        start = time.perf_counter()
        curve = learning_curve(ds, seeds=range(n_seeds), batch_size=batch, n_rounds=rounds, block_size=block)
        summary = summarise_curve(curve)
        rows += _rows(case, summary, n_seeds)
        record["cases"][case] = {
            "n_patches": int(ds.sizes["patch"]),
            "batch_size": batch,
            "n_rounds": rounds,
            "seeds": n_seeds,
            "seconds": round(time.perf_counter() - start, 1),
            "curve": summary.round(4).to_dict(orient="records"),
        }
    if not tiny:
        write_json_atomic(record, HERE / "results_active.json")
    return rows


def main(argv: list[str]) -> None:
    """Print the learning-curve table per case and the rows."""
    rows = run(quick="--quick" in argv)
    import json

    res = json.loads((HERE / "results_active.json").read_text())
    for case, c in res["cases"].items():
        t = pd.DataFrame(c["curve"])
        wide = t.pivot(index="n_labels", columns="strategy", values=["macro_f1_mean", "macro_f1_std", "accuracy_mean"])
        print(f"\n{case}: {c['n_patches']} patches, batch {c['batch_size']}, {c['seeds']} seeds, {c['seconds']} s")
        print(wide.round(3).to_string())
    print()
    for r in rows:
        print(f"{r['what']}: random {r['baseline']}, active {r['eokit']}, ratio {r['ratio']}")


if __name__ == "__main__":
    main(sys.argv[1:])

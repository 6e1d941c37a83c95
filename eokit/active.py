"""Active learning for patch labelling: an analyst (or an oracle) labels the patches a classifier is least sure of.

DLR made its Belgica Bank sea-ice training set so: a few labelled Sentinel-1 patches, a classifier, the pool of
unlabelled patches scored by uncertainty, the next batch shown to the ice analyst, retrain, repeat. Here:
a patch set (eokit.schema.PATCH_SCHEMA, e.g. `eokit.patches.read_patches` or `polarpatch.open_polar_patch`);
features `eokit.inputs.patch_statistics` (standardised); a default random forest, any estimator with
`fit`/`predict_proba`, or a callable `fit(train_patches, seed) -> predict(patches) -> (N, n_classes)` (the kit's
CNN through `eokit.train.fit`); strategies "margin", "entropy" (uncertainty) or "random" (the baseline); a diversity
step (the most uncertain `candidates` x batch, then one per k-means cluster, or farthest-point) so a batch is not
near-identical patches. Labels come from `labeller(proposal) -> labels` (`oracle` answers from the patch set's
known labels; `ActiveLearningPanel` is the JupyterLab view). Every round (proposal, model scores, labels with
who/when/round, held-out scores) is written atomically to `{output}/active_learning.json`; a restarted loop reads
it and continues. Scores are taken on a held-out spatial block (`spatial_holdout`, never labelled).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from eokit._active_panel import ActiveLearningPanel, plot_learning_curve, plot_locations, plot_proposal
from eokit._active_select import (
    DIVERSITY,
    STRATEGIES,
    _check_choice,
    _check_pool,
    _holdout_scores,
    _predict,
    make_classifier,
    patch_features,
    select_batch,
    uncertainty,
)
from eokit._checks import did_you_mean, is_int
from eokit._io import write_json_atomic

__all__ = [
    "STRATEGIES",
    "DIVERSITY",
    "RECORD",
    "Proposal",
    "ActiveLearner",
    "ActiveLearningPanel",
    "patch_features",
    "make_classifier",
    "uncertainty",
    "select_batch",
    "spatial_holdout",
    "oracle",
    "class_names",
    "learning_curve",
    "summarise_curve",
    "plot_learning_curve",
    "plot_proposal",
    "plot_locations",
]

#: file name of the round record in the output folder
RECORD = "active_learning.json"
_RECORD_VERSION = 1


@dataclass(frozen=True)
class Proposal:
    """One round's patches to label: positions into the patch set, their uncertainty and the model's guesses."""

    round: int
    indices: np.ndarray
    scores: np.ndarray  # uncertainty (NaN in the start round and for "random")
    predicted: list[str | None]  # the model's class per patch (None before a model exists)
    strategy: str
    classes: tuple[str, ...]
    patches: xr.Dataset  # the proposed patches (the patch set's variables, in proposal order)

    def __len__(self) -> int:
        """Return the number of proposed patches."""
        return len(self.indices)


def spatial_holdout(ds: xr.Dataset, block_size: float | None = None, test_fraction: float = 0.25, seed: int = 0) -> Any:
    """Return an `eokit.splits.Split` holding out whole spatial blocks (its `test`) and the rest as the pool.

    Blocks are cells of `block_size` in `x`/`y` (or `col0`/`row0` pixels where the set has no x/y), within each
    scene; `block_size=None` takes a quarter of the larger extent, so each scene has about 4 x 4 blocks.
    """
    from eokit.splits import block_split

    _check_pool(ds)
    has_xy = "x" in ds.variables and "y" in ds.variables
    x = np.asarray(ds["x" if has_xy else "col0"].values, float)
    y = np.asarray(ds["y" if has_xy else "row0"].values, float)
    if block_size is None:
        block_size = max(float(np.ptp(x)), float(np.ptp(y)), 1.0) / 4
    view = xr.Dataset({v: ("patch", a) for v, a in (("label", ds["label"].values), ("x", x), ("y", y))})
    view["tile"] = ("patch", np.asarray(ds["scene"].values).astype(str))
    return block_split(
        view, block_size, by="xy", test_fraction=test_fraction, val_fraction=0.0, seed=seed, unseen="drop"
    )


def oracle(ds: xr.Dataset, who: str = "oracle") -> Callable[[Proposal], list[str]]:
    """Return a labeller answering each proposal with the patch set's known labels (from its labelled polygons)."""
    classes = class_names(ds)
    truth = np.asarray(ds["label"].values)

    def label(proposal: Proposal) -> list[str]:
        return [classes[int(truth[i])] for i in proposal.indices]

    label.who = who  # type: ignore[attr-defined]
    return label


def class_names(ds: xr.Dataset) -> tuple[str, ...]:
    """Return the class names, index = label id: attrs["classes"], else `label_name` per id, else the ids."""
    if ds.attrs.get("classes") is not None:
        return tuple(str(c) for c in ds.attrs["classes"])
    ids = np.asarray(ds["label"].values)
    top = int(ids.max()) + 1 if ids.size else 0
    names = [str(i) for i in range(top)]
    if "label_name" in ds.variables:
        for i, n in zip(ids, np.asarray(ds["label_name"].values), strict=True):
            if i >= 0:
                names[int(i)] = str(n)
    return tuple(names)


def _fingerprint(ds: xr.Dataset, holdout: np.ndarray) -> str:
    """A hash of the patches' identity (scene, origin) and the held-out positions: a record belongs to one set."""
    h = hashlib.sha1()
    for v in ("scene", "row0", "col0"):
        h.update(np.ascontiguousarray(np.asarray(ds[v].values).astype(str)).tobytes())
    h.update(np.asarray(holdout, np.int64).tobytes())
    return h.hexdigest()[:16]


class ActiveLearner:
    """The loop's state (labels so far, rounds, the pending proposal), saved to `{output}/active_learning.json`.

    Use `run(labeller, n_rounds)` for a callable labeller, or `propose()` / `submit(labels, who)` step by step
    (the JupyterLab panel). Round 0 labels `n_start` patches (random, one per known class first where the patch
    set has labels); each later round trains on all labels, scores the unlabelled pool and proposes a batch.
    An existing record of the same set and parameters is resumed; `overwrite=True` starts again.
    """

    def __init__(
        self,
        ds: xr.Dataset,
        *,
        strategy: str = "margin",
        batch_size: int = 10,
        n_start: int | None = None,
        seed: int = 0,
        model: Any = None,
        holdout: Any = None,
        features: np.ndarray | None = None,
        diversity: str = "kmeans",
        candidates: int = 5,
        output: str | Path | None = None,
        overwrite: bool = False,
        progress: bool = True,
    ) -> None:
        _check_pool(ds)
        self.strategy = _check_choice(strategy, STRATEGIES, "strategy")
        self.diversity = _check_choice(diversity, DIVERSITY, "diversity")
        for name, v, low in (("batch_size", batch_size, 1), ("candidates", candidates, 1), ("seed", seed, 0)):
            if not _is_whole(v, low):
                raise ValueError(f"{name} must be a whole number >= {low}, got {v!r}")
        if n_start is not None and not _is_whole(n_start, 2):
            raise ValueError(f"n_start must be a whole number >= 2 (two classes to start from), got {n_start!r}")
        n = ds.sizes["patch"]
        held = getattr(holdout, "test", holdout)
        self.holdout = np.unique(np.asarray([] if held is None else held, np.int64))
        if len(self.holdout) and (self.holdout.min() < 0 or self.holdout.max() >= n):
            raise ValueError(f"holdout positions must lie in 0..{n - 1} (the patch set's patches)")
        self.pool = np.setdiff1d(np.arange(n), self.holdout)
        if not len(self.pool):
            raise ValueError(f"empty pool: all {n} patches are held out; hold out fewer (a smaller test_fraction)")
        self.features = patch_features(ds) if features is None else np.asarray(features, np.float32)
        if self.features.shape[0] != n:
            raise ValueError(f"features have {self.features.shape[0]} rows; expected one per patch ({n})")
        self.ds, self.classes, self.truth = ds, class_names(ds), np.asarray(ds["label"].values, np.int64)
        self.model, self.batch_size, self.candidates, self.seed = model, int(batch_size), int(candidates), int(seed)
        known = np.unique(self.truth[self.pool][self.truth[self.pool] >= 0])
        self.n_start = int(n_start) if n_start is not None else max(self.batch_size, len(known), 2)
        self.progress, self.finished = progress, False
        self.labels: dict[int, int] = {}
        self.rounds: list[dict[str, Any]] = []
        self.pending: dict[str, Any] | None = None
        self._proba: tuple[int, np.ndarray] | None = None  # (labels it was trained on, pool probabilities)
        self.params = {
            "strategy": self.strategy,
            "batch_size": self.batch_size,
            "n_start": self.n_start,
            "seed": self.seed,
            "diversity": self.diversity,
            "candidates": self.candidates,
            "model": "random forest (default)" if model is None else type(model).__name__,
            "n_patches": int(n),
            "n_holdout": int(len(self.holdout)),
            "fingerprint": _fingerprint(ds, self.holdout),
        }
        self.path = None if output is None else Path(output) / RECORD
        if self.path is not None and self.path.exists() and not overwrite:
            self._resume()

    # ------------------------------------------------------------------------------------------ state
    def _resume(self) -> None:
        assert self.path is not None
        rec = _read(self.path)
        diff = sorted(k for k, v in self.params.items() if rec.get("params", {}).get(k) != v)
        if diff:
            was = {k: rec.get("params", {}).get(k) for k in diff}
            raise ValueError(
                f"active-learning record {self.path} was made with other parameters ({was}, now "
                f"{ {k: self.params[k] for k in diff} }); pass overwrite=True to start again or another output"
            )
        self.rounds, self.pending, self.finished = rec["rounds"], rec.get("pending"), bool(rec.get("finished"))
        self.labels = {int(e["patch"]): self.classes.index(e["label"]) for r in self.rounds for e in r["labels"]}

    def _save(self) -> None:
        if self.path is not None:
            rec = {
                "version": _RECORD_VERSION,
                "params": self.params,
                "classes": list(self.classes),
                "finished": self.finished,
                "updated": _now(),
                "rounds": self.rounds,
                "pending": self.pending,
            }
            _write(self.path, rec)

    def unlabelled(self) -> np.ndarray:
        """Return the positions of the pool patches that have no label yet."""
        return np.setdiff1d(self.pool, np.fromiter(self.labels, np.int64, len(self.labels)))

    def history(self) -> pd.DataFrame:
        """Return one row per finished round: strategy, seed, round, n_labels, accuracy, macro_f1 (held out)."""
        keys = ("round", "n_labels", "accuracy", "macro_f1")
        rows = [{"strategy": self.strategy, "seed": self.seed, **{k: r.get(k) for k in keys}} for r in self.rounds]
        return pd.DataFrame(rows, columns=["strategy", "seed", *keys])

    # ------------------------------------------------------------------------------------------ the loop
    def _fit(self) -> np.ndarray:
        """Train on the labels so far; return the unlabelled pool's probabilities; record held-out scores."""
        if self._proba is not None and self._proba[0] == len(self.labels):
            return self._proba[1]
        unl, train = self.unlabelled(), np.fromiter(self.labels, np.int64, len(self.labels))
        y = np.fromiter(self.labels.values(), np.int64, len(self.labels))
        held = self.holdout[self.truth[self.holdout] >= 0]
        seed = int(np.random.default_rng([self.seed, 1, len(self.rounds)]).integers(2**31))
        at = np.concatenate([unl, held])
        proba = _predict(self.model, self.ds, self.features, train, y, at, len(self.classes), seed)
        self._proba = (len(self.labels), proba[: len(unl)])
        self._scores = _holdout_scores(self.truth[held], proba[len(unl) :].argmax(axis=1))
        return self._proba[1]

    def _start(self, rng: np.random.Generator) -> np.ndarray:
        """Round 0: one random patch per known class (as far as n_start allows), the rest at random."""
        pool, first = rng.permutation(self.pool), []
        truth = self.truth[pool]
        for c in rng.permutation(np.unique(truth[truth >= 0]))[: self.n_start]:
            first.append(int(pool[np.flatnonzero(truth == c)[0]]))
        rest = [int(i) for i in pool if i not in set(first)][: self.n_start - len(first)]
        return np.array(first + rest, np.int64)

    def propose(self) -> Proposal:
        """Return the next batch to label (the pending one again if it was not yet answered); saves it."""
        if self.pending is None:
            r, unl = len(self.rounds), self.unlabelled()
            if not len(unl):
                raise ValueError(f"empty pool: all {len(self.pool)} pool patches are labelled; nothing to propose")
            rng = np.random.default_rng([self.seed, 0, r])
            scores, predicted = np.full(0, np.nan), None
            if r == 0:
                idx = self._start(rng)
                scores = np.full(len(idx), np.nan)
            else:
                proba = self._fit()
                u = uncertainty(proba, "margin" if self.strategy == "random" else self.strategy)
                if self.strategy == "random":
                    pos = np.sort(rng.choice(len(unl), min(self.batch_size, len(unl)), replace=False))
                else:
                    sub = int(rng.integers(2**31))
                    pos = select_batch(u, self.features[unl], self.batch_size, sub, self.candidates, self.diversity)
                idx, scores = unl[pos], u[pos]
                predicted = [self.classes[int(c)] for c in proba[pos].argmax(axis=1)]
            self.pending = {
                "round": r, "strategy": "start" if r == 0 else self.strategy, "proposed": _now(),
                "proposal": [int(i) for i in idx], "ids": [_patch_id(self.ds, int(i)) for i in idx],
                "scores": [None if not np.isfinite(s) else round(float(s), 6) for s in scores],
                "predicted": predicted if predicted is not None else [None] * len(idx),
            }  # fmt: skip
            self._save()
        return self.round_proposal(self.pending)

    def round_proposal(self, entry: int | Mapping[str, Any]) -> Proposal:
        """Return the proposal of a recorded round (its number, or a round/pending entry) for viewing."""
        p = entry if isinstance(entry, Mapping) else self.rounds[int(entry)]
        idx = np.asarray(p["proposal"], np.int64)
        scores = np.array([np.nan if s is None else s for s in p["scores"]], float)
        return Proposal(p["round"], idx, scores, list(p["predicted"]), p["strategy"], self.classes,
                        self.ds.isel(patch=idx))  # fmt: skip

    def _class_id(self, value: Any, patch: int, r: int) -> int:
        if is_int(value) and 0 <= int(value) < len(self.classes):
            return int(value)
        if isinstance(value, str) and value in self.classes:
            return self.classes.index(value)
        raise ValueError(
            f"labeller returned unknown class {value!r} for patch {patch} (round {r})"
            f"{did_you_mean(value, self.classes)}; expected one of {list(self.classes)} or their ids"
        )

    def submit(self, labels: Sequence[Any], who: str = "analyst") -> dict[str, Any]:
        """Return the finished round's record after taking one label per proposed patch, retraining and scoring."""
        if self.pending is None:
            raise ValueError("nothing to label: call propose() first")
        p, labels = self.pending, list(labels)
        r, idx = p["round"], p["proposal"]
        if len(labels) != len(idx):
            raise ValueError(
                f"labeller returned {len(labels)} labels for round {r}'s {len(idx)} proposed patches; "
                "expected one label per proposed patch, in proposal order"
            )
        ids = [self._class_id(v, i, r) for v, i in zip(labels, idx, strict=True)]
        if len(set(ids) | set(self.labels.values())) < 2:
            raise ValueError(
                f"only one class ({self.classes[ids[0]]!r}) among the {len(ids)} labels of round {r}: a classifier "
                "needs at least two classes to start from; label patches of another class (a larger n_start)"
            )
        when = _now()
        entries = [{"patch": i, "id": pid, "label": self.classes[c], "who": who, "when": when, "round": r}
                   for i, pid, c in zip(idx, p["ids"], ids, strict=True)]  # fmt: skip
        self.labels.update(zip(idx, ids, strict=True))
        if len(self.unlabelled()) or len(self.holdout):
            self._fit()
        done = {**p, "labels": entries, "n_labels": len(self.labels), **getattr(self, "_scores", {})}
        self.rounds.append(done)
        self.pending = None
        self._save()
        return done

    def run(
        self, labeller: Callable[[Proposal], Sequence[Any]], n_rounds: int, who: str | None = None
    ) -> ActiveLearner:
        """Return self after rounds 0..`n_rounds` (start + `n_rounds` proposals), labels from `labeller`."""
        from eokit._progress import tqdm

        if not _is_whole(n_rounds, 0):
            raise ValueError(f"n_rounds must be a whole number >= 0, got {n_rounds!r}")
        if self.finished and len(self.rounds) >= n_rounds + 1 and self.path is not None:
            raise FileExistsError(
                f"active-learning record {self.path} is finished ({len(self.rounds)} rounds); pass overwrite=True "
                f"to start again, or more than {len(self.rounds) - 1} rounds to continue"
            )
        who = str(who or getattr(labeller, "who", None) or "analyst")
        bar = tqdm(total=n_rounds + 1, initial=len(self.rounds), desc="active learning", disable=not self.progress)
        while len(self.rounds) < n_rounds + 1 and len(self.unlabelled()):
            self.submit(labeller(self.propose()), who=who)
            bar.update()
        bar.close()
        self.finish()
        return self

    def finish(self) -> None:
        """Mark the record finished (a later run with no more rounds is refused unless overwrite=True)."""
        self.finished = True
        self._save()


def _patch_id(ds: xr.Dataset, i: int) -> str:
    if "image_id" in ds.variables:
        return str(ds["image_id"].values[i])
    return f"{ds['scene'].values[i]}:{int(ds['row0'].values[i])},{int(ds['col0'].values[i])}"


def learning_curve(
    ds: xr.Dataset,
    *,
    strategies: Sequence[str] = ("margin", "random"),
    seeds: Sequence[int] = (0, 1, 2),
    batch_size: int = 10,
    n_rounds: int = 10,
    n_start: int | None = None,
    block_size: float | None = None,
    model: Any = None,
    diversity: str = "kmeans",
    features: np.ndarray | None = None,
) -> pd.DataFrame:
    """Return held-out scores per (strategy, seed, round, n_labels): each seed its own spatial hold-out, the
    oracle labelling, every strategy from the same start."""
    feats = patch_features(ds) if features is None else features
    rows = []
    for seed in seeds:
        holdout = spatial_holdout(ds, block_size, seed=int(seed)).test
        for s in strategies:
            learner = ActiveLearner(
                ds,
                strategy=s,
                batch_size=batch_size,
                n_start=n_start,
                seed=int(seed),
                model=model,
                holdout=holdout,
                features=feats,
                diversity=diversity,
            )
            learner.run(oracle(ds), n_rounds)
            rows.append(learner.history())
    return pd.concat(rows, ignore_index=True)


def summarise_curve(curve: pd.DataFrame, metrics: Sequence[str] = ("accuracy", "macro_f1")) -> pd.DataFrame:
    """Return mean, std and number of seeds of each metric per (strategy, n_labels)."""
    agg = curve.groupby(["strategy", "n_labels"])[list(metrics)].agg(["mean", "std", "count"])
    agg.columns = [f"{m}_{s}" for m, s in agg.columns]
    return agg.reset_index()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write(path: Path, record: Mapping[str, Any]) -> None:
    write_json_atomic(record, path, default=lambda o: o.item() if hasattr(o, "item") else str(o), overwrite=True)


def _read(path: Path) -> dict[str, Any]:
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(
            f"active-learning record {path} cannot be read as JSON ({e}); remove it or pass overwrite=True"
        ) from e
    if not isinstance(rec, dict) or rec.get("version") != _RECORD_VERSION or not isinstance(rec.get("rounds"), list):
        raise ValueError(f"active-learning record {path} is not a version {_RECORD_VERSION} record with 'rounds'")
    return rec


def _is_whole(v: Any, low: int) -> bool:
    return is_int(v) and int(v) >= low

"""Views of the active-learning loop (`eokit.active`): the proposed patches (HH, HV), where they lie in their
scene, the learning curve (holoviews objects, written by `eokit.plots.save`), and the JupyterLab panel
(ipywidgets) in which the analyst picks a class per proposed patch and submits the round.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from eokit import plots
from eokit.palettes import class_colours

if TYPE_CHECKING:
    from eokit.active import ActiveLearner, Proposal

#: channels shown per proposed patch, in this order, where the patch set has them (else its first two)
VIEW_CHANNELS = ("HH", "HV")


def _view_channels(channels: Sequence[str]) -> list[str]:
    have = [c for c in VIEW_CHANNELS if c in channels]
    return have or list(channels)[:2]


def _opts(el: Any, **common: Any) -> Any:
    """`el` with the same style options for both backends (loading them: nothing needs hv.extension first)."""
    return plots.backend_opts(el, common, bokeh={}, matplotlib={})


def _clim(a: np.ndarray) -> tuple[float, float]:
    """Robust display range (2nd-98th percentile) of the finite values, never empty."""
    v = a[np.isfinite(a)]
    if not v.size:
        return (0.0, 1.0)
    lo, hi = np.percentile(v, [2, 98])
    return (float(lo), float(hi) if hi > lo else float(lo) + 1.0)


def _titles(proposal: Proposal) -> list[str]:
    out = []
    for k, (s, guess) in enumerate(zip(proposal.scores, proposal.predicted, strict=True)):
        score = "" if not np.isfinite(s) else f" u={s:.2f}"
        out.append(f"#{k + 1}{score}" + (f" {guess}?" if guess else ""))
    return out


def plot_proposal(proposal: Proposal, max_patches: int = 12) -> Any:
    """Return a holoviews Layout: one row per channel (HH, HV) of the first `max_patches` proposed patches."""
    img = proposal.patches["image"]
    channels = [str(c) for c in img["channel"].values]
    show = _view_channels(channels)
    n = min(len(proposal), max_patches)
    values = np.asarray(img.isel(patch=slice(0, n)).values, dtype=float)
    rows = [[values[k, :, :, channels.index(c)] for k in range(n)] for c in show]
    clim = _clim(values[..., [channels.index(c) for c in show]])
    return plots.image_grid(
        rows,
        show,
        _titles(proposal)[:n],
        clim=clim,
        title=f"Round {proposal.round}: patches proposed ({proposal.strategy})",
    )


def plot_locations(proposal: Proposal, ds: Any) -> Any:
    """Return a holoviews Overlay per scene: every patch of the set (grey) and the proposed ones (numbered)."""
    import holoviews as hv

    has_xy = "x" in ds.variables and "y" in ds.variables
    xv, yv = ("x", "y") if has_xy else ("col0", "row0")
    scene = np.asarray(ds["scene"].values).astype(str)
    px, py = np.asarray(ds[xv].values, float), np.asarray(ds[yv].values, float)
    idx = np.asarray(proposal.indices)
    panels: list[Any] = []
    for name in dict.fromkeys(scene[idx]):
        own = scene == name
        chosen = idx[scene[idx] == name]
        order = [int(np.flatnonzero(idx == i)[0]) + 1 for i in chosen]
        every = _opts(hv.Points((px[own], -py[own]), label="patches"), color="#bbbbbb")
        picked = _opts(hv.Points((px[chosen], -py[chosen]), label="proposed"), color="#d62728")
        text = hv.Labels((px[chosen], -py[chosen], [str(k) for k in order]), ["x", "y"], "text")
        text = plots.backend_opts(text, {"yoffset": float(np.ptp(py[own]) or 1) / 25}, bokeh={"text_color": "#d62728"},
                                  matplotlib={"color": "#d62728", "size": 11})  # fmt: skip
        opts = {"title": f"{name}: proposed patches", "show_legend": not panels, "legend_position": "right"}
        panels.append(plots.backend_opts(every * picked * text, opts, bokeh={"width": 360, "height": 320},
                                         matplotlib={"fig_inches": 4}))  # fmt: skip
    return hv.Layout(panels).cols(3) if len(panels) > 1 else panels[0]


def plot_learning_curve(curve: pd.DataFrame, metric: str = "macro_f1") -> Any:
    """Return a holoviews Overlay: mean `metric` on the held-out block vs number of labels, ± std band per strategy."""
    import holoviews as hv

    if metric not in curve.columns:
        raise ValueError(f"plot_learning_curve: no column {metric!r} in the curve (has {list(curve.columns)})")
    stats = curve.groupby(["strategy", "n_labels"])[metric].agg(["mean", "std", "count"]).reset_index()
    colours = class_colours(stats["strategy"].unique())
    layers = []
    for s, part in stats.groupby("strategy", sort=True):
        colour = colours[str(s)]
        n_seeds = int(part["count"].max())
        band = hv.Spread((part["n_labels"], part["mean"], part["std"].fillna(0.0)), "labels", [metric, "std"])
        line = hv.Curve((part["n_labels"], part["mean"]), "labels", metric, label=f"{s} ({n_seeds} seeds)")
        band = plots.backend_opts(band, {"alpha": 0.25}, bokeh={"fill_color": colour, "line_color": None},
                                  matplotlib={"facecolor": colour, "edgecolor": "none"})  # fmt: skip
        layers += [band, _opts(line, color=colour)]
    name = metric.replace("_", " ")
    return plots.backend_opts(
        hv.Overlay(layers),
        {"title": f"Held-out spatial block: {name} vs labels (mean ± std)", "legend_position": "right"},
        bokeh={"width": 560, "height": 360},
        matplotlib={"fig_inches": (6, 4)},
    )


def _png(a: np.ndarray, clim: tuple[float, float], scale: int = 3) -> bytes:
    """PNG bytes of a 2-D array in grey (nearest-neighbour enlarged `scale` times)."""
    import matplotlib.pyplot as plt

    big = np.kron(np.nan_to_num(a, nan=clim[0]), np.ones((scale, scale)))
    buf = io.BytesIO()
    plt.imsave(buf, big, cmap="gray", vmin=clim[0], vmax=clim[1], format="png")
    return buf.getvalue()


class ActiveLearningPanel:
    """The JupyterLab view of an `ActiveLearner`: each proposed patch (HH, HV), its place in the scene, a class per
    patch (pre-set to the model's guess) and "submit", which records the labels, retrains and shows the next round.

    Display `panel.widget`; the loop stops after `n_rounds` proposal rounds (the record is then finished).
    """

    def __init__(self, learner: ActiveLearner, n_rounds: int, who: str = "analyst", max_patches: int = 24) -> None:
        import ipywidgets as w  # type: ignore[import-untyped]

        self.learner, self.n_rounds, self.who, self.max_patches = learner, int(n_rounds), who, max_patches
        self.header = w.HTML()
        self.grid = w.GridBox(layout=w.Layout(grid_template_columns="repeat(6, 150px)"))
        self.where = w.Output()
        self.status = w.HTML()
        self.button = w.Button(description="submit labels", button_style="primary", icon="check")
        self.button.on_click(lambda _: self.submit())
        self.widget = w.VBox([self.header, self.grid, self.button, self.status, self.where])
        self.dropdowns: list[Any] = []
        self.proposal: Proposal | None = None
        self._show()

    def _show(self) -> None:
        import ipywidgets as w

        lr = self.learner
        if len(lr.rounds) >= self.n_rounds + 1 or not len(lr.unlabelled()):
            lr.finish()
            self.proposal, self.dropdowns, self.grid.children = None, [], ()
            self.button.disabled = True
            self.header.value = f"<b>Finished</b>: {len(lr.labels)} labels in {len(lr.rounds)} rounds."
            return
        p = self.proposal = lr.propose()
        img = p.patches["image"]
        channels = [str(c) for c in img["channel"].values]
        show = _view_channels(channels)
        values = np.asarray(img.values, dtype=float)
        clims = {c: _clim(values[..., channels.index(c)]) for c in show}
        cells, self.dropdowns = [], []
        for k in range(min(len(p), self.max_patches)):
            pics = [w.Image(value=_png(values[k, :, :, channels.index(c)], clims[c]), format="png",
                            layout=w.Layout(width="64px", height="64px")) for c in show]  # fmt: skip
            dd = w.Dropdown(options=["", *p.classes], value=p.predicted[k] or "", layout=w.Layout(width="145px"))
            self.dropdowns.append(dd)
            cells.append(w.VBox([w.HTML(f"<small>{_titles(p)[k]} {'/'.join(show)}</small>"), w.HBox(pics), dd]))
        self.grid.children = tuple(cells)
        last = lr.rounds[-1] if lr.rounds else {}
        score = f", held-out macro F1 {last['macro_f1']:.3f}" if last.get("macro_f1") is not None else ""
        self.header.value = (
            f"<b>Round {p.round}</b> of {self.n_rounds} ({p.strategy}): {len(lr.labels)} labels so far{score}. "
            "Pick a class for each patch (pre-set: the model's guess), then submit."
        )
        self.where.clear_output()
        with self.where:
            from IPython.display import display

            display(plot_locations(p, lr.ds))

    def choices(self) -> list[str]:
        """Return the class picked for each shown patch ("" where none is picked yet)."""
        return [str(d.value) for d in self.dropdowns]

    def submit(self) -> dict[str, Any] | None:
        """Return the recorded round after passing the picked classes to the learner (None if one is missing)."""
        if self.proposal is None:
            return None
        picked = self.choices()
        if len(picked) < len(self.proposal):
            self.status.value = f"only {len(picked)} of {len(self.proposal)} patches are shown; raise max_patches"
            return None
        missing = [str(k + 1) for k, v in enumerate(picked) if not v]
        if missing:
            self.status.value = f"<span style='color:#b00'>pick a class for patch(es) #{', #'.join(missing)}</span>"
            return None
        try:
            done = self.learner.submit(picked, who=self.who)
        except ValueError as e:  # e.g. only one class in the start round: say so, keep the round open
            self.status.value = f"<span style='color:#b00'>{e}</span>"
            return None
        self.status.value = f"round {done['round']} saved ({len(picked)} labels by {self.who})"
        self._show()
        return done

"""The plots of `eokit.topics`: a topic map beside HH, the topics' feature and word profiles, patch mixtures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from eokit._topic_cells import FEATURES, NO_TOPIC

if TYPE_CHECKING:
    from eokit.topics import TopicModel


def _topic_names(topics: xr.DataArray) -> list[str]:
    names = topics.attrs.get("class_names")
    if names is None:
        v = np.asarray(topics.values)
        names = [f"topic {k}" for k in range(int(v[v != NO_TOPIC].max(initial=0)) + 1)]
    return [str(n) for n in names]


def plot_topic_map(scene: xr.Dataset, topics: xr.DataArray, title: str = "") -> Any:
    """Return a holoviews Layout: the scene's HH (dB) beside its topic map in categorical colours, with a legend."""
    import holoviews as hv

    from eokit import plots
    from eokit.palettes import class_colours

    if "HH" not in scene:
        raise ValueError(f"plot_topic_map: the scene has no 'HH' variable; found {list(scene.data_vars)}")
    names = _topic_names(topics)
    colours = class_colours(names)
    hh = np.asarray(scene["HH"].transpose("y", "x").values, dtype=float)
    t = np.asarray(topics.values).astype(float)
    t[t == NO_TOPIC] = np.nan
    ny, nx = hh.shape
    name = title or str(scene.attrs.get("scene", ""))
    common = {"xaxis": None, "yaxis": None}
    left = plots.backend_opts(
        hv.Image(hh, bounds=(0, 0, nx, ny), vdims=["HH"]),
        {**common, "cmap": "gray", "clim": (-30, 0), "colorbar": True, "clabel": "dB", "title": f"{name} HH"},
        bokeh={"frame_width": 320, "data_aspect": 1},
        matplotlib={"aspect": "equal"},
    )
    right = plots.backend_opts(
        hv.Image(t, bounds=(0, 0, nx, ny), vdims=["topic"]),
        {
            **common,
            "cmap": [colours[n] for n in names],
            "clim": (-0.5, len(names) - 0.5),
            "colorbar": False,
            "title": f"{name} topics (4x4 cells, window {topics.attrs.get('window', '?')} px)",
        },
        bokeh={"frame_width": 320, "data_aspect": 1},
        matplotlib={"aspect": "equal"},
    )
    legend = plots.legend([(n, colours[n]) for n in names], sort=False)
    right = plots.backend_opts(
        right * legend, bokeh={"legend_position": "right"}, matplotlib={"legend_position": "right", "legend_cols": 1}
    )
    return plots.backend_opts(
        hv.Layout([left, right]).cols(2), bokeh={}, matplotlib={"sublabel_format": "", "fig_inches": (12, 5)}
    )


def plot_topic_profiles(model: TopicModel, top_words: int = 12) -> Any:
    """Return a holoviews Layout: each topic's expected cell features (z-scores) and its most probable words."""
    import holoviews as hv

    from eokit import plots

    prof = model.topic_profiles()
    z = (prof - prof.mean()) / prof.std().replace(0, 1)
    feat = [(f, f"topic {k}", float(z.loc[k, f]), float(prof.loc[k, f])) for k in prof.index for f in FEATURES]
    left = plots.backend_opts(
        hv.HeatMap(feat, kdims=["feature", "topic"], vdims=["z-score", "value"]),
        {
            "cmap": "RdBu_r",
            "colorbar": True,
            "title": "Topics' expected cell features (z-score across topics)",
            "xrotation": 45,
        },
        bokeh={"width": 480, "height": 360, "tools": ["hover"]},
        matplotlib={"fig_inches": (6, 4.5), "show_values": False},
    )
    phi = model.phi
    order = np.argsort(-phi.max(0))[: min(top_words * 3, model.vocabulary)]  # the words some topic relies on most
    order = order[np.lexsort((-phi[:, order].max(0), phi[:, order].argmax(0)))]
    words = [(f"w{w}", f"topic {k}", float(phi[k, w])) for k in range(model.n_topics) for w in order]
    right = plots.backend_opts(
        hv.HeatMap(words, kdims=["word", "topic"], vdims=["p(word | topic)"]),
        {"cmap": "viridis", "colorbar": True, "title": "Words per topic (phi)", "xrotation": 90},
        bokeh={"width": 560, "height": 360, "tools": ["hover"]},
        matplotlib={"fig_inches": (7, 4.5), "show_values": False},
    )
    return plots.backend_opts(
        hv.Layout([left, right]).cols(2), bokeh={}, matplotlib={"sublabel_format": "", "fig_inches": (14, 5)}
    )


def plot_patch_topics(mixtures: np.ndarray, labels: Sequence[Any], names: Sequence[str] | None = None) -> Any:
    """Return a holoviews HeatMap of the mean topic mixture of the patches of each class (rows: classes)."""
    import holoviews as hv

    from eokit import plots

    mix = np.asarray(mixtures, dtype=float)
    lab = np.asarray(labels)
    if mix.ndim != 2 or len(mix) != len(lab):
        raise ValueError(
            f"plot_patch_topics: mixtures of shape {mix.shape} and {len(lab)} labels; expected (N, n_topics) and N"
        )
    ok = np.isfinite(mix).all(1)
    if not ok.any():
        raise ValueError("plot_patch_topics: no patch has a topic mixture (all NaN)")
    rows = []
    for k_class in np.unique(lab[ok]):
        m = mix[ok & (lab == k_class)].mean(0)
        cls = str(names[int(k_class)]) if names is not None else str(k_class)
        rows += [(f"topic {k}", cls, float(v)) for k, v in enumerate(m)]
    return plots.backend_opts(
        hv.HeatMap(rows, kdims=["topic", "class"], vdims=["mean mixture"]),
        {"cmap": "viridis", "colorbar": True, "title": "Mean topic mixture of the patches per class", "xrotation": 45},
        bokeh={"width": 560, "height": 320, "tools": ["hover"]},
        matplotlib={"fig_inches": (8, 3.8), "show_values": False},
    )

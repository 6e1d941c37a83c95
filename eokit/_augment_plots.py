"""The plots of `eokit.augment`: augmented examples per class, class counts; no TensorFlow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from eokit._io import check_target


def plot_examples(examples: Any, path: str | Path | None = None, channel: str = "HH", overwrite: bool = False) -> Any:
    """Return a holoviews Layout (classes x examples) of one channel of `augmented_examples` output.

    `path` is deprecated (save with `eokit.plots.save`): it writes a PNG there (FileExistsError unless
    `overwrite`) and returns that path, as before.
    """
    from eokit import plots

    if path is not None:
        check_target(path, overwrite)
    chans = [str(c) for c in examples["channel"].values]
    if channel not in chans:
        raise ValueError(f"plot_examples: channel {channel!r} not in {chans}")
    img = examples["image"].sel(channel=channel).values
    lo, hi = np.percentile(img, [2, 98])
    n_ex = img.shape[1]
    grid = plots.image_grid(
        [list(row) for row in img],
        [str(n) for n in examples["label_name"].values],
        ["original"] + [f"augmented {c}" for c in range(1, n_ex)],
        clim=(float(lo), float(hi)),
        title=f"Augmented {channel} patches per class (flip, rot90, shift, speckle)",
    )
    if path is None:
        return grid
    return plots.legacy_save(grid, path, "eokit.augment.plot_examples", overwrite)


def plot_class_counts(counts: Any, path: str | Path | None = None, overwrite: bool = False) -> Any:
    """Return a holoviews bar chart of `class_counts` output (patches per class, before/after oversampling).

    `path` is deprecated (save with `eokit.plots.save`): it writes a PNG there (FileExistsError unless
    `overwrite`) and returns that path, as before.
    """
    import holoviews as hv

    from eokit import plots

    if path is not None:
        check_target(path, overwrite)
    cols = [c for c in counts.columns if c != "label"]
    if not cols:
        raise ValueError("plot_class_counts: expected count columns such as 'before', got none")
    long = (
        counts[cols]
        .iloc[::-1]
        .rename_axis("class")
        .reset_index()
        .melt(id_vars="class", var_name="count", value_name="patches")
    )  # reversed: the first class on top
    long["class"] = long["class"].astype(str)
    n = len(counts) * len(cols)
    bars = plots.backend_opts(
        hv.Bars(long, kdims=["class", "count"], vdims="patches"),
        {"invert_axes": True, "title": "Patches per class", "xlabel": "", "ylabel": "patches"},
        bokeh={"width": 750, "height": 22 * n + 90, "legend_position": "right", "tools": ["hover"]},
        matplotlib={"fig_inches": 8.5, "aspect": 8.5 / (0.45 * n + 1.2)},
    )
    if path is None:
        return bars
    return plots.legacy_save(bars, path, "eokit.augment.plot_class_counts", overwrite)

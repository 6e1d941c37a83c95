"""Plots of `eokit.cleaning`'s flags: the flagged samples on the map and the flagged share per class (re-exported)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import xarray as xr

from eokit._cleaning_cl import _check_flags


def plot_flags(flags: xr.Dataset, title: str = "Flagged labels") -> Any:
    """Return an hvplot map of the samples (x, y) coloured by declared class, flagged ones marked with a cross."""
    import holoviews as hv

    from eokit import plots

    f = _check_flags(flags)
    if "x" not in f or "y" not in f:
        raise ValueError("plot_flags needs per-sample 'x' and 'y' (samples made from a cube); these flags have none")
    plots.use_hvplot("pandas")
    df = f[["x", "y", "label_name", "flagged"]].to_dataframe().reset_index(drop=True)
    base = plots.colour_by_class(df.hvplot.scatter(x="x", y="y", by="label_name", s=20, data_aspect=1))
    marked = hv.Points(df[df["flagged"]], kdims=["x", "y"], label=f"flagged ({int(df['flagged'].sum())})")
    # a filled cross in matplotlib: its unfilled "x" warns about the edge colour holoviews passes
    marked = plots.backend_opts(
        marked, {"color": "black"}, bokeh={"size": 9, "marker": "x"}, matplotlib={"s": 45, "marker": "X"}
    )
    n, k = len(df), int(df["flagged"].sum())
    # the legend beside the map, never over the samples; title and legend for both backends
    common = {"legend_position": "right", "title": f"{title}: {k} of {n} samples ({k / max(n, 1):.1%})"}
    return plots.backend_opts(base * marked, common, bokeh={}, matplotlib={})


def plot_class_report(table: pd.DataFrame, title: str = "Flagged share per class") -> Any:
    """Return an hvplot bar chart of each class's flagged share (`class_report`'s table)."""
    from eokit import plots

    need = {"label_name", "share_flagged", "n"}
    if not isinstance(table, pd.DataFrame) or not need <= set(table.columns):
        raise ValueError(f"plot_class_report needs class_report's table (columns {sorted(need)})")
    plots.use_hvplot("pandas")
    df = table.assign(klass=[f"{n} (n={c})" for n, c in zip(table["label_name"], table["n"], strict=True)])
    return df.hvplot.bar(
        x="klass",
        y="share_flagged",
        rot=45,
        width=800,
        height=380,
        xlabel="declared class",
        ylabel="share flagged",
        title=title,
        ylim=(0, max(0.05, float(df["share_flagged"].max()) * 1.15)),
    )

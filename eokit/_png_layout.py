"""Legible PNGs for `eokit.plots.save`: render through matplotlib, find what overlaps, give it room.

`overlaps` lists every collision in a rendered matplotlib figure: two texts (titles, axis and tick labels,
offsets, annotations), a legend over a text or over another panel, a text or panel over another panel.
`png_bytes` renders a holoviews object, and while anything collides renders it again larger (fonts keep
their size, so labels, legends and titles get room) with more space between panels, a few times at most.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

_TRIES = 4
_GROW = 1.3


def _visible_texts(ax: Any) -> list[Any]:
    """Return the drawn, non-empty texts of an axes: titles, axis labels, offsets, tick labels in view, texts."""
    texts = [ax.title, ax._left_title, ax._right_title] + list(ax.texts)
    for axis, lim in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if not axis.get_visible():
            continue
        lo, hi = min(lim), max(lim)
        eps = 1e-9 * abs(hi - lo)
        texts += [axis.label, axis.get_offset_text()]
        i = 0 if axis is ax.xaxis else 1
        texts += [t for t in axis.get_ticklabels() if lo - eps <= t.get_position()[i] <= hi + eps]
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def _hit(a: Any, b: Any) -> bool:
    """Return whether two display boxes overlap by more than one pixel each way."""
    return min(a.x1, b.x1) - max(a.x0, b.x0) > 1 and min(a.y1, b.y1) - max(a.y0, b.y0) > 1


def overlaps(fig: Any) -> list[str]:
    """Return a line per collision in a matplotlib figure (empty when every text, legend and panel is clear)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    r = fig.canvas.get_renderer()
    texts: list[tuple[int, str, Any]] = []  # (owner: axes number, -2 - it for its legend's entries, -1 figure)
    panels: list[tuple[int, str, Any]] = []
    legends: list[tuple[int, str, Any]] = []
    for k, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        name = ax.get_title() or f"panel {k}"
        if ax.axison or ax.images or ax.collections or ax.lines or ax.patches:
            panels.append((k, f"panel {name!r}", ax.get_window_extent(r)))
        texts += [(k, f"text {t.get_text()!r} ({name})", t.get_window_extent(r)) for t in _visible_texts(ax)]
        legend = ax.get_legend()
        if legend is not None and legend.get_visible():
            legends.append((k, f"legend of {name!r}", legend.get_window_extent(r)))
            texts += [
                (-2 - k, f"legend entry {t.get_text()!r} ({name})", t.get_window_extent(r))
                for t in legend.get_texts()
                if t.get_text().strip()
            ]
    texts += [(-1, f"text {t.get_text()!r}", t.get_window_extent(r)) for t in fig.texts if t.get_text().strip()]
    found = []
    for i, (ka, a, ba) in enumerate(texts):
        found += [f"{a} overlaps {b}" for kb, b, bb in texts[i + 1 :] if _hit(ba, bb)]
        found += [f"{a} overlaps {b}" for kb, b, bb in panels if kb != ka and _hit(ba, bb)]
    for i, (_, a, ba) in enumerate(panels):
        found += [f"{a} overlaps {b}" for _, b, bb in panels[i + 1 :] if _hit(ba, bb)]
    for kl, leg, bl in legends:
        found += [f"{leg} overlaps {b}" for kb, b, bb in texts if kb != -2 - kl and _hit(bl, bb)]
        found += [f"{leg} overlaps {b}" for kb, b, bb in panels if kb != kl and _hit(bl, bb)]
    return found


def _grown(obj: Any, step: int) -> Any:
    """Return `obj` with its matplotlib figure `_GROW**step` times larger and, for layouts, wider spacing."""
    import holoviews as hv

    opts = hv.Store.lookup_options("matplotlib", obj, "plot").kwargs
    new: dict[str, Any] = {}
    if isinstance(obj, hv.Layout) and opts.get("sublabel_format", "{Alpha}") == "{Alpha}":
        new["sublabel_format"] = ""  # holoviews' default 'A', 'B' letters sit on titles and offset texts
    if step:
        inches = opts.get("fig_inches", 4)
        g = _GROW**step
        new["fig_inches"] = tuple(v * g for v in inches) if isinstance(inches, (tuple, list)) else inches * g
        if isinstance(obj, hv.Layout):
            new["vspace"] = opts.get("vspace", 0.3) + 0.15 * step
            new["hspace"] = opts.get("hspace", 0.5) + 0.2 * step
    return obj.opts(backend="matplotlib", clone=True, **new) if new else obj


def _tidy_dates(fig: Any) -> None:
    """Give every date axis of `fig` a few concise ticks ("2018", "Feb", "Mar") instead of full timestamps."""
    import matplotlib.dates as mdates

    for ax in fig.axes:
        axis = ax.xaxis
        conv = axis.get_converter() if hasattr(axis, "get_converter") else getattr(axis, "converter", None)
        if "Date" in type(conv).__name__:  # DateConverter, ConciseDateConverter, _SwitchableDateConverter
            locator = mdates.AutoDateLocator(maxticks=8)
            axis.set_major_locator(locator)
            axis.set_major_formatter(mdates.ConciseDateFormatter(locator))
            for label in ax.get_xticklabels():
                label.set_rotation(0)
                label.set_horizontalalignment("center")


def _plain_numbers(fig: Any) -> None:
    """Write map coordinates in full on every numeric axis of `fig` (no "+5.22e6" offset, no "1e6" multiplier)."""
    from matplotlib.ticker import ScalarFormatter

    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            fmt = axis.get_major_formatter()
            if isinstance(fmt, ScalarFormatter):
                fmt.set_useOffset(False)
                fmt.set_scientific(False)


def png_bytes(obj: Any, dpi: int = 100) -> bytes:
    """Return `obj` rendered as PNG by matplotlib, re-rendered larger while anything overlaps (then warns)."""
    import holoviews as hv
    import matplotlib.pyplot as plt

    for step in range(_TRIES):
        fig = hv.render(_grown(obj, step), backend="matplotlib")
        _tidy_dates(fig)
        _plain_numbers(fig)
        found = overlaps(fig)
        if not found or step == _TRIES - 1:
            break
        plt.close(fig)
    if found:
        warnings.warn(
            f"eokit.plots.save: the PNG still has {len(found)} overlap(s), e.g. {found[0]}", UserWarning, stacklevel=4
        )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()

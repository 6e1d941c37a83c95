"""The one plot contract: every eokit `plot_*` returns a holoviews object and writes nothing; `save` writes it.

`save` writes PNG through holoviews' matplotlib backend (no browser needed, for reports) and HTML through
bokeh with INLINE resources (one self-contained file that opens offline), each to a temporary sibling that
is renamed into place. The helpers below are shared by the plotting functions of `patches`, `augment`,
`maps` and `evaluate`. holoviews, hvplot, bokeh and matplotlib are imported inside the functions; TensorFlow
never.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["FORMATS", "backend_opts", "colour_by_class", "image_grid", "legend", "save", "use_hvplot"]

#: Formats `save` writes: PNG (matplotlib backend) and self-contained HTML (bokeh backend, INLINE resources).
FORMATS: tuple[str, ...] = ("png", "html")
_BACKEND = {"png": "matplotlib", "html": "bokeh"}
_OTHER_FORMATS = {".svg", ".pdf", ".jpg", ".jpeg", ".gif", ".webp", ".tif", ".tiff", ".json"}


def save(
    obj: Any,
    path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    formats: Sequence[str] = FORMATS,
    overwrite: bool = False,
) -> list[Path]:
    """Return the paths written: `obj` as `<path>.png` / `<path>.html` per format, or as the named file(s).

    `obj` is a holoviews/hvplot object, or a function of no arguments returning one: it is then called once
    per backend with that backend current, so hvplot translates its options (width, legend...) for each.
    `path` ending in `.png` or `.html` (or a list of such paths) names the files and `formats` is not used;
    any other path is a stem. Nothing is written if one target exists and `overwrite` is False.
    """
    from eokit._io import check_target

    targets = _targets(path, formats)
    for target in targets:
        check_target(target, overwrite)
    for target in targets:
        _write_atomic(_render(obj, target.suffix[1:].lower(), title=target.stem), target, overwrite)
    return targets


def _targets(path: Any, formats: Sequence[str]) -> list[Path]:
    """Return the files `save` writes for a stem (one per format) or for explicit `.png`/`.html` paths."""
    if isinstance(formats, str) or not formats or any(f not in FORMATS for f in formats):
        raise ValueError(f"save: formats must be a non-empty list drawn from {list(FORMATS)}, got {formats!r}")
    if isinstance(path, (str, os.PathLike)):
        p = Path(path)
        if p.suffix.lower() in _OTHER_FORMATS:
            raise ValueError(
                f"save: {p} names a {p.suffix} file; eokit saves {list(FORMATS)} (pass a stem or a .png/.html path)"
            )
        if p.suffix.lower()[1:] in FORMATS:
            return [p]
        return [Path(f"{p}.{f}") for f in dict.fromkeys(formats)]
    paths = [Path(p) for p in path]
    bad = [str(p) for p in paths if p.suffix.lower()[1:] not in FORMATS]
    if not paths or bad:
        raise ValueError(f"save: a list of paths must name .png or .html files, got {bad or paths}")
    return paths


@contextlib.contextmanager
def _current_backend(name: str) -> Iterator[None]:
    """Make holoviews backend `name` current (loading it if needed) for the block, then restore the previous."""
    import holoviews as hv

    hv.renderer(name)  # loads the backend without switching the current one
    before = hv.Store.current_backend
    hv.Store.set_current_backend(name)
    try:
        yield
    finally:
        hv.Store.set_current_backend(before)


def _render(obj: Any, fmt: str, title: str) -> bytes:
    """Return the bytes of `obj` (or of what the builder `obj` returns) rendered as `fmt` (png or html)."""
    import holoviews as hv

    backend = _BACKEND[fmt]
    if not isinstance(obj, hv.core.Dimensioned):
        if not callable(obj):
            raise ValueError(
                f"save: expected a holoviews/hvplot object or a function returning one, got "  # noqa: TRY004
                f"{type(obj).__name__}"
            )
        with _current_backend(backend):
            obj = obj()
        if not isinstance(obj, hv.core.Dimensioned):
            raise ValueError(  # noqa: TRY004
                f"save: the plot function returned {type(obj).__name__}, not a holoviews object"
            )
    if fmt == "png":
        from eokit._png_layout import png_bytes

        with _current_backend(backend):
            return png_bytes(obj)
    import bokeh.resources

    text = io.StringIO()
    hv.save(obj, text, fmt="html", backend=backend, resources=bokeh.resources.INLINE, title=title)
    return text.getvalue().encode("utf-8")


def _write_atomic(data: bytes, path: Path, overwrite: bool) -> None:
    """Write `data` to a temporary sibling of `path` and rename it into place (eokit._io.atomic_output)."""
    from eokit._io import atomic_output

    with atomic_output(path, overwrite) as tmp:
        tmp.write_bytes(data)


def use_hvplot(*kinds: str) -> None:
    """Return None after registering hvplot's accessors (`"pandas"`, `"xarray"`) without switching holoviews'
    current backend (a first `import hvplot` makes bokeh current)."""
    import importlib

    import holoviews as hv

    before = hv.Store.current_backend
    for kind in kinds:
        importlib.import_module(f"hvplot.{kind}")
    if before in hv.Store.renderers and hv.Store.current_backend != before:
        hv.Store.set_current_backend(before)


def backend_opts(obj: Any, common: dict[str, Any] | None = None, **per_backend: dict[str, Any]) -> Any:
    """Return `obj` with options per backend, e.g. `bokeh={"width": 300}, matplotlib={"fig_inches": 3}`, plus
    `common` options for every named backend; each is loaded first (the current backend stays current)."""
    import holoviews as hv

    before = hv.Store.current_backend
    for backend in per_backend:
        hv.renderer(backend)  # a first backend loaded becomes current when the default one is not loaded yet
    if before in hv.Store.renderers:
        hv.Store.set_current_backend(before)
    for backend, opts in per_backend.items():
        obj = obj.opts(backend=backend, **(common or {}), **opts)
    return obj


def legend(entries: Sequence[tuple[str, str]], sort: bool = True) -> Any:
    """Return an NdOverlay of invisible points whose legend shows (label, colour) swatches, sorted by label
    unless `sort` is False (then in the order given); the colours hold in both backends."""
    import holoviews as hv

    points = {
        label: backend_opts(hv.Points([(np.nan, np.nan)]), {"color": colour, "marker": "s"}, bokeh={}, matplotlib={})
        for label, colour in entries
    }
    return hv.NdOverlay(points, kdims="legend", sort=sort)


def colour_by_class(obj: Any) -> Any:
    """Return an hvplot `by=` plot (NdOverlay) or an Overlay with each class, named by its key or label, drawn
    in its `eokit.palettes` colour, e.g. `plots.colour_by_class(points.hvplot.scatter(by="label_name"))`."""
    import holoviews as hv

    from eokit.palettes import class_colours

    if isinstance(obj, hv.NdOverlay):
        pairs = list(obj.items())
        names = [str(k[0] if isinstance(k, tuple) and len(k) == 1 else k) for k, _ in pairs]
    elif isinstance(obj, hv.Overlay):
        pairs = list(obj.items())
        names = [str(el.label) for _, el in pairs]
    else:
        raise ValueError(
            f"colour_by_class: expected an NdOverlay (hvplot by=...) or an Overlay, got {type(obj).__name__}"
        )
    colours = class_colours(names)
    styled = [
        (k, backend_opts(el, {"color": colours[n]}, bokeh={}, matplotlib={}))
        for (k, el), n in zip(pairs, names, strict=True)
    ]
    return obj.clone(styled)


def image_grid(
    rows: Sequence[Sequence[np.ndarray | None]],
    row_labels: Sequence[str],
    col_labels: Sequence[str] | None = None,
    clim: tuple[float, float] = (-30.0, 0.0),
    cmap: str = "gray",
    title: str = "",
    size: int = 110,
) -> Any:
    """Return a holoviews Layout of small images, one row per label (name shown on its first image); None
    leaves a cell empty. `col_labels` title the first row; `size` is each image's side in bokeh pixels."""
    import holoviews as hv

    n_cols = max((len(r) for r in rows), default=0)
    if not rows or n_cols == 0:
        raise ValueError("image_grid: no images to show")
    cells: list[Any] = []
    for r, (images, name) in enumerate(zip(rows, row_labels, strict=True)):
        for c in range(n_cols):
            img = images[c] if c < len(images) else None
            if img is None:
                cells.append(hv.Empty())
                continue
            head = [col_labels[c]] if r == 0 and col_labels is not None and c < len(col_labels) else []
            label = " | ".join(([str(name)] if c == 0 else []) + head)
            a = np.asarray(img, dtype=float)
            el = hv.Image(a, bounds=(0, 0, a.shape[1], a.shape[0]))  # row 0 at the top, as the patch is stored
            cells.append(
                backend_opts(
                    el,
                    {"cmap": cmap, "clim": clim, "title": label},
                    bokeh={
                        "width": size,
                        "height": size,
                        "xaxis": None,
                        "yaxis": None,
                        "toolbar": None,
                        "fontsize": {"title": "7pt"},
                    },
                    matplotlib={"xaxis": None, "yaxis": None, "fontsize": {"title": 7}},
                )
            )
    grid = hv.Layout(cells).cols(n_cols)
    return backend_opts(
        grid,
        {"title": title},
        bokeh={"shared_axes": False},
        matplotlib={"sublabel_format": "", "fig_inches": 1.3, "hspace": 0.35, "vspace": 0.35},
    )


def legacy_save(obj: Any, path: str | os.PathLike[str], func: str, overwrite: bool) -> Path:
    """Return the PNG path after saving `obj` there for `func`'s deprecated `path=` argument (warns)."""
    import warnings

    warnings.warn(
        f"{func}(path=...) is deprecated: {func} returns a holoviews object; save it with eokit.plots.save(obj, path)",
        DeprecationWarning,
        stacklevel=3,
    )
    return save(obj, path, formats=("png",), overwrite=overwrite)[0]

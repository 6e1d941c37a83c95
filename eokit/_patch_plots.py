"""The plots of `eokit.patches`: a scene with its polygons outlined, example patches per ice class."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import xarray as xr

from eokit._patch_checks import _class_labels, _scene_polygons
from eokit.schema import ICE_CLASSES, SAR_CHANNELS


def plot_scene(
    scene: xr.Dataset, polygons: Any = None, label_column: str = "ice_class", path: str | os.PathLike[str] | None = None
) -> Any:
    """Return a holoviews Layout of HH, HV (dB) and IA with the scene's polygons outlined by class.

    `path=` is deprecated (save with `eokit.plots.save`): it writes a PNG there and returns the matplotlib
    figure of the layout, as before.
    """
    import holoviews as hv

    from eokit import plots
    from eokit.palettes import class_colours

    ny = scene.sizes["y"]
    outlines: list[Any] = []
    colours = list(class_colours(ICE_CLASSES).values())  # the WMO stage-of-development colours
    if polygons is not None:
        pix = _scene_polygons(scene, polygons, label_column)
        rings: dict[int, list[np.ndarray]] = {}
        for geom, lab in zip(pix.geometry, pix["label"], strict=True):
            for part in getattr(geom, "geoms", [geom]):
                xs, ys = part.exterior.xy
                rings.setdefault(int(lab), []).append(np.column_stack([xs, ny - np.asarray(ys)]))
        outlines = [
            plots.backend_opts(
                hv.Path(r), {"color": colours[k]}, bokeh={"line_width": 1.2}, matplotlib={"linewidth": 1.2}
            )
            for k, r in sorted(rings.items())
        ]
    panels = []
    for var, lim in zip(SAR_CHANNELS, [(-30, 0), (-35, -10), None], strict=True):
        values = np.asarray(scene[var].values, dtype=float)
        # hv.Image draws the first array row at the top, as the scene rows run: no flip (the outlines use y = ny - row)
        img = hv.Image(values, bounds=(0, 0, values.shape[1], values.shape[0]), vdims=[var])
        common = {
            "cmap": "gray" if var != "IA" else "viridis",
            "colorbar": True,
            "xaxis": None,
            "yaxis": None,
            "clabel": "dB" if var != "IA" else "degrees",
            "title": f"{scene.attrs.get('scene', '')} {var}",
            **({"clim": lim} if lim else {}),
        }
        panel = hv.Overlay(
            [
                plots.backend_opts(
                    img,
                    common,
                    bokeh={"frame_width": 300, "data_aspect": 1, "tools": ["hover"]},
                    matplotlib={"aspect": "equal"},
                )
            ]
            + outlines
        )
        panels.append(panel)
    if outlines:
        legend = plots.legend(list(zip(ICE_CLASSES, colours, strict=True)), sort=False)
        panels[-1] = plots.backend_opts(  # in PNGs below the panel: inside it the legend hid the image
            panels[-1] * legend,
            bokeh={"legend_position": "bottom_right"},
            matplotlib={"legend_position": "bottom", "legend_cols": 1},
        )
    layout = plots.backend_opts(
        hv.Layout(panels).cols(3), bokeh={}, matplotlib={"sublabel_format": "", "fig_inches": (13, 4.2)}
    )
    if path is None:
        return layout
    plots.legacy_save(layout, path, "eokit.patches.plot_scene", overwrite=True)
    return hv.render(layout, backend="matplotlib")


def plot_examples(
    ds: xr.Dataset, per_class: int = 4, channel: str = "HH", seed: int = 0, path: str | os.PathLike[str] | None = None
) -> Any:
    """Return a holoviews Layout of `per_class` random example patches (one channel) for each ice class present.

    `path=` is deprecated (save with `eokit.plots.save`): it writes a PNG there and returns the matplotlib
    figure of the layout, as before.
    """
    import holoviews as hv

    from eokit import plots

    rng = np.random.default_rng(seed)
    labels = _class_labels(ds, "plot_examples: the patch set")
    if isinstance(per_class, (bool, np.bool_)) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"plot_examples: per_class must be a whole number >= 1, got {per_class!r}")
    have = [str(c) for c in ds["channel"].values] if "channel" in ds.coords else []
    if channel not in have:
        raise ValueError(f"plot_examples: channel {channel!r} is not in the patch set; channels are {have}")
    present = [k for k in range(len(ICE_CLASSES)) if (labels == k).any()]
    if not present:
        raise ValueError("the patch set is empty: nothing to show")
    ci = have.index(channel)
    rows = []
    for k in present:
        idx = np.flatnonzero(labels == k)
        pick = np.sort(rng.choice(idx, size=min(per_class, len(idx)), replace=False))
        images = [np.asarray(ds["image"][i, :, :, ci].values) for i in pick]
        rows.append(images + [None] * (per_class - len(images)))
    grid = plots.image_grid(
        rows,
        [ICE_CLASSES[k] for k in present],
        clim=(-30, 0),
        title=f"{ds.sizes['row']}x{ds.sizes['col']} patches, {channel} (dB)",
    )
    if path is None:
        return grid
    plots.legacy_save(grid, path, "eokit.patches.plot_examples", overwrite=True)
    return hv.render(grid, backend="matplotlib")

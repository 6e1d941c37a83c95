"""Map plots (holoviews / hvplot through `eokit.plots`; any backend, e.g. hv.extension("matplotlib") for PNGs)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from eokit.maps._blocks import NODATA_CLASS
from eokit.maps.cog import class_colours
from eokit.schema import FLAG_NODATA


def _hex(rgba: tuple[int, ...]) -> str:
    """Return '#rrggbb' for an (r, g, b, a) 0-255 tuple."""
    return "#{:02x}{:02x}{:02x}".format(*rgba[:3])


def _plain(value: float, pos: Any = None) -> str:
    """Return a map coordinate tick label in full (no '+5.22e6' offset): whole metres, or up to 6 digits."""
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:g}"


def _map_opts(obj: Any, tools: list[Any] | None = None) -> Any:
    """Return a map plot with full coordinate ticks (4 on x) in PNGs; in bokeh wheel zoom and `tools` added."""
    from eokit import plots

    return plots.backend_opts(
        obj,
        bokeh={"tools": ["hover"] if tools is None else tools, "active_tools": ["wheel_zoom"]},
        matplotlib={"xformatter": _plain, "yformatter": _plain, "xticks": 4},
    )


def _named_hover(label: str, names: list[str]) -> Any:
    """Return a bokeh HoverTool showing the name of the integer value under the cursor and its coordinates."""
    from bokeh.models import CustomJSHover, HoverTool

    code = (
        f"const n = {json.dumps(list(names))}; const i = Math.round(value);"
        " return (i >= 0 && i < n.length) ? n[i] : '';"
    )
    return HoverTool(
        tooltips=[(label, "@image{custom}"), ("x", "$x{0,0.0}"), ("y", "$y{0,0.0}")],
        formatters={"@image": CustomJSHover(code=code)},
    )


def plot_classes(class_map: xr.Dataset | xr.DataArray, title: str = "class map", all_classes: bool = False) -> Any:
    """Return a holoviews plot of the class band in its COG colours with a legend of class names."""
    from eokit import plots

    plots.use_hvplot("xarray")
    cls = class_map["class"] if isinstance(class_map, xr.Dataset) else class_map
    names = json.loads(cls.attrs["class_names"]) if "class_names" in cls.attrs else None
    values = np.asarray(cls.values)
    present = sorted(int(v) for v in np.unique(values) if v != NODATA_CLASS)
    if names is None:
        names = [str(i) for i in range(max(present, default=0) + 1)]
    table = class_colours(names)
    shown = range(len(names)) if all_classes else present
    img = (
        cls.where(cls != NODATA_CLASS)
        .astype(np.float32)
        .hvplot.image(
            x="x",
            y="y",
            cmap=[_hex(table[i]) for i in range(len(names))],
            clim=(-0.5, len(names) - 0.5),
            colorbar=False,
            data_aspect=1,
            title=title,
            hover=False,
        )
    )
    img = _map_opts(img, [_named_hover("class", names)])
    legend = plots.legend([(names[i], _hex(table[i])) for i in shown], sort=False)  # class order: ice by WMO stage
    return _map_opts(img * legend, []).opts(legend_position="right", legend_cols=1 if len(shown) <= 16 else 2)


def plot_confidence(map_ds: xr.Dataset, title: str = "confidence") -> Any:
    """Return a holoviews image of the confidence (probability of the predicted class), 0..1."""
    from eokit import plots

    plots.use_hvplot("xarray")
    conf = map_ds["confidence"].hvplot.image(x="x", y="y", cmap="viridis", clim=(0, 1), data_aspect=1, title=title)
    return _map_opts(conf)


def composite(
    cube: xr.Dataset, bands: tuple[str, ...] = ("B4", "B3", "B2"), time: Any = None, scale: float | None = None
) -> xr.DataArray:
    """Return a display image of the clearest acquisition (or `time`): RGB (band, y, x) in 0..1, or one band.

    Bands missing from the cube fall back to its first band (e.g. NDVI stacks) shown as one grey band.
    """
    flag = cube["flag"]
    if time is None:
        clear = (flag == 0).mean(["y", "x"]).values
        idx = int(np.argmax(clear))
    else:
        idx = int(np.flatnonzero(cube["time"].values == np.datetime64(time, "ns"))[0])
    refl = cube["reflectance"].isel(time=idx)
    have = [b for b in bands if b in refl["band"].values]
    img = (refl.sel(band=have) if len(have) == len(bands) else refl.isel(band=0)).astype(np.float32)
    img = img.where(cube["flag"].isel(time=idx) != FLAG_NODATA)
    values = img.values
    if scale is None:
        lo, hi = np.nanpercentile(values, [2, 98]) if np.isfinite(values).any() else (0.0, 1.0)
    else:
        lo, hi = 0.0, scale
    out = img.copy(data=np.clip((values - lo) / max(hi - lo, 1e-9), 0, 1))
    out.attrs["time"] = str(cube["time"].values[idx])[:10]
    return out


def plot_boundaries(boundary: xr.DataArray, image: xr.DataArray | None = None, title: str = "field boundaries") -> Any:
    """Return boundary pixels (class edges, parcel outlines) drawn over `image` (from `composite`)."""
    from eokit import plots

    plots.use_hvplot("xarray")
    colours = ["#ff2020", "#ffd000", "#ff00ff"]
    edges = (
        boundary.where(boundary > 0)
        .astype(np.float32)
        .hvplot.image(
            x="x", y="y", cmap=colours, clim=(0.5, 3.5), colorbar=False, data_aspect=1, title=title, hover=False
        )
    )
    edges = _map_opts(edges, [_named_hover("boundary", ["", "class edge", "parcel outline", "both"])])
    labels = [("class edge", colours[0]), ("parcel outline", colours[1]), ("both", colours[2])]
    present = [labels[i] for i in range(3) if bool((boundary == i + 1).any())]
    if image is None:
        plot = edges
    elif image.ndim == 3:
        plot = _map_opts(image.hvplot.rgb(x="x", y="y", bands="band", data_aspect=1, title=title)) * edges
    else:
        grey = image.hvplot.image(x="x", y="y", cmap="gray", colorbar=False, data_aspect=1, title=title)
        plot = _map_opts(grey) * edges
    return _map_opts(plot * plots.legend(present), []).opts(legend_position="right") if present else plot

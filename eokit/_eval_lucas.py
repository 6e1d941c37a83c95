"""LUCAS 2018 points as an independent test of a time-series model: what became of each point, and its map.

`lucas_points` samples the image cube at each survey point (nearest pixel) and predicts the points whose LC1
code maps to a class of the model; every point keeps a ``status``: ``scored``, ``unmapped`` (its LC1 code has
no TimeSen2Crop class), ``unknown class`` (a class the model was not trained on) or ``outside`` (beyond the
cube). `eokit.evaluate.lucas` scores the ``scored`` ones; `plot_lucas_points` maps them. No TensorFlow here:
the model passed in predicts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from eokit.card import prepare_inputs, select_bands
from eokit.datasets.lucas import map_lc1

__all__ = ["lucas_points", "plot_lucas_points", "lucas_model_file", "STATUSES"]

#: What can become of a LUCAS point, in the order counted.
STATUSES = ("scored", "unmapped", "unknown class", "outside")


def lucas_model_file(model: str | Path, models_dir: str | Path) -> Path:
    """Return the saved model to score on LUCAS points: a `.keras` path as given, or `{models_dir}/{model}.keras`.

    Raises FileNotFoundError naming what was looked for (a name is a model trained under the leave-tile-out
    protocol, whose models go to `models_dir`).
    """
    given = Path(model)
    path = given if given.suffix == ".keras" else Path(models_dir) / f"{model}.keras"
    if not path.is_file():
        how = (
            "the saved model file given does not exist"
            if given.suffix == ".keras"
            else f'no leave-tile-out model {str(model)!r} was trained: keep "tile" in `protocols` and '
            f"{str(model)!r} in `models`, or give the path of a saved .keras time-series model"
        )
        raise FileNotFoundError(f"lucas_model {str(model)!r}: {path} not found ({how})")
    return path


def _cube_position(cube: xr.Dataset, points: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple]:
    """Return (x, y in the cube's CRS, inside the cube's extent, extent (x0, y0, x1, y1)) of the points."""
    crs = cube.rio.crs if hasattr(cube, "rio") else None
    crs = crs or cube.attrs.get("crs")
    if crs is None:
        raise ValueError("the cube has no CRS (cube.rio.crs or attrs['crs']); cannot place the LUCAS points")
    pts = points.to_crs(crs)
    px, py = pts.geometry.x.to_numpy(), pts.geometry.y.to_numpy()
    xs, ys = np.asarray(cube["x"].values), np.asarray(cube["y"].values)
    dx = abs(float(xs[1] - xs[0])) if xs.size > 1 else 0.0
    dy = abs(float(ys[1] - ys[0])) if ys.size > 1 else 0.0
    box = (xs.min() - dx / 2, ys.min() - dy / 2, xs.max() + dx / 2, ys.max() + dy / 2)
    inside = (px >= box[0]) & (px <= box[2]) & (py >= box[1]) & (py <= box[3])
    return px, py, inside, tuple(float(v) for v in box)


def _sample_cube(cube: xr.Dataset, x: np.ndarray, y: np.ndarray) -> xr.Dataset:
    """Nearest-pixel time series of the cube at (x, y), as a TIMESERIES_SCHEMA-like Dataset."""
    sel = {"x": xr.DataArray(x, dims="sample"), "y": xr.DataArray(y, dims="sample")}
    refl = cube["reflectance"].sel(sel, method="nearest").transpose("sample", "time", "band").values
    flag = cube["flag"].sel(sel, method="nearest").transpose("sample", "time").values
    date = np.broadcast_to(np.asarray(cube["time"].values)[None], flag.shape)
    return xr.Dataset(
        {
            "reflectance": (("sample", "time", "band"), refl),
            "flag": (("sample", "time"), flag),
            "date": (("sample", "time"), date),
        },
        coords={"band": cube["band"].values},
    )


def lucas_points(model: Any, card: dict, cube: xr.Dataset, points: Any, batch_size: int = 1024) -> Any:
    """Return the points (a GeoDataFrame) with ``status``, ``true_class``, ``predicted_class``, ``correct``, x, y.

    `points` has an LC1 column (`eokit.datasets.lucas.open`); classes are the card's names, <NA> where a point is
    not scored; x, y are in the cube's CRS; ``attrs["cube_bounds"]`` is the cube's extent there.
    """
    if card.get("kind") != "timeseries":
        raise ValueError(f"LUCAS evaluation needs a time-series model, {card.get('name')!r} is {card.get('kind')}")
    if not any(c.lower() == "lc1" for c in points.columns):
        raise ValueError(f"the LUCAS points have no LC1 column (columns: {list(points.columns)})")
    pts = points.rename(columns={c: "lc1" for c in points.columns if c.lower() == "lc1"})
    out, _ = map_lc1(pts.reset_index(drop=True))
    ids = [int(c) for c in card["class_ids"]]
    label = out["ts2c_label"].to_numpy()
    status = np.where(label < 0, "unmapped", np.where(np.isin(label, ids), "candidate", "unknown class"))
    if not (status == "candidate").any():
        raise ValueError(f"none of the {len(out)} LUCAS points maps to a class of model {card['name']!r}")
    px, py, inside, box = _cube_position(cube, out)
    status = np.where((status == "candidate") & ~inside, "outside", status)
    keep = np.flatnonzero(status == "candidate")
    if keep.size == 0:
        raise ValueError(f"none of the {len(out)} LUCAS points falls inside the cube extent {box}")
    samples = _sample_cube(cube, px[keep], py[keep])
    bidx = select_bands([str(b) for b in samples["band"].values], card, "the cube")
    inputs = prepare_inputs(
        np.asarray(samples["reflectance"].values)[..., bidx], samples["flag"].values, samples["date"].values, card
    )
    probs = np.asarray(model.predict(inputs, batch_size=batch_size, verbose=0))
    names = list(card["classes"])
    lut = {c: names[i] for i, c in enumerate(ids)}
    true = pd.Series(pd.NA, index=out.index, dtype="string")
    pred = true.copy()
    true.iloc[keep] = [lut[int(v)] for v in label[keep]]
    pred.iloc[keep] = [names[i] for i in probs.argmax(-1)]
    status[keep] = "scored"
    out["status"], out["true_class"], out["predicted_class"] = status, true, pred
    out["correct"] = (true == pred).astype("boolean")  # <NA> where not scored
    out["x"], out["y"] = px, py
    out.attrs["cube_bounds"] = box
    return out


def plot_lucas_points(table: Any, title: str = "LUCAS points") -> Any:
    """Return a map of `lucas_points`' points inside the cube: scored ones by true class, wrong ones crossed."""
    import holoviews as hv

    from eokit import plots

    need = {"status", "true_class", "correct", "x", "y"}
    if not isinstance(table, pd.DataFrame) or not need <= set(table.columns):
        raise ValueError(f"plot_lucas_points needs the table of lucas_points (columns {sorted(need)})")
    plots.use_hvplot("pandas")
    df = pd.DataFrame(table[["x", "y", "status", "true_class", "correct"]]).reset_index(drop=True)
    scored = df[df["status"] == "scored"].assign(true_class=lambda d: d["true_class"].astype(str))
    wrong = scored[~scored["correct"].astype(bool)]
    other = df[df["status"].isin(["unmapped", "unknown class"])]
    xy = ["x", "y"]
    base = plots.colour_by_class(
        scored[[*xy, "true_class"]].hvplot.scatter(x="x", y="y", by="true_class", data_aspect=1)
    ).opts(hv.opts.Scatter(s=140, backend="matplotlib"), hv.opts.Scatter(size=12, backend="bokeh"))
    layers = [
        base,
        plots.backend_opts(
            hv.Points(wrong[xy], xy, label=f"wrong ({len(wrong)})"),
            {"color": "black"},
            bokeh={"size": 9, "marker": "x"},
            matplotlib={"s": 30, "marker": "X"},
        ),
        plots.backend_opts(
            hv.Points(other[xy], xy, label=f"not scored ({len(other)})"),
            {"color": "grey"},
            bokeh={"size": 7, "marker": "square"},
            matplotlib={"s": 30, "marker": "s"},
        ),
    ]
    if "cube_bounds" in getattr(table, "attrs", {}):
        cube = hv.Bounds(table.attrs["cube_bounds"], label="cube extent")
        layers.append(plots.backend_opts(cube, {"color": "grey"}, bokeh={}, matplotlib={}))
    n_out = int((df["status"] == "outside").sum())
    common = {
        "legend_position": "right",
        "title": f"{title}: {len(scored) - len(wrong)} of {len(scored)} correct, {n_out} outside the cube",
    }
    return plots.backend_opts(hv.Overlay(layers), common, bokeh={}, matplotlib={})

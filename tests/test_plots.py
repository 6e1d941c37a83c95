"""eokit.plots: one plot contract (plot_* return holoviews objects, write nothing) and the one `save`."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import holoviews as hv
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from badinput import refuses
from eokit import augment, evaluate, maps, patches, plots, sar
from generators import sar as gen

PNG = b"\x89PNG\r\n\x1a\n"


def _image() -> hv.Image:
    return plots.backend_opts(hv.Image(np.arange(12.0).reshape(3, 4)), {"cmap": "gray"}, bokeh={}, matplotlib={})


def test_save_writes_png_and_self_contained_html_from_a_stem(tmp_path):
    out = plots.save(_image(), tmp_path / "fig" / "img")
    assert out == [tmp_path / "fig" / "img.png", tmp_path / "fig" / "img.html"]
    assert out[0].read_bytes()[:8] == PNG
    html = out[1].read_text()
    assert html.lstrip().lower().startswith("<!doctype html")
    assert "cdn.bokeh.org" not in html and "Bokeh" in html  # bokehjs inlined: opens offline
    assert sorted(p.name for p in out[0].parent.iterdir()) == ["img.html", "img.png"]  # no temporaries left


def test_save_explicit_paths_and_formats(tmp_path):
    assert plots.save(_image(), tmp_path / "a.png") == [tmp_path / "a.png"]
    assert plots.save(_image(), tmp_path / "b", formats=("html",)) == [tmp_path / "b.html"]
    assert plots.save(_image(), [tmp_path / "c.html", tmp_path / "d.png"]) == [tmp_path / "c.html", tmp_path / "d.png"]
    assert plots.save(_image(), tmp_path / "run.v2", formats=("png",)) == [tmp_path / "run.v2.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.html", "c.html", "d.png", "run.v2.png"]


def test_save_refuses_existing_outputs_before_writing_any(tmp_path):
    (tmp_path / "x.html").write_text("old")
    with refuses(FileExistsError, "x.html", "overwrite=True"):
        plots.save(_image(), tmp_path / "x")
    assert not (tmp_path / "x.png").exists() and (tmp_path / "x.html").read_text() == "old"
    plots.save(_image(), tmp_path / "x", overwrite=True)
    assert (tmp_path / "x.png").read_bytes()[:8] == PNG and (tmp_path / "x.html").read_text() != "old"


@pytest.mark.bad_input
def test_save_refuses_unknown_formats_and_non_plots(tmp_path):
    with refuses(ValueError, "formats", "'png'", "'html'", "svg"):
        plots.save(_image(), tmp_path / "x", formats=("svg",))
    with refuses(ValueError, "x.svg", ".png/.html"):
        plots.save(_image(), tmp_path / "x.svg")
    with refuses(ValueError, "list of paths", ".png or .html", "y.txt"):
        plots.save(_image(), [tmp_path / "y.txt"])
    with refuses(ValueError, "holoviews", "ndarray"):
        plots.save(np.zeros(3), tmp_path / "z")
    with refuses(ValueError, "plot function returned", "int"):
        plots.save(lambda: 3, tmp_path / "z")
    assert not list(tmp_path.iterdir())


def test_save_calls_a_builder_once_per_backend_with_it_current(tmp_path):
    seen = []

    def make():
        seen.append(hv.Store.current_backend)
        return hv.Curve([1, 3, 2])

    before = hv.Store.current_backend
    plots.save(make, tmp_path / "curve")
    assert seen == ["matplotlib", "bokeh"] and hv.Store.current_backend == before


def test_use_hvplot_and_backend_opts_keep_the_current_backend():
    hv.extension("matplotlib")
    plots.use_hvplot("pandas", "xarray")
    plots.backend_opts(hv.Curve([1, 2]), bokeh={"width": 200}, matplotlib={"fig_inches": 3})
    assert hv.Store.current_backend == "matplotlib"
    assert hasattr(pd.DataFrame(), "hvplot") and hasattr(xr.DataArray([1]), "hvplot")


def test_legend_keeps_its_colours_and_order_in_both_backends():
    entries = [("zeta", "#ff0000"), ("alpha", "#00ff00")]
    fig = hv.render(plots.legend(entries, sort=False), backend="bokeh")
    assert [(item.label.value, r.glyph.fill_color) for item in fig.legend[0].items for r in item.renderers] == entries
    ax = hv.render(plots.legend(entries), backend="matplotlib").axes[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    colours = [tuple(h.get_facecolor()[0][:3]) for h in ax.get_legend().legend_handles]
    assert texts == ["alpha", "zeta"] and colours == [(0.0, 1.0, 0.0), (1.0, 0.0, 0.0)]


def test_image_grid_leaves_missing_cells_empty():
    grid = plots.image_grid([[np.zeros((2, 2)), None], [np.ones((2, 2))]], ["a", "b"], ["c0", "c1"], title="t")
    kinds = [type(el).__name__ for el in grid]
    assert kinds == ["Image", "Empty", "Image", "Empty"]
    with refuses(ValueError, "image_grid", "no images"):
        plots.image_grid([], [])


def _every_plot(tmp_path) -> dict[str, object]:
    """Call every public plot_* function of the kit on small inputs."""
    truth = gen.write_geotiff_scene(tmp_path / "in", "scene_0", seed=0, origin=(600_000.0, -1_100_000.0))
    poly = gen.write_polygons(tmp_path / "in" / "ice_polygons.gpkg", [truth])
    scene = sar.preprocess(sar.open(truth["path"]))[0]
    ds = patches.extract(scene, poly, size=10, progress=False)
    examples = xr.Dataset(
        {"image": (("class", "example", "row", "col", "channel"), np.zeros((2, 3, 4, 4, 1)))},
        coords={"label_name": ("class", ["a", "b"]), "channel": ["HH"]},
    )
    counts = pd.DataFrame(
        {"label": [0, 2], "before": [5, 1], "after oversampling": [5, 5]},
        index=pd.Index(["open water", "brash/pancake ice"], name="class"),
    )
    y, x = np.arange(6.0), np.arange(8.0)
    cls = xr.DataArray(
        np.tile(np.arange(8) % 3, (6, 1)).astype("uint8"),
        coords={"y": y, "x": x},
        dims=("y", "x"),
        name="class",
        attrs={"class_names": json.dumps(["w", "c", "s"])},
    )
    class_map = xr.Dataset({"class": cls, "confidence": cls.astype("float32") / 3})
    edges = xr.DataArray(np.eye(6, 8, dtype="uint8"), coords={"y": y, "x": x}, dims=("y", "x"))
    s = evaluate.scores([0, 1, 1], [0, 1, 0], ["p", "q"])
    lucas = pd.DataFrame(
        {
            "x": [0.0, 1.0, 2.0, 9.0],
            "y": [0.0, 1.0, 2.0, 9.0],
            "status": ["scored", "scored", "unmapped", "outside"],
            "true_class": ["p", "q", None, None],
            "correct": [True, False, False, False],
        }
    )
    return {
        "patches.plot_scene": patches.plot_scene(scene, poly),
        "patches.plot_examples": patches.plot_examples(ds, per_class=2),
        "augment.plot_examples": augment.plot_examples(examples),
        "augment.plot_class_counts": augment.plot_class_counts(counts),
        "maps.plot_classes": maps.plot_classes(class_map),
        "maps.plot_confidence": maps.plot_confidence(class_map),
        "maps.plot_boundaries": maps.plot_boundaries(edges, cls.astype("float32")),
        "evaluate.plot_confusion": evaluate.plot_confusion(s),
        "evaluate.plot_history": evaluate.plot_history({"loss": [1.0, 0.5], "accuracy": [0.4, 0.6]}),
        "evaluate.plot_lucas_points": evaluate.plot_lucas_points(lucas),
    }


def test_every_plot_function_returns_a_holoviews_object_and_writes_nothing(tmp_path, monkeypatch):
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # the new contract uses no deprecated argument
        made = _every_plot(tmp_path)
    public = {
        f"{m.__name__.split('.')[-1]}.{n}"
        for m in (patches, augment, maps, evaluate)
        for n in dir(m)
        if n.startswith("plot_") and callable(getattr(m, n))
    }
    assert public == set(made)
    for name, obj in made.items():
        assert isinstance(obj, hv.core.Dimensioned), name
    assert not list((tmp_path / "cwd").iterdir())
    out = plots.save(hv.Layout([made["patches.plot_scene"], made["augment.plot_class_counts"]]), tmp_path / "all")
    assert out[0].read_bytes()[:8] == PNG and out[1].stat().st_size > 0


def test_deprecated_path_arguments_still_save_through_the_helper(tmp_path):
    examples = xr.Dataset(
        {"image": (("class", "example", "row", "col", "channel"), np.zeros((1, 2, 4, 4, 1)))},
        coords={"label_name": ("class", ["a"]), "channel": ["HH"]},
    )
    with pytest.warns(DeprecationWarning, match=r"eokit.plots.save"):
        png = augment.plot_examples(examples, tmp_path / "aug.png")
    assert png == tmp_path / "aug.png" and png.read_bytes()[:8] == PNG
    with refuses(FileExistsError, "aug.png", "overwrite=True"):  # refused before anything is drawn, as before
        augment.plot_examples(examples, png)


def test_plots_and_the_plot_functions_need_no_tensorflow():
    code = (
        "import sys, numpy as np, xarray as xr\n"
        "from eokit import augment, plots\n"
        "ex = xr.Dataset({'image': (('class', 'example', 'row', 'col', 'channel'), np.zeros((1, 2, 4, 4, 1)))},\n"
        "                coords={'label_name': ('class', ['a']), 'channel': ['HH']})\n"
        "augment.plot_examples(ex)\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)


# ------------------------------------------------------------------------------------------------
# class colours, legible PNGs, interactive bokeh plots
# ------------------------------------------------------------------------------------------------
def _crop_map(names: list[str]) -> xr.Dataset:
    c = (np.add.outer(np.arange(24) // 4, np.arange(30) // 5) % len(names)).astype("uint8")
    y, x = 5_220_000.0 - 10 * np.arange(24), 560_000.0 + 10 * np.arange(30)
    cls = xr.DataArray(c, coords={"y": y, "x": x}, dims=("y", "x"), name="class")
    cls.attrs["class_names"] = json.dumps(names)
    return xr.Dataset({"class": cls, "confidence": (cls / len(names)).astype("float32")})


def _legend_colours(fig) -> dict[str, str]:
    from matplotlib.colors import to_hex

    out = {}
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is not None:
            for text, handle in zip(legend.get_texts(), legend.legend_handles, strict=True):
                face = handle.get_facecolor() if hasattr(handle, "get_facecolor") else handle.get_color()
                out[text.get_text()] = to_hex(np.atleast_2d(face)[0] if not isinstance(face, str) else face)
    return out


def test_a_class_has_its_palette_colour_in_map_scene_and_by_class_plots(tmp_path):
    from eokit.palettes import class_colours
    from eokit.schema import ICE_CLASSES, TS2C_CLASSES

    names = TS2C_CLASSES + ["fallow", "hops", "orchard", "vegetables"]  # 20 classes, 4 outside the table
    fig = hv.render(maps.plot_classes(_crop_map(names), all_classes=True), backend="matplotlib")
    shown = _legend_colours(fig)
    assert shown == class_colours(names) and len(set(shown.values())) == 20
    truth = gen.write_geotiff_scene(tmp_path / "in", "scene_0", seed=0, origin=(600_000.0, -1_100_000.0))
    poly = gen.write_polygons(tmp_path / "in" / "ice_polygons.gpkg", [truth])
    scene = sar.preprocess(sar.open(truth["path"]))[0]
    fig = hv.render(patches.plot_scene(scene, poly), backend="matplotlib")
    assert _legend_colours(fig) == class_colours(ICE_CLASSES)
    df = pd.DataFrame({"x": np.arange(32.0), "y": np.arange(32.0), "label_name": TS2C_CLASSES * 2})
    plots.use_hvplot("pandas")
    by = plots.colour_by_class(df.hvplot.scatter(x="x", y="y", by="label_name"))
    bokeh = hv.render(by, backend="bokeh")
    got = {r.name or "": r.glyph.fill_color for r in bokeh.renderers}
    assert sorted(got.values()) == sorted(class_colours(TS2C_CLASSES).values())
    with refuses(ValueError, "colour_by_class", "NdOverlay"):
        plots.colour_by_class(_image())


def test_saved_pngs_have_nothing_overlapping(tmp_path):
    from eokit._png_layout import _grown, overlaps, png_bytes
    from eokit.schema import TS2C_CLASSES

    crop = _crop_map(TS2C_CLASSES[:13])
    stacked = (maps.plot_classes(crop, title="crop types (lstm)") + maps.plot_confidence(crop)).cols(1)
    assert overlaps(hv.render(_grown(stacked, 0), backend="matplotlib")), "the crowded case this guards against"
    made = _every_plot(tmp_path)
    made["stacked maps"] = stacked
    for name, obj in made.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # png_bytes warns when overlaps remain after its last try
            assert png_bytes(obj)[:8] == PNG, name


def test_bokeh_maps_hover_with_class_names_and_link_panels_of_one_area(tmp_path):
    from bokeh.models import CustomJSHover, HoverTool

    crop = _crop_map(["w", "c", "s"])
    layout = hv.render(maps.plot_classes(crop) + maps.plot_confidence(crop), backend="bokeh")
    figs = [child[0] for child in layout.children]
    for f in figs:
        assert any(isinstance(t, HoverTool) for t in f.tools), "hover tool"
        assert {"PanTool", "WheelZoomTool"} <= {type(t).__name__ for t in f.tools}
    hover = next(t for t in figs[0].tools if isinstance(t, HoverTool))
    assert dict(hover.tooltips)["class"] == "@image{custom}"
    fmt = hover.formatters["@image"]
    assert isinstance(fmt, CustomJSHover) and '["w", "c", "s"]' in fmt.code
    assert figs[0].x_range is figs[1].x_range and figs[0].y_range is figs[1].y_range, "linked panels"
    made = _every_plot(tmp_path)
    for name in ("patches.plot_scene", "evaluate.plot_confusion", "evaluate.plot_history", "maps.plot_boundaries"):
        model = hv.render(made[name], backend="bokeh")
        children = [c[0] for c in model.children] if hasattr(model, "children") else [model]
        assert all(any(isinstance(t, HoverTool) for t in f.tools) for f in children), name


def test_image_grid_draws_each_patch_with_its_first_row_at_the_top():
    a = np.zeros((6, 6))
    a[0] = 1.0  # the patch's first row
    grid = plots.image_grid([[a]], row_labels=["r"])
    image = next(el for el in grid.traverse(lambda e: e) if type(el).__name__ == "Image")
    assert image[2.5, 5.5] == 1.0 and image[2.5, 0.5] == 0.0

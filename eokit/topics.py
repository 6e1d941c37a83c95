"""The LDA topic level beneath the 256x256 semantic level (DLR, ExtremeEarth): latent topics of 4x4-pixel cells.

A SAR scene (HH, HV in dB, from `eokit.sar.open` and `eokit.sar.preprocess`) is cut into 4x4-pixel cells; each
cell gets six features (HH/HV mean, standard deviation and texture: the mean absolute difference between
neighbouring pixels), and a seeded k-means codebook (scikit-learn `MiniBatchKMeans`, fitted on a seeded sample of
cells, standardised features) turns every cell into a visual word. Documents are the non-overlapping windows of
`window` x `window` pixels (those at the scene's right and bottom edges may be smaller; the scene is trimmed to
whole cells); scikit-learn's `LatentDirichletAllocation` (11 topics by default) is fitted on their word counts
(a seeded sample of windows) and gives each window a topic mixture theta. A cell's topic is
``argmax_k theta[window, k] * phi[k, word]`` (phi: each topic's word distribution), the most likely topic of its
word within its window's mixture; the topic map lies on the scene's grid coarsened by 4, written as a COG.

Words, counts and maps are computed block by block with dask (blocks a whole number of windows), so memory stays
bounded on a whole scene; every per-cell value depends on the cell's pixels only, so the same seed gives the same
words, topics and maps whatever the chunking. Semantic patches get the topic mixture of their own document (the
words of the cells wholly inside them). `from_dlr` turns the DLR LDA set's topic labels into the same map, and
`compare` measures the agreement of two topic maps (topic ids are not aligned: contingency table, AMI, ARI).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from eokit import _topic_cells as _tc
from eokit._checks import is_int
from eokit._topic_cells import CELL, FEATURES, NO_TOPIC, NO_WORD
from eokit._topic_dlr import compare, from_dlr
from eokit._topic_plots import plot_patch_topics, plot_topic_map, plot_topic_profiles

__all__ = [
    "CELL",
    "FEATURES",
    "NO_TOPIC",
    "NO_WORD",
    "TopicModel",
    "compare",
    "fit",
    "from_dlr",
    "mixtures",
    "patch_mixtures",
    "plot_patch_topics",
    "plot_topic_map",
    "plot_topic_profiles",
    "topic_map",
    "word_counts",
    "words",
    "write_cog",
]


@dataclass
class TopicModel:
    """A fitted topic level: the cell vocabulary (standardisation, k-means centroids) and the LDA model."""

    window: int
    mean: np.ndarray
    std: np.ndarray
    centroids: np.ndarray
    lda: Any
    seed: int
    chunks: int = 2048
    fitted_on: dict[str, Any] = field(default_factory=dict)

    @property
    def vocabulary(self) -> int:
        """Return the number of visual words."""
        return int(len(self.centroids))

    @property
    def n_topics(self) -> int:
        """Return the number of topics."""
        return int(self.lda.n_components)

    @property
    def phi(self) -> np.ndarray:
        """Return each topic's word distribution (n_topics, vocabulary), rows summing to 1."""
        c = np.asarray(self.lda.components_, dtype=np.float64)
        return c / c.sum(1, keepdims=True)

    def word_features(self) -> np.ndarray:
        """Return each word's centroid in feature units (vocabulary, features): dB for means, std, texture."""
        return self.centroids * self.std + self.mean

    def topic_profiles(self) -> Any:
        """Return a DataFrame (topic x feature) of each topic's expected cell features (phi @ word features)."""
        import pandas as pd

        prof = self.phi @ self.word_features()
        return pd.DataFrame(prof, index=pd.Index(range(self.n_topics), name="topic"), columns=list(FEATURES))


def _whole(name: str, value: Any, low: int) -> int:
    if not is_int(value) or value < low:
        raise ValueError(f"topics: {name} must be a whole number >= {low}, got {value!r}")
    return int(value)


def _check_window(window: Any) -> int:
    """Return the window side in cells; raise unless `window` is a whole number of 4x4 cells (pixels)."""
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < CELL or window % CELL:
        raise ValueError(
            f"topics: window must be a whole number of {CELL}x{CELL} cells in pixels (>= {CELL}, a multiple of "
            f"{CELL}, e.g. 64 or 256), got {window!r}"
        )
    return int(window) // CELL


def _scene_list(scenes: Any) -> list[xr.Dataset]:
    out = [scenes] if isinstance(scenes, xr.Dataset) else list(scenes)
    if not out:
        raise ValueError("topics.fit: no scene given; expected a SAR scene or a list of them")
    return out


def fit(
    scenes: xr.Dataset | Sequence[xr.Dataset],
    n_topics: int = 11,
    vocabulary: int = 64,
    window: int = 64,
    cell_sample: int = 100_000,
    window_sample: int = 20_000,
    seed: int = 0,
    chunks: int = 2048,
    max_iter: int = 30,
) -> TopicModel:
    """Return a `TopicModel` fitted on one scene or several: k-means vocabulary on a cell sample, then LDA.

    `vocabulary` words are learnt from `cell_sample` cells drawn at random over all scenes (cells with an invalid
    pixel are left out; fewer valid cells than words is refused); LDA with `n_topics` topics is fitted on up to
    `window_sample` non-empty windows of `window` pixels. `chunks` is the block side in pixels (rounded up to
    whole windows): it bounds memory and never changes the result.
    """
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import LatentDirichletAllocation

    n_topics = _whole("n_topics", n_topics, 2)
    vocabulary = _whole("vocabulary", vocabulary, 2)
    cell_sample, window_sample = _whole("cell_sample", cell_sample, 1), _whole("window_sample", window_sample, 1)
    seed, max_iter = _whole("seed", seed, 0), _whole("max_iter", max_iter, 1)
    wc = _check_window(window)
    block = _tc.block_chunks(chunks, wc)
    scenes = _scene_list(scenes)
    shapes = [_tc.check_scene(s) for s in scenes]
    ss_cells, ss_windows = np.random.SeedSequence(seed).spawn(2)
    picks = _tc.sample_cells(shapes, cell_sample, ss_cells)
    sample = np.concatenate(
        [np.asarray(_tc.features(s, block).vindex[r, c].compute()) for s, (r, c) in zip(scenes, picks, strict=True)]
    )
    sample = sample[np.isfinite(sample).all(1)]
    if len(sample) < vocabulary:
        raise ValueError(
            f"topics.fit: vocabulary {vocabulary} is larger than the number of valid cells sampled ({len(sample)} "
            f"of {sum(len(r) for r, _ in picks)} drawn, cell_sample={cell_sample}); expected vocabulary <= "
            "the valid cells sampled: lower vocabulary or give more (or larger) scenes"
        )
    mean = sample.mean(0)
    std = sample.std(0)
    std[std == 0] = 1.0
    km = MiniBatchKMeans(n_clusters=vocabulary, random_state=seed, n_init=3, batch_size=4096, max_iter=100)
    km.fit((sample - mean) / std)
    centroids = np.asarray(km.cluster_centers_, dtype=np.float64)
    docs = np.concatenate(
        [
            _tc.counts(_tc.words(s, block, mean, std, centroids), wc, vocabulary).compute().reshape(-1, vocabulary)
            for s in scenes
        ]
    )
    docs = docs[docs.sum(1) > 0]
    if len(docs) == 0:
        raise ValueError("topics.fit: every window is empty (no valid 4x4 cell in any scene); check the valid masks")
    rng = np.random.default_rng(ss_windows)
    fit_docs = docs[np.sort(rng.choice(len(docs), size=min(window_sample, len(docs)), replace=False))]
    lda = LatentDirichletAllocation(
        n_components=n_topics, random_state=seed, learning_method="batch", max_iter=max_iter, n_jobs=1
    )
    lda.fit(fit_docs)
    used = {"scenes": [_tc._name(s) for s in scenes], "cells_sampled": int(len(sample)), "windows": int(len(fit_docs))}
    return TopicModel(CELL * wc, mean, std, centroids, lda, seed, int(chunks), used)


def _check_model(model: Any) -> TopicModel:
    if not isinstance(model, TopicModel):
        raise ValueError(f"topics: expected a TopicModel from eokit.topics.fit, got {type(model).__name__}")
    return model


def words(scene: xr.Dataset, model: TopicModel) -> xr.DataArray:
    """Return each 4x4 cell's visual word as a lazy (y, x) int16 DataArray (-1: a cell with an invalid pixel)."""
    model = _check_model(model)
    n_cy, n_cx = _tc.check_scene(scene)
    block = _tc.block_chunks(model.chunks, model.window // CELL)
    w = _tc.words(scene, block, model.mean, model.std, model.centroids)
    return _tc.grid_array(w, scene, n_cy, n_cx, "word", {"scene": _tc._name(scene), "nodata": NO_WORD})


def word_counts(scene: xr.Dataset, model: TopicModel) -> xr.DataArray:
    """Return the word counts of every window as a (wy, wx, word) int32 DataArray (computed)."""
    model = _check_model(model)
    wc = model.window // CELL
    w = words(scene, model)
    c = _tc.counts(w.data, wc, model.vocabulary).compute()
    return xr.DataArray(c, dims=("wy", "wx", "word"), name="word_count", attrs={"window": model.window})


def _theta(model: TopicModel, counts: np.ndarray) -> np.ndarray:
    """Return the topic mixtures (..., n_topics) of word-count rows (..., vocabulary); NaN for empty windows."""
    flat = counts.reshape(-1, counts.shape[-1])
    out = np.full((len(flat), model.n_topics), np.nan)
    ok = flat.sum(1) > 0
    if ok.any():
        out[ok] = model.lda.transform(flat[ok])
    return out.reshape(*counts.shape[:-1], model.n_topics)


def mixtures(scene: xr.Dataset, model: TopicModel) -> xr.DataArray:
    """Return each window's topic mixture as a (wy, wx, topic) float DataArray (NaN where a window is empty)."""
    c = word_counts(scene, model)
    theta = _theta(model, c.values)
    return xr.DataArray(theta, dims=("wy", "wx", "topic"), coords={"topic": np.arange(model.n_topics)}, name="theta")


def topic_map(scene: xr.Dataset, model: TopicModel) -> xr.DataArray:
    """Return each cell's most likely topic as a lazy (y, x) uint8 DataArray on the scene's grid coarsened by 4.

    Topic ``argmax_k theta[window, k] * phi[k, word]``; 255 (`NO_TOPIC`) where the cell has an invalid pixel.
    """
    model = _check_model(model)
    n_cy, n_cx = _tc.check_scene(scene)
    w = words(scene, model)
    theta = _theta(model, _tc.counts(w.data, model.window // CELL, model.vocabulary).compute())
    t = _tc.topics(w.data, theta, model.phi, model.window // CELL)
    names = [f"topic {k}" for k in range(model.n_topics)]
    attrs = {
        "scene": _tc._name(scene),
        "class_names": names,
        "nodata": NO_TOPIC,
        "cell": CELL,
        "window": model.window,
        "source": "eokit.topics",
    }
    return _tc.grid_array(t, scene, n_cy, n_cx, "topic", attrs)


def write_cog(topics: xr.DataArray, path: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Return `path` after writing a topic map as a Cloud-Optimised GeoTIFF (uint8, colour table, 255 nodata)."""
    import rasterio
    import rasterio.shutil
    from rasterio.io import MemoryFile

    from eokit._io import atomic_output
    from eokit.palettes import rgba

    if not isinstance(topics, xr.DataArray) or topics.dims != ("y", "x"):
        raise ValueError(f"topics.write_cog: expected a (y, x) topic map DataArray, got {type(topics).__name__}")
    if topics.rio.crs is None:
        raise ValueError(
            f"topics.write_cog: the topic map to write to {path} has no CRS; expected a map of a georeferenced "
            "scene (eokit.topics.topic_map) or set one with .rio.write_crs(...)"
        )
    data = np.asarray(topics.values).astype(np.uint8)
    n = int(data[data != NO_TOPIC].max(initial=0)) + 1
    names = list(topics.attrs.get("class_names") or [f"topic {k}" for k in range(n)])
    colours = rgba(names)
    colours[NO_TOPIC] = (0, 0, 0, 0)
    profile = dict(
        driver="GTiff",
        width=data.shape[1],
        height=data.shape[0],
        count=1,
        dtype="uint8",
        crs=topics.rio.crs,
        transform=topics.rio.transform(),
        nodata=NO_TOPIC,
    )
    with atomic_output(path, overwrite) as tmp, MemoryFile() as mem:
        with mem.open(**profile) as dst:
            dst.write(data[None])
            dst.write_colormap(1, colours)
            dst.set_band_description(1, "topic")
            dst.update_tags(1, class_names=",".join(names))
            dst.update_tags(SCENE=str(topics.attrs.get("scene", "")), WINDOW=str(topics.attrs.get("window", "")))
        with mem.open() as src:
            rasterio.shutil.copy(src, tmp, driver="COG", COMPRESS="DEFLATE", OVERVIEWS="AUTO", RESAMPLING="NEAREST")
    return Path(path)


def _patch_size(patches: xr.Dataset, size: int | None) -> np.ndarray:
    n = patches.sizes["patch"]
    if size is not None:
        return np.full(n, _whole("size", size, CELL))
    if "patch_size" in patches:
        return np.asarray(patches["patch_size"].values, dtype=np.int64)
    if "row" in patches.dims and "image" in patches:
        return np.full(n, patches.sizes["row"])
    raise ValueError("topics.patch_mixtures: the patch set has no image (row, col) and no patch_size; pass size=")


def patch_mixtures(
    scenes: xr.Dataset | Mapping[str, xr.Dataset], model: TopicModel, patches: xr.Dataset, size: int | None = None
) -> np.ndarray:
    """Return the topic mixture of each patch (N, n_topics), in the patch set's order (row0/col0, scene).

    A patch's document is the words of the 4x4 cells wholly inside it; its mixture is LDA's transform of their
    counts (NaN where no valid cell lies inside). `scenes` is one scene or {scene name: scene} for a patch set
    with a `scene` variable (eokit.patches, PATCH_SCHEMA); DLR semantic patches come with their own scene.
    """
    model = _check_model(model)
    for v in ("row0", "col0"):
        if v not in patches:
            raise ValueError(f"topics.patch_mixtures: the patch set has no {v!r}; found {list(patches.data_vars)}")
    by_name = {_tc._name(scenes): scenes} if isinstance(scenes, xr.Dataset) else dict(scenes)
    if "scene" in patches:
        names = np.asarray(patches["scene"].values).astype(str)
    elif len(by_name) == 1:
        names = np.full(patches.sizes["patch"], next(iter(by_name)))
    else:
        raise ValueError(
            f"topics.patch_mixtures: {len(by_name)} scenes given but the patch set has no 'scene' variable saying "
            "which scene each patch comes from; expected one scene, or a patch set with 'scene'"
        )
    unknown = sorted(set(names) - set(by_name))
    if unknown:
        raise ValueError(
            f"topics.patch_mixtures: patches of scene(s) {unknown[:5]} but the scenes given are {list(by_name)}"
        )
    r0, c0 = (np.asarray(patches[v].values, np.int64) for v in ("row0", "col0"))
    sizes = _patch_size(patches, size)
    counts = np.zeros((len(names), model.vocabulary), np.int64)
    for name, scene in by_name.items():
        idx = np.flatnonzero(names == name)
        if len(idx):
            w = np.asarray(words(scene, model).values)
            for i in idx:  # the cells wholly inside the patch
                cell = w[-(-r0[i] // CELL) : (r0[i] + sizes[i]) // CELL, -(-c0[i] // CELL) : (c0[i] + sizes[i]) // CELL]
                counts[i] = np.bincount(cell[cell >= 0], minlength=model.vocabulary)
    return _theta(model, counts)

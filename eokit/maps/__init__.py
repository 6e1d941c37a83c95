"""Wall-to-wall maps: trained eokit models run over whole image cubes and SAR scenes, chunk by chunk with dask.

`predict` maps a time-series model (LSTM, TempCNN, L-TAE) over a Sentinel-2 cube (`eokit.cube.open`),
`predict_patches` maps a patch model (CNN, VGG-16) over a SAR scene (`eokit.sar.open`) with a sliding window
or a centred patch per pixel. Both build one lazy dask array whose blocks each hold every time step and band
of one spatial chunk, so memory is bounded by the chunk size whatever the tile size. The Keras model is loaded
once per worker process (cached by path) and never shipped inside tasks; preprocessing is the training
pipeline's own (`eokit.card.prepare_inputs` / `prepare_patches`), so maps see exactly what training saw.

`write_cog` streams the blocks into tiled GeoTIFFs and converts them with GDAL's COG driver (overviews,
deflate, a colour table from the class names); `boundaries` and `boundaries_to_vector` derive crop-field
boundaries (class edges and, when given, parcel outlines) as a raster and as GeoPackage vectors.
"""

from __future__ import annotations

from eokit.maps._blocks import NODATA_CLASS
from eokit.maps._runtime import _CACHE
from eokit.maps.cog import class_colours, write_cog
from eokit.maps.field_boundaries import BOUNDARY_CLASS_EDGE as BOUNDARY_CLASS_EDGE
from eokit.maps.field_boundaries import BOUNDARY_PARCEL as BOUNDARY_PARCEL
from eokit.maps.field_boundaries import boundaries, boundaries_to_vector, write_boundaries
from eokit.maps.plots import composite, plot_boundaries, plot_classes, plot_confidence
from eokit.maps.prediction import predict, predict_patches

#: This process's loaded models by key (the runtime cache's own dict: workers report what they loaded).
_MODELS = _CACHE.models

__all__: list[str] = [
    "NODATA_CLASS",
    "predict",
    "predict_patches",
    "write_cog",
    "class_colours",
    "boundaries",
    "boundaries_to_vector",
    "write_boundaries",
    "plot_classes",
    "plot_confidence",
    "composite",
    "plot_boundaries",
]

"""The published datasets eokit can fetch: where their files come from, their checksums, licences and citations.

`eokit.download` fetches and verifies them; this registry is the one place their facts live.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DatasetSpec:
    """One published dataset: where its files come from and how to recognise an unpacked copy."""

    name: str
    title: str
    #: file name -> (URL, known hash "md5:..." / "sha256:..." or None when the publisher gives none)
    files: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    #: DOI whose repository API (Zenodo, Dataverse) lists the files and their checksums when `files` is empty
    doi: str | None = None
    #: glob patterns (relative to the unpacked folder) of which at least one must match a usable copy
    expect: tuple[str, ...] = ()
    landing: str = ""
    licence: str = ""
    citation: str = ""
    size: str = ""


REGISTRY: dict[str, DatasetSpec] = {
    "timesen2crop": DatasetSpec(
        name="timesen2crop",
        title="TimeSen2Crop: a million labeled samples dataset of Sentinel-2 image time series for crop-type "
        "classification",
        files={
            "TimeSen2Crop.zip": (
                "https://zenodo.org/records/4715631/files/TimeSen2Crop.zip",
                "md5:b5b7aad3fef192e78252e11c9a0e5cb8",
            )
        },
        doi="10.5281/zenodo.4715631",
        expect=("*/dates.csv", "TimeSen2Crop/*/dates.csv"),
        landing="https://zenodo.org/records/4715631",
        licence="CC-BY-4.0",
        citation="Weikmann G., Paris C., Bruzzone L. (2021) TimeSen2Crop: a Million Labeled Samples Dataset of "
        "Sentinel 2 Image Time Series for Crop-Type Classification. IEEE JSTARS 14, 4699-4708.",
        size="1.03 GB zip, 1,212,224 CSV files",
    ),
    "metno_v1": DatasetSpec(
        name="metno_v1",
        title="ExtremeEarth sea ice and iceberg analysis (METNO), v1",
        doi="10.5281/zenodo.3695276",
        expect=("**/seaice_s1_*.shp",),
        landing="https://zenodo.org/records/3695276",
        licence="CC-BY-4.0",
        citation="Norwegian Meteorological Institute (2020) ExtremeEarth polar use case training data: sea ice "
        "and iceberg analysis, Danmarkshavn 2018. Zenodo, doi:10.5281/zenodo.3695276.",
        size="tens of MB (shapefiles)",
    ),
    "metno_v2": DatasetSpec(
        name="metno_v2",
        title="ExtremeEarth polar training dataset (METNO), v2.0.0",
        doi="10.5281/zenodo.4683174",
        expect=("**/seaice_s1_*.shp",),
        landing="https://zenodo.org/records/4683174",
        licence="CC-BY-4.0",
        citation="Norwegian Meteorological Institute (2021) ExtremeEarth polar use case training data v2.0.0. "
        "Zenodo, doi:10.5281/zenodo.4683174.",
        size="tens of MB (shapefiles)",
    ),
    "uit_icetypes": DatasetSpec(
        name="uit_icetypes",
        title="Sea ice types and ice edge from Sentinel-1 SAR (UiT), 31 scenes",
        doi="10.18710/QAYI4O",
        expect=("**/*.nc", "**/*.tif", "**/*.tiff", "**/*.npy", "**/*.npz", "**/*.h5", "**/*.hdf5", "**/*.mat"),
        landing="https://doi.org/10.18710/QAYI4O",
        licence="CC0-1.0 (DataverseNO default; check landing page)",
        citation="Khaleghian S., Ullah H., Kraemer T., Hughes N., Eltoft T., Marinoni A. (2021) Sea ice "
        "classification of SAR imagery based on convolution neural networks. Remote Sensing 13(9), "
        "1734. Data: DataverseNO, doi:10.18710/QAYI4O.",
        size="unknown (several GB)",
    ),
    "dlr_belgica_semantic": DatasetSpec(
        name="dlr_belgica_semantic",
        title="Belgica Bank Sentinel-1 scenes with semantic labels (DLR)",
        doi="10.5281/zenodo.5075448",
        expect=("**/*.tif", "**/*.tiff", "**/*.h5", "**/*.hdf5", "**/*.nc", "**/*.npy", "**/*.png"),
        landing="https://zenodo.org/records/5075448",
        licence="CC-BY-4.0",
        citation="Karmakar C., Dumitru C.O., Hughes N., Datcu M. (2021) Belgica Bank semantic annotations of "
        "Sentinel-1 images. Zenodo, doi:10.5281/zenodo.5075448.",
        size="about 24 x 800 MB",
    ),
    "dlr_belgica_lda": DatasetSpec(
        name="dlr_belgica_lda",
        title="Belgica Bank Sentinel-1 scenes with LDA topic labels (DLR)",
        doi="10.5281/zenodo.5075861",
        expect=("**/*.tif", "**/*.tiff", "**/*.h5", "**/*.hdf5", "**/*.nc", "**/*.npy", "**/*.png"),
        landing="https://zenodo.org/records/5075861",
        licence="CC-BY-4.0",
        citation="Karmakar C., Dumitru C.O., Hughes N., Datcu M. (2021) Belgica Bank LDA topic annotations of "
        "Sentinel-1 images. Zenodo, doi:10.5281/zenodo.5075861.",
        size="unknown (large)",
    ),
    "lucas_2018": DatasetSpec(
        name="lucas_2018",
        title="LUCAS 2018 land use / land cover survey points (harmonised, JRC)",
        files={
            "lucas_harmo_uf_2018.zip": (
                "https://jeodpp.jrc.ec.europa.eu/ftp/jrc-opendata/LUCAS/LUCAS_harmonised/1_table/"
                "lucas_harmo_uf_2018.zip",
                None,
            )
        },
        expect=("*.csv", "**/*.csv", "*.CSV"),
        landing="https://ec.europa.eu/eurostat/web/lucas/database/2018",
        licence="Eurostat/JRC reuse (CC-BY-4.0)",
        citation="d'Andrimont R. et al. (2020) Harmonised LUCAS in-situ land cover and use database for field "
        "surveys from 2006 to 2018 in the European Union. Scientific Data 7, 352.",
        size="about 100 MB zip (337,854 points)",
    ),
    # A GitHub repository, no DOI: GitHub makes its archives on request and does not promise stable bytes, and
    # the publisher gives no checksum, so none is recorded (the zip's CRCs are checked after download).
    "polar_patch": DatasetSpec(
        name="polar_patch",
        title="polar-patch: 10,047 Sentinel-1 image patches (64x64 RGB renders), Danmarkshavn 2018, "
        "labelled water/ice/land",
        files={
            "polar-patch-f7d97ea2.zip": ("https://github.com/ysbecca/polar-patch/archive/f7d97ea2.zip", None),
        },
        expect=("meta.csv", "*/meta.csv"),
        landing="https://github.com/ysbecca/polar-patch",
        licence="none stated (the repository has no licence file): use to develop and evaluate, do not redistribute",
        citation="ysbecca, polar-patch (GitHub repository ysbecca/polar-patch, commit f7d97ea2): patches of the "
        "ExtremeEarth polar training data, labels from Norwegian Meteorological Institute (2020), Zenodo, "
        "doi:10.5281/zenodo.3695276.",
        size="about 45 MB (10,047 PNG files and meta.csv)",
    ),
}

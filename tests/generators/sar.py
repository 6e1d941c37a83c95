"""Small SAR fixtures in published layouts: Sentinel-1 GRD SAFE products, SNAP-style GeoTIFF scenes, ice polygons.

The SAFE writer follows the Sentinel-1 Product Specification (manifest.safe, annotation/*.xml with the
geolocation grid, annotation/calibration/{calibration,noise}-*.xml, measurement/*.tiff with uint16
digital numbers and GCPs) closely enough that xarray-sentinel opens it; every function returns the
ground truth the tests compare against.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.errors
from rasterio.control import GroundControlPoint
from rasterio.crs import CRS
from rasterio.transform import from_origin

_T0 = datetime(2018, 1, 16, 7, 54, 30)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f")


def _stamp(t: datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%S")


def _arr(values: np.ndarray, fmt: str = "{:.6e}") -> str:
    return " ".join(fmt.format(v) for v in np.ravel(values))


def sigma0_field(lines: int, pixels: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Return linear sigma0 for HH and HV: four ice regimes (quadrants) with speckle-like noise."""
    rng = np.random.default_rng(seed)
    hh_db = np.empty((lines, pixels))
    hv_db = np.empty((lines, pixels))
    regimes = [(-22.0, -30.0), (-14.0, -24.0), (-10.0, -20.0), (-17.0, -27.0)]
    halves = [
        (slice(0, lines // 2), slice(0, pixels // 2)),
        (slice(0, lines // 2), slice(pixels // 2, None)),
        (slice(lines // 2, None), slice(0, pixels // 2)),
        (slice(lines // 2, None), slice(pixels // 2, None)),
    ]
    for (hh, hv), (sy, sx) in zip(regimes, halves, strict=True):
        hh_db[sy, sx] = hh
        hv_db[sy, sx] = hv
    speckle_hh = rng.gamma(4.0, 1 / 4.0, size=(lines, pixels))
    speckle_hv = rng.gamma(4.0, 1 / 4.0, size=(lines, pixels))
    return {"HH": 10 ** (hh_db / 10) * speckle_hh, "HV": 10 ** (hv_db / 10) * speckle_hv}


def _manifest(
    name: str, pols: list[str], files: dict[str, list[tuple[str, str]]], start: datetime, stop: datetime, mission: str
) -> str:
    units, objects = [], []
    for pol in pols:
        for rep_id, href in files[pol]:
            oid = Path(href).stem.replace("-", "")
            units.append(
                f'      <xfdu:contentUnit unitType="Metadata Unit" repID="{rep_id}">\n'
                f'        <dataObjectPointer dataObjectID="{oid}"/>\n      </xfdu:contentUnit>'
            )
            mime = "application/octet-stream" if href.endswith(".tiff") else "text/xml"
            objects.append(
                f'    <dataObject ID="{oid}" repID="{rep_id}">\n'
                f'      <byteStream mimeType="{mime}" size="0">\n'
                f'        <fileLocation locatorType="URL" href="./{href}"/>\n'
                f'        <checksum checksumName="MD5">00000000000000000000000000000000</checksum>\n'
                f"      </byteStream>\n    </dataObject>"
            )
    pol_tags = "\n".join(
        f"            <s1sarl1:transmitterReceiverPolarisation>{p}</s1sarl1:transmitterReceiverPolarisation>"
        for p in pols
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<xfdu:XFDU xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:gml="http://www.opengis.net/gml" xmlns:xfdu="urn:ccsds:schema:xfdu:1" xmlns:safe="http://www.esa.int/safe/sentinel-1.0" xmlns:s1="http://www.esa.int/safe/sentinel-1.0/sentinel-1" xmlns:s1sar="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar" xmlns:s1sarl1="http://www.esa.int/safe/sentinel-1.0/sentinel-1/sar/level-1" version="esa/safe/sentinel-1.0/sentinel-1/sar/level-1/grd/standard/ewdp">
  <informationPackageMap>
    <xfdu:contentUnit unitType="SAFE Archive Information Package" textInfo="Sentinel-1 EW Level-1 GRD Product" dmdID="acquisitionPeriod platform generalProductInformation measurementOrbitReference measurementFrameSet" pdiID="processing">
{chr(10).join(units)}
    </xfdu:contentUnit>
  </informationPackageMap>
  <metadataSection>
    <metadataObject ID="platform" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Platform Description">
        <xmlData>
          <safe:platform>
            <safe:nssdcIdentifier>2014-016A</safe:nssdcIdentifier>
            <safe:familyName>SENTINEL-1</safe:familyName>
            <safe:number>{mission[-1]}</safe:number>
            <safe:instrument>
              <safe:familyName abbreviation="SAR">Synthetic Aperture Radar</safe:familyName>
              <safe:extension>
                <s1sarl1:instrumentMode>
                  <s1sarl1:mode>EW</s1sarl1:mode>
                  <s1sarl1:swath>EW</s1sarl1:swath>
                </s1sarl1:instrumentMode>
              </safe:extension>
            </safe:instrument>
          </safe:platform>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="measurementOrbitReference" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Orbit Reference">
        <xmlData>
          <safe:orbitReference>
            <safe:orbitNumber type="start">20182</safe:orbitNumber>
            <safe:orbitNumber type="stop">20182</safe:orbitNumber>
            <safe:relativeOrbitNumber type="start">74</safe:relativeOrbitNumber>
            <safe:relativeOrbitNumber type="stop">74</safe:relativeOrbitNumber>
            <safe:extension>
              <s1:orbitProperties>
                <s1:pass>DESCENDING</s1:pass>
                <s1:ascendingNodeTime>{_iso(start - timedelta(minutes=40))}</s1:ascendingNodeTime>
              </s1:orbitProperties>
            </safe:extension>
          </safe:orbitReference>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="generalProductInformation" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="General Product Information">
        <xmlData>
          <s1sarl1:standAloneProductInformation>
            <s1sarl1:missionDataTakeID>140963</s1sarl1:missionDataTakeID>
{pol_tags}
            <s1sarl1:productClass>S</s1sarl1:productClass>
            <s1sarl1:productType>GRD</s1sarl1:productType>
            <s1sarl1:productTimelinessCategory>Fast-24h</s1sarl1:productTimelinessCategory>
          </s1sarl1:standAloneProductInformation>
        </xmlData>
      </metadataWrap>
    </metadataObject>
    <metadataObject ID="acquisitionPeriod" classification="DESCRIPTION" category="DMD">
      <metadataWrap mimeType="text/xml" vocabularyName="SAFE" textInfo="Acquisition Period">
        <xmlData>
          <safe:acquisitionPeriod>
            <safe:startTime>{_iso(start)}</safe:startTime>
            <safe:stopTime>{_iso(stop)}</safe:stopTime>
          </safe:acquisitionPeriod>
        </xmlData>
      </metadataWrap>
    </metadataObject>
  </metadataSection>
  <dataObjectSection>
{chr(10).join(objects)}
  </dataObjectSection>
</xfdu:XFDU>
"""


def _ads_header(mission: str, pol: str, start: datetime, stop: datetime) -> str:
    return f"""  <adsHeader>
    <missionId>{mission}</missionId>
    <productType>GRD</productType>
    <polarisation>{pol}</polarisation>
    <mode>EW</mode>
    <swath>EW</swath>
    <startTime>{_iso(start)}</startTime>
    <stopTime>{_iso(stop)}</stopTime>
    <absoluteOrbitNumber>20182</absoluteOrbitNumber>
    <missionDataTakeId>140963</missionDataTakeId>
    <imageNumber>001</imageNumber>
  </adsHeader>"""


def _annotation(
    mission: str,
    pol: str,
    start: datetime,
    stop: datetime,
    lines: int,
    pixels: int,
    grid: dict[str, np.ndarray],
    spacing: float,
) -> str:
    dt = (stop - start).total_seconds() / (lines - 1)
    points = []
    for j, line in enumerate(grid["line"]):
        t = start + timedelta(seconds=float(line) * dt)
        for i, pixel in enumerate(grid["pixel"]):
            points.append(
                "      <geolocationGridPoint>\n"
                f"        <azimuthTime>{_iso(t)}</azimuthTime>\n"
                f"        <slantRangeTime>{grid['srt'][i]:.9e}</slantRangeTime>\n"
                f"        <line>{int(line)}</line>\n        <pixel>{int(pixel)}</pixel>\n"
                f"        <latitude>{grid['lat'][j, i]:.9e}</latitude>\n"
                f"        <longitude>{grid['lon'][j, i]:.9e}</longitude>\n"
                "        <height>0.000000e+00</height>\n"
                f"        <incidenceAngle>{grid['ia'][j, i]:.9e}</incidenceAngle>\n"
                f"        <elevationAngle>{grid['ia'][j, i] - 3.0:.9e}</elevationAngle>\n"
                "      </geolocationGridPoint>"
            )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<product>
{_ads_header(mission, pol, start, stop)}
  <generalAnnotation>
    <productInformation>
      <pass>Descending</pass>
      <timelinessCategory>Fast-24h</timelinessCategory>
      <platformHeading>-1.700000e+02</platformHeading>
      <projection>Ground Range</projection>
      <rangeSamplingRate>2.502314816000000e+07</rangeSamplingRate>
      <radarFrequency>5.405000454334350e+09</radarFrequency>
      <azimuthSteeringRate>2.390895448000000e+00</azimuthSteeringRate>
    </productInformation>
  </generalAnnotation>
  <imageAnnotation>
    <imageInformation>
      <productFirstLineUtcTime>{_iso(start)}</productFirstLineUtcTime>
      <productLastLineUtcTime>{_iso(stop)}</productLastLineUtcTime>
      <ascendingNodeTime>{_iso(start - timedelta(minutes=40))}</ascendingNodeTime>
      <anchorTime>{_iso(start)}</anchorTime>
      <productComposition>Slice</productComposition>
      <sliceNumber>1</sliceNumber>
      <slantRangeTime>{grid["srt"][0]:.9e}</slantRangeTime>
      <pixelValue>Detected</pixelValue>
      <outputPixels>16 bit Unsigned Integer</outputPixels>
      <rangePixelSpacing>{spacing:.6e}</rangePixelSpacing>
      <azimuthPixelSpacing>{spacing:.6e}</azimuthPixelSpacing>
      <azimuthTimeInterval>{dt:.9e}</azimuthTimeInterval>
      <azimuthFrequency>{1 / dt:.9e}</azimuthFrequency>
      <numberOfSamples>{pixels}</numberOfSamples>
      <numberOfLines>{lines}</numberOfLines>
      <incidenceAngleMidSwath>{float(np.mean(grid["ia"])):.6e}</incidenceAngleMidSwath>
    </imageInformation>
  </imageAnnotation>
  <swathTiming>
    <linesPerBurst>0</linesPerBurst>
    <samplesPerBurst>0</samplesPerBurst>
    <burstList count="0"/>
  </swathTiming>
  <geolocationGrid>
    <geolocationGridPointList count="{len(points)}">
{chr(10).join(points)}
    </geolocationGridPointList>
  </geolocationGrid>
  <coordinateConversion>
    <coordinateConversionList count="0"/>
  </coordinateConversion>
</product>
"""


def _calibration(
    mission: str,
    pol: str,
    start: datetime,
    stop: datetime,
    lut_lines: np.ndarray,
    lut_pixels: np.ndarray,
    sigma_lut: np.ndarray,
) -> str:
    dt = (stop - start) / max(int(lut_lines[-1]), 1)
    vectors = []
    k = len(lut_pixels)
    for j, line in enumerate(lut_lines):
        s = sigma_lut[j]
        vectors.append(
            "    <calibrationVector>\n"
            f"      <azimuthTime>{_iso(start + dt * int(line))}</azimuthTime>\n"
            f"      <line>{int(line)}</line>\n"
            f'      <pixel count="{k}">{_arr(lut_pixels, "{:d}")}</pixel>\n'
            f'      <sigmaNought count="{k}">{_arr(s)}</sigmaNought>\n'
            f'      <betaNought count="{k}">{_arr(np.full(k, 237.0))}</betaNought>\n'
            f'      <gamma count="{k}">{_arr(s * 0.9)}</gamma>\n'
            f'      <dn count="{k}">{_arr(np.full(k, 237.0))}</dn>\n'
            "    </calibrationVector>"
        )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<calibration>
{_ads_header(mission, pol, start, stop)}
  <calibrationInformation>
    <absoluteCalibrationConstant>1.000000e+00</absoluteCalibrationConstant>
  </calibrationInformation>
  <calibrationVectorList count="{len(vectors)}">
{chr(10).join(vectors)}
  </calibrationVectorList>
</calibration>
"""


def _noise(
    mission: str, pol: str, start: datetime, stop: datetime, lut_lines: np.ndarray, lut_pixels: np.ndarray
) -> str:
    dt = (stop - start) / max(int(lut_lines[-1]), 1)
    k = len(lut_pixels)
    vectors = [
        "    <noiseRangeVector>\n"
        f"      <azimuthTime>{_iso(start + dt * int(line))}</azimuthTime>\n"
        f"      <line>{int(line)}</line>\n"
        f'      <pixel count="{k}">{_arr(lut_pixels, "{:d}")}</pixel>\n'
        f'      <noiseRangeLut count="{k}">{_arr(np.full(k, 1.0))}</noiseRangeLut>\n'
        "    </noiseRangeVector>"
        for line in lut_lines
    ]
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<noise>
{_ads_header(mission, pol, start, stop)}
  <noiseRangeVectorList count="{len(vectors)}">
{chr(10).join(vectors)}
  </noiseRangeVectorList>
  <noiseAzimuthVectorList count="0"/>
</noise>
"""


def write_safe(
    folder: str | Path,
    lines: int = 60,
    pixels: int = 80,
    polarisations: tuple[str, ...] = ("HH", "HV"),
    seed: int = 0,
    ia_range: tuple[float, float] = (19.0, 47.0),
    mission: str = "S1A",
    spacing: float = 40.0,
) -> dict[str, Any]:
    """Write a tiny Sentinel-1 EW GRDM SAFE product; return its path and the true sigma0, IA and grid."""
    folder = Path(folder)
    start = _T0
    stop = start + timedelta(seconds=30.0)  # EW GRDM slices are ~1 minute; 30 s keeps names distinct
    product_id = f"{_stamp(start)}_{_stamp(stop)}_020182_0226A3"
    safe = folder / f"{mission}_EW_GRDM_1S{'D' if len(polarisations) == 2 else 'S'}H_{product_id}_9F1B.SAFE"
    (safe / "annotation" / "calibration").mkdir(parents=True, exist_ok=True)
    (safe / "measurement").mkdir(parents=True, exist_ok=True)

    # geolocation grid: every ~1/4 of the image in both directions, last line/pixel included
    g_lines = np.unique(np.r_[np.linspace(0, lines - 1, 5).round().astype(int)])
    g_pixels = np.unique(np.r_[np.linspace(0, pixels - 1, 6).round().astype(int)])
    from pyproj import Transformer

    to_ll = Transformer.from_crs(3413, 4326, always_xy=True)
    # ground positions on a polar-stereographic grid near Danmarkshavn (east Greenland), rotated by heading
    x0, y0, theta = 600_000.0, -1_100_000.0, np.deg2rad(-10.0)
    ll, pp = np.meshgrid(g_lines, g_pixels, indexing="ij")
    gx = x0 + spacing * (pp * np.cos(theta) - ll * np.sin(theta))
    gy = y0 - spacing * (pp * np.sin(theta) + ll * np.cos(theta))
    lon, lat = to_ll.transform(gx, gy)
    # incidence angle: steep in range, a slight drift in azimuth; linear in both, so exact under bilinear
    ia = ia_range[0] + (ia_range[1] - ia_range[0]) * pp / (pixels - 1) + 0.5 * ll / (lines - 1)
    srt = 2 * (800_000.0 + spacing * g_pixels) / 299_792_458.0
    grid = {"line": g_lines, "pixel": g_pixels, "lat": np.asarray(lat), "lon": np.asarray(lon), "ia": ia, "srt": srt}

    # sigmaNought LUT: linear in pixel, a few lines; DN = sqrt(sigma0) * LUT
    lut_lines = np.unique(np.linspace(0, lines - 1, 4).round().astype(int))
    lut_pixels = np.unique(np.linspace(0, pixels - 1, 9).round().astype(int))
    sigma0 = sigma0_field(lines, pixels, seed)
    truth: dict[str, Any] = {"path": safe, "grid": grid, "sigma0": {}, "dn": {}}
    pix = np.arange(pixels)
    lin = np.arange(lines)[:, None]
    truth["ia"] = ia_range[0] + (ia_range[1] - ia_range[0]) * pix[None, :] / (pixels - 1) + 0.5 * lin / (lines - 1)
    files: dict[str, list[tuple[str, str]]] = {}
    gcps = [
        GroundControlPoint(row=float(r), col=float(c), x=float(lon[j, i]), y=float(lat[j, i]), z=0.0)
        for j, r in enumerate(g_lines)
        for i, c in enumerate(g_pixels)
    ]
    for n, pol in enumerate(polarisations, start=1):
        base = f"{mission.lower()}-ew-grd-{pol.lower()}-{product_id.lower().replace('_', '-')}-{n:03d}"
        lut_row = (500.0 + 150.0 * lut_pixels / (pixels - 1)) * (1.0 if pol == "HH" else 1.02)
        sigma_lut = np.tile(lut_row, (len(lut_lines), 1))
        lut_full = np.broadcast_to(
            (500.0 + 150.0 * pix / (pixels - 1)) * (1.0 if pol == "HH" else 1.02), (lines, pixels)
        )
        dn = np.clip(np.round(np.sqrt(sigma0[pol]) * lut_full), 1, 65535).astype(np.uint16)
        truth["dn"][pol] = dn
        truth["sigma0"][pol] = (dn.astype(np.float64) / lut_full) ** 2
        with warnings.catch_warnings():  # georeferenced by the GCPs set right after opening
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            dst = rasterio.open(
                safe / "measurement" / f"{base}.tiff",
                "w",
                driver="GTiff",
                width=pixels,
                height=lines,
                count=1,
                dtype="uint16",
            )
        with dst:
            dst.write(dn, 1)
            dst.gcps = (gcps, CRS.from_epsg(4326))
        (safe / "annotation" / f"{base}.xml").write_text(
            _annotation(mission, pol, start, stop, lines, pixels, grid, spacing)
        )
        (safe / "annotation" / "calibration" / f"calibration-{base}.xml").write_text(
            _calibration(mission, pol, start, stop, lut_lines, lut_pixels, sigma_lut)
        )
        (safe / "annotation" / "calibration" / f"noise-{base}.xml").write_text(
            _noise(mission, pol, start, stop, lut_lines, lut_pixels)
        )
        files[pol] = [
            ("s1Level1ProductSchema", f"annotation/{base}.xml"),
            ("s1Level1CalibrationSchema", f"annotation/calibration/calibration-{base}.xml"),
            ("s1Level1NoiseSchema", f"annotation/calibration/noise-{base}.xml"),
            ("s1Level1MeasurementSchema", f"measurement/{base}.tiff"),
        ]
    (safe / "manifest.safe").write_text(_manifest(safe.name, list(polarisations), files, start, stop, mission))
    return truth


# --- SNAP-style GeoTIFF scenes --------------------------------------------------------------------------

_FILENAMES = {
    "db": ("Sigma0_{pol}_db.tif", "incidence_angle.tif"),
    "linear": ("Sigma0_{pol}.tif", "incidenceAngleFromEllipsoid.tif"),
    "amplitude": ("Amplitude_{pol}.tif", "Incidence_Angle.tif"),
}


def write_geotiff_scene(
    folder: str | Path,
    name: str = "scene_a",
    height: int = 64,
    width: int = 64,
    polarisations: tuple[str, ...] = ("HH", "HV"),
    kind: str = "db",
    seed: int = 0,
    origin: tuple[float, float] = (600_000.0, -1_100_000.0),
    res: float = 40.0,
    epsg: int = 3413,
    land: bool = False,
    nodata_rows: int = 0,
) -> dict[str, Any]:
    """Write one scene folder of single-band float32 GeoTIFFs as SNAP exports them; return path and truth."""
    scene = Path(folder) / name
    scene.mkdir(parents=True, exist_ok=True)
    sigma0 = sigma0_field(height, width, seed)
    ia = np.broadcast_to(np.linspace(20.0, 45.0, width, dtype=np.float32), (height, width)).copy()
    transform = from_origin(origin[0], origin[1], res, res)
    profile = dict(
        driver="GTiff",
        width=width,
        height=height,
        count=1,
        dtype="float32",
        crs=CRS.from_epsg(epsg),
        transform=transform,
        nodata=0.0,
    )
    pol_name, ia_name = _FILENAMES[kind]
    truth: dict[str, Any] = {"path": scene, "sigma0": sigma0, "ia": ia, "transform": transform, "epsg": epsg}
    for pol in polarisations:
        lin = sigma0[pol]
        values = {"db": 10 * np.log10(lin), "linear": lin, "amplitude": np.sqrt(lin)}[kind].astype(np.float32)
        if nodata_rows:
            values[:nodata_rows] = 0.0
        with rasterio.open(scene / pol_name.format(pol=pol), "w", **profile) as dst:
            dst.write(values, 1)
    with rasterio.open(scene / ia_name, "w", **profile) as dst:
        dst.write(ia, 1)
    if land:
        mask = np.zeros((height, width), dtype=np.uint8)
        mask[:, -4:] = 1
        with rasterio.open(scene / "land_mask.tif", "w", **{**profile, "dtype": "uint8", "nodata": None}) as dst:
            dst.write(mask, 1)
        truth["land"] = mask
    return truth


def write_polygons(path: str | Path, scenes: list[dict[str, Any]], epsg: int = 3413) -> Path:
    """Write ice polygons (one per quadrant of each scene, classes 0..3 shifted per scene) as GPKG or SHP."""
    import geopandas as gpd
    from shapely.geometry import box

    from eokit.schema import ICE_CLASSES

    rows = []
    pid = 0
    for k, truth in enumerate(scenes):
        t = truth["transform"]
        h, w = truth["sigma0"]["HH"].shape
        x0, y0, res = t.c, t.f, t.a
        quads = [(0, 0), (0, 1), (1, 0), (1, 1)]
        for q, (qy, qx) in enumerate(quads):
            r0, r1 = qy * h // 2, (qy + 1) * h // 2 if qy == 0 else h
            c0, c1 = qx * w // 2, (qx + 1) * w // 2 if qx == 0 else w
            geom = box(x0 + c0 * res, y0 - r1 * res, x0 + c1 * res, y0 - r0 * res)
            cls = (q + k) % len(ICE_CLASSES)
            rows.append(
                {
                    "scene": truth["path"].name,
                    "polygon_id": pid,
                    "ice_class": cls,
                    "ice_name": ICE_CLASSES[cls],
                    "geometry": geom,
                }
            )
            pid += 1
    gdf = gpd.GeoDataFrame(rows, crs=f"EPSG:{epsg}")
    path = Path(path)
    gdf.to_file(path, driver="GPKG" if path.suffix == ".gpkg" else "ESRI Shapefile")
    return path


# --- SNAP products: one multi-band GeoTIFF, BEAM-DIMAP (.dim + .data/ of ENVI files) ---------------------
#
# Written byte for byte the way SNAP's writers lay them out (snap-engine GeoTiffProductWriter/TiffIFD,
# DimapProductWriter/DimapHeaderWriter/EnviHeader): a big-endian classic TIFF, first IFD at offset 10, one
# uncompressed strip per band (PlanarConfiguration 2), every band in the widest data type (float32), the
# product name as ImageDescription and the DIMAP header XML in private tag 65000; virtual bands appear in the
# header (VIRTUAL_BAND/EXPRESSION) but have no samples. BEAM-DIMAP writes <name>.dim and <name>.data/ with one
# big-endian ENVI .hdr/.img pair per non-virtual band, tie_point_grids/ and vector_data/.

#: SNAP's default map CRS for Terrain-Correction (GeoTools WKT of "WGS84(DD)")
SNAP_WGS84_WKT = (
    'GEOGCS["WGS84(DD)", DATUM["WGS84", SPHEROID["WGS84", 6378137.0, 298.257223563]], PRIMEM["Greenwich", 0.0], '
    'UNIT["degree", 0.017453292519943295], AXIS["Geodetic longitude", EAST], AXIS["Geodetic latitude", NORTH]]'
)
_BEAM_METADATA = 65000
_GDAL_METADATA = 42112


def _tiff_entry(code: int, typ: int, values: Any, e: str) -> tuple[int, int, int, bytes]:
    import struct

    if typ == 2:  # ASCII, NUL terminated
        data = values.encode("utf-8") + b"\0"
        return code, typ, len(data), data
    if typ == 5:  # RATIONAL pairs
        return code, typ, len(values), b"".join(struct.pack(e + "II", *v) for v in values)
    fmt = {3: "H", 4: "I", 12: "d"}[typ]
    return code, typ, len(values), struct.pack(f"{e}{len(values)}{fmt}", *values)


def write_tiff_like_snap(
    path: str | Path,
    planes: list[np.ndarray],
    product_name: str,
    dimap_xml: str | None,
    transform: Any = None,
    epsg: int | None = None,
    gdal_metadata: str | None = None,
    byteorder: str = ">",
) -> Path:
    """Write float32 planes as SNAP's GeoTIFF writer does (big-endian, planar, tag 65000); return the path."""
    import struct

    e = byteorder
    h, w = planes[0].shape
    n = len(planes)
    tags: list[tuple[int, int, Any]] = [
        (256, 4, [w]),
        (257, 4, [h]),
        (258, 3, [32] * n),
        (259, 3, [1]),
        (262, 3, [1]),
        (270, 2, product_name),
        (273, 4, [0] * n),
        (277, 3, [n]),
        (278, 4, [h]),
        (279, 4, [w * h * 4] * n),
        (282, 5, [(1, 1)]),
        (283, 5, [(1, 1)]),
        (284, 3, [2]),
        (296, 3, [1]),
        (339, 3, [3] * n),
    ]
    if transform is not None:
        tags += [
            (33550, 12, [transform.a, -transform.e, 0.0]),
            (33922, 12, [0.0, 0.0, 0.0, transform.c, transform.f, 0.0]),
        ]
    if epsg is not None:
        geographic = epsg == 4326
        keys = [(1024, 0, 1, 2 if geographic else 1), (1025, 0, 1, 1), (2048 if geographic else 3072, 0, 1, epsg)]
        tags.append((34735, 3, [1, 1, 0, len(keys)] + [v for k in keys for v in k]))
    if gdal_metadata is not None:
        tags.append((_GDAL_METADATA, 2, gdal_metadata))
    if dimap_xml is not None:
        tags.append((_BEAM_METADATA, 2, dimap_xml))
    entries = [_tiff_entry(code, typ, vals, e) for code, typ, vals in sorted(tags, key=lambda t: t[0])]
    ifd_offset = 10  # SNAP's TiffHeader.FIRST_IFD_OFFSET
    values_at = ifd_offset + 2 + 12 * len(entries) + 4
    offsets: dict[int, int] = {}
    pos = values_at
    for code, _typ, _count, data in entries:
        if len(data) > 4:
            offsets[code] = pos
            pos += len(data) + (len(data) % 2)
    strips = [pos + k * w * h * 4 for k in range(n)]
    entries = [(c, t, cnt, struct.pack(f"{e}{n}I", *strips) if c == 273 else d) for c, t, cnt, d in entries]
    out = bytearray(b"MM" if e == ">" else b"II") + struct.pack(e + "HI", 42, ifd_offset) + b"\0\0"
    out += struct.pack(e + "H", len(entries))
    for code, typ, count, data in entries:
        field = struct.pack(e + "I", offsets[code]) if len(data) > 4 else data.ljust(4, b"\0")
        out += struct.pack(e + "HHI", code, typ, count) + field
    out += struct.pack(e + "I", 0)
    for _code, _typ, _count, data in entries:
        if len(data) > 4:
            out += data + b"\0" * (len(data) % 2)
    for plane in planes:
        out += np.asarray(plane, dtype=e + "f4").tobytes()
    path = Path(path)
    path.write_bytes(bytes(out))
    return path


def _snap_bands(
    names: list[str], kind: dict[str, str], sigma0: dict[str, np.ndarray], ia: np.ndarray, shape: tuple[int, int]
) -> dict[str, np.ndarray]:
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    values: dict[str, np.ndarray] = {}
    for name in names:
        low = name.lower()
        pol = "HH" if "_hh" in low else "HV" if "_hv" in low else None
        if pol and low.endswith("_db"):
            values[name] = (10 * np.log10(sigma0[pol])).astype(np.float32)
        elif pol:
            values[name] = sigma0[pol].astype(np.float32)
        elif low == "incidenceangleFromEllipsoid".lower():
            values[name] = ia
        elif low == "projectedlocalincidenceangle":
            values[name] = (ia + 3.0).astype(np.float32)  # deliberately different: must not be taken for IA
        elif low == "latitude":
            values[name] = (78.0 - 0.001 * yy).astype(np.float32)
        elif low == "longitude":
            values[name] = (-18.0 + 0.004 * xx).astype(np.float32)
        else:  # elevation and anything else: a constant field
            values[name] = np.full(shape, 12.5, dtype=np.float32)
        kind[name] = "dB" if pol and low.endswith("_db") else "intensity" if pol else "deg" if "angle" in low else "m"
    return values


def _dimap_grid_infos(tpgs: list[dict[str, Any]]) -> str:
    if not tpgs:
        return ""
    return (
        f"    <Tie_Point_Grids>\n        <NUM_TIE_POINT_GRIDS>{len(tpgs)}</NUM_TIE_POINT_GRIDS>\n"
        + "".join(
            f"        <Tie_Point_Grid_Info>\n            <TIE_POINT_GRID_INDEX>{i}</TIE_POINT_GRID_INDEX>\n"
            f"            <TIE_POINT_DESCRIPTION />\n            <PHYSICAL_UNIT>{g['unit']}</PHYSICAL_UNIT>\n"
            f"            <TIE_POINT_GRID_NAME>{g['name']}</TIE_POINT_GRID_NAME>\n"
            f"            <DATA_TYPE>float32</DATA_TYPE>\n"
            f"            <NCOLS>{g['values'].shape[1]}</NCOLS>\n            <NROWS>{g['values'].shape[0]}</NROWS>\n"
            f"            <OFFSET_X>{g['offset'][0]}</OFFSET_X>\n            <OFFSET_Y>{g['offset'][1]}</OFFSET_Y>\n"
            f"            <STEP_X>{g['step'][0]}</STEP_X>\n            <STEP_Y>{g['step'][1]}</STEP_Y>\n"
            f"            <CYCLIC>false</CYCLIC>\n        </Tie_Point_Grid_Info>\n"
            for i, g in enumerate(tpgs)
        )
        + "    </Tie_Point_Grids>\n"
    )


def _dimap_band_infos(bands: list[str], shape: tuple[int, int], units: dict[str, str], virtual: dict[str, str]) -> str:
    h, w = shape
    infos = ""
    for i, b in enumerate(bands):
        extra = (
            f"            <VIRTUAL_BAND>true</VIRTUAL_BAND>\n            <EXPRESSION>{virtual[b]}</EXPRESSION>\n"
            if b in virtual
            else ""
        )
        infos += (
            f"        <Spectral_Band_Info>\n            <BAND_INDEX>{i}</BAND_INDEX>\n"
            f"            <BAND_DESCRIPTION />\n            <BAND_NAME>{b}</BAND_NAME>\n"
            f"            <BAND_RASTER_WIDTH>{w}</BAND_RASTER_WIDTH>\n"
            f"            <BAND_RASTER_HEIGHT>{h}</BAND_RASTER_HEIGHT>\n            <DATA_TYPE>float32</DATA_TYPE>\n"
            f"            <PHYSICAL_UNIT>{units[b]}</PHYSICAL_UNIT>\n            <SOLAR_FLUX>0.0</SOLAR_FLUX>\n"
            f"            <BAND_WAVELEN>0.0</BAND_WAVELEN>\n            <BANDWIDTH>0.0</BANDWIDTH>\n"
            f"            <SCALING_FACTOR>1.0</SCALING_FACTOR>\n            <SCALING_OFFSET>0.0</SCALING_OFFSET>\n"
            f"            <LOG10_SCALED>false</LOG10_SCALED>\n"
            f"            <NO_DATA_VALUE_USED>true</NO_DATA_VALUE_USED>\n"
            f"            <NO_DATA_VALUE>0.0</NO_DATA_VALUE>\n{extra}        </Spectral_Band_Info>\n"
        )
    return infos


def dimap_header(
    name: str,
    bands: list[str],
    shape: tuple[int, int],
    units: dict[str, str],
    virtual: dict[str, str] | None = None,
    data_dir: str | None = None,
    crs_wkt: str | None = None,
    transform: Any = None,
    tie_point_grids: list[dict[str, Any]] | None = None,
) -> str:
    """Return a BEAM-DIMAP header (the .dim XML) in the element order of SNAP's DimapHeaderWriter."""
    h, w = shape
    virtual = virtual or {}
    data_dir = f"{name}.data" if data_dir is None else data_dir
    tpgs = tie_point_grids or []
    geo = ""
    if crs_wkt is not None and transform is not None:
        t = transform
        geo = (
            f"    <Coordinate_Reference_System>\n        <WKT>\n             {crs_wkt}\n        </WKT>\n"
            f"    </Coordinate_Reference_System>\n    <Geoposition>\n"
            f"        <IMAGE_TO_MODEL_TRANSFORM>{t.a},{t.d},{t.b},{t.e},{t.c},{t.f}</IMAGE_TO_MODEL_TRANSFORM>\n"
            f"    </Geoposition>\n"
        )
    elif tpgs:
        geo = (
            "    <Coordinate_Reference_System>\n        <Horizontal_CS>\n"
            "            <HORIZONTAL_CS_TYPE>GEOGRAPHIC</HORIZONTAL_CS_TYPE>\n        </Horizontal_CS>\n"
            "    </Coordinate_Reference_System>\n    <Geoposition>\n        <Geoposition_Points>\n"
            "            <TIE_POINT_GRID_NAME_LAT>latitude</TIE_POINT_GRID_NAME_LAT>\n"
            "            <TIE_POINT_GRID_NAME_LON>longitude</TIE_POINT_GRID_NAME_LON>\n"
            "        </Geoposition_Points>\n    </Geoposition>\n"
        )
    files = "".join(
        f'        <Data_File>\n            <DATA_FILE_PATH href="{data_dir}/{b}.hdr" />\n'
        f"            <BAND_INDEX>{i}</BAND_INDEX>\n        </Data_File>\n"
        for i, b in enumerate(bands)
        if b not in virtual
    )
    files += "".join(
        f'        <Tie_Point_Grid_File>\n            <TIE_POINT_GRID_FILE_PATH href="{data_dir}/tie_point_grids/'
        f'{g["name"]}.hdr" />\n            <TIE_POINT_GRID_INDEX>{i}</TIE_POINT_GRID_INDEX>\n'
        "        </Tie_Point_Grid_File>\n"
        for i, g in enumerate(tpgs)
    )
    grids = _dimap_grid_infos(tpgs)
    infos = _dimap_band_infos(bands, shape, units, virtual)
    return f"""<?xml version="1.0" encoding="ISO-8859-1"?>
<Dimap_Document name="{name}.dim">
    <Metadata_Id>
        <METADATA_FORMAT version="2.12.1">DIMAP</METADATA_FORMAT>
        <METADATA_PROFILE>BEAM-DATAMODEL-V1</METADATA_PROFILE>
    </Metadata_Id>
    <Dataset_Id>
        <DATASET_SERIES>BEAM-PRODUCT</DATASET_SERIES>
        <DATASET_NAME>{name}</DATASET_NAME>
    </Dataset_Id>
    <Dataset_Use>
        <DATASET_COMMENTS>Sentinel-1 EW Level-1 GRD Product</DATASET_COMMENTS>
    </Dataset_Use>
    <Production>
        <DATASET_PRODUCER_NAME />
        <PRODUCT_TYPE>GRD</PRODUCT_TYPE>
        <PRODUCT_SCENE_RASTER_START_TIME>16-JAN-2018 07:54:30.000000</PRODUCT_SCENE_RASTER_START_TIME>
        <PRODUCT_SCENE_RASTER_STOP_TIME>16-JAN-2018 07:55:00.000000</PRODUCT_SCENE_RASTER_STOP_TIME>
    </Production>
{geo}    <Raster_Dimensions>
        <NCOLS>{w}</NCOLS>
        <NROWS>{h}</NROWS>
        <NBANDS>{len(bands)}</NBANDS>
    </Raster_Dimensions>
    <Data_Access>
        <DATA_FILE_FORMAT>ENVI</DATA_FILE_FORMAT>
        <DATA_FILE_FORMAT_DESC>ENVI File Format</DATA_FILE_FORMAT_DESC>
        <DATA_FILE_ORGANISATION>BAND_SEPARATE</DATA_FILE_ORGANISATION>
{files}    </Data_Access>
{grids}    <Image_Interpretation>
{infos}    </Image_Interpretation>
    <Dataset_Sources>
        <MDElem name="metadata">
            <MDElem name="Abstracted_Metadata">
                <MDATTR name="PRODUCT" type="ascii">{name}</MDATTR>
                <MDATTR name="MISSION" type="ascii">SENTINEL-1A</MDATTR>
                <MDATTR name="ACQUISITION_MODE" type="ascii">EW</MDATTR>
                <MDATTR name="PASS" type="ascii">DESCENDING</MDATTR>
            </MDElem>
        </MDElem>
    </Dataset_Sources>
</Dimap_Document>"""


def write_snap_geotiff(
    folder: str | Path,
    name: str = "S1A_EW_GRDM_1SDH_20180116T075430_Cal_TC",
    bands: tuple[str, ...] = ("Sigma0_HH_db", "Sigma0_HV_db", "incidenceAngleFromEllipsoid"),
    height: int = 40,
    width: int = 48,
    seed: int = 0,
    virtual: dict[str, str] | None = None,
    header: bool = True,
    descriptions: bool = False,
    epsg: int = 3413,
    res: float = 40.0,
    origin: tuple[float, float] = (600_000.0, -1_100_000.0),
    suffix: str = ".tif",
    nodata_rows: int = 0,
) -> dict[str, Any]:
    """Write SNAP's GeoTIFF export of a terrain-corrected scene (one multi-band file); return path and truth.

    `header` writes SNAP's DIMAP XML into tag 65000 (as SNAP does); `descriptions` also writes GDAL band
    descriptions (tag 42112, what a file re-saved by GDAL carries). Virtual bands are listed in the header only.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    virtual = virtual or {}
    sigma0 = sigma0_field(height, width, seed)
    ia = np.broadcast_to(np.linspace(20.0, 45.0, width, dtype=np.float32), (height, width)).copy()
    units: dict[str, str] = {}
    values = _snap_bands(list(bands), units, sigma0, ia, (height, width))
    for v in values.values():
        v[:nodata_rows] = 0.0  # SNAP's no-data value (NO_DATA_VALUE_USED true, NO_DATA_VALUE 0.0)
    transform = from_origin(origin[0], origin[1], res, res)
    written = [b for b in bands if b not in virtual]
    xml = (
        dimap_header(
            name,
            list(bands),
            (height, width),
            units,
            virtual,
            data_dir="",
            transform=transform,
            crs_wkt=CRS.from_epsg(epsg).to_wkt(),
        )
        if header
        else None
    )
    gdal_md = None
    if descriptions:
        items = "".join(
            f'<Item name="DESCRIPTION" sample="{k}" role="description">{b}</Item>' for k, b in enumerate(written)
        )
        gdal_md = f"<GDALMetadata>{items}</GDALMetadata>"
    path = write_tiff_like_snap(
        folder / f"{name}{suffix}",
        [values[b] for b in written],
        name,
        xml,
        transform=transform,
        epsg=epsg,
        gdal_metadata=gdal_md,
    )
    return {
        "path": path,
        "sigma0": sigma0,
        "ia": ia,
        "transform": transform,
        "epsg": epsg,
        "values": values,
        "bands": written,
    }


def _envi_header(name: str, unit: str, shape: tuple[int, int], map_info: str | None, css: str | None) -> str:
    h, w = shape
    lines = [
        "ENVI",
        f"description = {{Sentinel Application Platform (SNAP) - Unit: {unit}}}",
        f"samples = {w}",
        f"lines = {h}",
        "bands = 1",
        "header offset = 0",
        "file type = ENVI Standard",
        "data type = 4",
        "interleave = bsq",
        "byte order = 1",
        f"band names = {{ {name} }}",
    ]
    if map_info:
        lines.append(f"map info = {{{map_info}}}")
    if css:
        lines.append(f"coordinate system string = {{{css}}}")
    lines += ["data gain values = {1.0}", "data offset values = {0.0}"]
    return "\n".join(lines) + "\n"


def _write_envi(
    folder: Path, name: str, values: np.ndarray, unit: str, map_info: str | None = None, css: str | None = None
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.hdr").write_text(_envi_header(name, unit, values.shape, map_info, css))
    (folder / f"{name}.img").write_bytes(np.asarray(values, dtype=">f4").tobytes())  # byte order = 1


def write_beam_dimap(
    folder: str | Path,
    name: str = "S1A_EW_GRDM_1SDH_20180116T075430_Cal_TC",
    bands: tuple[str, ...] = (
        "Sigma0_HH",
        "Sigma0_HV",
        "Sigma0_HH_db",
        "Sigma0_HV_db",
        "incidenceAngleFromEllipsoid",
        "projectedLocalIncidenceAngle",
    ),
    virtual: dict[str, str] | None = None,
    height: int = 40,
    width: int = 48,
    seed: int = 0,
    geocoded: bool = True,
    res: float = 0.0005,
    origin: tuple[float, float] = (-18.0, 78.0),
    ia_range: tuple[float, float] = (20.0, 45.0),
    nodata_rows: int = 0,
) -> dict[str, Any]:
    """Write a BEAM-DIMAP product (<name>.dim + <name>.data/) as SNAP writes it; return paths and truth.

    `geocoded=True` is a Terrain-Correction output on SNAP's default WGS84(DD) grid (ENVI `map info` and
    `coordinate system string` in every .hdr); `geocoded=False` is a calibrated slant/ground-range product
    whose geolocation and incidence angle are tie-point grids (latitude, longitude, incident_angle).
    By default the dB bands are virtual (SNAP's "Linear to/from dB"), so only Sigma0_HH/HV have files.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    virtual = (
        {"Sigma0_HH_db": "log10(Sigma0_HH) * 10", "Sigma0_HV_db": "log10(Sigma0_HV) * 10"}
        if virtual is None
        else virtual
    )
    virtual = {k: v for k, v in virtual.items() if k in bands}
    data = folder / f"{name}.data"
    sigma0 = sigma0_field(height, width, seed)
    ia = np.broadcast_to(np.linspace(ia_range[0], ia_range[1], width, dtype=np.float32), (height, width)).copy()
    units: dict[str, str] = {}
    values = _snap_bands(list(bands), units, sigma0, ia, (height, width))
    for v in values.values():
        v[:nodata_rows] = 0.0  # SNAP's no-data value (NO_DATA_VALUE_USED true, NO_DATA_VALUE 0.0)
    transform = from_origin(origin[0], origin[1], res, res) if geocoded else None
    map_info = css = None
    if geocoded:
        assert transform is not None
        # reference pixel (1.5, 1.5) = centre of the first pixel, as SNAP's ImageGeometry writes it
        map_info = (
            f"Geographic Lat/Lon,1.5,1.5,{origin[0] + res / 2},{origin[1] - res / 2},{res},{res},WGS84,units=Degrees"
        )
        css = SNAP_WGS84_WKT
    tpgs: list[dict[str, Any]] = []
    truth_ia = ia
    if not geocoded:
        step = (8, 8)
        gx = np.arange(0.5, width + step[0], step[0])  # tie points at pixel centres, covering the whole image
        gy = np.arange(0.5, height + step[1], step[1])
        gxx, gyy = np.meshgrid(gx, gy)
        slope = (ia_range[1] - ia_range[0]) / width
        grid_ia = (ia_range[0] + slope * gxx + 0.01 * gyy).astype(np.float32)  # linear: exact under bilinear
        tpgs = [
            {"name": "latitude", "unit": "deg", "values": (78.0 - 0.0004 * gyy).astype(np.float32)},
            {"name": "longitude", "unit": "deg", "values": (-18.0 + 0.0015 * gxx).astype(np.float32)},
            {"name": "incident_angle", "unit": "deg", "values": grid_ia},
            {"name": "slant_range_time", "unit": "ns", "values": (5.3e6 + 100 * gxx).astype(np.float32)},
        ]
        for g in tpgs:
            g.update(offset=(0.5, 0.5), step=step)
            _write_envi(data / "tie_point_grids", g["name"], g["values"], g["unit"])
        yy, xx = np.mgrid[0:height, 0:width] + 0.5
        truth_ia = (ia_range[0] + slope * xx + 0.01 * yy).astype(np.float32)
    for b in bands:
        if b not in virtual:
            _write_envi(data, b, values[b], units[b], map_info, css)
    (data / "vector_data").mkdir(parents=True, exist_ok=True)
    for vec in ("pins", "ground_control_points"):
        (data / "vector_data" / f"{vec}.csv").write_text(
            "org.esa.snap.Pin\tName:String\tX:Double\tY:Double\tLon:Double\tLat:Double\tLabel:String\n"
        )
    xml = dimap_header(
        name,
        list(bands),
        (height, width),
        units,
        virtual,
        crs_wkt=SNAP_WGS84_WKT if geocoded else None,
        transform=transform,
        tie_point_grids=tpgs,
    )
    dim = folder / f"{name}.dim"
    dim.write_text(xml, encoding="latin-1")
    return {
        "path": dim,
        "data": data,
        "sigma0": sigma0,
        "ia": truth_ia,
        "transform": transform,
        "values": values,
        "tie_point_grids": tpgs,
    }

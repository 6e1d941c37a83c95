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
    halves = [(slice(0, lines // 2), slice(0, pixels // 2)), (slice(0, lines // 2), slice(pixels // 2, None)),
              (slice(lines // 2, None), slice(0, pixels // 2)), (slice(lines // 2, None), slice(pixels // 2, None))]
    for (hh, hv), (sy, sx) in zip(regimes, halves):
        hh_db[sy, sx] = hh
        hv_db[sy, sx] = hv
    speckle_hh = rng.gamma(4.0, 1 / 4.0, size=(lines, pixels))
    speckle_hv = rng.gamma(4.0, 1 / 4.0, size=(lines, pixels))
    return {"HH": 10 ** (hh_db / 10) * speckle_hh, "HV": 10 ** (hv_db / 10) * speckle_hv}


def _manifest(name: str, pols: list[str], files: dict[str, list[tuple[str, str]]], start: datetime,
              stop: datetime, mission: str) -> str:
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


def _annotation(mission: str, pol: str, start: datetime, stop: datetime, lines: int, pixels: int,
                grid: dict[str, np.ndarray], spacing: float) -> str:
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
      <slantRangeTime>{grid['srt'][0]:.9e}</slantRangeTime>
      <pixelValue>Detected</pixelValue>
      <outputPixels>16 bit Unsigned Integer</outputPixels>
      <rangePixelSpacing>{spacing:.6e}</rangePixelSpacing>
      <azimuthPixelSpacing>{spacing:.6e}</azimuthPixelSpacing>
      <azimuthTimeInterval>{dt:.9e}</azimuthTimeInterval>
      <azimuthFrequency>{1 / dt:.9e}</azimuthFrequency>
      <numberOfSamples>{pixels}</numberOfSamples>
      <numberOfLines>{lines}</numberOfLines>
      <incidenceAngleMidSwath>{float(np.mean(grid['ia'])):.6e}</incidenceAngleMidSwath>
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


def _calibration(mission: str, pol: str, start: datetime, stop: datetime, lut_lines: np.ndarray,
                 lut_pixels: np.ndarray, sigma_lut: np.ndarray) -> str:
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


def _noise(mission: str, pol: str, start: datetime, stop: datetime, lut_lines: np.ndarray,
           lut_pixels: np.ndarray) -> str:
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


def write_safe(folder: str | Path, lines: int = 60, pixels: int = 80, polarisations: tuple[str, ...] = ("HH", "HV"),
               seed: int = 0, ia_range: tuple[float, float] = (19.0, 47.0), mission: str = "S1A",
               spacing: float = 40.0) -> dict[str, Any]:
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
    gcps = [GroundControlPoint(row=float(r), col=float(c), x=float(lon[j, i]), y=float(lat[j, i]), z=0.0)
            for j, r in enumerate(g_lines) for i, c in enumerate(g_pixels)]
    for n, pol in enumerate(polarisations, start=1):
        base = f"{mission.lower()}-ew-grd-{pol.lower()}-{product_id.lower().replace('_', '-')}-{n:03d}"
        lut_row = (500.0 + 150.0 * lut_pixels / (pixels - 1)) * (1.0 if pol == "HH" else 1.02)
        sigma_lut = np.tile(lut_row, (len(lut_lines), 1))
        lut_full = np.broadcast_to((500.0 + 150.0 * pix / (pixels - 1)) * (1.0 if pol == "HH" else 1.02), (lines, pixels))
        dn = np.clip(np.round(np.sqrt(sigma0[pol]) * lut_full), 1, 65535).astype(np.uint16)
        truth["dn"][pol] = dn
        truth["sigma0"][pol] = (dn.astype(np.float64) / lut_full) ** 2
        with warnings.catch_warnings():  # georeferenced by the GCPs set right after opening
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            dst = rasterio.open(safe / "measurement" / f"{base}.tiff", "w", driver="GTiff", width=pixels,
                                height=lines, count=1, dtype="uint16")
        with dst:
            dst.write(dn, 1)
            dst.gcps = (gcps, CRS.from_epsg(4326))
        (safe / "annotation" / f"{base}.xml").write_text(
            _annotation(mission, pol, start, stop, lines, pixels, grid, spacing))
        (safe / "annotation" / "calibration" / f"calibration-{base}.xml").write_text(
            _calibration(mission, pol, start, stop, lut_lines, lut_pixels, sigma_lut))
        (safe / "annotation" / "calibration" / f"noise-{base}.xml").write_text(
            _noise(mission, pol, start, stop, lut_lines, lut_pixels))
        files[pol] = [("s1Level1ProductSchema", f"annotation/{base}.xml"),
                      ("s1Level1CalibrationSchema", f"annotation/calibration/calibration-{base}.xml"),
                      ("s1Level1NoiseSchema", f"annotation/calibration/noise-{base}.xml"),
                      ("s1Level1MeasurementSchema", f"measurement/{base}.tiff")]
    (safe / "manifest.safe").write_text(_manifest(safe.name, list(polarisations), files, start, stop, mission))
    return truth


# --- SNAP-style GeoTIFF scenes --------------------------------------------------------------------------

_FILENAMES = {
    "db": ("Sigma0_{pol}_db.tif", "incidence_angle.tif"),
    "linear": ("Sigma0_{pol}.tif", "incidenceAngleFromEllipsoid.tif"),
    "amplitude": ("Amplitude_{pol}.tif", "Incidence_Angle.tif"),
}


def write_geotiff_scene(folder: str | Path, name: str = "scene_a", height: int = 64, width: int = 64,
                        polarisations: tuple[str, ...] = ("HH", "HV"), kind: str = "db", seed: int = 0,
                        origin: tuple[float, float] = (600_000.0, -1_100_000.0), res: float = 40.0,
                        epsg: int = 3413, land: bool = False, nodata_rows: int = 0) -> dict[str, Any]:
    """Write one scene folder of single-band float32 GeoTIFFs as SNAP exports them; return path and truth."""
    scene = Path(folder) / name
    scene.mkdir(parents=True, exist_ok=True)
    sigma0 = sigma0_field(height, width, seed)
    ia = np.broadcast_to(np.linspace(20.0, 45.0, width, dtype=np.float32), (height, width)).copy()
    transform = from_origin(origin[0], origin[1], res, res)
    profile = dict(driver="GTiff", width=width, height=height, count=1, dtype="float32",
                   crs=CRS.from_epsg(epsg), transform=transform, nodata=0.0)
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
            rows.append({"scene": truth["path"].name, "polygon_id": pid, "ice_class": cls,
                         "ice_name": ICE_CLASSES[cls], "geometry": geom})
            pid += 1
    gdf = gpd.GeoDataFrame(rows, crs=f"EPSG:{epsg}")
    path = Path(path)
    gdf.to_file(path, driver="GPKG" if path.suffix == ".gpkg" else "ESRI Shapefile")
    return path

"""What a user pastes into a bug report: `eokit info` and `eokit.show_versions()` (as `xarray.show_versions()`).

`info()` returns the facts as a JSON-ready dict; `show_versions()` prints them as an aligned report: eokit itself,
the system (Python, OS, CPUs, memory), the stack's versions (``importlib.metadata``, "not installed" where a
distribution is missing), the GDAL/PROJ/GEOS builds and the GDAL drivers the kit needs, TensorFlow (devices,
CUDA and oneDNN builds), the environment variables that change the kit's behaviour, and the data cache folder
(``eokit.paths.data_home()``) with the published datasets (``eokit.registry``) found in it.

Nothing here raises for a broken installation: a library that fails to import is reported with its error. This
module never imports TensorFlow: the TensorFlow facts come from a child Python process (so ``eokit info`` loads
no TensorFlow and prints none of its start-up logs), or from the TensorFlow module already loaded in this process
when there is one (``sys.modules``; a notebook that has trained a model reports its own devices).
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path
from typing import Any, TextIO

import eokit
from eokit.paths import ROOT, SAMPLE_DIR, data_home
from eokit.registry import REGISTRY

NOT_INSTALLED = "not installed"

#: The stack reported, by distribution name ("xarray-sentinel" as pip spells it).
PACKAGES: tuple[str, ...] = tuple(
    """eokit numpy pandas xarray rioxarray rasterio zarr dask distributed geopandas pyogrio shapely pyproj
    scikit-learn tensorflow keras holoviews hvplot bokeh matplotlib intake papermill jupyterlab ipywidgets tqdm
    pooch tifffile xarray-sentinel numba""".split()
)
#: Other distributions that install the same package: the first one installed is reported, named.
ALTERNATIVES: dict[str, tuple[str, ...]] = {
    "tensorflow": ("tensorflow-cpu", "tensorflow-gpu", "tensorflow-intel", "tensorflow-macos", "tf-nightly"),
}
#: GDAL drivers the kit reads or writes with: Sentinel-2 JPEG 2000, GeoTIFF and COG, GeoPackage, shapefiles
#: (METNO charts), Zarr and netCDF (UiT scenes).
DRIVERS: tuple[str, ...] = ("JP2OpenJPEG", "GTiff", "COG", "GPKG", "ESRI Shapefile", "Zarr", "netCDF")
#: The vector ones among them, which geopandas reads and writes through pyogrio (its own GDAL build).
VECTOR_DRIVERS: tuple[str, ...] = ("GPKG", "ESRI Shapefile")
#: Environment variables that change what the kit or its libraries do.
ENV_VARS: tuple[str, ...] = tuple(
    """EOKIT_DATA TF_CPP_MIN_LOG_LEVEL TF_ENABLE_ONEDNN_OPTS CUDA_VISIBLE_DEVICES TF_CONFIG OMP_NUM_THREADS GDAL_DATA
    PROJ_DATA PROJ_LIB MPLBACKEND""".split()
)
#: A cached dataset's size is summed over at most this many files (TimeSen2Crop alone holds 1.2 million).
MAX_FILES = 100_000
#: Seconds the child process that reports TensorFlow may take (importing TensorFlow takes several).
TF_TIMEOUT = 180

_TF_PROBE = """\
import json
import tensorflow as tf
import keras
from tensorflow.python.util import _pywrap_util_port
from eokit.info import _tf_facts
print()
print(json.dumps(_tf_facts(tf)))
"""


def _error(exc: BaseException) -> dict[str, str]:
    return {"error": f"{type(exc).__name__}: {exc}"}


def package_version(name: str) -> str:
    """Return the installed version of distribution `name` (or of an ALTERNATIVES one, named), or "not installed"."""
    for i, dist in enumerate((name, *ALTERNATIVES.get(name, ()))):
        try:
            version = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
        return version if i == 0 else f"{version} ({dist})"
    return NOT_INSTALLED


def _git_commit() -> str | None:
    if not (ROOT / ".git").exists():
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def _memory() -> tuple[int | None, int | None]:
    """Return (total, available) bytes of memory; None where this platform does not say."""
    try:  # Linux: what the kernel estimates can be allocated without swapping (what psutil reports too)
        fields = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines())
        return int(fields["MemTotal"].split()[0]) * 1024, int(fields["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        pass
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None, None
    return int(total), None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _system() -> dict[str, Any]:
    total, avail = _memory()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "memory_total_bytes": total,
        "memory_available_bytes": avail,
    }


def _geo() -> dict[str, Any]:
    """Return the GDAL, PROJ and GEOS builds of rasterio, pyogrio, pyproj, shapely and the drivers present."""
    out: dict[str, Any] = {}
    try:
        import rasterio

        with rasterio.Env() as env:
            have = env.drivers()
        out["rasterio"] = {
            "gdal": rasterio.__gdal_version__,
            "proj": getattr(rasterio, "__proj_version__", None),
            "geos": getattr(rasterio, "__geos_version__", None),
            "drivers": {d: d in have for d in DRIVERS},
        }
    except Exception as exc:  # a broken GDAL is what the report is for: say so, do not stop
        out["rasterio"] = _error(exc)
    try:
        import pyogrio

        vector = pyogrio.list_drivers()
        out["pyogrio"] = {"gdal": pyogrio.__gdal_version_string__, "drivers": {d: d in vector for d in VECTOR_DRIVERS}}
    except Exception as exc:
        out["pyogrio"] = _error(exc)
    try:
        import pyproj

        out["pyproj"] = {"proj": pyproj.proj_version_str, "data_dir": pyproj.datadir.get_data_dir()}
    except Exception as exc:
        out["pyproj"] = _error(exc)
    try:
        import shapely

        out["shapely"] = {"geos": shapely.geos_version_string}
    except Exception as exc:
        out["shapely"] = _error(exc)
    return out


def _tf_facts(tf: Any) -> dict[str, Any]:
    """Return the version, build (CUDA, oneDNN) and physical devices of the TensorFlow module `tf`."""
    build = dict(tf.sysconfig.get_build_info())
    port = sys.modules.get("tensorflow.python.util._pywrap_util_port")
    devices = []
    for dev in tf.config.list_physical_devices():
        entry = {"name": dev.name, "type": dev.device_type}
        if dev.device_type == "GPU":
            details = tf.config.experimental.get_device_details(dev)
            entry["model"] = details.get("device_name")
            cc = details.get("compute_capability")
            entry["compute_capability"] = ".".join(map(str, cc)) if cc else None
        devices.append(entry)
    keras = sys.modules.get("keras")
    return {
        "version": tf.__version__,
        "keras": getattr(keras, "__version__", None),
        "keras_backend": keras.config.backend() if keras is not None else None,
        "cuda_build": bool(build.get("is_cuda_build")),
        "rocm_build": bool(build.get("is_rocm_build")),
        "cuda_version": build.get("cuda_version"),
        "cudnn_version": build.get("cudnn_version"),
        "onednn_build": bool(port.IsMklEnabled()) if port is not None else None,
        "devices": devices,
        "gpus": sum(d["type"] == "GPU" for d in devices),
    }


def _tf_subprocess(timeout: float = TF_TIMEOUT) -> dict[str, Any]:
    """Return the TensorFlow facts as a child Python process sees them, or {"error": ...}."""
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    package_parent = str(Path(eokit.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    try:
        done = subprocess.run(
            [sys.executable, "-c", _TF_PROBE], capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        return {"error": f"importing TensorFlow took more than {timeout:g} s"}
    except OSError as exc:
        return _error(exc)
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    if done.returncode != 0 or not lines:
        tail = [line for line in done.stderr.splitlines() if line.strip()][-1:] or [f"exit status {done.returncode}"]
        return {"error": f"importing TensorFlow failed: {tail[0]}"}
    try:
        facts: dict[str, Any] = json.loads(lines[-1])
    except json.JSONDecodeError:
        return {"error": f"unexpected output of the TensorFlow probe: {lines[-1][:200]}"}
    return facts


def _tensorflow(enabled: bool) -> dict[str, Any]:
    """Return the TensorFlow facts, marking where they come from; {"skipped": True} when not `enabled`."""
    if not enabled:
        return {"skipped": True}
    loaded = sys.modules.get("tensorflow")
    if loaded is not None:
        try:
            return {"source": "this process", **_tf_facts(loaded)}
        except Exception as exc:
            return {"source": "this process", **_error(exc)}
    if find_spec("tensorflow") is None:
        return {"installed": False}
    return {"source": "subprocess", **_tf_subprocess()}


def _tree_size(folder: Path, max_files: int) -> tuple[int, int, bool]:
    """Return (bytes, files, complete) of the files under `folder`, summing at most `max_files` files."""
    total = files = 0
    stack = [folder]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(Path(entry.path))
                    elif entry.is_file(follow_symlinks=False):
                        if files >= max_files:
                            return total, files, False
                        total += entry.stat(follow_symlinks=False).st_size
                        files += 1
        except OSError:
            continue
    return total, files, True


def _dataset_status(home: Path, name: str) -> dict[str, Any]:
    """Return what the cache holds of dataset `name`: its folder or archives, their size, whether it looks usable."""
    spec = REGISTRY[name]
    folder = home / name
    archives = [str(home / a) for a in spec.files if (home / a).is_file()]  # hand copies beside the folders
    if not folder.is_dir() and not archives:
        return {"status": "absent", "path": None, "size_bytes": 0, "files": 0, "size_complete": True}
    size, files, complete = _tree_size(folder, MAX_FILES) if folder.is_dir() else (0, 0, True)
    size += sum(Path(a).stat().st_size for a in archives)
    files += len(archives)
    expected = folder.is_dir() and (
        any((folder / a).is_file() for a in spec.files)
        or any(next(iter(folder.glob(pat)), None) is not None for pat in spec.expect)
    )
    if expected or archives:
        status = "present"
    else:
        status = "empty" if files == 0 else "unrecognised"
    return {
        "status": status,
        "path": str(folder) if folder.is_dir() else archives[0],
        "size_bytes": size,
        "files": files,
        "size_complete": complete,
    }


def _data() -> dict[str, Any]:
    """Return the cache folder (and what chose it), the registry datasets found in it and its other entries."""
    value = os.environ.get("EOKIT_DATA")
    out: dict[str, Any] = {
        "folder": None,
        "set_by": "EOKIT_DATA" if value is not None else "default",
        "exists": False,
        "problem": None,
        "sample_folder": str(SAMPLE_DIR),
        "sample_present": SAMPLE_DIR.is_dir(),
        "datasets": {},
        "other": [],
    }
    if value is not None and not value.strip():
        out["problem"] = "EOKIT_DATA is set but empty; expected the path of a folder (or unset it)"
        return out
    home = data_home()
    out["folder"] = str(home)
    if home.exists() and not home.is_dir():
        origin = f"EOKIT_DATA={value}: " if value is not None else ""
        out["problem"] = f"{origin}the download cache {home} is a file; expected a folder"
        return out
    out["exists"] = home.is_dir()
    out["datasets"] = {name: _dataset_status(home, name) for name in REGISTRY}
    if out["exists"]:
        known = set(REGISTRY) | {a for spec in REGISTRY.values() for a in spec.files}
        out["other"] = sorted(p.name for p in home.iterdir() if p.name not in known)
    return out


def info(tensorflow: bool = True) -> dict[str, Any]:
    """Return the bug-report facts as a JSON-ready dict (sections eokit, system, packages, geo, tensorflow, ...).

    ``tensorflow=False`` skips the TensorFlow section, which takes seconds when TensorFlow is not yet loaded.
    """
    if not isinstance(tensorflow, bool):
        raise ValueError(f"tensorflow={tensorflow!r}: expected True or False")
    return {
        "eokit": {"version": eokit.__version__, "path": str(Path(eokit.__file__).parent), "commit": _git_commit()},
        "system": _system(),
        "packages": {name: package_version(name) for name in PACKAGES},
        "geo": _geo(),
        "tensorflow": _tensorflow(tensorflow),
        "environment": {k: os.environ.get(k) for k in ENV_VARS},
        "data": _data(),
    }


def _bytes(n: int | None) -> str:
    if n is None:
        return "unknown"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _yes(v: Any) -> str:
    return "unknown" if v is None else ("yes" if v else "no")


def _geo_rows(geo: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for lib, keys in (("rasterio", ("gdal", "proj", "geos")), ("pyogrio", ("gdal",)), ("pyproj", ("proj",))):
        facts = geo.get(lib, {})
        if "error" in facts:
            rows.append((lib, facts["error"]))
            continue
        rows += [(f"{k.upper()} ({lib})", str(facts.get(k))) for k in keys]
    shapely = geo.get("shapely", {})
    rows.append(("GEOS (shapely)", shapely.get("error") or str(shapely.get("geos"))))
    return rows


def _driver_rows(geo: dict[str, Any]) -> list[tuple[str, str]]:
    ras = geo.get("rasterio", {}).get("drivers", {})
    vec = geo.get("pyogrio", {}).get("drivers", {})
    return [
        (d, (f"rasterio {_yes(ras.get(d)):4s}" + (f" pyogrio {_yes(vec.get(d))}" if d in vec else "")).rstrip())
        for d in DRIVERS
    ]


def _tf_rows(tf: dict[str, Any]) -> list[tuple[str, str]]:
    if tf.get("skipped"):
        return [("tensorflow", "skipped (tensorflow=False / --no-tensorflow)")]
    if tf.get("installed") is False:
        return [("tensorflow", NOT_INSTALLED)]
    if "error" in tf:
        return [("tensorflow", tf["error"])]
    cuda = f"CUDA {tf.get('cuda_version')}, cuDNN {tf.get('cudnn_version')}" if tf.get("cuda_build") else "no CUDA"
    devices = ", ".join(d["name"].replace("/physical_device:", "") for d in tf.get("devices", [])) or "none"
    gpus = [d for d in tf.get("devices", []) if d["type"] == "GPU"]
    return [
        ("version", f"{tf.get('version')} (read in {tf.get('source')})"),
        ("keras", f"{tf.get('keras')} (backend {tf.get('keras_backend')})"),
        ("build", cuda + (", ROCm" if tf.get("rocm_build") else "")),
        ("oneDNN build", _yes(tf.get("onednn_build"))),
        ("devices", devices),
        ("GPUs", ", ".join(f"{g.get('model')} (compute {g.get('compute_capability')})" for g in gpus) or "none"),
    ]


def _data_rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    folder = data["folder"] or "-"
    origin = "from EOKIT_DATA" if data["set_by"] == "EOKIT_DATA" else "default; set EOKIT_DATA to change it"
    rows = [("folder", f"{folder} ({origin})")]
    if data["problem"]:
        return rows + [("problem", data["problem"])]
    rows.append(("exists", _yes(data["exists"])))
    rows.append(("bundled sample", f"{data['sample_folder']} ({'present' if data['sample_present'] else 'absent'})"))
    for name, ds in data["datasets"].items():
        if ds["status"] == "absent":
            rows.append((name, "absent"))
            continue
        more = "" if ds["size_complete"] else "+ (first files only)"
        rows.append((name, f"{ds['status']}, {_bytes(ds['size_bytes'])}{more}, {ds['files']} files: {ds['path']}"))
    if data["other"]:
        rows.append(("other entries", ", ".join(data["other"][:20]) + (" ..." if len(data["other"]) > 20 else "")))
    return rows


def _sections(report: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Return the report as (section title, [(name, value), ...]) in print order."""
    sys_ = report["system"]
    cpus = f"{sys_['cpu_count']} ({sys_['cpu_usable']} usable by this process), {sys_['cpu']}"
    mem = f"{_bytes(sys_['memory_total_bytes'])} total, {_bytes(sys_['memory_available_bytes'])} available"
    eo = report["eokit"]
    return [
        ("eokit", [("version", eo["version"]), ("path", eo["path"]), ("commit", eo["commit"] or "unknown")]),
        (
            "System",
            [
                ("python", f"{sys_['python']} ({sys_['implementation']}) {sys_['executable']}"),
                ("platform", sys_["platform"]),
                ("machine", sys_["machine"]),
                ("CPUs", cpus),
                ("memory", mem),
            ],
        ),
        ("Packages", list(report["packages"].items())),
        ("GDAL, PROJ, GEOS", _geo_rows(report["geo"])),
        ("GDAL drivers", _driver_rows(report["geo"])),
        ("TensorFlow", _tf_rows(report["tensorflow"])),
        ("Environment", [(k, "(unset)" if v is None else v) for k, v in report["environment"].items()]),
        ("Data cache", _data_rows(report["data"])),
    ]


def format_report(report: dict[str, Any]) -> str:
    """Return the text of an `info()` dict: one titled section after another, names and values aligned."""
    sections = _sections(report)
    width = max(len(name) for _, rows in sections for name, _ in rows) + 2
    parts = []
    for title, rows in sections:
        lines = [title, "-" * len(title)] + [f"{name:<{width}}{value}" for name, value in rows]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def show_versions(file: TextIO | None = None, tensorflow: bool = True) -> None:
    """Print the bug-report facts to `file` (default: sys.stdout); return None. Paste it into the issue."""
    (file if file is not None else sys.stdout).write(format_report(info(tensorflow=tensorflow)))

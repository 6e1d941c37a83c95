"""`eokit info` / `eokit.show_versions()`: the bug-report facts, their text report, the cache listing, the CLI."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import eokit
from badinput import refuses
from eokit import info as einfo
from eokit.cli import main
from eokit.registry import REGISTRY

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("eokit", "system", "packages", "geo", "tensorflow", "environment", "data")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Return an empty data cache folder that EOKIT_DATA points to."""
    folder = tmp_path / "cache"
    folder.mkdir()
    monkeypatch.setenv("EOKIT_DATA", str(folder))
    return folder


def test_info_keys_and_types(home: Path) -> None:
    """info() holds every section, JSON-ready, with the running interpreter's and stack's real values."""
    report = einfo.info(tensorflow=False)
    assert tuple(report) == SECTIONS
    assert json.loads(json.dumps(report)) == report
    system = report["system"]
    assert system["python"] == ".".join(map(str, sys.version_info[:3])) and system["executable"] == sys.executable
    assert isinstance(system["cpu_count"], int) and 1 <= system["cpu_usable"] <= system["cpu_count"]
    assert isinstance(system["memory_total_bytes"], int) and system["memory_total_bytes"] > 0
    assert report["eokit"]["version"] == eokit.__version__
    packages = report["packages"]
    assert set(packages) == set(einfo.PACKAGES) and all(isinstance(v, str) for v in packages.values())
    assert packages["numpy"] == metadata.version("numpy") and packages["xarray"] == metadata.version("xarray")
    import rasterio

    geo = report["geo"]["rasterio"]
    assert geo["gdal"] == rasterio.__gdal_version__ and set(geo["drivers"]) == set(einfo.DRIVERS)
    assert geo["drivers"]["GTiff"] is True and all(isinstance(v, bool) for v in geo["drivers"].values())
    assert report["tensorflow"] == {"skipped": True}
    assert report["environment"]["EOKIT_DATA"] == str(home)
    assert report["data"]["folder"] == str(home) and report["data"]["set_by"] == "EOKIT_DATA"


def test_show_versions_names_the_sections_and_packages(home: Path) -> None:
    """The text report has a titled section each and aligned 'name  value' rows of the real versions."""
    out = io.StringIO()
    assert einfo.show_versions(file=out, tensorflow=False) is None
    text = out.getvalue()
    for title in ("System", "Packages", "GDAL, PROJ, GEOS", "GDAL drivers", "TensorFlow", "Environment", "Data cache"):
        assert f"\n{title}\n{'-' * len(title)}\n" in text
    lines = text.splitlines()
    row = next(line for line in lines if line.startswith("numpy "))
    assert row.split() == ["numpy", metadata.version("numpy")]
    starts = {line.index(line.split()[1]) for line in lines if line.startswith(("numpy ", "xarray ", "zarr "))}
    assert len(starts) == 1  # the values line up
    assert "skipped" in text and str(home) in text


def test_show_versions_writes_to_stdout_by_default(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Without `file`, the report goes to the sys.stdout of the moment (a notebook's or pytest's capture)."""
    eokit.show_versions(tensorflow=False)
    assert "Packages\n--------" in capsys.readouterr().out
    assert eokit.show_versions is einfo.show_versions
    with pytest.raises(AttributeError, match="no_such_name"):
        eokit.no_such_name  # noqa: B018


def test_a_missing_package_is_reported_not_installed(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A distribution importlib.metadata does not know is "not installed"; an alternative dist is named."""
    real = metadata.version
    missing = {"xarray", "tensorflow", "tensorflow-gpu"}

    def version(name: str) -> str:
        if name in missing:
            raise metadata.PackageNotFoundError(name)
        return "9.9.9" if name == "tensorflow-cpu" else real(name)

    monkeypatch.setattr(einfo.metadata, "version", version)
    packages = einfo.info(tensorflow=False)["packages"]
    assert packages["xarray"] == "not installed" and packages["numpy"] == real("numpy")
    assert packages["tensorflow"] == "9.9.9 (tensorflow-cpu)"
    missing |= {"tensorflow-cpu", "tensorflow-intel", "tensorflow-macos", "tf-nightly"}
    assert einfo.package_version("tensorflow") == "not installed"
    out = io.StringIO()
    einfo.show_versions(file=out, tensorflow=False)
    assert next(line for line in out.getvalue().splitlines() if line.startswith("xarray ")).split(None, 1) == [
        "xarray",
        "not installed",
    ]


def _write(path: Path, data: bytes) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return len(data)


def test_cache_listing_reports_each_dataset(home: Path) -> None:
    """Each registry dataset is absent, present (expected files or its archive), empty or unrecognised."""
    size = _write(home / "timesen2crop" / "TimeSen2Crop" / "T33UVP" / "dates.csv", b"acquisition_date\n20180101\n")
    size += _write(home / "timesen2crop" / "TimeSen2Crop" / "T33UVP" / "0" / "1.csv", b"B2,B3\n1,2\n")
    lucas = next(iter(REGISTRY["lucas_2018"].files))
    archive = _write(home / lucas, b"PK\x05\x06" + bytes(18))  # hand copy of the archive beside the folders
    (home / "uit_icetypes").mkdir()
    _write(home / "dlr_belgica_lda" / "readme.txt", b"notes")
    (home / "my_store.zarr").mkdir()
    data = einfo.info(tensorflow=False)["data"]
    assert data["exists"] is True and data["problem"] is None and set(data["datasets"]) == set(REGISTRY)
    ts = data["datasets"]["timesen2crop"]
    assert ts == {
        "status": "present",
        "path": str(home / "timesen2crop"),
        "size_bytes": size,
        "files": 2,
        "size_complete": True,
    }
    assert data["datasets"]["lucas_2018"]["status"] == "present"
    assert data["datasets"]["lucas_2018"]["path"] == str(home / lucas)
    assert data["datasets"]["lucas_2018"]["size_bytes"] == archive
    assert data["datasets"]["uit_icetypes"]["status"] == "empty"
    assert data["datasets"]["dlr_belgica_lda"]["status"] == "unrecognised"
    assert data["datasets"]["metno_v1"] == {
        "status": "absent",
        "path": None,
        "size_bytes": 0,
        "files": 0,
        "size_complete": True,
    }
    assert data["other"] == ["my_store.zarr"]
    out = io.StringIO()
    einfo.show_versions(file=out, tensorflow=False)
    text = out.getvalue()
    assert f"present, {size} B, 2 files: {home / 'timesen2crop'}" in text and "my_store.zarr" in text


def test_cache_size_is_capped_on_huge_trees(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_FILES files the size is a lower bound, and says so."""
    for i in range(5):
        _write(home / "metno_v1" / f"seaice_s1_{i}.shp", b"x" * 10)
    monkeypatch.setattr(einfo, "MAX_FILES", 3)
    ds = einfo.info(tensorflow=False)["data"]["datasets"]["metno_v1"]
    assert ds["status"] == "present" and ds["files"] == 3 and ds["size_bytes"] == 30 and ds["size_complete"] is False
    out = io.StringIO()
    einfo.show_versions(file=out, tensorflow=False)
    assert "30 B+ (first files only)" in out.getvalue()


def test_the_default_cache_folder_is_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without EOKIT_DATA the cache is ~/.cache/eokit; a missing folder is reported, not created."""
    monkeypatch.delenv("EOKIT_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    data = einfo.info(tensorflow=False)["data"]
    assert data["folder"] == str(tmp_path / ".cache" / "eokit") and data["set_by"] == "default"
    assert data["exists"] is False and data["datasets"]["timesen2crop"]["status"] == "absent"
    assert not (tmp_path / ".cache").exists()


@pytest.mark.parametrize("value", ["", "file"])
def test_a_bad_cache_setting_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """An empty EOKIT_DATA or one naming a file is a problem the report names (the kit itself refuses it)."""
    if value == "file":
        value = str(tmp_path / "a_file")
        Path(value).write_text("x")
    monkeypatch.setenv("EOKIT_DATA", value)
    data = einfo.info(tensorflow=False)["data"]
    assert data["datasets"] == {} and "EOKIT_DATA" in data["problem"] and "folder" in data["problem"]
    out = io.StringIO()
    einfo.show_versions(file=out, tensorflow=False)
    assert "problem" in out.getvalue() and data["problem"] in out.getvalue()


@pytest.mark.bad_input
def test_tensorflow_must_be_a_bool() -> None:
    """`tensorflow="no"` would be truthy: refused, naming the argument."""
    with refuses(ValueError, "tensorflow", "True or False"):
        einfo.info(tensorflow="no")  # type: ignore[arg-type]


def test_a_failing_tensorflow_probe_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child process that fails or prints no JSON gives {"error": ...} with its last stderr line."""
    monkeypatch.setattr(einfo, "_TF_PROBE", "import sys; sys.exit('no libcudart.so.12 here')")
    assert einfo._tf_subprocess() == {"error": "importing TensorFlow failed: no libcudart.so.12 here"}
    monkeypatch.setattr(einfo, "_TF_PROBE", "print('hello')")
    assert "unexpected output" in einfo._tf_subprocess()["error"]
    monkeypatch.setattr(einfo, "_TF_PROBE", "import time; time.sleep(30)")
    assert "more than 0.5 s" in einfo._tf_subprocess(timeout=0.5)["error"]


@pytest.mark.slow
def test_tensorflow_devices_from_a_child_process_and_this_one() -> None:
    """The child process reports TensorFlow's version, build and devices; once loaded here, this process does."""
    child = einfo._tf_subprocess()
    assert "error" not in child, child
    assert child["version"] == einfo.package_version("tensorflow").split()[0]
    assert any(d["type"] == "CPU" for d in child["devices"]) and child["gpus"] == sum(
        d["type"] == "GPU" for d in child["devices"]
    )
    assert isinstance(child["cuda_build"], bool) and child["keras"] == metadata.version("keras")
    assert isinstance(child["onednn_build"], bool)
    import tensorflow  # noqa: F401  (now loaded: the report reads this process's TensorFlow)

    here = einfo.info()["tensorflow"]
    assert here["source"] == "this process" and here["devices"] == child["devices"]
    assert here["version"] == child["version"] and here["cuda_build"] == child["cuda_build"]


def test_cli_info_json_parses(home: Path) -> None:
    """`python -m eokit info --json --no-tensorflow` prints one JSON document, exit status 0, no TensorFlow."""
    env = {**os.environ, "EOKIT_DATA": str(home)}
    done = subprocess.run(
        [sys.executable, "-m", "eokit", "info", "--json", "--no-tensorflow"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert tuple(report) == SECTIONS and report["tensorflow"] == {"skipped": True}
    assert report["data"]["folder"] == str(home) and report["packages"]["numpy"] == metadata.version("numpy")


def test_cli_info_text_exit_status(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`eokit info --no-tensorflow` prints the text report and returns 0."""
    assert main(["info", "--no-tensorflow"]) == 0
    out = capsys.readouterr().out
    assert "GDAL drivers\n------------" in out and str(home) in out

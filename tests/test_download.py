"""eokit.download: verified fetch from a local HTTP server, cache reuse, manual copies, corrupt and offline cases."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import shutil
import socket
import threading
from pathlib import Path

import pytest

from badinput import refuses
from eokit import download
from generators import timesen2crop as gen


@pytest.fixture()
def server(tmp_path):
    """Serve tmp_path/www on 127.0.0.1 in a thread; yield (base URL, folder, request log)."""
    www = tmp_path / "www"
    www.mkdir()
    log: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # quiet, but record each request
            log.append(self.path)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(www)))
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", www, log
    httpd.shutdown()
    httpd.server_close()


def _md5(p: Path) -> str:
    return "md5:" + hashlib.md5(p.read_bytes()).hexdigest()


@pytest.fixture()
def published(tmp_path, server, monkeypatch):
    """A generated TimeSen2Crop.zip on the local server, the registry pointing at it, EOKIT_DATA in tmp."""
    url, www, log = server
    archive = gen.make_zip(
        tmp_path / "gen", www / "TimeSen2Crop.zip", tiles={"33UVP": 4}, n_classes=2, samples_per_class=2
    )
    spec = dataclasses.replace(
        download.REGISTRY["timesen2crop"], files={"TimeSen2Crop.zip": (f"{url}/TimeSen2Crop.zip", _md5(archive))}
    )
    monkeypatch.setitem(download.REGISTRY, "timesen2crop", spec)
    home = tmp_path / "cache"
    monkeypatch.setenv("EOKIT_DATA", str(home))
    return archive, home, log


def test_fetch_downloads_verifies_unpacks_once(published):
    archive, home, log = published
    out = download.fetch("timesen2crop", progress=False)
    assert out == home / "timesen2crop" / "TimeSen2Crop"
    assert (out / "TimeSen2Crop" / "33UVP" / "dates.csv").exists()
    assert (out / "TimeSen2Crop" / "33UVP" / "1" / "1.csv").exists()
    assert (home / "timesen2crop" / "TimeSen2Crop.zip").read_bytes() == archive.read_bytes()
    assert log == ["/TimeSen2Crop.zip"]
    marker = out / "TimeSen2Crop" / "33UVP" / "0" / "0.csv"
    mtime = marker.stat().st_mtime_ns
    assert download.fetch("timesen2crop", progress=False) == out
    assert log == ["/TimeSen2Crop.zip"]  # nothing downloaded again
    assert marker.stat().st_mtime_ns == mtime  # not unpacked again
    from eokit.datasets import timesen2crop

    assert timesen2crop.open(out).sizes["sample"] == 4


@pytest.mark.bad_input
def test_truncated_download_is_rejected_and_not_kept(published):
    archive, home, log = published
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])  # the server now sends a truncated archive
    expected = download.REGISTRY["timesen2crop"].files["TimeSen2Crop.zip"][1].split(":")[1]
    with refuses(ValueError, "TimeSen2Crop.zip", "hash", expected, hashlib.md5(archive.read_bytes()).hexdigest()):
        download.fetch("timesen2crop", progress=False)
    assert not (home / "timesen2crop" / "TimeSen2Crop.zip").exists()
    assert not (home / "timesen2crop" / "TimeSen2Crop").exists()
    archive.write_bytes(data)  # server fixed: the next call fetches again and succeeds
    out = download.fetch("timesen2crop", progress=False)
    assert (out / "TimeSen2Crop" / "33UVP" / "dates.csv").exists()


def test_corrupted_cached_archive_is_refetched(published):
    archive, home, log = published
    (home / "timesen2crop").mkdir(parents=True)
    (home / "timesen2crop" / "TimeSen2Crop.zip").write_bytes(archive.read_bytes()[:100])
    out = download.fetch("timesen2crop", progress=False)
    assert log == ["/TimeSen2Crop.zip"]
    assert (home / "timesen2crop" / "TimeSen2Crop.zip").read_bytes() == archive.read_bytes()
    assert (out / "TimeSen2Crop" / "33UVP" / "dates.csv").exists()


def test_interrupted_unpack_is_redone(published):
    archive, home, log = published
    out = download.fetch("timesen2crop", progress=False)
    shutil.rmtree(out)
    partial = out.with_name(out.name + ".partial")
    (partial / "TimeSen2Crop").mkdir(parents=True)  # what a killed unpack leaves
    out2 = download.fetch("timesen2crop", progress=False)
    assert out2 == out and (out / "TimeSen2Crop" / "33UVP" / "dates.csv").exists()
    assert not partial.exists()
    assert log == ["/TimeSen2Crop.zip"]


def _closed_port_url() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}/TimeSen2Crop.zip"


def test_hand_copied_archive_and_folder_are_used_offline(tmp_path, published, monkeypatch):
    archive, home, log = published
    spec = dataclasses.replace(
        download.REGISTRY["timesen2crop"], files={"TimeSen2Crop.zip": (_closed_port_url(), _md5(archive))}
    )
    monkeypatch.setitem(download.REGISTRY, "timesen2crop", spec)
    # archive copied by hand straight into EOKIT_DATA
    home.mkdir(parents=True)
    shutil.copy(archive, home / "TimeSen2Crop.zip")
    out = download.fetch("timesen2crop", progress=False)
    assert (out / "TimeSen2Crop" / "33UVP" / "dates.csv").exists()
    # an unpacked folder given as path=
    tree = gen.make_tree(tmp_path / "mine", tiles={"32TNT": 3}, n_classes=1, samples_per_class=1)
    assert download.fetch("timesen2crop", path=tree, progress=False) == tree
    assert download.fetch("timesen2crop", path=tree.parent, progress=False) == tree
    assert log == []


def test_offline_without_copy_says_what_to_put_where(published, monkeypatch):
    archive, home, log = published
    spec = dataclasses.replace(
        download.REGISTRY["timesen2crop"], files={"TimeSen2Crop.zip": (_closed_port_url(), _md5(archive))}
    )
    monkeypatch.setitem(download.REGISTRY, "timesen2crop", spec)
    with pytest.raises(download.DownloadError) as e:
        download.fetch("timesen2crop", progress=False)
    msg = str(e.value)
    assert str(home / "timesen2crop" / "TimeSen2Crop.zip") in msg
    assert "TimeSen2Crop.zip" in msg and "path=" in msg


@pytest.mark.bad_input
def test_corrupt_hand_copy_given_as_path_is_refused(tmp_path, published):
    archive, home, log = published
    bad = tmp_path / "TimeSen2Crop.zip"
    bad.write_bytes(archive.read_bytes()[:-50])
    expected = _md5(archive).split(":")[1]
    with refuses(ValueError, str(bad), "md5 checksum", hashlib.md5(bad.read_bytes()).hexdigest(), expected):
        download.fetch("timesen2crop", path=bad, progress=False)
    assert bad.exists()  # the user's own copy is never deleted


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "call",
    [
        lambda name: download.fetch(name, progress=False),
        lambda name: download.fetch(name, unpack=False),
        lambda name: download.local_path(name),
        lambda name: download.EokitSource(dataset=name, reader="eokit.datasets.timesen2crop:open"),
    ],
    ids=["fetch", "fetch-packed", "local_path", "EokitSource"],
)
@pytest.mark.parametrize(
    "name, hint",
    [("nope", ""), ("timesen2cropp", "did you mean timesen2crop?"), ("TimeSen2Crop", "did you mean timesen2crop?")],
)
def test_unknown_dataset_lists_the_known_names(call, name, hint, tmp_path, monkeypatch):
    monkeypatch.setenv("EOKIT_DATA", str(tmp_path))
    with refuses(ValueError, f"unknown dataset {name!r}", hint, "known datasets", *sorted(download.REGISTRY)):
        call(name)
    assert list(tmp_path.iterdir()) == []  # nothing made in the cache


def _subset_zip(tmp_path: Path, name: str = "subset.zip") -> Path:
    """A valid zip of a small TimeSen2Crop tree under a name the registry gives no checksum for."""
    return gen.make_zip(tmp_path / "gen", tmp_path / name, tiles={"33UVP": 2}, n_classes=1, samples_per_class=1)


@pytest.mark.bad_input
@pytest.mark.parametrize("name, kind", [("subset.zip", "zip"), ("subset.tar.gz", "tar"), ("subset.tgz", "tar")])
def test_hand_copy_that_is_no_archive_is_refused_and_kept(tmp_path, monkeypatch, name, kind):
    monkeypatch.setenv("EOKIT_DATA", str(tmp_path / "cache"))
    bad = tmp_path / name
    bad.write_text("<html>404 not found</html>")  # what a failed browser download saves
    with refuses(ValueError, str(bad), f"not a readable {kind} archive"):
        download.fetch("timesen2crop", path=bad, progress=False)
    assert bad.exists()
    assert not (tmp_path / "cache").exists()


@pytest.mark.bad_input
def test_zip_member_failing_its_crc_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("EOKIT_DATA", str(tmp_path / "cache"))
    good = _subset_zip(tmp_path)
    import zipfile

    with zipfile.ZipFile(good) as zf:
        info = next(i for i in zf.infolist() if i.filename.endswith("dates.csv"))
    data = bytearray(good.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)  # local header, then the data
    data[start] ^= 0xFF
    good.write_bytes(bytes(data))
    with refuses(ValueError, str(good), info.filename, "is damaged", "intact zip"):
        download.fetch("timesen2crop", path=good, progress=False)


@pytest.mark.bad_input
def test_archive_of_another_dataset_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("EOKIT_DATA", str(tmp_path / "cache"))
    import zipfile

    other = tmp_path / "charts.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("seaice_s1_20180101.txt", "not TimeSen2Crop")
    with refuses(ValueError, str(other), "no file of dataset timesen2crop", "dates.csv"):
        download.fetch("timesen2crop", path=other, progress=False)
    assert not (tmp_path / "charts").exists()  # no half-usable folder left beside it


@pytest.mark.bad_input
def test_path_that_does_not_exist_is_refused_not_downloaded(tmp_path, published):
    archive, home, log = published
    missing = tmp_path / "TimeSen2Crop"
    with refuses(FileNotFoundError, f"path={missing}", "no such file or folder", "TimeSen2Crop.zip", "dates.csv"):
        download.fetch("timesen2crop", path=missing, progress=False)
    assert log == []  # not silently replaced by a download


@pytest.mark.bad_input
def test_path_holding_no_copy_is_refused_not_downloaded(tmp_path, published):
    archive, home, log = published
    empty = tmp_path / "mine"
    (empty / "notes").mkdir(parents=True)
    with refuses(ValueError, f"path={empty}", "holds no copy of timesen2crop", "TimeSen2Crop.zip", "dates.csv"):
        download.fetch("timesen2crop", path=empty, progress=False)
    with refuses(ValueError, f"path={empty}", "holds no copy", "TimeSen2Crop.zip"):
        download.fetch("timesen2crop", path=empty, unpack=False)
    with refuses(ValueError, f"path={empty}", "holds no copy"):
        download.local_path("timesen2crop", path=empty)
    assert log == []


@pytest.mark.bad_input
def test_path_to_a_file_that_is_no_archive_is_refused(tmp_path, published):
    archive, home, log = published
    table = tmp_path / "samples.csv"
    table.write_text("B2,B3\n1,2\n")
    with refuses(ValueError, f"path={table}", "neither an archive", ".zip", "dates.csv"):
        download.fetch("timesen2crop", path=table, progress=False)
    assert log == []


@pytest.mark.bad_input
def test_cache_that_is_a_file_is_refused(tmp_path, published, monkeypatch):
    archive, home, log = published
    home.parent.mkdir(parents=True, exist_ok=True)
    home.write_text("oops")
    with refuses(ValueError, f"EOKIT_DATA={home}", "is a file", "expected a folder"):
        download.fetch("timesen2crop", progress=False)
    with refuses(ValueError, str(home), "is a file"):
        download.local_path("timesen2crop")
    assert log == []


@pytest.mark.bad_input
def test_dataset_cache_folder_that_is_a_file_is_refused(published):
    archive, home, log = published
    home.mkdir(parents=True)
    (home / "timesen2crop").write_text("oops")
    with refuses(ValueError, str(home / "timesen2crop"), "is a file", "cache folder of dataset timesen2crop"):
        download.fetch("timesen2crop", progress=False)
    assert log == []


@pytest.mark.bad_input
def test_empty_eokit_data_is_refused(monkeypatch):
    monkeypatch.setenv("EOKIT_DATA", "")
    with refuses(ValueError, "EOKIT_DATA", "empty", "expected the path of a folder"):
        download.fetch("timesen2crop", progress=False)


@pytest.mark.bad_input
def test_unpack_false_needs_a_single_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("EOKIT_DATA", str(tmp_path))
    with refuses(ValueError, "metno_v1", "unpack=False", "one archive"):
        download.fetch("metno_v1", unpack=False)


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "reader, names",
    [
        ("eokit.datasets.timesen2crop.open", ["module:function"]),
        ("eokit.nowhere:open", ["eokit.nowhere:open", "cannot be imported"]),
        ("eokit.datasets.timesen2crop:nope", ["timesen2crop:nope", "nope"]),
    ],
)
def test_intake_source_with_a_bad_reader(tmp_path, monkeypatch, reader, names):
    tree = gen.make_tree(tmp_path / "mine", tiles={"32TNT": 1}, n_classes=1, samples_per_class=1)
    monkeypatch.setenv("EOKIT_DATA", str(tmp_path / "cache"))
    with refuses((ValueError, ImportError), *names):
        download.EokitSource(dataset="timesen2crop", reader=reader, path=str(tree)).read()


def test_registry_has_every_published_dataset():
    for name in [
        "timesen2crop",
        "uit_icetypes",
        "dlr_belgica_semantic",
        "dlr_belgica_lda",
        "metno_v1",
        "metno_v2",
        "lucas_2018",
    ]:
        spec = download.REGISTRY[name]
        assert spec.licence and spec.citation and spec.landing and (spec.files or spec.doi)
    assert download.REGISTRY["timesen2crop"].files["TimeSen2Crop.zip"][1] == "md5:b5b7aad3fef192e78252e11c9a0e5cb8"


# ---------------------------------------------------------------------------------------------- catalog
def test_catalog_entries_read_from_local_copies(tmp_path, monkeypatch):
    """Every entry of catalogs/extremeearth.yaml opens with intake and reads generated data from EOKIT_DATA."""
    import geopandas as gpd
    import intake
    import xarray as xr

    from eokit.paths import CATALOG_DIR
    from generators import dlr, lucas, metno, uit

    home = tmp_path / "cache"
    monkeypatch.setenv("EOKIT_DATA", str(home))
    gen.make_tree(home / "timesen2crop", tiles={"33UVP": 3}, n_classes=2, samples_per_class=2)
    uit.make(home / "uit_icetypes")
    dlr.make(home / "dlr_belgica_semantic", "semantic")
    dlr.make(home / "dlr_belgica_lda", "lda")
    metno.make(home / "metno_v1", "v1")
    metno.make(home / "metno_v2", "v2")
    lucas.make(home / "lucas_2018" / "lucas_harmo_uf_2018" / "lucas_harmo_uf_2018.csv", harmonised=True)
    monkeypatch.setattr(download, "_find_local", _no_download(download._find_local))

    cat = intake.open_catalog(str(CATALOG_DIR / "extremeearth.yaml"))
    assert sorted(cat) == sorted(download.REGISTRY)
    for name in cat:
        md = cat[name].metadata
        assert md["licence"] and md["citation"] and md["size"] and md["urls"] and md["checksum"], name
    assert cat["timesen2crop"].metadata["checksum"] == "md5:b5b7aad3fef192e78252e11c9a0e5cb8"

    ts = cat["timesen2crop"].read()
    assert isinstance(ts, xr.Dataset) and ts.sizes["sample"] == 4
    assert cat["timesen2crop"].to_dask()["reflectance"].chunks is not None
    assert cat["uit_icetypes"].read().sizes["row"] == 32
    assert cat["uit_icetypes"](patch_size=10).read().sizes["row"] == 10
    assert isinstance(cat["dlr_belgica_semantic"].read(), xr.DataTree)
    assert "label" in cat["dlr_belgica_lda"].to_dask()[dlr.SCENES[0]].dataset
    m1, m2 = cat["metno_v1"].read(), cat["metno_v2"].read()
    assert isinstance(m1, gpd.GeoDataFrame) and m1.crs.to_epsg() == 3413 and "SD" in m2.columns
    assert len(cat["metno_v1"].to_dask().compute()) == len(m1)
    pts = cat["lucas_2018"].read()
    assert pts.crs.to_epsg() == 4326 and len(pts) == len(lucas.CODES)
    # an archive read in place, without unpacking (another name: the published name implies the published md5)
    import zipfile

    with zipfile.ZipFile(tmp_path / "subset.zip", "w") as zf:
        for f in sorted((home / "timesen2crop").rglob("*")):
            zf.write(f, f.relative_to(home / "timesen2crop").as_posix())
    packed = cat["timesen2crop"](path=str(tmp_path / "subset.zip"), unpack=False).read()
    assert packed.drop_attrs().equals(ts.drop_attrs())
    shutil.copy(tmp_path / "subset.zip", tmp_path / "TimeSen2Crop.zip")
    with pytest.raises(ValueError, match="md5 checksum"):
        cat["timesen2crop"](path=str(tmp_path / "TimeSen2Crop.zip"), unpack=False).read()
    # a copy outside the cache, given as path=
    other = gen.make_tree(tmp_path / "elsewhere", tiles={"32TNT": 2}, n_classes=1, samples_per_class=1)
    assert set(cat["timesen2crop"](path=str(other)).read()["tile"].values) == {"32TNT"}


def _no_download(find):
    def wrapped(spec, path, problems, *args, **kwargs):
        found = find(spec, path, problems, *args, **kwargs)
        assert found is not None, f"{spec.name}: the local copy was not recognised"
        return found

    return wrapped


# ---------------------------------------------------------------------------------------------- DOI records
def _fake_doi_registry(url: str, files: dict[str, str]):
    """Stand-in for pooch's Zenodo/Dataverse API call: the record's files, served by the local server."""

    def load(self):
        self.base_url = url + "/"
        self.registry = dict(files)

    return load


def test_doi_record_files_fetched_and_unpacked(tmp_path, server, monkeypatch):
    import pooch

    from generators import metno

    url, www, log = server
    src = metno.make(tmp_path / "gen", "v1")
    import zipfile

    with zipfile.ZipFile(www / "icebergs.zip", "w") as zf:
        for p in (src / "icebergs").iterdir():
            zf.write(p, f"icebergs/{p.name}")
    files = {}
    for p in src.glob("seaice_s1_*"):
        shutil.copy(p, www / p.name)
    for p in www.iterdir():
        files[p.name] = _md5(p)
    monkeypatch.setattr(pooch.Pooch, "load_registry_from_doi", _fake_doi_registry(url, files))
    home = tmp_path / "cache"
    monkeypatch.setenv("EOKIT_DATA", str(home))
    out = download.fetch("metno_v1", progress=False)
    assert out == home / "metno_v1"
    assert (out / "icebergs" / "icebergs" / f"icebergs_s1_{metno.SCENES[0]}.shp").exists()
    assert not (out / ".eokit_incomplete").exists()
    from eokit.datasets import metno as reader

    assert len(reader.open(out)) == 2 * len(metno.ROWS)
    n = len(log)
    assert download.fetch("metno_v1", progress=False) == out and len(log) == n  # cached
    # an interrupted fetch (marker left) is resumed, not taken as complete
    (out / ".eokit_incomplete").touch()
    (out / f"seaice_s1_{metno.SCENES[1]}.dbf").unlink()
    assert download.fetch("metno_v1", progress=False) == out
    assert (out / f"seaice_s1_{metno.SCENES[1]}.dbf").exists() and not (out / ".eokit_incomplete").exists()


def test_doi_record_offline(tmp_path, monkeypatch):
    import pooch
    import requests

    def offline(self):
        raise requests.exceptions.ConnectionError("no route to zenodo.org")

    monkeypatch.setattr(pooch.Pooch, "load_registry_from_doi", offline)
    monkeypatch.setenv("EOKIT_DATA", str(tmp_path))
    with pytest.raises(download.DownloadError, match=r"every file of https://zenodo.org/records/4683174 .*metno_v2"):
        download.fetch("metno_v2", progress=False)


def test_fetch_archive_without_unpacking(published, monkeypatch):
    archive, home, log = published
    out = download.fetch("timesen2crop", progress=False, unpack=False)
    assert out == home / "timesen2crop" / "TimeSen2Crop.zip" and out.is_file()
    assert not (home / "timesen2crop" / "TimeSen2Crop").exists()
    from eokit.datasets import timesen2crop

    assert timesen2crop.open(out).sizes["sample"] == 4  # read in place
    assert download.fetch("timesen2crop", progress=False, unpack=False) == out and log == ["/TimeSen2Crop.zip"]
    out.write_bytes(out.read_bytes()[:-10])  # corrupted in the cache: fetched again, never used
    assert download.fetch("timesen2crop", progress=False, unpack=False).read_bytes() == archive.read_bytes()
    assert len(log) == 2

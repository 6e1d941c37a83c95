"""Verified downloads of the published datasets through pooch: cache, checksums, unpacking, manual copies.

Cache layout (``eokit.paths.data_home()``, i.e. ``$EOKIT_DATA`` or ``~/.cache/eokit``)::

    <data_home>/<dataset>/<archive>          e.g. timesen2crop/TimeSen2Crop.zip (checksum-verified)
    <data_home>/<dataset>/<archive stem>/    the archive unpacked once, e.g. timesen2crop/TimeSen2Crop/

Archives are unpacked into ``<stem>.partial/`` with pooch's Unzip/Untar processors and renamed when complete,
so an interrupted unpack is never mistaken for a finished one. pooch downloads into a temporary file and keeps
it only when its checksum matches, so an interrupted or corrupted download is never used. A copy made by hand
(archive or unpacked folder) in ``<data_home>/<dataset>/``, directly in ``<data_home>/`` or at ``path=`` is used
without any download; a ``path=`` that holds no copy is refused (never silently replaced by a download). An
unknown dataset name is a ValueError listing the known ones. The Intake driver that fetches a dataset and opens it
with its eokit reader is :class:`eokit.catalog.EokitSource` (``eokit.download.EokitSource`` is an alias of it).
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import tarfile
import zipfile
import zlib
from pathlib import Path
from typing import Any

from eokit._checks import did_you_mean
from eokit.paths import data_home
from eokit.registry import REGISTRY, DatasetSpec

__all__ = ["REGISTRY", "DatasetSpec", "DownloadError", "fetch", "local_path"]  # EokitSource: alias, see __getattr__


class DownloadError(FileNotFoundError):
    """Raised when a dataset is neither in the cache nor downloadable; the message says what to put where."""


_INCOMPLETE = ".eokit_incomplete"
#: What reading a damaged or unreadable archive raises: zlib.error for a corrupt deflate stream, RuntimeError for
#: an encrypted member, NotImplementedError for a compression method Python cannot read.
_ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    tarfile.TarError,
    EOFError,
    OSError,
    zlib.error,
    RuntimeError,
    NotImplementedError,
)


def _stem(archive: str) -> str:
    for suf in (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar", ".zip"):
        if archive.lower().endswith(suf):
            return archive[: -len(suf)]
    return archive


def _is_archive(name: str) -> bool:
    return _stem(name) != name


def _looks_complete(folder: Path, spec: DatasetSpec) -> bool:
    if not folder.is_dir() or folder.name.endswith(".partial"):
        return False
    if not spec.expect:
        return any(folder.iterdir())
    return any(next(iter(folder.glob(pat)), None) is not None for pat in spec.expect)


class _AtomicUnpack:
    """pooch processor: unpack with pooch.Unzip/Untar into ``<stem>.partial`` and rename it when complete."""

    def __init__(self, folder: Path, downloaded: bool = True) -> None:
        self.folder = folder
        self.downloaded = downloaded  # a download that fails to unpack is deleted; a user's own copy never is

    def __call__(self, fname: str, action: str, pup: Any) -> Path:
        import pooch

        if self.folder.is_dir() and action == "fetch":
            return self.folder
        tmp = self.folder.with_name(self.folder.name + ".partial")
        if tmp.exists():
            shutil.rmtree(tmp)
        proc = pooch.Unzip if fname.lower().endswith(".zip") else pooch.Untar
        try:
            proc(extract_dir=tmp.name)(fname, "download", pup)
        except _ARCHIVE_ERRORS as e:
            shutil.rmtree(tmp, ignore_errors=True)
            kind = "zip" if fname.lower().endswith(".zip") else "tar"
            if self.downloaded:
                Path(fname).unlink(missing_ok=True)
                raise ValueError(
                    f"{fname}: not a readable {kind} archive, corrupted or truncated ({e}); it was deleted, fetch again"
                ) from e
            raise ValueError(
                f"{fname}: not a readable {kind} archive, corrupted or truncated ({e}); expected a "
                f"complete {kind} archive of the dataset"
            ) from e
        if self.folder.exists():
            shutil.rmtree(self.folder)
        tmp.rename(self.folder)
        return self.folder


def _verify_archive(archive: Path, known_hash: str | None) -> None:
    """Raise ValueError if a local archive fails its checksum or cannot be opened as an archive."""
    import pooch

    if known_hash:
        alg, _, want = known_hash.partition(":")
        got = pooch.file_hash(str(archive), alg=alg)
        if got.lower() != want.lower():
            raise ValueError(
                f"{archive}: {alg} checksum is {got}, expected {want}: the copy is corrupted or "
                "incomplete; delete it and copy or download it again"
            )
    elif archive.name.lower().endswith(".zip"):
        try:
            with zipfile.ZipFile(archive) as zf:
                bad = _bad_member(zf)
        except zipfile.BadZipFile as e:
            raise ValueError(f"{archive}: not a readable zip archive ({e}); it is truncated or corrupted") from e
        if bad is not None:
            raise ValueError(f"{archive}: member {bad[0]} is damaged ({bad[1]}); expected an intact zip archive")


def _expected(spec: DatasetSpec) -> str:
    """Return what a copy of `spec` looks like, for messages: its archive names and the unpacked layout."""
    archives = " or ".join(spec.files) if spec.files else ""
    layout = " or ".join(spec.expect) if spec.expect else "any file"
    return (f"{archives}, or " if archives else "") + f"a folder holding {layout}"


def _bad_member(zf: zipfile.ZipFile) -> tuple[str, str] | None:
    """Return (name, what is wrong) of the first member of `zf` that does not read back intact, or None."""
    for info in zf.infolist():
        try:
            with zf.open(info) as f:
                while f.read(1 << 20):
                    pass
        except _ARCHIVE_ERRORS as e:
            return info.filename, f"{type(e).__name__}: {e}"
    return None


def _unpack_local(archive: Path, known_hash: str | None, spec: DatasetSpec) -> Path:
    _verify_archive(archive, known_hash)
    folder = archive.with_name(_stem(archive.name))
    if _looks_complete(folder, spec):
        return folder
    _AtomicUnpack(folder, downloaded=False)(str(archive), "download", None)
    if not _looks_complete(folder, spec):
        shutil.rmtree(folder, ignore_errors=True)
        raise ValueError(
            f"{archive}: unpacked, it holds no file of dataset {spec.name} (expected "
            f"{' or '.join(spec.expect)} inside); is it the right archive?"
        )
    return folder


def _search_root(
    spec: DatasetSpec, root: Path, problems: list[str], unpack: bool, cleanup: bool, explicit: bool, home: Path
) -> Path | None:
    """Return a usable copy of `spec` in folder `root` (archive verified, unpacked once), or None."""
    for n, (_, known) in spec.files.items():
        d = root / _stem(n)
        if unpack and _is_archive(n) and _looks_complete(d, spec):
            return d
        a = root / n
        if a.is_file():
            if not _is_archive(n):
                return root
            try:
                if not unpack:
                    _verify_archive(a, known)
                    return a
                return _unpack_local(a, known, spec)
            except ValueError as e:
                if explicit:
                    raise
                problems.append(str(e))  # a corrupted cached copy is never used: fetch replaces it
                if known is None and cleanup:  # pooch cannot tell it is bad without a hash: remove it
                    a.unlink(missing_ok=True)
    if unpack and root != home and _looks_complete(root, spec) and not (root / _INCOMPLETE).exists():
        return root
    return None


def _find_explicit(spec: DatasetSpec, root: Path, unpack: bool, home: Path) -> Path:
    """Return the copy of `spec` at ``path=`` `root`; FileNotFoundError/ValueError naming it when it holds none."""
    if not root.exists():
        raise FileNotFoundError(
            f"path={root}: no such file or folder; expected a copy of {spec.name}: {_expected(spec)}"
        )
    if root.is_file():
        if _is_archive(root.name):
            known = spec.files.get(root.name, (None, None))[1]
            if not unpack:
                _verify_archive(root, known)
                return root
            return _unpack_local(root, known, spec)
        if any("/" not in pat and fnmatch.fnmatch(root.name, pat) for pat in spec.expect):
            return root
        raise ValueError(
            f"path={root}: neither an archive (.zip, .tar, .tar.gz, .tgz, .tar.bz2, .tar.xz) nor a "
            f"file of {spec.name}; expected {_expected(spec)}"
        )
    found = _search_root(spec, root, [], unpack, cleanup=False, explicit=True, home=home)
    if found is None:
        what = f"the archive {' or '.join(spec.files)}" if not unpack else _expected(spec)
        raise ValueError(f"path={root}: holds no copy of {spec.name}; expected {what}")
    return found


def _find_local(
    spec: DatasetSpec, path: str | Path | None, problems: list[str], unpack: bool = True, cleanup: bool = False
) -> Path | None:
    home = _home()
    if path is not None:
        return _find_explicit(spec, Path(path).expanduser(), unpack, home)
    for root in (home / spec.name, home):
        if root.is_dir():
            found = _search_root(spec, root, problems, unpack, cleanup, explicit=False, home=home)
            if found is not None:
                return found
    return None


def _home() -> Path:
    """Return the download cache folder; ValueError naming it (and EOKIT_DATA) when it cannot be one."""
    value = os.environ.get("EOKIT_DATA")
    if value is not None and not value.strip():
        raise ValueError(
            "EOKIT_DATA is set but empty; expected the path of a folder for the download cache "
            "(or unset it for ~/.cache/eokit)"
        )
    home = data_home()
    if home.exists() and not home.is_dir():
        origin = f"EOKIT_DATA={value}: " if value is not None else ""
        raise ValueError(
            f"{origin}the download cache {home} is a file; expected a folder (point EOKIT_DATA "
            "to a folder, or remove the file)"
        )
    return home


def local_path(dataset: str, path: str | Path | None = None) -> Path | None:
    """Return the unpacked folder of a copy already on disk (cache or `path`), or None when there is none.

    A hand-copied archive found in the cache is verified and unpacked once; a corrupted one counts as absent.
    A `path` given must hold a copy (FileNotFoundError/ValueError naming it otherwise). Raises ValueError
    listing the known names for an unknown `dataset`.
    """
    return _find_local(_spec(dataset), path, [])


def _spec(dataset: str) -> DatasetSpec:
    """Return the registry entry of `dataset`; ValueError naming it and listing the known names otherwise."""
    if isinstance(dataset, str) and dataset in REGISTRY:
        return REGISTRY[dataset]
    hint = did_you_mean(dataset, REGISTRY, quote=False)
    raise ValueError(f"unknown dataset {dataset!r}{hint}; known datasets: {', '.join(sorted(REGISTRY))}")


def _manual_hint(spec: DatasetSpec, target: Path) -> str:
    if spec.files:
        what = "; or ".join(f"{url} -> {target / name}" for name, (url, _) in spec.files.items())
        unpacked = ", ".join(str(target / _stem(n)) for n in spec.files if _is_archive(n))
        more = f" (or unpack it by hand to {unpacked})" if unpacked else ""
        return f"download {what}{more}"
    return (
        f"download every file of {spec.landing} (doi:{spec.doi}) into {target}/ (archives may stay packed "
        f"or be unpacked there)"
    )


def fetch(dataset: str, path: str | Path | None = None, progress: bool = True, unpack: bool = True) -> Path:
    """Return the local unpacked folder of `dataset`, downloading and verifying it into the cache if needed.

    With ``unpack=False`` (single-archive datasets) return the verified archive itself instead, e.g. for
    ``eokit.datasets.timesen2crop.open``/``to_zarr``, which read ``TimeSen2Crop.zip`` in place.
    Raises ValueError listing the known names for an unknown `dataset`, ValueError naming the file for a copy
    that fails its checksum or is no readable archive, FileNotFoundError for a `path` that does not exist and
    DownloadError (a FileNotFoundError) when there is no copy and the download fails.
    """
    import pooch
    import requests

    spec = _spec(dataset)
    problems: list[str] = []
    if not unpack and (len(spec.files) != 1 or not _is_archive(next(iter(spec.files)))):
        raise ValueError(f"{dataset}: unpack=False needs a dataset published as one archive")
    found = _find_local(spec, path, problems, unpack, cleanup=True)
    if found is not None:
        return found
    target = _home() / spec.name
    if target.exists() and not target.is_dir():
        raise ValueError(f"{target} is a file; expected the cache folder of dataset {spec.name} (remove the file)")
    target.mkdir(parents=True, exist_ok=True)
    try:
        if spec.files:
            out: Path | None = None
            for name, (url, known) in spec.files.items():
                proc = _AtomicUnpack(target / _stem(name)) if _is_archive(name) and unpack else None
                res = pooch.retrieve(
                    url,
                    known_hash=known,
                    fname=name,
                    path=target,
                    processor=proc,
                    downloader=pooch.HTTPDownloader(progressbar=progress),
                    progressbar=progress,
                )
                out = Path(res) if proc is not None or not unpack else target
            assert out is not None
            return out if len(spec.files) == 1 else target
        (target / _INCOMPLETE).touch()
        pup = pooch.create(path=target, base_url=f"doi:{spec.doi}/", registry=None)
        pup.load_registry_from_doi()
        for name in pup.registry:
            proc = _AtomicUnpack(target / _stem(name)) if _is_archive(name) else None
            pup.fetch(name, processor=proc, progressbar=progress)
        (target / _INCOMPLETE).unlink()
        return target
    except (requests.exceptions.RequestException, OSError) as e:
        if isinstance(e, DownloadError):
            raise
        raise DownloadError(
            f"{spec.title}: not in the cache and could not be downloaded ({type(e).__name__}: {e}). "
            f"Offline? {_manual_hint(spec, target)}; or pass path= to a copy. Cache folder: {data_home()} "
            "(set EOKIT_DATA to change it)." + (f" Rejected local copy: {'; '.join(problems)}" if problems else "")
        ) from e
    except ValueError as e:
        raise ValueError(f"{spec.title}: download rejected, nothing was kept: {e}") from e


# ----------------------------------------------------------------------------------------------------
# Intake driver: one class, in eokit.catalog (imported on first use: this module needs no Intake)
# ----------------------------------------------------------------------------------------------------
def __getattr__(name: str) -> Any:
    if name == "EokitSource":
        from eokit.catalog import EokitSource

        return EokitSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Quiet TensorFlow start-up: TF_CPP_MIN_LOG_LEVEL applied to the lines TensorFlow logs while it is imported.

TensorFlow's C++ side logs through absl. While ``import tensorflow`` loads its shared libraries, before absl is
initialised, absl writes every message straight to file descriptor 2 (``WARNING: All log messages before
absl::InitializeLog() ...`` and, e.g., oneDNN's ``I... port.cc] oneDNN custom operations are on``), whatever
TF_CPP_MIN_LOG_LEVEL says; a Jupyter kernel forwards that descriptor into the cell output. :func:`install`
(run by ``import eokit``) sets the TF_CPP_MIN_LOG_LEVEL default and wraps the first import of ``tensorflow``
(also the one ``import keras`` makes) so that, during it, absl lines below that level and absl's notice are
dropped; every other byte written to stderr meanwhile is passed on. oneDNN itself stays on.
"""

from __future__ import annotations

import importlib.abc
import os
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

__all__ = ["TF_ENV", "filtered_stderr", "install", "keep_line", "set_env"]

#: Defaults for TensorFlow's C++ logging (a value already set is kept): 2 hides INFO and WARNING lines, which
#: includes tf.data's "Local rendezvous is aborting" at the end of every epoch.
TF_ENV: dict[str, str] = {"TF_CPP_MIN_LOG_LEVEL": "2"}

_ABSL_NOTICE = "All log messages before absl::InitializeLog() is called are written to STDERR"
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:[\d.]+ +\d+ [^ \]]+:\d+\] ")
_SEVERITY = {"I": 0, "W": 1, "E": 2, "F": 3}


def set_env(env: Mapping[str, str] = TF_ENV) -> dict[str, str]:
    """Return the variables of `env` newly set in os.environ (those already set keep their value)."""
    added = {k: v for k, v in env.items() if k not in os.environ}
    os.environ.update(added)
    return added


def _min_level() -> int:
    """Return TF_CPP_MIN_LOG_LEVEL as TensorFlow reads it (0 where unset or not a number)."""
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def keep_line(line: str, min_level: int) -> bool:
    """Return whether a stderr line written during the import passes TF_CPP_MIN_LOG_LEVEL `min_level`."""
    if min_level < 1:
        return True
    if _ABSL_NOTICE in line:
        return False
    m = _ABSL_LINE.match(line)
    return m is None or _SEVERITY[m.group(1)] >= min(min_level, 3)


@contextmanager
def filtered_stderr(min_level: int | None = None) -> Iterator[None]:
    """Yield with file descriptor 2 captured; afterwards its lines that pass :func:`keep_line` are written back."""
    import tempfile

    level = _min_level() if min_level is None else min_level
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr descriptor (embedded interpreters): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as buf:
        os.dup2(buf.fileno(), 2)
        try:
            yield
        finally:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            buf.seek(0)
            text = buf.read().decode("utf-8", "replace")
            kept = "".join(line for line in text.splitlines(keepends=True) if keep_line(line, level))
            data = kept.encode("utf-8")
            while data:
                data = data[os.write(2, data) :]


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader of ``tensorflow`` inside :func:`filtered_stderr`, then steps aside."""

    def __init__(self, loader: Any):
        self._loader = loader

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        _uninstall()
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        with filtered_stderr():
            self._loader.exec_module(module)


class _FirstImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` with the other finders and hands its spec a :class:`_QuietLoader`."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        for finder in list(sys.meta_path):
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _QuietLoader(spec.loader)
                return spec
        return None


def _uninstall() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _FirstImport)]


def install() -> bool:
    """Return whether the first import of tensorflow is now filtered (False: imported already); sets TF_ENV."""
    set_env()
    if "tensorflow" in sys.modules:
        return False
    if not any(isinstance(f, _FirstImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _FirstImport())
    return True

"""Internal file helpers shared by the modules that write small outputs."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable


def _file_mode() -> int:
    """Permission bits of a newly created file under the current umask (e.g. 0o644 for umask 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_json_atomic(obj: Any, path: str | os.PathLike, default: Callable[[Any], Any] | None = None) -> Path:
    """Return `path` after writing `obj` as JSON to a temporary sibling and renaming it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2, default=default)
        os.chmod(tmp, _file_mode())  # mkstemp creates 0600; give the output the usual umask-based mode
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path

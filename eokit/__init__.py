"""eokit: Earth-observation archives to deep-learning training sets and models.

A thin, flat library; modules import TensorFlow only where they need it (models, training, maps).
"""

from __future__ import annotations

from typing import Any

from eokit import _quiet

__version__ = "0.1.0"

_quiet.install()  # TensorFlow's start-up log lines stay out of notebooks (it is not imported here)


def __getattr__(name: str) -> Any:
    """Return `show_versions` (from eokit.info, imported on first use so `import eokit` stays light)."""
    if name == "show_versions":
        from eokit.info import show_versions

        return show_versions
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

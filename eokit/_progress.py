"""Progress bars: a widget in JupyterLab, text where nobody watches a widget (terminals, the runner's kernels).

`tqdm.auto` picks the notebook widget inside any IPython kernel, also in one that papermill runs without a
frontend; its executed copy would then hold widget state and a stale "0%" text line per bar. The runner
(`eokit.pipeline`) sets ``EOKIT_PROGRESS=text`` for the kernels it starts and has papermill coalesce stream
outputs, so each bar of an executed notebook is one line (its final state). Every eokit bar comes from here.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["PROGRESS_ENV", "tqdm", "tqdm_class"]

#: Environment variable choosing the bars: ``auto`` (tqdm.auto: widget in a kernel, text elsewhere) or ``text``.
PROGRESS_ENV = "EOKIT_PROGRESS"
_MODES = ("auto", "text")


def tqdm_class() -> type:
    """Return the tqdm class for this process: tqdm.auto's choice, or the text bar where EOKIT_PROGRESS=text."""
    mode = os.environ.get(PROGRESS_ENV, "").strip().lower() or "auto"
    if mode not in _MODES:
        raise ValueError(f"environment variable {PROGRESS_ENV}={mode!r}: expected one of {', '.join(_MODES)}")
    if mode == "text":
        from tqdm.std import tqdm as text_bar

        return text_bar
    from tqdm.auto import tqdm as auto_bar

    return auto_bar


def tqdm(*args: Any, **kwargs: Any) -> Any:
    """Return a progress bar (tqdm's arguments) of the class :func:`tqdm_class` picks."""
    return tqdm_class()(*args, **kwargs)

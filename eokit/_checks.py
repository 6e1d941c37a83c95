"""The small pieces every argument check shares: whole numbers, and "did you mean" hints for mistyped names."""

from __future__ import annotations

import difflib
import numbers
from collections.abc import Iterable
from typing import Any


def is_int(v: Any) -> bool:
    """Return whether `v` is a whole number (Python or numpy integer), not a bool."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def did_you_mean(name: Any, candidates: Iterable[Any], quote: bool = True) -> str:
    """Return ' (did you mean X?)' for the candidate closest to `name`, or '' when none is close."""
    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=1)
    if not close:
        return ""
    return f" (did you mean {close[0]!r}?)" if quote else f" (did you mean {close[0]}?)"


def renames(unknown: Iterable[str], known: Iterable[str]) -> str:
    """Return " (did you mean 'a' -> 'b', ...?)" for each unknown name that has a close known one, or ''."""
    pool = list(known)
    hints = [f"{k!r} -> {c[0]!r}" for k in unknown if (c := difflib.get_close_matches(k, pool, n=1))]
    return f" (did you mean {', '.join(hints)}?)" if hints else ""

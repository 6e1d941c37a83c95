"""The bad-input contract in one place: the exception type and what its message must name.

Every hostile-input test is marked ``bad_input`` (count them with
``pytest -m bad_input --collect-only -q``) and asserts with :func:`refuses`:

    with refuses(ValueError, "B2", "line 3", "int16"):
        timesen2crop.open(tree)

Each name must appear in the message (case-insensitive), so a test states both what is named
(the file, row, field) and what was expected.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def refuses(exc_type: type[BaseException] | tuple[type[BaseException], ...], *names: object) -> Iterator[None]:
    """Assert the block raises ``exc_type`` whose message names every item of ``names``."""
    with pytest.raises(exc_type) as info:
        yield
    message = str(info.value)
    missing = [str(n) for n in names if str(n).lower() not in message.lower()]
    assert not missing, f"{type(info.value).__name__} message does not name {missing}: {message!r}"


@contextlib.contextmanager
def warns_naming(category: type[Warning], *names: object) -> Iterator[None]:
    """Assert the block warns ``category`` with a message naming every item of ``names``."""
    with pytest.warns(category) as record:
        yield
    messages = [str(w.message) for w in record if issubclass(w.category, category)]
    assert any(all(str(n).lower() in m.lower() for n in names) for m in messages), (
        f"no {category.__name__} names {[str(n) for n in names]}: {messages!r}"
    )

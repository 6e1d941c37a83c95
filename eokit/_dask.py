"""The one dask scheduler vocabulary of eokit, and the one helper that turns a value of it into what compute needs.

Every ``scheduler=`` parameter (sampling, the TimeSen2Crop converter, maps) takes:

- ``"threads"`` (aliases ``"threading"``, ``"threaded"``): dask's local thread pool;
- ``"processes"`` (alias ``"multiprocessing"``): dask's local process pool;
- ``"sync"`` (aliases ``"synchronous"``, ``"single-threaded"``): one thread, in order (debugging);
- a ``dask.distributed.Client``: its cluster;
- a scheduler address, ``"tcp://host:port"`` (any ``scheme://``) or ``"host:port"``: a client is connected to it
  for the call and closed after;
- ``None``: dask's current default (``dask.config`` or the active distributed client).

Names are case-insensitive. Nothing here starts a cluster. ``distributed`` is imported only for an address.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any

from eokit._checks import did_you_mean

__all__ = [
    "CONNECT_TIMEOUT_S",
    "SCHEDULER_NAMES",
    "check_scheduler",
    "compute_target",
    "is_address",
    "is_client",
    "warnings_kept",
]

#: Every accepted scheduler name -> its canonical name ("threads", "processes" or "sync").
SCHEDULER_NAMES: dict[str, str] = {
    "threads": "threads",
    "threading": "threads",
    "threaded": "threads",
    "processes": "processes",
    "multiprocessing": "processes",
    "sync": "sync",
    "synchronous": "sync",
    "single-threaded": "sync",
}
#: Seconds to wait for a scheduler address to answer before giving up.
CONNECT_TIMEOUT_S = 10.0

_ADDRESS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+|(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]]+):\d{1,5}")


def is_client(value: Any) -> bool:
    """Return True when `value` is a ``dask.distributed.Client`` (without importing distributed)."""
    mod = sys.modules.get("distributed")
    return mod is not None and isinstance(value, mod.Client)


def is_address(value: Any) -> bool:
    """Return True when `value` is a scheduler address string: ``scheme://...`` or ``host:port``."""
    return isinstance(value, str) and _ADDRESS.fullmatch(value.strip()) is not None


def _accepted(refuse: Mapping[str, str], none_means: str) -> str:
    """Return the accepted values, in words, leaving out the canonical names in `refuse`."""
    parts = [f"None ({none_means})"]
    for canon in ("threads", "processes", "sync"):
        if canon not in refuse:
            aliases = [n for n, c in SCHEDULER_NAMES.items() if c == canon and n != canon]
            parts.append(f"{canon!r} (or {', '.join(map(repr, aliases))})")
    return ", ".join(parts) + ", a dask.distributed.Client or a scheduler address such as 'tcp://127.0.0.1:8786'"


def check_scheduler(
    value: Any,
    name: str = "scheduler",
    refuse: Mapping[str, str] | None = None,
    allow_callable: bool = False,
    none_means: str = "dask's default",
) -> Any:
    """Return `value` normalised: a canonical name, a Client, an address, None (or a dask get function).

    `refuse` maps canonical names this caller cannot run on to the reason, given in the message;
    `allow_callable` lets a dask get function (``dask.threaded.get``...) through unchanged; `none_means` says
    what None does for this caller.
    Anything else raises ValueError naming `name`, the value and the accepted ones (with a did-you-mean).
    """
    refuse = dict(refuse or {})
    accepted = _accepted(refuse, none_means)
    if value is None or is_client(value):
        return value
    if isinstance(value, str):
        key = value.strip().lower()
        canon = SCHEDULER_NAMES.get(key)
        if canon is not None and canon not in refuse:
            return canon
        if canon is not None:
            raise ValueError(f"{name} must be {accepted}; got {value!r}: {refuse[canon]}")
        if is_address(value):
            return value.strip()
        names = [n for n, c in SCHEDULER_NAMES.items() if c not in refuse]
        raise ValueError(f"{name} must be {accepted}; got {value!r}{did_you_mean(key, names)}")
    if allow_callable and callable(value):
        return value
    hint = ""
    if hasattr(value, "scheduler_address"):
        hint = " (a cluster: pass distributed.Client(cluster) or cluster.scheduler_address)"
    raise ValueError(f"{name} must be {accepted}; got {type(value).__name__} {value!r}{hint}")


def _local_get(canon: str) -> Callable[..., Any]:
    """Return dask's get function for a canonical local name (no import of distributed)."""
    if canon == "threads":
        import dask.threaded

        return dask.threaded.get
    if canon == "processes":
        import dask
        import dask.multiprocessing

        # dask hands a process 6 tasks per dispatch by default: eokit's tasks are whole chunks (seconds each), so
        # with fewer than 7 of them every one ran in one process, the others idle. One per dispatch unless the
        # user's dask config sets "chunksize".
        return partial(dask.multiprocessing.get, chunksize=dask.config.get("chunksize", 1))
    import dask.local

    return dask.local.get_sync


def _check_workers(workers: Any) -> int | None:
    """Return `workers` (None or an integer >= 1) or raise ValueError naming it."""
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be None (dask's default) or an integer >= 1, got {workers!r}")
    return int(workers)


@contextmanager
def warnings_kept() -> Iterator[None]:
    """Run the block, then put the warning filters and hooks back as they were before it.

    ``warnings.catch_warnings`` is not thread-safe: code run in dask's worker threads enters it concurrently
    (rasterio.features.rasterize checks shapes under ``simplefilter("ignore")``), and two threads leaving in
    the wrong order leave a global "ignore every warning" filter behind. Seen here: make_training_set's
    shortfall warnings vanished after its threaded label count. Wrap every local compute in this."""
    with warnings.catch_warnings():  # entered and left by this thread, after the workers are done
        yield


@contextmanager
def compute_target(
    value: Any,
    workers: int | None = None,
    name: str = "scheduler",
    refuse: Mapping[str, str] | None = None,
    allow_callable: bool = False,
    timeout: float = CONNECT_TIMEOUT_S,
) -> Iterator[Any]:
    """Yield what ``dask.compute(..., scheduler=...)`` needs for `value`: a dask get function, a Client or None.

    A name gives dask's local get function (with ``num_workers=workers`` when given; "sync" runs one thread);
    a Client is yielded as is and an address is connected to (within `timeout` seconds, ConnectionError naming
    it otherwise) and closed on exit; `workers` does not apply to a cluster. None stays None (dask's default).
    """
    value = check_scheduler(value, name, refuse, allow_callable)
    workers = _check_workers(workers)
    if isinstance(value, str) and value in SCHEDULER_NAMES:
        get = _local_get(value)
        with warnings_kept():
            yield partial(get, num_workers=workers) if workers is not None and value != "sync" else get
        return
    if not isinstance(value, str):  # None, a Client or an allowed get function
        with warnings_kept():
            yield value
        return
    from distributed import Client

    try:
        client = Client(value, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError) as err:
        raise ConnectionError(
            f"{name}: no dask scheduler answered at {value!r} within {timeout:g} s ({err}); "
            "start one there (dask scheduler / a Client's cluster) or check the address"
        ) from err
    try:
        yield client
    finally:
        client.close()

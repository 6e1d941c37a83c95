"""eokit._dask: the one scheduler vocabulary (names, aliases, Client, address, None) and the compute helper."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from functools import partial

import dask
import dask.local
import dask.multiprocessing
import dask.threaded
import pytest

from badinput import refuses
from eokit import _dask

ALIASES = {
    "threads": ["threads", "threading", "threaded", "Threads"],
    "processes": ["processes", "multiprocessing"],
    "sync": ["sync", "synchronous", "single-threaded", " SYNC "],
}
GETS = {"threads": dask.threaded.get, "processes": dask.multiprocessing.get, "sync": dask.local.get_sync}
ACCEPTED = (
    "'threads'",
    "'threading'",
    "'threaded'",
    "'processes'",
    "'multiprocessing'",
    "'sync'",
    "'synchronous'",
    "'single-threaded'",
    "None",
    "dask.distributed.Client",
    "address",
)


@pytest.mark.parametrize("name,canon", [(n, c) for c, ns in ALIASES.items() for n in ns])
def test_every_name_and_alias_gives_its_canonical_name_and_dask_get(name: str, canon: str) -> None:
    assert _dask.check_scheduler(name) == canon
    with _dask.compute_target(name) as get:
        assert get is GETS[canon] or (isinstance(get, partial) and get.func is GETS[canon])


def _pid_after_a_pause(_: int) -> int:
    import time

    time.sleep(0.3)  # long enough that one process cannot take both tasks one after the other
    return os.getpid()


def test_processes_hands_each_process_its_own_task() -> None:
    # dask's process pool batches 6 tasks per dispatch by default: TimeSen2Crop's 3 chunk jobs all ran in one
    # process on 2 workers (conversion no faster than one worker)
    tasks = [dask.delayed(_pid_after_a_pause, pure=False)(i) for i in range(2)]
    with _dask.compute_target("processes", workers=2) as get, dask.config.set({"multiprocessing.context": "fork"}):
        pids = dask.compute(*tasks, scheduler=get)
    assert len(set(pids)) == 2 and os.getpid() not in pids


@pytest.mark.parametrize("name", ["threads", "sync"])
def test_a_name_computes_and_workers_sizes_the_local_pool(name: str) -> None:
    total = dask.delayed(sum)([dask.delayed(abs)(-i) for i in range(5)])
    with _dask.compute_target(name, workers=2) as get:
        assert dask.compute(total, scheduler=get) == (10,)
        if name == "threads":
            assert isinstance(get, partial) and get.keywords == {"num_workers": 2}
        else:
            assert get is dask.local.get_sync  # one thread whatever `workers`


def test_none_is_dask_default_and_a_get_function_passes_only_where_allowed() -> None:
    assert _dask.check_scheduler(None) is None
    with _dask.compute_target(None, workers=3) as target:
        assert target is None
    assert _dask.check_scheduler(dask.threaded.get, allow_callable=True) is dask.threaded.get
    with refuses(ValueError, "scheduler", "function", "'threads'"):
        _dask.check_scheduler(dask.threaded.get)


def test_names_need_no_distributed_import() -> None:
    code = (
        "import sys, dask, eokit._dask as d\n"
        "with d.compute_target('threads', 2) as g: assert dask.compute(dask.delayed(1), scheduler=g) == (1,)\n"
        "assert d.check_scheduler('tcp://127.0.0.1:8786') and not d.is_client(object())\n"
        "assert 'distributed' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_client_and_its_address() -> None:
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=None, host="127.0.0.1"
        ) as cluster,
        Client(cluster, set_as_default=False) as client,
    ):
        assert _dask.check_scheduler(client) is client and _dask.is_client(client)
        with _dask.compute_target(client, workers=4) as target:
            assert target is client  # workers do not apply to a cluster
        address = cluster.scheduler_address
        host_port = address.split("://", 1)[1]
        for value in (address, host_port):
            assert _dask.is_address(value) and _dask.check_scheduler(value) == value
            with _dask.compute_target(value) as connected:
                assert _dask.is_client(connected) and connected is not client
                assert dask.compute(dask.delayed(sum)([1, 2]), scheduler=connected) == (3,)
            assert connected.status == "closed", "a client connected here is closed on exit"
        assert client.status == "running", "a Client given is left open"


@pytest.mark.bad_input
def test_an_unreachable_address_names_it() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    with refuses(ConnectionError, "scheduler", address, "1 s"), _dask.compute_target(address, timeout=1):
        pass


@pytest.mark.bad_input
@pytest.mark.parametrize(
    "value,names",
    [
        ("thread", ("scheduler", "'thread'", "did you mean 'threads'")),
        ("proceses", ("'proceses'", "did you mean 'processes'")),
        ("synch", ("'synch'", "did you mean 'sync'")),
        ("distributed", ("'distributed'",)),
        ("", ("''",)),
        ("tcp:/nowhere", ("'tcp:/nowhere'", "tcp://")),
        (42, ("42", "int")),
        (["threads"], ("list",)),
    ],
)
def test_bad_values_name_the_parameter_and_the_accepted_ones(value: object, names: tuple[str, ...]) -> None:
    with refuses(ValueError, "scheduler must be", *ACCEPTED, *names):
        _dask.check_scheduler(value)


@pytest.mark.bad_input
def test_a_cluster_object_refused_says_what_to_pass() -> None:
    class FakeCluster:
        scheduler_address = "tcp://127.0.0.1:8786"

    with refuses(ValueError, "FakeCluster", "Client(cluster)", "cluster.scheduler_address"):
        _dask.check_scheduler(FakeCluster())


@pytest.mark.bad_input
def test_a_refused_name_and_its_alias_give_the_callers_reason_and_the_rest() -> None:
    for value in ("processes", "multiprocessing"):
        with refuses(ValueError, "mode", repr(value), "no TF here", "'threads'", "'sync'", "None (local threads)"):
            _dask.check_scheduler(value, name="mode", refuse={"processes": "no TF here"}, none_means="local threads")
    with refuses(ValueError, "'procs'"):
        _dask.check_scheduler("procs", refuse={"processes": "x"})


@pytest.mark.bad_input
@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_bad_workers_are_refused(workers: object) -> None:
    with refuses(ValueError, "workers", repr(workers), "integer >= 1"), _dask.compute_target("threads", workers):
        pass


def test_warnings_kept_undoes_what_racing_worker_threads_leave_behind() -> None:
    # the race seen in make_training_set: two worker threads in warnings.catch_warnings (rasterio's rasterize)
    # leave in the wrong order, and the second restores the first one's "ignore everything" filter globally
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with _dask.warnings_kept():
            first, second = warnings.catch_warnings(), warnings.catch_warnings()
            first.__enter__()
            warnings.simplefilter("ignore")
            second.__enter__()  # saves the "ignore" state
            first.__exit__(None, None, None)
            second.__exit__(None, None, None)  # puts "ignore" back
            warnings.warn("lost inside the block: the leak it guards against", stacklevel=1)
        warnings.warn("seen after the block", stacklevel=1)
    assert [str(w.message) for w in seen] == ["seen after the block"]

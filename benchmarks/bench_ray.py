"""What --ray costs per item: the same trial in this process and as a Ray task, on a local cluster.

    .venv/bin/pytest benchmarks/bench_ray.py -p no:xdist --benchmark-columns=min,median,mean,max,rounds

The trial is bugfix-median on its scripted fix (5 model calls, 2 gates) in the local
(bubblewrap) sandbox, its server in a process of its own. ``in_process`` calls
:func:`~pytest_agentbench.scale.ray.run_trial` here; ``ray_task`` submits the same call to a
warm one-CPU local cluster and waits for it (one at a time: the latency an item adds, not
throughput); ``empty_task`` is Ray's own floor (submit + get of a task that returns at once).
The overhead per item is ray_task - in_process. Cluster start and the first (cold) task are
timed once and printed. Needs Ray (``pip install 'pytest-agentbench[ray]'``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_agentbench.packets.schema import load_packet
from pytest_agentbench.scale import ray as ray_exec
from pytest_agentbench.scale.ray import TaskSettings, TrialTask, pack_packet, run_trial
from tests.conftest import BUGFIX, SCRIPTS

ROUNDS = 10

_SERVE = """
import sys
from pytest_agentbench.serving.scripted import ScriptedServer
srv = ScriptedServer(sys.argv[1], ["scripted-good"]).start()
print(srv.base_url, flush=True)
sys.stdin.read()
"""


@pytest.fixture(scope="module")
def good_server() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVE, str(SCRIPTS / "good")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    yield proc.stdout.readline().strip()
    proc.kill()
    proc.wait()


@pytest.fixture(scope="module")
def trial(good_server: str) -> tuple[Any, TrialTask]:
    from pytest_agentbench.models.registry import ModelSpec

    spec = ModelSpec("a", "scripted-good", BUGFIX / "models.yaml", base_url=good_server, test_double=True)
    task = TrialTask("bench", spec, 1, good_server, good_server, TaskSettings(sandbox="local"))
    return pack_packet(load_packet(BUGFIX)), task


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    os.environ.setdefault(ray_exec.ONE_MACHINE_ENV, "0")
    ray = pytest.importorskip("ray", reason="needs Ray: pip install 'pytest-agentbench[ray]'")
    start = time.perf_counter()
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    print(f"\nray.init(local): {time.perf_counter() - start:.2f} s")
    yield ray
    ray.shutdown()


def test_trial_in_process(benchmark: Any, trial: tuple[Any, TrialTask]) -> None:
    result = benchmark.pedantic(run_trial, args=trial, rounds=ROUNDS, warmup_rounds=1)
    assert result.record is not None and result.record.passed


def test_trial_as_ray_task(benchmark: Any, trial: tuple[Any, TrialTask], ray_local: Any) -> None:
    remote = ray_local.remote(max_retries=ray_exec.MAX_RETRIES, retry_exceptions=False)(run_trial)
    bundle = ray_local.put(trial[0])  # once per packet, as RayExecutor.submit does
    start = time.perf_counter()
    first = ray_local.get(remote.remote(bundle, trial[1]))  # cold: a worker starts and imports the package
    print(f"\nfirst (cold) Ray task: {time.perf_counter() - start:.2f} s")
    assert first.record is not None and first.record.passed
    result = benchmark.pedantic(lambda: ray_local.get(remote.remote(bundle, trial[1])), rounds=ROUNDS)
    assert result.record is not None and result.record.passed


def test_empty_task(benchmark: Any, ray_local: Any) -> None:
    @ray_local.remote
    def nothing() -> int:
        return 0

    ray_local.get(nothing.remote())
    assert benchmark.pedantic(lambda: ray_local.get(nothing.remote()), rounds=50) == 0


def test_overhead_per_item_alternating(trial: tuple[Any, TrialTask], ray_local: Any) -> None:
    """The two side by side, alternating, so the machine's load hits both alike; prints the medians."""
    import statistics

    remote = ray_local.remote(max_retries=ray_exec.MAX_RETRIES, retry_exceptions=False)(run_trial)
    bundle = ray_local.put(trial[0])
    ray_local.get(remote.remote(bundle, trial[1]))  # warm
    here: list[float] = []
    there: list[float] = []
    for _ in range(ROUNDS):
        start = time.perf_counter()
        assert run_trial(*trial).record is not None
        here.append(time.perf_counter() - start)
        start = time.perf_counter()
        assert ray_local.get(remote.remote(bundle, trial[1])).record is not None
        there.append(time.perf_counter() - start)
    a, b = statistics.median(here), statistics.median(there)
    print(
        f"\nper item, median of {ROUNDS}: in process {a * 1000:.0f} ms, Ray task {b * 1000:.0f} ms, "
        f"Ray - here {(b - a) * 1000:+.0f} ms"
    )

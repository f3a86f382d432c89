"""--ray: every trial a Ray task, each item reporting its own record; checked against a real multi-node cluster.

The slow tests share one local cluster per module (``ray.cluster_utils.Cluster``: a head with no CPU and two
worker nodes with one CPU each, all advertising 127.0.0.1), and compare a run with ``--ray`` against the same
run in this process: the same (packet, alias, repeat) records, the same outcomes, the same JUnit test cases.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import shutil
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from pytest_agentbench.errors import ConfigError, SandboxError
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.packets.schema import load_packet
from pytest_agentbench.results.jsonl import RESULTS_FILE
from pytest_agentbench.scale import ray as ray_exec
from pytest_agentbench.scale.ray import (
    PacketBundle,
    RayExecutor,
    TaskSettings,
    TrialTask,
    check_address,
    node_local,
    pack_packet,
    run_trial,
    task_resources,
    unpack_packet,
)
from pytest_agentbench.serving.scripted import ScriptedServer

from .conftest import BUGFIX, SCRIPTS, importorskip_extra

pytest_plugins = ["pytester"]

ARGS = ["--models=a,b", "--packets", "packets", "--repeats", "3", "--sandbox", "local", "-p", "no:cacheprovider"]


# --------------------------------------------------------------------------- pure parts, no cluster


@pytest.mark.parametrize("address", ["auto", "local", "127.0.0.1:6379", "head.example:6379", "ray://10.0.0.5:10001"])
def test_addresses_that_ray_init_takes_are_accepted(address: str) -> None:
    assert check_address(f" {address} ") == address


@pytest.mark.parametrize("address", ["", "6379", "http://head:8265", "ray://head", "head:port", "a b:1"])
def test_other_addresses_are_refused_with_the_forms(address: str) -> None:
    with pytest.raises(ConfigError, match=r"--ray: .* is not a Ray address; expected auto .* HOST:PORT"):
        check_address(address)


def _spec(**kw: Any) -> ModelSpec:
    return ModelSpec(alias=kw.pop("alias", "m"), model="x", source=Path("models.yaml"), **kw)


def test_resources_a_node_local_endpoint_asks_for_its_share_of_a_gpu() -> None:
    from pytest_agentbench.capacity.cost import parse_cost_spec

    local = _spec(
        base_url="http://127.0.0.1:8000/v1", cost=parse_cost_spec({"gpu_hourly_usd": 2, "concurrency": 4}, "c")
    )
    assert task_resources(local, spans_machines=True) == {"num_cpus": 1.0, "resources": {"gpu": 0.25}}
    # every node on this machine: 127.0.0.1 is one server for all, nothing to place
    assert task_resources(local, spans_machines=False) == {"num_cpus": 1.0}
    remote = _spec(base_url="http://10.1.2.3:8000/v1")
    assert not node_local(remote, spans_machines=True)
    from pytest_agentbench.models.registry import ServeConfig

    ours = _spec(base_url=None, serve=ServeConfig(engine="vllm"))  # started by this process: not the node's own
    assert not node_local(ours, spans_machines=True)
    assert task_resources(_spec(base_url="http://localhost:9/v1"), spans_machines=True)["resources"] == {"gpu": 1.0}


class _StubRay:
    """Only what check_placement reads from Ray: the node table (a real cluster is in the slow tests)."""

    def __init__(self, nodes: list[dict[str, Any]]) -> None:
        self._nodes = nodes
        self.util = SimpleNamespace(get_node_ip_address=lambda: "127.0.0.1")

    def remote(self, **_: Any) -> Any:
        return lambda fn: fn

    def nodes(self) -> list[dict[str, Any]]:
        return self._nodes


def test_placement_refuses_what_would_wait_forever_or_miss_its_server() -> None:
    elsewhere = {"Alive": True, "NodeManagerAddress": "10.9.9.9", "Resources": {"CPU": 4.0}}
    executor = RayExecutor(_StubRay([elsewhere]), "head:6379", owns=False)
    assert executor.spans_machines()
    with pytest.raises(ConfigError, match=r"alias 'gpu-coder'.*ray start --resources='\{\"gpu\": 1\}'"):
        executor.check_placement({"gpu-coder": {"num_cpus": 1.0, "resources": {"gpu": 0.5}}}, {})
    with pytest.raises(ConfigError, match=r"alias 'a' is served by this process on http://127.0.0.1:5/v1"):
        executor.check_placement({"a": {"num_cpus": 1.0}}, {"a": "http://127.0.0.1:5/v1"})
    with pytest.raises(ConfigError, match="add a node with a free CPU"):
        executor.check_placement({"big": {"num_cpus": 8.0}}, {})
    gpu_node = {"Alive": True, "NodeManagerAddress": "10.9.9.8", "Resources": {"CPU": 2.0, "gpu": 1.0}}
    RayExecutor(_StubRay([elsewhere, gpu_node]), "head:6379", owns=False).check_placement(
        {"gpu-coder": {"num_cpus": 1.0, "resources": {"gpu": 0.5}}, "a": {"num_cpus": 1.0}}, {}
    )
    here = RayExecutor(
        _StubRay([{"Alive": True, "NodeManagerAddress": "127.0.0.1", "Resources": {"CPU": 1}}]), "x:1", owns=False
    )
    assert not here.spans_machines()
    here.check_placement({"a": {"num_cpus": 1.0}}, {"a": "http://127.0.0.1:5/v1"})  # one machine: reachable


def test_a_packet_travels_as_a_bundle_and_is_unpacked_once_per_node(tmp_path: Path) -> None:
    packet = load_packet(BUGFIX)
    bundle = pack_packet(packet)
    assert pickle.loads(pickle.dumps(bundle)) == bundle and bundle == pack_packet(packet)  # same content, same digest
    first = unpack_packet(bundle, tmp_path)
    again = load_packet(unpack_packet(bundle, tmp_path))
    assert again.root == first and again.id == packet.id and again.gates == packet.gates
    assert sorted(p.relative_to(first) for p in first.rglob("*")) == sorted(
        p.relative_to(BUGFIX) for p in BUGFIX.rglob("*")
    )
    hostile = PacketBundle("evil", "0" * 64, _tar_with_escape())
    with pytest.raises(Exception, match="outside|absolute|link"):
        unpack_packet(hostile, tmp_path / "other")
    assert not (tmp_path / "escaped").exists()


def _tar_with_escape() -> bytes:
    import gzip
    import io
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        info = tarfile.TarInfo("../escaped")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    return gzip.compress(raw.getvalue())


@pytest.fixture
def good_server() -> Iterator[str]:
    server = ScriptedServer(SCRIPTS / "good").start()
    yield server.base_url
    server.stop()


def _task(base_url: str, **settings: Any) -> TrialTask:
    spec = _spec(alias="a", base_url=base_url, test_double=True)
    return TrialTask("p::t[a]", spec, 2, base_url, base_url, TaskSettings(sandbox="local", **settings))


def test_the_task_body_runs_a_trial_and_its_result_pickles(good_server: str) -> None:
    result = run_trial(pack_packet(load_packet(BUGFIX)), _task(good_server))
    assert result.error is None and result.record is not None
    back = pickle.loads(pickle.dumps(result))  # what Ray sends back to the controller
    assert back.record.passed and back.record.repeat == 2 and back.record.sandbox.kind == "local"
    assert back.record.extra["nodeid"] == "p::t[a]" and back.record.extra["endpoint"] == good_server


def test_a_sandbox_the_node_cannot_make_is_returned_as_the_trials_error(good_server: str) -> None:
    importorskip_extra("docker", "docker")
    task = _task(good_server)
    task = TrialTask(task.key, task.spec, 1, good_server, good_server, TaskSettings("docker", "tcp://127.0.0.1:9"))
    result = run_trial(pack_packet(load_packet(BUGFIX)), task)
    assert result.record is None and isinstance(result.error, SandboxError)
    assert "tcp://127.0.0.1:9" in str(result.error)
    assert isinstance(pickle.loads(pickle.dumps(result)).error, SandboxError)


@pytest.fixture
def folder(pytester: pytest.Pytester) -> Path:
    """1 packet, aliases a (a scripted fix: passes) and b (a scripted no-op: fails)."""
    shutil.copytree(BUGFIX, pytester.path / "packets" / "bugfix-median")
    shutil.copytree(SCRIPTS / "good", pytester.path / "scripts" / "good")
    shutil.copytree(SCRIPTS / "noop", pytester.path / "scripts" / "noop")
    (pytester.path / "models.yaml").write_text(
        "models:\n"
        "  a:\n    model: scripted-good\n    serve: {engine: scripted, script: scripts/good}\n"
        "  b:\n    model: scripted-noop\n    serve: {engine: scripted, script: scripts/noop}\n"
    )
    return pytester.path


def test_a_bad_address_and_ray_with_xdist_are_usage_errors(pytester: pytest.Pytester, folder: Path) -> None:
    result = pytester.runpytest(*ARGS, "--ray", "http://head:8265")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--ray: 'http://head:8265' is not a Ray address*"])
    if importlib.util.find_spec("xdist") is not None and importlib.util.find_spec("ray") is not None:
        result = pytester.runpytest(*ARGS, "--ray", "auto", "-n", "2")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*--ray runs every trial as a Ray task*use --ray or -n, not both*"])


def test_without_ray_installed_the_error_gives_the_install_hint(
    pytester: pytest.Pytester, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    result = pytester.runpytest(*ARGS, "--ray", "local")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--ray local: Ray is not installed here: pip install 'pytest-agentbench?ray?'*"])


@pytest.fixture
def ray_module() -> Any:
    """Ray, imported before ``pytester`` is set up: pytester restores ``sys.modules`` as it found them, and a Ray
    imported inside a test would be dropped there and imported again by the next test: a segfault in its GCS
    client."""
    return importorskip_extra("ray", "ray")


def test_a_conftest_sandbox_hook_is_refused_under_ray(ray_module: Any, pytester: pytest.Pytester, folder: Path) -> None:
    pytester.makeconftest("def pytest_agentbench_make_sandbox(packet, settings):\n    raise RuntimeError\n")
    result = pytester.runpytest(*ARGS, "--ray", "127.0.0.1:1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--ray: *conftest.py implements pytest_agentbench_make_sandbox*Run without --ray*"])


# --------------------------------------------------------------------------- a real cluster


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """Head (0 CPUs) + 2 worker nodes (1 CPU, 2 'GPUs' each), all on 127.0.0.1; one per module (~7-20 s to start)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(ray_exec.ONE_MACHINE_ENV, "0")  # the nodes (child processes) advertise 127.0.0.1
        importorskip_extra("ray", "ray")
        from ray._private import ray_constants
        from ray.cluster_utils import Cluster

        mp.setattr(ray_constants, "ENABLE_RAY_CLUSTER", False)  # the same for this process, if Ray was imported
        small = {"object_store_memory": 80 * 1024**2}
        c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False, **small})
        # Two GPUs each as a Ray resource (no CUDA here): what a multi-node vLLM's pre-launch check counts.
        c.workers = [c.add_node(num_cpus=1, num_gpus=2, **small) for _ in range(2)]
        c.wait_for_nodes()
        try:
            yield c
        finally:
            c.shutdown()


def _records(results: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (results / RESULTS_FILE).read_text().splitlines()]


def _trials(records: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
    return {
        (r["packet"]["id"], r["alias"], r["repeat"], r["outcome"], r["passed"], tuple(g["passed"] for g in r["gates"]))
        for r in records
    }


def _outcomes(result: pytest.RunResult) -> dict[str, str]:
    passed, skipped, failed = result.reprec.listoutcomes()  # type: ignore[attr-defined]
    return {r.nodeid: r.outcome for r in (*passed, *skipped, *failed)}


def _junit(path: Path) -> dict[str, tuple[bool, list[str]]]:
    cases = ET.parse(path).getroot().iter("testcase")
    return {
        c.get("name", ""): (c.find("failure") is not None, sorted(p.get("name", "") for p in c.iter("property")))
        for c in cases
    }


@pytest.mark.slow
def test_ray_gives_the_same_records_and_outcomes_as_a_run_here(
    pytester: pytest.Pytester, folder: Path, cluster: Any
) -> None:
    out = ["--agentbench-html", "report.html", "--junitxml", "out.xml"]
    here = pytester.runpytest(*ARGS, "--agentbench-results", "here", *out)
    here.assert_outcomes(passed=3, failed=3)
    shutil.move(pytester.path / "report.html", pytester.path / "here.html")
    shutil.move(pytester.path / "out.xml", pytester.path / "here.xml")
    remote = pytester.runpytest(*ARGS, "--agentbench-results", "ray", *out, "--ray", cluster.address)
    remote.assert_outcomes(passed=3, failed=3)
    remote.stdout.fnmatch_lines(["agentbench ray: 6 trial(s) ran as Ray tasks on 2 node(s) of 127.0.0.1:*"])
    assert _outcomes(remote) == _outcomes(here)
    records, local = _records(pytester.path / "ray"), _records(pytester.path / "here")
    assert len(records) == 6 and _trials(records) == _trials(local)
    assert {r["worker"] for r in records} <= {f"ray-{n.node_id[:8]}" for n in cluster.workers}
    assert all(r["sandbox"]["kind"] == "local" and r["nodeid"] for r in records)
    journal = [json.loads(line) for line in (pytester.path / "ray" / "results-ray.jsonl").read_text().splitlines()]
    assert {r["run_id"] for r in journal} == {r["run_id"] for r in records}  # every record also came in on arrival
    assert _junit(pytester.path / "out.xml") == _junit(pytester.path / "here.xml")
    assert "bugfix-median" in (pytester.path / "report.html").read_text()


@pytest.mark.slow
def test_a_trial_that_fails_on_its_node_is_that_items_error(
    pytester: pytest.Pytester, folder: Path, cluster: Any
) -> None:
    importorskip_extra("docker", "docker")
    result = pytester.runpytest(
        *ARGS[:-4], "--sandbox", "docker", "--docker-host", "tcp://127.0.0.1:9", "--ray", cluster.address, "-k", "r1"
    )
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        ["*SandboxError (infrastructure, not the model): *no Docker engine answers at tcp://127.0.0.1:9*"]
    )


@pytest.mark.slow
def test_a_vllm_over_ray_starts_only_on_a_cluster_that_holds_its_layout(
    cluster: Any, fake_vllm: Path, tmp_path: Path
) -> None:
    """The pre-launch check joins the real cluster with the server's interpreter (2 nodes x 2 GPUs here)."""
    from pytest_agentbench.serving.vllm.process import VLLMServer

    from .fake_vllm import fake_spec

    def server(tp: int, pp: int) -> VLLMServer:
        ray = {"distributed_executor_backend": "ray", "ray_address": cluster.address}
        spec = fake_spec(fake_vllm, tmp_path, "serve", tensor_parallel_size=tp, pipeline_parallel_size=pp, **ray)
        return VLLMServer(spec, poll_interval_s=0.05)

    for tp, pp in ((4, 1), (2, 3)):  # 4 GPUs exist, but not on one node / only 2 groups of 2
        with pytest.raises(ConfigError, match=rf"tensor_parallel_size={tp} x pipeline_parallel_size={pp} needs"):
            server(tp, pp).start()
    assert not (tmp_path / "logs").exists()  # refused before anything was launched
    with server(2, 2) as fits:
        log = Path(str(fits.log_path)).read_text()
        assert "'--tensor-parallel-size', '2', '--pipeline-parallel-size', '2'" in log
        assert "'--distributed-executor-backend', 'ray'" in log


def _slow_script(folder: Path, delay_s: float) -> dict[str, Any]:
    """A script whose every answer comes late, so trials are still running when a node dies."""
    conversations = []
    for path in sorted(folder.glob("*.yaml")):
        for conversation in yaml.safe_load(path.read_text())["conversations"]:
            responses = [dict(r, delay_s=delay_s) for r in conversation["responses"]]
            conversations.append(dict(conversation, responses=responses))
    return {"conversations": conversations}


@pytest.fixture
def slow_servers(folder: Path) -> Iterator[dict[str, ScriptedServer]]:
    """Aliases a and b on scripted servers of this test (base_url, so it can count what they were asked)."""
    servers = {
        alias: ScriptedServer(_slow_script(SCRIPTS / name, 0.6), [f"scripted-{name}"]).start()
        for alias, name in (("a", "good"), ("b", "noop"))
    }
    (folder / "models.yaml").write_text(
        "models:\n"
        + "".join(
            f"  {alias}:\n    model: scripted-{name}\n    base_url: {servers[alias].base_url}\n    test_double: true\n"
            for alias, name in (("a", "good"), ("b", "noop"))
        )
    )
    yield servers
    for server in servers.values():
        server.stop()


@pytest.mark.slow  # the last cluster test of the module: it leaves the cluster one node short
def test_a_node_that_dies_mid_run_loses_no_finished_record(
    pytester: pytest.Pytester, slow_servers: dict[str, ScriptedServer], cluster: Any
) -> None:
    journal = pytester.path / "res" / "results-ray.jsonl"
    victim = cluster.workers[0]
    seen: dict[str, Any] = {}

    def kill_after_first_record() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (journal.is_file() and journal.read_text().strip()):
            time.sleep(0.05)
        time.sleep(0.3)  # the next trials have started on both nodes (each model call takes 0.6 s)
        seen["before"] = {json.loads(line)["run_id"] for line in journal.read_text().splitlines() if line.strip()}
        cluster.remove_node(victim)

    killer = threading.Thread(target=kill_after_first_record, daemon=True)
    killer.start()
    result = pytester.runpytest(*ARGS, "--agentbench-results", "res", "--ray", cluster.address)
    killer.join(timeout=60)
    result.assert_outcomes(passed=3, failed=3)
    records = _records(pytester.path / "res")
    assert 1 <= len(seen["before"]) < 6, "the node was removed after every trial had finished: no test of loss"
    assert seen["before"] <= {r["run_id"] for r in records}  # nothing finished before the kill is lost
    assert {(r["alias"], r["repeat"]) for r in records} == {(a, n) for a in "ab" for n in (1, 2, 3)}
    later = [r for r in records if r["run_id"] not in seen["before"]]
    assert later and all(r["worker"] != f"ray-{victim.node_id[:8]}" for r in later)  # retried on the survivor
    # The dead node's trial was in flight: the servers answered calls that no record holds (its first attempt).
    asked = sum(len(server.requests) for server in slow_servers.values())
    assert asked > sum(r["model_calls"] for r in records)


def test_journal_lines_are_the_items_own_records_by_run_id(tmp_path: Path) -> None:
    """The merge keeps the item's line (results-main.jsonl sorts before results-ray.jsonl) for a run id in both."""
    from pytest_agentbench.results.jsonl import merge_jsonl, worker_files, worker_results_path

    main, journal = worker_results_path(tmp_path, None), worker_results_path(tmp_path, "ray")
    main.write_text(json.dumps({"run_id": "r1", "timestamp": "2026-01-01T00:00:02+00:00", "from": "item"}) + "\n")
    journal.write_text(
        json.dumps({"run_id": "r1", "timestamp": "2026-01-01T00:00:01+00:00", "from": "journal"})
        + "\n"
        + json.dumps({"run_id": "r2", "timestamp": "2026-01-01T00:00:03+00:00", "from": "journal"})
        + "\n"
    )
    merged = merge_jsonl(worker_files(tmp_path), tmp_path / RESULTS_FILE)
    assert [(r["run_id"], r["from"]) for r in merged] == [("r1", "item"), ("r2", "journal")]
    assert os.path.basename(main) < os.path.basename(journal)

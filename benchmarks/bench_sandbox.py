"""What a sandbox costs: per-command exec overhead and per-run lifecycle, docker and local.

    .venv/bin/pytest benchmarks/bench_sandbox.py -p no:xdist --benchmark-columns=min,median,mean,max,rounds

``DockerSandbox.exec(["true"])`` is compared with the floor under it: the SDK's
``exec_run`` and a bare ``docker exec CONTAINER true`` subprocess in the same
container. The lifecycle is create + copy in + start + git init + close.
Needs a Docker engine (``scripts/docker-up``); the docker benchmarks are
skipped without one.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.sandbox.local import LocalSandbox

EXEC_ROUNDS = 60
LIFECYCLE_ROUNDS = 15


@pytest.fixture(scope="module")
def engine() -> None:
    from pytest_agentbench.sandbox.docker import start_engine

    ok, why = start_engine()
    if not ok:
        pytest.skip(f"no Docker engine: {why}")


@pytest.fixture(scope="module")
def workspace_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small packet-like repo: a package, tests, a README."""
    src = tmp_path_factory.mktemp("bench") / "repo"
    (src / "pkg").mkdir(parents=True)
    (src / "tests").mkdir()
    (src / "README.md").write_text("# bench\n" * 50)
    for i in range(20):
        (src / "pkg" / f"mod{i}.py").write_text(f"def f{i}(x):\n    return x + {i}\n" * 20)
        (src / "tests" / f"test_mod{i}.py").write_text(
            f"from pkg.mod{i} import f{i}\n\ndef test():\n    assert f{i}(1)\n"
        )
    return src


@pytest.fixture(scope="module")
def docker_sandbox(engine: None, workspace_src: Path) -> Iterator[Any]:
    from pytest_agentbench.sandbox.docker import DockerSandbox

    with DockerSandbox(workspace_src) as sb:
        yield sb


@pytest.fixture(scope="module")
def local_sandbox(workspace_src: Path) -> Iterator[LocalSandbox]:
    with LocalSandbox(workspace_src) as sb:
        yield sb


def _exec(benchmark: Any, fn: Any, *args: Any) -> None:
    benchmark.pedantic(fn, args=args, rounds=EXEC_ROUNDS, iterations=1, warmup_rounds=3)


def _exec_true(benchmark: Any, sb: Any) -> None:
    """Time ``sb.exec(["true"])``."""

    def run() -> None:
        assert sb.exec(["true"], 30).exit_code == 0

    _exec(benchmark, run)


def _file_round_trip(benchmark: Any, sb: Any) -> None:
    """Time writing 10 KB to ``sb`` and reading it back."""
    data = b"x" * 10_000

    def run() -> None:
        sb.write_file("bench/f.bin", data)
        assert sb.read_file("bench/f.bin") == data

    _exec(benchmark, run)


# -- per command -----------------------------------------------------------------
@pytest.mark.benchmark(group="exec true")
def test_docker_sandbox_exec(benchmark: Any, docker_sandbox: Any) -> None:
    _exec_true(benchmark, docker_sandbox)


@pytest.mark.benchmark(group="exec true")
def test_docker_sdk_exec_run(benchmark: Any, docker_sandbox: Any) -> None:
    container = docker_sandbox._container

    def run() -> None:
        assert container.exec_run(["true"]).exit_code == 0

    _exec(benchmark, run)


@pytest.mark.benchmark(group="exec true")
def test_docker_cli_exec(benchmark: Any, docker_sandbox: Any) -> None:
    argv = ["docker", "exec", docker_sandbox.container_id, "true"]
    _exec(benchmark, subprocess.run, argv)


@pytest.mark.benchmark(group="exec true")
def test_local_sandbox_exec(benchmark: Any, local_sandbox: LocalSandbox) -> None:
    _exec_true(benchmark, local_sandbox)


# -- files -------------------------------------------------------------------------
@pytest.mark.benchmark(group="write+read 10 KB")
def test_docker_sandbox_file_round_trip(benchmark: Any, docker_sandbox: Any) -> None:
    _file_round_trip(benchmark, docker_sandbox)


@pytest.mark.benchmark(group="write+read 10 KB")
def test_local_sandbox_file_round_trip(benchmark: Any, local_sandbox: LocalSandbox) -> None:
    _file_round_trip(benchmark, local_sandbox)


# -- per run -----------------------------------------------------------------------
@pytest.mark.benchmark(group="lifecycle: create+copy+start+close")
def test_docker_sandbox_lifecycle(benchmark: Any, engine: None, workspace_src: Path, docker_sandbox: Any) -> None:
    from pytest_agentbench.sandbox.docker import DockerSandbox

    image = docker_sandbox.image  # built or found once, outside the timing

    def run() -> None:
        DockerSandbox(workspace_src, image=image).close()

    benchmark.pedantic(run, rounds=LIFECYCLE_ROUNDS, iterations=1, warmup_rounds=1)


@pytest.mark.benchmark(group="lifecycle: create+copy+start+close")
def test_local_sandbox_lifecycle(benchmark: Any, workspace_src: Path) -> None:
    def run() -> None:
        LocalSandbox(workspace_src).close()

    benchmark.pedantic(run, rounds=LIFECYCLE_ROUNDS, iterations=1, warmup_rounds=1)

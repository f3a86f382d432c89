"""One contract for every sandbox backend: ``docker``, ``local`` and ``unsafe-local`` run the same tests.

The checks are library code, :mod:`pytest_agentbench.sandbox.contract`; this
file runs each one against both backends as ``test_<check name>``. A backend's
known gap (``unsafe-local`` has them) is ``xfail(strict=True)`` with the reason, or - where running the
check would harm the host (the fork bomb; the 10 GB allocation unless
``AGENTBENCH_HOSTILE_ON_HOST=1``) - xfailed without running.

The docker half needs an engine: a session fixture starts one with
``scripts/docker-up`` if none answers; where that fails the docker tests are
skipped with the reason, except under ``CI`` where they fail.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("pytest_agentbench.sandbox.contract")

from pytest_agentbench.sandbox.base import Sandbox  # noqa: E402 (after the assert rewrite is registered)
from pytest_agentbench.sandbox.contract import CHECKS, Check, SandboxFactory, Trial, make_workspace  # noqa: E402

# sorted: xdist needs the same order on every worker
BACKENDS = [pytest.param("docker", marks=pytest.mark.docker), "local", "unsafe-local"]
DOCKER_LIMITS = {"memory": "512m", "cpus": 1.0, "pids": 128}
SLOW_CHECKS = {"hostile_fork_bomb"}  # runs into its 5 s timeout on purpose


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "docker":
        request.getfixturevalue("docker_engine")
    return str(request.param)


@pytest.fixture
def workspace_src(tmp_path: Path) -> Path:
    return make_workspace(tmp_path)


def factory(backend: str) -> SandboxFactory:
    """``make(workspace, **options)`` for the backend (docker with the test limits)."""

    def make(src: Path, **kwargs: object) -> Sandbox:
        if backend == "docker":
            from pytest_agentbench.sandbox.docker import DockerSandbox

            return DockerSandbox(src, **{**DOCKER_LIMITS, **kwargs})  # type: ignore[arg-type]
        if backend == "unsafe-local":
            from pytest_agentbench.sandbox.unsafe_local import UnsafeLocalSandbox

            return UnsafeLocalSandbox(src, **kwargs)  # type: ignore[arg-type]
        from pytest_agentbench.sandbox.local import LocalSandbox

        return LocalSandbox(src, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def trial(backend: str, workspace_src: Path, request: pytest.FixtureRequest) -> Iterator[Trial]:
    """The check's trial on the current backend; its default sandbox is made here, at set-up."""
    check: Check = request.function.check
    made = Trial(backend, factory(backend), workspace_src, request.node.callspec.params.get("param"))
    try:
        if not check.fresh:
            _ = made.sandbox  # made now: a sandbox that cannot be made is a set-up error
        yield made
    finally:
        made.close()


def run(check: Check, trial: Trial, request: pytest.FixtureRequest) -> None:
    """A known gap is xfail: strict where the check runs, without running where it would harm the host."""
    gap = check.gap_for(trial)
    if gap is not None:
        if not gap.run:
            pytest.xfail(gap.reason)
        request.applymarker(pytest.mark.xfail(strict=True, reason=gap.reason))
    check.run(trial)


def as_test(check: Check) -> Callable[..., None]:
    """``test_<name>`` running ``check``, parametrized over its params (ids as pytest makes them)."""
    if check.params:

        @pytest.mark.parametrize("param", check.params)
        def test(trial: Trial, request: pytest.FixtureRequest, param: str) -> None:
            run(check, trial, request)
    else:

        def test(trial: Trial, request: pytest.FixtureRequest) -> None:
            run(check, trial, request)

    if check.name in SLOW_CHECKS:
        test = pytest.mark.slow(test)
    test.__name__ = test.__qualname__ = f"test_{check.name}"
    test.check = check  # type: ignore[attr-defined]
    return test


for _check in CHECKS:
    globals()[f"test_{_check.name}"] = as_test(_check)

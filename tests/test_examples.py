"""examples/models.yaml is valid against the schema and gives the commands we document."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_agentbench.errors import ConfigError
from pytest_agentbench.models.registry import check_disjoint_devices, load_models
from pytest_agentbench.serving.vllm.command import build_command
from pytest_agentbench.serving.vllm.spec import spec_from_alias

from .conftest import REPO

EXAMPLES = REPO / "examples" / "models.yaml"


def argv_env(alias: str) -> tuple[list[str], dict[str, str]]:
    spec = load_models(EXAMPLES)[alias]
    return build_command(spec_from_alias(spec), 8000, base_env={})


def test_every_course_alias_loads() -> None:
    specs = load_models(EXAMPLES)
    assert set(specs) == {"local-coder", "qwen3-coder", "glm-5.1", "mig-coder-a", "mig-coder-b", "gpt-baseline"}
    assert specs["gpt-baseline"].api_key_env == "OPENAI_API_KEY" and specs["gpt-baseline"].temperature is None


@pytest.mark.parametrize(
    ("alias", "devices", "tp"),
    [
        ("local-coder", "0", "1"),
        ("qwen3-coder", "0,1", "2"),
        ("glm-5.1", "0,1,2,3", "4"),
        ("mig-coder-a", "MIG-4f9e1c2a-0000-0000-0000-000000000001", "1"),
    ],
)
def test_commands_for_gpu_tp_and_mig(alias: str, devices: str, tp: str) -> None:
    argv, env = argv_env(alias)
    assert env["CUDA_VISIBLE_DEVICES"] == devices
    assert argv[argv.index("--tensor-parallel-size") + 1] == tp
    assert argv[argv.index("--host") + 1] == "127.0.0.1"


def test_mig_aliases_can_run_together_but_not_two_servers_on_one_gpu(tmp_path: Path) -> None:
    specs = load_models(EXAMPLES)
    check_disjoint_devices([specs["mig-coder-a"], specs["mig-coder-b"]])
    check_disjoint_devices([specs["local-coder"], specs["mig-coder-a"]])
    with pytest.raises(ConfigError, match="'local-coder' and 'qwen3-coder' would both start a server on device '0'"):
        check_disjoint_devices([specs["local-coder"], specs["qwen3-coder"]])


def test_commercial_alias_needs_its_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    spec = load_models(EXAMPLES)["gpt-baseline"]
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        spec.check_usable()

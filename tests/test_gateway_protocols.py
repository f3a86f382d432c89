"""The gateway between protocols (serving/gateway): refusal without translation, destream and leaked tool
calls, the responses and messages protocols, and reconciliation with vLLM's /metrics over all three.
"""

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_agentbench.agents.config import AgentConfig
from pytest_agentbench.agents.loop import run_agent
from pytest_agentbench.models.adapter import ModelAdapter
from pytest_agentbench.models.registry import ModelSpec, ServeConfig
from pytest_agentbench.packets.gates import run_gates
from pytest_agentbench.packets.schema import load_packet
from pytest_agentbench.sandbox import LocalSandbox
from pytest_agentbench.serving.gateway import (
    Route,
    outcome_of,
    route_for,
)
from pytest_agentbench.serving.scripted import ScriptedServer

from .conftest import BUGFIX, SCRIPTS
from .gateway_doubles import QWEN_CALL, Wire, answer, chat, events_of, oai, post, route, running, sdk, spec_for, sse


def test_a_protocol_the_alias_does_not_serve_is_refused_with_the_fix() -> None:
    spec = spec_for("s", base_url="http://127.0.0.1:9/v1")
    serve = ServeConfig(engine="scripted", script="x.yaml")
    scripted = route_for(
        ModelSpec(alias="s", model="m", source=Path("models.yaml"), serve=serve), "http://127.0.0.1:9/v1"
    )
    assert route_for(spec, spec.base_url or "").protocols is None
    assert scripted.protocols == frozenset({"chat", "responses", "messages"})
    scripted = dataclasses.replace(scripted, protocols=frozenset({"chat"}))  # an endpoint known to serve chat only
    wire = Wire(answer({"detail": "Not Found"}, 404))
    try:
        with running(scripted, route("open", wire.base_url)) as gw:
            status, _, data = post(
                gw, "/v1/messages", {"model": "x", "max_tokens": 5, "messages": []}, x_api_key=gw.open_run("s").token
            )
            body = json.loads(data)
            assert status == 400 and body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
            assert "alias 's'" in body["error"]["message"] and "does not translate" in body["error"]["message"]
            ticket = gw.open_run("open")
            status, _, data = post(gw, "/v1/responses", {"model": "x", "input": "hi"}, ticket.token)
            assert status == 400 and "does not serve OpenAI responses" in json.loads(data)["error"]["message"]
            run = gw.close_run(ticket.run_id)
    finally:
        wire.close()
    assert [c.refused for c in run.calls] == ["protocol"]
    assert outcome_of(run.calls)[0] == "infrastructure"


# -- destream and leaked tool calls ------------------------------------------------------------------
LEAKY = {
    "conversations": [
        {
            "responses": [
                {
                    "content": "Listing.",
                    "tool_calls": [{"name": "run", "arguments": {"command": "ls -la"}}],
                    "stream_leak": True,
                }
            ]
        }
    ]
}
RUN_TOOL = [
    {
        "type": "function",
        "function": {"name": "run", "parameters": {"type": "object", "properties": {"command": {"type": "string"}}}},
    }
]


def _streamed(client: Any) -> tuple[str, list[dict[str, str]], str | None]:
    """What a streaming OpenAI-SDK agent assembles: the text, the tool calls (by index), the finish reason."""
    text, calls, finish = "", {}, None
    for chunk in client.chat.completions.create(**chat(), tools=RUN_TOOL, stream=True):
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for delta in choice.delta.tool_calls or []:
                slot = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] = delta.id or slot["id"]
                slot["name"] += delta.function.name or ""
                slot["arguments"] += delta.function.arguments or ""
            finish = choice.finish_reason or finish
    return text, [calls[i] for i in sorted(calls)], finish


def test_destream_turns_a_streamed_leak_into_a_proper_tool_call() -> None:
    with ScriptedServer(LEAKY) as server:
        direct = sdk().OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
        text, calls, _ = _streamed(direct)
        assert "<function=run>" in text and calls == []  # the double leaks as vLLM's qwen3 streaming parser did
        with running(route("plain", server.base_url), route("fixed", server.base_url, destream=True)) as gw:
            leaked = gw.open_run("plain")
            text, calls, _ = _streamed(oai(gw, leaked.token))
            assert "<function=run>" in text and calls == []  # passed through: only counted
            fixed = gw.open_run("fixed")
            text, calls, finish = _streamed(oai(gw, fixed.token))
            plain_call, fixed_call = gw.close_run(leaked.run_id).calls[0], gw.close_run(fixed.run_id).calls[0]
        assert text == "Listing." and finish == "tool_calls"
        assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [("run", {"command": "ls -la"})]
        assert calls[0]["id"] == fixed_call.tool_calls[0].id
    assert "stream" not in server.requests[-1]  # destreamed: asked without a stream
    assert (plain_call.tool_call_format, plain_call.repaired, plain_call.tool_calls) == ("leaked", False, ())
    # asked without a stream, the server's own parser works: the calls come native, nothing to repair
    assert (fixed_call.tool_call_format, fixed_call.repaired, fixed_call.destreamed) == ("native", False, True)
    assert fixed_call.ttft_s is None and fixed_call.usage.reported and fixed_call.tool_calls[0].name == "run"


def test_a_whole_answer_with_a_leaked_call_is_repaired_by_the_aliass_parser() -> None:
    script = {"conversations": [{"responses": [{"content": f"Let me look.\n{QWEN_CALL}"}]}]}
    with ScriptedServer(script) as server, running(route("a", server.base_url, tool_parser="qwen3_xml")) as gw:
        ticket = gw.open_run("a")
        message = oai(gw, ticket.token).chat.completions.create(**chat(), tools=RUN_TOOL).choices[0]
        call = gw.close_run(ticket.run_id).calls[0]
    assert message.finish_reason == "tool_calls" and message.message.content == "Let me look."
    assert json.loads(message.message.tool_calls[0].function.arguments) == {"command": "ls -la"}
    assert (call.native_tool_calls, call.leaked_tool_calls, call.repaired) == (0, 1, True)


def test_the_built_in_agent_through_the_gateway_gets_native_calls_from_a_leaking_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An agent that executes what it gets: with destream, leaked calls arrive as tool_calls; the packet passes."""
    script = yaml.safe_load((SCRIPTS / "good" / "bugfix-median.yaml").read_text())
    for step in script["conversations"][0]["responses"]:
        step["stream_leak"] = True
    packet = load_packet(BUGFIX)
    with ScriptedServer(script) as server, running(route("a", server.base_url, destream=True)) as gw:
        ticket = gw.open_run("a")
        monkeypatch.setenv("GWTEST_RUN_TOKEN", ticket.token)
        agent = spec_for("a", stream=True, api_key_env="GWTEST_RUN_TOKEN")
        with ModelAdapter(agent, base_url=gw.base_url) as model, LocalSandbox(packet.workspace) as box:
            result = run_agent(packet.prompt, box, model, AgentConfig(max_turns=8))
            gates = run_gates(packet, box)
        calls = gw.close_run(ticket.run_id).calls
    assert result.outcome == "finished" and all(g.passed for g in gates)
    assert all(t.extra["native_tool_calls"] == len(t.tool_calls) > 0 for t in result.turns)  # native on arrival
    # destreamed: asked without a stream, the server sends them native (its leak is only in streams)
    assert all(c.destreamed and c.tool_call_format == "native" for c in calls) and len(calls) == len(result.turns)


# -- responses and messages ----------------------------------------------------------------------------
RESPONSE = {
    "id": "resp_1",
    "object": "response",
    "created_at": 1,
    "status": "completed",
    "model": "m",
    "output": [
        {
            "type": "message",
            "id": "msg_1",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": f"Running it.\n{QWEN_CALL}", "annotations": []}],
        },
    ],
    "usage": {
        "input_tokens": 30,
        "output_tokens": 12,
        "total_tokens": 42,
        "input_tokens_details": {"cached_tokens": 8},
    },
}
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "m",
    "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "text", "text": f"Ok.\n{QWEN_CALL}"},
    ],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 20, "cache_read_input_tokens": 6, "output_tokens": 9},
}


def test_responses_and_messages_are_measured_repaired_and_destreamed() -> None:
    wire = Wire(answer(RESPONSE), answer(RESPONSE), answer(MESSAGE), answer(MESSAGE))
    try:
        with running(route("a", wire.base_url, destream=True)) as gw:
            ticket = gw.open_run("a")
            client = oai(gw, ticket.token)
            whole = client.responses.create(
                model="x", input="hi", tools=[{"type": "function", "name": "run", "parameters": {}}]
            )
            events = list(client.responses.create(model="x", input="hi", stream=True))
            status, _, data = post(
                gw, "/v1/messages", {"model": "x", "max_tokens": 50, "messages": []}, x_api_key=ticket.token
            )
            _, _, streamed = post(
                gw,
                "/v1/messages",
                {"model": "x", "max_tokens": 50, "messages": [], "stream": True},
                x_api_key=ticket.token,
            )
            run = gw.close_run(ticket.run_id)
    finally:
        wire.close()
    calls = [i for i in whole.output if i.type == "function_call"]
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [("run", {"command": "ls -la"})]
    assert whole.output_text == "Running it."
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert "response.function_call_arguments.delta" in kinds and "response.output_text.delta" in kinds
    message = json.loads(data)
    assert status == 200 and message["stop_reason"] == "tool_use"
    assert [b["type"] for b in message["content"]] == ["thinking", "text", "tool_use"]
    assert message["content"][2]["input"] == {"command": "ls -la"}
    sse_kinds = [e["type"] for e in events_of(streamed)]
    assert sse_kinds[0] == "message_start" and sse_kinds[-2:] == ["message_delta", "message_stop"]
    deltas = [e["delta"] for e in events_of(streamed) if e["type"] == "content_block_delta"]
    assert {"type": "input_json_delta", "partial_json": '{"command": "ls -la"}'} in deltas
    assert [(c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.cached_tokens) for c in run.calls] == [
        (30, 12, 8),
        (30, 12, 8),
        (26, 9, 6),
        (26, 9, 6),
    ]
    assert all(c.repaired for c in run.calls) and [c.destreamed for c in run.calls] == [False, True, False, True]
    assert wire.requests[2]["headers"]["x-api-key"] == "agentbench-no-key"
    assert wire.requests[2]["headers"]["anthropic-version"] == "2023-06-01"


def test_streams_of_responses_and_messages_are_timed_and_their_usage_read() -> None:
    responses = sse(
        {"type": "response.created", "response": {"id": "r", "status": "in_progress"}},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"type": "function_call", "id": "fc1", "call_id": "c1", "name": "run", "arguments": ""},
        },
        {"type": "response.function_call_arguments.delta", "item_id": "fc1", "delta": '{"command": "ls"}'},
        {
            "type": "response.completed",
            "response": {"id": "r", "status": "completed", "model": "m", "usage": RESPONSE["usage"]},
        },
        named=True,
    )
    messages = sse(
        {"type": "message_start", "message": {"model": "m", "usage": {"input_tokens": 20, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hello"}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 7}},
        {"type": "message_stop"},
        named=True,
    )
    wire = Wire(responses, messages)
    try:
        with running(route("a", wire.base_url)) as gw:
            ticket = gw.open_run("a")
            post(gw, "/v1/responses", {"model": "x", "input": "hi", "stream": True}, ticket.token)
            post(
                gw,
                "/v1/messages",
                {"model": "x", "max_tokens": 9, "messages": [], "stream": True},
                x_api_key=ticket.token,
            )
            run = gw.close_run(ticket.run_id)
    finally:
        wire.close()
    first, second = run.calls
    assert first.failure is None and first.ttft_s is not None and first.token_events == 2
    assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (30, 12)
    assert [(c.name, c.arguments) for c in first.tool_calls] == [("run", '{"command": "ls"}')]
    assert first.tool_calls[0].id == "c1" and first.tool_call_format == "native"
    assert second.failure is None and second.finish_reason == "end_turn" and second.content == "hello"
    assert (second.usage.prompt_tokens, second.usage.completion_tokens) == (20, 7)


# -- the real thing: vLLM on CPU serving the tiny model, its /metrics as the judge ----------------------
@pytest.mark.vllm
@pytest.mark.slow
def test_gateway_totals_equal_vllms_metrics_over_all_three_protocols(tiny_model: Path, tmp_path: Path) -> None:
    from pytest_agentbench.serving.gateway.protocols import PROTOCOLS
    from pytest_agentbench.serving.vllm.metrics import diff, scrape_settled
    from pytest_agentbench.serving.vllm.process import VLLMServer
    from pytest_agentbench.serving.vllm.spec import ServeSpec

    spec = ServeSpec(
        model=str(tiny_model),
        served_model_name="tiny",
        max_model_len=2048,
        extra_args={"load_format": "dummy", "max_num_seqs": 8},
        log_dir=str(tmp_path / "logs"),
        startup_timeout_s=300,
    )
    question = [{"role": "user", "content": "Write a haiku about tests."}]
    with VLLMServer(spec) as server:
        routes = [
            Route(
                alias=a,
                where=f"models.{a}",
                base_url=server.base_url,
                model="tiny",
                protocols=frozenset(PROTOCOLS),
                destream=a == "d",
                timeout_s=120,
            )
            for a in ("t", "d")
        ]
        before = scrape_settled(server.metrics_url, model_name="tiny")
        with running(*routes) as gw:
            plain, destreamed = gw.open_run("t"), gw.open_run("d")
            client = oai(gw, plain.token)
            client.chat.completions.create(model="x", messages=question, max_tokens=12)
            list(client.chat.completions.create(model="x", messages=question, max_tokens=20, stream=True))
            list(
                oai(gw, destreamed.token).chat.completions.create(
                    model="x", messages=question, max_tokens=8, stream=True
                )
            )
            client.responses.create(model="x", input="Write a haiku.", max_output_tokens=10)
            list(client.responses.create(model="x", input="Write a haiku.", max_output_tokens=14, stream=True))
            body = {"model": "x", "max_tokens": 9, "messages": question}
            assert post(gw, "/v1/messages", body, x_api_key=plain.token)[0] == 200
            assert post(gw, "/v1/messages", body | {"stream": True}, x_api_key=plain.token)[0] == 200
            calls = gw.close_run(plain.run_id).calls + gw.close_run(destreamed.run_id).calls
            totals = gw.totals()
        delta = diff(before, scrape_settled(server.metrics_url, model_name="tiny"))
    assert [c.failure for c in calls] == [None] * 7 and all(c.usage.reported for c in calls)
    assert [c.protocol for c in calls] == ["chat", "chat", "responses", "responses", "messages", "messages", "chat"]
    assert all(c.ttft_s is not None for c in calls if c.stream and not c.destreamed)
    prompt = sum(t["prompt_tokens"] for t in totals.values())
    completion = sum(t["completion_tokens"] for t in totals.values())
    server_counts = f"{delta.prompt_tokens} in / {delta.generation_tokens} out"
    print(f"gateway {prompt} in / {completion} out; vLLM /metrics {server_counts}")
    assert (prompt, completion) == (delta.prompt_tokens, delta.generation_tokens)


def test_destream_is_a_strict_models_yaml_key(tmp_path: Path) -> None:
    from pytest_agentbench.errors import ModelsFileError
    from pytest_agentbench.models.registry import load_models

    path = tmp_path / "models.yaml"
    path.write_text("models:\n  q:\n    model: m\n    base_url: http://127.0.0.1:9/v1\n    destream: true\n")
    spec = load_models(path)["q"]
    assert spec.destream and route_for(spec, "http://127.0.0.1:9/v1").destream
    path.write_text("models:\n  q:\n    model: m\n    base_url: http://127.0.0.1:9/v1\n    destream: 'yes'\n")
    with pytest.raises(ModelsFileError, match=r"models\.q\.destream: expected true or false"):
        load_models(path)

"""The measuring gateway over real HTTP on 127.0.0.1 (serving/gateway).

Upstreams are the scripted server (a test double: chat completions, faults, a streaming leak)
and :class:`Wire`, a raw HTTP double for what the scripted server does not speak or break: the
responses and Anthropic messages protocols, resets, junk SSE, bodies past a cap. Agents are the
``openai`` SDK, the built-in agent loop, or raw sockets where a client must misbehave.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from pytest_agentbench.agents.config import AgentConfig
from pytest_agentbench.agents.loop import run_agent
from pytest_agentbench.errors import ServerError
from pytest_agentbench.models.adapter import ModelAdapter
from pytest_agentbench.models.registry import ModelSpec, ServeConfig
from pytest_agentbench.packets.gates import run_gates
from pytest_agentbench.packets.schema import load_packet
from pytest_agentbench.results.record import RunRecord, record_to_dict
from pytest_agentbench.sandbox import LocalSandbox
from pytest_agentbench.sandbox.base import SandboxInfo
from pytest_agentbench.serving.gateway import (
    Gateway,
    GatewayClient,
    Limits,
    Route,
    agent_result,
    outcome_of,
    route_for,
    turns_from_calls,
)
from pytest_agentbench.serving.scripted import ScriptedServer

from .conftest import BUGFIX, SCRIPTS

KEY_A = "sk-gwtest-alpha-0123456789abcdef"
KEY_B = "sk-gwtest-bravo-fedcba9876543210"
QWEN_CALL = "<tool_call>\n<function=run>\n<parameter=command>\nls -la\n</parameter>\n</function>\n</tool_call>"


# -- doubles and helpers ---------------------------------------------------------------------------
class Wire:
    """A raw upstream: each request gets the next behaviour (a function of the handler); all are recorded."""

    def __init__(self, *behaviours: Callable[[Any], None]) -> None:
        self.behaviours = list(behaviours)
        self.requests: list[dict[str, Any]] = []
        wire = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                wire.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                (wire.behaviours.pop(0) if len(wire.behaviours) > 1 else wire.behaviours[0])(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def answer(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> Callable[[Any], None]:
    def send(h: Any) -> None:
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    return send


def sse(*events: bytes | dict[str, Any], named: bool = False) -> Callable[[Any], None]:
    def send(h: Any) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Connection", "close")
        h.end_headers()
        for e in events:
            if isinstance(e, dict):
                e = (f"event: {e['type']}\n" if named else "").encode() + f"data: {json.dumps(e)}\n\n".encode()
            h.wfile.write(e)
            h.wfile.flush()
        h.close_connection = True

    return send


def reset(h: Any) -> None:
    """Close with an RST (SO_LINGER 0), before any byte of an answer."""
    h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    h.connection.close()
    h.close_connection = True


def route(alias: str, base_url: str, **kw: Any) -> Route:
    return Route(alias=alias, where=f"models.yaml: models.{alias}", base_url=base_url, model=f"{alias}-model", **kw)


@contextlib.contextmanager
def running(*routes: Route, limits: Limits | None = None) -> Iterator[Gateway]:
    with Gateway({r.alias: r for r in routes}, limits=limits) as gateway:
        yield gateway


def oai(gateway: Gateway, token: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.base_url, api_key=token, max_retries=0, timeout=30)


def post(gateway: Gateway, path: str, body: Any, token: str | None = None, **headers: str) -> tuple[int, Any, bytes]:
    port = int(gateway.base_url.split(":")[2].split("/")[0])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    hdrs = {"Content-Type": "application/json", **{k.replace("_", "-"): v for k, v in headers.items()}}
    if token:
        hdrs["Authorization"] = f"Bearer {token}"
    conn.request("POST", path, body=json.dumps(body).encode(), headers=hdrs)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, response.headers, data


def events_of(raw: bytes) -> list[dict[str, Any]]:
    """The data objects of an SSE body (``[DONE]`` left out)."""
    out = []
    for block in raw.decode().split("\n\n"):
        data = [line[5:].strip() for line in block.splitlines() if line.startswith("data:")]
        if data and data[0] != "[DONE]":
            out.append(json.loads("\n".join(data)))
    return out


def chat(content: str = "hi") -> dict[str, Any]:
    return {"model": "anything", "messages": [{"role": "user", "content": content}]}


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GWTEST_KEY_A", KEY_A)
    monkeypatch.setenv("GWTEST_KEY_B", KEY_B)


# -- routing, keys, tokens -------------------------------------------------------------------------
@pytest.mark.usefixtures("keys")
def test_a_call_reaches_only_its_alias_with_the_real_key_injected_host_side() -> None:
    reply = {"choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}
    a, b = Wire(answer(reply)), Wire(answer(reply))
    try:
        with running(route("a", a.base_url, api_key_env="GWTEST_KEY_A"), route("b", b.base_url)) as gw:
            ticket = gw.open_run("a")
            # the agent names alias b's model: the call still goes to a, the run's alias
            oai(gw, ticket.token).chat.completions.create(model="b-model", messages=[{"role": "user", "content": "x"}])
    finally:
        a.close()
        b.close()
    assert len(a.requests) == 1 and b.requests == []
    sent = a.requests[0]
    assert sent["headers"]["authorization"] == f"Bearer {KEY_A}"
    assert sent["body"]["model"] == "a-model"
    assert ticket.token not in json.dumps(sent)


def test_missing_unknown_and_expired_tokens_are_401_in_the_protocols_shape() -> None:
    with ScriptedServer({"conversations": []}) as server, running(route("a", server.base_url)) as gw:
        status, _, data = post(gw, "/v1/chat/completions", chat())
        assert status == 401 and "no token" in json.loads(data)["error"]["message"]
        with pytest.raises(openai.AuthenticationError, match="not issued by this gateway"):
            oai(gw, "agb-run-forged").chat.completions.create(**chat())
        status, _, data = post(gw, "/v1/messages", {"messages": []}, x_api_key="agb-run-forged")
        body = json.loads(data)
        assert status == 401 and body["type"] == "error" and body["error"]["type"] == "authentication_error"
        ticket = gw.open_run("a")
        assert oai(gw, ticket.token).chat.completions.create(**chat()).choices
        gw.close_run(ticket.run_id)
        with pytest.raises(openai.AuthenticationError, match=f"run {ticket.run_id} has expired \\(the run has ended"):
            oai(gw, ticket.token).chat.completions.create(**chat())
        short = gw.open_run("a", ttl_s=0.2)
        time.sleep(0.3)
        with pytest.raises(openai.AuthenticationError, match="time to live is over"):
            oai(gw, short.token).chat.completions.create(**chat())
        assert server.requests == [chat() | {"model": "a-model"}]


def test_the_admin_api_answers_only_on_the_admin_socket() -> None:
    with ScriptedServer({"conversations": []}) as server, running(route("a", server.base_url)) as gw:
        assert post(gw, "/agentbench/runs", {"alias": "a"})[0] == 404
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as agent_side:
            agent_side.connect(str(gw.agent_socket))
            agent_side.sendall(b'POST /agentbench/runs HTTP/1.1\r\nContent-Length: 14\r\n\r\n{"alias": "a"}')
            assert agent_side.recv(100).startswith(b"HTTP/1.1 404")
        assert oct(gw.admin_socket.stat().st_mode & 0o777) == "0o600"
        assert oct(gw.admin_socket.parent.stat().st_mode & 0o777) == "0o700"
        with GatewayClient(gw.handle()) as client:
            ticket = client.open_run("a", run_id="r1", max_total_tokens=5000)
            with pytest.raises(ServerError, match="already open"):
                client.open_run("a", run_id="r1")
            with pytest.raises(ServerError, match="routes no alias 'zz'"):
                client.open_run("zz")
            models = oai(gw, ticket.token).models.list()
            assert [m.id for m in models.data] == ["a-model"]
            assert client.close_run("r1").budget["limit"] == 5000


# -- measuring and reconciling -----------------------------------------------------------------------
def test_token_totals_equal_the_scripted_servers_usage_and_calls_become_turns() -> None:
    script = {
        "conversations": [
            {
                "responses": [
                    {"content": "looking", "tool_calls": [{"name": "run", "arguments": {"command": "ls"}}]},
                    {
                        "content": "streamed reply with some length to it",
                        "stream_stall_after": 2,
                        "stream_stall_s": 0.3,
                    },
                    {"tool_calls": [{"name": "read_file", "arguments": {"path": "a.py"}}], "usage": {}},
                    {"content": "done", "usage": {"prompt_tokens_details": {"cached_tokens": 4}}},
                ]
            }
        ]
    }
    with ScriptedServer(script) as server, running(route("a", server.base_url)) as gw:
        ticket = gw.open_run("a")
        client = oai(gw, ticket.token)
        messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
        first = client.chat.completions.create(model="x", messages=messages)
        call = first.choices[0].message.tool_calls[0]
        messages += [first.choices[0].message.model_dump(exclude_none=True)]
        messages += [{"role": "tool", "tool_call_id": call.id, "content": "a.py\nb.py"}]
        text = "".join(
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(model="x", messages=messages, stream=True)
            if c.choices
        )  # no include_usage: the gateway asks itself
        messages += [{"role": "assistant", "content": text}]
        chunks = list(
            client.chat.completions.create(
                model="x", messages=messages, stream=True, stream_options={"include_usage": True}
            )
        )
        assert chunks[-1].usage is not None and chunks[-1].choices == []
        tool = [c for c in chunks if c.choices and c.choices[0].delta.tool_calls][0].choices[0].delta.tool_calls[0]
        messages += [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": tool.id, "type": "function", "function": {"name": "read_file", "arguments": "{}"}}
                ],
            }
        ]
        messages += [{"role": "tool", "tool_call_id": tool.id, "content": "print(1)"}]
        client.chat.completions.create(model="x", messages=messages)
        run = gw.close_run(ticket.run_id)
        upstream = server.requests
        totals = gw.totals()["a"]
    # the server's own usage for the same requests, asked again without streaming (the replay is stateless)
    with ScriptedServer(script) as again:
        direct = openai.OpenAI(base_url=again.base_url, api_key="x", max_retries=0)
        usages = [
            direct.chat.completions.create(
                **{k: v for k, v in r.items() if k not in ("stream", "stream_options")}
            ).usage
            for r in upstream
        ]
    assert totals["calls"] == totals["answered"] == 4
    assert totals["prompt_tokens"] == sum(u.prompt_tokens for u in usages)
    assert totals["completion_tokens"] == sum(u.completion_tokens for u in usages)
    assert totals["cached_tokens"] == 4 and totals["usage_reported"]
    assert [r.get("stream_options") for r in upstream] == [None, {"include_usage": True}, {"include_usage": True}, None]
    stream_call = run.calls[1]
    assert stream_call.ttft_s is not None and stream_call.ttft_s < 0.25
    assert stream_call.token_times_s[-1] >= 0.3 and stream_call.token_events == len(stream_call.token_times_s) == 5
    assert set(stream_call.timings) == {"decode_s", "tpot_s", "decode_tok_s"}
    turns = turns_from_calls(run.calls)
    assert sum(t.usage.prompt_tokens for t in turns) == totals["prompt_tokens"]
    assert [o.result for o in turns[0].tool_calls] == ["a.py\nb.py"]
    assert [o.result for o in turns[2].tool_calls] == ["print(1)"]
    result = agent_result(run.calls, wall_s=1.0)
    record = RunRecord("r", load_packet(BUGFIX), spec_for("a"), result, [], SandboxInfo("docker", "container"), 1.0)
    data = record_to_dict(record)
    assert data["outcome"] == "finished" and data["turns"] == 4
    assert data["client"]["tokens"]["prompt"] == totals["prompt_tokens"]
    assert data["client"]["calls"][1]["ttft_s"] == pytest.approx(stream_call.ttft_s, abs=1e-6)
    assert data["client"]["calls"][0]["timings"]["tool_call_format"] == "native"
    assert "[tool run]" in data["transcript"] and "a.py" in data["transcript"]


def spec_for(alias: str, **kw: Any) -> ModelSpec:
    return ModelSpec(alias=alias, model=f"{alias}-model", source=Path("models.yaml"), **kw)


@pytest.mark.parametrize(
    ("behaviour", "failure", "status"),
    [
        (answer({"error": {"message": "slow down"}}, 429, {"Retry-After": "3"}), "rate_limited", 429),
        (answer({"error": {"message": "boom"}}, 500), "server_error", 500),
        (answer({"error": {"message": "invalid api key"}}, 401), "auth_error", 401),
        (answer({"error": {"message": "maximum context length is 2048 tokens"}}, 400), "context_overflow", 400),
        (answer(b"<html>not json</html>"), "server_error", 502),
        (reset, "connection_error", 502),
        (
            answer({"choices": [{"message": {"role": "assistant", "content": ""}, "finish_reason": "content_filter"}]}),
            "refusal",
            200,
        ),
    ],
    ids=["429", "500", "401", "context", "junk-json", "reset", "refusal"],
)
def test_upstream_failures_are_classed_and_answered(behaviour: Any, failure: str, status: int) -> None:
    wire = Wire(behaviour)
    try:
        with running(route("a", wire.base_url)) as gw:
            ticket = gw.open_run("a")
            got, headers, data = post(gw, "/v1/chat/completions", chat(), ticket.token)
            call = gw.close_run(ticket.run_id).calls[0]
    finally:
        wire.close()
    assert (got, call.status, call.failure) == (status, status, failure)
    if status == 429:
        assert headers["Retry-After"] == "3"
    if status == 502:
        assert (
            json.loads(data)["error"]["type"] == "upstream_error"
            and "alias 'a'" in json.loads(data)["error"]["message"]
        )


def test_slow_headers_and_a_stream_kept_alive_are_cut_at_the_aliass_timeout() -> None:
    script = {
        "conversations": [
            {"match": "slow", "responses": [{"delay_s": 5, "content": "late"}]},
            {
                "match": "pings",
                "responses": [{"content": "abc", "stream_keepalive": "comment", "stream_keepalive_every_s": 0.1}],
            },
        ]
    }
    with ScriptedServer(script) as server, running(route("a", server.base_url, timeout_s=1.0)) as gw:
        ticket = gw.open_run("a")
        start = time.monotonic()
        status, _, data = post(gw, "/v1/chat/completions", chat("slow"), ticket.token)
        assert status == 504 and json.loads(data)["error"]["type"] == "upstream_timeout"
        assert time.monotonic() - start < 3
        start = time.monotonic()
        with pytest.raises(http.client.IncompleteRead):  # the agent's stream is dropped, as the upstream's was cut
            post(gw, "/v1/chat/completions", chat("pings") | {"stream": True}, ticket.token)
        assert time.monotonic() - start < 3
        run = gw.close_run(ticket.run_id)
        calls = run.calls
    assert [c.failure for c in calls] == ["timeout", "timeout"] and run.in_flight == 0
    assert "within 1.0 s" in calls[0].error


def test_broken_streams_are_measured_and_capped() -> None:
    finish = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    wire = Wire(
        sse(
            b"data: {not json\n\n", {"choices": [{"index": 0, "delta": {"content": "x"}}]}, finish, b"data: [DONE]\n\n"
        ),
        sse({"choices": [{"index": 0, "delta": {"content": "half"}}]}),  # ends without a finish
        sse(b"data: " + b"x" * 300_000),  # one event past the cap, never ending
        answer({"choices": [{"message": {"content": "y" * 300_000}, "finish_reason": "stop"}]}),  # past the body cap
    )
    limits = Limits(max_event_bytes=100_000, max_response_bytes=200_000)
    try:
        with running(route("a", wire.base_url), limits=limits) as gw:
            ticket = gw.open_run("a")
            status, _, junk = post(gw, "/v1/chat/completions", chat() | {"stream": True}, ticket.token)
            assert status == 200 and b"{not json" in junk  # the agent sees what the server sent
            post(gw, "/v1/chat/completions", chat() | {"stream": True}, ticket.token)
            with pytest.raises(http.client.IncompleteRead):  # cut mid-stream: no final chunk
                post(gw, "/v1/chat/completions", chat() | {"stream": True}, ticket.token)
            status, _, data = post(gw, "/v1/chat/completions", chat(), ticket.token)
            assert status == 502 and "passed 200,000 bytes" in json.loads(data)["error"]["message"]
            calls = gw.close_run(ticket.run_id).calls
    finally:
        wire.close()
    assert [c.failure for c in calls] == ["server_error", "connection_error", "server_error", "server_error"]
    assert "1 event(s) were not JSON" in calls[0].error and "without finishing" in calls[1].error
    assert "grew past 100,000 bytes" in calls[2].error


# -- hostile clients -----------------------------------------------------------------------------------
def _raw(gateway: Gateway) -> socket.socket:
    port = int(gateway.base_url.split(":")[2].split("/")[0])
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        return False
    return True


def test_hostile_clients_are_capped_and_timed_out() -> None:
    limits = Limits(max_request_bytes=1000, request_read_s=1.0, io_timeout_s=0.5, max_connections=3)
    with ScriptedServer({"conversations": []}) as server, running(route("a", server.base_url), limits=limits) as gw:
        ticket = gw.open_run("a")
        status, _, data = post(gw, "/v1/chat/completions", chat("x" * 2000), ticket.token)
        assert status == 413 and "at most 1,000" in json.loads(data)["error"]["message"]
        assert post(gw, "/v1/nothing", {}, ticket.token)[0] == 404
        sock = _raw(gw)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n")
        sock.sendall(f"Authorization: Bearer {ticket.token}\r\n\r\n".encode())
        assert sock.recv(100).startswith(b"HTTP/1.1 411")
        sock.close()
        start = time.monotonic()
        loris = _raw(gw)  # one byte every 0.3 s: each read is in time, the request never is
        for byte in b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n":
            try:
                loris.send(bytes([byte]))
            except OSError:
                break
            time.sleep(0.3)
            if time.monotonic() - start > 4:
                break
        assert _closed_within(loris, 1) and time.monotonic() - start < 3
        idle = [_raw(gw) for _ in range(3)]
        busy = _raw(gw)
        assert busy.recv(100).startswith(b"HTTP/1.1 503")
        assert all(_closed_within(s, 2) for s in idle)  # an idle connection is closed by the read timeout
        assert oai(gw, ticket.token).chat.completions.create(**chat()).choices  # and the gateway still serves
        for s in (*idle, busy, loris):
            s.close()
    assert len(server.requests) == 1


# -- budgets and protocols --------------------------------------------------------------------------
def test_a_spent_token_budget_is_a_402_and_caps_are_clamped_to_what_is_left() -> None:
    with ScriptedServer({"conversations": [{"responses": [{"content": "a" * 400}] * 3}]}) as server:
        with running(route("a", server.base_url)) as gw:
            ticket = gw.open_run("a", max_total_tokens=150)
            client = oai(gw, ticket.token)
            client.chat.completions.create(**chat(), max_tokens=20)  # 100 completion tokens: over the 20 asked
            client.chat.completions.create(**chat(), max_tokens=1000)
            with pytest.raises(openai.APIStatusError, match="token budget of 150 used up") as refused:
                client.chat.completions.create(**chat())
            assert refused.value.status_code == 402
            assert refused.value.body["type"] == "token_budget_exceeded"
            run = gw.close_run(ticket.run_id)
    used = run.calls[0].usage.prompt_tokens + run.calls[0].usage.completion_tokens
    assert run.calls[0].usage.completion_tokens == 100 and [r["max_tokens"] for r in server.requests] == [
        20,
        150 - used,
    ]
    assert [c.refused for c in run.calls] == [None, None, "token_budget"]
    assert run.budget["spent"] and outcome_of(run.calls) == ("token_budget", None)
    assert len(turns_from_calls(run.calls)) == 2


def test_a_protocol_the_alias_does_not_serve_is_refused_with_the_fix() -> None:
    spec = spec_for("s", base_url="http://127.0.0.1:9/v1")
    serve = ServeConfig(engine="scripted", script="x.yaml")
    scripted = route_for(
        ModelSpec(alias="s", model="m", source=Path("models.yaml"), serve=serve), "http://127.0.0.1:9/v1"
    )
    assert route_for(spec, spec.base_url or "").protocols is None and scripted.protocols == frozenset({"chat"})
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
            with pytest.raises(openai.BadRequestError, match="does not serve OpenAI responses"):
                oai(gw, ticket.token).responses.create(model="x", input="hi")
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


def _streamed(client: openai.OpenAI) -> tuple[str, list[dict[str, str]], str | None]:
    """What a streaming agent assembles: the text, the tool calls (by index), the finish reason."""
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
        direct = openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0)
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


# -- the plugin: one gateway per session, shared by xdist workers ---------------------------------------
AGENT_TEST = """
import json, os
import openai, pytest
from pytest_agentbench.plugin.session import SESSION


@pytest.mark.parametrize("i", range(4))
def test_through_the_gateway(request, i):
    state = request.config.stash[SESSION]
    with state.gateway_client() as client:
        ticket = client.open_run("a")
        reply = openai.OpenAI(base_url=ticket.base_url, api_key=ticket.token, max_retries=0).chat.completions.create(
            model="a", messages=[{"role": "user", "content": "stats.median([4, 1, 3, 2])"}])
        run = client.close_run(ticket.run_id)
    assert reply.choices and [c.usage.reported for c in run.calls] == [True]
    with open(f"seen-{os.getpid()}-{i}.json", "w") as f:
        json.dump({"base_url": ticket.base_url, "worker": os.environ.get("PYTEST_XDIST_WORKER")}, f)
"""


@pytest.mark.slow
def test_the_plugin_starts_one_gateway_shared_by_the_xdist_workers(
    pytester: pytest.Pytester, user_folder: Path
) -> None:
    for entry in user_folder.iterdir():
        entry.rename(pytester.path / entry.name)
    pytester.makepyfile(test_agent_via_gateway=AGENT_TEST)
    args = ["--models=a", "--packets", "packets", "--sandbox=local", "-p", "no:cacheprovider", "-n", "2"]
    result = pytester.runpytest_subprocess(*args, "--agentbench-gateway")
    result.assert_outcomes(passed=5)  # 4 calls through the gateway + the packet run (built-in agent, direct)
    seen = [json.loads(p.read_text()) for p in pytester.path.glob("seen-*.json")]
    assert len(seen) == 4 and len({s["base_url"] for s in seen}) == 1 and len({s["worker"] for s in seen}) == 2
    result.stdout.fnmatch_lines(["*a: gateway 4 call(s) (0 failed, 0 refused), tokens *"])
    for p in pytester.path.glob("seen-*.json"):
        p.unlink()
    plain = pytester.runpytest_subprocess(*args[:-2], "-k", "gateway")  # default: no gateway is started
    plain.assert_outcomes(failed=4)
    plain.stdout.fnmatch_lines(["*no gateway in this session: pass --agentbench-gateway*"])


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

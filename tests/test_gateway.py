"""The measuring gateway over real HTTP on 127.0.0.1 (serving/gateway): routing, keys and tokens,
measuring and reconciling, failures, hostile clients, budgets, the plugin's session gateway.

Upstreams are the scripted server (a test double) and tests/gateway_doubles.Wire; agents are plain
``http.client`` requests, the ``openai`` SDK where an SDK agent is under test (skipped without
the dev extra), or raw sockets where a client must misbehave.
"""

import http.client
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.errors import ServerError
from pytest_agentbench.packets.schema import load_packet
from pytest_agentbench.results.record import RunRecord, record_to_dict
from pytest_agentbench.sandbox.base import SandboxInfo
from pytest_agentbench.serving.gateway import (
    Gateway,
    GatewayClient,
    Limits,
    agent_result,
    outcome_of,
    turns_from_calls,
)
from pytest_agentbench.serving.http import Client
from pytest_agentbench.serving.scripted import ScriptedServer

from .conftest import BUGFIX
from .gateway_doubles import KEY_A, KEY_B, Wire, answer, chat, get, oai, post, reset, route, running, spec_for, sse


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
            body = {"model": "b-model", "messages": [{"role": "user", "content": "x"}]}
            assert post(gw, "/v1/chat/completions", body, ticket.token)[0] == 200
    finally:
        a.close()
        b.close()
    assert len(a.requests) == 1 and b.requests == []
    sent = a.requests[0]
    assert sent["headers"]["authorization"] == f"Bearer {KEY_A}"
    assert sent["body"]["model"] == "a-model"
    assert ticket.token not in json.dumps(sent)


def _refused(gw: Gateway, token: str | None) -> str:
    """The message of a chat call refused with 401 in OpenAI's error shape."""
    status, _, data = post(gw, "/v1/chat/completions", chat(), token)
    error = json.loads(data)["error"]
    assert status == 401 and error["type"] == "authentication_error"
    return str(error["message"])


def test_missing_unknown_and_expired_tokens_are_401_in_the_protocols_shape() -> None:
    with ScriptedServer({"conversations": []}) as server, running(route("a", server.base_url)) as gw:
        assert "no token" in _refused(gw, None)
        assert "not issued by this gateway" in _refused(gw, "agb-run-forged")
        status, _, data = post(gw, "/v1/messages", {"messages": []}, x_api_key="agb-run-forged")
        body = json.loads(data)
        assert status == 401 and body["type"] == "error" and body["error"]["type"] == "authentication_error"
        ticket = gw.open_run("a")
        assert json.loads(post(gw, "/v1/chat/completions", chat(), ticket.token)[2])["choices"]
        gw.close_run(ticket.run_id)
        assert f"run {ticket.run_id} has expired (the run has ended" in _refused(gw, ticket.token)
        short = gw.open_run("a", ttl_s=0.2)
        time.sleep(0.3)
        assert "time to live is over" in _refused(gw, short.token)
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
            status, _, models = get(gw, "/v1/models", ticket.token)
            assert status == 200 and [m["id"] for m in json.loads(models)["data"]] == ["a-model"]
            assert client.close_run("r1").budget["limit"] == 5000


WITHOUT_SDKS = """
import importlib.abc, json, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("openai", "httpx", "httpx2", "anthropic"):
            raise ImportError(f"blocked: {name}")

sys.meta_path.insert(0, Block())
from pytest_agentbench.serving.gateway import Gateway, GatewayClient, Route
from pytest_agentbench.serving.http import Client
from pytest_agentbench.serving.scripted import ScriptedServer

with ScriptedServer({"conversations": [{"responses": [{"content": "one"}, {"content": "two"}]}]}) as server:
    route = Route(alias="a", where="models.a", base_url=server.base_url, model="m")
    with Gateway({"a": route}) as gw, GatewayClient(gw.handle()) as admin:
        ticket = admin.open_run("a")
        with Client(ticket.base_url, {"Authorization": f"Bearer {ticket.token}"}) as agent:
            body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            agent.post_json("/chat/completions", json.dumps(body).encode(), timeout=10)
            body["messages"] += [{"role": "assistant", "content": "one"}, {"role": "user", "content": "go on"}]
            with agent.stream("/chat/completions", json.dumps(body | {"stream": True}).encode(), timeout=10) as s:
                streamed = list(s)
        calls = admin.close_run(ticket.run_id).calls
print(json.dumps({"calls": [[c.stream, c.failure, c.usage.reported] for c in calls], "events": len(streamed),
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in ("openai", "httpx", "httpx2"))}))
"""


def test_the_gateway_runs_without_any_sdk_or_httpx(tmp_path: Path) -> None:
    """Upstream calls, streams and the admin socket all go through serving/http.py: no SDK is imported."""
    script = tmp_path / "no_sdk.py"
    script.write_text(WITHOUT_SDKS)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["calls"] == [[False, None, True], [True, None, True]] and seen["events"] > 2
    assert seen["loaded"] == []


# -- measuring and reconciling -----------------------------------------------------------------------
CONVERSATION = {
    "conversations": [
        {
            "responses": [
                {"content": "looking", "tool_calls": [{"name": "run", "arguments": {"command": "ls"}}]},
                {"content": "streamed reply with some length to it", "stream_stall_after": 2, "stream_stall_s": 0.3},
                {"tool_calls": [{"name": "read_file", "arguments": {"path": "a.py"}}], "usage": {}},
                {"content": "done", "usage": {"prompt_tokens_details": {"cached_tokens": 4}}},
            ]
        }
    ]
}


def _converse(client: Any) -> None:
    """Four calls an agent makes: plain, streamed without and with include_usage, plain; tool results sent back."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "go"}]
    first = client.chat.completions.create(model="x", messages=messages).choices[0].message
    messages += [first.model_dump(exclude_none=True)]
    messages += [{"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "a.py\nb.py"}]
    stream = client.chat.completions.create(model="x", messages=messages, stream=True)  # the gateway asks for usage
    messages += [{"role": "assistant", "content": "".join(c.choices[0].delta.content or "" for c in stream)}]
    options = {"include_usage": True}
    chunks = list(client.chat.completions.create(model="x", messages=messages, stream=True, stream_options=options))
    assert chunks[-1].usage is not None and chunks[-1].choices == []  # asked for: passed through
    tool = next(c.choices[0].delta.tool_calls[0] for c in chunks if c.choices and c.choices[0].delta.tool_calls)
    function = {"name": "read_file", "arguments": "{}"}
    messages += [{"role": "assistant", "tool_calls": [{"id": tool.id, "type": "function", "function": function}]}]
    messages += [{"role": "tool", "tool_call_id": tool.id, "content": "print(1)"}]
    client.chat.completions.create(model="x", messages=messages)


@pytest.fixture
def conversation() -> dict[str, Any]:
    """The conversation of an OpenAI-SDK agent through the gateway: its run, the requests the server got,
    the alias's totals."""
    with ScriptedServer(CONVERSATION) as server, running(route("a", server.base_url)) as gw:
        ticket = gw.open_run("a")
        _converse(oai(gw, ticket.token))
        return {"run": gw.close_run(ticket.run_id), "upstream": server.requests, "totals": gw.totals()["a"]}


def test_token_totals_equal_the_scripted_servers_usage(conversation: dict[str, Any]) -> None:
    totals, upstream = conversation["totals"], conversation["upstream"]
    # the server's own usage for the same requests, asked again without streaming (the replay is stateless)
    with ScriptedServer(CONVERSATION) as again, Client(again.base_url) as direct:
        plain = [{k: v for k, v in r.items() if k not in ("stream", "stream_options")} for r in upstream]
        usages = [direct.post_json("/chat/completions", json.dumps(r).encode(), timeout=30)["usage"] for r in plain]
    assert totals["calls"] == totals["answered"] == 4
    assert totals["prompt_tokens"] == sum(u["prompt_tokens"] for u in usages)
    assert totals["completion_tokens"] == sum(u["completion_tokens"] for u in usages)
    assert totals["cached_tokens"] == 4 and totals["usage_reported"]
    assert [r.get("stream_options") for r in upstream] == [None, {"include_usage": True}, {"include_usage": True}, None]
    stream_call = conversation["run"].calls[1]
    assert stream_call.ttft_s is not None and stream_call.ttft_s < 0.25
    assert stream_call.token_times_s[-1] >= 0.3 and stream_call.token_events == len(stream_call.token_times_s) == 5
    assert set(stream_call.timings) == {"decode_s", "tpot_s", "decode_tok_s"}


def test_a_runs_calls_become_the_records_turns_and_transcript(conversation: dict[str, Any]) -> None:
    calls, totals = conversation["run"].calls, conversation["totals"]
    turns = turns_from_calls(calls)
    assert sum(t.usage.prompt_tokens for t in turns) == totals["prompt_tokens"]
    assert [o.result for o in turns[0].tool_calls] == ["a.py\nb.py"]
    assert [o.result for o in turns[2].tool_calls] == ["print(1)"]
    result = agent_result(calls, wall_s=1.0)
    record = RunRecord("r", load_packet(BUGFIX), spec_for("a"), result, [], SandboxInfo("docker", "container"), 1.0)
    data = record_to_dict(record)
    assert data["outcome"] == "finished" and data["turns"] == 4
    assert data["client"]["tokens"]["prompt"] == totals["prompt_tokens"]
    assert data["client"]["calls"][1]["ttft_s"] == pytest.approx(calls[1].ttft_s, abs=1e-6)
    assert data["client"]["calls"][0]["timings"]["tool_call_format"] == "native"
    assert "[tool run]" in data["transcript"] and "a.py" in data["transcript"]


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


def test_a_streamed_call_gets_the_upstreams_error_and_an_answer_that_is_no_stream_is_explained() -> None:
    wire = Wire(answer({"error": {"message": "slow down"}}, 429, {"Retry-After": "3"}), answer({"choices": []}))
    try:
        with running(route("a", wire.base_url)) as gw:
            ticket = gw.open_run("a")
            limited = post(gw, "/v1/chat/completions", chat() | {"stream": True}, ticket.token)
            got, _, data = post(gw, "/v1/chat/completions", chat() | {"stream": True}, ticket.token)
            calls = gw.close_run(ticket.run_id).calls
    finally:
        wire.close()
    assert limited[0] == 429 and limited[1]["Retry-After"] == "3"
    assert json.loads(limited[2]) == {"error": {"message": "slow down"}}  # as the upstream sent it
    message = json.loads(data)["error"]["message"]
    assert got == 502 and "without an event stream" in message and "give alias 'a'" in message
    assert "`destream: true`" in message and "stream: false" not in message
    assert [(c.status, c.failure) for c in calls] == [(429, "rate_limited"), (502, "server_error")]


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
            assert status == 502 and "over the 195 KiB limit" in json.loads(data)["error"]["message"]
            calls = gw.close_run(ticket.run_id).calls
    finally:
        wire.close()
    assert [c.failure for c in calls] == ["server_error", "connection_error", "server_error", "server_error"]
    assert "1 event(s) were not JSON" in calls[0].error and "without finishing" in calls[1].error
    assert "SSE event over 100,000 bytes" in calls[2].error


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
        assert post(gw, "/v1/chat/completions", chat(), ticket.token)[0] == 200  # and the gateway still serves
        for s in (*idle, busy, loris):
            s.close()
    assert len(server.requests) == 1


# -- budgets and protocols --------------------------------------------------------------------------
def test_a_spent_token_budget_is_a_402_and_caps_are_clamped_to_what_is_left() -> None:
    with ScriptedServer({"conversations": [{"responses": [{"content": "a" * 400}] * 3}]}) as server:
        with running(route("a", server.base_url)) as gw:
            ticket = gw.open_run("a", max_total_tokens=150)
            path = "/v1/chat/completions"
            post(gw, path, chat() | {"max_tokens": 20}, ticket.token)  # 100 completion tokens: over the 20 asked
            post(gw, path, chat() | {"max_tokens": 1000}, ticket.token)
            status, _, refused = post(gw, path, chat(), ticket.token)
            error = json.loads(refused)["error"]
            assert status == 402 and error["type"] == "token_budget_exceeded"
            assert "token budget of 150 used up" in error["message"]
            run = gw.close_run(ticket.run_id)
    used = run.calls[0].usage.prompt_tokens + run.calls[0].usage.completion_tokens
    assert run.calls[0].usage.completion_tokens == 100 and [r["max_tokens"] for r in server.requests] == [
        20,
        150 - used,
    ]
    assert [c.refused for c in run.calls] == [None, None, "token_budget"]
    assert run.budget["spent"] and outcome_of(run.calls) == ("token_budget", None)
    assert len(turns_from_calls(run.calls)) == 2


def test_a_spent_turn_budget_is_a_402_whatever_the_agent_asks() -> None:
    """A run's turn budget counts answered calls (a failed one is no turn); the next is refused, not forwarded."""
    script = {
        "conversations": [{"responses": [{"content": "one"}, {"attempts": [{"status": 503}, {"content": "two"}]}]}]
    }
    with ScriptedServer(script) as server:
        with running(route("a", server.base_url)) as gw:
            ticket = gw.open_run("a", max_calls=2)
            path = "/v1/chat/completions"
            assert post(gw, path, chat(), ticket.token)[0] == 200
            first = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "one"}]}
            assert post(gw, path, chat() | first, ticket.token)[0] == 503  # failed: not a turn
            assert post(gw, path, chat() | first, ticket.token)[0] == 200
            status, _, refused = post(gw, path, chat() | first, ticket.token)
            run = gw.close_run(ticket.run_id)
    error = json.loads(refused)["error"]
    assert status == 402 and error["type"] == "turn_budget_exceeded" and "2 model call(s)" in error["message"]
    assert len(server.requests) == 3 and [c.refused for c in run.calls] == [None, None, None, "turn_budget"]
    assert outcome_of(run.calls) == ("max_turns", None) and run.budget["max_calls"] == 2
    with pytest.raises(ValueError, match="max_calls must be a whole number >= 1"):
        gw.runs.open("a", max_calls=0)


# -- the plugin: one gateway per session, shared by xdist workers ---------------------------------------
AGENT_TEST = """
import json, os
import pytest
from pytest_agentbench.plugin.session import SESSION
from pytest_agentbench.serving.http import Client


@pytest.mark.parametrize("i", range(4))
def test_through_the_gateway(request, i):
    state = request.config.stash[SESSION]
    with state.gateway_client() as client:
        ticket = client.open_run("a")
        body = {"model": "a", "messages": [{"role": "user", "content": "stats.median([4, 1, 3, 2])"}]}
        with Client(ticket.base_url, {"Authorization": f"Bearer {ticket.token}"}) as agent:
            reply = agent.post_json("/chat/completions", json.dumps(body).encode(), timeout=30)
        run = client.close_run(ticket.run_id)
    assert reply["choices"] and [c.usage.reported for c in run.calls] == [True]
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

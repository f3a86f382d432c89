"""The scripted server's plans and protocols: plan steps mapped onto the tools three real agents
declare (mini-swe-agent, Claude Code, Codex), chat / responses / Anthropic messages served
streamed and not and read by the official SDKs, multi-turn plans fed back their tool results,
usage totals, and broken plan files."""

from __future__ import annotations

import json
import subprocess
import typing
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.errors import ConfigError
from pytest_agentbench.serving.scripted import (
    EXHAUSTED,
    USAGE_PATH,
    Call,
    PlanMismatch,
    ScriptedServer,
    Tool,
    act,
    declared_tools,
)
from pytest_agentbench.serving.scripted.plan import heredoc

openai = pytest.importorskip("openai")


def _fn(name: str, props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required}


S, N = {"type": "string"}, {"type": "number"}
# mini-swe-agent (tool-calling mode): one `bash` tool, chat completions
MINI = [{"type": "function", "function": {"name": "bash", "parameters": _fn("bash", {"command": S}, ["command"])}}]
# Claude Code: Anthropic tools with input_schema
CLAUDE = [
    {"name": "Bash", "input_schema": _fn("", {"command": S, "timeout": N, "description": S}, ["command"])},
    {"name": "Read", "input_schema": _fn("", {"file_path": S, "offset": N, "limit": N}, ["file_path"])},
    {"name": "Write", "input_schema": _fn("", {"file_path": S, "content": S}, ["file_path", "content"])},
    {
        "name": "Edit",
        "input_schema": _fn(
            "", {"file_path": S, "old_string": S, "new_string": S}, ["file_path", "old_string", "new_string"]
        ),
    },
    {"type": "web_search_20250305", "name": "web_search"},
]
# Codex CLI: responses tools, `shell` takes an argv array; apply_patch is a freeform (custom) tool
CODEX = [
    {
        "type": "function",
        "name": "shell",
        "parameters": _fn("", {"command": {"type": "array", "items": S}, "workdir": S, "timeout_ms": N}, ["command"]),
    },
    {"type": "custom", "name": "apply_patch", "format": {"type": "grammar", "syntax": "lark", "definition": "..."}},
    {"type": "function", "name": "update_plan", "parameters": _fn("", {"plan": {"type": "array"}}, ["plan"])},
]


# -- the mapping (pure) ---------------------------------------------------------------------------
def test_declared_tools_read_each_protocols_shape() -> None:
    assert [t.describe() for t in declared_tools("chat", {"tools": MINI})] == ["bash(command)"]
    claude = declared_tools("messages", {"tools": CLAUDE})
    assert [t.name for t in claude] == ["Bash", "Read", "Write", "Edit", "web_search"]
    assert claude[-1].kind == "web_search_20250305" and claude[2].required == ("file_path", "content")
    codex = declared_tools("responses", {"tools": CODEX})
    assert [(t.name, t.kind) for t in codex] == [
        ("shell", "function"),
        ("apply_patch", "custom"),
        ("update_plan", "function"),
    ]


@pytest.mark.parametrize(
    ("protocol", "tools", "expected"),
    [
        ("chat", MINI, Call("bash", {"command": "ls -la"})),
        ("messages", CLAUDE, Call("Bash", {"command": "ls -la"})),
        ("responses", CODEX, Call("shell", {"command": ["bash", "-lc", "ls -la"]})),
    ],
    ids=["mini-swe-agent", "claude-code", "codex"],
)
def test_a_shell_step_goes_to_each_agents_shell_tool(protocol: str, tools: list, expected: Call) -> None:
    action = act({"shell": "ls -la", "thinking": "look"}, declared_tools(protocol, {"tools": tools}))
    assert action.calls == (expected,) and action.thinking == "look" and action.text is None


def test_a_write_step_prefers_a_write_tool_and_falls_back_to_a_heredoc() -> None:
    step = {"write": {"path": "pkg/a.py", "content": "x = 1\n"}}
    claude = declared_tools("messages", {"tools": CLAUDE})
    assert act(step, claude).calls == (Call("Write", {"file_path": "pkg/a.py", "content": "x = 1\n"}),)
    absolute = act(step, claude, workdir="/workspace").calls[0]
    assert absolute.arguments["file_path"] == "/workspace/pkg/a.py"  # Claude Code's Write takes absolute paths
    via_shell = act({**step, "via": "shell"}, claude).calls[0]
    assert via_shell.name == "Bash" and via_shell.arguments["command"] == heredoc("pkg/a.py", "x = 1\n")
    mini = act(step, declared_tools("chat", {"tools": MINI})).calls[0]
    assert mini == Call("bash", {"command": heredoc("pkg/a.py", "x = 1\n")})
    codex = act(step, declared_tools("responses", {"tools": CODEX})).calls[0]
    assert codex.name == "shell" and codex.arguments["command"] == ["bash", "-lc", heredoc("pkg/a.py", "x = 1\n")]
    with pytest.raises(PlanMismatch, match=r"via: tool needs .*the request declares: bash\(command\)"):
        act({**step, "via": "tool"}, declared_tools("chat", {"tools": MINI}))


@pytest.mark.parametrize(
    "content",
    ["line\n", "no newline at the end", "", "AGENTBENCH_EOF\nsays $HOME `x` 'q' \"d\"\n", "\n\n", "tab\tand \\ back\n"],
)
def test_the_heredoc_writes_exactly_the_content(tmp_path: Path, content: str) -> None:
    subprocess.run(["bash", "-c", heredoc("sub dir/f.txt", content)], cwd=tmp_path, check=True)
    assert (tmp_path / "sub dir" / "f.txt").read_bytes() == content.encode()


def test_without_tools_a_step_is_a_fenced_block_for_text_protocol_agents() -> None:
    assert (
        act({"shell": "pytest -q", "text": "THOUGHT: run it"}, []).text == "THOUGHT: run it\n\n```bash\npytest -q\n```"
    )
    written = act({"write": {"path": "a.txt", "content": "hi\n"}}, [])
    assert written.calls == () and written.text == "```bash\n" + heredoc("a.txt", "hi\n") + "\n```"
    assert act({"finish": "done"}, declared_tools("chat", {"tools": MINI})).text == "done"
    assert act({"say": "hello", "thinking": "t"}, []) == act({"say": "hello", "thinking": "t"}, [])


def test_tools_that_cannot_carry_the_step_are_named() -> None:
    tools = [
        Tool("read_file", properties={"path": S}, required=("path",)),
        Tool("run", properties={"command": S, "cwd": S}, required=("command", "cwd")),  # cwd cannot be filled
        Tool("apply_patch", kind="custom"),
    ]
    with pytest.raises(PlanMismatch) as err:
        act({"shell": "ls"}, tools)
    assert "read_file(path), run(command, cwd), apply_patch [custom]" in str(err.value)
    with pytest.raises(PlanMismatch, match="a write step needs a write tool"):
        act({"write": {"path": "a", "content": "b"}}, tools)


# -- the protocols, through the SDKs ---------------------------------------------------------------
PLAN = {
    "conversations": [
        {
            "match": "fix the median",
            "workdir": "/workspace",
            "plan": [
                {"shell": "cat stats.py", "thinking": "read first"},
                {"write": {"path": "stats.py", "content": "def median(xs):\n    return 2\n"}, "text": "Fixing."},
                {"finish": "The median is fixed."},
            ],
        },
        {
            "match": "leak please",
            "responses": [{"tool_calls": [{"name": "bash", "arguments": {"command": "ls"}}], "stream_leak": True}],
        },
        {
            "match": "custom tool",
            "responses": [{"tool_calls": [{"name": "apply_patch", "input": "*** Begin Patch\n*** End Patch"}]}],
        },
        {"match": "rate limit", "responses": [{"status": 429, "error": "slow down", "headers": {"Retry-After": "0"}}]},
    ]
}


@pytest.fixture
def server() -> Any:
    with ScriptedServer(PLAN) as srv:
        yield srv


def _oai(server: ScriptedServer) -> Any:
    return openai.OpenAI(base_url=server.base_url, api_key="scripted", max_retries=0, timeout=30)


def _chat_turn(client: Any, messages: list, stream: bool) -> tuple[Any, Any]:
    """One chat call; (the assistant message as a dict, the usage) whether streamed or not."""
    if not stream:
        out = client.chat.completions.create(model="m", messages=messages, tools=MINI)
        return out.choices[0].message.model_dump(exclude_none=True), out.usage
    text, calls, usage = "", {}, None
    for chunk in client.chat.completions.create(
        model="m", messages=messages, tools=MINI, stream=True, stream_options={"include_usage": True}
    ):
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            for tc in choice.delta.tool_calls or []:
                slot = calls.setdefault(
                    tc.index, {"id": tc.id, "type": "function", "function": {"name": "", "arguments": ""}}
                )
                slot["function"]["name"] += (tc.function.name or "") if tc.function else ""
                slot["function"]["arguments"] += (tc.function.arguments or "") if tc.function else ""
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = list(calls.values())
    return message, usage


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_chat_follows_the_plan_as_the_client_sends_tool_results_back(server: ScriptedServer, stream: bool) -> None:
    client, messages = _oai(server), [{"role": "user", "content": "Please fix the median."}]
    seen, prompt = [], 0
    for _ in range(4):
        message, usage = _chat_turn(client, messages, stream)
        prompt += usage.prompt_tokens
        messages.append(message)
        seen.append(message)
        for call in message.get("tool_calls", []):
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": "exit 0"})
    assert json.loads(seen[0]["tool_calls"][0]["function"]["arguments"]) == {"command": "cat stats.py"}
    assert seen[1]["content"] == "Fixing."
    command = json.loads(seen[1]["tool_calls"][0]["function"]["arguments"])["command"]
    assert command.startswith("mkdir -p /workspace && cat > /workspace/stats.py <<'AGENTBENCH_EOF'\n")
    assert seen[2] == {"role": "assistant", "content": "The median is fixed."}
    assert seen[3]["content"] == EXHAUSTED
    assert server.usage_totals().chat.prompt_tokens == prompt and server.usage_totals().chat.requests == 4


def _responses_input(prompt: str, turns: list[Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "<environment_context>cwd</environment_context>"}],
        },
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": prompt}]},
    ]
    for output in turns:
        items += [item.model_dump(exclude_none=True) for item in output]
        items += [
            {"type": "function_call_output", "call_id": i.call_id, "output": "ok"}
            for i in output
            if i.type == "function_call"
        ]
    return items


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_responses_follow_the_plan_through_codex_tools(server: ScriptedServer, stream: bool) -> None:
    client, turns, usages = _oai(server), [], []
    for _ in range(3):
        kwargs = {"model": "m", "input": _responses_input("now fix the median", turns), "tools": CODEX}
        if stream:
            with client.responses.stream(**kwargs) as events:
                kinds = [event.type for event in events]
                response = events.get_final_response()
            assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
        else:
            response = client.responses.create(**kwargs)
        turns.append(response.output)
        usages.append(response.usage)
    first = {item.type: item for item in turns[0]}
    assert first["reasoning"].content[0].text == "read first"
    assert json.loads(first["function_call"].arguments) == {"command": ["bash", "-lc", "cat stats.py"]}
    second = [item.type for item in turns[1]]
    assert second == ["message", "function_call"] and turns[1][0].content[0].text == "Fixing."
    assert [item.type for item in turns[2]] == ["message"] and response.output_text == "The median is fixed."
    assert turns[0][1].call_id != turns[1][1].call_id
    totals = server.usage_totals().responses
    assert totals.prompt_tokens == sum(u.input_tokens for u in usages) and totals.requests == 3
    assert totals.completion_tokens == sum(u.output_tokens for u in usages) and usages[0].total_tokens > 0


def test_a_custom_tool_call_is_a_custom_tool_call_item(server: ScriptedServer) -> None:
    with _oai(server).responses.stream(model="m", input="custom tool", tools=CODEX) as events:
        deltas = [e.delta for e in events if e.type == "response.custom_tool_call_input.delta"]
        response = events.get_final_response()
    (item,) = response.output
    assert item.type == "custom_tool_call" and item.name == "apply_patch" and item.input == "".join(deltas)


def _anthropic(server: ScriptedServer) -> Any:
    sdk = pytest.importorskip("anthropic")
    return sdk.Anthropic(base_url=server.root_url, api_key="scripted", max_retries=0, timeout=30)


def _claude_messages(prompt: str, turns: list[Any]) -> list[dict[str, Any]]:
    reminder = {"type": "text", "text": "<system-reminder>be careful</system-reminder>"}
    messages: list[dict[str, Any]] = [{"role": "user", "content": [reminder, {"type": "text", "text": prompt}]}]
    for message in turns:
        messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]})
        results = [
            {"type": "tool_result", "tool_use_id": b.id, "content": "ok"}
            for b in message.content
            if b.type == "tool_use"
        ]
        if results:
            messages.append({"role": "user", "content": results})
    return messages


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "streamed"])
def test_messages_follow_the_plan_through_claude_code_tools(server: ScriptedServer, stream: bool) -> None:
    client, turns = _anthropic(server), []
    for _ in range(3):
        kwargs = {"model": "m", "max_tokens": 1024, "system": [{"type": "text", "text": "You are Claude Code."}]}
        kwargs |= {"messages": _claude_messages("please fix the median", turns), "tools": CLAUDE}
        if stream:
            with client.messages.stream(**kwargs) as events:
                kinds = [event.type for event in events]
                message = events.get_final_message()
            assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
        else:
            message = client.messages.create(**kwargs)
        turns.append(message)
    assert [b.type for b in turns[0].content] == ["thinking", "tool_use"] and turns[0].stop_reason == "tool_use"
    assert turns[0].content[1].name == "Bash" and turns[0].content[1].input == {"command": "cat stats.py"}
    write = turns[1].content[1]
    assert write.name == "Write" and write.input == {
        "file_path": "/workspace/stats.py",
        "content": "def median(xs):\n    return 2\n",
    }
    assert turns[2].stop_reason == "end_turn" and turns[2].content[0].text == "The median is fixed."
    totals = server.usage_totals().messages
    assert totals.prompt_tokens == sum(m.usage.input_tokens for m in turns) > 0
    assert totals.completion_tokens == sum(m.usage.output_tokens for m in turns) and totals.answered == 3
    counted = client.messages.count_tokens(model="m", messages=_claude_messages("please fix the median", []))
    assert counted.input_tokens > 0 and server.usage_totals().messages.requests == 3  # count_tokens: no generation


def test_a_step_the_tools_cannot_carry_is_a_400_naming_file_step_and_tools(server: ScriptedServer) -> None:
    tools = [{"type": "function", "function": {"name": "read_file", "parameters": _fn("", {"path": S}, ["path"])}}]
    with pytest.raises(openai.BadRequestError) as err:
        _oai(server).chat.completions.create(
            model="m", messages=[{"role": "user", "content": "fix the median"}], tools=tools
        )
    text = str(err.value)
    assert "<script dict>: conversations[0].plan[0] (shell step, turn 0)" in text and "read_file(path)" in text
    assert "Fix the plan" in text


def test_faults_and_leaks_keep_working_in_the_new_protocols(server: ScriptedServer) -> None:
    with pytest.raises(openai.RateLimitError):
        _oai(server).responses.create(model="m", input="rate limit")
    sdk = pytest.importorskip("anthropic")
    with pytest.raises(sdk.RateLimitError) as err:
        _anthropic(server).messages.create(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "rate limit"}]
        )
    assert err.value.body["error"] == {"type": "rate_limit_error", "message": "slow down"}
    with _anthropic(server).messages.stream(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "leak please"}]
    ) as s:
        leaked = s.get_final_message()
    assert leaked.stop_reason == "end_turn" and "<function=bash>" in leaked.content[0].text


def test_usage_totals_add_up_across_protocols_and_over_http(server: ScriptedServer) -> None:
    client = _oai(server)
    chat = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "fix the median"}], tools=MINI
    )
    quiet = list(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True))
    response = client.responses.create(model="m", input="now fix the median", tools=CODEX)
    message = _anthropic(server).messages.create(
        model="m", max_tokens=64, messages=[{"role": "user", "content": "fix the median"}], tools=CLAUDE
    )
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "rate limit"}])
    totals = server.usage_totals()
    assert quiet and totals.chat.requests == 3 and totals.chat.answered == 1  # no include_usage, an error: no tokens
    assert (
        totals.overall.prompt_tokens
        == chat.usage.prompt_tokens + response.usage.input_tokens + message.usage.input_tokens
    )
    assert totals.overall.completion_tokens == (
        chat.usage.completion_tokens + response.usage.output_tokens + message.usage.output_tokens
    )
    assert totals.overall.requests == 5 and totals.overall.answered == 3
    with urllib.request.urlopen(server.root_url + USAGE_PATH, timeout=10) as answer:
        assert json.load(answer) == totals.as_dict()
    assert [len(server.requests_of(p)) for p in ("chat", "responses", "messages")] == [3, 1, 1]


def test_cached_tokens_reach_every_protocols_usage() -> None:
    script = {
        "conversations": [{"responses": [{"content": "hi", "usage": {"prompt_tokens": 40, "cached_tokens": 30}}]}]
    }
    with ScriptedServer(script) as srv:
        chat = _oai(srv).chat.completions.create(model="m", messages=[{"role": "user", "content": "a"}])
        response = _oai(srv).responses.create(model="m", input="a")
        message = _anthropic(srv).messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "a"}])
        totals = srv.usage_totals()
    assert (
        chat.usage.prompt_tokens_details.cached_tokens == 30 and response.usage.input_tokens_details.cached_tokens == 30
    )
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (10, 30)
    assert (
        totals.overall.cached_tokens == 90
        and totals.overall.prompt_tokens == 120
        and totals.messages.prompt_tokens == 40
    )


# -- broken plans ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("plan", "where", "message"),
    [
        ([{"shell": "ls"}, {"shel": "ls"}], "plan[1]", "unknown key(s) 'shel'"),
        (
            [{"shell": "ls", "say": "x"}],
            "plan[0]",
            "expected exactly one of shell, write, say, finish, found shell, say",
        ),
        ([{"write": {"path": "a"}}], "plan[0]", "write: expected a mapping with exactly `path` and `content`"),
        ([{"shell": ""}], "plan[0]", "shell: expected a non-empty string, found an empty string"),
        ([{"say": "x", "via": "shell"}], "plan[0]", "via: only a write step takes it"),
        ([], "plan", "expected a non-empty list of steps"),
    ],
)
def test_a_broken_plan_file_names_the_file_the_step_and_the_fix(
    tmp_path: Path, plan: list, where: str, message: str
) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(json.dumps({"conversations": [{"match": "x", "responses": []}, {"match": "y", "plan": plan}]}))
    with pytest.raises(ConfigError) as err:
        ScriptedServer(path)
    text = str(err.value)
    assert text.startswith(f"{path}: conversations[1].{where}: ") and message in text
    assert "a plan step is one of `shell: CMD`" in text  # the fix: what a step looks like


def test_a_conversation_with_both_responses_and_plan_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("conversations:\n  - {responses: [], plan: [{say: x}]}\n")
    (tmp_path / "b.yaml").write_text("conversations: [\n")
    with pytest.raises(ConfigError, match=r"a\.yaml: conversations\[0\]: gives both `responses` and `plan`; keep one"):
        ScriptedServer(tmp_path / "a.yaml")
    with pytest.raises(ConfigError, match=r"b\.yaml: invalid YAML"):
        ScriptedServer(tmp_path)


def _raw_events(url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        blocks = answer.read().decode().split("\n\n")
    events = []
    for block in blocks:
        lines = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        if lines.get("data", "[DONE]") != "[DONE]":
            assert lines.get("event", json.loads(lines["data"])["type"]) == json.loads(lines["data"])["type"]
            events.append(json.loads(lines["data"]))
    return events


def _by_type(union: Any) -> dict[str, Any]:
    """An SDK's stream-event union as ``type`` -> its pydantic model."""
    members = (
        typing.get_args(typing.get_args(union)[0])
        if typing.get_origin(union) is typing.Annotated
        else typing.get_args(union)
    )
    return {typing.get_args(m.model_fields["type"].annotation)[0]: m for m in members}


def test_every_streamed_event_validates_against_the_sdks_own_types(server: ScriptedServer) -> None:
    """Each event, as sent, validates as its own type of the SDKs' stream-event unions (pydantic, strict
    on required fields), sequence numbers in order."""
    from openai.types.responses import ResponseStreamEvent

    sdk = pytest.importorskip("anthropic")
    responses, messages = _by_type(ResponseStreamEvent), _by_type(sdk.types.RawMessageStreamEvent)
    done = [{"type": "function_call_output", "call_id": "c", "output": "ok"}]
    for items in ([], [{"type": "function_call", "call_id": "c", "name": "shell", "arguments": "{}"}, *done]):
        body = {
            "model": "m",
            "stream": True,
            "tools": CODEX,
            "input": [{"role": "user", "content": "fix the median"}, *items],
        }
        events = _raw_events(server.base_url + "/responses", body)
        assert [responses[e["type"]].model_validate(e).type for e in events] == [e["type"] for e in events]
        assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for turns in ([], [{"role": "assistant", "content": "x"}, {"role": "user", "content": "go on"}]):
        body = {"model": "m", "max_tokens": 99, "stream": True, "tools": CLAUDE}
        body["messages"] = [{"role": "user", "content": "fix the median"}, *turns]
        events = [e for e in _raw_events(server.root_url + "/v1/messages?beta=true", body) if e["type"] != "ping"]
        assert [messages[e["type"]].model_validate(e).type for e in events] == [e["type"] for e in events]
        assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"


def _post(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def test_every_whole_answer_validates_against_the_sdks_own_types(server: ScriptedServer) -> None:
    from openai.types.chat import ChatCompletion
    from openai.types.responses import Response

    sdk = pytest.importorskip("anthropic")
    for turn in range(3):  # thinking + a call, text + a call, the final text
        earlier = [{"role": "assistant", "content": "x"}, {"role": "user", "content": "go on"}] * turn
        chat = [{"role": "user", "content": "fix the median"}, *earlier]
        ChatCompletion.model_validate(_post(server.base_url + "/chat/completions", {"messages": chat, "tools": MINI}))
        Response.model_validate(_post(server.base_url + "/responses", {"model": "m", "input": chat, "tools": CODEX}))
        body = {"model": "m", "max_tokens": 9, "messages": chat, "tools": CLAUDE}
        sdk.types.Message.model_validate(_post(server.root_url + "/v1/messages", body))

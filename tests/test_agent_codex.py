"""The Codex CLI adapter (agents/external/codex.py): its config, command line and environment for a Session,
its reading of recorded exits, how the gateway reads a responses stream's tool calls, and (``docker`` +
``slow``) real runs of the pinned CLI in the docker sandbox, in the image the plugin builds for it:

* one session (agents/external/session.py) through the real gateway to a Responses-API upstream on
  127.0.0.1 (tests/gateway_doubles.Wire): what Codex sends, what its commands see, its token budget;
* through the plugin (tests/agent_runs.py) against the scripted double on a good and a noop plan:
  the gates decide, and the gateway's tokens equal the double's;
* (``vllm`` too) through the plugin against the tiny model on vLLM: the numbers reconcile with /metrics.

The first docker run builds the image (npm on the host, installed offline in the image; then cached
by its recipe hash); a session then takes seconds.
"""

import json
import shutil
import stat
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.agents.config import AgentConfig
from pytest_agentbench.agents.external.adapter import AgentAdapter, Finish, Session
from pytest_agentbench.agents.external.codex import (
    PACKAGE,
    READ_ONLY_NOTE,
    TOKEN_ENV,
    VERSION,
    CodexAgent,
    read_events,
)
from pytest_agentbench.agents.external.session import SessionRun, new_session, run_session
from pytest_agentbench.agents.external.trial import WORKSPACE
from pytest_agentbench.sandbox.base import ExecResult
from pytest_agentbench.serving.gateway import GatewayClient
from pytest_agentbench.serving.gateway.sse import StreamMeter

from .agent_runs import FIX_MEDIAN, STATE, agent_session, assert_reconciled, plugin_run
from .conftest import BUGFIX
from .gateway_doubles import Wire, route, running, sse


def session(**kw: Any) -> Session:
    return agent_session(**({"token": "agb-run-0123456789"} | kw))


def config_of(s: Session) -> dict[str, Any]:
    (text,) = CodexAgent().files(s).values()
    return tomllib.loads(text)


# -- what the adapter hands the sandbox ------------------------------------------------------------------
def test_the_adapter_is_pinned_and_installs_from_npm() -> None:
    agent = CodexAgent()
    assert isinstance(agent, AgentAdapter)
    assert (agent.name, agent.version, agent.protocol) == ("codex", VERSION, "responses")
    assert agent.install is not None and agent.install.npm == (f"{PACKAGE}@{VERSION}",)
    assert agent.install.bins == ("codex",) and agent.install.pip == ()


def test_the_config_names_the_gateway_as_the_only_provider_and_turns_off_what_leaves_the_machine() -> None:
    s = session()
    agent = CodexAgent()
    files = agent.files(s)
    assert list(files) == [f"{STATE}/codex-home/config.toml"]
    assert agent.env(s) == {"CODEX_HOME": f"{STATE}/codex-home", TOKEN_ENV: s.token}
    config = config_of(s)
    assert config["model"] == s.model and config["model_provider"] == "agentbench"
    assert config["model_providers"] == {
        "agentbench": {
            "name": "agentbench gateway",
            "base_url": s.base_url,
            "env_key": TOKEN_ENV,
            "wire_api": "responses",
            "request_max_retries": 2,
            "stream_max_retries": 0,
        }
    }
    assert (config["approval_policy"], config["sandbox_mode"]) == ("never", "danger-full-access")
    assert config["check_for_update_on_startup"] is False and config["web_search"] == "disabled"
    assert all(config[t]["enabled"] is False for t in ("analytics", "feedback", "agents"))
    assert {"plugins", "remote_plugin", "apps", "goals", "unbounded_connection_retries"} <= set(config["features"])
    assert not any(config["features"].values())
    assert s.token not in "".join(files.values())  # the token travels in the environment only
    assert config["shell_environment_policy"] == {"exclude": ["AGENTBENCH_*", "OPENAI_*", "ANTHROPIC_*"]}
    assert "developer_instructions" not in config


@pytest.mark.parametrize("model", ['a"b\\c', "line\nbreak\ttab", "del\x7fchar", "ünï/çødé 🚀", "[x] = 1"])
def test_any_model_name_round_trips_through_the_toml(model: str) -> None:
    assert config_of(session(model=model))["model"] == model
    assert config_of(session(base_url=f"http://127.0.0.1:1/{model}"))["model_providers"]["agentbench"]["base_url"]


def test_a_phase_without_writing_tools_is_told_to_stay_read_only() -> None:
    assert config_of(session(tools=("read_file", "list_files")))["developer_instructions"] == READ_ONLY_NOTE
    assert "developer_instructions" not in config_of(session(tools=("read_file", "edit")))
    assert "developer_instructions" not in config_of(session(tools=None))


def _fake_codex(tmp_path: Path) -> Path:
    """A ``codex`` on PATH that prints its arguments and its stdin as JSON."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "codex"
    fake.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        "print(json.dumps({'argv': sys.argv[1:], 'stdin': sys.stdin.read()}))\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def test_the_command_hands_codex_the_prompt_file_on_stdin(tmp_path: Path) -> None:
    prompt = '--help is not a flag here; "quotes", $HOME, `ticks` and ünï\nsecond line\n'
    (tmp_path / "prompt.md").write_text(prompt)
    s = session(prompt=prompt, prompt_file=str(tmp_path / "prompt.md"), workspace=str(tmp_path))
    argv = CodexAgent().argv(s)
    assert prompt not in argv  # never an argument: no length limit, never read as an option
    env = {"PATH": f"{_fake_codex(tmp_path)}:/usr/bin:/bin"}
    done = subprocess.run(argv, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["stdin"] == prompt
    assert seen["argv"] == [
        "exec",
        "--skip-git-repo-check",
        "--dangerously-bypass-approvals-and-sandbox",
        "--strict-config",
        "--ephemeral",
        "--color",
        "never",
        "--json",
        "-",
    ]


# -- reading its exit (outputs recorded from codex-cli 0.171.0) ----------------------------------------------
WARNING = (
    '{"type":"item.completed","item":{"id":"item_0","type":"error","message":"Model metadata for `m` not found. '
    'Defaulting to fallback metadata; this can degrade performance and cause issues."}}'
)
DONE = "\n".join(
    [
        '{"type":"thread.started","thread_id":"01a2330d-1c89-7bd1-9184-7fa42ad8149e"}',
        WARNING,
        '{"type":"turn.started"}',
        '{"type":"item.started","item":{"id":"item_1","type":"command_execution","command":"/bin/bash -lc '
        '\'echo hi > a.txt\'","aggregated_output":"","exit_code":null,"status":"in_progress"}}',
        '{"type":"item.completed","item":{"id":"item_1","type":"command_execution","command":"/bin/bash -lc '
        '\'echo hi > a.txt\'","aggregated_output":"","exit_code":0,"status":"completed"}}',
        '{"type":"item.completed","item":{"id":"item_2","type":"file_change","changes":[{"path":"/w/hello.txt",'
        '"kind":"add"}],"status":"completed"}}',
        '{"type":"item.completed","item":{"id":"item_3","type":"agent_message",'
        '"text":"Fixed median().\\n\\nTests pass."}}',
        '{"type":"turn.completed","usage":{"input_tokens":210,"cached_input_tokens":20,"cache_write_input_tokens":0,'
        '"output_tokens":14,"reasoning_output_tokens":0}}',
    ]
)
REFUSED = "\n".join(
    [
        '{"type":"thread.started","thread_id":"01a2330e-5abc-7c42-a795-89e7ebb0a863"}',
        WARNING,
        '{"type":"turn.started"}',
        '{"type":"error","message":"unexpected status 402 Payment Required: token budget spent, url: '
        'http://127.0.0.1:8765/v1/responses"}',
        '{"type":"turn.failed","error":{"message":"unexpected status 402 Payment Required: token budget spent, url: '
        'http://127.0.0.1:8765/v1/responses"}}',
    ]
)
USAGE_ERROR = (
    "error: unexpected argument '--bogus' found\n\n  tip: to pass '--bogus' as a value, use '-- --bogus'\n\n"
    "Usage: codex exec [OPTIONS] [PROMPT]\n\nFor more information, try '--help'.\n"
)


def _exit(code: int, stdout: str = "", stderr: str = "", timed_out: bool = False) -> ExecResult:
    return ExecResult(exit_code=code, stdout=stdout, stderr=stderr, duration_s=1.0, timed_out=timed_out)


def test_the_events_of_a_finished_session_are_read() -> None:
    seen = read_events(DONE)
    assert seen.thread_id == "01a2330d-1c89-7bd1-9184-7fa42ad8149e"
    assert (seen.commands, seen.file_changes, seen.completed, seen.failed) == (1, 1, True, None)
    assert seen.messages == ["Fixed median().\n\nTests pass."] and len(seen.warnings) == 1
    assert seen.usage is not None and seen.usage["input_tokens"] == 210
    finish = CodexAgent().finish(_exit(0, DONE), session())
    assert finish.finished and finish.ended_by is None and finish.note == "codex: Fixed median()."


def test_a_failed_turn_is_not_finished_and_says_why() -> None:
    finish = CodexAgent().finish(_exit(1, REFUSED, "WARNING: proceeding ...\n"), session())
    assert not finish.finished and finish.ended_by is None
    assert finish.note.startswith("codex: exit 1: unexpected status 402 Payment Required: token budget spent")
    # a turn that failed is not finished even if the exit code said so
    assert not CodexAgent().finish(_exit(0, REFUSED), session()).finished


def test_exits_without_events_a_cut_tail_and_the_wall_clock() -> None:
    agent = CodexAgent()
    usage = agent.finish(_exit(2, "", USAGE_ERROR), session())
    assert not usage.finished and usage.note == "codex: exit 2: For more information, try '--help'."
    cut = DONE[: DONE.rindex('{"type":"turn.completed"') + 30]  # the output cap cut the last event
    assert agent.finish(_exit(0, cut), session()).finished
    assert read_events(cut + "\nnot json\n[1, 2]\n").completed is False
    silent = agent.finish(_exit(0, '{"type":"turn.started"}\n{"type":"turn.completed","usage":null}'), session())
    assert silent.finished and silent.note == "codex: finished without a final message"
    late = agent.finish(_exit(124, DONE, timed_out=True), session(timeout_s=90))
    assert not late.finished and late.note == "codex: stopped at the wall clock (90 s)"
    crashed = agent.finish(_exit(139, "", ""), session())
    assert not crashed.finished and crashed.note == "codex: exit 139: no output"


# -- how the gateway reads a responses stream's tool call (what Codex runs is the finished item) ---------------
def _meter(*events: dict[str, Any]) -> StreamMeter:
    meter = StreamMeter("responses", 0.0)
    for i, e in enumerate(events):
        meter.feed(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode(), float(i))
    return meter


ARGS = '{"cmd": "ls"}'
ADDED = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "exec_command"}


@pytest.mark.parametrize(
    "events",
    [
        pytest.param(  # as OpenAI streams it: the item empty, its deltas, the item done
            [("added", ""), ("delta", ARGS[:5]), ("delta", ARGS[5:]), ("done", ARGS)], id="openai"
        ),
        pytest.param([("added", ARGS), ("delta", ARGS), ("done", ARGS)], id="arguments-in-added-and-deltas"),
        pytest.param([("added", ARGS), ("done", ARGS)], id="arguments-in-added-no-deltas"),
        pytest.param([("added", ""), ("delta-no-index", ARGS), ("done", ARGS)], id="delta-without-output-index"),
        pytest.param([("added", ""), ("delta", ARGS)], id="no-done-event"),
    ],
)
def test_a_streamed_responses_tool_call_is_recorded_once_as_the_client_runs_it(
    events: list[tuple[str, str]],
) -> None:
    wire = []
    for kind, args in events:
        if kind == "added":
            wire.append({"type": "response.output_item.added", "output_index": 0, "item": ADDED | {"arguments": args}})
        elif kind == "done":
            wire.append({"type": "response.output_item.done", "output_index": 0, "item": ADDED | {"arguments": args}})
        else:
            delta = {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": args}
            wire.append(delta if kind == "delta-no-index" else delta | {"output_index": 0})
    answer = _meter(*wire).answer()
    assert answer.message["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "exec_command", "arguments": ARGS}}
    ]


def test_two_calls_in_one_answer_keep_their_order_and_arguments() -> None:
    first, second = ADDED, ADDED | {"id": "fc_2", "call_id": "call_2", "name": "write_stdin"}
    meter = _meter(
        {"type": "response.output_item.added", "output_index": 0, "item": first | {"arguments": ""}},
        {"type": "response.output_item.added", "output_index": 1, "item": second | {"arguments": "{}"}},
        {"type": "response.function_call_arguments.delta", "output_index": 0, "item_id": "fc_1", "delta": ARGS},
        {"type": "response.output_item.done", "output_index": 1, "item": second | {"arguments": '{"chars": "y"}'}},
        {"type": "response.output_item.done", "output_index": 0, "item": first | {"arguments": ARGS}},
    )
    calls = [(c["id"], c["function"]["arguments"]) for c in meter.answer().message["tool_calls"]]
    assert calls == [("call_1", ARGS), ("call_2", '{"chars": "y"}')]


# -- real runs of the pinned CLI, in the docker sandbox, in the image the plugin builds --------------------------
def _response(rid: str, item: dict[str, Any], usage: tuple[int, int, int]) -> Any:
    """A Responses-API stream answering with one output item, with usage (input, output, cached)."""
    created = {"id": rid, "object": "response", "status": "in_progress", "model": "up", "output": []}
    used = {
        "input_tokens": usage[0],
        "input_tokens_details": {"cached_tokens": usage[2]},
        "output_tokens": usage[1],
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage[0] + usage[1],
    }
    done = created | {"status": "completed", "output": [item], "usage": used}
    if item["type"] == "function_call":  # as OpenAI streams it: the item first, empty, then its deltas
        start = item | {"arguments": "", "status": "in_progress"}
        delta = {"type": "response.function_call_arguments.delta", "item_id": item["id"], "delta": item["arguments"]}
    else:
        start = item | {"content": [], "status": "in_progress"}
        delta = {"type": "response.output_text.delta", "item_id": item["id"], "delta": item["content"][0]["text"]}
    return sse(
        {"type": "response.created", "response": created},
        {"type": "response.output_item.added", "output_index": 0, "item": start},
        delta | {"output_index": 0, "content_index": 0},
        {"type": "response.output_item.done", "output_index": 0, "item": item},
        {"type": "response.completed", "response": done},
        named=True,
    )


SHELL = "printf 'made by codex\\n' > made.txt && cat made.txt && env"
CALL = {
    "type": "function_call",
    "id": "fc_1",
    "call_id": "call_1",
    "name": "exec_command",
    "arguments": json.dumps({"cmd": SHELL}),
    "status": "completed",
}
FINAL = {
    "type": "message",
    "id": "msg_2",
    "role": "assistant",
    "status": "completed",
    "content": [{"type": "output_text", "text": "Made made.txt.", "annotations": []}],
}


def _run_codex(tmp_path: Path, wire: Wire, max_total_tokens: int | None) -> tuple[SessionRun, Finish, dict[str, Any]]:
    """One Codex session in a docker sandbox through a real gateway to ``wire``: (the session, Codex's Finish,
    the workspace afterwards: ``files`` (ls -A) and ``made`` (made.txt or None))."""
    from pytest_agentbench.sandbox.docker import DockerSandbox

    (tmp_path / "ws").mkdir()
    agent, config = CodexAgent(), AgentConfig(max_turns=12, timeout_s=120, max_total_tokens=max_total_tokens)
    up = route("up", wire.base_url, api_key_env="CODEXTEST_KEY")
    with running(up) as gw, GatewayClient(gw.handle()) as admin:
        ticket = admin.open_run("up", max_total_tokens=max_total_tokens, max_calls=config.max_turns)
        s = new_session("Make made.txt.", ticket, "up", config, workspace=WORKSPACE, tools=None)
        with DockerSandbox(tmp_path / "ws", gateway_socket=gw.agent_socket, agent_install=agent.install) as box:
            assert "agentbench-agent-codex" in box.image
            done = run_session(agent, s, box, admin, ticket, config)
            made = box.exec(["sh", "-c", "cat made.txt 2>/dev/null"], timeout=30)
            seen = {"files": box.exec(["ls", "-A"], timeout=30).stdout.split(), "made": made.stdout or None}
    return done, agent.finish(done.exec, s), seen


@pytest.mark.docker
@pytest.mark.slow
def test_codex_does_a_task_through_the_gateway_and_every_call_is_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, docker_engine: None
) -> None:
    monkeypatch.setenv("CODEXTEST_KEY", "sk-codex-upstream-secret")
    wire = Wire(_response("resp_1", CALL, (1200, 30, 100)), _response("resp_2", FINAL, (1300, 8, 1200)))
    try:
        done, finish, workspace = _run_codex(tmp_path, wire, max_total_tokens=None)
    finally:
        wire.close()
    assert done.exec.exit_code == 0, done.exec.output[-3000:]
    assert finish.finished and finish.note == "codex: Made made.txt."
    assert done.result.outcome == "finished" and done.result.summary == finish.note
    assert workspace == {"files": [".git", "made.txt"], "made": "made by codex\n"}  # no state in the workspace
    assert [r["path"] for r in wire.requests] == ["/v1/responses", "/v1/responses"]  # nothing else, no /models
    for sent in wire.requests:
        assert sent["headers"]["authorization"] == "Bearer sk-codex-upstream-secret"
        assert sent["body"]["model"] == "up-model" and sent["body"]["stream"] is True
        assert sent["body"]["store"] is False and "max_output_tokens" not in sent["body"]
        assert [t.get("name") for t in sent["body"]["tools"]][0] == "exec_command"
        assert not [t for t in sent["body"]["tools"] if t["type"] != "function"]  # no hosted web_search
    (output,) = [i for i in wire.requests[1]["body"]["input"] if i.get("type") == "function_call_output"]
    assert output["call_id"] == "call_1" and "made by codex" in output["output"]
    assert "CODEX_HOME=" in output["output"]  # the model's command saw its environment, but not the gateway's
    assert not [v for v in (TOKEN_ENV, "OPENAI_", "ANTHROPIC_", "agb-run-") if v in output["output"]]
    calls = done.calls.calls
    assert [(c.protocol, c.status, c.stream, c.failure) for c in calls] == [("responses", 200, True, None)] * 2
    assert [(c.usage.prompt_tokens, c.usage.completion_tokens, c.usage.cached_tokens) for c in calls] == [
        (1200, 30, 100),
        (1300, 8, 1200),
    ]
    assert [tc.name for tc in calls[0].tool_calls] == ["exec_command"] and calls[0].tool_call_format == "native"
    assert [tc.arguments for tc in calls[0].tool_calls] == [CALL["arguments"]]
    assert all(c.ttft_s is not None for c in calls)
    assert done.calls.budget["used"] == 1200 + 30 + 1300 + 8
    assert (done.result.usage.prompt_tokens, done.result.usage.completion_tokens) == (2500, 38)
    assert read_events(done.exec.stdout).usage == {
        "input_tokens": 2500,
        "cached_input_tokens": 1300,
        "cache_write_input_tokens": 0,
        "output_tokens": 38,
        "reasoning_output_tokens": 0,
    }  # Codex's own count agrees with the gateway's


@pytest.mark.docker
@pytest.mark.slow
def test_codex_stops_at_the_gateways_token_budget_without_retrying(tmp_path: Path, docker_engine: None) -> None:
    wire = Wire(_response("resp_1", CALL, (1200, 30, 0)), _response("resp_2", FINAL, (1300, 8, 0)))
    try:
        done, finish, workspace = _run_codex(tmp_path, wire, max_total_tokens=1000)
    finally:
        wire.close()
    assert done.exec.exit_code == 1
    assert len(wire.requests) == 1  # the second call never reached the upstream
    assert [c.refused for c in done.calls.calls] == [None, "token_budget"] and done.calls.budget["spent"]
    assert not finish.finished and "402 Payment Required" in finish.note
    assert done.result.outcome == "token_budget"
    assert workspace["made"] == "made by codex\n"  # the first call's command ran


# -- through the plugin: the scripted double on a good and a noop plan ----------------------------------------
GOOD = [
    {"shell": "cat stats/core.py"},
    {"shell": FIX_MEDIAN},
    {"shell": "python3 -m pytest -q tests"},
    {"finish": "Fixed median() for even-length input."},
]
NOOP = [{"shell": "ls"}, {"finish": "Nothing to do."}]


@pytest.mark.docker
@pytest.mark.slow
def test_codex_fixes_the_bug_on_the_good_plan_and_not_on_the_noop_and_every_token_is_counted(
    pytester: pytest.Pytester, docker_engine: None
) -> None:
    result, records, totals = plugin_run(pytester, "codex", GOOD, NOOP)
    result.assert_outcomes(passed=1, failed=1)
    good, noop = records["good"], records["noop"]
    assert good["passed"] and good["outcome"] == "finished" and not noop["passed"]
    assert noop["outcome"] == "finished"  # it ended by itself: the gates failed it
    assert good["agent"] == {"name": "codex", "version": VERSION}
    assert good["model_calls"] == len(GOOD) and noop["model_calls"] == len(NOOP)
    assert good["sandbox"]["kind"] == "docker" and "agentbench-agent-codex" in good["versions"]["sandbox"]["image"]
    assert good["trajectory"][1]["tool_calls"][0]["name"] == "exec_command"
    assert "stats/core.py" in good["patch"]["diff"] and not noop["patch"]["files"]
    assert_reconciled(records, totals)


# -- through the plugin against the tiny model on vLLM (random weights: the gates may fail) -------------------
GATEWAY_TOTALS_CONFTEST = """
import json

import pytest

from pytest_agentbench.plugin.session import SESSION


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    state = session.config.stash[SESSION]
    if state.gateway is not None:
        with open("totals.json", "w") as f:
            json.dump(state.gateway.totals(), f)
"""


@pytest.mark.docker
@pytest.mark.vllm
@pytest.mark.slow
def test_codex_against_vllm_through_the_plugin_reconciles_with_its_metrics(
    pytester: pytest.Pytester, tiny_model: Path, vllm_python: str, docker_engine: None
) -> None:
    """Codex's own requests (developer messages, store:false, include, its tools) served by vLLM; the
    plugin's client tokens (the gateway's) equal vLLM's /metrics."""
    packet = pytester.path / "packets" / "bugfix-median"
    shutil.copytree(BUGFIX, packet)
    text = (packet / "packet.yaml").read_text()
    (packet / "packet.yaml").write_text(text.replace("max_turns: 20, timeout_s: 300", "max_turns: 2, timeout_s: 180"))
    (pytester.path / "models.yaml").write_text(f"""\
models:
  tiny-cpu:
    model: tiny
    max_tokens: 32
    serve:
      engine: vllm
      model_path: {tiny_model}
      python: {vllm_python}
      # Codex's first request is ~9,500 tokens of this model (its prompt and tools): past its 4,096 positions
      args: {{load_format: dummy, max_model_len: 16384, max_num_seqs: 4}}
      env: {{VLLM_ALLOW_LONG_MAX_MODEL_LEN: "1"}}
      startup_timeout_s: 600
""")
    pytester.makeconftest(GATEWAY_TOTALS_CONFTEST)
    result = pytester.runpytest_subprocess(
        "--models=tiny-cpu",
        "--packets=packets",
        "--agent=codex",
        "--sandbox=docker",
        "-p",
        "no:cacheprovider",
        "--agentbench-results=res",
        timeout=1200,
    )
    (record,) = map(json.loads, (pytester.path / "res" / "results.jsonl").read_text().splitlines())
    assert record["agent"]["name"] == "codex" and record["model_calls"] >= 1, result.stdout.str()[-3000:]
    assert record["outcome"] != "infrastructure", record.get("error")
    calls = record["client"]["calls"]
    assert all(c["error"] is None and c["usage_reported"] for c in calls), calls
    assert {c["timings"]["protocol"] for c in calls} == {"responses"}
    assert {c["timings"]["via"] for c in calls} == {"gateway"}
    result.stdout.fnmatch_lines(["tiny-cpu: tokens client * in / * out; server /metrics * in / * out: equal"])
    gateway = json.loads((pytester.path / "totals.json").read_text())["tiny-cpu"]
    tokens = record["client"]["tokens"]
    assert (tokens["prompt"], tokens["completion"]) == (gateway["prompt_tokens"], gateway["completion_tokens"])
    assert gateway["prompt_tokens"] > 9000  # Codex's prompt and tools went through, whole

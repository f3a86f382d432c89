"""The Claude Code adapter (agents/external/claude_code.py): its command line, environment and files for a
Session, its reading of recorded exits, and (``docker`` + ``slow``) the real CLI through the plugin.

The real run builds the agent image once (npm on the host, ~1-2 min, then cached by its recipe hash)
and runs bugfix-median in Docker through the gateway to the scripted double on a good and a noop
plan, Claude Code's ``Bash`` tool carrying every shell step.
"""

import json
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.agents.external.adapter import AgentAdapter, Session
from pytest_agentbench.agents.external.claude_code import (
    DENIED_TOOLS,
    PACKAGE,
    VERSION,
    ClaudeCode,
    claude_tools,
    read_result,
)
from pytest_agentbench.agents.external.registry import AgentRegistry
from pytest_agentbench.sandbox.base import ExecResult

from .agent_runs import FIX_MEDIAN, agent_session, assert_reconciled, plugin_run

TOKEN = "agb-run-0123456789abcdef"


def session(**kw: Any) -> Session:
    return agent_session(**({"token": TOKEN} | kw))


def _flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


# -- what the adapter hands the sandbox ------------------------------------------------------------------
def test_the_adapter_is_pinned_installs_from_npm_and_is_the_registrys_claude_code() -> None:
    agent = ClaudeCode()
    assert isinstance(agent, AgentAdapter)
    assert (agent.name, agent.version, agent.protocol) == ("claude-code", VERSION, "messages")
    assert agent.install is not None and agent.install.name == "claude-code"
    assert agent.install.npm == (f"{PACKAGE}@{VERSION}",) and agent.install.bins == ("claude",)
    assert not agent.install.pip
    assert ClaudeCode(version="2.1.300").install.npm == (f"{PACKAGE}@2.1.300",)  # type: ignore[union-attr]
    resolved = AgentRegistry().resolve("claude-code")
    assert isinstance(resolved, ClaudeCode) and resolved.version == VERSION


def test_the_command_is_headless_with_the_turn_budget_the_model_and_no_permission_prompts() -> None:
    argv = ClaudeCode().argv(session(max_turns=7))
    claude = argv[argv.index("claude") :]
    assert claude[1] == "-p" and _flag(claude, "--output-format") == "json"
    assert _flag(claude, "--max-turns") == "7"
    assert _flag(claude, "--model") == "Qwen/Qwen3-Coder-30B-A3B-Instruct"
    assert "--dangerously-skip-permissions" in claude
    assert _flag(claude, "--disallowedTools") == ",".join(DENIED_TOOLS) == "WebFetch,WebSearch"
    assert "--tools" not in claude  # no phase: Claude Code's own tool set
    assert TOKEN not in " ".join(argv) and "Fix median" not in " ".join(argv)


def test_a_phases_tools_map_onto_claude_codes_tools() -> None:
    assert claude_tools(None) is None
    assert claude_tools(("read_file", "list_files", "finish")) == ["Glob", "Grep", "Read"]
    assert claude_tools(("read_file", "write_file", "edit", "list_files", "run", "finish")) == [
        "Bash",
        "Edit",
        "Glob",
        "Grep",
        "Read",
        "Write",
    ]
    assert claude_tools(("finish",)) == []
    read_only = ClaudeCode().argv(session(tools=("read_file", "list_files")))
    assert _flag(read_only, "--tools") == "Glob,Grep,Read"
    none = ClaudeCode().argv(session(tools=("finish",)))
    assert _flag(none, "--tools") == ""  # "" is Claude Code's "no tools at all"


def test_the_token_is_in_no_variable_only_in_the_key_helpers_file_under_the_state_folder() -> None:
    s = session(state_dir="/tmp/st/", max_output_tokens=2048)
    agent = ClaudeCode()
    env, files = agent.env(s), agent.files(s)
    assert TOKEN not in json.dumps(env)
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:8765"
    assert env["CLAUDE_CONFIG_DIR"] == "/tmp/st/claude-config" and env["CLAUDE_CODE_TMPDIR"] == "/tmp/st/claude-tmp"
    for name in ("ANTHROPIC_MODEL", "ANTHROPIC_SMALL_FAST_MODEL", "ANTHROPIC_DEFAULT_HAIKU_MODEL"):
        assert env[name] == s.model  # side calls, if any, go to the same model through the gateway
    assert env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] == "1" and env["DISABLE_AUTOUPDATER"] == "1"
    assert env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] == "2048"
    assert "CLAUDE_CODE_MAX_OUTPUT_TOKENS" not in agent.env(session())
    assert sorted(files) == ["/tmp/st/claude-config/settings.json", "/tmp/st/claude-token"]
    assert files["/tmp/st/claude-token"] == TOKEN
    assert json.loads(files["/tmp/st/claude-config/settings.json"]) == {"apiKeyHelper": "cat /tmp/st/claude-token"}


def _fake_claude(folder: Path) -> Path:
    """A ``claude`` that prints its argv, its stdin and whether it can see the token in its environment."""
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "claude"
    fake.write_text(
        "#!/usr/bin/env python3\nimport json, os, sys\n"
        "print(json.dumps({'argv': sys.argv[1:], 'stdin': sys.stdin.read(),\n"
        f"  'token_seen': [k for k, v in os.environ.items() if {TOKEN!r} in v]}}))\n"
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def test_the_prompt_arrives_verbatim_on_stdin_and_the_launchers_token_variables_are_gone(tmp_path: Path) -> None:
    prompt = '--help is no flag here; "quotes", $HOME, `ticks` and ünï\nsecond line\n'
    (tmp_path / "prompt.md").write_text(prompt)
    s = session(prompt=prompt, prompt_file=str(tmp_path / "prompt.md"), workspace=str(tmp_path))
    agent = ClaudeCode()
    # what session.py sets: the gateway's variables (RunTicket.env, the token among them), then the adapter's
    launcher = {"OPENAI_API_KEY": TOKEN, "ANTHROPIC_API_KEY": TOKEN, "ANTHROPIC_AUTH_TOKEN": TOKEN}
    env = {"PATH": f"{_fake_claude(tmp_path)}:/usr/bin:/bin", **launcher, **agent.env(s)}
    argv = agent.argv(s)
    assert prompt not in argv
    done = subprocess.run(argv, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["stdin"] == prompt and seen["token_seen"] == []
    assert seen["argv"] == argv[argv.index("claude") + 1 :]


# -- reading its exit (result objects recorded from 2.1.332 through the gateway) --------------------------
def _result(subtype: str, **kw: Any) -> str:
    base = {"type": "result", "subtype": subtype, "is_error": False, "num_turns": 2, "session_id": "e09248"}
    base |= {"usage": {"input_tokens": 9421, "output_tokens": 8}, "terminal_reason": "completed"}
    return json.dumps(base | kw)


DONE = _result("success", result="Fixed median().\n\nTests pass.")
MAX_TURNS = _result(
    "error_max_turns",
    is_error=True,
    num_turns=3,
    terminal_reason="max_turns",
    errors=["Reached maximum number of turns (2)"],
)
REFUSED = _result(
    "success",
    is_error=True,
    terminal_reason="api_error",
    api_error_status=402,
    api_error_type="billing_error",
    result="API Error: 402 agentbench gateway: run b16fa3620f5b: token budget of 5,000 used up",
)
STDERR = '[claude-code:unrecognized_model] {"model":"m","query_source":"sdk"}\n'


def _exit(code: int, stdout: str = "", stderr: str = STDERR, timed_out: bool = False) -> ExecResult:
    return ExecResult(exit_code=code, stdout=stdout, stderr=stderr, duration_s=1.0, timed_out=timed_out)


def test_a_finished_session_is_read_from_its_result_object() -> None:
    out = read_result("some log line\n" + DONE + "\n")
    assert out is not None and out["subtype"] == "success"
    finish = ClaudeCode().finish(_exit(0, DONE), session())
    assert finish.finished and finish.ended_by is None and finish.note == "claude-code: Fixed median()."
    silent = ClaudeCode().finish(_exit(0, _result("success", result="")), session())
    assert silent.finished and silent.note == "claude-code: finished without a message"


def test_the_turn_limit_is_ended_by_turns_and_a_refused_call_is_not_finished() -> None:
    agent = ClaudeCode()
    limit = agent.finish(_exit(1, MAX_TURNS), session(max_turns=2))
    assert not limit.finished and limit.ended_by == "turns" and limit.note == "claude-code: turn limit 2 reached"
    refused = agent.finish(_exit(1, REFUSED), session())
    assert not refused.finished and refused.ended_by is None
    assert refused.note.startswith("claude-code: exit 1, success: API Error: 402 agentbench gateway")
    # is_error wins over a zero exit; a zero exit with an error subtype is not finished either
    assert not agent.finish(_exit(0, REFUSED), session()).finished
    during = _result("error_during_execution", is_error=True, errors=["boom"])
    assert agent.finish(_exit(1, during), session()).note == "claude-code: exit 1, error_during_execution: boom"


def test_exits_without_a_result_a_cut_tail_and_the_wall_clock() -> None:
    agent = ClaudeCode()
    crashed = agent.finish(_exit(1, "", "Error: something broke\n"), session())
    assert not crashed.finished and crashed.note == "claude-code: exit 1: Error: something broke"
    assert agent.finish(_exit(139, "", ""), session()).note == "claude-code: exit 139: no output"
    cut = agent.finish(_exit(0, DONE[:40]), session())  # the output cap cut the one line
    assert not cut.finished and read_result(DONE[:40] + '\n[1]\n"x"\n') is None
    late = agent.finish(_exit(124, DONE, timed_out=True), session(timeout_s=90))
    assert not late.finished and late.note == "claude-code: stopped at the wall clock (90 s)"


# -- the real CLI, in Docker, through the plugin and the gateway ----------------------------------------------
SHOW_ENV = {"shell": "env | sort"}
GOOD = [{"shell": "cat stats/core.py"}, {"shell": FIX_MEDIAN}, {"shell": "python3 -m pytest -q tests"}]
GOOD += [{"finish": "Fixed median() for even-length input."}]
NOOP = [SHOW_ENV, {"finish": "Nothing to change."}]


@pytest.mark.docker
@pytest.mark.slow
def test_claude_code_fixes_the_bug_on_the_good_plan_and_not_on_the_noop_and_every_token_is_counted(
    pytester: pytest.Pytester, docker_engine: None
) -> None:
    result, records, totals = plugin_run(pytester, "claude-code", GOOD, NOOP)
    result.assert_outcomes(passed=1, failed=1)
    good, noop = records["good"], records["noop"]
    assert good["passed"] and good["outcome"] == "finished" and not noop["passed"]
    assert good["agent"] == {"name": "claude-code", "version": VERSION}
    # one request per model turn, no side calls (title, suggestions) with nonessential traffic off
    assert good["model_calls"] == len(GOOD) and noop["model_calls"] == len(NOOP)
    assert "agentbench-agent-claude-code" in good["versions"]["sandbox"]["image"]
    assert [c["name"] for c in good["trajectory"][1]["tool_calls"]] == ["Bash"]
    assert "stats/core.py" in good["patch"]["diff"] and not noop["patch"]["files"]
    # the model's Bash saw the gateway's URL but not the run token
    trajectory = json.dumps(noop["trajectory"])
    assert "ANTHROPIC_BASE_URL=http://127.0.0.1:" in trajectory and "CLAUDE_CONFIG_DIR=/tmp/" in trajectory
    assert "agb-run-" not in trajectory and "_API_KEY=" not in trajectory
    assert_reconciled(records, totals)


PHASE_SCRIPT = {
    "conversations": [
        {
            "match": "PLAN phase",
            "workdir": "/workspace",
            "plan": [
                {"write": {"path": "PLAN.md", "content": "Change count_words in wordcount/__init__.py: split()\n"}},
                {"finish": "planned"},
            ],
        },
        {
            "match": "IMPLEMENT phase",
            "plan": [
                {"shell": "sed -i 's/text.split(\" \")/text.split()/' wordcount/__init__.py"},
                {"finish": "implemented the plan"},
            ],
        },
    ]
}


@pytest.mark.docker
@pytest.mark.slow
def test_a_two_phase_packet_runs_claude_code_once_per_phase_with_the_phases_tools(
    pytester: pytest.Pytester, docker_engine: None
) -> None:
    import shutil

    import yaml

    from .test_phases import PHASED

    shutil.copytree(PHASED, pytester.path / "packets" / "example-wordcount-phases")
    (pytester.path / "scripts").mkdir()
    (pytester.path / "scripts" / "phases.yaml").write_text(yaml.safe_dump(PHASE_SCRIPT))
    (pytester.path / "models.yaml").write_text(
        "models:\n  good:\n    model: scripted-good\n    serve: {engine: scripted, script: scripts/phases.yaml}\n"
    )
    result = pytester.runpytest_subprocess(
        "--packets=packets", "--models=good", "--agent=claude-code", "--sandbox=docker", "-p", "no:cacheprovider",
        "--agentbench-results=res", timeout=600,
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    (record,) = [json.loads(line) for line in (pytester.path / "res" / "results.jsonl").read_text().splitlines()]
    assert [(p["id"], p["outcome"], p["model_calls"]) for p in record["phases"]] == [
        ("plan", "finished", 2),
        ("implement", "finished", 2),
    ]
    for kind in ("prompt", "completion"):
        assert sum(p["tokens"][kind] for p in record["phases"]) == record["client"]["tokens"][kind] > 0
    calls = [t["name"] for turn in record["trajectory"] for t in turn["tool_calls"]]
    assert calls == [
        "Write",
        "Bash",
    ]  # (which tools each phase declared: test_a_phases_tools_map_onto_claude_codes_tools)
    assert [c["phase"] for c in record["client"]["calls"]] == ["plan", "plan", "implement", "implement"]

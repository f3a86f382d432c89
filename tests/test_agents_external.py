"""External agents through the plugin: ``--agent``, the registry, agents.yaml, a real agent process.

The agent here is ``tests/data/agents/tiny_agent.py``: a real process speaking chat completions over
HTTP (standard library only), run as a ``command`` agent in the local (bubblewrap) sandbox, reaching
the scripted server only through the gateway's socket. The record's figures come from the gateway.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.agents.external.adapter import Session
from pytest_agentbench.agents.external.command import CommandAdapter, check_template
from pytest_agentbench.agents.external.mini_swe_agent import STATUS_MARK, MiniSweAgent
from pytest_agentbench.agents.external.registry import AgentRegistry, load_agents_file
from pytest_agentbench.errors import ConfigError, UsageError
from pytest_agentbench.sandbox.base import ExecResult
from pytest_agentbench.sandbox.bwrap import bwrap_status

from .agent_runs import agent_session
from .conftest import unavailable

TINY_AGENT = Path(__file__).parent / "data" / "agents" / "tiny_agent.py"
SESSION = agent_session(
    prompt="fix it", token="agb-run-x", model="m", max_turns=7, timeout_s=60.0, max_output_tokens=512
)


def tiny_agent_command(exit_code: int | None = None, max_turns: str = "{max_turns}") -> str:
    """The tiny agent as a ``command`` template (its source inline: the sandbox sees none of our files)."""
    source = TINY_AGENT.read_text()
    if exit_code is not None:
        source = f"import sys\nsys.exit({exit_code})\n"
    encoded = base64.b64encode(source.encode()).decode()
    return (
        f"python3 -c \"import base64; exec(base64.b64decode('{encoded}'))\" "
        "{prompt_file} {base_url} {model} " + max_turns
    )


def _local() -> None:
    ok, why = bwrap_status()
    if not ok:
        unavailable(f"no bubblewrap: {why}")


@pytest.fixture
def folder(user_folder: Path) -> Path:
    (user_folder / "agents.yaml").write_text(
        "agents:\n"
        f"  tiny:\n    command: {json.dumps(tiny_agent_command())}\n    version: '0.1'\n"
        f"  broken:\n    command: {json.dumps(tiny_agent_command(exit_code=9))}\n"
        f"  greedy:\n    command: {json.dumps(tiny_agent_command(max_turns='50'))}\n"
    )
    return user_folder


def into(pytester: pytest.Pytester, folder: Path) -> None:
    """Run pytester in a copy of ``folder``."""
    pytester.chdir()
    for item in folder.iterdir():
        target = pytester.path / item.name
        shutil.copytree(item, target) if item.is_dir() else shutil.copy(item, target)


def records(folder: Path) -> list[dict[str, Any]]:
    (path,) = folder.glob(".agentbench/runs/*/results.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_command_agent_runs_through_the_gateway_and_its_record_has_the_gateways_figures(
    pytester: pytest.Pytester, folder: Path
) -> None:
    _local()
    into(pytester, folder)
    result = pytester.runpytest_inprocess(
        "--packets=packets", "--models=a,b", "--agent=tiny", "--sandbox=local", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1, failed=1)
    by_alias = {r["alias"]: r for r in records(pytester.path)}
    good, noop = by_alias["a"], by_alias["b"]
    assert good["passed"] and good["outcome"] == "finished"
    assert not noop["passed"]
    # One turn per chat call, as the gateway saw it (the good script makes 5 calls).
    assert good["model_calls"] == good["turns"] == 5
    assert good["client"]["tokens"]["usage_reported"] and good["client"]["tokens"]["prompt"] > 0
    assert "stats/core.py" in good["patch"]["diff"]
    assert good["sandbox"]["kind"] == "local"


def test_ids_name_the_agent_only_when_agents_are_chosen(pytester: pytest.Pytester, folder: Path) -> None:
    into(pytester, folder)
    plain = pytester.runpytest_inprocess(
        "--packets=packets", "--models=a", "--collect-only", "-q", "-p", "no:cacheprovider"
    )
    plain.stdout.fnmatch_lines(["*test_packet?bugfix-median-a?"])
    both = pytester.runpytest_inprocess(
        "--packets=packets", "--models=a", "--agent=builtin,tiny", "--collect-only", "-q", "-p", "no:cacheprovider"
    )
    both.stdout.fnmatch_lines(["*test_packet?bugfix-median-a-builtin?", "*test_packet?bugfix-median-a-tiny?"])


def test_an_unknown_agent_is_a_usage_error_naming_the_choices(pytester: pytest.Pytester, folder: Path) -> None:
    pytester.chdir()
    shutil.copy(folder / "models.yaml", pytester.path / "models.yaml")
    result = pytester.runpytest_inprocess("--agent=claude", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--agent=claude: unknown agent*known: builtin, mini-swe-agent, aider*"])


def test_an_agent_that_dies_before_its_first_call_is_an_error_not_a_failure(
    pytester: pytest.Pytester, folder: Path
) -> None:
    _local()
    into(pytester, folder)
    result = pytester.runpytest_inprocess(
        "--packets=packets", "--models=a", "--agent=broken", "--sandbox=local", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*AgentStartError*agent 'broken' (unversioned) exited 9 before its first model call*"])
    (record,) = records(pytester.path)  # recorded first: nothing is lost, --resume runs it again
    assert (record["outcome"], record["failure"], record["counted"]) == ("infrastructure", "agent_start", False)
    assert not record["gates"] and "exited 9" in record["error"]


# -- the registry and agents.yaml ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("agents: []\n", "expected a top-level 'agents:' mapping"),
        ("agents:\n  x: {}\n", "agents.x: gives no command"),
        ("agents:\n  x: {command: 'a {nope}'}\n", "unknown placeholder(s) {nope}"),
        ("agents:\n  x: {command: 'a', protocol: grpc}\n", "agents.x.protocol: expected one of chat"),
        ("agents:\n  x: {command: 'a', colour: red}\n", "unknown key(s) colour"),
        ("agents:\n  builtin: {command: 'a'}\n", "'builtin' is reserved"),
        ("agents:\n  x: {command: 'a', install: {pip: []}}\n", "gives no pip or npm package"),
        ("agents:\n  x: {adapter: nosuch}\n", "agents.x.adapter: expected one of mini-swe-agent"),
        ("agents: [\n", "not valid YAML"),
    ],
)
def test_a_bad_agents_file_names_the_file_the_key_and_the_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_agents_file(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_an_agents_file_entry_can_pin_a_builtin_adapter_at_another_version(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text("agents:\n  mini-old:\n    adapter: mini-swe-agent\n    version: '2.4.5'\n")
    adapter = AgentRegistry(path).resolve("mini-old")
    assert isinstance(adapter, MiniSweAgent)
    assert adapter.name == "mini-old" and adapter.install is not None
    assert adapter.install.pip == ("mini-swe-agent==2.4.5",)


def test_command_needs_its_template() -> None:
    with pytest.raises(UsageError, match="--agent=command: no command given"):
        AgentRegistry().resolve("command")
    assert AgentRegistry().resolve("builtin") is None
    with pytest.raises(ConfigError, match="not a valid template"):
        check_template("a {", "x")


def test_the_command_template_quotes_every_value() -> None:
    adapter = CommandAdapter(template="agent --task {prompt} --turns {max_turns}")
    hostile = Session(**{**SESSION.__dict__, "prompt": "x'; rm -rf / #"})
    argv = adapter.argv(hostile)
    assert argv[:2] == ["sh", "-c"]
    assert argv[2] == "agent --task 'x'\"'\"'; rm -rf / #' --turns 7"


# -- mini-swe-agent's adapter ----------------------------------------------------------------------
def test_mini_swe_agents_config_maps_the_budgets() -> None:
    adapter = MiniSweAgent()
    config = json.loads(adapter.files(SESSION)["/tmp/agentbench-agent/agentbench.yaml"])
    assert config["agent"]["step_limit"] == 7 and config["agent"]["cost_limit"] == 0
    assert config["model"]["model_name"] == "openai/m"
    assert config["model"]["model_kwargs"]["api_base"] == SESSION.base_url
    assert config["model"]["model_kwargs"]["max_tokens"] == 512
    assert adapter.env(SESSION)["MSWEA_CONFIGURED"] == "true"


@pytest.mark.parametrize(
    ("stdout", "code", "finished", "ended_by"),
    [
        (f"...\n{STATUS_MARK} Submitted\n", 0, True, None),
        (f"{STATUS_MARK} LimitsExceeded\n", 0, False, "turns"),
        (f"{STATUS_MARK} RepeatedFormatError\n", 0, False, None),
        (f"{STATUS_MARK} Submitted\n", 1, False, None),
        ("no status line at all\n", 0, False, None),
    ],
)
def test_mini_swe_agents_finish_reads_the_trajectorys_status(
    stdout: str, code: int, finished: bool, ended_by: str | None
) -> None:
    finish = MiniSweAgent().finish(ExecResult(code, stdout, "", 1.0), SESSION)
    assert (finish.finished, finish.ended_by) == (finished, ended_by)


def test_an_installed_agent_outside_docker_is_refused_at_start(pytester: pytest.Pytester, folder: Path) -> None:
    into(pytester, folder)
    result = pytester.runpytest_inprocess("--agent=tiny,mini-swe-agent", "--sandbox=local", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--agent=mini-swe-agent with --sandbox=local: *installed into the docker*"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ray=local"], "*--agent=tiny with --ray: *cannot mount*"),
        (["--docker-host=ssh://me@far", "--sandbox=docker"], "*remote engine cannot bind-mount it*"),
        (["--docker-host=tcp://10.1.2.3:2375", "--sandbox=docker"], "*remote engine cannot bind-mount it*"),
        (["--sandbox=unsafe-local"], "*unsafe-local does not mount*"),
    ],
)
def test_an_external_agent_where_the_gateway_socket_cannot_reach_is_refused(
    pytester: pytest.Pytester, folder: Path, args: list[str], message: str
) -> None:
    into(pytester, folder)
    result = pytester.runpytest_inprocess("--agent=tiny", *args, "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_a_two_phase_packet_runs_each_phase_as_a_fresh_session_of_the_external_agent(
    pytester: pytest.Pytester, folder: Path
) -> None:
    from .test_phases import GOOD_SCRIPT, PHASED

    _local()
    into(pytester, folder)
    shutil.copytree(PHASED, pytester.path / "phased" / "example-wordcount-phases")
    # The plan phase's first call is a `run` its tools do not offer: the built-in loop refuses it, a command
    # agent cannot be told (its CLI knows nothing of phases), so this script leaves it out.
    script = json.loads(json.dumps(GOOD_SCRIPT))
    script["conversations"][0]["responses"].pop(0)
    (pytester.path / "scripts" / "good" / "phases.yaml").write_text(json.dumps(script))
    result = pytester.runpytest_inprocess(
        "--packets=phased", "--models=a", "--agent=tiny", "--sandbox=local", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=1)
    (record,) = records(pytester.path)
    assert [p["id"] for p in record["phases"]] == ["plan", "implement"]
    assert all(p["outcome"] == "finished" and p["model_calls"] > 0 for p in record["phases"])
    assert sum(p["turns"] for p in record["phases"]) == record["turns"] == len(record["client"]["calls"])
    for kind in ("prompt", "completion"):
        assert sum(p["tokens"][kind] for p in record["phases"]) == record["client"]["tokens"][kind] > 0


def test_an_agent_that_ignores_its_turn_budget_is_stopped_by_the_gateway(
    pytester: pytest.Pytester, folder: Path
) -> None:
    _local()
    into(pytester, folder)
    packet = pytester.path / "packets" / "bugfix-median" / "packet.yaml"
    packet.write_text(packet.read_text().replace("max_turns: 20", "max_turns: 2"))
    result = pytester.runpytest_inprocess(
        "--packets=packets", "--models=a", "--agent=greedy", "--sandbox=local", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(failed=1)  # two calls do not fix the bug (the good script edits in its third)
    (record,) = records(pytester.path)
    assert record["outcome"] == "max_turns" and record["budget"]["ended_by"] == "turns"
    assert record["turns"] == record["model_calls"] == 2


def test_the_record_names_the_external_agent_and_its_version(pytester: pytest.Pytester, folder: Path) -> None:
    _local()
    into(pytester, folder)
    result = pytester.runpytest_inprocess(
        "--packets=packets", "--models=a", "--agent=tiny,builtin", "--sandbox=local", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)
    agents = {r["agent"]["name"]: r["agent"]["version"] for r in records(pytester.path)}
    assert agents["tiny"] == "0.1" and set(agents) == {"tiny", "builtin"}

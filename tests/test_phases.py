"""Multi-phase packets: the ``phases:`` schema, ``run_phases`` (order, early stop, budgets carried over),
per-phase tools in the built-in loop, and a 2-phase packet end to end through the plugin."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_agentbench.agents.budget import BudgetUse
from pytest_agentbench.agents.config import AgentConfig, budget_config
from pytest_agentbench.agents.loop import run_agent
from pytest_agentbench.agents.phases import STOPS_RUN, run_phases
from pytest_agentbench.agents.tools import TOOL_NAMES
from pytest_agentbench.agents.transcript import OUTCOMES, AgentResult, Turn
from pytest_agentbench.errors import PacketError
from pytest_agentbench.models.adapter import ModelAdapter
from pytest_agentbench.models.calls import Usage
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.packets.schema import Phase, load_packet
from pytest_agentbench.packets.selfcheck import check_packet
from pytest_agentbench.results.record import record_to_dict
from pytest_agentbench.runner import run_packet
from pytest_agentbench.sandbox import LocalSandbox
from pytest_agentbench.serving.scripted import ScriptedServer

from .conftest import BUGFIX, SCRIPTS

pytest_plugins = ["pytester"]

REPO = Path(__file__).resolve().parent.parent
PHASED = REPO / "examples" / "packet-phases"
PLAN_TOOLS = ("read_file", "write_file", "list_files", "finish")


def call(name: str, **arguments: Any) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": arguments}]}


#: A scripted trajectory (a test double, not a model) for examples/packet-phases: one conversation per phase,
#: told apart by the phase's prompt. The plan phase first tries `run`, which its tools do not include.
GOOD_SCRIPT = {
    "conversations": [
        {
            "match": "PLAN phase",
            "responses": [
                call("run", command="echo sneaky > wordcount/__init__.py"),
                call("read_file", path="wordcount/__init__.py"),
                call("write_file", path="PLAN.md", content="Change count_words in wordcount/__init__.py: split()\n"),
                call("finish", summary="planned"),
            ],
        },
        {
            "match": "IMPLEMENT phase",
            "responses": [
                call("read_file", path="PLAN.md"),
                call("edit", path="wordcount/__init__.py", old='text.split(" ")', new="text.split()"),
                call("run", command="python -m pytest -q -p no:cacheprovider tests"),
                call("finish", summary="implemented the plan"),
            ],
        },
    ]
}


# --------------------------------------------------------------------------- the schema


def phased_copy(tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """examples/packet-phases copied, its packet.yaml changed by ``edit``."""
    folder = tmp_path / "p"
    shutil.copytree(PHASED, folder)
    data = yaml.safe_load((folder / "packet.yaml").read_text())
    edit(data)
    (folder / "packet.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


def _set(key: str, value: Any, index: int | None = 1) -> Callable[[dict[str, Any]], None]:
    def edit(data: dict[str, Any]) -> None:
        target = data if index is None else data["phases"][index]
        if value is _DROP:
            target.pop(key, None)
        else:
            target[key] = value

    return edit


_DROP = object()


@pytest.mark.parametrize(
    ("edit", "key", "says"),
    [
        (_set("phases", [], None), "phases", "expected a non-empty list of phases"),
        (_set("phases", "plan", None), "phases", "expected a non-empty list of phases"),
        (_set("phases", ["plan"], None), "phases[0]", "expected a mapping with 'id'"),
        (_set("tool", ["run"]), "phases[1]", "unknown key(s) 'tool'; allowed keys:"),
        (_set("id", _DROP), "phases[1]", "missing required key(s) 'id'"),
        (_set("id", "Plan!"), "phases[1].id", "'Plan!' is not a valid phase id"),
        (_set("id", "plan"), "phases[1].id", "duplicate phase id 'plan'"),
        (_set("prompt", _DROP), "phases[1]", "give exactly one of 'prompt' (the text) or 'prompt_file'"),
        (_set("prompt_file", "PROMPT.md"), "phases[1]", "give exactly one of 'prompt'"),
        (_set("prompt", ""), "phases[1].prompt", "must not be empty"),
        (_set("prompt_file", "nope.md", 0), "phases[0]", "give exactly one"),
        (_set("tools", ["read_file", "shell"]), "phases[1].tools", "unknown tool 'shell': the built-in tools are"),
        (_set("tools", []), "phases[1].tools", "expected a non-empty list of tool names"),
        (_set("tools", "read_file"), "phases[1].tools", "expected a non-empty list of tool names"),
        (_set("tools", ["run", "run"]), "phases[1].tools", "tool 'run' is listed twice"),
        (_set("max_turns", 0, 0), "phases[0].max_turns", "expected an integer >= 1"),
        (_set("max_turns", "8", 0), "phases[0].max_turns", "expected an integer, found a string"),
        (_set("prompt", "also inline", None), "", "give at most one of 'prompt' (the text) or 'prompt_file'"),
    ],
)
def test_a_bad_phase_value_names_the_file_the_key_and_the_fix(
    tmp_path: Path, edit: Callable[[dict[str, Any]], None], key: str, says: str
) -> None:
    folder = phased_copy(tmp_path, edit)
    with pytest.raises(PacketError) as err:
        load_packet(folder)
    where = f"{folder / 'packet.yaml'}: {key}" if key else f"{folder / 'packet.yaml'}"
    assert str(err.value).startswith(f"{where}: "), str(err.value)
    assert says in str(err.value)


def test_a_phase_prompt_file_is_read_like_the_packets(tmp_path: Path) -> None:
    def edit(data: dict[str, Any]) -> None:
        del data["phases"][0]["prompt"]
        data["phases"][0]["prompt_file"] = "PLAN_PROMPT.md"

    folder = phased_copy(tmp_path, edit)
    with pytest.raises(PacketError, match=r"phases\[0\]\.prompt_file: prompt file 'PLAN_PROMPT.md' does not exist"):
        load_packet(folder)
    (folder / "PLAN_PROMPT.md").write_bytes(b"plan \xff")
    with pytest.raises(PacketError, match=r"phases\[0\]\.prompt_file: .* is not UTF-8 text"):
        load_packet(folder)
    (folder / "PLAN_PROMPT.md").write_text("Plan from a file.\n")
    assert load_packet(folder).phases[0].prompt.endswith("\n\nPlan from a file.\n")


def test_phases_load_with_the_packet_prompt_first_tools_in_order_and_turn_defaults() -> None:
    packet = load_packet(PHASED)
    plan, implement = packet.phases
    task = (PHASED / "PROMPT.md").read_text()
    assert [plan.id, implement.id] == ["plan", "implement"]
    assert plan.prompt.startswith(task.rstrip() + "\n\n") and "PLAN phase" in plan.prompt
    assert plan.tools == PLAN_TOOLS  # finish added, in the tools' own order
    assert implement.tools is None  # every tool
    assert (plan.max_turns, implement.max_turns) == (8, packet.limits.max_turns)


def test_without_a_packet_prompt_each_phase_gets_its_own_text(tmp_path: Path) -> None:
    folder = phased_copy(tmp_path, _set("prompt_file", _DROP, None))
    packet = load_packet(folder)
    assert packet.prompt == ""
    assert packet.phases[1].prompt.startswith("This session is the IMPLEMENT phase")


def test_a_packet_without_phases_still_needs_its_prompt(tmp_path: Path) -> None:
    folder = phased_copy(tmp_path, lambda d: (d.pop("phases"), d.pop("prompt_file")))
    with pytest.raises(PacketError, match="give exactly one of 'prompt'"):
        load_packet(folder)
    assert load_packet(BUGFIX).phases == ()


def test_the_phased_example_passes_its_self_check() -> None:
    result = check_packet(load_packet(PHASED), LocalSandbox)
    assert result.valid, result.problems


# --------------------------------------------------------------------------- run_phases on a fake session


def phase(pid: str, max_turns: int = 5, tools: tuple[str, ...] | None = None) -> Phase:
    return Phase(id=pid, prompt=f"do {pid}", tools=tools, max_turns=max_turns)


def result_of(
    outcome: str, tokens: tuple[int, int] = (100, 10), turns: int = 2, reported: bool = True, sleep_s: float = 0.0
) -> AgentResult:
    time.sleep(sleep_s)
    usage = Usage(tokens[0], tokens[1], 5, reported)
    made = [Turn(i, 0.01, f"t{i}", usage=usage, started_s=0.1 * i) for i in range(turns)]
    used = turns * sum(tokens) if reported else None
    budget = BudgetUse("wall", 5, None, None, 600.0, None, None, used, None, True, "" if reported else "no usage")
    return AgentResult(outcome, made, wall_s=0.2 + sleep_s, summary=f"{outcome} summary", error="", budget=budget)  # type: ignore[arg-type]


def result_of_ok() -> AgentResult:
    return result_of("finished")


def unreachable() -> AgentResult:
    """A session whose first model call never got an answer (as the loop leaves it)."""
    return AgentResult("infrastructure", [Turn(0, 0.01, error="connection_error")], 0.01, failure="connection_error")


class FakeSession:
    """Answers each phase with the next scripted result; remembers the configs it was given."""

    def __init__(self, *results: Callable[[], AgentResult]) -> None:
        self.results = list(results)
        self.seen: list[tuple[str, AgentConfig]] = []

    def __call__(self, p: Phase, config: AgentConfig) -> AgentResult:
        self.seen.append((p.id, config))
        return self.results.pop(0)()


def test_phases_run_in_order_and_combine_turns_usage_and_figures() -> None:
    session = FakeSession(
        lambda: result_of("finished", turns=2, sleep_s=0.15), lambda: result_of("max_turns", (50, 5), turns=3)
    )
    out = run_phases([phase("plan", 2, PLAN_TOOLS), phase("implement", 3)], session, AgentConfig())
    assert [pid for pid, _ in session.seen] == ["plan", "implement"]
    assert [(c.max_turns, c.tools) for _, c in session.seen] == [(2, PLAN_TOOLS), (3, None)]
    assert [t.index for t in out.turns] == [0, 1, 2, 3, 4]
    assert [t.phase for t in out.turns] == ["plan"] * 2 + ["implement"] * 3
    starts = [t.started_s or 0.0 for t in out.turns]  # run seconds: implement's start after plan's 0.15 s
    assert (
        starts[:2] == pytest.approx([0.0, 0.1], abs=1e-3)
        and 0.15 <= starts[2] < 1
        and starts[3] == pytest.approx(starts[2] + 0.1)
    )
    assert out.outcome == "max_turns" and out.summary == "max_turns summary"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (2 * 100 + 3 * 50, 2 * 10 + 3 * 5)
    assert [f.to_dict()["tokens"]["prompt"] for f in out.phases] == [200, 150]
    assert [(f.id, f.outcome, f.turns, f.ended_by) for f in out.phases] == [
        ("plan", "finished", 2, None),
        ("implement", "max_turns", 3, "turns"),
    ]
    assert out.budget is not None and out.budget.tokens_used == 220 + 165 and out.budget.ended_by == "turns"
    transcript = out.transcript()
    assert "=== phase plan: finished, 2 turn(s)" in transcript
    assert transcript.index("=== phase plan") < transcript.index("=== phase implement")


@pytest.mark.parametrize("outcome", sorted(set(OUTCOMES)))
def test_a_phase_that_makes_going_on_pointless_stops_the_run(outcome: str) -> None:
    session = FakeSession(lambda: unreachable() if outcome == "infrastructure" else result_of(outcome), result_of_ok)
    out = run_phases([phase("one"), phase("two")], session, AgentConfig())
    stops = outcome in STOPS_RUN
    assert len(session.seen) == (1 if stops else 2)
    assert [f.id for f in out.phases] == (["one"] if stops else ["one", "two"])
    assert out.outcome == (outcome if stops else "finished")
    assert STOPS_RUN == {"infrastructure", "model_error", "token_budget", "agent_timeout", "safety_timeout"}


def test_a_later_phase_that_gets_no_answer_counts_against_the_model() -> None:
    def unreachable() -> AgentResult:
        r = AgentResult("infrastructure", [Turn(0, 0.01, error="connection_error")], 0.01, failure="connection_error")
        return r

    out = run_phases(
        [phase("one"), phase("two")], FakeSession(lambda: result_of("finished"), unreachable), AgentConfig()
    )
    assert out.outcome == "model_error" and out.failure == "connection_error" and out.counted
    assert [f.outcome for f in out.phases] == ["finished", "infrastructure"]
    first = run_phases([phase("one"), phase("two")], FakeSession(unreachable), AgentConfig())
    assert first.outcome == "infrastructure" and not first.counted


def test_the_token_budget_is_the_runs_and_later_phases_get_what_is_left() -> None:
    config = budget_config("tokens", max_turns=9, timeout_s=60, max_output_tokens=100, max_total_tokens=1000)
    session = FakeSession(*(lambda: result_of("finished", (300, 50)), lambda: result_of("finished", (100, 0))) * 2)
    out = run_phases([phase("a"), phase("b"), phase("c")], session, config)
    # a's two calls use 700, b's 200: c gets the 100 left (its per-call max_tokens is then clamped to it)
    assert [c.max_total_tokens for _, c in session.seen] == [1000, 300, 100]
    assert out.outcome == "finished" and out.budget is not None
    assert (out.budget.max_total_tokens, out.budget.tokens_used, out.budget.over_by) == (1000, 1600, 600)


def test_a_run_whose_tokens_are_spent_does_not_start_the_next_phase() -> None:
    config = budget_config("tokens", max_turns=9, timeout_s=60, max_output_tokens=100, max_total_tokens=1000)
    session = FakeSession(lambda: result_of("finished", (400, 100)), lambda: result_of("finished"))
    out = run_phases([phase("a"), phase("b")], session, config)
    assert [pid for pid, _ in session.seen] == ["a"]
    assert out.outcome == "token_budget" and "phase 'b' was not run" in out.error
    assert "1,000" in out.error
    assert out.budget is not None and out.budget.ended_by == "tokens" and out.budget.tokens_used == 1000
    assert out.budget.max_turns == 10  # the run's: both phases' turn budgets


def test_unknown_usage_ends_token_enforcement_for_the_later_phases() -> None:
    config = budget_config("tokens", max_turns=9, timeout_s=60, max_output_tokens=100, max_total_tokens=5000)
    session = FakeSession(lambda: result_of("finished", reported=False), lambda: result_of("finished"))
    out = run_phases([phase("a"), phase("b")], session, config)
    assert [c.max_total_tokens for _, c in session.seen] == [5000, None]
    assert out.budget is not None and out.budget.tokens_used is None and not out.budget.enforced
    assert "phase 'a': no usage" in out.budget.note


@pytest.mark.parametrize("mode", ["wall", "tokens"])
def test_the_wall_clock_is_the_runs_and_later_phases_get_what_is_left(mode: str) -> None:
    config = budget_config(mode, max_turns=9, timeout_s=30, max_output_tokens=100, max_total_tokens=None)  # type: ignore[arg-type]
    session = FakeSession(lambda: result_of("finished", sleep_s=0.2), lambda: result_of("finished"))
    run_phases([phase("a"), phase("b")], session, config)
    (_, first), (_, second) = session.seen
    assert first.wall_limit_s == pytest.approx(config.wall_limit_s, abs=0.1)
    assert config.wall_limit_s - 1 < second.wall_limit_s <= config.wall_limit_s - 0.2


def test_a_run_out_of_time_does_not_start_the_next_phase() -> None:
    config = AgentConfig(timeout_s=0.1)
    session = FakeSession(lambda: result_of("finished", sleep_s=0.15), lambda: result_of("finished"))
    out = run_phases([phase("a"), phase("b")], session, config)
    assert len(session.seen) == 1 and out.outcome == "agent_timeout"
    assert "wall budget of 0.1 s used up over the phases; phase 'b' was not run" in out.error


# --------------------------------------------------------------------------- the built-in loop, one phase's tools


def spec() -> ModelSpec:
    return ModelSpec(alias="t", model="scripted", source=Path("models.yaml"))


def test_the_loop_offers_only_the_phases_tools_and_refuses_the_others() -> None:
    script = {"conversations": [{"responses": [call("run", command="touch x"), call("finish", summary="ok")]}]}
    with ScriptedServer(script) as server, LocalSandbox(BUGFIX / "repo") as box:
        adapter = ModelAdapter(spec(), base_url=server.base_url, sleep=lambda s: None)
        result = run_agent("do it", box, adapter, AgentConfig(tools=("read_file", "finish")))
        adapter.close()
        offered = [[t["function"]["name"] for t in r["tools"]] for r in server.requests]
        assert box.exec(["test", "-e", "x"], 10).exit_code == 1  # nothing ran
    assert offered == [["read_file", "finish"]] * 2
    refused = result.turns[0].tool_calls[0]
    assert not refused.ok
    assert refused.result == (
        "error: tool 'run' is not offered in this session (its phase allows only read_file, finish); "
        "no action taken: use one of those"
    )
    assert result.outcome == "finished"


def test_run_packet_runs_each_phase_as_a_fresh_session_with_its_tools() -> None:
    packet = load_packet(PHASED)
    with ScriptedServer(GOOD_SCRIPT) as server:
        adapter = ModelAdapter(spec(), base_url=server.base_url, sleep=lambda s: None)
        record = run_packet(packet, spec(), adapter, lambda p: LocalSandbox(p.workspace))
        adapter.close()
        requests = server.requests
    assert record.passed, [(g.id, g.output) for g in record.gates]
    assert [len(r["messages"]) for r in requests][:2] == [2, 4]  # the plan phase's own conversation ...
    assert len(requests[4]["messages"]) == 2  # ... and the implement phase starts a fresh one
    assert "IMPLEMENT phase" in requests[4]["messages"][1]["content"]
    tools = [sorted(t["function"]["name"] for t in r["tools"]) for r in requests]
    assert tools[:4] == [sorted(PLAN_TOOLS)] * 4 and tools[4:] == [sorted(TOOL_NAMES)] * 4
    assert record.agent_config is not None and record.agent_config.max_turns == 8 + packet.limits.max_turns


# --------------------------------------------------------------------------- end to end through the plugin


@pytest.fixture
def phased_folder(pytester: pytest.Pytester) -> Path:
    root = pytester.path
    shutil.copytree(PHASED, root / "packets" / "example-wordcount-phases")
    (root / "scripts" / "good").mkdir(parents=True)
    (root / "scripts" / "good" / "phases.yaml").write_text(yaml.safe_dump(GOOD_SCRIPT))
    shutil.copytree(SCRIPTS / "noop", root / "scripts" / "noop")
    (root / "models.yaml").write_text(
        "models:\n"
        "  a:\n    model: scripted-good\n    serve: {engine: scripted, script: scripts/good}\n"
        "  b:\n    model: scripted-noop\n    serve: {engine: scripted, script: scripts/noop}\n"
    )
    return root


def test_a_two_phase_packet_through_the_plugin_records_per_phase_figures(
    pytester: pytest.Pytester, phased_folder: Path
) -> None:
    result = pytester.runpytest(
        "--models=a,b",
        "--packets",
        "packets",
        "--sandbox=local",
        "-p",
        "no:cacheprovider",
        "--agentbench-results",
        "res",
    )
    result.assert_outcomes(passed=1, failed=1)
    lines = (phased_folder / "res" / "results.jsonl").read_text().splitlines()
    records = {r["alias"]: r for r in map(json.loads, lines)}
    good, noop = records["a"], records["b"]

    assert good["passed"] and good["outcome"] == "finished"
    assert [(p["id"], p["outcome"], p["turns"], p["model_calls"]) for p in good["phases"]] == [
        ("plan", "finished", 4, 4),
        ("implement", "finished", 4, 4),
    ]
    assert good["phases"][0]["tools"] == list(PLAN_TOOLS) and good["phases"][1]["tools"] is None
    assert sum(p["turns"] for p in good["phases"]) == good["turns"] == len(good["client"]["calls"])
    for kind in ("prompt", "completion", "cached"):
        assert sum(p["tokens"][kind] for p in good["phases"]) == good["client"]["tokens"][kind]
    assert good["client"]["tokens"]["prompt"] > 0
    assert good["budget"]["tokens_used"] == good["client"]["tokens"]["prompt"] + good["client"]["tokens"]["completion"]
    assert [c["phase"] for c in good["client"]["calls"]] == ["plan"] * 4 + ["implement"] * 4
    assert [c["index"] for c in good["client"]["calls"]] == list(range(8))

    refused = good["trajectory"][0]["tool_calls"][0]
    assert good["trajectory"][0]["phase"] == "plan"
    assert refused["name"] == "run" and not refused["ok"]
    assert "'run' is not offered in this session" in refused["result"]
    assert "=== phase plan: finished, 4 turn(s)" in good["transcript"]
    assert "=== phase implement: finished, 4 turn(s)" in good["transcript"]

    # the no-op double finishes both phases having changed nothing: the gates, run after the last, fail
    assert not noop["passed"] and [p["outcome"] for p in noop["phases"]] == ["finished", "finished"]
    assert {g["id"] for g in noop["gates"] if not g["passed"]} == {"plan", "whitespace"}


def test_a_packet_without_phases_has_no_phases_in_its_record() -> None:
    with ScriptedServer(SCRIPTS / "good") as server:
        adapter = ModelAdapter(spec(), base_url=server.base_url, sleep=lambda s: None)
        record = run_packet(load_packet(BUGFIX), spec(), adapter, lambda p: LocalSandbox(p.workspace))
        adapter.close()
    out = record_to_dict(record)
    assert record.passed and "phases" not in out
    assert all("phase" not in c for c in out["client"]["calls"]) and "=== phase" not in out["transcript"]

"""The built-in packets and their scripted trajectories stay in step with each other.

The self-check (tests/test_selfcheck.py) proves each packet's gates against its
reference patch; these tests prove the rest of what the built-in suite relies
on: the five kinds are covered, nothing hidden leaks into the workspace or the
prompt, and the scripted test-double trajectories still apply and score as
intended (good: every gate passes; partial: some non-guard gates fail).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from pytest_agentbench.agents.config import AgentConfig
from pytest_agentbench.agents.tools import Tools
from pytest_agentbench.models.calls import ToolCall
from pytest_agentbench.packets.gates import run_gates
from pytest_agentbench.packets.schema import _GATE_KEYS, _LIMIT_KEYS, _PACKET_KEYS, KINDS, Packet, discover_packets
from pytest_agentbench.packets.selfcheck import static_problems
from pytest_agentbench.sandbox import LocalSandbox
from pytest_agentbench.serving.scripted import load_script

REPO = Path(__file__).resolve().parent.parent
PACKETS = discover_packets([REPO / "task_packets"])
SCRIPTS = REPO / "examples" / "scripted"
by_id = pytest.mark.parametrize("packet", PACKETS, ids=lambda p: p.id)


def test_docs_describe_every_packet_key():
    docs = (REPO / "docs" / "packets.md").read_text()
    keys = _PACKET_KEYS | {f"limits.{k}" for k in _LIMIT_KEYS} | _GATE_KEYS
    assert [k for k in sorted(keys) if f"| `{k}` |" not in docs] == []


def test_every_kind_has_a_builtin_packet():
    assert sorted({p.kind for p in PACKETS}) == sorted(KINDS)


@by_id
def test_folder_is_named_after_the_id(packet: Packet):
    assert packet.root.name == packet.id


@by_id
def test_static_rules(packet: Packet):
    assert static_problems(packet) == []


@by_id
def test_prompt_does_not_name_hidden_files(packet: Packet):
    for gate in packet.gates:
        for src, dst in gate.add:
            for name in {Path(src).stem, Path(dst).stem}:
                assert name not in packet.prompt, f"the prompt names hidden file {name!r} of gate {gate.id!r}"


def conversation_for(kind: str, prompt: str) -> dict:
    """The conversation the scripted server would replay for ``prompt`` (first match wins)."""
    for conversation in load_script(SCRIPTS / kind):
        if conversation.get("match") is None or conversation["match"] in prompt:
            return conversation
    raise AssertionError(f"no conversation in examples/scripted/{kind} matches the prompt")


@by_id
@pytest.mark.parametrize("kind", ["good", "partial"])
def test_trajectory_selected_by_the_prompt_is_this_packets(packet: Packet, kind: str):
    own = load_script(SCRIPTS / kind / f"{packet.id}.yaml")
    assert len(own) == 1
    assert conversation_for(kind, packet.prompt) == own[0]


def replay(packet: Packet, kind: str, sandbox: LocalSandbox) -> None:
    """Execute the trajectory's tool calls the way the agent loop would; every call must succeed."""
    tools = Tools(sandbox, AgentConfig(), deadline=time.monotonic() + 300)
    for turn, response in enumerate(conversation_for(kind, packet.prompt)["responses"]):
        for n, call in enumerate(response.get("tool_calls") or []):
            result = tools.dispatch(ToolCall(f"call_{turn}_{n}", call["name"], json.dumps(call["arguments"])))
            if call["name"] == "run":
                assert result.startswith("exit code: 0"), f"turn {turn}: {call['arguments']} -> {result}"


@pytest.mark.slow
@by_id
@pytest.mark.parametrize("kind", ["good", "partial"])
def test_trajectory_scores_as_intended(packet: Packet, kind: str):
    with LocalSandbox(packet.workspace) as sandbox:
        replay(packet, kind, sandbox)
        results = run_gates(packet, sandbox)
    failed = {r.id for r in results if not r.passed}
    if kind == "good":
        assert not failed
    else:
        assert not any(r.guard for r in results if r.id in failed), f"a partial change broke a guard: {failed}"
        assert failed, "the partial trajectory passes every gate"
        if sum(not g.guard for g in packet.gates) > 1:  # part of the job done: part of the gates pass
            assert any(not r.guard and r.passed for r in results), "the partial trajectory passes no gate at all"

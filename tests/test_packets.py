"""Strict packet loading: every malformed packet is rejected naming the file and the key."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from pytest_agentbench.errors import PacketError
from pytest_agentbench.packets.schema import discover_packets, load_packet

from .conftest import BUGFIX

GOOD = """\
id: demo
kind: bug-fix
title: Demo
prompt: Fix it.
workspace: repo/
gates:
  - id: check
    run: python -c 'import sys; sys.exit(1)'
"""


def make(tmp_path: Path, text: str, name: str = "p") -> Path:
    root = tmp_path / name
    (root / "repo").mkdir(parents=True)
    (root / "hidden").mkdir()
    (root / "hidden" / "t.py").write_text("")
    (root / "packet.yaml").write_text(textwrap.dedent(text))
    return root


def test_good_packet_loads_with_defaults(tmp_path: Path) -> None:
    p = load_packet(make(tmp_path, GOOD))
    assert (p.id, p.kind, p.version, p.limits.max_turns) == ("demo", "bug-fix", 1, 30)
    assert p.gates[0].expect_exit == 0 and p.gates[0].timeout_s == 120 and not p.gates[0].guard


def test_builtin_packet_loads() -> None:
    p = load_packet(BUGFIX)
    assert p.id == "bugfix-median"
    assert [g.id for g in p.gates] == ["regression", "existing-tests"]
    assert p.reference is not None and p.reference.is_file()


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        (GOOD + "colour: red\n", "packet.yaml", "unknown key(s) 'colour'"),
        (GOOD.replace("kind: bug-fix", "kind: bugfix"), "kind", "expected one of bug-fix"),
        (GOOD.replace("title: Demo\n", ""), "packet.yaml", "missing required key(s) 'title'"),
        (GOOD.replace("workspace: repo/", "workspace: nowhere/"), "workspace", "does not exist"),
        (GOOD.replace("workspace: repo/", "workspace: ../../etc"), "workspace", "outside the packet folder"),
        (
            GOOD.replace("    run: python -c 'import sys; sys.exit(1)'\n", ""),
            "gates[0]",
            "missing required key(s) 'run'",
        ),
        (GOOD + "  - id: check\n    run: 'true'\n", "gates[1].id", "duplicate gate id 'check'"),
        (GOOD.replace("id: demo", "id: Demo Packet"), "id", "not a valid packet id"),
        (GOOD + "limits: {max_turns: many}\n", "limits.max_turns", "expected an integer"),
        (GOOD + "limits: {max_turn: 3}\n", "limits", "unknown key(s) 'max_turn'"),
        (
            GOOD.replace("run: python", "expect_exit: '0'\n    run: python"),
            "gates[0].expect_exit",
            "expected an integer",
        ),
        (GOOD + "    add: {hidden/missing.py: tests/t.py}\n", "gates[0].add.hidden/missing.py", "does not exist"),
        (GOOD + "    add: {hidden/t.py: /etc/t.py}\n", "gates[0].add.hidden/t.py", "relative to the workspace"),
        (GOOD + "    guard: yes please\n", "gates[0].guard", "expected true or false"),
        (GOOD + "reference: solution.patch\n", "reference", "does not exist"),
        (GOOD.replace("prompt: Fix it.", "prompt_file: PROMPT.md"), "prompt_file", "does not exist"),
        (GOOD + "prompt_file: PROMPT.md\n", "packet.yaml", "exactly one of 'prompt'"),
        (
            GOOD.replace("gates:\n  - id: check\n    run: python -c 'import sys; sys.exit(1)'\n", "gates: []\n"),
            "gates",
            "non-empty list",
        ),
        ("id: [unclosed\n", "packet.yaml", "invalid YAML at line"),
        ("- just\n- a list\n", "packet.yaml", "expected a mapping at the top level"),
    ],
)
def test_malformed_packet_is_rejected_naming_file_and_key(tmp_path: Path, text: str, key: str, expected: str) -> None:
    root = make(tmp_path, text)
    with pytest.raises(PacketError) as exc:
        load_packet(root)
    message = str(exc.value)
    assert str(root / "packet.yaml") in message
    assert key in message
    assert expected in message


def test_discovery_is_sorted_and_rejects_duplicate_ids(tmp_path: Path) -> None:
    make(tmp_path, GOOD.replace("id: demo", "id: zeta"), "a")
    make(tmp_path, GOOD.replace("id: demo", "id: alpha"), "b")
    assert [p.id for p in discover_packets([tmp_path])] == ["alpha", "zeta"]
    make(tmp_path, GOOD.replace("id: demo", "id: alpha"), "c")
    with pytest.raises(PacketError, match="duplicate packet id 'alpha'"):
        discover_packets([tmp_path])


def test_discovery_does_not_look_inside_packets(tmp_path: Path) -> None:
    root = make(tmp_path, GOOD)
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    shutil.move(copy, root / "repo" / "nested")  # a packet.yaml inside a workspace is data, not a packet
    assert [p.id for p in discover_packets([tmp_path])] == ["demo"]


def test_missing_packets_folder_names_the_option(tmp_path: Path) -> None:
    with pytest.raises(PacketError, match="--packets"):
        discover_packets([tmp_path / "nope"])

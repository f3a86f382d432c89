"""The packet self-check: built-in packets are valid; broken packets are refused with the reason."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_agentbench.cli.check_packets import main
from pytest_agentbench.packets.schema import discover_packets, load_packet
from pytest_agentbench.packets.selfcheck import PacketCheck, check_packet, check_paths, format_table
from pytest_agentbench.sandbox import LocalSandbox

REPO = Path(__file__).resolve().parent.parent
BUILTIN = REPO / "task_packets"

BUGGY = "def add(a, b):\n    return a - b\n"
FIXED = "def add(a, b):\n    return a + b\n"
CHECK_ADD = "from calc import add\n\nassert add(2, 3) == 5, add(2, 3)\n"

FIXED_GATE: dict[str, Any] = {
    "id": "fixed",
    "run": "PYTHONPATH=. python .gates/check_add.py",
    "add": {"hidden/check_add.py": ".gates/check_add.py"},
}
IMPORTS_GUARD: dict[str, Any] = {"id": "imports", "run": "python -c 'import calc'", "guard": True}


def git_diff(workspace: Path, changes: dict[str, str], tmp: Path) -> str:
    """The patch `git diff` makes for ``changes`` (path -> new content) against ``workspace``."""
    scratch = tmp / "scratch"
    subprocess.run(["cp", "-r", str(workspace), str(scratch)], check=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run(git + argv, cwd=scratch, check=True, capture_output=True)
    for path, content in changes.items():
        (scratch / path).write_text(content)
    subprocess.run(git + ["add", "-N", "."], cwd=scratch, check=True)
    return subprocess.run(git + ["diff"], cwd=scratch, check=True, capture_output=True, text=True).stdout


def make_packet(
    tmp_path: Path,
    gates: list[dict[str, Any]],
    *,
    fix: dict[str, str] | None = None,
    patch: str | None = None,
    reference: str | None = "solution.patch",
    hidden: dict[str, str] | None = None,
) -> Path:
    """A one-file bug-fix packet in ``tmp_path/pkt``; ``fix`` is what the reference changes."""
    root = tmp_path / "pkt"
    (root / "repo").mkdir(parents=True)
    (root / "repo" / "calc.py").write_text(BUGGY)
    for path, content in ({"hidden/check_add.py": CHECK_ADD} if hidden is None else hidden).items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(content)
    if reference is not None:
        if patch is None:
            patch = git_diff(root / "repo", {"calc.py": FIXED} if fix is None else fix, tmp_path)
        (root / reference).write_text(patch)
    spec: dict[str, Any] = {
        "id": "tiny",
        "kind": "bug-fix",
        "title": "Fix add()",
        "prompt": "add(2, 3) returns -1; it should return 5.",
        "workspace": "repo/",
        "gates": gates,
    }
    if reference is not None:
        spec["reference"] = reference
    (root / "packet.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def check(root: Path) -> PacketCheck:
    return check_packet(load_packet(root), LocalSandbox)


def only_problem(result: PacketCheck) -> str:
    assert not result.valid
    assert len(result.problems) == 1, result.problems
    return result.problems[0]


# -- built-in packets --------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("packet", discover_packets([BUILTIN]), ids=lambda p: p.id)
def test_builtin_packet_is_valid(packet):
    result = check_packet(packet, LocalSandbox)
    assert result.valid, format_table([result])
    assert {g.id for g in result.gates} == {g.id for g in packet.gates}


def test_template_packet_is_valid():
    """The course-team template (docs/packets.md points at it) passes its own self-check."""
    result = check_packet(load_packet(REPO / "examples" / "packet-template"), LocalSandbox)
    assert result.valid, format_table([result])


# -- a valid packet first, so the broken ones below fail for the reason they name --------------------------------


def test_valid_packet(tmp_path):
    result = check(make_packet(tmp_path, [FIXED_GATE, IMPORTS_GUARD]))
    assert result.valid, result.problems
    by_id = {g.id: g for g in result.gates}
    assert not by_id["fixed"].before.passed and by_id["fixed"].after.passed
    assert by_id["imports"].before.passed and by_id["imports"].after.passed
    table = format_table([result])
    assert "VALID" in table and "INVALID" not in table
    assert "1 packet(s) checked: 1 valid, 0 invalid" in table


# -- broken packets ----------------------------------------------------------------------------------------------


def test_non_guard_gate_that_already_passes(tmp_path):
    result = check(make_packet(tmp_path, [FIXED_GATE, {"id": "always", "run": "true"}]))
    problem = only_problem(result)
    assert "gate 'always' already passes on the untouched workspace" in problem
    assert "make it a guard" in problem


def test_guard_that_fails_before(tmp_path):
    guard = {"id": "adds-up", "run": "python -c 'import calc; assert calc.add(1, 1) == 2'", "guard": True}
    problem = only_problem(check(make_packet(tmp_path, [FIXED_GATE, guard])))
    assert "guard 'adds-up' fails on the untouched workspace (exit 1, expected 0)" in problem


def test_reference_that_fails_a_gate(tmp_path):
    not_a_fix = {"calc.py": "# adds two numbers\n" + BUGGY}
    result = check(make_packet(tmp_path, [FIXED_GATE, IMPORTS_GUARD], fix=not_a_fix))
    problem = only_problem(result)
    assert "gate 'fixed' fails with the reference applied (exit 1, expected 0)" in problem
    # the author sees why: the tail of the gate's output
    assert "AssertionError: -1" in result.details[("fixed", "after")]
    assert "AssertionError: -1" in format_table([result])


def test_reference_that_breaks_a_guard(tmp_path):
    breaks_import = {"calc.py": FIXED + "import no_such_module\n"}
    problems = check(make_packet(tmp_path, [FIXED_GATE, IMPORTS_GUARD], fix=breaks_import)).problems
    assert any("guard 'imports' fails with the reference applied" in p for p in problems), problems


def test_reference_that_does_not_apply(tmp_path):
    stale = "--- a/calc.py\n+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a * b\n+    return a + b\n"
    result = check(make_packet(tmp_path, [FIXED_GATE, IMPORTS_GUARD], patch=stale))
    problem = only_problem(result)
    assert "reference 'solution.patch' does not apply to the workspace with `git apply`" in problem
    assert "patch does not apply" in problem  # git's own words
    assert all(g.after is None for g in result.gates)
    assert "ok (fail->pass)" not in format_table([result])  # a gate is not "ok" when only half checked


def test_missing_hidden_file_is_refused_at_load(tmp_path):
    gate = {**FIXED_GATE, "add": {"hidden/nope.py": ".gates/check_add.py"}}
    root = make_packet(tmp_path, [gate, IMPORTS_GUARD])
    (result,) = check_paths([tmp_path], LocalSandbox)
    problem = only_problem(result)
    assert problem.startswith("does not load:")
    assert "hidden/nope.py" in problem and "does not exist" in problem
    assert result.path == root


def test_hidden_file_removed_after_loading(tmp_path):
    root = make_packet(tmp_path, [FIXED_GATE, IMPORTS_GUARD])
    packet = load_packet(root)
    (root / "hidden" / "check_add.py").unlink()
    result = check_packet(packet, LocalSandbox)
    problem = only_problem(result)
    assert "gate 'fixed': hidden file 'hidden/check_add.py' is missing" in problem


def test_every_gate_a_guard(tmp_path):
    problem = only_problem(check(make_packet(tmp_path, [IMPORTS_GUARD])))
    assert "every gate is a guard" in problem


def test_hidden_file_inside_the_workspace(tmp_path):
    gate = {**FIXED_GATE, "add": {"repo/check_add.py": ".gates/check_add.py"}}
    root = make_packet(tmp_path, [gate, IMPORTS_GUARD], hidden={"repo/check_add.py": CHECK_ADD})
    problems = check(root).problems
    assert any("hidden file 'repo/check_add.py' is inside the workspace folder" in p for p in problems), problems


def test_no_reference(tmp_path):
    result = check(make_packet(tmp_path, [FIXED_GATE, IMPORTS_GUARD], reference=None))
    assert "no 'reference'" in only_problem(result)
    assert all(g.before is not None and g.after is None for g in result.gates)


# -- the command -------------------------------------------------------------------------------------------------


def test_main_valid(tmp_path, capsys):
    make_packet(tmp_path, [FIXED_GATE, IMPORTS_GUARD])
    assert main([str(tmp_path), "--sandbox", "local"]) == 0
    out = capsys.readouterr().out
    assert "tiny" in out and "ok (fail->pass)" in out and "ok (pass->pass)" in out
    assert "1 valid, 0 invalid" in out


def test_main_invalid(tmp_path, capsys):
    make_packet(tmp_path, [FIXED_GATE, {"id": "always", "run": "true"}])
    assert main([str(tmp_path), "--sandbox", "local"]) == 1
    out = capsys.readouterr().out
    assert "tiny" in out and "INVALID" in out and "BAD" in out
    assert "gate 'always' already passes on the untouched workspace" in out
    assert "0 valid, 1 invalid" in out


def test_main_usage_errors(tmp_path, capsys):
    assert main([str(tmp_path / "nope"), "--sandbox", "local"]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main([str(tmp_path), "--sandbox", "local"]) == 2
    assert "no packet.yaml below" in capsys.readouterr().err


# -- paths that do not exist, and references made without `git add -N` -----------------------------------------


def test_gate_whose_path_does_not_exist_is_no_valid_fail_before(tmp_path):
    typo = {
        "id": "hidden-tests",
        "run": "python -m pytest -q -p no:cacheprovider .gates/test_add.py",
        "add": {"hidden/test_add.py": ".gates/test_ad.py"},  # the destination is not what `run` names
    }
    hidden = {"hidden/test_add.py": "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"}
    result = check(make_packet(tmp_path, [typo, IMPORTS_GUARD], hidden=hidden))
    before, after = result.gates[0].issues()
    assert before[0] == "before" and "only because '.gates/test_add.py' does not exist" in before[1]
    assert "proves nothing" in before[1] and "fix the path in `run`" in before[1]
    assert after[0] == "after" and "'.gates/test_add.py' does not exist" in after[1]
    assert "BAD" in format_table([result])


def test_gate_whose_file_the_reference_creates_is_valid(tmp_path):
    """A test-generation gate runs a file the change must create: missing before, present after, valid."""
    creates = {"id": "new-check", "run": "python check_new.py"}
    fix = {"calc.py": FIXED, "check_new.py": CHECK_ADD}
    result = check(make_packet(tmp_path, [creates, IMPORTS_GUARD], fix=fix))
    assert result.valid, result.problems


def test_reference_made_without_git_add_n_gets_the_hint(tmp_path):
    root = make_packet(tmp_path, [FIXED_GATE, IMPORTS_GUARD], patch="")
    scratch = tmp_path / "scratch2"
    subprocess.run(["cp", "-r", str(root / "repo"), str(scratch)], check=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    for argv in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "base"]):
        subprocess.run(git + argv, cwd=scratch, check=True, capture_output=True)
    (scratch / "adder.py").write_text(FIXED)  # the new module...
    (scratch / "calc.py").write_text("from adder import add  # noqa: F401\n")
    diff = subprocess.run(git + ["diff"], cwd=scratch, check=True, capture_output=True, text=True).stdout
    (root / "solution.patch").write_text(diff)  # ...that `git diff` without `git add -N` leaves out
    problems = check(root).problems
    hint = [p for p in problems if "cannot import 'adder'" in p]
    assert hint, problems
    assert "git add -N ." in hint[0] and "(this reference adds no new file)" in hint[0]

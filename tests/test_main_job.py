"""The main job's last word: what happened, where to look next, and an exit status that says whether the
evaluation ran to the end (``agentbench verdict``), from the session file ``--agentbench-session-json``
writes. The real main job takes minutes and is never run here: its script runs once on stand-ins for the
set-up steps and a scripted alias (a test double) named like the embedded one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.cli import main
from pytest_agentbench.cli.verdict import decide, duration

from .conftest import REPO

pytest_plugins = ["pytester"]

TINY_PACKET = """\
id: tiny
kind: bug-fix
title: Leave a done.txt behind
prompt: Create the file done.txt.
workspace: repo/
limits: {max_turns: 5, timeout_s: 60, max_output_tokens: 256}
gates:
  - {id: made, run: test -f done.txt, timeout_s: 10}
"""
#: ``good`` makes done.txt, ``noop`` does not: one run passes its gate, one misses it.
SCRIPTS = {
    "good.yaml": "conversations:\n  - responses:\n"
    "      - {tool_calls: [{name: write_file, arguments: {path: done.txt, content: done}}]}\n"
    "      - {tool_calls: [{name: finish, arguments: {summary: done}}]}\n",
    "noop.yaml": "conversations:\n  - responses:\n      - {tool_calls: [{name: finish, arguments: {summary: no}}]}\n",
}


def make_folder(root: Path, packets: str = "packets") -> Path:
    (root / packets / "tiny" / "repo").mkdir(parents=True)
    (root / packets / "tiny" / "repo" / "README.md").write_text("tiny\n")
    (root / packets / "tiny" / "packet.yaml").write_text(TINY_PACKET)
    for name, text in SCRIPTS.items():
        (root / name).write_text(text)
    (root / "models.yaml").write_text(
        "models:\n"
        "  local-cpu: {model: scripted-good, serve: {engine: scripted, script: good.yaml}}\n"
        "  noop: {model: scripted-noop, serve: {engine: scripted, script: noop.yaml}}\n"
    )
    return root


def session(**kw: Any) -> dict[str, Any]:
    runs = [
        {"packet": "bugfix-median", "alias": "local-cpu", "outcome": "finished", "passed": False, "wall_s": 140.0}
        | {"agent_s": 128.0, "model_s": 120.0, "gates_s": 10.0},
        {"packet": "cli-todo-search", "alias": "local-cpu", "outcome": "finished", "passed": True, "wall_s": 90.0}
        | {"agent_s": 80.0, "model_s": 70.0, "gates_s": 6.0},
    ]
    data = {"exitstatus": 1, "counts": {"passed": 1, "failed": 1, "error": 0, "skipped": 0}, "duration_s": 300.0}
    data |= {"results_dir": None, "html": ".agentbench/report.html", "server_start_s": {"local-cpu": 62.0}}
    return data | {"runs": runs} | kw


# --------------------------------------------------------------------------- the decision


def test_missed_gates_are_results_the_job_exits_0_and_says_what_happened() -> None:
    verdict = decide(1, session(), setup_s=590)
    text = "\n".join(verdict.lines)
    assert verdict.exit_code == 0
    assert "The evaluation ran to the end: 2 run(s) on local-cpu, 1 passed all their gates (50 %)." in text
    assert "exit 0: missed gates are results" in text
    assert "report   .agentbench/report.html" in text
    assert "Time: 14 min 50 s in all, set-up 9 min 50 s, vLLM start (local-cpu) 1 min 2 s" in text
    assert "slowest part: set-up, 9 min 50 s; slowest run: bugfix-median on local-cpu, 2 min 20 s" in text
    assert len(verdict.lines) <= 8  # short


def test_all_passed_exits_0_without_explaining_a_failure() -> None:
    verdict = decide(0, session(counts={"passed": 2, "failed": 0, "error": 0}))
    assert verdict.exit_code == 0 and not any("missed gates" in line for line in verdict.lines)
    assert any("slowest part: model calls, 3 min 10 s" in line for line in verdict.lines)  # no set-up given


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (2, "pytest was interrupted (exit 2)"),
        (3, "internal error (exit 3)"),
        (4, "refused its arguments (exit 4)"),
        (5, "pytest collected nothing (exit 5): no packet ran"),
        (137, "pytest was killed or crashed (exit 137: signal 9)"),
        (7, "pytest exited 7"),
    ],
)
def test_a_run_that_did_not_come_to_the_end_fails_with_pytests_status(status: int, says: str) -> None:
    for data in (session(), None):
        verdict = decide(status, data)
        assert verdict.exit_code == status and verdict.lines[1].startswith("FAILED: ") and says in verdict.lines[1]


def test_an_error_or_nothing_evaluated_fails_even_when_pytest_exits_0_or_1() -> None:
    errored = decide(1, session(counts={"passed": 3, "failed": 1, "error": 2}))
    assert errored.exit_code == 1 and "2 test(s) could not be evaluated (ERROR" in errored.lines[1]
    skipped = decide(0, session(counts={"passed": 0, "failed": 0, "error": 0, "skipped": 4}, runs=[]))
    assert skipped.exit_code == 1 and "nothing was evaluated (4 skipped)" in skipped.lines[1]
    missing = decide(0, None)
    assert missing.exit_code == 1 and "without writing its session file" in missing.lines[1]


def test_durations_read_as_people_say_them() -> None:
    assert [duration(s) for s in (0.4, 62, 648, 3720)] == ["0 s", "1 min 2 s", "10 min 48 s", "1 h 2 min"]


def test_the_command_reads_the_file_and_exits_with_the_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "session.json"
    path.write_text(json.dumps(session()))
    assert main(["verdict", str(path), "--pytest-exit", "1", "--setup-s", "12"]) == 0
    assert "The evaluation ran to the end" in capsys.readouterr().out
    assert main(["verdict", str(tmp_path / "absent.json"), "--pytest-exit", "0"]) == 1
    path.write_text("{not json")
    assert main(["verdict", str(path), "--pytest-exit", "0"]) == 1
    assert "is not readable JSON" in capsys.readouterr().out


# --------------------------------------------------------------------------- the session file pytest writes


def test_session_json_says_what_pytest_did(pytester: pytest.Pytester) -> None:
    make_folder(pytester.path)
    args = ["--models=local-cpu,noop", "--packets", "packets", "--sandbox=local", "-p", "no:cacheprovider"]
    result = pytester.runpytest(*args, "--agentbench-html", "r.html", "--agentbench-session-json", "s/out.json")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["written: *s/out.json"])
    data = json.loads((pytester.path / "s" / "out.json").read_text())
    assert data["exitstatus"] == 1 and data["counts"]["passed"] == 1 and data["counts"]["failed"] == 1
    assert data["html"] == str(pytester.path / "r.html") and data["duration_s"] > 0
    assert Path(data["results_dir"], "results.jsonl").is_file()
    runs = sorted(data["runs"], key=lambda r: r["alias"])
    assert [(r["alias"], r["passed"]) for r in runs] == [("local-cpu", True), ("noop", False)]
    assert all(r["wall_s"] >= r["agent_s"] >= r["model_s"] >= 0 and r["gates_s"] > 0 for r in runs)
    verdict = decide(1, data)
    assert verdict.exit_code == 0 and "2 run(s) on local-cpu, noop, 1 passed all their gates (50 %)" in verdict.lines[1]
    # nothing collected: pytest says so with exit 5, and still writes the file
    empty = pytester.runpytest(*args, "-k", "no-such-test", "--agentbench-session-json", "s/empty.json")
    assert empty.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    assert decide(5, json.loads((pytester.path / "s" / "empty.json").read_text())).exit_code == 5


# --------------------------------------------------------------------------- the script, on stand-ins


@pytest.fixture
def job(tmp_path: Path) -> Path:
    """A checkout with scripts/main-job, no-op set-up steps, .venv/bin/python and a scripted local-cpu."""
    root = make_folder(tmp_path / "checkout", packets="task_packets")
    (root / "scripts").mkdir()
    shutil.copy2(REPO / "scripts" / "main-job", root / "scripts" / "main-job")
    for step in ("bootstrap", "setup-system", "setup-embedded-model"):
        (root / "scripts" / step).write_text("#!/bin/sh\nexit 0\n")
        (root / "scripts" / step).chmod(0o755)
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / ".venv" / "bin" / "python").write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    (root / ".venv" / "bin" / "python").chmod(0o755)
    return root


def run_job(root: Path, *args: str, models: str = "local-cpu") -> subprocess.CompletedProcess[str]:
    env = os.environ | {"PYTHONPATH": str(REPO), "AGENTBENCH_MODELS": models}
    env.pop("PYTEST_ADDOPTS", None)
    env.pop("PYTEST_XDIST_WORKER", None)
    command = [str(root / "scripts" / "main-job"), "--sandbox=local", *args]
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_main_job_exits_0_with_missed_gates_and_fails_when_nothing_ran(job: Path) -> None:
    done = run_job(job, models="local-cpu,noop")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 failed, 1 passed" in done.stdout  # pytest's own account is there, exit 1 and all
    assert "The evaluation ran to the end: 2 run(s) on local-cpu, noop, 1 passed all their gates (50 %)" in done.stdout
    assert "report   .agentbench/report.html" in done.stdout and (job / ".agentbench" / "report.html").is_file()
    assert "slowest part: " in done.stdout
    nothing = run_job(job, "-k", "no-such-test")
    assert nothing.returncode == 5 and "FAILED: pytest collected nothing (exit 5)" in nothing.stdout
    usage = run_job(job, "--repeats", "0")
    assert usage.returncode == 4 and "FAILED: pytest refused its arguments (exit 4)" in usage.stdout
    assert "--repeats: expected a whole number" in usage.stderr

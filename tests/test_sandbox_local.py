"""Grading integrity: hostile agents through the plugin, the sandbox choice, reaping, isolation in reports.

The hostile scripted trajectories (examples/scripted/hostile/, test doubles, not models) try
to pass bugfix-median without fixing it: one rewrites the packet's hidden gate file through
a harness process's /proc/<pid>/cwd, one leaves a setsid process that swaps the hidden test
for a passing one when it is copied in at gate time. Under ``local`` (bubblewrap) and
``docker`` both must fail with the gate missed and the packet untouched; under
``unsafe-local`` both win - which shows the attacks are real, and why that sandbox is named so.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import pytest_agentbench.sandbox as sandbox_pkg
from pytest_agentbench.cli.check_packets import main as check_packets
from pytest_agentbench.reports.html import render_html
from pytest_agentbench.reports.summary import format_summary
from pytest_agentbench.sandbox import bwrap
from pytest_agentbench.sandbox.host import TEMP_PREFIX, reap_dead_sessions

from .conftest import BUGFIX, SCRIPTS

pytest_plugins = ["pytester"]

HIDDEN = "packets/bugfix-median/hidden/test_median_even.py"


@pytest.fixture
def hostile_folder(pytester: pytest.Pytester) -> Path:
    """A user folder: bugfix-median, the two hostile trajectories as aliases, the target marker."""
    shutil.copytree(BUGFIX, pytester.path / "packets" / "bugfix-median")
    shutil.copytree(SCRIPTS / "hostile", pytester.path / "scripts" / "hostile")
    (pytester.path / "HOSTILE-TEST-TARGET").write_text("this folder may be attacked by the hostile scripts\n")
    (pytester.path / "models.yaml").write_text(
        "models:\n"
        "  proc-rewrite:\n    model: hostile-proc\n"
        "    serve: {engine: scripted, script: scripts/hostile/rewrite-hidden-via-proc.yaml}\n"
        "  survivor:\n    model: hostile-survivor\n"
        "    serve: {engine: scripted, script: scripts/hostile/survivor-at-gate-time.yaml}\n"
    )
    return pytester.path


def _run_hostile(pytester: pytest.Pytester, folder: Path, kind: str) -> tuple[pytest.RunResult, dict[str, dict]]:
    result = pytester.runpytest(
        "--models=proc-rewrite,survivor",
        "--packets",
        "packets",
        f"--sandbox={kind}",
        "--agentbench-results",
        "out",
        "--agentbench-html",
        "report.html",
        "-p",
        "no:cacheprovider",
    )
    lines = (folder / "out" / "results.jsonl").read_text().splitlines()
    records = {rec["alias"]: rec for rec in map(json.loads, lines)}
    return result, records


def _regression(rec: dict) -> dict:
    return next(g for g in rec["gates"] if g["id"] == "regression")


@pytest.mark.parametrize("kind", [pytest.param("docker", marks=[pytest.mark.docker, pytest.mark.slow]), "local"])
def test_hostile_agents_cannot_pass_a_packet_they_did_not_fix(
    pytester: pytest.Pytester, hostile_folder: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    if kind == "docker":
        request.getfixturevalue("docker_engine")
    original = (BUGFIX / "hidden" / "test_median_even.py").read_text()
    result, records = _run_hostile(pytester, hostile_folder, kind)
    result.assert_outcomes(failed=2)
    assert (hostile_folder / HIDDEN).read_text() == original, "the packet's hidden gate file was rewritten"
    for alias in ("proc-rewrite", "survivor"):
        rec = records[alias]
        assert not rec["passed"] and not _regression(rec)["passed"], rec
        tail = _regression(rec)["output_tail"]
        assert "FAILED tests/test_median_hidden.py::test_two_values" in tail, tail  # the real hidden test ran
        assert rec["sandbox"]["isolation"] == {"docker": "container", "local": "bubblewrap"}[kind]
    assert "rewrote /proc/" not in records["proc-rewrite"]["transcript"]
    isolation = {"docker": "container", "local": "bubblewrap"}[kind]
    result.stdout.fnmatch_lines([f"isolation * {isolation} * {isolation}"])
    assert "WARNING" not in result.stdout.str()


@pytest.mark.slow
def test_unsafe_local_is_gamed_by_the_same_agents_and_says_so(pytester: pytest.Pytester, hostile_folder: Path) -> None:
    """The control: without isolation both attacks win. This is what unsafe-local means."""
    result, records = _run_hostile(pytester, hostile_folder, "unsafe-local")
    result.assert_outcomes(passed=2)
    assert "pass" in (hostile_folder / HIDDEN).read_text()  # rewritten through /proc/<harness pid>/cwd
    assert "rewrote /proc/" in records["proc-rewrite"]["transcript"]
    assert all(rec["sandbox"]["isolation"] == "unsafe-local" for rec in records.values())
    result.stdout.fnmatch_lines(["isolation * unsafe-local * unsafe-local"])
    flat = " ".join(result.stdout.str().split())
    assert "WARNING: proc-rewrite, survivor: unsafe-local runs isolate nothing" in flat
    assert "unsafe-local runs isolate nothing" in (hostile_folder / "report.html").read_text()


# -- choosing a sandbox -------------------------------------------------------------------------
@pytest.fixture
def no_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    """bubblewrap that cannot run: /bin/false stands in for a bwrap the kernel refuses."""
    monkeypatch.setenv("AGENTBENCH_BWRAP", "/bin/false")
    monkeypatch.setattr(sandbox_pkg, "_AUTO", {})
    bwrap.reset_status()
    yield
    bwrap.reset_status()


@pytest.mark.usefixtures("no_bwrap")
def test_local_is_refused_with_the_fix_where_bubblewrap_cannot_run(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--sandbox=local", "--co")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--sandbox=local: bubblewrap (/bin/false) cannot make the sandbox here*apt-get install bubblewrap*"]
    )
    assert "unsafe-local" in result.stderr.str() and "Traceback" not in result.stderr.str()


def test_a_missing_bwrap_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTBENCH_BWRAP", "/nonexistent/bwrap")
    bwrap.reset_status()
    try:
        ok, why = bwrap.bwrap_status()
    finally:
        bwrap.reset_status()
    assert not ok and "AGENTBENCH_BWRAP=/nonexistent/bwrap is not a file" in why and "scripts/setup-system" in why


@pytest.mark.usefixtures("no_bwrap")
def test_auto_without_docker_or_bubblewrap_names_both_fixes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{pytester.path}/no-docker.sock")
    pytester.makefile(".yaml", models="models:\n  a:\n    model: m\n    base_url: http://127.0.0.1:9/v1\n")
    result = pytester.runpytest("--models=a", "--models-file", "models.yaml")  # --co would not ask
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "--sandbox=auto: no sandbox can run here" in err and "docker:" in err and "bubblewrap" in err, err


@pytest.mark.usefixtures("no_bwrap")
def test_check_packets_refuses_local_with_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_packets([str(BUGFIX), "--sandbox", "local"]) == 2
    err = capsys.readouterr().err
    assert "check-packets: --sandbox=local:" in err and "apt-get install bubblewrap" in err


def test_unsafe_local_needs_no_bubblewrap(no_bwrap: None) -> None:
    from pytest_agentbench.sandbox import make_sandbox

    sb = make_sandbox("unsafe-local", BUGFIX / "repo")
    try:
        assert (sb.info.kind, sb.info.isolation) == ("unsafe-local", "unsafe-local")
        assert sb.exec(["true"], 10).ok
    finally:
        sb.close()


# -- what a SIGKILLed session leaves ------------------------------------------------------------
_HOLDER = """
import sys, time
from pytest_agentbench.sandbox import LocalSandbox
sb = LocalSandbox(None)
print(sb.root, flush=True)
sb.exec(["sh", "-c", "echo sleeping > marker; sleep 300"], 600)
"""


def test_sigkilled_session_leaves_no_process_and_its_folder_is_reaped(request: pytest.FixtureRequest) -> None:
    # A temp folder of its own (reachable by the sandbox's uid 65534): under xdist another worker's
    # sandboxes reap dead sessions' folders in the shared temp folder - this test's included.
    private = Path(tempfile.mkdtemp(prefix="agentbench-test-reap-", dir="/tmp"))
    private.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(private, ignore_errors=True))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent), TMPDIR=str(private))
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER], env=env, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None
    root = Path(holder.stdout.readline().strip())
    deadline = time.monotonic() + 20
    while not (root / "marker").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (root / "marker").exists()
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    time.sleep(0.3)
    left = subprocess.run(["pgrep", "-f", "echo sleeping > marker; sleep 300"], capture_output=True, text=True)
    assert left.stdout.strip() == "", "a sandbox process outlived the SIGKILLed session"
    folder = root.parent
    assert folder.name.startswith(f"{TEMP_PREFIX}{holder.pid}-") and folder.exists()
    live = folder.parent / f"{TEMP_PREFIX}{os.getpid()}-test-live"
    live.mkdir()
    try:
        assert folder in reap_dead_sessions(folder.parent)
        assert not folder.exists() and live.exists()  # a live session's folder stays
    finally:
        live.rmdir()


# -- isolation in the reports -------------------------------------------------------------------
def _record(alias: str, isolation: str, passed: bool = True) -> dict:
    return {
        "alias": alias,
        "model": alias,
        "passed": passed,
        "outcome": "finished",
        "packet": {"id": "p"},
        "gates": [],
        "sandbox": {"kind": "x", "isolation": isolation},
    }


def test_summary_and_html_warn_when_a_comparison_mixes_isolation_levels() -> None:
    records = [_record("a", "container"), _record("b", "bubblewrap"), _record("b", "container")]
    text = format_summary(records, width=120)
    assert "WARNING: this comparison mixes isolation levels (container: a, b; bubblewrap: b)" in text
    row = next(line for line in text.splitlines() if line.startswith("isolation"))
    assert row.split() == ["isolation", "container", "mixed", "(see", "warning)"]
    page = render_html(records)
    assert '<p class="note warn">WARNING: this comparison mixes isolation levels' in page
    assert "<td>isolation</td>" in page and "mixed (see warning)" in page


def test_one_isolation_level_is_stated_without_a_warning() -> None:
    records = [_record("a", "bubblewrap"), _record("b", "bubblewrap", passed=False)]
    text = format_summary(records)
    assert "WARNING" not in text and "WARNING" not in render_html(records)
    assert [line.split() for line in text.splitlines() if line.startswith("isolation")] == [
        ["isolation", "bubblewrap", "bubblewrap"]
    ]


def test_old_records_read_as_unsafe_local() -> None:
    text = format_summary([_record("a", "process-group+netns"), _record("b", "container")])
    assert "(container: b; unsafe-local: a)" in text and "WARNING: a: unsafe-local runs isolate nothing" in text

"""What the terminal and the test reports show: the header, failure texts, the agentbench summary.

Every test report and every summary line passes through the session's redactor
(:mod:`pytest_agentbench.results.redact`) here, so the terminal, JUnit XML and xdist never see a secret.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.plugin.session import SESSION
from pytest_agentbench.results.redact import Redactor


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(SESSION, None)
    if state is not None and state.settings.session_json is not None and not hasattr(config, "workerinput"):
        path = write_session_json(state.settings.session_json, state, terminalreporter.stats, int(exitstatus))
        state.outputs.append(str(path))
    if state is None or not state.records:
        if state is not None and state.settings.session_json is not None:
            terminalreporter.write_line(f"written: {state.settings.session_json}")
        return
    from pytest_agentbench.reports.summary import format_summary

    tr, hide = terminalreporter, state.redactor.text
    tr.write_sep("=", "agentbench")
    for problem in state.result_problems:
        tr.write_line(hide(f"warning: {problem}"), yellow=True)
    for line in state.reconciliation:
        tr.write_line(hide(line), red="MISMATCH" in line or "not readable" in line)
    width = min(100, config.get_terminal_writer().fullwidth)
    tr.write_line(hide(format_summary(state.records, width=width, aliases=[s.alias for s in state.specs])))
    for path in state.outputs:
        tr.write_line(hide(f"written: {path}"))


#: The outcome categories of pytest's final line that say what happened to the tests.
_COUNTED = ("passed", "failed", "error", "skipped", "xfailed", "xpassed", "deselected")


def write_session_json(path: Path, state: Any, stats: dict[str, list[Any]], exitstatus: int) -> Path:
    """What happened, for scripts (``scripts/main-job``, ``agentbench verdict``): pytest's exit status and
    outcome counts, this session's runs (time spent where), the server start times, the files written."""
    import json
    from datetime import UTC, datetime

    started = datetime.fromisoformat(state.session_start) if state.session_start else None
    endpoints = state.endpoints
    data = {
        "exitstatus": exitstatus,
        "counts": {name: len(stats.get(name, [])) for name in _COUNTED},
        "duration_s": (datetime.now(UTC) - started).total_seconds() if started else None,
        "results_dir": None if state.results_dir is None else str(state.results_dir),
        "html": next((o for o in state.outputs if o == str(state.settings.html)), None),  # if written
        "outputs": list(state.outputs),
        "server_start_s": dict(endpoints.startup_s) if endpoints is not None else {},
        "runs": [_run_summary(r) for r in state.records or []],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(state.redactor.text(json.dumps(data, indent=2)) + "\n", encoding="utf-8")
    return path


def _run_summary(record: dict[str, Any]) -> dict[str, Any]:
    from pytest_agentbench.results.cells import record_agent

    client = record.get("client") or {}
    return {
        "packet": (record.get("packet") or {}).get("id"),
        "alias": record.get("alias"),
        "agent": record_agent(record),
        "repeat": record.get("repeat"),
        "outcome": record.get("outcome"),
        "passed": bool(record.get("passed")),
        "wall_s": client.get("wall_s"),
        "agent_s": client.get("agent_wall_s"),
        "model_s": client.get("model_wall_s"),
        "gates_s": sum(float(g.get("duration_s") or 0) for g in record.get("gates") or []),
    }


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A missed gate or a broken sandbox/server reads as its message, not as plugin internals."""
    from pytest_agentbench.errors import GateFailed, InfrastructureError

    report = yield
    excinfo = call.excinfo
    if excinfo is not None and isinstance(item, pytest.Function) and "agentbench_case" in item.fixturenames:
        if excinfo.errisinstance(GateFailed):
            report.longrepr = str(excinfo.value)
        elif excinfo.errisinstance(InfrastructureError):
            report.longrepr = f"{type(excinfo.value).__name__} (infrastructure, not the model): {excinfo.value}"
    state = item.config.stash.get(SESSION, None)
    if state is not None:
        redact_report(report, state.redactor)
    return report


def redact_report(report: pytest.TestReport, redactor: Redactor) -> None:
    """The failure text, every section (transcript, gates, captured output and logs) and the user properties."""
    if not redactor:
        return
    longrepr = report.longrepr
    if isinstance(longrepr, str):
        report.longrepr = redactor.text(longrepr)
    elif isinstance(longrepr, tuple):  # a skip: (path, line, reason)
        report.longrepr = redactor(longrepr)
    elif longrepr is not None and redactor.finds(str(longrepr)):
        report.longrepr = redactor.text(str(longrepr))  # a traceback that shows a secret: as plain text
    report.sections = [(title, redactor.text(content)) for title, content in report.sections]
    report.user_properties = [(name, redactor(value)) for name, value in report.user_properties]


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash.get(SESSION, None)
    if state is None or not state.specs:
        return None
    aliases = ", ".join(f"{s.alias}{' (scripted test double)' if s.test_double else ''}" for s in state.specs)
    return [
        f"agentbench: models={aliases}; sandbox={state.settings.sandbox}; models file={state.settings.models_file}"
        f"; pid={os.getpid()}"
    ]

"""What the terminal and the test reports show: the header, failure texts, the agentbench summary.

Every test report and every summary line passes through the session's redactor
(:mod:`pytest_agentbench.results.redact`) here, so the terminal, JUnit XML and xdist never see a secret.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from pytest_agentbench.plugin.session import SESSION
from pytest_agentbench.results.redact import Redactor


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(SESSION, None)
    if state is None or not state.records:
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

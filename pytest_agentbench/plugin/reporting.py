"""What the terminal and the test reports show: the header, failure texts, the agentbench summary."""

from __future__ import annotations

import os
from typing import Any

import pytest

from pytest_agentbench.plugin.session import SESSION


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = config.stash.get(SESSION, None)
    if state is None or not state.records:
        return
    from pytest_agentbench.reports.summary import format_summary

    tr = terminalreporter
    tr.write_sep("=", "agentbench")
    for problem in state.result_problems:
        tr.write_line(f"warning: {problem}", yellow=True)
    for line in state.reconciliation:
        tr.write_line(line, red="MISMATCH" in line or "not readable" in line)
    width = min(100, config.get_terminal_writer().fullwidth)
    tr.write_line(format_summary(state.records, width=width, aliases=[s.alias for s in state.specs]))
    for path in state.outputs:
        tr.write_line(f"written: {path}")


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
    return report


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    state = config.stash.get(SESSION, None)
    if state is None or not state.specs:
        return None
    aliases = ", ".join(f"{s.alias}{' (scripted test double)' if s.test_double else ''}" for s in state.specs)
    return [
        f"agentbench: models={aliases}; sandbox={state.settings.sandbox}; models file={state.settings.models_file}"
        f"; pid={os.getpid()}"
    ]

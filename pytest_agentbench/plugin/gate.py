"""The regression gate's pytest skin: ``--agentbench-gate`` / ini ``agentbench_gate``, the verdict, the exit status.

    pytest --models=local-fp8,local-bf16 --repeats 10 --agentbench-gate "local-fp8 vs local-bf16 max_drop=5"

At configure every gate is parsed (``reports.gate.parse_gate``) and its aliases checked against the
selected ``--models``: a bad gate is a usage error naming the option and the fix, before any model is
called. After the run, in the process that merged the records (the xdist controller, or the only
process), every gate judges the merged records (``reports.gate.judge``) and the terminal summary
says what each decided.

**The gates decide the exit status.** A trial that failed its packet's gates is a result the
regression gates weigh, not a broken job: with gates configured, a session whose only failures are
such trials exits 0 when every gate passes, and a session where a gate fails exits 1 even when every
test passed (or none was left to run: ``--resume`` over a finished run judges its records again).
Errors (a sandbox, a server, an endpoint that never answered), failures of tests that are not packet
trials, collection errors and interruptions keep their non-zero status. Without gates nothing
changes. The CLI's gates replace the ini's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from pytest_agentbench.errors import UsageError
from pytest_agentbench.plugin.session import SESSION

if TYPE_CHECKING:  # imported where used: a run without gates never loads the statistics
    from pytest_agentbench.reports.gate import GateSpec, GateVerdict

__all__ = ["GatePlugin", "pytest_configure_gates"]


def _gates(config: pytest.Config) -> tuple[tuple[str, ...], str]:
    cli = [g for g in config.option.agentbench_gate or [] if g is not None]
    if cli:
        return tuple(cli), "--agentbench-gate"
    return tuple(line for line in config.getini("agentbench_gate") if line.strip()), "ini agentbench_gate"


@pytest.hookimpl(trylast=True, specname="pytest_configure")
def pytest_configure_gates(config: pytest.Config) -> None:
    """Parse the gates, check their aliases are selected and register the plugin that judges them.

    A second ``pytest_configure`` implementation (pluggy's ``specname``), run after the session's, which
    resolved ``--models``."""
    texts, option = _gates(config)
    if not texts or config.option.help:
        return
    from pytest_agentbench.reports.gate import parse_gate

    settings = config.stash[SESSION].settings
    gates = []
    for text in texts:
        try:
            gate = parse_gate(text)
        except UsageError as exc:
            raise pytest.UsageError(f"{option}: {exc}") from None
        for side in (gate.candidate, gate.baseline):
            _check_side(side, settings, f"{option} {text!r}")
        gates.append(gate)
    config.pluginmanager.register(GatePlugin(config, tuple(gates)), "agentbench-gate")


def _check_side(side: str, settings: Any, where: str) -> None:
    """A gate names an alias, or a cell ``AGENT@ALIAS``: both must be selected for this run."""
    agent, at, alias = side.rpartition("@")
    if not at:
        agent, alias = "", side
    selected = settings.models
    if alias not in selected:
        chosen = f"--models={','.join(selected)}" if selected else "no --models at all"
        raise pytest.UsageError(
            f"{where}: alias {alias!r} is not selected for this run ({chosen}); add it to --models, or name "
            "selected aliases in the gate"
        )
    if agent and agent not in settings.agents:
        raise pytest.UsageError(
            f"{where}: agent {agent!r} is not selected for this run (--agent={','.join(settings.agents)}); add it "
            "to --agent, or name a selected one (AGENT@ALIAS)"
        )


class GatePlugin:
    """The session's gates: counts the failed trials, judges the gates at the end, sets the exit status."""

    def __init__(self, config: pytest.Config, gates: tuple[GateSpec, ...]):
        self.config = config
        self.gates = gates
        self.judged_failures = 0  # packet trials that failed their packet gates: data for the regression gates
        self.verdicts: list[GateVerdict] = []
        self.note = ""  # how the gates set the exit status, for the summary

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Count the failed trials that are results (the run finished and has a record), not broken tests."""
        if report.when == "call" and report.failed:
            if any(name == "agentbench.run_id" for name, _ in report.user_properties):
                self.judged_failures += 1

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Controller only, after the records were merged: judge every gate, then set the exit status."""
        if hasattr(self.config, "workerinput"):
            return
        from pytest_agentbench.reports.gate import judge

        records = self.config.stash[SESSION].records
        if not records:
            self.note = "agentbench gate: not checked: no trial ran"
            return
        self.verdicts = [judge(gate, records) for gate in self.gates]
        self._set_exit_status(session)

    def _set_exit_status(self, session: pytest.Session) -> None:
        failed = sum(v.failed for v in self.verdicts)
        of = f"{failed} of {len(self.verdicts)} gate(s) failed"
        if failed:
            if session.exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):  # e.g. --resume
                session.exitstatus = pytest.ExitCode.TESTS_FAILED
            self.note = f"agentbench gate: {of}: the session fails (exit status {int(session.exitstatus)})"
        elif session.exitstatus == pytest.ExitCode.TESTS_FAILED:
            other = session.testsfailed - self.judged_failures
            if other <= 0:
                session.exitstatus = pytest.ExitCode.OK
                self.note = (
                    f"agentbench gate: every gate passed; the {self.judged_failures} failed trial(s) are results "
                    "the gates weighed, so the exit status is 0"
                )
            else:
                self.note = (
                    f"agentbench gate: every gate passed, but {other} error(s) or failure(s) are not judged "
                    "trials (infrastructure, collection, other tests): the exit status stays 1"
                )

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if hasattr(self.config, "workerinput") or not (self.verdicts or self.note):
            return
        tr = terminalreporter
        tr.write_sep("=", "agentbench gate")
        for verdict in self.verdicts:
            tr.write_line(verdict.message, red=verdict.failed, green=not verdict.failed)
        if self.note:
            tr.write_line(self.note, red=any(v.failed for v in self.verdicts))

"""Gates: the packet's checks, run in the sandbox after the agent stops.

Hidden files named in a gate's ``add`` are copied in only at gate time, so the
agent never sees them. Before the first gate, ``packets.integrity`` undoes what would
change how the gates run (a planted ``conftest.py``, a ``pytest.py`` shadowing pytest ...),
and each gate runs under its clean environment (``integrity.gate_argv``). A failed gate is an assertion, not an error:
:class:`GateFailed` subclasses ``AssertionError`` and its message shows gate
id, command, expected vs actual exit and the tail of the output.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pytest_agentbench.errors import GateFailed
from pytest_agentbench.packets.integrity import IntegrityError, Reset, gate_argv, secure_workspace
from pytest_agentbench.packets.schema import Gate, Packet
from pytest_agentbench.sandbox.base import ExecResult, Sandbox

OUTPUT_TAIL_LINES = 30


class RunLike(Protocol):
    """What :func:`assert_run` reads of a run record: its gates and how the agent ended."""

    gates: Sequence[GateResult]
    agent: Any


@dataclass(frozen=True)
class GateResult:
    id: str
    command: str
    expect_exit: int
    exit_code: int
    passed: bool
    duration_s: float
    output: str
    guard: bool = False
    timed_out: bool = False
    error: str = ""  # set when the gate could not even run (e.g. a hidden file failed to copy)

    def tail(self, lines: int = OUTPUT_TAIL_LINES) -> str:
        return "\n".join(self.output.rstrip().splitlines()[-lines:])

    def describe(self) -> str:
        if self.error:
            actual = f"could not run: {self.error}"
        elif self.timed_out:
            actual = f"timed out (exit {self.exit_code})"
        else:
            actual = f"exit {self.exit_code}"
        return f"gate {self.id!r}: `{self.command}` expected exit {self.expect_exit}, got {actual}"


def add_hidden_files(packet: Packet, gate: Gate, sandbox: Sandbox) -> None:
    for src, dst in gate.add:
        sandbox.write_file(dst, (packet.root / src).read_bytes())


def remove_hidden_files(gate: Gate, sandbox: Sandbox) -> None:
    """Hidden files belong to their gate only: the next gate sees the workspace without them."""
    if gate.add:
        sandbox.exec(["rm", "-f", "--", *(dst for _, dst in gate.add)], 30)


def run_gate(packet: Packet, gate: Gate, sandbox: Sandbox) -> GateResult:
    try:
        add_hidden_files(packet, gate, sandbox)
    except OSError as exc:
        return GateResult(gate.id, gate.run, gate.expect_exit, -1, False, 0.0, "", gate.guard, error=str(exc))
    try:
        res: ExecResult = sandbox.exec(gate_argv(gate.run), gate.timeout_s)
    finally:
        remove_hidden_files(gate, sandbox)
    passed = res.exit_code == gate.expect_exit and not res.timed_out
    return GateResult(
        gate.id,
        gate.run,
        gate.expect_exit,
        res.exit_code,
        passed,
        res.duration_s,
        res.output,
        gate.guard,
        res.timed_out,
    )


def run_gates(packet: Packet, sandbox: Sandbox, *, resets: list[Reset] | None = None) -> list[GateResult]:
    """Check the workspace (``packets.integrity``), then run every gate in order, each on the workspace
    plus its own hidden files. What the check undid is appended to ``resets`` when given; a workspace
    that could not be checked fails every gate with the reason, unrun."""
    try:
        undone = secure_workspace(packet, sandbox)
    except IntegrityError as exc:
        return [
            GateResult(g.id, g.run, g.expect_exit, -1, False, 0.0, "", g.guard, error=str(exc)) for g in packet.gates
        ]
    if resets is not None:
        resets.extend(undone)
    return [run_gate(packet, gate, sandbox) for gate in packet.gates]


def assert_gates(results: Sequence[GateResult], context: str = "") -> None:
    failed = [r for r in results if not r.passed]
    if failed:
        raise GateFailed(failed, len(results), context)


def format_gate_results(results: Sequence[GateResult]) -> str:
    """One line per gate (PASS/FAIL, command, exit vs expected, time), the output tail under a failure."""
    lines = []
    for g in results:
        mark = "PASS" if g.passed else "FAIL"
        lines.append(
            f"{mark} {g.id}{' (guard)' if g.guard else ''}: `{g.command}` -> exit {g.exit_code}"
            f"{' (timed out)' if g.timed_out else ''}, expected {g.expect_exit} [{g.duration_s:.2f} s]"
        )
        if not g.passed and g.output.strip():
            lines.extend("    " + line for line in g.tail().splitlines())
    return "\n".join(lines)


def assert_run(record: RunLike) -> None:
    """The assertion of ``test_packet``: every gate of the run holds; the message says how the agent ended."""
    agent = record.agent
    context = f"agent outcome: {agent.outcome}, {len(agent.turns)} turn(s)"
    if agent.failure:
        context += f"; model call failed ({agent.failure}): {agent.error}"
    elif agent.error:
        context += f"; {agent.error}"
    assert_gates(record.gates, context)

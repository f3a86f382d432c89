"""The packet self-check: does a packet's set of gates prove anything?

A packet is valid when, run in a real sandbox,

- on the untouched workspace every non-guard gate FAILS and every guard PASSES
  (a non-guard gate that already passes cannot tell a change from no change;
  a guard that already fails cannot be "kept");
- with the reference change applied (``git apply`` in the sandbox) every gate
  PASSES (otherwise no correct change could pass the packet);
- at least one gate is not a guard, the reference exists and applies, and every
  hidden file is present and kept outside the workspace (or the agent sees it).

``check_packet`` returns a :class:`PacketCheck` with the per-gate outcomes and
the reasons a packet is invalid; ``format_table`` lays a list of them out as
packet x gate x before/after; ``cli/check_packets.py`` is the ``agentbench check-packets``
command. Nothing here imports pytest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from pytest_agentbench.errors import SandboxError
from pytest_agentbench.packets.gates import GateResult, run_gates
from pytest_agentbench.packets.schema import PROMPT_WARN_BYTES, Packet, find_packet_files, load_each
from pytest_agentbench.sandbox.base import Sandbox

#: Builds a fresh sandbox holding a copy of the given workspace folder.
MakeSandbox = Callable[[Path], Sandbox]

#: Where the reference patch is written inside the sandbox: under .git, so it never
#: shows up as an untracked file to a gate that inspects ``git status``.
PATCH_PATH = ".git/agentbench-reference.patch"
APPLY_TIMEOUT_S = 60.0
TAIL_LINES = 12


#: How a gate's output says that a file it runs does not exist: pytest (exit 4), python (exit 2), bash (127).
_NOT_FOUND = (
    re.compile(r"ERROR: file (?:or directory )?not found: (\S+)"),
    re.compile(r"can't open file '([^']+)': \[Errno 2\]"),
    re.compile(r"^bash: (?:line \d+: )?([^:\n]+): No such file or directory", re.MULTILINE),
)
_NO_MODULE = re.compile(r"ModuleNotFoundError: No module named '([^']+)'")
_GIT_ADD_N = (
    "`git diff` leaves new files out unless they are added first: in a fresh copy of the workspace, "
    "`git add -N .` then `git diff > solution.patch`"
)


def missing_path(result: GateResult | None) -> str | None:
    """The path a failed gate could not find (its command names a file that does not exist), if that is why."""
    if result is None or result.passed or result.error:
        return None
    for pattern in _NOT_FOUND:
        match = pattern.search(result.output)
        if match:
            return match.group(1)
    return None


@dataclass(frozen=True)
class GateCheck:
    """One gate's outcome before and after the reference change, and what is wrong with it."""

    id: str
    guard: bool
    before: GateResult | None = None
    after: GateResult | None = None  # None: the reference was missing or did not apply
    #: The files the reference patch creates (None: no reference); a hint when a module is missing after it.
    reference_adds: tuple[str, ...] | None = None

    def issues(self) -> list[tuple[str, str]]:
        """``(phase, reason)`` for every way this gate breaks the rules; phase is ``before`` or ``after``."""
        found = []
        before = self._before_issue()
        if before:
            found.append(("before", before))
        if self.after is not None and not self.after.passed:
            found.append(("after", self._after_issue(self.after)))
        return found

    def _before_issue(self) -> str | None:
        before = self.before
        if before is None:
            return None
        if before.error:
            return f"gate {self.id!r} could not run on the untouched workspace: {before.error}"
        missing = missing_path(before)
        if self.guard and not before.passed:
            why = f": {missing!r} does not exist" if missing else ""
            return (
                f"guard {self.id!r} fails on the untouched workspace ({_outcome(before)}){why}: "
                "a guard must already hold before the change"
            )
        if not self.guard and before.passed:
            return (
                f"gate {self.id!r} already passes on the untouched workspace: it cannot "
                "tell a correct change from no change (make it a guard, or make it test the change)"
            )
        if missing and not self.guard and (self.after is None or missing_path(self.after) == missing):
            # Failing because the command names a file nobody creates proves nothing: say the path.
            return (
                f"gate {self.id!r} fails on the untouched workspace only because {missing!r} does not exist "
                f"({_outcome(before)}), and the reference does not create it: that failure proves nothing; "
                "fix the path in `run` (or the destination in `add`)"
            )
        return None

    def _after_issue(self, after: GateResult) -> str:
        role = "guard" if self.guard else "gate"
        missing = missing_path(after)
        if missing:
            return (
                f"{role} {self.id!r} fails with the reference applied: {missing!r} does not exist "
                f"({_outcome(after)}); fix the path in `run` (or the destination in `add`), or, if the "
                f"reference should create it, {_GIT_ADD_N}{self._adds_nothing()}"
            )
        reason = (
            f"{role} {self.id!r} fails with the reference applied ({_outcome(after)}): no correct change could pass it"
        )
        module = _NO_MODULE.search(after.output)
        if module:
            reason += (
                f"; it cannot import {module.group(1)!r}: if your change adds that module as a new file, "
                f"the reference lacks it - {_GIT_ADD_N}{self._adds_nothing()}"
            )
        return reason

    def _adds_nothing(self) -> str:
        return " (this reference adds no new file)" if self.reference_adds == () else ""

    @property
    def problems(self) -> list[str]:
        return [reason for _, reason in self.issues()]


@dataclass(frozen=True)
class PacketCheck:
    """The self-check of one packet: per-gate outcomes and the reasons it is invalid (none: valid)."""

    packet_id: str
    path: Path
    gates: tuple[GateCheck, ...] = ()
    problems: tuple[str, ...] = ()
    #: Output tails of the runs that went wrong, for the author (``gate id, phase`` -> text).
    details: dict[tuple[str, str], str] = field(default_factory=dict)
    #: Things that do not make the packet invalid but may hurt it (a prompt over the size cap).
    warnings: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.problems


def _outcome(result: GateResult) -> str:
    if result.error:
        return f"could not run: {result.error}"
    if result.timed_out:
        return f"timed out after {result.duration_s:.0f} s"
    return f"exit {result.exit_code}, expected {result.expect_exit}"


def _tail(text: str, lines: int = TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def static_problems(packet: Packet) -> list[str]:
    """What is wrong without running anything: gate roles, missing or visible hidden files, the reference."""
    problems = []
    if not any(not gate.guard for gate in packet.gates):
        problems.append("every gate is a guard: at least one gate must fail before the change and pass after it")
    workspace = packet.workspace.resolve()
    for gate in packet.gates:
        for src, _dst in gate.add:
            path = (packet.root / src).resolve()
            if not path.is_file():
                problems.append(f"gate {gate.id!r}: hidden file {src!r} is missing (looked for {path})")
            elif workspace in path.parents:
                problems.append(
                    f"gate {gate.id!r}: hidden file {src!r} is inside the workspace folder, so the "
                    "agent can read it: keep hidden files outside it (e.g. hidden/)"
                )
    if packet.reference is None:
        problems.append(
            "no 'reference': the self-check needs a known-good change (a git diff against the "
            "workspace) to prove the gates can pass"
        )
    elif not packet.reference.is_file():
        problems.append(f"reference {packet.reference} is missing")
    elif workspace in packet.reference.resolve().parents:
        problems.append(
            f"reference {packet.reference.name!r} is inside the workspace folder, so the agent can "
            "read the solution: keep it next to packet.yaml"
        )
    return problems


def apply_reference(packet: Packet, sandbox: Sandbox) -> str | None:
    """Apply the packet's reference patch in the sandbox; None on success, else why not."""
    assert packet.reference is not None
    sandbox.write_file(PATCH_PATH, packet.reference.read_bytes())
    try:
        res = sandbox.exec(["git", "apply", "--whitespace=nowarn", PATCH_PATH], APPLY_TIMEOUT_S)
    finally:
        sandbox.exec(["rm", "-f", PATCH_PATH], APPLY_TIMEOUT_S)
    if res.ok:
        return None
    reason = _tail(res.output, 6) or f"exit {res.exit_code}"
    return (
        f"reference {packet.reference.name!r} does not apply to the workspace with `git apply`: {reason} "
        "(make it with `git diff` in a fresh copy of the workspace)"
    )


def reference_adds(packet: Packet) -> tuple[str, ...] | None:
    """The files the reference patch creates (``--- /dev/null``), or None without a readable reference."""
    if packet.reference is None:
        return None
    try:
        lines = packet.reference.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None
    return tuple(
        new.removeprefix("+++ ").removeprefix("b/")
        for old, new in zip(lines, lines[1:], strict=False)
        if old.startswith("--- /dev/null") and new.startswith("+++ ")
    )


def _run_phase(packet: Packet, make_sandbox: MakeSandbox, with_reference: bool) -> tuple[list[GateResult], str]:
    """The gate results in one fresh sandbox, with or without the reference; ``([], why)`` if it won't apply."""
    sandbox = make_sandbox(packet.workspace)
    try:
        if with_reference:
            why = apply_reference(packet, sandbox)
            if why:
                return [], why
        return run_gates(packet, sandbox), ""
    finally:
        sandbox.close()


def check_packet(packet: Packet, make_sandbox: MakeSandbox) -> PacketCheck:
    """Run the packet's gates on the untouched workspace and with the reference applied; judge them."""
    problems = static_problems(packet)
    runnable = all((packet.root / src).is_file() for gate in packet.gates for src, _ in gate.add)
    before: list[GateResult] = []
    after: list[GateResult] = []
    if runnable:
        has_reference = packet.reference is not None and packet.reference.is_file()
        # Before and after run in separate sandboxes, side by side.
        with ThreadPoolExecutor(max_workers=2) as pool:
            phases = [pool.submit(_run_phase, packet, make_sandbox, False)]
            if has_reference:
                phases.append(pool.submit(_run_phase, packet, make_sandbox, True))
            try:
                before, _ = phases[0].result()
                if has_reference:
                    after, why = phases[1].result()
                    if why:
                        problems.append(why)
            except (SandboxError, OSError) as exc:
                problems.append(f"could not check: the sandbox failed: {exc}")
    by_id_before = {r.id: r for r in before}
    by_id_after = {r.id: r for r in after}
    adds = reference_adds(packet)
    gates = tuple(GateCheck(g.id, g.guard, by_id_before.get(g.id), by_id_after.get(g.id), adds) for g in packet.gates)
    details: dict[tuple[str, str], str] = {}
    for gate in gates:
        for phase, reason in gate.issues():
            problems.append(reason)
            result = gate.before if phase == "before" else gate.after
            if result is not None and result.output.strip():
                details[(gate.id, phase)] = _tail(result.output)
    return PacketCheck(packet.id, packet.root, gates, tuple(problems), details)


def check_paths(
    folders: Iterable[Path | str],
    make_sandbox: MakeSandbox,
    jobs: int = 1,
    *,
    prompt_warn_bytes: int | None = PROMPT_WARN_BYTES,
) -> list[PacketCheck]:
    """Load every packet below ``folders`` and check it; one that does not load is an invalid check, and the
    others are still checked."""
    loaded: list[tuple[Packet, tuple[str, ...]]] = []
    checks: list[PacketCheck] = []
    for item in load_each(find_packet_files([Path(f) for f in folders]), prompt_warn_bytes=prompt_warn_bytes):
        if item.packet is None:
            problem = f"does not load: {item.error}"
            checks.append(PacketCheck(item.file.parent.name, item.file.parent, problems=(problem,)))
        else:
            loaded.append((item.packet, item.warnings))

    def one(entry: tuple[Packet, tuple[str, ...]]) -> PacketCheck:
        check = check_packet(entry[0], make_sandbox)
        return replace(check, warnings=entry[1]) if entry[1] else check

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        checks.extend(pool.map(one, loaded))
    return sorted(checks, key=lambda c: (c.packet_id, str(c.path)))


def _cell(result: GateResult | None) -> str:
    if result is None:
        return "-"
    if result.passed:
        return "pass"
    if result.error:
        return "error"
    if result.timed_out:
        return "timeout"
    return f"FAIL({result.exit_code})"


def format_table(checks: Sequence[PacketCheck], *, details: bool = True) -> str:
    """Packet x gate x before/after, a verdict per gate and per packet, then the reasons."""
    rows = [("PACKET", "GATE", "ROLE", "BEFORE", "AFTER", "VERDICT")]
    for check in checks:
        first = True
        for gate in check.gates:
            if gate.problems:
                verdict = "BAD"
            elif gate.before is None or gate.after is None:
                verdict = "-"  # not checked both ways (see the packet's problems)
            else:
                verdict = "ok (pass->pass)" if gate.guard else "ok (fail->pass)"
            rows.append(
                (
                    check.packet_id if first else "",
                    gate.id,
                    "guard" if gate.guard else "gate",
                    _cell(gate.before),
                    _cell(gate.after),
                    verdict,
                )
            )
            first = False
        rows.append((check.packet_id if first else "", "", "", "", "", "VALID" if check.valid else "INVALID"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    invalid = [c for c in checks if not c.valid]
    for check in checks:
        for note in check.warnings:
            lines.extend(["", f"{check.packet_id}: warning: {note}"])
    for check in invalid:
        lines.append("")
        lines.append(f"{check.packet_id} ({check.path}) is INVALID:")
        lines.extend(f"  - {problem}" for problem in check.problems)
        if details:
            for (gate_id, phase), text in check.details.items():
                when = "on the untouched workspace" if phase == "before" else "with the reference"
                lines.append(f"  output of {gate_id!r} {when} (tail):")
                lines.extend("    " + line for line in text.splitlines())
    lines.append("")
    lines.append(f"{len(checks)} packet(s) checked: {len(checks) - len(invalid)} valid, {len(invalid)} invalid")
    return "\n".join(lines)

"""``agentbench verdict SESSION_JSON --pytest-exit N``: what happened and where to look next; did it run?

``scripts/main-job`` ends with it. It reads what ``--agentbench-session-json`` wrote and pytest's exit
status, prints a short account (pass rate, the HTML report, the run log, the slowest part) and exits

- 0 when the evaluation ran to the end, whatever the gates say: pytest's exit 1 for missed gates is a
  result here (``pytest`` itself keeps its exit status: that stays the contract for CI users of pytest);
- non-zero when it did not: pytest interrupted (2), an internal error (3), a usage error (4), nothing
  collected (5), pytest killed or crashed (its status, e.g. 137), no session file although pytest ended
  (1), a run that could not be evaluated - an ERROR: a sandbox or server broke, not the model (1) - or
  nothing evaluated at all, every test skipped (1).

The decision is :func:`decide` (pure, no pytest); the command only reads the file and prints.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Verdict", "add_parser", "decide", "duration", "run"]

_OK, _TESTS_FAILED, _INTERRUPTED, _INTERNAL, _USAGE, _NO_TESTS = 0, 1, 2, 3, 4, 5
_WHY = {
    _INTERRUPTED: "pytest was interrupted (exit 2): the evaluation did not run to the end",
    _INTERNAL: "pytest hit an internal error (exit 3): see its traceback above",
    _USAGE: "pytest refused its arguments (exit 4): see the usage error above",
    _NO_TESTS: "pytest collected nothing (exit 5): no packet ran; check the packet folders and the arguments",
}


@dataclass(frozen=True)
class Verdict:
    """What the script exits with, and the lines it prints before."""

    exit_code: int
    lines: tuple[str, ...]


def duration(seconds: float) -> str:
    """``62 s``, ``10 min 48 s``, ``1 h 2 min``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def decide(pytest_exit: int, session: Mapping[str, Any] | None, *, setup_s: float | None = None) -> Verdict:
    """The verdict from pytest's exit status and its session file (None: it wrote none)."""
    lines = ["main job: what happened"]
    if pytest_exit not in (_OK, _TESTS_FAILED):
        why = _WHY.get(pytest_exit) or _killed(pytest_exit)
        lines.append(f"FAILED: {why}.")
        lines += _where(session, setup_s) if session else []
        return Verdict(pytest_exit or 1, tuple(lines))
    if session is None:
        lines.append(
            f"FAILED: pytest exited {pytest_exit} without writing its session file: its run did not come to the "
            "end (see above)."
        )
        return Verdict(1, tuple(lines))
    counts = session.get("counts") or {}
    runs = session.get("runs") or []
    exit_code = 0
    if counts.get("error"):
        n = counts["error"]
        lines.append(
            f"FAILED: {n} test(s) could not be evaluated (ERROR: a sandbox or a server broke, or the endpoint never "
            "answered - not the model); see the errors above."
        )
        exit_code = 1
    elif not counts.get("passed") and not counts.get("failed"):
        skipped = counts.get("skipped", 0)
        lines.append(f"FAILED: nothing was evaluated ({skipped} skipped): see the skip reasons (pytest -rs).")
        exit_code = 1
    else:
        lines.append(f"The evaluation ran to the end: {_pass_rate(runs)}.")
        if pytest_exit == _TESTS_FAILED:
            lines.append(
                "  exit 0: missed gates are results, not a failure of this job (`pytest` itself exits 1 for them)."
            )
    lines += _where(session, setup_s)
    return Verdict(exit_code, tuple(lines))


def _killed(status: int) -> str:
    if status > 128:
        return f"pytest was killed or crashed (exit {status}: signal {status - 128})"
    return f"pytest exited {status}"


def _pass_rate(runs: Sequence[Mapping[str, Any]]) -> str:
    """``6 run(s) on a, b, 4 passed all their gates (67 %)``; with several agents, per agent x alias cell."""
    from pytest_agentbench.results.cells import agents_of, cell_columns, column_of, label_cells

    counted = label_cells([r for r in runs if r.get("outcome") != "infrastructure"])
    if not counted:
        return "no run was recorded"
    passed = sum(1 for r in counted if r.get("passed"))
    cells = cell_columns(counted)
    several = len(agents_of(counted)) > 1
    on = (
        f" on {', '.join(sorted(cells))}"
        if len(cells) <= 3
        else f" on {len(cells)} {'cells' if several else 'aliases'}"
    )
    text = f"{len(counted)} run(s){on}, {passed} passed all their gates ({100 * passed / len(counted):.0f} %)"
    if not several:
        return text
    per = []
    for cell in cells:
        mine = [r for r in counted if column_of(r) == cell]
        won = sum(1 for r in mine if r.get("passed"))
        per.append(f"{cell} {won}/{len(mine)}")
    return f"{text}; per cell: {', '.join(per)}"


def _where(session: Mapping[str, Any], setup_s: float | None) -> list[str]:
    """Where to look next (report, run log) and where the time went."""
    lines = ["Where to look next:"]
    if session.get("html"):
        lines.append(f"  report   {_shown(session['html'])}  (open it in a browser: each run's transcript and gates)")
    results_dir = session.get("results_dir")
    if results_dir and Path(results_dir, "results.jsonl").is_file():
        results = _shown(Path(results_dir, "results.jsonl"))
        lines.append(f"  run log  {results}  (resume: --resume {_shown(results_dir)})")
    time_line, slowest = _time(session, setup_s)
    if time_line:
        lines += [f"Time: {time_line}", f"  slowest part: {slowest}"]
    return lines if len(lines) > 1 else lines[1:]


def _shown(path: str | Path) -> str:
    """``path`` relative to the current folder when it is below it (the job runs in the checkout)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _time(session: Mapping[str, Any], setup_s: float | None) -> tuple[str, str]:
    from pytest_agentbench.results.cells import column_of

    runs = session.get("runs") or []
    starts = {str(k): float(v) for k, v in (session.get("server_start_s") or {}).items()}
    parts: dict[str, float] = {}
    if setup_s is not None:
        parts["set-up"] = setup_s
    if starts:
        parts["server start" if len(starts) > 1 else f"vLLM start ({next(iter(starts))})"] = sum(starts.values())
    model = sum(float(r.get("model_s") or 0) for r in runs)
    agent = sum(float(r.get("agent_s") or 0) for r in runs)
    gates = sum(float(r.get("gates_s") or 0) for r in runs)
    wall = sum(float(r.get("wall_s") or 0) for r in runs)
    if runs:
        parts["model calls"] = model
        parts["tools"] = max(0.0, agent - model)
        parts["gates"] = gates
        parts["sandboxes"] = max(0.0, wall - agent - gates)
    if not parts:
        return "", ""
    total = (setup_s or 0) + float(session.get("duration_s") or wall + sum(starts.values()))
    shown = "".join(f", {name} {duration(s)}" for name, s in parts.items() if s >= 0.5)
    slowest = max(parts, key=lambda name: parts[name])
    slowest_text = f"{slowest}, {duration(parts[slowest])}"
    if runs:
        top = max(runs, key=lambda r: float(r.get("wall_s") or 0))
        slowest_text += f"; slowest run: {top.get('packet')} on {column_of(top)}, {duration(top.get('wall_s') or 0)}"
    return f"{duration(total)} in all{shown}", slowest_text


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "verdict",
        help="what a pytest run did, where to look next, and exit 0 when the evaluation ran to the end",
        description="Print what a pytest run did (pass rate, the HTML report, the run log, the slowest part) "
        "and exit 0 when the evaluation ran to the end, whatever the gates say; non-zero when pytest was "
        "interrupted, hit an internal or usage error, collected nothing or crashed, when a test ERRORed "
        "(a sandbox or server broke) or when nothing was evaluated.",
    )
    parser.add_argument("session_json", type=Path, help="the file --agentbench-session-json wrote")
    parser.add_argument("--pytest-exit", type=int, required=True, metavar="N", help="pytest's exit status")
    parser.add_argument("--setup-s", type=float, metavar="S", help="seconds spent setting up before pytest")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    session: dict[str, Any] | None = None
    try:
        session = json.loads(Path(args.session_json).read_text(encoding="utf-8"))
    except FileNotFoundError:
        session = None
    except (OSError, ValueError) as exc:
        print(f"agentbench verdict: {args.session_json} is not readable JSON ({exc}); rerun the job")
        return 1
    verdict = decide(args.pytest_exit, session, setup_s=args.setup_s)
    title, *rest = verdict.lines
    print(f" {title} ".center(min(100, shutil.get_terminal_size().columns), "="))
    print("\n".join(rest))
    return verdict.exit_code

"""Hidden gate: line coverage of timekit/durations.py by tests/test_durations.py.

    python .gates/linecov.py MIN_PERCENT

Runs pytest in this process under ``sys.settrace`` (the standard library only:
no coverage.py), records the lines of durations.py that ran, and compares
them with the lines that can run (those the compiled code maps to). Exit 0
when the tests pass and coverage >= MIN_PERCENT; the missed lines are listed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import CodeType

MODULE = Path("timekit/durations.py")
TESTS = "tests/test_durations.py"


def executable_lines(path: Path) -> set[int]:
    """Every line some instruction of the compiled module maps to (what settrace can report)."""
    lines: set[int] = set()
    todo = [compile(path.read_text(), str(path), "exec")]
    while todo:
        code = todo.pop()
        lines.update(line for _, _, line in code.co_lines() if line)
        todo.extend(const for const in code.co_consts if isinstance(const, CodeType))
    return lines


def main(argv: list[str]) -> int:
    minimum = float(argv[0]) if argv else 90.0
    if not Path(TESTS).is_file():
        print(f"{TESTS} does not exist")
        return 1
    target = os.path.realpath(MODULE)
    hit: set[int] = set()

    def local(frame, event, arg):
        if event == "line":
            hit.add(frame.f_lineno)
        return local

    is_target: dict[str, bool] = {}

    def global_(frame, event, arg):
        name = frame.f_code.co_filename
        if name not in is_target:
            is_target[name] = os.path.realpath(name) == target
        return local if is_target[name] else None

    sys.path.insert(0, os.getcwd())  # as `python -m pytest` would: the workspace is importable
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"  # no third-party plugins: same on every machine
    import pytest

    sys.settrace(global_)
    try:
        status = pytest.main(["-q", "-p", "no:cacheprovider", TESTS])
    finally:
        sys.settrace(None)
    if status != 0:
        print(f"{TESTS} failed (pytest exit {int(status)}); coverage not scored")
        return 1
    wanted = executable_lines(MODULE)
    missed = sorted(wanted - hit)
    percent = 100.0 * len(wanted & hit) / len(wanted)
    print(f"line coverage of {MODULE}: {percent:.1f}% ({len(wanted & hit)}/{len(wanted)}), need {minimum:.0f}%")
    if missed:
        print("missed lines:", ", ".join(map(str, missed)))
    return 0 if percent >= minimum else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

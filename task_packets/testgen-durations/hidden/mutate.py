"""Hidden gate: the agent's tests must catch a deliberately broken durations.py.

    python .gates/mutate.py MUTANT

First runs tests/test_durations.py against durations.py as committed (HEAD):
they must pass, or killing a mutant proves nothing. Then applies one mutant
(a single edit of an edge case the docstrings promise) to a scratch copy of
the workspace and runs the tests again: they must fail. Exit 0 = mutant
killed; exit 1 = it survived, or the tests are missing or broken.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MODULE = "timekit/durations.py"
TESTS = "tests/test_durations.py"

# name -> (exact text in the original, replacement)
MUTANTS = {
    "bare-number": (
        "    if s.isdigit():\n        return int(s)\n",
        "",
    ),
    "repeated-unit": (
        "if rank <= last_rank:",
        "if rank < last_rank:",
    ),
    "trailing-garbage": (
        'raise ValueError(f"invalid duration {text!r}: cannot read {s[pos:]!r}")',
        "break",
    ),
    "zero": (
        '        return "0s"\n',
        '        return ""\n',
    ),
    "inner-zero": (
        "        if count:\n",
        "        if count or parts:\n",
    ),
    "largest": (
        "for unit in _ORDER[_ORDER.index(largest) :]:",
        "for unit in _ORDER:",
    ),
}


def start_tests(scratch: Path, workspace: Path, module_source: str) -> subprocess.Popen[str]:
    """Copy the workspace to ``scratch`` with ``module_source`` as the module; start pytest there."""
    shutil.copytree(
        workspace,
        scratch,
        ignore=shutil.ignore_patterns(".git", ".gates", "__pycache__", ".pytest_cache"),
    )
    (scratch / MODULE).write_text(module_source)
    # No bytecode (a mutant of the same size and mtime could reuse a stale .pyc),
    # no third-party plugins (faster, and the same on every machine).
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", TESTS],
        cwd=scratch,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in MUTANTS:
        print(f"usage: mutate.py {{{','.join(MUTANTS)}}}", file=sys.stderr)
        return 2
    name = argv[0]
    workspace = Path.cwd()
    if not (workspace / TESTS).is_file():
        print(f"{TESTS} does not exist")
        return 1
    original = subprocess.run(
        ["git", "show", f"HEAD:{MODULE}"], capture_output=True, text=True, check=True
    ).stdout
    old, new = MUTANTS[name]
    if original.count(old) != 1:
        print(f"internal: mutant {name!r} no longer matches {MODULE} exactly once")
        return 3
    with tempfile.TemporaryDirectory() as tmp:
        # The unmutated run and the mutant run go side by side.
        runs = [
            start_tests(Path(tmp) / "original", workspace, original),
            start_tests(Path(tmp) / "mutant", workspace, original.replace(old, new)),
        ]
        (base_out, _), (mutant_out, _) = (run.communicate(timeout=60) for run in runs)
    baseline, mutated = runs
    if baseline.returncode != 0:
        print(f"{TESTS} does not pass on the committed {MODULE} (exit {baseline.returncode}):")
        print(base_out[-2000:])
        return 1
    if mutated.returncode in (1, 2):
        print(f"killed: mutant {name!r} makes {TESTS} fail")
        return 0
    print(f"survived: mutant {name!r} ({old.strip()!r} -> {new.strip()!r}); {TESTS} exit {mutated.returncode}")
    print(mutant_out[-1000:])
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

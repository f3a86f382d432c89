"""The sandbox contract as library code: the checks every ``Sandbox`` backend must pass, without pytest.

Each check in :data:`CHECKS` is a named function of a :class:`Trial` (the
backend's kind, a sandbox factory, the workspace it copies, the check's
parameter) that raises ``AssertionError`` when the backend breaks the contract:
commands (exit codes, stdin, cwd, timeouts, output caps), files (round trips,
paths and symlinks confined to the workspace), and the hostile list (fork bomb,
1 GB of output, ``sleep 100000``, a 10 GB allocation, writing /usr or outside
the workspace, the network, a command that ignores SIGTERM), each of which must
be contained with the session going on, and the escapes (the hidden gate files
through /proc/<harness pid>/cwd, environ, fd or their absolute path, /etc/shadow,
the harness's environment, a ``setsid`` survivor). What a backend is known not to
contain is a :class:`Gap` (expected not to hold): ``local`` (bubblewrap) and
``docker`` have none; ``unsafe-local`` has many, and where running the check would
harm the host (the fork bomb; the 10 GB allocation unless
``AGENTBENCH_HOSTILE_ON_HOST=1``) it is not run at all.
A third party's ``pytest_agentbench_make_sandbox`` backend proves itself with
:func:`run_checks`. The checks are ``assert`` statements: run them with
assertions on (not ``python -O``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pytest_agentbench.sandbox.contract import commands, escape, files, hostile
from pytest_agentbench.sandbox.contract.trial import (
    Check,
    Gap,
    Outcome,
    SandboxFactory,
    Trial,
    make_workspace,
    run_check,
)

__all__ = [
    "CHECKS",
    "Check",
    "Gap",
    "Outcome",
    "SandboxFactory",
    "Trial",
    "make_workspace",
    "run_check",
    "run_checks",
]

#: Every check, in order: commands, files, hostile commands, escapes.
CHECKS: list[Check] = [*commands.CHECKS, *files.CHECKS, *hostile.CHECKS, *escape.CHECKS]


def run_checks(kind: str, factory: SandboxFactory, folder: Path, checks: Sequence[Check] = CHECKS) -> list[Outcome]:
    """Run ``checks`` against sandboxes of ``kind`` from ``factory``; the workspace is built in ``folder``."""
    if not __debug__:
        raise RuntimeError("the sandbox contract checks are assert statements: run them without python -O")
    source = make_workspace(folder)
    return [run_check(c, kind, factory, source, p) for c in checks for p in (c.params or (None,))]

"""The workspace as a git repo: the one commit every backend makes, who makes it, and the trusted baseline.

Each backend turns its copy of the workspace into a git repo with one commit
(``workspace as given``) so that ``git diff`` shows exactly the agent's change.
This module owns how: the commands (:data:`INIT_COMMANDS`, or as one shell line
:data:`INIT_SCRIPT` for a backend that runs them inside a container), the
identity that commit is made under (:data:`SETUP_IDENTITY`), the identity the
agent's own commands commit under (:data:`AGENT_IDENTITY`), and
:func:`init_git_repo` for a workspace on the host.

The agent owns the sandbox's ``.git`` (it may rewrite its history, config and hooks, or delete it),
so the patch (:mod:`pytest_agentbench.sandbox.patch`) never reads it: :func:`baseline_bundle` makes
the same ``workspace as given`` commit on the host from the packet's own folder, in a throwaway
repo under :data:`ISOLATED_GIT_ENV` (no system or user config, no hooks), as a git bundle the
sandbox verifies when it fetches it.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import tempfile
from pathlib import Path

from pytest_agentbench.errors import SandboxError

__all__ = [
    "AGENT_IDENTITY",
    "INIT_COMMANDS",
    "INIT_SCRIPT",
    "ISOLATED_GIT_ENV",
    "NEUTRAL_ATTRIBUTES",
    "SETUP_IDENTITY",
    "baseline_bundle",
    "init_git_repo",
]

#: Who makes the ``workspace as given`` commit.
SETUP_IDENTITY = {
    "GIT_AUTHOR_NAME": "agentbench",
    "GIT_AUTHOR_EMAIL": "agentbench@localhost",
    "GIT_COMMITTER_NAME": "agentbench",
    "GIT_COMMITTER_EMAIL": "agentbench@localhost",
}
#: Who the agent's commands commit as.
AGENT_IDENTITY = {
    "GIT_AUTHOR_NAME": "agent",
    "GIT_AUTHOR_EMAIL": "agent@localhost",
    "GIT_COMMITTER_NAME": "agent",
    "GIT_COMMITTER_EMAIL": "agent@localhost",
}
#: Run in the workspace root, in this order.
INIT_COMMANDS = (
    ["git", "init", "-q", "-b", "main"],
    ["git", "add", "-A"],
    ["git", "commit", "-q", "--allow-empty", "--no-gpg-sign", "-m", "workspace as given"],
)
#: The same commands as one ``sh -c`` line, stopping at the first that fails.
INIT_SCRIPT = " && ".join(shlex.join(argv) for argv in INIT_COMMANDS)
#: git with no configuration but ours: no system or user config, no prompts, no optional locks.
ISOLATED_GIT_ENV = {
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_OPTIONAL_LOCKS": "0",
    "LC_ALL": "C",
}
#: ``$GIT_DIR/info/attributes`` of every repo the patch uses (it outranks the workspace's own
#: ``.gitattributes``): no diff drivers, filters, end-of-line or encoding conversions - git's own
#: binary check decides what is binary, and the bytes are compared as they are.
NEUTRAL_ATTRIBUTES = "* !diff !merge !text !eol !ident !filter !working-tree-encoding\n"
_BUNDLE_TIMEOUT_S = 120


def init_git_repo(root: Path) -> None:
    """Make ``root`` a git repo with one commit, so ``git diff`` shows the agent's change."""
    env = dict(os.environ, **SETUP_IDENTITY)
    for argv in INIT_COMMANDS:
        done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise SandboxError(
                f"could not make the workspace a git repo: {' '.join(argv)} failed: "
                f"{done.stderr.strip()} (is git installed and on PATH?)"
            )


def baseline_bundle(workspace: Path) -> bytes:
    """A git bundle of ``workspace`` committed as the sandboxes commit it (branch ``main``), made on the host.

    The repo lives in a temporary folder (``workspace`` is only read: a ``.git`` in it is skipped);
    ``SandboxError`` names the failing step.
    """
    with tempfile.TemporaryDirectory(prefix="agentbench-baseline-") as tmp:
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": tmp,
            "GIT_DIR": str(Path(tmp) / "git"),
            "GIT_WORK_TREE": str(workspace),
            **ISOLATED_GIT_ENV,
            **SETUP_IDENTITY,
        }
        bundle = Path(tmp) / "base.bundle"
        init, *rest = INIT_COMMANDS
        for argv in (init, *rest, ["git", "bundle", "create", "-q", str(bundle), "main"]):
            try:
                done = subprocess.run(
                    argv, cwd=workspace, env=env, capture_output=True, text=True, timeout=_BUNDLE_TIMEOUT_S
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise SandboxError(f"could not make the baseline of {workspace}: {' '.join(argv)}: {exc}") from exc
            if done.returncode != 0:
                raise SandboxError(
                    f"could not make the baseline of {workspace}: {' '.join(argv)} failed: {done.stderr.strip()}"
                )
            if argv is init:
                (Path(env["GIT_DIR"]) / "info").mkdir(exist_ok=True)
                (Path(env["GIT_DIR"]) / "info" / "attributes").write_text(NEUTRAL_ATTRIBUTES)
        return bundle.read_bytes()

"""The workspace as a git repo: the one commit every backend makes, and who makes it.

Each backend turns its copy of the workspace into a git repo with one commit
(``workspace as given``) so that ``git diff`` shows exactly the agent's change.
This module owns how: the commands (:data:`INIT_COMMANDS`, or as one shell line
:data:`INIT_SCRIPT` for a backend that runs them inside a container), the
identity that commit is made under (:data:`SETUP_IDENTITY`), the identity the
agent's own commands commit under (:data:`AGENT_IDENTITY`), and
:func:`init_git_repo` for a workspace on the host.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

from pytest_agentbench.errors import SandboxError

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

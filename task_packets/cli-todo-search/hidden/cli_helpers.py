"""Shared by the hidden CLI tests: run ``python -m todo`` as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

WORKSPACE = Path.cwd()


def run_todo(db: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(WORKSPACE), TODO_DB=str(db))
    return subprocess.run(
        [sys.executable, "-m", "todo", "--db", str(db), *argv],
        cwd=db.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def write_tasks(db: Path, tasks: list[tuple[str, bool]]) -> None:
    items = [{"id": i, "title": title, "done": done} for i, (title, done) in enumerate(tasks, 1)]
    db.write_text(json.dumps({"tasks": items}))

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BUGFIX = REPO / "task_packets" / "bugfix-median"
SCRIPTS = REPO / "examples" / "scripted"


@pytest.fixture
def user_folder(tmp_path: Path) -> Path:
    """A user's own folder: only a packets folder and a models.yaml (no tests, no conftest)."""
    shutil.copytree(BUGFIX, tmp_path / "packets" / "bugfix-median")
    shutil.copytree(SCRIPTS / "good", tmp_path / "scripts" / "good")
    shutil.copytree(SCRIPTS / "noop", tmp_path / "scripts" / "noop")
    (tmp_path / "models.yaml").write_text(
        "models:\n"
        "  a:\n    model: scripted-good\n    serve: {engine: scripted, script: scripts/good}\n"
        "  b:\n    model: scripted-noop\n    serve: {engine: scripted, script: scripts/noop}\n"
    )
    return tmp_path

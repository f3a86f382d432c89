from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

_SERVE = """
import sys, time
from pytest_agentbench.serving.scripted import ScriptedServer
step = {"tool_calls": [{"name": "run", "arguments": {"command": "true"}}]}
script = {"conversations": [{"responses": [step] * 100000}]}
srv = ScriptedServer(script).start()
print(srv.base_url, flush=True)
sys.stdin.read()
"""


@pytest.fixture(scope="session")
def instant_server() -> Iterator[str]:
    """A scripted server answering at once, in its own process (so it does not share our GIL)."""
    proc = subprocess.Popen([sys.executable, "-c", _SERVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    time.sleep(0.1)
    yield url
    proc.kill()
    proc.wait()

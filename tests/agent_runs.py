"""Running a real external agent CLI through the plugin, in Docker, against the scripted double.

:func:`plugin_run` lays out a user's folder (the bugfix-median packet, a models.yaml with a *good*
and a *noop* scripted alias whose conversations are ``plan:`` scripts) and runs pytest in it with
``--agent=NAME --sandbox=docker``. A small conftest there writes, at the end of the session, the
gateway's per-alias totals and each scripted server's own usage totals (``GET /scripted/usage``) to
``totals.json``, so a test can check that every token the agent used went through the gateway and
was counted the same on both sides.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest
import yaml

from pytest_agentbench.agents.external.adapter import Session

from .conftest import BUGFIX

#: The session's state folder inside the sandbox (agents.external.session.STATE_DIR).
STATE = "/tmp/agentbench-agent"


def agent_session(**kw: Any) -> Session:
    """A Session as an adapter is given one, with test defaults; ``kw`` overrides any field."""
    base: dict[str, Any] = {
        "prompt": "Fix median().",
        "prompt_file": f"{STATE}/prompt.md",
        "workspace": "/workspace",
        "base_url": "http://127.0.0.1:8765/v1",
        "root_url": "http://127.0.0.1:8765",
        "token": "agb-run-0123456789abcdef",
        "model": "Qwen/Qwen3-Coder-30B-A3B-Instruct",
        "max_turns": 12,
        "timeout_s": 300.0,
        "state_dir": STATE,
    }
    return Session(**(base | kw))


#: The fix bugfix-median needs, as one shell command any agent's shell tool can run.
FIX_MEDIAN = (
    "python3 - <<'PY'\n"
    "p = 'stats/core.py'\n"
    "s = open(p).read()\n"
    "s = s.replace('    mid = len(data) // 2\\n    return data[mid]\\n', "
    "'    mid = len(data) // 2\\n    if len(data) % 2 == 0:\\n        return (data[mid - 1] + data[mid]) / 2\\n"
    "    return data[mid]\\n')\n"
    "open(p, 'w').write(s)\n"
    "PY"
)

TOTALS_CONFTEST = """
import json
import urllib.request

import pytest

from pytest_agentbench.plugin.session import SESSION


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    state = session.config.stash[SESSION]
    if state.gateway is None:
        return
    scripted = {}
    for alias, url in (state.urls or {}).items():
        with urllib.request.urlopen(url.removesuffix("/v1") + "/scripted/usage", timeout=10) as answer:
            scripted[alias] = json.load(answer)
    with open("totals.json", "w") as f:
        json.dump({"gateway": state.gateway.totals(), "scripted": scripted}, f)
"""


def plugin_run(
    pytester: pytest.Pytester, agent: str, good: list[dict[str, Any]], noop: list[dict[str, Any]], *args: str
) -> tuple[Any, dict[str, dict[str, Any]], dict[str, Any]]:
    """Run bugfix-median with ``agent`` in Docker on a good and a noop plan; (result, records by alias, totals)."""
    shutil.copytree(BUGFIX, pytester.path / "packets" / "bugfix-median")
    for name, plan in (("good", good), ("noop", noop)):
        folder = pytester.path / "scripts" / name
        folder.mkdir(parents=True)
        (folder / "plan.yaml").write_text(yaml.safe_dump({"conversations": [{"plan": plan}]}))
    (pytester.path / "models.yaml").write_text(
        "models:\n"
        "  good:\n    model: scripted-good\n    serve: {engine: scripted, script: scripts/good}\n"
        "  noop:\n    model: scripted-noop\n    serve: {engine: scripted, script: scripts/noop}\n"
    )
    pytester.makeconftest(TOTALS_CONFTEST)
    result = pytester.runpytest_subprocess(
        "--packets=packets",
        "--models=good,noop",
        f"--agent={agent}",
        "--sandbox=docker",
        "-p",
        "no:cacheprovider",
        "--agentbench-results=res",
        *args,
        timeout=1200,
    )
    lines = (pytester.path / "res" / "results.jsonl").read_text().splitlines()
    records = {r["alias"]: r for r in map(json.loads, lines)}
    totals = json.loads((pytester.path / "totals.json").read_text())
    return result, records, totals


def assert_reconciled(records: dict[str, dict[str, Any]], totals: dict[str, Any]) -> None:
    """Per alias: the gateway's tokens equal the scripted server's, and the records' equal both."""
    for alias, record in records.items():
        gateway, scripted = totals["gateway"][alias], totals["scripted"][alias]["overall"]
        assert gateway["prompt_tokens"] == scripted["prompt_tokens"] > 0, (alias, gateway, scripted)
        assert gateway["completion_tokens"] == scripted["completion_tokens"] > 0, (alias, gateway, scripted)
        tokens = record["client"]["tokens"]
        assert (tokens["prompt"], tokens["completion"]) == (gateway["prompt_tokens"], gateway["completion_tokens"])

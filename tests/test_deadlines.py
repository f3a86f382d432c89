"""Deadlines, refused keys and SIGTERM: the fault suite of issue 15, over real HTTP and real processes.

A server that keeps a stream alive or trickles its body must not hold a run past its deadline; a
401/403 is an ``auth_error`` that names the alias and its key's variable; SIGTERM stops a session
cleanly (finished records merged, the sandbox's processes killed), with or without ``serve:``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.agents.config import AgentConfig
from pytest_agentbench.agents.loop import run_agent
from pytest_agentbench.errors import ModelCallError, ModelsFileError
from pytest_agentbench.models.adapter import ModelAdapter
from pytest_agentbench.models.deadline import CallGuard
from pytest_agentbench.models.registry import ModelSpec, parse_retries
from pytest_agentbench.sandbox import LocalSandbox
from pytest_agentbench.serving.scripted import ScriptedServer

from .conftest import REPO, importorskip_extra

pytest_plugins = ["pytester"]

MESSAGES = [{"role": "user", "content": "hello"}]
SLACK_S = 0.75  # past the deadline: the watchdog's wake-up, the SDK unwinding, a loaded 2-core CI machine
DEADLINE_S = 1.5


def kept_alive(kind: str = "comment", for_s: float = 20, **step: Any) -> dict[str, Any]:
    """A streamed answer held open after its first chunk by ``kind`` keep-alives every 0.2 s."""
    keep = {"stream_keepalive": kind, "stream_keepalive_every_s": 0.2, "stream_keepalive_for_s": for_s}
    return {"content": "never finished", **keep, **step}


# Each keeps the connection busy well inside any per-read timeout and for far longer than the deadline;
# the `for_s` bounds only make an unfixed client fail the test instead of hanging it.
HOLDING = {
    "sse-comments": (kept_alive("comment"), True),
    "empty-deltas": (kept_alive("empty_delta"), True),
    "trickled-body": ({"content": "never finished", "trickle_every_s": 0.1}, False),  # ~270 bytes: ~27 s
}


def tiny_packet(root: Path, pid: str, prompt: str = "write done.txt") -> None:
    """A packet that costs nothing to check: one file, one gate that wants done.txt."""
    (root / pid / "ws").mkdir(parents=True)
    (root / pid / "ws" / "README").write_text("x\n")
    (root / pid / "packet.yaml").write_text(
        f"id: {pid}\nkind: bug-fix\ntitle: t\nprompt: {prompt}\nworkspace: ws/\n"
        "gates: [{id: done, run: test -f done.txt}]\n"
    )


def spec(**kw: Any) -> ModelSpec:
    if "retries" in kw:
        kw["retries"] = parse_retries(kw["retries"], "models.yaml: models.t.retries")
    return ModelSpec(alias="t", model="scripted", source=Path("models.yaml"), **kw)


class Served:
    """A scripted server with one conversation and an adapter on it (sleeps recorded, not slept)."""

    def __init__(self, responses: list[dict[str, Any]], **kw: Any):
        self.server = ScriptedServer({"conversations": [{"responses": responses}]}).start()
        self.sleeps: list[float] = []
        self.adapter = ModelAdapter(spec(**kw), base_url=self.server.base_url, sleep=self.sleeps.append)

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: object) -> None:
        self.adapter.close()
        self.server.stop()


# -- every model call ends by its deadline -------------------------------------------------------


@pytest.mark.parametrize("fault", HOLDING)
def test_a_call_ends_by_the_run_deadline_whatever_the_server_sends(fault: str) -> None:
    step, stream = HOLDING[fault]
    with Served([step], stream=stream) as s:
        t0 = time.monotonic()
        with pytest.raises(ModelCallError) as exc:
            s.adapter.complete(MESSAGES, timeout=DEADLINE_S)
        took = time.monotonic() - t0
        assert len(s.server.requests) == 1  # out of time: no retry
    assert exc.value.failure == "timeout"
    assert DEADLINE_S - 0.1 <= took <= DEADLINE_S + SLACK_S, took
    assert "within 1.5 s (the time left in the run)" in str(exc.value)


def test_the_alias_timeout_bounds_a_call_without_a_run_deadline() -> None:
    with Served([kept_alive()], stream=True, timeout_s=1.0, retries={"timeout": 0}) as s:
        t0 = time.monotonic()
        with pytest.raises(ModelCallError) as exc:
            s.adapter.complete(MESSAGES)
        took = time.monotonic() - t0
    assert exc.value.failure == "timeout" and took <= 1.0 + SLACK_S, took
    assert "the alias's timeout_s" in str(exc.value)


def test_a_kept_alive_stream_that_finishes_in_time_is_answered() -> None:
    with Served([kept_alive("empty_delta", for_s=0.3, content="done"), {"content": "again"}], stream=True) as s:
        assert s.adapter.complete(MESSAGES, timeout=0.8).text == "done"
        time.sleep(0.8)  # the first call's deadline passes after it ended: the watchdog must leave it be
        second = s.adapter.complete([*MESSAGES, {"role": "assistant", "content": "done"}], timeout=5)
    assert second.text == "again" and second.extra["retries"] == []


def test_the_agent_stops_with_agent_timeout_at_its_wall_budget(tmp_path: Path) -> None:
    responses = [
        {"tool_calls": [{"name": "run", "arguments": {"command": "true"}}]},
        kept_alive(),
    ]
    with Served(responses, stream=True) as s, LocalSandbox(tmp_path) as box:
        result = run_agent("fix it", box, s.adapter, AgentConfig(timeout_s=DEADLINE_S))
    assert result.outcome == "agent_timeout", result.error
    assert result.wall_s <= DEADLINE_S + SLACK_S, result.wall_s
    assert [t.error for t in result.turns] == [None, "timeout"]


def test_a_kept_alive_stream_cannot_hold_a_pytest_run_past_agent_timeout(pytester: pytest.Pytester) -> None:
    """The reported case, through the plugin: SSE pings every 0.2 s against --agent-timeout 2."""
    tiny_packet(pytester.path / "packets", "p")
    (pytester.path / "keepalive.yaml").write_text(json.dumps({"conversations": [{"responses": [kept_alive()]}]}))
    pytester.makefile(
        ".yaml",
        models="models:\n  k:\n    model: scripted-keepalive\n    stream: true\n"
        "    serve: {engine: scripted, script: keepalive.yaml}\n",
    )
    t0 = time.monotonic()
    result = pytester.runpytest_inprocess(
        "--models=k", "--packets", "packets", "--sandbox=local", "--agent-timeout", "2", "-p", "no:cacheprovider"
    )
    took = time.monotonic() - t0
    result.assert_outcomes(failed=1)  # the gate ran on the untouched workspace and missed
    record = json.loads(next((pytester.path / ".agentbench" / "runs").glob("*/results.jsonl")).read_text())
    assert record["outcome"] == "agent_timeout" and record["failures_by_class"] == {"timeout": 1}, record
    assert record["client"]["agent_wall_s"] <= 2 + SLACK_S, record["client"]
    assert took < 12, took  # the whole session; before the fix the stream held the run for the script's 20 s


def _pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.settimeout(5)
    return a, b


def test_the_guard_wakes_a_blocked_read_at_its_deadline() -> None:
    a, b = _pair()
    got: list[bytes] = []
    with CallGuard(time.monotonic() + 0.3) as guard:
        guard.attach(a)
        reader = threading.Thread(target=lambda: got.append(a.recv(1)))
        t0 = time.monotonic()
        reader.start()
        reader.join(timeout=3)
    assert got == [b""] and guard.fired and time.monotonic() - t0 < 1.5  # EOF at the deadline, not at 5 s
    a.close(), b.close()


def test_a_finished_guard_leaves_its_connection_alone() -> None:
    a, b = _pair()
    with CallGuard(time.monotonic() + 0.1) as guard:
        guard.attach(a)
    time.sleep(0.3)  # past the deadline: the watchdog wakes, finds the guard done
    b.sendall(b"x")
    assert a.recv(1) == b"x" and not guard.fired
    a.close(), b.close()


# -- a refused key -------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_refused_key_is_an_auth_error_naming_alias_and_variable(status: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTBENCH_TEST_KEY", "sk-test-not-a-real-key")
    with Served([{"status": status, "error": "invalid api key"}], api_key_env="AGENTBENCH_TEST_KEY") as s:
        with pytest.raises(ModelCallError) as exc:
            s.adapter.complete(MESSAGES, timeout=10)
        assert len(s.server.requests) == 1 and s.sleeps == []  # never retried
    message = str(exc.value)
    assert exc.value.failure == "auth_error" and exc.value.status == status
    assert message.startswith("auth_error: models.yaml: models.t:")
    assert f"HTTP {status}" in message and "$AGENTBENCH_TEST_KEY" in message and s.server.base_url in message


def test_refused_request_without_api_key_env_says_so() -> None:
    with Served([{"status": 401, "error": "missing key"}]) as s, pytest.raises(ModelCallError) as exc:
        s.adapter.complete(MESSAGES)
    assert exc.value.failure == "auth_error"
    assert "no api_key_env set" in str(exc.value) and "api_key_env: VAR" in str(exc.value)


def test_auth_error_cannot_be_configured_to_retry() -> None:
    with pytest.raises(ModelsFileError) as exc:
        spec(retries={"auth_error": 2})
    assert "models.yaml: models.t.retries.auth_error: auth_error is never retried" in str(exc.value)
    assert spec(retries={"auth_error": 0}).retries["auth_error"].attempts == 0


# -- SIGTERM -------------------------------------------------------------------------------------

SLEEP = "sleep 347.25"  # a command only this test runs: found in /proc by its command line


def _sleepers() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().replace(b"\0", b" ").strip() == SLEEP.encode():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _sigterm_packets(root: Path) -> dict[str, Any]:
    """Packet a-fast finishes at once; b-slow's agent runs SLEEP. Returns the script of both."""
    tiny_packet(root / "packets", "a-fast", prompt="FAST")
    tiny_packet(root / "packets", "b-slow", prompt="SLOW")
    write = {"name": "write_file", "arguments": {"path": "done.txt", "content": "done"}}
    finish = {"name": "finish", "arguments": {"summary": "wrote done.txt"}}
    sleep = {"name": "run", "arguments": {"command": SLEEP}}
    return {
        "conversations": [
            {"match": "FAST", "responses": [{"tool_calls": [write, finish]}]},
            {"match": "SLOW", "responses": [{"tool_calls": [sleep]}]},
        ]
    }


@pytest.mark.parametrize("workers", [None, pytest.param(2, marks=pytest.mark.slow)], ids=["no-xdist", "xdist-2"])
def test_sigterm_stops_the_session_cleanly_without_serve(
    tmp_path: Path, workers: int | None, request: pytest.FixtureRequest
) -> None:
    """No ``serve:``: the alias is an endpoint the test runs. SIGTERM to pytest while the agent's command sleeps.

    Under xdist the signal goes to the controller only; the workers stop through xdist's shutdown.
    """
    if workers:
        importorskip_extra("xdist", "xdist")
    cleanup: list[Path] = []
    request.addfinalizer(lambda: [shutil.rmtree(p, ignore_errors=True) for p in cleanup])
    with ScriptedServer(_sigterm_packets(tmp_path)) as server:
        (tmp_path / "models.yaml").write_text(f"models:\n  s:\n    model: scripted\n    base_url: {server.base_url}\n")
        # the sandboxes' temp folders go here, and only theirs; bubblewrap as root runs the sandbox as
        # uid 65534, which must reach it (tmp_path's /tmp/pytest-of-root is 0700), else it uses /tmp
        temp = Path(tempfile.mkdtemp(prefix="agentbench-test-sigterm-", dir="/tmp"))
        temp.chmod(0o755)
        cleanup.append(temp)
        path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
        env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": path}
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "--models=s", "--packets", "packets", "--sandbox=local"]
            + ["-p", "no:cacheprovider", "--agentbench-results", "res"]
            + (["-n", str(workers)] if workers else ["-p", "no:xdist"]),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            parts = tmp_path / "res"
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and proc.poll() is None:
                if list(parts.glob("results-*.jsonl")) and _sleepers():
                    break
                time.sleep(0.1)
            assert proc.poll() is None, proc.communicate()[0][-3000:]
            assert list(parts.glob("results-*.jsonl")) and _sleepers(), "the slow run's command never started"
            assert [p.name for p in temp.iterdir() if p.name.startswith("agentbench-")], "no sandbox folder?"
            t0 = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=30)
            stopped_in = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out[-3000:]
    assert stopped_in < (30 if workers else 10), stopped_in  # xdist: execnet interrupts a busy worker after 5 s
    assert _sleepers() == [], "the sandbox's command outlived the session"
    assert [p.name for p in temp.iterdir() if p.name.startswith("agentbench-")] == [], "a sandbox was left"
    merged = [json.loads(line) for line in (tmp_path / "res" / "results.jsonl").read_text().splitlines()]
    assert [(r["packet"]["id"], r["passed"]) for r in merged] == [("a-fast", True)]  # finished, merged
    assert "SIGTERM: stopping cleanly" in out

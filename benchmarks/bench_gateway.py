"""What the measuring gateway adds to one model call: the same call direct and through the gateway.

The agent is the package's lean client (``serving.http.Client``, one kept-alive connection, as an
SDK agent keeps one) in this process; the scripted server of ``conftest.py`` answers at once in
its own process, and the gateway runs in a third (as it does in a session: the controller owns
it), so no two of them share a GIL. Calls alternate direct / through the gateway, plain and
streamed (the scripted stream: a role chunk, a tool call in two chunks, the finish and usage
chunks, ``[DONE]``), and the *added* latency is the median of the paired wall-time differences;
the gateway process's CPU per call (``/proc``, Linux) is printed beside it.
Through the gateway a call also pays a second loopback hop, the run's token check, the record
(usage, TTFT and per-event times, the tool-call format) and, for a stream, the meter of every
event. Run:

    .venv/bin/pytest benchmarks/bench_gateway.py -p no:xdist -s

The assertion is loose (a shared 2-core machine is noisy): under :data:`BOUND_S` added per call.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_agentbench.agents.tools import TOOLS
from pytest_agentbench.serving.http import Client

PAIRS = 1000
BOUND_S = 0.010  # added wall time per call, median of pairs

_GATEWAY = """
import json, sys
from pytest_agentbench.serving.gateway import Gateway, Route
gateway = Gateway({"bench": Route(alias="bench", where="bench", base_url=sys.argv[1], model="scripted")}).start()
ticket = gateway.open_run("bench")
print(json.dumps({"base_url": ticket.base_url, "token": ticket.token}), flush=True)
sys.stdin.read()
run = gateway.close_run(ticket.run_id)
print(json.dumps({"calls": len(run.calls), "failed": sum(c.failure is not None for c in run.calls)}), flush=True)
gateway.stop()
"""


@pytest.fixture(scope="module")
def gateway(instant_server: str) -> Iterator[tuple[dict[str, str], subprocess.Popen[str]]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _GATEWAY, instant_server], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    yield json.loads(proc.stdout.readline()), proc
    proc.kill()
    proc.wait()
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (NaN where /proc is not there)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(client: Client, body: bytes, stream: bool) -> float:
    start = time.perf_counter()
    if stream:
        with client.stream("/chat/completions", body, timeout=30) as events:
            assert sum(1 for _ in events) >= 4
    else:
        assert client.post_json("/chat/completions", body, timeout=30)["choices"]
    return time.perf_counter() - start


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_gateway_added_latency_per_call(
    instant_server: str, gateway: tuple[dict[str, str], subprocess.Popen[str]], stream: bool
) -> None:
    ticket, proc = gateway
    request: dict[str, object] = {"model": "x", "messages": [{"role": "user", "content": "go"}], "tools": TOOLS}
    if stream:
        request.update(stream=True, stream_options={"include_usage": True})
    body = json.dumps(request).encode()
    direct = Client(instant_server, {"Authorization": "Bearer x"})
    through = Client(ticket["base_url"], {"Authorization": f"Bearer {ticket['token']}"})
    for client in (direct, through):  # warm: connections, imports, the gateway's upstream pool
        for _ in range(20):
            _timed(client, body, stream)
    cpu = _cpu_s(proc.pid)
    pairs = [(_timed(direct, body, stream), _timed(through, body, stream)) for _ in range(PAIRS)]
    cpu = (_cpu_s(proc.pid) - cpu) / PAIRS
    direct.close()
    through.close()
    added = statistics.median(g - d for d, g in pairs)
    d50, g50 = statistics.median(d for d, _ in pairs), statistics.median(g for _, g in pairs)
    kind = "stream" if stream else "plain"
    print(
        f"\n{kind}: direct {d50 * 1e3:.2f} ms, through the gateway {g50 * 1e3:.2f} ms, added {added * 1e3:.2f} ms;"
        f" gateway CPU {cpu * 1e3:.2f} ms per call"
    )
    assert added < BOUND_S


def test_every_call_was_recorded(gateway: tuple[dict[str, str], subprocess.Popen[str]]) -> None:
    _, proc = gateway
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()
    seen = json.loads(proc.stdout.readline())
    assert seen == {"calls": 2 * (20 + PAIRS), "failed": 0}

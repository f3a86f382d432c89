"""From inside a sandbox the gateway answers and nothing else does (sandbox gateway_socket + the forwarder).

The sandbox keeps no network: the gateway's agent socket is mounted, the forwarder serves it on
the sandbox's own loopback. A probe inside calls the gateway through it, then tries every other
address a leak would show: the scripted server's port, the gateway's TCP port, a listener on all
the host's addresses - at 127.0.0.1 and at each of the host's own addresses. The same probe run
on the host reaches them all, so the check can fail.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_agentbench.sandbox.base import GATEWAY_DIR
from pytest_agentbench.sandbox.bwrap import bwrap_status
from pytest_agentbench.serving.gateway import GATEWAY_PORT, Gateway, Route, forwarder_argv
from pytest_agentbench.serving.gateway.forwarder import FORWARDER_EXIT
from pytest_agentbench.serving.scripted import ScriptedServer

from .conftest import BUGFIX, unavailable

PROBE = r"""
import json, os, socket, sys, urllib.request

base, token, targets = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def ask(key):
    body = json.dumps({"model": "x", "messages": [{"role": "user", "content": "hi"}]}).encode()
    req = urllib.request.Request(base + "/v1/chat/completions", data=body,
                                 headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
    try:
        with opener.open(req, timeout=20) as r:
            return r.status, json.loads(r.read())["choices"][0]["message"]["content"]
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())["error"]["message"]


out = {"gateway": ask(token), "forged": ask("agb-run-forged"), "reached": [], "mount": None}
for host, port in targets:
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect((host, port))
        out["reached"].append([host, port])
    except OSError:
        pass
    s.close()
if os.path.isdir("/run/agentbench-gateway"):
    out["mount"] = sorted(os.listdir("/run/agentbench-gateway"))
print(json.dumps(out))
"""


def _port(url: str) -> int:
    return int(url.split(":")[2].split("/")[0])


def _host_addresses() -> list[str]:
    found = {"127.0.0.1"}
    try:
        found |= {str(info[4][0]) for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)}
    except OSError:
        pass
    return sorted(found)


@pytest.fixture
def world() -> Iterator[dict[str, Any]]:
    """A scripted server, a gateway in front of it, a run, and a listener on every host address."""
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen(16)
    script = {"conversations": [{"responses": [{"content": "hello from the gateway"}]}]}
    with ScriptedServer(script) as server:
        route = Route(alias="a", where="models.yaml: models.a", base_url=server.base_url, model="m")
        with Gateway({"a": route}) as gateway:
            ticket = gateway.open_run("a")
            ports = [_port(server.base_url), _port(gateway.base_url), listener.getsockname()[1]]
            targets = [[host, port] for host in _host_addresses() for port in ports]
            yield {
                "gateway": gateway,
                "ticket": ticket,
                "targets": targets,
                "server": server,
                "listener": listener.getsockname()[1],
            }
    listener.close()


def _probe_argv(world: dict[str, Any], base: str) -> list[str]:
    return ["python3", "-c", PROBE, base, world["ticket"].token, json.dumps(world["targets"])]


def _sandbox(kind: str, gateway: Gateway) -> Any:
    if kind == "local":
        ok, why = bwrap_status()
        if not ok:
            unavailable(why)
        from pytest_agentbench.sandbox import LocalSandbox

        return LocalSandbox(BUGFIX / "repo", gateway_socket=gateway.agent_socket)
    from pytest_agentbench.sandbox.docker import DockerSandbox

    return DockerSandbox(BUGFIX / "repo", gateway_socket=gateway.agent_socket)


@pytest.mark.parametrize("kind", ["local", pytest.param("docker", marks=pytest.mark.docker)])
def test_inside_the_sandbox_the_gateway_answers_and_nothing_else_does(
    kind: str, world: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    if kind == "docker":
        request.getfixturevalue("docker_engine")
    gateway = world["gateway"]
    with _sandbox(kind, gateway) as box:
        assert box.gateway_socket_inside == f"{GATEWAY_DIR}/gateway.sock"
        assert box.info.details["gateway"] == box.gateway_socket_inside
        argv = forwarder_argv(_probe_argv(world, f"http://127.0.0.1:{GATEWAY_PORT}"), box.gateway_socket_inside)
        result = box.exec(argv, timeout=60)
        assert result.exit_code == 0, result.output
        inside = json.loads(result.stdout.strip().splitlines()[-1])
        # the agent's exit status comes through the forwarder; a taken port is the forwarder's own error
        assert box.exec(forwarder_argv(["sh", "-c", "exit 3"], box.gateway_socket_inside), timeout=30).exit_code == 3
        nested = forwarder_argv(forwarder_argv(["true"], box.gateway_socket_inside), box.gateway_socket_inside)
        taken = box.exec(nested, timeout=30)
        assert taken.exit_code == FORWARDER_EXIT and f"cannot listen on 127.0.0.1:{GATEWAY_PORT}" in taken.stderr
        without = box.exec(_probe_argv(world, f"http://127.0.0.1:{GATEWAY_PORT}"), timeout=60)
    assert inside["gateway"] == [200, "hello from the gateway"]
    assert inside["forged"][0] == 401 and "not issued by this gateway" in inside["forged"][1]
    assert inside["reached"] == []
    assert inside["mount"] == ["gateway.sock"]  # the admin socket is not there
    assert without.exit_code != 0 and "Connection refused" in without.output  # no forwarder: nothing at all
    calls = gateway.close_run(world["ticket"].run_id).calls
    assert [(c.status, c.usage.reported) for c in calls] == [(200, True)]
    assert len(world["server"].requests) == 1


def test_the_same_probe_on_the_host_reaches_every_target(world: dict[str, Any]) -> None:
    """The control: outside a sandbox the probe does see the ports, so an empty list inside means something."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, world["gateway"].base_url.removesuffix("/v1"), world["ticket"].token]
        + [json.dumps(world["targets"])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["gateway"] == [200, "hello from the gateway"]
    reached = {tuple(t) for t in out["reached"]}
    assert {("127.0.0.1", p) for _, p in world["targets"]} <= reached  # the servers and the gateway's TCP port
    assert {(host, world["listener"]) for host in _host_addresses()} <= reached  # the listener on every address

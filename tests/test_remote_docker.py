"""The docker sandbox on another engine: --docker-host / DOCKER_HOST, the base image built there when missing.

The slow tests start a second dockerd of their own listening on tcp://127.0.0.1:PORT (its own --data-root,
--exec-root and --pidfile, so it shares nothing with the machine's engine), let the first sandbox build the
base image on it (debootstrap here, ``docker import`` there: ~1-2 min), and run a packet through it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_agentbench.errors import ConfigError
from pytest_agentbench.sandbox.docker.engine import check_docker_host, docker_available, engine_host

from .conftest import BUGFIX, SCRIPTS, importorskip_extra, unavailable

pytest_plugins = ["pytester"]


@pytest.mark.parametrize(
    "url", ["unix:///var/run/docker.sock", "tcp://127.0.0.1:2375", "tcp://docker.internal:2376/", "ssh://me@build:2222"]
)
def test_engine_addresses_the_sdk_takes_are_accepted(url: str) -> None:
    assert check_docker_host(f"{url} ") == url


@pytest.mark.parametrize("url", ["", "127.0.0.1:2375", "http://127.0.0.1:2375", "unix://relative.sock", "tcp://"])
def test_other_engine_addresses_are_refused_with_the_forms(url: str) -> None:
    with pytest.raises(ConfigError, match=r"--docker-host: .* is not a Docker engine address; expected unix:///"):
        check_docker_host(url)


def test_the_option_beats_docker_host_which_beats_the_local_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert engine_host(None) is None
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:1")
    assert engine_host(None) == "tcp://127.0.0.1:1"
    assert engine_host("unix:///x.sock") == "unix:///x.sock"


def test_an_engine_that_does_not_answer_is_named_with_the_fix(pytester: pytest.Pytester) -> None:
    importorskip_extra("docker", "docker")
    for url in ("tcp://127.0.0.1:9", "ssh://nobody@127.0.0.1:9"):  # ssh:// through the ssh binary: no paramiko
        ok, why = docker_available(url)
        assert not ok and url in why and "dockerd -H URL" in why, why
    pytester.makefile(".yaml", models="models:\n  a: {model: m, base_url: 'http://127.0.0.1:9/v1'}\n")
    result = pytester.runpytest("--sandbox", "docker", "--docker-host", "tcp://127.0.0.1:9", "--co")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--sandbox=docker: no Docker engine answers at tcp://127.0.0.1:9*"])
    bad = pytester.runpytest("--docker-host", "127.0.0.1:2375", "--co")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--docker-host: '127.0.0.1:2375' is not a Docker engine address*"])


# --------------------------------------------------------------------------- a second engine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def second_engine(docker_engine: None) -> Iterator[str]:
    """A dockerd of this module's own on tcp://127.0.0.1:PORT, stopped and removed afterwards."""
    importorskip_extra("docker", "docker")
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        unavailable("a second dockerd needs the dockerd binary and root (scripts/docker-up installs it)")
    root = Path(tempfile.mkdtemp(prefix="ab-d2-", dir="/tmp"))  # short: containerd's socket lives below it
    url = f"tcp://127.0.0.1:{_free_port()}"
    log = (root / "dockerd.log").open("wb")
    argv = [dockerd, "--data-root", f"{root}/data", "--exec-root", f"{root}/exec", "--pidfile", f"{root}/pid"]
    argv += ["-H", url, "--iptables=false", "--ip6tables=false", "--bridge=none", "--storage-driver=overlay2"]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not docker_available(url)[0]:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = (root / "dockerd.log").read_text(errors="replace")[-2000:]
                unavailable(f"a second dockerd did not start on {url} (exit {proc.poll()}):\n{tail}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.docker
@pytest.mark.slow
def test_the_base_image_is_built_on_the_remote_engine_and_sandboxes_run_there(second_engine: str) -> None:
    from pytest_agentbench.sandbox.docker import DockerSandbox
    from pytest_agentbench.sandbox.docker.engine import LABEL_RUN, connect
    from pytest_agentbench.sandbox.image import find_image, recipe_hash

    remote, local = connect(second_engine), connect()
    digest = recipe_hash()
    assert find_image(remote, digest) is None  # a fresh engine: the sandbox must build the image there
    local_containers = {c.id for c in local.containers.list(all=True)}
    with DockerSandbox(BUGFIX / "repo", docker_host=second_engine) as sandbox:
        result = sandbox.exec(["sh", "-c", "hostname; id -u; python -c 'print(6 * 7)'"], timeout=60)
        assert result.ok and result.stdout.split() == ["sandbox", "1000", "42"], result.output
        assert sandbox.info.details["engine"] == second_engine
        theirs = remote.containers.list(filters={"label": f"{LABEL_RUN}={sandbox.run_id}"})
        assert [c.id for c in theirs] == [sandbox.container_id]
        assert sandbox.container_id not in {c.id for c in local.containers.list(all=True)} | local_containers
    assert find_image(remote, digest) is not None
    assert not remote.containers.list(all=True, filters={"label": f"{LABEL_RUN}={sandbox.run_id}"})  # removed
    remote.close()
    local.close()


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("how", ["option", "DOCKER_HOST"])
def test_a_packet_runs_on_the_engine_the_run_names(
    pytester: pytest.Pytester, second_engine: str, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(BUGFIX, pytester.path / "packets" / "bugfix-median")
    shutil.copytree(SCRIPTS / "good", pytester.path / "scripts" / "good")
    (pytester.path / "models.yaml").write_text(
        "models:\n  a:\n    model: scripted-good\n    serve: {engine: scripted, script: scripts/good}\n"
    )
    args = ["--models=a", "--packets", "packets", "--sandbox", "docker", "--agentbench-results", "res"]
    if how == "option":
        monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")  # the option wins over the environment
        args += ["--docker-host", second_engine]
    else:
        monkeypatch.setenv("DOCKER_HOST", second_engine)
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1)
    (record,) = [json.loads(line) for line in (pytester.path / "res" / "results.jsonl").read_text().splitlines()]
    assert record["sandbox"]["kind"] == "docker" and record["sandbox"]["details"]["engine"] == second_engine

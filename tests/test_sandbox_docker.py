"""What only the docker backend does: labels, limits, reaping, cleanup on every path, the image cache.

Real Docker: a session fixture starts an engine with ``scripts/docker-up`` if
none answers; where that fails these tests are skipped with the reason, except
under ``CI`` where they fail.
"""

from __future__ import annotations

import fcntl
import gc
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.errors import SandboxError
from pytest_agentbench.sandbox import image as image_mod
from pytest_agentbench.sandbox.docker import DockerSandbox, docker_available
from pytest_agentbench.sandbox.docker import sandbox as docker_sandbox
from pytest_agentbench.sandbox.docker.engine import LABEL_HOST, LABEL_PID, LABEL_RUN, connect, reap_stale_containers

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "scripts" / "build-base-image"


@pytest.fixture
def client(docker_engine: None) -> Iterator[Any]:
    c = connect()
    yield c
    c.close()


@pytest.fixture(scope="session")
def base_image(docker_engine: None) -> str:
    c = connect()
    try:
        return image_mod.ensure_base_image(c)
    finally:
        c.close()


@pytest.fixture
def workspace_src(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "app.py").write_text("print('hi')\n")
    return src


def containers_of_run(client: Any, run_id: str) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": f"{LABEL_RUN}={run_id}"}))


def run_id() -> str:
    return f"test-{uuid.uuid4().hex[:10]}"


# -- the container -------------------------------------------------------------
def test_container_limits_labels_and_info(client: Any, workspace_src: Path, base_image: str) -> None:
    rid = run_id()
    with DockerSandbox(workspace_src, memory="300m", cpus=0.5, pids=64, run_id=rid) as sb:
        (container,) = containers_of_run(client, rid)
        host = container.attrs["HostConfig"]
        assert host["NetworkMode"] == "none"
        assert host["Memory"] == host["MemorySwap"] == 300 * 1024 * 1024
        assert host["NanoCpus"] == 500_000_000
        assert host["PidsLimit"] == 64
        assert host["CapDrop"] == ["ALL"]
        assert "no-new-privileges" in host["SecurityOpt"]
        assert host["Init"] is True
        assert container.attrs["Config"]["User"] == "1000:1000"
        labels = container.labels
        assert labels[LABEL_RUN] == rid
        assert labels[LABEL_PID] == str(os.getpid())
        assert labels[LABEL_HOST] == socket.gethostname()
        assert sb.info.kind == "docker" and sb.info.isolation == "container"
        assert sb.info.details["image"] == base_image
        assert sb.info.details["limits"] == "memory=300m cpus=0.5 pids=64 network=none"
        assert container.id.startswith(sb.info.details["container"])
    assert containers_of_run(client, rid) == []


def test_inside_the_container(workspace_src: Path, base_image: str) -> None:
    with DockerSandbox(workspace_src) as sb:
        view = sb.exec(
            [
                "sh",
                "-c",
                "id -u; grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; ls /sys/class/net; "
                "tr '\\0' ' ' </proc/1/cmdline; echo; python --version; pytest --version",
            ],
            30,
        )
    lines = view.stdout.splitlines()
    assert view.exit_code == 0, view
    assert lines[0] == "1000"
    assert lines[1].split() == ["CapEff:", "0000000000000000"]
    assert lines[2].split() == ["NoNewPrivs:", "1"]
    assert lines[3] == "lo"  # the only interface: no route anywhere
    assert lines[4].startswith("/sbin/docker-init -- sleep infinity")
    assert lines[5].startswith("Python 3.")
    assert "pytest" in view.output


def test_the_workspace_belongs_to_the_agent(workspace_src: Path, base_image: str) -> None:
    with DockerSandbox(workspace_src) as sb:
        r = sb.exec(["sh", "-c", "stat -c '%u %n' . app.py .git; touch new && echo made"], 30)
    assert r.stdout.splitlines() == ["1000 .", "1000 app.py", "1000 .git", "made"]


# -- cleanup on every path -------------------------------------------------------
def test_close_removes_the_container_and_is_idempotent(client: Any, workspace_src: Path, base_image: str) -> None:
    rid = run_id()
    sb = DockerSandbox(workspace_src, run_id=rid)
    assert len(containers_of_run(client, rid)) == 1
    sb.close()
    sb.close()
    assert containers_of_run(client, rid) == []


def test_no_container_left_after_an_exception_in_the_block(client: Any, workspace_src: Path, base_image: str) -> None:
    rid = run_id()
    with pytest.raises(RuntimeError, match="boom"), DockerSandbox(workspace_src, run_id=rid) as sb:
        sb.exec(["true"], 10)
        raise RuntimeError("boom")
    assert containers_of_run(client, rid) == []


def test_no_container_left_when_the_constructor_fails(client: Any, tmp_path: Path, base_image: str) -> None:
    rid = run_id()
    not_a_dir = tmp_path / "file.txt"
    not_a_dir.write_text("x")
    with pytest.raises(SandboxError, match="not a directory"):
        DockerSandbox(not_a_dir, run_id=rid)
    assert containers_of_run(client, rid) == []


def test_no_container_left_when_the_image_is_missing(client: Any, workspace_src: Path) -> None:
    rid = run_id()
    with pytest.raises(SandboxError, match="creating a container"):
        DockerSandbox(workspace_src, image="agentbench-no-such-image:0", run_id=rid)
    assert containers_of_run(client, rid) == []


def test_an_unclosed_sandbox_is_removed_when_collected(client: Any, workspace_src: Path, base_image: str) -> None:
    rid = run_id()
    sb = DockerSandbox(workspace_src, run_id=rid)
    assert len(containers_of_run(client, rid)) == 1
    del sb
    gc.collect()
    assert containers_of_run(client, rid) == []


def test_reap_removes_containers_of_dead_owners_only(client: Any, base_image: str) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    owners = {"dead": (str(dead.pid), host), "alive": (str(os.getpid()), host), "elsewhere": (str(dead.pid), "x")}
    made = {}
    for name, (pid, on) in owners.items():
        labels = {LABEL_RUN: run_id(), LABEL_PID: pid, LABEL_HOST: on}
        made[name] = client.containers.create(base_image, ["sleep", "infinity"], labels=labels, network_mode="none")
    try:
        removed = reap_stale_containers(client)
        assert made["dead"].id in removed
        assert made["alive"].id not in removed and made["elsewhere"].id not in removed
        left = {c.id for c in client.containers.list(all=True)}
        assert made["dead"].id not in left
        assert made["alive"].id in left and made["elsewhere"].id in left
    finally:
        for c in made.values():
            c.remove(force=True) if c.id in {x.id for x in client.containers.list(all=True)} else None


def test_a_killed_owner_leaves_a_container_that_reaping_removes(
    client: Any, workspace_src: Path, base_image: str
) -> None:
    rid = run_id()
    child = textwrap.dedent(f"""
        import os, signal, sys
        from pathlib import Path
        from pytest_agentbench.sandbox.docker import DockerSandbox
        sb = DockerSandbox(Path({str(workspace_src)!r}), run_id={rid!r})
        print(sb.container_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)  # no close, no finalizer, no atexit
    """)
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == -9, done.stderr
    (left,) = containers_of_run(client, rid)
    assert left.id == done.stdout.strip()
    assert left.id in reap_stale_containers(client)
    assert containers_of_run(client, rid) == []


# -- the timeout backstop --------------------------------------------------------
def test_an_overrun_restarts_the_container_and_keeps_the_files(
    workspace_src: Path, base_image: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with DockerSandbox(workspace_src) as sb:
        sb.write_file("kept.txt", "still here")
        # make the host deadline (T + kill-after + grace) fall before coreutils' timeout fires
        monkeypatch.setattr(docker_sandbox, "WATCHDOG_GRACE_S", -docker_sandbox.KILL_AFTER_S - 2.5)
        r = sb.exec(["sleep", "100"], 3)
        monkeypatch.undo()
        assert (r.exit_code, r.timed_out) == (124, True)
        assert "container was restarted" in r.stderr
        assert r.duration_s < 3
        assert sb.read_file("kept.txt") == b"still here"
        assert sb.exec(["echo", "ok"], 10).stdout == "ok\n"


# -- engine and SDK missing ------------------------------------------------------
def test_docker_available(docker_engine: None) -> None:
    ok, why = docker_available()
    assert ok and why.startswith("Docker engine ")


def test_no_engine_names_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # docker-py leaks the socket of a failed connect
        ok, why = docker_available()
        assert not ok and "scripts/docker-up" in why
        with pytest.raises(SandboxError, match="scripts/docker-up"):
            DockerSandbox(None)
        gc.collect()


def test_missing_sdk_names_the_pip_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "docker", None)
    ok, why = docker_available()
    assert not ok and "pip install 'pytest-agentbench[docker]'" in why
    with pytest.raises(SandboxError, match=r"pytest-agentbench\[docker\]"):
        DockerSandbox(None)


# -- the base image --------------------------------------------------------------
def test_image_cache_hit_does_not_build(client: Any, base_image: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_build(script: Path) -> None:
        raise AssertionError(f"{script} ran although an image of this recipe exists")

    monkeypatch.setattr(image_mod, "run_build_script", no_build)
    started = time.monotonic()
    assert image_mod.ensure_base_image(client) == base_image
    assert time.monotonic() - started < 2
    image = client.images.get(base_image)
    assert image.labels[image_mod.RECIPE_LABEL] == image_mod.recipe_hash()
    assert image.attrs["Config"]["WorkingDir"] == "/workspace"
    assert image.attrs["Config"]["User"] == "agent"


def test_build_script_reuses_the_image(base_image: str) -> None:
    started = time.monotonic()
    done = subprocess.run([str(BUILD)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == base_image
    assert "nothing to build" in done.stderr
    assert time.monotonic() - started < 5


def test_build_script_waits_for_the_lock(base_image: str, tmp_path: Path) -> None:
    env = dict(os.environ, AGENTBENCH_LOCK_DIR=str(tmp_path))
    with open(tmp_path / "agentbench-base-image.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a concurrent builder would
        waiting = subprocess.Popen([str(BUILD)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        assert waiting.poll() is None, "the script did not wait for the lock"
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert out.strip() == base_image and "nothing to build" in err


def test_concurrent_callers_get_the_same_image(base_image: str) -> None:
    procs = [
        subprocess.Popen([str(BUILD)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)
    ]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0]
    assert outs == [base_image] * 3


@pytest.mark.parametrize(
    ("files", "mirror"),
    [
        (
            {
                "sources.list": "# c\ndeb-src http://src.example/debian bookworm main\n"
                "deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main contrib\n"
            },
            "http://one.example/debian",
        ),
        (
            {
                "sources.list": "deb http://old.example/debian bullseye main\n",
                "sources.list.d/extra.list": "deb http://two.example/debian bookworm main\n",
            },
            "http://two.example/debian",
        ),
        (
            {
                "sources.list.d/debian.sources": "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\n"
                "Enabled: no\n\n# a comment\nTypes: deb-src deb\n"
                "URIs: http://three.example/debian http://x.example/d\n"
                "Suites: bookworm bookworm-updates\nComponents: main\n"
            },
            "http://three.example/debian",
        ),
        (
            {
                "sources.list.d/security.sources": "Types: deb\nURIs: http://sec.example/debian-security\n"
                "Suites: bookworm-security\n",
                "sources.list.d/main.sources": "Types: deb\nURIs: https://four.example/debian\nSuites: bookworm\n",
                "sources.list.d/off.sources.disabled": "Types: deb\nURIs: http://no.example/d\nSuites: bookworm\n",
            },
            "https://four.example/debian",
        ),
    ],
    ids=["one-line", "list.d", "deb822", "deb822-suites"],
)
def test_mirror_is_read_from_the_apt_sources(tmp_path: Path, files: dict[str, str], mirror: str) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    env = dict(os.environ, AGENTBENCH_APT_DIR=str(tmp_path))
    env.pop("AGENTBENCH_DEBIAN_MIRROR", None)
    done = subprocess.run([str(BUILD), "--print-mirror"], capture_output=True, text=True, env=env, timeout=30)
    if "not a Debian machine" in done.stderr:
        pytest.skip(done.stderr.strip())
    assert (done.returncode, done.stdout.strip()) == (0, mirror), done.stderr


def test_no_mirror_names_the_fix(tmp_path: Path) -> None:
    env = dict(os.environ, AGENTBENCH_APT_DIR=str(tmp_path))
    env.pop("AGENTBENCH_DEBIAN_MIRROR", None)
    done = subprocess.run([str(BUILD), "--print-mirror"], capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode != 0
    assert "AGENTBENCH_DEBIAN_MIRROR" in done.stderr or "not a Debian machine" in done.stderr

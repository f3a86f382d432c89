"""Agent images (sandbox/agent_install.py, sandbox/docker/agent_image.py):
the install's checks, the recipe hash, the build script and its
context without Docker; with Docker, a real pip agent built with no network inside, its bin run as the agent,
its packages invisible to the gates' python3, the cache hit, one build under concurrency, the errors.

The slow build downloads one small pinned package (``cowsay``) through the host's own pip configuration; the
failure test runs pip with ``--no-index`` against an empty folder, so it reaches nothing.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.errors import ConfigError, SandboxError
from pytest_agentbench.sandbox import image as image_mod
from pytest_agentbench.sandbox.docker import agent_image as ai
from pytest_agentbench.sandbox.docker.agent_image import (
    AGENT_RECIPE_LABEL,
    AgentInstall,
    agent_image_ref,
    agent_recipe_hash,
    context_tar,
    ensure_agent_image,
    install_script,
    pip_fetch_argv,
)
from pytest_agentbench.sandbox.image import ensure_base_image

COWSAY = AgentInstall(name="agentbench-test-cowsay", pip=("cowsay==6.1",), bins=("cowsay",))
CODEX = AgentInstall(name="codex", npm=("@openai/codex@0.171.0",), bins=("codex",))


# -- the install's checks --------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pip": ("mini-swe-agent",)}, "'mini-swe-agent' is not pinned .* NAME==VERSION"),
        ({"pip": ("mini-swe-agent>=2",)}, "not pinned"),
        ({"pip": ("x @ https://example.invalid/x.whl",)}, "no URLs, paths or options"),
        ({"pip": ("--index-url=http://127.0.0.1:9/simple",)}, "not pinned"),
        ({"npm": ("@openai/codex",)}, "npm spec '@openai/codex' is not pinned .* NAME@X.Y.Z"),
        ({"npm": ("@openai/codex@^0.171.0",)}, "no ranges"),
        ({"npm": ("github:openai/codex",)}, "not pinned"),
        ({"npm": ("openai/codex",)}, "not pinned"),
        ({"pip": ("cowsay==6.1",), "bins": ("python3",)}, "bin 'python3' cannot be linked .*the gates"),
        ({"pip": ("cowsay==6.1",), "bins": ("pytest",)}, "bin 'pytest'"),
        ({"pip": ("cowsay==6.1",), "bins": ("../evil",)}, "plain file name"),
        ({"pip": ("cowsay==6.1",), "bins": ()}, "bins is empty"),
        ({"bins": ("x",)}, "nothing to install"),
    ],
)
def test_an_install_that_is_not_pinned_registry_only_or_safe_is_refused(kwargs: dict[str, Any], message: str) -> None:
    fields = {"bins": ("x",), **kwargs}
    with pytest.raises(ConfigError, match=f"agent install 'a': .*{message}"):
        AgentInstall(name="a", **fields)


def test_a_name_that_is_no_folder_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="agent install 'Mini Agent': name must be lower-case"):
        AgentInstall(name="Mini Agent", pip=("x==1",), bins=("x",))


def test_lists_become_tuples_so_an_install_hashes() -> None:
    install = AgentInstall(name="a", pip=["x==1"], bins=["x"])  # type: ignore[arg-type]
    assert install.pip == ("x==1",) and install.bins == ("x",)
    assert hash(install) == hash(AgentInstall(name="a", pip=("x==1",), bins=("x",)))


# -- the recipe hash -----------------------------------------------------------------
def test_the_recipe_hash_is_stable_and_changes_with_the_install_and_the_base() -> None:
    digest = agent_recipe_hash(COWSAY, "b" * 64)
    assert digest == agent_recipe_hash(AgentInstall(**vars(COWSAY)), "b" * 64)
    changed = [
        AgentInstall(name=COWSAY.name, pip=("cowsay==6.0",), bins=COWSAY.bins),
        AgentInstall(name=COWSAY.name, pip=COWSAY.pip, bins=("cowsay", "cowthink")),
        AgentInstall(name="other", pip=COWSAY.pip, bins=COWSAY.bins),
        AgentInstall(name=COWSAY.name, pip=COWSAY.pip, npm=("cowsay@1.6.0",), bins=COWSAY.bins),
    ]
    digests = {digest, agent_recipe_hash(COWSAY, "c" * 64), *(agent_recipe_hash(i, "b" * 64) for i in changed)}
    assert len(digests) == 2 + len(changed)
    assert agent_image_ref(COWSAY, digest) == f"agentbench-agent-agentbench-test-cowsay:{digest[:12]}"


def test_the_recipe_hash_covers_the_builder_code(monkeypatch: pytest.MonkeyPatch) -> None:
    before = agent_recipe_hash(COWSAY, "b" * 64)
    monkeypatch.setattr(ai, "_builder_digest", lambda: "0" * 64)
    assert agent_recipe_hash(COWSAY, "b" * 64) != before


# -- the install script and the context ------------------------------------------------
def _syntax_ok(script: str) -> None:
    done = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_pip_agent_gets_a_venv_without_pip_an_offline_install_and_only_its_bins() -> None:
    script = install_script(AgentInstall(name="mini", pip=("mini-swe-agent==2.4.6", "x[y]==1"), bins=("mini", "m2")))
    _syntax_ok(script)
    assert 'python3 -m venv --without-pip "$home"' in script and "home=/opt/agentbench/agents/mini" in script
    assert '"$home/bin/python" "$1/pip" install --no-index --find-links "$ctx/pip"' in script
    assert "mini-swe-agent==2.4.6 'x[y]==1'" in script  # quoted for the shell
    assert script.count("\nlink ") == 2 and "link mini\n" in script and "link m2\n" in script
    assert "dpkg" not in script and "npm" not in script
    assert script.rstrip().splitlines()[-2] == 'rm -rf "$ctx"'  # the downloads do not stay in the image


def test_an_npm_agent_gets_node_from_the_debs_and_its_tree() -> None:
    script = install_script(CODEX)
    _syntax_ok(script)
    assert 'dpkg -i "$ctx"/debs/*.deb' in script and 'cp -a "$ctx/npm/." "$home/"' in script
    assert "venv" not in script and "link codex\n" in script


def test_the_context_is_a_root_owned_tar_that_keeps_npm_bin_links(tmp_path: Path) -> None:
    (tmp_path / "pip").mkdir()
    (tmp_path / "pip" / "cowsay-6.1-py3-none-any.whl").write_bytes(b"zip")
    bin_dir = tmp_path / "npm" / "node_modules" / ".bin"
    bin_dir.mkdir(parents=True)
    (tmp_path / "npm" / "node_modules" / "codex.js").write_text("#!/usr/bin/env node\n")
    (bin_dir / "codex").symlink_to("../codex.js")
    out = io.BytesIO()
    context_tar({"pip": tmp_path / "pip", "npm": tmp_path / "npm"}, out)
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert "agentbench-install/pip/cowsay-6.1-py3-none-any.whl" in members
    link = members["agentbench-install/npm/node_modules/.bin/codex"]
    assert link.issym() and link.linkname == "../codex.js"
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())
    assert all(name.startswith("agentbench-install") for name in members)


def test_pip_builds_wheels_here_for_the_same_python_and_fetches_binaries_for_another(tmp_path: Path) -> None:
    same = "{}.{}".format(*sys.version_info[:2])
    argv = pip_fetch_argv(COWSAY, same, tmp_path)
    assert argv[:4] == [sys.executable, "-m", "pip", "wheel"] and argv[-2:] == ["cowsay==6.1", "pip"]
    other = pip_fetch_argv(COWSAY, "3.99", tmp_path)
    assert other[3] == "download" and "--only-binary=:all:" in other
    assert other[other.index("--python-version") + 1] == "3.99" and "cp399" in other
    plats = [other[i + 1] for i, a in enumerate(other) if a == "--platform"]
    assert "manylinux2014_x86_64" in plats or "manylinux2014_aarch64" in plats
    assert any(p.startswith("manylinux_2_") for p in plats) and other[-2:] == ["cowsay==6.1", "pip"]


# -- with Docker -------------------------------------------------------------------------
@pytest.fixture
def client(docker_engine: None) -> Iterator[Any]:
    from pytest_agentbench.sandbox.docker.engine import connect

    c = connect()
    yield c
    c.close()


@pytest.fixture
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Downloads and the lock in this test's folders, so every run downloads and builds afresh."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("AGENTBENCH_LOCK_DIR", str(tmp_path))
    return tmp_path / "cache" / "agentbench" / "agents"


def _remove_images(client: Any, install: AgentInstall) -> None:
    from pytest_agentbench.sandbox.image import recipe_hash

    digest = agent_recipe_hash(install, recipe_hash())
    for img in client.images.list(filters={"label": f"{AGENT_RECIPE_LABEL}={digest}"}):
        client.images.remove(img.id, force=True)


def _images_of(client: Any, install: AgentInstall) -> list[Any]:
    from pytest_agentbench.sandbox.image import recipe_hash

    return client.images.list(filters={"label": f"{AGENT_RECIPE_LABEL}={agent_recipe_hash(install, recipe_hash())}"})


@pytest.mark.docker
@pytest.mark.slow
def test_a_pip_agent_runs_as_the_agent_without_network_and_stays_out_of_the_gates_python(
    client: Any, own_cache: Path
) -> None:
    from pytest_agentbench.sandbox.docker import DockerSandbox

    _remove_images(client, COWSAY)
    started = time.monotonic()
    ref = ensure_agent_image(client, COWSAY)
    built_s = time.monotonic() - started
    started = time.monotonic()
    assert ensure_agent_image(client, COWSAY) == ref
    assert time.monotonic() - started < 1.0, "a second call must find the image, not build"
    assert len(_images_of(client, COWSAY)) == 1 and any(own_cache.glob("pip-agentbench-test-cowsay-*/cowsay-6.1-*"))
    assert image_mod.find_image(client, image_mod.recipe_hash()) == ensure_base_image(client)  # never the agent's
    assert client.images.get(ref).labels[image_mod.RECIPE_LABEL] == f"agent-on-{image_mod.recipe_hash()}"
    with DockerSandbox(image=ref, client=client) as sb, DockerSandbox(client=client) as base:
        said = sb.exec(["cowsay", "-t", "offline"], timeout=60)
        assert said.ok and "offline" in said.stdout, (built_s, said)
        assert sb.exec(["id", "-u"], timeout=30).stdout.strip() == "1000"
        assert sb.exec(["sh", "-c", "ls /sys/class/net"], timeout=30).stdout.split() == ["lo"]
        hidden = sb.exec(["python3", "-c", "import cowsay"], timeout=30)
        assert hidden.exit_code == 1 and "No module named 'cowsay'" in hidden.stderr
        gates = sb.exec(["python3", "-m", "pytest", "--version"], timeout=60)
        assert gates.ok and gates.output == base.exec(["python3", "-m", "pytest", "--version"], timeout=60).output
        assert sb.exec(["sh", "-c", "ls /tmp/agentbench-install 2>&1"], timeout=30).exit_code != 0
        assert sb.exec(["sh", "-c", "touch /usr/local/bin/x || touch /opt/agentbench/x"], timeout=30).exit_code != 0


@pytest.mark.docker
@pytest.mark.slow
def test_concurrent_callers_build_once_and_a_missing_bin_is_named(client: Any, own_cache: Path) -> None:
    install = AgentInstall(name="agentbench-test-cowsay-twice", pip=("cowsay==6.1",), bins=("cowsay",))
    _remove_images(client, install)
    refs: list[str] = []
    threads = [threading.Thread(target=lambda: refs.append(ensure_agent_image(client, install))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(refs) == 2 and refs[0] == refs[1] and len(_images_of(client, install)) == 1
    wrong = AgentInstall(name="agentbench-test-cowsay-twice", pip=("cowsay==6.1",), bins=("cowsy",))
    with pytest.raises(SandboxError, match=r"(?s)agent agentbench-test-cowsay-twice: installing cowsay==6.1 .*"
                       r"provides no executable cowsy .*fix: set the agent's bins"):  # fmt: skip
        ensure_agent_image(client, wrong)
    assert not _images_of(client, wrong)
    assert not client.containers.list(all=True, filters={"name": "agentbench-agent-build-"})


@pytest.mark.docker
@pytest.mark.slow
def test_a_new_recipe_of_an_agent_removes_its_older_image(client: Any, own_cache: Path) -> None:
    old = AgentInstall(name="agentbench-test-cowsay-upgrade", pip=("cowsay==6.0",), bins=("cowsay",))
    new = AgentInstall(name="agentbench-test-cowsay-upgrade", pip=("cowsay==6.1",), bins=("cowsay",))
    old_ref = ensure_agent_image(client, old)
    assert _images_of(client, old)
    new_ref = ensure_agent_image(client, new)
    assert new_ref != old_ref and _images_of(client, new) and not _images_of(client, old)


@pytest.mark.docker
@pytest.mark.slow
def test_an_npm_agent_gets_debian_node_and_its_bins_without_network(client: Any, own_cache: Path) -> None:
    from pytest_agentbench.sandbox.docker import DockerSandbox

    install = AgentInstall(name="agentbench-test-npm-cowsay", npm=("cowsay@1.6.0",), bins=("cowsay", "cowthink"))
    _remove_images(client, install)
    ref = ensure_agent_image(client, install)
    assert any(own_cache.glob("debs-*/nodejs_*.deb")) and any(own_cache.glob("npm-agentbench-test-npm-cowsay-*"))
    with DockerSandbox(image=ref, client=client) as sb:
        node = sb.exec(["node", "--version"], timeout=30)
        assert node.ok and int(node.stdout.strip().lstrip("v").split(".")[0]) >= 18  # what codex / claude need
        thought = sb.exec(["cowthink", "offline"], timeout=60)
        assert thought.ok and "offline" in thought.stdout, thought
        assert sb.exec(["sh", "-c", "readlink /usr/local/bin/cowsay"], timeout=30).stdout.strip() == (
            "/opt/agentbench/agents/agentbench-test-npm-cowsay/node_modules/.bin/cowsay"
        )


@pytest.mark.docker
def test_a_package_the_index_lacks_is_named_with_the_log_and_the_fix(
    client: Any, own_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "empty-index").mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # nothing leaves the machine: pip looks only in an empty folder
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "empty-index"))
    missing = AgentInstall(name="agentbench-test-missing", pip=("agentbench-no-such-agent==0.0.1",), bins=("x",))
    with pytest.raises(SandboxError) as caught:
        ensure_agent_image(client, missing)
    text = str(caught.value)
    assert text.startswith("agent agentbench-test-missing: downloading agentbench-no-such-agent==0.0.1 failed: ")
    assert "-m pip wheel" in text and "No matching distribution found for agentbench-no-such-agent==0.0.1" in text
    assert "fix: check that each requirement is pinned to a release the configured index has" in text
    assert "Traceback" not in text
    assert not own_cache.exists() or not any(own_cache.iterdir()), "a failed download must leave no cache folder"
    assert not client.containers.list(all=True, filters={"name": "agentbench-agent-build-"})

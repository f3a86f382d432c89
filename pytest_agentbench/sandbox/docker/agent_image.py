"""Agent images: ``agentbench-base`` with one external agent CLI installed, built offline, cached by recipe.

An :class:`AgentInstall` says what an adapter needs (pinned pip requirements and/or npm packages, and the
executables it provides); :func:`ensure_agent_image` returns a reference to an image of the current base
with that agent in it, building one when none of this recipe exists on the engine.

Where things come from. Nothing is downloaded inside the image build, and nothing from anywhere but this
machine's configured registries through their ordinary clients, run here on the host:

- pip: the host's ``python -m pip wheel`` (its own index / find-links configuration and cache) fetches
  the wheels of the pinned requirements and of pip itself; sdists are built here. When the Python that
  runs this differs in minor version from the image's ``python3``, ``pip download --only-binary=:all:``
  with the image's Python version, ABI and platform fetches wheels for it instead.
- npm: the host's ``npm install --prefix DIR SPEC`` (its registry configuration and cache); native
  parts come as the packages' own platform packages. ``node`` comes from Debian's ``nodejs`` package:
  the host's ``apt-get`` resolves it against the base image's own dpkg status (so only what the image
  lacks) and downloads the ``.deb`` files from the apt sources the base image was made from.

Those folders are kept under ``$XDG_CACHE_HOME/agentbench/agents/`` (default ``~/.cache``) by the
install's hash (the .debs by the image's dpkg status), so a rebuild after a base-image change downloads
nothing again.

How it is built. A container of the base image with ``network_mode=none`` gets the folders by
``put_archive``, runs :func:`install_script` as root (``dpkg -i`` of the .debs; a venv at
``/opt/agentbench/agents/<name>`` made ``--without-pip`` and filled by pip run from its own wheel with
``--no-index``; the npm tree copied there), links each of ``bins`` into ``/usr/local/bin``, deletes the
folders and is committed as ``agentbench-agent-<name>:<hash12>`` with ``USER agent`` and the label
``agentbench.agent-recipe=<hash>``. One layer; the wheels and .debs do not stay in the image. The same works
on a remote engine (the folders are sent through the API). The hash covers the base recipe, the install
and this module's source. A file lock per agent (``$AGENTBENCH_LOCK_DIR``, default /tmp) makes concurrent
xdist workers build once; a cached image is found by its label in milliseconds.

Isolation from the gates: the venv is not on the system ``python3``'s path (the gates' ``python -m
pytest`` sees only the base image's packages), and only the declared bins are linked, never a name the
gates or packets call (:data:`RESERVED_BINS`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import io
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pytest_agentbench.errors import SandboxError
from pytest_agentbench.sandbox.agent_install import RESERVED_BINS, AgentInstall
from pytest_agentbench.sandbox.docker.engine import remove_container, sdk_errors
from pytest_agentbench.sandbox.image import RECIPE_LABEL, ensure_base_image, recipe_hash

__all__ = [
    "AGENTS_DIR",
    "AGENT_NAME_LABEL",
    "AGENT_RECIPE_LABEL",
    "CONTEXT_DIR",
    "RESERVED_BINS",
    "AgentInstall",
    "agent_image_ref",
    "agent_recipe_hash",
    "cache_dir",
    "context_tar",
    "ensure_agent_image",
    "install_script",
    "pip_fetch_argv",
]

AGENTS_DIR = "/opt/agentbench/agents"
#: Where the downloaded folders lie inside the build container (deleted before the commit).
CONTEXT_DIR = "/tmp/agentbench-install"
AGENT_RECIPE_LABEL = "agentbench.agent-recipe"
AGENT_NAME_LABEL = "agentbench.agent"
IMAGE_PREFIX = "agentbench-agent-"
#: Seconds one download or the install step may take (mini-swe-agent with LiteLLM: ~1-2 min here).
DOWNLOAD_TIMEOUT_S = 900
INSTALL_TIMEOUT_S = 900
#: Bump when what the host downloads for an install changes (the folder cache is keyed by it).
DOWNLOAD_FORMAT = 1


# -- recipe and reference ------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _builder_digest() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def agent_recipe_hash(install: AgentInstall, base_digest: str) -> str:
    """sha256 of (the base image's recipe hash, the install, this builder's source)."""
    payload = {"base": base_digest, "install": dataclasses.asdict(install), "builder": _builder_digest()}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def agent_image_ref(install: AgentInstall, digest: str) -> str:
    return f"{IMAGE_PREFIX}{install.name}:{digest[:12]}"


def _find_image(client: Any, install: AgentInstall, digest: str) -> str | None:
    with sdk_errors(f"looking up the image of agent {install.name}"):
        images = client.images.list(filters={"label": f"{AGENT_RECIPE_LABEL}={digest}"})
    if not images:
        return None
    wanted = agent_image_ref(install, digest)
    return wanted if any(wanted in img.tags for img in images) else str(images[0].id)


def ensure_agent_image(client: Any, install: AgentInstall, docker_host: str | None = None) -> str:
    """A reference to an image of the current ``agentbench-base`` with ``install`` in it on ``client``'s
    engine (``docker_host``: its address when not the environment's), built there if none exists."""
    base_ref = ensure_base_image(client, docker_host)
    base_digest = recipe_hash()
    digest = agent_recipe_hash(install, base_digest)
    ref = _find_image(client, install, digest)
    if ref is not None:
        return ref
    with _build_lock(install.name):
        ref = _find_image(client, install, digest)  # another worker may have built it while we waited
        if ref is None:
            _build(client, install, base_ref, base_digest, digest)
            ref = _find_image(client, install, digest)
            _prune_older(client, install, digest)
    if ref is None:
        raise SandboxError(f"agent {install.name}: built, but no image labelled {AGENT_RECIPE_LABEL}={digest[:12]}...")
    return ref


def _prune_older(client: Any, install: AgentInstall, digest: str) -> None:
    """Remove this agent's images of other recipes (an older version, builder or base): each is ~1 GB. One a
    container still uses, or that another tag holds, stays (the engine refuses); never fail a build on it."""
    for image in client.images.list(filters={"label": f"{AGENT_NAME_LABEL}={install.name}"}):
        if (image.labels or {}).get(AGENT_RECIPE_LABEL) != digest:
            with contextlib.suppress(SandboxError), sdk_errors(f"removing an older image of agent {install.name}"):
                client.images.remove(image.id)


@contextlib.contextmanager
def _build_lock(name: str) -> Iterator[None]:
    folder = Path(os.environ.get("AGENTBENCH_LOCK_DIR") or "/tmp")
    with open(folder / f"agentbench-agent-{name}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# -- the build -------------------------------------------------------------------
def _build(client: Any, install: AgentInstall, base_ref: str, base_digest: str, digest: str) -> None:
    """Install into a network-less container of ``base_ref`` and commit it as the agent's image. The base's
    recipe label is overwritten (``agent-on-<base hash>``): a lookup of the base never finds an agent image,
    and ``build-base-image`` prunes agent images of an older base with it."""
    name = f"agentbench-agent-build-{install.name}"
    remove_container(client, name)  # a build a killed process left behind
    with sdk_errors(f"creating the build container of agent {install.name}"):
        container = client.containers.create(
            base_ref,
            command=["sh", "-c", install_script(install)],
            name=name,
            user="root",
            network_mode="none",
            working_dir="/",
            security_opt=["no-new-privileges"],
        )
    try:
        folders = _fetch(install, container)
        with tempfile.TemporaryFile() as tar:
            context_tar(folders, tar)
            tar.seek(0)
            with sdk_errors(f"copying the downloads of agent {install.name} into the build container"):
                container.put_archive("/tmp", tar)
        _run_install(container, install)
        with sdk_errors(f"committing the image of agent {install.name}"):
            container.commit(
                repository=f"{IMAGE_PREFIX}{install.name}",
                tag=digest[:12],
                changes=[
                    "USER agent",
                    "WORKDIR /workspace",
                    'CMD ["sleep", "infinity"]',
                    f"LABEL {AGENT_RECIPE_LABEL}={digest} {AGENT_NAME_LABEL}={install.name} "
                    f"{RECIPE_LABEL}=agent-on-{base_digest}",
                ],
            )
    finally:
        remove_container(client, container.id)


def _run_install(container: Any, install: AgentInstall) -> None:
    import requests

    with sdk_errors(f"running the install of agent {install.name}"):
        container.start()
        try:
            code = container.wait(timeout=INSTALL_TIMEOUT_S).get("StatusCode", -1)
        except requests.exceptions.ConnectionError:  # the SDK's read timeout
            container.kill()
            code = None
        log = container.logs(stdout=True, stderr=True).decode(errors="replace")
    if code == 0:
        return
    what = f"ran over {INSTALL_TIMEOUT_S}s" if code is None else f"exit {code}"
    if "provides no executable" in log:
        fix = f"set the agent's bins to executables the package installs (bins={list(install.bins)})"
    else:
        fix = (
            "the install runs with no network from the host's downloads; if pip found no matching wheel, the host's "
            "Python and the image's python3 differ in a way pip cannot bridge: run pytest under the image's Python"
        )
    raise SandboxError(
        f"agent {install.name}: installing {_specs(install)} into the image failed ({what}):\n{_tail(log)}\nfix: {fix}"
    )


def install_script(install: AgentInstall) -> str:
    """The shell script the build container runs as root: node from the .debs (npm agents), the venv and
    pip install (pip agents), the npm tree, the bins linked into /usr/local/bin, the downloads removed."""
    q = shlex.quote
    home = f"{AGENTS_DIR}/{install.name}"
    lines = [
        "set -eu",
        f"ctx={CONTEXT_DIR}",
        f"home={q(home)}",
        "say() { printf 'agent-image: %s\\n' \"$*\"; }",
        'mkdir -p "$home"',
    ]
    if install.npm:
        lines += [
            "say 'node: dpkg -i' $(ls \"$ctx/debs\")",
            'dpkg -i "$ctx"/debs/*.deb >/tmp/dpkg.log 2>&1 || { tail -n 30 /tmp/dpkg.log; exit 1; }',
            'say "node $(node --version)"',
            'cp -a "$ctx/npm/." "$home/"',
        ]
    if install.pip:
        specs = " ".join(q(s) for s in install.pip)
        lines += [
            'python3 -m venv --without-pip "$home"',
            'set -- "$ctx"/pip/pip-*.whl',
            '"$home/bin/python" "$1/pip" install --no-index --find-links "$ctx/pip" --no-cache-dir '
            f"--disable-pip-version-check --no-warn-script-location --progress-bar off {specs}",
        ]
    lines.append(
        'link() { for c in "$home/bin/$1" "$home/node_modules/.bin/$1"; do '
        'if [ -x "$c" ]; then ln -s "$c" "/usr/local/bin/$1"; say "bin $1 -> $c"; return 0; fi; done; '
        f'say "error: agent {install.name} provides no executable $1 (looked in $home/bin and '
        '$home/node_modules/.bin)"; exit 3; }'
    )
    lines += [f"link {q(b)}" for b in install.bins]
    lines += ['rm -rf "$ctx"', 'chmod -R a+rX "$home"']
    return "\n".join(lines) + "\n"


def context_tar(folders: dict[str, Path], out: Any) -> None:
    """Write ``folders`` (``pip`` / ``npm`` / ``debs`` -> a host folder) as a tar of
    ``agentbench-install/<key>/...`` owned by root, symlinks kept (npm's ``.bin`` links)."""
    top = Path(CONTEXT_DIR).name

    def owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        return info

    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = owned(tarfile.TarInfo(top))
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        for key in sorted(folders):
            tar.add(str(folders[key]), arcname=f"{top}/{key}", filter=owned)


# -- host-side downloads ----------------------------------------------------------
def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/agentbench/agents`` (default ``~/.cache``): the downloaded folders, by hash."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "agentbench" / "agents"


def _fetch(install: AgentInstall, container: Any) -> dict[str, Path]:
    """The host folders for the build: ``pip`` (wheels), ``npm`` (an installed prefix), ``debs`` (node)."""
    folders: dict[str, Path] = {}
    if install.pip:
        target = _image_python(container, install)
        key = _download_key(install, "pip", target)
        folders["pip"] = _cached(key, lambda tmp: _pip_fetch(install, target, tmp))
    if install.npm:
        status = _read_file(container, "/var/lib/dpkg/status", install)
        folders["debs"] = _cached(
            f"debs-{hashlib.sha256(status).hexdigest()[:16]}", lambda tmp: _apt_fetch(install, status, tmp)
        )
        folders["npm"] = _cached(_download_key(install, "npm", ""), lambda tmp: _npm_fetch(install, tmp))
    return folders


def _download_key(install: AgentInstall, kind: str, extra: str) -> str:
    specs = install.pip if kind == "pip" else install.npm
    text = json.dumps([DOWNLOAD_FORMAT, kind, list(specs), extra])
    return f"{kind}-{install.name}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def _cached(key: str, make: Any) -> Path:
    """``cache_dir()/key``, made by ``make(tmp_folder)`` into a temporary sibling and renamed when complete."""
    final = cache_dir() / key
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=final.parent))
    try:
        make(tmp)
        try:
            tmp.rename(final)
        except OSError:  # another process finished first: use its folder
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _read_file(container: Any, path: str, install: AgentInstall) -> bytes:
    with sdk_errors(f"reading {path} of the base image for agent {install.name}"):
        stream, _ = container.get_archive(path)
        data = b"".join(stream)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        member = tar.next()
        if member is None:
            raise SandboxError(f"agent {install.name}: {path} is missing from the base image")
        if member.issym():
            return member.linkname.encode()
        handle = tar.extractfile(member)
        return handle.read() if handle else b""


def _image_python(container: Any, install: AgentInstall) -> str:
    """The image's python3 version, ``3.11``, from its ``/usr/bin/python3 -> python3.11`` link (Debian's)."""
    link = _read_file(container, "/usr/bin/python3", install).decode(errors="replace")
    found = re.fullmatch(r"(?:.*/)?python(3\.\d+)", link)
    return found.group(1) if found else "{}.{}".format(*sys.version_info[:2])


def pip_fetch_argv(install: AgentInstall, target: str, dest: Path) -> list[str]:
    """The host's pip command that puts wheels for ``install`` (and pip) into ``dest``: ``pip wheel`` when
    this Python is the image's minor version, else binary-only ``pip download`` for the image's Python."""
    base = [sys.executable, "-m", "pip"]
    common = ["--disable-pip-version-check", "--progress-bar", "off", *install.pip, "pip"]  # pip: runs the install
    if target == "{}.{}".format(*sys.version_info[:2]):
        return [*base, "wheel", "--wheel-dir", str(dest), *common]
    nodot = target.replace(".", "")
    glibc = os.confstr("CS_GNU_LIBC_VERSION") or "glibc 2.17"  # the image is this machine's Debian release
    minor = int(glibc.split()[-1].split(".")[1])
    arch = platform.machine()
    tags = [f"manylinux_2_{n}_{arch}" for n in range(minor, 4, -1)]
    tags += [f"manylinux2014_{arch}", f"manylinux2010_{arch}", f"manylinux1_{arch}", f"linux_{arch}"]
    plats = [arg for tag in tags for arg in ("--platform", tag)]
    return [
        *base,
        "download",
        "--dest",
        str(dest),
        "--only-binary=:all:",
        "--python-version",
        target,
        "--implementation",
        "cp",
        "--abi",
        f"cp{nodot}",
        "--abi",
        "abi3",
        "--abi",
        "none",
        *plats,
        *common,
    ]


def _pip_fetch(install: AgentInstall, target: str, dest: Path) -> None:
    argv = pip_fetch_argv(install, target, dest)
    _host_run(
        argv,
        install,
        fix="check that each requirement is pinned to a release the configured index has "
        "(`pip index versions NAME`) and that `pip config list` points at a reachable index"
        + (
            ""
            if argv[3] == "wheel"
            else f"; a package without a wheel for Python {target} needs pytest run "
            f"under Python {target} so it can be built here"
        ),
    )


def _npm_fetch(install: AgentInstall, dest: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise SandboxError(
            f"agent {install.name}: npm packages {_specs(install)} need npm on this machine: "
            "install it (apt-get install npm, or Node.js's own installer) and run again"
        )
    argv = [npm, "install", "--prefix", str(dest), "--omit=dev", "--no-audit", "--no-fund", "--no-save",
            *install.npm]  # fmt: skip
    fix = "check the spec exists (`npm view NAME@VERSION version`) and `npm config get registry`"
    _host_run(argv, install, fix=fix)


def _apt_fetch(install: AgentInstall, status: bytes, dest: Path) -> None:
    """Debian's nodejs and what the image lacks of its dependencies, resolved against the image's status."""
    if shutil.which("apt-get") is None:
        raise SandboxError(
            f"agent {install.name}: node for {_specs(install)} comes from Debian's nodejs package, "
            "but this machine has no apt-get: build npm agents on a Debian machine (as the base image)"
        )
    status_file = dest / ".dpkg-status"
    status_file.write_bytes(status)
    (dest / "partial").mkdir()
    argv = ["apt-get", "install", "--download-only", "--yes", "--no-install-recommends", "-q",
            "-o", f"Dir::State::status={status_file}", "-o", f"Dir::Cache::archives={dest}",
            "-o", "Debug::NoLocking=1", "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=",
            "nodejs"]  # fmt: skip
    _host_run(argv, install, fix="run `apt-get update` (the package lists may be missing or stale) and again")
    status_file.unlink()
    shutil.rmtree(dest / "partial", ignore_errors=True)
    (dest / "lock").unlink(missing_ok=True)
    if not any(dest.glob("nodejs_*.deb")):
        raise SandboxError(f"agent {install.name}: apt-get downloaded no nodejs .deb into {dest}")


def _host_run(argv: Sequence[str], install: AgentInstall, fix: str) -> None:
    shown = " ".join(shlex.quote(a) for a in argv)
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise SandboxError(f"agent {install.name}: `{shown}` ran over {DOWNLOAD_TIMEOUT_S}s: {fix}")
    except OSError as exc:
        raise SandboxError(f"agent {install.name}: could not run `{shown}`: {exc}")
    if done.returncode != 0:
        log = (done.stdout or "") + "\n" + (done.stderr or "")
        raise SandboxError(
            f"agent {install.name}: downloading {_specs(install)} failed: `{shown}` exit {done.returncode}:\n"
            f"{_tail(log)}\nfix: {fix}"
        )


def _specs(install: AgentInstall) -> str:
    return ", ".join([*install.pip, *install.npm])


def _tail(text: str, lines: int = 15) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:])

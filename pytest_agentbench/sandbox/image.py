"""The sandbox base image, built locally without a registry.

``scripts/build-base-image`` does the building (debootstrap of this machine's
Debian release, ``docker import``) and holds the recipe; this module finds an
image of the current recipe by its label, or runs the script. The script takes
a file lock, so concurrent callers (xdist workers) build once and share.

On a remote engine (``--docker-host`` / ``$DOCKER_HOST``) the image is looked up
there and, when missing, built for it: the script runs here (debootstrap needs
root and a Debian machine) with ``DOCKER_HOST`` set, so ``docker import`` sends
the root file system to that engine; nothing is pulled from a registry.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

from pytest_agentbench._checkout import CHECKOUT
from pytest_agentbench.errors import SandboxError

IMAGE_REPO = "agentbench-base"
RECIPE_LABEL = "agentbench.recipe"
#: Seconds a build may take (debootstrap is ~1 min, up to ~2 on a busy machine).
BUILD_TIMEOUT_S = 900


def script_path(name: str) -> Path:
    """A script of the checkout's ``scripts/`` (``$AGENTBENCH_SCRIPTS_DIR`` overrides the folder)."""
    folder = os.environ.get("AGENTBENCH_SCRIPTS_DIR") or CHECKOUT / "scripts"
    path = Path(folder) / name
    if not path.is_file():
        raise SandboxError(
            f"{name} is not at {path}: run from a checkout of pytest-agentbench or set AGENTBENCH_SCRIPTS_DIR "
            "to its scripts/ folder (or pass an existing image to DockerSandbox(image=...))"
        )
    return path


def build_script() -> Path:
    """Where ``build-base-image`` is."""
    return script_path("build-base-image")


def recipe_hash(script: Path | None = None) -> str:
    """sha256 of the build script: the package list and every step live in it."""
    return hashlib.sha256((script or build_script()).read_bytes()).hexdigest()


def image_ref(digest: str) -> str:
    return f"{IMAGE_REPO}:{digest[:12]}"


def find_image(client: Any, digest: str) -> str | None:
    """The reference of an image built from recipe ``digest``, or None."""
    images = client.images.list(filters={"label": f"{RECIPE_LABEL}={digest}"})
    if not images:
        return None
    wanted = image_ref(digest)
    tags = [t for img in images for t in img.tags]
    return wanted if wanted in tags else str(images[0].id)


def run_build_script(script: Path, docker_host: str | None = None) -> None:
    """Run the script (it locks, re-checks the cache, builds) for the engine at ``docker_host`` (None: the
    environment's); SandboxError with its log tail on failure."""
    env = dict(os.environ)
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    try:
        done = subprocess.run([str(script)], capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        raise SandboxError(f"{script} ran over {BUILD_TIMEOUT_S}s: run it by hand to see where it hangs")
    except OSError as exc:
        raise SandboxError(f"could not run {script}: {exc} (is it executable? chmod +x it)")
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        target = f" for the engine at {docker_host}" if docker_host else ""
        raise SandboxError(
            f"{script} failed{target} (exit {done.returncode}):\n{tail}\nfix the cause, then run it again"
            + (f" (DOCKER_HOST={docker_host} {script})" if docker_host else "")
        )


def ensure_base_image(client: Any, docker_host: str | None = None) -> str:
    """Return a reference to ``agentbench-base`` of the current recipe on ``client``'s engine, building it there
    if needed; ``docker_host`` is that engine's address when it is not the environment's."""
    script = build_script()
    digest = recipe_hash(script)
    ref = find_image(client, digest)
    if ref is not None:
        return ref
    run_build_script(script, docker_host)
    ref = find_image(client, digest)
    if ref is None:
        raise SandboxError(f"{script} succeeded but no image labelled {RECIPE_LABEL}={digest[:12]}... exists")
    return ref

"""The ``docker`` sandbox: one container per run, no network, limits, non-root.

One container is created per sandbox (never per command) from the locally
built ``agentbench-base`` image (see :mod:`pytest_agentbench.sandbox.image`):
``network_mode=none``, memory (no swap), CPU and pids limits, every capability
dropped, ``no-new-privileges``, uid 1000, an init process, ``sleep infinity``.
The workspace is copied in with ``put_archive`` and made a git repo with one
commit, as the local backend does, so ``git diff`` shows the agent's change.

Every command runs as ``timeout -k 2 T sh -c WRAPPER argv...`` (see
:data:`.shell.WRAPPER`): the command gets its own process group, killed whole
when it ends or times out, so no background child outlives it; its output is
capped *inside* the container (first and last ``output_cap // 2`` bytes of
each stream, as the local backend keeps them) so a flood never crosses the
engine. A host-side deadline backs this up: if the stream is still open well
after ``T``, the container is killed and restarted (files kept, processes
gone) and the result says ``timed_out``. Files are read and written by
commands run as the agent, after resolving symlinks inside the container: a
path that ends up outside /workspace is refused with ``PathRefused``.

Containers are labelled with the run id, the owning pid and host:
:func:`.engine.reap_stale_containers` removes those whose owner died (a killed
pytest), and each process reaps once before its first sandbox.

The modules: :mod:`.engine` (the SDK, the engine, stale containers),
:mod:`.stream` (one exec's stream), :mod:`.shell` (the shell code run in the
container) and :mod:`.sandbox` (:class:`DockerSandbox`).
The ``docker`` SDK is imported lazily: ``pip install 'pytest-agentbench[docker]'``.
"""

from __future__ import annotations

from pytest_agentbench.sandbox.docker.engine import docker_available, start_engine
from pytest_agentbench.sandbox.docker.sandbox import DockerSandbox

__all__ = ["DockerSandbox", "docker_available", "start_engine"]

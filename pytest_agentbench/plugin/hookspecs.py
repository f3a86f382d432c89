"""Hook specifications of pytest-agentbench (the defaults are in plugin/fixtures.py).

A conftest.py can implement these to replace the defaults, e.g. to run the
agent in another sandbox or through a custom client.
"""

from __future__ import annotations

from typing import Any

import pytest


@pytest.hookspec(firstresult=True)
def pytest_agentbench_make_sandbox(packet: Any, settings: Any, agent: Any, gateway_socket: Any) -> Any:
    """Return a new Sandbox holding a copy of ``packet.workspace`` for one run.

    ``agent`` is the run's external agent adapter (``agents.external``; None: the built-in loop): its
    ``install`` must be in the sandbox's image; ``gateway_socket`` (None for the built-in loop) is the
    measuring gateway's agent socket, which the sandbox must mount (``sandbox.base.GATEWAY_DIR``).
    """


@pytest.hookspec(firstresult=True)
def pytest_agentbench_make_adapter(spec: Any, base_url: str) -> Any:
    """Return the model client for one run of ``spec``.

    It follows the ``agents.loop.Model`` protocol: ``complete(messages, tools, ...)`` and ``close()``.
    """


def pytest_agentbench_run_done(record: Any, item: Any) -> None:
    """Called after each packet run with its RunRecord (results, reports, ...)."""

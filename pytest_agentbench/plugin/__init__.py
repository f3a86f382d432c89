"""The pytest skin: options, packet collection, parametrization, fixtures, hooks.

Every task packet found under ``--packets`` becomes ``test_packet[<packet>-<alias>]``
for each alias in ``--models``. This package is the ``pytest11`` entry point; the hook
implementations live in one module per concern and are gathered here so pytest finds them:

    options.py     ``--models`` & co. and their ini keys -> the frozen Settings
    session.py     the session object: aliases, servers (the controller owns them), results folder
    collection.py  ``packet.yaml`` -> a module; parametrization over aliases; ``--resume``
    fixtures.py    ``agentbench_run`` (one run + its metrics) and the default hook implementations
    reporting.py   report header, failure texts, the terminal summary, the session JSON
    progress.py    live progress: the status line / progress lines, xdist workers' progress files
    gate.py        the regression gate (``--agentbench-gate``): its verdict after the run and the exit status
    ray.py         ``--ray ADDRESS``: every trial a Ray task on a cluster, each item waiting for its own
    hookspecs.py   our hook specifications (``pytest_agentbench_*``)

Heavy imports (docker, junitparser, ray) stay inside the functions that need them, so
``import pytest_agentbench.plugin`` is cheap.
"""

from __future__ import annotations

from pytest_agentbench.plugin.collection import (
    pytest_collect_file,
    pytest_collection_modifyitems,
    pytest_generate_tests,
    pytest_ignore_collect,
)
from pytest_agentbench.plugin.fixtures import (
    agentbench_case,
    agentbench_run,
    agentbench_settings,
    pytest_agentbench_make_adapter,
    pytest_agentbench_make_sandbox,
    pytest_agentbench_run_done,
)
from pytest_agentbench.plugin.gate import pytest_configure_gates
from pytest_agentbench.plugin.options import pytest_addhooks, pytest_addoption
from pytest_agentbench.plugin.ray import pytest_configure_ray
from pytest_agentbench.plugin.reporting import pytest_report_header, pytest_runtest_makereport, pytest_terminal_summary
from pytest_agentbench.plugin.session import pytest_configure, pytest_sessionfinish, pytest_unconfigure

__all__ = [
    "agentbench_case",
    "agentbench_run",
    "agentbench_settings",
    "pytest_addhooks",
    "pytest_addoption",
    "pytest_agentbench_make_adapter",
    "pytest_agentbench_make_sandbox",
    "pytest_agentbench_run_done",
    "pytest_collect_file",
    "pytest_collection_modifyitems",
    "pytest_configure",
    "pytest_configure_gates",
    "pytest_configure_ray",
    "pytest_generate_tests",
    "pytest_ignore_collect",
    "pytest_report_header",
    "pytest_runtest_makereport",
    "pytest_sessionfinish",
    "pytest_terminal_summary",
    "pytest_unconfigure",
]

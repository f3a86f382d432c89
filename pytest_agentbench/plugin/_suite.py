"""The test module behind every collected ``packet.yaml`` (see plugin.PacketModule).

``test_packet`` is parametrized over (packet, alias) in ``pytest_generate_tests``;
the run itself happens in the ``agentbench_run`` fixture (so infrastructure
failures are *errors*), and the gates are asserted here (so a missed gate is a
*failure*).
"""

from __future__ import annotations

from typing import Any


def test_packet(agentbench_run: Any) -> None:
    from pytest_agentbench.plugin import check_run

    check_run(agentbench_run)

"""The test module behind every collected ``packet.yaml`` (see plugin.collection.PacketModule).

``test_packet`` is parametrized over (packet, alias) in ``pytest_generate_tests``;
the run itself happens in the ``agentbench_run`` fixture (so infrastructure
failures are *errors*), and the gates are asserted here (so a missed gate is a
*failure*).
"""

from __future__ import annotations

from typing import Any

from pytest_agentbench.packets.gates import assert_run


def test_packet(agentbench_run: Any) -> None:
    assert_run(agentbench_run)

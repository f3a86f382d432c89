"""The run record: what one finished trial (packet x alias) produced, and its JUnit properties. pytest-free.

A :class:`RunRecord` holds the packet, the alias's spec, the agent's result,
the gate results, the sandbox's description and the wall time of one run;
:meth:`RunRecord.properties` flattens it into the ``agentbench.*`` JUnit
properties a packet test sets, and :func:`new_run_id` names a run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from pytest_agentbench.agents.loop import AgentResult
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.packets.gates import GateResult
from pytest_agentbench.packets.schema import Packet
from pytest_agentbench.reports.stats import median
from pytest_agentbench.sandbox.base import SandboxInfo

__all__ = ["RunRecord", "new_run_id"]


@dataclass
class RunRecord:
    run_id: str
    packet: Packet
    spec: ModelSpec
    agent: AgentResult
    gates: list[GateResult]
    sandbox: SandboxInfo
    wall_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)

    def properties(self) -> list[tuple[str, str | int | float | bool]]:
        """JSON-primitive ``agentbench.*`` properties for JUnit ``<properties>``."""
        usage = self.agent.usage
        props: list[tuple[str, str | int | float | bool]] = [
            ("agentbench.run_id", self.run_id),
            ("agentbench.packet", self.packet.id),
            ("agentbench.kind", self.packet.kind),
            ("agentbench.alias", self.spec.alias),
            ("agentbench.model", self.spec.model),
            ("agentbench.test_double", self.spec.test_double),
            ("agentbench.outcome", self.agent.outcome),
            ("agentbench.failure", self.agent.failure or ""),
            ("agentbench.passed", self.passed),
            ("agentbench.gates_passed", sum(g.passed for g in self.gates)),
            ("agentbench.gates_total", len(self.gates)),
            ("agentbench.gates_failed", ",".join(g.id for g in self.gates if not g.passed)),
            ("agentbench.turns", len(self.agent.turns)),
            ("agentbench.wall_s", round(self.wall_s, 4)),
            ("agentbench.agent_wall_s", round(self.agent.wall_s, 4)),
            ("agentbench.prompt_tokens", usage.prompt_tokens),
            ("agentbench.completion_tokens", usage.completion_tokens),
            ("agentbench.cached_tokens", usage.cached_tokens),
            ("agentbench.usage_reported", usage.reported),
            ("agentbench.failures", ",".join(f"{k}:{v}" for k, v in sorted(self.agent.failures_by_class().items()))),
            ("agentbench.invalid_tool_calls", self.agent.invalid_tool_calls),
            ("agentbench.ttft_p50_s", _median([t.ttft_s for t in self.agent.turns if t.ttft_s is not None])),
            ("agentbench.sandbox", self.sandbox.kind),
            ("agentbench.isolation", self.sandbox.isolation),
        ]
        return props


def _median(values: list[float]) -> float | str:
    """The median, or "n/a" where nothing was measured (e.g. TTFT without streaming)."""
    p50 = median(values)
    return "n/a" if p50 is None else round(p50, 6)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]

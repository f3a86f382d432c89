"""One run: a packet, an alias, a sandbox -> a :class:`RunRecord`. pytest-free.

The agent works in the sandbox, then the gates run in the same sandbox; the
sandbox is closed on every path. Model failures are part of the record;
sandbox failures propagate as :class:`~pytest_agentbench.errors.SandboxError`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pytest_agentbench.agents.loop import AgentConfig, AgentResult, Model, run_agent
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.packets.gates import GateResult, run_gates
from pytest_agentbench.packets.schema import Packet
from pytest_agentbench.sandbox.base import Sandbox, SandboxInfo


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
    from pytest_agentbench.reports.stats import percentile

    p50 = percentile(values, 50)
    return "n/a" if p50 is None else round(p50, 6)


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def run_packet(
    packet: Packet,
    spec: ModelSpec,
    model: Model,
    make_sandbox: Callable[[Packet], Sandbox],
    *,
    agent_timeout: float | None = None,
    run_id: str | None = None,
) -> RunRecord:
    start = time.monotonic()
    limits = packet.limits
    config = AgentConfig(
        max_turns=limits.max_turns,
        timeout_s=agent_timeout if agent_timeout is not None else limits.timeout_s,
        max_output_tokens=limits.max_output_tokens,
    )
    sandbox = make_sandbox(packet)
    try:
        result = run_agent(packet.prompt, sandbox, model, config)
        gates = run_gates(packet, sandbox)
        info = sandbox.info
    finally:
        sandbox.close()
    return RunRecord(
        run_id=run_id or new_run_id(),
        packet=packet,
        spec=spec,
        agent=result,
        gates=gates,
        sandbox=info,
        wall_s=time.monotonic() - start,
    )

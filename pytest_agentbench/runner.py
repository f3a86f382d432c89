"""One trial: a packet, an alias, a sandbox -> a ``RunRecord`` (:mod:`pytest_agentbench.results.record`). pytest-free.

:func:`run_packet` composes a trial: it opens the sandbox, lets the agent work
in it, takes the agent's patch (:func:`~pytest_agentbench.sandbox.patch.take_patch`: before any
hidden file is copied in, and never failing the run), then runs the gates in the same sandbox,
and wraps what came out in a ``RunRecord``; the sandbox is closed on every path. Model failures are part of
the record; sandbox failures propagate as :class:`~pytest_agentbench.errors.SandboxError`.
A run whose model never answered (outcome ``infrastructure``, rule in
``agents.transcript``) is recorded with no gate results: the untouched workspace
would only "miss" them, which says nothing about the model.

A packet with ``phases`` runs them in order on the one sandbox (:func:`~pytest_agentbench.agents.phases.run_phases`),
each phase a fresh session of :func:`builtin_session`; the gates run after the last.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from pytest_agentbench.agents.config import DEFAULT_SAFETY_FACTOR, AgentConfig, BudgetMode, budget_config
from pytest_agentbench.agents.loop import Model, progress_of, run_agent
from pytest_agentbench.agents.phases import Session, run_config, run_phases
from pytest_agentbench.agents.transcript import AgentResult
from pytest_agentbench.events import OnRunProgress
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.packets.gates import run_gates
from pytest_agentbench.packets.integrity import Reset
from pytest_agentbench.packets.schema import Packet, Phase
from pytest_agentbench.results.record import RunRecord, new_run_id
from pytest_agentbench.sandbox.base import Sandbox
from pytest_agentbench.sandbox.patch import take_patch

if TYPE_CHECKING:
    from pytest_agentbench.agents.external.trial import ExternalAgent

__all__ = ["builtin_session", "external_session", "run_packet"]


def run_packet(
    packet: Packet,
    spec: ModelSpec,
    model: Model,
    make_sandbox: Callable[[Packet], Sandbox],
    *,
    agent_timeout: float | None = None,
    run_id: str | None = None,
    budget: BudgetMode = "wall",
    max_total_tokens: int | None = None,
    safety_factor: float = DEFAULT_SAFETY_FACTOR,
    on_progress: OnRunProgress | None = None,
    agent: ExternalAgent | None = None,
) -> RunRecord:
    """Run the agent on ``packet`` in a fresh sandbox, then its gates; the sandbox is always closed.

    ``agent_timeout`` and ``max_total_tokens`` override the packet's limits; ``budget`` picks what binds
    (``wall``, or ``tokens`` with the wall clock a safety net at timeout x ``safety_factor``: ``agents.config``).
    ``on_progress`` (:mod:`pytest_agentbench.events`) hears of each agent turn and of the gates starting.
    ``agent``: an external agent CLI (``agents.external``) instead of the built-in loop; ``model`` is then unused
    (the agent reaches its alias through the gateway) and the sandbox must mount the gateway's socket.
    """
    start = time.monotonic()
    limits = packet.limits
    config = budget_config(
        budget,
        max_turns=limits.max_turns,
        timeout_s=agent_timeout if agent_timeout is not None else limits.timeout_s,
        max_output_tokens=limits.max_output_tokens,
        max_total_tokens=limits.max_total_tokens,
        tokens_override=max_total_tokens,
        safety_factor=safety_factor,
    )
    sandbox = make_sandbox(packet)
    try:
        result, config = _run_agent(packet, sandbox, model, config, on_progress, agent)
        patch = take_patch(sandbox, packet.workspace) if result.counted else None
        if on_progress is not None and result.counted:
            on_progress(progress_of("gates", result.turns, config, result.wall_s))
        resets: list[Reset] = []
        gates = run_gates(packet, sandbox, resets=resets) if result.counted else []
        info = sandbox.info
    finally:
        sandbox.close()
    named = {"agent_name": agent.name, "agent_version": agent.version} if agent is not None else {}
    return RunRecord(
        run_id=run_id or new_run_id(),
        packet=packet,
        spec=spec,
        agent=result,
        gates=gates,
        sandbox=info,
        wall_s=time.monotonic() - start,
        extra=_extra(resets),
        patch=patch,
        agent_config=config,
        **named,
    )


def _extra(resets: list[Reset]) -> dict[str, object]:
    return {"workspace_reset": [r.to_dict() for r in resets]} if resets else {}


def builtin_session(sandbox: Sandbox, model: Model, on_progress: OnRunProgress | None = None) -> Session:
    """The built-in loop as a phase's session: a fresh conversation on the phase's prompt, offering its tools,
    under its budgets (``agents.phases.phase_config``), in the run's ``sandbox``."""

    def session(phase: Phase, config: AgentConfig) -> AgentResult:
        return run_agent(phase.prompt, sandbox, model, config, on_progress)

    return session


def external_session(sandbox: Sandbox, agent: ExternalAgent) -> Session:
    """An external agent as a phase's session: a fresh headless session of the CLI (its own gateway run) on
    the phase's prompt, told the phase's tools (the adapter maps what its CLI can restrict), in ``sandbox``."""

    def session(phase: Phase, config: AgentConfig) -> AgentResult:
        return agent.session(phase.prompt, sandbox, config, tools=config.tools)

    return session


def _run_agent(
    packet: Packet,
    sandbox: Sandbox,
    model: Model,
    config: AgentConfig,
    on_progress: OnRunProgress | None,
    agent: ExternalAgent | None,
) -> tuple[AgentResult, AgentConfig]:
    """The agent's work on the packet (one session, or its phases) and the budgets the run had as a whole."""
    if not packet.phases:
        if agent is not None:
            return agent.session(packet.prompt, sandbox, config), config
        return run_agent(packet.prompt, sandbox, model, config, on_progress), config
    session = builtin_session(sandbox, model, on_progress) if agent is None else external_session(sandbox, agent)
    return run_phases(packet.phases, session, config), run_config(config, packet.phases)

"""An external agent for one trial: its gateway runs and what its sandbox needs. pytest-free.

:class:`ExternalAgent` is what ``runner.run_packet`` is given instead of a model client when the
trial's agent is not the built-in loop. It knows the adapter, the gateway (a
:class:`~pytest_agentbench.serving.gateway.GatewayClient`) and the alias, and runs one headless
session per call of :meth:`ExternalAgent.session` - one for a plain packet, one per phase of a
multi-phase packet - each under its own gateway run (its own token, closed when the session
ends), with the token budget that is left.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_agentbench.agents.config import AgentConfig
from pytest_agentbench.agents.external.adapter import AgentAdapter
from pytest_agentbench.agents.external.session import new_session, run_session
from pytest_agentbench.agents.transcript import AgentResult
from pytest_agentbench.sandbox.base import Sandbox
from pytest_agentbench.serving.gateway import GatewayClient

__all__ = ["WORKSPACE", "ExternalAgent", "NoModel"]

#: The workspace as the docker and local sandboxes show it.
WORKSPACE = "/workspace"
#: Seconds a gateway token outlives the session's wall clock (then it stops working by itself).
TOKEN_GRACE_S = 120.0


@dataclass
class ExternalAgent:
    """One trial's external agent (see the module docstring)."""

    adapter: AgentAdapter
    client: GatewayClient
    alias: str
    model: str  # the name the agent sends (the gateway sends the alias's own model anyway)

    @property
    def name(self) -> str:
        return self.adapter.name

    @property
    def version(self) -> str:
        return self.adapter.version

    @property
    def gateway_socket(self) -> str:
        return self.client.handle.agent_socket

    def session(
        self, prompt: str, sandbox: Sandbox, config: AgentConfig, *, tools: tuple[str, ...] | None = None
    ) -> AgentResult:
        """One headless session of ``prompt`` in ``sandbox`` under ``config``'s budgets."""
        ticket = self.client.open_run(
            self.alias,
            max_total_tokens=config.max_total_tokens,
            ttl_s=config.wall_limit_s + TOKEN_GRACE_S,
            max_calls=config.max_turns,
        )
        session = new_session(prompt, ticket, self.model, config, workspace=WORKSPACE, tools=tools)
        return run_session(self.adapter, session, sandbox, self.client, ticket, config).result


class NoModel:
    """The model client of a trial whose agent is external: it must never be asked (the agent asks the gateway)."""

    def __init__(self, agent: str) -> None:
        self.agent = agent

    def complete(self, *args: object, **kwargs: object) -> object:
        raise RuntimeError(f"agent {self.agent!r} reaches its model through the gateway, not this client")

    def close(self) -> None:
        pass

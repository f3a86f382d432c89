"""External agents: agent CLIs run headless in the sandbox, measured by the gateway.

    adapter.py         the AgentAdapter protocol, Session, Finish (what an adapter is)
    registry.py        the agents a run can name (--agent), agents.yaml
    session.py         one headless session in a sandbox through the gateway -> AgentResult
    trial.py           an external agent for one trial: the gateway run, the sandbox's needs
    command.py         ``command``: any CLI as a shell template
    mini_swe_agent.py  mini-swe-agent (pip)
    aider.py           aider (pip)
    codex.py           OpenAI Codex CLI (npm)
    claude_code.py     Claude Code (npm)

The built-in loop is ``agents.loop``; both produce the same AgentResult.
"""

from __future__ import annotations

from pytest_agentbench.agents.external.adapter import AgentAdapter, AgentInstall, Finish, Session
from pytest_agentbench.agents.external.registry import BUILTIN, AgentRegistry

__all__ = ["BUILTIN", "AgentAdapter", "AgentInstall", "AgentRegistry", "Finish", "Session"]

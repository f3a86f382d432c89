"""What an external agent adapter is: the :class:`AgentAdapter` protocol and the data it works on. pytest-free.

An adapter turns one headless *session* of an agent CLI (mini-swe-agent, aider, Codex, Claude
Code, a user's ``command``) into a command line for the sandbox and reads its exit. It never
talks to the model itself and never counts anything: the agent reaches its alias only through the
measuring gateway (:mod:`pytest_agentbench.serving.gateway`), whose per-call records become the
run's turns, tokens and timings (:mod:`pytest_agentbench.agents.external.session`). So an adapter
says only:

* what to install into the sandbox image (:class:`~pytest_agentbench.sandbox.agent_install.AgentInstall`,
  or None);
* the files to write before the agent starts (absolute paths inside the sandbox, all under the
  session's ``state_dir``: config, never the workspace), its extra environment and its ``argv``;
* how to read its exit (:class:`Finish`).

Every path in a :class:`Session` is as the sandbox sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from pytest_agentbench.sandbox.agent_install import AgentInstall
from pytest_agentbench.sandbox.base import ExecResult

__all__ = ["AgentAdapter", "AgentInstall", "Finish", "Protocol_", "Session", "last_line"]

#: What an agent speaks to the gateway: chat completions, the Responses API, Anthropic messages.
Protocol_ = Literal["chat", "responses", "messages"]


@dataclass(frozen=True)
class Session:
    """One headless agent session, as the adapter sees it (paths inside the sandbox)."""

    prompt: str  # the packet's (or phase's) prompt text
    prompt_file: str  # where that prompt was written (under state_dir)
    workspace: str  # the agent's working directory
    base_url: str  # the gateway inside the sandbox, OpenAI style: http://127.0.0.1:8765/v1
    root_url: str  # the same without /v1 (Anthropic style)
    token: str  # the per-run token: the agent's only API key
    model: str  # the model name to send (the alias's served model; the gateway sends the alias's anyway)
    max_turns: int  # the session's turn/step budget
    timeout_s: float  # the wall clock the session gets
    max_output_tokens: int | None = None  # per call (the gateway clamps a larger cap)
    tools: tuple[str, ...] | None = None  # a phase's allowed built-in tool names; None: all
    state_dir: str = "/tmp/agentbench-agent"  # writable, outside the workspace


@dataclass(frozen=True)
class Finish:
    """What an adapter reads from its agent's exit."""

    finished: bool  # the agent ended by itself, successfully
    ended_by: str | None = None  # "turns" when it stopped at its own step limit, else None
    note: str = ""  # one line for the transcript


@runtime_checkable
class AgentAdapter(Protocol):
    """One external agent CLI (see the module docstring)."""

    name: str  # the registry name: --agent NAME
    version: str  # the pinned version, recorded in every run
    protocol: Protocol_
    install: AgentInstall | None  # None: nothing to install (the command is in the image already)

    def files(self, session: Session) -> dict[str, str]:
        """Absolute path inside the sandbox -> text, written before the agent starts."""
        ...

    def env(self, session: Session) -> dict[str, str]:
        """Extra environment, besides the gateway's URL and token (``RunTicket.env``)."""
        ...

    def argv(self, session: Session) -> list[str]:
        """The command, run in the workspace with stdin at end of file."""
        ...

    def finish(self, result: ExecResult, session: Session) -> Finish:
        """How the session ended, from the command's exit."""
        ...


def last_line(text: str, limit: int = 300) -> str:
    """The last non-empty line of ``text``, cut to ``limit`` characters (for a Finish note)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""

"""Progress events: what a run or a server start reports while it is under way. pytest-free.

The core calls an optional callback with these plain, frozen values - the agent loop before each
model call, the runner before the gates, the vLLM launcher at each readiness poll - and knows nothing
of who listens. The pytest skin (:mod:`pytest_agentbench.plugin.progress`) turns them into live
terminal lines, also across xdist workers. A callback must be cheap and must not raise: it runs on the
run's own thread, between model calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["OnRunProgress", "OnServerProgress", "RunProgress", "ServerProgress"]


@dataclass(frozen=True)
class RunProgress:
    """Where one agent run stands: in the agent loop (``agent``) or grading (``gates``)."""

    phase: Literal["agent", "gates"]
    turn: int  # agent: the turn now starting (1-based); gates: the turns the agent took
    max_turns: int
    prompt_tokens: int  # so far, as the server reported them
    completion_tokens: int
    elapsed_s: float  # since the agent started
    budget_s: float  # the agent's wall-clock budget


@dataclass(frozen=True)
class ServerProgress:
    """A model server on its way up (``starting``, once per readiness poll), then ``ready`` or ``failed``."""

    engine: str  # as users name it: "vLLM"
    state: Literal["starting", "ready", "failed"]
    elapsed_s: float  # since the process was launched
    timeout_s: float  # the startup timeout
    log_path: str | None
    last_line: str  # the log's last non-empty line, secrets hidden ("" while the log is empty)


OnRunProgress = Callable[[RunProgress], None]
OnServerProgress = Callable[[ServerProgress], None]

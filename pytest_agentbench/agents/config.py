"""The agent's budgets: turns, wall time, output tokens per call, command timeout, tool-output size."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AgentConfig"]


@dataclass(frozen=True)
class AgentConfig:
    max_turns: int = 30
    timeout_s: float = 600.0
    max_output_tokens: int = 4096  # per model call
    command_timeout_s: float = 120.0  # default for `run`, never past the wall budget
    tool_output_chars: int = 12_000  # head + tail kept of each tool result

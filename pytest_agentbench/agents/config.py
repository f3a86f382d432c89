"""The agent's budgets: turns, tokens, wall time, output tokens per call, command timeout, tool-output size.

Two budget modes (``--budget``; ledger and the record of what ended a run: ``agents.budget``):

* ``wall`` (the default): ``timeout_s`` is a binding budget; a run that reaches it ends as
  ``agent_timeout``. ``max_turns`` binds, and so does ``max_total_tokens`` where one is set.
* ``tokens``: turns and tokens are the binding budgets, so a slow server does not decide a model's
  score; the wall clock is only a safety net at ``timeout_s`` x the safety factor
  (:data:`DEFAULT_SAFETY_FACTOR`), and a run that reaches it ends as ``safety_timeout``, reported
  apart from ``agent_timeout``. A run without a token budget of its own gets
  :data:`DEFAULT_MAX_TOTAL_TOKENS`, and the record says so (``max_total_tokens_from: default``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "BUDGET_MODES",
    "DEFAULT_MAX_TOTAL_TOKENS",
    "DEFAULT_SAFETY_FACTOR",
    "AgentConfig",
    "BudgetMode",
    "budget_config",
]

BudgetMode = Literal["wall", "tokens"]
BUDGET_MODES: tuple[BudgetMode, ...] = get_args(BudgetMode)

#: The token budget (prompt + completion, summed over a run's calls) in ``tokens`` mode for a packet
#: that sets none. Every call re-sends the conversation, so a run's total grows with the square of its
#: turns: 200,000 lets the default 30 turns run with prompts averaging ~6,500 tokens - ample for the
#: small repositories packets hold - while a run that reads far more than the task needs, or loops,
#: runs out. A packet that needs more says so in ``limits.max_total_tokens``.
DEFAULT_MAX_TOTAL_TOKENS = 200_000

#: ``tokens`` mode: the wall-clock safety net is ``timeout_s`` times this. Generous on purpose: the net
#: is there to end a stuck run, not to judge speed. A self-hosted model on a small GPU (or vLLM on CPU)
#: decodes 5-20x slower than the hosted API a packet's ``timeout_s`` is usually sized against; at 10x
#: a model a tenth as fast still ends on its turns or tokens, and a stuck run still ends within
#: hours (600 s -> 100 min), never holding a CI job for ever.
DEFAULT_SAFETY_FACTOR = 10.0


@dataclass(frozen=True)
class AgentConfig:
    max_turns: int = 30
    timeout_s: float = 600.0  # the wall budget (wall mode); the base of the safety net (tokens mode)
    max_output_tokens: int = 4096  # per model call
    command_timeout_s: float = 120.0  # default for `run`, never past the wall limit
    tool_output_chars: int = 12_000  # head + tail kept of each tool result
    budget: BudgetMode = "wall"
    max_total_tokens: int | None = None  # prompt + completion over the run; None: no token budget
    max_total_tokens_from: str | None = None  # "packet" | "option" | "default" (tokens mode, none given)
    safety_timeout_s: float | None = None  # tokens mode: the wall-clock safety net (None: timeout_s x factor)
    #: The tools offered to the model (built-in tool names; a packet phase's ``tools``); None: all of them.
    #: A call to any other tool is refused with a tool error for the model (``agents.tools``).
    tools: tuple[str, ...] | None = None

    @property
    def wall_limit_s(self) -> float:
        """When the wall clock ends the run: ``timeout_s`` (wall mode) or the safety net (tokens mode)."""
        if self.budget != "tokens":
            return self.timeout_s
        return self.safety_timeout_s if self.safety_timeout_s is not None else self.timeout_s * DEFAULT_SAFETY_FACTOR


def budget_config(
    budget: BudgetMode = "wall",
    *,
    max_turns: int,
    timeout_s: float,
    max_output_tokens: int,
    max_total_tokens: int | None,
    tokens_override: int | None = None,
    safety_factor: float = DEFAULT_SAFETY_FACTOR,
) -> AgentConfig:
    """The config of one run from a packet's limits and the session's overrides (option > packet > default)."""
    if budget not in BUDGET_MODES:
        raise ValueError(f"budget must be one of {', '.join(BUDGET_MODES)}, not {budget!r}")
    if not math.isfinite(safety_factor) or safety_factor < 1:
        raise ValueError(f"safety_factor must be a finite number >= 1, not {safety_factor!r}")
    tokens, source = max_total_tokens, "packet" if max_total_tokens is not None else None
    if tokens_override is not None:
        tokens, source = tokens_override, "option"
    if tokens is None and budget == "tokens":
        tokens, source = DEFAULT_MAX_TOTAL_TOKENS, "default"
    return AgentConfig(
        max_turns=max_turns,
        timeout_s=timeout_s,
        max_output_tokens=max_output_tokens,
        budget=budget,
        max_total_tokens=tokens,
        max_total_tokens_from=source,
        safety_timeout_s=timeout_s * safety_factor if budget == "tokens" else None,
    )

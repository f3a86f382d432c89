"""The agent loop: model proposes tool calls, the sandbox executes them. pytest-free.

The loop runs on the host; only commands touch the sandbox. A bad tool call
(unknown tool, bad arguments, a path outside the workspace) is answered with an
error message for the model, never a crash. Budgets: turns, tokens over the run
(each call's ``max_tokens`` clamped to what is left: ``budget.py``), the wall clock
(binding, or in ``tokens`` mode only a safety net: ``config.py``), and an
output-token cap per model call. The tools are in ``tools.py`` (the model is offered
``config.tools`` only, a packet phase's set; a call to another is refused), what a run leaves
(turns, outcome, transcript) in ``transcript.py``; a multi-phase packet runs one loop per phase
(``phases.py``).

A failed model call ends the run as ``model_error`` with its class - unless the
model never answered: a first call that fails with a class of
``transcript.NO_ANSWER_FAILURES`` (unreachable, auth, rate limit, 5xx) ends it as
``infrastructure``, which the runner does not grade (the rule and why: ``transcript``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pytest_agentbench.agents.budget import TokenLedger
from pytest_agentbench.agents.config import AgentConfig
from pytest_agentbench.agents.tools import ToolError, Tools, offered
from pytest_agentbench.agents.transcript import (
    ENDED_BY,
    INFRASTRUCTURE,
    NO_ANSWER_FAILURES,
    AgentResult,
    Outcome,
    ToolOutcome,
    Turn,
    clip,
)
from pytest_agentbench.events import OnRunProgress, RunProgress
from pytest_agentbench.models.calls import Completion
from pytest_agentbench.sandbox.base import Sandbox

__all__ = ["SYSTEM_PROMPT", "Model", "progress_of", "run_agent"]

SYSTEM_PROMPT = """\
You are a careful software engineer working in a git repository (your current directory).
Use the tools to inspect files, make changes and run commands. Paths are relative to the repository root.
When the task is complete, call `finish` with a one-paragraph summary. Do not ask questions: act."""


class Model(Protocol):
    """The model client the agent talks to (:class:`~pytest_agentbench.models.adapter.ModelAdapter` by default)."""

    def complete(
        self,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[dict[str, Any]] = (),
        *,
        max_tokens: int | None = None,
        timeout: float | None = None,
    ) -> Completion: ...

    def close(self) -> None:
        """Release the client's connections; the run calls it once, when the agent is done."""


def _assistant_message(completion: Completion) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": completion.text or None}
    if completion.tool_calls:
        msg["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in completion.tool_calls
        ]
    return msg


def run_agent(
    prompt: str,
    sandbox: Sandbox,
    model: Model,
    config: AgentConfig = AgentConfig(),
    on_progress: OnRunProgress | None = None,
) -> AgentResult:
    """Run the loop until ``finish``, a reply without tool calls, or a budget runs out.

    ``on_progress`` (:mod:`pytest_agentbench.events`) hears of each turn before its model call."""
    from pytest_agentbench.errors import ModelCallError

    start = time.monotonic()
    deadline = start + config.wall_limit_s
    wall_out: Outcome = "safety_timeout" if config.budget == "tokens" else "agent_timeout"
    ledger = TokenLedger(config.max_total_tokens)
    tools = Tools(sandbox, config, deadline)
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]
    turns: list[Turn] = []

    def done(outcome: Outcome, **kw: Any) -> AgentResult:
        budget = ledger.account(config, ENDED_BY.get(outcome))
        return AgentResult(outcome=outcome, turns=turns, wall_s=time.monotonic() - start, budget=budget, **kw)

    for index in range(config.max_turns):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return done(wall_out, error=_wall_message(config))
        if ledger.spent:
            return done("token_budget", error=ledger.spent_message())
        if on_progress is not None:
            on_progress(progress_of("agent", turns, config, time.monotonic() - start))
        t0 = time.monotonic()
        try:
            cap = ledger.max_tokens(config.max_output_tokens)
            completion = model.complete(messages, offered(config.tools), max_tokens=cap, timeout=remaining)
        except ModelCallError as exc:
            turns.append(
                Turn(index, time.monotonic() - t0, error=exc.failure, retries=exc.retries, started_s=t0 - start)
            )
            if exc.failure == "timeout" and deadline - time.monotonic() <= 0:
                return done(
                    wall_out, error=str(exc) if wall_out == "agent_timeout" else f"{_wall_message(config)}: {exc}"
                )
            answered = any(t.error is None for t in turns)
            outcome: Outcome = "model_error" if answered or exc.failure not in NO_ANSWER_FAILURES else INFRASTRUCTURE
            return done(outcome, failure=exc.failure, error=str(exc))
        turn = _turn_of(index, completion)
        turn.started_s = t0 - start
        turns.append(turn)
        ledger.add(turn.usage, index)
        messages.append(_assistant_message(completion))
        if not completion.tool_calls and not turn.invalid_tool_calls:
            return done("stopped", summary=completion.text)
        finished = _run_tool_calls(tools, turn, completion, messages, config)
        if turn.invalid_tool_calls:
            messages.append(_invalid_calls_message(turn))
        if finished is not None:
            return done("finished", summary=finished)
    return done("max_turns", error=f"no finish after {config.max_turns} turn(s)")


def _wall_message(config: AgentConfig) -> str:
    if config.budget == "tokens":
        return (
            f"wall-clock safety net of {config.wall_limit_s:g} s reached (budget mode tokens: timeout_s "
            f"{config.timeout_s:g} s x the safety factor); the run was stuck or very slow"
        )
    return f"wall budget of {config.timeout_s:.0f} s used up"


def progress_of(
    phase: Literal["agent", "gates"], turns: list[Turn], config: AgentConfig, elapsed_s: float
) -> RunProgress:
    """The run's progress after ``turns``: the next turn (agent) or the turns taken (gates), tokens so far."""
    return RunProgress(
        phase,
        len(turns) + (phase == "agent"),
        config.max_turns,
        sum(t.usage.prompt_tokens for t in turns),
        sum(t.usage.completion_tokens for t in turns),
        elapsed_s,
        config.wall_limit_s,
    )


def _turn_of(index: int, completion: Completion) -> Turn:
    """The turn record of one answered model call (timings and retries from the adapter)."""
    turn = Turn(
        index,
        completion.wall_s,
        completion.text,
        completion.message.reasoning,
        usage=completion.usage,
        ttft_s=completion.ttft_s,
        finish_reason=completion.finish_reason,
    )
    turn.invalid_tool_calls = completion.message.invalid_tool_calls
    turn.retries = tuple(completion.extra.get("retries", ()))
    turn.extra = {k: v for k, v in completion.extra.items() if k != "retries"}
    return turn


def _run_tool_calls(
    tools: Tools, turn: Turn, completion: Completion, messages: list[dict[str, Any]], config: AgentConfig
) -> str | None:
    """Execute the turn's tool calls in order, answering each; the ``finish`` summary if one finished."""
    finished: str | None = None
    for call in completion.tool_calls:
        c0 = time.monotonic()
        try:
            result, ok = tools.dispatch(call), True
        except ToolError as exc:
            result, ok = f"error: {exc}", False
        result = clip(result, config.tool_output_chars)
        turn.tool_calls.append(ToolOutcome(call, ok, result, time.monotonic() - c0))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
        if call.name == "finish" and ok:
            finished = json.loads(call.arguments or "{}").get("summary", "")
    return finished


def _invalid_calls_message(turn: Turn) -> dict[str, Any]:
    """Tell the model which of its calls could not be parsed, so it can call again."""
    reasons = "; ".join(clip(r, 300) for r in turn.invalid_tool_calls)
    return {
        "role": "user",
        "content": f"error: tool call(s) could not be parsed ({reasons}). "
        "Call the tools again with a valid name and JSON object arguments.",
    }

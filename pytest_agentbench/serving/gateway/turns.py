"""A run's gateway calls as the figures the run record holds for the built-in agent. pytest-free.

An external agent's run is reported like a built-in one: its calls become
:class:`~pytest_agentbench.agents.transcript.Turn` objects and an
:class:`~pytest_agentbench.agents.transcript.AgentResult`, so the record, JUnit, JSONL and the
reports read them unchanged. The rules mirror the built-in adapter and loop:

* one turn per *answered* call; failed calls before it (the agent's SDK retried) are its
  ``retries``, as the adapter's retried attempts are, and its wall time spans them all;
  failed calls after the last answer make one failed turn (``error`` = the last class);
* a turn's usage is what the server reported for its calls (a failed call that reported usage
  spent those tokens too - the gateway's per-alias totals count them the same way);
* its tool calls are those the agent got (native, or leaked and repaired by ``destream`` or the
  parser), each with the result the agent sent back in a later request (``ok`` is false only where
  the protocol flags an error: Anthropic's ``is_error``); calls that leaked and were *not*
  repaired (a stream passed through) are in ``extra["leaked_tool_calls"]``, not in ``tool_calls``;
* calls the gateway refused itself are no turns: a spent token budget ends the run as
  ``token_budget``; a protocol the alias does not serve, with no answer at all, makes the run
  ``infrastructure`` (a configuration fault, like a refused key);
* the budget's account is the built-in loop's :class:`~pytest_agentbench.agents.budget.TokenLedger`
  over the same usage (:func:`budget_use`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pytest_agentbench.agents.budget import BudgetUse, TokenLedger
from pytest_agentbench.agents.config import AgentConfig
from pytest_agentbench.agents.transcript import NO_ANSWER_FAILURES, AgentResult, Outcome, ToolOutcome, Turn
from pytest_agentbench.models.calls import Usage
from pytest_agentbench.serving.gateway.runs import CallRecord

__all__ = ["NO_RESULT", "agent_result", "budget_use", "outcome_of", "turns_from_calls"]

#: The result shown for a tool call whose result never came back through the gateway.
NO_RESULT = "(no result came back through the gateway: the agent sent no later request with it)"


def _usage(calls: Sequence[CallRecord], answered: CallRecord | None) -> Usage:
    total = answered.usage if answered is not None else Usage()
    for call in calls:
        if call is not answered and call.usage.reported:
            total = total + call.usage
    return total


def _extra(call: CallRecord) -> dict[str, Any]:
    return {
        **call.timings,
        "attempt_wall_s": call.wall_s,
        "native_tool_calls": call.native_tool_calls,
        "leaked_tool_calls": call.leaked_tool_calls,
        "tool_call_format": call.tool_call_format,
        "repaired": call.repaired,
        "destreamed": call.destreamed,
        "status": call.status,
        "protocol": call.protocol,
        "token_events": call.token_events,
        "via": "gateway",
    }


def _turn(index: int, attempts: Sequence[CallRecord], answered: CallRecord | None) -> Turn:
    last = attempts[-1]
    failed = [c for c in attempts if c is not answered]
    if answered is None:  # trailing failures: the last one is the turn's error
        failed = failed[:-1]
    outcomes = [
        ToolOutcome(call, *answered.tool_results.get(call.id, (True, NO_RESULT)), duration_s=0.0)
        for call in (answered.tool_calls if answered is not None else ())
    ]
    source = answered or last
    return Turn(
        index=index,
        wall_s=last.started_s + last.wall_s - attempts[0].started_s,
        content=source.content if answered is not None else "",
        reasoning=source.reasoning if answered is not None else None,
        tool_calls=outcomes,
        usage=_usage(attempts, answered),
        ttft_s=answered.ttft_s if answered is not None else None,
        finish_reason=answered.finish_reason if answered is not None else None,
        error=None if answered is not None else last.failure,
        invalid_tool_calls=answered.invalid_tool_calls if answered is not None else (),
        retries=tuple(str(c.failure) for c in failed),
        extra=_extra(source),
    )


def turns_from_calls(calls: Sequence[CallRecord]) -> list[Turn]:
    """The run's turns (see the module docstring); calls the gateway refused are left out."""
    turns: list[Turn] = []
    attempts: list[CallRecord] = []
    for call in calls:
        if call.refused is not None:
            continue
        attempts.append(call)
        if call.answered:
            turns.append(_turn(len(turns), attempts, call))
            attempts = []
    if attempts:
        turns.append(_turn(len(turns), attempts, None))
    return turns


def outcome_of(calls: Sequence[CallRecord], *, finished: bool = True) -> tuple[Outcome, str | None]:
    """How the run ended, as far as its calls tell, and the failure class (None: no failure).

    ``finished``: the agent itself says it completed its task (e.g. exit status 0); otherwise
    it stopped without saying so (``stopped``).
    """
    if any(c.refused == "token_budget" for c in calls):
        return "token_budget", None
    if any(c.refused == "turn_budget" for c in calls):
        return "max_turns", None
    answered = any(c.answered for c in calls)
    first_failure = next((c for c in calls if c.failure is not None or c.refused == "protocol"), None)
    if not answered and first_failure is not None:
        cls = first_failure.failure or "server_error"
        if cls in NO_ANSWER_FAILURES:
            return "infrastructure", cls
    mine = [c for c in calls if c.refused is None]
    if mine and mine[-1].failure is not None:
        return "model_error", mine[-1].failure
    if not answered and first_failure is not None:
        return "model_error", first_failure.failure or "server_error"
    return ("finished" if finished else "stopped"), None


def agent_result(
    calls: Sequence[CallRecord],
    *,
    wall_s: float,
    outcome: Outcome | None = None,
    finished: bool = True,
    summary: str = "",
    error: str = "",
    budget: BudgetUse | None = None,
) -> AgentResult:
    """An :class:`AgentResult` from a run's calls; ``outcome`` (the adapter's, e.g. ``max_turns``) wins over
    :func:`outcome_of`'s, which also gives the failure class and, for a failure, the error text."""
    inferred, failure = outcome_of(calls, finished=finished)
    if not error and failure is not None:
        failed = [c for c in calls if c.failure is not None or c.refused == "protocol"]
        error = failed[-1].error if failed else ""
    return AgentResult(
        outcome=outcome or inferred,
        turns=turns_from_calls(calls),
        wall_s=wall_s,
        summary=summary,
        failure=failure,
        error=error,
        budget=budget,
    )


def budget_use(calls: Sequence[CallRecord], limit: int | None, config: AgentConfig, ended_by: str | None) -> BudgetUse:
    """The run's budget account, from the same usage the gateway's ledger counted."""
    ledger = TokenLedger(limit)
    for call in calls:
        if call.answered or call.usage.reported:
            ledger.add(call.usage, call.index)
    return ledger.account(config, ended_by)

"""A multi-phase run: a packet's phases as fresh agent sessions, one after another, on one workspace. pytest-free.

:func:`run_phases` runs ``session(phase, config)`` for each :class:`~pytest_agentbench.packets.schema.Phase`
in order. A session is ONE fresh agent session on the same workspace (the built-in loop:
``runner.run_packet``; an external agent CLI runs through the same call) and returns its
:class:`~pytest_agentbench.agents.transcript.AgentResult`; ``config`` holds the phase's budgets:

* **turns** are the phase's own (``phase.max_turns``);
* the **token budget** and the **wall clock** (``config.max_total_tokens``, ``config.wall_limit_s``) are
  the run's, over all phases: each phase gets what the phases before it left;
* ``config.tools`` is the phase's tool set (None: all).

**Stopping early.** After a phase that ended with an outcome in :data:`STOPS_RUN` the later
phases do not run: ``infrastructure`` (the endpoint is not answering), ``model_error`` (a model
call failed for good: the run failed, as a single session would), ``token_budget``,
``agent_timeout`` and ``safety_timeout`` (the run's own budgets are spent). After ``finished``,
``stopped`` or ``max_turns`` (that phase's own turns) the next phase runs: a plan phase that ran
out of turns may still have left a usable plan. A phase is not started when no time or tokens are
left (the run then ends as ``token_budget`` / the wall outcome, naming the phase not run).

**The combined result.** One ``AgentResult``: the turns of every phase in order, numbered across
the run, each naming its ``phase``, ``started_s`` counted from the run's start; usage summed;
``outcome``, ``summary``, ``failure`` and ``error`` are the last phase's that ran (so an early stop's
outcome is the stopping phase's) - except that a later phase's ``infrastructure`` is the run's
``model_error`` once an earlier phase got an answer (the rule of ``agents.transcript``: after the
first answer every failure counts); ``budget`` is the run's account (``max_turns`` the sum of the
phases'); ``phases`` holds one :class:`~pytest_agentbench.agents.transcript.PhaseFigures` per phase
that ran (phases not run are not listed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from pytest_agentbench.agents.budget import BudgetUse
from pytest_agentbench.agents.config import AgentConfig
from pytest_agentbench.agents.transcript import (
    ENDED_BY,
    INFRASTRUCTURE,
    AgentResult,
    Outcome,
    PhaseFigures,
    Turn,
)
from pytest_agentbench.packets.schema import Phase

__all__ = ["STOPS_RUN", "Session", "phase_config", "run_config", "run_phases"]

#: A phase that ends like this ends the run: the later phases are not started.
STOPS_RUN: frozenset[str] = frozenset(
    {INFRASTRUCTURE, "model_error", "token_budget", "agent_timeout", "safety_timeout"}
)

#: One fresh agent session on the run's workspace: the phase (its prompt, tools) and its budgets.
Session = Callable[[Phase, AgentConfig], AgentResult]


def phase_config(config: AgentConfig, phase: Phase, tokens_used: int | None, elapsed_s: float) -> AgentConfig:
    """The budgets of ``phase``: its own turns and tools, what is left of the run's tokens and wall clock.

    ``tokens_used`` None (an earlier phase's server reported no usage): the token budget can no
    longer be enforced, so the phase gets none (the run's account says so)."""
    left_s = config.wall_limit_s - elapsed_s
    tokens = config.max_total_tokens
    if tokens is not None:
        tokens = None if tokens_used is None else tokens - tokens_used
    out = replace(config, max_turns=phase.max_turns, tools=phase.tools, max_total_tokens=tokens)
    if config.budget == "tokens":
        return replace(out, safety_timeout_s=left_s)
    return replace(out, timeout_s=left_s)


def run_phases(phases: Sequence[Phase], session: Session, config: AgentConfig) -> AgentResult:
    """Run ``phases`` in order through ``session``, stopping early where going on is pointless
    (see the module docstring); one combined result with per-phase figures."""
    if not phases:
        raise ValueError("run_phases needs at least one phase")
    start = time.monotonic()
    results: list[tuple[Phase, AgentResult, float]] = []  # (phase, its result, its start in run seconds)
    used: int | None = 0
    not_run: tuple[Outcome, str] | None = None
    for phase in phases:
        elapsed = time.monotonic() - start
        budget_left = _left(config, used, elapsed)
        if budget_left is not None:
            not_run = (budget_left, f"{_spent_message(config, budget_left, used)}; phase {phase.id!r} was not run")
            break
        result = session(phase, phase_config(config, phase, used, elapsed))
        results.append((phase, result, elapsed))
        phase_used = _tokens_of(result)
        used = None if used is None or phase_used is None else used + phase_used
        if result.outcome in STOPS_RUN:
            break
    return _combined(results, run_config(config, phases), used, not_run, time.monotonic() - start)


def run_config(config: AgentConfig, phases: Sequence[Phase]) -> AgentConfig:
    """The run's budgets as a whole: ``config`` with the phases' turn budgets summed (the record's
    ``budget.max_turns`` and its trajectory's turns left)."""
    return replace(config, max_turns=sum(p.max_turns for p in phases))


def _left(config: AgentConfig, used: int | None, elapsed_s: float) -> Outcome | None:
    """The budget outcome when nothing is left for another phase; None while something is."""
    if config.wall_limit_s - elapsed_s <= 0:
        return "safety_timeout" if config.budget == "tokens" else "agent_timeout"
    if config.max_total_tokens is not None and used is not None and used >= config.max_total_tokens:
        return "token_budget"
    return None


def _spent_message(config: AgentConfig, outcome: Outcome, used: int | None) -> str:
    """What ended the run, in the run's terms (a phase's own message would give what was left to it)."""
    if outcome == "token_budget":
        return (
            f"token budget of {config.max_total_tokens:,} used up over the phases: "
            f"{used if used is not None else 'unknown'} tokens (prompt + completion) over the run"
        )
    if outcome == "safety_timeout":
        return f"wall-clock safety net of {config.wall_limit_s:g} s reached over the phases"
    return f"wall budget of {config.timeout_s:g} s used up over the phases"


def _tokens_of(result: AgentResult) -> int | None:
    """Prompt + completion tokens of one session; None: unknown (a call reported no usage)."""
    if result.budget is not None:
        return result.budget.tokens_used
    usage = result.usage
    return usage.prompt_tokens + usage.completion_tokens if usage.reported else None


def _figures(phase: Phase, result: AgentResult) -> PhaseFigures:
    return PhaseFigures(
        id=phase.id,
        outcome=result.outcome,
        turns=len(result.turns),
        model_calls=result.model_calls,
        usage=result.usage,
        wall_s=result.wall_s,
        ended_by=ENDED_BY.get(result.outcome),
        max_turns=phase.max_turns,
        tools=phase.tools,
    )


def _turns(results: list[tuple[Phase, AgentResult, float]]) -> list[Turn]:
    """Every phase's turns in order: numbered across the run, marked with their phase, timed from its start."""
    out: list[Turn] = []
    for phase, result, offset in results:
        for turn in result.turns:
            started = None if turn.started_s is None else turn.started_s + offset
            out.append(replace(turn, index=len(out), phase=phase.id, started_s=started))
    return out


def _combined(
    results: list[tuple[Phase, AgentResult, float]],
    config: AgentConfig,
    used: int | None,
    not_run: tuple[Outcome, str] | None,
    wall_s: float,
) -> AgentResult:
    turns = _turns(results)
    last = results[-1][1] if results else None
    outcome: Outcome = not_run[0] if not_run else last.outcome if last else INFRASTRUCTURE
    error = not_run[1] if not_run else (last.error if last else "")
    if outcome in ("token_budget", "agent_timeout", "safety_timeout") and not not_run and len(results) > 1:
        error = f"{_spent_message(config, outcome, used)} (in phase {results[-1][0].id!r})"
    failure = last.failure if last and not not_run else None
    if outcome == INFRASTRUCTURE and any(t.error is None for t in turns):
        outcome = "model_error"  # an earlier phase got an answer: a later failure counts against the model
    return AgentResult(
        outcome=outcome,
        turns=turns,
        wall_s=wall_s,
        summary=last.summary if last else "",
        failure=failure,
        error=error,
        budget=_account(results, config, used, outcome),
        phases=tuple(_figures(phase, result) for phase, result, _ in results),
    )


def _account(
    results: list[tuple[Phase, AgentResult, float]], config: AgentConfig, used: int | None, outcome: Outcome
) -> BudgetUse:
    """The run's budget account: its limits (``config``: :func:`run_config`), the tokens of all phases."""
    limit = config.max_total_tokens
    notes = [f"phase {p.id!r}: {r.budget.note}" for p, r, _ in results if r.budget is not None and r.budget.note]
    return BudgetUse(
        mode=config.budget,
        max_turns=config.max_turns,
        max_total_tokens=limit,
        max_total_tokens_from=config.max_total_tokens_from,
        timeout_s=config.timeout_s,
        safety_timeout_s=config.wall_limit_s if config.budget == "tokens" else None,
        ended_by=ENDED_BY.get(outcome),
        tokens_used=used,
        over_by=None if limit is None or used is None else max(0, used - limit),
        enforced=limit is None or used is not None,
        note="; ".join(notes),
    )

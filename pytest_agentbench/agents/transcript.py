"""What a run of the agent leaves: its turns, tool outcomes, how it ended, and the readable transcript.

A run of a multi-phase packet (``agents.phases``) leaves one :class:`AgentResult` for all its
sessions: each turn names its ``phase``, and ``phases`` holds one :class:`PhaseFigures` per
phase that ran; the transcript marks where each phase began and how it ended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from pytest_agentbench.agents.budget import BudgetUse
from pytest_agentbench.models.calls import ToolCall, Usage

#: How an agent run ends: ``finish`` called, a reply without tool calls, a budget (turns, the wall clock,
#: tokens, or in ``--budget=tokens`` mode the wall-clock safety net), a failed model call, or
#: ``infrastructure``: the endpoint never answered, so the run says nothing about the model (see below).
Outcome = Literal[
    "finished",
    "stopped",
    "max_turns",
    "agent_timeout",
    "token_budget",
    "safety_timeout",
    "model_error",
    "infrastructure",
]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
INFRASTRUCTURE: Outcome = "infrastructure"
#: The failure class of an ``infrastructure`` run whose external agent never reached the model (agents.external).
AGENT_START = "agent_start"
#: The outcomes that are a budget running out, and which budget (the record's ``budget.ended_by``).
ENDED_BY: dict[str, str] = {
    "max_turns": "turns",
    "agent_timeout": "wall",
    "token_budget": "tokens",
    "safety_timeout": "safety_timeout",
}
BUDGET_OUTCOMES: frozenset[str] = frozenset(ENDED_BY)

#: The rule for ``infrastructure``. A model has *answered* a run once one call returned a completion (an
#: HTTP 200 the adapter could read, whatever its content: tool calls, text, unparseable calls). A run
#: whose **first** call fails for good with one of these classes never got an answer from the model,
#: only from the plumbing in front of it, so it is an ``infrastructure`` run: a pytest error, not counted
#: in pass rates, shown apart in every report, run again by ``--resume``:
#:
#: * ``connection_error``: nothing listening, DNS, TLS, a dropped connection - the model was never asked;
#: * ``auth_error``: the key was refused (401/403) - a configuration fault, not the model's;
#: * ``rate_limited``: the provider turned every attempt away (quota) - the model was never asked;
#: * ``server_error``: every attempt got a 5xx (or an unreadable or refused reply) from a reachable server:
#:   the serving stack is broken (a crashed engine, a bad chat template or parser); a team comparing
#:   models would not want an outage to read as a 0 % model, and the error still fails CI.
#:
#: Counted against the model even on the first call: ``context_overflow`` (the packet does not fit the
#: model's context: a property of the model), ``refusal`` (that *is* an answer) and ``timeout`` (the server
#: took the request; a slow model and a stuck server cannot be told apart, and the run's budget decides).
#: After the first answer every failure counts: a server that answers once and then dies gave the
#: model its chance, and a deployment that breaks mid-run is part of what is measured.
NO_ANSWER_FAILURES: frozenset[str] = frozenset({"connection_error", "auth_error", "rate_limited", "server_error"})


@dataclass(frozen=True)
class ToolOutcome:
    call: ToolCall
    ok: bool
    result: str
    duration_s: float


@dataclass
class Turn:
    index: int
    wall_s: float
    content: str = ""
    reasoning: str | None = None
    tool_calls: list[ToolOutcome] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    ttft_s: float | None = None
    finish_reason: str | None = None
    error: str | None = None  # failure class when the model call failed
    invalid_tool_calls: tuple[str, ...] = ()  # calls the parser could not decode (told to the model)
    retries: tuple[str, ...] = ()  # failure classes of attempts the adapter retried
    extra: dict[str, Any] = field(default_factory=dict)  # adapter timings (tpot_s, decode_tok_s, ...)
    started_s: float | None = None  # when the model call began, seconds into the run
    phase: str | None = None  # the packet phase this turn belongs to (None: a packet without phases)


@dataclass(frozen=True)
class PhaseFigures:
    """What one phase of a multi-phase run did (the record's ``phases[]``)."""

    id: str
    outcome: Outcome  # how this phase's session ended (its own view: see agents.phases for the run's)
    turns: int
    model_calls: int
    usage: Usage
    wall_s: float
    ended_by: str | None  # the budget that ended the phase ("turns", "tokens", "wall", ...); None: itself
    max_turns: int
    tools: tuple[str, ...] | None  # the tools the phase offered; None: all

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "outcome": self.outcome,
            "turns": self.turns,
            "model_calls": self.model_calls,
            "tokens": {
                "prompt": self.usage.prompt_tokens,
                "completion": self.usage.completion_tokens,
                "cached": self.usage.cached_tokens,
                "usage_reported": self.usage.reported,
            },
            "wall_s": round(self.wall_s, 6),
            "ended_by": self.ended_by,
            "max_turns": self.max_turns,
            "tools": None if self.tools is None else list(self.tools),
        }


@dataclass
class AgentResult:
    outcome: Outcome
    turns: list[Turn]
    wall_s: float
    summary: str = ""
    failure: str | None = None  # model-call failure class, when outcome is "model_error" or "infrastructure"
    error: str = ""
    budget: BudgetUse | None = None  # what the run was allowed and used, which budget ended it (agents.budget)
    phases: tuple[PhaseFigures, ...] = ()  # a multi-phase run's phases that ran, in order (empty: one session)

    @property
    def answered(self) -> bool:
        """At least one model call returned a completion (a failed call ends the run, so: not only failures)."""
        return any(t.error is None for t in self.turns)

    @property
    def counted(self) -> bool:
        """Whether the run counts for or against the model (``infrastructure`` runs do not)."""
        return self.outcome != INFRASTRUCTURE

    @property
    def usage(self) -> Usage:
        total = Usage()
        for t in self.turns:
            total = total + t.usage
        return total

    @property
    def invalid_tool_calls(self) -> int:
        return sum(len(t.invalid_tool_calls) for t in self.turns)

    def failures_by_class(self) -> dict[str, int]:
        """Every failed model-call attempt by class: retried ones, the final one, invalid tool calls."""
        counts: dict[str, int] = {}
        for t in self.turns:
            for cls in t.retries + ((t.error,) if t.error else ()):
                counts[cls] = counts.get(cls, 0) + 1
            if t.invalid_tool_calls:
                counts["invalid_tool_call"] = counts.get("invalid_tool_call", 0) + len(t.invalid_tool_calls)
        return counts

    @property
    def model_calls(self) -> int:
        return len(self.turns)

    def transcript(self) -> str:
        lines = [
            f"outcome: {self.outcome}"
            + (f" ({self.failure})" if self.failure else "")
            + f", {len(self.turns)} turn(s), {self.wall_s:.2f} s"
        ]
        if self.phases:
            lines.append("phases: " + ", ".join(f"{p.id} {p.outcome} ({p.turns} turn(s))" for p in self.phases))
        figures = {p.id: p for p in self.phases}
        phase: str | None = None
        for t in self.turns:
            if t.phase is not None and t.phase != phase:
                phase = t.phase
                lines.append(_phase_line(figures.get(phase), phase))
            lines.append(
                f"--- turn {t.index} ({t.wall_s:.2f} s, {t.usage.prompt_tokens} in / {t.usage.completion_tokens} out)"
            )
            if t.reasoning:
                lines.append(f"[reasoning] {clip(t.reasoning, 600)}")
            if t.content:
                lines.append(f"[assistant] {clip(t.content, 2000)}")
            for o in t.tool_calls:
                lines.append(f"[tool {o.call.name}] {clip(o.call.arguments, 600)}")
                lines.append(f"  -> {'ok' if o.ok else 'ERROR'}: {clip(o.result, 1200)}")
            for raw in t.invalid_tool_calls:
                lines.append(f"[invalid tool call] {clip(raw, 600)}")
            if t.retries:
                lines.append(f"[retried] {', '.join(t.retries)}")
            if t.error:
                lines.append(f"[model call failed] {t.error}")
        if self.error:
            lines.append(f"error: {self.error}")
        if self.budget is not None and self.budget.note:
            lines.append(f"budget: {self.budget.note}")
        return "\n".join(lines)


def _phase_line(figures: PhaseFigures | None, phase: str) -> str:
    """The transcript's marker where a phase begins, with how that phase ended."""
    if figures is None:
        return f"=== phase {phase} ==="
    return f"=== phase {phase}: {figures.outcome}, {figures.turns} turn(s), {figures.wall_s:.2f} s ==="


def clip(text: str, limit: int) -> str:
    """Keep the head and tail of ``text`` within ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    return f"{text[:head]}\n[... {len(text) - limit} characters cut ...]\n{text[-tail:]}"

"""The run record's ``trajectory``: every turn's text, tool calls and results, and the budget left. pytest-free.

:func:`trajectory` turns an :class:`~pytest_agentbench.agents.transcript.AgentResult` into one JSON
entry per model call (index-aligned with ``client.calls``, which holds the call's numbers)::

    {"index": 0, "started_s": 0.01, "budget_left": {"turns": 30, "wall_s": 599.99}, "tokens_so_far": 0,
     "content": "...", "reasoning": null, "error": null, "retries": ["rate_limited"],
     "tool_calls": [{"id": "c1", "name": "read_file", "arguments": "{...}", "ok": true,
                     "result": "...", "result_chars": 812, "duration_s": 0.004}],
     "invalid_tool_calls": ["..."]}

``budget_left`` is what was left when the call began, this call included (``wall_s`` null where the
start is unknown);
``tokens_so_far`` the prompt + completion tokens of the calls before it; ``phase`` (first key, only in a
multi-phase run) the packet phase the call belongs to. A tool result is what the
model was shown (the loop already keeps head and tail of a long one, with its own marker).

Bounded: each text is kept up to :data:`FIELD_CHARS` of its kind, and the whole trajectory to
:data:`TRAJECTORY_CHARS` (the longest texts are cut first, to the same length). A cut keeps head and
tail and says, in place, how many characters were cut and that the record is the only copy kept.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pytest_agentbench.agents.config import AgentConfig
from pytest_agentbench.agents.transcript import AgentResult, Turn

__all__ = ["FIELD_CHARS", "TRAJECTORY_CHARS", "cut_marked", "fair_limit", "trajectory"]

#: Characters of the texts of one trajectory kept in a record, all of them together.
TRAJECTORY_CHARS = 400_000
#: Characters kept of one text, by kind.
FIELD_CHARS = {"content": 20_000, "reasoning": 20_000, "arguments": 20_000, "result": 20_000, "invalid": 4_000}
_MIN_CUT = 400


def cut_marked(text: str, limit: int, why: str) -> str:
    """``text`` within about ``limit`` characters (head and tail), the cut said in place: how much, and why."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = max(0, limit - head)
    marker = f"\n[... {len(text) - head - tail} characters cut here by the record ({why}) ...]\n"
    return text[:head] + marker + (text[-tail:] if tail else "")


def _texts(turn: Turn) -> Iterable[tuple[str, str]]:
    """(kind, text) of every text a turn holds, in the order :func:`_turn` reads them."""
    yield "content", turn.content or ""
    yield "reasoning", turn.reasoning or ""
    for outcome in turn.tool_calls:
        yield "arguments", outcome.call.arguments or ""
        yield "result", outcome.result or ""
    for raw in turn.invalid_tool_calls:
        yield "invalid", raw


def fair_limit(lengths: list[int], budget: int, floor: int = _MIN_CUT) -> int | None:
    """The largest per-text length that fits ``lengths`` into ``budget`` (None: all fit as they are);
    never below ``floor``: the longest texts are cut first, all to the same length."""
    if sum(lengths) <= budget:
        return None
    lo, hi = floor, max(lengths)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if sum(min(n, mid) for n in lengths) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


class _Clipper:
    """Applies the per-kind limits, then the trajectory-wide one."""

    def __init__(self, turns: list[Turn], budget: int) -> None:
        lengths = [min(len(text), FIELD_CHARS[kind]) for t in turns for kind, text in _texts(t)]
        self.common = fair_limit(lengths, budget)
        self.budget = budget

    def __call__(self, kind: str, text: str | None) -> str | None:
        if text is None:
            return None
        limit = FIELD_CHARS[kind]
        if len(text) > limit:
            return cut_marked(text, limit, f"{limit} characters per {kind}; the record is the only copy kept")
        if self.common is not None and len(text) > self.common:
            why = f"all texts of the run share {self.budget} characters; the record is the only copy kept"
            return cut_marked(text, self.common, why)
        return text


def _turn(turn: Turn, clip: _Clipper, config: AgentConfig | None, tokens_so_far: int) -> dict[str, Any]:
    left: dict[str, Any] = {"turns": None, "wall_s": None}
    if config is not None:
        left["turns"] = max(0, config.max_turns - turn.index)
        if turn.started_s is not None:
            left["wall_s"] = round(max(0.0, config.timeout_s - turn.started_s), 6)
    out: dict[str, Any] = {"phase": turn.phase} if turn.phase is not None else {}
    return out | {
        "index": turn.index,
        "started_s": None if turn.started_s is None else round(turn.started_s, 6),
        "budget_left": left,
        "tokens_so_far": tokens_so_far,
        "content": clip("content", turn.content or ""),
        "reasoning": clip("reasoning", turn.reasoning),
        "error": turn.error,
        "retries": list(turn.retries),
        "tool_calls": [
            {
                "id": o.call.id,
                "name": o.call.name,
                "arguments": clip("arguments", o.call.arguments or ""),
                "ok": o.ok,
                "result": clip("result", o.result),
                "result_chars": len(o.result or ""),
                "duration_s": round(o.duration_s, 6),
            }
            for o in turn.tool_calls
        ],
        "invalid_tool_calls": [clip("invalid", raw) for raw in turn.invalid_tool_calls],
    }


def trajectory(
    agent: AgentResult, config: AgentConfig | None = None, *, budget: int = TRAJECTORY_CHARS
) -> list[dict[str, Any]]:
    """One entry per model call of the run (see the module docstring), within ``budget`` characters of text."""
    clip = _Clipper(agent.turns, budget)
    out = []
    used = 0
    for turn in agent.turns:
        out.append(_turn(turn, clip, config, used))
        used += turn.usage.prompt_tokens + turn.usage.completion_tokens
    return out

"""Tool calls in a whole answer: which came native, which leaked into the text, and turning leaks into calls.

A whole (non-streamed) answer of any protocol is read as one OpenAI-wire assistant message
(:func:`read_answer`: content, reasoning, native tool calls, finish reason), so the alias's
client-side tool parser (:func:`pytest_agentbench.models.parsers.parse_message`, reasoning left
alone) can look at it exactly as the built-in adapter's does. :func:`find_calls` says what it
found; :func:`repaired` writes the answer back in its own protocol with the leaked calls as
proper calls (chat ``tool_calls``, responses ``function_call`` items, messages ``tool_use``
blocks), the call text taken out of the content and the finish reason saying a tool was called.
Repaired calls get ids of their own (``call_gw...``), unique over the session: agents match tool
results by id across turns.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_agentbench.models.calls import ParsedMessage, ToolCall
from pytest_agentbench.models.parsers import parse_message
from pytest_agentbench.models.parsers.native import native_calls
from pytest_agentbench.serving.gateway.protocols import Protocol

__all__ = ["Answer", "Findings", "find_calls", "read_answer", "repaired"]


@dataclass(frozen=True)
class Answer:
    """A whole answer of any protocol as one OpenAI-wire assistant message."""

    message: dict[str, Any]  # content, reasoning_content, tool_calls (OpenAI shape)
    finish_reason: str | None
    model: str


@dataclass(frozen=True)
class Findings:
    """What the alias's tool parser made of an answer."""

    parsed: ParsedMessage
    native: int  # decodable native calls (they come first in parsed.tool_calls)

    @property
    def leaked(self) -> tuple[ToolCall, ...]:
        """Calls recovered from the text (the server's own parser missed them)."""
        return self.parsed.tool_calls[self.native :]


def _text(parts: Any, kinds: tuple[str, ...]) -> str:
    if not isinstance(parts, list):
        return ""
    return "".join(
        str(p.get("text") or p.get("thinking") or "")
        for p in parts
        if isinstance(p, Mapping) and p.get("type") in kinds
    )


def _call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) else json.dumps(arguments if arguments is not None else {})
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def read_answer(protocol: Protocol, obj: Any) -> Answer:
    """The answer as an OpenAI-wire message; an answer of the wrong shape reads as an empty one."""
    if not isinstance(obj, Mapping):
        return Answer({"role": "assistant", "content": None}, None, "")
    model = str(obj.get("model") or "")
    if protocol == "chat":
        choices = obj.get("choices")
        first = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], Mapping) else {}
        message = first.get("message")
        return Answer(dict(message) if isinstance(message, Mapping) else {}, first.get("finish_reason"), model)
    if protocol == "responses":
        return _read_responses(obj, model)
    blocks = [b for b in obj.get("content") or () if isinstance(b, Mapping)]
    message: dict[str, Any] = {"role": "assistant", "content": _text(blocks, ("text",)) or None}
    thinking = _text(blocks, ("thinking",))
    if thinking:
        message["reasoning_content"] = thinking
    calls = [_call(b.get("id"), b.get("name"), b.get("input")) for b in blocks if b.get("type") == "tool_use"]
    if calls:
        message["tool_calls"] = calls
    return Answer(message, obj.get("stop_reason"), model)


def _read_responses(obj: Mapping[str, Any], model: str) -> Answer:
    items = [i for i in obj.get("output") or () if isinstance(i, Mapping)]
    text = "".join(_text(i.get("content"), ("output_text",)) for i in items if i.get("type") == "message")
    reasoning = "".join(
        _text(i.get("content"), ("reasoning_text",)) or _text(i.get("summary"), ("summary_text",))
        for i in items
        if i.get("type") == "reasoning"
    )
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if reasoning:
        message["reasoning_content"] = reasoning
    calls = [
        _call(i.get("call_id") or i.get("id"), i.get("name"), i.get("arguments"))
        for i in items
        if i.get("type") == "function_call"
    ]
    if calls:
        message["tool_calls"] = calls
    details = obj.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, Mapping) else None
    return Answer(message, reason or obj.get("status"), model)


def find_calls(answer: Answer, tool_parser: str, tools: Sequence[Mapping[str, Any]]) -> Findings:
    """The alias's tool parser over the answer (the reasoning parser is not applied: content stays as sent)."""
    parsed = parse_message(answer.message, tool_parser=tool_parser, reasoning_parser=None, tools=tools)
    native, _ = native_calls(answer.message)
    return Findings(parsed, len(native))


def _fresh_ids(calls: Sequence[ToolCall]) -> list[ToolCall]:
    return [ToolCall(f"call_gw{uuid.uuid4().hex[:16]}", c.name, c.arguments) for c in calls]


def repaired(protocol: Protocol, obj: Mapping[str, Any], findings: Findings) -> tuple[dict[str, Any], list[ToolCall]]:
    """``obj`` with the leaked calls as proper calls of its protocol (a copy; ``obj`` is not changed), and
    every call of the answer as the agent now gets it (the native ones, then the repaired ones)."""
    calls = _fresh_ids(findings.leaked)
    return _rewritten(protocol, obj, findings, calls), [*findings.parsed.tool_calls[: findings.native], *calls]


def _rewritten(protocol: Protocol, obj: Mapping[str, Any], findings: Findings, calls: list[ToolCall]) -> dict[str, Any]:
    content = findings.parsed.content
    out = json.loads(json.dumps(obj))
    if protocol == "chat":
        choice = out["choices"][0]
        message = choice.setdefault("message", {})
        message["content"] = content or None
        new = [_call(c.id, c.name, c.arguments) for c in calls]
        message["tool_calls"] = list(message.get("tool_calls") or ()) + new
        choice["finish_reason"] = "tool_calls"
    elif protocol == "responses":
        items = [i for i in out.get("output") or () if isinstance(i, Mapping)]
        kept = [i for i in items if i.get("type") != "message"]
        message = next((i for i in items if i.get("type") == "message"), None)
        text_items = []
        if content and message is not None:
            message["content"] = [{"type": "output_text", "text": content, "annotations": []}]
            text_items = [message]
        new = [
            {"type": "function_call", "id": f"fc_{c.id}", "call_id": c.id, "name": c.name}
            | {"arguments": c.arguments, "status": "completed"}
            for c in calls
        ]
        out["output"] = text_items + kept + new
    else:
        blocks = [b for b in out.get("content") or () if isinstance(b, Mapping)]
        thinking = [b for b in blocks if b.get("type") in ("thinking", "redacted_thinking")]
        uses = [b for b in blocks if b.get("type") == "tool_use"]
        text = [{"type": "text", "text": content}] if content else []
        new = [{"type": "tool_use", "id": c.id, "name": c.name, "input": json.loads(c.arguments)} for c in calls]
        out["content"] = thinking + text + uses + new
        out["stop_reason"] = "tool_use"
    return out

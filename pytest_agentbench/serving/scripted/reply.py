"""One answer of the scripted server before a protocol shapes it: text, reasoning, tool calls, usage.

A :class:`Reply` is made from a scripted response entry (:func:`from_response`) or a plan step's
:class:`~pytest_agentbench.serving.scripted.plan.Action` (:func:`from_action`); the chat,
responses and messages modules put it on the wire. Token counts are deterministic stand-ins for a
tokenizer (:func:`count_tokens`, about 4 characters a token): the prompt counts the request's
conversation text (each protocol says which), the completion the answer's text and tool-call
arguments (reasoning is not counted). A script's ``usage:`` overrides them (``prompt_tokens``,
``completion_tokens``, ``cached_tokens`` or ``prompt_tokens_details.cached_tokens``).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_agentbench.serving.scripted.plan import Action

__all__ = ["Reply", "ReplyCall", "count_tokens", "from_action", "from_response", "qwen3_xml"]


def count_tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer (about 4 characters a token)."""
    return max(1, (len(text) + 3) // 4) if text else 0


@dataclass(frozen=True)
class ReplyCall:
    """One tool call: ``arguments`` is JSON text; ``custom`` marks a freeform (responses custom) tool's
    call, whose ``arguments`` is the raw input."""

    id: str
    name: str
    arguments: str
    custom: bool = False


@dataclass(frozen=True)
class Reply:
    """What to answer, in chat's words (``finish``: ``stop``, ``tool_calls``, ``length``, ...)."""

    text: str | None
    reasoning: str | None
    calls: tuple[ReplyCall, ...]
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    finish_reason: str | None = None  # as the script gave it; None: from the calls
    usage_extra: Mapping[str, Any] = field(default_factory=dict)  # chat: the script's usage keys, merged as given
    reported: bool = True  # False: the answer carries no usage (``no_usage: true``)

    @property
    def finish(self) -> str:
        return self.finish_reason or ("tool_calls" if self.calls else "stop")

    def leaked(self) -> Reply:
        """The calls written into the text as qwen3 XML, none left: what a broken streaming parser sends."""
        if not self.calls:
            return self
        return dataclasses.replace(self, text=(self.text or "") + "".join(map(qwen3_xml, self.calls)), calls=())


def _usage(step: Mapping[str, Any], prompt: int, completion: int) -> tuple[int, int, int]:
    usage = step.get("usage") if isinstance(step.get("usage"), Mapping) else {}
    details = usage.get("prompt_tokens_details") if isinstance(usage.get("prompt_tokens_details"), Mapping) else {}
    cached = usage.get("cached_tokens", details.get("cached_tokens", 0))
    return int(usage.get("prompt_tokens", prompt)), int(usage.get("completion_tokens", completion)), int(cached or 0)


def from_response(step: Mapping[str, Any], prompt_tokens: int, call_id: Callable[[int], str]) -> Reply:
    """A scripted response entry (``content``, ``reasoning_content``, ``tool_calls``, ``usage`` ...).

    A tool call with ``input:`` (a string) instead of ``arguments`` is a freeform custom-tool call."""
    calls = []
    for i, c in enumerate(step.get("tool_calls") or []):
        custom = "input" in c and "arguments" not in c
        raw = c["input"] if custom else c.get("arguments", {})
        calls.append(ReplyCall(call_id(i), c["name"], raw if isinstance(raw, str) else json.dumps(raw), custom))
    content = step.get("content")
    completion = count_tokens((content or "") + "".join(c.arguments for c in calls))
    prompt, completion, cached = _usage(step, prompt_tokens, completion)
    return Reply(
        text=content,
        reasoning=step.get("reasoning_content"),
        calls=tuple(calls),
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        finish_reason=step.get("finish_reason"),
        usage_extra=dict(step.get("usage") or {}),
        reported=not step.get("no_usage"),
    )


def from_action(action: Action, prompt_tokens: int, call_id: Callable[[int], str]) -> Reply:
    """A plan step's action, counted as a response entry would be."""
    calls = tuple(ReplyCall(call_id(i), c.name, json.dumps(c.arguments)) for i, c in enumerate(action.calls))
    completion = count_tokens((action.text or "") + "".join(c.arguments for c in calls))
    return Reply(action.text, action.thinking, calls, prompt_tokens, completion)


def qwen3_xml(call: ReplyCall) -> str:
    """A tool call as the qwen3_coder chat template writes it: what a streaming parser that misses it leaks."""
    try:
        args = json.loads(call.arguments or "{}") if not call.custom else {"input": call.arguments}
    except ValueError:
        args = {"arguments": call.arguments}
    params = "".join(
        f"<parameter={key}>\n{value if isinstance(value, str) else json.dumps(value)}\n</parameter>\n"
        for key, value in (args.items() if isinstance(args, dict) else [])
    )
    return f"\n<tool_call>\n<function={call.name}>\n{params}</function>\n</tool_call>"

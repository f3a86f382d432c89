"""Anthropic messages as the scripted server speaks them (``POST /v1/messages``, as Claude Code calls it).

Turn N is the number of runs of ``assistant`` messages in the request; a conversation is matched on
the text of the user messages before the first assistant one (string content or ``text`` blocks:
Claude Code puts ``<system-reminder>`` blocks beside the prompt); the prompt counts
``json.dumps([system, messages])``, and ``POST /v1/messages/count_tokens`` answers that count as
``{"input_tokens": N}`` (no generation: it is not in the usage totals).

An answer is a ``message`` whose ``content`` holds a ``thinking`` block (the reasoning), a
``text`` block and one ``tool_use`` block per call; ``stop_reason`` is ``tool_use``,
``end_turn`` or ``max_tokens``; ``usage`` is ``input_tokens`` (the prompt less the cached part),
``cache_read_input_tokens`` (the cached part), ``cache_creation_input_tokens: 0`` and
``output_tokens``. Streamed: ``message_start`` (the usage with ``output_tokens: 0``), one
``ping``, per block ``content_block_start`` / deltas (``thinking_delta`` then ``signature_delta``,
8-character ``text_delta``, ``input_json_delta`` in two halves) / ``content_block_stop``, then
``message_delta`` (stop reason, the whole usage) and ``message_stop``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from pytest_agentbench.serving.scripted.reply import Reply, count_tokens

__all__ = ["Messages"]

_STOP = {"tool_calls": "tool_use", "stop": "end_turn", "length": "max_tokens"}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def _event(obj: dict[str, Any]) -> bytes:
    return f"event: {obj['type']}\ndata: {json.dumps(obj)}\n\n".encode()


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    blocks = content if isinstance(content, list) else []
    return "\n".join(str(b.get("text") or "") for b in blocks if isinstance(b, Mapping) and b.get("type") == "text")


class Messages:
    """The Anthropic messages protocol (see the module docstring)."""

    name = "messages"
    call_prefix = "toolu_"

    @staticmethod
    def messages(body: Mapping[str, Any]) -> list[Any]:
        messages = body.get("messages")
        return messages if isinstance(messages, list) else []

    def opening(self, body: Mapping[str, Any]) -> str:
        texts = []
        for message in self.messages(body):
            if not isinstance(message, Mapping) or message.get("role") == "assistant":
                break
            texts.append(_text(message.get("content")))
        return "\n".join(texts)

    def turn(self, body: Mapping[str, Any]) -> int:
        runs, inside = 0, False
        for message in self.messages(body):
            assistant = isinstance(message, Mapping) and message.get("role") == "assistant"
            runs += assistant and not inside
            inside = assistant
        return runs

    @staticmethod
    def prompt_tokens(body: Mapping[str, Any]) -> int:
        return count_tokens(json.dumps([body.get("system"), body.get("messages")]))

    @staticmethod
    def max_tokens(body: Mapping[str, Any]) -> int:
        return int(body.get("max_tokens") or 0)

    @staticmethod
    def error(status: int, message: str, kind: str | None, code: Any = None) -> dict[str, Any]:
        kind = kind if kind and kind != "server_error" else _ERROR_TYPES.get(status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": message}}

    @staticmethod
    def usage(reply: Reply) -> dict[str, Any]:
        return {
            "input_tokens": reply.prompt_tokens - reply.cached_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": reply.cached_tokens,
            "output_tokens": reply.completion_tokens,
        }

    @staticmethod
    def content(reply: Reply) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        if reply.reasoning:
            blocks.append({"type": "thinking", "thinking": reply.reasoning, "signature": "scripted"})
        if reply.text:
            blocks.append({"type": "text", "text": reply.text})
        for c in reply.calls:
            try:
                arguments = {"input": c.arguments} if c.custom else json.loads(c.arguments or "{}")
            except ValueError:
                arguments = {"arguments": c.arguments}  # a script's broken JSON: tool_use input must be an object
            blocks.append({"type": "tool_use", "id": c.id, "name": c.name, "input": arguments})
        return blocks

    def answer(self, reply: Reply, body: Mapping[str, Any], rid: int) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "id": f"msg_scripted_{rid}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "scripted"),
            "content": self.content(reply),
            "stop_reason": _STOP.get(reply.finish, reply.finish),
            "stop_sequence": None,
        }
        if reply.reported:
            answer["usage"] = self.usage(reply)
        return answer

    def events(self, reply: Reply, body: Mapping[str, Any], rid: int) -> tuple[list[bytes], list[bytes]]:
        final = self.answer(reply, body, rid)
        start = {**final, "content": [], "stop_reason": None}
        if reply.reported:
            start["usage"] = {**final["usage"], "output_tokens": 0}
        out = [_event({"type": "message_start", "message": start}), _event({"type": "ping"})]
        for index, block in enumerate(final["content"]):
            out += _block_events(index, block)
        delta: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": final["stop_reason"], "stop_sequence": None},
        }
        if reply.reported:
            delta["usage"] = final["usage"]
        out += [_event(delta), _event({"type": "message_stop"})]
        return out, []

    def empty_event(self, body: Mapping[str, Any], rid: int) -> bytes:
        """Anthropic's keep-alive: a ``ping`` event."""
        return _event({"type": "ping"})

    @staticmethod
    def usage_sent(reply: Reply, body: Mapping[str, Any]) -> bool:
        return reply.reported


def _block_events(index: int, block: dict[str, Any]) -> Iterator[bytes]:
    """``content_block_start``, the block's deltas and ``content_block_stop``."""
    kind = block["type"]
    if kind == "thinking":
        head = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [
            {"type": "thinking_delta", "thinking": block["thinking"]},
            {"type": "signature_delta", "signature": block["signature"]},
        ]
    elif kind == "text":
        head, text = {"type": "text", "text": ""}, block["text"]
        deltas = [{"type": "text_delta", "text": text[i : i + 8]} for i in range(0, len(text), 8)]
    else:
        head = {**block, "input": {}}
        raw = json.dumps(block["input"])
        half = len(raw) // 2
        deltas = [{"type": "input_json_delta", "partial_json": part} for part in (raw[:half], raw[half:])]
    yield _event({"type": "content_block_start", "index": index, "content_block": head})
    for delta in deltas:
        yield _event({"type": "content_block_delta", "index": index, "delta": delta})
    yield _event({"type": "content_block_stop", "index": index})

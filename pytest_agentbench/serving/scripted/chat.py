"""OpenAI chat completions as the scripted server speaks them (``POST /v1/chat/completions``).

Turn N is the number of ``assistant`` messages in the request; a conversation is matched on the
first ``user`` message; the prompt counts ``json.dumps(messages)``. An answer is a
``chat.completion`` object, or streamed: a role chunk, the reasoning (as vLLM streams a reasoning
parser's ``reasoning_content``), the content in 8-character chunks, each tool call (id and name,
then its arguments), the finish chunk; then, uncounted by the stream faults, the usage chunk
(only when ``stream_options.include_usage``) and ``data: [DONE]``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from pytest_agentbench.serving.scripted.reply import Reply, count_tokens

__all__ = ["Chat"]


def _data(obj: Any) -> bytes:
    return f"data: {json.dumps(obj)}\n\n".encode()


class Chat:
    """The chat completions protocol (see the module docstring)."""

    name = "chat"
    call_prefix = "call_"

    @staticmethod
    def messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
        messages = body.get("messages")
        return messages if isinstance(messages, list) else []

    @staticmethod
    def opening_of(messages: list[dict[str, Any]]) -> str:
        return next((str(m.get("content") or "") for m in messages if m.get("role") == "user"), "")

    @staticmethod
    def turn_of(messages: list[dict[str, Any]]) -> int:
        return sum(1 for m in messages if isinstance(m, Mapping) and m.get("role") == "assistant")

    def opening(self, body: Mapping[str, Any]) -> str:
        return self.opening_of(self.messages(body))

    def turn(self, body: Mapping[str, Any]) -> int:
        return self.turn_of(self.messages(body))

    def prompt_tokens(self, body: Mapping[str, Any]) -> int:
        return count_tokens(json.dumps(body.get("messages", [])))

    @staticmethod
    def max_tokens(body: Mapping[str, Any]) -> int:
        return int(body.get("max_tokens") or 0)

    @staticmethod
    def error(status: int, message: str, kind: str | None, code: Any = None) -> dict[str, Any]:
        return {"error": {"message": message, "type": kind or "server_error", "code": code}}

    @staticmethod
    def usage(reply: Reply) -> dict[str, Any]:
        usage: dict[str, Any] = {
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        }
        if reply.cached_tokens:
            usage["prompt_tokens_details"] = {"cached_tokens": reply.cached_tokens}
        usage.update({k: v for k, v in reply.usage_extra.items() if k != "cached_tokens"})
        return usage

    @staticmethod
    def message(reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {
                        "name": c.name,
                        "arguments": json.dumps({"input": c.arguments}) if c.custom else c.arguments,
                    },
                }
                for c in reply.calls
            ]
        if reply.reasoning:
            message["reasoning_content"] = reply.reasoning
        return message

    def answer(self, reply: Reply, body: Mapping[str, Any], rid: int) -> dict[str, Any]:
        response: dict[str, Any] = {
            "id": f"chatcmpl-{rid}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "scripted"),
            "choices": [{"index": 0, "message": self.message(reply), "finish_reason": reply.finish}],
        }
        if reply.reported:
            response["usage"] = self.usage(reply)
        return response

    @staticmethod
    def _chunk(rid: int, model: Any, delta: dict[str, Any], finish: str | None = None) -> bytes:
        obj = {
            "id": f"chatcmpl-{rid}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return _data(obj)

    def events(self, reply: Reply, body: Mapping[str, Any], rid: int) -> tuple[list[bytes], list[bytes]]:
        model = body.get("model", "scripted")
        message = self.message(reply)
        chunks = [{"role": "assistant", "content": ""}]
        if message.get("reasoning_content"):
            chunks.append({"reasoning_content": message["reasoning_content"]})
        text = message.get("content") or ""
        chunks += [{"content": text[i : i + 8]} for i in range(0, len(text), 8)]
        for i, call in enumerate(message.get("tool_calls") or []):
            head = {
                "index": i,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            chunks += [
                {"tool_calls": [head]},
                {"tool_calls": [{"index": i, "function": {"arguments": call["function"]["arguments"]}}]},
            ]
        counted = [self._chunk(rid, model, delta) for delta in chunks] + [self._chunk(rid, model, {}, reply.finish)]
        tail = []
        if self.usage_sent(reply, body):
            usage = {"id": f"chatcmpl-{rid}", "object": "chat.completion.chunk", "created": int(time.time())}
            tail.append(_data({**usage, "model": model, "choices": [], "usage": self.usage(reply)}))
        return counted, [*tail, b"data: [DONE]\n\n"]

    def empty_event(self, body: Mapping[str, Any], rid: int) -> bytes:
        """A chunk with an empty delta: what some servers send to keep a stream open."""
        return self._chunk(rid, body.get("model", "scripted"), {})

    @staticmethod
    def usage_sent(reply: Reply, body: Mapping[str, Any]) -> bool:
        """Whether a stream carries the usage: only when the client asked for it."""
        options = body.get("stream_options") if isinstance(body.get("stream_options"), Mapping) else {}
        return reply.reported and bool(options.get("include_usage"))

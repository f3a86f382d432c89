"""OpenAI responses as the scripted server speaks them (``POST /v1/responses``, as Codex CLI calls it).

The request's ``input`` is a string or a list of items. Turn N is the number of runs of output
items in it (assistant ``message``, ``reasoning``, ``function_call``, ``custom_tool_call`` ...:
one assistant turn sends several at once, the next ``function_call_output`` or user message ends
the run). A conversation is matched on the text of the user messages before the first output item
(Codex sends its environment context there before the prompt); the prompt counts
``json.dumps([instructions, input])``.

An answer is a ``response`` object whose ``output`` holds, in order, a ``reasoning`` item (with
``reasoning_text`` content, as vLLM sends it), a ``message`` with one ``output_text`` part, and one
``function_call`` (``custom_tool_call`` for a freeform tool) per call. Streamed, the events are the
API's: ``response.created``, ``response.in_progress``, per item ``response.output_item.added``,
its ``content_part`` / ``output_text`` (8-character deltas) / ``reasoning_text`` /
``function_call_arguments`` / ``custom_tool_call_input`` delta and done events,
``response.output_item.done``; then ``response.completed`` (``response.incomplete`` for a
``length`` finish) with the usage: ``input_tokens``, ``input_tokens_details.cached_tokens``,
``output_tokens``, ``output_tokens_details.reasoning_tokens``, ``total_tokens``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

from pytest_agentbench.serving.scripted.reply import Reply, count_tokens

__all__ = ["OUTPUT_ITEMS", "Responses"]

#: Input items the model wrote (an assistant turn); anything else is the client's.
OUTPUT_ITEMS = frozenset(
    {"reasoning", "function_call", "custom_tool_call", "local_shell_call", "web_search_call", "file_search_call"}
)


def _event(obj: dict[str, Any]) -> bytes:
    return f"event: {obj['type']}\ndata: {json.dumps(obj)}\n\n".encode()


def _is_output(item: Any) -> bool:
    if not isinstance(item, Mapping):
        return False
    kind = item.get("type")
    return kind in OUTPUT_ITEMS or (kind in (None, "message") and item.get("role") == "assistant")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return "\n".join(str(p.get("text") or "") for p in parts if isinstance(p, Mapping))


class Responses:
    """The responses protocol (see the module docstring)."""

    name = "responses"
    call_prefix = "call_"

    @staticmethod
    def items(body: Mapping[str, Any]) -> list[Any]:
        items = body.get("input")
        return items if isinstance(items, list) else []

    def opening(self, body: Mapping[str, Any]) -> str:
        if isinstance(body.get("input"), str):
            return body["input"]
        texts = []
        for item in self.items(body):
            if _is_output(item):
                break
            if isinstance(item, Mapping) and item.get("type") in (None, "message") and item.get("role") == "user":
                texts.append(_text(item.get("content")))
        return "\n".join(texts)

    def turn(self, body: Mapping[str, Any]) -> int:
        runs, inside = 0, False
        for item in self.items(body):
            output = _is_output(item)
            runs += output and not inside
            inside = output
        return runs

    @staticmethod
    def prompt_tokens(body: Mapping[str, Any]) -> int:
        return count_tokens(json.dumps([body.get("instructions"), body.get("input")]))

    @staticmethod
    def max_tokens(body: Mapping[str, Any]) -> int:
        return int(body.get("max_output_tokens") or 0)

    @staticmethod
    def error(status: int, message: str, kind: str | None, code: Any = None) -> dict[str, Any]:
        return {"error": {"message": message, "type": kind or "server_error", "code": code, "param": None}}

    @staticmethod
    def usage(reply: Reply) -> dict[str, Any]:
        return {
            "input_tokens": reply.prompt_tokens,
            "input_tokens_details": {"cached_tokens": reply.cached_tokens, "cache_write_tokens": 0},
            "output_tokens": reply.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        }

    @staticmethod
    def output(reply: Reply, rid: int) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        if reply.reasoning:
            content = [{"type": "reasoning_text", "text": reply.reasoning}]
            items.append(
                {"type": "reasoning", "id": f"rs_{rid}", "summary": [], "content": content, "status": "completed"}
            )
        if reply.text:
            part = {"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}
            message = {"type": "message", "id": f"msg_{rid}", "role": "assistant", "status": "completed"}
            items.append({**message, "content": [part]})
        for i, c in enumerate(reply.calls):
            if c.custom:
                items.append(
                    {
                        "type": "custom_tool_call",
                        "id": f"ctc_{rid}_{i}",
                        "call_id": c.id,
                        "name": c.name,
                        "input": c.arguments,
                    }
                )
            else:
                call = {"type": "function_call", "id": f"fc_{rid}_{i}", "call_id": c.id, "name": c.name}
                items.append({**call, "arguments": c.arguments, "status": "completed"})
        return items

    def answer(self, reply: Reply, body: Mapping[str, Any], rid: int) -> dict[str, Any]:
        length = reply.finish == "length"
        return {
            "id": f"resp_{rid}",
            "object": "response",
            "created_at": int(time.time()),
            "status": "incomplete" if length else "completed",
            "incomplete_details": {"reason": "max_output_tokens"} if length else None,
            "error": None,
            "model": body.get("model", "scripted"),
            "instructions": body.get("instructions"),
            "output": self.output(reply, rid),
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "temperature": body.get("temperature"),
            "top_p": body.get("top_p"),
            "max_output_tokens": body.get("max_output_tokens"),
            "metadata": {},
            "usage": self.usage(reply) if reply.reported else None,
        }

    def events(self, reply: Reply, body: Mapping[str, Any], rid: int) -> tuple[list[bytes], list[bytes]]:
        final = self.answer(reply, body, rid)
        seq = iter(range(1 << 30))

        def event(kind: str, **fields: Any) -> bytes:
            return _event({"type": kind, "sequence_number": next(seq), **fields})

        started = {**final, "status": "in_progress", "incomplete_details": None, "output": [], "usage": None}
        out = [event("response.created", response=started), event("response.in_progress", response=started)]
        for index, item in enumerate(final["output"]):
            out += _item_events(event, index, item)
        out.append(event(f"response.{final['status']}", response=final))
        return out, []

    def empty_event(self, body: Mapping[str, Any], rid: int) -> bytes:
        """The responses protocol has no empty event: a keep-alive is an SSE comment."""
        return b": keep-alive\n\n"

    @staticmethod
    def usage_sent(reply: Reply, body: Mapping[str, Any]) -> bool:
        return reply.reported


def _item_events(event: Any, index: int, item: dict[str, Any]) -> Iterator[bytes]:
    """The events that stream one output item, ``output_item.added`` to ``output_item.done``."""
    kind, at = item["type"], {"item_id": item["id"], "output_index": index}
    empty = {
        "message": {**item, "status": "in_progress", "content": []},
        "reasoning": {**item, "status": "in_progress", "content": []},
        "function_call": {**item, "status": "in_progress", "arguments": ""},
        "custom_tool_call": {**item, "input": ""},
    }[kind]
    yield event("response.output_item.added", output_index=index, item=empty)
    if kind in ("message", "reasoning"):
        part = item["content"][0]
        prefix = "response.output_text" if kind == "message" else "response.reasoning_text"
        extra = {"logprobs": []} if kind == "message" else {}
        yield event("response.content_part.added", **at, content_index=0, part={**part, "text": ""})
        text = part["text"]
        for i in range(0, len(text), 8):
            yield event(f"{prefix}.delta", **at, content_index=0, delta=text[i : i + 8], **extra)
        yield event(f"{prefix}.done", **at, content_index=0, text=text, **extra)
        yield event("response.content_part.done", **at, content_index=0, part=part)
    elif kind == "function_call":
        yield event("response.function_call_arguments.delta", **at, delta=item["arguments"])
        yield event("response.function_call_arguments.done", **at, name=item["name"], arguments=item["arguments"])
    else:
        yield event("response.custom_tool_call_input.delta", **at, delta=item["input"])
        yield event("response.custom_tool_call_input.done", **at, input=item["input"])
    yield event("response.output_item.done", output_index=index, item=item)

"""``destream: true``: a whole answer re-emitted as the SSE stream its protocol's clients expect.

Some servers leak tool calls into the text only when streaming (vLLM's qwen3 streaming parser
did); for such an alias the gateway asks the upstream without ``stream`` and replays the answer
here, after the tool parser has repaired it (:mod:`.repair`). The events are the protocols' own:

* chat: ``chat.completion.chunk`` objects - the role, the reasoning, the content, each tool call
  (id and name, then its arguments), the finish reason, the usage chunk when the client asked for
  it (``stream_options.include_usage``), then ``data: [DONE]``;
* responses: ``response.created``, ``response.in_progress``, per output item
  ``response.output_item.added`` / its text or arguments deltas and ``.done`` events /
  ``response.output_item.done``, then ``response.completed`` holding the whole response;
* messages: ``message_start``, per content block ``content_block_start`` / one delta
  (``text_delta``, ``thinking_delta``, ``input_json_delta``) / ``content_block_stop``, then
  ``message_delta`` (stop reason and usage) and ``message_stop``.

Each answer is sent as one delta per part: the tokens were not timed (the record's ``ttft_s`` is
``None`` for a destreamed call, as for any non-streamed one).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from typing import Any

from pytest_agentbench.serving.gateway.protocols import Protocol

__all__ = ["destreamed_events"]


def _data(obj: Any) -> bytes:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()


def _event(name: str, obj: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()


def destreamed_events(protocol: Protocol, obj: Mapping[str, Any], *, include_usage: bool = True) -> Iterator[bytes]:
    """The SSE events (bytes, one event each) that stream ``obj``, a whole answer of ``protocol``."""
    if protocol == "chat":
        return _chat(obj, include_usage)
    if protocol == "responses":
        return _responses(obj)
    return _messages(obj)


def _chat(obj: Mapping[str, Any], include_usage: bool) -> Iterator[bytes]:
    base = {
        "id": obj.get("id") or "chatcmpl-gateway",
        "object": "chat.completion.chunk",
        "created": obj.get("created") or int(time.time()),
        "model": obj.get("model") or "",
    }
    choice = (obj.get("choices") or [{}])[0]
    message = choice.get("message") or {}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        return _data({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

    yield chunk({"role": "assistant", "content": ""})
    for key in ("reasoning_content", "reasoning"):
        if message.get(key):
            yield chunk({key: message[key]})
    if message.get("content"):
        yield chunk({"content": message["content"]})
    for i, call in enumerate(message.get("tool_calls") or ()):
        function = call.get("function") or {}
        name = {"name": function.get("name"), "arguments": ""}
        yield chunk({"tool_calls": [{"index": i, "id": call.get("id"), "type": "function", "function": name}]})
        yield chunk({"tool_calls": [{"index": i, "function": {"arguments": function.get("arguments") or ""}}]})
    yield chunk({}, choice.get("finish_reason") or "stop")
    if include_usage and obj.get("usage") is not None:
        yield _data({**base, "choices": [], "usage": obj["usage"]})
    yield b"data: [DONE]\n\n"


def _responses(obj: Mapping[str, Any]) -> Iterator[bytes]:
    seq = iter(range(1 << 30))
    started = {**obj, "status": "in_progress", "output": []}
    yield _event("response.created", {"type": "response.created", "sequence_number": next(seq), "response": started})
    yield _event(
        "response.in_progress", {"type": "response.in_progress", "sequence_number": next(seq), "response": started}
    )
    for index, item in enumerate(obj.get("output") or ()):
        item_id = item.get("id") or f"item_{index}"
        where = {"item_id": item_id, "output_index": index}
        kind = item.get("type")
        empty = {**item, "content": []} if kind == "message" else {**item, "arguments": ""}
        if kind not in ("message", "function_call"):
            empty = item
        name = "response.output_item.added"
        yield _event(name, {"type": name, "sequence_number": next(seq), "output_index": index, "item": empty})
        if kind == "message":
            for part_index, part in enumerate(item.get("content") or ()):
                yield from _response_part(seq, where, part_index, part)
        elif kind == "function_call":
            args = item.get("arguments") or ""
            for name, extra in (
                ("response.function_call_arguments.delta", {"delta": args}),
                ("response.function_call_arguments.done", {"arguments": args}),
            ):
                yield _event(name, {"type": name, "sequence_number": next(seq), **where, **extra})
        name = "response.output_item.done"
        yield _event(name, {"type": name, "sequence_number": next(seq), "output_index": index, "item": item})
    name = "response.completed" if obj.get("status") in (None, "completed") else f"response.{obj.get('status')}"
    yield _event(name, {"type": name, "sequence_number": next(seq), "response": obj})


def _response_part(seq: Iterator[int], where: dict[str, Any], part_index: int, part: Any) -> Iterator[bytes]:
    at = {**where, "content_index": part_index}
    text = (part.get("text") or "") if isinstance(part, Mapping) else ""
    empty = {**part, "text": ""} if isinstance(part, Mapping) else part
    steps: list[tuple[str, dict[str, Any]]] = [("response.content_part.added", {"part": empty})]
    if isinstance(part, Mapping) and part.get("type") == "output_text":
        steps += [("response.output_text.delta", {"delta": text}), ("response.output_text.done", {"text": text})]
    steps.append(("response.content_part.done", {"part": part}))
    for name, extra in steps:
        yield _event(name, {"type": name, "sequence_number": next(seq), **at, **extra})


def _messages(obj: Mapping[str, Any]) -> Iterator[bytes]:
    usage = dict(obj.get("usage") or {})
    start = {**obj, "content": [], "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 0}}
    yield _event("message_start", {"type": "message_start", "message": start})
    for index, block in enumerate(obj.get("content") or ()):
        kind = block.get("type")
        if kind == "text":
            head, delta = {"type": "text", "text": ""}, {"type": "text_delta", "text": block.get("text") or ""}
        elif kind == "thinking":
            head = {"type": "thinking", "thinking": "", "signature": ""}
            delta = {"type": "thinking_delta", "thinking": block.get("thinking") or ""}
        elif kind == "tool_use":
            head = {"type": "tool_use", "id": block.get("id"), "name": block.get("name"), "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block.get("input") or {})}
        else:  # redacted thinking and anything newer: whole, in its start event
            head, delta = dict(block), None
        yield _event("content_block_start", {"type": "content_block_start", "index": index, "content_block": head})
        if delta is not None:
            yield _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        if kind == "thinking" and block.get("signature"):
            signature = {"type": "signature_delta", "signature": block["signature"]}
            yield _event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": signature})
        yield _event("content_block_stop", {"type": "content_block_stop", "index": index})
    stop = {"stop_reason": obj.get("stop_reason") or "end_turn", "stop_sequence": obj.get("stop_sequence")}
    yield _event("message_delta", {"type": "message_delta", "delta": stop, "usage": usage})
    yield _event("message_stop", {"type": "message_stop"})

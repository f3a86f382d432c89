"""Server-sent events through the gateway: what one stream measured.

The upstream's stream is cut into whole events by the package's HTTP client
(:class:`pytest_agentbench.serving.http.EventStream` with ``raw=True``: each event as sent, under
the gateway's event and stream limits); each is forwarded to the agent as it completes.

:func:`parse_event` reads one such event's name and data. :class:`StreamMeter` reads each event
of one protocol's stream as the built-in adapter reads a chat stream: the first content,
reasoning or tool-call delta is the first token (TTFT), every event that carries one is timed
(offsets from the request, up to :data:`MAX_TIMED_EVENTS`), the usage is the server's (chat: the
usage chunk; responses: ``response.completed``; messages: ``message_start`` then
``message_delta``, the later value of each field winning), and the stream is *finished* only
when the protocol says so (chat: a ``finish_reason``; responses: a terminal ``response.*``
event; messages: ``message_stop``) - a stream that just ends was dropped. A responses tool call is
its ``output_item.done`` item where the stream has one (what clients run), else what its
``output_item.added`` and argument deltas add up to; its events are matched by ``output_index``. The text is kept (up
to :data:`MAX_TEXT_CHARS`) so the tool parser can tell afterwards whether calls leaked into it.
Undecodable events are counted as junk; error events are kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pytest_agentbench.models.calls import Usage
from pytest_agentbench.serving.gateway.protocols import Protocol, usage_of
from pytest_agentbench.serving.gateway.repair import Answer

__all__ = ["MAX_TEXT_CHARS", "MAX_TIMED_EVENTS", "StreamMeter", "parse_event"]

#: Token-bearing events timed per stream (the rest are counted, not timed).
MAX_TIMED_EVENTS = 20_000
#: Characters of streamed text kept for the leak check (and of reasoning).
MAX_TEXT_CHARS = 1 << 20
_TERMINAL_RESPONSES = ("response.completed", "response.incomplete", "response.failed")


def parse_event(raw: bytes) -> tuple[str | None, str | None]:
    """(the ``event:`` name, the ``data:`` lines joined) of one event; comments give (None, None)."""
    name, data = None, []
    for line in raw.decode("utf-8", "replace").splitlines():
        if line.startswith(":") or not line:
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    return name, ("\n".join(data) if data else None)


class StreamMeter:
    """What one stream of ``protocol`` carried, event by event (see the module docstring)."""

    def __init__(self, protocol: Protocol, start: float, *, client_usage: bool = True) -> None:
        self.protocol = protocol
        self.start = start
        self.client_usage = client_usage  # False: drop the chat usage chunk the gateway asked for
        self.ttft_s: float | None = None
        self.token_times: list[float] = []
        self.token_events = 0
        self.events = 0
        self.junk = 0
        self.error: str | None = None
        self.finished = False
        self.finish_reason: str | None = None
        self.model = ""
        self._usage: dict[str, Any] | None = None
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._chars = 0
        self._calls: dict[Any, dict[str, str]] = {}
        self._item_index: dict[str, int] = {}

    # -- feeding ----------------------------------------------------------
    def feed(self, raw: bytes, now: float) -> bool:
        """Read one event; False: leave it out of the client's stream."""
        _, data = parse_event(raw)
        if data is None:
            return True
        self.events += 1
        if data.strip() == "[DONE]":
            return True
        try:
            obj = json.loads(data)
        except ValueError:
            self.junk += 1
            return True
        if not isinstance(obj, Mapping):
            self.junk += 1
            return True
        reader = {"chat": self._chat, "responses": self._responses, "messages": self._messages}[self.protocol]
        keep, token = reader(obj)
        if token:
            self._token(now)
        return keep

    def _token(self, now: float) -> None:
        offset = now - self.start
        if self.ttft_s is None:
            self.ttft_s = offset
        self.token_events += 1
        if len(self.token_times) < MAX_TIMED_EVENTS:
            self.token_times.append(offset)

    def _keep_text(self, into: list[str], piece: Any) -> bool:
        if not isinstance(piece, str) or not piece:
            return False
        if self._chars < MAX_TEXT_CHARS:
            into.append(piece[: MAX_TEXT_CHARS - self._chars])
            self._chars += len(into[-1])
        return True

    def _call(self, key: Any, *, call_id: Any = None, name: Any = None, arguments: Any = None) -> None:
        slot = self._calls.setdefault(key, {"id": "", "name": "", "arguments": ""})
        slot["id"] = call_id if isinstance(call_id, str) and call_id else slot["id"]
        slot["name"] += name if isinstance(name, str) else ""
        slot["arguments"] += arguments if isinstance(arguments, str) else ""

    # -- the protocols ----------------------------------------------------
    def _chat(self, obj: Mapping[str, Any]) -> tuple[bool, bool]:
        self.model = str(obj.get("model") or self.model)
        if isinstance(obj.get("error"), Mapping):
            self.error = str(obj["error"].get("message") or obj["error"])
        choices = obj.get("choices")
        if obj.get("usage") is not None:
            self._usage = obj["usage"] if isinstance(obj["usage"], Mapping) else None
            if not choices and not self.client_usage:
                return False, False
        token = False
        for choice in choices if isinstance(choices, list) else ():
            delta = choice.get("delta") if isinstance(choice, Mapping) else None
            if isinstance(delta, Mapping):
                token |= self._keep_text(self._text, delta.get("content"))
                thought = delta.get("reasoning_content") or delta.get("reasoning")
                token |= self._keep_text(self._reasoning, thought)
                for td in delta.get("tool_calls") or ():
                    if isinstance(td, Mapping):
                        fn = td.get("function") if isinstance(td.get("function"), Mapping) else {}
                        key = td.get("index") or 0
                        self._call(key, call_id=td.get("id"), name=fn.get("name"), arguments=fn.get("arguments"))
                        token = True
            if isinstance(choice, Mapping) and choice.get("finish_reason"):
                self.finish_reason, self.finished = str(choice["finish_reason"]), True
        return True, token

    def _responses(self, obj: Mapping[str, Any]) -> tuple[bool, bool]:
        kind = obj.get("type")
        if kind == "response.output_text.delta":
            return True, self._keep_text(self._text, obj.get("delta"))
        if kind in ("response.reasoning_text.delta", "response.reasoning_summary_text.delta"):
            return True, self._keep_text(self._reasoning, obj.get("delta"))
        item = obj.get("item") if isinstance(obj.get("item"), Mapping) else {}
        key = self._item_key(obj, item)
        if kind == "response.function_call_arguments.delta":
            self._call(key, arguments=obj.get("delta"))
            return True, True
        if kind == "response.output_item.added" and item.get("type") == "function_call":
            self._call(key, call_id=item.get("call_id"), name=item.get("name"), arguments=item.get("arguments"))
            return True, True
        if kind == "response.output_item.done" and item.get("type") == "function_call":
            # The finished item is the call as the client runs it: it replaces what the deltas added up
            # to (a server that also puts the arguments in output_item.added would have them twice).
            slot = self._calls.setdefault(key, {"id": "", "name": "", "arguments": ""})
            for field, value in (("id", item.get("call_id")), ("name", item.get("name"))):
                slot[field] = value if isinstance(value, str) and value else slot[field]
            slot["arguments"] = item["arguments"] if isinstance(item.get("arguments"), str) else slot["arguments"]
            return True, False
        if kind in _TERMINAL_RESPONSES or kind == "error":
            response = obj.get("response") if isinstance(obj.get("response"), Mapping) else {}
            self.model = str(response.get("model") or self.model)
            if response.get("usage") is not None:
                self._usage = response["usage"] if isinstance(response["usage"], Mapping) else None
            details = response.get("incomplete_details")
            reason = details.get("reason") if isinstance(details, Mapping) else None
            self.finish_reason = str(reason or response.get("status") or kind)
            self.finished = kind != "error"
            if kind in ("response.failed", "error"):
                error = response.get("error") or obj.get("message") or obj
                self.error = str(error.get("message") if isinstance(error, Mapping) else error)
        return True, False

    def _item_key(self, obj: Mapping[str, Any], item: Mapping[str, Any]) -> Any:
        """One output item's key: its ``output_index``, else the index its id was first seen with (servers leave
        one or the other out of some events)."""
        item_id = obj.get("item_id") or item.get("id")
        index = obj.get("output_index")
        if isinstance(index, int):
            if isinstance(item_id, str):
                self._item_index.setdefault(item_id, index)
            return index
        return self._item_index.get(item_id, item_id) if isinstance(item_id, str) else None

    def _messages(self, obj: Mapping[str, Any]) -> tuple[bool, bool]:
        kind = obj.get("type")
        if kind == "message_start" and isinstance(obj.get("message"), Mapping):
            self.model = str(obj["message"].get("model") or self.model)
            self._merge_usage(obj["message"].get("usage"))
        elif kind == "content_block_start" and isinstance(obj.get("content_block"), Mapping):
            block = obj["content_block"]
            if block.get("type") == "tool_use":
                self._call(obj.get("index"), call_id=block.get("id"), name=block.get("name"))
                return True, True
        elif kind == "content_block_delta" and isinstance(obj.get("delta"), Mapping):
            delta = obj["delta"]
            if delta.get("type") == "input_json_delta":
                self._call(obj.get("index"), arguments=delta.get("partial_json"))
                return True, True
            return True, self._keep_text(self._text, delta.get("text")) or self._keep_text(
                self._reasoning, delta.get("thinking")
            )
        elif kind == "message_delta":
            delta = obj.get("delta") if isinstance(obj.get("delta"), Mapping) else {}
            self.finish_reason = str(delta.get("stop_reason") or self.finish_reason or "") or None
            self._merge_usage(obj.get("usage"))
        elif kind == "message_stop":
            self.finished = True
        elif kind == "error":
            error = obj.get("error") if isinstance(obj.get("error"), Mapping) else {}
            self.error = f"{error.get('type', 'error')}: {error.get('message', '')}"
        return True, False

    def _merge_usage(self, usage: Any) -> None:
        if isinstance(usage, Mapping):
            merged = dict(self._usage or {})
            merged.update({k: v for k, v in usage.items() if v is not None})
            self._usage = merged

    # -- results ----------------------------------------------------------
    @property
    def usage(self) -> Usage:
        return usage_of(self.protocol, self._usage)

    def answer(self) -> Answer:
        """What the stream said, as one OpenAI-wire message (for the leak check and the record)."""
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self._text) or None}
        if self._reasoning:
            message["reasoning_content"] = "".join(self._reasoning)
        calls = [
            {"id": c["id"] or None, "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for c in self._calls.values()
        ]
        if calls:
            message["tool_calls"] = calls
        return Answer(message, self.finish_reason, self.model)

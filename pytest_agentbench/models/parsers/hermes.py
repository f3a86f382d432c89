"""The ``hermes`` tool-call format (Hermes 2/3, Qwen2.5, Qwen3).

``<tool_call>{"name": "f", "arguments": {...}}</tool_call>``, one block per
call. ``arguments`` may be an object or a JSON-encoded string; ``parameters``
is accepted for it. A missing closing tag is accepted when the JSON is
complete (the tag was a stop sequence). A code fence around the JSON inside
the tag (some models write one) is accepted too.
"""

from __future__ import annotations

import json
import re

from pytest_agentbench.models.parsers._common import (
    DECODER,
    TOOL_CLOSE,
    TOOL_OPEN,
    WS,
    Found,
    Tools,
    as_list,
    broken_span,
    decoded_span,
    json_error,
    text_parser,
)

_FENCE_IN_TAG = re.compile(r"```[A-Za-z0-9_+-]*\s*")
_AFTER_JSON = re.compile(r"\s*(?:```\s*)?")


def find_hermes(text: str, tools: Tools = None) -> list[Found]:
    found, pos = [], 0
    while (start := text.find(TOOL_OPEN, pos)) != -1:
        found.append(hermes_block(text, start))
        pos = found[-1].end
    return found


def hermes_block(text: str, start: int) -> Found:
    body = WS.match(text, start + len(TOOL_OPEN)).end()
    if fence := _FENCE_IN_TAG.match(text, body):  # some models wrap the JSON in ```json
        body = fence.end()
    try:
        obj, end = DECODER.raw_decode(text, body)
    except json.JSONDecodeError as exc:
        return broken_span(text, start, f"invalid JSON in <tool_call> ({json_error(exc, body)})")
    after = _AFTER_JSON.match(text, end).end()
    if text.startswith(TOOL_CLOSE, after):
        return decoded_span(start, after + len(TOOL_CLOSE), as_list(obj))
    if after == len(text):  # </tool_call> was a stop sequence; the JSON is whole
        return decoded_span(start, after, as_list(obj))
    return broken_span(text, start, "unexpected text after the JSON object in <tool_call>", search_from=end)


parse_hermes = text_parser(find_hermes)

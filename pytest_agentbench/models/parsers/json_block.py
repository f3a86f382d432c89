"""The ``json_block`` tool-call format: calls as JSON in a fenced block, or as the whole message.

A fenced block (no language, ``json``, ``tool_call`` or ``tool_code``) holding
one call object or a list of them, or a message that is nothing but such
JSON. A call object has a name under ``name``, ``tool``, ``tool_name`` or
``function`` and arguments under ``arguments``, ``parameters``, ``args``,
``input`` or ``tool_input``; the OpenAI shape ``{"function": {"name": ...,
"arguments": ...}}`` works too. Other blocks (a ``package.json``, a code
sample) stay in the content.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pytest_agentbench.models.parsers._common import (
    ARG_KEYS,
    DECODER,
    NAME_KEYS,
    WS,
    Found,
    Tools,
    as_list,
    broken_span,
    decoded_span,
    json_error,
    text_parser,
)

_FENCE = "```"
_NAME_HINT = re.compile(r'"(?:name|tool|tool_name|function)"\s*:')
_CALL_FENCES = frozenset({"", "json", "json5", "jsonc", "tool_call", "tool_code"})
_FENCE_OPEN = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\S\n]*\n?")


def find_json_blocks(text: str, tools: Tools = None) -> list[Found]:
    found, pos = [], 0
    while match := _FENCE_OPEN.search(text, pos):
        if match.group(1).lower() not in _CALL_FENCES:
            pos = _after_fence(text, match.end())
            continue
        block, pos = _json_fence(text, match)
        if block is not None:
            found.append(block)
    if not found and _FENCE not in text and (whole := _bare_json(text)):
        found.append(whole)
    return found


def _after_fence(text: str, start: int) -> int:
    close = text.find(_FENCE, start)
    return len(text) if close == -1 else close + len(_FENCE)


def _json_fence(text: str, fence: re.Match[str]) -> tuple[Found | None, int]:
    """One fenced block: its call(s), an error for a broken call, or None for other code; and its end."""
    body = WS.match(text, fence.end()).end()
    if not text.startswith(("{", "["), body):
        return None, _after_fence(text, body)
    try:
        value, end = DECODER.raw_decode(text, body)
    except json.JSONDecodeError as exc:
        block_end = _after_fence(text, body)
        if not _NAME_HINT.search(text, body, block_end):
            return None, block_end
        broken = broken_span(
            text, fence.start(), f"invalid JSON in fenced block ({json_error(exc, body)})", _FENCE, body
        )
        return broken, broken.end
    after = WS.match(text, end).end()
    closed = text.startswith(_FENCE, after)
    block_end = after + len(_FENCE) if closed else _after_fence(text, end)
    if not _is_call_list(value):
        return None, block_end
    if closed or after == len(text):
        return decoded_span(fence.start(), block_end, as_list(value)), block_end
    broken = broken_span(text, fence.start(), "unexpected text after the JSON in fenced block", _FENCE, end)
    return broken, broken.end


def _bare_json(text: str) -> Found | None:
    """A message that is nothing but a call object (or a list of them)."""
    start = WS.match(text).end()
    if not text.startswith(("{", "["), start):
        return None
    try:
        value, end = DECODER.raw_decode(text, start)
    except json.JSONDecodeError:
        return None
    if WS.match(text, end).end() != len(text) or not _is_call_list(value):
        return None
    return decoded_span(start, end, as_list(value))


def _is_call_list(value: Any) -> bool:
    items = as_list(value)
    return bool(items) and all(_is_call_shaped(item) for item in items)


def _is_call_shaped(obj: Any) -> bool:
    if not isinstance(obj, Mapping):
        return False
    if isinstance(obj.get("function"), Mapping):
        return _is_call_shaped(obj["function"])
    return any(isinstance(obj.get(k), str) for k in NAME_KEYS) and any(k in obj for k in ARG_KEYS)


parse_json_blocks = text_parser(find_json_blocks)

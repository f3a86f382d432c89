"""The ``glm47`` tool-call format (alias ``glm45``; GLM-4.5, 4.6, 4.7).

``<tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value></tool_call>``
(GLM-4.5/4.6 put a newline after the name and between tags). Zero arguments
is ``<tool_call>NAME</tool_call>``. Values are raw text, typed from the tool
schema; a hermes-style JSON call inside ``<tool_call>`` is decoded as hermes.
The closing tags are found once per text, so hostile output parses in linear time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pytest_agentbench.models.parsers._common import (
    BAD_NAME,
    TOOL_CLOSE,
    TOOL_OPEN,
    WS,
    Found,
    Malformed,
    Occurrences,
    Tools,
    broken_span,
    dumps,
    text_parser,
)
from pytest_agentbench.models.parsers._typed_values import declared_properties, typed_value
from pytest_agentbench.models.parsers.hermes import hermes_block

_ARG_KEY, _ARG_KEY_END = "<arg_key>", "</arg_key>"
_ARG_VAL, _ARG_VAL_END = "<arg_value>", "</arg_value>"
_GLM_NAME = re.compile(r"[^\s<>]*")
_ARG_VAL_END_OK = re.compile(r"\s*(?:<arg_key>|</tool_call>|\Z)")


def find_glm(text: str, tools: Tools = None) -> list[Found]:
    found, pos = [], 0
    marks = _Marks(text)
    while (start := text.find(TOOL_OPEN, pos)) != -1:
        found.append(_glm_block(text, start, tools, marks))
        pos = found[-1].end
    return found


class _Marks:
    """The closing tags of one text, found once: no block rescans the rest of the output (linear time)."""

    def __init__(self, text: str) -> None:
        self.values = Occurrences.of_tag(text, _ARG_VAL_END, _ARG_VAL_END_OK)
        self.keys = Occurrences.of_pattern(text, re.compile(re.escape(_ARG_KEY_END)))


def _glm_block(text: str, start: int, tools: Tools, marks: _Marks) -> Found:
    i = WS.match(text, start + len(TOOL_OPEN)).end()
    if text.startswith("{", i):  # a hermes-style call
        return hermes_block(text, start)
    name_end = _GLM_NAME.match(text, i).end()
    name = text[i:name_end]
    try:
        if not name:
            raise Malformed("missing function name after <tool_call>")
        if BAD_NAME.search(name):
            raise Malformed(f"invalid function name {name!r}")
        if name_end == len(text):
            raise Malformed(f"the output ends after the function name {name!r}")
        arguments, end = _glm_arguments(text, name_end, declared_properties(tools, name), marks)
    except Malformed as exc:
        return broken_span(text, start, str(exc))
    return Found(start, end, ((name, dumps(arguments)),))


def _glm_arguments(text: str, pos: int, schema: Mapping[str, Any], marks: _Marks) -> tuple[dict[str, Any], int]:
    """Decode ``<arg_key>K</arg_key><arg_value>V</arg_value>...</tool_call>``: arguments, end index."""
    arguments: dict[str, Any] = {}
    while True:
        pos = WS.match(text, pos).end()
        if text.startswith(TOOL_CLOSE, pos):
            return arguments, pos + len(TOOL_CLOSE)
        if pos == len(text):
            raise Malformed("the output ends before </tool_call>")
        if not text.startswith(_ARG_KEY, pos):
            raise Malformed("unexpected text in <tool_call>: expected <arg_key> or </tool_call>")
        key_end = marks.keys.first(pos)
        if key_end == -1:
            raise Malformed("the output ends inside <arg_key>")
        key = text[pos + len(_ARG_KEY) : key_end].strip()
        if not key:
            raise Malformed("empty <arg_key>")
        pos = WS.match(text, key_end + len(_ARG_KEY_END)).end()
        if not text.startswith(_ARG_VAL, pos):
            raise Malformed(f"<arg_key>{key}</arg_key> is not followed by <arg_value>")
        start = pos + len(_ARG_VAL)
        end = marks.values.first(start)
        if end == -1:
            raise Malformed(f"the output ends inside the <arg_value> of {key!r}")
        arguments[key] = typed_value(text[start:end], schema.get(key))
        pos = end + len(_ARG_VAL_END)


parse_glm = text_parser(find_glm)

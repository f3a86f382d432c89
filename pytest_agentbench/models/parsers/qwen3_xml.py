"""The ``qwen3_xml`` tool-call format (alias ``qwen3_coder``; Qwen3-Coder).

``<tool_call><function=NAME><parameter=KEY>value</parameter></function></tool_call>``.
The template puts a newline after ``<parameter=KEY>`` and before
``</parameter>``; exactly one of each is removed. Values are raw text (``<``
and ``&`` are not escaped): a ``</parameter>`` only closes the value when
``<parameter=``, ``</function>`` or ``</tool_call>`` follows. A hermes-style
JSON call inside ``<tool_call>`` (Qwen models emit both) is decoded as hermes.

Linear time on hostile output: the real closing tags are found once per text
(:class:`~._common.Occurrences`), and a block that fails leaves its walk's
positions behind, so the next block that reaches one fails there instead of
walking the rest of the output again.
"""

from __future__ import annotations

import re
from collections.abc import Callable
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

_FUNC_OPEN, _FUNC_CLOSE = "<function=", "</function>"
_PARAM_OPEN, _PARAM_CLOSE = "<parameter=", "</parameter>"
_QWEN_START = re.compile(r"<tool_call>|<function=")
_PARAM_END_OK = re.compile(r"\s*(?:<parameter=|</function>|</tool_call>|\Z)")
_PARAM_END_MISSING = re.compile(r"\n(?=<parameter=)|</function>(?=\s*(?:</tool_call>|\Z))")
_BRACKET = re.compile(">")


class _Scan:
    """One text's landmarks, found once (linear time however often blocks fail and restart).

    ``failed`` remembers the parameter positions of walks that failed: a walk from a position
    always ends the same way, so a later block that reaches one fails at once (hostile output
    of many unclosed blocks would otherwise be re-walked block after block).
    """

    def __init__(self, text: str, tools: Tools) -> None:
        self.text, self.tools = text, tools
        self.closes = Occurrences.of_tag(text, _PARAM_CLOSE, _PARAM_END_OK)
        self.missing = Occurrences.of_pattern(text, _PARAM_END_MISSING)
        self.brackets = Occurrences.of_pattern(text, _BRACKET)
        self.failed: dict[int, Callable[[str], str]] = {}

    def bracket(self, pos: int) -> int:
        return self.brackets.first(pos)


def find_qwen3_xml(text: str, tools: Tools = None) -> list[Found]:
    scan = _Scan(text, tools)
    found, pos = [], 0
    while match := _QWEN_START.search(text, pos):
        found.append(_qwen_block(scan, match.start()))
        pos = found[-1].end
    return found


def _qwen_block(scan: _Scan, start: int) -> Found:
    text = scan.text
    wrapped = text.startswith(TOOL_OPEN, start)
    close = TOOL_CLOSE if wrapped else _FUNC_CLOSE
    i = WS.match(text, start + len(TOOL_OPEN)).end() if wrapped else start
    if wrapped and text.startswith("{", i):  # a hermes-style call from a Qwen model
        return hermes_block(text, start)
    if not text.startswith(_FUNC_OPEN, i):
        return broken_span(text, start, "expected <function=NAME> after <tool_call>")
    try:
        name, arguments, end = _qwen_function(scan, i)
    except Malformed as exc:
        return broken_span(text, start, str(exc), close)
    after = WS.match(text, end).end()
    if text.startswith(TOOL_CLOSE, after):
        end = after + len(TOOL_CLOSE)
    return Found(start, end, ((name, dumps(arguments)),))


def _qwen_function(scan: _Scan, i: int) -> tuple[str, dict[str, Any], int]:
    """Decode ``<function=NAME>...</function>`` at ``i``: name, arguments, end index."""
    text = scan.text
    name_end = scan.bracket(i)
    if name_end == -1:
        raise Malformed("the output ends inside <function=")
    name = text[i + len(_FUNC_OPEN) : name_end].strip()
    if not name:
        raise Malformed("missing function name in <function=>")
    if BAD_NAME.search(name):
        raise Malformed(f"invalid function name {name!r}")
    schema = declared_properties(scan.tools, name)
    arguments: dict[str, Any] = {}
    visited: list[int] = []
    pos = name_end + 1
    try:
        while True:
            pos = WS.match(text, pos).end()
            if pos in scan.failed:
                raise _Failed(scan.failed[pos])
            visited.append(pos)
            if text.startswith(_FUNC_CLOSE, pos):
                return name, arguments, pos + len(_FUNC_CLOSE)
            if pos == len(text):
                raise _Failed(lambda n: f"<function={n}> is not closed")
            if not text.startswith(_PARAM_OPEN, pos):
                raise _Failed(lambda n: f"unexpected text in <function={n}>: expected <parameter=KEY> or </function>")
            try:
                key, value, pos = _qwen_parameter(scan, pos)
            except Malformed as exc:
                raise _Failed(_constant(str(exc))) from None
            arguments[key] = typed_value(value, schema.get(key))
    except _Failed as failed:
        for at in visited:
            scan.failed[at] = failed.reason
        raise Malformed(failed.reason(name)) from None


def _constant(reason: str) -> Callable[[str], str]:
    return lambda _name: reason


class _Failed(Exception):
    """A walk that failed, with its reason as a function of the function's name (memoised by position)."""

    def __init__(self, reason: Callable[[str], str]) -> None:
        super().__init__()
        self.reason = reason


def _qwen_parameter(scan: _Scan, pos: int) -> tuple[str, str, int]:
    """Decode ``<parameter=KEY>value</parameter>`` at ``pos``: key, raw value, end index."""
    text = scan.text
    key_end = scan.bracket(pos)
    if key_end == -1:
        raise Malformed("the output ends inside <parameter=")
    key = text[pos + len(_PARAM_OPEN) : key_end].strip()
    if not key:
        raise Malformed("missing parameter name in <parameter=>")
    start = key_end + 1
    end = scan.closes.first(start)
    if end != -1:
        next_pos = end + len(_PARAM_CLOSE)
    elif (missing := scan.missing.first(start)) != -1:  # the model left </parameter> out
        end = next_pos = missing
    else:
        raise Malformed(f"the output ends inside <parameter={key}>")
    value = text[start:end]
    value = value[1:] if value.startswith("\n") else value
    value = value[:-1] if value.endswith("\n") else value
    return key, value, next_pos


parse_qwen3_xml = text_parser(find_qwen3_xml)

"""The ``qwen3_xml`` tool-call format (alias ``qwen3_coder``; Qwen3-Coder).

``<tool_call><function=NAME><parameter=KEY>value</parameter></function></tool_call>``.
The template puts a newline after ``<parameter=KEY>`` and before
``</parameter>``; exactly one of each is removed. Values are raw text (``<``
and ``&`` are not escaped): a ``</parameter>`` only closes the value when
``<parameter=``, ``</function>`` or ``</tool_call>`` follows. A hermes-style
JSON call inside ``<tool_call>`` (Qwen models emit both) is decoded as hermes.
"""

from __future__ import annotations

import re
from typing import Any

from pytest_agentbench.models.parsers._common import (
    BAD_NAME,
    TOOL_CLOSE,
    TOOL_OPEN,
    WS,
    Found,
    Malformed,
    Tools,
    broken_span,
    dumps,
    structural_find,
    text_parser,
)
from pytest_agentbench.models.parsers._typed_values import declared_properties, typed_value
from pytest_agentbench.models.parsers.hermes import hermes_block

_FUNC_OPEN, _FUNC_CLOSE = "<function=", "</function>"
_PARAM_OPEN, _PARAM_CLOSE = "<parameter=", "</parameter>"
_QWEN_START = re.compile(r"<tool_call>|<function=")
_PARAM_END_OK = re.compile(r"\s*(?:<parameter=|</function>|</tool_call>|\Z)")
_PARAM_END_MISSING = re.compile(r"\n(?=<parameter=)|</function>(?=\s*(?:</tool_call>|\Z))")


def find_qwen3_xml(text: str, tools: Tools = None) -> list[Found]:
    found, pos = [], 0
    while match := _QWEN_START.search(text, pos):
        found.append(_qwen_block(text, match.start(), tools))
        pos = found[-1].end
    return found


def _qwen_block(text: str, start: int, tools: Tools) -> Found:
    wrapped = text.startswith(TOOL_OPEN, start)
    close = TOOL_CLOSE if wrapped else _FUNC_CLOSE
    i = WS.match(text, start + len(TOOL_OPEN)).end() if wrapped else start
    if wrapped and text.startswith("{", i):  # a hermes-style call from a Qwen model
        return hermes_block(text, start)
    if not text.startswith(_FUNC_OPEN, i):
        return broken_span(text, start, "expected <function=NAME> after <tool_call>")
    try:
        name, arguments, end = _qwen_function(text, i, tools)
    except Malformed as exc:
        return broken_span(text, start, str(exc), close)
    after = WS.match(text, end).end()
    if text.startswith(TOOL_CLOSE, after):
        end = after + len(TOOL_CLOSE)
    return Found(start, end, ((name, dumps(arguments)),))


def _qwen_function(text: str, i: int, tools: Tools) -> tuple[str, dict[str, Any], int]:
    """Decode ``<function=NAME>...</function>`` at ``i``: name, arguments, end index."""
    name_end = text.find(">", i)
    if name_end == -1:
        raise Malformed("the output ends inside <function=")
    name = text[i + len(_FUNC_OPEN) : name_end].strip()
    if not name:
        raise Malformed("missing function name in <function=>")
    if BAD_NAME.search(name):
        raise Malformed(f"invalid function name {name!r}")
    schema = declared_properties(tools, name)
    arguments: dict[str, Any] = {}
    pos = name_end + 1
    while True:
        pos = WS.match(text, pos).end()
        if text.startswith(_FUNC_CLOSE, pos):
            return name, arguments, pos + len(_FUNC_CLOSE)
        if pos == len(text):
            raise Malformed(f"<function={name}> is not closed")
        if not text.startswith(_PARAM_OPEN, pos):
            raise Malformed(f"unexpected text in <function={name}>: expected <parameter=KEY> or </function>")
        key, value, pos = _qwen_parameter(text, pos)
        arguments[key] = typed_value(value, schema.get(key))


def _qwen_parameter(text: str, pos: int) -> tuple[str, str, int]:
    """Decode ``<parameter=KEY>value</parameter>`` at ``pos``: key, raw value, end index."""
    key_end = text.find(">", pos)
    if key_end == -1:
        raise Malformed("the output ends inside <parameter=")
    key = text[pos + len(_PARAM_OPEN) : key_end].strip()
    if not key:
        raise Malformed("missing parameter name in <parameter=>")
    start = key_end + 1
    end = structural_find(text, _PARAM_CLOSE, _PARAM_END_OK, start)
    if end != -1:
        next_pos = end + len(_PARAM_CLOSE)
    elif missing := _PARAM_END_MISSING.search(text, start):  # the model left </parameter> out
        end = next_pos = missing.start()
    else:
        raise Malformed(f"the output ends inside <parameter={key}>")
    value = text[start:end]
    value = value[1:] if value.startswith("\n") else value
    value = value[:-1] if value.endswith("\n") else value
    return key, value, next_pos


parse_qwen3_xml = text_parser(find_qwen3_xml)

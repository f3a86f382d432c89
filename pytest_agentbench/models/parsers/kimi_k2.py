"""The ``kimi_k2`` tool-call format (Kimi K2 Instruct and Thinking).

::

    <|tool_calls_section_begin|>
    <|tool_call_begin|>functions.read_file:0<|tool_call_argument_begin|>{"path": "a.py"}<|tool_call_end|>
    <|tool_call_begin|>functions.run:1<|tool_call_argument_begin|>{"command": "ls"}<|tool_call_end|>
    <|tool_calls_section_end|>

The header is Kimi's own call id, ``functions.NAME:INDEX``; it is kept as the
call's id (Kimi's chat template refers to tool results by it), and the name is
what lies between ``functions.`` and ``:INDEX``. A bare name (no prefix, no
index) is accepted. ``tool_call_section`` (singular) is accepted for the section
tokens, as some checkpoints emit it.
"""

from __future__ import annotations

import re

from pytest_agentbench.models.parsers._common import BAD_NAME, Found, Malformed, Tools, text_parser
from pytest_agentbench.models.parsers._framed import Framing, find_framed
from pytest_agentbench.models.parsers._typed_values import tool_name

_HEADER = re.compile(r"(?:functions\.)?(?P<name>[^:\s]+?)(?::\d+)?")


def read_kimi_header(header: str, tools: Tools) -> tuple[str, str | None]:
    """``functions.NAME:IDX`` -> (NAME, the header as the call id)."""
    match = _HEADER.fullmatch(header)
    if not header or match is None:
        raise Malformed("missing function name in the call header")
    name = match.group("name")
    if name.endswith("."):
        raise Malformed(f"missing function name in the call header {header!r}")
    declared = {n for n in map(tool_name, tools or ()) if n}
    if declared and name not in declared and name.rsplit(".", 1)[-1] in declared:
        name = name.rsplit(".", 1)[-1]  # an older "functions.namespace.NAME:IDX"
    if BAD_NAME.search(name):
        raise Malformed(f"invalid function name {name!r} in header {header!r}")
    return name, header if header != name else None


KIMI = Framing(
    section_begin=re.compile(r"<\|tool_calls?_section_begin\|>"),
    call_begin=re.compile(r"<\|tool_call_begin\|>"),
    separator=re.compile(r"<\|tool_call_argument_begin\|>"),
    call_end=re.compile(r"<\|tool_call_end\|>"),
    section_end=re.compile(r"<\|tool_calls?_section_end\|>"),
    separator_name="<|tool_call_argument_begin|>",
    read_header=read_kimi_header,
)

#: Text that can only be a Kimi call (for the ``openai`` parser's leak recovery).
LOOKS_LIKE = re.compile(r"<\|tool_call_begin\|>")


def find_kimi(text: str, tools: Tools = None) -> list[Found]:
    return find_framed(KIMI, text, tools)


parse_kimi = text_parser(find_kimi)

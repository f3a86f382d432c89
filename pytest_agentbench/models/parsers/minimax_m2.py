"""The ``minimax_m2`` tool-call format (MiniMax-M2, M2.1, M2.5).

::

    <minimax:tool_call>
    <invoke name="read_file">
    <parameter name="path">src/a.py</parameter>
    </invoke>
    <invoke name="run">
    <parameter name="command">pytest -q</parameter>
    </invoke>
    </minimax:tool_call>

The name may be quoted with ``"`` or ``'`` or bare. Values are raw text, typed
from the tool schema (a string unless it declares another type; see
:mod:`._typed_values`). MiniMax-M2 thinks before answering and its template
keeps the reasoning in the text (vLLM's ``minimax_m2_append_think`` reasoning
parser returns ``<think>...</think>`` in the content): pair this format with
the ``qwen3`` or ``think_tags`` reasoning split.
"""

from __future__ import annotations

import re
from typing import Any

from pytest_agentbench.models.parsers._common import Found, Tools, text_parser
from pytest_agentbench.models.parsers._invoke import InvokeFormat, find_invokes
from pytest_agentbench.models.parsers._typed_values import typed_value


def read_minimax_value(raw: str, string: str | None, schema: Any) -> Any:
    return typed_value(raw, schema)


MINIMAX = InvokeFormat(prefixes=("",), block_open=("minimax:tool_call",), read_value=read_minimax_value)

#: Text that can only be a MiniMax call (for the ``openai`` parser's leak recovery).
LOOKS_LIKE = re.compile(r"<minimax:tool_call>\s*<invoke\s")


def find_minimax(text: str, tools: Tools = None) -> list[Found]:
    return find_invokes(MINIMAX, text, tools)


parse_minimax = text_parser(find_minimax)

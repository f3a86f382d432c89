"""The ``deepseek_v31`` tool-call format (alias ``deepseek_v3``; DeepSeek-V3, R1, V3.1, V3.2-Exp).

DeepSeek's special tokens (written with U+FF5C ``｜`` and U+2581 ``▁``) frame the
calls; V3.1 puts the name before the separator and the JSON arguments after it::

    <｜tool▁calls▁begin｜><｜tool▁call▁begin｜>read_file<｜tool▁sep｜>{"path": "a.py"}<｜tool▁call▁end｜>
    <｜tool▁call▁begin｜>run<｜tool▁sep｜>{"command": "ls"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>

V3 and R1 name the call type first and fence the arguments::

    <｜tool▁call▁begin｜>function<｜tool▁sep｜>read_file
    ```json
    {"path": "a.py"}
    ```<｜tool▁call▁end｜>

The section tokens are optional (a leaked call may lack them, and the end tokens
are often stop tokens), and the tokens spelt with ASCII ``|`` bars are accepted
too (with ``_`` for ``▁`` they would be Kimi K2's tokens: see :mod:`.kimi_k2`).
DeepSeek-V3.2 and V4 use the DSML format instead (:mod:`.dsml`).
"""

from __future__ import annotations

import re

from pytest_agentbench.models.parsers._common import Found, Tools, text_parser
from pytest_agentbench.models.parsers._framed import Framing, find_framed, plain_name


def _token(words: str) -> re.Pattern[str]:
    return re.compile("<[｜|]" + "▁".join(words.split()) + "[｜|]>")


DEEPSEEK = Framing(
    section_begin=_token("tool calls begin"),
    call_begin=_token("tool call begin"),
    separator=_token("tool sep"),
    call_end=_token("tool call end"),
    section_end=_token("tool calls end"),
    separator_name="<｜tool▁sep｜>",
    read_header=plain_name,
    fenced_type="function",
)

#: Text that can only be a DeepSeek call (for the ``openai`` parser's leak recovery).
LOOKS_LIKE = re.compile(DEEPSEEK.call_begin.pattern)


def find_deepseek(text: str, tools: Tools = None) -> list[Found]:
    return find_framed(DEEPSEEK, text, tools)


parse_deepseek = text_parser(find_deepseek)

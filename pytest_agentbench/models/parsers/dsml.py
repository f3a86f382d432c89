"""The DSML tool-call format: ``deepseek_v32`` and ``deepseek_v4`` (DeepSeek-V3.2, V4 Pro / Flash).

Every tag carries the ``｜DSML｜`` prefix (U+FF5C bars; ASCII ``|`` accepted);
V3.2 wraps the calls in ``function_calls``, V4 in ``tool_calls`` (the spellings
``toolcalls`` and ``tool`` have been seen too, and all are accepted by both names)::

    <｜DSML｜tool_calls>
    <｜DSML｜invoke name="edit_file">
    <｜DSML｜parameter name="path" string="true">src/a.py</｜DSML｜parameter>
    <｜DSML｜parameter name="count" string="false">1</｜DSML｜parameter>
    </｜DSML｜invoke>
    </｜DSML｜tool_calls>

``string="true"`` values are taken as written; ``string="false"`` values are JSON
(a value that does not decode stays text). Without the attribute a value is typed
from the tool schema when it declares a type, else decoded as JSON when it is JSON.
V4 thinks in ``<think>...</think>`` first: pair it with a reasoning parser.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pytest_agentbench.models.parsers._common import Found, Tools, text_parser
from pytest_agentbench.models.parsers._invoke import InvokeFormat, find_invokes, schema_typed
from pytest_agentbench.models.parsers._typed_values import typed_value


def read_dsml_value(raw: str, string: str | None, schema: Any) -> Any:
    if string == "true":
        return raw
    if string is None and schema_typed(schema):
        return typed_value(raw, schema)
    try:
        return json.loads(raw)
    except ValueError:
        return typed_value(raw, schema) if string == "false" else raw


DSML = InvokeFormat(
    prefixes=("｜DSML｜", "|DSML|"),
    block_open=("function_calls", "tool_calls", "toolcalls", "tool"),
    read_value=read_dsml_value,
)

#: Text that can only be a DSML call (for the ``openai`` parser's leak recovery).
LOOKS_LIKE = re.compile(r"<[｜|]DSML[｜|]invoke\s")


def find_dsml(text: str, tools: Tools = None) -> list[Found]:
    return find_invokes(DSML, text, tools)


parse_dsml = text_parser(find_dsml)

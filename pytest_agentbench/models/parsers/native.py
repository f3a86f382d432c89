"""The ``openai`` tool parser: the server's native tool calls, plus recovery of leaked ones.

Native ``tool_calls`` (or the legacy ``function_call``) on the message are
always taken. When there are none, :func:`recover_leaked` looks for calls
that leaked into the text: first the formats framed by special tokens, which
prose never contains (DeepSeek's, DSML, MiniMax's, Kimi's), then the
qwen3_xml, hermes, glm47 and json_block recognisers in turn; json_block only
keeps decodable calls to declared tools there (in a commercial model's prose
a JSON block is mostly an example). The first recogniser that finds something
decides.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from pytest_agentbench.models.parsers._common import (
    Extraction,
    Found,
    Malformed,
    Tools,
    arguments_json,
    assemble,
)
from pytest_agentbench.models.parsers._typed_values import tool_name
from pytest_agentbench.models.parsers.deepseek_v31 import LOOKS_LIKE as DEEPSEEK_CALL
from pytest_agentbench.models.parsers.deepseek_v31 import find_deepseek
from pytest_agentbench.models.parsers.dsml import LOOKS_LIKE as DSML_CALL
from pytest_agentbench.models.parsers.dsml import find_dsml
from pytest_agentbench.models.parsers.glm47 import find_glm
from pytest_agentbench.models.parsers.hermes import find_hermes
from pytest_agentbench.models.parsers.json_block import find_json_blocks
from pytest_agentbench.models.parsers.kimi_k2 import LOOKS_LIKE as KIMI_CALL
from pytest_agentbench.models.parsers.kimi_k2 import find_kimi
from pytest_agentbench.models.parsers.minimax_m2 import LOOKS_LIKE as MINIMAX_CALL
from pytest_agentbench.models.parsers.minimax_m2 import find_minimax
from pytest_agentbench.models.parsers.qwen3_xml import find_qwen3_xml


def native_calls(message: Mapping[str, Any]) -> tuple[list[tuple[str | None, str, str]], list[str]]:
    raw_calls = message.get("tool_calls")
    if not raw_calls and isinstance(message.get("function_call"), Mapping):  # legacy single call
        raw_calls = [{"function": message["function_call"]}]
    if not raw_calls:
        return [], []
    if not isinstance(raw_calls, list | tuple):
        return [], [f"tool_calls is not a list: {_raw(raw_calls)}"]
    calls, invalid = [], []
    for raw in raw_calls:
        try:
            calls.append(_native_call(raw))
        except Malformed as exc:
            invalid.append(f"{exc}: {_raw(raw)}")
    return calls, invalid


def _native_call(raw: Any) -> tuple[str | None, str, str]:
    if not isinstance(raw, Mapping):
        raise Malformed("tool call is not an object")
    function = raw.get("function")
    function = function if isinstance(function, Mapping) else raw
    name = function.get("name")
    if not isinstance(name, str) or not name.strip():
        raise Malformed("missing function name")
    call_id = raw.get("id")
    call_id = call_id if isinstance(call_id, str) and call_id else None
    return call_id, name.strip(), arguments_json(function.get("arguments"))


def _raw(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=repr)


def _find_known_json_blocks(text: str, tools: Tools) -> list[Found]:
    """json_block as a leak recogniser: decoded calls only, to declared tools when known.

    A fenced JSON block in a commercial model's prose is more often an example than a
    call, so broken blocks stay in the content here instead of counting as invalid.
    """
    names = {name for name in map(tool_name, tools or ()) if name}
    return [
        f
        for f in find_json_blocks(text)
        if f.error is None and (not names or all(name in names for name, _ in f.calls))
    ]


_LEAK_RECOGNISERS: tuple[tuple[re.Pattern[str], Callable[[str, Tools], list[Found]]], ...] = (
    (DEEPSEEK_CALL, find_deepseek),
    (DSML_CALL, find_dsml),
    (MINIMAX_CALL, find_minimax),
    (KIMI_CALL, find_kimi),
    (re.compile(r"<function=[^<>\s]*>"), find_qwen3_xml),
    (re.compile(r"<tool_call>\s*(?:```\w*\s*)?\{"), find_hermes),
    (re.compile(r"<tool_call>\s*[^\s<>{}]+\s*(?:<arg_key>|</tool_call>)"), find_glm),
    (re.compile(r"```|\A\s*[\[{]"), _find_known_json_blocks),
)


def recover_leaked(text: str, tools: Tools = None) -> Extraction:
    """The ``openai`` parser's text part: calls the server's own parser missed, if any."""
    for looks_like, find in _LEAK_RECOGNISERS:
        if looks_like.search(text) and (found := find(text, tools)):
            return assemble(text, found)
    return Extraction(text.strip())

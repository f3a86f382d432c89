"""Tool-call and reasoning parsers, chosen per model alias (``models.yaml``).

An OpenAI-compatible server returns an assistant message whose tool calls are
either *native* (``tool_calls`` on the message, decoded by the server's own
parser) or still *in the text* (no server-side parser, or it missed them).
:func:`parse_message` turns either into one :class:`ParsedMessage`:

1. reasoning: a ``reasoning_content`` / ``reasoning`` field is always taken;
   the reasoning parser then moves ``<think>`` text out of the content
   (:mod:`.reasoning`);
2. native ``tool_calls`` (or the legacy ``function_call``) are always taken;
3. the tool parser extracts calls from what is left of the content. ``openai``
   (:mod:`.native`) does so only when there were no native calls: it *recovers*
   calls that leaked into the text, trying the special-token formats (DeepSeek,
   DSML, MiniMax, Kimi), then the qwen3_xml, hermes, glm47 and json_block
   recognisers in turn (json_block only keeps decodable calls to declared tools
   there: in a commercial model's prose a JSON block is mostly an example).

Each format family has its module, which documents the format as the models'
chat templates render it: :mod:`.hermes`, :mod:`.qwen3_xml` (alias
``qwen3_coder``), :mod:`.glm47` (alias ``glm45``), :mod:`.json_block`,
:mod:`.deepseek_v31` (alias ``deepseek_v3``), :mod:`.dsml` (``deepseek_v32``,
``deepseek_v4``), :mod:`.minimax_m2` and :mod:`.kimi_k2`; the tool parser names
are vLLM's ``--tool-call-parser`` names for the same formats. XML values are
typed from the request's tool schema (:mod:`._typed_values`). Reasoning splits:
:mod:`.reasoning` (``think_tags``, ``qwen3``).

Model output never makes this package raise: a call that cannot be decoded goes
to ``invalid_tool_calls`` as ``"<reason>: <raw text>"``. Only an unknown parser
*name* raises :class:`ConfigError`. Calls without an id get ``call_<index>``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from pytest_agentbench.errors import ConfigError
from pytest_agentbench.models.calls import ParsedMessage, ToolCall
from pytest_agentbench.models.parsers._common import Extraction, ToolParser, Tools
from pytest_agentbench.models.parsers.deepseek_v31 import parse_deepseek
from pytest_agentbench.models.parsers.dsml import parse_dsml
from pytest_agentbench.models.parsers.glm47 import parse_glm
from pytest_agentbench.models.parsers.hermes import parse_hermes
from pytest_agentbench.models.parsers.json_block import parse_json_blocks
from pytest_agentbench.models.parsers.kimi_k2 import parse_kimi
from pytest_agentbench.models.parsers.minimax_m2 import parse_minimax
from pytest_agentbench.models.parsers.native import native_calls, recover_leaked
from pytest_agentbench.models.parsers.qwen3_xml import parse_qwen3_xml
from pytest_agentbench.models.parsers.reasoning import split_qwen3, split_think_tags

__all__ = [
    "REASONING_PARSERS",
    "TOOL_PARSERS",
    "Extraction",
    "ReasoningParser",
    "ToolParser",
    "parse_message",
    "validate_parser_names",
]


ReasoningParser = Callable[[str], tuple[str | None, str]]


def parse_message(
    message: Mapping[str, Any],
    *,
    tool_parser: str,
    reasoning_parser: str | None,
    tools: Tools = None,
) -> ParsedMessage:
    """An OpenAI-wire assistant message (``content``, ``tool_calls``, ...) after both parsers ran.

    ``tools`` is the request's tool list (OpenAI wire format); the XML formats use it to
    give parameters their declared types. An unknown parser name raises ``ConfigError``.
    """
    find_calls = _lookup(TOOL_PARSERS, tool_parser, "tool_parser")
    split_reasoning = (
        None if reasoning_parser is None else _lookup(REASONING_PARSERS, reasoning_parser, "reasoning_parser")
    )
    message = _as_mapping(message)
    text = _content_text(message.get("content"))
    thoughts = [_reasoning_field(message)]
    if split_reasoning is not None:
        thought, text = split_reasoning(text)
        thoughts.append(thought)
    native, invalid = native_calls(message)
    if find_calls is recover_leaked and (native or invalid):
        extraction = Extraction(text.strip())
    else:
        extraction = find_calls(text, tools)
    own_ids = extraction.ids or (None,) * len(extraction.calls)
    calls = [*native, *((i, name, arguments) for i, (name, arguments) in zip(own_ids, extraction.calls, strict=True))]
    return ParsedMessage(
        content=extraction.content,
        tool_calls=_with_ids(calls),
        reasoning="\n\n".join(t for t in thoughts if t) or None,
        invalid_tool_calls=(*invalid, *extraction.invalid),
    )


def validate_parser_names(tool_parser: Any, reasoning_parser: Any, where: str) -> None:
    """Raise ``ConfigError`` (prefixed with ``where``) unless both names are registered."""
    _lookup(TOOL_PARSERS, tool_parser, "tool_parser", where)
    if reasoning_parser is not None:
        _lookup(REASONING_PARSERS, reasoning_parser, "reasoning_parser", where)


def _lookup(registry: Mapping[str, Any], name: Any, key: str, where: str = "") -> Any:
    if isinstance(name, str) and name in registry:
        return registry[name]
    valid = ", ".join(sorted(registry)) + (" or null" if key == "reasoning_parser" else "")
    prefix = f"{where}: " if where else ""
    raise ConfigError(f"{prefix}unknown {key} {name!r}; expected one of: {valid}")


def _as_mapping(message: Any) -> Mapping[str, Any]:
    if isinstance(message, Mapping):
        return message
    dump = getattr(message, "model_dump", None)  # an openai client object, for convenience
    return dump() if callable(dump) else {}


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return "".join(p["text"] for p in content if isinstance(p, Mapping) and isinstance(p.get("text"), str))
    return ""


def _reasoning_field(message: Mapping[str, Any]) -> str | None:
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def _with_ids(calls: list[tuple[str | None, str, str]]) -> tuple[ToolCall, ...]:
    """Keep the ids calls came with; give the others ``call_<index>`` (unique in the message)."""
    taken = {call_id for call_id, _, _ in calls if call_id}
    out = []
    for index, (call_id, name, arguments) in enumerate(calls):
        if not call_id:
            call_id, n = f"call_{index}", 0
            while call_id in taken:
                n += 1
                call_id = f"call_{index}_{n}"
            taken.add(call_id)
        out.append(ToolCall(call_id, name, arguments))
    return tuple(out)


#: Tool parser name -> function(text, tools) -> Extraction. Besides our own names, vLLM's
#: ``--tool-call-parser`` names for the same formats (``qwen3_coder``, ``glm45``, ...).
TOOL_PARSERS: Mapping[str, ToolParser] = MappingProxyType(
    {
        "openai": recover_leaked,
        "hermes": parse_hermes,
        "qwen3_xml": parse_qwen3_xml,
        "qwen3_coder": parse_qwen3_xml,
        "glm47": parse_glm,
        "glm45": parse_glm,
        "json_block": parse_json_blocks,
        "deepseek_v3": parse_deepseek,
        "deepseek_v31": parse_deepseek,
        "deepseek_v32": parse_dsml,
        "deepseek_v4": parse_dsml,
        "minimax_m2": parse_minimax,
        "kimi_k2": parse_kimi,
    }
)


#: Reasoning parser name -> function(text) -> (reasoning or None, content).
REASONING_PARSERS: Mapping[str, ReasoningParser] = MappingProxyType(
    {
        "think_tags": split_think_tags,
        "qwen3": split_qwen3,
    }
)

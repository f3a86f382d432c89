"""Tool-call and reasoning parsers, chosen per model alias (``models.yaml``).

An OpenAI-compatible server returns an assistant message whose tool calls are
either *native* (``tool_calls`` on the message, decoded by the server's own
parser) or still *in the text* (no server-side parser, or it missed them).
:func:`parse_message` turns either into one :class:`ParsedMessage`:

1. reasoning: a ``reasoning_content`` / ``reasoning`` field is always taken;
   the reasoning parser then moves ``<think>`` text out of the content;
2. native ``tool_calls`` (or the legacy ``function_call``) are always taken;
3. the tool parser extracts calls from what is left of the content. ``openai``
   does so only when there were no native calls: it *recovers* calls that
   leaked into the text, trying the qwen3_xml, hermes, glm47 and json_block
   recognisers in turn (json_block only keeps decodable calls to declared
   tools there: in a commercial model's prose a JSON block is mostly an example).

Formats, as the models' chat templates render them:

``hermes``
    ``<tool_call>{"name": "f", "arguments": {...}}</tool_call>``, one block per
    call (Hermes 2/3, Qwen2.5, Qwen3). ``arguments`` may be an object or a
    JSON-encoded string; ``parameters`` is accepted for it. A missing closing
    tag is accepted when the JSON is complete (the tag was a stop sequence).
``qwen3_xml`` (alias ``qwen3_coder``)
    ``<tool_call><function=NAME><parameter=KEY>value</parameter></function></tool_call>``
    (Qwen3-Coder). The template puts a newline after ``<parameter=KEY>`` and
    before ``</parameter>``; exactly one of each is removed. Values are raw
    text (``<`` and ``&`` are not escaped): a ``</parameter>`` only closes the
    value when ``<parameter=``, ``</function>`` or ``</tool_call>`` follows.
``glm47`` (alias ``glm45``)
    ``<tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value></tool_call>``
    (GLM-4.7; GLM-4.5/4.6 put a newline after the name and between tags).
    Zero arguments is ``<tool_call>NAME</tool_call>``.
``json_block``
    A fenced block (no language, ``json``, ``tool_call`` or ``tool_code``)
    holding one call object or a list of them, or a message that is nothing
    but such JSON. A call object has a name under ``name``, ``tool``,
    ``tool_name`` or ``function`` and arguments under ``arguments``,
    ``parameters``, ``args``, ``input`` or ``tool_input``; the OpenAI shape
    ``{"function": {"name": ..., "arguments": ...}}`` works too. Other blocks
    (a ``package.json``, a code sample) stay in the content.

XML values are strings unless ``tools`` declares the parameter's type
(integer, number, boolean, object, array, null, or a union of them); a value
that does not fit its declared type stays the string it was.

Reasoning parser ``think_tags``: ``<think>...</think>`` at the start of the
output becomes ``reasoning``; so does everything before a lone ``</think>``
(the chat template opened the block, as GLM-4.7, Qwen3 and DeepSeek-R1 do);
an unclosed ``<think>`` (output truncated mid-thought) is all reasoning. Only
the first ``</think>`` counts, so a literal one later in a tool call's value is
safe once the model has reasoned; with no tags at all the text is content.

Model output never makes this module raise: a call that cannot be decoded goes
to ``invalid_tool_calls`` as ``"<reason>: <raw text>"``. Only an unknown parser
*name* raises :class:`ConfigError`. Calls without an id get ``call_<index>``.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from pytest_agentbench.errors import ConfigError
from pytest_agentbench.models.calls import ParsedMessage, ToolCall

__all__ = [
    "REASONING_PARSERS",
    "TOOL_PARSERS",
    "Extraction",
    "ReasoningParser",
    "ToolParser",
    "parse_message",
    "validate_parser_names",
]

Tools = Sequence[Mapping[str, Any]] | None

TOOL_OPEN, TOOL_CLOSE = "<tool_call>", "</tool_call>"
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
_FUNC_OPEN, _FUNC_CLOSE = "<function=", "</function>"
_PARAM_OPEN, _PARAM_CLOSE = "<parameter=", "</parameter>"
_ARG_KEY, _ARG_KEY_END = "<arg_key>", "</arg_key>"
_ARG_VAL, _ARG_VAL_END = "<arg_value>", "</arg_value>"
_FENCE = "```"

_DECODER = json.JSONDecoder()
_WS = re.compile(r"\s*")
_BAD_NAME = re.compile(r"[\s{}<>\"'`]")
_NAME_KEYS = ("name", "tool", "tool_name", "function")
_ARG_KEYS = ("arguments", "parameters", "args", "input", "tool_input")
_NAME_HINT = re.compile(r'"(?:name|tool|tool_name|function)"\s*:')
_CALL_FENCES = frozenset({"", "json", "json5", "jsonc", "tool_call", "tool_code"})

_FENCE_OPEN = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\S\n]*\n?")
_FENCE_IN_TAG = re.compile(r"```[A-Za-z0-9_+-]*\s*")
_AFTER_JSON = re.compile(r"\s*(?:```\s*)?")
_QWEN_START = re.compile(r"<tool_call>|<function=")
_PARAM_END_OK = re.compile(r"\s*(?:<parameter=|</function>|</tool_call>|\Z)")
_PARAM_END_MISSING = re.compile(r"\n(?=<parameter=)|</function>(?=\s*(?:</tool_call>|\Z))")
_GLM_NAME = re.compile(r"[^\s<>]*")
_ARG_VAL_END_OK = re.compile(r"\s*(?:<arg_key>|</tool_call>|\Z)")
_INT = re.compile(r"[+-]?\d+")


class _Malformed(ValueError):
    """A tool-call block that cannot be decoded; the message is the reason."""


@dataclass(frozen=True)
class _Found:
    """One tool-call span of the text: its decoded calls, or why it has none."""

    start: int
    end: int
    calls: tuple[tuple[str, str], ...] = ()  # (name, arguments JSON)
    error: str | None = None


@dataclass(frozen=True)
class Extraction:
    """What a tool parser found in a text: calls in order, the rest, failures."""

    content: str
    calls: tuple[tuple[str, str], ...] = ()  # (name, arguments JSON)
    invalid: tuple[str, ...] = ()  # "<reason>: <raw text>"


ToolParser = Callable[[str, Tools], Extraction]
ReasoningParser = Callable[[str], tuple[str | None, str]]


# -- public entry points ---------------------------------------------------------------------------


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
    native, invalid = _native_calls(message)
    if find_calls is _recover_leaked and (native or invalid):
        extraction = Extraction(text.strip())
    else:
        extraction = find_calls(text, tools)
    calls = [*native, *((None, name, arguments) for name, arguments in extraction.calls)]
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


# -- the message ----------------------------------------------------------------------------------


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


def _native_calls(message: Mapping[str, Any]) -> tuple[list[tuple[str | None, str, str]], list[str]]:
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
        except _Malformed as exc:
            invalid.append(f"{exc}: {_raw(raw)}")
    return calls, invalid


def _native_call(raw: Any) -> tuple[str | None, str, str]:
    if not isinstance(raw, Mapping):
        raise _Malformed("tool call is not an object")
    function = raw.get("function")
    function = function if isinstance(function, Mapping) else raw
    name = function.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _Malformed("missing function name")
    call_id = raw.get("id")
    call_id = call_id if isinstance(call_id, str) and call_id else None
    return call_id, name.strip(), _arguments_json(function.get("arguments"))


def _raw(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=repr)


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


# -- shared pieces ----------------------------------------------------------------------------------


def _assemble(text: str, found: Iterable[_Found]) -> Extraction:
    """The calls of ``found`` in order; the text outside their spans becomes the content."""
    pieces, calls, invalid = [], [], []
    pos = 0
    for f in sorted(found, key=lambda f: f.start):
        pieces.append(text[pos : f.start])
        pos = f.end
        if f.error is None:
            calls.extend(f.calls)
        else:
            invalid.append(f"{f.error}: {text[f.start : f.end].strip()}")
    pieces.append(text[pos:])
    return Extraction("\n".join(p.strip() for p in pieces if p.strip()), tuple(calls), tuple(invalid))


def _broken(text: str, start: int, reason: str, close: str = TOOL_CLOSE, search_from: int = -1) -> _Found:
    """A failed block. It spans to its closing tag, or to the next opening one (a tag the model
    mentioned in prose must not swallow the real call after it), or to the end of the output."""
    search_from = max(start + 1, search_from)
    reopen = text.find(TOOL_OPEN, search_from) if text.startswith(TOOL_OPEN, start) else -1
    end = text.find(close, search_from, len(text) if reopen == -1 else reopen)
    if end != -1:
        return _Found(start, end + len(close), error=reason)
    if reopen != -1:
        return _Found(start, reopen, error=reason)
    if reason.startswith("the output ends"):
        return _Found(start, len(text), error=f"{reason} (truncated?)")
    return _Found(start, len(text), error=f"{reason}; the output ends before {close} (truncated?)")


def _structural_find(text: str, tag: str, followed_by: re.Pattern[str], start: int) -> int:
    """Index of the first ``tag`` after ``start`` that ``followed_by`` matches behind; -1 if none.

    Values are raw text, so a closing tag inside a value (code that mentions it) is
    skipped unless what follows it is what follows a real one.
    """
    while (i := text.find(tag, start)) != -1:
        if followed_by.match(text, i + len(tag)):
            return i
        start = i + len(tag)
    return -1


def _arguments_json(value: Any) -> str:
    """Arguments as JSON object text: an object, JSON text of one (even double-encoded), or nothing."""
    if value is None:
        return "{}"
    if isinstance(value, Mapping):
        return _dumps(value)
    if not isinstance(value, str):
        raise _Malformed(f"arguments must be a JSON object, got {type(value).__name__}")
    text = value.strip() or "{}"
    try:
        decoded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Malformed(f"arguments are not valid JSON ({exc.msg} at position {exc.pos})") from None
    if isinstance(decoded, str):  # double-encoded: "{\"path\": ...}"
        return _arguments_json(decoded)
    if not isinstance(decoded, dict):
        raise _Malformed(f"arguments must be a JSON object, got {type(decoded).__name__}")
    return text


def _json_error(exc: json.JSONDecodeError, start: int) -> str:
    return f"{exc.msg.removesuffix(' at')} at char {exc.pos - start}"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _call_from_object(obj: Any) -> tuple[str, str]:
    """(name, arguments JSON) from a decoded call object."""
    if not isinstance(obj, Mapping):
        raise _Malformed(f"a tool call must be a JSON object, got {type(obj).__name__}")
    if isinstance(obj.get("function"), Mapping):
        return _call_from_object(obj["function"])
    name = next((obj[k] for k in _NAME_KEYS if isinstance(obj.get(k), str)), None)
    if name is None or not name.strip():
        raise _Malformed("missing function name")
    if _BAD_NAME.search(name.strip()):
        raise _Malformed(f"invalid function name {name!r}")
    arguments = next((obj[k] for k in _ARG_KEYS if k in obj), None)
    return name.strip(), _arguments_json(arguments)


def _decoded(start: int, end: int, values: Sequence[Any]) -> _Found:
    if not values:
        return _Found(start, end, error="empty list of tool calls")
    try:
        return _Found(start, end, tuple(_call_from_object(v) for v in values))
    except _Malformed as exc:
        return _Found(start, end, error=str(exc))


# -- hermes -------------------------------------------------------------------------------------------


def _find_hermes(text: str, tools: Tools = None) -> list[_Found]:
    found, pos = [], 0
    while (start := text.find(TOOL_OPEN, pos)) != -1:
        found.append(_hermes_block(text, start))
        pos = found[-1].end
    return found


def _hermes_block(text: str, start: int) -> _Found:
    body = _WS.match(text, start + len(TOOL_OPEN)).end()
    if fence := _FENCE_IN_TAG.match(text, body):  # some models wrap the JSON in ```json
        body = fence.end()
    try:
        obj, end = _DECODER.raw_decode(text, body)
    except json.JSONDecodeError as exc:
        return _broken(text, start, f"invalid JSON in <tool_call> ({_json_error(exc, body)})")
    after = _AFTER_JSON.match(text, end).end()
    if text.startswith(TOOL_CLOSE, after):
        return _decoded(start, after + len(TOOL_CLOSE), _as_list(obj))
    if after == len(text):  # </tool_call> was a stop sequence; the JSON is whole
        return _decoded(start, after, _as_list(obj))
    return _broken(text, start, "unexpected text after the JSON object in <tool_call>", search_from=end)


# -- qwen3_xml ----------------------------------------------------------------------------------------


def _find_qwen3_xml(text: str, tools: Tools = None) -> list[_Found]:
    found, pos = [], 0
    while match := _QWEN_START.search(text, pos):
        found.append(_qwen_block(text, match.start(), tools))
        pos = found[-1].end
    return found


def _qwen_block(text: str, start: int, tools: Tools) -> _Found:
    wrapped = text.startswith(TOOL_OPEN, start)
    close = TOOL_CLOSE if wrapped else _FUNC_CLOSE
    i = _WS.match(text, start + len(TOOL_OPEN)).end() if wrapped else start
    if wrapped and text.startswith("{", i):  # a hermes-style call from a Qwen model
        return _hermes_block(text, start)
    if not text.startswith(_FUNC_OPEN, i):
        return _broken(text, start, "expected <function=NAME> after <tool_call>")
    try:
        name, arguments, end = _qwen_function(text, i, tools)
    except _Malformed as exc:
        return _broken(text, start, str(exc), close)
    after = _WS.match(text, end).end()
    if text.startswith(TOOL_CLOSE, after):
        end = after + len(TOOL_CLOSE)
    return _Found(start, end, ((name, _dumps(arguments)),))


def _qwen_function(text: str, i: int, tools: Tools) -> tuple[str, dict[str, Any], int]:
    """Decode ``<function=NAME>...</function>`` at ``i``: name, arguments, end index."""
    name_end = text.find(">", i)
    if name_end == -1:
        raise _Malformed("the output ends inside <function=")
    name = text[i + len(_FUNC_OPEN) : name_end].strip()
    if not name:
        raise _Malformed("missing function name in <function=>")
    if _BAD_NAME.search(name):
        raise _Malformed(f"invalid function name {name!r}")
    schema = _properties(tools, name)
    arguments: dict[str, Any] = {}
    pos = name_end + 1
    while True:
        pos = _WS.match(text, pos).end()
        if text.startswith(_FUNC_CLOSE, pos):
            return name, arguments, pos + len(_FUNC_CLOSE)
        if pos == len(text):
            raise _Malformed(f"<function={name}> is not closed")
        if not text.startswith(_PARAM_OPEN, pos):
            raise _Malformed(f"unexpected text in <function={name}>: expected <parameter=KEY> or </function>")
        key, value, pos = _qwen_parameter(text, pos)
        arguments[key] = _typed_value(value, schema.get(key))


def _qwen_parameter(text: str, pos: int) -> tuple[str, str, int]:
    """Decode ``<parameter=KEY>value</parameter>`` at ``pos``: key, raw value, end index."""
    key_end = text.find(">", pos)
    if key_end == -1:
        raise _Malformed("the output ends inside <parameter=")
    key = text[pos + len(_PARAM_OPEN) : key_end].strip()
    if not key:
        raise _Malformed("missing parameter name in <parameter=>")
    start = key_end + 1
    end = _structural_find(text, _PARAM_CLOSE, _PARAM_END_OK, start)
    if end != -1:
        next_pos = end + len(_PARAM_CLOSE)
    elif missing := _PARAM_END_MISSING.search(text, start):  # the model left </parameter> out
        end = next_pos = missing.start()
    else:
        raise _Malformed(f"the output ends inside <parameter={key}>")
    value = text[start:end]
    value = value[1:] if value.startswith("\n") else value
    value = value[:-1] if value.endswith("\n") else value
    return key, value, next_pos


# -- glm47 ---------------------------------------------------------------------------------------------


def _find_glm(text: str, tools: Tools = None) -> list[_Found]:
    found, pos = [], 0
    while (start := text.find(TOOL_OPEN, pos)) != -1:
        found.append(_glm_block(text, start, tools))
        pos = found[-1].end
    return found


def _glm_block(text: str, start: int, tools: Tools) -> _Found:
    i = _WS.match(text, start + len(TOOL_OPEN)).end()
    if text.startswith("{", i):  # a hermes-style call
        return _hermes_block(text, start)
    name_end = _GLM_NAME.match(text, i).end()
    name = text[i:name_end]
    try:
        if not name:
            raise _Malformed("missing function name after <tool_call>")
        if _BAD_NAME.search(name):
            raise _Malformed(f"invalid function name {name!r}")
        if name_end == len(text):
            raise _Malformed(f"the output ends after the function name {name!r}")
        arguments, end = _glm_arguments(text, name_end, _properties(tools, name))
    except _Malformed as exc:
        return _broken(text, start, str(exc))
    return _Found(start, end, ((name, _dumps(arguments)),))


def _glm_arguments(text: str, pos: int, schema: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
    """Decode ``<arg_key>K</arg_key><arg_value>V</arg_value>...</tool_call>``: arguments, end index."""
    arguments: dict[str, Any] = {}
    while True:
        pos = _WS.match(text, pos).end()
        if text.startswith(TOOL_CLOSE, pos):
            return arguments, pos + len(TOOL_CLOSE)
        if pos == len(text):
            raise _Malformed("the output ends before </tool_call>")
        if not text.startswith(_ARG_KEY, pos):
            raise _Malformed("unexpected text in <tool_call>: expected <arg_key> or </tool_call>")
        key_end = text.find(_ARG_KEY_END, pos)
        if key_end == -1:
            raise _Malformed("the output ends inside <arg_key>")
        key = text[pos + len(_ARG_KEY) : key_end].strip()
        if not key:
            raise _Malformed("empty <arg_key>")
        pos = _WS.match(text, key_end + len(_ARG_KEY_END)).end()
        if not text.startswith(_ARG_VAL, pos):
            raise _Malformed(f"<arg_key>{key}</arg_key> is not followed by <arg_value>")
        start = pos + len(_ARG_VAL)
        end = _structural_find(text, _ARG_VAL_END, _ARG_VAL_END_OK, start)
        if end == -1:
            raise _Malformed(f"the output ends inside the <arg_value> of {key!r}")
        arguments[key] = _typed_value(text[start:end], schema.get(key))
        pos = end + len(_ARG_VAL_END)


# -- json_block ------------------------------------------------------------------------------------


def _find_json_blocks(text: str, tools: Tools = None) -> list[_Found]:
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


def _json_fence(text: str, fence: re.Match[str]) -> tuple[_Found | None, int]:
    """One fenced block: its call(s), an error for a broken call, or None for other code; and its end."""
    body = _WS.match(text, fence.end()).end()
    if not text.startswith(("{", "["), body):
        return None, _after_fence(text, body)
    try:
        value, end = _DECODER.raw_decode(text, body)
    except json.JSONDecodeError as exc:
        block_end = _after_fence(text, body)
        if not _NAME_HINT.search(text, body, block_end):
            return None, block_end
        broken = _broken(text, fence.start(), f"invalid JSON in fenced block ({_json_error(exc, body)})", _FENCE, body)
        return broken, broken.end
    after = _WS.match(text, end).end()
    closed = text.startswith(_FENCE, after)
    block_end = after + len(_FENCE) if closed else _after_fence(text, end)
    if not _is_call_list(value):
        return None, block_end
    if closed or after == len(text):
        return _decoded(fence.start(), block_end, _as_list(value)), block_end
    broken = _broken(text, fence.start(), "unexpected text after the JSON in fenced block", _FENCE, end)
    return broken, broken.end


def _bare_json(text: str) -> _Found | None:
    """A message that is nothing but a call object (or a list of them)."""
    start = _WS.match(text).end()
    if not text.startswith(("{", "["), start):
        return None
    try:
        value, end = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError:
        return None
    if _WS.match(text, end).end() != len(text) or not _is_call_list(value):
        return None
    return _decoded(start, end, _as_list(value))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _is_call_list(value: Any) -> bool:
    items = _as_list(value)
    return bool(items) and all(_is_call_shaped(item) for item in items)


def _is_call_shaped(obj: Any) -> bool:
    if not isinstance(obj, Mapping):
        return False
    if isinstance(obj.get("function"), Mapping):
        return _is_call_shaped(obj["function"])
    return any(isinstance(obj.get(k), str) for k in _NAME_KEYS) and any(k in obj for k in _ARG_KEYS)


# -- openai: native calls, plus recovery of leaked ones --------------------------------------------


def _find_known_json_blocks(text: str, tools: Tools) -> list[_Found]:
    """json_block as a leak recogniser: decoded calls only, to declared tools when known.

    A fenced JSON block in a commercial model's prose is more often an example than a
    call, so broken blocks stay in the content here instead of counting as invalid.
    """
    names = {name for name in map(_tool_name, tools or ()) if name}
    return [
        f
        for f in _find_json_blocks(text)
        if f.error is None and (not names or all(name in names for name, _ in f.calls))
    ]


_LEAK_RECOGNISERS: tuple[tuple[re.Pattern[str], Callable[[str, Tools], list[_Found]]], ...] = (
    (re.compile(r"<function=[^<>\s]*>"), _find_qwen3_xml),
    (re.compile(r"<tool_call>\s*(?:```\w*\s*)?\{"), _find_hermes),
    (re.compile(r"<tool_call>\s*[^\s<>{}]+\s*(?:<arg_key>|</tool_call>)"), _find_glm),
    (re.compile(r"```|\A\s*[\[{]"), _find_known_json_blocks),
)


def _recover_leaked(text: str, tools: Tools = None) -> Extraction:
    """The ``openai`` parser's text part: calls the server's own parser missed, if any."""
    for looks_like, find in _LEAK_RECOGNISERS:
        if looks_like.search(text) and (found := find(text, tools)):
            return _assemble(text, found)
    return Extraction(text.strip())


# -- typing XML values from the tool schema ---------------------------------------------------------


def _tool_name(tool: Any) -> str | None:
    function = _tool_function(tool)
    name = function.get("name")
    return name if isinstance(name, str) else None


def _tool_function(tool: Any) -> Mapping[str, Any]:
    if not isinstance(tool, Mapping):
        return {}
    function = tool.get("function")
    return function if isinstance(function, Mapping) else tool


def _properties(tools: Tools, name: str) -> Mapping[str, Any]:
    """The declared parameters of tool ``name`` (empty when unknown)."""
    for tool in tools or ():
        function = _tool_function(tool)
        if function.get("name") == name:
            parameters = function.get("parameters")
            properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
            return properties if isinstance(properties, Mapping) else {}
    return {}


def _declared_types(schema: Any) -> list[str]:
    if not isinstance(schema, Mapping):
        return []
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared.lower()]
    if isinstance(declared, list):
        return [t.lower() for t in declared if isinstance(t, str)]
    options = schema.get("anyOf") or schema.get("oneOf") or []
    return [t for option in options if isinstance(option, Mapping) for t in _declared_types(option)]


_NO = object()  # "does not convert"


def _typed_value(raw: str, schema: Any) -> Any:
    """``raw`` as the JSON type the parameter schema declares; the raw text if it does not fit."""
    types = _declared_types(schema)
    text = raw.strip()
    if "null" in types and text in ("null", "None"):
        return None
    if not types or "string" in types:
        return raw
    for kind in types:
        convert = _CONVERTERS.get(kind)
        if convert is not None and (value := convert(text)) is not _NO:
            return value
    return raw


def _to_int(text: str) -> Any:
    if _INT.fullmatch(text):
        return int(text)
    number = _to_float(text)
    return int(number) if number is not _NO and float(number).is_integer() else _NO


def _to_number(text: str) -> Any:
    return int(text) if _INT.fullmatch(text) else _to_float(text)


def _to_float(text: str) -> Any:
    try:
        number = float(text)
    except ValueError:
        return _NO
    return number if math.isfinite(number) else _NO


def _to_bool(text: str) -> Any:
    return {"true": True, "false": False}.get(text.lower(), _NO)  # Jinja renders True/False


def _to_container(kind: type) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        value = _loads_or_literal(text)
        if isinstance(value, str):  # double-encoded
            value = _loads_or_literal(value)
        return value if isinstance(value, kind) and _is_json(value) else _NO

    return convert


def _loads_or_literal(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:  # a Python literal ({'a': True}), as some templates render values
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _NO


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


_CONVERTERS: Mapping[str, Callable[[str], Any]] = MappingProxyType(
    {
        "integer": _to_int,
        "number": _to_number,
        "boolean": _to_bool,
        "object": _to_container(dict),
        "array": _to_container(list),
    }
)


# -- reasoning --------------------------------------------------------------------------------------


def split_think_tags(text: str) -> tuple[str | None, str]:
    """(reasoning, content): ``<think>`` reasoning at the start of ``text``, or before a lone ``</think>``."""
    close = text.find(THINK_CLOSE)
    if close != -1:
        before, after = text[:close], text[close + len(THINK_CLOSE) :]
        opened = before.find(THINK_OPEN)
        if opened != -1:
            before, after = before[opened + len(THINK_OPEN) :], before[:opened] + after
        return before.strip() or None, after
    start = _WS.match(text).end()
    if text.startswith(THINK_OPEN, start):  # truncated mid-thought
        return text[start + len(THINK_OPEN) :].strip() or None, ""
    return None, text


# -- registries -------------------------------------------------------------------------------------


def _text_parser(find: Callable[[str, Tools], list[_Found]]) -> ToolParser:
    def parse(text: str, tools: Tools = None) -> Extraction:
        return _assemble(text, find(text, tools))

    parse.__name__ = parse.__qualname__ = find.__name__.replace("_find", "parse")
    return parse


parse_hermes = _text_parser(_find_hermes)
parse_qwen3_xml = _text_parser(_find_qwen3_xml)
parse_glm = _text_parser(_find_glm)
parse_json_blocks = _text_parser(_find_json_blocks)

#: Tool parser name -> function(text, tools) -> Extraction. ``qwen3_coder`` and
#: ``glm45`` are vLLM's ``--tool-call-parser`` names for the same formats.
TOOL_PARSERS: Mapping[str, ToolParser] = MappingProxyType(
    {
        "openai": _recover_leaked,
        "hermes": parse_hermes,
        "qwen3_xml": parse_qwen3_xml,
        "qwen3_coder": parse_qwen3_xml,
        "glm47": parse_glm,
        "glm45": parse_glm,
        "json_block": parse_json_blocks,
    }
)

#: Reasoning parser name -> function(text) -> (reasoning or None, content).
REASONING_PARSERS: Mapping[str, ReasoningParser] = MappingProxyType(
    {
        "think_tags": split_think_tags,
    }
)

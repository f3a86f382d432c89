"""Typing XML tool-call values from the request's tool schema.

The XML formats (qwen3_xml, glm47) carry every value as text. A value is a
string unless ``tools`` declares the parameter's type (integer, number,
boolean, object, array, null, or a union of them); a value that does not fit
its declared type stays the string it was.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from pytest_agentbench.models.parsers._common import Tools


def tool_name(tool: Any) -> str | None:
    function = _tool_function(tool)
    name = function.get("name")
    return name if isinstance(name, str) else None


def _tool_function(tool: Any) -> Mapping[str, Any]:
    if not isinstance(tool, Mapping):
        return {}
    function = tool.get("function")
    return function if isinstance(function, Mapping) else tool


def declared_properties(tools: Tools, name: str) -> Mapping[str, Any]:
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


def typed_value(raw: str, schema: Any) -> Any:
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


_INT = re.compile(r"[+-]?\d+")


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

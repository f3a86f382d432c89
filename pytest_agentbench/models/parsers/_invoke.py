"""``<invoke name="F"><parameter name="K">V</parameter></invoke>`` calls: the engine of dsml and minimax_m2.

Both formats wrap one or more ``invoke`` elements in a block tag and carry each
argument as raw text in a ``parameter`` element; DeepSeek's DSML prefixes every
tag with ``｜DSML｜`` and marks string values with ``string="true"``. An
:class:`InvokeFormat` names the tags and types the values; :func:`find_invokes`
finds the calls.

Values are raw text: a closing ``</parameter>`` only ends a value when another
parameter, the ``</invoke>``, the block's end or the end of the output follows
it. A parameter tag at the start of a line ends the value before it too (the
model left ``</parameter>`` out, as vLLM's own parsers read it); so does
``</invoke>`` when no ``</parameter>`` follows; a missing ``</invoke>`` before
the block's end or the next call is tolerated. A parameter given twice makes the
call invalid (which value was meant?).

Linear time on hostile output: a call is bounded by the next ``<invoke`` tag (a
literal one inside a value ends the call there and it is reported invalid), and
attribute values are at most 256 characters.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_agentbench.models.parsers._common import (
    BAD_NAME,
    WS,
    Found,
    Malformed,
    NextMatch,
    Tools,
    dumps,
    structural_find,
)
from pytest_agentbench.models.parsers._typed_values import declared_properties

_ATTR_VALUE = r"(?:\"(?P<dq>[^\"<>\n]{0,256})\"|'(?P<sq>[^'<>\n]{0,256})'|(?P<bare>[^\s<>\"'=]{1,256}))"
_NAME_ATTR = re.compile(r"\s+name\s*=\s*" + _ATTR_VALUE + r"\s*>")
_PARAM_ATTRS = re.compile(
    r"\s+name\s*=\s*" + _ATTR_VALUE + r"(?:\s+string\s*=\s*[\"'](?P<string>true|false)[\"'])?\s*>"
)

#: (raw value, the ``string`` attribute or None, the parameter's schema) -> the JSON value.
ValueReader = Callable[[str, str | None, Any], Any]


@dataclass(frozen=True)
class InvokeFormat:
    """The tags of one format. ``prefixes`` are the tag prefixes accepted (spelling variants)."""

    prefixes: tuple[str, ...]
    block_open: tuple[str, ...]  # block tag names, without the prefix and the brackets
    read_value: ValueReader

    @functools.cached_property
    def opening(self) -> re.Pattern[str]:
        """A block tag (``block``), an invoke tag (``invoke``), either closing (``close``); prefix ``p``."""
        prefix = "|".join(map(re.escape, self.prefixes))
        blocks = "|".join(map(re.escape, self.block_open))
        return re.compile(rf"<(?P<close>/)?(?P<p>{prefix})(?:(?P<block>{blocks})>|(?P<invoke>invoke)(?:>|(?=\s)))")

    @functools.cached_property
    def invoke_tag(self) -> re.Pattern[str]:
        """An opening ``<invoke`` tag: what bounds a call."""
        prefix = "|".join(map(re.escape, self.prefixes))
        return re.compile(rf"<(?:{prefix})invoke(?=[\s>])")


@dataclass(frozen=True)
class _Tags:
    """The literal tags for one prefix, and what may follow a real ``</parameter>``."""

    param_open: str
    param_close: str
    invoke_close: str
    value_end: re.Pattern[str]
    block_close: re.Pattern[str]


@functools.lru_cache(maxsize=16)
def _tags(prefix: str, blocks: tuple[str, ...]) -> _Tags:
    p = re.escape(prefix)
    block_close = "|".join(f"</{p}{re.escape(b)}>" for b in blocks)
    value_end = re.compile(rf"\s*(?:<{p}parameter\s|</{p}invoke>|{block_close}|<{p}invoke\s|\Z)")
    closes = re.compile(block_close)
    return _Tags(f"<{prefix}parameter", f"</{prefix}parameter>", f"</{prefix}invoke>", value_end, closes)


def find_invokes(fmt: InvokeFormat, text: str, tools: Tools) -> list[Found]:
    """Every call (or broken call) and every block tag of ``text``, in order."""
    found: list[Found] = []
    next_invoke = NextMatch(text, fmt.invoke_tag)
    pos = 0
    while match := fmt.opening.search(text, pos):
        if match.group("close"):
            found.append(Found(match.start(), match.end()))  # a closing tag: markup
        elif match.group("invoke"):
            found.append(_Invoke(fmt, text, match, next_invoke.start(match.end()), tools).found())
        else:
            found.append(_block_open(fmt, text, match, next_invoke.start(match.end())))
        pos = max(found[-1].end, match.end())
    return found


def _block_open(fmt: InvokeFormat, text: str, match: re.Match[str], limit: int) -> Found:
    after = WS.match(text, match.end()).end()
    if after == limit and limit < len(text):
        return Found(match.start(), match.end())
    if after == len(text):
        return Found(match.start(), len(text), error="the output ends after the tool-call block tag (truncated?)")
    closing = _tags(match.group("p"), fmt.block_open).block_close.search(text, after, limit)
    return Found(match.start(), closing.end() if closing else limit, error="a tool-call block without an <invoke>")


class _Invoke:
    """One ``<invoke>`` element, bounded by ``limit`` (the next ``<invoke`` tag or the end)."""

    def __init__(self, fmt: InvokeFormat, text: str, match: re.Match[str], limit: int, tools: Tools) -> None:
        self.fmt, self.text, self.start, self.limit, self.tools = fmt, text, match.start(), limit, tools
        self.pos = match.end()
        self.tags = _tags(match.group("p"), fmt.block_open)
        # Within one call, the first real </parameter> (and </invoke>) after a position is asked for
        # once per parameter: NextMatch-style memory keeps that linear.
        self._value_end: tuple[int, int] = (len(text) + 1, -1)  # (searched from, result)
        self._invoke_close = NextMatch(text, self.tags.invoke_close, limit)
        self._param_line = NextMatch(text, "\n" + self.tags.param_open, limit)

    def found(self) -> Found:
        try:
            name, arguments, end = self._decode()
        except Malformed as exc:
            return self._broken(str(exc))
        return Found(self.start, end, ((name, dumps(arguments)),))

    def _decode(self) -> tuple[str, dict[str, Any], int]:
        text, limit, tags = self.text, self.limit, self.tags
        name, self.pos = _attribute_name(text, self.pos, limit, "invoke")
        schema = declared_properties(self.tools, name)
        arguments: dict[str, Any] = {}
        while True:
            pos = self.pos = WS.match(text, self.pos, limit).end()
            if text.startswith(tags.invoke_close, pos):
                return name, arguments, pos + len(tags.invoke_close)
            if tags.block_close.match(text, pos, limit) or (pos == limit and limit < len(text)):
                return name, arguments, pos  # </invoke> left out before the block's end or the next call
            if pos == limit:
                raise Malformed(f"the output ends inside <invoke name={name!r}>")
            if not text.startswith(tags.param_open, pos):
                raise Malformed(
                    f"unexpected text in <invoke name={name!r}>: expected <parameter name=...> or </invoke>"
                )
            key, flag, raw = self._parameter(pos + len(tags.param_open))
            if key in arguments:
                raise Malformed(f"parameter {key!r} given twice in <invoke name={name!r}>")
            arguments[key] = self.fmt.read_value(raw, flag, schema.get(key))

    def _parameter(self, pos: int) -> tuple[str, str | None, str]:
        """``name="K" [string="true"]>value</parameter>`` at ``pos``: key, string flag, raw value."""
        text, limit, tags = self.text, self.limit, self.tags
        attrs = _PARAM_ATTRS.match(text, pos, limit)
        if attrs is None:
            ends = limit == len(text) and text.find(">", pos, limit) == -1
            raise Malformed("the output ends inside <parameter" if ends else 'expected name="..."> in <parameter')
        key = (attrs.group("dq") or attrs.group("sq") or attrs.group("bare") or "").strip()
        if not key:
            raise Malformed("missing name in <parameter>")
        start = attrs.end()
        end = self._real_value_end(start)
        line = self._param_line.start(start)  # the next parameter on its own line: </parameter> left out
        if line < limit and (end == -1 or line < end):
            self.pos = line
            return key, attrs.group("string"), text[start:line]
        if end != -1:
            self.pos = end + len(tags.param_close)
            return key, attrs.group("string"), text[start:end]
        close = self._invoke_close.start(start)
        if close < limit:  # </parameter> left out before </invoke>
            self.pos = close
            return key, attrs.group("string"), text[start:close].rstrip("\n")
        if limit == len(text):
            raise Malformed(f"the output ends inside <parameter name={key!r}>")
        raise Malformed(f"<parameter name={key!r}> is not closed before the next <invoke>")

    def _real_value_end(self, start: int) -> int:
        searched_from, result = self._value_end
        if searched_from <= start and (result == -1 or result >= start):
            return result
        result = structural_find(self.text, self.tags.param_close, self.tags.value_end, start, self.limit)
        self._value_end = (start, result)
        return result

    def _broken(self, reason: str) -> Found:
        text, limit = self.text, self.limit
        closing = self._invoke_close.start(self.start)
        if closing < limit:
            return Found(self.start, closing + len(self.tags.invoke_close), error=reason)
        if limit < len(text):
            return Found(self.start, limit, error=reason)
        return Found(self.start, len(text), error=f"{reason} (truncated?)")


def _attribute_name(text: str, pos: int, limit: int, tag: str) -> tuple[str, int]:
    attrs = _NAME_ATTR.match(text, pos, limit)
    if attrs is None:
        if WS.match(text, pos, limit).end() == len(text):
            raise Malformed(f"the output ends inside <{tag}")
        raise Malformed(f'expected name="..."> in <{tag}')
    name = (attrs.group("dq") or attrs.group("sq") or attrs.group("bare") or "").strip()
    if not name:
        raise Malformed(f"missing name in <{tag}>")
    if BAD_NAME.search(name):
        raise Malformed(f"invalid function name {name!r}")
    return name, attrs.end()


def schema_typed(schema: Mapping[str, Any] | None) -> bool:
    """Whether a parameter schema declares a type (so values are typed from it)."""
    return isinstance(schema, Mapping) and any(k in schema for k in ("type", "anyOf", "oneOf"))

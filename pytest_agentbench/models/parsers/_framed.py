"""Calls framed by special tokens around a JSON object: the engine of deepseek_v31 and kimi_k2.

Both formats wrap a *section* of calls, and each call is ``BEGIN header SEP {json}
END``; they differ in the token spellings and in what the header holds (a name, or
Kimi's ``functions.NAME:IDX`` id). A :class:`Framing` names the tokens and decodes
the header; :func:`find_framed` finds the calls.

Linear time on hostile output: a call is bounded by the next call-begin token (a
special token, which never appears inside real arguments), and its JSON is decoded
from that bounded slice only, so no block rescans what the next block will scan.
A section-begin token must be followed by a call; the section-end token is dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from pytest_agentbench.models.parsers._common import (
    BAD_NAME,
    DECODER,
    WS,
    Found,
    Malformed,
    Tools,
    arguments_json,
    json_error,
)

_FENCE_OPEN = re.compile(r"```[A-Za-z0-9_+-]*[^\S\n]*\n?")
_FENCE_CLOSE = re.compile(r"\s*```")

#: header text -> (name, the call's own id or None); raises Malformed.
HeaderReader = Callable[[str, Tools], tuple[str, str | None]]


@dataclass(frozen=True)
class Framing:
    """The special tokens of one format, as patterns (spelling variants allowed)."""

    section_begin: re.Pattern[str]
    call_begin: re.Pattern[str]
    separator: re.Pattern[str]
    call_end: re.Pattern[str]
    section_end: re.Pattern[str]
    separator_name: str  # the separator as the messages print it
    read_header: HeaderReader
    fenced_type: str | None = None  # a header naming this type has the name after SEP (DeepSeek-V3)

    def markers(self) -> re.Pattern[str]:
        """One pattern for the tokens that start something: a section, a call, a section end."""
        parts = (self.section_begin.pattern, self.call_begin.pattern, self.section_end.pattern)
        return re.compile("|".join(f"(?P<g{i}>{p})" for i, p in enumerate(parts)))


def find_framed(framing: Framing, text: str, tools: Tools) -> list[Found]:
    """Every call (or broken call) and every section token of ``text``, in order."""
    markers = framing.markers()
    found: list[Found] = []
    pos = 0
    while match := markers.search(text, pos):
        kind = match.lastgroup
        if kind == "g1":
            found.append(_call(framing, text, match, tools))
        elif kind == "g0":
            found.append(_section_begin(framing, text, match))
        else:
            found.append(Found(match.start(), match.end()))  # a section end: markup
        pos = max(found[-1].end, match.end())
    return found


def _next_call(framing: Framing, text: str, start: int) -> int:
    later = framing.call_begin.search(text, start)
    return len(text) if later is None else later.start()


def _section_begin(framing: Framing, text: str, match: re.Match[str]) -> Found:
    after = WS.match(text, match.end()).end()
    if framing.call_begin.match(text, after):
        return Found(match.start(), match.end())
    limit = _next_call(framing, text, match.end())
    if after == len(text):
        return Found(match.start(), len(text), error="the output ends after the section begin token (truncated?)")
    end_token = framing.section_end.search(text, after, limit)
    end = end_token.end() if end_token else limit
    return Found(match.start(), end, error="a tool-call section without a call in it")


def _call(framing: Framing, text: str, match: re.Match[str], tools: Tools) -> Found:
    start, body = match.start(), match.end()
    limit = _next_call(framing, text, body)
    try:
        sep = framing.separator.search(text, body, limit)
        if sep is None:
            where = "the output ends" if limit == len(text) else "the next call begins"
            raise Malformed(f"{where} before {framing.separator_name}")
        header = text[body : sep.start()].strip()
        if framing.fenced_type is not None and header == framing.fenced_type:
            name, call_id, arguments, end = _fenced_call(framing, text, sep.end(), limit, tools)
        else:
            name, call_id = framing.read_header(header, tools)
            arguments, end = _json_arguments(text, sep.end(), limit)
        end = _after_call(framing, text, end, limit)
    except Malformed as exc:
        return _broken(framing, text, start, limit, str(exc))
    return Found(start, end, ((name, arguments),), ids=(call_id,))


def _fenced_call(framing: Framing, text: str, pos: int, limit: int, tools: Tools) -> tuple[str, str | None, str, int]:
    """``NAME\\n```json\\n{...}\\n``` `` after the separator (DeepSeek-V3 / R1): name, id, arguments, end."""
    line_end = text.find("\n", pos, limit)
    if line_end == -1:
        raise Malformed("the output ends after the function name" if limit == len(text) else "no arguments after NAME")
    name, call_id = framing.read_header(text[pos:line_end].strip(), tools)
    body = line_end + 1
    fence = _FENCE_OPEN.match(text, body, limit)
    arguments, end = _json_arguments(text, fence.end() if fence else body, limit)
    if fence and (close := _FENCE_CLOSE.match(text, end, limit)):
        end = close.end()
    return name, call_id, arguments, end


def _json_arguments(text: str, pos: int, limit: int) -> tuple[str, int]:
    """The JSON object at ``pos``, decoded from ``text[pos:limit]`` only, and where it ends."""
    body = WS.match(text, pos, limit).end()
    if body == limit:
        raise Malformed("the output ends before the arguments" if limit == len(text) else "missing arguments")
    chunk = text[body:limit]
    try:
        value, length = DECODER.raw_decode(chunk)
    except json.JSONDecodeError as exc:
        raise Malformed(f"invalid JSON arguments ({json_error(exc, 0)})") from None
    if not isinstance(value, dict):
        raise Malformed(f"arguments must be a JSON object, got {type(value).__name__}")
    return arguments_json(chunk[:length]), body + length


def _after_call(framing: Framing, text: str, end: int, limit: int) -> int:
    """The end of the call: its end token, or the end of the output (the token was a stop token)."""
    after = WS.match(text, end, limit).end()
    if closing := framing.call_end.match(text, after, limit):
        return closing.end()
    if after == len(text) or framing.section_end.match(text, after, limit):
        return after
    raise Malformed("unexpected text after the arguments: expected the call end token")


def _broken(framing: Framing, text: str, start: int, limit: int, reason: str) -> Found:
    closing = framing.call_end.search(text, start, limit)
    if closing is not None:
        return Found(start, closing.end(), error=reason)
    if limit < len(text):
        return Found(start, limit, error=reason)
    return Found(start, len(text), error=reason if reason.endswith("(truncated?)") else f"{reason} (truncated?)")


def plain_name(header: str, tools: Tools) -> tuple[str, str | None]:
    """A header that is the function name itself."""
    if not header:
        raise Malformed("missing function name")
    if BAD_NAME.search(header):
        raise Malformed(f"invalid function name {header!r}")
    return header, None

"""The pieces every text tool-call format shares: spans, JSON arguments, call objects.

A recogniser (one per format family) finds :class:`Found` spans in the text;
:func:`assemble` turns them into an :class:`Extraction` (calls in order, the
rest of the text as content, the failures as ``"<reason>: <raw text>"``). A
span with neither calls nor an error is markup to drop (a section marker). A
format that carries its own call ids (Kimi K2) gives them in ``Found.ids``.
Arguments always leave as JSON object text (:func:`arguments_json`); a block
that cannot be decoded raises :class:`Malformed` inside a recogniser and becomes
an invalid call, never an exception out of the package.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Tools = Sequence[Mapping[str, Any]] | None
TOOL_OPEN, TOOL_CLOSE = "<tool_call>", "</tool_call>"
DECODER = json.JSONDecoder()
WS = re.compile(r"\s*")
BAD_NAME = re.compile(r"[\s{}<>\"'`]")
NAME_KEYS = ("name", "tool", "tool_name", "function")
ARG_KEYS = ("arguments", "parameters", "args", "input", "tool_input")


class Malformed(ValueError):
    """A tool-call block that cannot be decoded; the message is the reason."""


@dataclass(frozen=True)
class Found:
    """One tool-call span of the text: its decoded calls, or why it has none."""

    start: int
    end: int
    calls: tuple[tuple[str, str], ...] = ()  # (name, arguments JSON)
    error: str | None = None
    ids: tuple[str | None, ...] = ()  # the format's own call ids, parallel to calls; () when it has none


@dataclass(frozen=True)
class Extraction:
    """What a tool parser found in a text: calls in order, the rest, failures."""

    content: str
    calls: tuple[tuple[str, str], ...] = ()  # (name, arguments JSON)
    invalid: tuple[str, ...] = ()  # "<reason>: <raw text>"
    ids: tuple[str | None, ...] = ()  # parallel to calls when any call came with its own id


ToolParser = Callable[[str, Tools], Extraction]


def assemble(text: str, found: Iterable[Found]) -> Extraction:
    """The calls of ``found`` in order; the text outside their spans becomes the content."""
    pieces, calls, invalid, ids = [], [], [], []
    pos = 0
    for f in sorted(found, key=lambda f: f.start):
        pieces.append(text[pos : f.start])
        pos = f.end
        if f.error is None:
            calls.extend(f.calls)
            ids.extend(f.ids or (None,) * len(f.calls))
        else:
            invalid.append(f"{f.error}: {text[f.start : f.end].strip()}")
    pieces.append(text[pos:])
    content = "\n".join(p.strip() for p in pieces if p.strip())
    return Extraction(content, tuple(calls), tuple(invalid), tuple(ids) if any(ids) else ())


def broken_span(text: str, start: int, reason: str, close: str = TOOL_CLOSE, search_from: int = -1) -> Found:
    """A failed block. It spans to its closing tag, or to the next opening one (a tag the model
    mentioned in prose must not swallow the real call after it), or to the end of the output."""
    search_from = max(start + 1, search_from)
    reopen = text.find(TOOL_OPEN, search_from) if text.startswith(TOOL_OPEN, start) else -1
    end = text.find(close, search_from, len(text) if reopen == -1 else reopen)
    if end != -1:
        return Found(start, end + len(close), error=reason)
    if reopen != -1:
        return Found(start, reopen, error=reason)
    if reason.startswith("the output ends"):
        return Found(start, len(text), error=f"{reason} (truncated?)")
    return Found(start, len(text), error=f"{reason}; the output ends before {close} (truncated?)")


def structural_find(text: str, tag: str, followed_by: re.Pattern[str], start: int, end: int | None = None) -> int:
    """Index of the first ``tag`` in ``text[start:end]`` that ``followed_by`` matches behind; -1 if none.

    Values are raw text, so a closing tag inside a value (code that mentions it) is
    skipped unless what follows it is what follows a real one. ``followed_by`` is
    matched against ``text[:end]``, so ``\\Z`` there means the end of the bounded region.
    """
    end = len(text) if end is None else end
    while (i := text.find(tag, start, end)) != -1:
        if followed_by.match(text, i + len(tag), end):
            return i
        start = i + len(tag)
    return -1


class Occurrences:
    """Where something occurs in one text, found in one pass, asked for by position (bisection).

    ``Occurrences.of_tag(text, tag, followed_by)``: the ``tag``s that ``followed_by`` matches
    behind (a value's real closing tags); ``Occurrences.of_pattern(text, pattern)``: the starts
    of ``pattern``'s matches. A recogniser that walks a block parameter by parameter, and walks
    again from the next block when one fails, then asks in O(log n) instead of rescanning.
    """

    __slots__ = ("_starts",)

    def __init__(self, starts: list[int]) -> None:
        self._starts = starts

    @classmethod
    def of_tag(cls, text: str, tag: str, followed_by: re.Pattern[str]) -> Occurrences:
        starts, i = [], text.find(tag)
        while i != -1:
            if followed_by.match(text, i + len(tag)):
                starts.append(i)
            i = text.find(tag, i + len(tag))
        return cls(starts)

    @classmethod
    def of_pattern(cls, text: str, pattern: re.Pattern[str]) -> Occurrences:
        return cls([m.start() for m in pattern.finditer(text)])

    def first(self, pos: int) -> int:
        """The first occurrence at or after ``pos``; -1 if none."""
        i = bisect.bisect_left(self._starts, pos)
        return self._starts[i] if i < len(self._starts) else -1


class NextMatch:
    """The next occurrence of ``pattern`` (a regex or a literal) in ``text[:end]``, for growing positions.

    A recogniser that bounds each block by the next opening tag asks for it once per
    block; positions only grow, so remembering the last answer makes all the asks
    together one pass over the text (linear time, whatever the input).
    """

    __slots__ = ("_end", "_found", "_pattern", "_text")

    def __init__(self, text: str, pattern: re.Pattern[str] | str, end: int | None = None) -> None:
        self._text, self._pattern = text, pattern
        self._end = len(text) if end is None else end
        self._found = -1  # the last answer; -1: none yet

    def start(self, pos: int) -> int:
        """Index of the first occurrence at or after ``pos``; ``end`` when there is none."""
        if self._found >= pos:
            return self._found
        if isinstance(self._pattern, str):
            i = self._text.find(self._pattern, pos, self._end)
            self._found = self._end if i == -1 else i
        else:
            match = self._pattern.search(self._text, pos, self._end)
            self._found = self._end if match is None else match.start()
        return self._found


def arguments_json(value: Any) -> str:
    """Arguments as JSON object text: an object, JSON text of one (even double-encoded), or nothing."""
    if value is None:
        return "{}"
    if isinstance(value, Mapping):
        return dumps(value)
    if not isinstance(value, str):
        raise Malformed(f"arguments must be a JSON object, got {type(value).__name__}")
    text = value.strip() or "{}"
    try:
        decoded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Malformed(f"arguments are not valid JSON ({exc.msg} at position {exc.pos})") from None
    if isinstance(decoded, str):  # double-encoded: "{\"path\": ...}"
        return arguments_json(decoded)
    if not isinstance(decoded, dict):
        raise Malformed(f"arguments must be a JSON object, got {type(decoded).__name__}")
    return text


def json_error(exc: json.JSONDecodeError, start: int) -> str:
    return f"{exc.msg.removesuffix(' at')} at char {exc.pos - start}"


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def call_from_object(obj: Any) -> tuple[str, str]:
    """(name, arguments JSON) from a decoded call object."""
    if not isinstance(obj, Mapping):
        raise Malformed(f"a tool call must be a JSON object, got {type(obj).__name__}")
    if isinstance(obj.get("function"), Mapping):
        return call_from_object(obj["function"])
    name = next((obj[k] for k in NAME_KEYS if isinstance(obj.get(k), str)), None)
    if name is None or not name.strip():
        raise Malformed("missing function name")
    if BAD_NAME.search(name.strip()):
        raise Malformed(f"invalid function name {name!r}")
    arguments = next((obj[k] for k in ARG_KEYS if k in obj), None)
    return name.strip(), arguments_json(arguments)


def decoded_span(start: int, end: int, values: Sequence[Any]) -> Found:
    if not values:
        return Found(start, end, error="empty list of tool calls")
    try:
        return Found(start, end, tuple(call_from_object(v) for v in values))
    except Malformed as exc:
        return Found(start, end, error=str(exc))


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def text_parser(find: Callable[[str, Tools], list[Found]]) -> ToolParser:
    def parse(text: str, tools: Tools = None) -> Extraction:
        return assemble(text, find(text, tools))

    parse.__name__ = parse.__qualname__ = find.__name__.replace("find_", "parse_", 1)
    return parse

"""Plain data that crosses the adapter seam: tool calls, usage, one completion.

Kept free of any client library so parsers, the agent and reports share them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ToolCall:
    """One tool call as the model emitted it. ``arguments`` is the raw JSON text."""

    id: str
    name: str
    arguments: str

    def parsed_arguments(self) -> dict[str, Any]:
        """The arguments as a dict; ``ValueError`` with a readable reason otherwise."""
        text = self.arguments.strip() or "{}"
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"arguments are not valid JSON ({exc.msg} at position {exc.pos})") from None
        if not isinstance(value, dict):
            raise ValueError(f"arguments must be a JSON object, got {type(value).__name__}")
        return value


@dataclass(frozen=True)
class Usage:
    """Token counts as the *server* reported them (never re-counted locally)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    reported: bool = True  # False: the server sent no usage; the zeros are unknowns

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_tokens + other.cached_tokens,
            self.reported and other.reported,
        )


@dataclass(frozen=True)
class ParsedMessage:
    """An assistant message after the tool-call and reasoning parsers ran."""

    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    #: Tool calls the parser saw but could not decode (raw text + reason).
    invalid_tool_calls: tuple[str, ...] = ()


@dataclass(frozen=True)
class Completion:
    """The result of one model call through the adapter."""

    message: ParsedMessage
    usage: Usage
    wall_s: float
    finish_reason: str | None = None
    ttft_s: float | None = None  # None: not measured (non-streaming call); as vllm bench's (models.adapter)
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # decode_s, tpot_s, decode_tok_s, chunks, retries, ...
    itl_s: tuple[float, ...] = ()  # streamed: the gap before each chunk after the first token's, as vllm bench's

    @property
    def text(self) -> str:
        return self.message.content

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        return self.message.tool_calls

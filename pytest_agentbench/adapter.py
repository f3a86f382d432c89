"""One call to a model: the seam between the agent loop and any OpenAI-compatible server.

``ModelAdapter.complete`` shapes messages for the alias, calls
``/chat/completions`` through the ``openai`` SDK, parses tool calls with the
alias's parser and returns a :class:`~pytest_agentbench.calls.Completion`.
A call that fails raises :class:`ModelCallError` carrying a failure class from
:data:`FAILURE_CLASSES`; it is a *result* the agent records, not a crash.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

from .calls import Completion, Usage
from .models import ModelSpec
from .parsers import parse_message

FAILURE_CLASSES = ("timeout", "invalid_tool_call", "context_overflow", "refusal", "rate_limited",
                   "server_error", "connection_error")

_CONTEXT_HINTS = ("context length", "context_length", "maximum context", "too many tokens", "prompt is too long",
                  "max_model_len", "context window")


class ModelCallError(Exception):
    """A model call failed; ``failure`` is one of :data:`FAILURE_CLASSES`."""

    def __init__(self, failure: str, message: str, *, status: int | None = None):
        assert failure in FAILURE_CLASSES, failure
        super().__init__(f"{failure}: {message}")
        self.failure = failure
        self.status = status


def classify_exception(exc: BaseException) -> ModelCallError:
    """Map an ``openai`` SDK exception to the failure taxonomy."""
    import openai

    status = getattr(exc, "status_code", None)
    text = str(exc)
    if isinstance(exc, openai.APITimeoutError):
        return ModelCallError("timeout", "the request timed out", status=status)
    if isinstance(exc, openai.APIConnectionError):
        return ModelCallError("connection_error", f"cannot reach the server: {exc.__cause__ or text}")
    if isinstance(exc, openai.RateLimitError):
        return ModelCallError("rate_limited", text, status=status)
    if isinstance(exc, openai.APIStatusError):
        lowered = text.lower()
        if status in (400, 413, 422) and any(h in lowered for h in _CONTEXT_HINTS):
            return ModelCallError("context_overflow", text, status=status)
        if status is not None and status >= 500:
            return ModelCallError("server_error", text, status=status)
        return ModelCallError("server_error", f"the server refused the request: {text}", status=status)
    return ModelCallError("server_error", f"{type(exc).__name__}: {text}")


def shape_messages(spec: ModelSpec, messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Fit the conversation to the alias's chat template (e.g. no system role)."""
    shaped = [dict(m) for m in messages]
    if spec.system_role == "user":
        system = [m["content"] for m in shaped if m.get("role") in ("system", "developer")]
        shaped = [m for m in shaped if m.get("role") not in ("system", "developer")]
        if system and shaped and shaped[0].get("role") == "user":
            shaped[0]["content"] = "\n\n".join(system + [shaped[0]["content"]])
    return shaped


def shape_tools(spec: ModelSpec, tools: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for tool in tools:
        tool = json.loads(json.dumps(tool))
        if not spec.strict_tools:
            tool.get("function", {}).pop("strict", None)
        else:
            tool.setdefault("function", {})["strict"] = True
        out.append(tool)
    return out


def _usage(raw: Any) -> Usage:
    if raw is None:
        return Usage(reported=False)
    details = getattr(raw, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or 0
    return Usage(prompt_tokens=raw.prompt_tokens or 0, completion_tokens=raw.completion_tokens or 0,
                 cached_tokens=cached)


class ModelAdapter:
    """Calls one alias. Cheap to build; holds one HTTP client."""

    def __init__(self, spec: ModelSpec, base_url: str | None = None):
        from openai import OpenAI

        self.spec = spec
        self.base_url = base_url or spec.base_url
        if not self.base_url:
            raise ValueError(f"{spec.where}: no base_url and no started server")
        self._client = OpenAI(base_url=self.base_url, api_key=spec.api_key(), max_retries=0,
                              timeout=spec.timeout_s)

    def complete(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]] = (),
        *, max_tokens: int | None = None, timeout: float | None = None,
    ) -> Completion:
        spec = self.spec
        kwargs: dict[str, Any] = {"model": spec.model, "messages": shape_messages(spec, messages)}
        if tools:
            kwargs["tools"] = shape_tools(spec, tools)
        if spec.temperature is not None:
            kwargs["temperature"] = spec.temperature
        cap = min(x for x in (max_tokens, spec.max_tokens) if x) if (max_tokens or spec.max_tokens) else None
        if cap:
            kwargs["max_tokens"] = cap
        if spec.extra_body:
            kwargs["extra_body"] = spec.extra_body
        if timeout is not None:
            kwargs["timeout"] = max(0.1, min(timeout, spec.timeout_s))
        start = time.perf_counter()
        try:
            response = self._client.chat.completions.create(**kwargs)
        except Exception as exc:  # every SDK error becomes a classified result
            raise classify_exception(exc) from exc
        wall = time.perf_counter() - start
        if not response.choices:
            raise ModelCallError("server_error", "the response has no choices")
        choice = response.choices[0]
        parsed = parse_message(choice.message, tool_parser=spec.tool_parser,
                               reasoning_parser=spec.reasoning_parser, tools=tools)
        if choice.finish_reason == "content_filter" and not parsed.tool_calls:
            raise ModelCallError("refusal", "the provider's content filter stopped the answer")
        return Completion(message=parsed, usage=_usage(response.usage), wall_s=wall,
                          finish_reason=choice.finish_reason, model=response.model or spec.model)

    def close(self) -> None:
        self._client.close()

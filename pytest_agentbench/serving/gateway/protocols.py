"""What differs between the three model protocols the gateway forwards. pytest-free, no client library.

    chat       POST /v1/chat/completions   OpenAI chat completions
    responses  POST /v1/responses          OpenAI responses
    messages   POST /v1/messages           Anthropic messages (``/v1/messages/count_tokens`` beside it)

This module owns, per protocol: the route, the shape of an error body (an agent's SDK must be able
to read the gateway's own refusals), where usage sits and how it adds up to prompt / completion /
cached tokens, which field caps the output (and how the run's token budget clamps it), how a
request is prepared for the upstream (the alias's model name, usage asked for in streams, a
destreamed call sent without ``stream``), and the declared tools in the OpenAI shape the
tool-call parsers read.

Usage rules (what a server reports, never re-counted): chat ``prompt_tokens`` /
``completion_tokens`` / ``prompt_tokens_details.cached_tokens``; responses ``input_tokens`` /
``output_tokens`` / ``input_tokens_details.cached_tokens``; messages ``input_tokens +
cache_read_input_tokens + cache_creation_input_tokens`` (Anthropic counts cached input apart,
vLLM's ``/metrics`` counts it in the prompt) / ``output_tokens`` / ``cache_read_input_tokens``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, get_args

from pytest_agentbench.models.calls import Usage

__all__ = [
    "COUNT_TOKENS_PATH",
    "PROTOCOLS",
    "ROUTES",
    "Protocol",
    "declared_tools",
    "error_body",
    "prepare_upstream",
    "requested_max_tokens",
    "tool_results",
    "upstream_path",
    "usage_of",
    "wants_stream",
]

Protocol = Literal["chat", "responses", "messages"]
PROTOCOLS: tuple[Protocol, ...] = get_args(Protocol)
ROUTES: Mapping[str, Protocol] = MappingProxyType(
    {"/v1/chat/completions": "chat", "/v1/responses": "responses", "/v1/messages": "messages"}
)
#: Anthropic's token counter: forwarded for agents that ask (Claude Code does), no generation, no record.
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
_PATHS: Mapping[Protocol, str] = MappingProxyType({p: path for path, p in ROUTES.items()})

#: The gateway's own error kinds -> (OpenAI ``type``, Anthropic ``type``).
_KINDS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        "authentication_error": ("authentication_error", "authentication_error"),
        "token_budget_exceeded": ("token_budget_exceeded", "billing_error"),
        "unsupported_protocol": ("unsupported_protocol", "invalid_request_error"),
        "invalid_request_error": ("invalid_request_error", "invalid_request_error"),
        "request_too_large": ("request_too_large", "request_too_large"),
        "not_found_error": ("not_found_error", "not_found_error"),
        "upstream_error": ("upstream_error", "api_error"),
        "upstream_timeout": ("upstream_timeout", "api_error"),
        "overloaded_error": ("overloaded_error", "overloaded_error"),
    }
)
_MAX_KEYS: Mapping[Protocol, tuple[str, ...]] = MappingProxyType(
    {"chat": ("max_completion_tokens", "max_tokens"), "responses": ("max_output_tokens",), "messages": ("max_tokens",)}
)


def upstream_path(protocol: Protocol) -> str:
    """The path below the alias's ``base_url`` (which ends in ``/v1``, as every alias's does)."""
    return _PATHS[protocol].removeprefix("/v1")


def error_body(protocol: Protocol | None, kind: str, message: str) -> dict[str, Any]:
    """An error the protocol's SDKs parse: OpenAI ``{"error": {...}}``, Anthropic ``{"type": "error", ...}``."""
    openai_type, anthropic_type = _KINDS.get(kind, (kind, "api_error"))
    if protocol == "messages":
        return {"type": "error", "error": {"type": anthropic_type, "message": message}}
    return {"error": {"message": message, "type": openai_type, "code": openai_type, "param": None}}


def wants_stream(body: Mapping[str, Any]) -> bool:
    return body.get("stream") is True


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _detail(usage: Mapping[str, Any], key: str, field: str) -> int:
    details = usage.get(key)
    return (_count(details.get(field)) or 0) if isinstance(details, Mapping) else 0


def usage_of(protocol: Protocol, usage: Any) -> Usage:
    """The server's ``usage`` object as :class:`Usage`; ``reported=False`` when it is missing or unreadable."""
    if not isinstance(usage, Mapping):
        return Usage(reported=False)
    if protocol == "chat":
        prompt, completion = _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))
        cached = _detail(usage, "prompt_tokens_details", "cached_tokens")
    elif protocol == "responses":
        prompt, completion = _count(usage.get("input_tokens")), _count(usage.get("output_tokens"))
        cached = _detail(usage, "input_tokens_details", "cached_tokens")
    else:
        fresh, completion = _count(usage.get("input_tokens")), _count(usage.get("output_tokens"))
        cached = _count(usage.get("cache_read_input_tokens")) or 0
        created = _count(usage.get("cache_creation_input_tokens")) or 0
        prompt = None if fresh is None else fresh + cached + created
    if prompt is None or completion is None:
        return Usage(reported=False)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached)


def requested_max_tokens(protocol: Protocol, body: Mapping[str, Any]) -> tuple[str, int | None]:
    """The field that caps the output in this request (the first one set, else the protocol's usual one)
    and its value (None: not set, or not a whole number)."""
    keys = _MAX_KEYS[protocol]
    for key in keys:
        if key in body and body[key] is not None:
            return key, _count(body[key])
    return keys[-1], None


def prepare_upstream(
    protocol: Protocol, body: Mapping[str, Any], *, model: str, destream: bool, max_tokens: int | None
) -> tuple[dict[str, Any], bool]:
    """The request sent upstream, and whether the client asked for usage in its stream itself.

    The alias's ``model`` replaces whatever the agent named; a stream is sent without ``stream`` when
    ``destream`` (the answer is re-emitted as SSE); a chat stream always asks for usage
    (``stream_options.include_usage``: the gateway strips that chunk again when the client did not
    ask); ``max_tokens`` (already clamped to the run's budget; None: leave the request's) is set in
    the field the request used.
    """
    out = dict(body)
    out["model"] = model
    options = dict(body["stream_options"]) if isinstance(body.get("stream_options"), Mapping) else {}
    client_usage = protocol != "chat" or options.get("include_usage") is True
    if wants_stream(body) and destream:
        out.pop("stream", None)
        out.pop("stream_options", None)
    elif wants_stream(body) and protocol == "chat":
        out["stream_options"] = options | {"include_usage": True}
    if max_tokens is not None:
        key, _ = requested_max_tokens(protocol, body)
        out[key] = max_tokens
    return out, client_usage


def declared_tools(protocol: Protocol, body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request's tools in the OpenAI wire shape the tool-call parsers type values with."""
    tools = body.get("tools")
    if not isinstance(tools, list):
        return []
    out: list[dict[str, Any]] = []
    for tool in tools:
        if not isinstance(tool, Mapping):
            continue
        if protocol == "chat":
            out.append(dict(tool))
        elif protocol == "responses" and tool.get("type") == "function":
            function = {"name": tool.get("name"), "parameters": tool.get("parameters")}
            out.append({"type": "function", "function": function})
        elif protocol == "messages" and isinstance(tool.get("name"), str):
            schema = tool.get("input_schema")
            out.append({"type": "function", "function": {"name": tool["name"], "parameters": schema}})
    return out


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text") or "") for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)


def tool_results(protocol: Protocol, body: Mapping[str, Any]) -> dict[str, tuple[bool, str]]:
    """The tool results a request sends back, by tool call id: (not flagged as an error, text).

    chat: ``role: tool`` messages; responses: ``function_call_output`` input items; messages:
    ``tool_result`` blocks (whose ``is_error`` is the only error flag any of the three carries).
    """
    out: dict[str, tuple[bool, str]] = {}
    if protocol == "responses":
        items = body.get("input") if isinstance(body.get("input"), list) else []
        for item in items:
            if isinstance(item, Mapping) and item.get("type") == "function_call_output":
                if isinstance(item.get("call_id"), str):
                    out[item["call_id"]] = (True, _result_text(item.get("output")))
        return out
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        if protocol == "chat" and message.get("role") == "tool" and isinstance(message.get("tool_call_id"), str):
            out[message["tool_call_id"]] = (True, _result_text(message.get("content")))
        elif protocol == "messages" and isinstance(message.get("content"), list):
            for block in message["content"]:
                if isinstance(block, Mapping) and block.get("type") == "tool_result":
                    if isinstance(block.get("tool_use_id"), str):
                        ok = block.get("is_error") is not True
                        out[block["tool_use_id"]] = (ok, _result_text(block.get("content")))
    return out

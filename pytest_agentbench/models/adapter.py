"""One call to a model: the seam between the agent loop and any OpenAI-compatible server.

``ModelAdapter.complete`` shapes messages for the alias, calls
``/chat/completions`` through the ``openai`` SDK (streaming or not, per alias),
parses tool calls with the alias's parser and returns a
:class:`~pytest_agentbench.models.calls.Completion` with its timings and usage.

A call that fails is classified into a failure class
(:mod:`pytest_agentbench.models.taxonomy`), retried by that class's policy
(configurable per alias under ``retries:``), and, when retries run out, raised
as :class:`~pytest_agentbench.errors.ModelCallError`: a *result* the
agent records, not a crash.

Deadlines: each attempt ends by the earlier of the run's deadline (``timeout=``
of :meth:`ModelAdapter.complete`) and the alias's ``timeout_s``, whatever the
server sends - a stream kept alive by pings or a trickled body is cut at the
deadline (:mod:`pytest_agentbench.models.deadline`) and classed ``timeout``.
A 401/403 is ``auth_error``, never retried, its message naming the alias and
the variable that holds its key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_agentbench.errors import FailureClass, ModelCallError
from pytest_agentbench.models.calls import Completion, Usage
from pytest_agentbench.models.deadline import CallGuard, attach_response
from pytest_agentbench.models.parsers import parse_message
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.models.taxonomy import classified_errors


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
    return Usage(
        prompt_tokens=raw.prompt_tokens or 0, completion_tokens=raw.completion_tokens or 0, cached_tokens=cached
    )


@dataclass
class _Raw:
    """What one attempt produced, before parsing."""

    message: dict[str, Any]
    usage: Usage
    finish_reason: str | None
    model: str
    ttft_s: float | None = None
    chunks: int = 0


def _collect_stream(stream: Any, start: float) -> _Raw:
    """Assemble a streamed answer; the first content/tool/reasoning delta is the first token."""
    content: list[str] = []
    reasoning: list[str] = []
    calls: dict[int, dict[str, Any]] = {}
    usage_raw = None
    finish = None
    model = ""
    ttft = None
    chunks = 0
    for chunk in stream:
        chunks += 1
        model = chunk.model or model
        if getattr(chunk, "usage", None) is not None:
            usage_raw = chunk.usage
        for choice in chunk.choices or ():
            delta = choice.delta
            piece = getattr(delta, "content", None)
            thought = getattr(delta, "reasoning_content", None) or getattr(delta, "reasoning", None)
            tool_deltas = getattr(delta, "tool_calls", None) or ()
            if ttft is None and (piece or thought or tool_deltas):
                ttft = time.perf_counter() - start
            if piece:
                content.append(piece)
            if thought:
                reasoning.append(thought)
            for td in tool_deltas:
                slot = calls.setdefault(td.index or 0, {"id": None, "name": "", "arguments": ""})
                slot["id"] = td.id or slot["id"]
                fn = td.function
                if fn is not None:
                    slot["name"] += fn.name or ""
                    slot["arguments"] += fn.arguments or ""
            finish = choice.finish_reason or finish
    if finish is None:
        raise ModelCallError(
            "connection_error",
            f"the stream ended after {chunks} chunk(s) without a finish_reason: the connection dropped mid-stream",
        )
    message: dict[str, Any] = {"role": "assistant", "content": "".join(content) or None}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = [
            {
                "id": c["id"] or f"call_{i}",
                "type": "function",
                "function": {"name": c["name"], "arguments": c["arguments"]},
            }
            for i, c in sorted(calls.items())
        ]
    return _Raw(message, _usage(usage_raw), finish, model, ttft, chunks)


def _decode_timings(raw: _Raw, attempt_wall_s: float) -> dict[str, float]:
    """For a streamed answer: the decode time after the first token, per output token and as a rate."""
    if raw.ttft_s is None:
        return {}
    decode = attempt_wall_s - raw.ttft_s
    timings = {"decode_s": decode}
    n = raw.usage.completion_tokens
    if n > 1 and decode > 0:
        timings["tpot_s"] = decode / (n - 1)
        timings["decode_tok_s"] = (n - 1) / decode
    return timings


class ModelAdapter:
    """Calls one alias. Cheap to build; holds one HTTP client; a context manager that closes it."""

    def __init__(self, spec: ModelSpec, base_url: str | None = None, *, sleep: Callable[[float], None] = time.sleep):
        from openai import DefaultHttpxClient, OpenAI

        self.spec = spec
        self.base_url = base_url or spec.base_url
        if not self.base_url:
            raise ValueError(f"{spec.where}: no base_url and no started server")
        self.policies = spec.retries
        self._sleep = sleep
        # The response hook hands each call's socket to its deadline guard (models.deadline).
        http = DefaultHttpxClient(event_hooks={"response": [attach_response]})
        self._client = OpenAI(
            base_url=self.base_url, api_key=spec.api_key(), max_retries=0, timeout=spec.timeout_s, http_client=http
        )

    def _request(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]], max_tokens: int | None
    ) -> dict[str, Any]:
        spec = self.spec
        kwargs: dict[str, Any] = {"model": spec.model, "messages": shape_messages(spec, messages)}
        if tools:
            kwargs["tools"] = shape_tools(spec, tools)
            if spec.tool_choice:
                kwargs["tool_choice"] = spec.tool_choice
        if spec.temperature is not None:
            kwargs["temperature"] = spec.temperature
        caps = [x for x in (max_tokens, spec.max_tokens) if x]
        if caps:
            kwargs["max_tokens"] = min(caps)
        if spec.extra_body:
            kwargs["extra_body"] = spec.extra_body
        if spec.stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {"include_usage": True}
        return kwargs

    def _attempt(self, kwargs: dict[str, Any], deadline: float | None) -> _Raw:
        """One request, ended by ``deadline`` (``time.monotonic``) or the alias's ``timeout_s``, whichever is first."""
        now = time.monotonic()
        budget = self.spec.timeout_s if deadline is None else min(self.spec.timeout_s, deadline - now)
        guard = CallGuard(now + budget)
        try:
            with guard:
                return self._exchange(kwargs, max(0.1, budget))
        except ModelCallError as exc:
            if not guard.fired:
                raise
            bound = "the time left in the run" if budget < self.spec.timeout_s else "the alias's timeout_s"
            raise ModelCallError(
                "timeout",
                f"no complete answer within {max(0.0, budget):.1f} s ({bound}): the server kept the connection "
                f"open without finishing (cut at the deadline; the client saw: {str(exc).split(': ', 1)[-1]})",
            ) from exc

    def _exchange(self, kwargs: dict[str, Any], limit: float) -> _Raw:
        from openai import Stream
        from openai.types.chat import ChatCompletion, ChatCompletionChunk

        body = dict(kwargs)
        body.update(body.pop("extra_body", None) or {})
        start = time.perf_counter()
        with classified_errors():
            # client.post, not chat.completions.create: the same request, errors and response types,
            # without the SDK re-walking every message and tool schema on each call (measured:
            # 4.1 -> 2.4 ms of client CPU per plain call, 5.8 -> 3.7 streamed; benchmarks/bench_harness.py).
            response = self._client.post(
                "/chat/completions",
                body=body,
                cast_to=ChatCompletion,
                stream=bool(body.get("stream")),
                stream_cls=Stream[ChatCompletionChunk],
                options={"timeout": limit},
            )
            if body.get("stream"):
                try:
                    return _collect_stream(response, start)
                finally:
                    response.close()
        if not response.choices:
            raise ModelCallError("server_error", "the response has no choices")
        choice = response.choices[0]
        message = choice.message.model_dump(exclude_none=True)
        return _Raw(message, _usage(response.usage), choice.finish_reason, response.model or "")

    def _attempt_with_retries(
        self, kwargs: dict[str, Any], deadline: float | None
    ) -> tuple[_Raw, list[FailureClass], float]:
        """Attempt until one succeeds; give up when the failure's policy or the deadline says so.

        Returns the answer, the classes of the failed attempts, and when the last attempt started.
        """
        retried: list[FailureClass] = []
        while True:
            attempt_start = time.perf_counter()
            try:
                return self._attempt(kwargs, deadline), retried, attempt_start
            except ModelCallError as exc:
                if exc.failure == "auth_error":  # a refused key stays refused: never retried
                    raise ModelCallError(
                        "auth_error", self._auth_message(exc), status=exc.status, retries=tuple(retried)
                    ) from exc
                policy = self.policies[exc.failure]
                tries = retried.count(exc.failure)
                wait = policy.delay(tries, exc.retry_after)
                out_of_time = deadline is not None and time.monotonic() + wait >= deadline
                if tries >= policy.attempts or out_of_time:
                    raise ModelCallError(
                        exc.failure, str(exc).split(": ", 1)[-1], status=exc.status, retries=tuple(retried)
                    ) from exc
                retried.append(exc.failure)
                self._sleep(wait)

    def _auth_message(self, exc: ModelCallError) -> str:
        spec = self.spec
        why = f"the server at {self.base_url} refused the request (HTTP {exc.status}: {str(exc).split(': ', 1)[-1]})"
        if spec.api_key_env:
            return f"{spec.where}: {why}; the key comes from ${spec.api_key_env}: check that it holds a valid key"
        return (
            f"{spec.where}: {why}; no api_key_env set, so only a placeholder key was sent: add "
            f"`api_key_env: VAR` naming the environment variable that holds the key"
        )

    def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] = (),
        *,
        max_tokens: int | None = None,
        timeout: float | None = None,
    ) -> Completion:
        """One model turn, retried per failure class; raises ModelCallError when it gives up."""
        kwargs = self._request(messages, tools, max_tokens)
        deadline = time.monotonic() + timeout if timeout else None
        start = time.perf_counter()
        raw, retried, attempt_start = self._attempt_with_retries(kwargs, deadline)
        end = time.perf_counter()
        parsed = parse_message(
            raw.message, tool_parser=self.spec.tool_parser, reasoning_parser=self.spec.reasoning_parser, tools=tools
        )
        if raw.finish_reason == "content_filter" and not parsed.tool_calls:
            raise ModelCallError("refusal", "the provider's content filter stopped the answer", retries=tuple(retried))
        extra: dict[str, Any] = {
            "retries": retried,
            "attempt_wall_s": end - attempt_start,
            "native_tool_calls": len(raw.message.get("tool_calls") or ()),
            **_decode_timings(raw, end - attempt_start),
        }
        return Completion(
            message=parsed,
            usage=raw.usage,
            wall_s=end - start,
            finish_reason=raw.finish_reason,
            ttft_s=raw.ttft_s,
            model=raw.model or self.spec.model,
            extra=extra,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ModelAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

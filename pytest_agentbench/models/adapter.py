"""One call to a model: the seam between the agent loop and any OpenAI-compatible server.

``ModelAdapter.complete`` shapes messages for the alias, POSTs ``/chat/completions``
through the package's lean HTTP client (:class:`pytest_agentbench.serving.http.Client`:
keep-alive connections, server-sent events parsed as they arrive, JSON decoded once per
event and nowhere else), parses tool calls with the alias's parser and returns a
:class:`~pytest_agentbench.models.calls.Completion` with its timings and usage. The
``openai`` SDK stays for what it is good at elsewhere; it is not on this path.

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

Token usage is the server's, never re-counted: streamed calls ask for it with
``stream_options: {include_usage: true}``. Streaming timings follow ``vllm bench
serve``'s definitions, from the moment the request is about to be sent:

* **TTFT** (``ttft_s``): to the first SSE chunk whose delta carries content (text,
  reasoning or a tool call). vLLM sends its empty role chunk together with the first
  token, so on vLLM this is the instant vllm bench takes;
* **ITL** (``Completion.itl_s``): one gap per chunk after that one (a chunk may carry
  several tokens), between successive chunks that carry choices;
* **TPOT** (``extra["tpot_s"]``): the decode time, from that first chunk to the last chunk
  with choices (``extra["decode_s"]``), over the output tokens less the first
  (``completion_tokens - 1`` from the server's usage), as vllm bench's
  ``(latency - ttft) / (output_len - 1)``; ``decode_tok_s`` is its inverse.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_agentbench.errors import FailureClass, ModelCallError
from pytest_agentbench.models.calls import Completion, Usage
from pytest_agentbench.models.deadline import CallGuard
from pytest_agentbench.models.parsers import parse_message
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.models.taxonomy import classified_errors

__all__ = ["ModelAdapter", "StreamState", "chat_body", "decode_timings", "shape_messages", "shape_tools"]

_PATH = "/chat/completions"
_JSON = json.JSONDecoder()


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
    """The tool schemas as the alias wants them: ``strict`` set or removed (the caller's are not changed)."""
    out = []
    for tool in tools:
        function = dict(tool.get("function") or {})
        if spec.strict_tools:
            function["strict"] = True
        else:
            function.pop("strict", None)
        out.append({**tool, "function": function} if function or spec.strict_tools else dict(tool))
    return out


def chat_body(
    spec: ModelSpec,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] = (),
    max_tokens: int | None = None,
) -> dict[str, Any]:
    """The ``/chat/completions`` request the alias sends for these messages (shaped, capped, its extra body)."""
    body: dict[str, Any] = {"model": spec.model, "messages": shape_messages(spec, messages)}
    if tools:
        body["tools"] = shape_tools(spec, tools)
        if spec.tool_choice:
            body["tool_choice"] = spec.tool_choice
    if spec.temperature is not None:
        body["temperature"] = spec.temperature
    caps = [x for x in (max_tokens, spec.max_tokens) if x]
    if caps:
        body["max_tokens"] = min(caps)
    if spec.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    body.update(spec.extra_body or {})
    return body


def _usage(raw: Any) -> Usage:
    """The server's ``usage`` as it said it: a missing count is 0; a negative one is kept, so the budget and
    the cost can name it impossible rather than count it as 0; a count that is not an integer makes the
    usage unreported (nothing to count on)."""
    if not isinstance(raw, dict):
        return Usage(reported=False)
    details = raw.get("prompt_tokens_details")
    values = (
        raw.get("prompt_tokens"),
        raw.get("completion_tokens"),
        details.get("cached_tokens") if isinstance(details, dict) else None,
    )
    if not all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in values):
        return Usage(reported=False)
    prompt, completion, cached = (v or 0 for v in values)
    return Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass
class _Raw:
    """What one attempt produced, before parsing."""

    message: dict[str, Any]
    usage: Usage
    finish_reason: str | None
    model: str
    ttft_s: float | None = None
    decode_s: float | None = None  # first content chunk -> last chunk with choices
    itl_s: tuple[float, ...] = ()
    chunks: int = 0


class StreamState:
    """A streamed answer while its chunks arrive: the message so far and the chunk timings."""

    __slots__ = ("content", "reasoning", "calls", "usage", "finish", "model", "first", "last", "itl", "chunks")

    def __init__(self) -> None:
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.usage: Any = None
        self.finish: str | None = None
        self.model = ""
        self.first: float | None = None  # when the first chunk with content arrived
        self.last = 0.0  # when the latest chunk with choices arrived
        self.itl: list[float] = []
        self.chunks = 0

    def take(self, chunk: Any, now: float) -> None:
        """One decoded chunk that arrived at ``now``."""
        if not isinstance(chunk, dict):
            raise ValueError(f"an SSE event is not a JSON object: {str(chunk)[:100]!r}")
        self.chunks += 1
        if chunk.get("error"):
            error = str(chunk["error"])[:500]
            raise ModelCallError("server_error", f"the server reported an error mid-stream: {error}")
        self.model = _text(chunk.get("model")) or self.model
        if chunk.get("usage") is not None:
            self.usage = chunk["usage"]
        choices = chunk.get("choices")
        if not choices or not isinstance(choices, list):
            return
        had_first = self.first is not None
        for choice in choices:
            if isinstance(choice, dict):
                self._delta(choice.get("delta"), now)
                self.finish = _text(choice.get("finish_reason")) or self.finish
        if had_first:
            self.itl.append(now - self.last)
        self.last = now

    def _delta(self, delta: Any, now: float) -> None:
        if not isinstance(delta, dict) or not delta:
            return
        piece = _text(delta.get("content"))
        thought = _text(delta.get("reasoning_content")) or _text(delta.get("reasoning"))
        tool_deltas = delta.get("tool_calls") if isinstance(delta.get("tool_calls"), list) else ()
        if self.first is None and (piece or thought or tool_deltas):
            self.first = now
        if piece:
            self.content.append(piece)
        if thought:
            self.reasoning.append(thought)
        for td in tool_deltas:
            if not isinstance(td, dict):
                continue
            index = td.get("index")
            key = index if isinstance(index, int) else 0
            slot = self.calls.setdefault(key, {"id": None, "name": "", "arguments": ""})
            slot["id"] = _text(td.get("id")) or slot["id"]
            fn = td.get("function")
            if isinstance(fn, dict):
                slot["name"] += _text(fn.get("name")) or ""
                args = fn.get("arguments")
                slot["arguments"] += args if isinstance(args, str) else "" if args is None else json.dumps(args)

    def result(self, start: float, ended_by_done: bool) -> _Raw:
        if self.finish is None:
            how = "the server ended the stream" if ended_by_done else "the connection dropped mid-stream"
            raise ModelCallError(
                "connection_error", f"the stream ended after {self.chunks} chunk(s) without a finish_reason: {how}"
            )
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content) or None}
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.calls:
            message["tool_calls"] = [
                {
                    "id": c["id"] or f"call_{i}",
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c["arguments"]},
                }
                for i, c in sorted(self.calls.items())
            ]
        first = self.first
        return _Raw(
            message,
            _usage(self.usage),
            self.finish,
            self.model,
            ttft_s=None if first is None else first - start,
            decode_s=None if first is None else self.last - first,
            itl_s=tuple(self.itl),
            chunks=self.chunks,
        )


def _collect_stream(events: Iterable[bytes], start: float, done: Callable[[], bool]) -> _Raw:
    """Assemble a streamed answer, timing each chunk as it arrives (before it is decoded)."""
    state = StreamState()
    clock, decode, take = time.perf_counter, _JSON.decode, state.take
    for payload in events:
        now = clock()
        take(decode(payload.decode()), now)  # str, not bytes: json.loads would sniff the encoding each time
    return state.result(start, done())


def _plain_answer(data: Any) -> _Raw:
    """A whole (not streamed) chat completion, checked for the shape it must have."""
    if not isinstance(data, dict):
        raise ValueError(f"the answer is not a JSON object: {str(data)[:100]!r}")
    if data.get("error"):
        raise ModelCallError("server_error", f"the server answered with an error: {str(data['error'])[:500]}")
    choices = data.get("choices")
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise ModelCallError("server_error", "the response has no choices")
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise ModelCallError("server_error", "the response's choice has no message")
    message = {k: v for k, v in message.items() if v is not None}
    return _Raw(message, _usage(data.get("usage")), _text(choice.get("finish_reason")), _text(data.get("model")) or "")


def decode_timings(raw: _Raw) -> dict[str, float]:
    """For a streamed answer: the decode time after the first token, per output token and as a rate."""
    if raw.decode_s is None:
        return {}
    decode = raw.decode_s
    timings = {"decode_s": decode}
    n = raw.usage.completion_tokens
    if n > 1 and decode > 0:
        timings["tpot_s"] = decode / (n - 1)
        timings["decode_tok_s"] = (n - 1) / decode
    return timings


class ModelAdapter:
    """Calls one alias. Cheap to build; holds one pooled HTTP client; a context manager that closes it."""

    def __init__(self, spec: ModelSpec, base_url: str | None = None, *, sleep: Callable[[float], None] = time.sleep):
        from pytest_agentbench.serving.http import Client

        self.spec = spec
        self.base_url = base_url or spec.base_url
        if not self.base_url:
            raise ValueError(f"{spec.where}: no base_url and no started server")
        self.policies = spec.retries
        self._sleep = sleep
        self._http = Client(self.base_url, {"Authorization": f"Bearer {spec.api_key()}"})

    def _attempt(self, body: bytes, stream: bool, deadline: float | None) -> _Raw:
        """One request, ended by ``deadline`` (``time.monotonic``) or the alias's ``timeout_s``, whichever is first."""
        now = time.monotonic()
        budget = self.spec.timeout_s if deadline is None else min(self.spec.timeout_s, deadline - now)
        guard = CallGuard(now + budget)
        try:
            with guard:
                return self._exchange(body, stream, max(0.1, budget), guard)
        except ModelCallError as exc:
            if not guard.fired:
                raise
            bound = "the time left in the run" if budget < self.spec.timeout_s else "the alias's timeout_s"
            raise ModelCallError(
                "timeout",
                f"no complete answer within {max(0.0, budget):.1f} s ({bound}): the server kept the connection "
                f"open without finishing (cut at the deadline; the client saw: {str(exc).split(': ', 1)[-1]})",
            ) from exc

    def _exchange(self, body: bytes, stream: bool, limit: float, guard: CallGuard) -> _Raw:
        start = time.perf_counter()
        with classified_errors():
            if stream:
                with self._http.stream(_PATH, body, timeout=limit, guard=guard) as events:
                    return _collect_stream(events, start, lambda: events.done)
            return _plain_answer(self._http.post_json(_PATH, body, timeout=limit, guard=guard))

    def _attempt_with_retries(
        self, body: bytes, stream: bool, deadline: float | None
    ) -> tuple[_Raw, list[FailureClass], float]:
        """Attempt until one succeeds; give up when the failure's policy or the deadline says so.

        Returns the answer, the classes of the failed attempts, and when the last attempt started.
        """
        retried: list[FailureClass] = []
        while True:
            attempt_start = time.perf_counter()
            try:
                return self._attempt(body, stream, deadline), retried, attempt_start
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
        request = chat_body(self.spec, messages, tools, max_tokens)
        body = json.dumps(request, separators=(",", ":")).encode()
        deadline = time.monotonic() + timeout if timeout else None
        start = time.perf_counter()
        raw, retried, attempt_start = self._attempt_with_retries(body, bool(request.get("stream")), deadline)
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
            **decode_timings(raw),
        }
        if raw.chunks:
            extra["chunks"] = raw.chunks
        return Completion(
            message=parsed,
            usage=raw.usage,
            wall_s=end - start,
            finish_reason=raw.finish_reason,
            ttft_s=raw.ttft_s,
            model=raw.model or self.spec.model,
            itl_s=raw.itl_s,
            extra=extra,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ModelAdapter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

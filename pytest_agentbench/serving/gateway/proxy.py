"""One model call through the gateway: refuse it, or forward it and measure what comes back.

:meth:`Proxy.call` takes an authenticated request (its run known from the token) and either
answers it itself - the alias's endpoint does not serve the protocol (no translation: the
agent is told to choose another alias), or the run's token budget is spent (HTTP 402,
``token_budget_exceeded``, in the protocol's error shape) - or forwards it to the run's alias,
never to another, with the alias's model name and, where the run has a token budget, the
output cap clamped to what is left (as the built-in loop clamps ``max_tokens``).

The answer comes back one of three ways:

* a stream, passed through event by event as each completes (:class:`~.sse.StreamMeter` times
  and counts it; a chat usage chunk the client did not ask for is dropped again). Leaked tool
  calls are only *counted* here - a stream already sent cannot be repaired: that is what
  ``destream`` is for;
* a whole answer (the client did not stream): read up to a cap, the alias's tool parser run
  over it and leaked calls repaired (:mod:`.repair`), then sent as JSON;
* ``destream``: the client streams but the upstream was asked without a stream; the whole,
  repaired answer is re-emitted as the protocol's SSE events (:mod:`.destream`).

An upstream error answer is forwarded as it came (status and body) and classed; a transport
failure or a cut at the deadline becomes a 502 / 504 in the protocol's shape when nothing was
sent yet, else the agent's connection is dropped mid-stream, as the upstream's was. Every call,
refused or not, ends up as a :class:`~.runs.CallRecord` on its run and in its alias's totals.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from typing import Protocol as TypingProtocol

from pytest_agentbench.errors import ModelCallError
from pytest_agentbench.serving.gateway.destream import destreamed_events
from pytest_agentbench.serving.gateway.protocols import (
    COUNT_TOKENS_PATH,
    Protocol,
    declared_tools,
    error_body,
    prepare_upstream,
    requested_max_tokens,
    tool_results,
    upstream_path,
    usage_of,
    wants_stream,
)
from pytest_agentbench.serving.gateway.repair import Answer, Findings, find_calls, read_answer, repaired
from pytest_agentbench.serving.gateway.runs import CallRecord, Run, RunRegistry
from pytest_agentbench.serving.gateway.sse import StreamMeter
from pytest_agentbench.serving.gateway.upstream import ClientGone, Route, Upstream, UpstreamStream
from pytest_agentbench.serving.http import HttpAnswer

__all__ = ["Limits", "Proxy", "Reply"]

_NAMES = {"chat": "OpenAI chat completions", "responses": "OpenAI responses", "messages": "Anthropic messages"}
_REFUSAL_FINISH = ("content_filter", "refusal")


@dataclass(frozen=True)
class Limits:
    """What the gateway takes from a client and from an upstream before it gives up."""

    max_request_bytes: int = 32 << 20  # a request body (a long conversation is a few MiB)
    max_response_bytes: int = 64 << 20  # a whole upstream answer
    max_event_bytes: int = 8 << 20  # one SSE event
    max_stream_bytes: int = 256 << 20  # a whole upstream stream
    request_read_s: float = 60.0  # a client sends its request line, headers and body within this
    io_timeout_s: float = 30.0  # one read from or write to a client
    max_connections: int = 256  # open client connections; more are answered 503 at once


class Reply(TypingProtocol):
    """How the proxy answers the agent (the HTTP handler implements it)."""

    started: bool  # a stream's status line has gone out

    def json(self, status: int, obj: Any, headers: Mapping[str, str] | None = None) -> None: ...
    def raw(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] | None = None) -> None: ...
    def start_stream(self, status: int) -> None: ...
    def chunk(self, data: bytes) -> None: ...  # raises ClientGone
    def end_stream(self) -> None: ...
    def abort(self) -> None: ...


def _decode_timings(call: CallRecord, end_s: float) -> dict[str, float]:
    """As the adapter's: the decode time after the first token, per output token and as a rate."""
    if call.ttft_s is None:
        return {}
    decode = end_s - call.ttft_s
    timings = {"decode_s": decode}
    n = call.usage.completion_tokens
    if n > 1 and decode > 0:
        timings["tpot_s"] = decode / (n - 1)
        timings["decode_tok_s"] = (n - 1) / decode
    return timings


#: Longest wait for a run's calls in flight to be counted before the next one is judged against the budget.
_SETTLE_S = 2.0


class Proxy:
    """Forwards calls of runs to their aliases' routes (see the module docstring)."""

    def __init__(self, routes: Mapping[str, Route], runs: RunRegistry, upstream: Upstream, limits: Limits) -> None:
        self.routes = dict(routes)
        self.runs = runs
        self.upstream = upstream
        self.limits = limits

    def call(
        self, reply: Reply, run: Run, protocol: Protocol, body: Mapping[str, Any], headers: Mapping[str, str]
    ) -> None:
        """Answer one model call of ``run`` (``body``: the request, already a JSON object)."""
        route = self.routes[run.alias]
        run.results_seen(tool_results(protocol, body))
        if run.ledger.limit is not None:
            # The previous call's answer reaches the agent a moment before its tokens are counted (finish()
            # runs after the reply): without this wait an agent's next call could be clamped and judged on a
            # stale count. Bounded, so truly parallel calls of one run only wait this long.
            run.settle(_SETTLE_S)
        call = run.begin(protocol)
        call.stream = wants_stream(body)
        call.requested_model = str(body.get("model") or "")
        start = time.perf_counter()
        try:
            if not self._refused(reply, route, run, call, protocol):
                self._forward(reply, route, run, call, protocol, body, headers, start)
        finally:
            call.wall_s = time.perf_counter() - start
            run.finish(call)
            self.runs.count(run.alias, call)

    @staticmethod
    def unserved(route: Route, protocol: Protocol) -> str | None:
        """Why ``route`` cannot take a call of ``protocol`` (None: it can, or it is not known)."""
        if route.protocols is None or protocol in route.protocols:
            return None
        served = ", ".join(_NAMES[p] for p in sorted(route.protocols))
        return (
            f"agentbench gateway: alias {route.alias!r} ({route.where}) is served over {served} only, and this "
            f"agent speaks {_NAMES[protocol]}: choose an alias whose endpoint serves it (a vLLM server the "
            "plugin starts serves all three); the gateway does not translate between protocols"
        )

    def _refused(self, reply: Reply, route: Route, run: Run, call: CallRecord, protocol: Protocol) -> bool:
        unserved = self.unserved(route, protocol)
        if unserved is not None:
            self._refuse(reply, call, protocol, 400, "unsupported_protocol", "protocol", unserved)
            return True
        if run.spent:
            message = f"agentbench gateway: run {run.run_id}: {run.spent_message()}; no more model calls in this run"
            self._refuse(reply, call, protocol, 402, "token_budget_exceeded", "token_budget", message)
            return True
        if run.turns_spent(call):
            message = (
                f"agentbench gateway: run {run.run_id}: its turn budget of {run.max_calls} model call(s) is used up; "
                "no more model calls in this run"
            )
            self._refuse(reply, call, protocol, 402, "turn_budget_exceeded", "turn_budget", message)
            return True
        return False

    @staticmethod
    def _refuse(
        reply: Reply, call: CallRecord, protocol: Protocol, status: int, kind: str, refused: str, message: str
    ) -> None:
        call.status, call.refused, call.error = status, refused, message
        reply.json(status, error_body(protocol, kind, message))

    def _forward(
        self,
        reply: Reply,
        route: Route,
        run: Run,
        call: CallRecord,
        protocol: Protocol,
        body: Mapping[str, Any],
        headers: Mapping[str, str],
        start: float,
    ) -> None:
        _, asked = requested_max_tokens(protocol, body)
        caps = [x for x in (asked, route.max_tokens) if x]
        cap = run.clamp(min(caps) if caps else None)
        call.max_tokens_asked, call.max_tokens = asked, cap
        call.destreamed = destream = route.destream and call.stream
        sent, client_usage = prepare_upstream(
            protocol, body, model=route.model, destream=destream, max_tokens=cap if cap != asked else None
        )
        upstream_stream = call.stream and not destream
        out_headers = self.upstream.headers(route, protocol, headers, upstream_stream)
        deadline = min(time.monotonic() + route.timeout_s, run.expires)
        tools = declared_tools(protocol, body)
        data, path, limits = json.dumps(sent).encode(), upstream_path(protocol), self.limits
        try:
            if upstream_stream:
                sse_caps = (limits.max_event_bytes, limits.max_stream_bytes)
                with self.upstream.stream(route, path, data, out_headers, deadline, sse_caps) as answer:
                    call.status = answer.status
                    if isinstance(answer, UpstreamStream):
                        self._pass_stream(reply, route, call, protocol, answer, start, client_usage, tools)
                    else:
                        self._upstream_error(reply, route, call, protocol, answer)
                return
            whole = self.upstream.whole(route, path, data, out_headers, deadline, limits.max_response_bytes)
            call.status = whole.status
            if whole.status >= 400:
                self._upstream_error(reply, route, call, protocol, whole)
            else:
                self._whole(reply, route, call, protocol, whole, tools, destream, client_usage)
        except ModelCallError as exc:
            call.failure, call.error = exc.failure, str(exc)
            if reply.started:
                reply.abort()
                return
            timeout = exc.failure == "timeout"
            call.status = 504 if timeout else 502
            message = f"agentbench gateway: alias {route.alias!r}: {exc}"
            reply.json(call.status, error_body(protocol, "upstream_timeout" if timeout else "upstream_error", message))
        except ClientGone:
            call.failure = "connection_error"
            call.error = "the agent closed its connection before the answer was complete"

    def _upstream_error(
        self, reply: Reply, route: Route, call: CallRecord, protocol: Protocol, answer: HttpAnswer
    ) -> None:
        if route.protocols is None and answer.status in (404, 405):
            message = (
                f"agentbench gateway: the endpoint of alias {route.alias!r} ({route.base_url}) answered HTTP "
                f"{answer.status} to {upstream_path(protocol)}: it does not serve {_NAMES[protocol]}, the "
                "protocol this agent speaks; choose an alias whose endpoint does (the gateway does not translate)"
            )
            self._refuse(reply, call, protocol, 400, "unsupported_protocol", "protocol", message)
            return
        failure = self.upstream.status_failure(route, answer)
        call.failure, call.error = failure.failure, str(failure)
        headers = answer.headers or {}
        keep = {"Retry-After": headers["retry-after"]} if headers.get("retry-after") else {}
        reply.raw(answer.status, answer.body, headers.get("content-type") or "application/json", keep)

    def _note_calls(self, call: CallRecord, answer: Answer, route: Route, tools: list[dict[str, Any]]) -> Findings:
        """Record what the answer's tool calls were (native, leaked, invalid) and its text; a refusal is classed."""
        findings = find_calls(answer, route.tool_parser, tools)
        call.model = answer.model
        call.finish_reason = None if answer.finish_reason is None else str(answer.finish_reason)
        call.native_tool_calls, call.leaked_tool_calls = findings.native, len(findings.leaked)
        call.invalid_tool_calls = findings.parsed.invalid_tool_calls
        call.tool_calls = findings.parsed.tool_calls[: findings.native]
        call.keep_text(findings.parsed.content, answer.message.get("reasoning_content"))
        if call.finish_reason in _REFUSAL_FINISH and not findings.parsed.tool_calls:
            call.failure, call.error = "refusal", f"the provider stopped the answer ({call.finish_reason})"
        return findings

    def _whole(
        self,
        reply: Reply,
        route: Route,
        call: CallRecord,
        protocol: Protocol,
        response: HttpAnswer,
        tools: list[dict[str, Any]],
        destream: bool,
        client_usage: bool,
    ) -> None:
        data = response.body
        try:
            obj = json.loads(data)
        except ValueError:
            obj = None
        if not isinstance(obj, Mapping):
            preview = data[:200].decode("utf-8", "replace")
            raise ModelCallError("server_error", f"unreadable response (not a JSON object): {preview!r}")
        call.usage = usage_of(protocol, obj.get("usage"))
        findings = self._note_calls(call, read_answer(protocol, obj), route, tools)
        answer: Mapping[str, Any] = obj
        if findings.leaked:
            answer, calls = repaired(protocol, obj, findings)
            call.tool_calls, call.repaired = tuple(calls), True
            call.keep_text(findings.parsed.content, call.reasoning)
        if destream:
            reply.start_stream(200)
            for event in destreamed_events(protocol, answer, include_usage=client_usage):
                reply.chunk(event)
            reply.end_stream()
        elif call.repaired:
            reply.json(response.status, answer)
        else:
            reply.raw(response.status, data, "application/json")

    def _pass_stream(
        self,
        reply: Reply,
        route: Route,
        call: CallRecord,
        protocol: Protocol,
        stream: UpstreamStream,
        start: float,
        client_usage: bool,
        tools: list[dict[str, Any]],
    ) -> None:
        meter = StreamMeter(protocol, start, client_usage=client_usage)
        reply.start_stream(stream.status)
        for event in stream:  # each event as the upstream sent it, as soon as it is whole
            if meter.feed(event, time.perf_counter()):
                reply.chunk(event)
        reply.end_stream()
        end = time.perf_counter() - start
        call.usage = meter.usage
        call.ttft_s, call.token_events, call.token_times_s = meter.ttft_s, meter.token_events, meter.token_times
        self._note_calls(call, meter.answer(), route, tools)
        call.timings = _decode_timings(call, end)
        if meter.error is not None:
            call.failure, call.error = "server_error", f"the stream reported an error: {meter.error}"
        elif meter.junk:
            call.failure, call.error = "server_error", f"unreadable stream: {meter.junk} event(s) were not JSON"
        elif not meter.finished:
            call.failure = "connection_error"
            call.error = f"the stream ended after {meter.events} event(s) without finishing: it dropped mid-answer"

    def count_tokens(self, reply: Reply, run: Run, body: Mapping[str, Any], headers: Mapping[str, str]) -> None:
        """Anthropic's ``/v1/messages/count_tokens``: forwarded to the run's alias as it is (nothing is
        generated, so nothing is recorded or counted against the budget)."""
        route = self.routes[run.alias]
        unserved = self.unserved(route, "messages")
        if unserved is not None:
            reply.json(400, error_body("messages", "unsupported_protocol", unserved))
            return
        data = json.dumps({**body, "model": route.model}).encode()
        path = COUNT_TOKENS_PATH.removeprefix("/v1")
        deadline = min(time.monotonic() + route.timeout_s, run.expires)
        out_headers = self.upstream.headers(route, "messages", headers, False)
        try:
            answer = self.upstream.whole(route, path, data, out_headers, deadline, self.limits.max_response_bytes)
            reply.raw(answer.status, answer.body, (answer.headers or {}).get("content-type") or "application/json")
        except ModelCallError as exc:
            reply.json(502, error_body("messages", "upstream_error", f"agentbench gateway: alias {run.alias!r}: {exc}"))

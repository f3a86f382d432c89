"""The failure-behaviour row: do failures come back as structured, classifiable errors?

Three provocations, each through the same client the agent uses:

* an over-long prompt (a quarter more than the served context): a structured 4xx
  the failure taxonomy classes ``context_overflow`` passes; an answer (the server
  truncated silently), a 5xx or a hang fails;
* a request body that is not JSON: a 4xx with an error object passes; a 5xx or a
  body that is not JSON fails;
* a deadline shorter than the answer (a long, streamed generation cut after
  :data:`DEADLINE_S`): the call must end by the deadline and be classed ``timeout``.
  A server that answers within the deadline did not get provoked: ``unknown``.

Tool calls the model sent with undecodable arguments during the tool battery are
counted too: each must have been recorded as an invalid call, not dropped.
"""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_agentbench.errors import ModelCallError
from pytest_agentbench.models.adapter import ModelAdapter
from pytest_agentbench.models.probe import ProbeResult, ServedContext, filler
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.screening.rows import Row, Verdict

__all__ = ["DEADLINE_S", "Provocation", "failure_row", "provoke"]

DEADLINE_S = 0.5
_GRACE_S = 5.0  # how late after the deadline a call may end and still count as cut by it
_OVER = 1.25
DISQUALIFIER = "an over-long prompt, a malformed request or a deadline that does not end as a structured, classed error"


@dataclass(frozen=True)
class Provocation:
    name: str
    verdict: Verdict
    detail: str


def _over_long(adapter: ModelAdapter, ctx: ServedContext) -> Provocation:
    name = "over-long prompt"
    if not ctx.source.startswith(("max_model_len", "given")):
        return Provocation(name, "unknown", f"not sent: the served context is not known ({ctx.source})")
    lines = int(ctx.tokens * _OVER / ctx.tokens_per_line) + 1
    start = time.perf_counter()
    try:
        done = adapter.complete([{"role": "user", "content": filler(lines) + "\nSummarise."}], max_tokens=16)
    except ModelCallError as exc:
        wall = time.perf_counter() - start
        sent = f"~{int(lines * ctx.tokens_per_line):,} tokens into a {ctx.tokens:,}-token context"
        if exc.failure == "context_overflow":
            return Provocation(name, "pass", f"{sent}: HTTP {exc.status}, classed context_overflow in {wall:.1f} s")
        return Provocation(
            name, "fail", f"{sent}: classed {exc.failure} (HTTP {exc.status}), not context_overflow: {str(exc)[:120]}"
        )
    return Provocation(
        name,
        "fail",
        f"answered ({done.usage.prompt_tokens:,} prompt tokens reported) instead of "
        f"refusing a prompt over the {ctx.tokens:,}-token context: silently truncated?",
    )


def _invalid_json(spec: ModelSpec, base_url: str) -> Provocation:
    """POST a body that is not JSON; a loopback server is reached without any proxy from the environment."""
    name = "malformed request"
    url = base_url.rstrip("/") + "/chat/completions"
    body = b'{"model": "' + spec.model.encode() + b'", "messages": ['
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {spec.api_key()}"}
    loopback = urllib.parse.urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({})) if loopback else urllib.request.build_opener()
    try:
        with opener.open(urllib.request.Request(url, data=body, headers=headers, method="POST"), timeout=30) as r:
            status, raw = int(r.status), r.read()
    except urllib.error.HTTPError as exc:
        status, raw = int(exc.code), exc.read() if exc.fp else b""
    except OSError as exc:
        return Provocation(name, "fail", f"no answer to a body that is not JSON: {type(exc).__name__}: {exc}")
    try:
        answer: Any = json.loads(raw)
    except ValueError:
        answer = None
    structured = isinstance(answer, dict) and any(k in answer for k in ("error", "detail", "message"))
    what = f"HTTP {status}, {'an error object' if structured else 'no JSON error object'}"
    if 400 <= status < 500 and structured:
        return Provocation(name, "pass", f"a body that is not JSON: {what}")
    return Provocation(name, "fail", f"a body that is not JSON: {what}: {raw[:120]!r}")


def _timeout(adapter: ModelAdapter, served: int | None) -> Provocation:
    name = "deadline"
    room = max(16, min(2048, (served or 4096) // 2))
    start = time.perf_counter()
    try:
        done = adapter.complete(
            [{"role": "user", "content": "Count from 1 to 5000, one number per line, and nothing else."}],
            max_tokens=room,
            timeout=DEADLINE_S,
        )
    except ModelCallError as exc:
        wall = time.perf_counter() - start
        if exc.failure == "timeout" and wall <= DEADLINE_S + _GRACE_S:
            return Provocation(name, "pass", f"cut at a {DEADLINE_S:g} s deadline: classed timeout after {wall:.2f} s")
        return Provocation(name, "fail", f"a {DEADLINE_S:g} s deadline ended as {exc.failure} after {wall:.2f} s")
    wall = time.perf_counter() - start
    return Provocation(
        name,
        "unknown",
        f"not provoked: answered ({done.usage.completion_tokens} tokens) in "
        f"{wall:.2f} s, within the {DEADLINE_S:g} s deadline",
    )


def provoke(spec: ModelSpec, base_url: str, ctx: ServedContext) -> list[Provocation]:
    """The three provocations against a running endpoint."""
    whole = dataclasses.replace(spec, stream=False)
    long_run = dataclasses.replace(spec, stream=True, max_tokens=None)  # the alias's cap would end it early
    if spec.serve is not None and spec.serve.engine == "vllm":  # vLLM: generate to max_tokens, whatever the model says
        long_run = dataclasses.replace(long_run, extra_body={**spec.extra_body, "ignore_eos": True})
    with ModelAdapter(whole, base_url=base_url) as adapter:
        out = [_over_long(adapter, ctx), _invalid_json(spec, base_url)]
    served = ctx.tokens if ctx.source.startswith(("max_model_len", "given")) else None
    with ModelAdapter(long_run, base_url=base_url) as adapter:
        out.append(_timeout(adapter, served))
    return out


def _invalid_calls(results: Sequence[Sequence[ProbeResult]]) -> tuple[int, int]:
    """(calls seen with undecodable arguments, tool-check calls in all) during the battery."""
    observations = [o for rs in results for r in rs if r.tool_check for o in r.observations]
    return sum(o.invalid for o in observations), len(observations)


def failure_row(provocations: Sequence[Provocation], battery: Sequence[Sequence[ProbeResult]]) -> Row:
    evidence = [f"{p.name}: {p.verdict}: {p.detail}" for p in provocations]
    invalid, calls = _invalid_calls(battery)
    evidence.append(
        f"undecodable tool calls during the battery: {invalid} in {calls} call(s), each recorded as invalid_tool_call"
        if invalid
        else f"undecodable tool calls during the battery: none in {calls} call(s)"
    )
    facts = {p.name: {"verdict": p.verdict, "detail": p.detail} for p in provocations} | {"invalid_tool_calls": invalid}
    verdicts = [p.verdict for p in provocations]
    if "fail" in verdicts:
        bad = [p for p in provocations if p.verdict == "fail"]
        finding = "; ".join(f"{p.name}: {p.detail}" for p in bad)
        return Row("failure behaviour", "fail", finding, DISQUALIFIER, tuple(evidence), facts)
    if "unknown" in verdicts:
        open_ = [p for p in provocations if p.verdict == "unknown"]
        finding = "; ".join(f"{p.name}: {p.detail}" for p in open_)
        return Row("failure behaviour", "unknown", finding, DISQUALIFIER, tuple(evidence), facts)
    finding = "over-long prompt -> context_overflow, malformed request -> 4xx error object, deadline -> timeout"
    return Row("failure behaviour", "pass", finding, DISQUALIFIER, tuple(evidence), facts)

"""``agentbench probe ALIAS``: is this alias usable by the agent? A fixed battery, one table.

Each check sends small requests through the same adapter the agent uses and
says passed/failed and *how*: native tool calls, calls the alias's parser
recovered from the text, none, or undecodable ones (:class:`Observation`). The
tool checks go out both whole and streamed with the identical request, so a
server whose streamed answers differ (tool calls leaking into the content only
when streaming) shows it. pytest-free.

Load: ``repeat`` rounds of ``concurrency`` simultaneous copies of each check
(parsers that pass one call at a time have dropped tags under load); the
long-prompt check runs once. Context: the long prompt is sized from the context
the server reports (vLLM's ``max_model_len`` in ``/v1/models``; ``--context``
when it reports none), with the filler's tokens per line measured from the
server's own usage on two short requests, never guessed from characters.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from pytest_agentbench.agents.tools import TOOLS
from pytest_agentbench.errors import ModelCallError
from pytest_agentbench.models.adapter import ModelAdapter
from pytest_agentbench.models.calls import Completion
from pytest_agentbench.models.registry import ModelSpec

__all__ = [
    "DEFAULT_CONTEXT",
    "Observation",
    "ProbeResult",
    "ServedContext",
    "filler",
    "format_probe",
    "measure_context",
    "observe",
    "run_probe",
    "served_max_model_len",
    "served_models",
    "shape_counts",
]

#: The context assumed when the server reports none and none is given (``--context``).
DEFAULT_CONTEXT = 4096
#: Tokens per filler line assumed when the server reports no usage (generous: tokenizers differ).
ASSUMED_TOKENS_PER_LINE = 12.0
_FILLER_LINE = "def f(x):\n    return x + 1\n"
_LONG_PROMPT_SHARE = 0.8
_LONG_PROMPT_ANSWER = 32


@dataclass(frozen=True)
class Observation:
    """One call of one check: whether it passed, and the shape its tool calls came back in."""

    passed: bool
    stream: bool
    shape: str  # native | leaked (recovered from the text) | none | invalid | error
    detail: str
    wall_s: float
    calls: int = 0  # tool calls after parsing
    native: int = 0  # of which the server returned as tool_calls
    invalid: int = 0  # calls seen but undecodable (invalid_tool_calls)
    think_leak: bool = False  # <think> / </think> left in the answer text
    failure: str | None = None  # the failure class when the call failed


@dataclass(frozen=True)
class ProbeResult:
    check: str
    passed: bool
    detail: str
    wall_s: float
    observations: tuple[Observation, ...] = ()
    tool_check: bool = False  # a tool-format check (sent whole and streamed, under load)


@dataclass(frozen=True)
class ServedContext:
    """The context the long-prompt check sizes against, and how the filler was measured."""

    tokens: int
    source: str  # where ``tokens`` came from
    tokens_per_line: float
    calibrated: bool  # tokens_per_line from the server's usage (else assumed)


def observe(done: Completion, *, stream: bool, passed: bool, detail: str, wall_s: float) -> Observation:
    """The :class:`Observation` of a completed call."""
    native = int(done.extra.get("native_tool_calls", 0) or 0)
    calls, invalid = len(done.tool_calls), len(done.message.invalid_tool_calls)
    if calls == 0:
        shape = "invalid" if invalid else "none"
    else:
        shape = "native" if native >= calls else "leaked"
    leak = "<think>" in done.text or "</think>" in done.text
    return Observation(passed, stream, shape, detail, wall_s, calls, native, invalid, leak)


def _calls(done: Completion) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for c in done.tool_calls:
        try:
            out.append((c.name, c.parsed_arguments()))
        except ValueError:
            out.append((c.name, {}))
    return out


def _how(done: Completion) -> str:
    native = done.extra.get("native_tool_calls", 0)
    if done.tool_calls and not native:
        return "recovered from text by the parser"
    if done.message.invalid_tool_calls and not done.tool_calls:
        return "undecodable tool call"
    return "native tool_calls" if done.tool_calls else "no tool call"


def filler(lines: int) -> str:
    """``lines`` lines of Python, the long prompts' padding."""
    return _FILLER_LINE * max(0, lines)


class _Battery:
    """The checks, on one alias: a whole (non-streaming) and a streaming adapter, and the context."""

    def __init__(self, whole: ModelAdapter, streamed: ModelAdapter, configured: ModelAdapter, ctx: ServedContext):
        self.whole, self.streamed, self.configured, self.ctx = whole, streamed, configured, ctx

    def _adapter(self, stream: bool) -> ModelAdapter:
        return self.streamed if stream else self.whole

    def plain(self) -> Observation:
        start = time.perf_counter()
        done = self.configured.complete([{"role": "user", "content": "Reply with the single word OK."}], max_tokens=64)
        ok = bool(done.text.strip()) and not done.tool_calls
        return observe(
            done,
            stream=self.configured.spec.stream,
            passed=ok,
            detail=f"answer {done.text.strip()[:40]!r}",
            wall_s=time.perf_counter() - start,
        )

    def one_call(self, stream: bool) -> Observation:
        start = time.perf_counter()
        done = self._adapter(stream).complete(
            [{"role": "user", "content": "Use the read_file tool to read the file README.md."}], TOOLS, max_tokens=256
        )
        ok = ("read_file", {"path": "README.md"}) in _calls(done)
        detail = f"{_how(done)}: {[n for n, _ in _calls(done)]}" + _ttft(done, stream)
        return observe(done, stream=stream, passed=ok, detail=detail, wall_s=time.perf_counter() - start)

    def parallel(self, stream: bool) -> Observation:
        start = time.perf_counter()
        done = self._adapter(stream).complete(
            [{"role": "user", "content": "Read both a.py and b.py: call read_file twice in one reply."}],
            TOOLS,
            max_tokens=256,
        )
        paths = sorted(args.get("path", "") for name, args in _calls(done) if name == "read_file")
        detail = f"{_how(done)}: {len(done.tool_calls)} call(s)" + _ttft(done, stream)
        return observe(
            done, stream=stream, passed=paths == ["a.py", "b.py"], detail=detail, wall_s=time.perf_counter() - start
        )

    def round_trip(self) -> Observation:
        start = time.perf_counter()
        messages = [
            {"role": "user", "content": "Read secret.txt and tell me the word in it."},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_0",
                        "type": "function",
                        "function": {"name": "read_file", "arguments": json.dumps({"path": "secret.txt"})},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_0", "content": "PINEAPPLE"},
        ]
        done = self.configured.complete(messages, TOOLS, max_tokens=64)
        return observe(
            done,
            stream=self.configured.spec.stream,
            passed="PINEAPPLE" in done.text.upper(),
            detail=f"answer {done.text.strip()[:40]!r}",
            wall_s=time.perf_counter() - start,
        )

    def long_prompt(self) -> Observation:
        start = time.perf_counter()
        ctx = self.ctx
        budget = int(ctx.tokens * _LONG_PROMPT_SHARE) - _LONG_PROMPT_ANSWER
        lines = int(budget / ctx.tokens_per_line)
        done = self.configured.complete(
            [{"role": "user", "content": filler(lines) + "\nHow many functions are above? Answer briefly."}],
            max_tokens=_LONG_PROMPT_ANSWER,
        )
        used = done.usage.prompt_tokens
        detail = f"{used} prompt tokens of a {ctx.tokens}-token context ({ctx.source})"
        return observe(
            done,
            stream=self.configured.spec.stream,
            passed=bool(done.text.strip()),
            detail=detail,
            wall_s=time.perf_counter() - start,
        )


def _ttft(done: Completion, stream: bool) -> str:
    if not stream:
        return ""
    return f", TTFT {done.ttft_s * 1000:.0f} ms" if done.ttft_s is not None else ", no TTFT"


@dataclass(frozen=True)
class _Check:
    name: str
    run: Callable[[_Battery], Observation]
    stream: bool | None = None  # None: as the alias is configured
    loaded: bool = True  # repeated and run concurrently
    tool: bool = False


CHECKS: tuple[_Check, ...] = (
    _Check("plain answer", _Battery.plain),
    _Check("one tool call", lambda b: b.one_call(False), stream=False, tool=True),
    _Check("one tool call, streamed", lambda b: b.one_call(True), stream=True, tool=True),
    _Check("parallel tool calls", lambda b: b.parallel(False), stream=False, tool=True),
    _Check("parallel tool calls, streamed", lambda b: b.parallel(True), stream=True, tool=True),
    _Check("tool result round trip", _Battery.round_trip),
    _Check("long prompt (near the context)", _Battery.long_prompt, loaded=False),
)


def served_models(spec: ModelSpec, base_url: str) -> list[dict[str, Any]] | str:
    """The endpoint's ``/v1/models`` entries as plain data, or why it did not answer (the package's one
    HTTP client, :mod:`pytest_agentbench.serving.http`)."""
    import json

    from pytest_agentbench.serving.http import Client

    try:
        with Client(base_url, {"Authorization": f"Bearer {spec.api_key()}"}, max_idle=0) as client:
            answer = client.call("GET", "/models", timeout=15.0)
        if answer.status != 200:
            return f"HTTP {answer.status}: {answer.body[:160].decode('utf-8', 'replace')}"
        data = json.loads(answer.body).get("data")
        if not isinstance(data, list):
            return "the answer has no 'data' list of models"
        return [m for m in data if isinstance(m, dict)]
    except Exception as exc:  # any failure to list is a finding for the caller, not an error of the probe
        return f"{type(exc).__name__}: {str(exc)[:160]}"


def served_max_model_len(
    spec: ModelSpec, base_url: str, models: list[dict[str, Any]] | str | None = None
) -> int | None:
    """The context the server reports for the alias's model (vLLM: ``max_model_len`` in /v1/models), or None."""
    listed = served_models(spec, base_url) if models is None else models
    for data in listed if isinstance(listed, list) else ():
        value = data.get("max_model_len")
        if data.get("id") == spec.model and isinstance(value, int) and value > 0:
            return value
    return None


def measure_context(adapter: ModelAdapter, base_url: str, given: int | None = None) -> ServedContext:
    """The context to size long prompts against, and the filler's tokens per line from the server's usage."""
    served = served_max_model_len(adapter.spec, base_url)
    if given is not None:
        tokens, source = given, "given with --context"
    elif served is not None:
        tokens, source = served, "max_model_len from /v1/models"
    else:
        tokens, source = DEFAULT_CONTEXT, "assumed: the server reports no max_model_len (give --context)"
    try:
        counts = [_prompt_tokens(adapter, lines) for lines in (8, 40)]
    except ModelCallError:
        counts = [0, 0]
    if all(counts) and counts[1] > counts[0]:
        return ServedContext(tokens, source, (counts[1] - counts[0]) / 32, True)
    return ServedContext(tokens, source, ASSUMED_TOKENS_PER_LINE, False)


def _prompt_tokens(adapter: ModelAdapter, lines: int) -> int:
    done = adapter.complete([{"role": "user", "content": filler(lines) + "\nOK?"}], max_tokens=1)
    return done.usage.prompt_tokens if done.usage.reported else 0


def _run_once(check: _Check, battery: _Battery) -> Observation:
    start = time.perf_counter()
    try:
        return check.run(battery)
    except ModelCallError as exc:
        stream = battery.configured.spec.stream if check.stream is None else check.stream
        return Observation(False, stream, "error", str(exc)[:160], time.perf_counter() - start, failure=exc.failure)


def _result(check: _Check, observations: list[Observation], wall_s: float) -> ProbeResult:
    passed = all(o.passed for o in observations)
    if len(observations) == 1:
        detail = observations[0].detail
    else:
        first = next((o for o in observations if not o.passed), observations[0])
        detail = f"{sum(o.passed for o in observations)}/{len(observations)} runs passed"
        if check.tool:
            shapes = Counter(o.shape for o in observations)
            detail += f" ({', '.join(f'{k} {v}' for k, v in sorted(shapes.items()))})"
        detail += f"; {first.detail}"
    return ProbeResult(check.name, passed, detail, wall_s, tuple(observations), check.tool)


def run_probe(
    spec: ModelSpec,
    base_url: str,
    *,
    context_tokens: int | None = None,
    repeat: int = 1,
    concurrency: int = 1,
    make_adapter: Callable[[ModelSpec, str], ModelAdapter] | None = None,
    context: ServedContext | None = None,
    tool_checks_only: bool = False,
) -> list[ProbeResult]:
    """The battery: each loaded check ``repeat`` x ``concurrency`` times (``concurrency`` at once).

    ``context``: measured already (:func:`measure_context`); ``tool_checks_only``: the tool-format checks alone.
    """
    if repeat < 1 or concurrency < 1:
        raise ValueError("repeat and concurrency must be >= 1")
    make = make_adapter or (lambda s, u: ModelAdapter(s, base_url=u))
    adapters = [make(dataclasses.replace(spec, stream=mode), base_url) for mode in (False, True)]
    configured = make(spec, base_url)
    results = []
    try:
        ctx = context or measure_context(configured, base_url, context_tokens)
        battery = _Battery(adapters[0], adapters[1], configured, ctx)
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="probe") as pool:
            for check in (c for c in CHECKS if c.tool or not tool_checks_only):
                start = time.perf_counter()
                rounds = repeat if check.loaded else 1
                width = concurrency if check.loaded else 1
                observations = []
                for _ in range(rounds):
                    observations += list(pool.map(_run_once, [check] * width, [battery] * width))
                results.append(_result(check, observations, time.perf_counter() - start))
    finally:
        for adapter in (*adapters, configured):
            adapter.close()
    return results


def format_probe(spec: ModelSpec, results: list[ProbeResult]) -> str:
    title = f"probe {spec.alias} ({spec.model}; tool_parser={spec.tool_parser}"
    title += f", reasoning_parser={spec.reasoning_parser})" if spec.reasoning_parser else ")"
    if spec.test_double:
        title += " - scripted test double, not a model"
    width = max(len(r.check) for r in results)
    lines = [title, "-" * len(title)]
    for r in results:
        lines.append(f"{'PASS' if r.passed else 'FAIL'}  {r.check:<{width}}  {r.wall_s:6.2f} s  {r.detail}")
    passed = sum(r.passed for r in results)
    lines.append(f"{passed}/{len(results)} checks passed")
    return "\n".join(lines)


def shape_counts(results: list[ProbeResult], *, stream: bool) -> Mapping[str, int]:
    """How the tool checks' calls came back, in one mode: ``{"native": 9, "leaked": 3, ...}``."""
    return Counter(o.shape for r in results if r.tool_check for o in r.observations if o.stream == stream)

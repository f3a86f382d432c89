"""``agentbench probe ALIAS``: is this alias usable by the agent? A fixed battery, one table.

Each check sends one small request through the same adapter the agent uses and
says passed/failed and *how*: native tool calls, or calls the alias's parser
recovered from the text. Run it before a long run. pytest-free.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pytest_agentbench.agents.tools import TOOLS
from pytest_agentbench.errors import ModelCallError
from pytest_agentbench.models.adapter import ModelAdapter
from pytest_agentbench.models.calls import Completion
from pytest_agentbench.models.registry import ModelSpec


@dataclass(frozen=True)
class ProbeResult:
    check: str
    passed: bool
    detail: str
    wall_s: float


def _how(done: Completion) -> str:
    native = done.extra.get("native_tool_calls", 0)
    if done.tool_calls and not native:
        return "recovered from text by the parser"
    return "native tool_calls" if done.tool_calls else "no tool call"


def _calls(done: Completion) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for c in done.tool_calls:
        try:
            out.append((c.name, c.parsed_arguments()))
        except ValueError:
            out.append((c.name, {}))
    return out


def _plain(a: ModelAdapter) -> tuple[bool, str]:
    done = a.complete([{"role": "user", "content": "Reply with the single word OK."}], max_tokens=64)
    return bool(done.text.strip()) and not done.tool_calls, f"answer {done.text.strip()[:40]!r}"


def _one_call(a: ModelAdapter) -> tuple[bool, str]:
    done = a.complete(
        [{"role": "user", "content": "Use the read_file tool to read the file README.md."}], TOOLS, max_tokens=256
    )
    ok = ("read_file", {"path": "README.md"}) in _calls(done)
    return ok, f"{_how(done)}: {[n for n, _ in _calls(done)]}"


def _parallel(a: ModelAdapter) -> tuple[bool, str]:
    done = a.complete(
        [{"role": "user", "content": "Read both a.py and b.py: call read_file twice in one reply."}],
        TOOLS,
        max_tokens=256,
    )
    paths = sorted(args.get("path", "") for name, args in _calls(done) if name == "read_file")
    return paths == ["a.py", "b.py"], f"{_how(done)}: {len(done.tool_calls)} call(s)"


def _streamed_call(a: ModelAdapter) -> tuple[bool, str]:
    with ModelAdapter(dataclasses.replace(a.spec, stream=True), base_url=a.base_url) as streaming:
        done = streaming.complete(
            [{"role": "user", "content": "Use the list_files tool to list the files."}], TOOLS, max_tokens=256
        )
    ok = any(name == "list_files" for name, _ in _calls(done))
    ttft = f"TTFT {done.ttft_s * 1000:.0f} ms" if done.ttft_s is not None else "no TTFT"
    return ok, f"{_how(done)}, {ttft}"


def _round_trip(a: ModelAdapter) -> tuple[bool, str]:
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
    done = a.complete(messages, TOOLS, max_tokens=64)
    return "PINEAPPLE" in done.text.upper(), f"answer {done.text.strip()[:40]!r}"


def _long_prompt(a: ModelAdapter, context_tokens: int) -> tuple[bool, str]:
    # ~80 % of the context, counting a generous 12 tokens per filler line (tokenizers differ; we have
    # none here): an estimate; the server's usage is what the table reports.
    filler = "def f(x):\n    return x + 1\n" * (context_tokens * 80 // 100 // 12)
    done = a.complete(
        [{"role": "user", "content": filler + "\nHow many functions are above? Answer briefly."}], max_tokens=32
    )
    return bool(done.text.strip()), f"{done.usage.prompt_tokens} prompt tokens (server usage)"


def run_probe(
    spec: ModelSpec,
    base_url: str,
    *,
    context_tokens: int = 4096,
    make_adapter: Callable[[ModelSpec, str], ModelAdapter] | None = None,
) -> list[ProbeResult]:
    adapter = (make_adapter or (lambda s, u: ModelAdapter(s, base_url=u)))(spec, base_url)
    checks: list[tuple[str, Callable[[], tuple[bool, str]]]] = [
        ("plain answer", lambda: _plain(adapter)),
        ("one tool call", lambda: _one_call(adapter)),
        ("parallel tool calls", lambda: _parallel(adapter)),
        ("tool call, streamed", lambda: _streamed_call(adapter)),
        ("tool result round trip", lambda: _round_trip(adapter)),
        ("long prompt (near the context)", lambda: _long_prompt(adapter, context_tokens)),
    ]
    results = []
    try:
        for name, check in checks:
            start = time.perf_counter()
            try:
                ok, detail = check()
            except ModelCallError as exc:
                ok, detail = False, str(exc)[:100]
            results.append(ProbeResult(name, ok, detail, time.perf_counter() - start))
    finally:
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

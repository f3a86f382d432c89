"""The agent loop: model proposes tool calls, the sandbox executes them. pytest-free.

The loop runs on the host; only commands touch the sandbox. A bad tool call
(unknown tool, bad arguments, a path outside the workspace) is answered with an
error message for the model, never a crash. Budgets: turns, wall time, and an
output-token cap per model call.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pytest_agentbench.errors import PathRefused
from pytest_agentbench.models.calls import Completion, ToolCall, Usage
from pytest_agentbench.sandbox.base import Sandbox

SYSTEM_PROMPT = """\
You are a careful software engineer working in a git repository (your current directory).
Use the tools to inspect files, make changes and run commands. Paths are relative to the repository root.
When the task is complete, call `finish` with a one-paragraph summary. Do not ask questions: act."""

OUTCOMES = ("finished", "stopped", "max_turns", "agent_timeout", "model_error")


def _fn(name: str, description: str, properties: dict[str, Any], required: Sequence[str]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": list(required),
                "additionalProperties": False,
            },
        },
    }


_S = {"type": "string"}
TOOLS: list[dict[str, Any]] = [
    _fn("read_file", "Read a text file.", {"path": _S}, ["path"]),
    _fn(
        "write_file",
        "Create or overwrite a file with the given content.",
        {"path": _S, "content": _S},
        ["path", "content"],
    ),
    _fn(
        "edit",
        "Replace one exact, unique occurrence of `old` with `new` in a file.",
        {"path": _S, "old": _S, "new": _S},
        ["path", "old", "new"],
    ),
    _fn("list_files", "List files below a folder (default: the repository root).", {"path": _S}, []),
    _fn(
        "run",
        "Run a shell command (bash) in the repository; returns exit code and output.",
        {"command": _S, "timeout_s": {"type": "number"}},
        ["command"],
    ),
    _fn("finish", "Stop: the task is done. Give a short summary of the change.", {"summary": _S}, ["summary"]),
]
TOOL_NAMES = tuple(t["function"]["name"] for t in TOOLS)


class Model(Protocol):
    def complete(
        self,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[dict[str, Any]] = (),
        *,
        max_tokens: int | None = None,
        timeout: float | None = None,
    ) -> Completion: ...


@dataclass(frozen=True)
class AgentConfig:
    max_turns: int = 30
    timeout_s: float = 600.0
    max_output_tokens: int = 4096  # per model call
    command_timeout_s: float = 120.0  # default for `run`, never past the wall budget
    tool_output_chars: int = 12_000  # head + tail kept of each tool result


@dataclass(frozen=True)
class ToolOutcome:
    call: ToolCall
    ok: bool
    result: str
    duration_s: float


@dataclass
class Turn:
    index: int
    wall_s: float
    content: str = ""
    reasoning: str | None = None
    tool_calls: list[ToolOutcome] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    ttft_s: float | None = None
    finish_reason: str | None = None
    error: str | None = None  # failure class when the model call failed
    invalid_tool_calls: tuple[str, ...] = ()  # calls the parser could not decode (told to the model)
    retries: tuple[str, ...] = ()  # failure classes of attempts the adapter retried
    extra: dict[str, Any] = field(default_factory=dict)  # adapter timings (tpot_s, decode_tok_s, ...)


@dataclass
class AgentResult:
    outcome: str  # one of OUTCOMES
    turns: list[Turn]
    wall_s: float
    summary: str = ""
    failure: str | None = None  # model-call failure class, when outcome == "model_error"
    error: str = ""

    @property
    def usage(self) -> Usage:
        total = Usage()
        for t in self.turns:
            total = total + t.usage
        return total

    @property
    def invalid_tool_calls(self) -> int:
        return sum(len(t.invalid_tool_calls) for t in self.turns)

    def failures_by_class(self) -> dict[str, int]:
        """Every failed model-call attempt by class: retried ones, the final one, invalid tool calls."""
        counts: dict[str, int] = {}
        for t in self.turns:
            for cls in t.retries + ((t.error,) if t.error else ()):
                counts[cls] = counts.get(cls, 0) + 1
            if t.invalid_tool_calls:
                counts["invalid_tool_call"] = counts.get("invalid_tool_call", 0) + len(t.invalid_tool_calls)
        return counts

    @property
    def model_calls(self) -> int:
        return len(self.turns)

    def transcript(self) -> str:
        lines = [
            f"outcome: {self.outcome}"
            + (f" ({self.failure})" if self.failure else "")
            + f", {len(self.turns)} turn(s), {self.wall_s:.2f} s"
        ]
        for t in self.turns:
            lines.append(
                f"--- turn {t.index} ({t.wall_s:.2f} s, {t.usage.prompt_tokens} in / {t.usage.completion_tokens} out)"
            )
            if t.reasoning:
                lines.append(f"[reasoning] {clip(t.reasoning, 600)}")
            if t.content:
                lines.append(f"[assistant] {clip(t.content, 2000)}")
            for o in t.tool_calls:
                lines.append(f"[tool {o.call.name}] {clip(o.call.arguments, 600)}")
                lines.append(f"  -> {'ok' if o.ok else 'ERROR'}: {clip(o.result, 1200)}")
            for raw in t.invalid_tool_calls:
                lines.append(f"[invalid tool call] {clip(raw, 600)}")
            if t.retries:
                lines.append(f"[retried] {', '.join(t.retries)}")
            if t.error:
                lines.append(f"[model call failed] {t.error}")
        if self.error:
            lines.append(f"error: {self.error}")
        return "\n".join(lines)


def clip(text: str, limit: int) -> str:
    """Keep the head and tail of ``text`` within ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    head = limit * 2 // 3
    tail = limit - head
    return f"{text[:head]}\n[... {len(text) - limit} characters cut ...]\n{text[-tail:]}"


class ToolError(Exception):
    """A tool call the model got wrong: the message goes back to the model."""


class Tools:
    """The agent's tools over one sandbox."""

    def __init__(self, sandbox: Sandbox, config: AgentConfig, deadline: float):
        self.sandbox = sandbox
        self.config = config
        self.deadline = deadline

    def dispatch(self, call: ToolCall) -> str:
        if call.name not in TOOL_NAMES:
            raise ToolError(f"unknown tool {call.name!r}; available tools: {', '.join(TOOL_NAMES)}")
        try:
            args = call.parsed_arguments()
        except ValueError as exc:
            raise ToolError(f"{call.name}: {exc}") from None
        spec = next(t["function"] for t in TOOLS if t["function"]["name"] == call.name)
        params = spec["parameters"]
        missing = [k for k in params["required"] if k not in args]
        extra = [k for k in args if k not in params["properties"]]
        if missing or extra:
            raise ToolError(
                f"{call.name}: "
                + "; ".join(
                    p
                    for p in (
                        f"missing argument(s) {', '.join(missing)}" if missing else "",
                        f"unknown argument(s) {', '.join(extra)}" if extra else "",
                    )
                    if p
                )
                + f"; expected {', '.join(params['properties'])}"
            )
        for key, value in args.items():
            if params["properties"][key]["type"] == "string" and not isinstance(value, str):
                raise ToolError(f"{call.name}: argument {key!r} must be a string")
        handler: Callable[..., str] = getattr(self, f"tool_{call.name}")
        try:
            return handler(**args)
        except PathRefused as exc:
            raise ToolError(f"{call.name}: {exc}") from None
        except FileNotFoundError:
            raise ToolError(f"{call.name}: no such file: {args.get('path')!r}") from None

    def tool_read_file(self, path: str) -> str:
        data = self.sandbox.read_file(path)
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise ToolError(f"read_file: {path!r} is not UTF-8 text ({len(data)} bytes)") from None

    def tool_write_file(self, path: str, content: str) -> str:
        self.sandbox.write_file(path, content)
        return f"wrote {len(content.encode())} bytes to {path}"

    def tool_edit(self, path: str, old: str, new: str) -> str:
        text = self.tool_read_file(path)
        count = text.count(old) if old else 0
        if count != 1:
            why = (
                "`old` is empty"
                if not old
                else ("`old` was not found" if count == 0 else f"`old` occurs {count} times; include more context")
            )
            raise ToolError(f"edit: {why} in {path}; no change made")
        self.sandbox.write_file(path, text.replace(old, new, 1))
        return f"edited {path}"

    def tool_list_files(self, path: str = ".") -> str:
        res = self.sandbox.exec(["find", ".", "-path", "./.git", "-prune", "-o", "-type", "f", "-print"], 30, cwd=path)
        if res.exit_code != 0:
            raise ToolError(f"list_files: {res.output.strip() or 'failed'}")
        files = sorted(line[2:] for line in res.stdout.splitlines() if line.startswith("./"))
        return "\n".join(files) if files else "(no files)"

    def tool_run(self, command: str, timeout_s: float | None = None) -> str:
        remaining = self.deadline - time.monotonic()
        limit = min(
            float(timeout_s or self.config.command_timeout_s), self.config.command_timeout_s, max(1.0, remaining)
        )
        res = self.sandbox.exec(["bash", "-c", command], limit)
        head = f"exit code: {res.exit_code}" + (f" (timed out after {limit:.0f} s)" if res.timed_out else "")
        if res.truncated:
            head += " (output truncated)"
        return f"{head}\n{res.output}" if res.output else head

    def tool_finish(self, summary: str) -> str:
        return "finished"


def _assistant_message(completion: Completion) -> dict[str, Any]:
    msg: dict[str, Any] = {"role": "assistant", "content": completion.text or None}
    if completion.tool_calls:
        msg["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in completion.tool_calls
        ]
    return msg


def run_agent(prompt: str, sandbox: Sandbox, model: Model, config: AgentConfig = AgentConfig()) -> AgentResult:
    """Run the loop until ``finish``, a reply without tool calls, or a budget runs out."""
    from pytest_agentbench.models.taxonomy import ModelCallError

    start = time.monotonic()
    deadline = start + config.timeout_s
    tools = Tools(sandbox, config, deadline)
    messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": prompt}]
    turns: list[Turn] = []

    def done(outcome: str, **kw: Any) -> AgentResult:
        return AgentResult(outcome=outcome, turns=turns, wall_s=time.monotonic() - start, **kw)

    for index in range(config.max_turns):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return done("agent_timeout", error=f"wall budget of {config.timeout_s:.0f} s used up")
        t0 = time.monotonic()
        try:
            completion = model.complete(messages, TOOLS, max_tokens=config.max_output_tokens, timeout=remaining)
        except ModelCallError as exc:
            turns.append(Turn(index, time.monotonic() - t0, error=exc.failure, retries=exc.retries))
            if exc.failure == "timeout" and deadline - time.monotonic() <= 0:
                return done("agent_timeout", error=str(exc))
            return done("model_error", failure=exc.failure, error=str(exc))
        turn = Turn(
            index,
            completion.wall_s,
            completion.text,
            completion.message.reasoning,
            usage=completion.usage,
            ttft_s=completion.ttft_s,
            finish_reason=completion.finish_reason,
        )
        turn.invalid_tool_calls = completion.message.invalid_tool_calls
        turn.retries = tuple(completion.extra.get("retries", ()))
        turn.extra = {k: v for k, v in completion.extra.items() if k != "retries"}
        turns.append(turn)
        messages.append(_assistant_message(completion))
        if not completion.tool_calls and not turn.invalid_tool_calls:
            return done("stopped", summary=completion.text)
        finished: str | None = None
        for call in completion.tool_calls:
            c0 = time.monotonic()
            try:
                result, ok = tools.dispatch(call), True
            except ToolError as exc:
                result, ok = f"error: {exc}", False
            result = clip(result, config.tool_output_chars)
            turn.tool_calls.append(ToolOutcome(call, ok, result, time.monotonic() - c0))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
            if call.name == "finish" and ok:
                finished = json.loads(call.arguments or "{}").get("summary", "")
        if turn.invalid_tool_calls:
            reasons = "; ".join(clip(r, 300) for r in turn.invalid_tool_calls)
            messages.append(
                {
                    "role": "user",
                    "content": f"error: tool call(s) could not be parsed ({reasons}). "
                    "Call the tools again with a valid name and JSON object arguments.",
                }
            )
        if finished is not None:
            return done("finished", summary=finished)
    return done("max_turns", error=f"no finish after {config.max_turns} turn(s)")

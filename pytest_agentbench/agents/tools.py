"""The agent's six tools: their JSON schemas (what the model sees) and their execution over a sandbox.

A bad call (unknown tool, missing or unknown arguments, a path outside the workspace, a file
that is not text) raises :class:`ToolError`, whose message goes back to the model. So does a call
to a tool the session does not offer (``AgentConfig.tools``, a packet phase's ``tools``):
:func:`offered` is the schema list the model is shown, and :class:`Tools` refuses the rest.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from pytest_agentbench.agents.config import AgentConfig
from pytest_agentbench.errors import PathRefused
from pytest_agentbench.models.calls import ToolCall
from pytest_agentbench.sandbox.base import Sandbox


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

__all__ = ["TOOLS", "TOOL_NAMES", "ToolError", "Tools", "offered"]


def offered(names: Sequence[str] | None) -> list[dict[str, Any]]:
    """The schemas of the tools ``names`` (None: every tool), in :data:`TOOLS` order."""
    if names is None:
        return TOOLS
    return [t for t in TOOLS if t["function"]["name"] in names]


class ToolError(Exception):
    """A tool call the model got wrong: the message goes back to the model."""


class Tools:
    """The agent's tools over one sandbox."""

    def __init__(self, sandbox: Sandbox, config: AgentConfig, deadline: float):
        self.sandbox = sandbox
        self.config = config
        self.deadline = deadline

    def dispatch(self, call: ToolCall) -> str:
        allowed = self.config.tools if self.config.tools is not None else TOOL_NAMES
        if call.name not in allowed:
            if call.name in TOOL_NAMES:
                raise ToolError(
                    f"tool {call.name!r} is not offered in this session (its phase allows only "
                    f"{', '.join(allowed)}); no action taken: use one of those"
                )
            raise ToolError(f"unknown tool {call.name!r}; available tools: {', '.join(allowed)}")
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

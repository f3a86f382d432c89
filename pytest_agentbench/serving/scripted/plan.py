"""A plan step mapped onto the tools one request declares: pure (no I/O, no HTTP), one rule each.

A plan is agent-agnostic: ``shell: CMD`` means "run CMD", whatever the agent calls its shell. This
module reads the tools a request declares (:func:`declared_tools`, for each protocol) and turns a
step into an :class:`Action` - text, thinking and tool calls - that the protocol modules put on the
wire. The rules, in order:

``shell: CMD``
    onto the first tool with a command parameter: a string ``command``, else ``cmd``, else
    ``script`` (mini-swe-agent's ``bash``, Claude Code's ``Bash``, Codex's ``shell_command`` /
    ``exec_command``), or an array ``command`` (Codex's ``shell``), which gets
    ``["bash", "-lc", CMD]``. A tool qualifies only when every parameter it *requires* is filled.
``write: {path: P, content: C}``
    onto the first tool with a path parameter (``file_path``, ``path``, ``filename``, ``file``)
    and a content parameter (``content``, ``contents``, ``file_text``, ``text``): Claude Code's
    ``Write``, the built-in loop's ``write_file``; else onto the shell tool as a heredoc
    (:func:`heredoc`, byte-exact). ``via: shell`` forces the heredoc (Claude Code refuses a
    ``Write`` of a file it has not read), ``via: tool`` forbids it.
``say: TEXT`` / ``finish: TEXT``
    a plain answer without tool calls (``finish`` ends the agent's session).
``thinking: TEXT`` (any step)
    the answer's reasoning (chat ``reasoning_content``, a responses ``reasoning`` item, an
    Anthropic ``thinking`` block).
``text: TEXT`` (shell and write steps)
    assistant text sent along with the call.

A request that declares **no tools at all** (a text-protocol agent) gets a shell or write step as
text: ``text`` (if any), a blank line, then one fenced block ```` ```bash\\nCMD\\n``` ```` (a write
step: its heredoc in that block) - what mini-swe-agent's text mode and aider's shell suggestions
read. A request that declares tools of which none fits raises :class:`PlanMismatch`, naming every
tool it saw; the server answers it as HTTP 400.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_agentbench.errors import ConfigError

__all__ = [
    "COMMAND_KEYS",
    "CONTENT_KEYS",
    "PATH_KEYS",
    "STEP_KINDS",
    "Action",
    "Call",
    "PlanMismatch",
    "Tool",
    "act",
    "declared_tools",
    "fenced",
    "heredoc",
    "shell_call",
    "write_call",
]

STEP_KINDS = ("shell", "write", "say", "finish")
COMMAND_KEYS = ("command", "cmd", "script")
PATH_KEYS = ("file_path", "path", "filename", "file")
CONTENT_KEYS = ("content", "contents", "file_text", "text")
_SHELL_ARGV = ("bash", "-lc")


class PlanMismatch(ConfigError):
    """A plan step the request's declared tools cannot carry (the server answers HTTP 400)."""


@dataclass(frozen=True)
class Tool:
    """One declared tool: ``kind`` is ``function``, ``custom`` (a freeform responses tool) or the
    type of a tool the server cannot call for the agent (``local_shell``, ``web_search``, ...)."""

    name: str
    kind: str = "function"
    properties: Mapping[str, Any] = field(default_factory=dict)
    required: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "function":
            return f"{self.name}({', '.join(self.properties)})"
        return f"{self.name} [{self.kind}]"


@dataclass(frozen=True)
class Call:
    """A tool call: ``arguments`` for a function tool."""

    name: str
    arguments: Mapping[str, Any]


@dataclass(frozen=True)
class Action:
    """What one plan step answers: text, reasoning and tool calls (none for say/finish)."""

    text: str | None = None
    thinking: str | None = None
    calls: tuple[Call, ...] = ()


def _tool(name: Any, parameters: Any, kind: str = "function") -> Tool:
    params = parameters if isinstance(parameters, Mapping) else {}
    props = params.get("properties") if isinstance(params.get("properties"), Mapping) else {}
    required = params.get("required") if isinstance(params.get("required"), list) else []
    return Tool(str(name), kind, dict(props), tuple(str(r) for r in required))


def declared_tools(protocol: str, body: Mapping[str, Any]) -> list[Tool]:
    """The tools a request of ``protocol`` (chat, responses, messages) declares, in order."""
    tools = body.get("tools")
    out: list[Tool] = []
    for raw in tools if isinstance(tools, list) else ():
        if not isinstance(raw, Mapping):
            continue
        kind = str(raw.get("type") or "function")
        if protocol == "chat" and kind == "function" and isinstance(raw.get("function"), Mapping):
            out.append(_tool(raw["function"].get("name"), raw["function"].get("parameters")))
        elif protocol == "responses" and kind == "function":
            out.append(_tool(raw.get("name"), raw.get("parameters")))
        elif protocol == "messages" and "input_schema" in raw:
            out.append(_tool(raw.get("name"), raw.get("input_schema")))
        else:
            out.append(Tool(str(raw.get("name") or kind), kind))
    return out


def _types(schema: Any) -> tuple[str, ...]:
    kind = schema.get("type") if isinstance(schema, Mapping) else None
    if kind is None:
        return ("string",) if isinstance(schema, Mapping) and "items" not in schema else ()
    return tuple(kind) if isinstance(kind, list) else (str(kind),)


def _is_string(schema: Any) -> bool:
    return "string" in _types(schema)


def _is_string_array(schema: Any) -> bool:
    items = schema.get("items") if isinstance(schema, Mapping) else None
    return "array" in _types(schema) and (items is None or _is_string(items))


def _fits(tool: Tool, used: set[str]) -> bool:
    return tool.kind == "function" and set(tool.required) <= used


def shell_call(tools: Sequence[Tool], command: str) -> Call | None:
    """The call that runs ``command`` through the request's shell tool, or None without one."""
    for key in COMMAND_KEYS:
        for tool in tools:
            schema = tool.properties.get(key)
            if schema is None or not _fits(tool, {key}):
                continue
            if _is_string(schema):
                return Call(tool.name, {key: command})
            if key == "command" and _is_string_array(schema):
                return Call(tool.name, {key: [*_SHELL_ARGV, command]})
    return None


def write_call(tools: Sequence[Tool], path: str, content: str) -> Call | None:
    """The call that writes ``content`` to ``path`` through a write tool, or None without one."""
    for tool in tools:
        path_key = next((k for k in PATH_KEYS if _is_string(tool.properties.get(k))), None)
        content_key = next((k for k in CONTENT_KEYS if k != path_key and _is_string(tool.properties.get(k))), None)
        if path_key and content_key and _fits(tool, {path_key, content_key}):
            return Call(tool.name, {path_key: path, content_key: content})
    return None


def heredoc(path: str, content: str) -> str:
    """A shell command that writes exactly ``content`` to ``path`` (its folder made first)."""
    target = shlex.quote(path)
    parent = posixpath.dirname(path)
    mkdir = f"mkdir -p {shlex.quote(parent)} && " if parent else ""
    if not content:
        return f"{mkdir}: > {target}"
    if not content.endswith("\n"):  # a heredoc always ends in a newline: printf keeps the bytes as given
        return f"{mkdir}printf '%s' {shlex.quote(content)} > {target}"
    tag = "AGENTBENCH_EOF"
    while tag in content.splitlines():
        tag += "_"
    return f"{mkdir}cat > {target} <<'{tag}'\n{content}{tag}"


def fenced(command: str, text: str | None = None) -> str:
    """A command as a text-protocol agent reads it: ``text``, a blank line, one ```bash block."""
    block = f"```bash\n{command}\n```"
    return f"{text}\n\n{block}" if text else block


def _seen(tools: Sequence[Tool]) -> str:
    return ", ".join(t.describe() for t in tools)


def _shell_or_text(tools: Sequence[Tool], command: str, text: str | None, needs: str) -> tuple[str | None, Call | None]:
    if not tools:
        return fenced(command, text), None
    call = shell_call(tools, command)
    if call is None:
        raise PlanMismatch(f"{needs}; the request declares: {_seen(tools)}")
    return text, call


_SHELL_NEEDS = (
    "a shell step needs a tool with a command parameter (a string 'command', 'cmd' or 'script', or an "
    "array 'command') whose other required parameters are none"
)


def act(step: Mapping[str, Any], tools: Sequence[Tool], *, workdir: str | None = None) -> Action:
    """The :class:`Action` for one validated plan ``step`` given the request's ``tools``.

    ``workdir`` (the conversation's): a relative write path is joined onto it. Raises
    :class:`PlanMismatch` when tools are declared and none fits the step.
    """
    thinking = step.get("thinking")
    if "say" in step or "finish" in step:
        return Action(text=str(step.get("say", step.get("finish"))), thinking=thinking)
    text = step.get("text")
    if "shell" in step:
        text, call = _shell_or_text(tools, str(step["shell"]), text, _SHELL_NEEDS)
        return Action(text, thinking, (call,) if call else ())
    write = step["write"]
    path = str(write["path"])
    if workdir and not posixpath.isabs(path):
        path = posixpath.join(workdir, path)
    via = step.get("via")
    call = None if via == "shell" or not tools else write_call(tools, path, str(write["content"]))
    if call is None and via == "tool":
        needs = f"a write step with via: tool needs a tool with {'/'.join(PATH_KEYS)} and {'/'.join(CONTENT_KEYS)}"
        raise PlanMismatch(f"{needs} string parameters; the request declares: {_seen(tools) or 'no tools'}")
    if call is not None:
        return Action(text, thinking, (call,))
    needs = (
        "a write step needs a write tool (a path parameter such as file_path or path and a content parameter) "
        f"or a shell tool for a heredoc; {_SHELL_NEEDS.removeprefix('a shell step needs ')}"
    )
    text, call = _shell_or_text(tools, heredoc(path, str(write["content"])), text, needs)
    return Action(text, thinking, (call,) if call else ())

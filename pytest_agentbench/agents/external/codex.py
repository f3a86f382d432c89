"""The OpenAI Codex CLI (``@openai/codex``) as an external agent: its config, command line and exit. pytest-free.

Codex runs headless as ``codex exec`` in the sandbox's workspace and speaks the Responses API
(``POST {base_url}/responses``, always streamed, ``store: false``) to the measuring gateway, whose
per-run token is its only key. Everything it keeps lives in ``CODEX_HOME`` under the session's
state folder, outside the workspace::

    CODEX_HOME=<state_dir>/codex-home  AGENTBENCH_RUN_TOKEN=<token>
    sh -c 'exec "$@" - < "$0"' <prompt_file> codex exec --skip-git-repo-check
        --dangerously-bypass-approvals-and-sandbox --strict-config --ephemeral --color never --json

* ``config.toml`` (:func:`config_toml`) names one model provider, the gateway, with
  ``wire_api = "responses"``; approvals and Codex's own sandbox are off (we run it inside ours:
  its Linux sandbox needs bubblewrap and user namespaces, and fails closed without them);
  everything that would reach off the machine is off (update check, analytics, feedback, plugin
  sync, web search, apps, browser/computer use, image generation, sub-agents, goals).
  ``--strict-config`` makes a key this version does not know an error, not a silent no-op.
* The prompt is read from the prompt file on stdin (``-``): no argument-length limit, and a
  prompt that starts with ``-`` is not an option.
* ``--json`` prints one event per line (:func:`read_events`); :meth:`CodexAgent.finish` reads
  the exit from them. The model's turns and tokens come from the gateway, never from these.

Budgets: Codex has no turn or step limit and sends no output cap, so ``max_turns`` and
``max_output_tokens`` cannot be handed to it (the gateway's token budget and the sandbox's wall
clock bound a session; an alias's ``max_tokens`` is still applied by the gateway). A phase's
``tools`` cannot be enforced either (Codex has one shell tool, ``exec_command``): a phase without
any writing tool gets a read-only instruction (:data:`READ_ONLY_NOTE`). Measured behaviour of
this version: docs/agents.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_agentbench.agents.external.adapter import AgentInstall, Finish, Protocol_, Session, last_line
from pytest_agentbench.sandbox.base import ExecResult

__all__ = [
    "COMMAND_ENV_EXCLUDED",
    "PACKAGE",
    "READ_ONLY_NOTE",
    "TOKEN_ENV",
    "VERSION",
    "CodexAgent",
    "CodexEvents",
    "config_toml",
    "read_events",
]

PACKAGE = "@openai/codex"
VERSION = "0.171.0"
#: The variable Codex reads its API key from (``model_providers.agentbench.env_key``): the run token.
TOKEN_ENV = "AGENTBENCH_RUN_TOKEN"
PROVIDER = "agentbench"
#: Built-in tools that change the workspace; a phase allowed none of them is told to stay read-only.
WRITING_TOOLS = frozenset({"write_file", "edit", "run"})
READ_ONLY_NOTE = (
    "This session may only read: inspect files and run read-only commands, but do not create, "
    "modify or delete any file."
)
# Codex retries a failed request itself (2 more attempts, ~0.2-0.8 s apart, measured); a dropped
# stream is not retried (stream retries multiply the request retries: 3 x 3 attempts at 2 and 2).
REQUEST_RETRIES = 2
STREAM_RETRIES = 0
# Features on by default in 0.171.0 that reach off the machine or declare tools no sandbox serves.
FEATURES_OFF = (
    "apps",
    "api_key_model_discovery",
    "browser_use",
    "computer_use",
    "daemon_auto_start",
    "goals",
    "image_generation",
    "in_app_updates",
    "plugins",
    "remote_plugin",
    "skill_search",
    "tool_suggest",
    "unbounded_connection_retries",
)

#: Variables the model's commands do not get (Codex passes its whole environment on otherwise): the run
#: token and the gateway's URLs are for Codex itself.
COMMAND_ENV_EXCLUDED = ("AGENTBENCH_*", "OPENAI_*", "ANTHROPIC_*")

Scalar = str | bool | int | tuple[str, ...]


def _toml_value(value: Scalar) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    # A JSON string is a TOML basic string, once DEL (which JSON leaves raw) is escaped too.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml(top: Mapping[str, Scalar], tables: Mapping[str, Mapping[str, Scalar]]) -> str:
    lines = [f"{key} = {_toml_value(value)}" for key, value in top.items()]
    for name, table in tables.items():
        lines += ["", f"[{name}]", *(f"{key} = {_toml_value(value)}" for key, value in table.items())]
    return "\n".join(lines) + "\n"


def config_toml(session: Session) -> str:
    """``$CODEX_HOME/config.toml`` for ``session``: the gateway as the only provider, nothing off the machine."""
    top: dict[str, Scalar] = {
        "model": session.model,
        "model_provider": PROVIDER,
        "approval_policy": "never",
        "sandbox_mode": "danger-full-access",
        "check_for_update_on_startup": False,
        "web_search": "disabled",
        "model_reasoning_summary": "none",
        "allow_login_shell": False,  # bash -lc would source /etc/profile, which may reset the sandbox's PATH
    }
    if session.tools is not None and not WRITING_TOOLS & set(session.tools):
        top["developer_instructions"] = READ_ONLY_NOTE
    tables: dict[str, dict[str, Scalar]] = {
        "analytics": {"enabled": False},
        "feedback": {"enabled": False},
        "history": {"persistence": "none"},
        "agents": {"enabled": False},
        "shell_environment_policy": {"exclude": COMMAND_ENV_EXCLUDED},
        "features": {name: False for name in FEATURES_OFF},
        f"model_providers.{PROVIDER}": {
            "name": "agentbench gateway",
            "base_url": session.base_url,
            "env_key": TOKEN_ENV,
            "wire_api": "responses",
            "request_max_retries": REQUEST_RETRIES,
            "stream_max_retries": STREAM_RETRIES,
        },
    }
    return _toml(top, tables)


@dataclass
class CodexEvents:
    """What ``codex exec --json`` printed, as far as the exit is concerned."""

    thread_id: str | None = None
    messages: list[str] = field(default_factory=list)  # agent_message texts, in order
    commands: int = 0  # command_execution items completed
    file_changes: int = 0  # file_change items completed (apply_patch)
    warnings: list[str] = field(default_factory=list)  # error *items*: Codex goes on after them
    errors: list[str] = field(default_factory=list)  # top-level error events
    failed: str | None = None  # turn.failed's message
    completed: bool = False  # a turn.completed was printed
    usage: dict[str, Any] | None = None  # Codex's own count (the gateway's is the record's)


def read_events(stdout: str) -> CodexEvents:
    """The JSONL events of ``codex exec --json``; lines that are not JSON objects (a cut tail) are skipped."""
    seen = CodexEvents()
    for line in stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            _take(seen, event)
    return seen


def _take(seen: CodexEvents, event: dict[str, Any]) -> None:
    kind = event.get("type")
    item = event.get("item") if isinstance(event.get("item"), dict) else {}
    if kind == "thread.started":
        seen.thread_id = str(event.get("thread_id") or "") or None
    elif kind == "item.completed":
        item_type = item.get("type")
        if item_type == "agent_message":
            seen.messages.append(str(item.get("text") or ""))
        elif item_type == "command_execution":
            seen.commands += 1
        elif item_type == "file_change":
            seen.file_changes += 1
        elif item_type == "error":
            seen.warnings.append(str(item.get("message") or ""))
    elif kind == "error":
        seen.errors.append(str(event.get("message") or ""))
    elif kind == "turn.failed":
        error = event.get("error")
        seen.failed = str(error.get("message") if isinstance(error, dict) else error or "turn failed")
    elif kind == "turn.completed":
        seen.completed = True
        usage = event.get("usage")
        seen.usage = usage if isinstance(usage, dict) else None


@dataclass(frozen=True)
class CodexAgent:
    """The Codex CLI, pinned (:data:`VERSION`), as an ``AgentAdapter`` (agents/external/adapter.py)."""

    version: str = VERSION
    name: str = "codex"
    protocol: Protocol_ = "responses"

    @property
    def install(self) -> AgentInstall:
        """What the image needs: this version, pinned."""
        return AgentInstall(name="codex", npm=(f"{PACKAGE}@{self.version}",), bins=("codex",))

    @staticmethod
    def home(session: Session) -> str:
        """``CODEX_HOME``: config, sqlite state, shell snapshots; under the state folder, outside the workspace."""
        return f"{session.state_dir.rstrip('/')}/codex-home"

    def files(self, session: Session) -> dict[str, str]:
        return {f"{self.home(session)}/config.toml": config_toml(session)}

    def env(self, session: Session) -> dict[str, str]:
        return {"CODEX_HOME": self.home(session), TOKEN_ENV: session.token}

    def argv(self, session: Session) -> list[str]:
        flags = [
            "exec",
            "--skip-git-repo-check",
            "--dangerously-bypass-approvals-and-sandbox",
            "--strict-config",
            "--ephemeral",
            "--color",
            "never",
            "--json",
        ]
        # sh only redirects the prompt file to stdin ("-": read the prompt there) and becomes codex.
        return ["sh", "-c", 'exec "$@" - < "$0"', session.prompt_file, "codex", *flags]

    def finish(self, result: ExecResult, session: Session) -> Finish:
        seen = read_events(result.stdout)
        if result.timed_out:
            return Finish(False, note=f"codex: stopped at the wall clock ({session.timeout_s:g} s)")
        why = seen.failed or (seen.errors[-1] if seen.errors else None)
        if result.exit_code != 0 or seen.failed is not None:
            detail = why or last_line(result.stderr) or last_line(result.stdout) or "no output"
            return Finish(False, note=f"codex: exit {result.exit_code}: {detail}"[:300])
        said = _first_line(seen.messages[-1]) if seen.messages else ""
        return Finish(True, note=f"codex: {said}" if said else "codex: finished without a final message")


def _first_line(text: str, limit: int = 300) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:limit]

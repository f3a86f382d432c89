"""Claude Code (``@anthropic-ai/claude-code``) as an external agent: its settings, command line and exit. pytest-free.

Claude Code runs headless as ``claude -p`` in the sandbox's workspace and speaks Anthropic messages
(``POST {root_url}/v1/messages``, always streamed) to the measuring gateway. The prompt comes from
the prompt file on stdin (no argument-length limit; a prompt starting with ``-`` is no option)::

    env -u ANTHROPIC_API_KEY -u OPENAI_API_KEY  sh -c 'exec "$@" < "$0"' <prompt_file>
        claude -p --output-format json --max-turns N --model M --dangerously-skip-permissions
        [--tools T,..] --disallowedTools WebFetch,WebSearch

* **The token is in no environment.** Claude Code hands its whole environment to the model's
  ``Bash`` commands (measured), and its own scrubbing (``CLAUDE_CODE_SUBPROCESS_ENV_SCRUB``)
  needs bubblewrap inside the sandbox. So the run token is removed from the environment
  (``env -u``) and Claude Code reads it through ``apiKeyHelper`` (``settings.json`` in
  ``CLAUDE_CONFIG_DIR``: ``cat`` of a file under the state folder). The sandbox has one user, so a
  command that goes looking can still read that file: the token is only good for this run,
  through the gateway, which counts every call it makes.
* Everything it keeps is under the state folder, outside the workspace: ``CLAUDE_CONFIG_DIR``
  (``.claude.json``, sessions, shell snapshots) and ``CLAUDE_CODE_TMPDIR`` (its sockets and notes).
* Nothing leaves the machine: ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC`` (update check,
  telemetry, error reports, and no title / suggestion calls to the model),
  ``CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS`` (no ``anthropic-beta`` features a non-Anthropic server
  may refuse, no ``context_management``), web tools denied; its small/fast model is the session's
  model, so any side call it still makes goes through the gateway and counts.
* ``--output-format json`` prints one result object (:func:`read_result`), whose ``subtype`` says
  how it ended (``success``, ``error_max_turns``, ``error_during_execution``); the model's turns
  and tokens come from the gateway, never from it.

==================  ==========================================================================
packet budget       Claude Code
==================  ==========================================================================
max_turns           ``--max-turns`` (model calls); reaching it is exit 1, ``error_max_turns``,
                    the run's outcome ``max_turns``. The gateway caps the run's calls too.
max_total_tokens    the gateway (a refused call is a 402; Claude Code does not retry it)
timeout_s           the sandbox's wall clock on the whole command
max_output_tokens   ``CLAUDE_CODE_MAX_OUTPUT_TOKENS`` (the request's ``max_tokens``)
tools (phase)       ``--tools``: built-in names mapped by :data:`TOOL_MAP`
==================  ==========================================================================

Measured with 2.1.332: docs/agents.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pytest_agentbench.agents.external.adapter import AgentInstall, Finish, Protocol_, Session, last_line
from pytest_agentbench.sandbox.base import ExecResult

__all__ = ["DENIED_TOOLS", "PACKAGE", "TOOL_MAP", "VERSION", "ClaudeCode", "claude_tools", "read_result"]

PACKAGE = "@anthropic-ai/claude-code"
VERSION = "2.1.332"
#: The packet's built-in tool names -> the Claude Code tools that do the same (``finish``: none,
#: Claude Code ends by answering without a tool call).
TOOL_MAP: dict[str, tuple[str, ...]] = {
    "read_file": ("Read",),
    "list_files": ("Glob", "Grep"),
    "write_file": ("Write",),
    "edit": ("Edit",),
    "run": ("Bash",),
    "finish": (),
}
#: Tools that reach off the machine (the sandbox has no network): never offered.
DENIED_TOOLS = ("WebFetch", "WebSearch")
#: Attempts Claude Code makes at a failed call (its default is 10, backing off up to minutes).
MAX_RETRIES = 2
#: Variables the launcher sets that hold the run token: removed before Claude Code starts.
TOKEN_VARIABLES = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY")


def claude_tools(tools: tuple[str, ...] | None) -> list[str] | None:
    """Claude Code's ``--tools`` for a phase's built-in tool names (None: its default set)."""
    if tools is None:
        return None
    return sorted({mapped for name in tools for mapped in TOOL_MAP.get(name, ())})


def read_result(stdout: str) -> dict[str, Any] | None:
    """The result object ``--output-format json`` prints last (None: none could be read)."""
    for line in reversed(stdout.splitlines()):
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, dict) and found.get("type") == "result":
            return found
    return None


@dataclass(frozen=True)
class ClaudeCode:
    """Claude Code, pinned (:data:`VERSION`), as an ``AgentAdapter`` (agents/external/adapter.py)."""

    version: str = VERSION
    name: str = "claude-code"
    protocol: Protocol_ = "messages"

    @property
    def install(self) -> AgentInstall:
        """What the image needs: this version, pinned."""
        return AgentInstall(name="claude-code", npm=(f"{PACKAGE}@{self.version}",), bins=("claude",))

    @staticmethod
    def config_dir(session: Session) -> str:
        """``CLAUDE_CONFIG_DIR``: settings, ``.claude.json``, sessions; under the state folder."""
        return f"{session.state_dir.rstrip('/')}/claude-config"

    @staticmethod
    def token_file(session: Session) -> str:
        """Where ``apiKeyHelper`` reads the run token from."""
        return f"{session.state_dir.rstrip('/')}/claude-token"

    def files(self, session: Session) -> dict[str, str]:
        settings = {"apiKeyHelper": f"cat {self.token_file(session)}"}
        return {
            f"{self.config_dir(session)}/settings.json": json.dumps(settings, indent=1),
            self.token_file(session): session.token,
        }

    def env(self, session: Session) -> dict[str, str]:
        env = {
            "CLAUDE_CONFIG_DIR": self.config_dir(session),
            "CLAUDE_CODE_TMPDIR": f"{session.state_dir.rstrip('/')}/claude-tmp",
            "ANTHROPIC_BASE_URL": session.root_url,
            "ANTHROPIC_MODEL": session.model,
            "ANTHROPIC_SMALL_FAST_MODEL": session.model,
            "ANTHROPIC_DEFAULT_HAIKU_MODEL": session.model,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "CLAUDE_CODE_DISABLE_EXPERIMENTAL_BETAS": "1",
            "CLAUDE_CODE_MAX_RETRIES": str(MAX_RETRIES),
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_ERROR_REPORTING": "1",
        }
        if session.max_output_tokens:
            env["CLAUDE_CODE_MAX_OUTPUT_TOKENS"] = str(session.max_output_tokens)
        return env

    def argv(self, session: Session) -> list[str]:
        flags = ["-p", "--output-format", "json", "--max-turns", str(session.max_turns), "--model", session.model]
        flags += ["--dangerously-skip-permissions"]  # refused as root; the sandbox's user is not
        tools = claude_tools(session.tools)
        if tools is not None:
            flags += ["--tools", ",".join(tools)]
        flags += ["--disallowedTools", ",".join(DENIED_TOOLS)]
        unset = [arg for name in TOKEN_VARIABLES for arg in ("-u", name)]
        # sh only redirects the prompt file to stdin and becomes claude.
        return ["env", *unset, "sh", "-c", 'exec "$@" < "$0"', session.prompt_file, "claude", *flags]

    def finish(self, result: ExecResult, session: Session) -> Finish:
        if result.timed_out:
            return Finish(False, note=f"claude-code: stopped at the wall clock ({session.timeout_s:g} s)")
        out = read_result(result.stdout)
        if out is None:
            detail = last_line(result.stderr) or last_line(result.stdout) or "no output"
            return Finish(False, note=f"claude-code: exit {result.exit_code}: {detail}"[:300])
        subtype = str(out.get("subtype") or "")
        if subtype == "error_max_turns":
            return Finish(False, ended_by="turns", note=f"claude-code: turn limit {session.max_turns} reached")
        if result.exit_code == 0 and subtype == "success" and not out.get("is_error"):
            said = _first_line(str(out.get("result") or ""))
            return Finish(True, note=f"claude-code: {said}" if said else "claude-code: finished without a message")
        errors = out.get("errors")
        why = "; ".join(map(str, errors)) if isinstance(errors, list) and errors else str(out.get("result") or "")
        return Finish(False, note=f"claude-code: exit {result.exit_code}, {subtype or 'no subtype'}: {why}"[:300])


def _first_line(text: str, limit: int = 300) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:limit]

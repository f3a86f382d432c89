"""The ``command`` agent: any agent CLI, given as a shell template. pytest-free.

For an agent no built-in adapter knows, a template in ``agents.yaml`` (a named agent) or the ini
key ``agentbench_agent_command`` / ``--agent-command`` (the agent called ``command``)::

    my-agent --task-file {prompt_file} --api-base {base_url} --model {model} --max-steps {max_turns}

Placeholders (each replaced shell-quoted; unknown ones are a configuration error when the template
is read, not when a run starts): ``{prompt_file}``, ``{prompt}``, ``{base_url}`` (OpenAI style,
ends in ``/v1``), ``{root_url}`` (Anthropic style), ``{model}``, ``{max_turns}``, ``{timeout_s}``,
``{workspace}``, ``{state_dir}``. The command runs with ``sh -c`` in the workspace, with
``OPENAI_BASE_URL``/``OPENAI_API_KEY`` and ``ANTHROPIC_BASE_URL``/``ANTHROPIC_API_KEY`` pointing at
the gateway; exit status 0 is ``finished``, any other ``stopped``. Its install, when it has one,
is an :class:`~pytest_agentbench.sandbox.agent_install.AgentInstall` like the built-in adapters'.
"""

from __future__ import annotations

import shlex
import string
from dataclasses import dataclass

from pytest_agentbench.agents.external.adapter import AgentInstall, Finish, Protocol_, Session, last_line
from pytest_agentbench.errors import ConfigError
from pytest_agentbench.sandbox.base import ExecResult

__all__ = ["PLACEHOLDERS", "CommandAdapter", "check_template"]

PLACEHOLDERS = frozenset(
    {"prompt_file", "prompt", "base_url", "root_url", "model", "max_turns", "timeout_s", "workspace", "state_dir"}
)


def check_template(template: str, where: str) -> str:
    """``template`` if it is a usable command template, else ConfigError naming ``where`` and the fix."""
    if not isinstance(template, str) or not template.strip():
        raise ConfigError(f"{where}: the agent command is empty; give a shell command, e.g. 'my-agent {{prompt_file}}'")
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ConfigError(
            f"{where}: the agent command {template!r} is not a valid template ({exc}); write a "
            "literal brace as {{ or }}"
        ) from None
    unknown = sorted({f for f in fields if f not in PLACEHOLDERS})
    if unknown:
        raise ConfigError(
            f"{where}: unknown placeholder(s) {', '.join('{' + u + '}' for u in unknown)} in the agent command; "
            f"known: {', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))}"
        )
    return template


@dataclass(frozen=True)
class CommandAdapter:
    """An agent given as a shell template (see the module docstring)."""

    template: str
    name: str = "command"
    version: str = "unversioned"
    protocol: Protocol_ = "chat"
    install: AgentInstall | None = None
    extra_env: tuple[tuple[str, str], ...] = ()

    def files(self, session: Session) -> dict[str, str]:
        return {}

    def env(self, session: Session) -> dict[str, str]:
        return dict(self.extra_env)

    def argv(self, session: Session) -> list[str]:
        values = {
            "prompt_file": session.prompt_file,
            "prompt": session.prompt,
            "base_url": session.base_url,
            "root_url": session.root_url,
            "model": session.model,
            "max_turns": str(session.max_turns),
            "timeout_s": f"{session.timeout_s:g}",
            "workspace": session.workspace,
            "state_dir": session.state_dir,
        }
        return ["sh", "-c", self.template.format(**{k: shlex.quote(v) for k, v in values.items()})]

    def finish(self, result: ExecResult, session: Session) -> Finish:
        if result.ok:
            return Finish(True, note=f"{self.name}: exit 0")
        return Finish(False, note=f"{self.name}: exit {result.exit_code}: {last_line(result.output)}")

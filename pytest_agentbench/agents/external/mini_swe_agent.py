"""The mini-swe-agent adapter (PyPI ``mini-swe-agent``, the ``mini`` CLI, v2). pytest-free.

mini-swe-agent v2 gives the model one shell tool (native tool calls, chat completions through
LiteLLM), runs each command in a fresh subshell in the workspace, and ends when the model runs
``echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT``. Headless here means::

    mini -c mini.yaml -c STATE/agentbench.yaml -t "$(cat PROMPT)" -y --exit-immediately -o STATE/trajectory.json

with the config file setting what the packet allows (measured with 2.4.6; docs/agents.md):

==================  ==========================================================================
packet budget       mini-swe-agent
==================  ==========================================================================
max_turns           ``agent.step_limit`` (model calls); reaching it is ``LimitsExceeded`` and
                    the run's outcome ``max_turns``
max_total_tokens    the gateway (a call past the budget is refused: ``token_budget``)
timeout_s           the sandbox's wall clock on the whole command; each shell command also
                    gets ``environment.timeout`` = ``limits.timeout_s`` at most 120 s
max_output_tokens   ``model.model_kwargs.max_tokens``
cost                ``agent.cost_limit: 0`` (off: cost is ours to compute, from the gateway's
                    usage); ``MSWEA_COST_TRACKING=ignore_errors`` so an unknown model is no error
==================  ==========================================================================

``MSWEA_CONFIGURED=true`` skips its first-run wizard (it aborts without a terminal),
``LITELLM_LOCAL_MODEL_COST_MAP=True`` keeps LiteLLM from fetching its cost map, and
``MSWEA_GLOBAL_CONFIG_DIR`` keeps its state under the session's state folder. The run's exit
status comes from the trajectory's ``info.exit_status`` (``Submitted`` = finished), printed by a
line of the system ``python3`` after ``mini`` exits, since ``mini`` itself exits 0 either way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pytest_agentbench.agents.external.adapter import AgentInstall, Finish, Protocol_, Session, last_line
from pytest_agentbench.sandbox.base import ExecResult

__all__ = ["STATUS_MARK", "MiniSweAgent"]

DEFAULT_VERSION = "2.4.6"
#: The line the wrapper prints after ``mini`` exits: the trajectory's exit status.
STATUS_MARK = "agentbench-mini-exit-status:"
_STATUS = re.compile(rf"^{re.escape(STATUS_MARK)} ?(.*)$", re.MULTILINE)
#: mini's per-command timeout is at most this (the packet's wall clock bounds the whole run anyway).
COMMAND_TIMEOUT_S = 120

_WRAPPER = (
    'mini -c mini.yaml -c "$1/agentbench.yaml" -t "$(cat "$2")" -y --exit-immediately -o "$1/trajectory.json"; '
    'code=$?; python3 -c "$3" "$1/trajectory.json"; exit $code'
)
_READ_STATUS = f"""
import json, sys
try:
    print("{STATUS_MARK}", json.load(open(sys.argv[1]))["info"]["exit_status"])
except Exception as exc:
    print("{STATUS_MARK} none (%s)" % exc)
"""


@dataclass(frozen=True)
class MiniSweAgent:
    """mini-swe-agent, headless (see the module docstring)."""

    version: str = DEFAULT_VERSION
    name: str = "mini-swe-agent"
    protocol: Protocol_ = "chat"

    @property
    def install(self) -> AgentInstall:
        """What the image needs: this version, pinned."""
        return AgentInstall(name="mini-swe-agent", pip=(f"mini-swe-agent=={self.version}",), bins=("mini",))

    def config(self, session: Session) -> dict[str, object]:
        """mini's config overrides for this session (merged over its own mini.yaml)."""
        kwargs: dict[str, object] = {"api_base": session.base_url, "api_key": session.token, "drop_params": True}
        if session.max_output_tokens:
            kwargs["max_tokens"] = session.max_output_tokens
        model = {"model_name": f"openai/{session.model}", "model_kwargs": kwargs, "cost_tracking": "ignore_errors"}
        return {
            "agent": {"step_limit": session.max_turns, "cost_limit": 0, "mode": "yolo", "confirm_exit": False},
            "environment": {"cwd": session.workspace, "timeout": int(min(COMMAND_TIMEOUT_S, session.timeout_s))},
            "model": model,
        }

    def files(self, session: Session) -> dict[str, str]:
        # JSON is YAML: no YAML writer needed for the config file.
        return {f"{session.state_dir}/agentbench.yaml": json.dumps(self.config(session), indent=1)}

    def env(self, session: Session) -> dict[str, str]:
        return {
            "MSWEA_CONFIGURED": "true",
            "MSWEA_COST_TRACKING": "ignore_errors",
            "MSWEA_GLOBAL_CONFIG_DIR": f"{session.state_dir}/mini-swe-agent",
            "MSWEA_SILENT_STARTUP": "1",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        }

    def argv(self, session: Session) -> list[str]:
        return ["sh", "-c", _WRAPPER, "sh", session.state_dir, session.prompt_file, _READ_STATUS]

    def finish(self, result: ExecResult, session: Session) -> Finish:
        found = _STATUS.findall(result.stdout)
        status = found[-1].strip() if found else "none"
        if status == "Submitted" and result.exit_code == 0:
            return Finish(True, note="mini-swe-agent: submitted")
        if status == "LimitsExceeded":
            return Finish(False, ended_by="turns", note=f"mini-swe-agent: step limit {session.max_turns} reached")
        detail = last_line(result.stderr) or last_line(result.stdout)
        return Finish(False, note=f"mini-swe-agent: exit {result.exit_code}, status {status}: {detail}")

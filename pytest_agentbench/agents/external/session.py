"""One headless session of an external agent in a sandbox, measured by the gateway. pytest-free.

:func:`run_session` is the external counterpart of the built-in loop (``agents.loop.run_agent``):
it takes a sandbox that mounts the gateway's agent socket, an adapter and an open gateway run,
and returns the same :class:`~pytest_agentbench.agents.transcript.AgentResult` the built-in loop
does, built from the gateway's records of the run's calls (``serving.gateway.turns``), never from
what the agent prints about itself. One command does it all, inside the sandbox:

    forwarder (127.0.0.1:8765 -> the agent socket)
      python3 LAUNCH          reads {files, env} from stdin, writes the files (prompt, config) under
                              the session's state folder, sets the environment, stdin -> /dev/null,
                              then becomes the agent (exec)

So no file lands in the workspace that the agent did not write, the per-run token is the only
credential inside, and the agent's command runs under the sandbox's own wall clock
(``AgentConfig.wall_limit_s``), its overrun being ``agent_timeout`` (or ``safety_timeout`` in
``tokens`` mode), as for the built-in agent.

How a session ends (the record's outcome): a spent token budget (the gateway refused a call) is
``token_budget``; a wall clock that ran out, the timeout's outcome; the adapter's ``Finish``
saying it stopped at its own step limit, ``max_turns``; a model call that failed last,
``model_error``; else ``finished`` when the agent exited 0 by itself, ``stopped`` when it did
not. An agent that never reached the model (no call at all) and exited non-zero did not start: the
run is ``infrastructure`` with failure ``agent_start`` (not counted: nothing was measured of the
model; the harness's fault or the agent's install), and the plugin raises
:class:`~pytest_agentbench.errors.AgentStartError` after recording it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass

from pytest_agentbench.agents.config import AgentConfig
from pytest_agentbench.agents.external.adapter import AgentAdapter, Session
from pytest_agentbench.agents.transcript import AGENT_START, INFRASTRUCTURE, AgentResult, Outcome
from pytest_agentbench.errors import SandboxError
from pytest_agentbench.sandbox.base import ExecResult, Sandbox
from pytest_agentbench.serving.gateway import (
    GATEWAY_PORT,
    GatewayClient,
    RunCalls,
    RunTicket,
    agent_result,
    budget_use,
    forwarder_argv,
)

__all__ = ["LAUNCH_SOURCE", "STATE_DIR", "SessionRun", "launch_argv", "new_session", "run_session"]

#: Where a session's prompt, config and agent state live inside the sandbox (outside the workspace).
STATE_DIR = "/tmp/agentbench-agent"

LAUNCH_SOURCE = r"""
import json, os, sys

spec = json.load(sys.stdin)
for path, text in spec["files"].items():
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
os.environ.update(spec["env"])
null = os.open(os.devnull, os.O_RDONLY)
os.dup2(null, 0)
os.close(null)
try:
    os.execvp(sys.argv[1], sys.argv[1:])
except OSError as exc:
    sys.stderr.write("agentbench: cannot start %s: %s\n" % (sys.argv[1], exc))
    sys.exit(127)
"""


def launch_argv(argv: list[str], socket_inside: str) -> list[str]:
    """The agent's ``argv`` behind the forwarder and the launcher (stdin: :func:`launch_input`)."""
    if not argv:
        raise ValueError("the adapter gave an empty command")
    return forwarder_argv(["python3", "-c", LAUNCH_SOURCE, *argv], socket_inside, port=GATEWAY_PORT)


def launch_input(files: Mapping[str, str], env: Mapping[str, str]) -> str:
    """What the launcher reads on stdin: the files to write and the environment to set."""
    for path in files:
        if not path.startswith("/"):
            raise ValueError(f"adapter file {path!r} is not an absolute path inside the sandbox")
    return json.dumps({"files": dict(files), "env": dict(env)})


def new_session(
    prompt: str, ticket: RunTicket, model: str, config: AgentConfig, *, workspace: str, tools: tuple[str, ...] | None
) -> Session:
    """The Session an adapter is given for one run of ``prompt`` (gateway URL as the sandbox sees it)."""
    root = f"http://127.0.0.1:{GATEWAY_PORT}"
    return Session(
        prompt=prompt,
        prompt_file=f"{STATE_DIR}/prompt.md",
        workspace=workspace,
        base_url=f"{root}/v1",
        root_url=root,
        token=ticket.token,
        model=model,
        max_turns=config.max_turns,
        timeout_s=config.wall_limit_s,
        max_output_tokens=config.max_output_tokens,
        tools=tools,
        state_dir=STATE_DIR,
    )


@dataclass(frozen=True)
class SessionRun:
    """A session's result: the record's figures, the command's exit and the gateway's view of the run."""

    result: AgentResult
    exec: ExecResult
    calls: RunCalls


def run_session(
    adapter: AgentAdapter,
    session: Session,
    sandbox: Sandbox,
    client: GatewayClient,
    ticket: RunTicket,
    config: AgentConfig,
) -> SessionRun:
    """Run one session of ``adapter``'s agent in ``sandbox`` through the gateway run ``ticket`` (closed here)."""
    inside = getattr(sandbox, "gateway_socket_inside", None)
    if not inside:
        raise SandboxError(
            f"agent {adapter.name!r}: the sandbox {sandbox.info.kind!r} mounts no gateway socket; external agents "
            "need --sandbox=docker or --sandbox=local"
        )
    env = {**ticket.env(port=GATEWAY_PORT), **adapter.env(session)}
    files = {session.prompt_file: session.prompt, **adapter.files(session)}
    start = time.monotonic()
    try:
        done = sandbox.exec(
            launch_argv(adapter.argv(session), inside), timeout=config.wall_limit_s, stdin=launch_input(files, env)
        )
    finally:
        calls = client.close_run(ticket.run_id)
    wall_s = time.monotonic() - start
    return SessionRun(_result(adapter, session, config, done, calls, wall_s), done, calls)


def _timeout_outcome(config: AgentConfig) -> tuple[Outcome, str]:
    return ("safety_timeout", "safety_timeout") if config.budget == "tokens" else ("agent_timeout", "wall")


def _result(
    adapter: AgentAdapter, session: Session, config: AgentConfig, done: ExecResult, calls: RunCalls, wall_s: float
) -> AgentResult:
    records = calls.calls
    if not records and not done.ok and not done.timed_out:
        error = (
            f"agent {adapter.name!r} ({adapter.version}) exited {done.exit_code} before its first model call: "
            f"{done.output.strip()[-1500:] or '(no output)'}\nFix: run the agent's command by hand in the sandbox "
            "image, or check its install (agentbench builds it into the image: see docs/agents.md)"
        )
        return AgentResult(outcome=INFRASTRUCTURE, turns=[], wall_s=wall_s, failure=AGENT_START, error=error)
    finish = adapter.finish(done, session)
    outcome: Outcome | None = None
    ended_by: str | None = None
    if any(c.refused == "token_budget" for c in records):
        outcome, ended_by = "token_budget", "tokens"
    elif any(c.refused == "turn_budget" for c in records):
        outcome, ended_by = "max_turns", "turns"
    elif done.timed_out:
        outcome, ended_by = _timeout_outcome(config)
    elif finish.ended_by == "turns":
        outcome, ended_by = "max_turns", "turns"
    return agent_result(
        records,
        wall_s=wall_s,
        outcome=outcome,
        finished=finish.finished,
        summary=finish.note,
        budget=budget_use(records, config.max_total_tokens, config, ended_by),
    )

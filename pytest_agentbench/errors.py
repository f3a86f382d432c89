"""The exception hierarchy of pytest-agentbench, written down in one place.

The line that matters: *configuration* errors (a bad packet or models file, a
bad option) are the user's to fix before anything runs; *infrastructure*
errors (sandbox, server) are the harness's, never the model's; a *model*
failure is recorded on the run with its class and is a result, not a crash;
a missed *gate* is the test's failure (an ``AssertionError``).

    AgentbenchError                  every error this package raises on purpose
    ├── ConfigError                  a file or option is wrong: names it, the key and the fix
    │   ├── PacketError              packet.yaml or its files
    │   ├── ModelsFileError          models.yaml or an alias in it
    │   └── UsageError               a command-line flag (agentbench size ...)
    ├── InfrastructureError          the harness failed: a pytest *error*, not a failure
    │   ├── SandboxError             the sandbox could not do what was asked
    │   │   ├── PathRefused          a path outside the workspace (the caller's mistake)
    │   │   ├── IntegrityError       the workspace could not be checked before the gates
    │   │   └── SandboxUnavailable   the chosen sandbox cannot run on this machine (names the fix)
    │   ├── ServerError              a model server the harness owns failed
    │   │   └── ServerStartError     ... did not become ready (command, log tail, likely cause)
    │   └── EndpointUnreachable      an alias's endpoint never answered a run (alias, URL, class):
    │                                the run is recorded as ``infrastructure``, not counted
    └── ModelCallError               a model call failed for good; ``failure`` is its FailureClass
                                     (timeout, rate_limited, auth_error, ...; retried per class:
                                     models.taxonomy; a 401/403 is auth_error and never retried)

    GateFailed(AssertionError)       one or more gates did not hold: the test fails with their story

    PacketWarning(UserWarning)       a packet loads but may not work as meant (a prompt over the size cap)
    ResultsWarning(UserWarning)      a results line could not be read (skipped)
    JunitMergeWarning(UserWarning)   a JUnit file could not be read (left out of a merge)

Foreign exceptions are mapped in one place each: SDK / HTTP errors to failure
classes in ``models.taxonomy.classified_errors``, docker SDK errors to
``SandboxError`` in ``sandbox.docker.engine``. Two private exceptions steer
control flow and never leave their module: ``agents.tools.ToolError`` (its
message goes back to the model) and ``models.parsers._common.Malformed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

#: The classes a failed model call falls into (how each is retried: ``models.taxonomy``).
FailureClass = Literal[
    "timeout",
    "invalid_tool_call",
    "context_overflow",
    "refusal",
    "rate_limited",
    "server_error",
    "connection_error",
    "auth_error",
]
FAILURE_CLASSES: tuple[FailureClass, ...] = get_args(FailureClass)

__all__ = [
    "FAILURE_CLASSES",
    "AgentbenchError",
    "AgentStartError",
    "ConfigError",
    "EndpointUnreachable",
    "FailureClass",
    "GateFailed",
    "InfrastructureError",
    "JunitMergeWarning",
    "ModelCallError",
    "ModelsFileError",
    "PacketError",
    "PacketWarning",
    "IntegrityError",
    "PathRefused",
    "ResultsWarning",
    "SandboxError",
    "SandboxUnavailable",
    "ServerError",
    "ServerStartError",
    "UsageError",
]


class AgentbenchError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(AgentbenchError):
    """A file or option is wrong; the message names it, the key and the fix."""


class PacketError(ConfigError):
    """A task packet (``packet.yaml`` or its files) is invalid."""


class ModelsFileError(ConfigError):
    """``models.yaml`` or an alias in it is invalid or unusable."""


class UsageError(ConfigError):
    """A command-line flag is wrong; the message starts with the flag."""


class InfrastructureError(AgentbenchError):
    """The harness itself failed (sandbox, server): not the model's fault."""


class SandboxError(InfrastructureError):
    """The sandbox could not do what was asked (not: a command exited non-zero)."""


class PathRefused(SandboxError):
    """A path given to the sandbox is outside the workspace, or not a file: the caller's mistake."""


class IntegrityError(SandboxError):
    """The workspace could not be checked before the gates (``packets.integrity``): they must not run on it."""


class SandboxUnavailable(SandboxError):
    """The sandbox kind asked for cannot run here (no engine, no bubblewrap): the message names the fix."""


class ServerError(InfrastructureError):
    """A model server the harness owns failed to start or died."""


class ServerStartError(ServerError):
    """A server did not become ready; carries what the message quotes, for reports.

    ``port_in_use`` says the log blamed a taken port, so the caller may retry on another one.
    """

    def __init__(
        self,
        message: str,
        *,
        command: list[str],
        log_path: Path | None,
        diagnosis: str | None,
        log_tail: str,
        timed_out: bool = False,
        port_in_use: bool = False,
    ) -> None:
        super().__init__(message)
        self.command = command
        self.log_path = log_path
        self.diagnosis = diagnosis
        self.log_tail = log_tail
        self.timed_out = timed_out
        self.port_in_use = port_in_use

    def __reduce__(self) -> tuple[Any, ...]:  # keyword-only fields: pickle (xdist) needs help
        fields = {
            "command": self.command,
            "log_path": self.log_path,
            "diagnosis": self.diagnosis,
            "log_tail": self.log_tail,
            "timed_out": self.timed_out,
            "port_in_use": self.port_in_use,
        }
        return (_rebuild_start_error, (str(self), fields))


_UNREACHABLE_FIX = {
    "connection_error": "is a server listening there, and is base_url in models.yaml right?",
    "auth_error": "check the key in the alias's api_key_env variable",
    "rate_limited": "the provider refused every attempt: wait, or raise its quota or retries.rate_limited",
    "server_error": "the server answered every attempt with an error: see its log",
}


class EndpointUnreachable(InfrastructureError):
    """An alias's endpoint never answered a run: nothing to judge the model on (``agents.loop`` has the rule).

    Raised by the plugin after the run's record (outcome ``infrastructure``) was written, so the test
    is an *error*; ``failure`` is the class of the call that failed, ``detail`` its message.
    """

    def __init__(self, alias: str, url: str, failure: str, detail: str) -> None:
        fix = _UNREACHABLE_FIX.get(failure, "check that the server works")
        super().__init__(
            f"alias {alias!r}: the endpoint {url} never answered ({detail}); the gates were not run and "
            f"the run is not counted against the model. Fix: {fix}"
        )
        self.alias, self.url, self.failure, self.detail = alias, url, failure, detail

    def __reduce__(self) -> tuple[Any, ...]:  # several fields: pickle (xdist) needs help
        return (type(self), (self.alias, self.url, self.failure, self.detail))


class AgentStartError(InfrastructureError):
    """An external agent never reached its model (it did not start, or died before its first call).

    Nothing was measured of the model, so the run is recorded as ``infrastructure`` (failure
    ``agent_start``, not counted) and then raised: the test is an *error*; the message names the agent,
    its exit and the last lines it printed.
    """


def _rebuild_start_error(message: str, fields: dict[str, Any]) -> ServerStartError:
    return ServerStartError(message, **fields)


class ModelCallError(AgentbenchError):
    """A model call failed for good; ``failure`` is one of :data:`FAILURE_CLASSES`."""

    def __init__(
        self,
        failure: FailureClass,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        retries: tuple[FailureClass, ...] = (),
    ):
        assert failure in FAILURE_CLASSES, failure
        super().__init__(f"{failure}: {message}")
        self.failure = failure
        self.status = status
        self.retry_after = retry_after
        self.retries = retries  # the classes of the failed attempts before this one


class _FailedGate(Protocol):
    """What :class:`GateFailed` reads of a gate result (``packets.gates.GateResult``)."""

    id: str

    def describe(self) -> str: ...

    def tail(self) -> str: ...


class GateFailed(AssertionError):
    """One or more gates did not hold; the message is meant to be read by a person."""

    def __init__(self, failed: Sequence[_FailedGate], total: int, context: str = ""):
        self.failed = tuple(failed)
        parts = [f"{len(failed)} of {total} gate(s) failed: {', '.join(g.id for g in failed)}"]
        if context:
            parts.append(context)
        for g in failed:
            parts.append("")
            parts.append(g.describe())
            tail = g.tail()
            if tail:
                parts.append("  output (tail):")
                parts.extend("    " + line for line in tail.splitlines())
        super().__init__("\n".join(parts))


class PacketWarning(UserWarning):
    """A packet loads but may not work as meant (e.g. a prompt over the size cap); the message says why."""


class ResultsWarning(UserWarning):
    """A results file had a line that could not be read (skipped, not fatal)."""


class JunitMergeWarning(UserWarning):
    """A JUnit file could not be read and was left out of the merge."""

"""The exception hierarchy of pytest-agentbench, written down in one place.

The line that matters: *configuration* errors (a bad packet or models file, a
bad option) are the user's to fix before anything runs; *infrastructure*
errors (sandbox, server) are the harness's, never the model's; a *model*
failure is recorded on the run with its class and is a result, not a crash.
"""

from __future__ import annotations


class AgentbenchError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(AgentbenchError):
    """A file or option is wrong; the message names it, the key and the fix."""


class PacketError(ConfigError):
    """A task packet (``packet.yaml`` or its files) is invalid."""


class ModelsFileError(ConfigError):
    """``models.yaml`` or an alias in it is invalid or unusable."""


class InfrastructureError(AgentbenchError):
    """The harness itself failed (sandbox, server): not the model's fault."""


class SandboxError(InfrastructureError):
    """The sandbox could not do what was asked (not: a command exited non-zero)."""


class ServerError(InfrastructureError):
    """A model server the harness owns failed to start or died."""


class PathRefused(SandboxError):
    """A path given to the sandbox is outside the workspace, or not a file: the caller's mistake."""

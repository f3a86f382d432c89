"""pytest-agentbench: evaluate LLM coding agents on task packets, across model aliases.

The pytest plugin lives in :mod:`pytest_agentbench.plugin`; everything below is the
pytest-free core, importable as a library. Names load lazily, so importing the
package (as pytest does for the plugin) stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "AgentConfig": "agents.config",
    "AgentResult": "agents.transcript",
    "run_agent": "agents.loop",
    "ModelAdapter": "models.adapter",
    "ModelCallError": "errors",
    "FAILURE_CLASSES": "errors",
    "ModelSpec": "models.registry",
    "load_models": "models.registry",
    "Packet": "packets.schema",
    "Gate": "packets.schema",
    "load_packet": "packets.schema",
    "discover_packets": "packets.schema",
    "GateFailed": "errors",
    "GateResult": "packets.gates",
    "run_gates": "packets.gates",
    "RunRecord": "results.record",
    "run_packet": "runner",
    "LocalSandbox": "sandbox",
    "UnsafeLocalSandbox": "sandbox",
    "Sandbox": "sandbox",
    "ExecResult": "sandbox",
    "make_sandbox": "sandbox",
    "AgentbenchError": "errors",
    "ConfigError": "errors",
    "PacketError": "errors",
    "ModelsFileError": "errors",
    "InfrastructureError": "errors",
    "SandboxError": "errors",
    "ServerError": "errors",
    "ServerStartError": "errors",
    "EndpointUnreachable": "errors",
    "UsageError": "errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'pytest_agentbench' has no attribute {name!r}")

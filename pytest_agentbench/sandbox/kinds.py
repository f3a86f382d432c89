"""The sandbox kinds a user can ask for (``--sandbox``, ``agentbench check-packets --sandbox``)."""

from __future__ import annotations

SANDBOX_KINDS = ("auto", "docker", "local")

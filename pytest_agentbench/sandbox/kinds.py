"""The sandbox kinds a user can ask for (``--sandbox``, ``agentbench check-packets --sandbox``), and
the isolation each one gives, as every report names it.

- ``docker``: one container per run (``container``)
- ``local``: bubblewrap namespaces per command (``bubblewrap``)
- ``unsafe-local``: a plain temp folder, by explicit choice only (``unsafe-local``: isolates nothing)
- ``auto``: docker if an engine answers, else local if bubblewrap runs, else an error naming both fixes
"""

from __future__ import annotations

SANDBOX_KINDS = ("auto", "docker", "local", "unsafe-local")
ISOLATION = {"docker": "container", "local": "bubblewrap", "unsafe-local": "unsafe-local"}

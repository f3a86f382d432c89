"""What an external agent needs in its sandbox image: :class:`AgentInstall`, checked once. Backend-neutral.

Pinned pip requirements (``NAME==VERSION``) and/or npm specs (``NAME@X.Y.Z``), nothing from a URL, a
path or a range, and the executables the agent provides (never a name the gates or packets call:
:data:`RESERVED_BINS`). The docker backend builds it into an image (``sandbox.docker.agent_image``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pytest_agentbench.errors import ConfigError

__all__ = ["RESERVED_BINS", "AgentInstall"]

#: Names a bin may not take: the gates and packets call these and must get the base image's.
RESERVED_BINS = frozenset(
    {"python", "python3", "pytest", "py.test", "pip", "pip3", "git", "sh", "bash", "env", "timeout", "sleep", "node"}
)

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
_BIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")
_PIP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9._,-]+\])?==[A-Za-z0-9][A-Za-z0-9.+!_-]*$")
_NPM_RE = re.compile(r"^(@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*@\d+\.\d+\.\d+[A-Za-z0-9.+-]*$")


@dataclass(frozen=True)
class AgentInstall:
    """What an agent needs in the image: ``name`` (its folder ``/opt/agentbench/agents/<name>``), pinned
    ``pip`` requirements (``name==version``) and/or ``npm`` specs (``name@x.y.z``), and the ``bins`` it
    provides (linked into ``/usr/local/bin``)."""

    name: str
    pip: tuple[str, ...] = ()
    npm: tuple[str, ...] = ()
    bins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for field in ("pip", "npm", "bins"):  # a list given by a caller still hashes and compares as a tuple
            object.__setattr__(self, field, tuple(getattr(self, field)))
        where = f"agent install {self.name!r}"
        if not _NAME_RE.match(self.name):
            raise ConfigError(f"{where}: name must be lower-case letters, digits, '.', '_', '-' (e.g. 'codex')")
        if not self.pip and not self.npm:
            raise ConfigError(f"{where}: nothing to install: give pip= or npm= packages")
        for spec in self.pip:
            if not _PIP_RE.match(spec):
                raise ConfigError(
                    f"{where}: pip requirement {spec!r} is not pinned to one release from an index: "
                    "write NAME==VERSION (extras allowed: NAME[extra]==VERSION; no URLs, paths or options)"
                )
        for spec in self.npm:
            if not _NPM_RE.match(spec):
                raise ConfigError(
                    f"{where}: npm spec {spec!r} is not pinned to one registry release: "
                    "write NAME@X.Y.Z or @SCOPE/NAME@X.Y.Z (no ranges, git, URLs or paths)"
                )
        if not self.bins:
            raise ConfigError(f"{where}: bins is empty: name the executables the agent provides (e.g. ('mini',))")
        for name in self.bins:
            if not _BIN_RE.match(name) or name in RESERVED_BINS:
                raise ConfigError(
                    f"{where}: bin {name!r} cannot be linked into /usr/local/bin: it must be a plain file name "
                    f"and none of {', '.join(sorted(RESERVED_BINS))} (the gates and packets use the base image's)"
                )

"""Deterministic shards: which of N shards runs each (packet, alias, agent, repeat) trial. pytest-free.

    shard = parse_shard("2/3")
    plan = assign(items, shard.count)          # {trial key: shard number 1..N}
    mine = [it for it in items if plan[it.key] == shard.index]

**Cost model.** A trial's expected cost is its packet's wall-clock budget, ``limits.timeout_s``
(seconds: additive and comparable across packets; ``max_turns`` is not, without a guess of seconds
per turn). ``--agent-timeout`` is deliberately left out: the split then depends on the packet files
alone, not on an option one shard job could be given differently.

**The split.** Trials are grouped by (alias, agent). Inside a group, longest-processing-time
greedy over a canonical order (cost descending, then packet id, then repeat): each trial goes to
the least-loaded shard of *that group*, ties broken by a rotation that starts at a shard chosen by
a SHA-256 of the group's (alias, agent). So:

- an item's shard depends only on N and on the trials of its own (alias, agent) group (the
  packets, their ``timeout_s`` and the repeats): adding, removing or reordering aliases or agents
  never moves another alias's trials, and collection order never matters;
- every trial is in exactly one shard: the union of shards 1..N is the unsharded run, no overlap;
- inside a group the shards' budgets differ by at most one trial's cost (greedy on a canonical
  order); across groups each group's remainder starts at its hashed shard, so remainders spread.
  A group with fewer trials than shards cannot fill every shard: 1 packet x 1 repeat x 4 aliases
  on 4 shards lands where the 4 hashes fall (docs/scale-out.md has measured balances).

Adding a packet or a repeat may move trials *within* their own groups (the greedy is re-run).
Items that are not trials (a user's own tests in the same session) go to ``sha256(nodeid) mod N``.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pytest_agentbench.errors import UsageError
from pytest_agentbench.results.cells import BUILTIN_AGENT, TrialKey

if TYPE_CHECKING:
    from pytest_agentbench.packets.schema import Packet

__all__ = [
    "DEFAULT_AGENT",
    "Shard",
    "ShardItem",
    "TrialKey",
    "assign",
    "node_shard",
    "packet_cost",
    "parse_shard",
    "plan_digest",
    "shard_loads",
]

#: The agent of a trial that names none: the built-in loop.
DEFAULT_AGENT = BUILTIN_AGENT

# TrialKey (results.cells): (packet id, alias, agent, repeat): one trial, the unit a shard owns.

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def suffix(self) -> str:
        """``shard2of3``: what the default results folder of this shard ends with."""
        return f"shard{self.index}of{self.count}"


def parse_shard(text: str, where: str = "--shard") -> Shard:
    """``"K/N"`` with 1 <= K <= N -> :class:`Shard`; anything else a :class:`UsageError` naming ``where``."""
    match = _SHARD.match(str(text))
    index, count = (int(match.group(1)), int(match.group(2))) if match else (0, 0)
    if not match or count < 1 or not 1 <= index <= count:
        why = "N must be at least 1 and K between 1 and N" if match else "expected K/N"
        raise UsageError(
            f"{where}: {why}, found {str(text)!r}; e.g. --shard 2/3 runs the second of three shards "
            "(run 1/3, 2/3 and 3/3 with the same options, then `agentbench merge` their results folders)"
        )
    return Shard(index, count)


@dataclass(frozen=True)
class ShardItem:
    """One trial to place: its key and its expected cost (seconds of budget, > 0)."""

    packet: str
    alias: str
    repeat: int
    agent: str = DEFAULT_AGENT
    cost: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cost) and self.cost > 0):
            raise ValueError(f"trial {self.key}: cost must be a finite number > 0, found {self.cost!r}")

    @property
    def key(self) -> TrialKey:
        return (self.packet, self.alias, self.agent, self.repeat)


def packet_cost(packet: Packet) -> float:
    """A trial's expected cost: its packet's wall-clock budget, ``limits.timeout_s`` (the cost model above)."""
    return float(packet.limits.timeout_s)


def _hash(*parts: str) -> int:
    digest = hashlib.sha256("\0".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def node_shard(nodeid: str, count: int) -> int:
    """The shard (1-based) of an item that is not a trial: a hash of its node id."""
    return _hash("node", nodeid) % count + 1


def _unique(items: Iterable[ShardItem]) -> dict[TrialKey, ShardItem]:
    """One item per key (the same trial listed twice is one trial); a key given two costs is a bug."""
    out: dict[TrialKey, ShardItem] = {}
    for item in items:
        other = out.setdefault(item.key, item)
        if other.cost != item.cost:
            raise ValueError(f"trial {item.key}: two costs, {other.cost} and {item.cost}")
    return out


def _assign_group(group: Sequence[ShardItem], count: int, start: int, out: dict[TrialKey, int]) -> None:
    """Greedy over the canonical order: each trial to the group's least-loaded shard, ties from ``start`` on."""
    loads = [0.0] * count
    for item in sorted(group, key=lambda it: (-it.cost, it.packet, it.repeat)):
        k = min(range(count), key=lambda s: (loads[s], (s - start) % count))
        out[item.key] = k + 1
        loads[k] += item.cost


def assign(items: Iterable[ShardItem], count: int) -> dict[TrialKey, int]:
    """Every trial's shard (1-based) among ``count``: the split the module docstring describes."""
    if count < 1:
        raise ValueError(f"count must be >= 1, found {count}")
    groups: dict[tuple[str, str], list[ShardItem]] = {}
    for item in _unique(items).values():
        groups.setdefault((item.alias, item.agent), []).append(item)
    out: dict[TrialKey, int] = {}
    for (alias, agent), group in groups.items():
        _assign_group(group, count, _hash("group", alias, agent) % count, out)
    return out


def shard_loads(items: Iterable[ShardItem], count: int) -> list[float]:
    """The summed cost of each shard 1..count under :func:`assign` (index 0 is shard 1)."""
    unique = _unique(items)
    plan = assign(unique.values(), count)
    loads = [0.0] * count
    for key, item in unique.items():
        loads[plan[key] - 1] += item.cost
    return loads


def plan_digest(items: Iterable[ShardItem], count: int) -> str:
    """A fingerprint of the split (the trials, their costs, N): equal digests mean the same assignment."""
    h = hashlib.sha256(f"agentbench-shards-v1\0{count}".encode())
    for key, item in sorted(_unique(items).items()):
        h.update(("\0".join(map(str, key)) + f"\0{item.cost!r}\n").encode("utf-8"))
    return h.hexdigest()[:16]

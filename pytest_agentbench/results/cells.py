"""Agent x alias cells: the agent a run record names, the trial key, and what a report calls a cell. pytest-free.

A record names the agent that ran it (``results.record``)::

    "agent": {"name": "mini-swe-agent", "version": "2.4.6"}

Records written before agents could be chosen have no ``agent``: they are the built-in loop's
(:data:`BUILTIN_AGENT`, version unknown). Everything here reads both.

**The trial key** is ``(packet id, alias, agent, repeat)`` (:func:`trial_key`): ``--resume``,
shards and merge, and the pairing of two cells all use it, so two agents on one alias never stand
for each other.

**The cell** is what reports compare: one agent on one alias. Its label (:func:`column_of`):

* where the records hold only the built-in agent: the alias alone (``local-coder``), exactly as
  before agents could be chosen;
* where they hold more than one agent: ``<agent> @ <alias>`` for every cell, the built-in one
  included (``mini-swe-agent @ local-coder``, ``builtin @ local-coder``).

Which of the two depends on the whole set of records, so a report labels its records once
(:func:`label_cells`: shallow copies carrying the label under :data:`CELL_KEY`, never written to
a results file) and every grouping reads :func:`column_of`. An unlabelled record reads as its alias
for the built-in agent and as ``<agent> @ <alias>`` otherwise, so cells never mix even unlabelled.
:func:`cell_id` is the machine form (``local-coder-mini-swe-agent``, as in the test ids) for
file names, benchmark params and JUnit property names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_agentbench.errors import UsageError

__all__ = [
    "BUILTIN_AGENT",
    "CELL_KEY",
    "SEPARATOR",
    "TrialKey",
    "agents_of",
    "cell_columns",
    "cell_id",
    "cell_label",
    "column_of",
    "label_cells",
    "record_agent",
    "record_agent_version",
    "record_repeat",
    "resolve_cell",
    "trial_key",
]

#: The registry name of the harness's own agent loop; a record without ``agent`` is its.
BUILTIN_AGENT = "builtin"
#: Where :func:`label_cells` puts a record's cell label (in memory only).
CELL_KEY = "cell"
#: Between agent and alias in a cell label.
SEPARATOR = " @ "

#: (packet id, alias, agent, repeat): one trial.
TrialKey = tuple[str, str, str, int]


def record_agent(record: Mapping[str, Any]) -> str:
    """The agent's name: ``agent.name`` (or a plain string ``agent``); :data:`BUILTIN_AGENT` where there is none."""
    agent = record.get("agent")
    if isinstance(agent, Mapping):
        agent = agent.get("name")
    return agent if isinstance(agent, str) and agent else BUILTIN_AGENT


def record_agent_version(record: Mapping[str, Any]) -> str | None:
    """The agent's version as recorded; ``None`` where the record names none (written before agents)."""
    agent = record.get("agent")
    version = agent.get("version") if isinstance(agent, Mapping) else None
    return str(version) if version not in (None, "") else None


def record_repeat(record: Mapping[str, Any]) -> int:
    """The record's ``repeat`` (1-based); 1 where it has none or an unusable one."""
    repeat = record.get("repeat")
    return repeat if isinstance(repeat, int) and not isinstance(repeat, bool) and repeat >= 1 else 1


def trial_key(record: Mapping[str, Any]) -> TrialKey:
    """(packet id, alias, agent, repeat) of a record; no agent: the built-in one; no repeat: 1."""
    return (
        str((record.get("packet") or {}).get("id") or ""),
        str(record.get("alias") or ""),
        record_agent(record),
        record_repeat(record),
    )


def cell_label(agent: str, alias: str) -> str:
    """``mini-swe-agent @ local-coder``: a cell as a report names it when agents are compared."""
    return f"{agent}{SEPARATOR}{alias}"


def cell_id(agent: str, alias: str) -> str:
    """``local-coder-mini-swe-agent`` (the alias alone for the built-in agent): the cell in names and ids."""
    return alias if agent == BUILTIN_AGENT else f"{alias}-{agent}"


def agents_of(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The agents the records name, in order of first appearance."""
    return list(dict.fromkeys(record_agent(r) for r in records))


def label_cells(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The records as a report reads them: with more than one agent, copies labelled ``agent @ alias``
    under :data:`CELL_KEY`; otherwise the records themselves (idempotent either way)."""
    if len(agents_of(records)) < 2:
        return list(records)
    return [{**r, CELL_KEY: cell_label(record_agent(r), str(r.get("alias")))} for r in records]


def column_of(record: Mapping[str, Any]) -> str:
    """The record's cell label (see the module docstring)."""
    label = record.get(CELL_KEY)
    if isinstance(label, str) and label:
        return label
    agent, alias = record_agent(record), str(record.get("alias"))
    return alias if agent == BUILTIN_AGENT else cell_label(agent, alias)


def cell_columns(records: Sequence[Mapping[str, Any]], aliases: Sequence[str] | None = None) -> list[str]:
    """The cell labels of ``records`` (labelled by :func:`label_cells`): per alias of ``aliases`` in that order
    its cells (agents in order of first appearance; an alias without runs as itself), then every other cell."""
    by_alias: dict[str, list[str]] = {}
    for rec in records:
        cells = by_alias.setdefault(str(rec.get("alias")), [])
        label = column_of(rec)
        if label not in cells:
            cells.append(label)
    out: list[str] = []
    for alias in aliases or ():
        out += [c for c in by_alias.get(str(alias)) or [str(alias)] if c not in out]
    return out + [c for cells in by_alias.values() for c in cells if c not in out]


def resolve_cell(name: str, columns: Sequence[str]) -> str:
    """The cell ``name`` means among ``columns``: itself, or the one cell of an alias given bare.

    A bare alias that ran under several agents is ambiguous: a :class:`UsageError` listing its cells.
    ``agent@alias`` (no spaces, as a gate on the command line writes it) is ``agent @ alias``.
    """
    if "@" in name and SEPARATOR not in name:
        name = name.replace("@", SEPARATOR, 1)
    if name in columns:
        return name
    mine = [c for c in columns if c.endswith(f"{SEPARATOR}{name}")]
    if len(mine) == 1:
        return mine[0]
    if mine:
        raise UsageError(
            f"alias {name!r} ran under {len(mine)} agents: name one cell, e.g. {mine[0]!r} "
            f"(the cells there: {', '.join(repr(c) for c in mine)})"
        )
    return name

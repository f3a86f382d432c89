"""The isolation each run had, and the warning every report gives when a comparison mixes them.

Levels, strongest first: ``container`` (docker), ``bubblewrap`` (local), ``unsafe-local``
(a plain temp folder: the agent could read and rewrite the hidden gate files, so a pass there
proves nothing). Records written before the levels had these names say ``process-group`` or
``process-group+netns``: that is ``unsafe-local``. The warnings name the report's columns (aliases, or
agent x alias cells: ``results.cells``). pytest-free.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from pytest_agentbench.results.cells import column_of, label_cells

__all__ = ["LEVELS", "isolation_cell", "isolation_of", "isolation_warnings"]

LEVELS = ("container", "bubblewrap", "unsafe-local")
_LEGACY = {"process-group": "unsafe-local", "process-group+netns": "unsafe-local"}


def isolation_of(record: Mapping[str, Any]) -> str:
    """The isolation level of one run record (``unknown`` when the record does not say)."""
    raw = str((record.get("sandbox") or {}).get("isolation") or "unknown")
    return _LEGACY.get(raw, raw)


def isolation_cell(levels: Counter[str]) -> str:
    """One alias's isolation: ``bubblewrap``, or ``mixed (see warning)`` when its runs had several."""
    if not levels:
        return "n/a"
    return next(iter(levels)) if len(levels) == 1 else "mixed (see warning)"


def _rank(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else len(LEVELS)


def isolation_warnings(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """What a reader must be told before comparing: mixed isolation levels, and unsafe-local runs."""
    by_level: dict[str, set[str]] = {}
    for rec in label_cells(records):
        by_level.setdefault(isolation_of(rec), set()).add(column_of(rec))
    warnings = []
    if len(by_level) > 1:
        parts = "; ".join(
            f"{level}: {', '.join(sorted(aliases))}"
            for level, aliases in sorted(by_level.items(), key=lambda kv: _rank(kv[0]))
        )
        warnings.append(
            f"WARNING: this comparison mixes isolation levels ({parts}). Runs under weaker isolation "
            "are not comparable: an agent may have reached what a stronger sandbox hides. "
            "Rerun every alias with the same --sandbox."
        )
    if "unsafe-local" in by_level:
        aliases = ", ".join(sorted(by_level["unsafe-local"]))
        warnings.append(
            f"WARNING: {aliases}: unsafe-local runs isolate nothing (the agent could read and rewrite the "
            "hidden gate files): their passes prove nothing. Use --sandbox=local (bubblewrap) or docker."
        )
    return warnings

"""The "Capacity" part of the run report: saved sweeps and loads, and the ranking across sweeps.

    agentbench report results.jsonl --html report.html --sweep sweep-h100/ --sweep sweep-l4/ --load load/load.json

:func:`capacity_fragments` reads the files as the commands wrote them (``sweep.json``, schema
``agentbench-sweep/1``; ``load.json``, ``agentbench-load/1``), turns each back into its result
(``SweepResult.from_dict`` / ``LoadResult.from_dict``: the schema has one owner, beside its
``to_dict``) and renders it with the same body its own page has (``reports/sweep.py`` /
``reports/load.py``); with two or more sweeps it adds the ranking per team size N
(``capacity/ranking.py`` rule, ``reports/ranking.py`` table). Each fragment is a piece of body
(no ``<html>``), its text escaped and its charts drawn by ``reports/svg.py``; ``reports/html.py``
puts them under one heading. A file that is none of these is a :class:`ConfigError` naming it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_agentbench.capacity.levels import SweepResult
from pytest_agentbench.capacity.load import LoadResult
from pytest_agentbench.capacity.ranking import DEFAULT_PASS_TOLERANCE, rank_sweeps
from pytest_agentbench.errors import ConfigError
from pytest_agentbench.reports.load import load_body
from pytest_agentbench.reports.ranking import ranking_body
from pytest_agentbench.reports.svg import e
from pytest_agentbench.reports.sweep import sweep_body

__all__ = ["CAPACITY_CSS", "capacity_fragments"]

#: What the capacity tables need beyond the run report's own CSS (verdict rows, ranked rows).
CAPACITY_CSS = (
    "section.capacity tr.ok td{background:#eef8ee}section.capacity tr.bad td{background:#fbeaea}"
    "section.capacity tr.win td{background:#eef8ee}section.capacity tr.out td{color:#777}"
    "section.capacity td{text-align:right}section.capacity svg{display:inline-block;margin:8px 16px 8px 0;"
    "border:1px solid #eee}"
)

#: schema -> (what it is, the file the command writes, the option that takes it, the command that writes it).
_KINDS = {
    "agentbench-sweep/1": ("sweep", "sweep.json", "--sweep", "agentbench sweep"),
    "agentbench-load/1": ("load", "load.json", "--load", "agentbench load"),
}


def _read(path: Path | str, kind: str) -> dict[str, Any]:
    """The JSON of *path* (or of the folder's ``sweep.json`` / ``load.json``), checked to be of *kind*."""
    name, filename, option, command = next(v for v in _KINDS.values() if v[0] == kind)
    path = Path(path)
    if path.is_dir():
        path = path / filename
    fix = f"give the {filename} that `{command} --out DIR` writes (or DIR)"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{option} {path}: not a readable {filename} ({exc}); {fix}") from None
    schema = data.get("schema") if isinstance(data, dict) else None
    if schema not in _KINDS:
        raise ConfigError(f"{option} {path}: not an agentbench {name} result (no schema {schema!r}); {fix}")
    if _KINDS[schema][0] != kind:
        other = _KINDS[schema]
        raise ConfigError(f"{option} {path}: this is a {other[0]} result ({schema}): give it with {other[2]}")
    data["_source"] = str(path)
    return data


def _sweep_fragment(result: SweepResult, source: str) -> str:
    knee = result.knee[0]
    return (
        f"<h3>sweep: {e(result.alias)} "
        f"(knee {e('N=' + str(knee) if knee is not None else 'none')})</h3>"
        f'<p class="meta">from {e(source)}</p>' + sweep_body(result, "h4")
    )


def _load_fragment(result: LoadResult, source: str) -> str:
    return f"<h3>load: {e(result.alias)}</h3>" + f'<p class="meta">from {e(source)}</p>' + load_body(result, "h4")


def _fragment(data: dict[str, Any], kind: str) -> str:
    """The result back from its JSON and rendered; what the report needs and the file lacks names the file."""
    source = data["_source"]
    try:
        if kind == "sweep":
            return _sweep_fragment(SweepResult.from_dict(data), source)
        return _load_fragment(LoadResult.from_dict(data), source)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise ConfigError(
            f"--{kind} {source}: a {kind} result without what the report reads ({type(exc).__name__}: {exc}); "
            f"give the {kind}.json that `agentbench {kind}` writes, not an edited or partial one"
        ) from None


def capacity_fragments(
    sweeps: Sequence[Path | str] = (),
    loads: Sequence[Path | str] = (),
    *,
    pass_tolerance: float = DEFAULT_PASS_TOLERANCE,
) -> list[str]:
    """One body fragment per sweep, per load, and (two or more sweeps) the ranking; ``ConfigError`` names a
    file that is not a sweep / load result, or ``--pass-tolerance`` outside 0..100 points."""
    sweep_docs = [_read(p, "sweep") for p in sweeps]
    load_docs = [_read(p, "load") for p in loads]
    parts = [_fragment(d, "sweep") for d in sweep_docs] + [_fragment(d, "load") for d in load_docs]
    tables = rank_sweeps(sweep_docs, pass_tolerance=pass_tolerance) if len(sweep_docs) >= 2 else None
    if tables is not None:
        sources = [f"{d['alias']}: {d['_source']}" for d in sweep_docs]
        parts.append(
            "<h3>Ranking across sweeps</h3><p>Per team size N, the cheapest configuration that holds the SLO wins; "
            "each row's pass rate beside it, so a cheap configuration that fails the packets does not.</p>"
            + ranking_body(tables, pass_tolerance, sources, "h4")
        )
    return parts

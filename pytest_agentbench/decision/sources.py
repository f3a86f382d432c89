"""The files a decision is read from: run records, sweeps and screenings, checked before anything is judged.

* results: ``results.jsonl`` files or the run folders holding them (several are merged, one record
  per ``run_id``), as ``pytest --agentbench-results DIR`` writes them;
* sweeps: ``sweep.json`` as ``agentbench sweep`` writes it (schema ``agentbench-sweep/1``);
* screenings: the JSON ``agentbench screen ALIAS... --json`` prints.

Every problem is a :class:`~pytest_agentbench.errors.UsageError` that names the file, what was
wrong and how to make the right file; a file of the wrong kind (a sweep given as a screening, the
``estimates.json`` beside a run) is named as such. pytest-free.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_agentbench.errors import UsageError

__all__ = ["Sources", "load_results", "load_screens", "load_sweep", "read_sources"]

SWEEP_SCHEMA = "agentbench-sweep/1"
_RESULTS_FIX = (
    "give a results.jsonl or the folder holding it (pytest --agentbench-results DIR writes DIR/results.jsonl)"
)
_SWEEP_FIX = "give the sweep.json that agentbench sweep --out DIR writes in DIR"
_SCREEN_FIX = "write one with agentbench screen ALIAS... --json > screen.json"


@dataclass(frozen=True)
class Sources:
    """What was read, and from where (the record's "evidence" line names these)."""

    records: tuple[dict[str, Any], ...]
    results: tuple[Path, ...]
    sweeps: tuple[tuple[Path, dict[str, Any]], ...] = ()
    screens: tuple[tuple[Path, dict[str, Any]], ...] = ()  # one entry per candidate, with its file


def _results_path(text: str | Path) -> Path:
    path = Path(text)
    if path.is_dir():
        path = path / "results.jsonl"
    if not path.is_file():
        raise UsageError(f"{path} not found: {_RESULTS_FIX}")
    if path.name == "estimates.json":
        raise UsageError(f"{path} holds estimates derived from a run, not run records: {_RESULTS_FIX}")
    return path


def load_results(given: Sequence[str | Path], warn: Callable[[str], None]) -> tuple[list[dict[str, Any]], list[Path]]:
    """The run records of every file (merged: one record per ``run_id``) and the files read."""
    from pytest_agentbench.results.jsonl import load_records, merge_records

    if not given:
        raise UsageError(f"no results given: {_RESULTS_FIX}")
    paths = [_results_path(text) for text in given]
    groups = []
    for path in paths:
        try:
            records = load_records(path, on_problem=warn)
        except OSError as exc:
            raise UsageError(f"{path}: cannot be read ({exc.strerror or exc}); check the path and its permissions")
        runs = [r for r in records if "alias" in r and "passed" in r]
        if not runs:
            why = "it is empty" if not records else f"none of its {len(records)} line(s) is a run record"
            raise UsageError(f"{path}: no run records ({why}); {_RESULTS_FIX}")
        groups.append(runs)
    return merge_records(groups), paths


def _read_json(path: Path, fix: str) -> Any:
    if not path.is_file():
        raise UsageError(f"{path} not found: {fix}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc}); check the path and its permissions")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UsageError(f"{path}: not JSON ({exc}); {fix}")


def load_sweep(path: Path) -> dict[str, Any]:
    """One ``sweep.json``, checked for what a decision reads of it."""
    data = _read_json(path, _SWEEP_FIX)
    if isinstance(data, Mapping) and "candidates" in data:
        raise UsageError(f"{path}: this is a screening (agentbench screen --json), not a sweep: pass it with --screen")
    if not isinstance(data, Mapping) or data.get("schema") != SWEEP_SCHEMA:
        found = data.get("schema") if isinstance(data, Mapping) else type(data).__name__
        raise UsageError(f"{path}: not an agentbench sweep (schema {found!r}, expected {SWEEP_SCHEMA!r}); {_SWEEP_FIX}")
    levels = data.get("levels")
    if not isinstance(data.get("alias"), str) or not isinstance(levels, list):
        raise UsageError(f"{path}: a sweep without its alias or levels; {_SWEEP_FIX}")
    for i, level in enumerate(levels):
        devs = level.get("devs") if isinstance(level, Mapping) else None
        if isinstance(devs, bool) or not isinstance(devs, int) or devs < 1:
            raise UsageError(f"{path}: levels[{i}] has no developer count (devs); {_SWEEP_FIX}")
    return dict(data)


def load_screens(path: Path) -> list[dict[str, Any]]:
    """The candidates of one screening document, checked for what a decision reads of them."""
    data = _read_json(path, _SCREEN_FIX)
    if isinstance(data, Mapping) and data.get("schema") == SWEEP_SCHEMA:
        raise UsageError(f"{path}: this is a sweep (agentbench sweep), not a screening: pass it with --sweep")
    candidates = data.get("candidates") if isinstance(data, Mapping) else None
    if not isinstance(candidates, list):
        raise UsageError(f"{path}: not an agentbench screening (no 'candidates' list); {_SCREEN_FIX}")
    for i, cand in enumerate(candidates):
        ok = isinstance(cand, Mapping) and isinstance(cand.get("alias"), str) and isinstance(cand.get("rows"), list)
        if not ok or not all(isinstance(r, Mapping) and "criterion" in r and "verdict" in r for r in cand["rows"]):
            raise UsageError(
                f"{path}: candidates[{i}] has no alias or no rows with criterion and verdict; {_SCREEN_FIX}"
            )
    return [dict(c) for c in candidates]


def _one_agent(records: list[dict[str, Any]], agent: str | None) -> list[dict[str, Any]]:
    """The records of one agent (``agent``, or the only one there is), else UsageError naming them all."""
    from pytest_agentbench.results.cells import record_agent

    agents = sorted({record_agent(r) for r in records})
    if agent is None:
        if len(agents) > 1:
            raise UsageError(
                f"the results hold runs of {len(agents)} agents ({', '.join(agents)}): a decision compares models "
                "for one agent; pass --agent NAME"
            )
        return records
    kept = [r for r in records if record_agent(r) == agent]
    if not kept:
        raise UsageError(f"--agent {agent}: no run of that agent in the results; they hold {', '.join(agents)}")
    return kept


def read_sources(
    results: Sequence[str | Path],
    sweeps: Sequence[str | Path] = (),
    screens: Sequence[str | Path] = (),
    *,
    warn: Callable[[str], None] = lambda message: None,
    agent: str | None = None,
) -> Sources:
    """Read and check every file; a later file's sweep or screening of the same alias replaces an earlier one's.
    The decision compares models for one agent: ``agent`` picks it where the records hold several."""
    records, paths = load_results(results, warn)
    records = _one_agent(records, agent)
    sweep_list = [(Path(p), load_sweep(Path(p))) for p in sweeps]
    screen_list = [(Path(p), cand) for p in screens for cand in load_screens(Path(p))]
    return Sources(tuple(records), tuple(paths), tuple(sweep_list), tuple(screen_list))

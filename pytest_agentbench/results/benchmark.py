"""Run records as pytest-benchmark storage JSON, so ``pytest-benchmark compare`` reads them. pytest-free.

One benchmark per (packet, alias, agent): its rounds are the runs' client-side wall
times (the ``--repeats`` trials of the pair, in repeat order; the name and
``fullname`` drop the ``-r<N>`` of the trials' test ids, so a run with repeats
and one without compare as the same benchmark), its ``stats`` follow pytest-benchmark's own rules (quartiles,
outliers), its ``extra_info`` carries the ``agentbench.*`` metrics, and the
file has pytest-benchmark's ``machine_info`` / ``commit_info`` (from
:mod:`platform` and ``git``, no cpuinfo probe). Runs whose endpoint never
answered (outcome ``infrastructure``) are no rounds and not in the pass rate:
``extra_info`` counts them apart (``agentbench.infrastructure``); a pair with
nothing else keeps their wall times as rounds, and a ``pass_rate`` of ``None``.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_agentbench.agents.transcript import INFRASTRUCTURE
from pytest_agentbench.reports.stats import percentile
from pytest_agentbench.results.cells import BUILTIN_AGENT, cell_id, record_agent, record_agent_version
from pytest_agentbench.results.jsonl import record_repeat
from pytest_agentbench.results.jsonsafe import json_safe

__all__ = [
    "BENCHMARK_FORMAT_VERSION",
    "benchmark_json",
    "default_commit_info",
    "default_machine_info",
    "write_benchmark_json",
]

#: pytest-benchmark's storage format this module writes (used when pytest-benchmark is not installed).
BENCHMARK_FORMAT_VERSION = "5.1.0"

_OPTIONS = {
    "disable_gc": False,
    "timer": "agentbench.client_wall_clock",
    "min_rounds": 1,
    "max_time": 0,
    "min_time": 0,
    "warmup": False,
}


def default_machine_info() -> dict[str, Any]:
    """pytest-benchmark's ``machine_info`` keys, from :mod:`platform` (no cpuinfo probe)."""
    return {
        "node": platform.node(),
        "processor": platform.processor(),
        "machine": platform.machine(),
        "python_compiler": platform.python_compiler(),
        "python_implementation": platform.python_implementation(),
        "python_implementation_version": platform.python_version(),
        "python_version": platform.python_version(),
        "python_build": list(platform.python_build()),
        "release": platform.release(),
        "system": platform.system(),
        "cpu": {"arch": platform.machine(), "count": os.cpu_count()},
    }


def default_commit_info(root: Path | str = ".") -> dict[str, Any]:
    """pytest-benchmark's ``commit_info`` from ``git`` in ``root``; ``"unknown"`` fields without git."""
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    info: dict[str, Any] = {
        "id": "unknown",
        "time": None,
        "author_time": None,
        "dirty": False,
        "project": Path(root).resolve().name,
        "branch": "(unknown)",
    }
    try:
        info["id"] = git("rev-parse", "HEAD")
        info["time"] = git("show", "-s", "--pretty=format:%cI")
        info["author_time"] = git("show", "-s", "--pretty=format:%aI")
        info["dirty"] = bool(git("status", "--porcelain", "--untracked-files=no"))
        branch = git("rev-parse", "--abbrev-ref", "HEAD")
        info["branch"] = "(detached head)" if branch == "HEAD" else branch
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def _quartiles(values: Sequence[float]) -> tuple[float, float]:
    """(q1, q3) of sorted ``values`` by pytest-benchmark's rules."""
    n = len(values)
    if n == 1:
        return values[0], values[0]
    if n % 2:  # Wikipedia's quartile method 3, as pytest-benchmark
        k, r = n // 4, n % 4
        q1 = 0.25 * values[k - 1] + 0.75 * values[k] if r == 1 else 0.75 * values[k] + 0.25 * values[k + 1]
        q3 = (
            0.75 * values[3 * k] + 0.25 * values[3 * k + 1]
            if r == 1
            else 0.25 * values[3 * k + 1] + 0.75 * values[3 * k + 2]
        )
        return q1, q3
    # method 2
    return statistics.median(values[: n // 2]), statistics.median(values[n // 2 :])


def _benchmark_stats(data: Sequence[float]) -> dict[str, Any]:
    """pytest-benchmark's ``Stats.as_dict()`` for ``data`` (same quartile and outlier rules)."""
    values = sorted(data)
    n = len(values)
    mean = statistics.mean(values)
    stddev = statistics.stdev(values) if n > 1 else 0.0
    q1, q3 = _quartiles(values)
    iqr = q3 - q1
    if n == 1:
        ld15, hd15 = values[0], values[0]
    else:
        ld15 = values[bisect_left(values, q1 - 1.5 * iqr)]
        hd15 = values[bisect_right(values, q3 + 1.5 * iqr) - 1]
    stddev_out = sum(1 for v in values if v < mean - stddev or v > mean + stddev)
    iqr_out = sum(1 for v in values if v < q1 - 1.5 * iqr or v > q3 + 1.5 * iqr)
    total = sum(values)
    return {
        "min": values[0],
        "max": values[-1],
        "mean": mean,
        "stddev": stddev,
        "rounds": n,
        "median": statistics.median(values),
        "iqr": iqr,
        "q1": q1,
        "q3": q3,
        "iqr_outliers": iqr_out,
        "stddev_outliers": stddev_out,
        "outliers": f"{stddev_out};{iqr_out}",
        "ld15iqr": ld15,
        "hd15iqr": hd15,
        "ops": n / total if total else 0,
        "total": total,
        "data": list(data),
        "iterations": 1,
    }


def _mean(values: Sequence[float]) -> float | None:
    return statistics.mean(values) if values else None


def _benchmark_extra_info(
    runs: Sequence[Mapping[str, Any]], infrastructure: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    first = (runs or infrastructure)[0]
    calls = [c for r in runs for c in (r.get("client") or {}).get("calls", [])]
    ttfts = [c["ttft_s"] for c in calls if c.get("ttft_s") is not None]
    costs = [(r.get("cost") or {}).get("usd") for r in runs]
    known = [c for c in costs if c is not None]
    tokens = [(r.get("client") or {}).get("tokens", {}) for r in runs]
    outcomes: dict[str, int] = {}
    for r in runs:
        outcomes[str(r.get("outcome"))] = outcomes.get(str(r.get("outcome")), 0) + 1
    passed = sum(1 for r in runs if r.get("passed"))
    return {
        "agentbench.packet": (first.get("packet") or {}).get("id"),
        "agentbench.kind": (first.get("packet") or {}).get("kind"),
        "agentbench.alias": first.get("alias"),
        "agentbench.agent": record_agent(first),
        "agentbench.agent_version": record_agent_version(first),
        "agentbench.model": first.get("model"),
        "agentbench.test_double": bool(first.get("test_double")),
        "agentbench.runs": len(runs),
        "agentbench.repeats": len({record_repeat(r) for r in runs}),
        "agentbench.passed": passed,
        "agentbench.pass_rate": passed / len(runs) if runs else None,
        "agentbench.infrastructure": len(infrastructure),
        "agentbench.outcomes": ",".join(f"{k}:{v}" for k, v in sorted(outcomes.items())),
        "agentbench.turns_mean": _mean([r.get("turns", 0) for r in runs]),
        "agentbench.model_calls": sum(r.get("model_calls", 0) for r in runs),
        "agentbench.prompt_tokens_mean": _mean([t.get("prompt", 0) for t in tokens]),
        "agentbench.completion_tokens_mean": _mean([t.get("completion", 0) for t in tokens]),
        "agentbench.usage_reported": bool(runs) and all(t.get("usage_reported", False) for t in tokens),
        "agentbench.call_wall_p50_s": percentile([c["wall_s"] for c in calls], 50),
        "agentbench.ttft_p50_s": percentile(ttfts, 50),  # None: not measured (not streamed)
        "agentbench.cost_usd_mean": statistics.mean(known) if known and len(known) == len(costs) else None,
        "agentbench.measured": "client",
    }


def _benchmark_entry(
    packet: str, alias: str, agent: str, runs: Sequence[Mapping[str, Any]], include_data: bool
) -> dict[str, Any]:
    """One pytest-benchmark ``benchmarks[]`` entry: the runs of one (packet, alias, agent)."""
    param = f"{packet}-{cell_id(agent, alias)}"
    name = f"test_packet[{param}]"
    runs = sorted(runs, key=record_repeat)  # stable: the attempts of one repeat keep their order
    infrastructure = [r for r in runs if r.get("outcome") == INFRASTRUCTURE]
    counted = [r for r in runs if r.get("outcome") != INFRASTRUCTURE]
    walls = [float((r.get("client") or {}).get("wall_s", 0.0)) for r in counted or infrastructure]
    stats = _benchmark_stats(walls)
    if not include_data:
        stats.pop("data")
    return {
        "group": packet,
        "name": name,
        "fullname": next((_pair_nodeid(r) for r in runs if r.get("nodeid")), name),
        "params": {"packet": packet, "alias": alias, **({} if agent == BUILTIN_AGENT else {"agent": agent})},
        "param": param,
        "extra_info": _benchmark_extra_info(counted, infrastructure),
        "options": dict(_OPTIONS),
        "stats": stats,
    }


def _pair_nodeid(record: Mapping[str, Any]) -> str:
    """The trial's node id without its ``-r<N>`` repeat suffix: the (packet, alias) pair's id."""
    nodeid = str(record["nodeid"])
    return re.sub(rf"-r{record_repeat(record)}\]$", "]", nodeid) if "repeat" in record else nodeid


def benchmark_json(
    records: Iterable[Mapping[str, Any]],
    machine_info: Mapping[str, Any] | None = None,
    *,
    commit_info: Mapping[str, Any] | None = None,
    include_data: bool = True,
) -> dict[str, Any]:
    """pytest-benchmark's storage JSON: one benchmark per (packet, alias, agent), ``stats`` over run wall times.

    Each attempt of a pair is one round (seconds, client-side wall time of the
    whole run); ``group`` is the packet, so ``pytest-benchmark compare FILE``
    puts the aliases of one packet side by side. ``extra_info`` carries the
    agentbench metrics. Written by the controller because pytest-benchmark
    disables itself under xdist.
    """
    pairs: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for rec in records:
        key = (str((rec.get("packet") or {}).get("id")), str(rec.get("alias")), record_agent(rec))
        pairs.setdefault(key, []).append(rec)
    benchmarks = [
        _benchmark_entry(packet, alias, agent, runs, include_data)
        for (packet, alias, agent), runs in sorted(pairs.items())
    ]
    return {
        "machine_info": dict(machine_info) if machine_info is not None else default_machine_info(),
        "commit_info": dict(commit_info) if commit_info is not None else default_commit_info(),
        "benchmarks": benchmarks,
        "datetime": datetime.now(UTC).isoformat(),
        "version": _benchmark_format_version(),
    }


def _benchmark_format_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-benchmark")
    except PackageNotFoundError:
        return BENCHMARK_FORMAT_VERSION


def write_benchmark_json(
    records: Iterable[Mapping[str, Any]], path: Path | str, machine_info: Mapping[str, Any] | None = None, **kwargs: Any
) -> Path:
    """:func:`benchmark_json` written to ``path`` (folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(json_safe(benchmark_json(records, machine_info, **kwargs)), indent=2) + "\n", encoding="utf-8"
    )
    return path

"""Per-run records: one JSON object per run, a durable JSONL log, xdist merge, benchmark JSON. pytest-free.

A record (``record_to_dict``) is plain JSON, schema version :data:`SCHEMA_VERSION`::

    {"schema_version": 1, "run_id": "3f2a...", "timestamp": "2026-...+00:00", "started_at": "...",
     "packet": {"id": "bugfix-median", "kind": "bug-fix", "version": 1},
     "alias": "local-coder", "model": "...", "test_double": false,
     "outcome": "finished", "failure": null, "failures_by_class": {}, "error": "", "passed": true,
     "gates": [{"id", "guard", "passed", "exit", "expected", "timed_out", "duration_s", ...}],
     "turns": 5, "model_calls": 5, "invalid_tool_calls": 0,
     "client": {"wall_s": 12.1, "agent_wall_s": 9.8, "model_wall_s": 7.2,
                "calls": [{"index": 0, "wall_s": 1.2, "ttft_s": null, "prompt_tokens": 812, ...}],
                "tokens": {"prompt": 4100, "completion": 380, "cached": 0, "usage_reported": true}},
     "server": null,
     "cost": {"usd": 0.0180, "kind": "commercial", "spec": {...}, "describe": "...", "basis": "..."},
     "sandbox": {"kind": "local", "isolation": "process-group+netns", "details": {...}},
     "versions": {"agentbench": "0.1.0", "python": "3.11.9"},
     "worker": "gw0", "nodeid": null, "transcript": "..."}

Where numbers come from: everything under ``client`` is measured by the harness
(wall clocks around the run and around each HTTP call; token counts as the
responses' ``usage`` reported them, summed here). ``server`` holds what the
server itself exported (vLLM ``/metrics`` before/after diffs), copied from
``record.extra["server_metrics"]`` when a scrape was done, else ``null``.
A ``ttft_s`` of ``null`` means *not measured* (a non-streaming call), never 0;
a cost of ``null`` means *unknown* (no ``cost:`` mapping, or no usage reported),
never $0.

Durability: :class:`JsonlWriter` appends one line per record and fsyncs it, so
a killed worker loses at most the line it was writing. Under xdist each worker
writes its own file (:func:`worker_results_path`) and the controller merges them
with :func:`merge_jsonl`, which skips a truncated or corrupt line with a warning.
Secrets: the value of an alias's ``api_key_env`` is replaced by ``***`` anywhere
in the record (a transcript may have echoed the environment).
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import warnings
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_agentbench.results.jsonsafe import json_safe

if TYPE_CHECKING:
    from pytest_agentbench.runner import RunRecord

__all__ = [
    "RESULTS_FILE",
    "SCHEMA_VERSION",
    "TRANSCRIPT_CHARS",
    "JsonlWriter",
    "ResultsWarning",
    "benchmark_json",
    "completed_pairs",
    "default_commit_info",
    "default_machine_info",
    "load_records",
    "merge_jsonl",
    "record_to_dict",
    "worker_files",
    "worker_results_path",
    "write_benchmark_json",
]

SCHEMA_VERSION = 1
#: The merged log the controller writes next to the per-worker files.
RESULTS_FILE = "results.jsonl"
#: Characters of transcript kept per record (head and tail, the cut is marked).
TRANSCRIPT_CHARS = 20_000
#: pytest-benchmark's storage format this module writes (used when pytest-benchmark is not installed).
BENCHMARK_FORMAT_VERSION = "5.1.0"
_OUTPUT_TAIL_CHARS = 2_000
_REDACTED = "***"
_MIN_SECRET_LEN = 4


class ResultsWarning(UserWarning):
    """A results file had a line that could not be read (skipped, not fatal)."""


# --------------------------------------------------------------------------- one record


def record_to_dict(
    record: RunRecord,
    *,
    transcript: bool = True,
    transcript_chars: int = TRANSCRIPT_CHARS,
    finished_at: datetime | None = None,
) -> dict[str, Any]:
    """One JSON-serialisable record for a finished run (see the module docstring for the schema)."""
    agent, spec = record.agent, record.spec
    finished = finished_at or datetime.now(UTC)
    usage = agent.usage
    extra = record.extra or {}
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": record.run_id,
        "timestamp": _iso(finished),
        "started_at": _iso(finished - timedelta(seconds=max(0.0, record.wall_s))),
        "packet": {"id": record.packet.id, "kind": record.packet.kind, "version": record.packet.version},
        "alias": spec.alias,
        "model": spec.model,
        "test_double": bool(spec.test_double),
        "outcome": agent.outcome,
        "failure": agent.failure,
        "failures_by_class": _failures_by_class(agent),
        "error": _clip(agent.error or "", _OUTPUT_TAIL_CHARS),
        "passed": record.passed,
        "gates": [_gate_dict(g) for g in record.gates],
        "turns": len(agent.turns),
        "model_calls": agent.model_calls,
        "invalid_tool_calls": agent.invalid_tool_calls,
        "client": {
            "wall_s": _round(record.wall_s),
            "agent_wall_s": _round(agent.wall_s),
            "model_wall_s": _round(sum(t.wall_s for t in agent.turns)),
            "calls": [_call_dict(t) for t in agent.turns],
            "tokens": {
                "prompt": usage.prompt_tokens,
                "completion": usage.completion_tokens,
                "cached": usage.cached_tokens,
                "usage_reported": usage.reported,
            },
        },
        "server": _server_dict(extra.get("server_metrics")),
        "cost": run_cost(record),
        "sandbox": {
            "kind": record.sandbox.kind,
            "isolation": record.sandbox.isolation,
            "details": {str(k): str(v) for k, v in (record.sandbox.details or {}).items()},
        },
        "versions": _versions(),
        "worker": extra.get("worker") or os.environ.get("PYTEST_XDIST_WORKER"),
        "nodeid": extra.get("nodeid"),
        "extra": {
            str(k): v for k, v in extra.items() if k not in ("server_metrics", "worker", "nodeid") and _is_primitive(v)
        },
    }
    if transcript:
        out["transcript"] = _clip(agent.transcript(), transcript_chars)
    return _redact(json_safe(out), _secrets(spec))


def run_cost(record: RunRecord) -> dict[str, Any]:
    """The run's cost from its alias's ``cost:`` mapping; ``usd`` is ``None`` when unknown."""
    from pytest_agentbench.capacity.cost import usage_cost_usd

    spec, agent = record.spec, record.agent
    raw = dict(spec.cost_raw)
    model_s = sum(t.wall_s for t in agent.turns)
    out: dict[str, Any] = {"usd": None, "kind": None, "spec": raw or None, "describe": None, "basis": None}
    cost_spec = spec.cost
    if cost_spec is None:
        out["basis"] = "no cost: mapping for this alias (unknown, not $0)"
        return out
    out["kind"] = cost_spec.kind
    out["describe"] = cost_spec.describe()
    if cost_spec.kind == "commercial":
        out["basis"] = (
            "tokens reported by the server x price" if agent.usage.reported else "unknown: the server reported no usage"
        )
    else:
        out["basis"] = f"GPU time: {model_s:.3f} s of model calls / concurrency"
    try:
        out["usd"] = usage_cost_usd(cost_spec, agent.usage, latency_s=model_s)
    except ValueError as exc:  # impossible counts from a server: unknown, and say why
        out["error"] = str(exc)
    return out


def _gate_dict(g: Any) -> dict[str, Any]:
    out = {
        "id": g.id,
        "guard": g.guard,
        "passed": g.passed,
        "exit": g.exit_code,
        "expected": g.expect_exit,
        "timed_out": g.timed_out,
        "duration_s": _round(g.duration_s),
        "command": g.command,
    }
    if g.error:
        out["error"] = g.error
    if not g.passed and g.output:
        out["output_tail"] = _clip(g.tail(), _OUTPUT_TAIL_CHARS)
    return out


def _call_dict(t: Any) -> dict[str, Any]:
    u = t.usage
    out: dict[str, Any] = {
        "index": t.index,
        "wall_s": _round(t.wall_s),
        "ttft_s": None if t.ttft_s is None else _round(t.ttft_s),
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "cached_tokens": u.cached_tokens,
        "usage_reported": u.reported,
        "finish_reason": t.finish_reason,
        "error": t.error,
        "tool_calls": len(t.tool_calls),
        "invalid_tool_calls": len(t.invalid_tool_calls),
    }
    retries = getattr(t, "retries", ())
    if retries:
        out["retries"] = list(retries)
    timings = {str(k): v for k, v in (getattr(t, "extra", None) or {}).items() if _is_primitive(v)}
    if timings:
        out["timings"] = timings
    return out


def _failures_by_class(agent: Any) -> dict[str, int]:
    method = getattr(agent, "failures_by_class", None)
    if callable(method):
        return dict(method())
    counts: dict[str, int] = {}
    for t in agent.turns:
        if t.error:
            counts[t.error] = counts.get(t.error, 0) + 1
        if t.invalid_tool_calls:
            counts["invalid_tool_call"] = counts.get("invalid_tool_call", 0) + len(t.invalid_tool_calls)
    return counts


def _server_dict(metrics: Any) -> dict[str, Any] | None:
    if metrics is None:
        return None
    if hasattr(metrics, "to_dict"):
        metrics = metrics.to_dict(prefix="")
    if not isinstance(metrics, Mapping):
        return None
    return {str(k): v for k, v in metrics.items() if _is_primitive(v)}


@lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        plugin = version("pytest-agentbench")
    except PackageNotFoundError:
        plugin = "unknown"
    return {"agentbench": plugin, "python": platform.python_version()}


def _secrets(spec: Any) -> list[str]:
    name = getattr(spec, "api_key_env", None)
    value = os.environ.get(name, "") if name else ""
    return [value] if len(value) >= _MIN_SECRET_LEN else []


def _redact(obj: Any, secrets: Sequence[str]) -> Any:
    if not secrets:
        return obj
    if isinstance(obj, str):
        for s in secrets:
            obj = obj.replace(s, _REDACTED)
        return obj
    if isinstance(obj, dict):
        return {_redact(k, secrets): _redact(v, secrets) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_redact(v, secrets) for v in obj]
    return obj


def _is_primitive(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _round(x: float) -> float:
    return round(float(x), 6)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="microseconds")


def _clip(text: str, limit: int) -> str:
    from pytest_agentbench.agents.loop import clip

    return clip(text, limit)


# --------------------------------------------------------------------------- JSONL


def worker_results_path(directory: Path | str, worker_id: str | None) -> Path:
    """``<dir>/results-<worker>.jsonl``: one file per xdist worker (``main`` without xdist)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", worker_id or "main")
    return Path(directory) / f"results-{name}.jsonl"


def worker_files(directory: Path | str) -> list[Path]:
    """The per-worker files in a results folder, sorted by name."""
    return sorted(Path(directory).glob("results-*.jsonl"))


class JsonlWriter:
    """Append one JSON line per record to ``path``; each line is flushed and fsynced.

    Every write opens the file with ``O_APPEND``, writes the whole line and
    fsyncs it, so several processes may append (one file per worker is still
    the rule: lines are never interleaved then). If the file ends in a line
    cut short by a killed writer, a newline is added first so the next record
    starts on its own line (the fragment is skipped when read).
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.written = 0
        self._seal_partial_line()

    def _seal_partial_line(self) -> None:
        try:
            with self.path.open("rb") as f:
                f.seek(0, os.SEEK_END)
                if f.tell() == 0:
                    return
                f.seek(-1, os.SEEK_END)
                last = f.read(1)
        except FileNotFoundError:
            return
        if last != b"\n":
            self._append(b"\n")

    def write(self, record: Mapping[str, Any]) -> None:
        """Append ``record`` as one line and make it durable before returning."""
        line = json.dumps(json_safe(dict(record)), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        self._append(line.encode("utf-8") + b"\n")
        self.written += 1

    def _append(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


Problem = Callable[[str], None]


def _warn(message: str) -> None:
    warnings.warn(message, ResultsWarning, stacklevel=3)


def load_records(path: Path | str, *, on_problem: Problem | None = None) -> list[dict[str, Any]]:
    """Every record in one JSONL file, in file order.

    A line that is not a JSON object is skipped and reported through
    ``on_problem`` (default: a :class:`ResultsWarning`); a cut-off last line
    (a worker killed mid-write) is the expected case. Never raises for content.
    """
    report = on_problem or _warn
    path = Path(path)
    data = path.read_bytes()
    lines = data.split(b"\n")
    records: list[dict[str, Any]] = []
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        last = number == len(lines)  # no newline after it: the writer stopped mid-line
        try:
            obj = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            why = "truncated last line (a worker killed mid-write?)" if last else "not valid JSON"
            report(f"{path}:{number}: skipped {len(raw)} bytes: {why}")
            continue
        if not isinstance(obj, dict):
            report(f"{path}:{number}: skipped: expected a JSON object, found {type(obj).__name__}")
            continue
        records.append(obj)
    return records


def _sort_key(record: Mapping[str, Any]) -> datetime:
    try:
        when = datetime.fromisoformat(str(record.get("timestamp")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def merge_records(groups: Iterable[Iterable[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Records from several sources, sorted by timestamp, the first of each ``run_id`` kept."""
    seen: set[str] = set()
    merged: list[dict[str, Any]] = []
    for group in groups:
        for rec in group:
            run_id = rec.get("run_id")
            if run_id is not None:
                if run_id in seen:
                    continue
                seen.add(str(run_id))
            merged.append(rec)
    merged.sort(key=_sort_key)  # stable: equal timestamps keep file order
    return merged


def merge_jsonl(
    parts: Iterable[Path | str], out: Path | str, *, on_problem: Problem | None = None
) -> list[dict[str, Any]]:
    """Merge per-worker JSONL files into ``out`` (sorted by timestamp, one line per ``run_id``).

    Missing parts are ignored; unreadable lines are skipped and reported (see
    :func:`load_records`). ``out`` is replaced atomically and may be one of the
    parts. Returns the merged records.
    """
    report = on_problem or _warn
    groups = []
    for part in parts:
        path = Path(part)
        if not path.is_file():
            continue
        try:
            groups.append(load_records(path, on_problem=report))
        except OSError as exc:
            report(f"{path}: skipped: {exc}")
    merged = merge_records(groups)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for rec in merged:
            f.write(json.dumps(json_safe(rec), ensure_ascii=False, separators=(",", ":")) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
    return merged


def _result_sources(path: Path) -> list[Path]:
    if path.is_dir():
        merged = path / RESULTS_FILE
        return ([merged] if merged.is_file() else []) + worker_files(path)
    return [path] if path.is_file() else []


def completed_pairs(path: Path | str, *, on_problem: Problem | None = None) -> set[tuple[str, str]]:
    """``{(packet_id, alias)}`` that already have a record: what ``--resume`` skips.

    ``path`` is a results file or a results folder (its ``results.jsonl`` and
    ``results-*.jsonl``); a missing path gives an empty set. A record is a
    finished run whatever its outcome (a model failure is a result); runs the
    harness itself broke never wrote one and are run again.
    """
    pairs: set[tuple[str, str]] = set()
    for source in _result_sources(Path(path)):
        for rec in load_records(source, on_problem=on_problem):
            packet, alias = (rec.get("packet") or {}).get("id"), rec.get("alias")
            if packet and alias:
                pairs.add((str(packet), str(alias)))
    return pairs


# --------------------------------------------------------------------------- pytest-benchmark JSON


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


def _benchmark_stats(data: Sequence[float]) -> dict[str, Any]:
    """pytest-benchmark's ``Stats.as_dict()`` for ``data`` (same quartile and outlier rules)."""
    values = sorted(data)
    n = len(values)
    mean = statistics.mean(values)
    stddev = statistics.stdev(values) if n > 1 else 0.0
    if n == 1:
        q1 = q3 = values[0]
    elif n % 2:  # Wikipedia's quartile method 3, as pytest-benchmark
        k, r = n // 4, n % 4
        q1 = 0.25 * values[k - 1] + 0.75 * values[k] if r == 1 else 0.75 * values[k] + 0.25 * values[k + 1]
        q3 = (
            0.75 * values[3 * k] + 0.25 * values[3 * k + 1]
            if r == 1
            else 0.25 * values[3 * k + 1] + 0.75 * values[3 * k + 2]
        )
    else:  # method 2
        q1, q3 = statistics.median(values[: n // 2]), statistics.median(values[n // 2 :])
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


def _benchmark_extra_info(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    from pytest_agentbench.reports.stats import percentile

    first = runs[0]
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
        "agentbench.model": first.get("model"),
        "agentbench.test_double": bool(first.get("test_double")),
        "agentbench.runs": len(runs),
        "agentbench.passed": passed,
        "agentbench.pass_rate": passed / len(runs),
        "agentbench.outcomes": ",".join(f"{k}:{v}" for k, v in sorted(outcomes.items())),
        "agentbench.turns_mean": statistics.mean(r.get("turns", 0) for r in runs),
        "agentbench.model_calls": sum(r.get("model_calls", 0) for r in runs),
        "agentbench.prompt_tokens_mean": statistics.mean(t.get("prompt", 0) for t in tokens),
        "agentbench.completion_tokens_mean": statistics.mean(t.get("completion", 0) for t in tokens),
        "agentbench.usage_reported": all(t.get("usage_reported", False) for t in tokens),
        "agentbench.call_wall_p50_s": percentile([c["wall_s"] for c in calls], 50),
        "agentbench.ttft_p50_s": percentile(ttfts, 50),  # None: not measured (not streamed)
        "agentbench.cost_usd_mean": statistics.mean(known) if known and len(known) == len(costs) else None,
        "agentbench.measured": "client",
    }


def benchmark_json(
    records: Iterable[Mapping[str, Any]],
    machine_info: Mapping[str, Any] | None = None,
    *,
    commit_info: Mapping[str, Any] | None = None,
    include_data: bool = True,
) -> dict[str, Any]:
    """pytest-benchmark's storage JSON: one benchmark per (packet, alias), ``stats`` over run wall times.

    Each attempt of a pair is one round (seconds, client-side wall time of the
    whole run); ``group`` is the packet, so ``pytest-benchmark compare FILE``
    puts the aliases of one packet side by side. ``extra_info`` carries the
    agentbench metrics. Written by the controller because pytest-benchmark
    disables itself under xdist.
    """
    pairs: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for rec in records:
        key = (str((rec.get("packet") or {}).get("id")), str(rec.get("alias")))
        pairs.setdefault(key, []).append(rec)
    benchmarks = []
    for (packet, alias), runs in sorted(pairs.items()):
        param = f"{packet}-{alias}"
        name = f"test_packet[{param}]"
        walls = [float((r.get("client") or {}).get("wall_s", 0.0)) for r in runs]
        stats = _benchmark_stats(walls)
        if not include_data:
            stats.pop("data")
        benchmarks.append(
            {
                "group": packet,
                "name": name,
                "fullname": next((r["nodeid"] for r in runs if r.get("nodeid")), name),
                "params": {"packet": packet, "alias": alias},
                "param": param,
                "extra_info": _benchmark_extra_info(runs),
                "options": {
                    "disable_gc": False,
                    "timer": "agentbench.client_wall_clock",
                    "min_rounds": 1,
                    "max_time": 0,
                    "min_time": 0,
                    "warmup": False,
                },
                "stats": stats,
            }
        )
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

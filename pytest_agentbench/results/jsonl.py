"""The durable JSONL log of run records: per-worker files, fsynced appends, the xdist merge, ``--resume``. pytest-free.

:class:`JsonlWriter` appends one line per record and fsyncs it, so a killed
worker loses at most the line it was writing. Under xdist each worker writes
its own file (:func:`worker_results_path`) and the controller merges them with
:func:`merge_jsonl`, which skips a truncated or corrupt line with a warning;
:func:`completed_trials` reads a results file or folder back for ``--resume``.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pytest_agentbench.errors import ResultsWarning
from pytest_agentbench.results.cells import TrialKey, record_repeat, trial_key
from pytest_agentbench.results.jsonsafe import json_safe

__all__ = [
    "RESULTS_FILE",
    "JsonlWriter",
    "Problem",
    "ResultsWarning",
    "completed_trials",
    "load_records",
    "merge_jsonl",
    "merge_records",
    "record_repeat",
    "record_time",
    "worker_files",
    "worker_results_path",
    "write_records",
]

#: The merged log the controller writes next to the per-worker files.
RESULTS_FILE = "results.jsonl"

#: Where a skipped line is reported: called with one message per problem.
Problem = Callable[[str], None]


def worker_results_path(directory: Path | str, worker_id: str | None) -> Path:
    """``<dir>/results-<worker>.jsonl``: one file per xdist worker (``main`` without xdist)."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", worker_id or "main")
    return Path(directory) / f"results-{name}.jsonl"


def worker_files(directory: Path | str) -> list[Path]:
    """The per-worker files in a results folder, sorted by name."""
    return sorted(Path(directory).glob("results-*.jsonl"))


def _json_line(record: Mapping[str, Any]) -> str:
    """``record`` as one compact JSON line (no newline), non-finite floats as ``null``."""
    return json.dumps(json_safe(dict(record)), ensure_ascii=False, separators=(",", ":"), allow_nan=False)


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
        self._append(_json_line(record).encode("utf-8") + b"\n")
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


def record_time(record: Mapping[str, Any]) -> datetime:
    """The record's ``timestamp`` (when it finished), timezone-aware; the earliest time where it has none."""
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
    merged.sort(key=record_time)  # stable: equal timestamps keep file order
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
    _replace_lines(Path(out), merged)
    return merged


def write_records(records: Iterable[Mapping[str, Any]], out: Path | str) -> Path:
    """``records`` as ``out``, one line each in the order given, fsynced and replaced atomically; returns ``out``."""
    _replace_lines(Path(out), records)
    return Path(out)


def _replace_lines(out: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Write ``records`` to ``out`` one per line, fsynced, then atomically replace ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for rec in records:
            f.write(_json_line(rec) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)


def _result_sources(path: Path) -> list[Path]:
    if path.is_dir():
        merged = path / RESULTS_FILE
        return ([merged] if merged.is_file() else []) + worker_files(path)
    return [path] if path.is_file() else []


def completed_trials(path: Path | str, *, on_problem: Problem | None = None) -> set[TrialKey]:
    """``{(packet_id, alias, agent, repeat)}`` that already have a record: what ``--resume`` skips.

    ``path`` is a results file or a results folder (its ``results.jsonl`` and
    ``results-*.jsonl``); a missing path gives an empty set. A record is a
    finished run whatever its outcome (a model failure is a result); runs the
    harness itself broke never wrote one, and runs whose endpoint never answered
    (outcome ``infrastructure``) judged nothing: both are run again. A record
    without ``repeat`` (written before ``--repeats`` existed), or with one that is
    not a whole number >= 1, counts as repeat 1; one without ``agent`` (written
    before agents could be chosen) as the built-in agent's (``results.cells.trial_key``).
    """
    trials: set[TrialKey] = set()
    for source in _result_sources(Path(path)):
        for rec in load_records(source, on_problem=on_problem):
            packet, alias, agent, repeat = trial_key(rec)
            if packet and alias and rec.get("outcome") != "infrastructure":
                trials.add((packet, alias, agent, repeat))
    return trials

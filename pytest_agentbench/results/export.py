"""Exports of run records for other tools, and the whole patches kept beside the records. pytest-free.

``agentbench export --format swebench`` (:mod:`pytest_agentbench.cli.export`) writes SWE-bench
predictions, one JSON object per line with exactly the three keys its harness reads::

    {"instance_id": "bugfix-median", "model_name_or_path": "local-coder", "model_patch": "diff --git ..."}

- ``instance_id`` is the packet id; where one alias has several trials of a packet in the export
  (``--repeats N``), every one of them is ``<packet>-r<repeat>`` (``bugfix-median-r2``), the suffix
  the test ids use, so each trial is its own prediction. Two records of one trial (two sessions
  exported together) keep the newer one, with a warning.
- ``model_name_or_path`` is the alias by default (unique in a models file; two aliases may serve
  one model), or the served model name, or ``alias/model`` (``name_by``); a run of an agent other
  than the built-in one adds it as the test ids do (``local-coder-mini-swe-agent``: ``results.cells``),
  so two agents on one alias are two predictors, never one.
- ``model_patch`` is the record's ``patch.diff``; for a patch cut for the record, the whole from
  ``patches/<run_id>.diff`` next to the results file (:func:`keep_whole_patch` wrote it there),
  else the cut head (a warning says so: it holds only the first files).

Runs with nothing to predict are left out, each with a warning naming it and why: an
``infrastructure`` run (the endpoint never answered), a record without a ``patch`` (written before
patches were recorded) or one whose patch could not be taken (``patch.error``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pytest_agentbench.errors import UsageError
from pytest_agentbench.results.cells import cell_id, record_agent
from pytest_agentbench.results.jsonl import RESULTS_FILE, load_records, record_repeat, worker_files
from pytest_agentbench.results.redact import Redactor

__all__ = [
    "FORMATS",
    "NAME_BY",
    "PATCHES_DIR",
    "keep_whole_patch",
    "load_sources",
    "result_files",
    "swebench_predictions",
    "write_jsonl",
]

FORMATS = ("swebench",)
NAME_BY = ("alias", "model", "alias/model")
#: Folder next to results.jsonl that holds the whole patches cut for the record.
PATCHES_DIR = "patches"

Warn = Callable[[str], None]


def keep_whole_patch(record: Any, results_dir: Path, redactor: Redactor) -> None:
    """Write the whole patch of a run whose record holds only its head to ``patches/<run_id>.diff``
    (secrets redacted) and point the record at it; nothing to do for a patch that fits the record."""
    patch = getattr(record, "patch", None)
    if patch is None or not patch.truncated or patch.whole is None:
        return
    name = f"{PATCHES_DIR}/{record.run_id}.diff"
    target = Path(results_dir) / name
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        text = patch.whole.decode("utf-8", "surrogateescape")
        target.write_bytes(redactor.text(text).encode("utf-8", "surrogateescape"))
    except OSError as exc:
        patch.warnings.append(f"the whole patch could not be written to {target}: {exc}")
        return
    patch.whole_path = name


def result_files(paths: Sequence[Path]) -> list[Path]:
    """The JSONL files behind each path (a file, or a results folder: its results.jsonl, else its
    per-worker files); ``UsageError`` naming a path that holds none."""
    files: list[Path] = []
    for path in paths:
        if path.is_file():
            files.append(path)
        elif path.is_dir() and (path / RESULTS_FILE).is_file():
            files.append(path / RESULTS_FILE)
        elif path.is_dir() and worker_files(path):
            files += worker_files(path)
        elif path.is_dir():
            raise UsageError(
                f"{path}: a folder without {RESULTS_FILE} (or results-*.jsonl): give a results file or "
                "the folder a pytest run wrote (--agentbench-results DIR)"
            )
        else:
            raise UsageError(f"{path}: no such file: give a {RESULTS_FILE} or the folder that holds it")
    return files


def _whole_patch(source: Path, patch: Mapping[str, Any], warn: Warn, label: str) -> str | None:
    """The whole patch file a cut record points to, if it is there (and inside the results folder)."""
    name = patch.get("whole")
    if not isinstance(name, str) or not name:
        return None
    folder = (source.parent / PATCHES_DIR).resolve()
    path = (source.parent / name).resolve()
    if folder not in path.parents:
        warn(f"{label}: patch.whole {name!r} is not in {folder}: ignored")
        return None
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError as exc:
        warn(f"{label}: the whole patch {path} cannot be read ({exc}): exported the record's cut head")
        return None


def _model_patch(source: Path, rec: Mapping[str, Any], warn: Warn) -> str | None:
    """The patch to export for one record, or None (with a warning saying why it is left out)."""
    label = f"{source}: run {rec.get('run_id')} ({(rec.get('packet') or {}).get('id')} on {rec.get('alias')})"
    if rec.get("outcome") == "infrastructure":
        warn(f"{label}: left out: the endpoint never answered (infrastructure), there is no prediction")
        return None
    patch = rec.get("patch")
    if not isinstance(patch, dict):
        why = "it was written before patches were recorded" if "patch" not in rec else "it has no patch"
        warn(f"{label}: left out: {why}; run it again to get one")
        return None
    if patch.get("error"):
        warn(f"{label}: left out: no patch could be taken ({patch['error']})")
        return None
    diff = str(patch.get("diff") or "")
    if patch.get("truncated"):
        whole = _whole_patch(source, patch, warn, label)
        if whole is not None:
            return whole
        warn(f"{label}: exported cut: {patch.get('note') or 'the record holds only the head of the patch'}")
    return diff


def _name(rec: Mapping[str, Any], name_by: str) -> str:
    alias, model, agent = str(rec.get("alias")), str(rec.get("model")), record_agent(rec)
    name = {"alias": alias, "model": model, "alias/model": f"{alias}/{model}"}[name_by]
    return cell_id(agent, name)


def swebench_predictions(
    sources: Iterable[tuple[Path, Sequence[Mapping[str, Any]]]], *, name_by: str = "alias", warn: Warn
) -> list[dict[str, str]]:
    """SWE-bench predictions of the records (``(file, records)`` pairs), sorted by packet, name and repeat."""
    if name_by not in NAME_BY:
        raise UsageError(f"--model-name {name_by}: expected one of {', '.join(NAME_BY)}")
    rows: dict[tuple[str, str, int], tuple[str, dict[str, str]]] = {}
    for source, records in sources:
        for rec in records:
            patch = _model_patch(source, rec, warn)
            if patch is None:
                continue
            key = (str((rec.get("packet") or {}).get("id")), _name(rec, name_by), record_repeat(rec))
            when = str(rec.get("timestamp", ""))
            if key in rows:
                older = min(rows[key][0], when)
                warn(f"two records of {key[0]} r{key[2]} for {key[1]}: kept the newer, dropped the one of {older}")
                if when < rows[key][0]:
                    continue
            rows[key] = (when, {"model_name_or_path": key[1], "model_patch": patch})
    trials: dict[tuple[str, str], int] = {}
    for packet, name, _ in rows:
        trials[(packet, name)] = trials.get((packet, name), 0) + 1
    out = []
    for (packet, name, repeat), (_, row) in sorted(rows.items()):
        instance = packet if trials[(packet, name)] == 1 else f"{packet}-r{repeat}"
        out.append({"instance_id": instance, **row})
    return out


def load_sources(files: Sequence[Path], warn: Warn) -> list[tuple[Path, list[dict[str, Any]]]]:
    """Each file with its records; ``UsageError`` for a file that cannot be read or holds no record."""
    loaded = []
    for path in files:
        try:
            records = load_records(path, on_problem=warn)
        except OSError as exc:
            raise UsageError(f"{path}: cannot be read ({exc})") from None
        if not records:
            raise UsageError(
                f"{path}: no run records in it (not a results JSONL?): give the results.jsonl a pytest run wrote"
            )
        loaded.append((path, records))
    return loaded


def write_jsonl(rows: Sequence[Mapping[str, Any]], out: Path) -> None:
    """``rows`` as JSON lines; ``UsageError`` naming ``out`` where it cannot be written."""
    text = "".join(json.dumps(dict(r), ensure_ascii=False) + "\n" for r in rows)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"-o {out}: cannot be written ({exc}): choose a writable path") from None

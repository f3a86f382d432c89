"""``agentbench merge``: shard results folders -> one results folder and one HTML report. pytest-free.

    report = merge_folders([Path("res/shard1of3"), ...], Path("merged"))

The merged folder reads like the results folder of an unsharded run of the same trials:
``results.jsonl`` (the records, sorted by trial: packet, alias, agent, repeat, then finish time),
``benchmark.json`` (built from those records by ``results.benchmark``, with the first shard's
``machine_info`` and ``commit_info``), ``junit.xml`` (the shards' ``*.xml`` as one suite:
:mod:`pytest_agentbench.scale.junit`) and ``report.html`` (``reports.html``).

**Duplicates** (a retried shard, a folder given twice): records with the same ``run_id`` are one
record. Several records of one trial (packet, alias, agent, repeat) keep one: the newest
*complete* record, complete meaning any outcome but ``infrastructure`` (an endpoint that never
answered judged nothing; ``--resume`` runs those again too); newest by ``timestamp``, then by
``run_id``. Where every record of the trial is ``infrastructure``, the newest of those is kept.

**Completeness.** Each shard folder holds ``shard.json`` (:mod:`pytest_agentbench.scale.manifest`).
Folders of different splits are refused; a shard K/N that no folder holds is named ("shard 2/3
missing") and refused unless ``allow_missing``; a trial a shard was given but has no record of is
named as a warning (interrupted, deselected with ``-k``, or the harness broke before the record).
Folders without ``shard.json`` (unsharded runs) are merged as they are, with no completeness check.
Every refusal is a :class:`~pytest_agentbench.errors.UsageError` naming the folder and the fix.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_agentbench.agents.transcript import INFRASTRUCTURE
from pytest_agentbench.errors import ConfigError, UsageError
from pytest_agentbench.results.cells import BUILTIN_AGENT, TrialKey, trial_key
from pytest_agentbench.results.jsonl import (
    RESULTS_FILE,
    load_records,
    merge_records,
    record_time,
    worker_files,
    write_records,
)
from pytest_agentbench.scale.manifest import SHARD_FILE, ShardManifest, read_manifest

__all__ = ["BENCHMARK_FILE", "JUNIT_FILE", "REPORT_FILE", "MergeReport", "ShardFolder", "merge_folders", "trial_key"]

BENCHMARK_FILE = "benchmark.json"
JUNIT_FILE = "junit.xml"
REPORT_FILE = "report.html"
_HOW_TO_RUN = "pytest <the same options> --shard {shard} --agentbench-results DIR"


@dataclass
class ShardFolder:
    """One folder to merge: its manifest (``None``: an unsharded run), records, JUnit files, benchmark JSON."""

    path: Path
    manifest: ShardManifest | None
    records: list[dict[str, Any]]
    junit: list[Path]
    benchmark: dict[str, Any] | None

    @property
    def label(self) -> str:
        return f"{self.path} (shard {self.manifest.shard})" if self.manifest else str(self.path)


@dataclass
class MergeReport:
    """What a merge wrote and decided."""

    records: list[dict[str, Any]]
    aliases: list[str]
    outputs: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # decisions: retried shards, duplicates resolved
    problems: list[str] = field(default_factory=list)  # warnings: unreadable lines, trials without a record


def _read_folder(path: Path, on_problem: Callable[[str], None]) -> ShardFolder:
    if not path.is_dir():
        what = "is a file, not a folder" if path.exists() else "does not exist"
        raise UsageError(
            f"{path} {what}: give the results folders of the shards (pytest --shard K/N --agentbench-results DIR "
            "writes one; in CI, each shard job's artifact)"
        )
    try:
        manifest = read_manifest(path)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    sources = [p for p in [path / RESULTS_FILE, *worker_files(path)] if p.is_file()]
    if manifest is None and not sources:
        raise UsageError(
            f"{path} holds no {RESULTS_FILE} and no {SHARD_FILE}: not a results folder; give the folder a shard "
            "wrote (its --agentbench-results), or run that shard first"
        )
    groups = []
    for source in sources:
        try:
            groups.append(load_records(source, on_problem=on_problem))
        except OSError as exc:
            raise UsageError(f"{source}: cannot be read ({exc}); fix its permissions or rerun the shard") from None
    bench = None
    if (path / BENCHMARK_FILE).is_file():
        try:
            bench = json.loads((path / BENCHMARK_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            on_problem(f"{path / BENCHMARK_FILE}: not read ({exc}); its machine and commit info are not used")
    junit = sorted(p for p in path.glob("*.xml") if p.is_file())
    return ShardFolder(path, manifest, merge_records(groups), junit, bench if isinstance(bench, dict) else None)


def _check_out(out: Path, folders: Sequence[ShardFolder]) -> None:
    target = out.resolve()
    for folder in folders:
        if folder.path.resolve() == target:
            raise UsageError(f"--out: {out} is one of the folders to merge; choose a new folder, e.g. --out merged")
    if (out / SHARD_FILE).is_file():
        raise UsageError(f"--out: {out} holds a shard's results ({SHARD_FILE}); choose a new folder, e.g. --out merged")


def _check_shards(folders: Sequence[ShardFolder], allow_missing: bool, report: MergeReport) -> None:
    """One split only; every shard 1..N present (or named, with ``allow_missing``); retried shards noted."""
    sharded = [f for f in folders if f.manifest is not None]
    if not sharded:
        return
    splits: dict[tuple[int, str], list[ShardFolder]] = {}
    for f in sharded:
        assert f.manifest is not None
        splits.setdefault((f.manifest.shard.count, f.manifest.digest), []).append(f)
    if len(splits) > 1:
        seen = "; ".join(
            f"{', '.join(g.label for g in group)}: split {digest} of {count} shards"
            for (count, digest), group in splits.items()
        )
        raise UsageError(
            f"the folders come from different splits ({seen}); merge the shards of one split: run every shard with "
            "the same packets, --models, --repeats and the same N"
        )
    ((count, _), group) = next(iter(splits.items()))
    by_index: dict[int, list[ShardFolder]] = {}
    for f in group:
        assert f.manifest is not None
        by_index.setdefault(f.manifest.shard.index, []).append(f)
    for index, same in sorted(by_index.items()):
        if len(same) > 1:
            report.notes.append(
                f"shard {index}/{count} given {len(same)} times ({', '.join(str(f.path) for f in same)}): a retried "
                "shard; each trial keeps its newest complete record"
            )
    missing = [k for k in range(1, count + 1) if k not in by_index]
    if not missing:
        return
    names = ", ".join(f"{k}/{count}" for k in missing)
    given = ", ".join(str(f.path) for f in group)
    text = f"shard {names} missing: none of the folders given ({given}) holds it"
    if not allow_missing:
        raise UsageError(
            f"{text}; pass its results folder (in CI, that shard job's artifact), or run it: "
            f"{_HOW_TO_RUN.format(shard=f'{missing[0]}/{count}')}; or merge without it: --allow-missing"
        )
    report.problems.append(f"{text} (--allow-missing: the merge lacks its trials)")


def _resolve(records: Sequence[dict[str, Any]], report: MergeReport) -> list[dict[str, Any]]:
    """One record per trial: the newest complete one (module docstring); the dropped ones noted."""
    trials: dict[TrialKey, list[dict[str, Any]]] = {}
    for rec in records:
        trials.setdefault(trial_key(rec), []).append(rec)
    kept = []
    for key, candidates in trials.items():
        best = max(
            candidates,
            key=lambda r: (r.get("outcome") != INFRASTRUCTURE, record_time(r), str(r.get("run_id") or "")),
        )
        kept.append(best)
        if len(candidates) > 1:
            packet, alias, agent, repeat = key
            others = ", ".join(str(r.get("run_id")) for r in candidates if r is not best)
            report.notes.append(
                f"{packet} x {alias} ({agent}) repeat {repeat}: {len(candidates)} records; kept run "
                f"{best.get('run_id')} (newest complete), dropped {others}"
            )
    kept.sort(key=lambda r: (trial_key(r), record_time(r)))
    return kept


def _missing_trials(folders: Sequence[ShardFolder], records: Sequence[Mapping[str, Any]], report: MergeReport) -> None:
    have = {trial_key(r) for r in records}
    for f in folders:
        if f.manifest is None:
            continue
        lost = [t for t in f.manifest.trials if t not in have]
        if lost:
            shown = ", ".join(_trial_text(t) for t in lost[:5]) + (" ..." if len(lost) > 5 else "")
            report.problems.append(
                f"{f.path}: shard {f.manifest.shard} has no record of {len(lost)} of its {len(f.manifest.trials)} "
                f"trials ({shown}): interrupted, deselected (-k), or the harness failed before the record; to run "
                f"only those: pytest <the same options> --shard {f.manifest.shard} --resume {f.path}"
            )


def _trial_text(key: TrialKey) -> str:
    """``bugfix x a r2`` (``bugfix x a (mini-swe-agent) r2`` for an agent other than the built-in one)."""
    packet, alias, agent, repeat = key
    return f"{packet} x {alias}{'' if agent == BUILTIN_AGENT else f' ({agent})'} r{repeat}"


def _aliases(folders: Sequence[ShardFolder], records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The run's aliases in the order selected (from the manifests), then any other alias the records have."""
    out: list[str] = []
    for f in folders:
        out += [a for a in (f.manifest.aliases if f.manifest else ()) if a not in out]
    return out + sorted({str(r.get("alias")) for r in records} - set(out))


def _ordered(folders: Sequence[ShardFolder]) -> list[ShardFolder]:
    """Shards by index (unsharded folders last), each keeping the order given."""
    return sorted(folders, key=lambda f: f.manifest.shard.index if f.manifest else 1 << 30)


def merge_folders(
    paths: Sequence[Path],
    out: Path,
    *,
    title: str = "agentbench report",
    allow_missing: bool = False,
    on_problem: Callable[[str], None] | None = None,
) -> MergeReport:
    """Merge the folders into ``out`` (the rules in the module docstring); a refusal is a :class:`UsageError`."""
    if not paths:
        raise UsageError("no folders to merge: give the results folders of the shards, e.g. agentbench merge res/*")
    problems: list[str] = []
    folders = _ordered([_read_folder(Path(p), problems.append) for p in paths])
    _check_out(out, folders)
    report = MergeReport(records=[], aliases=[], problems=problems)
    _check_shards(folders, allow_missing, report)
    from pytest_agentbench.results.redact import Redactor

    report.records = Redactor.from_environment()(_resolve(merge_records(f.records for f in folders), report))
    report.aliases = _aliases(folders, report.records)
    _missing_trials(folders, report.records, report)
    _write(folders, out, title, report)
    if on_problem is not None:
        for problem in report.problems:
            on_problem(problem)
    return report


def _write(folders: Sequence[ShardFolder], out: Path, title: str, report: MergeReport) -> None:
    from pytest_agentbench.reports.html import write_html
    from pytest_agentbench.results.benchmark import default_commit_info, write_benchmark_json

    out.mkdir(parents=True, exist_ok=True)
    report.outputs.append(write_records(report.records, out / RESULTS_FILE))
    benches = [(f, f.benchmark) for f in folders if f.benchmark]
    commits = {str((b.get("commit_info") or {}).get("id")) for _, b in benches}
    if len(commits) > 1:
        report.problems.append(f"the shards ran different commits ({', '.join(sorted(commits))}): compare with care")
    first = benches[0][1] if benches else {}
    report.outputs.append(
        write_benchmark_json(
            report.records,
            out / BENCHMARK_FILE,
            machine_info=first.get("machine_info"),
            commit_info=first.get("commit_info") or default_commit_info(Path.cwd()),
        )
    )
    junit = [p for f in folders for p in f.junit]
    if junit:
        _write_junit(junit, out / JUNIT_FILE, report)
    elif any(f.manifest for f in folders):
        report.notes.append(
            f"no JUnit XML in the shard folders: none merged (run each shard with --junitxml DIR/{JUNIT_FILE})"
        )
    report.outputs.append(write_html(report.records, out / REPORT_FILE, title, aliases=report.aliases))


def _write_junit(files: Sequence[Path], out: Path, report: MergeReport) -> None:
    from pytest_agentbench.scale.junit import merge_shard_junit

    keep = {str(r["run_id"]) for r in report.records if r.get("run_id")}
    try:
        merge_shard_junit(files, out, keep_run_ids=keep, on_problem=report.problems.append)
    except ImportError as exc:
        report.problems.append(f"JUnit files not merged ({', '.join(map(str, files))}): {exc}")
        return
    report.outputs.append(out)

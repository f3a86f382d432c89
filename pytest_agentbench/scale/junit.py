"""The JUnit part of ``agentbench merge``: the shards' files as one suite, retried shards resolved. pytest-free.

``results.junit.merge_junit`` concatenates files (one ``<testsuite>`` per file, every testcase
kept): right for the files of *different* runs. Shards of *one* run should read like the unsharded
run: one suite named ``pytest`` (pytest's own), each test once. A test that appears in several
files (a retried shard) keeps the testcase whose ``agentbench.run_id`` property is the record the
merge kept (:mod:`pytest_agentbench.scale.merge`); without one (an error before the run had a
record, a skip), the testcase of the newest suite (its ``timestamp``), then of the file given last.
Cases are sorted by trial (packet, alias, agent, repeat) as the merged records are; tests that are
not trials follow by class name and name. Needs ``junitparser`` (extra ``pytest-agentbench[junit]``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

from pytest_agentbench.scale.shards import DEFAULT_AGENT

__all__ = ["JUNIT_INSTALL_HINT", "merge_shard_junit"]

JUNIT_INSTALL_HINT = "merging JUnit XML needs junitparser: pip install 'pytest-agentbench[junit]'"


def _junitparser() -> Any:
    try:
        import junitparser
    except ImportError:
        raise ImportError(JUNIT_INSTALL_HINT) from None
    return junitparser


def _properties(case: Any, jp: Any) -> dict[str, str]:
    node = case.child(jp.Properties)
    return {p.name: p.value or "" for p in node} if node is not None else {}


def _order(case: Any, props: dict[str, str]) -> tuple[Any, ...]:
    packet, alias, repeat = (
        props.get("agentbench.packet"),
        props.get("agentbench.alias"),
        props.get("agentbench.repeat"),
    )
    if packet and alias:
        try:
            number = int(repeat or 1)
        except ValueError:
            number = 1
        return (0, packet, alias, props.get("agentbench.agent") or DEFAULT_AGENT, number, case.name or "")
    return (1, case.classname or "", case.name or "", "", 0, "")


def merge_shard_junit(
    files: Sequence[Path],
    out: Path,
    *,
    keep_run_ids: Collection[str],
    on_problem: Callable[[str], None],
) -> int:
    """Write ``files`` as one suite to ``out`` (the rules above); returns the number of testcases.

    A file that cannot be read is reported through ``on_problem`` and left out.
    """
    jp = _junitparser()
    best: dict[tuple[str, str], tuple[tuple[Any, ...], Any, dict[str, str]]] = {}
    stamps: list[str] = []
    hostnames: list[str] = []
    for order, path in enumerate(files):
        try:
            xml = jp.JUnitXml.fromfile(str(path))
        except Exception as exc:  # any parse or IO problem: leave the file out and say why
            on_problem(f"{path}: left out of the JUnit merge: {type(exc).__name__}: {exc}")
            continue
        for suite in xml:
            stamp = suite.timestamp or ""
            stamps += [stamp] if stamp else []
            hostnames += [suite.hostname] if suite.hostname else []
            for case in suite:
                props = _properties(case, jp)
                rank = (props.get("agentbench.run_id", "") in keep_run_ids, stamp, order)
                key = (case.classname or "", case.name or "")
                if key not in best or rank > best[key][0]:
                    best[key] = (rank, case, props)
    suite = jp.TestSuite("pytest")
    if stamps:
        suite.timestamp = min(stamps)  # the run started when its first shard did
    if hostnames:
        suite.hostname = ",".join(dict.fromkeys(hostnames))
    for _, case, _ in sorted(best.values(), key=lambda entry: _order(entry[1], entry[2])):
        suite.append(case)  # not add_testcase: it recounts the suite per case; counted once below
    merged = jp.JUnitXml(name="pytest tests")  # the root pytest writes
    merged.add_testsuite(suite)
    merged.update_statistics()
    out.parent.mkdir(parents=True, exist_ok=True)
    merged.write(str(out))
    return len(best)

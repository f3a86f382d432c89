"""Merge JUnit XML files (CI shards, xdist jobs) and tabulate the ``agentbench.*`` properties per alias.

    rows = merge_junit(["shard1.xml", "shard2.xml"], "merged.xml")
    print(format_alias_table(rows))

Every packet run writes ``agentbench.*`` properties into its ``<testcase>``
(``RunRecord.properties()``: alias, passed, outcome, failure, wall_s, tokens,
...). The per-alias rows come from those; a testcase without them (an
infrastructure error before the run finished, a skip) is counted in
``no_record`` for the alias its test id ends with. A run whose endpoint never
answered (``outcome`` ``infrastructure``: a pytest error with a record) is not
one of the alias's ``runs`` and not in its pass rate: it is counted apart, by
failure class, under ``infrastructure``. Needs ``junitparser``
(extra ``pytest-agentbench[junit]``).
"""

from __future__ import annotations

import statistics
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pytest_agentbench.agents.transcript import INFRASTRUCTURE
from pytest_agentbench.errors import JunitMergeWarning
from pytest_agentbench.results.cells import BUILTIN_AGENT, cell_label

__all__ = ["JunitMergeWarning", "alias_rows", "format_alias_table", "merge_junit"]

_PREFIX = "agentbench."
_NO_RECORD = "(unknown alias)"


def _junitparser() -> Any:
    try:
        import junitparser
    except ImportError:
        raise ImportError("merging JUnit XML needs junitparser: pip install 'pytest-agentbench[junit]'") from None
    return junitparser


def _warn(message: str) -> None:
    warnings.warn(message, JunitMergeWarning, stacklevel=3)


def merge_junit(
    paths: Iterable[Path | str], out: Path | str | None = None, *, on_problem: Callable[[str], None] | None = None
) -> list[dict[str, Any]]:
    """Merge the JUnit files into ``out`` (if given) and return one row per alias (see :func:`alias_rows`).

    An unreadable or malformed file is reported through ``on_problem``
    (default: a :class:`JunitMergeWarning`) and left out; it never stops the merge.
    """
    jp = _junitparser()
    report = on_problem or _warn
    merged = jp.JUnitXml(name="agentbench merged")
    for path in paths:
        try:
            merged += jp.JUnitXml.fromfile(str(path))
        except Exception as exc:  # any parse or IO problem: leave the file out and say why
            report(f"{path}: left out of the merge: {type(exc).__name__}: {exc}")
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        merged.write(str(out))
    return alias_rows(_cases(merged))


def _cases(xml: Any) -> list[tuple[str, dict[str, str], str]]:
    """(test name, agentbench.* properties, status) for every testcase."""
    jp = _junitparser()
    out = []
    for suite in xml:
        for case in suite:
            props: dict[str, str] = {}
            node = case.child(jp.Properties)
            if node is not None:
                for prop in node:
                    if prop.name and prop.name.startswith(_PREFIX):
                        props[prop.name[len(_PREFIX) :]] = prop.value or ""
            status = (
                "error"
                if case.is_error
                else "failed"
                if case.is_failure
                else "skipped"
                if case.is_skipped
                else "passed"
            )
            out.append((case.name or "", props, status))
    return out


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", "n/a") else None
    except ValueError:
        return None


def _alias_of(name: str, known: Sequence[str]) -> str:
    """The alias a test id such as ``test_packet[bugfix-median-local-coder]`` ends with (longest match)."""
    param = name[name.find("[") + 1 : -1] if name.endswith("]") and "[" in name else ""
    for alias in sorted(known, key=len, reverse=True):
        if param == alias or param.endswith(f"-{alias}"):
            return alias
    return _NO_RECORD


def alias_rows(cases: Sequence[tuple[str, dict[str, str], str]]) -> list[dict[str, Any]]:
    """One dict per alias (order of first appearance) from (name, properties, status) triples; where the
    cases name more than one agent (``agentbench.agent``), per agent x alias cell (``results.cells``)."""
    known = [p["alias"] for _, p, _ in cases if p.get("alias")]
    cells = len({p.get("agent") or BUILTIN_AGENT for _, p, _ in cases if p.get("alias")}) > 1
    rows: dict[str, dict[str, Any]] = {}
    walls: dict[str, list[float]] = {}
    for name, props, status in cases:
        alias = props.get("alias") or _alias_of(name, known)
        if cells and props.get("alias"):
            alias = cell_label(props.get("agent") or BUILTIN_AGENT, alias)
        row = rows.setdefault(
            alias,
            {
                "alias": alias,
                "model": "",
                "test_double": False,
                "runs": 0,
                "passed": 0,
                "no_record": 0,
                "infrastructure": Counter(),
                "tests": Counter(),
                "outcomes": Counter(),
                "failures": Counter(),
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "wall_s_mean": None,
                "wall_s_p50": None,
            },
        )
        row["tests"][status] += 1
        if not props.get("alias"):
            row["no_record"] += 1
            continue
        row["model"] = row["model"] or props.get("model", "")
        row["test_double"] = row["test_double"] or props.get("test_double") == "True"
        if props.get("outcome") == INFRASTRUCTURE:  # the endpoint never answered: not counted
            row["infrastructure"][props.get("failure") or "?"] += 1
            continue
        row["runs"] += 1
        row["passed"] += props.get("passed") == "True"
        row["outcomes"][props.get("outcome") or "?"] += 1
        if props.get("failure"):
            row["failures"][props["failure"]] += 1
        row["prompt_tokens"] += int(_float(props.get("prompt_tokens")) or 0)
        row["completion_tokens"] += int(_float(props.get("completion_tokens")) or 0)
        wall = _float(props.get("wall_s"))
        if wall is not None:
            walls.setdefault(alias, []).append(wall)
    for alias, row in rows.items():
        values = walls.get(alias, [])
        row["pass_rate"] = row["passed"] / row["runs"] if row["runs"] else None
        row["wall_s_mean"] = statistics.mean(values) if values else None
        row["wall_s_p50"] = statistics.median(values) if values else None
        for key in ("tests", "outcomes", "failures", "infrastructure"):
            row[key] = dict(sorted(row[key].items()))
    return list(rows.values())


def _counts(counter: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counter.items()) or "-"


def format_alias_table(rows: Sequence[dict[str, Any]]) -> str:
    """A plain-text table, one line per alias: runs, pass rate, outcomes, failure classes, wall time, tokens."""
    if not rows:
        return "no agentbench test cases found"
    header = [
        "alias",
        "runs",
        "pass rate",
        "outcomes",
        "failure classes",
        "wall p50",
        "tokens in/out",
        "infrastructure",
        "no record",
    ]
    body = []
    for r in rows:
        alias = r["alias"] + (" (test double)" if r.get("test_double") else "")
        rate = f"{r['pass_rate']:.0%} ({r['passed']}/{r['runs']})" if r.get("pass_rate") is not None else "n/a"
        wall = f"{r['wall_s_p50']:.2f} s" if r.get("wall_s_p50") is not None else "n/a"
        body.append(
            [
                alias,
                str(r["runs"]),
                rate,
                _counts(r["outcomes"]),
                _counts(r["failures"]),
                wall,
                f"{r['prompt_tokens']:,}/{r['completion_tokens']:,}",
                _counts(r.get("infrastructure") or {}),
                str(r["no_record"]),
            ]
        )
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)

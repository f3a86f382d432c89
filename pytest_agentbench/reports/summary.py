"""The side-by-side comparison of aliases, from run records (``results.record_to_dict``). pytest-free.

    print(format_summary(load_records("results.jsonl")))

One column per alias; rows: runs, isolation (container / bubblewrap / unsafe-local;
a comparison that mixes levels, or has unsafe-local runs, is warned about above the
table), pass rate, outcomes, gates missed, failure classes (of the model call that
ended a run), invalid tool calls, retried model calls, latency, TTFT, throughput,
tokens, cost, break-even. Too many aliases for the width wrap into several tables.

Conventions, also printed under the table:

* Percentiles use **linear interpolation between closest ranks** (numpy's
  default, ``statistics.quantiles(method="inclusive")``): p50 of [1, 2, 3, 4]
  is 2.5.
* Every latency and tok/s figure is **client-side**: wall clock around the
  run or the HTTP call, so it includes network, queueing and prefill.
  tok/s = completion tokens / call wall time. Server-side numbers (vLLM
  ``/metrics``) live in the records' ``server`` field and the HTML report.
* TTFT is measured only on streamed calls; without any it reads
  ``n/a (not streamed)``, never 0.
* Unknown cost prints ``unknown``, never $0; means are over runs whose cost is
  known, and say so when some were not.
* Runs whose endpoint never answered (outcome ``infrastructure``, the rule in
  ``agents.transcript``) are left out of every row and counted apart in an
  ``infrastructure errors`` row: a flaky network must not lower a model's score.
"""

from __future__ import annotations

import math
import statistics
import textwrap
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_agentbench.agents.transcript import BUDGET_OUTCOMES, INFRASTRUCTURE
from pytest_agentbench.capacity.cost import (
    SelfHostedCost,
    break_even_calls_per_hour,
    format_usd,
    parse_cost_spec,
    self_hosted_capacity_calls_per_hour,
)
from pytest_agentbench.errors import ConfigError
from pytest_agentbench.reports.budget import budget_rows
from pytest_agentbench.reports.isolation import isolation_cell, isolation_of, isolation_warnings
from pytest_agentbench.reports.stats import percentile

__all__ = [
    "AliasSummary",
    "format_seconds",
    "format_summary",
    "is_infrastructure",
    "run_category",
    "summarize",
    "summary_rows",
]

Row = tuple[str, list[str]]
NOT_STREAMED = "n/a (not streamed)"
_LABEL_MAX = 34
_CELL_MAX = 22
_GAP = 2


def is_infrastructure(record: Mapping[str, Any]) -> bool:
    """The run's endpoint never answered: not counted for or against the model."""
    return record.get("outcome") == INFRASTRUCTURE


def run_category(record: Mapping[str, Any]) -> str:
    """One word for how a run ended: ``passed``, a model failure class, a budget, ``gates missed``, or
    ``infrastructure`` (the endpoint never answered)."""
    if is_infrastructure(record):
        return INFRASTRUCTURE
    if record.get("passed"):
        return "passed"
    if record.get("failure"):
        return str(record["failure"])
    outcome = str(record.get("outcome"))
    if outcome in BUDGET_OUTCOMES:  # max_turns, agent_timeout, token_budget, safety_timeout
        return outcome
    return "gates missed"


@dataclass
class AliasSummary:
    """Everything the summary and the report show for one alias."""

    alias: str
    model: str = ""
    test_double: bool = False
    runs: int = 0  # counted runs: every field below but ``infrastructure`` is over these
    infrastructure: Counter[str] = field(default_factory=Counter)  # uncounted runs by failure class
    passed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    gates_missed: Counter[str] = field(default_factory=Counter)
    run_wall_s: list[float] = field(default_factory=list)
    call_wall_s: list[float] = field(default_factory=list)
    ttft_s: list[float] = field(default_factory=list)
    tok_per_s: list[float] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)
    completion_tokens: list[int] = field(default_factory=list)
    usage_reported: bool = True
    model_calls: int = 0
    invalid_tool_calls: int = 0
    retried_attempts: int = 0
    costs: list[float | None] = field(default_factory=list)
    cost_kind: str | None = None
    cost_spec: dict[str, Any] | None = None
    isolation: Counter[str] = field(default_factory=Counter)

    @property
    def pass_rate(self) -> float | None:
        return self.passed / self.runs if self.runs else None

    @property
    def known_costs(self) -> list[float]:
        return [c for c in self.costs if c is not None]

    @property
    def cost_per_run(self) -> float | None:
        known = self.known_costs
        return statistics.mean(known) if known else None

    @property
    def cost_per_call(self) -> float | None:
        """Mean $ per model call over the runs whose cost is known."""
        known = [(c, n) for c, n in zip(self.costs, self._calls_per_run, strict=True) if c is not None]
        calls = sum(n for _, n in known)
        return sum(c for c, _ in known) / calls if calls else None

    _calls_per_run: list[int] = field(default_factory=list, repr=False)


def summarize(records: Sequence[Mapping[str, Any]], aliases: Sequence[str] | None = None) -> list[AliasSummary]:
    """Per-alias aggregates, in ``aliases`` order (default: order of first appearance)."""
    by_alias: dict[str, AliasSummary] = {a: AliasSummary(a) for a in aliases or ()}
    for rec in records:
        alias = str(rec.get("alias"))
        s = by_alias.setdefault(alias, AliasSummary(alias))
        _add(s, rec)
    return list(by_alias.values())


def _add(s: AliasSummary, rec: Mapping[str, Any]) -> None:
    client = rec.get("client") or {}
    s.model = s.model or str(rec.get("model") or "")
    s.test_double = s.test_double or bool(rec.get("test_double"))
    if is_infrastructure(rec):
        s.infrastructure[str(rec.get("failure") or "?")] += 1
        return
    s.runs += 1
    s.isolation[isolation_of(rec)] += 1
    s.passed += bool(rec.get("passed"))
    s.outcomes[str(rec.get("outcome"))] += 1
    s.categories[run_category(rec)] += 1
    if rec.get("failure"):
        s.failures[str(rec["failure"])] += 1
    packet = (rec.get("packet") or {}).get("id", "?")
    for g in rec.get("gates") or []:
        if not g.get("passed"):
            s.gates_missed[f"{packet}/{g.get('id')}"] += 1
    if client.get("wall_s") is not None:
        s.run_wall_s.append(float(client["wall_s"]))
    calls = client.get("calls") or []
    for c in calls:
        if c.get("error"):
            continue
        wall = float(c.get("wall_s") or 0.0)
        s.call_wall_s.append(wall)
        if c.get("ttft_s") is not None:
            s.ttft_s.append(float(c["ttft_s"]))
        if c.get("usage_reported", True) and wall > 0 and c.get("completion_tokens"):
            s.tok_per_s.append(c["completion_tokens"] / wall)
    tokens = client.get("tokens") or {}
    s.prompt_tokens.append(int(tokens.get("prompt", 0)))
    s.completion_tokens.append(int(tokens.get("completion", 0)))
    s.usage_reported = s.usage_reported and bool(tokens.get("usage_reported", True))
    s.model_calls += int(rec.get("model_calls") or len(calls))
    s.invalid_tool_calls += int(rec.get("invalid_tool_calls") or 0)
    s.retried_attempts += sum(len(c.get("retries") or ()) for c in calls)
    s._calls_per_run.append(int(rec.get("model_calls") or len(calls)))
    cost = rec.get("cost") or {}
    s.costs.append(cost.get("usd"))
    if cost.get("kind"):
        s.cost_kind = cost["kind"]
        s.cost_spec = cost.get("spec")


# --------------------------------------------------------------------------- formatting


def format_seconds(x: float | None) -> str:
    if x is None:
        return "n/a"
    if x < 1:
        return f"{x * 1000:.0f} ms"
    if x < 10:
        return f"{x:.2f} s"
    if x < 100:
        return f"{x:.1f} s"
    return f"{x:,.0f} s"


def _cost_cell(s: AliasSummary, scale: float = 1.0) -> str:
    known = s.known_costs
    if not known:
        return "unknown"
    text = format_usd(statistics.mean(known) * scale)
    return text if len(known) == s.runs else f"{text} ({len(known)}/{s.runs} known)"


def _rate(value: float) -> str:
    return "never" if math.isinf(value) else f"{value:,.0f}/h"


def _break_even_rows(summaries: Sequence[AliasSummary]) -> list[Row]:
    ref = _reference(summaries)
    hosted: dict[str, SelfHostedCost] = {}
    for s in summaries:
        if s.cost_kind != "self-hosted":
            continue
        try:
            spec = parse_cost_spec(s.cost_spec, f"{s.alias}.cost")
        except ConfigError:
            continue
        if isinstance(spec, SelfHostedCost):
            hosted[s.alias] = spec
    if ref is None or not hosted:
        return []
    per_call, per_run = ref.cost_per_call, ref.cost_per_run
    calls, runs, capacity = [], [], []
    for s in summaries:
        spec = hosted.get(s.alias)
        if spec is None:
            mark = "(reference)" if s is ref else "-"
            calls.append(mark)
            runs.append(mark)
            capacity.append("-")
            continue
        calls.append(_rate(break_even_calls_per_hour(per_call, spec)) if per_call is not None else "unknown")
        runs.append(_rate(break_even_calls_per_hour(per_run, spec)) if per_run is not None else "unknown")
        mean_call = statistics.mean(s.call_wall_s) if s.call_wall_s else 0.0
        capacity.append(_rate(self_hosted_capacity_calls_per_hour(spec, mean_call)) if mean_call > 0 else "n/a")
    return [("break-even calls/h", calls), ("break-even runs/h", runs), ("GPU capacity calls/h", capacity)]


def _reference(summaries: Sequence[AliasSummary]) -> AliasSummary | None:
    """The first commercial alias with a known cost (a real model before a test double): what
    self-hosted aliases break even against."""
    priced = [s for s in summaries if s.cost_kind == "commercial" and s.cost_per_call is not None]
    return next((s for s in priced if not s.test_double), priced[0] if priced else None)


def summary_rows(summaries: Sequence[AliasSummary], records: Sequence[Mapping[str, Any]] = ()) -> list[Row]:
    """(label, one cell per alias) rows; a label starting with two spaces is a sub-row. With ``records``,
    the budget rows too (``reports.budget``)."""
    rows: list[Row] = []

    def row(label: str, fn: Any) -> None:
        rows.append((label, [fn(s) for s in summaries]))

    def section(label: str, keys: Sequence[str], counter: Any, empty: str) -> None:
        if not keys:
            row(label, lambda s: empty)
            return
        rows.append((label, ["" for _ in summaries]))
        for key in keys:
            row(f"  {key}", lambda s, k=key: str(counter(s)[k]) if counter(s)[k] else "-")

    row("runs", lambda s: str(s.runs))
    row("isolation", lambda s: isolation_cell(s.isolation))
    row("pass rate", _pass_rate_cell)
    if any(s.infrastructure for s in summaries):
        row("infrastructure errors", infrastructure_cell)
    section("outcomes", sorted({k for s in summaries for k in s.outcomes}), lambda s: s.outcomes, "-")
    section("gates missed", sorted({k for s in summaries for k in s.gates_missed}), lambda s: s.gates_missed, "none")
    section("failure classes", sorted({k for s in summaries for k in s.failures}), lambda s: s.failures, "none")
    row("invalid tool calls", lambda s: str(s.invalid_tool_calls))
    row("retried model calls", lambda s: str(s.retried_attempts))
    row(
        "latency p50 / p90 (run)",
        lambda s: (
            f"{format_seconds(percentile(s.run_wall_s, 50))} / {format_seconds(percentile(s.run_wall_s, 90))}"
            if s.run_wall_s
            else "n/a"
        ),
    )
    row("model-call latency p50", lambda s: format_seconds(percentile(s.call_wall_s, 50)))
    row("TTFT p50", lambda s: format_seconds(percentile(s.ttft_s, 50)) if s.ttft_s else NOT_STREAMED)
    row("tok/s p50 (client)", lambda s: f"{percentile(s.tok_per_s, 50):,.1f}" if s.tok_per_s else "n/a")
    row(
        "tokens/run in / out",
        lambda s: (
            (
                f"{statistics.mean(s.prompt_tokens):,.0f} / {statistics.mean(s.completion_tokens):,.0f}"
                + ("" if s.usage_reported else " (partial)")
            )
            if s.runs
            else "n/a"
        ),
    )
    rows.extend(budget_rows(records, [s.alias for s in summaries]) if records else [])
    row("$/run", _cost_cell)
    row("$ per 1,000 runs", lambda s: _cost_cell(s, 1000.0))
    rows.extend(_break_even_rows(summaries))
    return rows


def _pass_rate_cell(s: AliasSummary) -> str:
    if s.runs:
        return f"{s.pass_rate:.0%} ({s.passed}/{s.runs})"
    return "n/a (no answer)" if s.infrastructure else "n/a"


def infrastructure_cell(s: AliasSummary) -> str:
    """``3 (connection_error)``: the runs left out because the endpoint never answered, by class."""
    n = sum(s.infrastructure.values())
    if not n:
        return "-"
    return f"{n} ({', '.join(sorted(s.infrastructure))})"


def _header(s: AliasSummary) -> list[str]:
    return [s.alias, s.model if s.model != s.alias else "", "(test double)" if s.test_double else ""]


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(1, width - 3)] + "..."


def _render(summaries: Sequence[AliasSummary], rows: Sequence[Row], label_w: int, widths: list[int]) -> list[str]:
    headers = [_header(s) for s in summaries]
    lines = []
    for i in range(3):
        cells = [_fit(h[i], w).rjust(w) for h, w in zip(headers, widths, strict=True)]
        if i == 0 or any(c.strip() for c in cells):
            lines.append(("" if i else "alias").ljust(label_w) + "".join(" " * _GAP + c for c in cells))
    lines.append("-" * (label_w + sum(w + _GAP for w in widths)))
    for label, cells in rows:
        lines.append(
            _fit(label, label_w).ljust(label_w)
            + "".join(" " * _GAP + _fit(c, w).rjust(w) for c, w in zip(cells, widths, strict=True))
        )
    return [line.rstrip() for line in lines]


def _notes(summaries: Sequence[AliasSummary], width: int) -> list[str]:
    notes = [
        "Percentiles: linear interpolation between closest ranks. Latency, TTFT and tok/s are client-side "
        "(wall clock around the run / each HTTP call, so network, queueing and prefill are included); "
        "tok/s = completion tokens / call wall time.",
        "Cost from the alias's cost: mapping in models.yaml; 'unknown' = no mapping or no usage reported "
        "(never $0). Self-hosted cost = GPU $/h x model-call time / concurrency.",
    ]
    ref = _reference(summaries)
    if ref is not None and any(s.cost_kind == "self-hosted" for s in summaries):
        notes.append(
            f"Break-even against {ref.alias} (the first commercial alias): GPU $/h / its mean $ per "
            "call (per run); above that rate self-hosting is cheaper, if the GPU capacity "
            "(concurrency x 3600 / mean model-call latency) reaches it."
        )
    if any(s.infrastructure for s in summaries):
        notes.append(
            "infrastructure errors: runs whose endpoint never answered (unreachable, auth refused, rate limited "
            "or a server error on every attempt of the first call); they are pytest errors, left out of the pass "
            "rate and every other row, and --resume runs them again."
        )
    if any(s.test_double for s in summaries):
        notes.append(
            "(test double): a scripted server replaying fixed responses, not a model; its numbers "
            "measure the harness only."
        )
    out = []
    for note in notes:
        out.extend(textwrap.wrap(note, width=width, subsequent_indent="  "))
    return out


def format_summary(
    records: Sequence[Mapping[str, Any]],
    width: int = 100,
    *,
    aliases: Sequence[str] | None = None,
    title: str = "agentbench summary",
) -> str:
    """The aliases side by side as plain text at most ``width`` columns wide (several tables if needed)."""
    summaries = summarize(records, aliases)
    if not summaries:
        return f"{title}: no runs recorded"
    rows = summary_rows(summaries, records)
    label_w = min(_LABEL_MAX, max(len("alias"), *(len(label) for label, _ in rows)), max(12, width // 3))
    col_w = _column_widths(summaries, rows, label_w, width)
    n = len(records)
    infra = sum(1 for r in records if is_infrastructure(r))
    apart = f" ({infra} infrastructure error{'s' if infra != 1 else ''}, not counted)" if infra else ""
    lines = [
        f"{title}: {n} run{'s' if n != 1 else ''}{apart}, {len(summaries)} alias{'es' if len(summaries) != 1 else ''}"
    ]
    for warning in isolation_warnings(records):
        lines.extend(textwrap.wrap(warning, width=width, subsequent_indent="  "))
    for chunk in _chunks(col_w, label_w, width):
        lines.append("")
        lines.extend(
            _render(
                [summaries[i] for i in chunk],
                [(label, [cells[i] for i in chunk]) for label, cells in rows],
                label_w,
                [col_w[i] for i in chunk],
            )
        )
    lines.append("")
    lines.extend(_notes(summaries, width))
    return "\n".join(lines)


def _column_widths(summaries: Sequence[AliasSummary], rows: Sequence[Row], label_w: int, width: int) -> list[int]:
    """One width per alias column: its widest header or cell, capped, and never wider than the table."""
    col_w = [
        min(
            _CELL_MAX,
            max(
                len(s.alias),
                len(s.model) if s.model != s.alias else 0,
                13 if s.test_double else 0,
                *(len(cells[i]) for _, cells in rows),
            ),
        )
        for i, s in enumerate(summaries)
    ]
    return [min(w, max(8, width - label_w - _GAP)) for w in col_w]


def _chunks(col_w: Sequence[int], label_w: int, width: int) -> list[list[int]]:
    """The column indexes of each table: as many columns as fit in ``width`` next to the labels."""
    chunks: list[list[int]] = [[]]
    used = label_w
    for i, w in enumerate(col_w):
        if chunks[-1] and used + _GAP + w > width:
            chunks.append([])
            used = label_w
        chunks[-1].append(i)
        used += _GAP + w
    return chunks

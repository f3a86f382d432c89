"""The side-by-side comparison of aliases, from run records (``results.record_to_dict``). pytest-free.

    print(format_summary(load_records("results.jsonl")))

One column per alias (with more than one agent in the records, per agent x alias cell, labelled
``mini-swe-agent @ local-coder``: ``results.cells``; with only the built-in agent, per alias as
before agents could be chosen); rows: runs, isolation (container / bubblewrap / unsafe-local;
a comparison that mixes levels, or has unsafe-local runs, is warned about above the
table), pass rate with its 95 % interval (and, with repeats, pass@N, pass^N and the
flaky packets), outcomes, gates passed per packet (a packet x alias matrix), failure
classes (of the model call that ended a run), invalid tool calls, retried model calls,
latency, TTFT, throughput, tokens, cost ($ per run and per solved run), break-even.
The estimates come from :mod:`.estimates`; the layout from :mod:`.texttable`: names are
wrapped, never cut, four aliases fit 100 columns and more wrap into several blocks.

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
  known, and say so when some were not ("over 7 of 10 runs").
* Runs whose endpoint never answered (outcome ``infrastructure``, the rule in
  ``agents.transcript``) are left out of every row and counted apart in an
  ``infrastructure errors`` row: a flaky network must not lower a model's score.
"""

from __future__ import annotations

import math
import statistics
import textwrap
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
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
from pytest_agentbench.reports.estimates import AliasEstimates, estimate_aliases, is_infrastructure
from pytest_agentbench.reports.intervals import Estimate
from pytest_agentbench.reports.isolation import isolation_cell, isolation_of, isolation_warnings
from pytest_agentbench.reports.stats import percentile
from pytest_agentbench.reports.texttable import NBSP, Row, render_blocks
from pytest_agentbench.results.cells import (
    BUILTIN_AGENT,
    cell_columns,
    column_of,
    label_cells,
    record_agent,
    record_agent_version,
)

__all__ = [
    "CELLS_NOTE",
    "NOT_STREAMED",
    "AliasSummary",
    "Row",
    "columns_text",
    "format_seconds",
    "format_summary",
    "is_infrastructure",
    "run_category",
    "summarize",
    "summary_rows",
]

NOT_STREAMED = "n/a (not streamed)"
#: Said under every comparison of more than one agent.
CELLS_NOTE = (
    "Columns are agent x alias cells (agent @ alias): every agent ran the same packets with the same prompt, "
    "workspace and budgets; a cell's figures are over its own runs only, never pooled across agents."
)


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
    """Everything the summary and the report show for one alias (or agent x alias cell: ``alias`` is then
    the cell's label, ``agent`` and ``model_alias`` its parts)."""

    alias: str
    agent: str = BUILTIN_AGENT
    model_alias: str = ""
    agent_version: str | None = None
    model: str = ""
    test_double: bool = False
    runs: int = 0  # counted runs: every field below but ``infrastructure`` is over these
    infrastructure: Counter[str] = field(default_factory=Counter)  # uncounted runs by failure class
    passed: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    categories: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    gates_missed: Counter[str] = field(default_factory=Counter)
    gates_by_packet: dict[str, list[int]] = field(default_factory=dict)  # packet -> [gates passed, gates run]
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
    estimate: AliasEstimates | None = None  # intervals, pass@k, flaky packets, spend (reports.estimates)

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
    """Per-alias (per-cell) aggregates, in ``aliases`` order (default: order of first appearance)."""
    records = label_cells(records)
    by_alias: dict[str, AliasSummary] = {c: AliasSummary(c, model_alias=c) for c in cell_columns(records, aliases)}
    for rec in records:
        label = column_of(rec)
        s = by_alias.setdefault(label, AliasSummary(label))
        s.agent, s.model_alias = record_agent(rec), str(rec.get("alias"))
        s.agent_version = s.agent_version or record_agent_version(rec)
        _add(s, rec)
    for s, est in zip(by_alias.values(), estimate_aliases(records, list(by_alias)), strict=True):
        s.estimate = est
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
    tally = s.gates_by_packet.setdefault(str(packet), [0, 0])
    for g in rec.get("gates") or []:
        tally[0] += bool(g.get("passed"))
        tally[1] += 1
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
    return text if len(known) == s.runs else f"{text} (over{NBSP}{len(known)}{NBSP}of{NBSP}{s.runs}{NBSP}runs)"


def _interval(est: Estimate, fmt: Callable[[float], str]) -> str:
    """``[2.00 s, 4.00 s]`` (one unbreakable piece); ``-`` with fewer than two values to resample."""
    if est.n < 2 or est.low is None or est.high is None:
        return "-"
    return f"[{fmt(est.low)},{NBSP}{fmt(est.high)}]".replace(" ", NBSP)


def _median_cell(est: Estimate | None, fmt: Callable[[float], str]) -> str:
    """``3,600 [3,100, 4,200]``: the median and its bootstrap interval; ``n/a`` when unknown."""
    if est is None or est.value is None:
        return "n/a"
    interval = _interval(est, fmt)
    return fmt(est.value).replace(" ", NBSP) + ("" if interval == "-" else f" {interval}")


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
    rows.extend(_repeat_rows(summaries))
    if any(s.infrastructure for s in summaries):
        row("infrastructure errors", infrastructure_cell)
    section("outcomes", sorted({k for s in summaries for k in s.outcomes}), lambda s: s.outcomes, "-")
    rows.extend(_gate_matrix(summaries))
    section("failure classes", sorted({k for s in summaries for k in s.failures}), lambda s: s.failures, "none")
    row("invalid tool calls", lambda s: str(s.invalid_tool_calls))
    row("retried model calls", lambda s: str(s.retried_attempts))
    rows.extend(_reset_rows(summaries, records))
    row(
        "latency p50 / p90 (run)",
        lambda s: (
            f"{format_seconds(percentile(s.run_wall_s, 50))} / {format_seconds(percentile(s.run_wall_s, 90))}"
            if s.run_wall_s
            else "n/a"
        ),
    )
    row("  p50 95% interval", lambda s: _interval(s.estimate.latency_s, format_seconds) if s.estimate else "-")
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
    row("  p50 in+out [95% CI]", lambda s: _median_cell(s.estimate and s.estimate.tokens, lambda v: f"{v:,.0f}"))
    rows.extend(budget_rows(records, [s.alias for s in summaries]) if records else [])
    row("$/run", lambda s: s.estimate.spend.per_run_text(NBSP) if s.estimate else "unknown")
    row("  p50 [95% CI]", lambda s: _median_cell(s.estimate and s.estimate.cost_usd, format_usd))
    row("$ per solved run", lambda s: s.estimate.spend.per_solved_text(NBSP) if s.estimate else "unknown")
    row("$ per 1,000 runs", lambda s: _cost_cell(s, 1000.0))
    rows.extend(_break_even_rows(summaries))
    return rows


def _reset_rows(summaries: Sequence[AliasSummary], records: Sequence[Mapping[str, Any]]) -> list[Row]:
    """Runs whose workspace had something undone before the gates (``packets.integrity``): only when any had."""
    reset: Counter[str] = Counter(column_of(r) for r in label_cells(records) if r.get("workspace_reset"))
    if not reset:
        return []
    cells = [f"{reset[s.alias]} run(s)" if reset[s.alias] else "0" for s in summaries]
    return [("reset before gates", cells)]


def _pass_rate_cell(s: AliasSummary) -> str:
    """``67% (2/3) [21, 94]``: the pass rate, its counts and its 95 % Wilson interval."""
    if not s.runs:
        return "n/a (no answer)" if s.infrastructure else "n/a"
    text = f"{s.pass_rate:.0%}{NBSP}({s.passed}/{s.runs})"
    est = s.estimate.pass_at_1 if s.estimate else None
    if est is None or est.low is None or est.high is None:
        return text
    return f"{text} [{est.low * 100:.0f},{NBSP}{est.high * 100:.0f}]"


def _repeat_rows(summaries: Sequence[AliasSummary]) -> list[Row]:
    """With repeats (N > 1 trials of a packet): pass@N, pass^N and the flaky packets, listed."""
    trials = max((s.estimate.trials for s in summaries if s.estimate), default=0)
    if trials < 2:
        return []

    def at(s: AliasSummary, hat: bool) -> str:
        value = s.estimate.at(trials, hat=hat) if s.estimate else None
        return "n/a" if value is None else value.text(NBSP)

    def flaky(s: AliasSummary) -> str:
        if s.estimate is None or not s.estimate.packets:
            return "n/a"
        names = s.estimate.flaky
        head = f"{len(names)}{NBSP}of{NBSP}{len(s.estimate.packets)}"
        return f"{head}: {', '.join(names)}" if names else f"none of {len(s.estimate.packets)}"

    return [
        (f"  pass@{trials}", [at(s, False) for s in summaries]),
        (f"  pass^{trials}", [at(s, True) for s in summaries]),
        ("  flaky packets", [flaky(s) for s in summaries]),
    ]


def _gate_matrix(summaries: Sequence[AliasSummary]) -> list[Row]:
    """One sub-row per packet, one cell per alias: gates passed / gates run, over all its runs."""
    packets = sorted({p for s in summaries for p in s.gates_by_packet})
    if not packets:
        return [("gates passed / run", ["n/a" for _ in summaries])]
    rows: list[Row] = [("gates passed / run", ["" for _ in summaries])]
    for packet in packets:
        cells = []
        for s in summaries:
            passed, total = s.gates_by_packet.get(packet, (0, 0))
            cells.append(f"{passed}/{total}" if total else "-")
        rows.append((f"  {packet}", cells))
    return rows


def infrastructure_cell(s: AliasSummary) -> str:
    """``3 (connection_error)``: the runs left out because the endpoint never answered, by class."""
    n = sum(s.infrastructure.values())
    if not n:
        return "-"
    return f"{n} ({', '.join(sorted(s.infrastructure))})"


def columns_text(summaries: Sequence[AliasSummary]) -> str:
    """``2 aliases``; with several agents ``4 cells (2 agents x 2 aliases)``."""
    n = len(summaries)
    agents = {s.agent for s in summaries}
    if len(agents) < 2:
        return f"{n} alias{'es' if n != 1 else ''}"
    aliases = {s.model_alias for s in summaries}
    plural = "es" if len(aliases) != 1 else ""
    return f"{n} cell{'s' if n != 1 else ''} ({len(agents)} agents x {len(aliases)} alias{plural})"


def _header(s: AliasSummary) -> list[str]:
    model = s.model if s.model not in (s.alias, s.model_alias) else ""
    version = f"agent {s.agent_version}" if s.agent != BUILTIN_AGENT and s.agent_version else ""
    return [s.alias, model, version, "(test double)" if s.test_double else ""]


def _notes(summaries: Sequence[AliasSummary], width: int) -> list[str]:
    notes = [
        "Percentiles: linear interpolation between closest ranks. Latency, TTFT and tok/s are client-side "
        "(wall clock around the run / each HTTP call, so network, queueing and prefill are included); "
        "tok/s = completion tokens / call wall time.",
        "Intervals are 95 %: the pass rate's is Wilson's over runs; medians and $/run are bootstrapped over "
        "runs (seeded: the same records print the same figures; above 500 runs, the large-sample limit).",
        "Cost from the alias's cost: mapping in models.yaml; 'unknown' = no mapping or no usage reported "
        "(never $0). Self-hosted cost = GPU $/h x model-call time / concurrency; commercial = tokens x price, "
        "cached input at its own price. $ per solved run = spend / passed runs, over the runs whose cost is known.",
    ]
    if len({s.agent for s in summaries}) > 1:
        notes.append(CELLS_NOTE)
    trials = max((s.estimate.trials for s in summaries if s.estimate), default=0)
    if trials > 1:
        notes.append(
            f"With {trials} trials per packet: pass@{trials} = the chance that at least one of {trials} trials "
            f"passes, pass^{trials} = that all {trials} do (unbiased estimators, mean over the packets with "
            f"{trials} trials); flaky packets both passed and failed."
        )
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
    """The aliases side by side as plain text at most ``width`` columns wide (several blocks if needed)."""
    records = label_cells(records)
    summaries = summarize(records, aliases)
    if not summaries:
        return f"{title}: no runs recorded"
    rows = summary_rows(summaries, records)
    n = len(records)
    infra = sum(1 for r in records if is_infrastructure(r))
    apart = f" ({infra} infrastructure error{'s' if infra != 1 else ''}, not counted)" if infra else ""
    lines = [f"{title}: {n} run{'s' if n != 1 else ''}{apart}, {columns_text(summaries)}"]
    for warning in isolation_warnings(records):
        lines.extend(textwrap.wrap(warning, width=width, subsequent_indent="  "))
    lines.extend(render_blocks([_header(s) for s in summaries], rows, width))
    lines.append("")
    lines.extend(_notes(summaries, width))
    return "\n".join(lines)

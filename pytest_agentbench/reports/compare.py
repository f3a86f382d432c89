"""The paired comparison of two aliases from run records: pairing, tests, deltas, verdict, flips. pytest-free.

    cmp = compare(load_records("results.jsonl"), "local-coder", "gpt-baseline")
    print(format_comparison(cmp))       # or comparison_to_dict(cmp) for JSON

**Pairing.** The trials of alias A and alias B are paired by (packet, repeat): the r-th trial of a
packet on A with the r-th on B (a record without ``repeat`` is repeat 1). What is left out, and said:

* *unpaired* trials: a (packet, repeat) that only one of the two aliases ran (``-k``, an interrupted
  run, a different ``--repeats``);
* pairs where either side's run is *infrastructure* (the endpoint never answered: nothing judged,
  the rule in ``reports.summary.is_infrastructure``);
* several records of one trial (a ``--resume`` rerun, or result files given twice): the latest by
  ``timestamp`` is used, except that an infrastructure record never replaces one that was judged.

**Statistics** (all from ``reports.paired``): pass/fail by the exact McNemar test on the discordant
pairs (two-sided p-value); the difference in pass rate B - A with Newcombe's paired interval at the
chosen confidence; wall time and tokens per run (medians) and cost per run (mean, over the pairs
whose cost is known on both sides, never $0 for unknown) as B - A by a seeded paired bootstrap;
and the smallest difference the run could detect with 80 % power (``minimum_detectable_difference``,
assuming independent trials: conservative). The verdict follows the p-value at 1 - confidence.

**Per packet**: passes per alias and the discordant pairs (the packets that *flip*).

**Agents.** What is compared is a cell, an agent on an alias (``results.cells``): with only the
built-in agent in the records a cell is its alias, as before agents could be chosen; with several,
``A`` and ``B`` name cells (``"mini-swe-agent @ local-coder"``; a bare alias means its one cell, and
is refused, listing them, where it ran under several agents). Two agents on one alias are two cells:
their trials are paired with each other (the fair comparison of agents on one model), never pooled.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pytest_agentbench.capacity.cost import format_usd
from pytest_agentbench.errors import UsageError
from pytest_agentbench.reports.intervals import BOOTSTRAP_RESAMPLES, Estimate
from pytest_agentbench.reports.paired import (
    PairedCounts,
    mcnemar_exact,
    minimum_detectable_difference,
    paired_bootstrap,
    paired_difference,
)
from pytest_agentbench.reports.stats import median
from pytest_agentbench.reports.summary import format_seconds, is_infrastructure
from pytest_agentbench.results.cells import (
    SEPARATOR,
    agents_of,
    cell_columns,
    column_of,
    label_cells,
    record_repeat,
    resolve_cell,
)

__all__ = [
    "POWER",
    "Comparison",
    "Delta",
    "PacketFlips",
    "Pairing",
    "Trial",
    "aliases_in",
    "compare",
    "comparison_to_dict",
    "delta_text",
    "format_comparison",
    "format_p",
    "format_points",
    "lost_text",
    "pair_trials",
]

#: The power at which "the smallest difference this run could detect" is quoted.
POWER = 0.8

TrialKey = tuple[str, int]  # (packet id, repeat)


@dataclass(frozen=True)
class Trial:
    """What a comparison reads of one judged run."""

    packet: str
    repeat: int
    passed: bool
    wall_s: float | None
    tokens: float | None  # prompt + completion, as the server reported them
    cost_usd: float | None  # None: unknown, never $0
    packet_version: Any = None

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> Trial:
        packet = record.get("packet") or {}
        client = record.get("client") or {}
        tokens = client.get("tokens") or {}
        used = None
        if "prompt" in tokens or "completion" in tokens:
            used = float(tokens.get("prompt") or 0) + float(tokens.get("completion") or 0)
        wall, cost = client.get("wall_s"), (record.get("cost") or {}).get("usd")
        return cls(
            packet=str(packet.get("id")),
            repeat=record_repeat(record),
            passed=bool(record.get("passed")),
            wall_s=None if wall is None else float(wall),
            tokens=used,
            cost_usd=None if cost is None else float(cost),
            packet_version=packet.get("version"),
        )


@dataclass(frozen=True)
class Pairing:
    """The trials of ``alias_a`` and ``alias_b`` paired by (packet, repeat), and what was left out."""

    alias_a: str
    alias_b: str
    pairs: tuple[tuple[Trial, Trial], ...]  # sorted by (packet, repeat)
    unpaired_a: tuple[TrialKey, ...]  # trials only A ran
    unpaired_b: tuple[TrialKey, ...]
    infrastructure: tuple[TrialKey, ...]  # both ran, but one side's endpoint never answered
    superseded: int  # records replaced by a later record of the same trial (a --resume rerun)

    @property
    def lost(self) -> int:
        """Trials or pairs left out of the comparison (unpaired trials count one each)."""
        return len(self.unpaired_a) + len(self.unpaired_b) + len(self.infrastructure)


def _when(record: Mapping[str, Any]) -> datetime:
    try:
        when = datetime.fromisoformat(str(record.get("timestamp")))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _latest(records: Sequence[Mapping[str, Any]], alias: str) -> tuple[dict[TrialKey, Mapping[str, Any]], int]:
    """alias's record per (packet, repeat): the latest by timestamp, a judged run before an infrastructure
    one; and how many records that replaced."""
    chosen: dict[TrialKey, Mapping[str, Any]] = {}
    superseded = 0
    for rec in records:
        if column_of(rec) != alias:
            continue
        key = (str((rec.get("packet") or {}).get("id")), record_repeat(rec))
        old = chosen.get(key)
        if old is None:
            chosen[key] = rec
            continue
        superseded += 1
        rank_new, rank_old = (not is_infrastructure(rec), _when(rec)), (not is_infrastructure(old), _when(old))
        if rank_new >= rank_old:  # ties: the later line in the file
            chosen[key] = rec
    return chosen, superseded


def aliases_in(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """The aliases that have records, in order of first appearance (agent x alias cells where the records
    hold more than one agent: ``results.cells``)."""
    return cell_columns(label_cells([r for r in records if r.get("alias") is not None]))


def pair_trials(records: Sequence[Mapping[str, Any]], alias_a: str, alias_b: str) -> Pairing:
    """Pair A's and B's trials by (packet, repeat); see the module docstring for what is left out."""
    records = label_cells(records)
    a, lost_a = _latest(records, alias_a)
    b, lost_b = _latest(records, alias_b)
    pairs, infra = [], []
    for key in sorted(a.keys() & b.keys()):
        if is_infrastructure(a[key]) or is_infrastructure(b[key]):
            infra.append(key)
        else:
            pairs.append((Trial.of(a[key]), Trial.of(b[key])))
    return Pairing(
        alias_a=alias_a,
        alias_b=alias_b,
        pairs=tuple(pairs),
        unpaired_a=tuple(sorted(a.keys() - b.keys())),
        unpaired_b=tuple(sorted(b.keys() - a.keys())),
        infrastructure=tuple(infra),
        superseded=lost_a + lost_b,
    )


# --------------------------------------------------------------------------- the comparison


@dataclass(frozen=True)
class Delta:
    """B - A of one per-run figure, over the ``n`` pairs where it is known on both sides (of ``pairs``)."""

    name: str
    statistic: str  # "median" | "mean"
    unit: str  # "s" | "tokens" | "usd"
    a: float | None
    b: float | None
    difference: Estimate
    n: int
    pairs: int


@dataclass(frozen=True)
class PacketFlips:
    """One packet's pairs: passes per alias and the discordant pairs (a packet *flips* when there are any)."""

    packet: str
    pairs: int
    passed_a: int
    passed_b: int
    only_a: int
    only_b: int

    @property
    def flips(self) -> int:
        return self.only_a + self.only_b


@dataclass(frozen=True)
class Comparison:
    """Everything ``agentbench compare`` says about B against A (differences are B - A)."""

    pairing: Pairing
    confidence: float
    counts: PairedCounts
    p_value: float
    difference: Estimate  # pass rate, B - A, in [-1, 1]
    deltas: tuple[Delta, ...]
    packets: tuple[PacketFlips, ...]
    detectable: float | None  # the smallest difference detected with POWER at this n; None: not even 1.0
    warnings: tuple[str, ...] = ()

    @property
    def alias_a(self) -> str:
        return self.pairing.alias_a

    @property
    def alias_b(self) -> str:
        return self.pairing.alias_b

    @property
    def n(self) -> int:
        return self.counts.n

    @property
    def significant(self) -> bool:
        """The exact McNemar test rejects "no difference" at ``1 - confidence``."""
        return self.p_value < 1 - self.confidence

    @property
    def verdict(self) -> str:
        """One sentence: who solves more and by how much, or what this run could not tell apart."""
        a, b, d = self.alias_a, self.alias_b, self.difference
        interval = f"{format_points(d.value)} points [{format_points(d.low)}, {format_points(d.high)}]"
        p = format_p(self.p_value)
        if self.significant:
            more = "more" if (d.value or 0) > 0 else "fewer"
            return f"{b} solves {more} than {a}: {interval} ({b} - {a}), {p} (n = {self.n} pairs)"
        said = f"no detectable difference at n = {self.n} ({b} - {a}: {interval}, {p})"
        if d.low is not None and d.high is not None and (d.low > 0 or d.high < 0):
            said += (
                f"; the interval excludes 0 but the exact test does not reject on {self.counts.discordant} "
                "discordant pair(s): too few to tell"
            )
        if self.detectable is None:
            return f"{said}; this run is too small to detect even a 100-point difference with {POWER * 100:.0f} % power"
        return (
            f"{said}; the smallest difference this run could detect is ~{self.detectable * 100:.0f} points "
            f"({POWER * 100:.0f} % power)"
        )


def format_points(x: float | None) -> str:
    """A difference of rates in signed percentage points: ``+22``, ``-8``, ``0``; ``n/a`` when unknown."""
    if x is None:
        return "n/a"
    points = round(x * 100)
    return "0" if points == 0 else f"{points:+d}"


def format_p(p: float) -> str:
    """``p = 0.004``, ``p = 0.48``, ``p < 0.001``."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


@dataclass(frozen=True)
class _Boot:
    confidence: float
    seed: int
    resamples: int


def _delta(name: str, unit: str, pairs: Sequence[tuple[Trial, Trial]], field: str, mean: bool, boot: _Boot) -> Delta:
    known = [(getattr(x, field), getattr(y, field)) for x, y in pairs]
    known = [(x, y) for x, y in known if x is not None and y is not None]
    xs, ys = [x for x, _ in known], [y for _, y in known]
    stat = statistics.fmean if mean else median

    def statistic(values: Sequence[float]) -> float | None:
        return stat(values) if values else None

    est = paired_bootstrap(xs, ys, statistic, confidence=boot.confidence, resamples=boot.resamples, seed=boot.seed)
    return Delta(name, "mean" if mean else "median", unit, statistic(xs), statistic(ys), est, len(known), len(pairs))


def _packet_flips(pairs: Sequence[tuple[Trial, Trial]]) -> tuple[PacketFlips, ...]:
    by_packet: dict[str, list[tuple[bool, bool]]] = {}
    for x, y in pairs:
        by_packet.setdefault(x.packet, []).append((x.passed, y.passed))
    rows = []
    for packet in sorted(by_packet):
        c = PairedCounts.from_pairs(by_packet[packet])
        rows.append(PacketFlips(packet, c.n, c.both + c.only_a, c.both + c.only_b, c.only_a, c.only_b))
    return tuple(rows)


def _check_aliases(records: Sequence[Mapping[str, Any]], alias_a: str, alias_b: str) -> tuple[str, str]:
    """A and B as cells of ``records`` (a bare alias: its one cell); a :class:`UsageError` where one has no runs."""
    known = aliases_in(records)
    cells = len(agents_of(records)) > 1
    what = "cells (agent @ alias)" if cells else "aliases"
    resolved = []
    for alias in (alias_a, alias_b):
        cell = resolve_cell(alias, known)
        if cell not in known:
            there = ", ".join(known) if known else "none (no records)"
            raise UsageError(f"alias {alias!r} has no runs in these results; the {what} there are: {there}")
        resolved.append(cell)
    if resolved[0] == resolved[1]:
        raise UsageError(f"compare needs two different {what}, got {resolved[0]!r} twice")
    return resolved[0], resolved[1]


def _rerun_hint(a: str, b: str) -> str:
    """How to give two cells paired trials: the same packets and repeats for both."""
    agents = [c.split(SEPARATOR, 1)[0] for c in (a, b) if SEPARATOR in c]
    aliases = [c.split(SEPARATOR, 1)[-1] for c in (a, b)]
    models = ",".join(dict.fromkeys(aliases))
    agent = f" --agent={','.join(dict.fromkeys(agents))}" if agents else ""
    return f"pytest --models={models}{agent} --repeats 10"


def _no_pairs(p: Pairing) -> UsageError:
    why = []
    if p.infrastructure:
        why.append(f"{len(p.infrastructure)} shared trial(s) had an infrastructure run (endpoint never answered)")
    if p.unpaired_a or p.unpaired_b:
        why.append(
            f"{p.alias_a} ran {len(p.unpaired_a)} trial(s) {p.alias_b} did not, {p.alias_b} ran "
            f"{len(p.unpaired_b)} {p.alias_a} did not"
        )
    return UsageError(
        f"{p.alias_a} and {p.alias_b} have no paired (packet, repeat) trials to compare ({'; '.join(why)}); "
        f"run both on the same packets and repeats, e.g. {_rerun_hint(p.alias_a, p.alias_b)}"
    )


@lru_cache(maxsize=4096)
def _detectable(n: int, mean: float, alpha: float) -> float | None:
    return minimum_detectable_difference(n, mean, alpha=alpha, power=POWER)


def compare(
    records: Sequence[Mapping[str, Any]],
    alias_a: str,
    alias_b: str,
    *,
    confidence: float = 0.95,
    seed: int = 0,
    resamples: int = BOOTSTRAP_RESAMPLES,
) -> Comparison:
    """B against A over their paired trials (``seed``, ``resamples``: the deltas' bootstrap). Raises
    :class:`UsageError` (naming the alias and the fix) for an alias without records, the same alias twice,
    or no pairs."""
    if not 0 < confidence < 1:
        raise UsageError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence!r}")
    records = label_cells(records)
    alias_a, alias_b = _check_aliases(records, alias_a, alias_b)
    pairing = pair_trials(records, alias_a, alias_b)
    pairs = pairing.pairs
    if not pairs:
        raise _no_pairs(pairing)
    counts = PairedCounts.from_pairs([(x.passed, y.passed) for x, y in pairs])
    assert counts.rate_a is not None and counts.rate_b is not None
    boot = _Boot(confidence, seed, resamples)
    deltas = (
        _delta("wall time per run", "s", pairs, "wall_s", False, boot),
        _delta("tokens per run", "tokens", pairs, "tokens", False, boot),
        _delta("cost per run", "usd", pairs, "cost_usd", True, boot),
    )
    versions = sorted({x.packet for x, y in pairs if x.packet_version != y.packet_version})
    warnings = tuple(
        f"packet {p}: {alias_a} and {alias_b} ran different versions of it; their trials may not be comparable"
        for p in versions
    )
    mean_rate = (counts.rate_a + counts.rate_b) / 2
    return Comparison(
        pairing=pairing,
        confidence=confidence,
        counts=counts,
        p_value=mcnemar_exact(counts.only_a, counts.only_b),
        difference=paired_difference(counts, confidence),
        deltas=deltas,
        packets=_packet_flips(pairs),
        detectable=_detectable(counts.n, mean_rate, 1 - confidence),
        warnings=warnings,
    )


# --------------------------------------------------------------------------- text and JSON


def _value(unit: str, x: float | None, signed: bool = False) -> str:
    if x is None:
        return "n/a" if unit != "usd" else "unknown"
    sign = "+" if signed and x > 0 else "-" if signed and x < 0 else ""
    if unit == "s":
        return sign + format_seconds(abs(x)) if signed else format_seconds(x)
    if unit == "usd":
        return sign + format_usd(abs(x)) if signed else format_usd(x)
    return f"{x:+,.0f}" if signed and x else f"{x:,.0f}"


def delta_text(d: Delta) -> str:
    """``A 12.1 s, B 13.3 s; B - A +1.20 s [+0.40 s, +2.00 s] (40 pairs)``; says when pairs were left out."""
    if d.n == 0:
        return f"unknown: no pair has it for both aliases (0 of {d.pairs} pairs)"
    e = d.difference
    text = (
        f"A {_value(d.unit, d.a)}, B {_value(d.unit, d.b)}; B - A {_value(d.unit, e.value, True)} "
        f"[{_value(d.unit, e.low, True)}, {_value(d.unit, e.high, True)}]"
    )
    known = f"{d.n} pairs" if d.n == d.pairs else f"{d.n} of {d.pairs} pairs: known for both"
    return f"{text} ({known})"


def lost_text(p: Pairing) -> list[str]:
    """Lines on what the pairing left out (nothing when it left nothing out)."""
    lines = []
    for alias, keys, other in ((p.alias_a, p.unpaired_a, p.alias_b), (p.alias_b, p.unpaired_b, p.alias_a)):
        if keys:
            shown = ", ".join(f"{k}-r{r}" for k, r in keys[:6]) + (" ..." if len(keys) > 6 else "")
            lines.append(f"left out: {len(keys)} trial(s) of {alias} that {other} did not run ({shown})")
    if p.infrastructure:
        lines.append(
            f"left out: {len(p.infrastructure)} pair(s) where an endpoint never answered (infrastructure, "
            "nothing judged; --resume runs them again)"
        )
    if p.superseded:
        lines.append(
            f"{p.superseded} record(s) set aside: some trials have several (a --resume rerun, or a file given "
            "twice); the latest judged record of each trial is used"
        )
    return lines


def _packet_table(c: Comparison) -> list[str]:
    a, b = c.alias_a, c.alias_b
    head = ["packet", "pairs", f"{a} passed", f"{b} passed", f"only {a}", f"only {b}"]
    body = [[f.packet, str(f.pairs), str(f.passed_a), str(f.passed_b), str(f.only_a), str(f.only_b)] for f in c.packets]
    widths = [max(len(row[i]) for row in [head, *body]) for i in range(len(head))]
    lines = [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [head, *body]
    ]
    lines.insert(1, "-" * len(lines[0]))
    flipping = sum(1 for f in c.packets if f.flips)
    lines.append(f"{flipping} of {len(c.packets)} packet(s) flip (the two aliases disagree on some trial)")
    return lines


def format_comparison(c: Comparison) -> str:
    """The comparison as plain text: the verdict first, then the numbers behind it and the per-packet table."""
    a, b, k = c.alias_a, c.alias_b, c.counts
    conf = f"{c.confidence * 100:g} %"
    lines = [
        f"paired comparison: A = {a}, B = {b}; {c.n} pairs of (packet, repeat) trials",
        f"verdict: {c.verdict}",
        "",
        f"pass rate          A {k.both + k.only_a}/{c.n}, B {k.both + k.only_b}/{c.n}",
        f"pairs              both passed {k.both}, only A {k.only_a}, only B {k.only_b}, neither {k.neither}",
        f"McNemar (exact)    {format_p(c.p_value)} (two-sided, on the {k.discordant} discordant pairs)",
        f"B - A pass rate    {format_points(c.difference.value)} points [{format_points(c.difference.low)}, "
        f"{format_points(c.difference.high)}] ({conf}, Newcombe paired interval)",
    ]
    for d in c.deltas:
        lines.append(f"{(d.name + ' (' + d.statistic + ')'):<33}  {delta_text(d)}")
    lines.append(f"({conf} intervals of medians / means by a paired bootstrap over the pairs)")
    lines += lost_text(c.pairing) + [f"warning: {w}" for w in c.warnings]
    return "\n".join([*lines, "", *_packet_table(c)])


def _estimate(e: Estimate) -> dict[str, Any]:
    return {"value": e.value, "low": e.low, "high": e.high, "n": e.n, "method": e.method}


def comparison_to_dict(c: Comparison) -> dict[str, Any]:
    """Plain JSON: the verdict, the counts, the test, the intervals, the deltas, the flips, the losses."""
    p, k = c.pairing, c.counts
    return {
        "alias_a": c.alias_a,
        "alias_b": c.alias_b,
        "confidence": c.confidence,
        "pairs": c.n,
        "verdict": c.verdict,
        "significant": c.significant,
        "counts": {"both": k.both, "only_a": k.only_a, "only_b": k.only_b, "neither": k.neither},
        "pass_rate": {"a": k.rate_a, "b": k.rate_b},
        "mcnemar_p": c.p_value,
        "difference": _estimate(c.difference),
        "detectable_difference": c.detectable,
        "deltas": [
            {
                "name": d.name,
                "statistic": d.statistic,
                "unit": d.unit,
                "a": d.a,
                "b": d.b,
                "pairs_known": d.n,
                "difference": _estimate(d.difference),
            }
            for d in c.deltas
        ],
        "packets": [
            {
                "packet": f.packet,
                "pairs": f.pairs,
                "passed_a": f.passed_a,
                "passed_b": f.passed_b,
                "only_a": f.only_a,
                "only_b": f.only_b,
            }
            for f in c.packets
        ],
        "left_out": {
            "unpaired_a": [list(key) for key in p.unpaired_a],
            "unpaired_b": [list(key) for key in p.unpaired_b],
            "infrastructure": [list(key) for key in p.infrastructure],
            "superseded_records": p.superseded,
        },
        "warnings": list(c.warnings),
    }

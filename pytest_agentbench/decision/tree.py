"""The decision tree: eleven ordered rules over the evidence and the team's inputs (``docs/decision.md``).

    decision = decide(collect(read_sources(["results.jsonl"]), inputs), inputs)

The rules, in the order they are applied (each writes one :class:`Step`, also when it does not
apply, so the record shows the whole path):

 1. roles - every alias is commercial or local (:mod:`.evidence`); one that is neither is left out;
 2. data boundary - the branches it admits (:data:`~.inputs.ADMISSIBLE`): a candidate whose every
    branch is out is left out;
 3. screening - a screening disqualifier (a failed row) leaves a candidate out; unscreened is an
    open finding;
 4. solves something - a candidate with no solved run is left out;
 5. SLO capacity - a local candidate whose sweep breaks the SLO at its smallest level is left out;
    the others get the servers the team's load needs (from the knee N, else from the run's latency,
    not SLO-checked; said);
 6. representatives - per role, the candidate with the highest pass rate (ties: lower $ per solved
    run, then the run's order) stands for its role;
 7. what is left - none: blocked; one role: that role;
 8. quality - commercial against local by the significance of their pass-rate difference
    (:mod:`.quality`): the significantly better one wins;
 9. cost - where quality ties: the cheaper at the team's calls/h (break-even = GPU $/h / commercial $
    per call); without the figures it needs, the commercial option (it commits no capacity), said;
10. budget - a choice over ``--budget`` gives way to the other role's option if that fits;
11. branch - local -> local inference; commercial -> cloud agent where the boundary is ``none``,
    else commercial API.

A decision is *accepted*, *provisional* (a figure a taken rule needed was missing: :attr:`Decision.open`
says which and what it did to the branch) or *blocked* (no candidate left). Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pytest_agentbench.capacity.cost import break_even_calls_per_hour, format_usd
from pytest_agentbench.decision.evidence import Candidate, Evidence
from pytest_agentbench.decision.inputs import BRANCHES, TeamInputs, branch_of
from pytest_agentbench.decision.outcome import Costs, Decision, Option, Status, Step
from pytest_agentbench.decision.quality import Quality

__all__ = ["RULES", "decide"]

#: The rules' names, in order (``docs/decision.md`` lists the same).
RULES = (
    "roles",
    "data boundary",
    "screening",
    "solves something",
    "SLO capacity",
    "representatives",
    "what is left",
    "quality",
    "cost",
    "budget",
    "branch",
)


@dataclass
class _State:
    """The tree's working state while the rules run."""

    evidence: Evidence
    inputs: TeamInputs
    left: list[Candidate]
    steps: list[Step] = field(default_factory=list)
    excluded: dict[str, str] = field(default_factory=dict)
    open: list[tuple[str | None, str]] = field(default_factory=list)  # (alias it is about, missing evidence)
    rests_on: list[str] = field(default_factory=list)  # missing evidence a rule on the chosen path needed
    consequences: list[str] = field(default_factory=list)
    servers: dict[str, tuple[int, str]] = field(default_factory=dict)

    def step(self, rule: int, name: str, outcome: str) -> None:
        self.steps.append(Step(rule, name, outcome))

    def drop(self, cand: Candidate, rule: int, why: str) -> None:
        self.excluded[cand.alias] = f"rule {rule}: {why}"
        self.left = [c for c in self.left if c.alias != cand.alias]


def _listing(items: list[str], empty: str = "none") -> str:
    return "; ".join(items) if items else empty


def _rule_roles(s: _State) -> None:
    said = [f"{c.label()} {c.role} ({c.role_from})" for c in s.left]
    for alias, why in s.evidence.unroled.items():
        s.excluded[alias] = f"rule 1: {why}"
        said.append(f"{alias} left out: {why}")
    s.step(1, "roles", _listing(said, "no alias in the results"))


def _rule_boundary(s: _State) -> None:
    admitted = s.inputs.admissible
    out = []
    for c in list(s.left):
        if branch_of(c.role, s.inputs.boundary) not in admitted:
            s.drop(c, 2, f"a {c.role} model sends code out, which a {s.inputs.boundary} data boundary forbids")
            out.append(c.alias)
    said = f"{s.inputs.boundary}: admits {', '.join(admitted)}"
    s.step(2, "data boundary", said + (f"; left out: {', '.join(out)}" if out else ""))


def _rule_screening(s: _State) -> None:
    said = []
    for c in list(s.left):
        if c.screen is None:
            s.open.append(
                (
                    c.alias,
                    f"{c.alias} not screened (no --screen for it): licence, serving support, tool "
                    "format, context policy and failure behaviour unchecked",
                )
            )
            said.append(f"{c.alias} not screened")
            continue
        if c.screen.disqualifiers:
            rows = "; ".join(f"{crit}: {finding}" for crit, finding in c.screen.disqualifiers)
            s.drop(c, 3, f"disqualified by its screening ({rows})")
            said.append(f"{c.alias} disqualified on {', '.join(crit for crit, _ in c.screen.disqualifiers)}")
            continue
        unknown = f", unknown: {', '.join(c.screen.unknown)}" if c.screen.unknown else ""
        said.append(f"{c.alias} not disqualified{unknown}")
    s.step(3, "screening", _listing(said, "no candidate left"))


def _rule_solves(s: _State) -> None:
    said = []
    for c in list(s.left):
        if c.runs == 0:
            s.drop(c, 4, f"no counted run: its endpoint never answered ({c.infrastructure} infrastructure run(s))")
            said.append(f"{c.alias} has no counted run")
        elif c.passes == 0:
            s.drop(c, 4, f"solved none of its {c.runs} run(s): {c.pass_text()}")
            said.append(f"{c.alias} solved none of {c.runs}")
        else:
            said.append(f"{c.alias} {c.pass_text()}")
    s.step(4, "solves something", _listing(said, "no candidate left"))


def _volume(s: _State, local: Candidate | None) -> tuple[float | None, str]:
    """The team's calls/h and where it came from; None (and why) when it cannot be had."""
    inputs = s.inputs
    if inputs.calls_per_hour is not None:
        return inputs.calls_per_hour, "assumed: --calls-per-hour"
    if inputs.developers is None:
        return None, "no --calls-per-hour or --developers: the team's volume is unknown"
    # a rate a sweep measured: this local candidate's first, else any swept candidate's
    swept = [(c.alias, c.sweep) for c in [local, *s.evidence.candidates] if c is not None and c.sweep is not None]
    measured = [(alias, sw) for alias, sw in swept if sw.calls_per_developer_hour]
    if inputs.calls_per_developer_hour is not None:
        rate, where = inputs.calls_per_developer_hour, "assumed: --calls-per-developer-hour"
    elif measured:
        alias, sweep = measured[0]
        rate, where = (
            float(sweep.calls_per_developer_hour or 0),
            f"measured by the sweep of {alias} at N={sweep.smallest}",
        )
    else:
        return None, (
            f"--developers {inputs.developers} without a rate per developer: give --calls-per-developer-hour "
            "or a --sweep of the local candidate"
        )
    return inputs.developers * rate, f"{inputs.developers} developers x {rate:,.0f} calls/h each, {where}"


def _servers(s: _State, c: Candidate, volume: float | None) -> tuple[int, str]:
    sweep, devs = c.sweep, s.inputs.developers
    if sweep is not None and sweep.knee:
        if devs is not None:
            return math.ceil(devs / sweep.knee), f"{devs} developers / the SLO knee N={sweep.knee} ({sweep.source})"
        if volume is not None and sweep.knee_calls_per_hour:
            n = math.ceil(volume / sweep.knee_calls_per_hour)
            return n, f"{volume:,.0f} calls/h / {sweep.knee_calls_per_hour:,.0f} calls/h at the SLO knee N={sweep.knee}"
        return 1, f"one server (the SLO knee N={sweep.knee}; the team's volume is unknown)"
    why = "the sweep gave no SLO" if sweep is not None else "no sweep"
    s.open.append(
        (c.alias, f"{c.alias}: {why}: SLO capacity not measured, so the servers it needs are not SLO-checked")
    )
    cap = c.capacity_calls_per_hour
    if volume is not None and cap:
        return math.ceil(
            volume / cap
        ), f"{volume:,.0f} calls/h / {cap:,.0f} calls/h GPU capacity ({why}: not SLO-checked)"
    return 1, f"one server assumed ({why}, and no capacity figure to count more from)"


def _rule_capacity(s: _State) -> None:
    said = []
    for c in [c for c in s.left if c.role == "local"]:
        if c.sweep is not None and c.sweep.breaks_at_smallest:
            s.drop(c, 5, f"its sweep breaks the SLO ({c.sweep.slo}) already at N={c.sweep.smallest} ({c.sweep.note})")
            said.append(f"{c.alias} breaks the SLO at N={c.sweep.smallest}")
            continue
        volume, _ = _volume(s, c)
        s.servers[c.alias] = _servers(s, c, volume)
        knee = f"SLO knee N={c.sweep.knee} ({c.sweep.slo})" if c.sweep and c.sweep.knee else "not measured"
        said.append(f"{c.alias}: {knee}; {s.servers[c.alias][0]} server(s): {s.servers[c.alias][1]}")
    s.step(5, "SLO capacity", _listing(said, "no local candidate left"))


def _best(cands: list[Candidate]) -> Candidate | None:
    def key(c: Candidate) -> tuple[float, float]:
        solved = c.spend.per_solved.value
        return (-(c.pass_rate.value or 0.0), solved if solved is not None else math.inf)

    return min(cands, key=key) if cands else None  # min is stable: the run's order breaks ties


# --------------------------------------------------------------------------- rules 7-11


def _figures(c: Candidate) -> str:
    """``x solves 100% (5/5) [57, 100] at $0.012 per solved run`` (and the local one's SLO knee, if swept)."""
    knee = f", SLO knee N={c.sweep.knee}" if c.sweep is not None and c.sweep.knee else ""
    return f"{c.label()} solves {c.pass_text()} at {c.spend.per_solved_text()} per solved run{knee}"


def _costs(s: _State, commercial: Candidate | None, local: Candidate | None) -> Costs:
    volume, calls_from = _volume(s, local)
    servers, servers_from = s.servers.get(local.alias, (1, "one server assumed")) if local else (0, "no local option")
    gpu = local.gpu if local is not None else None
    per_call = commercial.cost_per_call if commercial is not None else None
    be = break_even_calls_per_hour(per_call, gpu) if per_call is not None and gpu is not None else None
    return Costs(
        commercial.alias if commercial else None, local.alias if local else None, per_call,
        gpu.hourly_usd if gpu is not None else None, be, volume, calls_from, servers, servers_from,
        s.inputs.hours_per_month,
    )  # fmt: skip


def _excluded_text(s: _State) -> str:
    return "; ".join(f"{alias}: {why.split(': ', 1)[1]}" for alias, why in s.excluded.items()) or "no alias"


def _rule_left(s: _State, commercial: Candidate | None, local: Candidate | None) -> tuple[Candidate | None, str]:
    """Rule 7: with neither role left, blocked; with one, that one (rules 8 and 9 do not apply)."""
    if commercial is None and local is None:
        s.step(7, "what is left", "no candidate left: blocked")
        if s.inputs.boundary == "strict":
            why = "a strict data boundary admits only local inference, and no local candidate qualifies"
        else:
            why = "no candidate qualifies"
        return None, f"No decision can be taken: {why}: {_excluded_text(s)}."
    if commercial is not None and local is not None:
        s.step(7, "what is left", f"both roles: {commercial.alias} (commercial) and {local.alias} (local)")
        return None, ""
    only = commercial or local
    assert only is not None
    s.step(7, "what is left", f"only the {only.role} role: {only.alias}")
    others = f" ({_excluded_text(s)})" if s.excluded else ""
    return only, f"{_figures(only)}, and it is the only candidate left{others}."


def _rule_quality(s: _State, q: Quality, commercial: Candidate, local: Candidate) -> Candidate | None:
    """Rule 8: the significantly better one wins; a tie goes on to rule 9."""
    how = "paired (exact McNemar)" if q.method == "paired" else "unpaired (Newcombe's interval)"
    lost = f"; {q.left_out} trial(s) only one of them ran left out" if q.left_out else ""
    if q.better is None:
        s.step(8, "quality", f"tie: {q.text} [{how}{lost}]")
        return None
    winner = local if q.better == local.alias else commercial
    s.step(8, "quality", f"{winner.alias} is better: {q.text} [{how}{lost}]")
    return winner


def _rule_cost(s: _State, costs: Costs, commercial: Candidate, local: Candidate) -> tuple[Candidate, str]:
    """Rule 9: where quality ties, the cheaper at the team's volume; without the figures, the commercial option."""
    missing = costs.missing()
    if missing:
        s.rests_on.append("cost not compared: " + "; ".join(missing))
        s.step(9, "cost", f"not compared ({'; '.join(missing)}): the commercial option, which commits no capacity")
        return commercial, (
            f"cost could not be compared ({'; '.join(missing)}), so the commercial option, which commits no "
            "capacity, stands until it can"
        )
    cheaper = local if costs.cheaper == "local" else commercial
    assert costs.calls_per_hour is not None and costs.break_even_calls_per_hour is not None
    be = "never" if math.isinf(costs.break_even_calls_per_hour) else f"{costs.break_even_calls_per_hour:,.0f} calls/h"
    said = (
        f"at {costs.calls_per_hour:,.0f} calls/h the {cheaper.role} option is cheaper "
        f"({_usd_h(costs.hourly('commercial'))} commercial against {_usd_h(costs.hourly('local'))} for "
        f"{costs.servers} server(s)): one {local.alias} server breaks even at {be} "
        f"({format_usd(costs.server_hourly_usd)}/h / {format_usd(costs.commercial_call_usd)} per "
        f"{commercial.alias} call)"
    )
    s.step(9, "cost", said)
    return cheaper, said


def _usd_h(x: float | None) -> str:
    return "unknown" if x is None else f"{format_usd(x)}/h"


def _usd_month(x: float | None) -> str:
    return "unknown" if x is None else f"{format_usd(x)}/month"


def _rule_budget(s: _State, costs: Costs, chosen: Candidate, other: Candidate | None) -> tuple[Candidate, str]:
    """Rule 10: a choice over the budget gives way to the other role's option if that one fits."""
    budget = s.inputs.budget_usd_month
    if budget is None:
        s.step(10, "budget", "no --budget: not checked")
        return chosen, ""
    mine = costs.monthly(chosen.role)
    if mine is None:
        why = "; ".join(costs.missing((chosen.role,)))
        s.rests_on.append(f"budget not checked: {chosen.alias}'s monthly bill is unknown ({why})")
        s.step(10, "budget", f"not checked: {chosen.alias}'s monthly bill is unknown ({why})")
        return chosen, ""
    over = f"{chosen.alias} costs {_usd_month(mine)} ({costs.hours_per_month:g} h)"
    if mine <= budget:
        s.step(10, "budget", f"{over}, within the {_usd_month(budget)} budget")
        return chosen, ""
    alt = costs.monthly(other.role) if other is not None else None
    if other is not None and alt is not None and alt <= budget:
        s.step(10, "budget", f"{over}, over the {_usd_month(budget)} budget; {other.alias} fits at {_usd_month(alt)}")
        s.consequences.append(
            f"Taken for the budget: {chosen.alias} was the first choice but costs {_usd_month(mine)}; what "
            f"{other.alias} gives up against it is in rule 8 above."
        )
        return other, (
            f" It gives way to {other.alias} on the budget: {over}, over {_usd_month(budget)}, and "
            f"{other.alias} costs {_usd_month(alt)}."
        )
    s.step(10, "budget", f"{over}, over the {_usd_month(budget)} budget, and no other option fits it")
    s.consequences.append(
        f"Over budget: {over} against {_usd_month(budget)}; the budget must grow or the volume shrink."
    )
    return chosen, ""


def _compare_both(s: _State, costs: Costs, commercial: Candidate, local: Candidate) -> tuple[Candidate, str]:
    """Rules 8 and 9 for a commercial and a local representative."""
    q = s.evidence.qualities[(commercial.alias, local.alias)]
    winner = _rule_quality(s, q, commercial, local)
    if winner is not None:
        loser = local if winner is commercial else commercial
        s.step(9, "cost", "not needed: quality decided")
        be = costs.break_even_calls_per_hour
        said = f" Cost did not decide (one {local.alias} server breaks even at {be:,.0f} calls/h)." if be else ""
        if be is not None and math.isinf(be):
            said = f" Cost did not decide ({local.alias} never breaks even: {commercial.alias}'s calls cost $0)."
        return winner, (
            f"{_figures(winner)}, significantly more than {loser.alias}'s {loser.pass_text()} "
            f"({local.alias} - {commercial.alias}: {q.short()}).{said}"
        )
    cheaper, said = _rule_cost(s, costs, commercial, local)
    alike = (
        f"{commercial.label()} and {local.label()} solve alike: {commercial.pass_text()} against "
        f"{local.pass_text()}, {local.alias} - {commercial.alias} {q.short()}, not significant"
    )
    return cheaper, f"{alike}. {said[0].upper()}{said[1:]}."


def _consequences(s: _State, chosen: Candidate, costs: Costs | None) -> list[str]:
    branch = branch_of(chosen.role, s.inputs.boundary)
    out = []
    bill = costs.monthly(chosen.role) if costs is not None else None
    month = f" ({_usd_month(bill)} over {costs.hours_per_month:g} h)" if costs is not None and bill is not None else ""
    if branch == "local inference":
        gpu = f" at {format_usd(chosen.gpu.hourly_usd)}/h each" if chosen.gpu is not None else " (GPU price unknown)"
        servers = f"{costs.servers} server(s) ({costs.servers_from})" if costs is not None else "its server(s)"
        out.append(f"The team runs {servers} of {chosen.model}{gpu}{month}; no code leaves its machines.")
    elif branch == "commercial API":
        out.append(
            f"Code context goes to {chosen.alias}'s provider with every call, under its data terms; the repository "
            f"and the agent's commands stay on the team's machines{month}."
        )
    else:
        out.append(
            "The repository is handed to the vendor's hosted agent, which runs the loop and the sandbox; the loop "
            f"measured here is this harness's with {chosen.alias}'s model: rerun with the vendor's agent before "
            f"committing{month}."
        )
    if costs is not None and costs.break_even_calls_per_hour is not None and costs.calls_per_hour is not None:
        turn = costs.break_even_calls_per_hour * max(1, costs.servers)
        if not math.isinf(turn):
            out.append(
                f"Revisit when the volume crosses {turn:,.0f} calls/h: the break-even for {costs.servers} server(s)."
            )
    doubles = [c.alias for c in s.evidence.candidates if c.test_double]
    if doubles:
        out.append(
            f"{', '.join(doubles)}: scripted test double(s), not models: their figures measure the harness, so this "
            "record shows the tree at work, not a choice of model."
        )
    return out + s.consequences + [f"Not measured: {text}." for _, text in s.open]


def decide(evidence: Evidence, inputs: TeamInputs) -> Decision:
    """Apply the rules in order; see the module docstring."""
    s = _State(evidence, inputs, list(evidence.candidates))
    for rule in (_rule_roles, _rule_boundary, _rule_screening, _rule_solves, _rule_capacity):
        rule(s)
    commercial = _best([c for c in s.left if c.role == "commercial"])
    local = _best([c for c in s.left if c.role == "local"])
    reps = f"commercial: {commercial.alias if commercial else 'none'}; local: {local.alias if local else 'none'}"
    s.step(6, "representatives", reps + " (the highest pass rate of each role)")
    chosen, rationale = _rule_left(s, commercial, local)
    costs = _costs(s, commercial, local) if commercial or local else None
    if chosen is None and commercial is not None and local is not None and costs is not None:
        chosen, rationale = _compare_both(s, costs, commercial, local)
    elif chosen is not None:
        s.step(8, "quality", "not compared: only one role is left")
        s.step(9, "cost", "not compared: only one role is left")
    if chosen is None:
        for rule in (8, 9, 10, 11):
            s.step(rule, RULES[rule - 1], "not reached: no candidate left")
        return _decision(s, None, rationale, costs, commercial, local)
    other = local if chosen is commercial else commercial
    assert costs is not None
    chosen, extra = _rule_budget(s, costs, chosen, other)
    branch = branch_of(chosen.role, inputs.boundary)
    s.step(11, "branch", f"{chosen.alias} is {chosen.role}: {branch} (data boundary {inputs.boundary})")
    return _decision(s, chosen, rationale + extra, costs, commercial, local)


def _decision(
    s: _State,
    chosen: Candidate | None,
    rationale: str,
    costs: Costs | None,
    commercial: Candidate | None,
    local: Candidate | None,
) -> Decision:
    open_here = [text for alias, text in s.open if chosen is not None and alias == chosen.alias]
    status: Status = "blocked" if chosen is None else "provisional" if (s.rests_on or open_here) else "accepted"
    quality = s.evidence.qualities.get((commercial.alias, local.alias)) if commercial and local else None
    return Decision(
        inputs=s.inputs,
        status=status,
        branch=branch_of(chosen.role, s.inputs.boundary) if chosen else None,
        chosen=chosen,
        rationale=rationale,
        steps=tuple(sorted(s.steps, key=lambda st: st.rule)),
        options=_options(s, commercial, local),
        excluded=dict(s.excluded),
        open=tuple(s.rests_on + open_here),
        quality=quality,
        costs=costs,
        consequences=tuple(_consequences(s, chosen, costs))
        if chosen
        else tuple(f"Not measured: {t}." for _, t in s.open),
    )


def _options(s: _State, commercial: Candidate | None, local: Candidate | None) -> tuple[Option, ...]:
    out = []
    for branch in BRANCHES:
        admissible = branch in s.inputs.admissible
        cand = local if branch == "local inference" else commercial
        if not admissible:
            cand, note = None, f"not admitted by a {s.inputs.boundary} data boundary"
        elif cand is None:
            note = "no candidate of this kind is left (see the rules)"
        elif branch_of(cand.role, s.inputs.boundary) != branch:
            other = branch_of(cand.role, s.inputs.boundary)
            cand, note = (
                None,
                f"admitted; a commercial choice under a {s.inputs.boundary} boundary is taken as the {other}",
            )
        else:
            note = _figures(cand)
        out.append(Option(branch, admissible, cand.alias if cand else None, note))
    return tuple(out)

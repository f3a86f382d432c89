"""The tool-format row: do tool calls come back as tool calls, whole and streamed, alone and under load?

From the probe battery (:mod:`pytest_agentbench.models.probe`) run ``repeat`` times
one call at a time and ``repeat`` times at ``concurrency`` calls at once: every
tool check's calls are native (the server's ``tool_calls``), leaked (in the text,
recovered by the alias's client-side parser), none, undecodable, or an error.

* fail (the disqualifier): a single call was lost (none, undecodable, an error) in
  any run, or the same request comes back in a different shape whole and streamed
  (e.g. native whole, in the content streamed: every streaming client breaks);
* warn: calls leaked into the content (they work only through our recovery parser),
  ``<think>`` text leaked into the answer, or no parallel calls in one turn;
* pass: native tool calls in every run, both ways, alone and under load.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pytest_agentbench.models.probe import Observation, ProbeResult
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.screening.rows import Row

__all__ = ["tool_format_row"]

DISQUALIFIER = "a tool call lost in any run (alone or under load), or different shapes whole and streamed"
_LOST = ("none", "invalid", "error")


def _observations(runs: Sequence[tuple[str, list[ProbeResult]]], check: str) -> list[Observation]:
    return [o for _, results in runs for r in results if r.check == check for o in r.observations]


def _shapes(observations: Sequence[Observation]) -> str:
    counts = Counter(o.shape for o in observations)
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no runs"


def _majority(observations: Sequence[Observation]) -> str | None:
    counts = Counter(o.shape for o in observations)
    return counts.most_common(1)[0][0] if counts else None


def tool_format_row(spec: ModelSpec, runs: Sequence[tuple[str, list[ProbeResult]]]) -> Row:
    """``runs``: (label, probe results) per load level, e.g. ("alone", ...), ("4 at once", ...)."""
    evidence, facts, fails, warns = [], {}, [], []
    for label, results in runs:
        for r in (r for r in results if r.tool_check):
            evidence.append(
                f"{r.check}, {label}: {sum(o.passed for o in r.observations)}/{len(r.observations)} "
                f"passed ({_shapes(r.observations)})"
            )
            facts[f"{r.check} / {label}"] = dict(Counter(o.shape for o in r.observations))
    lost_notes: list[str] = []
    first_lost: Observation | None = None
    for check in ("one tool call", "parallel tool calls"):
        whole, streamed = _observations(runs, check), _observations(runs, f"{check}, streamed")
        for mode, name, observations in (("whole", check, whole), ("streamed", f"{check}, streamed", streamed)):
            lost = [o for o in observations if o.shape in _LOST]
            if lost:
                where = [
                    label
                    for label, results in runs
                    for r in results
                    if r.check == name and any(o.shape in _LOST for o in r.observations)
                ]
                lost_notes.append(
                    f"{check} {mode} {len(lost)}/{len(observations)} ({_shapes(lost)}; {', '.join(where)})"
                )
                first_lost = first_lost or lost[0]
        shape_whole, shape_streamed = _majority(whole), _majority(streamed)
        if shape_whole and shape_streamed and shape_whole != shape_streamed:
            fails.append(f"{check}: {shape_whole} whole but {shape_streamed} streamed (stream / non-stream parity)")
        elif "leaked" in (shape_whole, shape_streamed):
            warns.append(f"{check}: calls leaked into the content, recovered by tool_parser {spec.tool_parser!r}")
    if lost_notes:
        assert first_lost is not None
        fails.insert(0, f"tool calls lost: {'; '.join(lost_notes)}; e.g. {first_lost.detail}")
    all_obs = [o for _, results in runs for r in results if r.tool_check for o in r.observations]
    if any(o.think_leak for o in all_obs):
        warns.append(f"<think> text left in the answer in {sum(o.think_leak for o in all_obs)} call(s)")
    parallel = [
        o
        for o in _observations(runs, "parallel tool calls") + _observations(runs, "parallel tool calls, streamed")
        if o.shape not in _LOST
    ]
    if parallel and not any(o.passed for o in parallel):
        warns.append("no parallel calls: one tool call per turn")
    facts_out: dict[str, Any] = {"runs": facts, "tool_parser": spec.tool_parser}
    if not all_obs:
        return Row("tool format", "unknown", "the probe battery did not run", DISQUALIFIER, tuple(evidence), facts_out)
    if fails:
        return Row("tool format", "fail", "; ".join(fails), DISQUALIFIER, tuple(evidence), facts_out)
    native = sum(o.shape == "native" for o in all_obs)
    summary = f"{native}/{len(all_obs)} calls native, whole and streamed, alone and under load"
    verdict = "warn" if warns else "pass"
    return Row("tool format", verdict, "; ".join([summary, *warns]), DISQUALIFIER, tuple(evidence), facts_out)

"""The regression gate: did the candidate alias drop below the baseline by more than a margin? pytest-free.

(Not a packet's gates, ``packets.gates``: this gate judges a whole run, after it.)

    gate = parse_gate("fp8 vs bf16 max_drop=5")            # syntax: GATE_SYNTAX
    verdict = judge(gate, records)                          # records: results.jsonl's dicts
    verdict.failed, verdict.message

**The rule** (one-sided): pair the trials by (packet, repeat) (``reports.compare``), take the upper
bound of candidate - baseline at the chosen one-sided ``confidence`` (the high end of Newcombe's
two-sided interval at ``2 * confidence - 1``), and fail when it is below ``-max_drop``: the data show,
with that confidence, a drop of more than ``max_drop`` points. Anything else passes - noise
included: with identical aliases the gate fails in about ``1 - confidence`` of runs (far fewer with a
margin), which ``tests/test_gate.py`` checks by simulation.

**Too small to tell.** Passing means "no drop beyond the margin *detected*". A run of n pairs catches
a drop with 80 % power only when it is about ``max_drop + d`` points or more, ``d`` being the
smallest difference its exact McNemar test detects at the one-sided level
(``reports.paired.minimum_detectable_difference``, assuming independent trials: conservative). When
``d`` exceeds ``max(max_drop, 5)`` points the verdict says the run was too small to detect such a
drop (``docs/comparing.md`` has the repeats a drop needs).

A gate that cannot be checked (an alias without judged runs, no pairs) **fails**: a CI gate must not
pass on missing data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_agentbench.errors import UsageError
from pytest_agentbench.reports.compare import POWER, Comparison, compare, format_p, format_points
from pytest_agentbench.reports.intervals import BOOTSTRAP_RESAMPLES

__all__ = ["DEFAULT_CONFIDENCE", "GATE_SYNTAX", "GateSpec", "GateVerdict", "judge", "parse_gate"]

GATE_SYNTAX = "CANDIDATE vs BASELINE [max_drop=POINTS] [confidence=0.95]"
#: One-sided confidence that a failing drop is real, unless the gate names another.
DEFAULT_CONFIDENCE = 0.95
_EXAMPLE = "e.g. 'local-fp8 vs local-bf16 max_drop=5'"


@dataclass(frozen=True)
class GateSpec:
    """``candidate`` must not fall below ``baseline`` by more than ``max_drop`` percentage points."""

    candidate: str
    baseline: str
    max_drop: float = 0.0  # percentage points, 0 <= max_drop < 100
    confidence: float = DEFAULT_CONFIDENCE  # one-sided
    text: str = ""  # as the user wrote it

    def __str__(self) -> str:
        return self.text or f"{self.candidate} vs {self.baseline} max_drop={self.max_drop:g}"


def _number(key: str, raw: str, text: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise UsageError(f"gate {text!r}: {key}={raw!r} is not a number; {_EXAMPLE}")
    return value


def parse_gate(text: str) -> GateSpec:
    """``"CANDIDATE vs BASELINE max_drop=5 confidence=0.9"`` -> a :class:`GateSpec`; a :class:`UsageError`
    naming the gate, what is wrong and the syntax otherwise (the caller adds the option's name)."""
    words = text.split()
    if len(words) < 3 or words[1].lower() != "vs":
        raise UsageError(f"gate {text!r}: expected {GATE_SYNTAX!r}, {_EXAMPLE}")
    candidate, baseline = words[0], words[2]
    if candidate == baseline:
        raise UsageError(f"gate {text!r}: the candidate and the baseline are the same alias; name two aliases")
    settings: dict[str, float] = {}
    for word in words[3:]:
        key, eq, raw = word.partition("=")
        if not eq or key not in ("max_drop", "confidence"):
            raise UsageError(f"gate {text!r}: unknown setting {word!r}; expected {GATE_SYNTAX!r}")
        if key in settings:
            raise UsageError(f"gate {text!r}: {key} given twice")
        if key == "max_drop" and raw.endswith("%"):
            raise UsageError(f"gate {text!r}: max_drop is in percentage points of pass rate: write max_drop={raw[:-1]}")
        settings[key] = _number(key, raw, text)
    max_drop = settings.get("max_drop", 0.0)
    confidence = settings.get("confidence", DEFAULT_CONFIDENCE)
    if not 0 <= max_drop < 100:
        raise UsageError(f"gate {text!r}: max_drop must be percentage points in [0, 100), got {max_drop:g}")
    if not 0.5 < confidence < 1:
        raise UsageError(f"gate {text!r}: confidence must be between 0.5 and 1 (one-sided, e.g. 0.95)")
    return GateSpec(candidate, baseline, max_drop, confidence, " ".join(words))


@dataclass(frozen=True)
class GateVerdict:
    """What one gate decided about a run, and the one-line message that says it."""

    gate: GateSpec
    failed: bool
    message: str
    comparison: Comparison | None = None  # None: the gate could not be checked
    upper: float | None = None  # one-sided upper bound of candidate - baseline, in [-1, 1]
    detectable_drop: float | None = None  # the drop caught with 80 % power at this n; None: not even 100 points
    too_small: bool = False


def _size_note(gate: GateSpec, cmp: Comparison) -> tuple[float | None, bool, str]:
    """(the drop caught with POWER, whether the run was too small for the margin, the sentence saying so).

    ``cmp`` ran at confidence 2c - 1, so its detectable difference is the one at the one-sided test's level."""
    k = cmp.counts
    d = cmp.detectable
    caught = None if d is None else min(1.0, gate.max_drop / 100 + d)
    power = f"{POWER * 100:.0f} % power"
    if d is not None and caught is not None and d * 100 <= max(gate.max_drop, 5.0):
        return caught, False, f"; n = {k.n} pairs catch a drop of ~{caught * 100:.0f} points with {power}"
    size = f"only drops of ~{caught * 100:.0f} points or more" if caught is not None else "not even a 100-point drop"
    return (
        caught,
        True,
        f"; but the run was too small to detect such a drop: n = {k.n} pairs catch {size} with {power} "
        "(docs/comparing.md: the repeats a drop needs)",
    )


def judge(gate: GateSpec, records: Sequence[Mapping[str, Any]], *, resamples: int = BOOTSTRAP_RESAMPLES) -> GateVerdict:
    """The gate's decision over ``records`` (the rule: the module docstring); ``resamples``: the bootstrap
    of the comparison's deltas, which the decision does not use."""
    name = f"agentbench gate '{gate}'"
    try:
        cmp = compare(records, gate.baseline, gate.candidate, confidence=2 * gate.confidence - 1, resamples=resamples)
    except UsageError as exc:
        return GateVerdict(gate, True, f"{name}: FAILED: could not be checked: {exc}")
    bound = cmp.difference.high  # the two-sided interval at 2c - 1: its high end is the one-sided bound
    assert bound is not None and cmp.difference.value is not None
    conf = f"{gate.confidence * 100:g} % one-sided"
    c, b = gate.candidate, gate.baseline
    observed = (
        f"{c} - {b} = {format_points(cmp.difference.value)} points, upper bound {format_points(bound)} at {conf}; "
        f"n = {cmp.n} pairs, {format_p(cmp.p_value)}"
    )
    lost = (
        f"; {cmp.pairing.lost} trial(s) or pair(s) left out (agentbench compare lists them)" if cmp.pairing.lost else ""
    )
    if bound < -gate.max_drop / 100:
        message = f"{name}: FAILED: {c} is below {b} by more than {gate.max_drop:g} points ({observed}){lost}"
        return GateVerdict(gate, True, message, cmp, bound)
    caught, too_small, size = _size_note(gate, cmp)
    message = f"{name}: passed: no drop beyond {gate.max_drop:g} points detected ({observed}){size}{lost}"
    return GateVerdict(gate, False, message, cmp, bound, caught, too_small)

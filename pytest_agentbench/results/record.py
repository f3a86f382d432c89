"""The run record: one finished trial (packet x alias x agent), its JUnit properties and its JSON form. pytest-free.

A :class:`RunRecord` holds the packet, the alias's spec, the agent's result,
the gate results, the sandbox's description and the wall time of one run;
:meth:`RunRecord.properties` flattens it into the ``agentbench.*`` JUnit
properties a packet test sets, :func:`new_run_id` names a run, and
:func:`record_to_dict` turns it into plain JSON, schema version
:data:`SCHEMA_VERSION` (secrets redacted, see :mod:`pytest_agentbench.results.redact`)::

    {"schema_version": 1, "run_id": "3f2a...", "timestamp": "2026-...+00:00", "started_at": "...",
     "packet": {"id": "bugfix-median", "kind": "bug-fix", "version": 1},
     "alias": "local-coder", "model": "...", "test_double": false,
     "agent": {"name": "builtin", "version": "0.1.0"},
     "repeat": 1, "sampling": {"temperature": 0.0, "seed": 7},
     "outcome": "finished", "failure": null, "failures_by_class": {}, "error": "", "passed": true,
     "counted": true,
     "gates": [{"id", "guard", "passed", "exit", "expected", "timed_out", "duration_s", ...}],
     "turns": 5, "model_calls": 5, "invalid_tool_calls": 0,
     "budget": {"mode": "tokens", "max_turns": 30, "max_total_tokens": 200000, "max_total_tokens_from": "packet",
                "timeout_s": 600.0, "safety_timeout_s": 6000.0, "ended_by": null, "tokens_used": 4480,
                "over_by": 0, "enforced": true, "note": ""},
     "client": {"wall_s": 12.1, "agent_wall_s": 9.8, "model_wall_s": 7.2,
                "calls": [{"index": 0, "wall_s": 1.2, "ttft_s": null, "prompt_tokens": 812, ...}],
                "tokens": {"prompt": 4100, "completion": 380, "cached": 0, "usage_reported": true}},
     "server": null,
     "cost": {"usd": 0.0180, "kind": "commercial", "spec": {...}, "describe": "...", "basis": "..."},
     "sandbox": {"kind": "local", "isolation": "bubblewrap", "details": {...}},
     "versions": {"agentbench": "0.1.0", "python": "3.11.9", "agent": {...}, "packet": {...},
                  "sandbox": {...}, "server": {...}},
     "patch": {"diff": "diff --git a/stats/core.py b/stats/core.py\n...", "bytes": 412, "truncated": false,
               "files": [{"path": "stats/core.py", "status": "modified", "added": 2, "deleted": 0,
                          "binary": false}],
               "files_total": 1, "binary": [], "skipped": [], "skipped_total": 0, "sha256": "...",
               "base_tree": "...", "whole": null, "note": "", "warnings": [], "error": null, "took_s": 0.2},
     "trajectory": [{"index": 0, "started_s": 0.0, "budget_left": {...}, "tool_calls": [...], ...}],
     "workspace_reset": [{"path": "pytest.py", "action": "removed", "why": "would be imported instead of ..."}],
     "worker": "gw0", "nodeid": null, "transcript": "..."}

``patch`` is what the agent changed: ``git diff`` of the workspace when the agent stopped, before
any hidden gate file was copied in, against the packet's workspace as given (how it is taken from a
hostile workspace: :mod:`pytest_agentbench.sandbox.patch`). New and deleted files are in it, binary
files are marked (``Binary files a/x and b/x differ``) and listed in ``binary``; files git was not
given (over 8 MiB, unreadable) are in ``skipped`` with why. ``bytes`` is the whole diff's size;
``truncated: true`` means ``diff`` is its head, cut after the last whole file that fits in 256 KiB,
and ``whole`` names the file next to ``results.jsonl`` that holds all of it (``null``: not kept;
``note`` says so and why). ``error`` (with an empty diff) says why no patch could be taken. A run
whose endpoint never answered has ``patch: null``; so do records written before patches existed.

``trajectory`` is one entry per model call, index-aligned with ``client.calls`` (which holds the
call's numbers): its text, tool calls with their results as the model saw them, retries, errors
and the budget left when it began, within a fixed size (cuts are marked in place; see
:mod:`pytest_agentbench.results.trajectory`). ``versions`` says what produced the run: the server
(vLLM version, model path and fingerprint, its arguments), the sandbox image or bubblewrap
version, the agent and the packet's content hash (see :mod:`pytest_agentbench.results.provenance`).

``agent`` names the agent that ran the trial: its registry name (``--agent``: ``builtin`` for the
harness's own loop, ``mini-swe-agent``, ...) and its pinned version (the package's own for
``builtin``); ``versions.agent`` says the same (with the loop's system-prompt hash for ``builtin``).
Records written before agents could be chosen have no ``agent``: readers take them as ``builtin``
(:mod:`pytest_agentbench.results.cells`, which also owns the trial key (packet, alias, agent, repeat)).

``repeat`` is the trial's number (1-based) among ``--repeats N``; ``sampling`` holds the sampling
settings the alias sends: ``temperature`` (``null``: none sent, the server's default) and ``seed``
only where the alias has one in ``extra_body``. Records written before repeats existed have no
``repeat``: readers take them as repeat 1.

``replay`` (only with ``--agentbench-keep-requests``) holds every model call's messages as sent, their
tool schemas, ``max_tokens``, start and end times and usage, so ``agentbench replay`` can send them again
(format and cap: ``capacity.trace``); absent otherwise.

``phases`` (only for a packet with ``phases:``; absent otherwise) has one entry per phase that ran, in
order (a run stopped early lists fewer: ``agents.phases``)::

    "phases": [{"id": "plan", "outcome": "finished", "turns": 3, "model_calls": 3,
                "tokens": {"prompt": 2100, "completion": 180, "cached": 0, "usage_reported": true},
                "wall_s": 4.2, "ended_by": null, "max_turns": 8, "tools": ["read_file", "write_file", ...]}, ...]

Their turns and tokens sum to the record's ``turns`` and ``client.tokens``; each entry of ``client.calls``
and ``trajectory`` then names its ``phase``, and ``budget`` is the run's (tokens and wall clock over all
phases, ``max_turns`` the phases' summed).

``workspace_reset`` lists what was undone in the workspace before the gates ran (a planted
``conftest.py``, a module shadowing pytest ...; the rules: ``packets.integrity``); empty when nothing was.

``budget`` says what the run was allowed and which budget ended it (``agents.budget``): ``mode`` is
``wall`` (the wall clock binds: ``agent_timeout``) or ``tokens`` (turns and tokens bind, the wall clock
is a safety net at ``safety_timeout_s``: ``safety_timeout``); ``ended_by`` is ``turns``, ``tokens``,
``wall``, ``safety_timeout`` or ``null`` (the agent ended the run itself, or a model call failed);
``tokens_used`` is prompt + completion over the run as the server reported them (``null``: some call
reported no usage); ``over_by`` the tokens past ``max_total_tokens`` (the last call's prompt can take a
run over; ``null``: no token budget, or unknown); ``enforced: false`` with a ``note`` when there was a
token budget the server's usage could not enforce; ``max_total_tokens_from`` is ``packet``, ``option``
(``--max-total-tokens``), ``default`` (tokens mode, none given) or ``null``. Records written before
budgets existed have no ``budget``.
The outcomes ``token_budget`` and ``safety_timeout`` are budgets, like ``max_turns`` and ``agent_timeout``.

``outcome`` is ``"infrastructure"`` (with ``counted: false``, ``passed: false``,
no gates, and the endpoint under ``extra.endpoint``) when the alias's endpoint
never answered the run (rule: ``agents.transcript.NO_ANSWER_FAILURES``): reports
leave it out of pass rates and show it apart, and ``--resume`` runs it again.

Where numbers come from: everything under ``client`` is measured by the harness
(wall clocks around the run and around each HTTP call; token counts as the
responses' ``usage`` reported them, summed here). ``server`` holds what the
server itself exported (vLLM ``/metrics`` before/after diffs), copied from
``record.extra["server_metrics"]`` when a scrape was done, else ``null``.
A ``ttft_s`` of ``null`` means *not measured* (a non-streaming call), never 0;
a cost of ``null`` means *unknown* (no ``cost:`` mapping, or no usage reported),
never $0.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pytest_agentbench.agents.config import AgentConfig
from pytest_agentbench.agents.transcript import AgentResult, clip
from pytest_agentbench.capacity.cost import usage_cost_usd
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.packets.gates import GateResult
from pytest_agentbench.packets.schema import Packet
from pytest_agentbench.reports.stats import median
from pytest_agentbench.results.cells import BUILTIN_AGENT
from pytest_agentbench.results.jsonsafe import json_safe
from pytest_agentbench.results.provenance import agentbench_version, run_versions
from pytest_agentbench.results.redact import Redactor
from pytest_agentbench.results.trajectory import trajectory as trajectory_of
from pytest_agentbench.sandbox.base import SandboxInfo
from pytest_agentbench.sandbox.patch import Patch

__all__ = [
    "SCHEMA_VERSION",
    "TRANSCRIPT_CHARS",
    "RunRecord",
    "new_run_id",
    "record_to_dict",
    "run_cost",
    "sampling_settings",
]

SCHEMA_VERSION = 1
#: Characters of transcript kept per record (head and tail, the cut is marked).
TRANSCRIPT_CHARS = 20_000
_OUTPUT_TAIL_CHARS = 2_000


@dataclass
class RunRecord:
    """One finished trial: what the agent did, what the gates said, where it ran and how long it took."""

    run_id: str
    packet: Packet
    spec: ModelSpec
    agent: AgentResult
    gates: list[GateResult]
    sandbox: SandboxInfo
    wall_s: float
    extra: dict[str, Any] = field(default_factory=dict)
    repeat: int = 1  # which of the --repeats trials of this (packet, alias) this is, 1-based
    patch: Patch | None = None  # what the agent changed (None: not taken, e.g. an infrastructure run)
    agent_config: AgentConfig | None = None  # the budgets the agent ran under
    provenance: dict[str, Any] = field(default_factory=dict)  # the endpoint's (results.provenance), per session
    agent_name: str = BUILTIN_AGENT  # the agent that ran it (--agent): its registry name
    agent_version: str = field(default_factory=agentbench_version)  # its pinned version (builtin: the package's)

    @property
    def passed(self) -> bool:
        """Every gate held; never for an ``infrastructure`` run (no gates ran: nothing to judge)."""
        return self.agent.counted and all(g.passed for g in self.gates)

    def properties(self) -> list[tuple[str, str | int | float | bool]]:
        """JSON-primitive ``agentbench.*`` properties for JUnit ``<properties>``."""
        usage = self.agent.usage
        props: list[tuple[str, str | int | float | bool]] = [
            ("agentbench.run_id", self.run_id),
            ("agentbench.packet", self.packet.id),
            ("agentbench.kind", self.packet.kind),
            ("agentbench.alias", self.spec.alias),
            ("agentbench.model", self.spec.model),
            ("agentbench.repeat", self.repeat),
            ("agentbench.agent", self.agent_name),
            ("agentbench.agent_version", self.agent_version),
            ("agentbench.test_double", self.spec.test_double),
            ("agentbench.outcome", self.agent.outcome),
            ("agentbench.failure", self.agent.failure or ""),
            ("agentbench.passed", self.passed),
            ("agentbench.gates_passed", sum(g.passed for g in self.gates)),
            ("agentbench.gates_total", len(self.gates)),
            ("agentbench.gates_failed", ",".join(g.id for g in self.gates if not g.passed)),
            ("agentbench.turns", len(self.agent.turns)),
            ("agentbench.wall_s", round(self.wall_s, 4)),
            ("agentbench.agent_wall_s", round(self.agent.wall_s, 4)),
            ("agentbench.prompt_tokens", usage.prompt_tokens),
            ("agentbench.completion_tokens", usage.completion_tokens),
            ("agentbench.cached_tokens", usage.cached_tokens),
            ("agentbench.usage_reported", usage.reported),
            ("agentbench.failures", ",".join(f"{k}:{v}" for k, v in sorted(self.agent.failures_by_class().items()))),
            ("agentbench.invalid_tool_calls", self.agent.invalid_tool_calls),
            ("agentbench.ttft_p50_s", _median([t.ttft_s for t in self.agent.turns if t.ttft_s is not None])),
            ("agentbench.sandbox", self.sandbox.kind),
            ("agentbench.isolation", self.sandbox.isolation),
            *_budget_properties(self.agent),
        ]
        return props


def _budget_properties(agent: AgentResult) -> list[tuple[str, str | int | float | bool]]:
    """``agentbench.ended_by`` (which budget ended the run, "" if none), ``total_tokens`` ("n/a": unknown)."""
    budget = agent.budget
    usage = agent.usage
    total = budget.tokens_used if budget is not None else usage.prompt_tokens + usage.completion_tokens
    if total is None or (budget is None and not usage.reported):
        total = "n/a"
    return [
        ("agentbench.budget", budget.mode if budget is not None else ""),
        ("agentbench.ended_by", (budget.ended_by if budget is not None else None) or ""),
        ("agentbench.total_tokens", total),
        ("agentbench.budget_enforced", budget.enforced if budget is not None else True),
    ]


def _median(values: list[float]) -> float | str:
    """The median, or "n/a" where nothing was measured (e.g. TTFT without streaming)."""
    p50 = median(values)
    return "n/a" if p50 is None else round(p50, 6)


def new_run_id() -> str:
    """A fresh run id: 12 hex digits of a random UUID."""
    return uuid.uuid4().hex[:12]


# --------------------------------------------------------------------------- the JSON record


def record_to_dict(
    record: RunRecord,
    *,
    transcript: bool = True,
    trajectory: bool = True,
    transcript_chars: int = TRANSCRIPT_CHARS,
    finished_at: datetime | None = None,
    redactor: Redactor | None = None,
) -> dict[str, Any]:
    """One JSON-serialisable record for a finished run (see the module docstring for the schema).

    Every string in it passes through ``redactor`` (the session's); without one, a redactor built
    from this alias's ``api_key_env`` and the secret-looking environment variables.
    """
    agent, spec = record.agent, record.spec
    finished = finished_at or datetime.now(UTC)
    extra = record.extra or {}
    out: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": record.run_id,
        "timestamp": _iso(finished),
        "started_at": _iso(finished - timedelta(seconds=max(0.0, record.wall_s))),
        "packet": {"id": record.packet.id, "kind": record.packet.kind, "version": record.packet.version},
        "alias": spec.alias,
        "model": spec.model,
        "test_double": bool(spec.test_double),
        "agent": {"name": record.agent_name, "version": record.agent_version},
        "repeat": record.repeat,
        "sampling": sampling_settings(spec),
        "outcome": agent.outcome,
        "failure": agent.failure,
        "failures_by_class": _failures_by_class(agent),
        "error": clip(agent.error or "", _OUTPUT_TAIL_CHARS),
        "passed": record.passed,
        "counted": agent.counted,
        "gates": [_gate_dict(g) for g in record.gates],
        "turns": len(agent.turns),
        "model_calls": agent.model_calls,
        "invalid_tool_calls": agent.invalid_tool_calls,
        "budget": agent.budget.to_dict() if agent.budget is not None else None,
        "client": _client_dict(record),
        "server": _server_dict(extra.get("server_metrics")),
        "cost": run_cost(record),
        "sandbox": _sandbox_dict(record.sandbox),
        "versions": run_versions(record),
        "patch": record.patch.to_dict() if record.patch is not None else None,
        "worker": extra.get("worker") or os.environ.get("PYTEST_XDIST_WORKER"),
        "nodeid": extra.get("nodeid"),
        "workspace_reset": [dict(r) for r in extra.get("workspace_reset") or []],
        "extra": _extra_dict(extra),
    }
    out |= _optional_parts(record, trajectory, transcript, transcript_chars)
    if redactor is None:
        redactor = Redactor.from_environment([spec])
    return redactor(json_safe(out))


def _optional_parts(record: RunRecord, trajectory: bool, transcript: bool, transcript_chars: int) -> dict[str, Any]:
    """The record's parts that are there only when asked for, or only for some runs."""
    agent, extra, out = record.agent, record.extra or {}, {}
    if agent.phases:  # a packet with phases only
        out["phases"] = [p.to_dict() for p in agent.phases]
    if trajectory:
        out["trajectory"] = trajectory_of(agent, record.agent_config)
    if transcript:
        out["transcript"] = clip(agent.transcript(), transcript_chars)
    if isinstance(extra.get("replay"), Mapping):  # --agentbench-keep-requests: capacity.trace's format
        out["replay"] = extra["replay"]
    return out


def sampling_settings(spec: ModelSpec) -> dict[str, Any]:
    """What the alias sends that decides sampling: ``temperature`` (None: none sent), ``seed`` if it has one."""
    out: dict[str, Any] = {"temperature": spec.temperature}
    seed = (spec.extra_body or {}).get("seed")
    if seed is not None:
        out["seed"] = seed
    return out


def run_cost(record: RunRecord) -> dict[str, Any]:
    """The run's cost from its alias's ``cost:`` mapping; ``usd`` is ``None`` when unknown."""
    spec, agent = record.spec, record.agent
    raw = dict(spec.cost_raw)
    model_s = sum(t.wall_s for t in agent.turns)
    out: dict[str, Any] = {"usd": None, "kind": None, "spec": raw or None, "describe": None, "basis": None}
    cost_spec = spec.cost
    if cost_spec is None:
        out["basis"] = "no cost: mapping for this alias (unknown, not $0)"
        return out
    out["kind"] = cost_spec.kind
    out["describe"] = cost_spec.describe()
    if cost_spec.kind == "commercial":
        out["basis"] = (
            "tokens reported by the server x price" if agent.usage.reported else "unknown: the server reported no usage"
        )
    else:
        out["basis"] = f"GPU time: {model_s:.3f} s of model calls / concurrency"
    try:
        out["usd"] = usage_cost_usd(cost_spec, agent.usage, latency_s=model_s)
    except ValueError as exc:  # impossible counts from a server: unknown, and say why
        out["error"] = str(exc)
    return out


def _client_dict(record: RunRecord) -> dict[str, Any]:
    """What the harness measured: wall clocks, one entry per model call, summed token counts."""
    agent = record.agent
    usage = agent.usage
    return {
        "wall_s": _round(record.wall_s),
        "agent_wall_s": _round(agent.wall_s),
        "model_wall_s": _round(sum(t.wall_s for t in agent.turns)),
        "calls": [_call_dict(t) for t in agent.turns],
        "tokens": {
            "prompt": usage.prompt_tokens,
            "completion": usage.completion_tokens,
            "cached": usage.cached_tokens,
            "usage_reported": usage.reported,
        },
    }


def _sandbox_dict(info: SandboxInfo) -> dict[str, Any]:
    return {
        "kind": info.kind,
        "isolation": info.isolation,
        "details": {str(k): str(v) for k, v in (info.details or {}).items()},
    }


_OWN_FIELDS = ("server_metrics", "worker", "nodeid", "workspace_reset", "replay")


def _extra_dict(extra: Mapping[str, Any]) -> dict[str, Any]:
    """The primitive ``record.extra`` entries that have no field of their own."""
    return {str(k): v for k, v in extra.items() if k not in _OWN_FIELDS and _is_primitive(v)}


def _gate_dict(g: Any) -> dict[str, Any]:
    out = {
        "id": g.id,
        "guard": g.guard,
        "passed": g.passed,
        "exit": g.exit_code,
        "expected": g.expect_exit,
        "timed_out": g.timed_out,
        "duration_s": _round(g.duration_s),
        "command": g.command,
    }
    if g.error:
        out["error"] = g.error
    if not g.passed and g.output:
        out["output_tail"] = clip(g.tail(), _OUTPUT_TAIL_CHARS)
    return out


def _call_dict(t: Any) -> dict[str, Any]:
    u = t.usage
    out: dict[str, Any] = {
        "index": t.index,
        "wall_s": _round(t.wall_s),
        "ttft_s": None if t.ttft_s is None else _round(t.ttft_s),
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "cached_tokens": u.cached_tokens,
        "usage_reported": u.reported,
        "finish_reason": t.finish_reason,
        "error": t.error,
        "tool_calls": len(t.tool_calls),
        "invalid_tool_calls": len(t.invalid_tool_calls),
    }
    if getattr(t, "phase", None) is not None:
        out["phase"] = t.phase
    retries = getattr(t, "retries", ())
    if retries:
        out["retries"] = list(retries)
    timings = {str(k): v for k, v in (getattr(t, "extra", None) or {}).items() if _is_primitive(v)}
    if timings:
        out["timings"] = timings
    return out


def _failures_by_class(agent: Any) -> dict[str, int]:
    method = getattr(agent, "failures_by_class", None)
    if callable(method):
        return dict(method())
    counts: dict[str, int] = {}
    for t in agent.turns:
        if t.error:
            counts[t.error] = counts.get(t.error, 0) + 1
        if t.invalid_tool_calls:
            counts["invalid_tool_call"] = counts.get("invalid_tool_call", 0) + len(t.invalid_tool_calls)
    return counts


def _server_dict(metrics: Any) -> dict[str, Any] | None:
    if metrics is None:
        return None
    if hasattr(metrics, "to_dict"):
        metrics = metrics.to_dict(prefix="")
    if not isinstance(metrics, Mapping):
        return None
    return {str(k): v for k, v in metrics.items() if _is_primitive(v)}


def _is_primitive(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def _round(x: float) -> float:
    return round(float(x), 6)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="microseconds")

"""The report's provenance section: per alias, what served it and where it ran; per packet, its content hash.

Read from the records' ``versions`` (:mod:`pytest_agentbench.results.provenance`). A value that is
the same in every run of an alias is shown once; one that differs between its runs (a ``--resume``
across versions, a rebuilt image) is shown with every value and says so. "unknown" is shown with
its reason. Everything is HTML-escaped. pytest-free.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pytest_agentbench.reports.svg import e
from pytest_agentbench.results.cells import cell_columns, column_of, label_cells

__all__ = ["provenance_section"]


def _server(v: Mapping[str, Any]) -> str:
    s = v.get("server") or {}
    engine = str(s.get("engine") or "?")
    version = str(s.get("vllm") or "unknown")
    text = f"{engine}; vLLM {version}" + (f" ({s['vllm_why']})" if s.get("vllm_why") else "")
    return text + (f"; {s['endpoint']}" if s.get("endpoint") else "")


def _model(v: Mapping[str, Any]) -> str:
    s = v.get("server") or {}
    parts = [str(s.get("model_path") or s.get("model") or "?")]
    digest = str(s.get("model_sha256") or "")
    if digest and digest != "unknown":
        parts.append(f"sha256 {digest[:16]}")
    if s.get("model_revision"):
        parts.append(f"revision {s['model_revision']}")
    if s.get("model_why"):
        parts.append(f"({s['model_why']})")
    return "; ".join(parts)


def _args(v: Mapping[str, Any]) -> str:
    s = v.get("server") or {}
    if s.get("args"):
        return " ".join(str(a) for a in s["args"])
    return str(s.get("args_why") or "none recorded")


def _sandbox(v: Mapping[str, Any]) -> str:
    sb = v.get("sandbox") or {}
    return ", ".join(f"{k} {val}" for k, val in sb.items()) or "unknown"


def _agent(v: Mapping[str, Any]) -> str:
    a = v.get("agent") or {}
    text = f"{a.get('name', '?')} {a.get('version', '?')}"
    return text + (f" (prompt sha256 {str(a['system_prompt_sha256'])[:12]})" if a.get("system_prompt_sha256") else "")


_COLUMNS: tuple[tuple[str, Callable[[Mapping[str, Any]], str]], ...] = (
    ("server", _server),
    ("model", _model),
    ("sandbox", _sandbox),
    ("agent", _agent),
    ("server arguments", _args),
)


def _cell(values: Sequence[str], folded: bool) -> str:
    distinct = sorted(set(values))
    text = e(distinct[0]) if len(distinct) == 1 else "<br>".join(e(v) for v in distinct)
    if len(distinct) > 1:
        text += ' <span class="tv-cut">differs between runs</span>'
    if folded and len(text) > 60:
        return f"<details><summary>{len(distinct)} command line(s)</summary><code>{text}</code></details>"
    return text


def provenance_section(records: Sequence[Mapping[str, Any]], aliases: Sequence[str] | None = None) -> str:
    """The section's HTML; "" when no record carries provenance."""
    by_alias: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    packets: dict[str, set[str]] = defaultdict(set)
    records = label_cells(records)  # with several agents: one row per agent x alias cell (results.cells)
    for rec in records:
        versions = rec.get("versions") or {}
        if "server" in versions or "sandbox" in versions:
            by_alias[column_of(rec)].append(versions)
        p = versions.get("packet") or {}
        if p.get("sha256"):
            packets[f"{p.get('id')} v{p.get('version')}"].add(str(p["sha256"]))
    if not by_alias:
        return ""
    listed = cell_columns(records, aliases) if aliases else []
    order = [a for a in listed if a in by_alias] + sorted(a for a in by_alias if a not in listed)
    head = "".join(f"<th>{e(name)}</th>" for name, _ in _COLUMNS)
    rows = "".join(
        f"<tr><td>{e(alias)}</td>"
        + "".join(
            f"<td>{_cell([fn(v) for v in by_alias[alias]], name == 'server arguments')}</td>" for name, fn in _COLUMNS
        )
        + "</tr>"
        for alias in order
    )
    packet_rows = "".join(
        f"<tr><td>{e(name)}</td><td><code>{_cell(sorted(hashes), False)}</code></td></tr>"
        for name, hashes in sorted(packets.items())
    )
    versions = sorted({json.dumps([v.get("agentbench"), v.get("python")]) for vs in by_alias.values() for v in vs})
    harness = "; ".join(f"agentbench {a}, Python {p}" for a, p in (json.loads(v) for v in versions))
    return (
        "<h2>Provenance</h2>"
        '<p class="meta">What produced the runs, per alias: the server (vLLM version as its /version said, asked '
        "once per session), the model path and its fingerprint (config, weights index, weight names and sizes), "
        f"the sandbox, the agent, the server's arguments (secrets masked). Harness: {e(harness)}.</p>"
        f"<table><tr><th>alias</th>{head}</tr>{rows}</table>"
        + (f"<table><tr><th>packet</th><th>content sha256</th></tr>{packet_rows}</table>" if packet_rows else "")
    )

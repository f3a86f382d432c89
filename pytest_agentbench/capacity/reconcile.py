"""Client vs server reconciliation: do the harness's numbers agree with what the server counted?

The one place in the package that owns these rules: :func:`reconcile` checks one sweep level
(tokens must be *equal*, TTFT medians within a tolerance, the asked concurrency reached, the
client not CPU-bound) and returns :class:`Check` verdicts; :func:`token_reconciliation_line`
is the same token rule for a whole pytest session, as the one line the plugin prints.
Pure: the measurements come in as mappings and a ``MetricsDelta``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CLIENT_CPU_SHARE_LIMIT",
    "TTFT_ABS_TOLERANCE_S",
    "TTFT_REL_TOLERANCE",
    "Check",
    "reconcile",
    "token_reconciliation_line",
]

#: Client and server TTFT medians may differ by this fraction of the server's median ...
TTFT_REL_TOLERANCE = 0.10
#: ... or by this many seconds, whichever is larger, before the level is flagged.
TTFT_ABS_TOLERANCE_S = 0.020
#: Model-call client CPU above this share of one core flags the level: the developer threads share
#: one GIL, so past it the harness, not the server, may be what limits the load.
CLIENT_CPU_SHARE_LIMIT = 0.5


@dataclass(frozen=True)
class Check:
    """One reconciliation rule applied to one level."""

    name: str  # tokens | ttft | concurrency
    status: str  # ok | mismatch | skipped
    detail: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status, "detail": self.detail}


def reconcile(
    asked: int,
    client: Mapping[str, Any],
    server: Mapping[str, Any] | None,
    *,
    ttft_rel_tol: float = TTFT_REL_TOLERANCE,
    ttft_abs_tol_s: float = TTFT_ABS_TOLERANCE_S,
) -> list[Check]:
    """Compare what the client measured with what the server counted, for one level.

    * tokens: the client's prompt/completion totals (sums of ``usage``) must
      *equal* the server's ``prompt_tokens`` / ``generation_tokens`` counter deltas;
    * ttft: client median vs server histogram median, flagged when further apart
      than ``max(ttft_rel_tol x server, ttft_abs_tol_s)``;
    * concurrency: the client's in-flight maximum must reach the N asked for;
    * client-cpu: the CPU the developer threads spent inside model calls, as a share
      of one core, must stay under ``CLIENT_CPU_SHARE_LIMIT`` (they share one GIL).
    """
    return [
        _concurrency_check(asked, client, server),
        _tokens_check(client, server),
        _ttft_check(client, server, ttft_rel_tol, ttft_abs_tol_s),
        _client_cpu_check(client),
    ]


def _concurrency_check(asked: int, client: Mapping[str, Any], server: Mapping[str, Any] | None) -> Check:
    reached = int(client.get("concurrency_max") or 0)
    srv_running = (server or {}).get("running_max")
    seen = f"; server saw up to {srv_running:g} running" if srv_running is not None else ""
    if reached >= asked:
        return Check("concurrency", "ok", f"{reached} of {asked} requests in flight at once{seen}")
    return Check(
        "concurrency",
        "mismatch",
        f"only {reached} of {asked} requests were in flight at once{seen}: the developers "
        "never overlapped fully (runs ended or failed before their first call?)",
    )


def _tokens_check(client: Mapping[str, Any], server: Mapping[str, Any] | None) -> Check:
    if server is None:
        return Check("tokens", "skipped", "no server metrics")
    if server.get("prompt_tokens") is None or server.get("generation_tokens") is None:
        return Check("tokens", "skipped", "the server exports no token counters")
    if not client.get("usage_reported", True):
        return Check(
            "tokens",
            "mismatch",
            "some responses carried no usage, so the client totals are incomplete (streaming without include_usage?)",
        )
    pairs = [
        ("prompt", client["prompt_tokens"], server["prompt_tokens"]),
        ("completion", client["completion_tokens"], server["generation_tokens"]),
    ]
    text = ", ".join(
        f"{name} client {c:,} vs server {s:,}" + (f" ({c - s:+,})" if c != s else "") for name, c, s in pairs
    )
    if all(c == s for _, c, s in pairs):
        return Check("tokens", "ok", text)
    hint = ""
    if client.get("failed_calls") or client.get("retried_attempts"):
        hint = (
            f"; {client.get('failed_calls', 0)} failed call(s) and {client.get('retried_attempts', 0)} "
            "retried attempt(s) may have used server tokens the client never saw"
        )
    return Check("tokens", "mismatch", text + hint + "; another client on this server also moves its counters")


def _ttft_check(client: Mapping[str, Any], server: Mapping[str, Any] | None, rel_tol: float, abs_tol_s: float) -> Check:
    """Client p50 against what the server's histogram resolves: the bucket that holds its median.

    The server's p50 is interpolated inside one histogram bucket (vLLM's TTFT buckets are e.g.
    0.1-0.25 s), so a client p50 anywhere in that bucket agrees with it; only a client p50 outside the
    bucket by more than the tolerance is a disagreement. Without bucket bounds (older records), the
    interpolated p50 +- tolerance is the rule.
    """
    c_ttft = client.get("ttft_p50_s")
    s_ttft = (server or {}).get("ttft_p50_s")
    if server is None or s_ttft is None:
        return Check("ttft", "skipped", "no server TTFT histogram")
    if c_ttft is None:
        return Check("ttft", "mismatch", "the client measured no TTFT (no streamed call finished)")
    mean = server.get("ttft_mean_s")
    lo, hi = _bucket(server.get("ttft_p50_bucket_s"), s_ttft)
    tol = max(rel_tol * s_ttft, abs_tol_s)
    gap = max(0.0, lo - c_ttft, c_ttft - hi)
    if (lo, hi) == (s_ttft, s_ttft):
        where = f"server p50 {_ms(s_ttft)}"
    else:
        where = f"server p50 {_ms(s_ttft)}, resolved by its histogram only to {_ms(lo)}-{_ms(hi)}"
    text = (
        f"client p50 {_ms(c_ttft)} vs {where}"
        + (f" (server mean {_ms(mean)})" if mean is not None else "")
        + (f": {gap * 1000:.1f} ms outside (tolerance {tol * 1000:.1f} ms)" if gap else ": consistent")
    )
    return Check("ttft", "ok" if gap <= tol + 1e-9 else "mismatch", text)


def _bucket(raw: Any, p50: float) -> tuple[float, float]:
    """The median's bucket as ``(low, high)`` seconds; the point itself when the record has none."""
    if isinstance(raw, (list, tuple)) and len(raw) == 2 and isinstance(raw[0], (int, float)):
        high = float("inf") if raw[1] is None else float(raw[1])
        return float(raw[0]), high
    return p50, p50


def _ms(seconds: float) -> str:
    return "+Inf" if seconds == float("inf") else f"{seconds * 1000:.1f} ms"


def _client_cpu_check(client: Mapping[str, Any]) -> Check:
    share = client.get("harness_cpu_share")
    if share is None:
        return Check("client-cpu", "skipped", "no model calls timed")
    text = f"the developer threads spent {share:.0%} of one core in model calls (limit {CLIENT_CPU_SHARE_LIMIT:.0%})"
    if share <= CLIENT_CPU_SHARE_LIMIT:
        return Check("client-cpu", "ok", text)
    return Check(
        "client-cpu",
        "mismatch",
        text + ": they share one GIL, so the client may be "
        "limiting the load; treat this level's numbers "
        "as a lower bound of the server's",
    )


def token_reconciliation_line(alias: str, records: Sequence[Mapping[str, Any]], delta: Any) -> str:
    """A session's token totals for *alias*: its records' client sums vs the server's counters.

    *records* are ``record_to_dict`` dicts (those of other aliases are ignored); *delta* is a
    ``MetricsDelta`` over the session. The totals must be equal; the line says ``equal`` or
    ``MISMATCH`` (and what else moves the counters). One case is not a mismatch: calls cut at the
    run's deadline or dropped mid-answer (``timeout``, ``connection_error``) were counted by the
    server, but no usage reached the client, so the server may count more - the line says so.
    """
    mine = [r for r in records if r.get("alias") == alias]
    client_in = sum(r["client"]["tokens"]["prompt"] for r in mine)
    client_out = sum(r["client"]["tokens"]["completion"] for r in mine)
    same = (client_in, client_out) == (delta.prompt_tokens, delta.generation_tokens)
    cut = sum(int((r.get("failures_by_class") or {}).get(cls, 0)) for r in mine for cls in _CUT_CLASSES)
    server_more = delta.prompt_tokens >= client_in and delta.generation_tokens >= client_out
    if same:
        verdict = "equal"
    elif cut and server_more:
        verdict = (
            f"server counts more: {cut} call(s) were cut at the deadline or dropped mid-answer "
            "(the server counted their tokens; no usage reached the client)"
        )
    else:
        verdict = "MISMATCH (a resumed run or traffic from outside this session counts too)"
    return (
        f"{alias}: tokens client {client_in:,} in / {client_out:,} out; server /metrics "
        f"{delta.prompt_tokens:,} in / {delta.generation_tokens:,} out: {verdict}"
    )


#: Failure classes of a call the server may have worked on without the client seeing its usage.
_CUT_CLASSES = ("timeout", "connection_error")

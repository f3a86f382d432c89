"""Runs on the gateway: per-run tokens, each run's token budget, and the record of every call. pytest-free.

The harness opens a run for one alias (:meth:`RunRegistry.open`) and hands the agent the run's
*token* (``agb-run-`` + 43 random characters): the only credential the agent ever sees, sent as
``Authorization: Bearer`` (OpenAI SDKs) or ``x-api-key`` (Anthropic SDKs). The token tells the
gateway which run - and so which alias - a call belongs to: a call is only ever forwarded to its
run's alias, whatever model it names. Only a hash of the token is kept. A token stops working
when its run is closed or its time to live (``ttl_s``) is over; an unknown, expired or missing
token is refused with a message that says which (:class:`TokenRefused`).

Every call is a :class:`CallRecord`: what the built-in adapter records for a call (timings,
usage, failure class, tool calls) plus what only a proxy sees (the HTTP status the agent got,
whether the call was destreamed, whether its tool calls came native or leaked and were repaired,
and the results the agent later sent back for them). A run's token budget is the built-in
loop's :class:`~pytest_agentbench.agents.budget.TokenLedger`: the same sum, the same clamp of
each call's output cap, the same rule when a server reports no usage.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pytest_agentbench.agents.budget import TokenLedger
from pytest_agentbench.models.calls import ToolCall, Usage

__all__ = ["DEFAULT_TTL_S", "TOKEN_PREFIX", "CallRecord", "Run", "RunRegistry", "TokenRefused"]

TOKEN_PREFIX = "agb-run-"
#: A run token's life when the harness gives none (a safety net: runs are closed when they end).
DEFAULT_TTL_S = 6 * 3600.0
#: Characters kept of a call's text, reasoning and each tool result (head and tail are what matter).
TEXT_CHARS = 4000


def _clip(text: str, limit: int = TEXT_CHARS) -> str:
    return text if len(text) <= limit else f"{text[: limit - 200]}\n[... cut ...]\n{text[-150:]}"


class TokenRefused(Exception):
    """A call's token is missing, unknown or expired; the message says which and what to do."""


@dataclass
class CallRecord:
    """One call through the gateway, as measured there (``None``: not measured, never 0)."""

    index: int
    protocol: str
    started_s: float  # since the run was opened
    wall_s: float = 0.0
    status: int = 0  # the HTTP status the agent got
    stream: bool = False  # the agent asked for a stream
    destreamed: bool = False  # ... and the upstream was asked without one (destream: true)
    model: str = ""  # as the upstream named it
    requested_model: str = ""  # as the agent named it (the alias's model was sent)
    ttft_s: float | None = None
    token_events: int = 0
    token_times_s: list[float] = field(default_factory=list)
    usage: Usage = field(default_factory=lambda: Usage(reported=False))
    finish_reason: str | None = None
    failure: str | None = None  # a FailureClass when the call failed
    error: str = ""
    refused: str | None = None  # the gateway answered itself: token_budget | turn_budget | protocol | bad_request
    native_tool_calls: int = 0
    leaked_tool_calls: int = 0  # calls the alias's tool parser found in the text
    repaired: bool = False  # ... and the agent got them as proper calls
    invalid_tool_calls: tuple[str, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()  # as the agent got them
    tool_results: dict[str, tuple[bool, str]] = field(default_factory=dict)  # call id -> (ok, result)
    content: str = ""
    reasoning: str | None = None
    max_tokens: int | None = None  # the output cap sent upstream
    max_tokens_asked: int | None = None  # ... and what the agent asked for
    timings: dict[str, float] = field(default_factory=dict)  # decode_s, tpot_s, decode_tok_s

    @property
    def answered(self) -> bool:
        """The upstream gave an answer the gateway could read (whatever its content)."""
        return self.failure is None and self.refused is None

    @property
    def tool_call_format(self) -> str:
        """``native``, ``leaked`` (in the text), ``mixed`` or ``none``."""
        native, leaked = self.native_tool_calls > 0, self.leaked_tool_calls > 0
        return "mixed" if native and leaked else "native" if native else "leaked" if leaked else "none"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["usage"] = asdict(self.usage)
        out["tool_calls"] = [asdict(c) for c in self.tool_calls]
        out["tool_results"] = {k: list(v) for k, v in self.tool_results.items()}
        out["invalid_tool_calls"] = list(self.invalid_tool_calls)
        out["tool_call_format"] = self.tool_call_format
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CallRecord:
        values = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        values["usage"] = Usage(**data.get("usage", {"reported": False}))
        values["tool_calls"] = tuple(ToolCall(**c) for c in data.get("tool_calls") or ())
        values["tool_results"] = {k: (bool(v[0]), str(v[1])) for k, v in (data.get("tool_results") or {}).items()}
        values["invalid_tool_calls"] = tuple(data.get("invalid_tool_calls") or ())
        return cls(**values)

    def keep_text(self, content: str | None, reasoning: str | None) -> None:
        self.content = _clip(content or "")
        self.reasoning = _clip(reasoning) if reasoning else None


class Run:
    """One run's state: its alias, budget, calls and the tool calls still waiting for a result."""

    def __init__(
        self, run_id: str, alias: str, max_total_tokens: int | None, ttl_s: float, max_calls: int | None = None
    ) -> None:
        self.run_id = run_id
        self.max_calls = max_calls  # answered model calls the run may make (its turn budget); None: no cap
        self.alias = alias
        self.opened = time.monotonic()
        self.expires = self.opened + ttl_s
        self.closed = False
        self.ledger = TokenLedger(max_total_tokens)
        self.calls: list[CallRecord] = []
        self._waiting: dict[str, CallRecord] = {}  # tool call id -> the call that made it
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._active = 0  # calls begun and not finished

    def begin(self, protocol: str) -> CallRecord:
        with self._lock:
            call = CallRecord(index=len(self.calls), protocol=protocol, started_s=time.monotonic() - self.opened)
            self.calls.append(call)
            self._active += 1
            return call

    def settle(self, timeout_s: float) -> int:
        """Wait until no call is in flight (at most ``timeout_s``); how many still are."""
        with self._lock:
            self._idle.wait_for(lambda: self._active == 0, timeout=timeout_s)
            return self._active

    def clamp(self, asked: int | None) -> int | None:
        """The next call's output cap: ``asked`` clamped to what is left of the budget.

        Only ever lowered: with no cap asked, none is set (a cap the size of the budget could pass the
        model's context and be refused); the budget then binds at the next call, and the account
        says by how much the last one went over, as when a server ignores the cap.
        """
        with self._lock:
            if asked is None or self.ledger.limit is None or not self.ledger.known:
                return asked
            return self.ledger.max_tokens(asked)

    def turns_spent(self, call: CallRecord) -> bool:
        """Whether the run's other calls (answered, or still in flight) use up its turn budget before ``call``."""
        with self._lock:
            if self.max_calls is None:
                return False
            return sum(1 for c in self.calls if c is not call and c.answered) >= self.max_calls

    @property
    def spent(self) -> bool:
        with self._lock:
            return self.ledger.spent

    def spent_message(self) -> str:
        with self._lock:
            return self.ledger.spent_message()

    def finish(self, call: CallRecord) -> None:
        """Count the call's tokens (an answered one's, or any the server reported); remember its tool
        calls until the agent sends their results."""
        with self._lock:
            if call.answered or call.usage.reported:  # a failed call that reported usage spent it too
                self.ledger.add(call.usage, call.index)
            for tool_call in call.tool_calls:
                self._waiting[tool_call.id] = call
            self._active -= 1
            self._idle.notify_all()

    def results_seen(self, results: Mapping[str, tuple[bool, str]]) -> None:
        """Tool results the agent sent in a request: kept on the calls that asked for them (once)."""
        with self._lock:
            for call_id, (ok, text) in results.items():
                call = self._waiting.pop(call_id, None)
                if call is not None:
                    call.tool_results[call_id] = (ok, _clip(text))

    def summary(self) -> dict[str, Any]:
        """The run as plain JSON: its calls and its budget's account."""
        with self._lock:
            ledger = self.ledger
            budget = {"limit": ledger.limit, "used": ledger.used, "known": ledger.known, "note": ledger.note}
            budget["max_calls"] = self.max_calls
            return {
                "run_id": self.run_id,
                "alias": self.alias,
                "closed": self.closed,
                "in_flight": self._active,
                "budget": budget | {"spent": ledger.spent},
                "calls": [c.to_dict() for c in self.calls],
            }


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class RunRegistry:
    """The runs of one gateway, by id and by token hash; per-alias totals over every call. Thread-safe."""

    def __init__(self, aliases: Collection[str]) -> None:
        self.aliases = frozenset(aliases)
        self._runs: dict[str, Run] = {}
        self._by_token: dict[str, str] = {}
        self._totals: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def open(
        self,
        alias: str,
        *,
        run_id: str | None = None,
        max_total_tokens: int | None = None,
        ttl_s: float | None = None,
        max_calls: int | None = None,
    ) -> tuple[Run, str]:
        """A new run of ``alias`` and its token. ``KeyError`` for an alias the gateway does not route,
        ``ValueError`` for a run id already open."""
        if alias not in self.aliases:
            raise KeyError(f"the gateway routes no alias {alias!r}; it routes: {', '.join(sorted(self.aliases))}")
        if max_total_tokens is not None and max_total_tokens < 1:
            raise ValueError(f"max_total_tokens must be >= 1, found {max_total_tokens}")
        if max_calls is not None and (not isinstance(max_calls, int) or max_calls < 1):
            raise ValueError(f"max_calls must be a whole number >= 1, found {max_calls!r}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        run = Run(run_id or uuid.uuid4().hex[:12], alias, max_total_tokens, ttl_s or DEFAULT_TTL_S, max_calls)
        with self._lock:
            if run.run_id in self._runs:
                raise ValueError(f"run {run.run_id!r} is already open on the gateway")
            self._runs[run.run_id] = run
            self._by_token[_hash(token)] = run.run_id
        return run, token

    def authenticate(self, token: str | None) -> Run:
        """The open run ``token`` belongs to; :class:`TokenRefused` otherwise."""
        if not token:
            raise TokenRefused(
                "agentbench gateway: no token: send the run's token as 'Authorization: Bearer <token>' "
                "(OpenAI clients) or 'x-api-key: <token>' (Anthropic clients); the harness gives each run one"
            )
        with self._lock:
            run = self._runs.get(self._by_token.get(_hash(token), ""))
        if run is None:
            raise TokenRefused(
                "agentbench gateway: this token was not issued by this gateway: each run gets its own token "
                "from the harness (the alias's real key never leaves the host)"
            )
        if run.closed or time.monotonic() >= run.expires:
            why = "the run has ended" if run.closed else "its time to live is over"
            raise TokenRefused(f"agentbench gateway: the token of run {run.run_id} has expired ({why})")
        return run

    def get(self, run_id: str) -> Run:
        with self._lock:
            return self._runs[run_id]

    def close(self, run_id: str, *, settle_s: float = 5.0) -> Run:
        """End a run: its token stops working at once; calls still in flight get ``settle_s`` to finish
        (an agent that has exited leaves its last calls to be torn down); its record stays readable."""
        with self._lock:
            run = self._runs[run_id]
            run.closed = True
        run.settle(settle_s)
        return run

    def count(self, alias: str, call: CallRecord) -> None:
        """Add a finished call to its alias's totals."""
        with self._lock:
            t = self._totals.setdefault(
                alias,
                {"calls": 0, "answered": 0, "failed": 0, "refused": 0}
                | {"prompt_tokens": 0, "completion_tokens": 0, "cached_tokens": 0, "usage_reported": True},
            )
            t["calls"] += 1
            t["refused" if call.refused else "answered" if call.answered else "failed"] += 1
            if call.usage.reported:
                t["prompt_tokens"] += call.usage.prompt_tokens
                t["completion_tokens"] += call.usage.completion_tokens
                t["cached_tokens"] += call.usage.cached_tokens
            elif call.answered:
                t["usage_reported"] = False

    def totals(self) -> dict[str, dict[str, Any]]:
        """alias -> calls (answered, failed, refused) and the tokens every call's usage reported
        (``usage_reported: false``: some answered call reported none, so the sums are short)."""
        with self._lock:
            return {alias: dict(t) for alias, t in sorted(self._totals.items())}

"""Agent traces for replay: what a run must keep so its model calls can be sent again exactly.

A record's transcript is clipped and its per-call stats hold lengths, not the messages, so
neither reproduces a prompt. :class:`RequestRecorder` wraps a run's model client (opt-in:
``--agentbench-keep-requests``) and keeps, per call, the messages exactly as the agent sent them
(before the alias's shaping, so a replay shapes them for its own alias), the tool schemas, the
``max_tokens`` cap, when the call started and ended (the gaps are the agent's think time: tool
commands, the harness) and what the server reported (usage, failure class). Stored compactly:
agent conversations grow by appending, so each call keeps only how many messages it shares with
the previous call (``keep``) and the messages after them (``new``); a run of K calls costs its
conversation once, not K times. Capped at :data:`MAX_REPLAY_CHARS` of messages per run; past it
the calls keep their stats only and ``truncated`` says where (a replay stops that session there).

The record's ``replay`` field (``results/record.py``; redacted like the rest of the record, so a
secret in a tool output becomes ``***`` - and a replayed prompt a few tokens shorter)::

    {"format": "agentbench-replay/1", "tool_sets": [[{tool schema}, ...]],
     "calls": [{"keep": 0, "new": [{"role": "system", ...}, {"role": "user", ...}], "tools": 0,
                "max_tokens": 4096, "start_s": 0.0, "end_s": 1.2, "prompt_tokens": 812,
                "completion_tokens": 40, "cached_tokens": 0, "usage_reported": true,
                "finish_reason": "tool_calls", "error": null}, ...],
     "messages_chars": 5120, "truncated": null}

:func:`load_sessions` reads the sessions back from a results.jsonl (or a folder holding one) as
:class:`Session` objects with each call's full message list rebuilt.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_agentbench.errors import ConfigError, ModelCallError

if TYPE_CHECKING:
    from pytest_agentbench.agents.loop import Model
    from pytest_agentbench.models.calls import Completion

__all__ = ["FORMAT", "MAX_REPLAY_CHARS", "RequestRecorder", "Session", "TraceCall", "load_sessions"]

FORMAT = "agentbench-replay/1"
#: Characters of messages (as JSON) kept per run; later calls keep their stats only.
MAX_REPLAY_CHARS = 4_000_000


def _shared_prefix(previous: Sequence[Any], current: Sequence[Any]) -> int:
    """How many leading messages *current* shares with *previous* (the same objects, or equal ones)."""
    n = min(len(previous), len(current))
    i = 0
    while i < n and (previous[i] is current[i] or previous[i] == current[i]):
        i += 1
    return i


class RequestRecorder:
    """A model client that records every call it passes on (see the module docstring); thread-compatible
    as the agent uses it (one run, one thread)."""

    def __init__(
        self,
        inner: Model,
        *,
        max_chars: int = MAX_REPLAY_CHARS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.inner = inner
        self.max_chars = max_chars
        self._clock = clock
        self._t0: float | None = None
        self._last: list[Any] = []
        self._tool_sets: list[list[dict[str, Any]]] = []
        self._calls: list[dict[str, Any]] = []
        self._chars = 0
        self._truncated: str | None = None

    def _tools_index(self, tools: Sequence[Mapping[str, Any]]) -> int:
        as_list = [dict(t) for t in tools]
        for i, known in enumerate(self._tool_sets):
            if known == as_list:
                return i
        self._tool_sets.append(json.loads(json.dumps(as_list)))
        return len(self._tool_sets) - 1

    def _entry(self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        now = self._clock()
        if self._t0 is None:
            self._t0 = now
        entry: dict[str, Any] = {"start_s": round(now - self._t0, 6), "tools": self._tools_index(tools)}
        if self._truncated is not None:
            entry.update(keep=None, new=None)
            return entry
        keep = _shared_prefix(self._last, messages)
        new = json.loads(json.dumps(list(messages[keep:])))  # a copy, and proof that it is JSON
        size = len(json.dumps(new))
        if self._chars + size > self.max_chars:
            self._truncated = (
                f"call {len(self._calls)}: over {self.max_chars:,} characters of messages; "
                "later calls keep their stats only"
            )
            entry.update(keep=None, new=None)
            return entry
        self._chars += size
        self._last = list(messages)
        entry.update(keep=keep, new=new)
        return entry

    def complete(
        self,
        messages: Sequence[dict[str, Any]],
        tools: Sequence[dict[str, Any]] = (),
        *,
        max_tokens: int | None = None,
        timeout: float | None = None,
    ) -> Completion:
        entry = self._entry(messages, tools)
        entry["max_tokens"] = max_tokens
        self._calls.append(entry)
        try:
            completion = self.inner.complete(messages, tools, max_tokens=max_tokens, timeout=timeout)
        except ModelCallError as exc:
            entry.update(end_s=self._since(), error=exc.failure, usage_reported=False)
            raise
        usage = completion.usage
        entry.update(
            end_s=self._since(),
            error=None,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            usage_reported=usage.reported,
            finish_reason=completion.finish_reason,
        )
        return completion

    def _since(self) -> float:
        return round(self._clock() - (self._t0 or 0.0), 6)

    def replay(self) -> dict[str, Any]:
        """The record's ``replay`` field for the calls so far."""
        return {
            "format": FORMAT,
            "tool_sets": self._tool_sets,
            "calls": [dict(c) for c in self._calls],
            "messages_chars": self._chars,
            "truncated": self._truncated,
        }

    def close(self) -> None:
        self.inner.close()


# --------------------------------------------------------------------------- reading traces back


@dataclass(frozen=True)
class TraceCall:
    """One recorded call as a replay sends it again."""

    messages: tuple[dict[str, Any], ...]
    tools: tuple[dict[str, Any], ...]
    max_tokens: int | None
    think_s: float  # from the previous call's end (0 for the first) to this call's start
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int


@dataclass(frozen=True)
class Session:
    """One recorded run: its calls in order, and the calls that cannot be replayed."""

    run_id: str
    packet: str
    alias: str
    model: str
    repeat: int
    calls: tuple[TraceCall, ...]
    skipped: int = 0  # failed calls, calls without usage, calls past a truncation
    truncated: str | None = None

    @property
    def prompt_tokens(self) -> int:
        return sum(c.prompt_tokens for c in self.calls)

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.calls)


def _session(record: Mapping[str, Any], where: str) -> Session:
    """One record's ``replay`` field as a Session (full messages rebuilt call by call)."""
    data = record.get("replay")
    if not isinstance(data, Mapping) or data.get("format") != FORMAT or not isinstance(data.get("calls"), list):
        raise ConfigError(f"{where}: its 'replay' field is not {FORMAT}")
    tool_sets = data.get("tool_sets") or []
    calls: list[TraceCall] = []
    messages: list[dict[str, Any]] = []
    skipped, last_end, broken = 0, 0.0, False
    for index, raw in enumerate(data["calls"]):
        if broken or raw.get("keep") is None or not isinstance(raw.get("new"), list):
            broken, skipped = True, skipped + 1  # past a truncation: the messages are unknown
            continue
        messages = messages[: int(raw["keep"])] + list(raw["new"])
        start, end = float(raw.get("start_s") or 0.0), float(raw.get("end_s") or 0.0)
        think, last_end = max(0.0, start - last_end) if index else 0.0, end
        if raw.get("error") or not raw.get("usage_reported", False):
            skipped += 1  # failed or without usage: nothing to reproduce exactly
            continue
        tools = tool_sets[raw["tools"]] if isinstance(raw.get("tools"), int) and raw["tools"] < len(tool_sets) else []
        calls.append(
            TraceCall(
                messages=tuple(messages),
                tools=tuple(tools),
                max_tokens=raw.get("max_tokens"),
                think_s=think,
                prompt_tokens=int(raw.get("prompt_tokens") or 0),
                completion_tokens=int(raw.get("completion_tokens") or 0),
                cached_tokens=int(raw.get("cached_tokens") or 0),
            )
        )
    return Session(
        run_id=str(record.get("run_id") or ""),
        packet=str((record.get("packet") or {}).get("id") or "?"),
        alias=str(record.get("alias") or "?"),
        model=str(record.get("model") or "?"),
        repeat=int(record.get("repeat") or 1),
        calls=tuple(calls),
        skipped=skipped,
        truncated=data.get("truncated"),
    )


def load_sessions(path: Path | str, *, alias: str | None = None, packets: Sequence[str] = ()) -> list[Session]:
    """Every run with a ``replay`` field in a results.jsonl (or a folder holding one), in file order.

    ``alias`` keeps only that alias's runs, ``packets`` only those packets' runs. Raises
    :class:`ConfigError` naming the file and the fix when nothing can be replayed (e.g. the run was
    made without ``--agentbench-keep-requests``).
    """
    from pytest_agentbench.results.jsonl import RESULTS_FILE, load_records

    path = Path(path)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: no such results file (give a results.jsonl or the folder holding it)")
    records = load_records(path)
    picked = [r for r in records if alias is None or r.get("alias") == alias]
    if packets:
        known = sorted({str((r.get("packet") or {}).get("id")) for r in picked})
        unknown = [p for p in packets if p not in known]
        if unknown:
            raise ConfigError(f"--packet: no recorded run of {', '.join(unknown)} in {path}; it has {', '.join(known)}")
        picked = [r for r in picked if (r.get("packet") or {}).get("id") in set(packets)]
    with_replay = [r for r in picked if r.get("replay") is not None]
    if not with_replay:
        which = f" of alias {alias!r}" if alias else ""
        raise ConfigError(
            f"{path}: none of its {len(picked)} run(s){which} kept its requests: run pytest with "
            "--agentbench-keep-requests (ini agentbench_keep_requests = true) to record what replay needs"
        )
    return [_session(r, f"{path}: run {r.get('run_id')}") for r in with_replay]

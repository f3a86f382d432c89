"""The scripted server's running usage totals, per protocol and overall (what a gateway must match).

Every generation request (chat, responses, messages; not ``count_tokens``) adds one to
``requests``, whatever it is answered (an error, a drop). Tokens are added as the answer's usage
reached the wire: the prompt (Anthropic: ``input_tokens`` + ``cache_read_input_tokens`` +
``cache_creation_input_tokens``, the gateway's reading), the completion and the cached part. An
answer without usage (``no_usage``, a chat stream without ``include_usage``, a dropped stream, an
error) adds none; ``answered`` counts the answers that did carry it.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, replace
from typing import Any

__all__ = ["PROTOCOLS", "Ledger", "Tally", "UsageTotals"]

PROTOCOLS = ("chat", "responses", "messages")


@dataclass(frozen=True)
class Tally:
    """Requests and the tokens their answers reported."""

    requests: int = 0
    answered: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(a + b for a, b in zip(asdict(self).values(), asdict(other).values(), strict=True)))

    def as_dict(self) -> dict[str, int]:
        return {**asdict(self), "total_tokens": self.total_tokens}


@dataclass(frozen=True)
class UsageTotals:
    """A snapshot of the totals: one :class:`Tally` per protocol, and ``overall``."""

    chat: Tally = Tally()
    responses: Tally = Tally()
    messages: Tally = Tally()

    @property
    def overall(self) -> Tally:
        return self.chat + self.responses + self.messages

    def of(self, protocol: str) -> Tally:
        return {"chat": self.chat, "responses": self.responses, "messages": self.messages}[protocol]

    def as_dict(self) -> dict[str, Any]:
        """What ``GET /scripted/usage`` answers."""
        return {p: self.of(p).as_dict() for p in PROTOCOLS} | {"overall": self.overall.as_dict()}


class Ledger:
    """The running totals of one server, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals = UsageTotals()

    def _add(self, protocol: str, tally: Tally) -> None:
        with self._lock:
            self._totals = replace(self._totals, **{protocol: self._totals.of(protocol) + tally})

    def request(self, protocol: str) -> None:
        self._add(protocol, Tally(requests=1))

    def answered(self, protocol: str, prompt: int, completion: int, cached: int) -> None:
        self._add(protocol, Tally(0, 1, prompt, completion, cached))

    def snapshot(self) -> UsageTotals:
        with self._lock:
            return self._totals

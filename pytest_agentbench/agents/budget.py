"""A run's token budget as it is spent, and the account of which budget ended the run. pytest-free.

The :class:`TokenLedger` sums ``prompt + completion`` tokens as the server reported them for each
answered call (never re-counted locally). Before each call the loop asks it for the call's
``max_tokens``: the per-call cap clamped to what is left of the budget, so no completion can take
the run over. The prompt of a call is only known once it is answered, so the last call's prompt can
still take the run over by at most its own size (more only if the server ignores ``max_tokens``); the
account says by how much (``over_by``: measured, never assumed).

A server that sends no usage (or negative counts) leaves the sum unknown: from that call on the budget cannot be
enforced, the clamp stops (what is left is unknown) and the account says so (``enforced: false``
with a ``note``) - turns and the wall clock still bind. It never pretends the run stayed within.

:class:`BudgetUse` is that account, on ``AgentResult.budget`` and in the run record's ``budget``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_agentbench.agents.config import AgentConfig
from pytest_agentbench.models.calls import Usage

__all__ = ["BudgetUse", "TokenLedger"]


@dataclass(frozen=True)
class BudgetUse:
    """What a run was allowed, what it used and which budget ended it (``ended_by``; None: the agent did)."""

    mode: str
    max_turns: int
    max_total_tokens: int | None
    max_total_tokens_from: str | None
    timeout_s: float
    safety_timeout_s: float | None
    ended_by: str | None  # "turns" | "tokens" | "wall" | "safety_timeout" | None
    tokens_used: int | None  # None: some answered call reported no usage
    over_by: int | None  # tokens past max_total_tokens (0: within); None: no token budget, or unknown
    enforced: bool  # False: there was a token budget and the server's usage could not enforce it
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "max_turns": self.max_turns,
            "max_total_tokens": self.max_total_tokens,
            "max_total_tokens_from": self.max_total_tokens_from,
            "timeout_s": self.timeout_s,
            "safety_timeout_s": self.safety_timeout_s,
            "ended_by": self.ended_by,
            "tokens_used": self.tokens_used,
            "over_by": self.over_by,
            "enforced": self.enforced,
            "note": self.note,
        }


class TokenLedger:
    """Tokens spent so far against ``limit`` (None: no token budget, only counted)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.used = 0
        self.known = True  # every answered call so far reported usage
        self.note = ""

    def add(self, usage: Usage, call_index: int) -> None:
        """Count one answered call; a call without usage (or with impossible counts) makes the sum unknown
        for the rest of the run."""
        if not self.known:
            return
        if not usage.reported:
            self._unknown(f"call {call_index} reported no usage")
        elif usage.prompt_tokens < 0 or usage.completion_tokens < 0:
            self._unknown(
                f"call {call_index} reported impossible usage ({usage.prompt_tokens} prompt, "
                f"{usage.completion_tokens} completion tokens)"
            )
        else:
            self.used += usage.prompt_tokens + usage.completion_tokens

    def _unknown(self, why: str) -> None:
        self.known = False
        self.note = f"{why}, so the tokens used are unknown from then on" + (
            ": the token budget could not be enforced (turns and the wall clock still bound the run); "
            "use a server that reports usage (for streaming: stream_options include_usage)"
            if self.limit is not None
            else ""
        )

    @property
    def spent(self) -> bool:
        """The budget is used up (only ever known while usage is)."""
        return self.limit is not None and self.known and self.used >= self.limit

    def max_tokens(self, per_call: int) -> int:
        """The next call's ``max_tokens``: ``per_call`` clamped to what is left (>= 1 while not spent)."""
        if self.limit is None or not self.known:
            return per_call
        return max(1, min(per_call, self.limit - self.used))

    def spent_message(self) -> str:
        return f"token budget of {self.limit:,} used up: {self.used:,} tokens (prompt + completion) over the run"

    def account(self, config: AgentConfig, ended_by: str | None) -> BudgetUse:
        used = self.used if self.known else None
        over = None if self.limit is None or used is None else max(0, used - self.limit)
        return BudgetUse(
            mode=config.budget,
            max_turns=config.max_turns,
            max_total_tokens=self.limit,
            max_total_tokens_from=config.max_total_tokens_from,
            timeout_s=config.timeout_s,
            safety_timeout_s=config.wall_limit_s if config.budget == "tokens" else None,
            ended_by=ended_by,
            tokens_used=used,
            over_by=over,
            enforced=self.limit is None or self.known,
            note=self.note,
        )

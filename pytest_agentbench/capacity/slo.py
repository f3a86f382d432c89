"""What a capacity sweep is asked: the service level (:class:`Slo`), the sweep's settings
(:class:`SweepConfig`, validated when built) and the rule that turns per-level verdicts into the
knee (:func:`find_knee`: the largest N, counting up from the smallest level, at which the SLO
still holds). Pure and cheap to import; the engine that measures the levels is
``capacity/sweep.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pytest_agentbench.capacity.cost import HOURS_PER_MONTH_24X7, WORKING_HOURS_PER_MONTH
from pytest_agentbench.errors import ConfigError

if TYPE_CHECKING:  # kept out of the import: `agentbench --help` builds the sweep's parser
    from pytest_agentbench.models.registry import ModelSpec
    from pytest_agentbench.packets.schema import Packet

__all__ = ["Slo", "SweepConfig", "find_knee"]


@dataclass(frozen=True)
class Slo:
    """The service level a developer needs: median TTFT at most, median decode rate at least."""

    ttft_p50_s: float | None = None
    tps_p50: float | None = None

    @property
    def defined(self) -> bool:
        return self.ttft_p50_s is not None or self.tps_p50 is not None

    def describe(self) -> str:
        parts = []
        if self.ttft_p50_s is not None:
            parts.append(f"TTFT p50 <= {self.ttft_p50_s:g} s")
        if self.tps_p50 is not None:
            parts.append(f"decode p50 >= {self.tps_p50:g} tok/s per stream")
        return " and ".join(parts) if parts else "none given"

    def judge(self, ttft_p50_s: float | None, tps_p50: float | None) -> tuple[bool | None, list[str]]:
        """(holds, reasons it does not); ``None`` when no SLO was given. Unmeasured never holds."""
        if not self.defined:
            return None, []
        reasons = []
        if self.ttft_p50_s is not None:
            if ttft_p50_s is None:
                reasons.append("TTFT not measured")
            elif ttft_p50_s > self.ttft_p50_s:
                reasons.append(f"TTFT p50 {ttft_p50_s:.3f} s > {self.ttft_p50_s:g} s")
        if self.tps_p50 is not None:
            if tps_p50 is None:
                reasons.append("decode rate not measured (calls of <= 1 output token?)")
            elif tps_p50 < self.tps_p50:
                reasons.append(f"decode p50 {tps_p50:.1f} tok/s < {self.tps_p50:g} tok/s")
        return not reasons, reasons


@dataclass(frozen=True)
class SweepConfig:
    """What to sweep. ``spec`` is the alias under test (streaming is forced on)."""

    spec: ModelSpec
    packets: tuple[Packet, ...]
    devs: tuple[int, ...]
    sandbox: str = "local"
    slo: Slo = field(default_factory=Slo)
    rounds: int = 1
    agent_timeout: float | None = None
    #: A commercial alias whose prices turn the same run's tokens into an API bill.
    compare: ModelSpec | None = None
    #: Hours the GPU is paid for per month (730 = 24x7).
    gpu_hours_per_month: float = HOURS_PER_MONTH_24X7
    #: Hours a developer keeps an agent busy per month (176 = 22 days x 8 h).
    dev_hours_per_month: float = WORKING_HOURS_PER_MONTH
    #: ``None``: the endpoint's own ``/metrics`` (probed; absent is fine).
    metrics_url: str | None = None
    reset_prefix_cache: bool = True
    warmup: bool = True
    sample_interval_s: float = 0.5

    def __post_init__(self) -> None:
        if not self.devs or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in self.devs):
            raise ConfigError(f"--devs: expected developer counts >= 1 such as 1,2,4,8, found {self.devs!r}")
        if not self.packets:
            raise ConfigError("--packets: no packets to run")
        if self.rounds < 1:
            raise ConfigError(f"--rounds: expected a whole number >= 1, found {self.rounds!r}")
        for flag, hours in (
            ("--gpu-hours-per-month", self.gpu_hours_per_month),
            ("--dev-hours-per-month", self.dev_hours_per_month),
        ):
            if not 0 < hours <= 744:
                raise ConfigError(
                    f"{flag}: expected hours in one month, 0 < H <= 744 (730 = 24x7, 176 = 22 "
                    f"working days x 8 h), found {hours!r}"
                )


def find_knee(levels: Sequence[tuple[int, bool | None]]) -> tuple[int | None, str]:
    """The largest N whose level, and every smaller level, holds the SLO; and a note.

    Counting up from the smallest level and stopping at the first break keeps a
    noisy pass above a break (N=4 breaks, N=8 holds) from being reported as
    capacity; the note says when that happened.
    """
    ordered = sorted(levels)
    if not ordered or all(h is None for _, h in ordered):
        return None, "no SLO given (--slo-ttft-p50 / --slo-tps-p50): no knee"
    knee = None
    broke_at = None
    for n, holds in ordered:
        if holds:
            if broke_at is None:
                knee = n
        elif broke_at is None:
            broke_at = n
    if knee is None:
        return None, f"the SLO breaks already at N={ordered[0][0]}"
    later = [n for n, h in ordered if h and broke_at is not None and n > broke_at]
    if broke_at is None:
        return knee, f"the SLO holds at every level up to N={knee}: the knee may be higher"
    note = f"the SLO holds up to N={knee} and breaks at N={broke_at}"
    if later:
        note += f" (it holds again at N={','.join(map(str, later))}: noise; repeat with --rounds or re-run)"
    return knee, note

"""The service level a developer needs (:class:`Slo`), how it is written down, and the knee.

An SLO has two halves, judged differently:

* **level medians** (``ttft_p50_s``, ``tps_p50``): a level or a request rate *holds* when the
  median TTFT over its calls is at most ``ttft_p50_s`` and the median per-stream decode rate at
  least ``tps_p50`` (:meth:`Slo.judge`); the knee (:func:`find_knee`) is the largest N, counting up
  from the smallest level, at which that still holds;
* **per-request thresholds** (``ttft_s``, ``tpot_s``, ``e2e_s``) for **goodput**, as ``vllm bench
  serve --goodput`` and DistServe define it: a request is *good* when its TTFT, its TPOT and its
  end-to-end latency are each within their threshold (:meth:`Slo.meets`; the share and rate of
  good requests: ``capacity/latency.py``).

Written in three places, merged field by field (the first that sets a field wins: the command
line, then the alias's ``slo:`` in models.yaml, then the project's ini ``agentbench_slo``: see
``capacity/slo_sources.py``). :func:`slo_from_mapping` reads the models.yaml / ini form (seconds,
strict keys), :func:`parse_goodput` the ``vllm bench``-style ``--goodput ttft:500 tpot:50`` form
(milliseconds). Pure and cheap to import.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from pytest_agentbench.errors import ConfigError

__all__ = ["GOODPUT_KEYS", "SLO_KEYS", "Slo", "find_knee", "parse_goodput", "slo_from_mapping"]

#: The keys of an ``slo:`` mapping (models.yaml) or ``agentbench_slo`` (ini), all in seconds except tps_p50.
SLO_KEYS: dict[str, str] = {
    "ttft_p50_s": "median time to first token of a level, at most (s)",
    "tps_p50": "median per-stream decode rate of a level, at least (tok/s)",
    "ttft_s": "goodput: each request's time to first token, at most (s)",
    "tpot_s": "goodput: each request's time per output token after the first, at most (s)",
    "e2e_s": "goodput: each request's end-to-end latency, at most (s)",
}
#: ``--goodput`` keys (vllm bench's names, values in milliseconds) -> Slo fields.
GOODPUT_KEYS: dict[str, str] = {"ttft": "ttft_s", "tpot": "tpot_s", "e2el": "e2e_s"}


@dataclass(frozen=True)
class Slo:
    """Level medians (``ttft_p50_s``, ``tps_p50``) and per-request goodput thresholds (``ttft_s``, ``tpot_s``,
    ``e2e_s``); ``None``: not part of this SLO."""

    ttft_p50_s: float | None = None
    tps_p50: float | None = None
    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None

    @property
    def defined(self) -> bool:
        """Whether the level half is set (a level can hold or break)."""
        return self.ttft_p50_s is not None or self.tps_p50 is not None

    @property
    def goodput_defined(self) -> bool:
        """Whether the per-request half is set (goodput can be counted)."""
        return any(v is not None for v in (self.ttft_s, self.tpot_s, self.e2e_s))

    def over(self, other: Slo) -> Slo:
        """This SLO with the fields it leaves unset taken from *other*."""
        return Slo(**{f.name: _first(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)})

    def to_dict(self) -> dict[str, float | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Slo:
        """The SLO of a result's ``slo`` object: its :meth:`to_dict` fields (other keys describe it)."""
        return cls(**{f.name: None if data.get(f.name) is None else float(data[f.name]) for f in fields(cls)})

    def describe(self) -> str:
        parts = []
        if self.ttft_p50_s is not None:
            parts.append(f"TTFT p50 <= {self.ttft_p50_s:g} s")
        if self.tps_p50 is not None:
            parts.append(f"decode p50 >= {self.tps_p50:g} tok/s per stream")
        text = " and ".join(parts) if parts else "none given"
        good = self.describe_goodput()
        return text if good == "none given" else f"{text}; goodput: {good}"

    def describe_goodput(self) -> str:
        parts = [
            f"{name} <= {_ms(value)}"
            for name, value in (("TTFT", self.ttft_s), ("TPOT", self.tpot_s), ("E2E", self.e2e_s))
            if value is not None
        ]
        return " and ".join(parts) + " per request" if parts else "none given"

    def judge(self, ttft_p50_s: float | None, tps_p50: float | None) -> tuple[bool | None, list[str]]:
        """(holds, reasons it does not); ``None`` when no level SLO was given. Unmeasured never holds."""
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

    def meets(self, ttft_s: float | None, tpot_s: float | None, e2e_s: float | None) -> bool:
        """Whether one completed request is *good*. As vllm bench: a request of <= 1 output token has no
        TPOT and meets a TPOT threshold; an unmeasured TTFT (not streamed) does not meet a TTFT one."""
        if self.ttft_s is not None and (ttft_s is None or ttft_s > self.ttft_s):
            return False
        if self.tpot_s is not None and tpot_s is not None and tpot_s > self.tpot_s:
            return False
        return not (self.e2e_s is not None and (e2e_s is None or e2e_s > self.e2e_s))


def _first(a: float | None, b: float | None) -> float | None:
    return a if a is not None else b


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:g} ms" if seconds < 1 else f"{seconds:g} s"


def _positive(value: Any, where: str, error: type[ConfigError]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise error(f"{where}: expected a number > 0, found {value!r}")
    return float(value)


def slo_from_mapping(raw: Mapping[str, Any], where: str, *, error: type[ConfigError] = ConfigError) -> Slo:
    """An ``slo:`` mapping (models.yaml) or the parsed ini value: strict keys, numbers > 0 (seconds)."""
    if not isinstance(raw, Mapping):
        raise error(f"{where}: expected a mapping such as {{ttft_p50_s: 2, tps_p50: 20, ttft_s: 4, tpot_s: 0.1}}")
    unknown = sorted(str(k) for k in raw if k not in SLO_KEYS)
    if unknown:
        raise error(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(SLO_KEYS)}")
    return Slo(**{k: _positive(v, f"{where}.{k}", error) for k, v in raw.items() if v is not None})


def parse_goodput(pairs: Sequence[str] | str, flag: str = "--goodput") -> Slo:
    """``ttft:500 tpot:50 e2el:4000`` (vllm bench's form: milliseconds) -> the per-request half of an Slo."""
    items = pairs.split() if isinstance(pairs, str) else [p for part in pairs for p in part.split()]
    if not items:
        raise ConfigError(f"{flag}: expected KEY:MS pairs such as ttft:500 tpot:50 (keys {', '.join(GOODPUT_KEYS)})")
    values: dict[str, float] = {}
    for item in items:
        key, sep, text = item.partition(":")
        if not sep or key not in GOODPUT_KEYS:
            raise ConfigError(
                f"{flag}: {item!r} is not KEY:MILLISECONDS with KEY one of {', '.join(GOODPUT_KEYS)} "
                "(as vllm bench serve --goodput), e.g. ttft:500 tpot:50"
            )
        try:
            ms = float(text)
        except ValueError:
            ms = math.nan
        if not math.isfinite(ms) or ms <= 0:
            raise ConfigError(f"{flag}: {item!r}: expected milliseconds > 0 after {key}:")
        values[GOODPUT_KEYS[key]] = ms / 1000.0
    return Slo(**values)


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

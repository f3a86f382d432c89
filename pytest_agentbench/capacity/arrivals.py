"""When the requests of a request-rate load arrive: Poisson, or gamma with a burstiness factor.

As ``vllm bench serve --request-rate R --burstiness B``: the gaps between arrivals are drawn
from a gamma distribution of shape ``B`` and scale ``1 / (R x B)``, so their mean is ``1 / R``
whatever B, and their coefficient of variation ``1 / sqrt(B)``. ``B = 1`` is the exponential
distribution: a Poisson process. ``B < 1`` is burstier, ``B > 1`` more regular, ``B = inf``
a fixed gap of ``1 / R``. ``R = inf`` sends everything at once.

:func:`inter_arrivals` draws the gaps (seeded, the standard library's ``random.gammavariate``);
:func:`arrival_times` adds them up, the first request also waiting one gap, and - as vllm bench
does when there is no ramp-up - rescales them so that the last arrival is at exactly ``N / R``:
the same seed-independent duration, which keeps throughput comparable across seeds (the rescale
multiplies every gap by one factor, so the shape and the CV are unchanged). Pure.
"""

from __future__ import annotations

import math
import random

from pytest_agentbench.errors import ConfigError

__all__ = ["arrival_times", "check_rate", "inter_arrivals"]


def check_rate(rate: float, burstiness: float) -> None:
    """Raise :class:`ConfigError` naming the flag unless ``rate`` > 0 (inf allowed) and ``burstiness`` > 0."""
    if not (rate > 0):  # NaN fails too
        raise ConfigError(f"--request-rate: expected requests per second > 0 or inf, found {rate!r}")
    if not (burstiness > 0):
        raise ConfigError(
            f"--burstiness: expected a gamma shape factor > 0 (1 = Poisson, < 1 burstier, > 1 more regular), "
            f"found {burstiness!r}"
        )


def inter_arrivals(n: int, rate: float, burstiness: float = 1.0, *, rng: random.Random) -> list[float]:
    """*n* gaps between arrivals, seconds: gamma(shape ``burstiness``, scale ``1 / (rate x burstiness)``)."""
    check_rate(rate, burstiness)
    if math.isinf(rate):
        return [0.0] * n
    if math.isinf(burstiness):
        return [1.0 / rate] * n
    scale = 1.0 / (rate * burstiness)
    return [rng.gammavariate(burstiness, scale) for _ in range(n)]


def arrival_times(
    n: int, rate: float, burstiness: float = 1.0, *, seed: int = 0, normalize: bool = True
) -> list[float]:
    """When each of *n* requests is due, seconds from the start (non-decreasing; all 0 at ``rate = inf``)."""
    gaps = inter_arrivals(n, rate, burstiness, rng=random.Random(seed))
    times: list[float] = []
    t = 0.0
    for gap in gaps:
        t += gap
        times.append(t)
    if normalize and times and times[-1] > 0 and not math.isinf(rate):
        factor = (n / rate) / times[-1]
        times = [x * factor for x in times]
    return times

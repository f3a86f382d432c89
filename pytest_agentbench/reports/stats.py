"""Statistics used by every report: one percentile definition for the whole package."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["median", "percentile"]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100) by linear interpolation between closest ranks; ``None`` if empty.

    The same definition as ``numpy.percentile``'s default (``linear``).
    """
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile: q must be between 0 and 100, got {q!r}")
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float | None:
    """The 50th percentile; ``None`` if empty."""
    return percentile(values, 50)

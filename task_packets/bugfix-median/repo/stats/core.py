"""Core statistics functions."""

from __future__ import annotations

from collections import Counter
from typing import Iterable


def _as_sorted(values: Iterable[float]) -> list[float]:
    data = sorted(values)
    if not data:
        raise ValueError("statistics of an empty sequence are undefined")
    return data


def mean(values: Iterable[float]) -> float:
    data = _as_sorted(values)
    return sum(data) / len(data)


def median(values: Iterable[float]) -> float:
    """The middle value; for an even count, the mean of the two middle values."""
    data = _as_sorted(values)
    mid = len(data) // 2
    return data[mid]


def mode(values: Iterable[float]) -> float:
    """The most common value; ties go to the smallest."""
    data = _as_sorted(values)
    counts = Counter(data)
    best = max(counts.values())
    return min(v for v, c in counts.items() if c == best)

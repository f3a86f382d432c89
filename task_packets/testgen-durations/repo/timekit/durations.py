"""Human-friendly durations: ``"1h30m"`` <-> 5400 seconds."""

from __future__ import annotations

import re

#: Seconds per unit, largest first.
UNITS: dict[str, int] = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_ORDER = list(UNITS)
_TOKEN = re.compile(r"(\d+)\s*([a-z])")


def parse_duration(text: str) -> int:
    """Return the number of seconds in ``text``.

    Accepted: a bare number of seconds (``"90"``), or one or more
    ``<number><unit>`` parts with units w, d, h, m, s, largest first, each unit
    at most once, optionally separated by spaces (``"1h30m"``, ``"2d 4h"``).
    Case and surrounding whitespace are ignored. Anything else raises
    ``ValueError`` naming the problem.
    """
    s = text.strip().lower()
    if not s:
        raise ValueError("empty duration")
    if s.isdigit():
        return int(s)
    total = 0
    last_rank = -1
    pos = 0
    while pos < len(s):
        match = _TOKEN.match(s, pos)
        if match is None:
            raise ValueError(f"invalid duration {text!r}: cannot read {s[pos:]!r}")
        number, unit = match.groups()
        if unit not in UNITS:
            raise ValueError(f"invalid duration {text!r}: unknown unit {unit!r} (use w, d, h, m, s)")
        rank = _ORDER.index(unit)
        if rank <= last_rank:
            raise ValueError(f"invalid duration {text!r}: unit {unit!r} repeated or out of order")
        last_rank = rank
        total += int(number) * UNITS[unit]
        pos = match.end()
        while pos < len(s) and s[pos] == " ":
            pos += 1
    return total


def format_duration(seconds: int, *, largest: str = "w", max_units: int | None = None) -> str:
    """Format ``seconds`` the way people write it: ``5400`` -> ``"1h 30m"``.

    Zero parts are left out; zero itself is ``"0s"``. ``largest`` is the
    biggest unit used (``largest="h"`` gives ``"25h"`` rather than ``"1d 1h"``).
    ``max_units`` keeps only that many parts, largest first, dropping the rest
    (``format_duration(5430, max_units=1)`` is ``"1h"``). Negative seconds, an
    unknown ``largest`` or ``max_units < 1`` raise ``ValueError``.
    """
    if seconds < 0:
        raise ValueError(f"cannot format a negative duration ({seconds}s)")
    if largest not in UNITS:
        raise ValueError(f"unknown unit {largest!r} (use w, d, h, m, s)")
    if max_units is not None and max_units < 1:
        raise ValueError(f"max_units must be at least 1, got {max_units}")
    if seconds == 0:
        return "0s"
    parts = []
    remaining = seconds
    for unit in _ORDER[_ORDER.index(largest) :]:
        count, remaining = divmod(remaining, UNITS[unit])
        if count:
            parts.append(f"{count}{unit}")
    if max_units is not None:
        parts = parts[:max_units]
    return " ".join(parts)

"""When does a job run next?"""

from __future__ import annotations

from datetime import datetime, timedelta

from .durations import parse_duration


def next_run(last_run: datetime | None, interval: str, now: datetime) -> datetime:
    """The next time a job that runs every ``interval`` (e.g. ``"15m"``) is due.

    A job that never ran is due now. A job that fell behind is due now too,
    not once per missed interval.
    """
    if last_run is None:
        return now
    seconds = parse_duration(interval)
    if seconds == 0:
        raise ValueError("interval must be longer than zero")
    due = last_run + timedelta(seconds=seconds)
    return max(due, now)

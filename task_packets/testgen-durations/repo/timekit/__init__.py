"""Small time helpers used by the job runner."""

from .clock import Stopwatch
from .durations import format_duration, parse_duration
from .schedule import next_run

__all__ = ["Stopwatch", "format_duration", "next_run", "parse_duration"]

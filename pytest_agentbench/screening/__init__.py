"""Screening candidates before a run: the course's table, filled from evidence, row by row.

``agentbench screen ALIAS...`` (:mod:`pytest_agentbench.cli.screen`) fills, for each
candidate and in the course's order: licence (:mod:`.licence`), serving support
(:mod:`.support`, against :mod:`.installed`), tool format (:mod:`.toolformat`, from
the probe battery), context policy (:mod:`.context`) and failure behaviour
(:mod:`.failures`). :mod:`.screen` gathers the evidence; :mod:`.rows` is the
vocabulary; :mod:`.table` prints it; ``reports/screen_html.py`` draws it.
"""

from __future__ import annotations

from pytest_agentbench.screening.rows import CRITERIA, Row, Screen, Verdict
from pytest_agentbench.screening.screen import ScreenOptions, screen_candidate, screen_candidates
from pytest_agentbench.screening.table import format_screens, screens_json

__all__ = [
    "CRITERIA",
    "Row",
    "Screen",
    "ScreenOptions",
    "Verdict",
    "format_screens",
    "screen_candidate",
    "screen_candidates",
    "screens_json",
]

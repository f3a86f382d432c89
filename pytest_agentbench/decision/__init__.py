"""From a finished run to a written decision: commercial API, cloud agent or local inference.

``agentbench decide`` (:mod:`pytest_agentbench.cli.decide`) reads the files (:mod:`.sources`),
collects the figures per candidate (:mod:`.evidence`, with the quality comparisons of
:mod:`.quality`), applies the ordered rules of ``docs/decision.md`` to them and to the team's
inputs (:mod:`.inputs`; the rules: :mod:`.tree`, their result: :mod:`.outcome`) and writes the
record (:mod:`.adr`). pytest-free.
"""

from __future__ import annotations

from pytest_agentbench.decision.adr import render_adr
from pytest_agentbench.decision.evidence import Candidate, Evidence, collect
from pytest_agentbench.decision.inputs import ADMISSIBLE, BOUNDARIES, BRANCHES, TeamInputs
from pytest_agentbench.decision.outcome import Decision
from pytest_agentbench.decision.sources import Sources, read_sources
from pytest_agentbench.decision.tree import RULES, decide

__all__ = [
    "ADMISSIBLE",
    "BOUNDARIES",
    "BRANCHES",
    "RULES",
    "Candidate",
    "Decision",
    "Evidence",
    "Sources",
    "TeamInputs",
    "collect",
    "decide",
    "read_sources",
    "render_adr",
]

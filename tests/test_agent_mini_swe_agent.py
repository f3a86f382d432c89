"""mini-swe-agent for real: built into the docker sandbox's image, run through the plugin and the gateway.

Marked ``docker`` and ``slow``: the first run builds the agent image (pip wheels fetched on the host,
installed offline in the image: ~1-2 min, then cached by its recipe hash), each run after it takes
seconds. The scripted double follows a plan through mini's one ``bash`` tool; mini stops when the
model runs its submit marker.
"""

from __future__ import annotations

import pytest

from .agent_runs import FIX_MEDIAN, assert_reconciled, plugin_run

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SUBMIT = {"shell": "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"}
GOOD = [{"shell": "cat stats/core.py"}, {"shell": FIX_MEDIAN}, {"shell": "python3 -m pytest -q tests"}, SUBMIT]
NOOP = [{"shell": "ls"}, SUBMIT]


def test_mini_swe_agent_fixes_the_bug_on_the_good_plan_and_not_on_the_noop_and_every_token_is_counted(
    pytester: pytest.Pytester, docker_engine: None
) -> None:
    result, records, totals = plugin_run(pytester, "mini-swe-agent", GOOD, NOOP)
    result.assert_outcomes(passed=1, failed=1)
    good, noop = records["good"], records["noop"]
    assert good["passed"] and good["outcome"] == "finished" and not noop["passed"]
    assert good["agent"] == {"name": "mini-swe-agent", "version": "2.4.6"}
    assert good["model_calls"] == len(GOOD) and noop["model_calls"] == len(NOOP)
    assert (
        good["sandbox"]["kind"] == "docker"
        and "agentbench-agent-mini-swe-agent" in good["versions"]["sandbox"]["image"]
    )
    # the tool calls mini got are in the trajectory, with the results it sent back
    assert good["trajectory"][1]["tool_calls"][0]["name"] == "bash"
    assert "stats/core.py" in good["patch"]["diff"] and not noop["patch"]["files"]
    assert_reconciled(records, totals)

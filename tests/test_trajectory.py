"""The trajectory: what the record keeps of every turn, and the report's viewer of it, in headless Chromium.

A scripted 10-turn run (the scripted server is a test double, not a model) on bugfix-median goes
through the real adapter, loop, sandbox and gates: tool calls of every tool, a failed tool call, a
result longer than the loop keeps, a rate-limited call that is retried, an unparseable tool call,
reasoning, a new file. The browser tests click through the report as a person would (real mouse
events over the DevTools pipe: tests/headless.py): grid -> run -> every turn and tool result.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.agents.config import AgentConfig
from pytest_agentbench.agents.transcript import AgentResult, ToolOutcome, Turn
from pytest_agentbench.models.adapter import ModelAdapter
from pytest_agentbench.models.calls import ToolCall, Usage
from pytest_agentbench.reports.html import write_html
from pytest_agentbench.reports.trajectory import trajectory_section
from pytest_agentbench.results.record import record_to_dict
from pytest_agentbench.results.redact import Redactor
from pytest_agentbench.results.trajectory import FIELD_CHARS, trajectory
from pytest_agentbench.runner import run_packet
from pytest_agentbench.sandbox.unsafe_local import UnsafeLocalSandbox
from pytest_agentbench.serving.scripted import ScriptedServer

from .headless import CHROMIUM, Chromium
from .test_report import parse
from .test_results import make_spec, packet, real_records

needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")

FIX_OLD = "    mid = len(data) // 2\n    return data[mid]\n"
FIX_NEW = (
    "    mid = len(data) // 2\n    if len(data) % 2 == 0:\n        return (data[mid - 1] + data[mid]) / 2\n"
    "    return data[mid]\n"
)
TEN_TURNS = {
    "conversations": [
        {
            "match": "stats.median([4, 1, 3, 2])",
            "responses": [
                {"content": "Looking around first.", "tool_calls": [{"name": "list_files", "arguments": {}}]},
                {
                    "tool_calls": [
                        {"name": "read_file", "arguments": {"path": "stats/core.py"}},
                        {"name": "read_file", "arguments": {"path": "no/such/file.py"}},
                    ]
                },
                {"tool_calls": [{"name": "run", "arguments": {"command": "python3 -c \"print('x' * 30000)\""}}]},
                {
                    "attempts": [
                        {"status": 429, "headers": {"Retry-After": "0"}, "error": "slow down"},
                        {"tool_calls": [{"name": "run", "arguments": {"command": "ls -la stats"}}]},
                    ]
                },
                {"content": "Trying a call.", "tool_calls": [{"name": "read_file", "arguments": "{not json"}]},
                {
                    "tool_calls": [
                        {"name": "edit", "arguments": {"path": "stats/core.py", "old": FIX_OLD, "new": FIX_NEW}}
                    ]
                },
                {
                    "tool_calls": [
                        {"name": "run", "arguments": {"command": "python -m pytest -q -p no:cacheprovider tests"}}
                    ]
                },
                {
                    "reasoning_content": "The tests pass; a note for the reviewer would help.",
                    "content": "Writing a note.",
                    "tool_calls": [
                        {"name": "write_file", "arguments": {"path": "NOTES.md", "content": "median fixed\n"}}
                    ],
                },
                {"tool_calls": [{"name": "list_files", "arguments": {"path": "stats"}}]},
                {"tool_calls": [{"name": "finish", "arguments": {"summary": "median() averages the middle two."}}]},
            ],
        }
    ]
}


@cache
def ten_turn_run() -> Any:
    spec = make_spec("scripted-ten", test_double=True, stream=True)
    with ScriptedServer(TEN_TURNS, model_names=[spec.model]) as server:
        adapter = ModelAdapter(spec, base_url=server.base_url)
        try:
            return run_packet(packet(), spec, adapter, lambda p: UnsafeLocalSandbox(p.workspace))
        finally:
            adapter.close()


@cache
def report_records() -> list[dict[str, Any]]:
    """The 10-turn run and the scripted no-op run of the same packet (a second alias, for side by side)."""
    return [record_to_dict(ten_turn_run()), record_to_dict(real_records()[1])]


# --------------------------------------------------------------------------- the record


def test_the_record_keeps_every_turn_and_tool_result() -> None:
    run = ten_turn_run()
    rec = record_to_dict(run)
    steps = rec["trajectory"]
    assert run.passed and len(steps) == 10 and [s["index"] for s in steps] == list(range(10))
    for turn, step in zip(run.agent.turns, steps, strict=True):
        assert [c["result"] for c in step["tool_calls"]] == [o.result for o in turn.tool_calls]
        assert [c["name"] for c in step["tool_calls"]] == [o.call.name for o in turn.tool_calls]
    assert [c["ok"] for c in steps[1]["tool_calls"]] == [True, False]
    long = steps[2]["tool_calls"][0]
    assert long["result_chars"] == len(long["result"]) and re.search(
        r"\[\.\.\. \d+ characters cut \.\.\.\]", long["result"]
    )
    assert steps[3]["retries"] == ["rate_limited"] and rec["failures_by_class"]["rate_limited"] == 1
    assert steps[4]["invalid_tool_calls"] and steps[7]["reasoning"].startswith("The tests pass")
    turns_left = [s["budget_left"]["turns"] for s in steps]
    assert turns_left == list(range(20, 10, -1))  # bugfix-median allows 20 turns
    walls = [s["budget_left"]["wall_s"] for s in steps]
    assert walls == sorted(walls, reverse=True) and walls[0] <= 300
    used = [s["tokens_so_far"] for s in steps]
    calls = rec["client"]["calls"]
    assert used[0] == 0 and all(
        used[i + 1] == used[i] + calls[i]["prompt_tokens"] + calls[i]["completion_tokens"] for i in range(9)
    )
    assert {f["path"] for f in rec["patch"]["files"]} == {"stats/core.py", "NOTES.md"}


def _agent(texts: list[str]) -> AgentResult:
    turns = [
        Turn(i, 0.1, tool_calls=[ToolOutcome(ToolCall(f"c{i}", "run", "{}"), True, t, 0.0)], usage=Usage(1, 1, 0, True))
        for i, t in enumerate(texts)
    ]
    return AgentResult("finished", turns, 1.0)


def test_each_text_and_the_whole_trajectory_are_bounded_with_marked_cuts() -> None:
    over = "a" * (FIELD_CHARS["result"] + 5000)
    one = trajectory(_agent([over]))[0]["tool_calls"][0]["result"]
    assert len(one) < len(over) and "5000 characters cut here by the record" in one and one.startswith("a" * 100)
    steps = trajectory(_agent(["z" * 9000, "c" * 500, "q" * 9000]), budget=10_000)
    results = [s["tool_calls"][0]["result"] for s in steps]
    assert results[1] == "c" * 500  # short texts are kept whole; the long ones share the rest
    for text, letter in ((results[0], "z"), (results[2], "q")):
        cut = int(re.search(r"(\d+) characters cut here by the record \(all texts of the run share 10000", text)[1])
        assert text.count(letter) + cut == 9000
    assert sum(len(t) for t in results) < 10_000 + 400
    assert trajectory(_agent(["x"]), AgentConfig(max_turns=3))[0]["budget_left"] == {"turns": 3, "wall_s": None}


def test_secrets_are_redacted_from_the_trajectory() -> None:
    rec = record_to_dict(ten_turn_run(), redactor=Redactor(["Looking around first."]))
    assert rec["trajectory"][0]["content"] == "***" and "Looking around first." not in str(rec)


# --------------------------------------------------------------------------- the viewer's markup


def test_a_cut_for_the_page_says_how_much_and_where_the_whole_is() -> None:
    records = report_records()
    html = trajectory_section(records, page_chars=8_000)
    parse("<div>" + html + "</div>")
    markers = re.findall(
        r"\[\.\.\. (\d+) characters not shown here \(the page shows at most (\d+) per text\); "
        r"the whole is in results\.jsonl: run (\w+), ([\w\[\].]+) \.\.\.\]",
        html,
    )
    assert markers, "an 8000-character page must cut"
    run_id = records[0]["run_id"]
    cut, limit, where_run, where = next(m for m in markers if m[3] == "trajectory[2].tool_calls[0].result")
    whole = records[0]["trajectory"][2]["tool_calls"][0]["result"]
    assert where_run == run_id and int(cut) == len(whole) - int(limit)
    assert "the page shows" not in trajectory_section(records)  # the default budget cuts nothing here


def test_record_text_is_escaped_in_the_viewer() -> None:
    rec = dict(report_records()[0])
    rec["alias"] = '<img src=x onerror="alert(1)">'
    rec["trajectory"] = [dict(rec["trajectory"][0], content="</pre><script>alert(2)</script>")]
    html = trajectory_section([rec])
    page = parse("<div>" + html + "</div>")
    assert page.tags.count("script") == 1 and "img" not in page.tags and "<script>alert(2)" not in html
    assert "&lt;/pre&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in html
    assert not any(name.startswith("on") for name, _ in page.attrs)


def test_compare_links_name_one_run_per_other_alias() -> None:
    """Many records of one trial (resumed sessions, big sweeps) must not make the page quadratic."""
    ten, noop = report_records()
    records = [
        dict(r, run_id=f"{r['run_id']}x{n}", timestamp=f"2026-01-01T00:00:{n:02d}")
        for n in range(30)
        for r in (ten, noop)
    ]
    html = trajectory_section(records)
    sections = html.split('<section class="tv-run"')[1:]
    assert len(sections) == 60 and all(s.count('href="#cmp=') == 1 for s in sections)
    newest_noop = f"{noop['run_id']}x29"
    assert all(f',{newest_noop}"' in s for s in sections if ten["alias"] + " &middot;" in s.split("</h3>")[0])


# --------------------------------------------------------------------------- in the browser


@pytest.fixture
def report(tmp_path: Path) -> Path:
    return write_html(report_records(), tmp_path / "report.html", "trajectories")


def _visible(browser: Chromium, selector: str) -> int:
    return browser.js(
        f"Array.prototype.filter.call(document.querySelectorAll({selector!r}),"
        " function (el) { return el.offsetParent !== null; }).length"
    )


@needs_chromium
def test_grid_then_run_then_every_turn_and_tool_result(report: Path) -> None:
    rec = report_records()[0]
    rid = rec["run_id"]
    with Chromium() as browser:
        browser.open(report.as_uri())
        assert _visible(browser, "a.tv-chip") == 2 and _visible(browser, ".tv-run") == 0
        browser.click(f"#chip-{rid}")
        assert browser.js("location.hash") == f"#run-{rid}"
        assert _visible(browser, ".tv-run") == 1 and _visible(browser, f"#run-{rid} li.tv-turn") == 10
        texts = "function (li, sel) { return Array.prototype.map.call(li.querySelectorAll(sel), function (p) {"
        texts += " return p.textContent; }); }"
        shown = browser.js(
            f"(function () {{ var texts = {texts};"
            f" return Array.prototype.map.call(document.querySelectorAll('#run-{rid} li.tv-turn'), function (li) {{"
            " return {head: li.querySelector('.tv-th').textContent, results: texts(li, 'pre.tv-result'),"
            " args: texts(li, 'pre.tv-args'), text: li.textContent}; }); })()"
        )
        cuts = browser.js(f"document.querySelectorAll('#run-{rid} .tv-cut').length")
    assert cuts == 0
    for step, call, seen in zip(rec["trajectory"], rec["client"]["calls"], shown, strict=True):
        assert seen["results"] == [c["result"] for c in step["tool_calls"]]  # every result, whole
        assert seen["args"] == [c["arguments"] for c in step["tool_calls"]]
        assert f"turn {step['index'] + 1}" in seen["head"] and f"{call['prompt_tokens']} in / " in seen["head"]
        assert "TTFT" in seen["head"] and "budget left: " in seen["head"]
    assert "characters cut ..." in shown[2]["results"][0]  # the loop's own marker, kept
    assert "retried after: rate_limited" in shown[3]["text"] and "invalid tool call" in shown[4]["text"]
    assert "The tests pass" in shown[7]["text"] and "error" in shown[1]["text"]


@needs_chromium
def test_screenshot_of_a_run_shows_its_highlighted_diff(report: Path, tmp_path: Path) -> None:
    rid = report_records()[0]["run_id"]
    with Chromium(1200, 900) as browser:
        browser.open(report.as_uri())
        browser.click(f"#chip-{rid}")
        browser.js(f"document.querySelector('#run-{rid} .tv-patch').scrollIntoView()")
        box = browser.js(
            f"(function () {{ var r = document.querySelector('#run-{rid} pre.tv-diff').getBoundingClientRect();"
            " return [r.top, r.bottom, r.height]; })()"
        )
        added = browser.js(f"getComputedStyle(document.querySelector('#run-{rid} pre.tv-diff .a')).backgroundColor")
        text = browser.js(f"document.querySelector('#run-{rid} pre.tv-diff').textContent")
        png = browser.screenshot(tmp_path / "run.png")
    assert 0 <= box[0] < 900 and box[2] > 100  # the diff is on screen
    assert added == "rgb(230, 255, 236)" and "+        return (data[mid - 1] + data[mid]) / 2" in text
    assert "+++ b/NOTES.md" in text
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


@needs_chromium
def test_filters_and_two_aliases_side_by_side(report: Path) -> None:
    ten, noop = report_records()
    with Chromium() as browser:
        browser.open(report.as_uri())
        browser.click(f"input.tv-f-alias[value='{noop['alias']}']")  # uncheck: its column goes
        assert (
            browser.js(f"getComputedStyle(document.querySelector('th[data-col=\"{noop['alias']}\"]')).display")
            == "none"
        )
        assert _visible(browser, "a.tv-chip") == 1
        browser.click(f"input.tv-f-alias[value='{noop['alias']}']")
        browser.js(
            "var s = document.getElementById('tv-f-outcome'); s.value = 'gates missed';"
            " s.dispatchEvent(new Event('change'))"
        )
        assert _visible(browser, "a.tv-chip") == 1 and _visible(browser, f"#chip-{noop['run_id']}") == 1
        browser.js(
            "var s = document.getElementById('tv-f-outcome'); s.value = ''; s.dispatchEvent(new Event('change'))"
        )
        browser.js(
            "var s = document.getElementById('tv-f-failure'); s.value = 'rate_limited';"
            " s.dispatchEvent(new Event('change'))"
        )
        assert _visible(browser, "a.tv-chip") == 1 and _visible(browser, f"#chip-{ten['run_id']}") == 1
        browser.click(f"#chip-{ten['run_id']}")
        browser.click(f"#run-{ten['run_id']} a[href='#cmp={ten['run_id']},{noop['run_id']}']")
        sides = browser.js(
            "Array.prototype.map.call(document.querySelectorAll('#tv-cmp > .tv-run'), function (s) {"
            " var r = s.getBoundingClientRect(); return [r.left, r.top, s.querySelector('h3').textContent]; })"
        )
        assert len(sides) == 2 and sides[0][0] < sides[1][0] and abs(sides[0][1] - sides[1][1]) < 2
        assert ten["alias"] in sides[0][2] and noop["alias"] in sides[1][2]
        browser.js("location.hash = ''")
        browser.click("#tv-c-go")  # the bar: packet bugfix-median, first alias vs second
        assert browser.js("document.querySelectorAll('#tv-cmp > .tv-run').length") == 2


@needs_chromium
def test_without_javascript_a_chip_still_opens_its_run(report: Path) -> None:
    rid = report_records()[0]["run_id"]
    with Chromium() as browser:
        browser.open(report.as_uri() + f"#run-{rid}", scripts=False)
        assert browser.js(f"getComputedStyle(document.getElementById('run-{rid}')).display") == "block"
        assert _visible(browser, f"#run-{rid} li.tv-turn") == 10

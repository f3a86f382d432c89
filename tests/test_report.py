"""The self-contained HTML report: structure, escaping, no external resources, and a real render."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.reports.html import render_html, write_html
from pytest_agentbench.reports.trajectory import TRAJECTORY_JS
from pytest_agentbench.results.record import record_to_dict

from .test_results import COMMERCIAL, as_dicts, make_record, worked_example_records

VOID = {
    "meta",
    "br",
    "hr",
    "img",
    "input",
    "link",
    "wbr",
    "col",
    "area",
    "base",
    "source",
    "track",
    "line",
    "rect",
    "circle",
    "path",
}  # SVG shapes here are written self-closing


class Checker(HTMLParser):
    """Collects tags and checks that every opened element is closed in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.errors: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(text: str) -> Checker:
    checker = Checker()
    checker.feed(text)
    checker.close()
    assert not checker.errors and not checker.stack, (checker.errors, checker.stack)
    return checker


def hostile_records() -> list[dict[str, Any]]:
    rec = record_to_dict(
        make_record(
            "evil",
            passed=False,
            content="<script>alert('x')</script></pre><b>bold</b>",
            error='"><img src=x onerror=alert(1)>',
            cost=COMMERCIAL,
        )
    )
    rec["alias"] = "evil<i>alias</i>"
    rec["gates"][0]["id"] = "<svg onload=alert(2)>"
    return [rec]


@pytest.mark.slow
def test_report_has_every_section_and_is_well_formed(tmp_path: Path) -> None:
    records = as_dicts() + worked_example_records()
    path = write_html(records, tmp_path / "out" / "report.html", "nightly <run>")
    text = path.read_text(encoding="utf-8")
    page = parse(text)
    assert text.startswith("<!DOCTYPE html>") and "<title>nightly &lt;run&gt;</title>" in text
    for heading in ("Summary", "Pass rate", "Run latency", "Tokens per run", "Cost per run", "Outcome classes", "Runs"):
        assert f"<h2>{heading}</h2>" in text
    assert page.tags.count("svg") == 5
    for alias in ("scripted-good", "scripted-noop", "gpt-baseline", "local-coder"):
        assert alias in text
    assert "test double" in text and "not models" in text
    body = " ".join(page.text)
    assert "100% (1/1)" in body and "0% (0/1)" in body
    assert "$0.018" in body and "$0.00375" in body and "250/h" in body
    assert "n/a (not streamed)" in body  # the noop run was not streamed
    # one row per run, with folded transcripts and the failed gate's output
    assert page.tags.count("details") >= len(records) + 1
    assert "gate regression output (tail)" in body and "[tool finish]" in body


def test_report_is_self_contained(tmp_path: Path) -> None:
    text = render_html(as_dicts() + worked_example_records())
    page = parse(text)
    for tag in ("link", "img", "iframe", "object", "embed", "image", "use"):
        assert tag not in page.tags, tag
    # one inline script, the trajectory viewer's (no source); links only within the page
    assert page.tags.count("script") == 1 and f"<script>{TRAJECTORY_JS}</script>" in text
    assert not {name for name, _ in page.attrs} & {"src", "xlink:href"}
    assert all(value.startswith("#") for name, value in page.attrs if name == "href" and value is not None)
    lowered = text.replace(f"<script>{TRAJECTORY_JS}</script>", "").lower()
    for needle in ("<script", "@import", "url(", "javascript:"):
        assert needle not in lowered, needle
    for needle in ("fetch(", "xmlhttprequest", "import(", "innerhtml", "eval("):
        assert needle not in TRAJECTORY_JS.lower(), needle
    # the only absolute URL is the SVG namespace, which is never fetched
    urls = {value for name, value in page.attrs if value and "://" in value}
    assert urls == {"http://www.w3.org/2000/svg"}


def test_everything_from_a_record_is_escaped() -> None:
    text = render_html(hostile_records())
    page = parse(text)
    assert page.tags.count("script") == 1 and "img" not in page.tags and text.count("<script") == 1  # ours only
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "evil&lt;i&gt;alias&lt;/i&gt;" in text and "<i>alias" not in text
    assert "&lt;svg onload=alert(2)&gt;" in text and page.tags.count("svg") == 5
    assert "<b>bold</b>" not in text
    assert not any(name.startswith("on") for name, _ in page.attrs)


def test_unknown_cost_reads_unknown_not_zero() -> None:
    text = render_html([record_to_dict(make_record("nocost"))])
    assert "Cost unknown for every alias" in text and "$0<" not in text
    text = render_html([record_to_dict(make_record("nocost")), record_to_dict(make_record("api", cost=COMMERCIAL))])
    assert "unknown (no cost: mapping or no usage)" in text


def test_empty_report() -> None:
    text = render_html([], "empty")
    parse(text)
    assert "No runs recorded." in text


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed (apt-get install chromium)")
def test_headless_chromium_renders_it(tmp_path: Path) -> None:
    path = write_html(as_dicts() + worked_example_records() + hostile_records(), tmp_path / "r.html", "render")
    png = tmp_path / "r.png"
    result = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--screenshot={png}",
            "--window-size=1200,1600",
            path.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert png.is_file(), result.stdout + result.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000  # not a blank page


def test_infrastructure_runs_are_shown_apart() -> None:
    """Issue 15: a note, a section of their own, out of the runs table, the charts and the pass rate."""
    from .test_infrastructure import infra_record

    records = [record_to_dict(make_record("good")), infra_record("dead")]
    text = render_html(records)
    parse(text)
    runs = text[text.index("<h2>Runs</h2>") : text.index("<h2>Infrastructure errors</h2>")]
    apart = text[text.index("<h2>Infrastructure errors</h2>") :]
    assert "1 run(s) never got an answer from their endpoint" in text
    assert ">good<" in runs and ">dead<" not in runs
    assert ">dead<" in apart and "http://127.0.0.1:9/v1" in apart and "Connection refused" in apart
    assert "no answer: 1 infrastructure error(s)" in text and "100% (1/1)" in text
    assert "Infrastructure errors" not in render_html(records[:1])

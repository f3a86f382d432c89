"""The self-contained HTML report: structure, escaping, no external resources, and a real render."""

from __future__ import annotations

import re
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
    headings = (
        "Summary",
        "Pass rate",
        "Per packet",
        "Paired comparison",
        "Run latency",
        "Tokens per run",
        "Cost per run",
    )
    for heading in (*headings, "Outcome classes", "Runs"):
        assert f"<h2>{heading}</h2>" in text
    # pass rate, the paired differences, latency, tokens, $ per run, $ per solved run, outcomes
    assert page.tags.count("svg") == 7
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


# --------------------------------------------------------------------------- issue 11: intervals in the report


def repeat_records() -> list[dict[str, Any]]:
    """Two packets x 5 repeats, priced per token: a passes 7 of 10 trials, b 2 of 10; every pair is flaky.
    Exact numbers, so the whiskers' positions can be checked."""
    out = []
    for alias, outcomes in (("a", {"p1": "PPPPF", "p2": "PPFPF"}), ("b", {"p1": "PFFFF", "p2": "FFFFP"})):
        for packet_id, trials in outcomes.items():
            for r, ch in enumerate(trials, 1):
                rec = record_to_dict(
                    make_record(alias, passed=ch == "P", cost=COMMERCIAL, calls=[(1.0 + r, 0.2, 100, 10)])
                )
                rec.update(repeat=r, packet={"id": packet_id, "kind": "bug-fix", "version": 1})
                out.append(rec)
    return out


def _svg_after(text: str, heading: str) -> str:
    start = text.index("<svg", text.index(heading))
    return text[start : text.index("</svg>", start)]


def _ci_groups(svg_text: str) -> list[tuple[float, float, str]]:
    return [
        (float(lo), float(hi), title)
        for lo, hi, title in re.findall(
            r'<g class="ci" data-low="([\d.]+)" data-high="([\d.]+)"><title>([^<]*)', svg_text
        )
    ]


def test_pass_rate_chart_has_wilson_whiskers_at_the_interval() -> None:
    from pytest_agentbench.reports.intervals import wilson_interval

    text = render_html(repeat_records())
    parse(text)
    chart = _svg_after(text, "<h2>Pass rate</h2>")
    groups = _ci_groups(chart)
    assert len(groups) == 2
    for (lo, hi, title), (k, n) in zip(groups, [(7, 10), (2, 10)], strict=True):
        ref = wilson_interval(k, n)
        assert lo == pytest.approx(190 + ref.low * 720, abs=0.06) and hi == pytest.approx(
            190 + ref.high * 720, abs=0.06
        )
        assert title == f"95% interval (Wilson): {ref.low:.0%} - {ref.high:.0%}"
    assert chart.count("<line") >= 2 * 3 + 6  # per whisker: the line and two caps (plus the axis ticks)
    assert "70% (7/10) [40, 89]" in chart and "20% (2/10) [6, 51]" in chart


def test_cost_charts_have_whiskers_and_an_open_end_when_unbounded() -> None:
    text = render_html(repeat_records())
    per_run = _ci_groups(_svg_after(text, "<h2>Cost per run</h2>"))
    per_solved_svg = _svg_after(text, "<h3>$ per solved run</h3>")
    per_solved = _ci_groups(per_solved_svg)
    assert len(per_run) == 2 and len(per_solved) == 2
    # b solved 2 of 10: a resample without a pass has probability 0.8^10 = 11 %: no upper bound
    assert per_solved[1][1] == 190 + 720 and per_solved[1][2].endswith(" - unbounded")
    b_group = per_solved_svg[per_solved_svg.index('data-high="910.0"') :]
    assert b_group[: b_group.index("</g>")].count("<line") == 2  # the line and the low cap: no cap at the edge
    assert "unbounded]" in per_solved_svg


def test_per_packet_estimates_and_the_repeat_column() -> None:
    text = render_html(repeat_records())
    page = parse(text)
    section = text[text.index("<h2>Per packet</h2>") : text.index("<h2>Run latency</h2>")]
    assert section.count('<span class="flaky">flaky</span>') == 4  # every pair both passed and failed
    assert "<b>4/5</b> passed &middot; 80% [38%, 96%]" in section and "pass^5 0%" in section
    for k in range(1, 6):
        assert f"<td>pass@{k}</td>" in section and f"<td>pass^{k}</td>" in section
    runs = text[text.index("<h2>Runs</h2>") :]
    assert "<th>repeat</th>" in runs
    repeats = re.findall(r"<td class=nw>p1</td><td>a</td><td class=num>(\d)</td>", runs)
    assert repeats == ["1", "2", "3", "4", "5"]  # sorted by repeat within (packet, alias)
    assert "pass@5" in " ".join(page.text)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def _png_pixels(data: bytes) -> tuple[int, int, list[bytes], int]:
    """(width, height, rows of raw pixel bytes, bytes per pixel) of an 8-bit RGB/RGBA PNG (a screenshot)."""
    import struct
    import zlib

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        header = body if kind == b"IHDR" else header
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", header[:10])
    assert depth == 8 and color in (2, 6), (depth, color)
    bpp = 3 if color == 2 else 4
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a, b = line[i - bpp] if i >= bpp else 0, prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            pred = (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind] if kind else 0
            line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed (apt-get install chromium)")
def test_headless_chromium_draws_the_whiskers(tmp_path: Path) -> None:
    """The pass-rate chart alone, rendered: dark whisker pixels along each interval, none past its ends."""
    from pytest_agentbench.reports.intervals import wilson_interval

    chart = _svg_after(render_html(repeat_records()), "<h2>Pass rate</h2>") + "</svg>"
    page = tmp_path / "chart.html"
    page.write_text(f'<!DOCTYPE html><html><body style="margin:0;background:#fff">{chart}</body></html>')
    png = tmp_path / "chart.png"
    result = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--force-device-scale-factor=1",
         f"--screenshot={png}", "--window-size=1100,200", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert png.is_file(), result.stdout + result.stderr
    width, _, rows, bpp = _png_pixels(png.read_bytes())

    def dark(x: int, y: int) -> bool:
        return min(sum(rows[yy][x * bpp : x * bpp + 3]) for yy in (y - 1, y, y + 1)) < 200

    for i, (k, n) in enumerate([(7, 10), (2, 10)]):
        ref = wilson_interval(k, n)
        lo, hi, mid = round(190 + ref.low * 720), round(190 + ref.high * 720), 8 + i * 28 + 14
        assert all(dark(x, mid) for x in range(lo + 2, hi - 1, 4)), f"row {i}: no whisker line"
        assert dark(lo, mid - 5) and dark(hi, mid - 5), f"row {i}: no caps"
        assert not dark(lo - 4, mid) and not dark(hi + 4, mid), f"row {i}: the whisker runs past its bounds"

"""Paired comparison of two aliases: pairing, statistics, verdict, CLI, HTML section, the doc's tables.

The plugin-level test runs a seeded coin-flip alias (a scripted test double whose trial passes or
fails by a coin seeded with the trial's packet and repeat) against an always-pass one; the
statistical claims are checked by simulation and against scipy.stats.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.cli import main
from pytest_agentbench.errors import UsageError
from pytest_agentbench.reports.compare import compare, comparison_to_dict, format_comparison, pair_trials
from pytest_agentbench.reports.compare_html import paired_section
from pytest_agentbench.reports.html import render_html
from pytest_agentbench.reports.planning import repeats_tables, replace_tables
from pytest_agentbench.reports.stats import median

from .conftest import REPO, SCRIPTS

pytest_plugins = ["pytester"]


def rec(alias: str, packet: str, repeat: int | None, passed: bool, **extra: Any) -> dict[str, Any]:
    """A run record as results.jsonl holds it (only the fields a comparison reads)."""
    out: dict[str, Any] = {
        "alias": alias,
        "packet": {"id": packet, "version": 1},
        "outcome": "finished",
        "passed": passed,
        "timestamp": extra.pop("timestamp", "2026-01-01T00:00:00+00:00"),
        "client": {"wall_s": extra.pop("wall_s", 1.0), "tokens": {"prompt": extra.pop("tokens", 100), "completion": 0}},
        "cost": {"usd": extra.pop("usd", None)},
    }
    if repeat is not None:
        out["repeat"] = repeat
    out.update(extra)
    return out


def coin_records(seed: int, repeats: int = 20, packets: int = 2, a: float = 0.5, b: float = 0.5) -> list[dict]:
    rng = random.Random(seed)
    return [
        rec(alias, f"p{p}", r, rng.random() < rate)
        for p in range(packets)
        for r in range(1, repeats + 1)
        for alias, rate in (("a", a), ("b", b))
    ]


# --------------------------------------------------------------------------- pairing


def test_pairs_by_packet_and_repeat_and_says_what_it_left_out() -> None:
    records = [
        rec("a", "p1", None, True),  # written before --repeats: repeat 1
        rec("b", "p1", 1, False),
        rec("a", "p1", 2, True),
        rec("b", "p1", 2, True),
        rec("a", "p1", 3, True),  # b never ran p1-r3: unpaired
        rec("a", "p2", 1, True),
        rec("b", "p2", 1, False, outcome="infrastructure", failure="connection_error"),  # nothing judged
        rec("b", "p9", 1, True),  # only b
    ]
    p = pair_trials(records, "a", "b")
    assert [(x.packet, x.repeat, x.passed, y.passed) for x, y in p.pairs] == [
        ("p1", 1, True, False),
        ("p1", 2, True, True),
    ]
    assert p.unpaired_a == (("p1", 3),) and p.unpaired_b == (("p9", 1),)
    assert p.infrastructure == (("p2", 1),) and p.lost == 3 and p.superseded == 0
    text = format_comparison(compare(records, "a", "b"))
    assert "left out: 1 trial(s) of a that b did not run (p1-r3)" in text
    assert "left out: 1 trial(s) of b that a did not run (p9-r1)" in text
    assert "left out: 1 pair(s) where an endpoint never answered" in text


def test_a_rerun_trial_counts_once_the_latest_judged_record() -> None:
    records = [
        rec("a", "p", 1, True),
        rec("b", "p", 1, False, outcome="infrastructure", timestamp="2026-01-01T00:00:00+00:00"),
        rec("b", "p", 1, True, timestamp="2026-01-02T00:00:00+00:00"),  # the --resume rerun: judged
        rec("b", "p", 1, False, outcome="infrastructure", timestamp="2026-01-03T00:00:00+00:00"),  # never wins
        rec("a", "p", 2, False, timestamp="2026-01-01T00:00:00+00:00"),
        rec("a", "p", 2, True, timestamp="2026-01-05T00:00:00+00:00"),  # the latest of two judged records
        rec("b", "p", 2, True),
    ]
    p = pair_trials(records, "a", "b")
    assert [(x.passed, y.passed) for x, y in p.pairs] == [(True, True), (True, True)]
    assert p.superseded == 3 and p.infrastructure == ()
    assert "3 record(s) set aside" in format_comparison(compare(records, "a", "b"))


# --------------------------------------------------------------------------- statistics


def test_test_and_interval_are_the_paired_ones_and_match_scipy() -> None:
    stats = pytest.importorskip("scipy.stats", reason="scipy is the reference implementation: pip install scipy")
    records = coin_records(seed=3, a=0.8, b=0.4)
    c = compare(records, "a", "b")
    k = c.counts
    assert k.n == 40 and k.discordant > 0
    assert c.p_value == pytest.approx(stats.binomtest(k.only_b, k.discordant, 0.5).pvalue, rel=1e-9)
    assert c.difference.value == pytest.approx(k.rate_b - k.rate_a)
    assert c.difference.low < c.difference.value < c.difference.high
    assert c.difference.method == "newcombe-paired"


def test_deltas_are_b_minus_a_and_cost_only_over_pairs_known_for_both() -> None:
    records = []
    for r in range(1, 11):
        records.append(rec("a", "p", r, True, wall_s=float(r), tokens=100 + r, usd=0.01 if r <= 6 else None))
        records.append(rec("b", "p", r, True, wall_s=2.0 * r, tokens=300, usd=0.03 if r != 1 else None))
    c = compare(records, "a", "b")
    wall, tokens, cost = c.deltas
    assert wall.difference.value == pytest.approx(median([2.0 * r for r in range(1, 11)]) - median(range(1, 11)))
    assert wall.difference.low <= wall.difference.value <= wall.difference.high and wall.n == 10
    assert tokens.difference.value == pytest.approx(300 - 105.5)
    assert (cost.n, cost.pairs) == (5, 10)  # r = 2..6: known on both sides
    assert cost.difference.value == pytest.approx(0.02)
    text = format_comparison(c)
    assert "cost per run (mean)" in text and "(5 of 10 pairs: known for both)" in text
    assert "$0 " not in text


def test_cost_unknown_everywhere_reads_unknown_never_zero() -> None:
    c = compare([rec("a", "p", 1, True), rec("b", "p", 1, False)], "a", "b")
    assert c.deltas[2].n == 0 and c.deltas[2].difference.value is None
    assert "cost per run (mean)                unknown: no pair has it for both aliases (0 of 1 pairs)" in (
        format_comparison(c)
    )


def test_verdict_names_the_winner_or_what_the_run_could_detect() -> None:
    strong = compare(coin_records(seed=1, a=1.0, b=0.5), "a", "b")
    assert strong.significant
    assert strong.verdict.startswith("b solves fewer than a: -")
    assert strong.verdict.endswith("(n = 40 pairs)") and "(b - a)" in strong.verdict
    assert compare(coin_records(seed=1, a=1.0, b=0.5), "b", "a").verdict.startswith("a solves more than b: +")

    weak = compare(coin_records(seed=2, repeats=5, packets=1), "a", "b")
    assert not weak.significant
    assert weak.verdict.startswith("no detectable difference at n = 5 (b - a: ")
    assert "the smallest difference this run could detect is ~" in weak.verdict or "too small" in weak.verdict


def test_identical_coin_flip_aliases_read_as_no_detectable_difference_in_95_percent_of_200() -> None:
    verdicts = [compare(coin_records(seed=s), "a", "b", resamples=20) for s in range(200)]
    quiet = sum(not v.significant for v in verdicts)
    assert quiet >= 190, f"{200 - quiet} of 200 identical pairs of aliases read as different"
    assert all(v.verdict.startswith("no detectable difference") for v in verdicts if not v.significant)


def test_always_pass_against_a_coin_flip_is_significant_after_20_repeats() -> None:
    found = sum(compare(coin_records(seed=s, a=1.0, b=0.5), "a", "b", resamples=20).significant for s in range(100))
    assert found >= 99


def test_per_packet_table_shows_which_packets_flip() -> None:
    records = [rec("a", "easy", r, True) for r in (1, 2)] + [rec("b", "easy", r, True) for r in (1, 2)]
    records += [rec("a", "hard", 1, True), rec("b", "hard", 1, False), rec("a", "hard", 2, False)]
    records += [rec("b", "hard", 2, True)]
    c = compare(records, "a", "b")
    flips = {f.packet: (f.pairs, f.passed_a, f.passed_b, f.only_a, f.only_b) for f in c.packets}
    assert flips == {"easy": (2, 2, 2, 0, 0), "hard": (2, 1, 1, 1, 1)}
    assert "1 of 2 packet(s) flip" in format_comparison(c)


def test_unknown_alias_same_alias_and_no_pairs_are_usage_errors_with_the_fix() -> None:
    records = [rec("a", "p", 1, True), rec("b", "q", 1, True)]
    with pytest.raises(UsageError, match=r"alias 'zz' has no runs in these results; the aliases there are: a, b"):
        compare(records, "a", "zz")
    with pytest.raises(UsageError, match="two different aliases"):
        compare(records, "a", "a")
    with pytest.raises(UsageError, match=r"no paired \(packet, repeat\) trials.*--models=a,b --repeats"):
        compare(records, "a", "b")


def test_different_packet_versions_are_warned_about() -> None:
    records = [rec("a", "p", 1, True), {**rec("b", "p", 1, True), "packet": {"id": "p", "version": 2}}]
    c = compare(records, "a", "b")
    assert c.warnings and "different versions" in format_comparison(c)


def test_json_form_holds_everything_the_text_says() -> None:
    c = compare(coin_records(seed=5, a=0.9, b=0.4), "a", "b")
    data = json.loads(json.dumps(comparison_to_dict(c)))
    assert data["verdict"] == c.verdict and data["pairs"] == 40 and data["mcnemar_p"] == c.p_value
    assert data["counts"]["only_a"] == c.counts.only_a
    assert [d["name"] for d in data["deltas"]] == ["wall time per run", "tokens per run", "cost per run"]
    assert {p["packet"] for p in data["packets"]} == {"p0", "p1"}
    assert data["left_out"] == {"unpaired_a": [], "unpaired_b": [], "infrastructure": [], "superseded_records": 0}


# --------------------------------------------------------------------------- the CLI


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_cli_compares_merges_files_and_prints_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = coin_records(seed=1, a=1.0, b=0.5)
    first = write_jsonl(tmp_path / "one" / "results.jsonl", records[:40])
    write_jsonl(tmp_path / "two" / "results.jsonl", records[40:])
    assert main(["compare", "a", "b", str(first), str(tmp_path / "two")]) == 0
    out = capsys.readouterr().out
    assert "verdict: b solves fewer than a" in out and "40 pairs" in out
    assert main(["compare", "a", "b", str(first), str(tmp_path / "two"), "--json", "--confidence", "0.9"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["confidence"] == 0.9 and data["pairs"] == 40


def test_cli_default_is_the_newest_run_the_plugin_wrote(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    monkeypatch.chdir(tmp_path)
    old = write_jsonl(tmp_path / ".agentbench" / "runs" / "old" / "results.jsonl", [rec("x", "p", 1, True)])
    os.utime(old, (1, 1))
    write_jsonl(tmp_path / ".agentbench" / "runs" / "new" / "results.jsonl", coin_records(seed=1))
    assert main(["compare", "a", "b"]) == 0
    assert "40 pairs" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["a", "zz", "{f}"], "{f}: alias 'zz' has no runs in these results; the aliases there are: a, b"),
        (["a", "b", "{d}/missing.jsonl"], "{d}/missing.jsonl not found: give a results.jsonl or the folder"),
        (["a", "b", "{d}"], "{d}/results.jsonl not found"),
        (["a", "b"], "no results given and none found under ./.agentbench/runs"),
        (["a", "b", "{e}"], "{e}: no run records in it"),
    ],
)
def test_cli_errors_exit_2_name_the_file_and_the_fix(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    expected: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    f = write_jsonl(tmp_path / "res" / "results.jsonl", [rec("a", "p", 1, True), rec("b", "p", 1, False)])
    e = tmp_path / "empty.jsonl"
    e.write_text("not json\n")
    fill = {"f": str(f), "d": str(tmp_path / "nowhere"), "e": str(e)}
    (tmp_path / "nowhere").mkdir()
    assert main(["compare", *(a.format(**fill) for a in args)]) == 2
    err = capsys.readouterr().err
    assert expected.format(**fill) in err and "Traceback" not in err


# --------------------------------------------------------------------------- the HTML section


def test_html_section_compares_each_alias_with_the_first_and_escapes() -> None:
    hostile = "<script>alert(1)</script>"
    records = coin_records(seed=1, a=1.0, b=0.5)
    records += [{**r, "alias": hostile} for r in records if r["alias"] == "a"]
    assert paired_section([r for r in records if r["alias"] == "a"]) == []
    html = "".join(paired_section(records, ["a", "b", hostile]))
    assert "<h2>Paired comparison</h2>" in html and "against <b>a</b>" in html
    assert "b - a" in html and "&lt;script&gt;alert(1)&lt;/script&gt; - a" in html
    assert "<script>" not in html
    assert "b solves fewer than a" in html and "packets that flip (2 of 2)" in html
    page = render_html(records, aliases=["a", "b", hostile])
    assert page.index("<h2>Paired comparison</h2>") < page.index("<h2>Runs</h2>")


def test_html_section_says_when_an_alias_could_not_be_compared() -> None:
    records = [rec("a", "p", 1, True), rec("b", "q", 1, True), rec("c", "p", 1, False)]
    html = "".join(paired_section(records))
    assert "not compared: a and b have no paired (packet, repeat) trials" in html
    assert "c - a" in html


# --------------------------------------------------------------------------- the doc's tables


def test_the_repeats_tables_in_the_doc_are_what_the_code_computes() -> None:
    doc = (REPO / "docs" / "comparing.md").read_text(encoding="utf-8")
    assert repeats_tables() in doc, "docs/comparing.md is stale: python -m pytest_agentbench.reports.planning --write"
    assert replace_tables(doc) == doc
    assert "| 10 points | 412 | 83 | 21 | 9 |" in doc  # 412 pairs for 10 points at 80 % power, 5/20/50 packets
    with pytest.raises(ValueError, match="markers"):
        replace_tables("no markers here")


# --------------------------------------------------------------------------- through the plugin

TINY_PACKET = """\
id: tiny
kind: bug-fix
title: Write done.txt
prompt: "Create a file done.txt that holds the word done."
workspace: repo/
limits: {max_turns: 5, timeout_s: 60}
gates:
  - id: done
    run: grep -qx done done.txt
"""
TINY_GOOD = """\
# A scripted trajectory (test double, not a model) that solves the tiny packet.
conversations:
  - responses:
      - tool_calls:
          - {name: write_file, arguments: {path: done.txt, content: "done\\n"}}
      - tool_calls:
          - {name: finish, arguments: {summary: "wrote done.txt"}}
"""
COIN_CONFTEST = '''
"""The alias `coin`: each trial talks to the solving script or to the no-op one, by a coin seeded with the
trial's packet and repeat, so the same trial always gets the same side (reproducible, also under xdist)."""
import random

import pytest

from pytest_agentbench.models.adapter import ModelAdapter
from pytest_agentbench.serving.scripted import ScriptedServer

_TAILS = {}
_TRIAL = {}


def pytest_configure(config):
    _TAILS["server"] = ScriptedServer(config.rootpath / "scripts" / "noop").start()


def pytest_unconfigure(config):
    server = _TAILS.pop("server", None)
    if server is not None:
        server.stop()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    case = item.callspec.params["agentbench_case"]
    _TRIAL["now"] = (case.packet.id, case.repeat)


@pytest.hookimpl(tryfirst=True)
def pytest_agentbench_make_adapter(spec, base_url):
    if spec.alias != "coin":
        return None
    packet, repeat = _TRIAL["now"]
    heads = random.Random(f"{packet}-r{repeat}").random() < 0.5
    return ModelAdapter(spec, base_url=base_url if heads else _TAILS["server"].base_url)
'''
#: How the seeded coin falls for tiny-r1 ... tiny-r20: 12 heads (passes), 8 tails.
COIN_PASSES = sum(random.Random(f"tiny-r{r}").random() < 0.5 for r in range(1, 21))


def coin_project(pytester: pytest.Pytester, extra_models: str = "") -> Path:
    """A pytester folder: the tiny packet; aliases a and a2 (always pass) and coin (the seeded coin)."""
    root = pytester.path
    (root / "packets" / "tiny" / "repo").mkdir(parents=True)
    (root / "packets" / "tiny" / "repo" / "README.txt").write_text("a file\n")
    (root / "packets" / "tiny" / "packet.yaml").write_text(TINY_PACKET)
    (root / "scripts" / "good").mkdir(parents=True)
    (root / "scripts" / "good" / "tiny.yaml").write_text(TINY_GOOD)
    shutil.copytree(SCRIPTS / "noop", root / "scripts" / "noop")
    good = "    serve: {engine: scripted, script: scripts/good}\n"
    (root / "models.yaml").write_text(
        "models:\n"
        f"  a:\n    model: scripted-good\n{good}"
        f"  a2:\n    model: scripted-good\n{good}"
        f"  coin:\n    model: scripted-coin\n{good}" + extra_models
    )
    pytester.makeconftest(COIN_CONFTEST)
    return root


RUN = ["--packets", "packets", "--sandbox=local", "-p", "no:cacheprovider", "-p", "no:benchmark", "--repeats", "20"]


def test_plugin_run_then_compare_finds_the_coin_flip_alias_significantly_worse(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture[str]
) -> None:
    root = coin_project(pytester)
    result = pytester.runpytest("--models=a,coin", *RUN, "--agentbench-results", "res", "--agentbench-html", "r.html")
    result.assert_outcomes(passed=20 + COIN_PASSES, failed=20 - COIN_PASSES)
    capsys.readouterr()
    assert main(["compare", "a", "coin", str(root / "res")]) == 0
    out = capsys.readouterr().out
    assert f"verdict: coin solves fewer than a: -{(20 - COIN_PASSES) * 5} points" in out, out
    assert "n = 20 pairs" in out and f"only A {20 - COIN_PASSES}, only B 0" in out
    assert f"tiny       20        20           {COIN_PASSES}" in out
    html = (root / "r.html").read_text()
    assert "<h2>Paired comparison</h2>" in html and "coin solves fewer than a" in html


def _screenshot_colours(tmp_path: Path, records: list[dict], name: str) -> dict[str, int]:
    """Render the paired section alone in headless chromium; count its red (significant) and blue pixels."""
    import subprocess

    from .test_report import _png_pixels

    section = "".join(paired_section(records, ["a", "b"]))
    page = tmp_path / f"{name}.html"
    page.write_text(f'<!DOCTYPE html><html><body style="margin:0;background:#fff">{section}</body></html>')
    png = tmp_path / f"{name}.png"
    result = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--force-device-scale-factor=1",
         f"--screenshot={png}", "--window-size=1100,700", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert png.is_file(), result.stdout + result.stderr
    width, height, rows, bpp = _png_pixels(png.read_bytes())
    counts = {"red": 0, "blue": 0}
    for row in rows:
        for x in range(width):
            r, g, b = row[x * bpp : x * bpp + 3]
            if r > 170 and g < 80 and b < 80:
                counts["red"] += 1
            elif abs(r - 78) < 25 and abs(g - 121) < 25 and abs(b - 167) < 25:
                counts["blue"] += 1
    return counts


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed (apt-get install chromium)")
def test_headless_chromium_draws_a_significant_difference_red_and_noise_blue(tmp_path: Path) -> None:
    drop = _screenshot_colours(tmp_path, coin_records(3, a=1.0, b=0.5), "drop")
    same = _screenshot_colours(tmp_path, coin_records(4, a=0.5, b=0.5), "same")
    assert drop["red"] > 200, drop  # the interval, drawn in the significant colour
    assert same["red"] < 20 and same["blue"] > 200, same

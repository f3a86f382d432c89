"""The Capacity part of the run report: saved sweeps and loads in the same page, the knee, the ranking."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.capacity.latency import RequestTiming, request_stats
from pytest_agentbench.capacity.levels import LevelResult, SweepResult
from pytest_agentbench.capacity.load import LoadResult, RateRun
from pytest_agentbench.capacity.reconcile import Check
from pytest_agentbench.capacity.slo import Slo
from pytest_agentbench.cli import main as cli_main
from pytest_agentbench.reports.capacity_html import capacity_fragments
from pytest_agentbench.reports.html import render_html
from pytest_agentbench.reports.trajectory import TRAJECTORY_JS
from pytest_agentbench.results.jsonl import write_records

from .test_report import parse
from .test_results import as_dicts

SLO = Slo(ttft_p50_s=0.5, tps_p50=10.0, ttft_s=0.6)


def _level(devs: int, ttft: float, usd: float, passed: int) -> LevelResult:
    holds, reasons = SLO.judge(ttft, 20.0)
    client = {
        "ttft_p50_s": ttft,
        "decode_tok_s_p50": 20.0,
        "concurrency_max": devs,
        "harness_cpu_per_call_ms_p50": 1.5,
        "harness_cpu_per_output_token_ms": 0.2,
        "goodput": {"good": 9 * devs, "completed": 10 * devs, "share": 0.9, "rate_per_s": 1.5 * devs},
    }
    runs = [{"passed": i < passed, "outcome": "finished", "failures": {}} for i in range(4)]
    return LevelResult(
        devs=devs,
        wall_s=10.0,
        runs=runs,
        client=client,
        server={"ttft_p50_s": ttft * 1.1, "decode_tok_s_p50": 19.0, "running_max": devs, "kv_cache_usage_max": 0.3},
        slo_holds=holds,
        slo_reasons=reasons,
        cost={"usd_per_dev_month": usd / devs, "compare_usd_per_dev_month": 40.0},
        checks=[Check("tokens", "ok", "client 100 = server 100"), Check("ttft", "mismatch", "apart <b>x</b>")],
        prefix_cache="reset: ok",
        loadavg_before=(0.5, 0.4, 0.3),
    )


def sweep_result(alias: str, ttfts: tuple[float, ...], usd: float, passed: int = 4) -> SweepResult:
    return SweepResult(
        alias=alias,
        model=f"model-of-{alias}",
        test_double=False,
        slo=SLO,
        levels=[_level(n, t, usd, passed) for n, t in zip((1, 2, 4), ttfts, strict=True)],
        packets=["touch-pass"],
        rounds=1,
        sandbox="local",
        base_url="http://127.0.0.1:9/v1",
        metrics_url=None,
        server_metrics="available",
        notes=["a note <i>escaped</i>"],
        started_at="2025-01-01T00:00:00+00:00",
        finished_at="2025-01-01T00:10:00+00:00",
        compare_alias="gpt-baseline",
        slo_sources=("command line",),
    )


def load_result() -> LoadResult:
    runs = []
    for rate, ttft in ((2.0, 0.1), (float("inf"), 0.9)):
        timings = [
            RequestTiming(ok=True, ttft_s=ttft * (1 + i / 10), tpot_s=0.02, e2e_s=1.0, itl_s=(0.02, 0.03))
            for i in range(10)
        ]
        stats = request_stats(timings, wall_s=5.0, slo=SLO)
        holds, reasons = SLO.judge(stats["ttft_s"]["p50"], 30.0)
        runs.append(RateRun(rate, stats, {"harness_cpu_per_output_token_ms": 0.3}, None, [], holds, reasons, "ok"))
    config = {"num_prompts": 10, "output_len": 64, "ignore_eos": True, "burstiness": 1.0}
    config |= {"max_concurrency": None, "seed": 0}
    return LoadResult(
        alias="loaded-<alias>",
        model="m",
        test_double=True,
        base_url="http://127.0.0.1:9/v1",
        config=config,
        prompts="random 256 tokens",
        slo=SLO,
        slo_sources=(),
        server_metrics="not available",
        notes=[],
        started_at="t0",
        runs=runs,
        finished_at="t1",
    )


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    name = "sweep.json" if data["schema"] == "agentbench-sweep/1" else "load.json"
    (path / name).write_text(json.dumps(data, allow_nan=False), encoding="utf-8")
    return path / name


def test_results_round_trip_through_their_json() -> None:
    sweep = sweep_result("a", (0.2, 0.4, 0.8), 1000.0)
    data = json.loads(json.dumps(sweep.to_dict()))
    again = SweepResult.from_dict(data)
    assert again.knee == sweep.knee and again.knee[0] == 2 and again.slo == SLO
    assert again.to_dict() == data
    load = load_result()
    data = json.loads(json.dumps(load.to_dict()))
    back = LoadResult.from_dict(data)
    assert back.runs[1].rate == float("inf") and back.runs[0].stats == load.runs[0].stats
    assert {k: v for k, v in back.to_dict().items() if k != "machine"} == {
        k: v for k, v in data.items() if k != "machine"
    }


@pytest.fixture
def saved(tmp_path: Path) -> dict[str, Path]:
    return {
        "cheap": write_json(tmp_path / "cheap", sweep_result("awq-l4", (0.2, 0.4, 0.8), 300.0, passed=1).to_dict()),
        "good": write_json(tmp_path / "good", sweep_result("fp8-<l40s>", (0.1, 0.3, 0.45), 900.0).to_dict()),
        "load": write_json(tmp_path / "load", load_result().to_dict()),
    }


def test_the_report_holds_sweeps_loads_and_the_ranking(saved: dict[str, Path]) -> None:
    fragments = capacity_fragments([saved["cheap"], saved["good"].parent], [saved["load"]])
    assert len(fragments) == 4 and not any("<html" in f or "<body" in f for f in fragments)
    text = render_html(as_dicts(), "with capacity", capacity=fragments)
    page = parse(text)
    assert text.count("<html") == 1 and text.count("</body>") == 1
    assert '<h2 id="capacity">Capacity</h2>' in text and text.index("Capacity</h2>") < text.index("<h2>Runs</h2>")
    # per sweep: the knee in its heading, the SLO-vs-N and goodput charts, the levels table with goodput
    assert "<h3>sweep: awq-l4 (knee N=2)</h3>" in text and "<h3>sweep: fp8-&lt;l40s&gt; (knee N=4)</h3>" in text
    for fragment in fragments[:2]:
        assert "median TTFT vs developers" in fragment and "goodput vs developers" in fragment
        assert fragment.count("<svg") == 3  # TTFT, decode tok/s and goodput vs N
    assert "<th>goodput</th>" in text and "90% (9/10, 1.50/s)" in text
    # per load: goodput and the TTFT / ITL percentiles vs rate, and its table
    assert "<h3>load: loaded-&lt;alias&gt;</h3>" in text
    for chart in ("goodput vs request rate", "TTFT percentiles vs request rate", "ITL percentiles vs request rate"):
        assert chart in text
    assert "<td>inf</td>" in text
    # the ranking: awq-l4 is cheaper but fails the packets, so fp8 wins at every N it holds the SLO
    assert "Ranking across sweeps" in text and "<h4>N = 4</h4>" in text
    ranked = text[text.index("Ranking across sweeps") :]
    assert "pass rate 25% is more than 5 points below the best (100%)" in ranked
    assert '<tr class="win"><td>1</td><td>fp8-&lt;l40s&gt;</td>' in ranked
    # escaped, and as self-contained as the plain report: the trajectory viewer's script only, no URL
    assert "<i>escaped</i>" not in text and "<b>x</b>" not in text and "<l40s>" not in text
    assert page.tags.count("script") == 1 and f"<script>{TRAJECTORY_JS}</script>" in text
    lowered = text.replace(f"<script>{TRAJECTORY_JS}</script>", "").lower()
    for needle in ("<script", "@import", "url(", "javascript:"):
        assert needle not in lowered, needle
    assert {v for _, v in page.attrs if v and "://" in v} == {"http://www.w3.org/2000/svg"}
    plain = parse(render_html(as_dicts(), "without"))
    assert page.tags.count("svg") == plain.tags.count("svg") + 3 * 2 + 3 + 3  # 3 per sweep, 3 for the load, 1 per N


def test_one_sweep_is_not_ranked_and_no_capacity_leaves_the_report_as_it_was(saved: dict[str, Path]) -> None:
    fragments = capacity_fragments([saved["good"]])
    assert len(fragments) == 1 and "Ranking" not in fragments[0]
    plain = render_html(as_dicts(), "r")
    assert "Capacity" not in plain and "section.capacity" not in plain
    assert "Capacity" not in render_html(as_dicts(), "r", capacity=[])
    assert "No runs recorded." in render_html([], capacity=fragments) and "fp8" in render_html([], capacity=fragments)


def test_agentbench_report_writes_one_page(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, saved: dict[str, Path]
) -> None:
    results = write_records(as_dicts(), tmp_path / "run" / "results.jsonl")
    out = tmp_path / "report.html"
    argv = ["report", str(results), "--html", str(out), "--sweep", str(saved["cheap"]), "--sweep", str(saved["good"])]
    assert cli_main([*argv, "--load", str(saved["load"].parent), "--pass-tolerance", "80"]) == 0
    text = out.read_text(encoding="utf-8")
    parse(text)
    ranked = text[text.index("Ranking across sweeps") :]
    assert '<tr class="win"><td>1</td><td>awq-l4</td>' in ranked  # within 80 points, the cheap one wins
    assert "load: loaded-&lt;alias&gt;" in text and "Summary</h2>" in text


def test_bad_capacity_files_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, saved: dict[str, Path]
) -> None:
    results = write_records(as_dicts(), tmp_path / "run" / "results.jsonl")
    out = tmp_path / "report.html"
    (tmp_path / "notes.json").write_text('{"hello": 1}')
    (tmp_path / "broken.json").write_text("{not json")
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({"schema": "agentbench-sweep/1", "alias": "x", "levels": [{"devs": 1}]}))
    cases = [
        (["--sweep", str(tmp_path / "notes.json")], "notes.json: not an agentbench sweep result"),
        (["--sweep", str(tmp_path / "broken.json")], "broken.json: not a readable sweep.json"),
        (["--sweep", str(tmp_path / "nowhere")], "nowhere: not a readable sweep.json"),
        (["--sweep", str(saved["load"])], "this is a load result (agentbench-load/1): give it with --load"),
        (["--load", str(saved["good"])], "this is a sweep result (agentbench-sweep/1): give it with --sweep"),
        (["--sweep", str(partial)], "partial.json: a sweep result without what the report reads"),
        (["--sweep", str(saved["good"]), "--sweep", str(saved["cheap"]), "--pass-tolerance", "150"], "0 to 100"),
    ]
    for extra, message in cases:
        assert cli_main(["report", str(results), "--html", str(out), *extra]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (extra, err)
        assert not out.exists()
    assert cli_main(["report", str(results), "--sweep", str(saved["good"])]) == 2
    assert "add --html PATH" in capsys.readouterr().err

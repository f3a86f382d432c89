"""``agentbench load``: arrivals, the load engine, prompts, the command - and one run against vLLM on CPU.

The arrival tests are statistical with fixed seeds: scipy (installed in the test environment as the
reference) checks the drawn gaps against the gamma distribution vllm bench draws from; a negative
control shows the same test rejects a wrong shape. The engine runs against the scripted server (a
test double over real HTTP on 127.0.0.1), wrapped where a test needs a slow or counting server.
"""

from __future__ import annotations

import json
import math
import statistics
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_agentbench.capacity import arrivals
from pytest_agentbench.capacity.load import MAX_WORKERS, Load, LoadConfig
from pytest_agentbench.capacity.prompts import Prompt, PromptSet, random_prompts, read_dataset
from pytest_agentbench.capacity.slo import Slo
from pytest_agentbench.cli import load as load_cli
from pytest_agentbench.errors import ConfigError
from pytest_agentbench.models.registry import ModelSpec
from pytest_agentbench.serving.scripted import ScriptedServer

scipy_stats = pytest.importorskip("scipy.stats")

# --------------------------------------------------------------------------- arrivals


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip([0.0, *times[:-1]], times, strict=True)]


def test_poisson_arrivals_have_exponential_gaps_with_cv_one() -> None:
    times = arrivals.arrival_times(20_000, 4.0, 1.0, seed=7)
    gaps = _gaps(times)
    cv = statistics.pstdev(gaps) / statistics.fmean(gaps)
    assert abs(cv - 1.0) < 0.03, cv  # the coefficient of variation of an exponential is 1
    assert times[-1] == pytest.approx(20_000 / 4.0)  # normalised as vllm bench: the last arrival at N / R
    assert all(b >= a for a, b in zip(times, times[1:], strict=False))
    raw = arrivals.inter_arrivals(5_000, 4.0, 1.0, rng=__import__("random").Random(3))
    assert scipy_stats.kstest(raw, scipy_stats.expon(scale=1 / 4.0).cdf).pvalue > 0.01


@pytest.mark.parametrize("burstiness", [0.25, 0.5, 2.0, 4.0])
def test_gamma_arrivals_follow_the_shape_vllm_bench_draws(burstiness: float) -> None:
    rate = 3.0
    raw = arrivals.inter_arrivals(5_000, rate, burstiness, rng=__import__("random").Random(11))
    reference = scipy_stats.gamma(a=burstiness, scale=1 / (rate * burstiness))
    assert scipy_stats.kstest(raw, reference.cdf).pvalue > 0.01
    assert statistics.fmean(raw) == pytest.approx(1 / rate, rel=0.06)
    # the normalised schedule keeps the shape: its CV is 1/sqrt(B) whatever the rescaling
    gaps = _gaps(arrivals.arrival_times(20_000, rate, burstiness, seed=5))
    assert statistics.pstdev(gaps) / statistics.fmean(gaps) == pytest.approx(1 / math.sqrt(burstiness), rel=0.05)
    # negative control: the same test rejects the neighbouring shape, so it can fail
    wrong = scipy_stats.gamma(a=burstiness * 1.5, scale=1 / (rate * burstiness * 1.5))
    assert scipy_stats.kstest(raw, wrong.cdf).pvalue < 1e-6


def test_arrivals_inf_rate_constant_gaps_seeds_and_errors() -> None:
    assert arrivals.arrival_times(5, math.inf, seed=1) == [0.0] * 5
    assert arrivals.arrival_times(4, 2.0, math.inf) == pytest.approx([0.5, 1.0, 1.5, 2.0])
    assert arrivals.arrival_times(50, 2.0, seed=9) == arrivals.arrival_times(50, 2.0, seed=9)
    assert arrivals.arrival_times(50, 2.0, seed=9) != arrivals.arrival_times(50, 2.0, seed=10)
    for rate, burst, flag in (
        (0.0, 1.0, "--request-rate"),
        (math.nan, 1.0, "--request-rate"),
        (1.0, 0.0, "--burstiness"),
    ):
        with pytest.raises(ConfigError, match=flag):
            arrivals.arrival_times(3, rate, burst)


# --------------------------------------------------------------------------- the engine


def spec_for(url: str, **kw: Any) -> ModelSpec:
    return ModelSpec(alias="loadme", model="m", source=Path("test"), base_url=url, test_double=True, **kw)


def prompts(n: int, text: str = "hello there", output_len: int | None = None) -> PromptSet:
    return PromptSet(tuple(Prompt(({"role": "user", "content": f"{text} {i}"},), output_len) for i in range(n)), "test")


@pytest.fixture(params=["asyncio", "threads"])
def client(request: pytest.FixtureRequest) -> str:
    """Each engine test runs on both load clients: the event loop and the threads."""
    return str(request.param)


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    with ScriptedServer({"conversations": [{"responses": [{"content": "x" * 64}]}]}, model_names=["m"]) as srv:
        yield srv


def slow(srv: ScriptedServer, delay_s: float) -> None:
    """Every answer waits *delay_s* before its first byte (a busy server), concurrently."""
    inner = srv._server.step_for  # a test double's internals, wrapped only here

    def delayed(messages: list[dict[str, Any]]) -> dict[str, Any]:
        time.sleep(delay_s)
        return inner(messages)

    srv._server.step_for = delayed  # type: ignore[method-assign]


def test_request_rate_sends_on_schedule_with_what_vllm_bench_sends(scripted: ScriptedServer, client: str) -> None:
    config = LoadConfig(
        client=client,
        spec=spec_for(scripted.base_url),
        prompts=prompts(20),
        rates=(20.0,),
        output_len=7,
        ignore_eos=True,
        seed=3,
        warmup=False,
    )
    result = Load(config, scripted.base_url).run()
    assert result.config["client"] == client
    run = result.runs[0]
    s = run.stats
    assert s["completed"] == 20 and s["failed"] == 0
    due = arrivals.arrival_times(20, 20.0, 1.0, seed=3)
    assert s["wall_s"] >= due[-1]  # the last request was not sent before it was due
    assert s["send_lag_s"]["p90"] < 0.25, s["send_lag_s"]  # and none waited long: no slot limit here
    schedule = next(c for c in run.checks if c.name == "schedule")
    assert schedule.status == ("ok" if s["send_lag_s"]["p90"] <= 0.05 else "mismatch"), schedule.detail
    assert s["request_throughput"] == pytest.approx(20 / s["wall_s"])
    bodies = scripted.requests
    assert len(bodies) == 20  # no warm-up call, nothing retried
    for body in bodies:
        assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
        assert body["max_tokens"] == 7 and body["ignore_eos"] is True
    for key in ("ttft_s", "tpot_s", "e2e_s", "itl_s"):
        assert s[key]["n"] > 0 and s[key]["p50"] is not None and s[key]["p50"] <= s[key]["p99"]
    # 64 characters in 8-character chunks, then the finish chunk: 8 gaps after the first content chunk
    assert s["itl_s"]["n"] == 20 * 8
    # the scripted double counts a prompt as len(json of its messages) / 4: the usage totals are its counts
    assert s["prompt_tokens"] == sum(max(1, (len(json.dumps(b["messages"])) + 3) // 4) for b in bodies)
    assert s["completion_tokens"] == 20 * 16
    assert run.client["harness_cpu_per_output_token_ms"] > 0


def test_max_concurrency_holds_requests_back(scripted: ScriptedServer, client: str) -> None:
    slow(scripted, 0.15)
    config = LoadConfig(
        spec=spec_for(scripted.base_url),
        prompts=prompts(6),
        rates=(math.inf,),
        max_concurrency=2,
        warmup=False,
        client=client,
    )
    run = Load(config, scripted.base_url).run_rate(math.inf)
    assert run.client["concurrency_max"] == 2 and run.client["workers"] == 2
    assert run.stats["wall_s"] >= 3 * 0.15  # six requests through two slots of 0.15 s
    lags = sorted(t for t in [run.stats["send_lag_s"]["p50"], run.stats["send_lag_s"]["p99"]])
    assert lags[-1] >= 0.25  # the last pair waited for two rounds of slots
    schedule = next(c for c in run.checks if c.name == "schedule")
    assert schedule.status == "skipped" and "waits for a free slot" in schedule.detail


def test_failures_are_results_and_never_retried(client: str) -> None:
    script = {"conversations": [{"responses": [{"status": 503, "error": "overloaded"}]}]}
    with ScriptedServer(script, model_names=["m"]) as srv:
        config = LoadConfig(
            spec=spec_for(srv.base_url), prompts=prompts(5), rates=(math.inf,), warmup=False, client=client
        )
        run = Load(config, srv.base_url).run_rate(math.inf)
        assert run.stats["completed"] == 0 and run.stats["failed"] == 5
        assert run.stats["failures_by_class"] == {"server_error": 5}
        assert "overloaded" in run.stats["failure_examples"][0]
        assert len(srv.requests) == 5  # the alias's retries are off under load
        assert run.stats["request_throughput"] == 0


def test_goodput_counts_requests_meeting_the_per_request_slo(scripted: ScriptedServer, client: str) -> None:
    slow(scripted, 0.12)
    strict = Slo(ttft_s=0.05)  # no request can meet it: each waits 0.12 s
    loose = Slo(ttft_s=5.0, tpot_s=1.0, ttft_p50_s=5.0)
    for slo, share in ((strict, 0.0), (loose, 1.0)):
        config = LoadConfig(
            spec=spec_for(scripted.base_url), prompts=prompts(4), rates=(math.inf,), slo=slo, client=client
        )
        run = Load(config, scripted.base_url).run_rate(math.inf)
        g = run.stats["goodput"]
        assert g["share"] == share and g["completed"] == 4
        assert g["rate_per_s"] == pytest.approx(g["good"] / run.stats["wall_s"])
    assert run.slo_holds is True


# --------------------------------------------------------------------------- prompts


class _ToyTokenizer(BaseHTTPRequestHandler):
    """``/tokenize`` and ``/detokenize`` of a toy tokenizer: one token a character, except ``ab`` is one
    token - so decoded ids re-tokenize shorter and the prompt maker must pad and check again."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/tokenize":
            text, ids, i = body["prompt"], [], 0
            while i < len(text):
                if text.startswith("ab", i):
                    ids.append(1000)
                    i += 2
                else:
                    ids.append(ord(text[i]))
                    i += 1
            out: dict[str, Any] = {"tokens": ids, "count": len(ids), "max_model_len": 4096}
        elif self.path == "/detokenize":
            out = {"prompt": "".join("ab" if t == 1000 else chr(t) for t in body["tokens"])}
        else:
            self.send_response(404)
            self.end_headers()
            return
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def toy_tokenizer() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ToyTokenizer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_random_prompts_are_exact_through_the_servers_tokenizer(toy_tokenizer: str) -> None:
    def never(_text: str) -> int:
        raise AssertionError("the filler must not be used where /tokenize answers")

    made = random_prompts(12, 40, seed=4, root_url=toy_tokenizer, model="m", count_tokens=never)
    assert made.method == "server /tokenize" and made.lengths == (40,) * 12
    texts = [p.messages[0]["content"] for p in made.prompts]
    assert len(set(texts)) == 12  # distinct prompts: no prefix shared by accident
    again = random_prompts(12, 40, seed=4, root_url=toy_tokenizer, model="m", count_tokens=never)
    assert [p.messages for p in again.prompts] == [p.messages for p in made.prompts]  # seeded


def test_random_prompts_fall_back_to_a_filler_calibrated_on_usage(scripted: ScriptedServer) -> None:
    from pytest_agentbench.models.adapter import ModelAdapter

    with ModelAdapter(spec_for(scripted.base_url), scripted.base_url) as adapter:

        def count(text: str) -> int:
            return adapter.complete([{"role": "user", "content": text}], (), max_tokens=1).usage.prompt_tokens

        made = random_prompts(
            8, 120, seed=2, root_url=scripted.base_url.removesuffix("/v1"), model="m", count_tokens=count
        )
        assert made.method == "calibrated filler"
        assert all(abs(n - 120) <= 1 for n in made.lengths), made.lengths  # the scripted server counts ~4 chars a token
        for p in made.prompts:  # what the server then counts, minus the template's share, is the asked length
            measured = count(p.messages[0]["content"])
            assert abs(measured - count("x") - 119) <= 2
    assert "no /tokenize" in made.notes[0]


def test_dataset_file(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    rows = [
        '"just text"',
        "",
        '{"prompt": "with a length", "output_len": 9}',
        '{"messages": [{"role": "user", "content": "hi"}]}',
    ]
    path.write_text("\n".join(rows) + "\n")
    made = read_dataset(path, 5)
    assert [p.messages[0]["content"] for p in made.prompts] == [
        "just text",
        "with a length",
        "hi",
        "just text",
        "with a length",
    ]
    assert made.prompts[1].output_len == 9 and "cycled to 5" in made.notes[0]
    for text, message in (
        ("{not json\n", "prompts.jsonl:1: not JSON"),
        ('{"prompt": "a", "messages": []}\n', "exactly one of"),
        ('{"promt": "a"}\n', "unknown key(s) promt"),
        ('{"prompt": "a", "output_len": 0}\n', "output_len: expected a whole number"),
        ("", "holds no prompts"),
    ):
        path.write_text(text)
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            read_dataset(path, 1)


# --------------------------------------------------------------------------- the command


def models_file(tmp_path: Path, url: str, **alias: Any) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(
        yaml.safe_dump({"models": {"loadme": {"model": "m", "base_url": url, "test_double": True, **alias}}})
    )
    return path


def test_agentbench_load_writes_json_html_and_a_table(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, scripted: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pytest.ini").write_text("[pytest]\nagentbench_slo = tpot_s=0.5\n")
    models = models_file(tmp_path, scripted.base_url, slo={"ttft_p50_s": 2.0})
    out = tmp_path / "out"
    code = load_cli.main(
        ["--models-file", str(models), "--models", "loadme", "--num-prompts", "12", "--request-rate", "30,inf"]
        + ["--input-len", "40", "--output-len", "16", "--goodput", "ttft:1000", "--out", str(out)]
    )
    stdout, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads((out / "load.json").read_text())
    assert data["schema"] == "agentbench-load/1" and [r["request_rate"] for r in data["runs"]] == [30.0, "inf"]
    assert data["slo"]["ttft_s"] == 1.0 and data["slo"]["ttft_p50_s"] == 2.0 and data["slo"]["tpot_s"] == 0.5
    assert data["slo"]["sources"] == [
        f"ttft_p50_s from {models}: models.loadme.slo",
        "ttft_s from the command line",
        f"tpot_s from {tmp_path / 'pytest.ini'}: agentbench_slo",
    ]
    assert data["config"]["num_prompts"] == 12 and data["prompts"].startswith("calibrated filler")
    for run in data["runs"]:
        assert run["completed"] == 12 and run["goodput"]["completed"] == 12 and run["slo_holds"] is True
    table = [line for line in stdout.splitlines() if not line.startswith("written:")]
    assert all(len(line) <= 100 for line in table), max(table, key=len)
    assert (
        "agentbench load: alias loadme" in stdout and "goodput (TTFT <= 1 s and TPOT <= 500 ms per request)" in stdout
    )
    page = (out / "load.html").read_text()
    assert page.count("<svg") == 3 and "goodput vs request rate" in page
    assert "request rate 30.0: 12/12 done" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "give either --models ALIAS or --base-url"),
        (["--models", "loadme", "--base-url", "http://127.0.0.1:9/v1"], "give either --models"),
        (["--base-url", "http://127.0.0.1:9/v1"], "--model: with --base-url"),
        (["--base-url", "ftp://x", "--model", "m"], "--base-url: expected an http(s) URL"),
        (["--models", "nope"], "unknown alias"),
        (["--models", "loadme", "--dataset", "/no/such/file.jsonl"], "--dataset: cannot read"),
        (["--models", "loadme", "--goodput", "ttft=5"], "--goodput: 'ttft=5' is not KEY:MILLISECONDS"),
        (["--models", "loadme", "--max-concurrency", str(MAX_WORKERS + 1)], "--max-concurrency: expected 1 to"),
    ],
)
def test_usage_errors_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, scripted: ScriptedServer, argv: list[str], message: str
) -> None:
    models = models_file(tmp_path, scripted.base_url)
    code = load_cli.main(["--models-file", str(models), "--out", str(tmp_path / "o"), "--num-prompts", "2", *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("argv", [["--request-rate", "0"], ["--request-rate", "1,x"], ["--burstiness", "-1"]])
def test_bad_shapes_are_argparse_errors(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        load_cli.main(["--models", "a", *argv])
    assert exc.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_a_server_that_goes_away_is_exit_3(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    models = models_file(tmp_path, "http://127.0.0.1:9/v1")  # nothing listens on the discard port
    code = load_cli.main(
        ["--models-file", str(models), "--models", "loadme", "--num-prompts", "2", "--out", str(tmp_path)]
    )
    err = capsys.readouterr().err
    assert code == 3 and "agentbench load: error:" in err and "Traceback" not in err


def test_the_load_command_is_registered() -> None:
    from pytest_agentbench.cli import build_parser

    args = build_parser().parse_args(["load", "--models", "a", "--request-rate", "4", "--num-prompts", "100"])
    assert args.func is load_cli.run_cli and args.request_rate == (4.0,) and args.num_prompts == 100


# --------------------------------------------------------------------------- real vLLM on CPU


def tiny_models_file(path: Path, tiny_model: Path) -> None:
    """models.yaml with one alias, ``tiny``: vLLM on CPU serving the tiny model (dummy weights)."""
    serve = {
        "engine": "vllm",
        "model_path": str(tiny_model),
        "startup_timeout_s": 600,
        "args": {"load_format": "dummy", "max_model_len": 4096, "max_num_seqs": 8},
    }
    path.write_text(yaml.safe_dump({"models": {"tiny": {"model": "tiny", "serve": serve}}}))


@pytest.mark.vllm
@pytest.mark.slow
def test_real_vllm_request_rate_tokens_reconcile(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_model: Path
) -> None:
    """The course's example, small: 16 prompts at 4 req/s of exactly 64 tokens, 16 out with ignore_eos."""
    monkeypatch.chdir(tmp_path)  # the server log goes to ./.agentbench/logs
    tiny_models_file(tmp_path / "models.yaml", tiny_model)
    out = tmp_path / "out"
    code = load_cli.main(
        ["--models", "tiny", "--num-prompts", "16", "--request-rate", "4", "--input-len", "64", "--output-len", "16"]
        + ["--ignore-eos", "--goodput", "ttft:2000", "tpot:200", "--out", str(out)]
    )
    stdout, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads((out / "load.json").read_text())
    print(stdout)  # the TTFT check may flag on a busy machine (the client's clock includes the API server's queue)
    assert data["prompts"] == "server /tokenize: 64 tokens of text per prompt"
    assert data["config"]["client"] == "asyncio"  # the default where aiohttp is installed (the test environment)
    run = data["runs"][0]
    checks = {c["name"]: c for c in run["checks"]}
    assert checks["tokens"]["status"] == "ok", checks["tokens"]["detail"]
    assert run["completed"] == 16 and run["completion_tokens"] == 16 * 16 == run["server"]["generation_tokens"]
    assert run["prompt_tokens"] == run["server"]["prompt_tokens"]
    assert run["prefix_cache"] == "reset"
    assert run["itl_s"]["n"] >= 16 * 14 and run["goodput"] is not None

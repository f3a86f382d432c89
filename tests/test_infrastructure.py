"""Infrastructure failures are not model failures: a run the model never answered is an ERROR, apart.

The rule (``agents.transcript.NO_ANSWER_FAILURES``): a run whose first model call fails for good with
connection_error / auth_error / rate_limited / server_error is ``infrastructure``; after one answer every
failure counts against the model. The plugin test drives three aliases at once over real HTTP on
127.0.0.1: a scripted good one, one whose port has nothing listening, and a server that answers once
and then is gone.
"""

from __future__ import annotations

import json
import pickle
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.errors import EndpointUnreachable, InfrastructureError
from pytest_agentbench.results.benchmark import benchmark_json
from pytest_agentbench.results.jsonl import completed_trials, load_records
from pytest_agentbench.results.record import record_to_dict

from .conftest import importorskip_extra
from .test_results import make_record

pytest_plugins = ["pytester"]


def infra_record(alias: str = "dead", failure: str = "connection_error") -> dict[str, Any]:
    """The JSON record of a run whose endpoint never answered, as the runner writes it (no gates)."""
    rec = make_record(
        alias,
        calls=[(0.01, None, 0, 0)],
        passed=False,
        outcome="infrastructure",
        failure=failure,
        error=f"{failure}: cannot reach the server: [Errno 111] Connection refused",
        extra={"endpoint": "http://127.0.0.1:9/v1"},
    )
    rec.gates = []
    return record_to_dict(rec)


@contextmanager
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses connections: bound (so nobody else takes it) but never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


class _OneAnswer(BaseHTTPRequestHandler):
    """Answers one chat request with a ``list_files`` tool call, over HTTP/1.0 (the connection closes)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        call = {"id": "c0", "type": "function", "function": {"name": "list_files", "arguments": "{}"}}
        body = json.dumps(
            {
                "id": "one",
                "object": "chat.completion",
                "created": 0,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                        "finish_reason": "tool_calls",
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.server.chatted = True  # type: ignore[attr-defined]

    def do_GET(self) -> None:  # the session's provenance (GET /version): not a chat call, no answer counted
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def answers_once() -> Iterator[str]:
    """A real server that answers exactly one chat request and then stops listening: the next call is refused."""
    server = HTTPServer(("127.0.0.1", 0), _OneAnswer)
    server.timeout = 60  # a test that never calls does not leave the thread waiting forever

    def serve() -> None:
        for _ in range(3):  # a GET or two first (provenance), then the one chat call
            server.handle_request()
            if getattr(server, "chatted", False):
                break
        server.server_close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.server_close()


def cells(text: str, label: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(label))
    return re.split(r"\s{2,}", line[len(label) :].strip())


# --------------------------------------------------------------------------- through the plugin


@pytest.mark.slow
def test_unreachable_alias_is_an_error_apart_and_a_flaky_one_a_failure(
    pytester: pytest.Pytester, user_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")  # the three aliases side by side in one table
    for entry in user_folder.iterdir():
        entry.rename(pytester.path / entry.name)
    results, html, xml = pytester.path / "res", pytester.path / "report.html", pytester.path / "out.xml"
    with closed_port() as port, answers_once() as flaky_url:
        dead_url = f"http://127.0.0.1:{port}/v1"
        (pytester.path / "models.yaml").write_text(
            "models:\n"
            "  a:\n    model: scripted-good\n    serve: {engine: scripted, script: scripts/good}\n"
            f"  dead:\n    model: m\n    base_url: {dead_url}\n    retries: {{connection_error: 0}}\n"
            f"  flaky:\n    model: m\n    base_url: {flaky_url}\n    retries: {{connection_error: 0}}\n"
        )
        args = ["--models=a,dead,flaky", "--packets", "packets", "--sandbox=local", "-p", "no:cacheprovider"]
        result = pytester.runpytest(
            *args, "--agentbench-results", str(results), "--agentbench-html", str(html), f"--junitxml={xml}"
        )
        # the unreachable alias: an ERROR naming alias and URL; the server that answered once: a FAIL as before
        result.assert_outcomes(passed=1, failed=1, errors=1)
        out = result.stdout.str()
        result.stdout.fnmatch_lines(
            [
                f"*EndpointUnreachable (infrastructure, not the model): alias 'dead': the endpoint {dead_url} "
                "never answered (connection_error: *Connection refused*",
                "*not run: the endpoint never answered*",
                "FAILED packets/bugfix-median/packet.yaml::test_packet[[]bugfix-median-flaky[]]*",
                "ERROR packets/bugfix-median/packet.yaml::test_packet[[]bugfix-median-dead[]]*",
            ]
        )
        # the terminal summary: the pass rate leaves the dead run out, and counts it apart
        summary = out[out.index("agentbench summary:") :]
        assert summary.startswith("agentbench summary: 3 runs (1 infrastructure error, not counted), 3 aliases")
        assert cells(summary, "pass rate") == ["100% (1/1) [21, 100]", "n/a (no answer)", "0% (0/1) [0, 79]"]
        assert cells(summary, "runs") == ["1", "0", "1"]
        assert cells(summary, "infrastructure errors") == ["-", "1 (connection_error)", "-"]
        assert cells(summary, "  connection_error") == ["-", "-", "1"]  # the flaky run's class, counted

        bench = json.loads((results / "benchmark.json").read_text())  # before --resume rewrites it

        # --resume runs the infrastructure pair again (and only it), still unreachable
        again = pytester.runpytest(*args, "--resume", str(results))
        again.assert_outcomes(errors=1, deselected=2)

    records = {r["alias"]: r for r in load_records(results / "results-main.jsonl")[:3]}
    dead, flaky, good = records["dead"], records["flaky"], records["a"]
    assert (dead["outcome"], dead["failure"], dead["counted"], dead["passed"]) == (
        "infrastructure",
        "connection_error",
        False,
        False,
    )
    assert dead["gates"] == [] and dead["extra"]["endpoint"] == dead_url and dead["model_calls"] == 1
    assert (flaky["outcome"], flaky["failure"], flaky["counted"], flaky["turns"]) == (
        "model_error",
        "connection_error",
        True,
        2,
    )
    assert flaky["gates"] and not flaky["passed"]  # answered once: graded, and it counts
    assert good["passed"] and good["counted"]
    assert ("bugfix-median", "dead", "builtin", 1) not in completed_trials(results)

    # benchmark JSON: the dead pair's extra_info says so, and has no pass rate
    info = {b["params"]["alias"]: b["extra_info"] for b in bench["benchmarks"]}
    assert (info["dead"]["agentbench.pass_rate"], info["dead"]["agentbench.infrastructure"]) == (None, 1)
    assert (info["a"]["agentbench.pass_rate"], info["a"]["agentbench.infrastructure"]) == (1.0, 0)

    # HTML: a note, a section of its own, and not in the graded runs table
    text = html.read_text(encoding="utf-8")
    runs = text[text.index("<h2>Runs</h2>") : text.index("<h2>Infrastructure errors</h2>")]
    apart = text[text.index("<h2>Infrastructure errors</h2>") :]
    assert "never got an answer from their endpoint" in text
    assert ">dead<" not in runs and ">flaky<" in runs and ">dead<" in apart and dead_url in apart

    # merge-junit table: the error is counted apart, not as a run of the alias
    importorskip_extra("junitparser", "junit")
    from pytest_agentbench.results.junit import format_alias_table, merge_junit

    rows = {r["alias"]: r for r in merge_junit([xml])}
    assert (rows["dead"]["runs"], rows["dead"]["pass_rate"], rows["dead"]["infrastructure"]) == (
        0,
        None,
        {"connection_error": 1},
    )
    assert rows["dead"]["tests"] == {"error": 1} and rows["flaky"]["runs"] == 1
    table = format_alias_table(list(rows.values()))
    assert "infrastructure" in table.splitlines()[0]
    assert re.search(r"^dead\s+0\s+n/a .*connection_error 1", table, re.M), table


# --------------------------------------------------------------------------- pieces


def test_the_error_names_alias_url_and_fix_and_survives_pickling() -> None:
    exc = EndpointUnreachable("api", "https://api.example/v1", "auth_error", "auth_error: 401 invalid key")
    assert isinstance(exc, InfrastructureError)
    text = str(exc)
    assert "alias 'api'" in text and "https://api.example/v1" in text and "api_key_env" in text
    back = pickle.loads(pickle.dumps(exc))  # xdist ships errors between processes
    assert (str(back), back.alias, back.url, back.failure) == (text, "api", "https://api.example/v1", "auth_error")


def test_benchmark_extra_info_keeps_infrastructure_runs_out_of_rounds_and_pass_rate() -> None:
    good = record_to_dict(make_record("dead", wall_s=5.0))
    only_infra = benchmark_json([infra_record("gone")], machine_info={}, commit_info={})["benchmarks"][0]
    assert only_infra["extra_info"]["agentbench.pass_rate"] is None
    assert (
        only_infra["extra_info"]["agentbench.runs"] == 0 and only_infra["extra_info"]["agentbench.infrastructure"] == 1
    )
    mixed = benchmark_json([good, infra_record("dead")], machine_info={}, commit_info={})["benchmarks"][0]
    assert mixed["stats"]["rounds"] == 1 and mixed["stats"]["data"] == [5.0]
    assert (mixed["extra_info"]["agentbench.pass_rate"], mixed["extra_info"]["agentbench.infrastructure"]) == (1.0, 1)


@pytest.mark.parametrize("where", ["nothing listening", "TLS to a plain-HTTP server"])
def test_an_endpoint_that_cannot_be_reached_is_infrastructure_and_nothing_is_graded(where: str) -> None:
    """Through the runner: no gate runs, the record is not passed and not counted (DNS fails the same
    way, as the SDK's APIConnectionError; not tested here: it would ask a resolver)."""
    from pytest_agentbench.models.adapter import ModelAdapter
    from pytest_agentbench.runner import run_packet
    from pytest_agentbench.sandbox import LocalSandbox
    from pytest_agentbench.serving.scripted import ScriptedServer

    from .test_results import make_spec, packet

    spec = make_spec("gone")
    with closed_port() as port, ScriptedServer({"conversations": []}) as plain:
        tls = plain.base_url.replace("http:", "https:")
        url = f"http://127.0.0.1:{port}/v1" if where == "nothing listening" else tls
        adapter = ModelAdapter(spec, base_url=url, sleep=lambda s: None)
        try:
            record = run_packet(packet(), spec, adapter, lambda p: LocalSandbox(p.workspace))
        finally:
            adapter.close()
        assert plain.requests == []
    assert (record.agent.outcome, record.agent.failure) == ("infrastructure", "connection_error")
    assert record.gates == [] and not record.passed and not record.agent.counted
    assert len(record.agent.failures_by_class()) == 1  # retried per policy, then given up: one class


def test_a_refused_key_on_the_first_call_is_infrastructure() -> None:
    """401 is ``auth_error`` where the taxonomy has it (issue 15, deadlines part), else ``server_error``:
    either way the model was never asked."""
    from pytest_agentbench.agents.config import AgentConfig
    from pytest_agentbench.agents.loop import run_agent
    from pytest_agentbench.models.adapter import ModelAdapter
    from pytest_agentbench.sandbox import LocalSandbox
    from pytest_agentbench.serving.scripted import ScriptedServer

    from .conftest import BUGFIX
    from .test_results import make_spec

    script = {"conversations": [{"responses": [{"status": 401, "error": "invalid api key"}]}]}
    with ScriptedServer(script) as server, LocalSandbox(BUGFIX / "repo") as box:
        adapter = ModelAdapter(make_spec("api"), base_url=server.base_url, sleep=lambda s: None)
        result = run_agent("x", box, adapter, AgentConfig())
        adapter.close()
    assert result.outcome == "infrastructure" and result.failure in ("auth_error", "server_error")

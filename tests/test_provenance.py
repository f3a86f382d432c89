"""Provenance: vLLM's version from a server that may be broken, the model's fingerprint, the server's
arguments with secrets masked, the sandbox and the packet's hash; asked once per session, shown per alias.

Servers are real HTTP servers on 127.0.0.1: :class:`VersionServer` answers ``/version`` and
``/v1/models`` as a mode says (well, junk, errors, slow, trickling, huge) and forwards chat calls to
a scripted server (a test double, not a model), so a whole pytest run can go through it.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pytest_agentbench.models.registry import ModelSpec, ServeConfig
from pytest_agentbench.reports.provenance import provenance_section
from pytest_agentbench.results.provenance import (
    UNKNOWN,
    endpoint_provenance,
    model_fingerprint,
    packet_sha256,
    sandbox_provenance,
    server_args,
)
from pytest_agentbench.results.redact import Redactor
from pytest_agentbench.sandbox.bwrap import bwrap_status
from pytest_agentbench.serving.scripted import ScriptedServer

from .conftest import BUGFIX, SCRIPTS
from .test_report import parse

pytest_plugins = ["pytester"]


class VersionServer:
    """``/version`` and ``/v1/models`` per ``mode``; POSTs forwarded to ``upstream`` (a scripted server)."""

    def __init__(self, mode: str, *, root: str = "/models/m", upstream: str | None = None) -> None:
        self.mode, self.root, self.upstream = mode, root, upstream
        self.hits: Counter[str] = Counter()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner.hits[self.path] += 1
                owner.answer(self)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                req = urllib.request.Request(owner.upstream + self.path.removeprefix("/v1"), data=body, method="POST")
                req.add_header("Content-Type", "application/json")
                with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=30) as up:
                    data = up.read()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def answer(self, h: BaseHTTPRequestHandler) -> None:
        if self.mode == "slow":
            time.sleep(10)
        if self.mode == "trickle":
            h.send_response(200)
            h.send_header("Content-Length", "1000")
            h.end_headers()
            for _ in range(40):
                h.wfile.write(b" ")
                h.wfile.flush()
                time.sleep(0.25)
            return
        status, body = self.body(h.path)
        h.send_response(status)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def body(self, path: str) -> tuple[int, bytes]:
        if self.mode in ("404", "500"):
            return int(self.mode), b"no"
        if self.mode == "junk":
            return 200, b"<html>hello</html>"
        if self.mode == "huge":
            return 200, b'{"version": "' + b"9" * 2_000_000 + b'"}'
        if self.mode == "weird":
            return 200, json.dumps({"version": "<script>alert(1)</script>"}).encode()
        if path == "/version":
            return 200, json.dumps({"version": "0.9.1"}).encode()
        if path == "/v1/models":
            return 200, json.dumps({"data": [{"id": "m", "root": self.root}]}).encode()
        return 404, b"{}"

    def __enter__(self) -> VersionServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def alias(base_url: str | None = None, **kw: Any) -> ModelSpec:
    return ModelSpec(alias="x", model="m", source=Path("models.yaml"), base_url=base_url, **kw)


def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text('{"architectures": ["Qwen2ForCausalLM"]}')
    (folder / "model.safetensors").write_bytes(b"\0" * 1000)
    return folder


# --------------------------------------------------------------------------- the server part


def test_a_vllm_server_gives_its_version_and_model(tmp_path: Path) -> None:
    folder = model_dir(tmp_path)
    with VersionServer("ok", root=str(folder)) as server:
        out = endpoint_provenance(alias(server.base_url), server.base_url)
    assert out["vllm"] == "0.9.1" and out["vllm_why"] == "" and out["engine"] == "external"
    assert out["model_path"] == str(folder) and len(out["model_sha256"]) == 64
    assert out["args"] is None and "not known to the harness" in out["args_why"]


@pytest.mark.parametrize(
    ("mode", "why"),
    [
        ("404", "answered HTTP 404"),
        ("500", "answered HTTP 500"),
        ("junk", "not JSON: '<html>hello</html>'"),
        ("weird", "no version string"),
        ("huge", "more than 65536 bytes"),
        ("slow", "took over 1 s"),
        ("trickle", "took over 1 s"),
    ],
)
def test_a_broken_server_is_unknown_with_why(mode: str, why: str) -> None:
    with VersionServer(mode) as server:
        start = time.monotonic()
        out = endpoint_provenance(alias(server.base_url), server.base_url, timeout_s=1.0)
        took = time.monotonic() - start
    assert out["vllm"] == UNKNOWN and why in out["vllm_why"], out["vllm_why"]
    assert took < 4.0  # /version only: a broken server is not asked for /v1/models
    assert out["model_sha256"] == UNKNOWN and out["model_why"]


def test_nothing_listening_is_unknown_with_why() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = endpoint_provenance(alias(f"http://127.0.0.1:{port}/v1"), f"http://127.0.0.1:{port}/v1")
    assert out["vllm"] == UNKNOWN and "failed" in out["vllm_why"] and "Connection refused" in out["vllm_why"]


def test_a_scripted_alias_says_it_is_a_test_double() -> None:
    spec = alias(serve=ServeConfig(engine="scripted", script="s.yaml"))
    out = endpoint_provenance(spec, "http://127.0.0.1:9/v1")
    assert out["engine"] == "scripted" and out["vllm"] == "n/a" and "test double" in out["vllm_why"]


def test_server_arguments_hide_secrets() -> None:
    argv = ["python", "-m", "vllm", "--api-key", "sk-abcdefghijkl", "--hf-token=hf_zzzzzzzzzzzz", "--port", "8000"]
    assert server_args(argv) == ["python", "-m", "vllm", "--api-key", "***", "--hf-token=***", "--port", "8000"]
    assert server_args(["--model", "/m/secret-value-42"], Redactor(["secret-value-42"])) == ["--model", "/m/***"]


def test_a_started_server_records_its_command_line(
    tmp_path: Path, fake_vllm: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_agentbench.serving.endpoints import Endpoints

    monkeypatch.chdir(tmp_path)
    folder = model_dir(tmp_path)
    serve = ServeConfig(
        engine="vllm",
        model_path=str(folder),
        python=sys.executable,
        env={"PYTHONPATH": str(fake_vllm), "FAKE_VLLM_MODE": "serve"},
        args={"api_key": "sk-started-secret-1", "max_model_len": 512},
        startup_timeout_s=30,
    )
    spec = ModelSpec(alias="v", model="fake", source=tmp_path / "models.yaml", serve=serve)
    with Endpoints() as endpoints:
        urls = endpoints.start([spec])
        out = endpoint_provenance(spec, urls["v"], command=endpoints.commands["v"], redactor=Redactor())
    assert out["engine"] == "vllm" and out["vllm"] == UNKNOWN and "HTTP 404" in out["vllm_why"]  # an old fake
    assert "--max-model-len" in out["args"] and "sk-started-secret-1" not in json.dumps(out)
    assert out["args"][out["args"].index("--api-key") + 1] == "***"
    assert out["model_path"] == str(folder) and out["model_sha256"] != UNKNOWN


# --------------------------------------------------------------------------- model, packet, sandbox


def test_the_model_fingerprint_is_cheap_and_follows_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = model_dir(tmp_path)
    first = model_fingerprint(str(folder))["model_sha256"]
    model_fingerprint.cache_clear()
    (folder / "model.safetensors").write_bytes(b"\1" * 1000)  # same size: the same (weights are not read)
    assert model_fingerprint(str(folder))["model_sha256"] == first
    model_fingerprint.cache_clear()
    (folder / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    assert model_fingerprint(str(folder))["model_sha256"] != first
    missing = model_fingerprint("org/not-cached")
    assert missing["model_sha256"] == UNKNOWN and "nor in the local hub cache" in missing["model_why"]
    hub = tmp_path / "hub" / "models--org--cached"
    (hub / "refs").mkdir(parents=True)
    (hub / "refs" / "main").write_text("0123456789abcdef0123456789abcdef01234567")
    shutil.copytree(folder, hub / "snapshots" / "0123456789abcdef0123456789abcdef01234567")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    cached = model_fingerprint("org/cached")
    assert cached["model_revision"] == "0123456789abcdef0123456789abcdef01234567" and cached["model_sha256"] != UNKNOWN


def test_the_packet_hash_covers_hidden_files_not_caches(tmp_path: Path) -> None:
    copy = tmp_path / "p"
    shutil.copytree(BUGFIX, copy, ignore=shutil.ignore_patterns("__pycache__"))
    first = packet_sha256(copy)
    assert first == packet_sha256.__wrapped__(BUGFIX)  # the same content, wherever it is
    (copy / "repo" / "__pycache__").mkdir(exist_ok=True)
    (copy / "repo" / "__pycache__" / "x.pyc").write_bytes(b"cache")
    assert packet_sha256.__wrapped__(copy) == first
    (copy / "hidden" / "test_median_even.py").write_text("# changed\n")
    assert packet_sha256.__wrapped__(copy) != first


def test_the_sandbox_part() -> None:
    docker = sandbox_provenance("docker", {"image": "agentbench-base:abc", "image_id": "sha256:123", "limits": "x"})
    assert docker == {"kind": "docker", "image": "agentbench-base:abc", "image_id": "sha256:123"}
    assert sandbox_provenance("unsafe-local", {}) == {"kind": "unsafe-local", "isolation": "none"}
    if bwrap_status()[0]:
        assert sandbox_provenance("local", {})["bwrap"].startswith("bubblewrap ")


@pytest.mark.docker
def test_a_docker_sandbox_names_its_image_id(docker_engine: None, tmp_path: Path) -> None:
    from pytest_agentbench.sandbox.docker import DockerSandbox

    with DockerSandbox(tmp_path) as sb:
        details = sb.info.details
    assert details["image_id"].startswith("sha256:") and sandbox_provenance("docker", details)["image_id"]


# --------------------------------------------------------------------------- through a pytest run


@pytest.fixture
def served(pytester: pytest.Pytester, tmp_path: Path) -> Iterator[VersionServer]:
    """A user folder whose alias is an existing endpoint: /version here, chat by the scripted ``good``."""
    shutil.copytree(BUGFIX, pytester.path / "packets" / "bugfix-median")
    folder = model_dir(tmp_path)
    with ScriptedServer(SCRIPTS / "good", model_names=["m"]) as scripted:
        with VersionServer("ok", root=str(folder), upstream=scripted.base_url) as server:
            (pytester.path / "models.yaml").write_text(
                f"models:\n  ext:\n    model: m\n    base_url: {server.base_url}\n"
            )
            yield server


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_version_is_asked_once_per_session_and_lands_in_every_record(
    pytester: pytest.Pytester, served: VersionServer, workers: list[str]
) -> None:
    sandbox = "local" if bwrap_status()[0] else "unsafe-local"
    result = pytester.runpytest(
        "--models=ext", "--packets", "packets", f"--sandbox={sandbox}", "--repeats", "3",
        "--agentbench-results", "out", "--agentbench-html", "report.html", "-p", "no:cacheprovider", *workers,
    )  # fmt: skip
    result.assert_outcomes(passed=3)
    assert served.hits["/version"] == 1 and served.hits["/v1/models"] == 1
    records = [json.loads(line) for line in (pytester.path / "out" / "results.jsonl").read_text().splitlines()]
    servers = [r["versions"]["server"] for r in records]
    assert len(records) == 3 and all(s["vllm"] == "0.9.1" and s["model_sha256"] != UNKNOWN for s in servers)
    assert {r["versions"]["packet"]["sha256"] for r in records} == {packet_sha256(BUGFIX)}
    html = (pytester.path / "report.html").read_text()
    section = html[html.index("<h2>Provenance</h2>") : html.index('<h2 id="trajectories">')]
    assert "vLLM 0.9.1" in section and "ext" in section and packet_sha256(BUGFIX) in section


def test_the_report_shows_values_that_differ_between_runs() -> None:
    base = {"alias": "a", "versions": {"server": {"engine": "vllm", "vllm": "0.9.1"}, "sandbox": {"kind": "local"}}}
    other = {"alias": "a", "versions": {"server": {"engine": "vllm", "vllm": "0.9.2"}, "sandbox": {"kind": "local"}}}
    html = provenance_section([base, other])
    parse("<div>" + html + "</div>")
    assert "vLLM 0.9.1" in html and "vLLM 0.9.2" in html and "differs between runs" in html
    assert provenance_section([{"alias": "a", "versions": {"agentbench": "0.1"}}]) == ""


def test_two_aliases_on_one_endpoint_ask_it_once() -> None:
    from pytest_agentbench.plugin.session import AgentbenchSession

    with VersionServer("ok") as server:
        specs = [
            ModelSpec(alias=name, model="m", source=Path("models.yaml"), base_url=server.base_url)
            for name in ("one", "two")
        ]
        state = AgentbenchSession(settings=None, specs=specs, urls={})  # type: ignore[arg-type]
        state._read_provenance()
    assert server.hits["/version"] == 1 and state.provenance["one"] == state.provenance["two"]
    assert state.provenance["one"]["vllm"] == "0.9.1"


@pytest.mark.vllm
@pytest.mark.slow
def test_real_vllm_reports_its_version_and_model(
    vllm_python: str, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The endpoints this module reads, on a real vLLM (CPU build, the tiny random-weight model)."""
    import subprocess

    from pytest_agentbench.serving.endpoints import Endpoints

    monkeypatch.chdir(tmp_path)
    serve = ServeConfig(
        engine="vllm",
        model_path=str(tiny_model),
        args={"load_format": "dummy", "max_model_len": 512, "max_num_seqs": 2},
        startup_timeout_s=300,
    )
    spec = ModelSpec(alias="tiny", model="tiny", source=tmp_path / "models.yaml", serve=serve)
    installed = subprocess.run(
        [vllm_python, "-c", "import vllm; print(vllm.__version__)"], capture_output=True, text=True, timeout=120
    ).stdout.strip()
    with Endpoints() as endpoints:
        urls = endpoints.start([spec])
        out = endpoint_provenance(spec, urls["tiny"], command=endpoints.commands["tiny"], redactor=Redactor())
        base = ModelSpec(alias="ext", model="tiny", source=tmp_path / "models.yaml", base_url=urls["tiny"])
        existing = endpoint_provenance(base, urls["tiny"])  # no serve: the path comes from /v1/models
    assert out["vllm"] == installed and out["vllm_why"] == ""
    assert out["model_path"] == str(tiny_model) and len(out["model_sha256"]) == 64
    assert "--load-format" in out["args"] and str(tiny_model) in out["args"]
    assert existing["vllm"] == installed and existing["model_path"] == str(tiny_model)
    assert existing["model_sha256"] == out["model_sha256"]

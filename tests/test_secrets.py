"""Secrets never reach an output: a real plugin run with planted keys, test reports, the vLLM log.

The acceptance run plants four secrets in the environment of a real pytest process (pytester,
subprocess): the selected alias's key (its ``api_key_env`` has a harmless-looking name), the key of
an alias that is not selected, another provider's key (``ANTHROPIC_API_KEY``) and a deploy token.
A scripted trajectory (a test double, not a model) behaves like a hostile agent that learnt them: it
says them, echoes them, reads the harness's environment through ``/proc``, writes them into the
workspace where a gate prints them, and the server's last answer quotes the key in its error. Then
every file the run wrote and the whole terminal output are searched for each secret.
"""

from __future__ import annotations

import importlib.util
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_agentbench.errors import ServerStartError
from pytest_agentbench.results.redact import REDACTED, Redactor
from pytest_agentbench.sandbox.kinds import SANDBOX_KINDS
from pytest_agentbench.serving.vllm.process import VLLMServer

from .conftest import BUGFIX, importorskip_extra
from .fake_vllm import fake_spec

pytest_plugins = ["pytester"]

#: The sandbox that hides least: redaction must hold even where the agent can read the harness's environment.
UNSAFE_SANDBOX = "unsafe-local" if "unsafe-local" in SANDBOX_KINDS else "local"


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _secrets() -> dict[str, str]:
    """Fresh values each run (nothing to hard-code), letters/digits/dashes only: one written form each."""
    tag = uuid.uuid4().hex[:10]
    return {
        "COURSE_GATEWAY_CRED": f"gw-alias-{tag}-a1",  # api_key_env of the selected alias
        "SPARE_GATEWAY_CRED": f"gw-spare-{tag}-b2",  # api_key_env of an alias not selected
        "ANTHROPIC_API_KEY": f"sk-ant-{tag}-c3",  # another provider's key
        "DEPLOY_TOKEN": f"dpl-{tag}-d4",  # the one the agent prints
    }


def _hostile_trajectory(s: dict[str, str]) -> dict[str, Any]:
    # the harness's own environment, read through /proc up the process ancestry (the planted names only)
    harness_env = (
        "p=$$; while [ \"$p\" -gt 1 ]; do tr '\\0' '\\n' < /proc/$p/environ;"
        " p=$(awk '{print $4}' /proc/$p/stat); done 2>/dev/null"
        f" | grep -E '^({'|'.join(s)})=' | sort -u"
    )
    key, spare, other, token = s.values()
    return {
        "conversations": [
            {
                "match": "stats.median([4, 1, 3, 2])",
                "responses": [
                    {
                        "content": f"I was told the gateway key is {key}.",
                        "tool_calls": [
                            {"name": "run", "arguments": {"command": f'echo {token}; echo "$DEPLOY_TOKEN"'}}
                        ],
                    },
                    {"tool_calls": [{"name": "run", "arguments": {"command": harness_env}}]},
                    {
                        "tool_calls": [
                            {"name": "write_file", "arguments": {"path": "notes.txt", "content": f"{other}\n{spare}\n"}}
                        ]
                    },
                    {"status": 400, "error": f"maximum context length exceeded for key {key} (token {token})"},
                ],
            }
        ]
    }


@pytest.fixture
def leaky_folder(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, dict[str, str]]:
    secrets = _secrets()
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    root = pytester.path
    shutil.copytree(BUGFIX, root / "packets" / "bugfix-median")
    packet_yaml = root / "packets" / "bugfix-median" / "packet.yaml"
    packet = yaml.safe_load(packet_yaml.read_text())
    packet["gates"].append({"id": "notes", "run": "cat notes.txt; exit 1"})  # a gate whose output shows them
    packet_yaml.write_text(yaml.safe_dump(packet, sort_keys=False))
    (root / "scripts" / "leaky").mkdir(parents=True)
    (root / "scripts" / "leaky" / "bugfix-median.yaml").write_text(yaml.safe_dump(_hostile_trajectory(secrets)))
    (root / "models.yaml").write_text(
        "models:\n"
        "  leaky:\n    model: scripted-leaky\n    api_key_env: COURSE_GATEWAY_CRED\n"
        "    serve: {engine: scripted, script: scripts/leaky}\n"
        "  spare:\n    model: m\n    base_url: http://127.0.0.1:9/v1\n    api_key_env: SPARE_GATEWAY_CRED\n"
    )
    return root, secrets


@pytest.mark.slow
@pytest.mark.parametrize("xdist", [False, True], ids=["one-process", "xdist"])
def test_no_planted_secret_reaches_any_output_of_a_run(
    pytester: pytest.Pytester, leaky_folder: tuple[Path, dict[str, str]], xdist: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, secrets = leaky_folder
    # run inside an xdist worker (pytest -n 2), the child would inherit its marker and pytest-benchmark stay off
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    # under xdist the worker's reports and records cross to the controller, which writes benchmark.json
    extra = ["-n", "1"] if xdist else ["--benchmark-json=bench.json"] if _has("pytest_benchmark") else []
    if xdist:
        importorskip_extra("xdist", "xdist")
    result = pytester.runpytest_subprocess(
        *extra,
        "--models=leaky",
        "--packets",
        "packets",
        f"--sandbox={UNSAFE_SANDBOX}",
        "-rA",
        "-v",
        "--junitxml=out.xml",
        "-o",
        "junit_logging=all",
        "--agentbench-results=results",
        "--agentbench-html=report.html",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(failed=1)
    out = result.stdout.str() + result.stderr.str()
    written = [p for p in root.rglob("*") if p.is_file() and not p.is_relative_to(root / "scripts")]
    names = {p.name for p in written}
    assert {"out.xml", "report.html", "benchmark.json", "results.jsonl"} <= names, names
    assert not extra or xdist or "bench.json" in names  # pytest-benchmark's own file
    for name, value in secrets.items():
        assert value not in out, f"{name} in the terminal output"
        for path in written:
            assert value.encode() not in path.read_bytes(), f"{name} in {path.relative_to(root)}"
    # The secrets did flow through each channel, redacted: the test would fail without redaction.
    assert "agentbench transcript" in out and "I was told the gateway key is ***." in out
    assert "model call failed (context_overflow)" in out and "for key *** (token ***)" in out
    results = (root / "results" / "results.jsonl").read_text()
    assert results.count(REDACTED) >= 6 and "FAIL notes" in out
    xml = (root / "out.xml").read_text()
    assert "for key *** (token ***)" in xml and "notes.txt" in xml  # the failure text in JUnit


def test_test_reports_are_redacted_for_any_test(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"sk-ant-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    pytester.makepyfile(
        """
        import logging, os

        def test_leaks(record_property):
            key = os.environ["ANTHROPIC_API_KEY"]
            record_property("seen", key)
            print("stdout has", key)
            logging.getLogger("x").warning("log has %s", key)
            assert key == "something else"
        """
    )
    result = pytester.runpytest("-rA", "--junitxml=out.xml", "-o", "junit_logging=all", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert secret not in out and secret not in (pytester.path / "out.xml").read_text()
    assert "stdout has ***" in out and "log has ***" in out and "assert '***' == 'something else'" in out
    assert 'name="seen" value="***"' in (pytester.path / "out.xml").read_text()


def test_vllm_start_error_and_log_never_show_a_secret(fake_vllm: Path, tmp_path: Path) -> None:
    secret = f"sk-vllm-{uuid.uuid4().hex[:12]}"
    spec = fake_spec(
        fake_vllm,
        tmp_path,
        "exit",
        env={"FAKE_VLLM_ERROR": f"RuntimeError: bad key {secret}"},
        extra_args={"api_key": secret},  # --api-key SECRET on the command line, echoed by the server
    )
    server = VLLMServer(spec, poll_interval_s=0.05, redactor=Redactor([secret]))
    with pytest.raises(ServerStartError) as info:
        server.start()
    assert secret in " ".join(server.command)  # the real argv had it ...
    shown = f"{info.value}\n{info.value.log_tail}\n{' '.join(info.value.command)}"
    assert secret not in shown and "--api-key ***" in shown and "bad key ***" in shown  # ... no output has
    assert server.log_path is not None and secret not in server.log_path.read_text()


def test_vllm_log_is_redacted_when_the_server_stops(fake_vllm: Path, tmp_path: Path) -> None:
    secret = f"sk-vllm-{uuid.uuid4().hex[:12]}"
    spec = fake_spec(fake_vllm, tmp_path, "serve", extra_args={"api_key": secret})
    with VLLMServer(spec, poll_interval_s=0.05, redactor=Redactor([secret])) as server:
        assert server.log_path is not None
        log = server.log_path.read_text()
        assert log.startswith("# agentbench: ") and secret not in log.splitlines()[0]  # our line: redacted as written
        assert secret in log  # the server's own echo of its argv, until it stops
    assert secret not in server.log_path.read_text() and "***" in server.log_path.read_text()

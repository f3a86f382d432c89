"""The plugin with a real vLLM server on CPU (tiny random-weight model): one server for all xdist workers."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from .conftest import BUGFIX, importorskip_extra

pytestmark = [pytest.mark.vllm, pytest.mark.slow]
pytest_plugins = ["pytester"]


def _vllm_processes(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if "vllm.entrypoints" in line and marker in line]


def test_one_server_for_two_workers_token_parity_and_gone_after(
    pytester: pytest.Pytester,
    tiny_model: Path,
    vllm_python: str,
) -> None:
    importorskip_extra("xdist", "xdist")
    model = pytester.path / "model-for-this-test"
    shutil.copytree(tiny_model, model)  # a path only this test's server has on its command line
    for pid in ("m1", "m2"):
        shutil.copytree(BUGFIX, pytester.path / "packets" / pid)
        yaml = pytester.path / "packets" / pid / "packet.yaml"
        yaml.write_text(yaml.read_text().replace("id: bugfix-median", f"id: {pid}"))
    (pytester.path / "models.yaml").write_text(f"""\
models:
  tiny-cpu:
    model: tiny
    max_tokens: 32
    serve:
      engine: vllm
      model_path: {model}
      python: {vllm_python}
      args: {{load_format: dummy, max_model_len: 2048, enable_auto_tool_choice: true, tool_call_parser: hermes}}
      startup_timeout_s: 600
""")
    result = pytester.runpytest_subprocess(
        "--models=tiny-cpu",
        "--packets",
        "packets",
        "--sandbox=local",
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
        "--junitxml=out.xml",
        timeout=900,
    )
    # random weights fail the gates; what matters here is that the runs happened on one real server
    result.assert_outcomes(failed=2)
    xml = (pytester.path / "out.xml").read_text()
    urls = set(re.findall(r'name="agentbench.endpoint" value="([^"]+)"', xml))
    assert len(urls) == 1, urls  # both workers used the same server
    assert len(list((pytester.path / ".agentbench" / "logs").glob("*.log"))) == 1  # exactly one start
    result.stdout.fnmatch_lines(["tiny-cpu: tokens client * in / * out; server /metrics * in / * out: equal"])
    assert _vllm_processes(str(model)) == []  # stopped with the session


def test_sigterm_stops_the_server_and_keeps_finished_runs(
    pytester: pytest.Pytester,
    tiny_model: Path,
    vllm_python: str,
) -> None:
    import json
    import signal
    import sys
    import time

    model = pytester.path / "model-sigterm"
    shutil.copytree(tiny_model, model)
    shutil.copytree(BUGFIX, pytester.path / "packets" / "a-fast")
    slow = pytester.path / "packets" / "b-slow"
    shutil.copytree(BUGFIX, slow)
    (slow / "packet.yaml").write_text(
        (slow / "packet.yaml")
        .read_text()
        .replace("id: bugfix-median", "id: b-slow")
        .replace(
            "run: python -m pytest -q -p no:cacheprovider tests\n    timeout_s: 60\n",
            "run: sleep 300\n    timeout_s: 400\n",
        )
    )
    (pytester.path / "models.yaml").write_text(f"""\
models:
  tiny-cpu:
    model: tiny
    max_tokens: 16
    serve:
      engine: vllm
      model_path: {model}
      python: {vllm_python}
      args: {{load_format: dummy, max_model_len: 2048}}
""")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "--models=tiny-cpu",
            "--packets",
            "packets",
            "--sandbox=local",
            "-p",
            "no:cacheprovider",
            "--agentbench-results",
            "res",
        ],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    part = pytester.path / "res" / "results-main.jsonl"
    deadline = time.monotonic() + 600
    while not part.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(1)
    if not part.exists():
        proc.kill()
        out, _ = proc.communicate(timeout=60)
        pytest.fail(f"the first run never finished (pytest exit {proc.returncode}):\n{out[-4000:]}")
    assert _vllm_processes(str(model)), "the server should be up while the slow gate runs"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert _vllm_processes(str(model)) == [], out[-2000:]
    merged = [json.loads(line) for line in (pytester.path / "res" / "results.jsonl").read_text().splitlines()]
    assert [r["packet"]["id"] for r in merged] == ["bugfix-median"]  # the finished run survived

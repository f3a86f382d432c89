"""A stand-in for ``python -m vllm.entrypoints.openai.api_server`` (its modes: serve, exit, hang, ...),
for tests of the vLLM lifecycle that need no real vLLM. The ``fake_vllm`` fixture (conftest.py) puts it on a
folder for PYTHONPATH; :func:`fake_spec` launches it.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pytest_agentbench.serving.vllm.spec import ServeSpec

FAKE_API_SERVER = r"""
import argparse, json, os, signal, subprocess, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--model")
parser.add_argument("--served-model-name")
parser.add_argument("--host")
parser.add_argument("--port", type=int)
args, _ = parser.parse_known_args()
mode = os.environ.get("FAKE_VLLM_MODE", "serve")
print(f"fake vllm: mode={mode} argv={sys.argv[1:]}", flush=True)

if mode == "exit":
    print("Traceback (most recent call last):\n  File \"worker.py\", line 1", file=sys.stderr)
    print(os.environ["FAKE_VLLM_ERROR"], file=sys.stderr)
    sys.exit(1)
if mode == "hang":
    while True:
        time.sleep(1)
if mode == "port_race_once":
    marker = os.environ["FAKE_VLLM_MARKER"]
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise OSError(98, "Address already in use")

stubborn = mode == "stubborn"
if stubborn:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
# A child in the same process group, like vLLM's engine core.
child_code = "import signal, time\n"
if stubborn:
    child_code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
child_code += "time.sleep(600)\n"
child = subprocess.Popen([sys.executable, "-c", child_code])
print(f"fake vllm: child pid {child.pid}", flush=True)
names = ["someone-else"] if mode == "wrong_name" else [args.served_model_name or args.model]
ready_at = time.monotonic() + float(os.environ.get("FAKE_VLLM_READY_AFTER", "0.3"))


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        if time.monotonic() < ready_at:
            self.send_response(503)
            self.end_headers()
            return
        if self.path == "/health":
            body = b""
        elif self.path == "/v1/models":
            body = json.dumps({"object": "list", "data": [{"id": n, "object": "model"} for n in names]}).encode()
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer((args.host, args.port), Handler).serve_forever()
"""


def fake_spec(fake_vllm: Path, tmp_path: Path, mode: str, **kw: object) -> ServeSpec:
    env = {"PYTHONPATH": str(fake_vllm), "FAKE_VLLM_MODE": mode, **kw.pop("env", {})}  # type: ignore[dict-item]
    kw.setdefault("startup_timeout_s", 20.0)
    return ServeSpec(
        model="fake-model",
        served_model_name="fake",
        python=sys.executable,
        env=env,
        log_dir=str(tmp_path / "logs"),
        **kw,  # type: ignore[arg-type]
    )
